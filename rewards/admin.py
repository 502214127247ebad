"""Scan-to-win in the brand console's admin: campaigns with their prize tables, the draws (抽奖记录),
the red packets (红包发放) and the budget ledger (预算流水).

- A campaign is created with its prize table in one call to `campaigns.create_campaign` (the add
  form and the prize inline are checked as a whole first, by the service's own rules). Money is
  entered in yuan with at most two decimals and odds as a percentage with at most four; both become
  integers (fen, parts per million) by exact Decimal arithmetic, never through a float.
- A draft may be edited (fields and prizes, the same rules, one transaction that holds the campaign's
  row lock against a concurrent publish). Once published, a campaign is read-only here: its prizes,
  odds, quantities and window never change (the rules were made public). It is published, cancelled
  or ended (seed revealed) by the admin actions, which call the services and confirm first.
- Draws, payouts and budget entries are written by the services only; the console reads them. Held
  payouts are approved or rejected through `payouts.approve` / `payouts.reject` by roles that may
  change payouts (finance, the owner); every action is audited.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from datetime import datetime
from decimal import Decimal
from functools import partial
from typing import Any
from zoneinfo import ZoneInfo

from django import forms
from django.contrib import admin, messages
from django.contrib.admin import helpers
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django.db.models import Model, QuerySet, Sum
from django.forms.models import BaseInlineFormSet
from django.http import HttpRequest
from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils import formats, timezone
from django.utils.html import format_html, format_html_join
from django.utils.safestring import SafeString
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _

from codes.models import Batch
from commerce import regions
from commerce.models import Dealer, Sku
from commerce.services.points import MAX_AMOUNT as POINTS_MAX
from rewards import risk
from rewards.models import (
    ODDS_SCALE,
    BlockedItem,
    BudgetEntry,
    Campaign,
    CampaignStatus,
    CardSet,
    Claim,
    ClaimStatus,
    Payout,
    PayoutStatus,
    Prize,
    PrizeKind,
    Referral,
    ReferralProgram,
    RiskPolicy,
)
from rewards.services import campaigns, claims, payouts
from rewards.services.campaigns import PrizeSpec
from tenants.brand import audit
from tenants.brand.admin import (
    AuditedModelAdmin,
    SingletonAdmin,
    YuanField,
    fen_to_yuan,
    format_yuan,
    site,
    yuan_to_fen,
)
from tenants.brand.models import AuditAction
from tenants.errors import JiumaError

SHANGHAI = ZoneInfo("Asia/Shanghai")
PPM_PER_PERCENT = ODDS_SCALE // 100  # 1% of the draws = 10,000 parts per million
CONFIRM_TEMPLATE = "admin/rewards/confirm_action.html"


def _invalid(exc: JiumaError) -> ValidationError:
    return ValidationError(exc.message, code=exc.code)


# --- money and odds ---------------------------------------------------------------------------------


def percent_to_ppm(percent: Decimal) -> int:
    """Exact: "0.5" % is 5,000 parts per million (at most four decimals, so always whole)."""
    ppm = percent * PPM_PER_PERCENT
    if ppm != ppm.to_integral_value():
        raise ValueError(f"{percent}% is not a whole number of parts per million")
    return int(ppm)


def ppm_to_percent(ppm: int) -> Decimal:
    return Decimal(ppm).scaleb(-4)


def format_percent(ppm: int) -> str:
    text = f"{ppm_to_percent(ppm):f}"
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    return f"{text}%"


def _local(value: Any) -> str:
    return timezone.localtime(value, SHANGHAI).strftime("%Y-%m-%d %H:%M") if value is not None else "—"


class PercentField(forms.DecimalField):
    """Odds as a percentage: 0 to 100 with up to four decimals (0.0001% = 1 in a million)."""

    def __init__(self, **kwargs: Any) -> None:
        kwargs.setdefault("max_digits", 7)
        kwargs.setdefault("decimal_places", 4)
        kwargs.setdefault("min_value", Decimal("0"))
        kwargs.setdefault("max_value", Decimal("100"))
        super().__init__(**kwargs)


# --- confirmation of irreversible actions ---------------------------------------------------------


def _confirm(
    model_admin: admin.ModelAdmin,  # type: ignore[type-arg]
    request: HttpRequest,
    queryset: QuerySet[Any],
    *,
    action: str,
    title: str,
    question: str,
    lines: Sequence[str],
    confirm_label: str,
    warning: str = "",
) -> TemplateResponse | None:
    """The confirmation page of an action (None once confirmed: the page posts `post=yes`)."""
    if request.POST.get("post") == "yes":
        return None
    opts = model_admin.model._meta
    context = {
        **model_admin.admin_site.each_context(request),
        "title": title,
        "opts": opts,
        "queryset": queryset,
        "action_checkbox_name": helpers.ACTION_CHECKBOX_NAME,
        "action": action,
        "question": question,
        "lines": lines,
        "warning": warning,
        "confirm_label": confirm_label,
        "media": model_admin.media,
    }
    request.current_app = model_admin.admin_site.name
    return TemplateResponse(request, CONFIRM_TEMPLATE, context)


# --- campaigns --------------------------------------------------------------------------------------


def _is_draft(obj: Campaign | None) -> bool:
    return obj is None or obj.status == CampaignStatus.DRAFT


class PrizeForm(forms.ModelForm):  # type: ignore[type-arg]
    """One row of the prize table. Money in yuan and odds in percent; `spec` is the row as the
    service takes it (fen and parts per million), set once the row is valid."""

    amount_yuan = YuanField(label=_("红包金额（元）"), required=False)
    value_yuan = YuanField(label=_("奖品价值（元）"), required=False, help_text=_("实物奖品的市场价值。"))
    points = forms.IntegerField(label=_("酒币数量"), required=False, min_value=0, max_value=POINTS_MAX)
    odds_percent = PercentField(label=_("中奖概率（%）"), help_text=_("最多 4 位小数，如 0.5 表示千分之五。"))

    class Meta:
        model = Prize
        fields = [
            "name",
            "kind",
            "amount_yuan",
            "points",
            "value_yuan",
            "card_set",
            "odds_percent",
            "quantity",
            "is_guarantee",
        ]
        help_texts = {"card_set": _("集卡奖品：中奖者按各卡片的稀有度权重获得该套系的一张卡片。")}

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.spec: PrizeSpec | None = None
        prize = self.instance
        if prize.pk is not None:
            self.initial["odds_percent"] = ppm_to_percent(prize.odds_ppm)
            if prize.amount_fen:
                self.initial["amount_yuan"] = fen_to_yuan(prize.amount_fen)
            if prize.value_fen:
                self.initial["value_yuan"] = fen_to_yuan(prize.value_fen)

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean() or {}
        if self.errors:
            return cleaned
        kind = cleaned.get("kind", "")
        amount, value = cleaned.get("amount_yuan"), cleaned.get("value_yuan")
        card_set = cleaned.get("card_set")
        spec = PrizeSpec(
            name=cleaned.get("name", ""),
            kind=kind,
            odds_ppm=percent_to_ppm(cleaned["odds_percent"]),
            quantity=cleaned.get("quantity") or 0,
            amount_fen=yuan_to_fen(amount) if kind == PrizeKind.CASH and amount is not None else 0,
            points=(cleaned.get("points") or 0) if kind == PrizeKind.POINTS else 0,
            value_fen=yuan_to_fen(value) if kind == PrizeKind.PHYSICAL and value is not None else 0,
            is_guarantee=bool(cleaned.get("is_guarantee")),
            card_set_id=card_set.pk if kind == PrizeKind.CARD and card_set is not None else None,
        )
        try:
            campaigns.check_prizes([spec])  # this row alone; the table as a whole in the formset
        except JiumaError as exc:
            raise _invalid(exc) from exc
        self.spec = spec
        return cleaned


class PrizeFormSet(BaseInlineFormSet):  # type: ignore[type-arg]
    """The prize table as a whole, by the service's rules (odds adding up to at most 100%, one
    guarantee prize, and one if the campaign guarantees the first scan)."""

    specs: list[PrizeSpec]

    def clean(self) -> None:
        super().clean()
        self.specs = []
        if any(self.errors):
            return
        self.specs = [
            form.spec
            for form in self.forms
            if isinstance(form, PrizeForm) and form.spec is not None and not form.cleaned_data.get("DELETE")
        ]
        try:
            # The campaign form was validated first: its values are on the (shared) instance.
            campaigns.check_prizes(self.specs, first_scan_guarantee=self.instance.first_scan_guarantee)
        except JiumaError as exc:
            raise _invalid(exc) from exc
        self._check_card_deadlines()

    def _check_card_deadlines(self) -> None:
        """A card won on the campaign's last day must still be exchangeable: each card prize's set
        closes its exchange after the campaign ends."""
        ends_at = self.instance.ends_at
        set_ids = {spec.card_set_id for spec in self.specs if spec.card_set_id is not None}
        if ends_at is None or not set_ids:
            return
        closing = CardSet.objects.filter(pk__in=set_ids, exchange_ends_at__lte=ends_at).order_by("id").first()
        if closing is not None:
            raise ValidationError(
                gettext("卡片套系“%(name)s”的兑换截止时间须晚于活动结束时间。") % {"name": closing.name},
                code="invalid_prize",
            )


class PrizeInline(admin.TabularInline):  # type: ignore[type-arg]
    model = Prize
    form = PrizeForm
    formset = PrizeFormSet
    ordering = ("position", "id")
    editable_fields = (
        "name",
        "kind",
        "amount_yuan",
        "points",
        "value_yuan",
        "card_set",
        "odds_percent",
        "quantity",
        "is_guarantee",
    )
    shown_fields = ("name", "kind", "worth", "odds", "quantity", "awarded", "is_guarantee")

    def get_extra(self, request: HttpRequest, obj: Any = None, **kwargs: Any) -> int:
        return 2 if obj is None else 1

    def _editable(self, request: HttpRequest, obj: Any) -> bool:
        return _is_draft(obj) and (
            self.has_add_permission(request, obj) if obj is None else self.has_change_permission(request, obj)
        )

    def get_fields(self, request: HttpRequest, obj: Any = None) -> Any:
        return self.editable_fields if self._editable(request, obj) else self.shown_fields

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> Any:
        return () if self._editable(request, obj) else self.shown_fields

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return _is_draft(obj) and super().has_add_permission(request, obj)

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return _is_draft(obj) and super().has_change_permission(request, obj)

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return _is_draft(obj) and super().has_delete_permission(request, obj)

    @admin.display(description=_("奖品"))
    def worth(self, prize: Prize) -> str:
        if prize.kind == PrizeKind.CASH:
            return gettext("红包 %(amount)s") % {"amount": format_yuan(prize.amount_fen)}
        if prize.kind == PrizeKind.POINTS:
            return gettext("%(points)d 酒币") % {"points": prize.points}
        if prize.kind == PrizeKind.CARD:
            return gettext("集卡：%(name)s") % {"name": prize.card_set}
        return gettext("实物，价值 %(amount)s") % {"amount": format_yuan(prize.value_fen)}

    @admin.display(description=_("中奖概率"))
    def odds(self, prize: Prize) -> str:
        return format_percent(prize.odds_ppm)


_REGION_SEPARATORS = re.compile(r"[\s,，、;；]+")


class CampaignForm(forms.ModelForm):  # type: ignore[type-arg]
    """The campaign's fields for the add form and a draft's change form, checked by the rules of
    `campaigns.create_campaign` (its messages); the budget in yuan, the targets as choices."""

    budget_yuan = YuanField(
        label=_("现金预算（元）"), initial=Decimal("0"), help_text=_("现金红包占用的总额上限，最多 2 位小数。")
    )
    pacing_slack_percent = forms.IntegerField(label=_("匀速余量（%）"), min_value=0, max_value=100, initial=20)
    target_batches = forms.ModelMultipleChoiceField(
        label=_("指定批次"), queryset=Batch.objects.order_by("-id"), required=False, help_text=_("不选则不限。")
    )
    target_skus = forms.ModelMultipleChoiceField(
        label=_("指定商品规格"),
        queryset=Sku.objects.select_related("product").order_by("id"),
        required=False,
        help_text=_("不选则不限。"),
    )
    target_dealers = forms.ModelMultipleChoiceField(
        label=_("指定经销商"), queryset=Dealer.objects.order_by("code"), required=False, help_text=_("不选则不限。")
    )
    target_regions = forms.CharField(
        label=_("指定地区"),
        required=False,
        help_text=_("6 位行政区划代码，多个用逗号或空格分隔；不填则不限。"),
    )

    class Meta:
        model = Campaign
        fields = [
            "name",
            "description",
            "organiser",
            "contact",
            "starts_at",
            "ends_at",
            "priority",
            "pacing",
            "pacing_slack_percent",
            "first_scan_guarantee",
            "member_daily_cap",
            "member_total_cap",
        ]
        help_texts = {"starts_at": _("北京时间；活动规则须在开始前发布。"), "ends_at": _("北京时间。")}

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        campaign = self.instance
        if campaign.pk is not None:
            self.initial["budget_yuan"] = fen_to_yuan(campaign.budget_fen)
            self.initial["target_batches"] = list(campaign.target_batch_ids)
            self.initial["target_skus"] = list(campaign.target_sku_ids)
            self.initial["target_dealers"] = list(campaign.target_dealer_ids)
            self.initial["target_regions"] = " ".join(campaign.target_region_codes)

    def clean_target_regions(self) -> list[str]:
        codes = [code for code in _REGION_SEPARATORS.split(self.cleaned_data.get("target_regions") or "") if code]
        try:
            return campaigns.check_targets(codes)
        except JiumaError as exc:
            raise _invalid(exc) from exc

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean() or {}
        if self.instance.pk is not None:
            self._check_still_draft()
        starts_at, ends_at = cleaned.get("starts_at"), cleaned.get("ends_at")
        if starts_at is not None and ends_at is not None and ends_at <= starts_at:
            # On the field: the model's window constraint is then not checked again (generic message).
            self.add_error("ends_at", ValidationError(gettext("结束时间须晚于开始时间。"), code="invalid_campaign"))
        return cleaned

    def _check_still_draft(self) -> None:
        """A published campaign's rules are fixed. The row stays locked (the admin's transaction)
        until the edit is saved, so a concurrent publish waits for it."""
        rows = Campaign.objects.filter(pk=self.instance.pk)
        if transaction.get_connection().in_atomic_block:
            rows = rows.select_for_update()
        if rows.values_list("status", flat=True).first() != CampaignStatus.DRAFT:
            raise ValidationError(gettext("活动已发布或已结束，规则不能再修改。"), code="campaign_wrong_state")

    def campaign_values(self) -> dict[str, Any]:
        """The campaign's values as `create_campaign` takes them (money in fen)."""
        data = self.cleaned_data
        return {
            "name": data["name"].strip(),
            "description": data.get("description", ""),
            "organiser": data.get("organiser", ""),
            "contact": data.get("contact", ""),
            "starts_at": data["starts_at"],
            "ends_at": data["ends_at"],
            "priority": data.get("priority") or 0,
            "budget_fen": yuan_to_fen(data["budget_yuan"]),
            "pacing": bool(data.get("pacing")),
            "pacing_slack_percent": data["pacing_slack_percent"],
            "first_scan_guarantee": bool(data.get("first_scan_guarantee")),
            "member_daily_cap": data.get("member_daily_cap") or 0,
            "member_total_cap": data.get("member_total_cap") or 0,
            "target_batch_ids": sorted(batch.pk for batch in data.get("target_batches") or ()),
            "target_sku_ids": sorted(sku.pk for sku in data.get("target_skus") or ()),
            "target_dealer_ids": sorted(dealer.pk for dealer in data.get("target_dealers") or ()),
            "target_region_codes": list(data.get("target_regions") or ()),
        }


def _audit_state(campaign: Campaign) -> dict[str, Any]:
    """A campaign and its prize table, for the audit log."""
    state = audit.snapshot(campaign)
    state["prizes"] = list(
        Prize.objects.filter(campaign_id=campaign.pk)
        .order_by("position", "id")
        .values(
            "name", "kind", "amount_fen", "points", "value_fen", "card_set_id", "odds_ppm", "quantity", "is_guarantee"
        )
    )
    return state


@admin.register(Campaign, site=site)
class CampaignAdmin(AuditedModelAdmin):
    form = CampaignForm
    inlines = [PrizeInline]
    list_display = (
        "name",
        "status",
        "window",
        "priority",
        "budget",
        "spent",
        "prizes_awarded",
        "public_links",
    )
    list_filter = ("status",)
    search_fields = ("name", "organiser", "created_by")
    actions = ["publish", "cancel", "end_and_reveal"]
    editable_fieldsets = (
        (None, {"fields": ("name", "description", "organiser", "contact")}),
        (_("活动时间"), {"fields": ("starts_at", "ends_at", "priority")}),
        (
            _("预算与抽奖限制"),
            {
                "fields": (
                    "budget_yuan",
                    "pacing",
                    "pacing_slack_percent",
                    "first_scan_guarantee",
                    "member_daily_cap",
                    "member_total_cap",
                )
            },
        ),
        (_("活动范围"), {"fields": ("target_batches", "target_skus", "target_dealers", "target_regions")}),
    )
    draft_status_fieldset = (_("状态"), {"fields": ("status", "created_by", "created_at")})
    shown_fieldsets = (
        (None, {"fields": ("name", "description", "organiser", "contact", "status", "public_links")}),
        (_("活动时间"), {"fields": ("starts_at", "ends_at", "priority", "published_at", "ended_at")}),
        (
            _("预算与抽奖限制"),
            {
                "fields": (
                    "budget",
                    "spent",
                    "pacing",
                    "pacing_slack_percent",
                    "first_scan_guarantee",
                    "member_daily_cap",
                    "member_total_cap",
                )
            },
        ),
        (_("活动范围"), {"fields": ("targets",)}),
        (_("公平抽奖"), {"fields": ("seed_commitment", "seed_revealed")}),
        (_("创建"), {"fields": ("created_by", "created_at")}),
    )

    # Pages and permissions ----------------------------------------------------------------------

    def get_queryset(self, request: HttpRequest) -> QuerySet[Campaign]:
        return (
            super()
            .get_queryset(request)
            .annotate(awarded_total=Sum("prizes__awarded"), quantity_total=Sum("prizes__quantity"))
        )

    def get_fieldsets(self, request: HttpRequest, obj: Any = None) -> Any:
        if obj is None:
            return self.editable_fieldsets
        if obj.status == CampaignStatus.DRAFT and self.has_change_permission(request, obj):
            return (*self.editable_fieldsets, self.draft_status_fieldset)
        return self.shown_fieldsets

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> Any:
        if obj is None:
            return ()
        if obj.status == CampaignStatus.DRAFT and self.has_change_permission(request, obj):
            return self.draft_status_fieldset[1]["fields"]
        return [name for _title, options in self.shown_fieldsets for name in options["fields"]]

    def _can_edit_prizes(self, request: HttpRequest) -> bool:
        return all(request.user.has_perm(f"rewards.{verb}_prize") for verb in ("add", "change", "delete"))

    def has_add_permission(self, request: HttpRequest) -> bool:
        return super().has_add_permission(request) and self._can_edit_prizes(request)

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        """Only a draft is changed; a published, ended or cancelled campaign is shown read-only (a
        change posted to it is refused). Without `obj` (the actions): the role's permission."""
        if not super().has_change_permission(request, obj):
            return False
        return obj is None or (obj.status == CampaignStatus.DRAFT and self._can_edit_prizes(request))

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False  # cancel instead: a campaign and its draws stay on record

    # Columns -------------------------------------------------------------------------------------

    @admin.display(description=_("活动时间（北京时间）"), ordering="starts_at")
    def window(self, obj: Campaign) -> str:
        return f"{_local(obj.starts_at)} – {_local(obj.ends_at)}"

    @admin.display(description=_("现金预算"), ordering="budget_fen")
    def budget(self, obj: Campaign) -> str:
        return format_yuan(obj.budget_fen)

    @admin.display(description=_("已占用预算"), ordering="spent_fen")
    def spent(self, obj: Campaign) -> str:
        return format_yuan(obj.spent_fen)

    @admin.display(description=_("已发出/奖品总数"))
    def prizes_awarded(self, obj: Campaign) -> str:
        awarded = getattr(obj, "awarded_total", None)
        quantity = getattr(obj, "quantity_total", None)
        if awarded is None and quantity is None:
            totals = Prize.objects.filter(campaign_id=obj.pk).aggregate(a=Sum("awarded"), q=Sum("quantity"))
            awarded, quantity = totals["a"], totals["q"]
        return f"{awarded or 0}/{quantity or 0}"

    @admin.display(description=_("公开页面"))
    def public_links(self, obj: Campaign) -> SafeString | str:
        if obj.pk is None or obj.status not in (CampaignStatus.PUBLISHED, CampaignStatus.ENDED):
            return gettext("发布后公开")
        links = [(reverse("campaign-rules", args=[obj.pk]), gettext("活动规则"))]
        if obj.status == CampaignStatus.ENDED:
            links.append((reverse("campaign-draws", args=[obj.pk]), gettext("全部抽奖记录与种子")))
        return format_html_join(" · ", '<a href="{}" target="_blank" rel="noopener">{}</a>', links)

    @admin.display(description=_("活动范围"))
    def targets(self, obj: Campaign) -> str:
        parts = []
        if obj.target_batch_ids:
            numbers = Batch.objects.filter(pk__in=obj.target_batch_ids).values_list("number", flat=True)
            parts.append(gettext("批次：%(v)s") % {"v": "、".join(numbers)})
        if obj.target_sku_ids:
            skus = Sku.objects.select_related("product").filter(pk__in=obj.target_sku_ids)
            parts.append(gettext("商品规格：%(v)s") % {"v": "、".join(str(sku) for sku in skus)})
        if obj.target_dealer_ids:
            dealers = Dealer.objects.filter(pk__in=obj.target_dealer_ids)
            parts.append(gettext("经销商：%(v)s") % {"v": "、".join(str(dealer) for dealer in dealers)})
        if obj.target_region_codes:
            names = [
                region.full_name if (region := regions.get(code)) is not None else code
                for code in obj.target_region_codes
            ]
            parts.append(gettext("地区：%(v)s") % {"v": "、".join(names)})
        return "；".join(parts) or gettext("不限")

    # Saving: the campaign and its prizes together -----------------------------------------------

    def save_model(self, request: HttpRequest, obj: Model, form: Any, change: bool) -> None:
        """Nothing yet: the campaign is written with its prize table in save_related, which has the
        prize formset (one service call on add, one transaction on a draft's change)."""

    def save_related(self, request: HttpRequest, form: Any, formsets: Any, change: bool) -> None:
        prize_sets = [formset for formset in formsets if isinstance(formset, PrizeFormSet)]
        if len(prize_sets) != 1:
            raise PermissionDenied  # has_add/has_change_permission require the prize permissions
        specs = prize_sets[0].specs
        values = form.campaign_values()
        campaign = form.instance
        if change:
            self._save_draft(campaign, values, specs)
        else:
            # The form and the formset ran the service's checks: only a bug would make it refuse now.
            created = campaigns.create_campaign(**values, prizes=specs, created_by=request.user.get_username())
            # The admin goes on with `campaign` (log entry, message, redirect): make it the created row.
            for field in Campaign._meta.concrete_fields:
                setattr(campaign, field.attname, getattr(created, field.attname))
            campaign._state.adding = False
            campaign._state.db = created._state.db
            audit.record(AuditAction.CREATE, obj=created, after=_audit_state(created))
        for formset in formsets:  # read by the admin's change message; the rows were written here
            formset.new_objects, formset.changed_objects, formset.deleted_objects = [], [], []

    def _save_draft(self, campaign: Campaign, values: dict[str, Any], specs: Sequence[PrizeSpec]) -> None:
        """Through campaigns.update_draft (refused if no longer a draft), audited before/after."""
        # The stored row (the admin's transaction holds its lock since the form's check), not the
        # instance the form has already changed.
        before = _audit_state(Campaign.objects.get(pk=campaign.pk))
        try:
            campaigns.update_draft(campaign, values=values, prizes=specs)
        except JiumaError as exc:
            raise PermissionDenied from exc
        campaign.refresh_from_db()
        b, a = audit.changed_only(before, _audit_state(campaign))
        if a:
            audit.record(AuditAction.UPDATE, obj=campaign, before=b, after=a)

    # Actions ---------------------------------------------------------------------------------------

    def _transition(
        self, request: HttpRequest, queryset: QuerySet[Campaign], service: Any, detail: str, done: str
    ) -> None:
        count = 0
        for campaign in queryset:
            before = campaign.status
            try:
                with transaction.atomic():
                    after = service(campaign)
                    audit.record(
                        AuditAction.ACTION,
                        obj=after,
                        before={"status": before},
                        after={
                            "status": after.status,
                            "seed_commitment": after.seed_commitment,
                            "seed_revealed": after.seed_revealed,
                        },
                        detail=detail,
                    )
            except JiumaError as exc:
                self.message_user(request, f"{campaign}：{exc.message}", messages.ERROR)
                continue
            count += 1
        if count:
            self.message_user(request, done % {"n": count}, messages.SUCCESS)

    def _lines(self, queryset: QuerySet[Campaign]) -> list[str]:
        return [f"{c}（{c.get_status_display()}，{_local(c.starts_at)} – {_local(c.ends_at)}）" for c in queryset]

    @admin.action(description=_("发布"), permissions=["change"])
    def publish(self, request: HttpRequest, queryset: QuerySet[Campaign]) -> TemplateResponse | None:
        page = _confirm(
            self,
            request,
            queryset,
            action="publish",
            title=gettext("发布活动"),
            question=gettext("确定发布以下活动吗？发布后活动规则立即公开，并提交抽奖种子的承诺值。"),
            lines=self._lines(queryset),
            warning=gettext("发布后奖项、中奖概率、数量和活动时间都不能再修改。"),
            confirm_label=gettext("确认发布"),
        )
        if page is not None:
            return page
        self._transition(request, queryset, campaigns.publish, gettext("发布活动"), gettext("已发布 %(n)d 个活动。"))
        return None

    @admin.action(description=_("取消"), permissions=["change"])
    def cancel(self, request: HttpRequest, queryset: QuerySet[Campaign]) -> TemplateResponse | None:
        page = _confirm(
            self,
            request,
            queryset,
            action="cancel",
            title=gettext("取消活动"),
            question=gettext("确定取消以下活动吗？只有尚未开始的活动可以取消。"),
            lines=self._lines(queryset),
            warning=gettext("取消后不能恢复。"),
            confirm_label=gettext("确认取消"),
        )
        if page is not None:
            return page
        self._transition(request, queryset, campaigns.cancel, gettext("取消活动"), gettext("已取消 %(n)d 个活动。"))
        return None

    @admin.action(description=_("结束并公开种子"), permissions=["change"])
    def end_and_reveal(self, request: HttpRequest, queryset: QuerySet[Campaign]) -> TemplateResponse | None:
        page = _confirm(
            self,
            request,
            queryset,
            action="end_and_reveal",
            title=gettext("结束活动并公开种子"),
            question=gettext("确定结束以下活动并公开抽奖种子吗？只有已到结束时间的活动可以结束。"),
            lines=self._lines(queryset),
            warning=gettext("公开种子后，任何人都可以复核全部抽奖结果。"),
            confirm_label=gettext("确认结束"),
        )
        if page is not None:
            return page
        self._transition(
            request, queryset, campaigns.end, gettext("结束活动并公开种子"), gettext("已结束 %(n)d 个活动。")
        )
        return None


# --- draws, payouts and the budget: written by the services, read here ------------------------------


class ReadOnlyAdmin(admin.ModelAdmin):  # type: ignore[type-arg]
    """A record the services append: listed and shown, never added, changed or deleted here."""

    show_full_result_count = False

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> Any:
        return [name for _title, options in self.get_fieldsets(request, obj) for name in options["fields"]]


def _labelled(field: str, label: Any) -> Any:
    """A model field shown under a Chinese label (for fields declared without a verbose name)."""

    @admin.display(description=label, ordering=field)
    def show(model_admin: admin.ModelAdmin, obj: Model) -> Any:  # type: ignore[type-arg]
        value = getattr(obj, field)
        if isinstance(value, datetime):  # as the admin shows model fields (the detail page would not)
            return formats.localize(timezone.localtime(value))
        return "—" if value in (None, "") else value

    return show


class CampaignListFilter(admin.RelatedFieldListFilter):
    """By campaign (every campaign listed: a small table, never a scan of the records)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.title = gettext("活动")


def _member_link(member_id: int, text: object) -> SafeString:
    return format_html('<a href="{}">{}</a>', reverse("admin:commerce_member_change", args=[member_id]), text)


@admin.register(Claim, site=site)
class ClaimAdmin(ReadOnlyAdmin):
    list_display = ("id", "serial", "created_at", "campaign", "member_name", "outcome", "prize", "status", "region")
    list_filter = (("campaign", CampaignListFilter), "outcome", "status")
    search_fields = ("=serial", "=member__id", "=member__openid")
    list_select_related = ("campaign", "member", "prize")
    fields = (
        "serial",
        "campaign",
        "member_name",
        "created_at",
        "ticket",
        "outcome",
        "prize",
        "status",
        "risk",
        "region",
        "ip_address",
        "device_name",
        "reviewed_by_name",
        "reviewed_time",
    )
    ip_address = _labelled("ip", _("IP 地址"))
    device_name = _labelled("device", _("设备"))
    reviewed_by_name = _labelled("reviewed_by", _("审核人"))
    reviewed_time = _labelled("reviewed_at", _("审核时间"))
    actions = ["approve_claims", "reject_claims"]

    def has_review_permission(self, request: HttpRequest) -> bool:
        return bool(request.user.has_perm("rewards.change_claim"))

    @admin.action(description=_("审核通过（发放奖品）"), permissions=["review"])
    def approve_claims(self, request: HttpRequest, queryset: QuerySet[Claim]) -> None:
        """Held claims: their prize is paid or credited as if never held."""
        _review_claims(request, queryset, approve=True)

    @admin.action(description=_("驳回（不发放，奖品退回活动）"), permissions=["review"])
    def reject_claims(self, request: HttpRequest, queryset: QuerySet[Claim]) -> None:
        _review_claims(request, queryset, approve=False)

    @admin.display(description=_("会员"), ordering="member_id")
    def member_name(self, obj: Claim) -> SafeString:
        return _member_link(obj.member_id, obj.member)

    @admin.display(description=_("地区"))
    def region(self, obj: Claim) -> str:
        if not obj.region_code:
            return "—"
        found = regions.get(obj.region_code)
        return found.full_name if found is not None else obj.region_code

    @admin.display(description=_("风险原因"))
    def risk(self, obj: Claim) -> str:
        return "、".join(str(reason) for reason in obj.risk_reasons or ()) or "—"


@admin.register(Payout, site=site)
class PayoutAdmin(ReadOnlyAdmin):
    """Red packets: read-only, but held ones are reviewed (approve: to the worker; reject: never paid,
    the cash and the prize unit go back to the campaign) and pending ones sent again now. These
    actions need the permission to change payouts (the finance role and the owner)."""

    list_display = (
        "id",
        "out_bill_no",
        "status",
        "amount",
        "member_name",
        "campaign_name",
        "attempts",
        "next_attempt",
        "last_error",
        "created_at",
    )
    list_filter = ("status", ("campaign", CampaignListFilter))
    search_fields = ("=out_bill_no", "=transfer_bill_no", "=member__id", "=source")
    list_select_related = ("campaign", "member")
    actions = ["approve", "reject", "retry_now"]
    fields = (
        "out_bill_no",
        "status",
        "amount",
        "member_name",
        "openid_text",
        "campaign_name",
        "source",
        "remark",
        "attempts",
        "next_attempt",
        "last_error",
        "transfer_bill_no",
        "created_at",
        "submitted_time",
        "finished_time",
    )
    campaign_name = _labelled("campaign", _("活动"))
    openid_text = _labelled("openid", _("微信 OpenID"))
    submitted_time = _labelled("submitted_at", _("提交微信时间"))
    finished_time = _labelled("finished_at", _("完成时间"))

    def has_review_permission(self, request: HttpRequest) -> bool:
        return bool(request.user.has_perm("rewards.change_payout"))

    @admin.display(description=_("金额"), ordering="amount_fen")
    def amount(self, obj: Payout) -> str:
        return format_yuan(obj.amount_fen)

    @admin.display(description=_("会员"), ordering="member_id")
    def member_name(self, obj: Payout) -> SafeString:
        return _member_link(obj.member_id, obj.member)

    @admin.display(description=_("下次尝试"), ordering="next_attempt_at")
    def next_attempt(self, obj: Payout) -> str:
        if obj.status not in (PayoutStatus.PENDING, PayoutStatus.SUBMITTED):
            return "—"
        return _local(obj.next_attempt_at)

    def _review(self, request: HttpRequest, queryset: QuerySet[Payout], service: Any, detail: str, done: str) -> None:
        """Approve or reject each held payout (the service refuses any other), as the signed-in user."""
        actor = request.user.get_username()
        count = 0
        for payout in queryset:
            try:
                with transaction.atomic():
                    reviewed = service(payout, actor=actor)
                    audit.record(
                        AuditAction.ACTION,
                        obj=reviewed,
                        before={"status": PayoutStatus.HELD.value},
                        after={"status": reviewed.status, "reviewed_by": actor},
                        detail=detail,
                    )
                    if reviewed.status == PayoutStatus.PENDING:  # to the worker once committed
                        transaction.on_commit(partial(payouts.enqueue, reviewed.pk))
            except JiumaError as exc:
                self.message_user(request, f"{payout.out_bill_no}：{exc.message}", messages.ERROR)
                continue
            count += 1
        if count:
            self.message_user(request, done % {"n": count}, messages.SUCCESS)

    def _lines(self, queryset: QuerySet[Payout]) -> list[str]:
        return [
            f"{p.out_bill_no}：{format_yuan(p.amount_fen)}，{p.member}，{p.get_status_display()}"
            for p in queryset.select_related("member")
        ]

    @admin.action(description=_("审核通过"), permissions=["review"])
    def approve(self, request: HttpRequest, queryset: QuerySet[Payout]) -> TemplateResponse | None:
        page = _confirm(
            self,
            request,
            queryset,
            action="approve",
            title=gettext("审核通过红包"),
            question=gettext("确定审核通过以下红包吗？通过后将立即发放到会员的微信零钱。"),
            lines=self._lines(queryset),
            confirm_label=gettext("确认通过"),
        )
        if page is not None:
            return page
        self._review(request, queryset, payouts.approve, gettext("审核通过红包"), gettext("已审核通过 %(n)d 笔红包。"))
        return None

    @admin.action(description=_("驳回"), permissions=["review"])
    def reject(self, request: HttpRequest, queryset: QuerySet[Payout]) -> TemplateResponse | None:
        page = _confirm(
            self,
            request,
            queryset,
            action="reject",
            title=gettext("驳回红包"),
            question=gettext("确定驳回以下红包吗？驳回后不再发放，金额和奖品退回活动。"),
            lines=self._lines(queryset),
            warning=gettext("驳回后不能恢复。"),
            confirm_label=gettext("确认驳回"),
        )
        if page is not None:
            return page
        self._review(request, queryset, payouts.reject, gettext("驳回红包"), gettext("已驳回 %(n)d 笔红包。"))
        return None

    @admin.action(description=_("立即重试"), permissions=["review"])
    def retry_now(self, request: HttpRequest, queryset: QuerySet[Payout]) -> None:
        """payouts.retry_now on the selection, audited."""
        now = timezone.now()
        selected = list(queryset.values_list("pk", flat=True))
        with transaction.atomic():
            waiting = payouts.retry_now(selected, now=now)
            for payout, waited in waiting:
                audit.record(
                    AuditAction.ACTION,
                    obj=payout,
                    before={"next_attempt_at": waited.isoformat()},
                    after={"next_attempt_at": now.isoformat()},
                    detail=gettext("立即重试红包"),
                )
        if waiting:
            self.message_user(request, gettext("已安排 %(n)d 笔红包立即重试。") % {"n": len(waiting)}, messages.SUCCESS)
        skipped = len(selected) - len(waiting)
        if skipped:
            self.message_user(
                request,
                gettext("%(n)d 笔未处理：不在待发放状态，或一分钟内将自动重试。") % {"n": skipped},
                messages.WARNING,
            )


@admin.register(BudgetEntry, site=site)
class BudgetEntryAdmin(ReadOnlyAdmin):
    """The budget ledger: + a cash prize reserved, - a prize given back (rejected, never payable)."""

    list_display = ("created", "campaign_name", "amount", "source_text")
    list_filter = (("campaign", CampaignListFilter),)
    search_fields = ("=source",)
    list_select_related = ("campaign",)
    fields = ("created", "campaign_name", "amount", "source_text")
    created = _labelled("created_at", _("时间"))
    campaign_name = _labelled("campaign", _("活动"))
    source_text = _labelled("source", _("来源"))

    @admin.display(description=_("金额"), ordering="amount_fen")
    def amount(self, obj: BudgetEntry) -> str:
        return ("+" if obj.amount_fen > 0 else "") + format_yuan(obj.amount_fen)


# --- claim review and risk rules ---------------------------------------------------------------------


def _review_claims(request: HttpRequest, queryset: QuerySet[Claim], *, approve: bool) -> None:
    done = 0
    for claim in queryset.filter(status=ClaimStatus.HELD):
        try:
            claims.review(claim, approve=approve, actor=request.user.get_username())
        except JiumaError as exc:
            messages.error(request, f"{claim.serial}：{exc.message}")
            continue
        audit.record(
            AuditAction.UPDATE,
            obj=claim,
            after={"status": "ok" if approve else "rejected"},
            detail=gettext("审核抽奖记录"),
        )
        done += 1
    messages.success(request, gettext("已处理 %(n)d 条待审核记录。") % {"n": done})


@admin.register(RiskPolicy, site=site)
class RiskPolicyAdmin(SingletonAdmin):
    """The brand's risk rules (every change audited); 0 turns a limit off."""

    list_display = (
        "__str__",
        "member_claims_per_hour",
        "device_claims_per_hour",
        "ip_claims_per_hour",
        "new_member_minutes",
        "new_member_burst",
        "hold_outside_dealer_area",
        "updated_at",
    )

    def save_model(self, request: HttpRequest, obj: Model, form: Any, change: bool) -> None:
        super().save_model(request, obj, form, change)
        risk.forget()  # at once here; other processes within risk.CACHE_SECONDS


@admin.register(BlockedItem, site=site)
class BlockedItemAdmin(AuditedModelAdmin):
    list_display = ("kind", "value", "reason", "created_at", "created_by")
    list_filter = ("kind",)
    search_fields = ("=value", "reason")
    fields = ("kind", "value", "reason")

    def save_model(self, request: HttpRequest, obj: Model, form: Any, change: bool) -> None:
        if not change:
            obj.created_by = request.user.get_username()  # type: ignore[attr-defined]
        super().save_model(request, obj, form, change)
        risk.forget()

    def delete_model(self, request: HttpRequest, obj: Model) -> None:
        super().delete_model(request, obj)
        risk.forget()


@admin.register(ReferralProgram, site=site)
class ReferralProgramAdmin(SingletonAdmin):
    """The brand's invite rules (one set; every change audited)."""

    list_display = ("__str__", "enabled", "inviter_points", "invitee_points", "max_per_inviter", "accept_days")


@admin.register(Referral, site=site)
class ReferralAdmin(ReadOnlyAdmin):
    list_display = ("id", "inviter", "invitee", "status", "created_at", "rewarded_at")
    list_filter = ("status",)
    search_fields = ("=inviter__id", "=invitee__id")
    list_select_related = ("inviter", "invitee")
    fields = ("inviter", "invitee", "status", "created_at", "rewarded_at", "claim")


# Card collecting and store rewards have their own modules, registered with the console here.
# Approving a commission withdrawal in the console also creates its payout (rewards/ pays it; the
# commerce admin cannot import rewards/, so it takes the approver from here).
from commerce.admin_shop import set_withdrawal_approver  # noqa: E402
from rewards import admin_cards, admin_stores  # noqa: E402, F401
from rewards.services import commission_payouts  # noqa: E402

set_withdrawal_approver(commission_payouts.approve)
