"""A scan: verify the code (no query if forged), record it, and say what the consumer should know.

`codes` verifies and records; it knows nothing of rewards. What a scan wins is decided by
rewards/, reacting to the recorded scan (a later issue).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from django.core import signing
from django.utils import timezone
from django.utils.translation import gettext as _

from codes import format as code_format
from codes.channel import check_diversion
from codes.errors import CodeErrorCode
from codes.keyring import check
from codes.models import Batch, CodeStatus, CodeSummary, LocatedBy, Scan, ScanSource, SerialGroup
from codes.services import cached_batch_of
from commerce import geo
from commerce.regions import Region
from commerce.regions import get as get_region
from tenants.db import connection, prepared
from tenants.errors import Conflict, JiumaError


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
    scanned_at: datetime | None = None
    region_code: str = ""  # where this scan was placed (IP), "" if unknown
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

# One statement records a scan: upsert the code's summary (first scan, count), insert the scan row
# (first or not, from the upsert), read the code's status (the newest rule covering it, as
# services.rule_of) and look up whether the bottle's inner code was ever scanned. A single
# statement is atomic on its own and costs one round trip.
_RECORD = """
WITH summary AS (
    INSERT INTO codes_codesummary (kind, serial, first_scanned_at, first_region_code, last_scanned_at, scan_count)
    VALUES (%(kind)s, %(serial)s, %(now)s, %(region)s, %(now)s, 1)
    ON CONFLICT (kind, serial) DO UPDATE
        SET scan_count = codes_codesummary.scan_count + 1, last_scanned_at = EXCLUDED.last_scanned_at
    RETURNING first_scanned_at, first_region_code, scan_count, (xmax = 0) AS inserted
), scan AS (
    INSERT INTO codes_scan (scanned_at, kind, serial, key_version, batch_id, source, member_id, ip, region_code,
                            located_by, latitude, longitude, user_agent, is_first)
    SELECT %(now)s, %(kind)s, %(serial)s, %(version)s, %(batch)s, %(source)s, %(member)s, %(ip)s, %(region)s,
           %(located_by)s, %(lat)s, %(lon)s, %(agent)s, summary.inserted
    FROM summary
    RETURNING id
), rule AS (
    SELECT status, reason FROM codes_statusrule
    WHERE "group" = %(group)s AND first_serial <= %(serial)s AND last_serial >= %(serial)s
    ORDER BY id DESC LIMIT 1
)
SELECT summary.first_scanned_at, summary.first_region_code, summary.scan_count, summary.inserted,
       (SELECT id FROM scan), (SELECT status FROM rule), (SELECT reason FROM rule),
       %(check_inner)s AND EXISTS (
           SELECT 1 FROM codes_codesummary inner_code WHERE inner_code.kind = 0 AND inner_code.serial = %(serial)s
       )
FROM summary
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
    batch = cached_batch_of(group, code.serial)
    if batch is None or batch.key_version != code.version:
        # Signed with our key but never issued: a leaked key or a bug, never a genuine bottle.
        return ScanResult(Verdict.NOT_GENUINE, code=code)
    location = geo.locate_ip(ip) if ip else None
    region_code = location.region.code if location is not None and location.region is not None else ""
    now = timezone.now()
    check_inner = code.kind == code_format.Kind.OUTER and batch.has_inner
    with prepared(
        _RECORD,
        {
            "kind": int(code.kind),
            "serial": code.serial,
            "now": now,
            "region": region_code,
            "located_by": LocatedBy.IP if region_code else "",
            "version": code.version,
            "batch": batch.pk,
            "source": str(source),
            "member": member_id,
            "ip": ip,
            "lat": latitude,
            "lon": longitude,
            "agent": user_agent[:300],
            "check_inner": check_inner,
            "group": str(group),
        },
    ) as cursor:
        row = cursor.fetchone()
    assert row is not None  # the statement always returns the summary row
    first_at, first_region_code, count, inserted, scan_id, status, reason, inner_scanned = row
    if source == ScanSource.CONSUMER and code.kind in (code_format.Kind.INNER, code_format.Kind.OUTER) and region_code:
        check_diversion(
            serial=code.serial, scan_id=scan_id, scanned_at=now, region_code=region_code, located_by=LocatedBy.IP
        )
    verdict = _STATUS_VERDICTS.get(CodeStatus(status), Verdict.GENUINE) if status is not None else Verdict.GENUINE
    return ScanResult(
        verdict=verdict,
        code=code,
        batch=batch,
        status=status,
        status_reason=reason or "",
        scan_id=scan_id,
        scanned_at=now,
        region_code=region_code,
        is_first=bool(inserted),
        scan_count=count,
        first_scanned_at=first_at,
        first_region=get_region(first_region_code) if first_region_code else None,
        inner_scanned=bool(inner_scanned),
    )


# --- the position a consumer's browser shares after the page loaded ----------------------------

PLACE_TOKEN_SALT = "jiuma.codes.scan-place"  # noqa: S105 (a signing salt, not a secret)
# The page asks for the position at once; a consumer may take a while to answer the prompt.
PLACE_TOKEN_SECONDS = 15 * 60
_POSITION_DECIMALS = 3  # ~100 m: enough for any region, no more of a person's whereabouts than that


def place_token(result: ScanResult) -> str | None:
    """A signed, expiring capability to add a position to this one scan (None if nothing was
    recorded). It names the brand, the scan (id and time: the partition) and the code."""
    if result.scan_id is None or result.scanned_at is None or result.code is None:
        return None
    code = result.code
    payload = [code.tenant_number, result.scan_id, result.scanned_at.isoformat(), int(code.kind), code.serial]
    return signing.dumps(payload, salt=PLACE_TOKEN_SALT, compress=False)


@dataclass(frozen=True)
class PlaceResult:
    region: Region | None  # what the position resolved to (None: it could not tell)


def record_scan_place(code: code_format.Code, token: str, latitude: object, longitude: object) -> PlaceResult:
    """Add the position the consumer's browser shared to the scan `token` names, once.

    The region it resolves to replaces the IP's on the scan (and on the code's first-scan
    summary, if this was the first scan), and the bottle's channel is checked against it.
    Raises JiumaError: a token that is forged, expired or for another code; a position out of
    range; a scan that already has a position (409).
    """
    try:
        payload = signing.loads(str(token), salt=PLACE_TOKEN_SALT, max_age=PLACE_TOKEN_SECONDS)
        number, scan_id, at_text, kind, serial = payload
        scanned_at = datetime.fromisoformat(at_text)
    except signing.SignatureExpired as exc:
        raise JiumaError(CodeErrorCode.PLACE_TOKEN_EXPIRED, _("页面已过期，请重新扫码。"), status=410) from exc
    except (signing.BadSignature, ValueError, TypeError) as exc:
        raise JiumaError(CodeErrorCode.INVALID_PLACE_TOKEN, _("定位请求无效。"), status=403) from exc
    if (number, kind, serial) != (code.tenant_number, int(code.kind), code.serial):
        raise JiumaError(CodeErrorCode.INVALID_PLACE_TOKEN, _("定位请求无效。"), status=403)
    if not geo.valid_position(latitude, longitude):
        raise JiumaError(
            CodeErrorCode.INVALID_POSITION,
            _("定位数据无效。"),
            fields={"latitude": str(latitude)[:40], "longitude": str(longitude)[:40]},
        )
    lat = round(float(latitude), _POSITION_DECIMALS)  # type: ignore[arg-type]
    lon = round(float(longitude), _POSITION_DECIMALS)  # type: ignore[arg-type]
    region = geo.locate_point(lat, lon)
    updates: dict[str, object] = {"latitude": lat, "longitude": lon}
    if region is not None:
        updates |= {"region_code": region.code, "located_by": LocatedBy.POSITION}
    # Once per scan, under any concurrency: the update only applies to a scan without a position.
    located = Scan.objects.filter(id=scan_id, scanned_at=scanned_at, latitude__isnull=True).update(**updates)
    if not located:
        raise Conflict(CodeErrorCode.ALREADY_LOCATED, _("该次扫码已记录位置。"))
    if region is not None:
        scan = Scan.objects.filter(id=scan_id, scanned_at=scanned_at).values("is_first", "source").first()
        if scan is not None and scan["is_first"]:
            CodeSummary.objects.filter(kind=kind, serial=serial).update(first_region_code=region.code)
        if (
            scan is not None
            and scan["source"] == ScanSource.CONSUMER
            and code.kind in (code_format.Kind.INNER, code_format.Kind.OUTER)
        ):
            check_diversion(
                serial=serial,
                scan_id=scan_id,
                scanned_at=scanned_at,
                region_code=region.code,
                located_by=LocatedBy.POSITION,
            )
    return PlaceResult(region=region)
