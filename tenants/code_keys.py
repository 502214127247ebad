"""Issuing, rotating and reading the brands' code secrets (envelope-encrypted, tenants.keys).

The first version is issued with the brand (create_brand). Rotation adds a version; new batches
use the newest version not retired, and every version keeps verifying the codes made with it.
"""

from __future__ import annotations

from dataclasses import dataclass

from django.db import IntegrityError, transaction
from django.utils import timezone
from django.utils.translation import gettext as _
from django_tenants.utils import get_public_schema_name, schema_context

from tenants import keys
from tenants.errors import Conflict, NotFound, TenantErrorCode
from tenants.models import CodeSecret, PlatformStaff, Tenant

MAX_VERSION = 15


@dataclass(frozen=True)
class Secret:
    """An unwrapped code secret: handle with care, never log or store it."""

    tenant_number: int
    version: int
    secret: bytes
    retired: bool


def _wrap(tenant: Tenant, version: int, secret: bytes) -> tuple[str, bytes]:
    return keys.master_key_ring().wrap(secret, keys.secret_context(tenant.number, version))


def issue_secret(tenant: Tenant) -> CodeSecret:
    """Add the brand's next key version (the first at onboarding). Runs in any schema."""
    with schema_context(get_public_schema_name()), transaction.atomic():
        # Lock the brand row: two rotations at once must not pick the same version.
        locked = Tenant.objects.select_for_update().get(pk=tenant.pk)
        latest = CodeSecret.objects.filter(tenant=locked).order_by("-version").values_list("version", flat=True).first()
        version = (latest or 0) + 1
        if version > MAX_VERSION:
            raise Conflict(
                TenantErrorCode.KEY_VERSIONS_EXHAUSTED,
                _("赋码密钥版本已用尽（最多 15 个），请联系平台处理。"),
            )
        master_key_id, wrapped = _wrap(locked, version, keys.new_secret())
        try:
            with transaction.atomic():
                return CodeSecret.objects.create(
                    tenant=locked, version=version, master_key_id=master_key_id, wrapped=wrapped
                )
        except IntegrityError as exc:  # pragma: no cover - the row lock above prevents it
            raise Conflict(TenantErrorCode.OPERATION_RUNNING, _("密钥正在轮换，请稍后再试。")) from exc


def rotate(tenant: Tenant, *, actor: PlatformStaff | None = None, ip: str | None = None) -> CodeSecret:
    """A new key version for new batches; older versions stay valid for the codes they made."""
    from tenants.services import record_ops_action

    with schema_context(get_public_schema_name()), transaction.atomic():
        created = issue_secret(tenant)
        record_ops_action(actor, "brand.rotate_code_key", tenant, ip, version=created.version)
    return created


def retire(tenant: Tenant, version: int, *, actor: PlatformStaff | None = None, ip: str | None = None) -> None:
    """Stop using `version` for new batches (its codes keep verifying). The newest live version stays."""
    from tenants.services import record_ops_action

    with schema_context(get_public_schema_name()), transaction.atomic():
        secrets = list(CodeSecret.objects.select_for_update().filter(tenant=tenant, retired_at__isnull=True))
        target = next((row for row in secrets if row.version == version), None)
        if target is None:
            raise NotFound(TenantErrorCode.NOT_FOUND, _("该密钥版本不存在或已停用。"))
        if len(secrets) == 1:
            raise Conflict(TenantErrorCode.WRONG_STATUS, _("不能停用品牌唯一在用的密钥版本，请先轮换。"))
        target.retired_at = timezone.now()
        target.save(update_fields=["retired_at"])
        record_ops_action(actor, "brand.retire_code_key", tenant, ip, version=version)


def rewrap_all() -> int:
    """Re-wrap every secret under the current master key (after a master-key rotation)."""
    ring = keys.master_key_ring()
    current = ring.current_key_id()
    count = 0
    with schema_context(get_public_schema_name()):
        stale = CodeSecret.objects.exclude(master_key_id=current).select_related("tenant")
        for row in stale.iterator():
            context = keys.secret_context(row.tenant.number, row.version)
            secret = ring.unwrap(row.master_key_id, bytes(row.wrapped), context)
            row.master_key_id, row.wrapped = ring.wrap(secret, context)
            row.save(update_fields=["master_key_id", "wrapped"])
            count += 1
    return count


def load_secrets(tenant_number: int) -> list[Secret]:
    """Every key version of the brand with this number, unwrapped (for the per-process keyring).

    Brands whose first secret is missing (created before code keys existed) get one here.
    """
    with schema_context(get_public_schema_name()):
        tenant = Tenant.objects.filter(number=tenant_number).first()
        if tenant is None:
            return []
        rows = list(CodeSecret.objects.filter(tenant=tenant).order_by("version"))
        if not rows:
            rows = [issue_secret(tenant)]
    ring = keys.master_key_ring()
    return [
        Secret(
            tenant_number=tenant_number,
            version=row.version,
            secret=ring.unwrap(row.master_key_id, bytes(row.wrapped), keys.secret_context(tenant_number, row.version)),
            retired=row.retired_at is not None,
        )
        for row in rows
    ]
