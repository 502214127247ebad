"""Orders: the cart, the order with its three independent states and stored deadlines, its lines
(price snapshots), its append-only events, shipments, and after-sales. The state machines, deadlines
and lock order are in the commerce.models docstring; the services implement exactly those."""

from __future__ import annotations

from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from commerce.models.catalog import MAX_RATE_BP
from commerce.models.channel import _REGION_CODE
from tenants.brand.models import SingletonModel

# Order numbers: 14 digits of Shanghai local time (YYYYMMDDHHMMSS) + 6 random digits, e.g.
# 20261124093015482913. Payments add "P" + 2 digits, refunds "R" + 2 digits, after-sales "A" + 2
# digits (the sequence within the order, from 01), all within WeChat Pay's limits (out_trade_no <= 32,
# out_refund_no <= 64 characters of [0-9A-Za-z_-|*]).
ORDER_NUMBER_REGEX = r"^[0-9]{20}$"
PAYMENT_NUMBER_REGEX = r"^[0-9]{20}P[0-9]{2}$"
REFUND_NUMBER_REGEX = r"^[0-9]{20}R[0-9]{2}$"
AFTER_SALE_NUMBER_REGEX = r"^[0-9]{20}A[0-9]{2}$"
PICKUP_CODE_REGEX = r"^[0-9]{12}$"
MAX_CART_QUANTITY = 999


class ShopPolicy(SingletonModel):
    """The brand's order rules (one row): how long the automatic transitions wait, shipping fees and
    the points an order earns. Deadlines are computed from these when an order enters a state and
    stored on the order, so a later change of the rules never moves a deadline already set."""

    pay_timeout_minutes = models.PositiveIntegerField(_("未付款自动取消（分钟）"), default=30)
    auto_receive_days = models.PositiveIntegerField(_("发货后自动收货（天）"), default=10)
    after_sales_days = models.PositiveIntegerField(_("收货后售后期（天）"), default=7)
    return_days = models.PositiveIntegerField(_("退货寄回期限（天）"), default=7)
    after_sale_review_hours = models.PositiveIntegerField(
        _("仅退款自动同意（小时）"), default=0, help_text=_("0 表示不自动同意，须人工审核。")
    )
    shipping_fee_fen = models.BigIntegerField(_("运费（分）"), default=0)
    free_shipping_threshold_fen = models.BigIntegerField(
        _("满额包邮（分）"), default=0, help_text=_("商品金额达到此数免运费；0 表示不设满额包邮。")
    )
    points_per_yuan = models.PositiveIntegerField(
        _("每消费 1 元获得酒币"), default=0, help_text=_("订单完成（售后期结束）后发放；0 表示不送。")
    )
    updated_at = models.DateTimeField(_("更新时间"), auto_now=True)

    class Meta:
        verbose_name = _("订单规则")
        verbose_name_plural = _("订单规则")
        constraints = [
            models.CheckConstraint(condition=models.Q(id=1), name="shop_policy_singleton"),
            models.CheckConstraint(
                condition=models.Q(pay_timeout_minutes__gte=1, pay_timeout_minutes__lte=1440)
                & models.Q(auto_receive_days__gte=1, auto_receive_days__lte=60)
                & models.Q(after_sales_days__lte=60, return_days__gte=1, return_days__lte=60)
                & models.Q(after_sale_review_hours__lte=720),
                name="shop_policy_periods",
            ),
            models.CheckConstraint(
                condition=models.Q(shipping_fee_fen__gte=0, free_shipping_threshold_fen__gte=0),
                name="shop_policy_fees_not_negative",
            ),
        ]

    def __str__(self) -> str:
        return str(_("订单规则"))


class CartItem(models.Model):
    """A SKU in a member's cart, once per SKU (adding again raises the quantity). A member has one
    cart, so the cart is the member: no cart table. Prices are never stored here: checkout reads
    them."""

    member = models.ForeignKey(
        "commerce.Member", on_delete=models.CASCADE, related_name="cart_items", verbose_name=_("会员")
    )
    sku = models.ForeignKey("commerce.Sku", on_delete=models.CASCADE, related_name="+", verbose_name=_("SKU"))
    quantity = models.PositiveIntegerField(_("数量"), default=1)
    is_selected = models.BooleanField(_("已勾选"), default=True)
    added_at = models.DateTimeField(_("加入时间"), default=timezone.now)

    class Meta:
        verbose_name = _("购物车商品")
        verbose_name_plural = _("购物车商品")
        ordering = ["-added_at", "-id"]
        constraints = [
            models.UniqueConstraint(fields=["member", "sku"], name="cart_item_once_per_sku"),
            models.CheckConstraint(
                condition=models.Q(quantity__gte=1, quantity__lte=MAX_CART_QUANTITY), name="cart_item_quantity"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.member_id} {self.sku_id}×{self.quantity}"


class OrderKind(models.TextChoices):
    NORMAL = "normal", _("普通订单")
    GROUP_BUY = "group_buy", _("拼团订单")
    BARGAIN = "bargain", _("砍价订单")
    POINTS_MALL = "points_mall", _("积分兑换")


class OrderStatus(models.TextChoices):
    """The fulfilment state: what happens to the goods."""

    PENDING_PAYMENT = "pending_payment", _("待付款")
    AWAITING_GROUP = "awaiting_group", _("待成团")
    AWAITING_SHIPMENT = "awaiting_shipment", _("待发货")
    AWAITING_PICKUP = "awaiting_pickup", _("待自提")
    SHIPPED = "shipped", _("待收货")
    RECEIVED = "received", _("已收货")
    COMPLETED = "completed", _("已完成")
    CANCELLED = "cancelled", _("已取消")


class PaymentStatus(models.TextChoices):
    """The payment state: whether the order's money came in."""

    UNPAID = "unpaid", _("未支付")
    PAID = "paid", _("已支付")
    CLOSED = "closed", _("已关闭")  # cancelled before payment: nothing will be taken


class RefundStatus(models.TextChoices):
    """The refund state: how much of the order's money (and points) has gone back (succeeded refunds)."""

    NONE = "none", _("无退款")
    PARTIAL = "partial", _("部分退款")
    FULL = "full", _("全额退款")


class Delivery(models.TextChoices):
    EXPRESS = "express", _("快递配送")
    PICKUP = "pickup", _("门店自提")


class CancelReason(models.TextChoices):
    MEMBER = "member", _("会员取消")
    TIMEOUT = "timeout", _("超时未付款")
    STAFF = "staff", _("商家取消")
    GROUP_FAILED = "group_failed", _("拼团失败")
    REFUNDED = "refunded", _("发货前全额退款")


_PAID_STATES = [
    OrderStatus.AWAITING_GROUP,
    OrderStatus.AWAITING_SHIPMENT,
    OrderStatus.AWAITING_PICKUP,
    OrderStatus.SHIPPED,
    OrderStatus.RECEIVED,
    OrderStatus.COMPLETED,
]
_Q = models.Q
_F = models.F


class Order(models.Model):
    """One order: a member buys SKUs (shop), joins a group buy, buys at a bargained price, or
    redeems points-mall goods. Three independent states (fulfilment `status`, `payment_status`,
    `refund_status`), each changed only by a conditional UPDATE in a service that appends an
    OrderEvent per changed field in the same transaction.

    Money in fen: total_fen = items_fen - discount_fen + shipping_fen is the cash to pay (0 for an
    order paid entirely in points or coupons); points_total the points (points mall). Refund
    bookkeeping: refund_booked_* is what the order's refunds (not counting surplus payments) have
    claimed so far (pending or succeeded), refunded_* what has come back; neither exceeds the total.
    """

    number = models.CharField(_("订单号"), max_length=20, unique=True)
    member = models.ForeignKey(
        "commerce.Member", on_delete=models.PROTECT, related_name="orders", verbose_name=_("会员")
    )
    kind = models.CharField(_("订单类型"), max_length=12, choices=OrderKind.choices, default=OrderKind.NORMAL)
    status = models.CharField(
        _("订单状态"), max_length=20, choices=OrderStatus.choices, default=OrderStatus.PENDING_PAYMENT
    )
    payment_status = models.CharField(
        _("支付状态"), max_length=8, choices=PaymentStatus.choices, default=PaymentStatus.UNPAID
    )
    refund_status = models.CharField(
        _("退款状态"), max_length=8, choices=RefundStatus.choices, default=RefundStatus.NONE
    )
    delivery = models.CharField(_("配送方式"), max_length=8, choices=Delivery.choices, default=Delivery.EXPRESS)
    # Idempotency of checkout: the client's key for "this submission"; a resubmission returns the order.
    client_token = models.CharField(max_length=64, blank=True)

    items_fen = models.BigIntegerField(_("商品金额（分）"), default=0)
    discount_fen = models.BigIntegerField(_("优惠券抵扣（分）"), default=0)
    shipping_fen = models.BigIntegerField(_("运费（分）"), default=0)
    total_fen = models.BigIntegerField(_("实付金额（分）"), default=0)
    points_total = models.BigIntegerField(_("支付酒币"), default=0)
    refund_booked_fen = models.BigIntegerField(_("已申请退款（分）"), default=0)
    refunded_fen = models.BigIntegerField(_("已退款（分）"), default=0)
    refund_booked_points = models.BigIntegerField(_("已申请退还酒币"), default=0)
    refunded_points = models.BigIntegerField(_("已退还酒币"), default=0)
    reward_points = models.BigIntegerField(_("奖励酒币"), default=0)  # planned at creation, credited on completion

    coupon = models.ForeignKey(
        "commerce.MemberCoupon",
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="orders",
        verbose_name=_("优惠券"),
    )
    # Distribution snapshot: who earns commission on this order (rates per line).
    affiliate_l1 = models.ForeignKey(
        "commerce.Affiliate",
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="+",
        verbose_name=_("一级分销员"),
    )
    affiliate_l2 = models.ForeignKey(
        "commerce.Affiliate",
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="+",
        verbose_name=_("二级分销员"),
    )

    # Address snapshot (express delivery).
    receiver_name = models.CharField(_("收货人"), max_length=30, blank=True)
    receiver_phone = models.CharField(_("联系电话"), max_length=20, blank=True)
    region_code = models.CharField(_("所在地区"), max_length=6, blank=True)
    address_detail = models.CharField(_("详细地址"), max_length=200, blank=True)
    # Store pickup (核销 at the store's terminal).
    pickup_store = models.ForeignKey(
        "commerce.Store",
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="pickup_orders",
        verbose_name=_("自提门店"),
    )
    pickup_code = models.CharField(_("提货码"), max_length=12, null=True, blank=True, unique=True)
    picked_up_by = models.ForeignKey(
        "commerce.ChannelStaff",
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="pickups",
        verbose_name=_("核销人"),
    )

    # Deadlines of the automatic transitions (set when the order enters the state, swept after).
    pay_by = models.DateTimeField(_("付款截止"), null=True, blank=True)
    auto_receive_at = models.DateTimeField(_("自动收货时间"), null=True, blank=True)
    after_sales_until = models.DateTimeField(_("售后截止"), null=True, blank=True)

    created_at = models.DateTimeField(_("下单时间"), default=timezone.now)
    paid_at = models.DateTimeField(_("付款时间"), null=True, blank=True)
    shipped_at = models.DateTimeField(_("发货时间"), null=True, blank=True)
    received_at = models.DateTimeField(_("收货时间"), null=True, blank=True)
    completed_at = models.DateTimeField(_("完成时间"), null=True, blank=True)
    cancelled_at = models.DateTimeField(_("取消时间"), null=True, blank=True)
    cancel_reason = models.CharField(_("取消原因"), max_length=12, choices=CancelReason.choices, blank=True)
    member_note = models.CharField(_("买家留言"), max_length=200, blank=True)
    staff_note = models.CharField(_("商家备注"), max_length=200, blank=True)

    class Meta:
        verbose_name = _("订单")
        verbose_name_plural = _("订单")
        ordering = ["-id"]
        constraints = [
            models.CheckConstraint(condition=_Q(number__regex=ORDER_NUMBER_REGEX), name="order_number_format"),
            models.UniqueConstraint(
                fields=["member", "client_token"], condition=~_Q(client_token=""), name="order_once_per_client_token"
            ),
            models.CheckConstraint(condition=_Q(kind__in=OrderKind.values), name="order_kind_valid"),
            models.CheckConstraint(condition=_Q(status__in=OrderStatus.values), name="order_status_valid"),
            models.CheckConstraint(
                condition=_Q(payment_status__in=PaymentStatus.values), name="order_payment_status_valid"
            ),
            models.CheckConstraint(
                condition=_Q(refund_status__in=RefundStatus.values), name="order_refund_status_valid"
            ),
            # Money.
            models.CheckConstraint(
                condition=_Q(
                    items_fen__gte=0,
                    discount_fen__gte=0,
                    shipping_fen__gte=0,
                    points_total__gte=0,
                    reward_points__gte=0,
                    discount_fen__lte=_F("items_fen"),
                ),
                name="order_amounts_not_negative",
                violation_error_message=_("订单金额不能为负，优惠不能超过商品金额。"),
            ),
            models.CheckConstraint(
                condition=_Q(total_fen=_F("items_fen") - _F("discount_fen") + _F("shipping_fen")),
                name="order_total_adds_up",
                violation_error_message=_("实付金额应等于商品金额减优惠加运费。"),
            ),
            models.CheckConstraint(
                condition=_Q(refunded_fen__gte=0, refunded_fen__lte=_F("refund_booked_fen"))
                & _Q(refund_booked_fen__lte=_F("total_fen"))
                & _Q(refunded_points__gte=0, refunded_points__lte=_F("refund_booked_points"))
                & _Q(refund_booked_points__lte=_F("points_total")),
                name="order_refunds_within_total",
                violation_error_message=_("退款不能超过订单实付。"),
            ),
            models.CheckConstraint(
                condition=_Q(refund_booked_fen=0, refund_booked_points=0) | _Q(payment_status=PaymentStatus.PAID),
                name="order_refunds_only_when_paid",
            ),
            models.CheckConstraint(
                condition=_Q(refund_status=RefundStatus.NONE, refunded_fen=0, refunded_points=0)
                | _Q(refund_status=RefundStatus.FULL, refunded_fen=_F("total_fen"), refunded_points=_F("points_total"))
                | (
                    _Q(refund_status=RefundStatus.PARTIAL)
                    & (_Q(refunded_fen__gt=0) | _Q(refunded_points__gt=0))
                    & (_Q(refunded_fen__lt=_F("total_fen")) | _Q(refunded_points__lt=_F("points_total")))
                ),
                name="order_refund_status_matches_amounts",
            ),
            models.CheckConstraint(
                condition=_Q(coupon__isnull=False) | _Q(discount_fen=0), name="order_discount_needs_coupon"
            ),
            models.CheckConstraint(
                condition=~_Q(kind=OrderKind.POINTS_MALL) | _Q(points_total__gt=0), name="order_mall_costs_points"
            ),
            # The three states agree with each other and with the times and deadlines.
            models.CheckConstraint(
                condition=~_Q(status=OrderStatus.PENDING_PAYMENT)
                | _Q(payment_status=PaymentStatus.UNPAID, pay_by__isnull=False),
                name="order_pending_is_unpaid_with_deadline",
            ),
            models.CheckConstraint(
                condition=~_Q(payment_status=PaymentStatus.UNPAID) | _Q(status=OrderStatus.PENDING_PAYMENT),
                name="order_unpaid_is_pending",
            ),
            models.CheckConstraint(
                condition=~_Q(status__in=_PAID_STATES) | _Q(payment_status=PaymentStatus.PAID),
                name="order_fulfilment_needs_payment",
            ),
            models.CheckConstraint(
                condition=~_Q(payment_status=PaymentStatus.CLOSED) | _Q(status=OrderStatus.CANCELLED),
                name="order_closed_is_cancelled",
            ),
            models.CheckConstraint(
                condition=~_Q(payment_status=PaymentStatus.PAID) | _Q(paid_at__isnull=False), name="order_paid_at"
            ),
            models.CheckConstraint(
                condition=~_Q(status=OrderStatus.CANCELLED) | _Q(cancelled_at__isnull=False) & ~_Q(cancel_reason=""),
                name="order_cancelled_at",
            ),
            models.CheckConstraint(
                condition=~_Q(status=OrderStatus.AWAITING_GROUP) | _Q(kind=OrderKind.GROUP_BUY),
                name="order_awaiting_group_is_group_buy",
            ),
            models.CheckConstraint(
                condition=~_Q(status__in=[OrderStatus.AWAITING_SHIPMENT, OrderStatus.SHIPPED])
                | _Q(delivery=Delivery.EXPRESS),
                name="order_shipping_is_express",
            ),
            models.CheckConstraint(
                condition=~_Q(status=OrderStatus.AWAITING_PICKUP) | _Q(delivery=Delivery.PICKUP),
                name="order_pickup_is_pickup",
            ),
            models.CheckConstraint(
                condition=~_Q(status=OrderStatus.SHIPPED) | _Q(shipped_at__isnull=False, auto_receive_at__isnull=False),
                name="order_shipped_has_deadline",
            ),
            models.CheckConstraint(
                condition=~_Q(status__in=[OrderStatus.RECEIVED, OrderStatus.COMPLETED])
                | _Q(received_at__isnull=False, after_sales_until__isnull=False),
                name="order_received_has_deadline",
            ),
            models.CheckConstraint(
                condition=~_Q(status=OrderStatus.COMPLETED) | _Q(completed_at__isnull=False), name="order_completed_at"
            ),
            # Delivery: an express order carries its address, a pickup order its store and code.
            models.CheckConstraint(
                condition=_Q(
                    delivery=Delivery.EXPRESS,
                    pickup_store__isnull=True,
                    pickup_code__isnull=True,
                    picked_up_by__isnull=True,
                )
                & ~_Q(receiver_name="")
                & ~_Q(receiver_phone="")
                & ~_Q(address_detail="")
                & _REGION_CODE
                | _Q(
                    delivery=Delivery.PICKUP,
                    pickup_store__isnull=False,
                    pickup_code__isnull=False,
                    pickup_code__regex=PICKUP_CODE_REGEX,
                ),
                name="order_delivery_details",
                violation_error_message=_("快递订单须有收货地址，自提订单须有自提门店和提货码。"),
            ),
            models.CheckConstraint(
                condition=_Q(affiliate_l2__isnull=True)
                | _Q(affiliate_l1__isnull=False) & ~_Q(affiliate_l2=_F("affiliate_l1")),
                name="order_affiliate_levels",
            ),
        ]
        indexes = [
            models.Index(fields=["member", "-created_at"], name="order_of_member"),
            models.Index(fields=["status", "-created_at"], name="order_by_status"),
            # The sweepers' due lists.
            models.Index(fields=["pay_by"], condition=_Q(status=OrderStatus.PENDING_PAYMENT), name="order_pay_due"),
            models.Index(
                fields=["auto_receive_at"], condition=_Q(status=OrderStatus.SHIPPED), name="order_receive_due"
            ),
            models.Index(
                fields=["after_sales_until"], condition=_Q(status=OrderStatus.RECEIVED), name="order_after_sales_due"
            ),
        ]

    def __str__(self) -> str:
        return self.number

    @property
    def cash_refundable_fen(self) -> int:
        return self.total_fen - self.refund_booked_fen

    @property
    def points_refundable(self) -> int:
        return self.points_total - self.refund_booked_points


class PriceSource(models.TextChoices):
    """Which price rule gave a line its unit price (snapshot)."""

    LIST = "list", _("售价")
    MEMBER = "member", _("会员价")
    GROUP_BUY = "group_buy", _("拼团价")
    BARGAIN = "bargain", _("砍价")
    POINTS_MALL = "points_mall", _("积分兑换价")


class OrderLine(models.Model):
    """One SKU of an order, once per SKU, with everything that priced it copied at creation.

    subtotal_fen = unit_price_fen × quantity; discount_fen is this line's share of the order's coupon
    discount (the shares add up to the order's, the remainder going to the last line); paid_fen =
    subtotal_fen - discount_fen is the base of its refunds and commission. refund_* is what refunds
    have claimed on this line (pending or succeeded). rate_l1_bp / rate_l2_bp are the commission
    rates in force at creation (0 when the order has no such affiliate or the goods pay none).
    """

    order = models.ForeignKey(Order, on_delete=models.PROTECT, related_name="lines", verbose_name=_("订单"))
    sku = models.ForeignKey("commerce.Sku", on_delete=models.PROTECT, related_name="+", verbose_name=_("SKU"))
    mall_item = models.ForeignKey(
        "commerce.MallItem",
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="+",
        verbose_name=_("兑换商品"),
    )
    sku_name = models.CharField(_("商品名称"), max_length=200)
    sku_code = models.CharField(_("SKU 编码"), max_length=40)
    image_url = models.CharField(_("图片"), max_length=300, blank=True)
    price_source = models.CharField(_("计价方式"), max_length=12, choices=PriceSource.choices, default=PriceSource.LIST)
    list_price_fen = models.BigIntegerField(_("售价（分）"))
    unit_price_fen = models.BigIntegerField(_("成交单价（分）"))
    unit_points = models.BigIntegerField(_("单件酒币"), default=0)
    quantity = models.PositiveIntegerField(_("数量"))
    subtotal_fen = models.BigIntegerField(_("小计（分）"))
    discount_fen = models.BigIntegerField(_("分摊优惠（分）"), default=0)
    paid_fen = models.BigIntegerField(_("实付（分）"))
    points_subtotal = models.BigIntegerField(_("酒币小计"), default=0)
    refund_quantity = models.PositiveIntegerField(_("已申请退货数量"), default=0)
    refund_fen = models.BigIntegerField(_("已申请退款（分）"), default=0)
    refund_points = models.BigIntegerField(_("已申请退还酒币"), default=0)
    rate_l1_bp = models.PositiveIntegerField(_("一级佣金比例（万分之）"), default=0)
    rate_l2_bp = models.PositiveIntegerField(_("二级佣金比例（万分之）"), default=0)

    class Meta:
        verbose_name = _("订单商品")
        verbose_name_plural = _("订单商品")
        ordering = ["order", "id"]
        constraints = [
            models.UniqueConstraint(fields=["order", "sku"], name="order_line_once_per_sku"),
            models.CheckConstraint(
                condition=_Q(quantity__gte=1, list_price_fen__gte=0, unit_price_fen__gte=0, unit_points__gte=0),
                name="order_line_prices_not_negative",
            ),
            models.CheckConstraint(
                condition=_Q(subtotal_fen=_F("unit_price_fen") * _F("quantity"))
                & _Q(points_subtotal=_F("unit_points") * _F("quantity")),
                name="order_line_subtotal_adds_up",
            ),
            models.CheckConstraint(
                condition=_Q(discount_fen__gte=0, discount_fen__lte=_F("subtotal_fen"))
                & _Q(paid_fen=_F("subtotal_fen") - _F("discount_fen")),
                name="order_line_paid_adds_up",
            ),
            models.CheckConstraint(
                condition=_Q(refund_quantity__lte=_F("quantity"))
                & _Q(refund_fen__gte=0, refund_fen__lte=_F("paid_fen"))
                & _Q(refund_points__gte=0, refund_points__lte=_F("points_subtotal")),
                name="order_line_refunds_within_line",
            ),
            models.CheckConstraint(
                condition=_Q(rate_l1_bp__lte=MAX_RATE_BP, rate_l2_bp__lte=MAX_RATE_BP)
                & _Q(rate_l1_bp__gte=0, rate_l2_bp__gte=0)
                & _Q(rate_l1_bp__lte=MAX_RATE_BP - _F("rate_l2_bp")),
                name="order_line_commission_rates",
            ),
            models.CheckConstraint(
                condition=_Q(price_source=PriceSource.POINTS_MALL, mall_item__isnull=False)
                | ~_Q(price_source=PriceSource.POINTS_MALL) & _Q(mall_item__isnull=True),
                name="order_line_mall_item_matches_price",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.order_id} {self.sku_name}×{self.quantity}"

    @property
    def stock_source(self) -> str:
        """The StockMovement source of this line's reserve, release on cancel, and ship."""
        return f"line:{self.pk}"


class OrderEventKind(models.TextChoices):
    CREATED = "created", _("下单")
    PAID = "paid", _("付款")
    PAYMENT_SURPLUS = "payment_surplus", _("重复付款（待退回）")
    CANCELLED = "cancelled", _("取消")
    GROUP_SUCCEEDED = "group_succeeded", _("拼团成功")
    GROUP_FAILED = "group_failed", _("拼团失败")
    SHIPPED = "shipped", _("发货")
    PICKED_UP = "picked_up", _("门店核销")
    RECEIVED = "received", _("确认收货")
    COMPLETED = "completed", _("完成")
    AFTER_SALE_REQUESTED = "after_sale_requested", _("申请售后")
    AFTER_SALE_APPROVED = "after_sale_approved", _("同意售后")
    AFTER_SALE_REJECTED = "after_sale_rejected", _("拒绝售后")
    AFTER_SALE_CANCELLED = "after_sale_cancelled", _("撤销售后")
    AFTER_SALE_CLOSED = "after_sale_closed", _("售后关闭")
    RETURN_SHIPPED = "return_shipped", _("买家退货")
    RETURN_RECEIVED = "return_received", _("商家收到退货")
    REFUND_REQUESTED = "refund_requested", _("发起退款")
    REFUND_SUCCEEDED = "refund_succeeded", _("退款成功")
    REFUND_FAILED = "refund_failed", _("退款失败")
    ADDRESS_CHANGED = "address_changed", _("修改地址")
    NOTE = "note", _("备注")


class OrderEventField(models.TextChoices):
    NONE = "", _("无")
    STATUS = "status", _("订单状态")
    PAYMENT_STATUS = "payment_status", _("支付状态")
    REFUND_STATUS = "refund_status", _("退款状态")


class OrderEvent(models.Model):
    """One thing that happened to an order: append-only, never updated or deleted. Every change of one
    of the three state fields writes one row naming the field and its old and new value (a change of
    two fields at once writes two rows of the same kind); other events (notes, after-sales steps,
    refund requests) name no field. `actor`: "member:<id>", "staff:<username>", "clerk:<id>",
    "system:<task>" or "wechat"."""

    order = models.ForeignKey(Order, on_delete=models.PROTECT, related_name="events", verbose_name=_("订单"))
    kind = models.CharField(_("事件"), max_length=24, choices=OrderEventKind.choices)
    field = models.CharField(_("状态字段"), max_length=16, choices=OrderEventField.choices, blank=True)
    from_state = models.CharField(_("原状态"), max_length=20, blank=True)
    to_state = models.CharField(_("新状态"), max_length=20, blank=True)
    actor = models.CharField(_("操作方"), max_length=160)
    at = models.DateTimeField(_("时间"), default=timezone.now)
    data = models.JSONField(_("详情"), default=dict, blank=True)

    class Meta:
        verbose_name = _("订单事件")
        verbose_name_plural = _("订单事件")
        ordering = ["order", "id"]
        constraints = [
            models.CheckConstraint(condition=_Q(kind__in=OrderEventKind.values), name="order_event_kind_valid"),
            models.CheckConstraint(
                condition=_Q(field="", from_state="", to_state="")
                | _Q(field__in=[f for f in OrderEventField.values if f])
                & ~_Q(from_state="")
                & ~_Q(to_state="")
                & ~_Q(from_state=_F("to_state")),
                name="order_event_transition",
                violation_error_message=_("状态变化须写明字段、原状态和新状态。"),
            ),
            models.CheckConstraint(condition=~_Q(actor=""), name="order_event_actor"),
        ]
        indexes = [models.Index(fields=["order", "id"], name="order_event_of_order")]

    def __str__(self) -> str:
        if self.field:
            return f"{self.order_id} {self.kind} {self.field}: {self.from_state} → {self.to_state}"
        return f"{self.order_id} {self.kind}"


class Shipment(models.Model):
    """A parcel of an order (an order ships in one go, in one or more parcels)."""

    order = models.ForeignKey(Order, on_delete=models.PROTECT, related_name="shipments", verbose_name=_("订单"))
    carrier_code = models.CharField(_("快递公司编码"), max_length=20, help_text=_("如 SF、ZTO、YTO、JD。"))
    carrier_name = models.CharField(_("快递公司"), max_length=40)
    tracking_no = models.CharField(_("快递单号"), max_length=40)
    shipped_at = models.DateTimeField(_("发货时间"), default=timezone.now)
    shipped_by = models.CharField(_("操作人"), max_length=150, blank=True)

    class Meta:
        verbose_name = _("发货包裹")
        verbose_name_plural = _("发货包裹")
        ordering = ["order", "id"]
        constraints = [
            models.UniqueConstraint(fields=["order", "carrier_code", "tracking_no"], name="shipment_once_per_order"),
            models.CheckConstraint(
                condition=_Q(tracking_no__regex=r"^[A-Za-z0-9-]{4,40}$")
                & _Q(carrier_code__regex=r"^[A-Za-z0-9_]{1,20}$"),
                name="shipment_tracking_format",
                violation_error_message=_("快递单号格式不正确。"),
            ),
        ]
        indexes = [models.Index(fields=["tracking_no"], name="shipment_by_tracking")]

    def __str__(self) -> str:
        return f"{self.carrier_name} {self.tracking_no}"


class AfterSaleKind(models.TextChoices):
    REFUND_ONLY = "refund_only", _("仅退款")
    RETURN_REFUND = "return_refund", _("退货退款")


class AfterSaleStatus(models.TextChoices):
    REQUESTED = "requested", _("待审核")
    AWAITING_RETURN = "awaiting_return", _("待买家退货")
    RETURNED = "returned", _("待商家收货")
    REFUNDING = "refunding", _("退款中")
    REFUNDED = "refunded", _("已退款")
    REJECTED = "rejected", _("已拒绝")
    CANCELLED = "cancelled", _("已撤销")
    CLOSED = "closed", _("已关闭")  # the member did not send the goods back in time


AFTER_SALE_OPEN = [
    AfterSaleStatus.REQUESTED,
    AfterSaleStatus.AWAITING_RETURN,
    AfterSaleStatus.RETURNED,
    AfterSaleStatus.REFUNDING,
]


class AfterSaleReason(models.TextChoices):
    NOT_RECEIVED = "not_received", _("未收到货")
    DAMAGED = "damaged", _("商品破损")
    WRONG_ITEM = "wrong_item", _("发错货")
    QUALITY = "quality", _("质量问题")
    NOT_WANTED = "not_wanted", _("不想要了")
    OTHER = "other", _("其他")


class AfterSale(models.Model):
    """An after-sales request (售后): refund only, or return and refund, of some lines of an order.
    At most one open request per order. `due_at` is the deadline of the current step's automatic
    transition (see commerce.models); None when the step waits for a person."""

    number = models.CharField(_("售后单号"), max_length=23, unique=True)
    order = models.ForeignKey(Order, on_delete=models.PROTECT, related_name="after_sales", verbose_name=_("订单"))
    kind = models.CharField(_("售后类型"), max_length=16, choices=AfterSaleKind.choices)
    status = models.CharField(
        _("状态"), max_length=16, choices=AfterSaleStatus.choices, default=AfterSaleStatus.REQUESTED
    )
    reason = models.CharField(_("原因"), max_length=16, choices=AfterSaleReason.choices)
    description = models.CharField(_("问题描述"), max_length=500, blank=True)
    images = models.JSONField(_("凭证图片"), default=list, blank=True)
    amount_fen = models.BigIntegerField(_("退款金额（分）"))
    points = models.BigIntegerField(_("退还酒币"), default=0)
    include_shipping = models.BooleanField(_("退运费"), default=False)
    return_carrier_code = models.CharField(_("退货快递公司"), max_length=20, blank=True)
    return_tracking_no = models.CharField(_("退货快递单号"), max_length=40, blank=True)
    restock = models.BooleanField(_("退货入库"), default=True)
    due_at = models.DateTimeField(_("自动处理时间"), null=True, blank=True)
    requested_at = models.DateTimeField(_("申请时间"), default=timezone.now)
    reviewed_at = models.DateTimeField(_("审核时间"), null=True, blank=True)
    reviewed_by = models.CharField(_("审核人"), max_length=150, blank=True)
    review_note = models.CharField(_("审核说明"), max_length=200, blank=True)
    returned_at = models.DateTimeField(_("买家寄回时间"), null=True, blank=True)
    return_received_at = models.DateTimeField(_("商家收货时间"), null=True, blank=True)
    finished_at = models.DateTimeField(_("结束时间"), null=True, blank=True)

    class Meta:
        verbose_name = _("售后单")
        verbose_name_plural = _("售后单")
        ordering = ["-id"]
        constraints = [
            models.CheckConstraint(
                condition=_Q(number__regex=AFTER_SALE_NUMBER_REGEX), name="after_sale_number_format"
            ),
            models.CheckConstraint(condition=_Q(kind__in=AfterSaleKind.values), name="after_sale_kind_valid"),
            models.CheckConstraint(condition=_Q(status__in=AfterSaleStatus.values), name="after_sale_status_valid"),
            models.UniqueConstraint(
                fields=["order"],
                condition=_Q(status__in=AFTER_SALE_OPEN),
                name="after_sale_one_open_per_order",
                violation_error_message=_("该订单已有处理中的售后申请。"),
            ),
            models.CheckConstraint(
                condition=_Q(amount_fen__gte=0, points__gte=0) & (_Q(amount_fen__gt=0) | _Q(points__gt=0)),
                name="after_sale_amount",
            ),
            models.CheckConstraint(
                condition=~_Q(status__in=[AfterSaleStatus.AWAITING_RETURN, AfterSaleStatus.RETURNED])
                | _Q(kind=AfterSaleKind.RETURN_REFUND),
                name="after_sale_return_steps_need_return",
            ),
            models.CheckConstraint(
                condition=~_Q(status=AfterSaleStatus.RETURNED)
                | ~_Q(return_tracking_no="") & _Q(returned_at__isnull=False),
                name="after_sale_returned_has_tracking",
            ),
            models.CheckConstraint(
                condition=_Q(status__in=AFTER_SALE_OPEN) | _Q(finished_at__isnull=False), name="after_sale_finished_at"
            ),
        ]
        indexes = [
            models.Index(
                fields=["due_at"],
                condition=_Q(
                    status__in=[AfterSaleStatus.REQUESTED, AfterSaleStatus.AWAITING_RETURN, AfterSaleStatus.RETURNED],
                    due_at__isnull=False,
                ),
                name="after_sale_due",
            ),
            models.Index(fields=["status", "-requested_at"], name="after_sale_by_status"),
        ]

    def __str__(self) -> str:
        return self.number


class AfterSaleLine(models.Model):
    """A line of an order in an after-sales request: how many units and how much of it."""

    after_sale = models.ForeignKey(AfterSale, on_delete=models.CASCADE, related_name="lines", verbose_name=_("售后单"))
    order_line = models.ForeignKey(
        OrderLine, on_delete=models.PROTECT, related_name="after_sale_lines", verbose_name=_("订单商品")
    )
    quantity = models.PositiveIntegerField(_("数量"))
    amount_fen = models.BigIntegerField(_("退款金额（分）"))
    points = models.BigIntegerField(_("退还酒币"), default=0)

    class Meta:
        verbose_name = _("售后商品")
        verbose_name_plural = _("售后商品")
        constraints = [
            models.UniqueConstraint(fields=["after_sale", "order_line"], name="after_sale_line_once"),
            models.CheckConstraint(
                condition=_Q(quantity__gte=1, amount_fen__gte=0, points__gte=0), name="after_sale_line_amounts"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.after_sale_id} {self.order_line_id}×{self.quantity}"
