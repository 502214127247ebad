"""WeChat Pay: the brand's account and merchant configuration, the inbox of notifications, and the
payments and refunds of orders."""

from __future__ import annotations

from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from commerce.models.orders import PAYMENT_NUMBER_REGEX, REFUND_NUMBER_REGEX
from tenants.brand.models import SingletonModel


class WeChatConfig(SingletonModel):
    """The brand's WeChat official account (consumer identity) and WeChat Pay merchant (payments,
    red packets), one row. Secrets are stored wrapped by the platform master key ring, bound to the
    brand and the field (commerce.wechat.config); only public values are in clear."""

    appid = models.CharField(_("公众号 AppID"), max_length=32, blank=True)
    secret_key_id = models.CharField(max_length=64, blank=True)
    secret_wrapped = models.BinaryField(null=True, blank=True)
    oauth_scope = models.CharField(
        _("网页授权方式"),
        max_length=16,
        choices=[("snsapi_base", _("静默授权（仅 OpenID）")), ("snsapi_userinfo", _("用户授权（昵称头像）"))],
        default="snsapi_base",
    )
    mchid = models.CharField(_("商户号"), max_length=32, blank=True)
    merchant_serial_no = models.CharField(_("商户证书序列号"), max_length=64, blank=True)
    private_key_id = models.CharField(max_length=64, blank=True)
    private_key_wrapped = models.BinaryField(null=True, blank=True)
    apiv3_key_id = models.CharField(max_length=64, blank=True)
    apiv3_key_wrapped = models.BinaryField(null=True, blank=True)
    platform_public_key_id = models.CharField(_("微信支付公钥 ID"), max_length=64, blank=True)
    platform_public_key = models.TextField(_("微信支付公钥"), blank=True)
    transfer_scene_id = models.CharField(_("转账场景 ID"), max_length=16, default="1000", blank=True)
    updated_at = models.DateTimeField(_("更新时间"), auto_now=True)

    class Meta:
        verbose_name = _("微信配置")
        verbose_name_plural = _("微信配置")
        constraints = [models.CheckConstraint(condition=models.Q(id=1), name="wechat_config_singleton")]

    def __str__(self) -> str:
        return self.appid or str(_("微信配置"))


class PayNotification(models.Model):
    """The inbox of WeChat Pay notifications: each event id once, whatever WeChat resends. Stored after
    the signature check and decryption, applied by the owner of the bill it names (payouts in
    rewards/, orders in commerce/), marked processed when applied.

    Orders use it as it is: TRANSACTION.SUCCESS names a Payment by `out_trade_no`, REFUND.* a Refund
    by `out_refund_no`; applying checks the amount against the stored row and changes the row by a
    conditional UPDATE, so a notification, its resends and the active query converge on one result."""

    event_id = models.CharField(max_length=64, unique=True)
    event_type = models.CharField(max_length=64)
    resource = models.JSONField()
    received_at = models.DateTimeField(default=timezone.now)
    processed_at = models.DateTimeField(null=True, blank=True)
    result = models.CharField(max_length=200, blank=True)

    class Meta:
        verbose_name = _("支付通知")
        verbose_name_plural = _("支付通知")
        ordering = ["-id"]

    def __str__(self) -> str:
        return f"{self.event_type} {self.event_id}"


class PaymentMethod(models.TextChoices):
    WECHAT_JSAPI = "wechat_jsapi", _("微信支付（JSAPI）")


class PaymentRecordStatus(models.TextChoices):
    PENDING = "pending", _("待支付")
    PAID = "paid", _("已支付")  # the payment that paid its order (at most one per order)
    SURPLUS = "surplus", _("多余支付")  # paid, but the order was already paid or cancelled: refunded in full
    CLOSED = "closed", _("已关闭")  # closed at WeChat, or expired unpaid


class Payment(models.Model):
    """One attempt to collect an order's cash through WeChat Pay: its merchant order number
    (out_trade_no = order number + "P" + 2-digit attempt) is stored before the first call to WeChat
    and reused for every retry and query of that attempt. A new attempt (new number) is only made
    when the previous one is closed."""

    out_trade_no = models.CharField(_("商户订单号"), max_length=23, unique=True)
    order = models.ForeignKey(
        "commerce.Order", on_delete=models.PROTECT, related_name="payments", verbose_name=_("订单")
    )
    method = models.CharField(
        _("支付方式"), max_length=16, choices=PaymentMethod.choices, default=PaymentMethod.WECHAT_JSAPI
    )
    amount_fen = models.BigIntegerField(_("金额（分）"))
    status = models.CharField(
        _("状态"), max_length=8, choices=PaymentRecordStatus.choices, default=PaymentRecordStatus.PENDING
    )
    payer_openid = models.CharField(max_length=64)
    prepay_id = models.CharField(max_length=64, blank=True)
    prepay_at = models.DateTimeField(null=True, blank=True)  # WeChat keeps a prepay id for 2 hours
    transaction_id = models.CharField(_("微信支付单号"), max_length=32, blank=True)
    created_at = models.DateTimeField(_("创建时间"), default=timezone.now)
    paid_at = models.DateTimeField(_("支付时间"), null=True, blank=True)
    closed_at = models.DateTimeField(_("关闭时间"), null=True, blank=True)

    class Meta:
        verbose_name = _("支付记录")
        verbose_name_plural = _("支付记录")
        ordering = ["-id"]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(out_trade_no__regex=PAYMENT_NUMBER_REGEX), name="payment_number_format"
            ),
            models.CheckConstraint(condition=models.Q(amount_fen__gt=0), name="payment_amount_positive"),
            models.CheckConstraint(
                condition=models.Q(status__in=PaymentRecordStatus.values), name="payment_status_valid"
            ),
            models.UniqueConstraint(
                fields=["order"],
                condition=models.Q(status=PaymentRecordStatus.PAID),
                name="payment_one_paid_per_order",
                violation_error_message=_("订单已有一笔成功支付。"),
            ),
            models.UniqueConstraint(
                fields=["transaction_id"], condition=~models.Q(transaction_id=""), name="payment_transaction_unique"
            ),
            models.CheckConstraint(
                condition=~models.Q(status__in=[PaymentRecordStatus.PAID, PaymentRecordStatus.SURPLUS])
                | ~models.Q(transaction_id="") & models.Q(paid_at__isnull=False),
                name="payment_paid_has_transaction",
            ),
            models.CheckConstraint(
                condition=~models.Q(status=PaymentRecordStatus.CLOSED) | models.Q(closed_at__isnull=False),
                name="payment_closed_at",
            ),
        ]
        indexes = [
            models.Index(
                fields=["created_at"], condition=models.Q(status=PaymentRecordStatus.PENDING), name="payment_pending"
            )
        ]

    def __str__(self) -> str:
        return f"{self.out_trade_no} ¥{self.amount_fen / 100:.2f}"


class RefundReason(models.TextChoices):
    AFTER_SALE = "after_sale", _("售后退款")
    GROUP_FAILED = "group_failed", _("拼团失败")
    CANCELLED = "cancelled", _("商家取消已付款订单")
    SURPLUS_PAYMENT = "surplus_payment", _("重复支付退回")
    MANUAL = "manual", _("人工退款")


class RefundRecordStatus(models.TextChoices):
    PENDING = "pending", _("待提交")
    PROCESSING = "processing", _("退款中")
    SUCCEEDED = "succeeded", _("已退款")
    FAILED = "failed", _("退款失败")  # WeChat CLOSED / ABNORMAL, or refused: staff handle it


class Refund(models.Model):
    """Money (and points) going back for an order: the outbox a worker submits to WeChat Pay.

    `refund_no` (= order number + "R" + 2-digit sequence within the order, taken under the order's
    row lock) is stored in the transaction that books the refund, before any call to WeChat, and is
    the out_refund_no of every submission and query of it: WeChat refunds it at most once. A refund
    of points only (amount_fen 0) names no payment and succeeds at once.
    """

    refund_no = models.CharField(_("退款单号"), max_length=23, unique=True)
    order = models.ForeignKey(
        "commerce.Order", on_delete=models.PROTECT, related_name="refunds", verbose_name=_("订单")
    )
    payment = models.ForeignKey(
        Payment, null=True, blank=True, on_delete=models.PROTECT, related_name="refunds", verbose_name=_("原支付")
    )
    after_sale = models.OneToOneField(
        "commerce.AfterSale",
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="refund",
        verbose_name=_("售后单"),
    )
    reason = models.CharField(_("退款原因"), max_length=16, choices=RefundReason.choices)
    note = models.CharField(_("说明"), max_length=200, blank=True)
    amount_fen = models.BigIntegerField(_("退款金额（分）"), default=0)
    points = models.BigIntegerField(_("退还酒币"), default=0)
    status = models.CharField(
        _("状态"), max_length=12, choices=RefundRecordStatus.choices, default=RefundRecordStatus.PENDING
    )
    provider_refund_id = models.CharField(_("微信退款单号"), max_length=64, blank=True)
    attempts = models.PositiveIntegerField(_("尝试次数"), default=0)
    next_attempt_at = models.DateTimeField(_("下次尝试"), default=timezone.now)
    last_error = models.CharField(_("最近错误"), max_length=300, blank=True)
    created_at = models.DateTimeField(_("创建时间"), default=timezone.now)
    created_by = models.CharField(_("发起方"), max_length=160)
    submitted_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(_("完成时间"), null=True, blank=True)

    class Meta:
        verbose_name = _("退款")
        verbose_name_plural = _("退款")
        ordering = ["-id"]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(refund_no__regex=REFUND_NUMBER_REGEX), name="refund_number_format"
            ),
            models.CheckConstraint(condition=models.Q(reason__in=RefundReason.values), name="refund_reason_valid"),
            models.CheckConstraint(
                condition=models.Q(status__in=RefundRecordStatus.values), name="refund_status_valid"
            ),
            models.CheckConstraint(
                condition=models.Q(amount_fen__gte=0, points__gte=0)
                & (models.Q(amount_fen__gt=0) | models.Q(points__gt=0)),
                name="refund_amount",
                violation_error_message=_("退款金额和退还酒币不能都为零。"),
            ),
            models.CheckConstraint(
                condition=models.Q(amount_fen__gt=0, payment__isnull=False)
                | models.Q(amount_fen=0, payment__isnull=True),
                name="refund_cash_names_payment",
            ),
            models.CheckConstraint(
                condition=models.Q(reason=RefundReason.AFTER_SALE, after_sale__isnull=False)
                | ~models.Q(reason=RefundReason.AFTER_SALE) & models.Q(after_sale__isnull=True),
                name="refund_after_sale_matches_reason",
            ),
            models.CheckConstraint(
                condition=~models.Q(reason=RefundReason.SURPLUS_PAYMENT) | models.Q(points=0, payment__isnull=False),
                name="refund_surplus_is_cash",
            ),
            models.CheckConstraint(
                condition=models.Q(status__in=[RefundRecordStatus.PENDING, RefundRecordStatus.PROCESSING])
                | models.Q(finished_at__isnull=False),
                name="refund_finished_at",
            ),
            # Exactly once: one group-failure refund per order, one surplus refund per payment.
            models.UniqueConstraint(
                fields=["order"],
                condition=models.Q(reason=RefundReason.GROUP_FAILED),
                name="refund_group_failed_once",
            ),
            models.UniqueConstraint(
                fields=["payment"],
                condition=models.Q(reason=RefundReason.SURPLUS_PAYMENT),
                name="refund_surplus_once",
            ),
            models.UniqueConstraint(
                fields=["provider_refund_id"],
                condition=~models.Q(provider_refund_id=""),
                name="refund_provider_id_unique",
            ),
        ]
        indexes = [
            models.Index(
                fields=["next_attempt_at"],
                condition=models.Q(status__in=[RefundRecordStatus.PENDING, RefundRecordStatus.PROCESSING]),
                name="refund_due",
            ),
            models.Index(fields=["order", "id"], name="refund_of_order"),
        ]

    def __str__(self) -> str:
        return f"{self.refund_no} ¥{self.amount_fen / 100:.2f}"
