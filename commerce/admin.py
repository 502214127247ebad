"""The sales channel in the brand console's admin: dealers (with their authorised areas inline),
stores and channel staff.

Forms check the same rules as commerce.services.channel (its check_* / clean_* functions); saves go
through AuditedModelAdmin (audited), area changes are audited as one before/after entry, and status
changes and adding channel staff call the services themselves.
"""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import ValidationError
from django.db.models import Model, QuerySet
from django.forms.models import BaseInlineFormSet
from django.http import HttpRequest
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from commerce import regions, selectors
from commerce.errors import ChannelErrorCode
from commerce.models import (
    ChannelStaff,
    Dealer,
    DealerArea,
    DealerLevel,
    Member,
    PointsEntry,
    PointsPolicy,
    Store,
    WeChatConfig,
)
from commerce.services import channel, points
from tenants.brand import audit
from tenants.brand.admin import AuditedModelAdmin, SingletonAdmin, site
from tenants.brand.models import AuditAction
from tenants.errors import JiumaError


def _invalid(exc: JiumaError) -> ValidationError:
    return ValidationError(exc.message, code=exc.code)


# --- dealers ----------------------------------------------------------------------------------------


class DealerAreaForm(forms.ModelForm):  # type: ignore[type-arg]
    class Meta:
        model = DealerArea
        fields = ["region_code"]

    def clean_region_code(self) -> str:
        try:
            return channel.clean_region(self.cleaned_data.get("region_code", "")).code
        except JiumaError as exc:
            raise _invalid(exc) from exc


class DealerAreaFormSet(BaseInlineFormSet):  # type: ignore[type-arg]
    """The areas as a whole: no overlaps, inside the parent's, still around the stores."""

    def clean(self) -> None:
        super().clean()
        if any(self.errors):
            return
        codes = [
            form.cleaned_data["region_code"]
            for form in self.forms
            if form.cleaned_data and form.cleaned_data.get("region_code") and not form.cleaned_data.get("DELETE")
        ]
        try:
            channel.check_areas(self.instance, channel.clean_area_codes(codes))
        except JiumaError as exc:
            raise _invalid(exc) from exc


class DealerAreaInline(admin.TabularInline):  # type: ignore[type-arg]
    model = DealerArea
    form = DealerAreaForm
    formset = DealerAreaFormSet
    extra = 1
    fields = ("region_code", "region_full_name")
    readonly_fields = ("region_full_name",)

    @admin.display(description=_("区域名称"))
    def region_full_name(self, obj: DealerArea) -> str:
        return obj.full_name if obj.region_code else "—"


class DealerForm(forms.ModelForm):  # type: ignore[type-arg]
    class Meta:
        model = Dealer
        fields = ["code", "name", "contact_name", "contact_phone", "level", "parent"]

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        parent = self.fields.get("parent")
        if isinstance(parent, forms.ModelChoiceField):
            choices = Dealer.objects.filter(level=DealerLevel.FIRST)
            if self.instance.pk is not None:
                choices = choices.exclude(pk=self.instance.pk)
            parent.queryset = choices

    def clean_code(self) -> str:
        try:
            return channel.clean_code(self.cleaned_data.get("code", ""))
        except JiumaError as exc:
            raise _invalid(exc) from exc

    def clean_contact_phone(self) -> str:
        try:
            return channel.clean_phone(self.cleaned_data.get("contact_phone", ""))
        except JiumaError as exc:
            raise _invalid(exc) from exc

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean() or {}
        if "level" in cleaned:
            parent = cleaned.get("parent")
            existing = self.instance if self.instance.pk is not None else None
            changed = existing is None or parent != existing.parent
            try:
                channel.check_hierarchy(existing, int(cleaned["level"]), parent, parent_changed=changed)
            except JiumaError as exc:
                raise _invalid(exc) from exc
        return cleaned


@admin.register(Dealer, site=site)
class DealerAdmin(AuditedModelAdmin):
    form = DealerForm
    inlines = [DealerAreaInline]
    list_display = ("code", "name", "level", "parent", "status", "area_names", "contact_name", "contact_phone")
    list_filter = ("status", "level")
    search_fields = ("code", "name", "contact_name", "contact_phone")
    list_select_related = ("parent",)
    readonly_fields = ("status", "created_at")
    actions = ["suspend", "resume"]

    def get_queryset(self, request: HttpRequest) -> QuerySet[Dealer]:
        return super().get_queryset(request).prefetch_related("areas")

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> Any:
        fields = tuple(super().get_readonly_fields(request, obj))
        return ("code", *fields) if obj is not None else fields

    @admin.display(description=_("授权区域"))
    def area_names(self, obj: Dealer) -> str:
        names = [area.full_name for area in obj.areas.all()]
        return "、".join(names[:5]) + (f" 等 {len(names)} 个" if len(names) > 5 else "") if names else "不限"

    def save_related(self, request: HttpRequest, form: Any, formsets: Any, change: bool) -> None:
        dealer = form.instance
        before = selectors.area_codes(dealer.pk) if change else []
        super().save_related(request, form, formsets, change)
        after = selectors.area_codes(dealer.pk)
        if after != before:
            audit.record(
                AuditAction.UPDATE, obj=dealer, before={"areas": before}, after={"areas": after}, detail="设置授权区域"
            )

    @admin.action(description=_("停用所选经销商"), permissions=["change"])
    def suspend(self, request: HttpRequest, queryset: QuerySet[Dealer]) -> None:
        for dealer in queryset:
            channel.suspend_dealer(dealer.pk)
        self.message_user(request, _("已停用 %(n)d 个经销商。") % {"n": len(queryset)}, messages.SUCCESS)

    @admin.action(description=_("启用所选经销商"), permissions=["change"])
    def resume(self, request: HttpRequest, queryset: QuerySet[Dealer]) -> None:
        for dealer in queryset:
            channel.resume_dealer(dealer.pk)
        self.message_user(request, _("已启用 %(n)d 个经销商。") % {"n": len(queryset)}, messages.SUCCESS)

    def delete_model(self, request: HttpRequest, obj: Model) -> None:
        # The admin's delete page has already listed what protects the dealer; audited with its areas.
        channel.delete_dealer(obj.pk)


# --- stores -----------------------------------------------------------------------------------------


class RegionFilter(admin.SimpleListFilter):
    """Stores by province, then (once a province is chosen) by city."""

    title = _("所在区域")
    parameter_name = "region"

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, str]]:
        codes = set(Store.objects.values_list("region_code", flat=True).distinct())
        provinces = sorted({code[:2] + "0000" for code in codes})
        options = [(code, region.name) for code in provinces if (region := regions.get(code)) is not None]
        chosen = regions.get(self.value() or "")
        if chosen is not None and chosen.level == "province":
            for city in regions.children(chosen.code):
                if city.level == "city" and any(code.startswith(city.code[:4]) for code in codes):
                    options.append((city.code, f"{chosen.name} · {city.name}"))
        return options

    def queryset(self, request: HttpRequest, queryset: QuerySet[Any]) -> QuerySet[Any]:
        value = self.value()
        if not value:
            return queryset
        ids = selectors.stores(region_code=value).values("pk")
        return queryset.filter(pk__in=ids)


class StoreForm(forms.ModelForm):  # type: ignore[type-arg]
    class Meta:
        model = Store
        fields = [
            "code",
            "name",
            "dealer",
            "region_code",
            "address",
            "latitude",
            "longitude",
            "contact_name",
            "contact_phone",
        ]

    def clean_code(self) -> str:
        try:
            return channel.clean_code(self.cleaned_data.get("code", ""), error=ChannelErrorCode.INVALID_STORE)
        except JiumaError as exc:
            raise _invalid(exc) from exc

    def clean_contact_phone(self) -> str:
        try:
            return channel.clean_phone(self.cleaned_data.get("contact_phone", ""))
        except JiumaError as exc:
            raise _invalid(exc) from exc

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean() or {}
        dealer, region_code = cleaned.get("dealer"), cleaned.get("region_code")
        adding = self.instance.pk is None
        try:
            cleaned["latitude"], cleaned["longitude"] = channel.clean_coordinates(
                cleaned.get("latitude"), cleaned.get("longitude")
            )
            if dealer is not None and region_code:
                if adding or dealer.pk != self.instance.dealer_id:
                    channel.check_store_dealer(dealer)
                cleaned["region_code"] = channel.check_store_place(dealer, region_code).code
            if adding:
                channel.check_store_quota()
        except JiumaError as exc:
            raise _invalid(exc) from exc
        return cleaned


@admin.register(Store, site=site)
class StoreAdmin(AuditedModelAdmin):
    form = StoreForm
    list_display = ("code", "name", "dealer", "region_name", "status", "contact_name", "contact_phone", "created_at")
    list_filter = ("status", ("dealer", admin.RelatedOnlyFieldListFilter), RegionFilter)
    search_fields = ("code", "name", "address", "contact_name", "contact_phone", "dealer__code", "dealer__name")
    list_select_related = ("dealer",)
    readonly_fields = ("region_name", "status", "qr_token", "created_at")
    actions = ["suspend", "resume"]

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> Any:
        fields = tuple(super().get_readonly_fields(request, obj))
        if not self.has_change_permission(request, obj):
            fields = tuple(name for name in fields if name != "qr_token")  # for those who run the stores
        return ("code", *fields) if obj is not None else fields

    @admin.display(description=_("所在区域"))
    def region_name(self, obj: Store) -> str:
        return obj.region_name if obj.region_code else "—"

    @admin.action(description=_("停用所选门店"), permissions=["change"])
    def suspend(self, request: HttpRequest, queryset: QuerySet[Store]) -> None:
        for store in queryset:
            channel.suspend_store(store.pk)
        self.message_user(request, _("已停用 %(n)d 家门店。") % {"n": len(queryset)}, messages.SUCCESS)

    @admin.action(description=_("启用所选门店"), permissions=["change"])
    def resume(self, request: HttpRequest, queryset: QuerySet[Store]) -> None:
        done = 0
        for store in queryset:
            try:
                channel.resume_store(store.pk)
                done += 1
            except JiumaError as exc:
                self.message_user(request, f"{store}：{exc.message}", messages.ERROR)
        self.message_user(request, _("已启用 %(n)d 家门店。") % {"n": done}, messages.SUCCESS)


# --- channel staff ----------------------------------------------------------------------------------


class ChannelStaffAddForm(forms.ModelForm):  # type: ignore[type-arg]
    """Adding a person creates their account (not brand staff) through the service."""

    username = forms.CharField(label=_("用户名"), max_length=150, required=False, help_text=_("不填则使用手机号。"))
    display_name = forms.CharField(label=_("姓名"), max_length=64, required=False)
    password = forms.CharField(
        label=_("密码"),
        max_length=128,
        required=False,
        strip=False,
        widget=forms.PasswordInput(render_value=False),
        help_text=_("不填则暂不能用密码登录。"),
    )

    class Meta:
        model = ChannelStaff
        fields = ["role", "dealer", "store", "phone"]

    def clean_phone(self) -> str:
        try:
            return channel.clean_phone(self.cleaned_data.get("phone", ""), field="phone", required=True)
        except JiumaError as exc:
            raise _invalid(exc) from exc

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean() or {}
        if self.errors:
            return cleaned
        dealer, store = cleaned.get("dealer"), cleaned.get("store")
        try:
            channel.check_new_channel_staff(
                role=cleaned.get("role", ""),
                phone=cleaned.get("phone", ""),
                dealer_id=dealer.pk if dealer is not None else None,
                store_id=store.pk if store is not None else None,
                username=cleaned.get("username", ""),
                password=cleaned.get("password") or None,
            )
        except JiumaError as exc:
            raise _invalid(exc) from exc
        return cleaned


@admin.register(ChannelStaff, site=site)
class ChannelStaffAdmin(AuditedModelAdmin):
    list_display = ("user", "role", "dealer", "store", "phone", "is_active", "created_at")
    list_filter = ("role", "is_active")
    search_fields = ("phone", "user__username", "user__display_name", "dealer__name", "store__name")
    list_select_related = ("user", "dealer", "store")
    actions = ["deactivate"]
    add_fieldsets = ((None, {"fields": ("role", "dealer", "store", "phone", "display_name", "username", "password")}),)

    def get_fieldsets(self, request: HttpRequest, obj: Any = None) -> Any:
        if obj is None:
            return self.add_fieldsets
        return ((None, {"fields": ("user", "role", "dealer", "store", "phone", "is_active", "created_at")}),)

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> Any:
        if obj is None:
            return ()
        return ("user", "role", "dealer", "store", "phone", "is_active", "created_at")

    def get_form(self, request: HttpRequest, obj: Any = None, change: bool = False, **kwargs: Any) -> Any:
        if obj is None:
            kwargs["form"] = ChannelStaffAddForm
        return super().get_form(request, obj, change=change, **kwargs)

    def save_model(self, request: HttpRequest, obj: Any, form: Any, change: bool) -> None:
        if change:
            super().save_model(request, obj, form, change)
            return
        data = form.cleaned_data
        # The add form ran the same checks in this transaction (the admin's): only a lost race fails here.
        created = channel.add_channel_staff(
            role=data["role"],
            phone=data["phone"],
            dealer_id=data["dealer"].pk if data.get("dealer") else None,
            store_id=data["store"].pk if data.get("store") else None,
            display_name=data.get("display_name", ""),
            username=data.get("username", ""),
            password=data.get("password") or None,
        )
        # The admin goes on with `obj` (messages, redirect): make it the row the service created.
        obj.pk, obj.user, obj.created_at = created.pk, created.user, created.created_at
        obj._state.adding = False

    @admin.action(description=_("停用所选渠道人员"), permissions=["change"])
    def deactivate(self, request: HttpRequest, queryset: QuerySet[ChannelStaff]) -> None:
        for staff in queryset:
            channel.deactivate_channel_staff(staff.pk)
        self.message_user(request, _("已停用 %(n)d 名渠道人员。") % {"n": len(queryset)}, messages.SUCCESS)


# --- members and points -------------------------------------------------------------------------


class PointsEntryInline(admin.TabularInline):  # type: ignore[type-arg]
    model = PointsEntry
    fields = ("created_at", "kind", "amount", "balance_after", "source", "note", "expires_at", "remaining")
    readonly_fields = fields
    ordering = ("-id",)
    extra = 0
    max_num = 0
    can_delete = False
    show_change_link = False
    verbose_name_plural = _("最近的酒币流水")

    def get_queryset(self, request: HttpRequest) -> QuerySet[PointsEntry]:
        return super().get_queryset(request).order_by("-id")


class PointsAdjustmentForm(forms.Form):
    amount = forms.IntegerField(label=_("调整数量"), help_text=_("正数增加，负数扣减（不会低于 0）"))
    reason = forms.CharField(label=_("原因"), max_length=200)


@admin.register(Member, site=site)
class MemberAdmin(AuditedModelAdmin):
    """Members are created by identification and changed by their own actions and the ledgers: the
    console reads them; the one change it makes is a points adjustment (audited, a ledger entry)."""

    list_display = ("id", "nickname", "phone_hint", "points_balance", "created_at", "last_seen_at", "erased_at")
    search_fields = ("nickname", "=openid", "=unionid", "=phone_hint")
    list_filter = ("erased_at",)
    readonly_fields = (
        "openid",
        "unionid",
        "nickname",
        "avatar_url",
        "phone_hint",
        "points_balance",
        "created_at",
        "last_seen_at",
        "erased_at",
    )
    fields = readonly_fields
    inlines = [PointsEntryInline]
    show_full_result_count = False

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def change_view(self, request: HttpRequest, object_id: str, form_url: str = "", extra_context: Any = None) -> Any:
        from django.shortcuts import redirect

        extra_context = extra_context or {}
        member = self.get_object(request, object_id)
        can_adjust = request.user.has_perm("commerce.add_pointsentry")
        if member is not None and can_adjust and request.method == "POST" and "adjust_points" in request.POST:
            form = PointsAdjustmentForm(request.POST)
            if form.is_valid():
                try:
                    entry = points.adjust(
                        member.pk,
                        form.cleaned_data["amount"],
                        reason=form.cleaned_data["reason"],
                        actor=request.user.get_username(),
                        source=f"adjustment:{request.user.pk}:{timezone.now().timestamp():.6f}",
                    )
                except JiumaError as exc:
                    messages.error(request, exc.message)
                else:
                    audit.record(
                        AuditAction.UPDATE,
                        obj=member,
                        after={"points_adjustment": entry.amount, "reason": entry.note},
                        detail=str(_("酒币调整")),
                    )
                    messages.success(request, _("已调整酒币：%(amount)+d") % {"amount": entry.amount})
                return redirect(request.path)
        extra_context["adjust_form"] = PointsAdjustmentForm() if can_adjust and member is not None else None
        return super().change_view(request, object_id, form_url, extra_context)


@admin.register(PointsEntry, site=site)
class PointsEntryAdmin(admin.ModelAdmin):  # type: ignore[type-arg]
    """The ledger, read-only: entries are appended by the services, never edited."""

    list_display = ("created_at", "member", "kind", "amount", "balance_after", "source", "expires_at")
    list_filter = ("kind",)
    search_fields = ("=member__id", "=source")
    list_select_related = ("member",)
    show_full_result_count = False

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(PointsPolicy, site=site)
class PointsPolicyAdmin(SingletonAdmin):
    list_display = ("__str__", "expiry_days", "expire_at_year_end", "updated_at")


class WeChatConfigForm(forms.ModelForm):  # type: ignore[type-arg]
    """Secrets are write-only: left empty, the stored one is kept."""

    secret = forms.CharField(label=_("公众号 AppSecret"), required=False, widget=forms.PasswordInput)
    private_key = forms.CharField(label=_("商户 API 私钥（PEM）"), required=False, widget=forms.Textarea)
    apiv3_key = forms.CharField(label=_("APIv3 密钥"), required=False, widget=forms.PasswordInput)

    class Meta:
        model = WeChatConfig
        fields = [
            "appid",
            "oauth_scope",
            "mchid",
            "merchant_serial_no",
            "platform_public_key_id",
            "platform_public_key",
            "transfer_scene_id",
        ]


@admin.register(WeChatConfig, site=site)
class WeChatConfigAdmin(SingletonAdmin):
    form = WeChatConfigForm
    list_display = ("appid", "oauth_scope", "mchid", "updated_at")

    def save_model(self, request: HttpRequest, obj: Model, form: Any, change: bool) -> None:
        from commerce.wechat import config

        current = config.load() if change else None
        data = form.cleaned_data
        config.save(
            appid=data["appid"],
            secret=data["secret"] or (current.secret if current else ""),
            oauth_scope=data["oauth_scope"],
            mchid=data["mchid"],
            merchant_serial_no=data["merchant_serial_no"],
            private_key=data["private_key"] or (current.private_key if current else ""),
            apiv3_key=data["apiv3_key"] or (current.apiv3_key if current else ""),
            platform_public_key_id=data["platform_public_key_id"],
            platform_public_key=data["platform_public_key"],
            transfer_scene_id=data["transfer_scene_id"],
        )
        audit.record(
            AuditAction.UPDATE if change else AuditAction.CREATE,
            obj=WeChatConfig.objects.get(pk=1),
            after={"appid": data["appid"], "mchid": data["mchid"], "secrets_changed": bool(data["secret"])},
        )


# The shop (catalog, orders, coupons, campaigns, distribution) has its own module, registered here.
from commerce import admin_shop  # noqa: E402, F401
