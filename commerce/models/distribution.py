"""Distribution (分销): member affiliates earn commission on the orders of the customers they bring.

The line between distribution and pyramid selling, held by the data: no entry fee (nothing to pay
to become an affiliate: there is no such field or flow), commission on at most two levels (an order
names at most two affiliates, a commission entry has level 1 or 2 and there is one accrual per order
line and level), commission only from paid orders and withdrawable only once settled (after the
after-sales window), and reversed on refund, after settlement too (the settled balance may go
negative: a debt later commission pays off).

The commission ledger (CommissionEntry) is append-only: every row moves a positive amount from one
state to another (or in/out of the ledger), so each affiliate's balances are derived sums:
balance(state) = Σ amount where to_state = state − Σ amount where from_state = state.
"""

from __future__ import annotations

from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from commerce.models.catalog import MAX_RATE_BP
from tenants.brand.models import SingletonModel

_Q = models.Q
_F = models.F


class DistributionPolicy(SingletonModel):
    """The brand's distribution rules (one row): the default commission rates of the two levels (in
    basis points of a line's paid amount; a product may have its own, CommissionRate), how many levels
    pay (1 or 2), and the smallest withdrawal."""

    is_enabled = models.BooleanField(_("启用分销"), default=False)
    levels = models.PositiveSmallIntegerField(_("分佣层级"), default=2, help_text=_("1 或 2，不允许更多层级。"))
    rate_l1_bp = models.PositiveIntegerField(_("一级佣金比例（万分之）"), default=0)
    rate_l2_bp = models.PositiveIntegerField(_("二级佣金比例（万分之）"), default=0)
    requires_approval = models.BooleanField(_("成为分销员需审核"), default=True)
    binding_days = models.PositiveIntegerField(_("客户绑定有效期（天）"), default=0, help_text=_("0 表示永久绑定。"))
    min_withdrawal_fen = models.BigIntegerField(_("最低提现金额（分）"), default=100)
    updated_at = models.DateTimeField(_("更新时间"), auto_now=True)

    class Meta:
        verbose_name = _("分销规则")
        verbose_name_plural = _("分销规则")
        constraints = [
            models.CheckConstraint(condition=_Q(id=1), name="distribution_policy_singleton"),
            models.CheckConstraint(condition=_Q(levels__in=[1, 2]), name="distribution_policy_levels"),
            models.CheckConstraint(
                condition=_Q(rate_l1_bp__lte=MAX_RATE_BP - _F("rate_l2_bp")) & (_Q(levels=2) | _Q(rate_l2_bp=0)),
                name="distribution_policy_rates",
            ),
            models.CheckConstraint(condition=_Q(min_withdrawal_fen__gte=1), name="distribution_policy_min_withdrawal"),
        ]

    def __str__(self) -> str:
        return str(_("分销规则"))


class CommissionRate(models.Model):
    """A product's own commission rates, overriding the policy's."""

    product = models.OneToOneField(
        "commerce.Product", on_delete=models.CASCADE, related_name="commission_rate", verbose_name=_("商品")
    )
    rate_l1_bp = models.PositiveIntegerField(_("一级佣金比例（万分之）"))
    rate_l2_bp = models.PositiveIntegerField(_("二级佣金比例（万分之）"), default=0)

    class Meta:
        verbose_name = _("商品佣金")
        verbose_name_plural = _("商品佣金")
        constraints = [
            models.CheckConstraint(
                condition=_Q(rate_l1_bp__lte=MAX_RATE_BP - _F("rate_l2_bp")), name="commission_rate_within_price"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.product_id}: {self.rate_l1_bp}/{self.rate_l2_bp}"


class AffiliateStatus(models.TextChoices):
    APPLIED = "applied", _("待审核")
    ACTIVE = "active", _("正常")
    SUSPENDED = "suspended", _("已停用")  # earns nothing on new orders; keeps what was earned
    REJECTED = "rejected", _("未通过")


class Affiliate(models.Model):
    """A member who distributes (分销员). `parent` is the affiliate who recruited them (their own
    customer binding when they joined); it is set once, to an affiliate created earlier, so the tree
    has no cycle (parent id < id). The tree may be deep, but an order pays only the buyer's affiliate
    (level 1) and that affiliate's parent (level 2)."""

    member = models.OneToOneField(
        "commerce.Member", on_delete=models.PROTECT, related_name="affiliate", verbose_name=_("会员")
    )
    parent = models.ForeignKey(
        "self", null=True, blank=True, on_delete=models.PROTECT, related_name="children", verbose_name=_("上级分销员")
    )
    status = models.CharField(
        _("状态"), max_length=10, choices=AffiliateStatus.choices, default=AffiliateStatus.APPLIED
    )
    applied_at = models.DateTimeField(_("申请时间"), default=timezone.now)
    approved_at = models.DateTimeField(_("通过时间"), null=True, blank=True)
    reviewed_by = models.CharField(_("审核人"), max_length=150, blank=True)

    class Meta:
        verbose_name = _("分销员")
        verbose_name_plural = _("分销员")
        ordering = ["-id"]
        constraints = [
            models.CheckConstraint(condition=_Q(status__in=AffiliateStatus.values), name="affiliate_status_valid"),
            models.CheckConstraint(
                condition=_Q(parent__isnull=True) | _Q(parent__lt=_F("id")),
                name="affiliate_parent_earlier",
                violation_error_message=_("上级分销员须早于本人加入，且不能是自己。"),
            ),
            models.CheckConstraint(
                condition=~_Q(status__in=[AffiliateStatus.ACTIVE, AffiliateStatus.SUSPENDED])
                | _Q(approved_at__isnull=False),
                name="affiliate_approved_at",
            ),
        ]

    def __str__(self) -> str:
        return f"#{self.pk} ({self.member_id})"


class AffiliateCustomer(models.Model):
    """Which affiliate a member buys through (锁客): set when the member first arrives by an
    affiliate's share link, at most one at a time; it lapses at `expires_at` (policy binding_days)."""

    member = models.OneToOneField(
        "commerce.Member", on_delete=models.CASCADE, related_name="affiliate_binding", verbose_name=_("会员")
    )
    affiliate = models.ForeignKey(
        Affiliate, on_delete=models.PROTECT, related_name="customers", verbose_name=_("分销员")
    )
    bound_at = models.DateTimeField(_("绑定时间"), default=timezone.now)
    expires_at = models.DateTimeField(_("失效时间"), null=True, blank=True)
    source = models.CharField(_("来源"), max_length=80, blank=True)  # "share:<token>", "scan:<id>"

    class Meta:
        verbose_name = _("分销客户")
        verbose_name_plural = _("分销客户")
        constraints = [
            models.CheckConstraint(
                condition=_Q(expires_at__isnull=True) | _Q(expires_at__gt=_F("bound_at")),
                name="affiliate_customer_window",
            )
        ]

    def __str__(self) -> str:
        return f"{self.member_id} → {self.affiliate_id}"


class CommissionState(models.TextChoices):
    PENDING = "pending", _("待结算")  # the order is paid, not yet received
    FROZEN = "frozen", _("冻结中")  # received, within the after-sales window
    SETTLED = "settled", _("可提现")  # the after-sales window closed


class CommissionKind(models.TextChoices):
    ACCRUE = "accrue", _("订单佣金")  # → pending, when the order is paid
    FREEZE = "freeze", _("确认收货")  # pending → frozen, when it is received
    SETTLE = "settle", _("结算")  # frozen → settled, when its after-sales window closes
    REVERSE = "reverse", _("退款冲回")  # pending/frozen/settled →, when a refund of the line succeeds
    WITHDRAW = "withdraw", _("提现")  # settled →, when a withdrawal is requested
    WITHDRAW_RETURN = "withdraw_return", _("提现退回")  # → settled, when it is rejected, cancelled or fails
    ADJUST = "adjust", _("人工调整")  # → settled or settled →


class CommissionEntry(models.Model):
    """One movement of commission: append-only, never updated or deleted; a positive amount leaving
    `from_state` ("" = from outside the ledger) and entering `to_state` ("" = leaving the ledger).

    Once per affiliate and `source` (retries are no-ops). Sources: "accrue:<line id>:L<level>",
    "freeze:<line id>:L<level>", "settle:<line id>:L<level>", "reverse:<refund no>:<line id>:L<level>",
    "withdraw:<withdrawal id>", "withdraw-return:<withdrawal id>", "adjust:<ref>". Accrue, freeze and
    settle happen at most once per order line and level (levels 1 and 2 only).
    """

    affiliate = models.ForeignKey(
        Affiliate, on_delete=models.PROTECT, related_name="commission_entries", verbose_name=_("分销员")
    )
    kind = models.CharField(_("类型"), max_length=16, choices=CommissionKind.choices)
    from_state = models.CharField(_("转出"), max_length=8, choices=CommissionState.choices, blank=True)
    to_state = models.CharField(_("转入"), max_length=8, choices=CommissionState.choices, blank=True)
    amount_fen = models.BigIntegerField(_("金额（分）"))
    order_line = models.ForeignKey(
        "commerce.OrderLine",
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="commission_entries",
        verbose_name=_("订单商品"),
    )
    level = models.PositiveSmallIntegerField(_("层级"), null=True, blank=True)
    refund = models.ForeignKey(
        "commerce.Refund", null=True, blank=True, on_delete=models.PROTECT, related_name="+", verbose_name=_("退款")
    )
    withdrawal = models.ForeignKey(
        "commerce.CommissionWithdrawal",
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="entries",
        verbose_name=_("提现"),
    )
    source = models.CharField(_("来源"), max_length=80)
    note = models.CharField(_("说明"), max_length=200, blank=True)
    created_at = models.DateTimeField(_("时间"), default=timezone.now)
    created_by = models.CharField(_("操作人"), max_length=150, blank=True)

    class Meta:
        verbose_name = _("佣金流水")
        verbose_name_plural = _("佣金流水")
        ordering = ["-id"]
        constraints = [
            models.UniqueConstraint(fields=["affiliate", "source"], name="commission_entry_once_per_source"),
            models.CheckConstraint(condition=_Q(amount_fen__gt=0), name="commission_entry_amount_positive"),
            models.CheckConstraint(
                condition=_Q(level__isnull=True, order_line__isnull=True)
                | _Q(level__isnull=False, level__in=[1, 2], order_line__isnull=False),
                name="commission_entry_level_1_or_2",
                violation_error_message=_("佣金最多两级。"),
            ),
            models.UniqueConstraint(
                fields=["order_line", "level", "kind"],
                condition=_Q(kind__in=[CommissionKind.ACCRUE, CommissionKind.FREEZE, CommissionKind.SETTLE]),
                name="commission_entry_once_per_line_level",
            ),
            models.CheckConstraint(
                condition=_Q(
                    kind=CommissionKind.ACCRUE,
                    from_state="",
                    to_state=CommissionState.PENDING,
                    order_line__isnull=False,
                    refund__isnull=True,
                    withdrawal__isnull=True,
                )
                | _Q(
                    kind=CommissionKind.FREEZE,
                    from_state=CommissionState.PENDING,
                    to_state=CommissionState.FROZEN,
                    order_line__isnull=False,
                    refund__isnull=True,
                    withdrawal__isnull=True,
                )
                | _Q(
                    kind=CommissionKind.SETTLE,
                    from_state=CommissionState.FROZEN,
                    to_state=CommissionState.SETTLED,
                    order_line__isnull=False,
                    refund__isnull=True,
                    withdrawal__isnull=True,
                )
                | _Q(
                    kind=CommissionKind.REVERSE,
                    from_state__in=CommissionState.values,
                    to_state="",
                    order_line__isnull=False,
                    refund__isnull=False,
                    withdrawal__isnull=True,
                )
                | _Q(
                    kind=CommissionKind.WITHDRAW,
                    from_state=CommissionState.SETTLED,
                    to_state="",
                    order_line__isnull=True,
                    refund__isnull=True,
                    withdrawal__isnull=False,
                )
                | _Q(
                    kind=CommissionKind.WITHDRAW_RETURN,
                    from_state="",
                    to_state=CommissionState.SETTLED,
                    order_line__isnull=True,
                    refund__isnull=True,
                    withdrawal__isnull=False,
                )
                | _Q(kind=CommissionKind.ADJUST, order_line__isnull=True, refund__isnull=True, withdrawal__isnull=True)
                & (
                    _Q(from_state="", to_state=CommissionState.SETTLED)
                    | _Q(from_state=CommissionState.SETTLED, to_state="")
                ),
                name="commission_entry_kind_moves",
                violation_error_message=_("佣金流水的类型与转出、转入不符。"),
            ),
            models.UniqueConstraint(
                fields=["withdrawal", "kind"],
                condition=_Q(kind__in=[CommissionKind.WITHDRAW, CommissionKind.WITHDRAW_RETURN]),
                name="commission_entry_once_per_withdrawal",
            ),
        ]
        indexes = [
            models.Index(fields=["affiliate", "-id"], name="commission_entry_of_affiliate"),
            models.Index(fields=["order_line", "level"], name="commission_entry_of_line"),
        ]

    def __str__(self) -> str:
        return f"{self.affiliate_id} {self.kind} {self.from_state or '∅'}→{self.to_state or '∅'} {self.amount_fen}"


class WithdrawalStatus(models.TextChoices):
    REQUESTED = "requested", _("待审核")
    APPROVED = "approved", _("待打款")
    PAID = "paid", _("已到账")
    REJECTED = "rejected", _("已驳回")
    CANCELLED = "cancelled", _("已撤销")
    FAILED = "failed", _("打款失败")


WITHDRAWAL_OPEN = [WithdrawalStatus.REQUESTED, WithdrawalStatus.APPROVED]


class CommissionWithdrawal(models.Model):
    """An affiliate's request to withdraw settled commission to their WeChat balance.

    Requesting books a WITHDRAW entry (settled →) in the same transaction, under the affiliate's row
    lock, only if the settled balance covers it; rejected, cancelled and failed requests book one
    WITHDRAW_RETURN entry (→ settled). Commerce never pays: once approved, a service in rewards/
    (which may import commerce, not the reverse) creates the rewards.Payout whose source is
    `payout_source` ("commission:<id>", unique there, so paid at most once) and reports the outcome
    back through a commerce service (paid / failed).
    """

    affiliate = models.ForeignKey(
        Affiliate, on_delete=models.PROTECT, related_name="withdrawals", verbose_name=_("分销员")
    )
    amount_fen = models.BigIntegerField(_("提现金额（分）"))
    status = models.CharField(
        _("状态"), max_length=10, choices=WithdrawalStatus.choices, default=WithdrawalStatus.REQUESTED
    )
    requested_at = models.DateTimeField(_("申请时间"), default=timezone.now)
    reviewed_at = models.DateTimeField(_("审核时间"), null=True, blank=True)
    reviewed_by = models.CharField(_("审核人"), max_length=150, blank=True)
    finished_at = models.DateTimeField(_("完成时间"), null=True, blank=True)
    payout_bill_no = models.CharField(_("转账单号"), max_length=32, blank=True)  # the Payout's out_bill_no
    note = models.CharField(_("说明"), max_length=200, blank=True)

    class Meta:
        verbose_name = _("佣金提现")
        verbose_name_plural = _("佣金提现")
        ordering = ["-id"]
        constraints = [
            models.CheckConstraint(condition=_Q(amount_fen__gt=0), name="commission_withdrawal_positive"),
            models.CheckConstraint(
                condition=_Q(status__in=WithdrawalStatus.values), name="commission_withdrawal_status_valid"
            ),
            models.UniqueConstraint(
                fields=["affiliate"],
                condition=_Q(status__in=WITHDRAWAL_OPEN),
                name="commission_withdrawal_one_open",
                violation_error_message=_("已有一笔提现在处理中。"),
            ),
            models.CheckConstraint(
                condition=_Q(status__in=WITHDRAWAL_OPEN) | _Q(finished_at__isnull=False),
                name="commission_withdrawal_finished_at",
            ),
        ]
        indexes = [
            models.Index(
                fields=["reviewed_at"], condition=_Q(status=WithdrawalStatus.APPROVED), name="commission_withdrawal_due"
            )
        ]

    def __str__(self) -> str:
        return f"{self.affiliate_id} ¥{self.amount_fen / 100:.2f} ({self.status})"

    @property
    def payout_source(self) -> str:
        """The rewards.Payout source that pays this withdrawal (unique there: paid at most once)."""
        return f"commission:{self.pk}"
