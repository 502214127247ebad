"""The public schema: brands (tenants), their domains and plans, platform staff and platform jobs."""

from __future__ import annotations

import hashlib
import secrets
from typing import Any, ClassVar

from django.contrib.auth.hashers import check_password, make_password
from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _
from django_tenants.models import DomainMixin, TenantMixin


class Plan(models.Model):
    """A commercial plan with the quotas a brand on it may use."""

    code = models.SlugField(_("套餐代码"), max_length=32, unique=True)
    name = models.CharField(_("套餐名称"), max_length=64)
    max_staff = models.PositiveIntegerField(_("员工账号上限"), default=20)
    max_stores = models.PositiveIntegerField(_("门店上限"), default=500)
    max_codes_per_month = models.PositiveBigIntegerField(_("每月赋码上限"), default=10_000_000)
    max_active_campaigns = models.PositiveIntegerField(_("同时进行的活动上限"), default=10)
    annual_fee_fen = models.PositiveBigIntegerField(_("年费（分）"), default=0)
    is_active = models.BooleanField(_("可选用"), default=True)

    class Meta:
        verbose_name = _("套餐")
        verbose_name_plural = _("套餐")

    def __str__(self) -> str:
        return f"{self.name} ({self.code})"


class NextVal(models.Func):
    """nextval() of a PostgreSQL sequence, as a database default."""

    function = "nextval"
    output_field = models.IntegerField()

    def __init__(self, sequence: str) -> None:
        super().__init__(models.Value(sequence))


# Brand numbers are carried in clear in every bottle code (16 bits, codes.format), so they are
# small, never reused and allocated by the database.
TENANT_NUMBER_SEQUENCE = "tenants_tenant_number_seq"
MAX_TENANT_NUMBER = 65535


class TenantStatus(models.TextChoices):
    PENDING = "pending", _("开通中")
    READY = "ready", _("正常")
    SUSPENDED = "suspended", _("已暂停")
    FAILED = "failed", _("开通失败")
    DELETED = "deleted", _("已删除")


class Tenant(TenantMixin):
    """A liquor brand. Its business data lives in its own PostgreSQL schema (schema_name)."""

    code = models.SlugField(_("品牌代码"), max_length=32, unique=True)
    number = models.IntegerField(_("品牌编号"), unique=True, editable=False, db_default=NextVal(TENANT_NUMBER_SEQUENCE))
    name = models.CharField(_("品牌名称"), max_length=100)
    plan = models.ForeignKey(Plan, on_delete=models.PROTECT, related_name="tenants", verbose_name=_("套餐"))
    status = models.CharField(_("状态"), max_length=16, choices=TenantStatus.choices, default=TenantStatus.PENDING)
    status_reason = models.CharField(_("状态说明"), max_length=200, blank=True)
    contact_name = models.CharField(_("联系人"), max_length=50, blank=True)
    contact_phone = models.CharField(_("联系电话"), max_length=20, blank=True)
    created_at = models.DateTimeField(_("创建时间"), default=timezone.now)
    ready_at = models.DateTimeField(_("开通时间"), null=True, blank=True)
    status_changed_at = models.DateTimeField(_("状态变更时间"), default=timezone.now)

    # Schemas are built by the provisioning task, never as a side effect of save(), and dropped
    # only by the guarded deletion service.
    auto_create_schema = False
    auto_drop_schema = False

    class Meta:
        verbose_name = _("品牌")
        verbose_name_plural = _("品牌")
        constraints = [
            models.CheckConstraint(
                condition=models.Q(schema_name__regex=r"^t_[a-z][a-z0-9_]{1,39}$")
                | models.Q(schema_name="tenant_template"),
                name="tenant_schema_name_format",
            ),
            models.CheckConstraint(
                condition=models.Q(number__gte=1, number__lte=MAX_TENANT_NUMBER), name="tenant_number_range"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.name} ({self.code})"

    @property
    def is_ready(self) -> bool:
        return self.status == TenantStatus.READY

    @property
    def accepts_writes(self) -> bool:
        return self.status == TenantStatus.READY


class Domain(DomainMixin):
    """A host name that routes to one brand. Exactly one domain of a brand is its primary."""

    class Meta:
        verbose_name = _("域名")
        verbose_name_plural = _("域名")
        constraints = [
            models.UniqueConstraint(
                fields=["tenant"], condition=models.Q(is_primary=True), name="domain_one_primary_per_tenant"
            ),
        ]

    def __str__(self) -> str:
        return self.domain


class CodeSecret(models.Model):
    """A brand's code-signing secret of one key version, wrapped under a platform master key.

    Codes are derived from the secret (codes.format) and never stored; every version ever issued
    keeps verifying its codes. New batches use the newest version not retired.
    """

    tenant = models.ForeignKey(Tenant, on_delete=models.CASCADE, related_name="code_secrets")
    version = models.PositiveSmallIntegerField(_("密钥版本"))
    master_key_id = models.CharField(max_length=64)
    wrapped = models.BinaryField()
    created_at = models.DateTimeField(_("创建时间"), default=timezone.now)
    retired_at = models.DateTimeField(_("停用时间"), null=True, blank=True)

    class Meta:
        verbose_name = _("赋码密钥")
        verbose_name_plural = _("赋码密钥")
        constraints = [
            models.UniqueConstraint(fields=["tenant", "version"], name="code_secret_one_per_version"),
            models.CheckConstraint(
                condition=models.Q(version__gte=1, version__lte=15), name="code_secret_version_range"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.tenant_id} v{self.version}"


class PlatformRole(models.TextChoices):
    ADMIN = "admin", _("平台管理员")
    SUPPORT = "support", _("平台客服")


class PlatformStaff(models.Model):
    """An account of the vendor's ops team. Not a brand user: it has no access to any brand schema."""

    username = models.CharField(_("用户名"), max_length=64, unique=True)
    display_name = models.CharField(_("姓名"), max_length=64, blank=True)
    role = models.CharField(_("角色"), max_length=16, choices=PlatformRole.choices, default=PlatformRole.SUPPORT)
    password = models.CharField(_("密码"), max_length=128)
    is_active = models.BooleanField(_("启用"), default=True)
    created_at = models.DateTimeField(_("创建时间"), default=timezone.now)
    last_login_at = models.DateTimeField(_("最近登录"), null=True, blank=True)

    # DRF and Django treat anything with these attributes as a user.
    is_authenticated: ClassVar[bool] = True
    is_anonymous: ClassVar[bool] = False

    class Meta:
        verbose_name = _("平台员工")
        verbose_name_plural = _("平台员工")

    def __str__(self) -> str:
        return self.username

    def set_password(self, raw_password: str) -> None:
        self.password = make_password(raw_password)

    def check_password(self, raw_password: str) -> bool:
        return check_password(raw_password, self.password)

    @property
    def can_manage_brands(self) -> bool:
        return self.is_active and self.role == PlatformRole.ADMIN


class OpsTokenQuerySet(models.QuerySet["OpsToken"]):
    def usable(self) -> OpsTokenQuerySet:
        now = timezone.now()
        return self.filter(revoked_at__isnull=True, staff__is_active=True).filter(
            models.Q(expires_at__isnull=True) | models.Q(expires_at__gt=now)
        )


class OpsToken(models.Model):
    """An API token of a platform staff member. Only its SHA-256 is stored; the token is shown once."""

    PREFIX = "jmo_"

    staff = models.ForeignKey(PlatformStaff, on_delete=models.CASCADE, related_name="tokens")
    name = models.CharField(_("用途"), max_length=64, blank=True)
    key_hash = models.CharField(max_length=64, unique=True)
    key_hint = models.CharField(max_length=12)
    created_at = models.DateTimeField(default=timezone.now)
    last_used_at = models.DateTimeField(null=True, blank=True)
    expires_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)

    objects = OpsTokenQuerySet.as_manager()

    class Meta:
        verbose_name = _("运营 API 令牌")
        verbose_name_plural = _("运营 API 令牌")

    def __str__(self) -> str:
        return f"{self.staff} {self.key_hint}…"

    @staticmethod
    def hash_key(raw: str) -> str:
        return hashlib.sha256(raw.encode()).hexdigest()

    @classmethod
    def new_raw_key(cls) -> str:
        return cls.PREFIX + secrets.token_urlsafe(32)


class OperationKind(models.TextChoices):
    PROVISION = "provision", _("开通")
    EXPORT = "export", _("数据导出")
    DELETE = "delete", _("删除")


class OperationStatus(models.TextChoices):
    QUEUED = "queued", _("排队中")
    RUNNING = "running", _("进行中")
    SUCCEEDED = "succeeded", _("已完成")
    FAILED = "failed", _("失败")
    CANCELLED = "cancelled", _("已取消")


class TenantOperation(models.Model):
    """A platform job on one brand (provisioning, export, deletion), with its progress and outcome."""

    tenant = models.ForeignKey(Tenant, on_delete=models.PROTECT, related_name="operations")
    kind = models.CharField(max_length=16, choices=OperationKind.choices)
    status = models.CharField(max_length=16, choices=OperationStatus.choices, default=OperationStatus.QUEUED)
    requested_by = models.ForeignKey(PlatformStaff, null=True, blank=True, on_delete=models.SET_NULL)
    params = models.JSONField(default=dict, blank=True)
    result = models.JSONField(default=dict, blank=True)
    error = models.TextField(blank=True)
    attempts = models.PositiveIntegerField(default=0)
    created_at = models.DateTimeField(default=timezone.now)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        verbose_name = _("平台任务")
        verbose_name_plural = _("平台任务")
        indexes = [models.Index(fields=["tenant", "kind", "-created_at"])]
        constraints = [
            # At most one unfinished job of a kind per brand: a retried request cannot start a second one.
            models.UniqueConstraint(
                fields=["tenant", "kind"],
                condition=models.Q(status__in=["queued", "running"]),
                name="operation_one_open_per_kind",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.kind} {self.tenant_id} {self.status}"

    @property
    def duration_s(self) -> float | None:
        if self.started_at and self.finished_at:
            return (self.finished_at - self.started_at).total_seconds()
        return None


class OpsAuditEntry(models.Model):
    """Append-only record of what platform staff did (a database trigger refuses UPDATE and DELETE)."""

    at = models.DateTimeField(default=timezone.now, db_index=True)
    actor = models.ForeignKey(PlatformStaff, null=True, on_delete=models.PROTECT, related_name="+")
    actor_name = models.CharField(max_length=64)
    action = models.CharField(max_length=64)
    tenant = models.ForeignKey(Tenant, null=True, on_delete=models.PROTECT, related_name="+")
    detail = models.JSONField(default=dict)
    ip = models.GenericIPAddressField(null=True)

    class Meta:
        verbose_name = _("平台操作日志")
        verbose_name_plural = _("平台操作日志")

    def __str__(self) -> str:
        return f"{self.at:%Y-%m-%d %H:%M:%S} {self.actor_name} {self.action}"

    def save(self, *args: Any, **kwargs: Any) -> None:
        if not self._state.adding:
            raise ValueError("audit entries are append-only")
        super().save(*args, **kwargs)
