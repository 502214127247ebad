"""Per-brand models: staff users, the brand profile shown to consumers, and the audit log."""

from __future__ import annotations

from typing import Any, Self

from django.contrib.auth.models import AbstractUser
from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _


class User(AbstractUser):
    """A brand staff account. Consumers are members (commerce), not users."""

    phone = models.CharField(_("手机号"), max_length=20, blank=True)
    display_name = models.CharField(_("姓名"), max_length=64, blank=True)

    class Meta(AbstractUser.Meta):
        verbose_name = _("员工")  # type: ignore[assignment]
        verbose_name_plural = _("员工")  # type: ignore[assignment]
        swappable = "AUTH_USER_MODEL"

    def __str__(self) -> str:
        return self.display_name or self.username


class SingletonModel(models.Model):
    """A brand's one row of settings (id 1 in its schema). Each model also declares the database
    constraint `id = 1` in its own Meta (constraint names are per model)."""

    id = models.PositiveSmallIntegerField(primary_key=True, default=1, editable=False)

    class Meta:
        abstract = True

    @classmethod
    def current(cls) -> Self:
        """The stored row, or the defaults when the brand never saved one."""
        return cls._default_manager.filter(pk=1).first() or cls()


class BrandProfile(SingletonModel):
    """What consumers see of the brand. Exactly one row per schema (id = 1)."""

    display_name = models.CharField(_("品牌展示名"), max_length=100)
    slogan = models.CharField(_("品牌口号"), max_length=200, blank=True)
    service_phone = models.CharField(_("客服电话"), max_length=20, blank=True)
    logo = models.ImageField(_("标志"), upload_to="brand/", blank=True)
    updated_at = models.DateTimeField(_("更新时间"), auto_now=True)

    class Meta:
        verbose_name = _("品牌资料")
        verbose_name_plural = _("品牌资料")
        constraints = [models.CheckConstraint(condition=models.Q(id=1), name="brand_profile_singleton")]

    def __str__(self) -> str:
        return self.display_name


class AuditAction(models.TextChoices):
    CREATE = "create", _("新增")
    UPDATE = "update", _("修改")
    DELETE = "delete", _("删除")
    ACTION = "action", _("操作")
    LOGIN = "login", _("登录")
    LOGIN_FAILED = "login_failed", _("登录失败")
    LOGOUT = "logout", _("退出")
    REQUEST = "request", _("写请求")
    DOWNLOAD = "download", _("下载")


class AuditEntry(models.Model):
    """Who did what to which object, with before/after values, when and from where.

    Append-only: a database trigger refuses UPDATE and DELETE on this table.
    """

    at = models.DateTimeField(_("时间"), default=timezone.now, db_index=True)
    actor = models.ForeignKey(
        User,
        null=True,
        blank=True,
        on_delete=models.DO_NOTHING,
        db_constraint=False,
        related_name="+",
        verbose_name=_("操作人"),
    )
    actor_name = models.CharField(_("操作人"), max_length=150, blank=True)
    action = models.CharField(_("动作"), max_length=16, choices=AuditAction.choices)
    object_type = models.CharField(_("对象类型"), max_length=100, blank=True, db_index=True)
    object_id = models.CharField(_("对象 ID"), max_length=64, blank=True)
    object_repr = models.CharField(_("对象"), max_length=200, blank=True)
    before = models.JSONField(_("修改前"), null=True, blank=True)
    after = models.JSONField(_("修改后"), null=True, blank=True)
    detail = models.CharField(_("说明"), max_length=300, blank=True)
    ip = models.GenericIPAddressField(_("IP"), null=True, blank=True)
    user_agent = models.CharField(_("客户端"), max_length=300, blank=True)
    request_id = models.CharField(_("请求 ID"), max_length=64, blank=True)
    via = models.CharField(_("来源"), max_length=16, blank=True)  # admin / api / system

    class Meta:
        verbose_name = _("操作日志")
        verbose_name_plural = _("操作日志")
        ordering = ["-at", "-id"]
        indexes = [models.Index(fields=["object_type", "object_id"])]
        permissions = [("browse_audit", _("可以查看操作日志"))]

    def __str__(self) -> str:
        return f"{self.actor_name} {self.get_action_display()} {self.object_repr}"

    def save(self, *args: Any, **kwargs: Any) -> None:
        if not self._state.adding:
            raise ValueError("audit entries are append-only")
        super().save(*args, **kwargs)


class ApiKeyScope(models.TextChoices):
    """What a machine client (factory line, ERP, WMS) may do with a key."""

    ASSOCIATIONS_WRITE = "associations:write", _("上传码关联")
    OUTBOUND_WRITE = "outbound:write", _("上传出入库记录")
    BATCHES_READ = "batches:read", _("读取批次")
    CODES_VERIFY = "codes:verify", _("验证码")


class ApiKey(models.Model):
    """A machine-to-machine key of the brand. Only its SHA-256 is stored; the key is shown once."""

    PREFIX = "jmk_"

    name = models.CharField(_("名称"), max_length=64)
    key_hash = models.CharField(max_length=64, unique=True)
    key_hint = models.CharField(_("密钥前缀"), max_length=12)
    scopes = models.JSONField(_("权限范围"), default=list)
    created_by = models.ForeignKey(
        "brand.User", null=True, blank=True, on_delete=models.SET_NULL, related_name="+", verbose_name=_("创建人")
    )
    created_at = models.DateTimeField(_("创建时间"), default=timezone.now)
    expires_at = models.DateTimeField(_("过期时间"), null=True, blank=True)
    last_used_at = models.DateTimeField(_("最近使用"), null=True, blank=True)
    revoked_at = models.DateTimeField(_("吊销时间"), null=True, blank=True)

    class Meta:
        verbose_name = _("API 密钥")
        verbose_name_plural = _("API 密钥")

    def __str__(self) -> str:
        return f"{self.name} ({self.key_hint}…)"
