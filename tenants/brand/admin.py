"""The brand console's Django admin: every save and delete is audited; the audit log is owner-only."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from django import forms
from django.contrib import admin
from django.contrib.auth.admin import GroupAdmin, UserAdmin
from django.contrib.auth.models import Group
from django.core.exceptions import ValidationError
from django.db.models import Model, QuerySet
from django.forms import ModelForm
from django.http import HttpRequest
from django.utils.translation import gettext_lazy as _

from tenants.brand import audit
from tenants.brand.models import AuditAction, AuditEntry, BrandProfile, User
from tenants.brand.services import check_staff_quota
from tenants.errors import JiumaError

# --- money in the console: entered and shown in yuan, kept in integer fen ---------------------------

FEN_PER_YUAN = 100


def yuan_to_fen(yuan: Decimal) -> int:
    """Exact: "2.88" yuan is 288 fen. The form field allows at most two decimals; anything finer is
    refused rather than rounded."""
    fen = yuan * FEN_PER_YUAN
    if fen != fen.to_integral_value():
        raise ValueError(f"{yuan} yuan is not a whole number of fen")
    return int(fen)


def fen_to_yuan(fen: int) -> Decimal:
    return Decimal(fen).scaleb(-2)


def format_yuan(fen: int | None) -> str:
    """¥1,234.50 (integer arithmetic; a negative amount keeps its sign)."""
    if fen is None:
        return "—"
    sign = "-" if fen < 0 else ""
    whole, cents = divmod(abs(int(fen)), FEN_PER_YUAN)
    return f"{sign}¥{whole:,}.{cents:02d}"


class YuanField(forms.DecimalField):
    """An amount in yuan: up to two decimals, never negative."""

    def __init__(self, **kwargs: Any) -> None:
        kwargs.setdefault("max_digits", 12)
        kwargs.setdefault("decimal_places", 2)
        kwargs.setdefault("min_value", Decimal("0"))
        super().__init__(**kwargs)


class BrandAdminSite(admin.AdminSite):
    site_header = _("酒码 · 品牌管理后台")
    site_title = _("品牌管理后台")
    index_title = _("品牌管理")

    def each_context(self, request: HttpRequest) -> dict[str, Any]:
        context = super().each_context(request)
        tenant = getattr(request, "tenant", None)
        if tenant is not None and getattr(tenant, "name", None):
            context["site_header"] = f"{tenant.name} · {self.site_header}"
        return context


class AuditedModelAdmin(admin.ModelAdmin):  # type: ignore[type-arg]
    """Base for every ModelAdmin of the project: saves and deletes land in the audit log."""

    def save_model(self, request: HttpRequest, obj: Model, form: ModelForm, change: bool) -> None:  # type: ignore[type-arg]
        before = None
        if change and obj.pk is not None:
            original = type(obj)._default_manager.filter(pk=obj.pk).first()
            before = audit.snapshot(original) if original is not None else None
        super().save_model(request, obj, form, change)
        after = audit.snapshot(obj)
        b, a = audit.changed_only(before, after)
        audit.record(AuditAction.UPDATE if change else AuditAction.CREATE, obj=obj, before=b, after=a)

    def delete_model(self, request: HttpRequest, obj: Model) -> None:
        before = audit.snapshot(obj)
        pk, label, text = obj.pk, obj._meta.label_lower, str(obj)
        super().delete_model(request, obj)
        audit.record(AuditAction.DELETE, object_type=label, object_id=str(pk), object_repr=text, before=before)

    def delete_queryset(self, request: HttpRequest, queryset: QuerySet[Any]) -> None:
        for obj in queryset:
            self.delete_model(request, obj)


class SingletonAdmin(AuditedModelAdmin):
    """The admin of a brand's one row of settings (SingletonModel): added once, never deleted."""

    def has_add_permission(self, request: HttpRequest) -> bool:
        return super().has_add_permission(request) and not self.model._default_manager.exists()

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


site = BrandAdminSite(name="admin")


@admin.register(User, site=site)
class StaffAdmin(AuditedModelAdmin, UserAdmin):  # type: ignore[type-arg]
    list_display = ("username", "display_name", "phone", "is_active", "last_login")
    fieldsets = (
        (None, {"fields": ("username", "password")}),
        (_("个人信息"), {"fields": ("display_name", "phone", "email")}),
        (_("角色与状态"), {"fields": ("is_active", "is_staff", "groups")}),
        (_("时间"), {"fields": ("last_login", "date_joined")}),
    )
    readonly_fields = ("last_login", "date_joined")
    filter_horizontal = ("groups",)

    def get_form(self, request: HttpRequest, obj: Any = None, change: bool = False, **kwargs: Any) -> Any:
        form = super().get_form(request, obj, change=change, **kwargs)
        if obj is not None:
            return form

        class QuotaCheckedAddForm(form):  # type: ignore[misc,valid-type]
            """Over the plan's staff quota the add form is shown again with the reason (not a 500)."""

            def clean(self) -> Any:
                cleaned = super().clean()
                try:
                    check_staff_quota()
                except JiumaError as exc:
                    raise ValidationError(exc.message, code=exc.code) from exc
                return cleaned

        return QuotaCheckedAddForm

    def save_model(self, request: HttpRequest, obj: Any, form: Any, change: bool) -> None:
        if not change:
            check_staff_quota()
            obj.is_staff = True
        super().save_model(request, obj, form, change)


@admin.register(Group, site=site)
class RoleAdmin(AuditedModelAdmin, GroupAdmin):
    pass


@admin.register(BrandProfile, site=site)
class BrandProfileAdmin(AuditedModelAdmin):
    list_display = ("display_name", "service_phone", "updated_at")

    def has_add_permission(self, request: HttpRequest) -> bool:
        return not BrandProfile.objects.exists()

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(AuditEntry, site=site)
class AuditEntryAdmin(admin.ModelAdmin):  # type: ignore[type-arg]
    """Read-only. Only roles with the browse_audit permission (the owner) see it."""

    list_display = ("at", "actor_name", "action", "object_type", "object_repr", "ip", "via")
    list_filter = ("action", "via", "object_type")
    search_fields = ("actor_name", "object_repr", "object_id", "detail", "request_id")
    date_hierarchy = "at"
    readonly_fields = [f.name for f in AuditEntry._meta.fields]

    def has_module_permission(self, request: HttpRequest) -> bool:
        return bool(request.user.has_perm("brand.browse_audit"))

    def has_view_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return bool(request.user.has_perm("brand.browse_audit"))

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False
