"""The rewards API of the brand console: campaigns with their prize tables, draws (claims) and their
review, red packets (payouts) and their review.

Thin: parse (strict serializers), authorize (the brand's Django permissions, per method, as the
admin asks them), call the services the admin calls (rewards.services.campaigns, claims, payouts),
and log every write in the audit log as the admin does. Lists are paged (limit/offset), filtered by
query parameters, and read with their related rows joined (a bounded number of queries per page).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from functools import partial
from typing import Any

from django.db import transaction
from django.db.models import Count, Prefetch, QuerySet, Sum
from django.db.models.functions import Coalesce
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from drf_spectacular.utils import extend_schema
from rest_framework import generics, status
from rest_framework.request import Request
from rest_framework.response import Response

from codes.models import Batch
from commerce.api.views import ChannelView
from commerce.models import Dealer, Sku
from rewards.api import serializers as s
from rewards.errors import RewardErrorCode as E
from rewards.models import (
    Campaign,
    CampaignStatus,
    Claim,
    ClaimOutcome,
    ClaimStatus,
    Payout,
    PayoutStatus,
    Prize,
)
from rewards.services import campaigns, claims, payouts
from rewards.services.campaigns import PrizeSpec
from tenants.brand import audit
from tenants.brand.models import AuditAction
from tenants.errors import Conflict, JiumaError, NotFound

_CAMPAIGNS = ["campaigns"]
_CLAIMS = ["claims"]
_PAYOUTS = ["payouts"]
_VIEW_CAMPAIGN = ("rewards.view_campaign",)
_ADD_CAMPAIGN = ("rewards.add_campaign", "rewards.add_prize")
# A draft's prize table is replaced as a whole: the admin asks for every prize permission.
_EDIT_CAMPAIGN = ("rewards.change_campaign", "rewards.add_prize", "rewards.change_prize", "rewards.delete_prize")
_CHANGE_CAMPAIGN = ("rewards.change_campaign",)
_VIEW_CLAIM = ("rewards.view_claim",)
_REVIEW_CLAIM = ("rewards.change_claim",)
_VIEW_PAYOUT = ("rewards.view_payout",)
_REVIEW_PAYOUT = ("rewards.change_payout",)


class RewardsView(ChannelView):
    """品牌员工登录后调用（管理后台的会话）；各接口所需权限与管理后台一致，无权限返回 403
    （permission_denied）。错误为 {"code", "message"}：参数有误 400，不存在 404，状态不允许 409。"""


# --- campaigns --------------------------------------------------------------------------------------


def _campaigns() -> QuerySet[Campaign]:
    """Campaigns with their prize totals (one query for any page)."""
    return Campaign.objects.annotate(
        prize_quantity=Coalesce(Sum("prizes__quantity"), 0),
        prizes_awarded=Coalesce(Sum("prizes__awarded"), 0),
    ).order_by("-starts_at", "-id")


def _campaign_detail(campaign_id: int) -> Campaign:
    """A campaign with its prizes and the counts of its draws by outcome and by review status."""
    campaign = (
        _campaigns()
        .prefetch_related(Prefetch("prizes", queryset=Prize.objects.order_by("position", "id")))
        .filter(pk=campaign_id)
        .first()
    )
    if campaign is None:
        raise NotFound(E.CAMPAIGN_NOT_FOUND, _("活动不存在。"))
    by_outcome = dict.fromkeys(ClaimOutcome.values, 0)
    by_status = dict.fromkeys(ClaimStatus.values, 0)
    rows = Claim.objects.filter(campaign_id=campaign.pk).values("outcome", "status").annotate(n=Count("id")).order_by()
    for row in rows:
        by_outcome[row["outcome"]] = by_outcome.get(row["outcome"], 0) + row["n"]
        by_status[row["status"]] = by_status.get(row["status"], 0) + row["n"]
    campaign.claim_counts = {  # type: ignore[attr-defined]
        "total": sum(by_outcome.values()),
        "by_outcome": by_outcome,
        "by_status": by_status,
    }
    return campaign


def _audit_state(campaign: Campaign) -> dict[str, Any]:
    """A campaign and its prize table, for the audit log (as the admin logs it)."""
    state = audit.snapshot(campaign)
    state["prizes"] = list(
        Prize.objects.filter(campaign_id=campaign.pk)
        .order_by("position", "id")
        .values("name", "kind", "amount_fen", "points", "value_fen", "odds_ppm", "quantity", "is_guarantee", "card_set")
    )
    return state


_TARGET_MODELS: Sequence[tuple[str, Any, Any]] = (
    ("target_batch_ids", Batch, gettext_lazy("指定的批次不存在。")),
    ("target_sku_ids", Sku, gettext_lazy("指定的商品规格不存在。")),
    ("target_dealer_ids", Dealer, gettext_lazy("指定的经销商不存在。")),
)


def _check_target_ids(values: dict[str, Any]) -> None:
    """Targets name rows of this brand (the admin offers only those)."""
    for field, model, message in _TARGET_MODELS:
        wanted = set(values.get(field) or ())
        if not wanted:
            continue
        found = set(model.objects.filter(pk__in=wanted).values_list("pk", flat=True))
        missing = sorted(wanted - found)
        if missing:
            raise JiumaError(E.UNKNOWN_TARGET, str(message), fields={field: missing[:20]})


def _specs(rows: list[dict[str, Any]]) -> list[PrizeSpec]:
    """The prize rows as the services take them (a card prize's set by id)."""
    specs = []
    for row in rows:
        fields = dict(row)
        fields["card_set_id"] = fields.pop("card_set")
        specs.append(PrizeSpec(**fields))
    return specs


def _spec_of(prize: Prize) -> PrizeSpec:
    return PrizeSpec(
        name=prize.name,
        kind=prize.kind,
        odds_ppm=prize.odds_ppm,
        quantity=prize.quantity,
        amount_fen=prize.amount_fen,
        points=prize.points,
        value_fen=prize.value_fen,
        is_guarantee=prize.is_guarantee,
        card_set_id=prize.card_set_id,
    )


_CAMPAIGN_FIELDS = (
    "name",
    "description",
    "organiser",
    "contact",
    "starts_at",
    "ends_at",
    "priority",
    "budget_fen",
    "pacing",
    "pacing_slack_percent",
    "first_scan_guarantee",
    "member_daily_cap",
    "member_total_cap",
    "target_batch_ids",
    "target_sku_ids",
    "target_region_codes",
    "target_dealer_ids",
)


class CampaignListView(RewardsView, generics.ListAPIView[Campaign]):
    perms = {"GET": _VIEW_CAMPAIGN, "POST": _ADD_CAMPAIGN}
    serializer_class = s.CampaignSerializer

    def get_serializer_class(self) -> Any:
        return s.CampaignDetailSerializer if self.request.method == "POST" else s.CampaignSerializer

    def get_queryset(self) -> QuerySet[Campaign]:
        f = self.filters(s.CampaignFilterSerializer)
        rows = _campaigns()
        if f.get("q"):
            rows = rows.filter(name__icontains=f["q"])
        if f.get("status"):
            rows = rows.filter(status=f["status"])
        return rows

    @extend_schema(
        tags=_CAMPAIGNS,
        summary="扫码活动列表",
        parameters=[s.CampaignFilterSerializer],
        responses=s.CampaignSerializer(many=True),
    )
    def get(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        return super().get(request, *args, **kwargs)

    @extend_schema(
        tags=_CAMPAIGNS,
        summary="新建活动（草稿，连同奖项表）",
        request=s.CampaignInputSerializer,
        responses={201: s.CampaignDetailSerializer},
    )
    def post(self, request: Request) -> Response:
        form = s.CampaignInputSerializer(data=request.data)
        form.is_valid(raise_exception=True)
        values = dict(form.validated_data)
        prizes = _specs(values.pop("prizes"))
        _check_target_ids(values)
        with transaction.atomic():
            created = campaigns.create_campaign(**values, prizes=prizes, created_by=request.user.get_username())
            audit.record(AuditAction.CREATE, obj=created, after=_audit_state(created))
        return self.out(_campaign_detail(created.pk), code=status.HTTP_201_CREATED)


class CampaignDetailView(RewardsView):
    perms = {"GET": _VIEW_CAMPAIGN, "PATCH": _EDIT_CAMPAIGN}
    serializer_class = s.CampaignDetailSerializer

    @extend_schema(tags=_CAMPAIGNS, summary="活动详情（奖项、预算、种子承诺、抽奖统计）")
    def get(self, request: Request, campaign_id: int) -> Response:
        return self.out(_campaign_detail(campaign_id))

    @extend_schema(
        tags=_CAMPAIGNS,
        summary="修改草稿活动（给出 prizes 则整体替换奖项表）",
        request=s.CampaignInputSerializer,
        responses=s.CampaignDetailSerializer,
    )
    def patch(self, request: Request, campaign_id: int) -> Response:
        campaign = campaigns.get_campaign(campaign_id)
        if campaign.status != CampaignStatus.DRAFT:  # checked again under the row lock by update_draft
            raise Conflict(E.WRONG_STATE, _("活动已发布或已结束，规则不能再修改。"))
        form = s.CampaignInputSerializer(data=request.data, partial=True)
        form.is_valid(raise_exception=True)
        changes = dict(form.validated_data)
        rows = changes.pop("prizes", None)
        if rows is not None:
            prizes = _specs(rows)
        else:  # the table as it is (update_draft writes it again)
            prizes = [_spec_of(prize) for prize in campaign.prizes.order_by("position", "id")]
        if "name" in changes:
            changes["name"] = changes["name"].strip()
        merged = {field: getattr(campaign, field) for field in _CAMPAIGN_FIELDS} | changes
        campaigns.check_fields(**merged)
        campaigns.check_prizes(prizes, first_scan_guarantee=merged["first_scan_guarantee"])
        if "target_region_codes" in changes:
            changes["target_region_codes"] = campaigns.check_targets(changes["target_region_codes"])
        _check_target_ids(changes)
        before = _audit_state(campaign)
        with transaction.atomic():
            updated = campaigns.update_draft(campaign, values=changes, prizes=prizes)
            b, a = audit.changed_only(before, _audit_state(updated))
            if a:
                audit.record(AuditAction.UPDATE, obj=updated, before=b, after=a)
        return self.out(_campaign_detail(updated.pk))


class _CampaignTransitionView(RewardsView):
    perms = {"GET": _CHANGE_CAMPAIGN, "POST": _CHANGE_CAMPAIGN}
    serializer_class = s.CampaignDetailSerializer
    service: Callable[[Campaign], Campaign]
    detail: Any  # a lazy translation

    def transition(self, campaign_id: int) -> Response:
        campaign = campaigns.get_campaign(campaign_id)
        before = campaign.status
        with transaction.atomic():
            after = type(self).service(campaign)
            audit.record(
                AuditAction.ACTION,
                obj=after,
                before={"status": before},
                after={
                    "status": after.status,
                    "seed_commitment": after.seed_commitment,
                    "seed_revealed": after.seed_revealed,
                },
                detail=str(self.detail),
            )
        return self.out(_campaign_detail(campaign_id))


class CampaignPublishView(_CampaignTransitionView):
    service = staticmethod(campaigns.publish)
    detail = gettext_lazy("发布活动")

    @extend_schema(
        tags=_CAMPAIGNS,
        summary="发布活动（公开规则并提交种子承诺；须在开始前）",
        request=None,
        responses=s.CampaignDetailSerializer,
    )
    def post(self, request: Request, campaign_id: int) -> Response:
        return self.transition(campaign_id)


class CampaignCancelView(_CampaignTransitionView):
    service = staticmethod(campaigns.cancel)
    detail = gettext_lazy("取消活动")

    @extend_schema(
        tags=_CAMPAIGNS, summary="取消活动（仅限尚未开始的）", request=None, responses=s.CampaignDetailSerializer
    )
    def post(self, request: Request, campaign_id: int) -> Response:
        return self.transition(campaign_id)


class CampaignEndView(_CampaignTransitionView):
    service = staticmethod(campaigns.end)
    detail = gettext_lazy("结束活动并公开种子")

    @extend_schema(
        tags=_CAMPAIGNS,
        summary="结束活动并公开种子（仅限已到结束时间的）",
        request=None,
        responses=s.CampaignDetailSerializer,
    )
    def post(self, request: Request, campaign_id: int) -> Response:
        return self.transition(campaign_id)


# --- claims (draws) ---------------------------------------------------------------------------------


def _claims() -> QuerySet[Claim]:
    return Claim.objects.select_related("campaign", "member", "prize", "payout").order_by("-id")


def _claim(claim_id: int) -> Claim:
    claim = _claims().filter(pk=claim_id).first()
    if claim is None:
        raise NotFound(E.CLAIM_NOT_FOUND, _("抽奖记录不存在。"))
    return claim


def _enqueue_when_pending(payout_id: int | None) -> None:
    """A payout released to the worker is handed to it once the transaction commits (as the admin does)."""
    if payout_id is not None:
        transaction.on_commit(partial(payouts.enqueue, payout_id))


class ClaimListView(RewardsView, generics.ListAPIView[Claim]):
    perms = {"GET": _VIEW_CLAIM}
    serializer_class = s.ClaimSerializer

    def get_queryset(self) -> QuerySet[Claim]:
        f = self.filters(s.ClaimFilterSerializer)
        rows = _claims()
        for name, lookup in (("campaign", "campaign_id"), ("member", "member_id"), ("status", "status")):
            if f.get(name):
                rows = rows.filter(**{lookup: f[name]})
        if f.get("outcome"):
            rows = rows.filter(outcome=f["outcome"])
        if f.get("created_after") is not None:
            rows = rows.filter(created_at__gte=f["created_after"])
        if f.get("created_before") is not None:
            rows = rows.filter(created_at__lt=f["created_before"])
        return rows

    @extend_schema(tags=_CLAIMS, summary="抽奖记录列表", parameters=[s.ClaimFilterSerializer])
    def get(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        return super().get(request, *args, **kwargs)


class ClaimDetailView(RewardsView):
    perms = {"GET": _VIEW_CLAIM}
    serializer_class = s.ClaimDetailSerializer

    @extend_schema(tags=_CLAIMS, summary="抽奖记录详情（含风险原因）")
    def get(self, request: Request, claim_id: int) -> Response:
        return self.out(_claim(claim_id))


class ClaimReviewView(RewardsView):
    perms = {"GET": _REVIEW_CLAIM, "POST": _REVIEW_CLAIM}
    serializer_class = s.ClaimDetailSerializer

    @extend_schema(
        tags=_CLAIMS,
        summary="审核待审核的抽奖记录（通过则发放奖品，驳回则奖品退回活动）",
        request=s.ReviewSerializer,
        responses=s.ClaimDetailSerializer,
    )
    def post(self, request: Request, claim_id: int) -> Response:
        claim = _claim(claim_id)
        form = s.ReviewSerializer(data=request.data)
        form.is_valid(raise_exception=True)
        approve: bool = form.validated_data["approve"]
        actor = request.user.get_username()
        with transaction.atomic():
            reviewed = claims.review(claim, approve=approve, actor=actor)
            audit.record(
                AuditAction.UPDATE,
                obj=reviewed,
                before={"status": ClaimStatus.HELD.value},
                after={"status": reviewed.status, "reviewed_by": actor},
                detail=_("审核抽奖记录"),
            )
            if approve:
                _enqueue_when_pending(
                    Payout.objects.filter(claim=reviewed, status=PayoutStatus.PENDING)
                    .values_list("pk", flat=True)
                    .first()
                )
        return self.out(_claim(claim_id))


# --- payouts (red packets) --------------------------------------------------------------------------


def _payouts() -> QuerySet[Payout]:
    return Payout.objects.select_related("member", "campaign").order_by("-id")


def _payout(payout_id: int) -> Payout:
    payout = _payouts().filter(pk=payout_id).first()
    if payout is None:
        raise NotFound(E.PAYOUT_NOT_FOUND, _("红包发放记录不存在。"))
    return payout


class PayoutListView(RewardsView, generics.ListAPIView[Payout]):
    perms = {"GET": _VIEW_PAYOUT}
    serializer_class = s.PayoutSerializer

    def get_queryset(self) -> QuerySet[Payout]:
        f = self.filters(s.PayoutFilterSerializer)
        rows = _payouts()
        for name, lookup in (("campaign", "campaign_id"), ("member", "member_id"), ("status", "status")):
            if f.get(name):
                rows = rows.filter(**{lookup: f[name]})
        return rows

    @extend_schema(tags=_PAYOUTS, summary="红包发放列表", parameters=[s.PayoutFilterSerializer])
    def get(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        return super().get(request, *args, **kwargs)


class PayoutDetailView(RewardsView):
    perms = {"GET": _VIEW_PAYOUT}
    serializer_class = s.PayoutSerializer

    @extend_schema(tags=_PAYOUTS, summary="红包发放详情")
    def get(self, request: Request, payout_id: int) -> Response:
        return self.out(_payout(payout_id))


class _PayoutReviewView(RewardsView):
    perms = {"GET": _REVIEW_PAYOUT, "POST": _REVIEW_PAYOUT}
    serializer_class = s.PayoutSerializer
    service: Callable[..., Payout]
    detail: Any  # a lazy translation

    def review(self, request: Request, payout_id: int) -> Response:
        """Approve or reject a held payout (the service refuses any other), as the signed-in user."""
        payout = _payout(payout_id)
        actor = request.user.get_username()
        with transaction.atomic():
            reviewed = type(self).service(payout, actor=actor)
            audit.record(
                AuditAction.ACTION,
                obj=reviewed,
                before={"status": PayoutStatus.HELD.value},
                after={"status": reviewed.status, "reviewed_by": actor},
                detail=str(self.detail),
            )
            _enqueue_when_pending(reviewed.pk if reviewed.status == PayoutStatus.PENDING else None)
        return self.out(_payout(payout_id))


class PayoutApproveView(_PayoutReviewView):
    service = staticmethod(payouts.approve)
    detail = gettext_lazy("审核通过红包")

    @extend_schema(
        tags=_PAYOUTS,
        summary="审核通过风控暂缓的红包（随即发放）",
        request=None,
        responses=s.PayoutSerializer,
    )
    def post(self, request: Request, payout_id: int) -> Response:
        return self.review(request, payout_id)


class PayoutRejectView(_PayoutReviewView):
    service = staticmethod(payouts.reject)
    detail = gettext_lazy("驳回红包")

    @extend_schema(
        tags=_PAYOUTS,
        summary="驳回风控暂缓的红包（不再发放，金额和奖品退回活动）",
        request=None,
        responses=s.PayoutSerializer,
    )
    def post(self, request: Request, payout_id: int) -> Response:
        return self.review(request, payout_id)


class PayoutRetryView(RewardsView):
    perms = {"GET": _REVIEW_PAYOUT, "POST": _REVIEW_PAYOUT}
    serializer_class = s.PayoutSerializer

    @extend_schema(
        tags=_PAYOUTS,
        summary="立即重试等待中的红包（同一商户单号，微信只转账一次）",
        request=None,
        responses=s.PayoutSerializer,
    )
    def post(self, request: Request, payout_id: int) -> Response:
        """The admin's "立即重试": a pending payout waiting for a later attempt becomes due now, under
        its row lock. One due within a lease may be in a worker's hands right now (and is sent within
        a minute anyway): refused, like any payout that is not pending."""
        _payout(payout_id)  # 404 first
        now = timezone.now()
        with transaction.atomic():
            rescheduled = payouts.retry_now([payout_id], now=now)
            if not rescheduled:
                raise Conflict(E.PAYOUT_NOT_WAITING, _("该红包不在待发放状态，或一分钟内将自动重试。"))
            ((payout, waited),) = rescheduled
            audit.record(
                AuditAction.ACTION,
                obj=payout,
                before={"next_attempt_at": waited.isoformat()},
                after={"next_attempt_at": now.isoformat()},
                detail=_("立即重试红包"),
            )
        return self.out(_payout(payout_id))
