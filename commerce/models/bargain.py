"""Bargaining (砍价): a member opens a session on a campaign's SKU at the start price; friends help,
each once, each cutting an integer number of fen; the price never goes below the floor, and the
helper who makes the `max_helps`-th cut takes it exactly to the floor. The member orders at the
session's current price (only at the floor unless the campaign allows buying earlier)."""

from __future__ import annotations

from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

_Q = models.Q
_F = models.F


class BargainCampaign(models.Model):
    """A bargain offer. `sold` (units in live orders) moves like GroupBuyCampaign.sold."""

    name = models.CharField(_("活动名称"), max_length=100)
    sku = models.ForeignKey("commerce.Sku", on_delete=models.PROTECT, related_name="+", verbose_name=_("SKU"))
    start_price_fen = models.BigIntegerField(_("起始价（分）"))
    floor_price_fen = models.BigIntegerField(_("底价（分）"))
    max_helps = models.PositiveSmallIntegerField(_("砍到底价所需人数"))
    session_hours = models.PositiveSmallIntegerField(_("砍价时限（小时）"), default=24)
    starts_at = models.DateTimeField(_("开始时间"))
    ends_at = models.DateTimeField(_("结束时间"))
    quantity = models.PositiveIntegerField(_("活动库存"), null=True, blank=True)
    sold = models.PositiveIntegerField(_("已售"), default=0)
    member_limit = models.PositiveSmallIntegerField(_("每人可发起次数"), null=True, blank=True)
    helper_limit = models.PositiveSmallIntegerField(_("每人每活动可帮砍次数"), null=True, blank=True)
    allow_buy_above_floor = models.BooleanField(_("未砍到底价可购买"), default=False)
    pays_commission = models.BooleanField(_("参与分销"), default=False)
    is_active = models.BooleanField(_("启用"), default=False)
    created_at = models.DateTimeField(_("创建时间"), default=timezone.now)

    class Meta:
        verbose_name = _("砍价活动")
        verbose_name_plural = _("砍价活动")
        ordering = ["-starts_at", "-id"]
        constraints = [
            models.CheckConstraint(
                condition=_Q(floor_price_fen__gte=0, start_price_fen__gt=_F("floor_price_fen")),
                name="bargain_campaign_prices",
                violation_error_message=_("底价须低于起始价且不为负。"),
            ),
            models.CheckConstraint(condition=_Q(max_helps__gte=1, max_helps__lte=1000), name="bargain_campaign_helps"),
            models.CheckConstraint(
                condition=_Q(session_hours__gte=1, session_hours__lte=720), name="bargain_campaign_hours"
            ),
            models.CheckConstraint(condition=_Q(ends_at__gt=_F("starts_at")), name="bargain_campaign_window"),
            models.CheckConstraint(
                condition=_Q(quantity__isnull=True) | _Q(sold__lte=_F("quantity")),
                name="bargain_campaign_within_quantity",
            ),
            models.CheckConstraint(
                condition=_Q(member_limit__isnull=True) | _Q(member_limit__gte=1), name="bargain_campaign_member_limit"
            ),
            models.CheckConstraint(
                condition=_Q(helper_limit__isnull=True) | _Q(helper_limit__gte=1), name="bargain_campaign_helper_limit"
            ),
        ]

    def __str__(self) -> str:
        return self.name


class BargainStatus(models.TextChoices):
    ACTIVE = "active", _("砍价中")
    ORDERED = "ordered", _("已下单")
    EXPIRED = "expired", _("已过期")


class BargainSession(models.Model):
    """One member's bargaining on a campaign, with the campaign's prices and helps copied at start.
    `current_price_fen` and `helps_count` change only together with a new BargainHelp, under the
    session's row lock: start - current = the sum of the helps' cuts."""

    campaign = models.ForeignKey(
        BargainCampaign, on_delete=models.PROTECT, related_name="sessions", verbose_name=_("砍价活动")
    )
    member = models.ForeignKey(
        "commerce.Member", on_delete=models.PROTECT, related_name="bargain_sessions", verbose_name=_("发起人")
    )
    start_price_fen = models.BigIntegerField(_("起始价（分）"))
    floor_price_fen = models.BigIntegerField(_("底价（分）"))
    current_price_fen = models.BigIntegerField(_("当前价（分）"))
    max_helps = models.PositiveSmallIntegerField(_("砍到底价所需人数"))
    helps_count = models.PositiveSmallIntegerField(_("已帮砍人数"), default=0)
    status = models.CharField(_("状态"), max_length=8, choices=BargainStatus.choices, default=BargainStatus.ACTIVE)
    expires_at = models.DateTimeField(_("截止时间"))
    order = models.OneToOneField(
        "commerce.Order",
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="bargain_session",
        verbose_name=_("订单"),
    )
    created_at = models.DateTimeField(_("发起时间"), default=timezone.now)

    class Meta:
        verbose_name = _("砍价记录")
        verbose_name_plural = _("砍价记录")
        ordering = ["-id"]
        constraints = [
            models.CheckConstraint(condition=_Q(status__in=BargainStatus.values), name="bargain_session_status_valid"),
            models.CheckConstraint(
                condition=_Q(floor_price_fen__gte=0, start_price_fen__gt=_F("floor_price_fen"))
                & _Q(current_price_fen__gte=_F("floor_price_fen"), current_price_fen__lte=_F("start_price_fen")),
                name="bargain_session_price_within_range",
                violation_error_message=_("价格不能低于底价。"),
            ),
            models.CheckConstraint(
                condition=_Q(max_helps__gte=1, helps_count__lte=_F("max_helps")), name="bargain_session_helps"
            ),
            models.CheckConstraint(
                condition=_Q(helps_count__lt=_F("max_helps")) | _Q(current_price_fen=_F("floor_price_fen")),
                name="bargain_session_last_help_reaches_floor",
            ),
            models.CheckConstraint(
                condition=_Q(status=BargainStatus.ORDERED, order__isnull=False)
                | ~_Q(status=BargainStatus.ORDERED) & _Q(order__isnull=True),
                name="bargain_session_order_matches_status",
            ),
            models.UniqueConstraint(
                fields=["campaign", "member"],
                condition=_Q(status=BargainStatus.ACTIVE),
                name="bargain_session_one_active",
                violation_error_message=_("你已在砍这件商品。"),
            ),
        ]
        indexes = [
            models.Index(
                fields=["expires_at"], condition=_Q(status=BargainStatus.ACTIVE), name="bargain_session_expiry"
            )
        ]

    def __str__(self) -> str:
        return f"{self.campaign_id} {self.member_id}: {self.current_price_fen}"


class BargainHelp(models.Model):
    """A friend's cut: once per session per helper, a positive number of fen."""

    session = models.ForeignKey(
        BargainSession, on_delete=models.PROTECT, related_name="helps", verbose_name=_("砍价记录")
    )
    helper = models.ForeignKey(
        "commerce.Member", on_delete=models.PROTECT, related_name="bargain_helps", verbose_name=_("帮砍人")
    )
    cut_fen = models.BigIntegerField(_("砍掉（分）"))
    created_at = models.DateTimeField(_("时间"), default=timezone.now)

    class Meta:
        verbose_name = _("帮砍记录")
        verbose_name_plural = _("帮砍记录")
        ordering = ["session", "id"]
        constraints = [
            models.UniqueConstraint(
                fields=["session", "helper"],
                name="bargain_help_once_per_helper",
                violation_error_message=_("你已经帮砍过了。"),
            ),
            models.CheckConstraint(condition=_Q(cut_fen__gt=0), name="bargain_help_cut_positive"),
        ]
        indexes = [models.Index(fields=["helper", "created_at"], name="bargain_help_by_helper")]

    def __str__(self) -> str:
        return f"{self.session_id} {self.helper_id} -{self.cut_fen}"
