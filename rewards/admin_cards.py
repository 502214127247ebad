"""Card collecting (集卡) in the brand console admin: card sets with their cards, and the records the
services write (exchanges, gifts, the card ledger), read-only.

- A set's reward is entered in yuan (exact Decimal arithmetic, as in the campaign admin); its cards
  with their rarity weights in the inline, each card's chance within the set shown next to it.
- Once a published (or ended) campaign has a card prize naming the set, the set's odds are public
  (the campaign's rules list every card and its chance) and the card draw depends on them: its cards
  can no longer be added, changed or deleted, and its reward, its per-member limit and its name are
  fixed. The exchange deadline may then only move later and the reward quantity only stay at or
  above what has been exchanged (规范促销行为: no change to the consumer's disadvantage).
- A card that members have won is never deleted (the ledger and holdings point at it).
"""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import admin
from django.core.exceptions import ValidationError
from django.db.models import Count, Exists, OuterRef, QuerySet, Sum
from django.forms.models import BaseInlineFormSet
from django.http import HttpRequest
from django.utils.safestring import SafeString
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _

from commerce.services.points import MAX_AMOUNT as POINTS_MAX
from rewards.admin import ReadOnlyAdmin, _labelled, _local, _member_link
from rewards.models import (
    MAX_PRIZE_FEN,
    Campaign,
    CampaignStatus,
    Card,
    CardEntry,
    CardGift,
    CardSet,
    CardSetRedemption,
    Claim,
    Payout,
    Prize,
    PrizeKind,
)
from rewards.services import cards
from tenants.brand import audit
from tenants.brand.admin import AuditedModelAdmin, YuanField, fen_to_yuan, format_yuan, site, yuan_to_fen
from tenants.brand.models import AuditAction

_PUBLIC = (CampaignStatus.PUBLISHED, CampaignStatus.ENDED)


def publishing_campaigns(card_set: CardSet | None) -> list[Campaign]:
    """The published or ended campaigns whose rules name the set (its odds are public)."""
    if card_set is None or card_set.pk is None:
        return []
    return list(
        Campaign.objects.filter(
            status__in=_PUBLIC,
            pk__in=Prize.objects.filter(card_set=card_set).values("campaign_id"),
        ).order_by("id")
    )


def is_locked(card_set: CardSet | None) -> bool:
    if card_set is None or card_set.pk is None:
        return False
    return Prize.objects.filter(card_set=card_set, campaign__status__in=_PUBLIC).exists()


def reward_text(card_set: CardSet) -> str:
    if card_set.reward_kind == PrizeKind.CASH:
        return gettext("%(name)s（现金红包 %(amount)s）") % {
            "name": card_set.reward_name,
            "amount": format_yuan(card_set.reward_amount_fen),
        }
    if card_set.reward_kind == PrizeKind.POINTS:
        return gettext("%(name)s（%(points)d 酒币）") % {"name": card_set.reward_name, "points": card_set.reward_points}
    return gettext("%(name)s（实物，价值 %(amount)s）") % {
        "name": card_set.reward_name,
        "amount": format_yuan(card_set.reward_value_fen),
    }


# --- card sets --------------------------------------------------------------------------------------

_REWARD_FIELDS = ("reward_name", "reward_kind", "reward_amount_yuan", "reward_points", "reward_value_yuan")
_FIXED_WHEN_LOCKED = ("name", "reward_name", "reward_kind", "per_member_limit")


class CardSetForm(forms.ModelForm):  # type: ignore[type-arg]
    """A set's fields; the reward in yuan (cash, or the market value of a physical reward)."""

    reward_amount_yuan = YuanField(label=_("红包金额（元）"), required=False, help_text=_("集齐奖励为现金红包时填写。"))
    reward_value_yuan = YuanField(
        label=_("奖品价值（元）"), required=False, help_text=_("集齐奖励为实物时填写市场价值。")
    )
    reward_points = forms.IntegerField(label=_("酒币数量"), required=False, min_value=0, max_value=POINTS_MAX)
    gift_expiry_hours = forms.IntegerField(label=_("赠送链接有效期（小时）"), min_value=1, max_value=720, initial=48)
    per_member_limit = forms.IntegerField(label=_("每人可兑换次数"), min_value=1, max_value=1000, initial=1)

    class Meta:
        model = CardSet
        fields = [
            "name",
            "description",
            "reward_name",
            "reward_kind",
            "reward_amount_yuan",
            "reward_points",
            "reward_value_yuan",
            "reward_quantity",
            "per_member_limit",
            "gift_daily_limit",
            "receive_daily_limit",
            "gift_expiry_hours",
            "exchange_ends_at",
            "is_active",
        ]
        help_texts = {
            "reward_quantity": _("全部会员合计最多可兑换的套数（现金总额 = 套数 × 红包金额）。"),
            "gift_daily_limit": _("每位会员每天最多赠出本套系的卡片张数；0 表示不允许赠送。"),
            "receive_daily_limit": _("每位会员每天最多领取本套系的卡片张数。"),
            "exchange_ends_at": _("北京时间；须晚于使用本套系的活动的结束时间。"),
        }

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        card_set = self.instance
        if card_set.pk is not None:
            if card_set.reward_amount_fen:
                self.initial["reward_amount_yuan"] = fen_to_yuan(card_set.reward_amount_fen)
            if card_set.reward_value_fen:
                self.initial["reward_value_yuan"] = fen_to_yuan(card_set.reward_value_fen)
        self.stored = CardSet.objects.filter(pk=card_set.pk).first() if card_set.pk is not None else None

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean() or {}
        if self.errors:
            return cleaned
        if "reward_kind" in cleaned:  # editable (not fixed by a published campaign)
            self._reward(cleaned)
        stored = self.stored
        quantity = cleaned.get("reward_quantity")
        if stored is not None and quantity is not None and quantity < stored.redeemed:
            self.add_error(
                "reward_quantity",
                ValidationError(
                    gettext("已兑换 %(n)d 套，总数不能少于已兑换数。") % {"n": stored.redeemed}, code="invalid"
                ),
            )
        ends = cleaned.get("exchange_ends_at")
        if stored is not None and ends is not None:
            self._check_deadline(stored, ends)
        return cleaned

    def _check_deadline(self, stored: CardSet, ends: Any) -> None:
        if ends < stored.exchange_ends_at and is_locked(stored):
            self.add_error(
                "exchange_ends_at",
                ValidationError(gettext("本套系已随活动规则公布，兑换截止时间只能延后，不能提前。"), code="invalid"),
            )
            return
        running = (
            Campaign.objects.filter(
                status__in=(CampaignStatus.DRAFT, *_PUBLIC),
                ends_at__gte=ends,
                pk__in=Prize.objects.filter(card_set=stored).values("campaign_id"),
            )
            .order_by("ends_at")
            .last()
        )
        if running is not None:
            self.add_error(
                "exchange_ends_at",
                ValidationError(
                    gettext("兑换截止时间须晚于使用本套系的活动“%(name)s”的结束时间。") % {"name": running.name},
                    code="invalid",
                ),
            )

    def _reward(self, cleaned: dict[str, Any]) -> None:
        """The reward by its kind, as the database's constraint wants it (only that kind's amount)."""
        kind = cleaned.get("reward_kind")
        amount, value = cleaned.get("reward_amount_yuan"), cleaned.get("reward_value_yuan")
        amount_fen = yuan_to_fen(amount) if kind == PrizeKind.CASH and amount is not None else 0
        value_fen = yuan_to_fen(value) if kind == PrizeKind.PHYSICAL and value is not None else 0
        points = (cleaned.get("reward_points") or 0) if kind == PrizeKind.POINTS else 0
        if kind == PrizeKind.CASH and amount_fen < 10:
            self.add_error("reward_amount_yuan", ValidationError(gettext("现金红包至少 0.10 元。"), code="invalid"))
        if kind == PrizeKind.POINTS and points <= 0:
            self.add_error("reward_points", ValidationError(gettext("酒币数量须大于 0。"), code="invalid"))
        if kind == PrizeKind.PHYSICAL and value_fen <= 0:
            self.add_error("reward_value_yuan", ValidationError(gettext("实物奖励须填写价值。"), code="invalid"))
        if max(amount_fen, value_fen) > MAX_PRIZE_FEN:
            raise ValidationError(
                gettext("单个奖项价值不得超过 50,000 元（抽奖式有奖销售的法定上限）。"), code="prize_over_legal_cap"
            )
        self.instance.reward_amount_fen = amount_fen
        self.instance.reward_value_fen = value_fen
        cleaned["reward_points"] = points  # a model field: the form writes it to the instance


class CardForm(forms.ModelForm):  # type: ignore[type-arg]
    weight = forms.IntegerField(
        label=_("稀有度权重"),
        min_value=1,
        max_value=1_000_000,
        initial=100,
        help_text=_("获得概率 = 本卡权重 ÷ 全套权重之和。"),
    )

    class Meta:
        model = Card
        fields = ["name", "weight", "position"]


class CardFormSet(BaseInlineFormSet):  # type: ignore[type-arg]
    """At least one card; a card some member has won is never deleted (checked before Django's own
    protected-objects check, to say why in plain words)."""

    def clean(self) -> None:
        if is_locked(self.instance):  # shown read-only: nothing posted counts
            return
        for form in self.forms:
            data = getattr(form, "cleaned_data", None) or {}
            card = form.instance
            if data.get("DELETE") and card.pk is not None and _was_won(card):
                raise ValidationError(
                    gettext("卡片“%(name)s”已有会员获得，不能删除。") % {"name": card.name}, code="card_won"
                )
        super().clean()
        if any(self.errors):
            return
        kept = sum(
            1 for form in self.forms if getattr(form, "cleaned_data", None) and not form.cleaned_data.get("DELETE")
        )
        if kept == 0:
            raise ValidationError(gettext("请至少添加一张卡片。"), code="no_cards")


def _was_won(card: Card) -> bool:
    return (
        CardEntry.objects.filter(card=card).exists()
        or Claim.objects.filter(card=card).exists()
        or CardGift.objects.filter(card=card).exists()
    )


class CardInline(admin.TabularInline):  # type: ignore[type-arg]
    model = Card
    form = CardForm
    formset = CardFormSet
    ordering = ("position", "id")
    fields = ("name", "weight", "position", "share")
    readonly_fields = ("share",)

    def get_extra(self, request: HttpRequest, obj: Any = None, **kwargs: Any) -> int:
        return 4 if obj is None else (0 if is_locked(obj) else 1)

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return not is_locked(obj) and super().has_add_permission(request, obj)

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return not is_locked(obj) and super().has_change_permission(request, obj)

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return not is_locked(obj) and super().has_delete_permission(request, obj)

    @admin.display(description=_("获得概率（套系内）"))
    def share(self, card: Card) -> str:
        if card._state.adding:
            return "—"
        total = Card.objects.filter(card_set_id=card.card_set_id).aggregate(s=Sum("weight"))["s"] or 0
        return cards.share_text(card.weight, total)


def _cards_state(card_set: CardSet) -> list[dict[str, Any]]:
    rows = Card.objects.filter(card_set=card_set).order_by("position", "id").values("id", "name", "weight", "position")
    return [dict(row) for row in rows]


@admin.register(CardSet, site=site)
class CardSetAdmin(AuditedModelAdmin):
    form = CardSetForm
    inlines = [CardInline]
    list_display = ("name", "reward", "progress", "card_count", "deadline", "is_active", "odds_published")
    list_filter = ("is_active",)
    search_fields = ("name", "reward_name")
    editable_fieldsets = (
        (None, {"fields": ("name", "description", "is_active")}),
        (_("集齐奖励"), {"fields": (*_REWARD_FIELDS, "reward_quantity", "per_member_limit", "exchange_ends_at")}),
        (_("赠送规则"), {"fields": ("gift_daily_limit", "receive_daily_limit", "gift_expiry_hours")}),
    )
    locked_fieldsets = (
        (None, {"fields": ("lock_notice", "name", "description", "is_active")}),
        (
            _("集齐奖励"),
            {"fields": ("reward", "reward_quantity", "redeemed", "per_member_limit", "exchange_ends_at")},
        ),
        (_("赠送规则"), {"fields": ("gift_daily_limit", "receive_daily_limit", "gift_expiry_hours")}),
    )

    def get_queryset(self, request: HttpRequest) -> QuerySet[CardSet]:
        published = Prize.objects.filter(card_set=OuterRef("pk"), campaign__status__in=_PUBLIC)
        return super().get_queryset(request).annotate(cards_total=Count("cards"), odds_public=Exists(published))

    def get_fieldsets(self, request: HttpRequest, obj: Any = None) -> Any:
        if obj is not None and is_locked(obj):
            return self.locked_fieldsets
        if obj is not None:
            return (*self.editable_fieldsets, (_("兑换情况"), {"fields": ("redeemed", "created_at")}))
        return self.editable_fieldsets

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> Any:
        if obj is None:
            return ()
        if is_locked(obj):
            return ("lock_notice", *_FIXED_WHEN_LOCKED, "reward", "redeemed")
        return ("redeemed", "created_at")

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        # A set named by any campaign's prize, or with cards won, stays (stop it with 启用 instead).
        if obj is not None and (Prize.objects.filter(card_set=obj).exists() or obj.redeemed or _any_won(obj)):
            return False
        return super().has_delete_permission(request, obj)

    # Columns -------------------------------------------------------------------------------------

    @admin.display(description=_("集齐奖励"))
    def reward(self, obj: CardSet) -> str:
        return reward_text(obj)

    @admin.display(description=_("已兑换/总数"), ordering="redeemed")
    def progress(self, obj: CardSet) -> str:
        return f"{obj.redeemed}/{obj.reward_quantity}"

    @admin.display(description=_("卡片数"))
    def card_count(self, obj: CardSet) -> int:
        found = getattr(obj, "cards_total", None)
        return int(found) if found is not None else obj.cards.count()

    @admin.display(description=_("兑换截止（北京时间）"), ordering="exchange_ends_at")
    def deadline(self, obj: CardSet) -> str:
        return _local(obj.exchange_ends_at)

    @admin.display(description=_("概率已公布"), boolean=True)
    def odds_published(self, obj: CardSet) -> bool:
        found = getattr(obj, "odds_public", None)
        return bool(found) if found is not None else is_locked(obj)

    @admin.display(description=_("说明"))
    def lock_notice(self, obj: CardSet) -> str:
        found = publishing_campaigns(obj)
        if not found:
            return "—"
        names = "、".join(f"“{campaign.name}”" for campaign in found)
        return gettext(
            "本套系已用于已发布的活动 %(names)s：卡片及其获得概率已随活动规则公开，抽卡结果依赖于它们，"
            "因此卡片、权重、集齐奖励和每人兑换次数不能再修改；兑换截止时间只能延后。"
        ) % {"names": names}

    # Saving: the cards' changes are audited with the set ------------------------------------------

    def save_related(self, request: HttpRequest, form: Any, formsets: Any, change: bool) -> None:
        card_set = form.instance
        before = _cards_state(card_set) if change else []
        super().save_related(request, form, formsets, change)
        after = _cards_state(card_set)
        if before != after:
            audit.record(
                AuditAction.UPDATE,
                obj=card_set,
                before={"cards": before},
                after={"cards": after},
                detail=gettext("卡片"),
            )


def _any_won(card_set: CardSet) -> bool:
    return CardEntry.objects.filter(card__card_set=card_set).exists()


# --- what the services wrote: read here -------------------------------------------------------------


class CardSetListFilter(admin.RelatedFieldListFilter):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.title = gettext("套系")


@admin.register(CardSetRedemption, site=site)
class CardSetRedemptionAdmin(ReadOnlyAdmin):
    """Full sets exchanged: who, which time (n-th of the member's), and what the reward became."""

    list_display = ("id", "created", "card_set", "member_name", "number", "reward_state")
    list_filter = (("card_set", CardSetListFilter),)
    search_fields = ("=member__id",)
    list_select_related = ("card_set", "member", "redemption")
    fields = ("card_set", "member_name", "number", "created", "reward_state")
    created = _labelled("created_at", _("兑换时间"))

    @admin.display(description=_("会员"), ordering="member_id")
    def member_name(self, obj: CardSetRedemption) -> SafeString:
        return _member_link(obj.member_id, obj.member)

    @admin.display(description=_("奖励"))
    def reward_state(self, obj: CardSetRedemption) -> str:
        card_set = obj.card_set
        text = reward_text(card_set)
        if card_set.reward_kind == PrizeKind.CASH:
            payout = Payout.objects.filter(source=f"set:{obj.pk}").first()
            if payout is not None:
                return f"{text} · {payout.out_bill_no} {payout.get_status_display()}"
        if card_set.reward_kind == PrizeKind.PHYSICAL:
            code = getattr(obj, "redemption", None)
            if code is not None:
                return f"{text} · {code.display_code} {code.get_status_display()}"
        return text


@admin.register(CardGift, site=site)
class CardGiftAdmin(ReadOnlyAdmin):
    list_display = ("id", "card", "sender_name", "receiver_name", "status", "created", "expires", "finished")
    list_filter = ("status", ("card__card_set", CardSetListFilter))
    search_fields = ("=sender__id", "=receiver__id")
    list_select_related = ("card", "sender", "receiver")
    fields = ("card", "sender_name", "receiver_name", "status", "created", "expires", "finished")
    created = _labelled("created_at", _("赠送时间"))
    expires = _labelled("expires_at", _("有效期至"))
    finished = _labelled("finished_at", _("结束时间"))

    @admin.display(description=_("赠送人"), ordering="sender_id")
    def sender_name(self, obj: CardGift) -> SafeString:
        return _member_link(obj.sender_id, obj.sender)

    @admin.display(description=_("领取人"), ordering="receiver_id")
    def receiver_name(self, obj: CardGift) -> SafeString | str:
        return _member_link(obj.receiver_id, obj.receiver) if obj.receiver_id is not None else "—"


@admin.register(CardEntry, site=site)
class CardEntryAdmin(ReadOnlyAdmin):
    """The card ledger: +1 won or received, -1 gifted or exchanged, +1 a gift back."""

    list_display = ("created", "member_name", "card", "change", "source_text")
    list_filter = (("card__card_set", CardSetListFilter),)
    search_fields = ("=member__id", "=source")
    list_select_related = ("card", "member")
    fields = ("created", "member_name", "card", "change", "source_text")
    created = _labelled("created_at", _("时间"))
    source_text = _labelled("source", _("来源"))

    @admin.display(description=_("会员"), ordering="member_id")
    def member_name(self, obj: CardEntry) -> SafeString:
        return _member_link(obj.member_id, obj.member)

    @admin.display(description=_("变动"), ordering="delta")
    def change(self, obj: CardEntry) -> str:
        return f"{obj.delta:+d}"
