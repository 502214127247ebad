"""The shop in the brand console's admin: catalog and stock, member levels and tags, orders and
after-sales, payments and refunds, coupons, the points mall, group buys and bargains, distribution.

- Settings and catalog rows (categories, products with their SKUs and images, member prices, levels,
  tags, coupon templates, mall items, campaigns, policies) are edited here; every save is audited
  (AuditedModelAdmin). Money is entered in yuan with at most two decimals and stored in fen by exact
  Decimal arithmetic (never through a float). Counters the services raise (`sold`, `issued`) are
  read-only and never written back by a save.
- Everything that moves a state goes through the services (commerce.services.*): receiving and
  adjusting stock, shipping and cancelling orders, booking refunds, deciding after-sales, issuing and
  revoking coupons, evaluating rule tags, deciding affiliates and withdrawals. The admin actions only
  ask for what the service needs (a confirmation, a form), call it as the signed-in user, show its
  Chinese message when it refuses, and audit what it did.
- Ledgers and records the services append (orders and their lines/events, stock movements,
  commission entries, payments, refunds, WeChat notifications, member coupons) are read-only here.

Permissions are the roles' (tenants.brand.roles): an action needs the permission named on it (e.g.
shipping needs `add_shipment`, a refund `add_refund`, receiving stock `add_stockmovement`).

Commission withdrawals: commerce may not import rewards (layering), so approving calls
`withdrawal_approver`, which is `distribution.approve_withdrawal` unless rewards installs
`commission_payouts.approve` with `set_withdrawal_approver` (then the payout is created at once;
otherwise the commission_withdrawal_due sweeper creates it).
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterable, Sequence
from decimal import Decimal
from typing import Any

from django import forms
from django.contrib import admin, messages
from django.contrib.admin import helpers
from django.core.exceptions import ValidationError
from django.db.models import F, Model, QuerySet
from django.http import HttpRequest
from django.template.response import TemplateResponse
from django.utils.html import format_html
from django.utils.safestring import SafeString
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _

from commerce.models import (
    Affiliate,
    AfterSale,
    AfterSaleLine,
    BargainCampaign,
    BargainSession,
    CancelReason,
    Category,
    CommissionEntry,
    CommissionRate,
    CommissionWithdrawal,
    CouponTemplate,
    DistributionPolicy,
    GroupBuyCampaign,
    GroupBuyTeam,
    MallItem,
    MemberCoupon,
    MemberLevel,
    MemberTag,
    MemberTagging,
    Order,
    OrderEvent,
    OrderLine,
    Payment,
    PayNotification,
    Product,
    ProductImage,
    Refund,
    RefundReason,
    Shipment,
    ShopPolicy,
    Sku,
    SkuLevelPrice,
    Stock,
    StockMovement,
    TagKind,
)
from commerce.services import aftersales, catalog, coupons, distribution, members_levels, orders, refunds
from tenants.brand import admin as console
from tenants.brand import audit
from tenants.brand.admin import AuditedModelAdmin, SingletonAdmin, fen_to_yuan, format_yuan, site, yuan_to_fen
from tenants.brand.models import AuditAction
from tenants.errors import JiumaError

ACTION_TEMPLATE = "admin/commerce/action_form.html"
MAX_TAG_ISSUE = 5000  # members of one tag issued a coupon in one request


# --- money ------------------------------------------------------------------------------------------


def _money(field: str, label: Any) -> Any:
    """A fen field shown in yuan in lists and read-only pages."""

    @admin.display(description=label, ordering=field)
    def show(model_admin: Any, obj: Model) -> str:
        return format_yuan(getattr(obj, field))

    return show


class YuanField(console.YuanField):
    """An amount in yuan (the console's field), with room for a shop's larger sums."""

    def __init__(self, **kwargs: Any) -> None:
        kwargs.setdefault("max_digits", 14)
        super().__init__(**kwargs)


class YuanModelForm(forms.ModelForm):  # type: ignore[type-arg]
    """A model form whose fen fields are entered in yuan: `yuan_fields` maps the form field to the
    model's fen field. The model's constraints are checked with the fen values (a broken one is shown
    as a form error, not a database error)."""

    yuan_fields: dict[str, str] = {}

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if self.instance.pk is not None:
            for name, fen_field in self.yuan_fields.items():
                value = getattr(self.instance, fen_field)
                self.initial.setdefault(name, None if value is None else fen_to_yuan(value))

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean() or {}
        for name, fen_field in self.yuan_fields.items():
            if name not in cleaned:
                continue
            value = cleaned[name]
            nullable = self.instance._meta.get_field(fen_field).null
            setattr(self.instance, fen_field, yuan_to_fen(value) if value is not None else (None if nullable else 0))
        return cleaned

    def validate_unique(self) -> None:
        super().validate_unique()
        if self.errors:
            return
        try:  # every constraint, the fen fields (not form fields) included
            self.instance.validate_constraints()
        except ValidationError as exc:
            self.add_error(None, exc.messages)


class CounterSafeAdmin(AuditedModelAdmin):
    """Saves write only the fields the form edits, never a counter the services raise (`sold`,
    `issued`), so a save racing an order cannot put a stale count back."""

    counters: tuple[str, ...] = ()

    def save_model(self, request: HttpRequest, obj: Model, form: Any, change: bool) -> None:
        if not change:
            super().save_model(request, obj, form, change)
            return
        original = type(obj)._default_manager.get(pk=obj.pk)
        before = audit.snapshot(original)
        names = [
            f.name
            for f in obj._meta.concrete_fields
            if not f.primary_key and f.name not in self.counters and f.editable
        ]
        obj.save(update_fields=names)
        obj.refresh_from_db()
        b, a = audit.changed_only(before, audit.snapshot(obj))
        audit.record(AuditAction.UPDATE, obj=obj, before=b, after=a)


# --- actions: forms, confirmation, calling the services ---------------------------------------------


def _actor(request: HttpRequest) -> str:
    return f"staff:{request.user.get_username()}"


def _page(
    model_admin: admin.ModelAdmin,  # type: ignore[type-arg]
    request: HttpRequest,
    queryset: QuerySet[Any],
    *,
    action: str,
    title: str,
    lines: Sequence[str],
    confirm_label: str,
    form: forms.Form | None = None,
    question: str = "",
) -> TemplateResponse:
    context = {
        **model_admin.admin_site.each_context(request),
        "title": title,
        "opts": model_admin.model._meta,
        "queryset": queryset,
        "action_checkbox_name": helpers.ACTION_CHECKBOX_NAME,
        "action": action,
        "lines": lines,
        "form": form,
        "question": question,
        "confirm_label": confirm_label,
    }
    request.current_app = model_admin.admin_site.name
    return TemplateResponse(request, ACTION_TEMPLATE, context)


def _posted(request: HttpRequest, form_class: type[forms.Form], **kwargs: Any) -> tuple[forms.Form, bool]:
    """The action's form: bound and valid once the page posted it back (`post=yes`)."""
    if request.POST.get("post") == "yes":
        form = form_class(request.POST, **kwargs)
        return form, form.is_valid()
    return form_class(**kwargs), False


def _one(model_admin: admin.ModelAdmin, request: HttpRequest, queryset: QuerySet[Any]) -> Any:  # type: ignore[type-arg]
    """The one selected row of an action that works on one at a time (None: a message said so)."""
    if queryset.count() != 1:
        model_admin.message_user(request, gettext("请只选择一条记录。"), messages.WARNING)
        return None
    return queryset.first()


def _each(
    model_admin: admin.ModelAdmin,  # type: ignore[type-arg]
    request: HttpRequest,
    items: Iterable[Any],
    call: Callable[[Any], tuple[Model, dict[str, Any], dict[str, Any]]],
    *,
    detail: str,
    done: str,
) -> int:
    """Call the service on each item (`call` returns the changed row, before, after); a refusal shows
    the service's message and changes nothing; each success is audited. Returns how many succeeded."""
    count = 0
    for item in items:
        try:
            changed, before, after = call(item)
        except JiumaError as exc:
            model_admin.message_user(request, f"{item}：{exc.message}", messages.ERROR)
            continue
        audit.record(AuditAction.ACTION, obj=changed, before=before, after=after, detail=detail)
        count += 1
    if count:
        model_admin.message_user(request, done % {"n": count}, messages.SUCCESS)
    return count


class NoteForm(forms.Form):
    note = forms.CharField(label=_("说明"), max_length=200)


class OptionalNoteForm(forms.Form):
    note = forms.CharField(label=_("说明（可不填）"), max_length=200, required=False)


class _ReadOnlyAdmin(AuditedModelAdmin):
    """A record the services write: listed and shown, never added, changed or deleted here (an
    action that calls a service audits what it did; AuditedModelAdmin covers anything else)."""

    show_full_result_count = False

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


class _ActionsOnlyAdmin(_ReadOnlyAdmin):
    """Read-only pages whose rows the services change through the admin's actions: the change
    permission (no object) decides the actions; the detail page stays read-only."""

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return obj is None and admin.ModelAdmin.has_change_permission(self, request)


class _ReadOnlyInline(admin.TabularInline):  # type: ignore[type-arg]
    extra = 0
    max_num = 0
    can_delete = False
    show_change_link = False

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


def _link(obj: Model | None, text: object = None) -> SafeString | str:
    if obj is None:
        return "—"
    from django.urls import reverse

    url = reverse(f"admin:{obj._meta.app_label}_{obj._meta.model_name}_change", args=[obj.pk])
    return format_html('<a href="{}">{}</a>', url, text if text is not None else obj)


# --- catalog ----------------------------------------------------------------------------------------


@admin.register(Category, site=site)
class CategoryAdmin(AuditedModelAdmin):
    list_display = ("name", "parent", "position", "is_active", "created_at")
    list_filter = ("is_active", "parent")
    search_fields = ("name",)
    list_select_related = ("parent",)
    readonly_fields = ("created_at",)

    def formfield_for_foreignkey(self, db_field: Any, request: HttpRequest, **kwargs: Any) -> Any:
        if db_field.name == "parent":
            kwargs["queryset"] = Category.objects.filter(parent__isnull=True)  # two levels at most
        return super().formfield_for_foreignkey(db_field, request, **kwargs)


class SkuForm(YuanModelForm):
    yuan_fields = {"price_yuan": "price_fen", "original_price_yuan": "original_price_fen"}
    price_yuan = YuanField(label=_("售价（元）"))
    original_price_yuan = YuanField(label=_("划线价（元）"), required=False, help_text=_("不填表示无划线价。"))

    class Meta:
        model = Sku
        fields = ["product", "code", "spec", "bottles_per_case", "is_active", "image", "position"]


class SkuInline(admin.TabularInline):  # type: ignore[type-arg]
    model = Sku
    form = SkuForm
    extra = 0
    fields = ("code", "spec", "price_yuan", "original_price_yuan", "bottles_per_case", "is_active", "position")
    show_change_link = True
    can_delete = False  # a SKU is referenced by orders, batches and stock: switch it off instead


class ProductImageInline(admin.TabularInline):  # type: ignore[type-arg]
    model = ProductImage
    extra = 0
    fields = ("image", "position", "alt")


@admin.register(Product, site=site)
class ProductAdmin(AuditedModelAdmin):
    list_display = ("name", "category", "is_active", "sku_count", "position", "created_at")
    list_filter = ("is_active", "category")
    search_fields = ("name", "subtitle", "skus__code")
    list_select_related = ("category",)
    readonly_fields = ("created_at",)
    inlines = [SkuInline, ProductImageInline]

    @admin.display(description=_("SKU 数"))
    def sku_count(self, obj: Product) -> int:
        return obj.skus.count()


class SkuLevelPriceForm(YuanModelForm):
    yuan_fields = {"price_yuan": "price_fen"}
    price_yuan = YuanField(label=_("会员价（元）"))

    class Meta:
        model = SkuLevelPrice
        fields = ["level"]


class SkuLevelPriceInline(admin.TabularInline):  # type: ignore[type-arg]
    model = SkuLevelPrice
    form = SkuLevelPriceForm
    extra = 0
    fields = ("level", "price_yuan")


class InboundForm(forms.Form):
    quantity = forms.IntegerField(label=_("入库数量"), min_value=1)
    ref = forms.CharField(label=_("单据编号"), max_length=70, help_text=_("同一单据编号对同一 SKU 只入库一次。"))
    note = forms.CharField(label=_("说明"), max_length=200, required=False)


class AdjustForm(forms.Form):
    delta = forms.IntegerField(label=_("调整数量"), help_text=_("正数增加，负数减少（不能少于订单已占用的数量）。"))
    ref = forms.CharField(label=_("盘点单号"), max_length=70)
    note = forms.CharField(label=_("原因"), max_length=200)


class StocktakeForm(forms.Form):
    on_hand = forms.IntegerField(label=_("盘点后在库数量"), min_value=0)
    ref = forms.CharField(label=_("盘点单号"), max_length=70)
    note = forms.CharField(label=_("原因"), max_length=200)


class StockActions:
    """Receiving and adjusting stock through catalog services, on SKUs or stock rows (whose primary
    key is the SKU's id). Needs the permission to add stock movements."""

    def has_stock_permission(self, request: HttpRequest) -> bool:
        return bool(request.user.has_perm("commerce.add_stockmovement"))

    def _sku_lines(self, queryset: QuerySet[Any]) -> list[str]:
        skus = Sku.objects.filter(pk__in=queryset.values("pk")).select_related("product", "stock").order_by("pk")
        lines = []
        for sku in skus:
            stock = getattr(sku, "stock", None)
            held = f"在库 {stock.on_hand}，已占用 {stock.reserved}" if stock is not None else "尚无库存"
            lines.append(f"{sku.code} {sku}：{held}")
        return lines

    def _stock_action(
        self,
        request: HttpRequest,
        queryset: QuerySet[Any],
        *,
        action: str,
        title: str,
        form_class: type[forms.Form],
        call: Callable[[int, dict[str, Any], str], Stock],
        detail: str,
        done: str,
    ) -> TemplateResponse | None:
        form, valid = _posted(request, form_class)
        if not valid:
            return _page(
                self,  # type: ignore[arg-type]
                request,
                queryset,
                action=action,
                title=title,
                lines=self._sku_lines(queryset),
                confirm_label=gettext("确认"),
                form=form,
            )
        data = form.cleaned_data
        actor = _actor(request)

        def one(sku: Sku) -> tuple[Model, dict[str, Any], dict[str, Any]]:
            held = Stock.objects.filter(pk=sku.pk).values("on_hand", "reserved").first()
            before: dict[str, Any] = dict(held) if held is not None else {"on_hand": 0, "reserved": 0}
            stock = call(sku.pk, data, actor)
            return stock, before, {"on_hand": stock.on_hand, "reserved": stock.reserved, **data}

        skus = Sku.objects.filter(pk__in=queryset.values("pk")).select_related("product").order_by("pk")
        _each(self, request, skus, one, detail=detail, done=done)  # type: ignore[arg-type]
        return None

    @admin.action(description=_("入库"), permissions=["stock"])
    def receive_stock(self, request: HttpRequest, queryset: QuerySet[Any]) -> TemplateResponse | None:
        return self._stock_action(
            request,
            queryset,
            action="receive_stock",
            title=gettext("入库"),
            form_class=InboundForm,
            call=lambda sku_id, d, actor: catalog.inbound(
                sku_id, d["quantity"], ref=d["ref"], actor=actor, note=d["note"]
            ),
            detail=gettext("入库"),
            done=gettext("已为 %(n)d 个 SKU 入库。"),
        )

    @admin.action(description=_("盘点调整（增减数量）"), permissions=["stock"])
    def adjust_stock(self, request: HttpRequest, queryset: QuerySet[Any]) -> TemplateResponse | None:
        return self._stock_action(
            request,
            queryset,
            action="adjust_stock",
            title=gettext("盘点调整"),
            form_class=AdjustForm,
            call=lambda sku_id, d, actor: catalog.adjust(sku_id, d["delta"], ref=d["ref"], actor=actor, note=d["note"]),
            detail=gettext("盘点调整"),
            done=gettext("已调整 %(n)d 个 SKU 的库存。"),
        )

    @admin.action(description=_("盘点（设为实盘数量）"), permissions=["stock"])
    def stocktake(self, request: HttpRequest, queryset: QuerySet[Any]) -> TemplateResponse | None:
        return self._stock_action(
            request,
            queryset,
            action="stocktake",
            title=gettext("盘点"),
            form_class=StocktakeForm,
            call=lambda sku_id, d, actor: catalog.set_on_hand(
                sku_id, d["on_hand"], ref=d["ref"], actor=actor, note=d["note"]
            ),
            detail=gettext("盘点"),
            done=gettext("已盘点 %(n)d 个 SKU。"),
        )


@admin.register(Sku, site=site)
class SkuAdmin(StockActions, AuditedModelAdmin):
    form = SkuForm
    list_display = ("code", "product", "spec", "price", "original_price", "is_active", "available_units")
    list_filter = ("is_active", "product__category")
    search_fields = ("code", "spec", "product__name")
    list_select_related = ("product", "stock")
    fields = (
        "product",
        "code",
        "spec",
        "price_yuan",
        "original_price_yuan",
        "bottles_per_case",
        "is_active",
        "image",
        "position",
    )
    inlines = [SkuLevelPriceInline]
    actions = ["receive_stock", "adjust_stock", "stocktake"]
    price = _money("price_fen", _("售价"))
    original_price = _money("original_price_fen", _("划线价"))

    @admin.display(description=_("可售库存"))
    def available_units(self, obj: Sku) -> int:
        stock = getattr(obj, "stock", None)
        return stock.available if stock is not None else 0

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(Stock, site=site)
class StockAdmin(StockActions, _ReadOnlyAdmin):
    """On hand, reserved and available per SKU; changed only by the stock actions (catalog services)."""

    list_display = ("sku_code", "sku", "on_hand", "reserved", "available_units", "updated_at")
    search_fields = ("sku__code", "sku__product__name", "sku__spec")
    list_filter = ("sku__is_active",)
    list_select_related = ("sku__product",)
    actions = ["receive_stock", "adjust_stock", "stocktake"]

    def get_queryset(self, request: HttpRequest) -> QuerySet[Stock]:
        return super().get_queryset(request).annotate(available_units=F("on_hand") - F("reserved"))

    @admin.display(description=_("SKU 编码"), ordering="sku__code")
    def sku_code(self, obj: Stock) -> str:
        return obj.sku.code

    @admin.display(description=_("可售"), ordering="available_units")
    def available_units(self, obj: Stock) -> int:
        return obj.available


@admin.register(StockMovement, site=site)
class StockMovementAdmin(_ReadOnlyAdmin):
    list_display = ("created_at", "sku", "kind", "on_hand_delta", "reserved_delta", "source", "note", "created_by")
    list_filter = ("kind",)
    search_fields = ("=source", "sku__code", "created_by")
    list_select_related = ("sku__product",)
    date_hierarchy = "created_at"


# --- member levels, tags, shop policy ---------------------------------------------------------------


class MemberLevelForm(YuanModelForm):
    yuan_fields = {"min_spend_yuan": "min_spend_fen"}
    min_spend_yuan = YuanField(label=_("累计消费门槛（元）"), required=False)

    class Meta:
        model = MemberLevel
        fields = ["name", "rank", "min_points", "price_percent", "extra_points_percent", "free_shipping", "is_active"]


@admin.register(MemberLevel, site=site)
class MemberLevelAdmin(AuditedModelAdmin):
    form = MemberLevelForm
    list_display = ("rank", "name", "min_points", "min_spend", "price_percent", "free_shipping", "is_active")
    list_filter = ("is_active",)
    fields = (
        "name",
        "rank",
        "min_points",
        "min_spend_yuan",
        "price_percent",
        "extra_points_percent",
        "free_shipping",
        "is_active",
    )
    ordering = ("rank",)
    min_spend = _money("min_spend_fen", _("累计消费门槛"))


class MemberTagForm(forms.ModelForm):  # type: ignore[type-arg]
    class Meta:
        model = MemberTag
        fields = ["name", "kind", "rule", "description"]

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean() or {}
        kind, rule = cleaned.get("kind"), cleaned.get("rule") or {}
        if kind == TagKind.RULE:
            if not rule:
                raise ValidationError(gettext("规则标签须填写规则。"))
            try:
                members_levels.matching_members(rule)
            except JiumaError as exc:
                raise ValidationError(exc.message, code=exc.code) from exc
        elif kind == TagKind.MANUAL and rule:
            raise ValidationError(gettext("手动标签不能设置规则。"))
        return cleaned


@admin.register(MemberTag, site=site)
class MemberTagAdmin(AuditedModelAdmin):
    form = MemberTagForm
    list_display = ("name", "kind", "member_count", "description", "created_at")
    list_filter = ("kind",)
    search_fields = ("name",)
    readonly_fields = ("created_at",)
    actions = ["evaluate"]

    @admin.display(description=_("会员数"))
    def member_count(self, obj: MemberTag) -> int:
        return MemberTagging.objects.filter(tag=obj).count()

    @admin.action(description=_("重新计算（按规则打标）"), permissions=["change"])
    def evaluate(self, request: HttpRequest, queryset: QuerySet[MemberTag]) -> None:
        def one(tag: MemberTag) -> tuple[Model, dict[str, Any], dict[str, Any]]:
            added, removed = members_levels.evaluate_rule_tag(tag.pk)
            self.message_user(
                request, gettext("%(tag)s：新增 %(a)d 人，移除 %(r)d 人。") % {"tag": tag, "a": added, "r": removed}
            )
            return tag, {}, {"added": added, "removed": removed}

        _each(
            self,
            request,
            queryset.order_by("pk"),
            one,
            detail=gettext("重新计算规则标签"),
            done=gettext("已重新计算 %(n)d 个标签。"),
        )


class ShopPolicyForm(YuanModelForm):
    yuan_fields = {
        "shipping_fee_yuan": "shipping_fee_fen",
        "free_shipping_threshold_yuan": "free_shipping_threshold_fen",
    }
    shipping_fee_yuan = YuanField(label=_("运费（元）"))
    free_shipping_threshold_yuan = YuanField(
        label=_("满额包邮（元）"), help_text=_("商品金额达到此数免运费；0 表示不设满额包邮。")
    )

    class Meta:
        model = ShopPolicy
        fields = [
            "pay_timeout_minutes",
            "auto_receive_days",
            "after_sales_days",
            "return_days",
            "after_sale_review_hours",
            "points_per_yuan",
        ]


@admin.register(ShopPolicy, site=site)
class ShopPolicyAdmin(SingletonAdmin):
    form = ShopPolicyForm
    list_display = (
        "__str__",
        "pay_timeout_minutes",
        "auto_receive_days",
        "after_sales_days",
        "shipping_fee",
        "updated_at",
    )
    fields = (
        "pay_timeout_minutes",
        "auto_receive_days",
        "after_sales_days",
        "return_days",
        "after_sale_review_hours",
        "shipping_fee_yuan",
        "free_shipping_threshold_yuan",
        "points_per_yuan",
    )
    shipping_fee = _money("shipping_fee_fen", _("运费"))


# --- orders -----------------------------------------------------------------------------------------


class OrderLineInline(_ReadOnlyInline):
    model = OrderLine
    fields = ("sku_code", "sku_name", "quantity", "unit_price", "paid", "unit_points", "refund_quantity", "refunded")
    readonly_fields = fields
    unit_price = _money("unit_price_fen", _("成交单价"))
    paid = _money("paid_fen", _("实付"))
    refunded = _money("refund_fen", _("已申请退款"))


class ShipmentInline(_ReadOnlyInline):
    model = Shipment
    fields = ("carrier_name", "carrier_code", "tracking_no", "shipped_at", "shipped_by")
    readonly_fields = fields


class OrderEventInline(_ReadOnlyInline):
    model = OrderEvent
    fields = ("at", "kind", "field", "from_state", "to_state", "actor", "data")
    readonly_fields = fields
    ordering = ("id",)


class PaymentInline(_ReadOnlyInline):
    model = Payment
    fields = ("out_trade_no", "method", "amount", "status", "transaction_id", "paid_at", "closed_at")
    readonly_fields = fields
    amount = _money("amount_fen", _("金额"))


class RefundInline(_ReadOnlyInline):
    model = Refund
    fk_name = "order"
    fields = (
        "refund_no",
        "reason",
        "amount",
        "points",
        "status",
        "created_by",
        "created_at",
        "finished_at",
        "last_error",
    )
    readonly_fields = fields
    amount = _money("amount_fen", _("退款金额"))


class AfterSaleInline(_ReadOnlyInline):
    model = AfterSale
    fields = ("after_sale_link", "kind", "status", "reason", "amount", "requested_at")
    readonly_fields = fields
    amount = _money("amount_fen", _("退款金额"))

    @admin.display(description=_("售后单号"))
    def after_sale_link(self, obj: AfterSale) -> SafeString | str:
        return _link(obj, obj.number)


CARRIERS = {
    "SF": "顺丰速运",
    "JD": "京东物流",
    "ZTO": "中通快递",
    "YTO": "圆通速递",
    "STO": "申通快递",
    "YD": "韵达快递",
    "EMS": "中国邮政 EMS",
    "JTSD": "极兔速递",
    "DBL": "德邦快递",
}


class ShipForm(forms.Form):
    carrier = forms.ChoiceField(label=_("快递公司"), choices=list(CARRIERS.items()))
    tracking_no = forms.CharField(label=_("快递单号"), max_length=40)


class RefundForm(forms.Form):
    amount_yuan = YuanField(label=_("退款金额（元）"))
    points = forms.IntegerField(label=_("退还酒币"), min_value=0, initial=0, required=False)
    note = forms.CharField(label=_("退款原因"), max_length=200)


@admin.register(Order, site=site)
class OrderAdmin(_ActionsOnlyAdmin):
    list_display = (
        "number",
        "member",
        "kind",
        "status",
        "payment_status",
        "refund_status",
        "total",
        "delivery",
        "created_at",
    )
    list_filter = ("status", "payment_status", "refund_status", "kind", "delivery")
    search_fields = ("=number", "=member__id", "member__nickname", "=member__phone_hint", "=receiver_phone")
    list_select_related = ("member",)
    date_hierarchy = "created_at"
    actions = ["ship", "cancel_unpaid", "book_refund"]
    inlines = [OrderLineInline, ShipmentInline, PaymentInline, RefundInline, AfterSaleInline, OrderEventInline]
    fieldsets = (
        (None, {"fields": ("number", "member", "kind", "status", "payment_status", "refund_status", "delivery")}),
        (
            _("金额"),
            {
                "fields": (
                    "items",
                    "discount",
                    "shipping",
                    "total",
                    "points_total",
                    "refund_booked",
                    "refunded",
                    "refunded_points",
                    "coupon",
                    "reward_points",
                )
            },
        ),
        (
            _("收货与自提"),
            {"fields": ("receiver_name", "receiver_phone", "region_code", "address_detail", "pickup_store")},
        ),
        (
            _("时间"),
            {
                "fields": (
                    "created_at",
                    "pay_by",
                    "paid_at",
                    "shipped_at",
                    "auto_receive_at",
                    "received_at",
                    "after_sales_until",
                    "completed_at",
                    "cancelled_at",
                    "cancel_reason",
                )
            },
        ),
        (_("留言与备注"), {"fields": ("member_note", "staff_note", "affiliate_l1", "affiliate_l2")}),
    )
    total = _money("total_fen", _("实付金额"))
    items = _money("items_fen", _("商品金额"))
    discount = _money("discount_fen", _("优惠券抵扣"))
    shipping = _money("shipping_fen", _("运费"))
    refund_booked = _money("refund_booked_fen", _("已申请退款"))
    refunded = _money("refunded_fen", _("已退款"))

    def has_ship_permission(self, request: HttpRequest) -> bool:
        return bool(request.user.has_perm("commerce.add_shipment"))

    def has_refund_permission(self, request: HttpRequest) -> bool:
        return bool(request.user.has_perm("commerce.add_refund"))

    def _summary(self, order: Order) -> str:
        return (
            f"{order.number}：{order.get_status_display()}，{order.get_payment_status_display()}，"
            f"实付 {format_yuan(order.total_fen)}，已申请退款 {format_yuan(order.refund_booked_fen)}"
        )

    @admin.action(description=_("发货"), permissions=["ship"])
    def ship(self, request: HttpRequest, queryset: QuerySet[Order]) -> TemplateResponse | None:
        order = _one(self, request, queryset)
        if order is None:
            return None
        form, valid = _posted(request, ShipForm)
        if not valid:
            lines = [self._summary(order), *(f"{line.sku_name} × {line.quantity}" for line in order.lines.all())]
            return _page(
                self,
                request,
                queryset,
                action="ship",
                title=gettext("发货"),
                lines=lines,
                confirm_label=gettext("确认发货"),
                form=form,
            )
        code, tracking_no = form.cleaned_data["carrier"], form.cleaned_data["tracking_no"]

        def one(item: Order) -> tuple[Model, dict[str, Any], dict[str, Any]]:
            shipped = orders.ship(item.pk, [orders.Parcel(code, CARRIERS[code], tracking_no)], actor=_actor(request))
            return (
                shipped,
                {"status": item.status},
                {"status": shipped.status, "carrier": code, "tracking_no": tracking_no},
            )

        _each(self, request, [order], one, detail=gettext("订单发货"), done=gettext("已发货 %(n)d 个订单。"))
        return None

    @admin.action(description=_("取消未付款订单"), permissions=["change"])
    def cancel_unpaid(self, request: HttpRequest, queryset: QuerySet[Order]) -> TemplateResponse | None:
        if request.POST.get("post") != "yes":
            return _page(
                self,
                request,
                queryset,
                action="cancel_unpaid",
                title=gettext("取消订单"),
                question=gettext("确定取消以下未付款订单吗？库存和优惠券将退回。"),
                lines=[self._summary(o) for o in queryset],
                confirm_label=gettext("确认取消"),
            )

        def one(item: Order) -> tuple[Model, dict[str, Any], dict[str, Any]]:
            cancelled = orders.cancel(item.pk, reason=CancelReason.STAFF, actor=_actor(request))
            return cancelled, {"status": item.status}, {"status": cancelled.status, "cancel_reason": CancelReason.STAFF}

        _each(
            self,
            request,
            queryset.order_by("pk"),
            one,
            detail=gettext("商家取消订单"),
            done=gettext("已取消 %(n)d 个订单。"),
        )
        return None

    @admin.action(description=_("退款"), permissions=["refund"])
    def book_refund(self, request: HttpRequest, queryset: QuerySet[Order]) -> TemplateResponse | None:
        order = _one(self, request, queryset)
        if order is None:
            return None
        form, valid = _posted(request, RefundForm)
        if not valid:
            left = format_yuan(order.total_fen - order.refund_booked_fen)
            return _page(
                self,
                request,
                queryset,
                action="book_refund",
                title=gettext("退款"),
                lines=[self._summary(order), gettext("可退金额：%(left)s") % {"left": left}],
                confirm_label=gettext("确认退款"),
                form=form,
            )
        data = form.cleaned_data
        amount_fen, points = yuan_to_fen(data["amount_yuan"]), data.get("points") or 0

        def one(item: Order) -> tuple[Model, dict[str, Any], dict[str, Any]]:
            refund = refunds.book(
                item,
                amount_fen=amount_fen,
                points=points,
                reason=RefundReason.MANUAL,
                actor=_actor(request),
                note=data["note"],
            )
            after = {"refund_no": refund.refund_no, "amount_fen": amount_fen, "points": points, "note": data["note"]}
            return refund, {"refund_booked_fen": item.refund_booked_fen}, after

        _each(self, request, [order], one, detail=gettext("人工退款"), done=gettext("已提交 %(n)d 笔退款。"))
        return None


class AfterSaleLineInline(_ReadOnlyInline):
    model = AfterSaleLine
    fields = ("order_line", "quantity", "amount", "points")
    readonly_fields = fields
    amount = _money("amount_fen", _("退款金额"))


class ConfirmReturnForm(forms.Form):
    restock = forms.BooleanField(
        label=_("退货入库"), required=False, initial=True, help_text=_("商品完好可再售时勾选。")
    )


@admin.register(AfterSale, site=site)
class AfterSaleAdmin(_ActionsOnlyAdmin):
    list_display = ("number", "order_link", "kind", "status", "reason", "amount", "requested_at", "due_at")
    list_filter = ("status", "kind", "reason")
    search_fields = ("=number", "=order__number", "=order__member__id")
    list_select_related = ("order",)
    inlines = [AfterSaleLineInline]
    actions = ["approve", "reject", "confirm_return"]
    amount = _money("amount_fen", _("退款金额"))

    @admin.display(description=_("订单"))
    def order_link(self, obj: AfterSale) -> SafeString | str:
        return _link(obj.order, obj.order.number)

    def _lines(self, queryset: QuerySet[AfterSale]) -> list[str]:
        return [
            f"{a.number}：{a.get_kind_display()}，{a.get_status_display()}，{format_yuan(a.amount_fen)}"
            for a in queryset.order_by("pk")
        ]

    def _decide(
        self,
        request: HttpRequest,
        queryset: QuerySet[AfterSale],
        service: Callable[..., AfterSale],
        detail: str,
        done: str,
        **extra: Any,
    ) -> None:
        def one(item: AfterSale) -> tuple[Model, dict[str, Any], dict[str, Any]]:
            changed = service(item, actor=_actor(request), **extra)
            return changed, {"status": item.status}, {"status": changed.status, **extra}

        _each(self, request, queryset.order_by("pk"), one, detail=detail, done=done)

    @admin.action(description=_("同意售后"), permissions=["change"])
    def approve(self, request: HttpRequest, queryset: QuerySet[AfterSale]) -> TemplateResponse | None:
        form, valid = _posted(request, OptionalNoteForm)
        if not valid:
            return _page(
                self,
                request,
                queryset,
                action="approve",
                title=gettext("同意售后"),
                question=gettext("同意后：退货退款等待买家寄回，仅退款立即退款。"),
                lines=self._lines(queryset),
                confirm_label=gettext("确认同意"),
                form=form,
            )
        self._decide(
            request,
            queryset,
            aftersales.approve,
            gettext("同意售后"),
            gettext("已同意 %(n)d 个售后申请。"),
            note=form.cleaned_data["note"],
        )
        return None

    @admin.action(description=_("拒绝售后"), permissions=["change"])
    def reject(self, request: HttpRequest, queryset: QuerySet[AfterSale]) -> TemplateResponse | None:
        form, valid = _posted(request, NoteForm)
        if not valid:
            return _page(
                self,
                request,
                queryset,
                action="reject",
                title=gettext("拒绝售后"),
                lines=self._lines(queryset),
                confirm_label=gettext("确认拒绝"),
                form=form,
            )
        self._decide(
            request,
            queryset,
            aftersales.reject,
            gettext("拒绝售后"),
            gettext("已拒绝 %(n)d 个售后申请。"),
            note=form.cleaned_data["note"],
        )
        return None

    @admin.action(description=_("确认收到退货并退款"), permissions=["change"])
    def confirm_return(self, request: HttpRequest, queryset: QuerySet[AfterSale]) -> TemplateResponse | None:
        form, valid = _posted(request, ConfirmReturnForm)
        if not valid:
            return _page(
                self,
                request,
                queryset,
                action="confirm_return",
                title=gettext("确认收到退货"),
                lines=self._lines(queryset),
                confirm_label=gettext("确认收货并退款"),
                form=form,
            )
        self._decide(
            request,
            queryset,
            aftersales.confirm_return,
            gettext("确认收到退货"),
            gettext("已确认 %(n)d 个退货，退款已提交。"),
            restock=form.cleaned_data["restock"],
        )
        return None


@admin.register(Payment, site=site)
class PaymentAdmin(_ReadOnlyAdmin):
    list_display = ("out_trade_no", "order", "method", "amount", "status", "transaction_id", "created_at", "paid_at")
    list_filter = ("status", "method")
    search_fields = ("=out_trade_no", "=transaction_id", "=order__number")
    list_select_related = ("order",)
    exclude = ("payer_openid", "prepay_id")
    amount = _money("amount_fen", _("金额"))


@admin.register(Refund, site=site)
class RefundAdmin(_ReadOnlyAdmin):
    list_display = (
        "refund_no",
        "order",
        "reason",
        "amount",
        "points",
        "status",
        "created_by",
        "created_at",
        "finished_at",
    )
    list_filter = ("status", "reason")
    search_fields = ("=refund_no", "=order__number", "=provider_refund_id")
    list_select_related = ("order",)
    amount = _money("amount_fen", _("退款金额"))


@admin.register(PayNotification, site=site)
class PayNotificationAdmin(_ReadOnlyAdmin):
    list_display = ("received_at", "event_type", "event_id", "processed_at", "result")
    list_filter = ("event_type",)
    search_fields = ("=event_id", "result")


# --- coupons ----------------------------------------------------------------------------------------


class CouponTemplateForm(YuanModelForm):
    yuan_fields = {
        "amount_off_yuan": "amount_off_fen",
        "max_discount_yuan": "max_discount_fen",
        "threshold_yuan": "threshold_fen",
    }
    amount_off_yuan = YuanField(label=_("减免金额（元）"), required=False, help_text=_("满减券填写。"))
    max_discount_yuan = YuanField(
        label=_("最多减免（元）"), required=False, help_text=_("折扣券可填；不填表示不封顶。")
    )
    threshold_yuan = YuanField(label=_("使用门槛（元）"), required=False, help_text=_("不填表示无门槛。"))

    class Meta:
        model = CouponTemplate
        fields = [
            "name",
            "description",
            "kind",
            "percent_off",
            "scope",
            "products",
            "categories",
            "validity",
            "valid_from",
            "valid_until",
            "valid_days",
            "is_claimable",
            "claim_starts_at",
            "claim_ends_at",
            "total_quantity",
            "per_member_limit",
            "status",
        ]


class IssueForm(forms.Form):
    member_id = forms.IntegerField(label=_("会员 ID"), required=False, min_value=1)
    tag = forms.ModelChoiceField(label=_("或：标签下的全部会员"), queryset=MemberTag.objects.all(), required=False)
    batch = forms.CharField(widget=forms.HiddenInput, max_length=32)  # one issuance per member per form

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean() or {}
        if bool(cleaned.get("member_id")) == bool(cleaned.get("tag")):
            raise ValidationError(gettext("请填写会员 ID 或选择一个标签（二选一）。"))
        return cleaned


@admin.register(CouponTemplate, site=site)
class CouponTemplateAdmin(CounterSafeAdmin):
    form = CouponTemplateForm
    counters = ("issued",)
    list_display = ("name", "kind", "face", "threshold", "status", "issued", "total_quantity", "validity", "created_at")
    list_filter = ("status", "kind", "scope", "is_claimable")
    search_fields = ("name",)
    filter_horizontal = ("products", "categories")
    readonly_fields = ("issued", "created_at", "created_by")
    actions = ["issue"]
    fieldsets = (
        (None, {"fields": ("name", "description", "status")}),
        (_("优惠"), {"fields": ("kind", "amount_off_yuan", "percent_off", "max_discount_yuan", "threshold_yuan")}),
        (_("适用范围"), {"fields": ("scope", "products", "categories")}),
        (_("有效期"), {"fields": ("validity", "valid_from", "valid_until", "valid_days")}),
        (
            _("发放"),
            {
                "fields": (
                    "is_claimable",
                    "claim_starts_at",
                    "claim_ends_at",
                    "total_quantity",
                    "per_member_limit",
                    "issued",
                    "created_at",
                    "created_by",
                )
            },
        ),
    )
    threshold = _money("threshold_fen", _("使用门槛"))

    @admin.display(description=_("面额"))
    def face(self, obj: CouponTemplate) -> str:
        if obj.kind == "percent_off":
            return f"减 {obj.percent_off}%"
        return format_yuan(obj.amount_off_fen)

    def save_model(self, request: HttpRequest, obj: Any, form: Any, change: bool) -> None:
        if not change:
            obj.created_by = request.user.get_username()[:150]
        super().save_model(request, obj, form, change)

    def has_issue_permission(self, request: HttpRequest) -> bool:
        return bool(request.user.has_perm("commerce.add_membercoupon"))

    @admin.action(description=_("发放给会员"), permissions=["issue"])
    def issue(self, request: HttpRequest, queryset: QuerySet[CouponTemplate]) -> TemplateResponse | None:
        template = _one(self, request, queryset)
        if template is None:
            return None
        form, valid = _posted(request, IssueForm, initial={"batch": uuid.uuid4().hex[:16]})
        if not valid:
            line = gettext("%(name)s：已发放 %(issued)d 张，状态：%(status)s") % {
                "name": template.name,
                "issued": template.issued,
                "status": template.get_status_display(),
            }
            return _page(
                self,
                request,
                queryset,
                action="issue",
                title=gettext("发放优惠券"),
                lines=[line],
                confirm_label=gettext("确认发放"),
                form=form,
            )
        data = form.cleaned_data
        if data.get("member_id"):
            member_ids = [data["member_id"]]
        else:
            member_ids = list(
                MemberTagging.objects.filter(tag=data["tag"], member__erased_at__isnull=True)
                .order_by("member_id")
                .values_list("member_id", flat=True)[: MAX_TAG_ISSUE + 1]
            )
            if len(member_ids) > MAX_TAG_ISSUE:
                self.message_user(
                    request, gettext("该标签会员超过 %(n)d 人，请分批发放。") % {"n": MAX_TAG_ISSUE}, messages.ERROR
                )
                return None
        source = f"issue:{data['batch']}"
        issued, refusals = 0, dict[str, int]()
        for member_id in member_ids:
            try:
                coupons.issue(template.pk, member_id, source=source)
            except JiumaError as exc:
                refusals[exc.message] = refusals.get(exc.message, 0) + 1
                continue
            issued += 1
        for message, count in refusals.items():
            self.message_user(request, gettext("%(n)d 人未发放：%(m)s") % {"n": count, "m": message}, messages.ERROR)
        if issued:
            audit.record(
                AuditAction.ACTION,
                obj=template,
                after={
                    "issued_to": len(member_ids),
                    "issued": issued,
                    "source": source,
                    "tag": str(data.get("tag") or ""),
                },
                detail=gettext("发放优惠券"),
            )
            self.message_user(request, gettext("已发放 %(n)d 张优惠券。") % {"n": issued}, messages.SUCCESS)
        return None


@admin.register(MemberCoupon, site=site)
class MemberCouponAdmin(_ActionsOnlyAdmin):
    list_display = ("code", "template", "member", "status", "valid_from", "valid_until", "order", "issued_at")
    list_filter = ("status", "template")
    search_fields = ("=code", "=member__id", "template__name")
    list_select_related = ("template", "member", "order")
    actions = ["revoke"]

    @admin.action(description=_("作废"), permissions=["change"])
    def revoke(self, request: HttpRequest, queryset: QuerySet[MemberCoupon]) -> TemplateResponse | None:
        if request.POST.get("post") != "yes":
            return _page(
                self,
                request,
                queryset,
                action="revoke",
                title=gettext("作废优惠券"),
                question=gettext("作废后会员不能再使用这些优惠券。"),
                lines=[f"{c.code} {c.template}：{c.get_status_display()}" for c in queryset.select_related("template")],
                confirm_label=gettext("确认作废"),
            )

        def one(item: MemberCoupon) -> tuple[Model, dict[str, Any], dict[str, Any]]:
            revoked = coupons.revoke(item.pk, actor=_actor(request))
            return revoked, {"status": item.status}, {"status": revoked.status}

        _each(
            self,
            request,
            queryset.order_by("pk"),
            one,
            detail=gettext("作废优惠券"),
            done=gettext("已作废 %(n)d 张优惠券。"),
        )
        return None


# --- points mall, group buy, bargain ----------------------------------------------------------------


class MallItemForm(YuanModelForm):
    yuan_fields = {"cash_price_yuan": "cash_price_fen"}
    cash_price_yuan = YuanField(label=_("另需现金（元）"), initial=Decimal("0"))

    class Meta:
        model = MallItem
        fields = [
            "sku",
            "title",
            "points_price",
            "quantity",
            "per_member_limit",
            "allow_delivery",
            "allow_pickup",
            "is_active",
            "starts_at",
            "ends_at",
            "position",
        ]


@admin.register(MallItem, site=site)
class MallItemAdmin(CounterSafeAdmin):
    form = MallItemForm
    counters = ("sold",)
    list_display = (
        "title",
        "sku",
        "points_price",
        "cash_price",
        "sold",
        "quantity",
        "is_active",
        "starts_at",
        "ends_at",
    )
    list_filter = ("is_active",)
    search_fields = ("title", "sku__code")
    list_select_related = ("sku__product",)
    fields = (
        "sku",
        "title",
        "points_price",
        "cash_price_yuan",
        "quantity",
        "sold",
        "per_member_limit",
        "allow_delivery",
        "allow_pickup",
        "is_active",
        "starts_at",
        "ends_at",
        "position",
    )
    readonly_fields = ("sold",)
    cash_price = _money("cash_price_fen", _("另需现金"))


class GroupBuyCampaignForm(YuanModelForm):
    yuan_fields = {"group_price_yuan": "group_price_fen"}
    group_price_yuan = YuanField(label=_("拼团价（元）"))

    class Meta:
        model = GroupBuyCampaign
        fields = [
            "name",
            "sku",
            "team_size",
            "team_hours",
            "starts_at",
            "ends_at",
            "quantity",
            "per_order_limit",
            "member_limit",
            "pays_commission",
            "is_active",
        ]


class GroupBuyTeamInline(_ReadOnlyInline):
    model = GroupBuyTeam
    fields = (
        "leader",
        "status",
        "size",
        "seats_taken",
        "seats_paid",
        "created_at",
        "opened_at",
        "expires_at",
        "finished_at",
    )
    readonly_fields = fields
    ordering = ("-id",)


@admin.register(GroupBuyCampaign, site=site)
class GroupBuyCampaignAdmin(CounterSafeAdmin):
    form = GroupBuyCampaignForm
    counters = ("sold",)
    list_display = ("name", "sku", "group_price", "team_size", "sold", "quantity", "is_active", "starts_at", "ends_at")
    list_filter = ("is_active",)
    search_fields = ("name", "sku__code")
    list_select_related = ("sku__product",)
    fields = (
        "name",
        "sku",
        "group_price_yuan",
        "team_size",
        "team_hours",
        "starts_at",
        "ends_at",
        "quantity",
        "sold",
        "per_order_limit",
        "member_limit",
        "pays_commission",
        "is_active",
    )
    readonly_fields = ("sold",)
    inlines = [GroupBuyTeamInline]
    group_price = _money("group_price_fen", _("拼团价"))


class BargainCampaignForm(YuanModelForm):
    yuan_fields = {"start_price_yuan": "start_price_fen", "floor_price_yuan": "floor_price_fen"}
    start_price_yuan = YuanField(label=_("起始价（元）"))
    floor_price_yuan = YuanField(label=_("底价（元）"))

    class Meta:
        model = BargainCampaign
        fields = [
            "name",
            "sku",
            "max_helps",
            "session_hours",
            "starts_at",
            "ends_at",
            "quantity",
            "member_limit",
            "helper_limit",
            "allow_buy_above_floor",
            "pays_commission",
            "is_active",
        ]


class BargainSessionInline(_ReadOnlyInline):
    model = BargainSession
    fields = ("member", "status", "start", "current", "floor", "helps_count", "max_helps", "expires_at", "order")
    readonly_fields = fields
    ordering = ("-id",)
    start = _money("start_price_fen", _("起始价"))
    current = _money("current_price_fen", _("当前价"))
    floor = _money("floor_price_fen", _("底价"))


@admin.register(BargainCampaign, site=site)
class BargainCampaignAdmin(CounterSafeAdmin):
    form = BargainCampaignForm
    counters = ("sold",)
    list_display = (
        "name",
        "sku",
        "start_price",
        "floor_price",
        "max_helps",
        "sold",
        "quantity",
        "is_active",
        "starts_at",
    )
    list_filter = ("is_active",)
    search_fields = ("name", "sku__code")
    list_select_related = ("sku__product",)
    fields = (
        "name",
        "sku",
        "start_price_yuan",
        "floor_price_yuan",
        "max_helps",
        "session_hours",
        "starts_at",
        "ends_at",
        "quantity",
        "sold",
        "member_limit",
        "helper_limit",
        "allow_buy_above_floor",
        "pays_commission",
        "is_active",
    )
    readonly_fields = ("sold",)
    inlines = [BargainSessionInline]
    start_price = _money("start_price_fen", _("起始价"))
    floor_price = _money("floor_price_fen", _("底价"))


# --- distribution -----------------------------------------------------------------------------------


class DistributionPolicyForm(YuanModelForm):
    yuan_fields = {"min_withdrawal_yuan": "min_withdrawal_fen"}
    min_withdrawal_yuan = YuanField(label=_("最低提现金额（元）"), min_value=Decimal("0.01"))

    class Meta:
        model = DistributionPolicy
        fields = ["is_enabled", "levels", "rate_l1_bp", "rate_l2_bp", "requires_approval", "binding_days"]


@admin.register(DistributionPolicy, site=site)
class DistributionPolicyAdmin(SingletonAdmin):
    form = DistributionPolicyForm
    list_display = ("__str__", "is_enabled", "levels", "rate_l1_bp", "rate_l2_bp", "min_withdrawal", "updated_at")
    fields = (
        "is_enabled",
        "levels",
        "rate_l1_bp",
        "rate_l2_bp",
        "requires_approval",
        "binding_days",
        "min_withdrawal_yuan",
    )
    min_withdrawal = _money("min_withdrawal_fen", _("最低提现金额"))


@admin.register(CommissionRate, site=site)
class CommissionRateAdmin(AuditedModelAdmin):
    list_display = ("product", "rate_l1_bp", "rate_l2_bp")
    search_fields = ("product__name",)
    list_select_related = ("product",)


@admin.register(Affiliate, site=site)
class AffiliateAdmin(_ActionsOnlyAdmin):
    list_display = ("member", "parent", "status", "applied_at", "approved_at", "reviewed_by")
    list_filter = ("status",)
    search_fields = ("=member__id", "member__nickname", "=member__phone_hint")
    list_select_related = ("member", "parent__member")
    actions = ["approve", "reject", "suspend", "resume"]
    readonly_fields = ("balances",)

    @admin.display(description=_("佣金余额"))
    def balances(self, obj: Affiliate) -> str:
        held = distribution.balances(obj)
        return gettext("待结算 %(p)s，冻结 %(f)s，已结算 %(s)s") % {
            "p": format_yuan(held.pending),
            "f": format_yuan(held.frozen),
            "s": format_yuan(held.settled),
        }

    def _move(
        self,
        request: HttpRequest,
        queryset: QuerySet[Affiliate],
        service: Callable[..., Affiliate],
        detail: str,
        done: str,
    ) -> None:
        def one(item: Affiliate) -> tuple[Model, dict[str, Any], dict[str, Any]]:
            moved = service(item, actor=_actor(request))
            return moved, {"status": item.status}, {"status": moved.status}

        _each(self, request, queryset.order_by("pk"), one, detail=detail, done=done)

    @admin.action(description=_("通过申请"), permissions=["change"])
    def approve(self, request: HttpRequest, queryset: QuerySet[Affiliate]) -> None:
        self._move(request, queryset, distribution.approve, gettext("通过分销员申请"), gettext("已通过 %(n)d 个申请。"))

    @admin.action(description=_("拒绝申请"), permissions=["change"])
    def reject(self, request: HttpRequest, queryset: QuerySet[Affiliate]) -> None:
        self._move(request, queryset, distribution.reject, gettext("拒绝分销员申请"), gettext("已拒绝 %(n)d 个申请。"))

    @admin.action(description=_("停用"), permissions=["change"])
    def suspend(self, request: HttpRequest, queryset: QuerySet[Affiliate]) -> None:
        self._move(request, queryset, distribution.suspend, gettext("停用分销员"), gettext("已停用 %(n)d 个分销员。"))

    @admin.action(description=_("恢复"), permissions=["change"])
    def resume(self, request: HttpRequest, queryset: QuerySet[Affiliate]) -> None:
        self._move(request, queryset, distribution.resume, gettext("恢复分销员"), gettext("已恢复 %(n)d 个分销员。"))


@admin.register(CommissionEntry, site=site)
class CommissionEntryAdmin(_ReadOnlyAdmin):
    list_display = ("created_at", "affiliate", "kind", "from_state", "to_state", "amount", "level", "source")
    list_filter = ("kind", "level")
    search_fields = ("=source", "=affiliate__member__id")
    list_select_related = ("affiliate__member",)
    amount = _money("amount_fen", _("金额"))


WithdrawalApprover = Callable[..., Any]
_approver: list[WithdrawalApprover] = [distribution.approve_withdrawal]


def set_withdrawal_approver(approver: WithdrawalApprover) -> None:
    """rewards installs commission_payouts.approve here (approve and create the payout at once)."""
    _approver[0] = approver


def withdrawal_approver() -> WithdrawalApprover:
    return _approver[0]


@admin.register(CommissionWithdrawal, site=site)
class CommissionWithdrawalAdmin(_ActionsOnlyAdmin):
    list_display = (
        "id",
        "affiliate",
        "amount",
        "status",
        "requested_at",
        "reviewed_by",
        "reviewed_at",
        "payout_bill_no",
    )
    list_filter = ("status",)
    search_fields = ("=id", "=affiliate__member__id", "=payout_bill_no")
    list_select_related = ("affiliate__member",)
    actions = ["approve", "reject"]
    amount = _money("amount_fen", _("提现金额"))

    def has_decide_permission(self, request: HttpRequest) -> bool:
        """Approving pays money (a payout): the withdrawal's change permission and the payouts'."""
        user = request.user
        return bool(user.has_perm("commerce.change_commissionwithdrawal") and user.has_perm("rewards.add_payout"))

    def _lines(self, queryset: QuerySet[CommissionWithdrawal]) -> list[str]:
        return [
            f"#{w.pk} {w.affiliate.member}：{format_yuan(w.amount_fen)}，{w.get_status_display()}"
            for w in queryset.select_related("affiliate__member").order_by("pk")
        ]

    @admin.action(description=_("批准提现（打款）"), permissions=["decide"])
    def approve(self, request: HttpRequest, queryset: QuerySet[CommissionWithdrawal]) -> TemplateResponse | None:
        if request.POST.get("post") != "yes":
            return _page(
                self,
                request,
                queryset,
                action="approve",
                title=gettext("批准提现"),
                question=gettext("批准后将通过微信转账打款给分销员。"),
                lines=self._lines(queryset),
                confirm_label=gettext("确认批准"),
            )
        approve = withdrawal_approver()

        def one(item: CommissionWithdrawal) -> tuple[Model, dict[str, Any], dict[str, Any]]:
            result = approve(item, actor=_actor(request))
            after: dict[str, Any] = {"status": CommissionWithdrawal.objects.get(pk=item.pk).status}
            if not isinstance(result, CommissionWithdrawal):
                after["payout"] = str(getattr(result, "out_bill_no", result))
            return item, {"status": item.status}, after

        _each(
            self,
            request,
            queryset.order_by("pk"),
            one,
            detail=gettext("批准佣金提现"),
            done=gettext("已批准 %(n)d 笔提现。"),
        )
        return None

    @admin.action(description=_("驳回提现（金额退回可提现余额）"), permissions=["decide"])
    def reject(self, request: HttpRequest, queryset: QuerySet[CommissionWithdrawal]) -> TemplateResponse | None:
        form, valid = _posted(request, NoteForm)
        if not valid:
            return _page(
                self,
                request,
                queryset,
                action="reject",
                title=gettext("驳回提现"),
                lines=self._lines(queryset),
                confirm_label=gettext("确认驳回"),
                form=form,
            )
        note = form.cleaned_data["note"]

        def one(item: CommissionWithdrawal) -> tuple[Model, dict[str, Any], dict[str, Any]]:
            rejected = distribution.reject_withdrawal(item, actor=_actor(request), note=note)
            return rejected, {"status": item.status}, {"status": rejected.status, "note": note}

        _each(
            self,
            request,
            queryset.order_by("pk"),
            one,
            detail=gettext("驳回佣金提现"),
            done=gettext("已驳回 %(n)d 笔提现。"),
        )
        return None


__all__ = ["format_yuan", "set_withdrawal_approver", "yuan_to_fen"]
