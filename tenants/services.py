"""Brand lifecycle use-cases for the ops team: onboard, provision, suspend, resume, export, delete.

Each function takes explicit inputs, changes state with conditional updates, records an ops audit
entry, and schedules background work on commit.
"""

from __future__ import annotations

import logging
import secrets
import time
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.contrib.auth.hashers import make_password
from django.db import IntegrityError, transaction
from django.db.models import F
from django.utils import timezone
from django.utils.translation import gettext as _
from django_tenants.utils import get_public_schema_name, schema_context, schema_exists

from tenants import code_keys, provisioning, resolution
from tenants.db import connection
from tenants.errors import Conflict, JiumaError, NotFound, TenantErrorCode
from tenants.models import (
    Domain,
    OperationKind,
    OperationStatus,
    OpsAuditEntry,
    Plan,
    PlatformStaff,
    Tenant,
    TenantOperation,
    TenantStatus,
)
from tenants.validation import (
    clean_admin_password,
    clean_admin_username,
    clean_brand_code,
    clean_domain,
    clean_phone,
    schema_name_for,
)

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class BrandCreated:
    tenant: Tenant
    operation: TenantOperation
    admin_username: str
    # Set only when the password was generated here; shown once, never stored in clear.
    generated_password: str | None


def record_ops_action(
    actor: PlatformStaff | None, action: str, tenant: Tenant | None = None, ip: str | None = None, **detail: Any
) -> None:
    OpsAuditEntry.objects.create(
        actor=actor,
        actor_name=actor.username if actor else "system",
        action=action,
        tenant=tenant,
        detail=detail,
        ip=ip,
    )


def _public() -> Any:
    return schema_context(get_public_schema_name())


def create_brand(
    *,
    code: str,
    name: str,
    plan_code: str,
    admin_username: str,
    admin_password: str | None = None,
    admin_phone: str = "",
    domain: str | None = None,
    contact_name: str = "",
    contact_phone: str = "",
    requested_by: PlatformStaff | None = None,
    ip: str | None = None,
) -> BrandCreated:
    """Register a brand and queue the provisioning of its schema. The brand is `pending` until ready."""
    code = clean_brand_code(code)
    name = (name or "").strip()
    if not name or len(name) > 100:
        raise JiumaError(
            TenantErrorCode.INVALID_CODE, _("品牌名称不能为空，且不超过 100 个字。"), fields={"name": name}
        )
    host = clean_domain(domain or f"{code}.{settings.BRAND_BASE_DOMAIN}")
    username = clean_admin_username(admin_username)
    generated = None
    if not admin_password:
        generated = secrets.token_urlsafe(12)
        admin_password = generated
    clean_admin_password(admin_password)
    admin_phone = clean_phone(admin_phone, "admin_phone")
    contact_phone = clean_phone(contact_phone, "contact_phone")

    with _public():
        plan = Plan.objects.filter(code=plan_code, is_active=True).first()
        if plan is None:
            raise JiumaError(TenantErrorCode.UNKNOWN_PLAN, _("套餐不存在或已停用。"), fields={"plan": plan_code})
        if Tenant.objects.filter(code=code).exists():
            raise Conflict(TenantErrorCode.CODE_TAKEN, _("品牌代码已被使用。"), fields={"code": code})
        if Domain.objects.filter(domain=host).exists():
            raise Conflict(TenantErrorCode.DOMAIN_TAKEN, _("域名已被其他品牌使用。"), fields={"domain": host})
        try:
            with transaction.atomic():
                tenant = Tenant.objects.create(
                    schema_name=schema_name_for(code),
                    code=code,
                    name=name,
                    plan=plan,
                    contact_name=contact_name.strip()[:50],
                    contact_phone=contact_phone,
                )
                Domain.objects.create(domain=host, tenant=tenant, is_primary=True)
                code_keys.issue_secret(tenant)
                operation = TenantOperation.objects.create(
                    tenant=tenant,
                    kind=OperationKind.PROVISION,
                    requested_by=requested_by,
                    params={
                        "admin": {
                            "username": username,
                            "password_hash": make_password(admin_password),
                            "phone": admin_phone,
                        }
                    },
                )
                record_ops_action(requested_by, "brand.create", tenant, ip, code=code, domain=host, plan=plan.code)
                transaction.on_commit(lambda: _enqueue_provisioning(operation.pk))
        except IntegrityError as exc:
            # Two requests raced past the checks above; the unique constraints decided.
            if Domain.objects.filter(domain=host).exists():
                raise Conflict(
                    TenantErrorCode.DOMAIN_TAKEN, _("域名已被其他品牌使用。"), fields={"domain": host}
                ) from exc
            raise Conflict(TenantErrorCode.CODE_TAKEN, _("品牌代码已被使用。"), fields={"code": code}) from exc
    resolution.invalidate()
    return BrandCreated(tenant, operation, username, generated)


def _enqueue_provisioning(operation_id: int) -> None:
    from tenants.tasks import provision_tenant

    # The brand is committed already; if the broker is down, the sweeper re-sends the job later
    # (requeue_stale_provisioning), so the caller still gets its answer.
    try:
        with _public():
            provision_tenant.delay(operation_id)
    except Exception:
        log.exception("could not queue provisioning job %s; the sweeper will retry", operation_id)


def provision(operation_id: int) -> TenantOperation:
    """Build the brand's schema and first admin, then mark the brand ready. Safe to run again."""
    with _public():
        now = timezone.now()
        claimed = TenantOperation.objects.filter(
            pk=operation_id, kind=OperationKind.PROVISION, status=OperationStatus.QUEUED
        ).update(status=OperationStatus.RUNNING, started_at=now, attempts=F("attempts") + 1)
        operation = TenantOperation.objects.select_related("tenant").get(pk=operation_id)
        if not claimed:
            return operation  # already done or being done by another worker
        tenant = operation.tenant
        started = time.perf_counter()
        try:
            method = provisioning.build_schema(tenant.schema_name)
            with schema_context(tenant.schema_name):
                provisioning.create_brand_defaults(
                    brand_name=tenant.name,
                    admin=operation.params["admin"],
                )
        except Exception as exc:
            log.exception("provisioning of %s failed", tenant.schema_name)
            connection.set_schema_to_public()
            TenantOperation.objects.filter(pk=operation_id).update(
                status=OperationStatus.FAILED,
                error=f"{type(exc).__name__}: {exc}"[:2000],
                finished_at=timezone.now(),
            )
            Tenant.objects.filter(pk=tenant.pk, status=TenantStatus.PENDING).update(
                status=TenantStatus.FAILED, status_reason=_("开通失败，请重试"), status_changed_at=timezone.now()
            )
            resolution.invalidate()
            operation.refresh_from_db()
            return operation
        elapsed = time.perf_counter() - started
        finished = timezone.now()
        params = dict(operation.params)
        params["admin"] = {k: v for k, v in params.get("admin", {}).items() if k != "password_hash"}
        with transaction.atomic():
            TenantOperation.objects.filter(pk=operation_id).update(
                status=OperationStatus.SUCCEEDED,
                finished_at=finished,
                params=params,
                result={"method": method, "seconds": round(elapsed, 3)},
            )
            Tenant.objects.filter(pk=tenant.pk, status=TenantStatus.PENDING).update(
                status=TenantStatus.READY, ready_at=finished, status_changed_at=finished, status_reason=""
            )
        resolution.invalidate()
        operation.refresh_from_db()
        return operation


def retry_provisioning(
    tenant: Tenant, *, requested_by: PlatformStaff | None = None, ip: str | None = None
) -> TenantOperation:
    """Queue provisioning again for a brand whose provisioning failed."""
    with _public():
        if tenant.status != TenantStatus.FAILED:
            raise Conflict(TenantErrorCode.WRONG_STATUS, _("只有开通失败的品牌可以重试开通。"))
        last = tenant.operations.filter(kind=OperationKind.PROVISION).order_by("-created_at").first()
        if last is None:
            raise NotFound(TenantErrorCode.NOT_FOUND, _("没有找到开通记录。"))
        with transaction.atomic():
            updated = TenantOperation.objects.filter(pk=last.pk, status=OperationStatus.FAILED).update(
                status=OperationStatus.QUEUED, error="", started_at=None, finished_at=None
            )
            if not updated:
                raise Conflict(TenantErrorCode.OPERATION_RUNNING, _("开通任务正在进行中。"))
            Tenant.objects.filter(pk=tenant.pk, status=TenantStatus.FAILED).update(
                status=TenantStatus.PENDING, status_reason="", status_changed_at=timezone.now()
            )
            record_ops_action(requested_by, "brand.retry_provisioning", tenant, ip)
            transaction.on_commit(lambda: _enqueue_provisioning(last.pk))
        resolution.invalidate()
        last.refresh_from_db()
        return last


def requeue_stale_provisioning() -> list[int]:
    """Sweeper: a provisioning job whose worker died is queued again; a lost message is re-sent."""
    stale_before = timezone.now() - timedelta(seconds=settings.TENANT_PROVISIONING_STALE_SECONDS)
    requeued: list[int] = []
    with _public():
        stuck = TenantOperation.objects.filter(kind=OperationKind.PROVISION).filter(
            status__in=[OperationStatus.RUNNING, OperationStatus.QUEUED]
        )
        for op in stuck:
            since = op.started_at or op.created_at
            if since > stale_before:
                continue
            if op.attempts >= 3:
                TenantOperation.objects.filter(pk=op.pk, status=op.status).update(
                    status=OperationStatus.FAILED, error="gave up after 3 attempts", finished_at=timezone.now()
                )
                Tenant.objects.filter(pk=op.tenant_id, status=TenantStatus.PENDING).update(
                    status=TenantStatus.FAILED, status_changed_at=timezone.now()
                )
                continue
            if TenantOperation.objects.filter(pk=op.pk, status=op.status).update(
                status=OperationStatus.QUEUED, started_at=None, created_at=timezone.now()
            ):
                _enqueue_provisioning(op.pk)
                requeued.append(op.pk)
    if requeued:
        resolution.invalidate()
    return requeued


def _transition(
    tenant: Tenant,
    *,
    from_status: str,
    to_status: str,
    reason: str,
    actor: PlatformStaff | None,
    action: str,
    ip: str | None,
    error: str,
) -> Tenant:
    with _public(), transaction.atomic():
        updated = Tenant.objects.filter(pk=tenant.pk, status=from_status).update(
            status=to_status, status_reason=reason[:200], status_changed_at=timezone.now()
        )
        if not updated:
            raise Conflict(TenantErrorCode.WRONG_STATUS, error)
        record_ops_action(actor, action, tenant, ip, reason=reason)
    resolution.invalidate()
    tenant.refresh_from_db()
    return tenant


def suspend_brand(
    tenant: Tenant, *, reason: str = "", actor: PlatformStaff | None = None, ip: str | None = None
) -> Tenant:
    return _transition(
        tenant,
        from_status=TenantStatus.READY,
        to_status=TenantStatus.SUSPENDED,
        reason=reason,
        actor=actor,
        action="brand.suspend",
        ip=ip,
        error=_("只有正常状态的品牌可以暂停。"),
    )


def resume_brand(tenant: Tenant, *, actor: PlatformStaff | None = None, ip: str | None = None) -> Tenant:
    return _transition(
        tenant,
        from_status=TenantStatus.SUSPENDED,
        to_status=TenantStatus.READY,
        reason="",
        actor=actor,
        action="brand.resume",
        ip=ip,
        error=_("只有已暂停的品牌可以恢复。"),
    )


def add_domain(
    tenant: Tenant,
    raw_domain: str,
    *,
    make_primary: bool = False,
    actor: PlatformStaff | None = None,
    ip: str | None = None,
) -> Domain:
    host = clean_domain(raw_domain)
    with _public():
        try:
            with transaction.atomic():
                if make_primary:
                    Domain.objects.filter(tenant=tenant, is_primary=True).update(is_primary=False)
                domain = Domain.objects.create(domain=host, tenant=tenant, is_primary=make_primary)
                record_ops_action(actor, "brand.add_domain", tenant, ip, domain=host)
        except IntegrityError as exc:
            raise Conflict(TenantErrorCode.DOMAIN_TAKEN, _("域名已被其他品牌使用。"), fields={"domain": host}) from exc
    resolution.invalidate()
    return domain


# --- deletion: export first, then a confirmed second step ----------------------------------------


def request_export(
    tenant: Tenant, *, actor: PlatformStaff | None = None, ip: str | None = None, for_deletion: bool = False
) -> TenantOperation:
    """Queue a full data export of the brand (its schema's rows and uploaded files)."""
    with _public():
        if tenant.status not in (TenantStatus.READY, TenantStatus.SUSPENDED):
            raise Conflict(TenantErrorCode.WRONG_STATUS, _("该品牌当前状态不能导出数据。"))
        try:
            with transaction.atomic():
                operation = TenantOperation.objects.create(
                    tenant=tenant,
                    kind=OperationKind.EXPORT,
                    requested_by=actor,
                    params={"for_deletion": for_deletion},
                )
                record_ops_action(actor, "brand.export", tenant, ip, for_deletion=for_deletion)
                transaction.on_commit(lambda: _enqueue_export(tenant.schema_name, operation.pk))
        except IntegrityError as exc:
            raise Conflict(TenantErrorCode.OPERATION_RUNNING, _("已有导出任务正在进行中。")) from exc
    return operation


def _enqueue_export(schema_name: str, operation_id: int) -> None:
    from tenants.tasks import export_tenant_data

    # Sent from the brand's schema: tenant-schemas-celery runs it there.
    try:
        with schema_context(schema_name):
            export_tenant_data.delay(operation_id)
    except Exception:
        log.exception("could not queue export job %s", operation_id)
        with _public():
            TenantOperation.objects.filter(pk=operation_id, status=OperationStatus.QUEUED).update(
                status=OperationStatus.FAILED, error="broker unavailable", finished_at=timezone.now()
            )


def request_deletion(tenant: Tenant, *, actor: PlatformStaff | None = None, ip: str | None = None) -> TenantOperation:
    """Step one of deleting a brand: suspend it (no more writes) and export all its data."""
    if tenant.status == TenantStatus.READY:
        suspend_brand(tenant, reason=_("申请删除"), actor=actor, ip=ip)
    elif tenant.status != TenantStatus.SUSPENDED:
        raise Conflict(TenantErrorCode.WRONG_STATUS, _("该品牌当前状态不能删除。"))
    return request_export(tenant, actor=actor, ip=ip, for_deletion=True)


def confirm_deletion(
    tenant: Tenant, *, export_id: int, confirm_code: str, actor: PlatformStaff | None = None, ip: str | None = None
) -> Tenant:
    """Step two: with a finished export of this brand and its code typed again, drop the schema for good."""
    with _public():
        export = TenantOperation.objects.filter(
            pk=export_id, tenant=tenant, kind=OperationKind.EXPORT, params__for_deletion=True
        ).first()
        if export is None or export.status != OperationStatus.SUCCEEDED or export.finished_at is None:
            raise Conflict(TenantErrorCode.EXPORT_REQUIRED, _("请先完成该品牌的数据导出，再确认删除。"))
        window = timedelta(hours=settings.BRAND_DELETION_CONFIRM_WINDOW_HOURS)
        if timezone.now() - export.finished_at > window:
            raise Conflict(TenantErrorCode.CONFIRMATION_EXPIRED, _("数据导出已超过有效期，请重新申请删除。"))
        if confirm_code != tenant.code:
            raise JiumaError(TenantErrorCode.CONFIRMATION_MISMATCH, _("确认代码与品牌代码不一致。"))
        with transaction.atomic():
            claimed = Tenant.objects.filter(pk=tenant.pk, status=TenantStatus.SUSPENDED).update(
                status=TenantStatus.DELETED, status_reason=_("已删除"), status_changed_at=timezone.now()
            )
            if not claimed:
                raise Conflict(TenantErrorCode.WRONG_STATUS, _("只有已暂停并完成导出的品牌可以删除。"))
            Domain.objects.filter(tenant=tenant).delete()
            TenantOperation.objects.create(
                tenant=tenant,
                kind=OperationKind.DELETE,
                requested_by=actor,
                status=OperationStatus.SUCCEEDED,
                params={"export_id": export.pk},
                started_at=timezone.now(),
                finished_at=timezone.now(),
                result={"export": export.result},
            )
            record_ops_action(actor, "brand.delete", tenant, ip, export_id=export.pk)
            if schema_exists(tenant.schema_name):
                provisioning.drop_schema(tenant.schema_name)
    resolution.invalidate()
    tenant.refresh_from_db()
    return tenant


def get_brand(code: str) -> Tenant:
    with _public():
        tenant = Tenant.objects.select_related("plan").filter(code=code).first()
    if tenant is None:
        raise NotFound(TenantErrorCode.NOT_FOUND, _("品牌不存在。"), fields={"code": code})
    return tenant
