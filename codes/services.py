"""Code batches: creating them (serial ranges, no row per code), generating the printer package,
revealing its password once, downloading it a limited number of times, binding to a SKU.

Every function runs in the brand's schema (the request's or the task's).
"""

from __future__ import annotations

import json
import math
import os
import secrets
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

from django.conf import settings
from django.core.files.storage import default_storage
from django.db import transaction
from django.db.models import F, Sum
from django.utils import timezone
from django.utils.translation import gettext as _

from codes import format as code_format
from codes import printing, zipcrypt
from codes.errors import CodeErrorCode
from codes.keyring import keyring
from codes.models import Batch, BatchStatus, CodeStatus, SerialCounter, SerialGroup, StatusRule
from commerce.models import Sku
from tenants import keys
from tenants.brand import audit
from tenants.db import connection
from tenants.errors import Conflict, JiumaError, NotFound

MAX_BOTTLES_PER_BATCH = 50_000_000
MAX_PER_PARENT = 100
_PASSWORD_ALPHABET = "ABCDEFGHJKMNPQRSTUVWXYZabcdefghijkmnpqrstuvwxyz23456789"  # noqa: S105 (no look-alikes)


def current_tenant() -> Any:
    tenant = getattr(connection, "tenant", None)
    if tenant is None or getattr(tenant, "number", None) is None:
        raise JiumaError(CodeErrorCode.NO_BRAND, _("请在品牌站点内操作。"))
    return tenant


def url_prefix() -> str:
    """What every scan URL starts with: the short code host in QR alphanumeric characters."""
    return str(settings.CODE_URL_PREFIX)


@dataclass(frozen=True)
class BatchRequest:
    bottles: int = 0
    has_inner: bool = True
    has_outer: bool = True
    bottles_per_case: int = 0  # 0: no case codes
    cases_per_pallet: int = 0  # 0: no pallet codes
    sku_id: int | None = None
    production_date: date | None = None
    production_line: str = ""
    note: str = ""
    max_downloads: int = 3


def _check_request(req: BatchRequest) -> None:
    fields: dict[str, str] = {}
    if not 0 < req.bottles <= MAX_BOTTLES_PER_BATCH:
        fields["bottles"] = _("瓶数须在 1 到 %(max)s 之间。") % {"max": f"{MAX_BOTTLES_PER_BATCH:,}"}
    if not (req.has_inner or req.has_outer):
        fields["has_inner"] = _("至少选择盖内码或盖外码之一。")
    if not 0 <= req.bottles_per_case <= MAX_PER_PARENT:
        fields["bottles_per_case"] = _("每箱瓶数须在 0 到 %(max)s 之间。") % {"max": MAX_PER_PARENT}
    if not 0 <= req.cases_per_pallet <= MAX_PER_PARENT:
        fields["cases_per_pallet"] = _("每托盘箱数须在 0 到 %(max)s 之间。") % {"max": MAX_PER_PARENT}
    if req.cases_per_pallet and not req.bottles_per_case:
        fields["cases_per_pallet"] = _("生成托盘码须同时生成箱码。")
    if not 1 <= req.max_downloads <= 10:
        fields["max_downloads"] = _("允许下载次数须在 1 到 10 之间。")
    if len(req.production_line) > 50 or len(req.note) > 200:
        fields["note"] = _("生产线不超过 50 字，备注不超过 200 字。")
    if fields:
        raise JiumaError(CodeErrorCode.INVALID_BATCH, _("批次参数有误。"), fields=fields)


def _take_serials(group: SerialGroup, count: int) -> int | None:
    """The first of `count` fresh serials of `group` (None when count is 0). Caller holds a transaction."""
    if count == 0:
        return None
    SerialCounter.objects.get_or_create(group=group)
    updated = SerialCounter.objects.filter(group=group, next_serial__lte=code_format.MAX_SERIAL + 1 - count).update(
        next_serial=F("next_serial") + count
    )
    if not updated:
        raise Conflict(CodeErrorCode.SERIALS_EXHAUSTED, _("码号空间不足，请联系平台。"))
    next_serial = SerialCounter.objects.values_list("next_serial", flat=True).get(group=group)
    return int(next_serial) - count


def _month_start() -> Any:
    local = timezone.localtime()
    return local.replace(day=1, hour=0, minute=0, second=0, microsecond=0)


def create_batch(req: BatchRequest, *, actor: Any = None) -> Batch:
    """Reserve the batch's serial ranges and queue the generation of its printer package."""
    _check_request(req)
    tenant = current_tenant()
    sku = None
    if req.sku_id is not None:
        sku = Sku.objects.filter(pk=req.sku_id, is_active=True).first()
        if sku is None:
            raise JiumaError(CodeErrorCode.INVALID_BATCH, _("SKU 不存在或已停用。"), fields={"sku": req.sku_id})
    cases = math.ceil(req.bottles / req.bottles_per_case) if req.bottles_per_case else 0
    pallets = math.ceil(cases / req.cases_per_pallet) if req.cases_per_pallet else 0
    codes = req.bottles * (int(req.has_inner) + int(req.has_outer)) + cases + pallets
    key = keyring.current_key(tenant.number)

    with transaction.atomic():
        # The bottle counter's row lock serialises batch creation: quota, numbering and serials.
        SerialCounter.objects.get_or_create(group=SerialGroup.BOTTLE)
        SerialCounter.objects.select_for_update().get(group=SerialGroup.BOTTLE)
        used = Batch.objects.filter(created_at__gte=_month_start()).aggregate(
            bottles=Sum("bottles"), cases=Sum("cases"), pallets=Sum("pallets")
        )
        month_codes = (used["bottles"] or 0) * 2 + (used["cases"] or 0) + (used["pallets"] or 0)
        quota = tenant.plan.max_codes_per_month
        if month_codes + codes > quota:
            raise JiumaError(
                CodeErrorCode.QUOTA_EXCEEDED,
                _("本月赋码数量将超过套餐上限（%(quota)s 个），请联系平台升级套餐。") % {"quota": f"{quota:,}"},
                status=403,
            )
        day = timezone.localdate()
        prefix = f"B{day:%Y%m%d}"
        sequence = Batch.objects.filter(number__startswith=prefix).count() + 1
        batch = Batch.objects.create(
            number=f"{prefix}{sequence:04d}",
            key_version=key.version,
            has_inner=req.has_inner,
            has_outer=req.has_outer,
            bottles=req.bottles,
            first_bottle_serial=_take_serials(SerialGroup.BOTTLE, req.bottles),
            bottles_per_case=req.bottles_per_case,
            cases=cases,
            first_case_serial=_take_serials(SerialGroup.CASE, cases),
            cases_per_pallet=req.cases_per_pallet,
            pallets=pallets,
            first_pallet_serial=_take_serials(SerialGroup.PALLET, pallets),
            sku=sku,
            bound_at=timezone.now() if sku else None,
            production_date=req.production_date,
            production_line=req.production_line.strip(),
            note=req.note.strip(),
            max_downloads=req.max_downloads,
            created_by=actor if getattr(actor, "pk", None) else None,
        )
        audit.record("create", obj=batch, after=audit.snapshot(batch), actor=actor)
        transaction.on_commit(lambda: _enqueue_generation(batch.pk))
    return batch


def _enqueue_generation(batch_id: int) -> None:
    from codes.tasks import generate_batch_package

    try:
        generate_batch_package.delay(batch_id)
    except Exception as exc:  # the broker is down: the batch says so, a retry can requeue it
        Batch.objects.filter(pk=batch_id, status=BatchStatus.GENERATING).update(
            status=BatchStatus.FAILED, error=_("任务队列不可用：%(error)s") % {"error": type(exc).__name__}
        )


def retry_generation(batch: Batch, *, actor: Any = None) -> Batch:
    if not Batch.objects.filter(pk=batch.pk, status=BatchStatus.FAILED).update(
        status=BatchStatus.GENERATING, progress=0, error=""
    ):
        raise Conflict(CodeErrorCode.WRONG_STATUS, _("只有生成失败的批次可以重试。"))
    audit.record("action", obj=batch, detail="retry generation", actor=actor)
    transaction.on_commit(lambda: _enqueue_generation(batch.pk))
    batch.refresh_from_db()
    return batch


# --- the printer package ---------------------------------------------------------------------


def _password_context(batch: Batch) -> bytes:
    return b"jiuma-batch-package|%s|%s" % (connection.schema_name.encode(), batch.number.encode())


def package_name(batch: Batch) -> str:
    return f"codes/batches/{batch.number}.zip"


def _files_of(batch: Batch) -> list[printing.CodeFile]:
    files: list[printing.CodeFile] = []
    bottles = batch.serial_range(SerialGroup.BOTTLE)
    cases = batch.serial_range(SerialGroup.CASE)
    pallets = batch.serial_range(SerialGroup.PALLET)
    if batch.bottles and batch.has_inner:
        files.append(printing.CodeFile("inner.csv", code_format.Kind.INNER, bottles.start, len(bottles)))
    if batch.bottles and batch.has_outer:
        files.append(printing.CodeFile("outer.csv", code_format.Kind.OUTER, bottles.start, len(bottles)))
    if batch.cases:
        children = printing.Children(bottles.start, batch.bottles_per_case)
        files.append(printing.CodeFile("case.csv", code_format.Kind.CASE, cases.start, len(cases), children))
    if batch.pallets:
        children = printing.Children(cases.start, batch.cases_per_pallet)
        files.append(printing.CodeFile("pallet.csv", code_format.Kind.PALLET, pallets.start, len(pallets), children))
    return files


def generate_package(batch_id: int, *, on_progress: Callable[[int], None] | None = None) -> Batch:
    """Write the batch's encrypted printer package (zip, WinZip AES-256) and mark it ready.

    The password is random, stored only wrapped under the master key, and shown once (reveal_password).
    One pass: the CSV lines are built, hashed for the manifest, encrypted, authenticated, hashed for
    the batch row and written by overlapping threads (codes.printing, codes.zipcrypt).
    """
    batch = Batch.objects.get(pk=batch_id)
    if batch.status != BatchStatus.GENERATING:
        return batch
    tenant = current_tenant()
    key = keyring.key(tenant.number, batch.key_version)
    if key is None:
        raise RuntimeError(f"key version {batch.key_version} of brand {tenant.number} is unavailable")
    password = "".join(secrets.choice(_PASSWORD_ALPHABET) for _ in range(20))
    name = package_name(batch)
    target = Path(default_storage.path(name))
    target.parent.mkdir(parents=True, exist_ok=True)
    total = max(1, batch.code_count)
    last_reported = -1

    def progress(done: int) -> None:
        nonlocal last_reported
        percent = min(99, done * 100 // total)
        if percent >= last_reported + 5:
            last_reported = percent
            Batch.objects.filter(pk=batch.pk).update(progress=percent)
            if on_progress is not None:
                on_progress(percent)

    fd, tmp_name = tempfile.mkstemp(dir=target.parent, suffix=".part")
    os.close(fd)
    try:
        with zipcrypt.AesZipWriter(tmp_name, password.encode()) as archive:
            written = printing.write_code_files(archive, _files_of(batch), key, url_prefix(), on_progress=progress)
            manifest = {
                "batch": batch.number,
                "brand": tenant.name,
                "key_version": batch.key_version,
                "url_prefix": url_prefix(),
                "sku": batch.sku.code if batch.sku else None,
                "production_date": batch.production_date.isoformat() if batch.production_date else None,
                "production_line": batch.production_line,
                "created_at": timezone.localtime(batch.created_at).isoformat(),
                "files": [
                    {"name": f.name, "kind": f.kind.letter, "codes": f.codes, "bytes": f.bytes, "sha256": f.sha256}
                    for f in written
                ],
                "codes": sum(f.codes for f in written),
            }
            archive.writestr("manifest.json", json.dumps(manifest, ensure_ascii=False, indent=2).encode())
        digest = archive.sha256  # computed while writing: the file is not read again
        os.replace(tmp_name, target)
    except BaseException:
        Path(tmp_name).unlink(missing_ok=True)
        raise
    master_key_id, wrapped = keys.master_key_ring().wrap(password.encode(), _password_context(batch))
    Batch.objects.filter(pk=batch.pk).update(
        status=BatchStatus.READY,
        progress=100,
        package_path=name,
        package_sha256=digest,
        package_bytes=target.stat().st_size,
        password_key_id=master_key_id,
        password_wrapped=wrapped,
        ready_at=timezone.now(),
    )
    batch.refresh_from_db()
    return batch


def mark_failed(batch_id: int, error: str) -> None:
    Batch.objects.filter(pk=batch_id, status=BatchStatus.GENERATING).update(
        status=BatchStatus.FAILED, error=error[:300]
    )


def reveal_password(batch: Batch, *, actor: Any = None) -> str:
    """The package password, once: it is erased as it is shown (a lost password means a new batch)."""
    with transaction.atomic():
        locked = Batch.objects.select_for_update().get(pk=batch.pk)
        if locked.status != BatchStatus.READY:
            raise Conflict(CodeErrorCode.WRONG_STATUS, _("印刷包尚未生成。"))
        if not locked.password_wrapped:
            raise Conflict(CodeErrorCode.PASSWORD_SHOWN, _("解压密码已显示过，不能再次查看。"))
        password = keys.master_key_ring().unwrap(
            locked.password_key_id, bytes(locked.password_wrapped), _password_context(locked)
        )
        Batch.objects.filter(pk=locked.pk).update(password_wrapped=b"", password_key_id="")
        audit.record("action", obj=locked, detail="reveal package password", actor=actor)
    return password.decode()


def open_download(batch: Batch, *, actor: Any = None) -> Any:
    """Count one download (refused past the batch's limit, under any concurrency) and open the file.

    Every download is in the audit log with who, when and from where.
    """
    with transaction.atomic():
        counted = Batch.objects.filter(pk=batch.pk, status=BatchStatus.READY, downloads__lt=F("max_downloads")).update(
            downloads=F("downloads") + 1
        )
        current = Batch.objects.get(pk=batch.pk)
        if not counted:
            if current.status != BatchStatus.READY:
                raise Conflict(CodeErrorCode.WRONG_STATUS, _("印刷包尚未生成。"))
            raise Conflict(
                CodeErrorCode.DOWNLOADS_EXHAUSTED,
                _("该批次已达到允许的下载次数（%(count)s 次）。") % {"count": current.max_downloads},
            )
        audit.record("download", obj=current, detail=f"printer package, download {current.downloads}", actor=actor)
    return default_storage.open(current.package_path, "rb")


def bind_sku(batch: Batch, sku: Sku, *, actor: Any = None) -> Batch:
    """空码赋值: give a batch generated blank its product."""
    with transaction.atomic():
        if not Batch.objects.filter(pk=batch.pk, sku__isnull=True).update(sku=sku, bound_at=timezone.now()):
            raise Conflict(CodeErrorCode.ALREADY_BOUND, _("该批次已绑定商品，不能重复赋值。"))
        audit.record("update", obj=batch, before={"sku": None}, after={"sku": sku.code}, actor=actor)
    batch.refresh_from_db()
    return batch


# --- status -------------------------------------------------------------------------------------


def set_status(
    group: SerialGroup,
    first_serial: int,
    last_serial: int,
    status: CodeStatus,
    *,
    reason: str = "",
    batch: Batch | None = None,
    actor: Any = None,
) -> StatusRule:
    """Activate, freeze, void or blacklist a serial range (one code: first == last)."""
    if last_serial < first_serial or first_serial < 0 or last_serial > code_format.MAX_SERIAL:
        raise JiumaError(CodeErrorCode.INVALID_RANGE, _("码段范围无效。"))
    if status == CodeStatus.BLACKLISTED and not reason.strip():
        raise JiumaError(CodeErrorCode.INVALID_RANGE, _("加入黑名单须填写原因。"), fields={"reason": ""})
    if batch_of(group, first_serial) is None or batch_of(group, last_serial) is None:
        raise NotFound(CodeErrorCode.NOT_ISSUED, _("该码段尚未发放。"))
    rule = StatusRule.objects.create(
        group=group,
        first_serial=first_serial,
        last_serial=last_serial,
        status=status,
        reason=reason.strip()[:200],
        batch=batch,
        created_by=actor if getattr(actor, "pk", None) else None,
    )
    audit.record("create", obj=rule, after=audit.snapshot(rule), actor=actor)
    return rule


def _first_field(group: SerialGroup) -> str:
    return {
        SerialGroup.BOTTLE: "first_bottle_serial",
        SerialGroup.CASE: "first_case_serial",
        SerialGroup.PALLET: "first_pallet_serial",
    }[group]


def set_batch_status(batch: Batch, status: CodeStatus, *, reason: str = "", actor: Any = None) -> list[StatusRule]:
    """The same status for every code of the batch (bottles, cases and pallets)."""
    rules = []
    with transaction.atomic():
        for group in SerialGroup:
            serials = batch.serial_range(group)
            if len(serials):
                rules.append(
                    set_status(group, serials.start, serials.stop - 1, status, reason=reason, batch=batch, actor=actor)
                )
    return rules


def rule_of(group: SerialGroup, serial: int) -> StatusRule | None:
    """The newest status rule covering a code, None when the code was never given a status."""
    return (
        StatusRule.objects.filter(group=group, first_serial__lte=serial, last_serial__gte=serial)
        .only("status", "reason")
        .order_by("-id")
        .first()
    )


def status_of(group: SerialGroup, serial: int) -> str | None:
    """The status of one code: that of the newest rule covering it, None when never activated."""
    rule = rule_of(group, serial)
    return rule.status if rule is not None else None


def batch_of(group: SerialGroup, serial: int) -> Batch | None:
    field = _first_field(group)
    count_field = {SerialGroup.BOTTLE: "bottles", SerialGroup.CASE: "cases", SerialGroup.PALLET: "pallets"}[group]
    return (
        Batch.objects.filter(**{f"{field}__lte": serial})
        .filter(**{f"{field}__gt": serial - F(count_field)})
        .select_related("sku__product")
        .first()
    )


# Batches of each brand, kept in each process for the scan path (batch of a serial with no query;
# also the packing lookups of codes.association.parent_of, which need only immutable serial ranges).
# A serial no cached batch covers is looked up in the database (and the cache refreshed), so a new
# batch is never missed; a batch's details (e.g. a SKU bound later) may lag by BATCH_CACHE_SECONDS.
BATCH_CACHE_SECONDS = 30.0
_batch_cache: dict[str, tuple[float, list[Batch]]] = {}
_batch_cache_lock = threading.Lock()
_BATCH_CACHE_SIZE = 256


def cached_batch_of(group: SerialGroup, serial: int) -> Batch | None:
    schema = connection.schema_name
    now = time.monotonic()
    entry = _batch_cache.get(schema)
    batches = entry[1] if entry is not None and entry[0] > now else []
    for batch in batches:
        serials = batch.serial_range(group)
        if serials.start <= serial < serials.stop:
            return batch
    found = batch_of(group, serial)
    if found is not None:
        with _batch_cache_lock:
            kept = [batch for batch in batches if batch.pk != found.pk][-(_BATCH_CACHE_SIZE - 1) :]
            expires = entry[0] if entry is not None and entry[0] > now else now + BATCH_CACHE_SECONDS
            _batch_cache[schema] = (expires, [*kept, found])
    return found


def clear_batch_cache() -> None:
    with _batch_cache_lock:
        _batch_cache.clear()


def set_code_status(text: str, status: CodeStatus, *, reason: str = "", actor: Any = None) -> StatusRule:
    """Freeze, void or blacklist one code given as printed (code or scan URL)."""
    from codes.keyring import check

    code = check(code_format.from_scan(text), tenant_number=current_tenant().number)
    if code is None:
        raise JiumaError(CodeErrorCode.INVALID_RANGE, _("不是本品牌的有效码。"), fields={"code": text[:60]})
    group = SerialGroup.of(code.kind)
    return set_status(group, code.serial, code.serial, status, reason=reason, actor=actor)
