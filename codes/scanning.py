"""A scan: verify the code (no query if forged), record it, and say what the consumer should know.

`codes` verifies and records; it knows nothing of rewards. What a scan wins is decided by
rewards/, reacting to the recorded scan (a later issue).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from django.db import transaction
from django.utils import timezone

from codes import format as code_format
from codes.channel import check_diversion
from codes.keyring import check
from codes.models import Batch, CodeStatus, CodeSummary, Scan, ScanSource, SerialGroup
from codes.services import batch_of, rule_of
from commerce import geo
from commerce.regions import Region
from commerce.regions import get as get_region
from tenants.db import connection


class Verdict(StrEnum):
    GENUINE = "genuine"  # 正品
    NOT_GENUINE = "not_genuine"  # 非本品牌正品码
    VOID = "void"  # 已作废
    FROZEN = "frozen"  # 已冻结
    BLACKLISTED = "blacklisted"  # 黑名单


@dataclass(frozen=True)
class ScanResult:
    verdict: Verdict
    code: code_format.Code | None = None
    batch: Batch | None = None
    status: str | None = None  # the code's status rule, None: not activated yet
    status_reason: str = ""
    scan_id: int | None = None
    is_first: bool = False
    scan_count: int = 0
    first_scanned_at: datetime | None = None
    first_region: Region | None = None
    # For an outer code: whether the inner code of the same bottle was already scanned (the cap was
    # opened): a bottle sold as new with a claimed inner code was refilled or resold.
    inner_scanned: bool = False


_STATUS_VERDICTS = {
    CodeStatus.VOID: Verdict.VOID,
    CodeStatus.FROZEN: Verdict.FROZEN,
    CodeStatus.BLACKLISTED: Verdict.BLACKLISTED,
}

_UPSERT_SUMMARY = """
INSERT INTO codes_codesummary (kind, serial, first_scanned_at, first_region_code, last_scanned_at, scan_count)
VALUES (%s, %s, %s, %s, %s, 1)
ON CONFLICT (kind, serial) DO UPDATE
    SET scan_count = codes_codesummary.scan_count + 1, last_scanned_at = EXCLUDED.last_scanned_at
RETURNING first_scanned_at, first_region_code, scan_count, (xmax = 0) AS inserted
"""


def record_scan(
    text: str,
    *,
    ip: str | None = None,
    user_agent: str = "",
    source: ScanSource = ScanSource.CONSUMER,
    latitude: float | None = None,
    longitude: float | None = None,
    member_id: int | None = None,
) -> ScanResult:
    """Verify and record a scan in the current brand's schema."""
    tenant = getattr(connection, "tenant", None)
    number = getattr(tenant, "number", None)
    code = check(text, tenant_number=number) if number is not None else None
    if code is None:
        return ScanResult(Verdict.NOT_GENUINE)
    group = SerialGroup.of(code.kind)
    batch = batch_of(group, code.serial)
    if batch is None or batch.key_version != code.version:
        # Signed with our key but never issued: a leaked key or a bug, never a genuine bottle.
        return ScanResult(Verdict.NOT_GENUINE, code=code)
    rule = rule_of(group, code.serial)
    location = geo.locate_ip(ip) if ip else None
    region_code = location.region.code if location is not None and location.region is not None else ""
    now = timezone.now()
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(_UPSERT_SUMMARY, [int(code.kind), code.serial, now, region_code, now])
        first_at, first_region_code, count, inserted = cursor.fetchone()
        scan = Scan.objects.create(
            scanned_at=now,
            kind=int(code.kind),
            serial=code.serial,
            key_version=code.version,
            batch_id=batch.pk,
            source=source,
            member_id=member_id,
            ip=ip,
            region_code=region_code,
            latitude=latitude,
            longitude=longitude,
            user_agent=user_agent[:300],
            is_first=bool(inserted),
        )
    if source == ScanSource.CONSUMER and code.kind in (code_format.Kind.INNER, code_format.Kind.OUTER) and region_code:
        check_diversion(serial=code.serial, scan_id=scan.pk, scanned_at=now, region_code=region_code)
    inner_scanned = False
    if code.kind == code_format.Kind.OUTER and batch.has_inner:
        inner_scanned = CodeSummary.objects.filter(kind=int(code_format.Kind.INNER), serial=code.serial).exists()
    verdict = _STATUS_VERDICTS.get(CodeStatus(rule.status), Verdict.GENUINE) if rule is not None else Verdict.GENUINE
    return ScanResult(
        verdict=verdict,
        code=code,
        batch=batch,
        status=rule.status if rule is not None else None,
        status_reason=rule.reason if rule is not None else "",
        scan_id=scan.pk,
        is_first=bool(inserted),
        scan_count=count,
        first_scanned_at=first_at,
        first_region=get_region(first_region_code) if first_region_code else None,
        inner_scanned=inner_scanned,
    )
