"""Group buy (拼团): a campaign sells a SKU at a group price to teams of `team_size` members.

A team is opened by its leader's order (status pending until that order is paid, then open for
`team_hours`). Each member of a team holds one seat tied to their own order: reserved when the order
is created, paid when it is paid, released when it is cancelled unpaid, refunded when the team fails.
The team succeeds when its paid seats reach its size; at `expires_at` an open team fails and every
paid seat's own order is refunded exactly once (Refund reason group_failed, unique per order). No
"virtual fill" (模拟成团): a team only succeeds with real paid members.
"""

from __future__ import annotations

from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

_Q = models.Q
_F = models.F


class GroupBuyCampaign(models.Model):
    """A group-buy offer. `sold` (units in live orders) is raised by a guarded UPDATE with the order's
    stock reservation and lowered with its release."""

    name = models.CharField(_("活动名称"), max_length=100)
    sku = models.ForeignKey("commerce.Sku", on_delete=models.PROTECT, related_name="+", verbose_name=_("SKU"))
    group_price_fen = models.BigIntegerField(_("拼团价（分）"))
    team_size = models.PositiveSmallIntegerField(_("成团人数"))
    team_hours = models.PositiveSmallIntegerField(_("成团时限（小时）"), default=24)
    starts_at = models.DateTimeField(_("开始时间"))
    ends_at = models.DateTimeField(_("结束时间"))
    quantity = models.PositiveIntegerField(
        _("活动库存"), null=True, blank=True, help_text=_("留空表示只受 SKU 库存限制。")
    )
    sold = models.PositiveIntegerField(_("已售"), default=0)
    per_order_limit = models.PositiveSmallIntegerField(_("每单限购"), default=1)
    member_limit = models.PositiveSmallIntegerField(_("每人限参团次数"), null=True, blank=True)
    pays_commission = models.BooleanField(_("参与分销"), default=False)
    is_active = models.BooleanField(_("启用"), default=False)
    created_at = models.DateTimeField(_("创建时间"), default=timezone.now)

    class Meta:
        verbose_name = _("拼团活动")
        verbose_name_plural = _("拼团活动")
        ordering = ["-starts_at", "-id"]
        constraints = [
            models.CheckConstraint(condition=_Q(group_price_fen__gt=0), name="group_buy_price_positive"),
            models.CheckConstraint(condition=_Q(team_size__gte=2, team_size__lte=100), name="group_buy_team_size"),
            models.CheckConstraint(condition=_Q(team_hours__gte=1, team_hours__lte=720), name="group_buy_team_hours"),
            models.CheckConstraint(condition=_Q(ends_at__gt=_F("starts_at")), name="group_buy_window"),
            models.CheckConstraint(
                condition=_Q(quantity__isnull=True) | _Q(sold__lte=_F("quantity")),
                name="group_buy_within_quantity",
                violation_error_message=_("拼团活动库存不足。"),
            ),
            models.CheckConstraint(condition=_Q(per_order_limit__gte=1), name="group_buy_per_order_limit"),
            models.CheckConstraint(
                condition=_Q(member_limit__isnull=True) | _Q(member_limit__gte=1), name="group_buy_member_limit"
            ),
        ]

    def __str__(self) -> str:
        return self.name


class TeamStatus(models.TextChoices):
    PENDING = "pending", _("待团长付款")
    OPEN = "open", _("拼团中")
    SUCCEEDED = "succeeded", _("拼团成功")
    FAILED = "failed", _("拼团失败")
    VOID = "void", _("已作废")  # the leader's order was cancelled unpaid


class GroupBuyTeam(models.Model):
    """One team. `seats_taken` counts reserved and paid seats, `seats_paid` paid ones; both move by
    guarded UPDATEs under the team's row lock (join: status open, not expired, seats_taken < size)."""

    campaign = models.ForeignKey(
        GroupBuyCampaign, on_delete=models.PROTECT, related_name="teams", verbose_name=_("拼团活动")
    )
    leader = models.ForeignKey(
        "commerce.Member", on_delete=models.PROTECT, related_name="group_buy_teams_led", verbose_name=_("团长")
    )
    status = models.CharField(_("状态"), max_length=10, choices=TeamStatus.choices, default=TeamStatus.PENDING)
    size = models.PositiveSmallIntegerField(_("成团人数"))
    seats_taken = models.PositiveSmallIntegerField(_("已占位"), default=0)
    seats_paid = models.PositiveSmallIntegerField(_("已付款"), default=0)
    expires_at = models.DateTimeField(_("截止时间"), null=True, blank=True)
    created_at = models.DateTimeField(_("创建时间"), default=timezone.now)
    opened_at = models.DateTimeField(_("开团时间"), null=True, blank=True)
    finished_at = models.DateTimeField(_("结束时间"), null=True, blank=True)

    class Meta:
        verbose_name = _("拼团队伍")
        verbose_name_plural = _("拼团队伍")
        ordering = ["-id"]
        constraints = [
            models.CheckConstraint(condition=_Q(status__in=TeamStatus.values), name="group_buy_team_status_valid"),
            models.CheckConstraint(condition=_Q(size__gte=2), name="group_buy_team_size_min"),
            models.CheckConstraint(
                condition=_Q(seats_paid__gte=0, seats_paid__lte=_F("seats_taken"), seats_taken__lte=_F("size")),
                name="group_buy_team_seats_within_size",
                violation_error_message=_("该团已满。"),
            ),
            models.CheckConstraint(
                condition=~_Q(status=TeamStatus.PENDING) | _Q(seats_paid=0, expires_at__isnull=True),
                name="group_buy_team_pending",
            ),
            models.CheckConstraint(
                condition=~_Q(status=TeamStatus.OPEN)
                | _Q(seats_paid__gte=1, expires_at__isnull=False, opened_at__isnull=False),
                name="group_buy_team_open",
            ),
            models.CheckConstraint(
                condition=~_Q(status=TeamStatus.SUCCEEDED) | _Q(seats_paid=_F("size")),
                name="group_buy_team_succeeded_is_full",
            ),
            models.CheckConstraint(
                condition=_Q(status__in=[TeamStatus.PENDING, TeamStatus.OPEN]) | _Q(finished_at__isnull=False),
                name="group_buy_team_finished_at",
            ),
        ]
        indexes = [
            models.Index(fields=["expires_at"], condition=_Q(status=TeamStatus.OPEN), name="group_buy_team_expiry"),
            models.Index(fields=["campaign", "status", "expires_at"], name="group_buy_team_joinable"),
        ]

    def __str__(self) -> str:
        return f"{self.campaign_id}#{self.pk} {self.seats_paid}/{self.size} ({self.status})"


class SeatStatus(models.TextChoices):
    RESERVED = "reserved", _("待付款")
    PAID = "paid", _("已付款")
    RELEASED = "released", _("已释放")  # order cancelled unpaid
    REFUNDED = "refunded", _("已退款")  # team failed (or the member's order refunded before success)


class GroupBuySeat(models.Model):
    """A member's place in a team, tied to their own order. A member holds at most one live seat
    (not released) per team, a team has one leader."""

    team = models.ForeignKey(GroupBuyTeam, on_delete=models.PROTECT, related_name="seats", verbose_name=_("队伍"))
    member = models.ForeignKey(
        "commerce.Member", on_delete=models.PROTECT, related_name="group_buy_seats", verbose_name=_("会员")
    )
    order = models.OneToOneField(
        "commerce.Order", on_delete=models.PROTECT, related_name="group_buy_seat", verbose_name=_("订单")
    )
    is_leader = models.BooleanField(_("团长"), default=False)
    status = models.CharField(_("状态"), max_length=10, choices=SeatStatus.choices, default=SeatStatus.RESERVED)
    joined_at = models.DateTimeField(_("参团时间"), default=timezone.now)
    paid_at = models.DateTimeField(_("付款时间"), null=True, blank=True)
    ended_at = models.DateTimeField(null=True, blank=True)  # released or refunded

    class Meta:
        verbose_name = _("拼团成员")
        verbose_name_plural = _("拼团成员")
        ordering = ["team", "id"]
        constraints = [
            models.CheckConstraint(condition=_Q(status__in=SeatStatus.values), name="group_buy_seat_status_valid"),
            models.UniqueConstraint(
                fields=["team", "member"],
                condition=~_Q(status=SeatStatus.RELEASED),
                name="group_buy_seat_once_per_member",
                violation_error_message=_("你已在这个团里。"),
            ),
            models.UniqueConstraint(fields=["team"], condition=_Q(is_leader=True), name="group_buy_seat_one_leader"),
            models.CheckConstraint(
                condition=~_Q(status=SeatStatus.PAID) | _Q(paid_at__isnull=False), name="group_buy_seat_paid_at"
            ),
            models.CheckConstraint(
                condition=~_Q(status__in=[SeatStatus.RELEASED, SeatStatus.REFUNDED]) | _Q(ended_at__isnull=False),
                name="group_buy_seat_ended_at",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.team_id} {self.member_id} ({self.status})"
