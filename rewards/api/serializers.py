"""Serializers of the rewards API: ModelSerializers for what it returns, strict ones for what it takes.

Money is integer fen and odds integer parts per million (ODDS_SCALE = 1,000,000 is 100%), as the
services take them. Input is checked here only for shape and for sizes the database can hold; what a
campaign and its prize table may be is decided by rewards.services.campaigns (its own checks, the
same the admin runs), so the API and the admin refuse the same things with the same messages.
"""

from __future__ import annotations

from typing import Any

from django.db.models import TextChoices
from django.utils.translation import gettext as _
from drf_spectacular.extensions import OpenApiSerializerFieldExtension
from drf_spectacular.plumbing import build_choice_field
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from commerce.services.points import MAX_AMOUNT as MAX_POINTS
from rewards.models import (
    ODDS_SCALE,
    Campaign,
    CampaignStatus,
    Claim,
    ClaimOutcome,
    ClaimStatus,
    Payout,
    PayoutStatus,
    Prize,
    PrizeKind,
)
from tenants.api.strict import StrictSerializer

MAX_BIGINT = 2**63 - 1
MAX_INT = 2**31 - 1
MAX_TARGETS = 1000
MAX_PRIZES = 50


def _id(**kwargs: Any) -> serializers.IntegerField:
    return serializers.IntegerField(min_value=1, max_value=MAX_BIGINT, **kwargs)


# --- enums as named OpenAPI components -------------------------------------------------------------


class EnumField(serializers.ChoiceField):
    """A choice field over a TextChoices class. The OpenAPI document names its values after the
    class (CampaignStatusEnum, ...), so fields called "status" or "kind" across the APIs never
    collide, however many serializers show them."""

    def __init__(self, choices_class: type[TextChoices], **kwargs: Any) -> None:
        self.choices_class = choices_class
        super().__init__(choices=choices_class.choices, **kwargs)


class EnumFieldExtension(OpenApiSerializerFieldExtension):  # type: ignore[no-untyped-call]  # untyped library base
    target_class = EnumField
    match_subclasses = True

    def get_name(self) -> str:
        return f"{self.target.choices_class.__name__}Enum"

    def map_serializer_field(self, auto_schema: Any, direction: Any) -> dict[str, Any]:
        schema: dict[str, Any] = build_choice_field(self.target)
        # Blank and null belong to the field (nullable), not to the shared set of values.
        schema["enum"] = [value for value in schema["enum"] if value not in ("", None)]
        schema.pop("x-spec-enum-id", None)
        return schema


# --- output -------------------------------------------------------------------------------------------


class PrizeSerializer(serializers.ModelSerializer[Prize]):
    kind = EnumField(PrizeKind, read_only=True)
    kind_display = serializers.CharField(source="get_kind_display", read_only=True)

    class Meta:
        model = Prize
        fields = [
            "id",
            "name",
            "kind",
            "kind_display",
            "amount_fen",
            "points",
            "value_fen",
            "odds_ppm",
            "quantity",
            "awarded",
            "is_guarantee",
            "position",
            "card_set",
        ]
        read_only_fields = fields
        extra_kwargs = {
            "amount_fen": {"help_text": "现金红包金额（分）"},
            "points": {"help_text": "酒币数量"},
            "value_fen": {"help_text": "实物奖品价值（分）"},
            "odds_ppm": {"help_text": f"中奖概率（百万分之一；{ODDS_SCALE:,} 为 100%）"},
            "quantity": {"help_text": "奖品总数"},
            "awarded": {"help_text": "已发出（含待审核）"},
            "is_guarantee": {"help_text": "首扫必中奖项"},
            "card_set": {"help_text": "集卡奖项的卡片套系 ID（其他奖项为 null）"},
        }


class CampaignSerializer(serializers.ModelSerializer[Campaign]):
    status = EnumField(CampaignStatus, read_only=True)
    status_display = serializers.CharField(source="get_status_display", read_only=True)
    prize_quantity = serializers.IntegerField(read_only=True, help_text="各奖项数量之和")
    prizes_awarded = serializers.IntegerField(read_only=True, help_text="已发出的奖品数之和")

    class Meta:
        model = Campaign
        fields = [
            "id",
            "name",
            "status",
            "status_display",
            "starts_at",
            "ends_at",
            "priority",
            "budget_fen",
            "spent_fen",
            "prize_quantity",
            "prizes_awarded",
            "published_at",
            "ended_at",
            "created_at",
            "created_by",
        ]
        read_only_fields = fields
        extra_kwargs = {
            "budget_fen": {"help_text": "现金预算（分）"},
            "spent_fen": {"help_text": "已占用的现金预算（分）"},
            "priority": {"help_text": "多个活动同时进行时，优先级高者生效"},
        }


class ClaimCountsSerializer(serializers.Serializer[Any]):
    total = serializers.IntegerField(help_text="抽奖总次数")
    by_outcome = serializers.DictField(
        child=serializers.IntegerField(), help_text="按结果：" + "、".join(ClaimOutcome.values)
    )
    by_status = serializers.DictField(
        child=serializers.IntegerField(), help_text="按审核：" + "、".join(ClaimStatus.values)
    )


class CampaignDetailSerializer(CampaignSerializer):
    prizes = PrizeSerializer(many=True, read_only=True)
    budget_remaining_fen = serializers.SerializerMethodField(help_text="尚未占用的现金预算（分）")
    seed_revealed = serializers.SerializerMethodField(help_text="抽奖种子（十六进制）；活动结束后公开，此前为 null")
    target_batch_ids = serializers.ListField(child=serializers.IntegerField(), read_only=True)
    target_sku_ids = serializers.ListField(child=serializers.IntegerField(), read_only=True)
    target_region_codes = serializers.ListField(child=serializers.CharField(), read_only=True)
    target_dealer_ids = serializers.ListField(child=serializers.IntegerField(), read_only=True)
    claims = ClaimCountsSerializer(source="claim_counts", read_only=True)

    class Meta(CampaignSerializer.Meta):
        fields = [
            *CampaignSerializer.Meta.fields,
            "description",
            "organiser",
            "contact",
            "budget_remaining_fen",
            "pacing",
            "pacing_slack_percent",
            "first_scan_guarantee",
            "member_daily_cap",
            "member_total_cap",
            "target_batch_ids",
            "target_sku_ids",
            "target_region_codes",
            "target_dealer_ids",
            "seed_commitment",
            "seed_revealed",
            "prizes",
            "claims",
        ]
        read_only_fields = fields
        extra_kwargs = {
            **CampaignSerializer.Meta.extra_kwargs,
            "seed_commitment": {"help_text": "抽奖种子的 SHA-256 承诺值，发布时公开"},
        }

    def get_budget_remaining_fen(self, campaign: Campaign) -> int:
        return campaign.budget_fen - campaign.spent_fen

    def get_seed_revealed(self, campaign: Campaign) -> str | None:
        if campaign.status != CampaignStatus.ENDED or not campaign.seed_revealed:
            return None
        return campaign.seed_revealed


class RiskReasonSerializer(serializers.Serializer[Any]):
    rule = serializers.CharField(help_text="触发的风控规则")
    detail = serializers.CharField(help_text="说明")


class ClaimSerializer(serializers.ModelSerializer[Claim]):
    campaign_name = serializers.CharField(source="campaign.name", read_only=True)
    member_name = serializers.SerializerMethodField()
    prize_name = serializers.CharField(source="prize.name", read_only=True, allow_null=True, default=None)
    outcome = EnumField(ClaimOutcome, read_only=True)
    outcome_display = serializers.CharField(source="get_outcome_display", read_only=True)
    status = EnumField(ClaimStatus, read_only=True)
    status_display = serializers.CharField(source="get_status_display", read_only=True)
    risk_reasons = serializers.SerializerMethodField(help_text="风控暂缓的原因（未触发为空）")
    payout = serializers.SerializerMethodField(help_text="现金奖项的红包发放 ID（其他为 null）")
    payout_status = serializers.SerializerMethodField(help_text="红包发放状态（无红包为 null）")

    class Meta:
        model = Claim
        fields = [
            "id",
            "serial",
            "campaign",
            "campaign_name",
            "member",
            "member_name",
            "outcome",
            "outcome_display",
            "prize",
            "prize_name",
            "status",
            "status_display",
            "risk_reasons",
            "payout",
            "payout_status",
            "region_code",
            "created_at",
            "reviewed_at",
            "reviewed_by",
        ]
        read_only_fields = fields
        extra_kwargs = {"serial": {"help_text": "瓶序号（盖内码）"}}

    def get_member_name(self, claim: Claim) -> str:
        return str(claim.member)

    @extend_schema_field(RiskReasonSerializer(many=True))
    def get_risk_reasons(self, claim: Claim) -> list[dict[str, str]]:
        """Each {"rule", "detail"} (rewards.risk); a reason kept as bare text has no rule."""
        reasons = []
        for reason in claim.risk_reasons or ():
            if isinstance(reason, dict):
                reasons.append({"rule": str(reason.get("rule", "")), "detail": str(reason.get("detail", ""))})
            else:
                reasons.append({"rule": "", "detail": str(reason)})
        return reasons

    def get_payout(self, claim: Claim) -> int | None:
        payout = getattr(claim, "payout", None)
        return payout.pk if payout is not None else None

    def get_payout_status(self, claim: Claim) -> str | None:
        payout = getattr(claim, "payout", None)
        return payout.status if payout is not None else None


class ClaimDetailSerializer(ClaimSerializer):
    ticket = serializers.IntegerField(read_only=True, help_text="抽奖号（由活动种子和瓶序号算出，可在活动结束后复核）")

    class Meta(ClaimSerializer.Meta):
        fields = [*ClaimSerializer.Meta.fields, "ticket", "scan_id", "store", "clerk", "card", "ip", "device"]
        read_only_fields = fields


class PayoutSerializer(serializers.ModelSerializer[Payout]):
    status = EnumField(PayoutStatus, read_only=True)
    status_display = serializers.CharField(source="get_status_display", read_only=True)
    member_name = serializers.SerializerMethodField()
    campaign_name = serializers.CharField(source="campaign.name", read_only=True, allow_null=True, default=None)

    class Meta:
        model = Payout
        fields = [
            "id",
            "out_bill_no",
            "status",
            "status_display",
            "amount_fen",
            "member",
            "member_name",
            "campaign",
            "campaign_name",
            "claim",
            "source",
            "remark",
            "attempts",
            "next_attempt_at",
            "last_error",
            "transfer_bill_no",
            "created_at",
            "submitted_at",
            "finished_at",
        ]
        read_only_fields = fields
        extra_kwargs = {"amount_fen": {"help_text": "金额（分）"}, "out_bill_no": {"help_text": "商户单号"}}

    def get_member_name(self, payout: Payout) -> str:
        return str(payout.member)


# --- input ----------------------------------------------------------------------------------------------


class PrizeInputSerializer(StrictSerializer):
    """One row of a prize table, as campaigns.PrizeSpec takes it. Checked as a whole by the service."""

    name = serializers.CharField(max_length=60, help_text="奖项名称")
    kind = EnumField(PrizeKind, help_text="cash 现金红包、points 酒币、physical 实物、card 集卡卡片")
    amount_fen = serializers.IntegerField(min_value=0, max_value=MAX_BIGINT, default=0, help_text="红包金额（分）")
    points = serializers.IntegerField(min_value=0, max_value=MAX_POINTS, default=0, help_text="酒币数量")
    value_fen = serializers.IntegerField(
        min_value=0, max_value=MAX_BIGINT, default=0, help_text="实物奖品的市场价值（分）"
    )
    odds_ppm = serializers.IntegerField(
        min_value=0, max_value=MAX_INT, help_text=f"中奖概率（百万分之一；{ODDS_SCALE:,} 为 100%）"
    )
    quantity = serializers.IntegerField(min_value=0, max_value=MAX_INT, help_text="奖品总数（至少 1）")
    is_guarantee = serializers.BooleanField(default=False, help_text="首扫必中奖项（红包或酒币，至多一个）")
    card_set = _id(required=False, allow_null=True, default=None, help_text="集卡奖项的卡片套系 ID（其他奖项不填）")

    _REQUIRED = ("name", "kind", "odds_ppm", "quantity")
    _DEFAULTS: dict[str, Any] = {"amount_fen": 0, "points": 0, "value_fen": 0, "is_guarantee": False, "card_set": None}

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        # In a PATCH (partial) the rows of a new prize table are still whole rows.
        missing = [name for name in self._REQUIRED if name not in attrs]
        if missing:
            raise serializers.ValidationError({name: [_("该字段是必填项。")] for name in missing})
        return {**self._DEFAULTS, **attrs}


class CampaignInputSerializer(StrictSerializer):
    """A campaign with its prize table (create); in a PATCH of a draft, any of its fields. A PATCH that
    gives `prizes` replaces the whole table."""

    name = serializers.CharField(max_length=100, help_text="活动名称")
    description = serializers.CharField(max_length=5000, required=False, allow_blank=True, default="")
    organiser = serializers.CharField(max_length=100, required=False, allow_blank=True, default="", help_text="主办方")
    contact = serializers.CharField(max_length=40, required=False, allow_blank=True, default="", help_text="咨询电话")
    starts_at = serializers.DateTimeField(help_text="开始时间（ISO 8601）；规则须在开始前发布")
    ends_at = serializers.DateTimeField(help_text="结束时间（ISO 8601），须晚于开始时间")
    priority = serializers.IntegerField(min_value=-MAX_INT - 1, max_value=MAX_INT, default=0)
    budget_fen = serializers.IntegerField(min_value=0, max_value=MAX_BIGINT, default=0, help_text="现金预算（分）")
    pacing = serializers.BooleanField(default=True, help_text="匀速发放现金预算")
    pacing_slack_percent = serializers.IntegerField(min_value=0, max_value=100, default=20, help_text="匀速余量（%）")
    first_scan_guarantee = serializers.BooleanField(default=False, help_text="首扫必中（须设一个必中奖项）")
    member_daily_cap = serializers.IntegerField(
        min_value=0, max_value=MAX_INT, default=0, help_text="每人每日抽奖次数上限（0 为不限）"
    )
    member_total_cap = serializers.IntegerField(
        min_value=0, max_value=MAX_INT, default=0, help_text="每人总抽奖次数上限（0 为不限）"
    )
    target_batch_ids = serializers.ListField(
        child=_id(), max_length=MAX_TARGETS, default=list, help_text="指定批次 ID（空为不限）"
    )
    target_sku_ids = serializers.ListField(
        child=_id(), max_length=MAX_TARGETS, default=list, help_text="指定商品规格 ID（空为不限）"
    )
    target_region_codes = serializers.ListField(
        child=serializers.CharField(max_length=6),
        max_length=MAX_TARGETS,
        default=list,
        help_text="指定地区：6 位行政区划代码（空为不限）",
    )
    target_dealer_ids = serializers.ListField(
        child=_id(), max_length=MAX_TARGETS, default=list, help_text="指定经销商 ID（空为不限）"
    )
    # many=True takes max_length (a ListSerializer option the stubs do not know).
    prizes = PrizeInputSerializer(many=True, max_length=MAX_PRIZES, help_text="奖项表（整体提交）")  # type: ignore[call-arg]


# --- list filters (query parameters; paging parameters come along, so not strict) ------------------


class CampaignFilterSerializer(serializers.Serializer[Any]):
    q = serializers.CharField(max_length=100, required=False, help_text="活动名称（包含）")
    status = serializers.ChoiceField(choices=CampaignStatus.choices, required=False)


class ClaimFilterSerializer(serializers.Serializer[Any]):
    campaign = _id(required=False, help_text="活动 ID")
    status = serializers.ChoiceField(choices=ClaimStatus.choices, required=False, help_text="审核状态")
    outcome = serializers.ChoiceField(choices=ClaimOutcome.choices, required=False, help_text="抽奖结果")
    member = _id(required=False, help_text="会员 ID")
    created_after = serializers.DateTimeField(required=False, help_text="抽奖时间不早于（ISO 8601）")
    created_before = serializers.DateTimeField(required=False, help_text="抽奖时间早于（ISO 8601）")


class PayoutFilterSerializer(serializers.Serializer[Any]):
    status = serializers.ChoiceField(choices=PayoutStatus.choices, required=False)
    campaign = _id(required=False, help_text="活动 ID")
    member = _id(required=False, help_text="会员 ID")


class ReviewSerializer(StrictSerializer):
    approve = serializers.BooleanField(help_text="true 审核通过（发放奖品），false 驳回（奖品退回活动）")
