"""Coupons: templates (which carry their own issuance rules: quantity, claim window, per-member
limit) and the coupons members hold, reserved by an order, used when it is paid, released when it is
cancelled or fully refunded."""

from __future__ import annotations

import secrets

from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

_Q = models.Q
_F = models.F

COUPON_CODE_ALPHABET = "23456789ABCDEFGHJKLMNPQRSTUVWXYZ"  # no 0/O, 1/I
COUPON_CODE_REGEX = r"^[2-9A-HJ-NP-Z]{16}$"


def new_coupon_code() -> str:
    """16 characters of a 32-letter alphabet: 80 random bits."""
    return "".join(secrets.choice(COUPON_CODE_ALPHABET) for _ in range(16))


class CouponKind(models.TextChoices):
    AMOUNT_OFF = "amount_off", _("满减券")  # amount_off_fen off when items reach threshold_fen
    PERCENT_OFF = "percent_off", _("折扣券")  # percent_off % off, at most max_discount_fen (0: no cap)


class CouponValidity(models.TextChoices):
    FIXED = "fixed", _("固定日期")  # valid_from .. valid_until
    RELATIVE = "relative", _("领取后若干天")  # issued_at .. issued_at + valid_days


class CouponScope(models.TextChoices):
    ALL = "all", _("全部商品")
    PRODUCTS = "products", _("指定商品")
    CATEGORIES = "categories", _("指定分类")


class CouponTemplateStatus(models.TextChoices):
    DRAFT = "draft", _("草稿")
    ACTIVE = "active", _("发放中")
    STOPPED = "stopped", _("已停发")  # no more issuance; coupons already held stay valid


class CouponTemplate(models.Model):
    """What a coupon is worth and how it is handed out. `issued` counts the coupons made from it,
    raised by a guarded UPDATE (issued + 1 <= total_quantity) in the transaction that creates the
    member's coupon, so a template never issues more than its quantity."""

    name = models.CharField(_("券名称"), max_length=50)
    description = models.CharField(_("使用说明"), max_length=300, blank=True)
    kind = models.CharField(_("类型"), max_length=12, choices=CouponKind.choices)
    amount_off_fen = models.BigIntegerField(_("减免金额（分）"), default=0)
    percent_off = models.PositiveSmallIntegerField(_("折扣（减免 %）"), default=0, help_text=_("20 即八折。"))
    max_discount_fen = models.BigIntegerField(_("最多减免（分）"), default=0, help_text=_("0 表示不封顶。"))
    threshold_fen = models.BigIntegerField(
        _("使用门槛（分）"), default=0, help_text=_("适用商品金额达到此数可用；0 为无门槛。")
    )
    scope = models.CharField(_("适用范围"), max_length=12, choices=CouponScope.choices, default=CouponScope.ALL)
    products = models.ManyToManyField("commerce.Product", blank=True, related_name="+", verbose_name=_("适用商品"))
    categories = models.ManyToManyField("commerce.Category", blank=True, related_name="+", verbose_name=_("适用分类"))
    validity = models.CharField(_("有效期类型"), max_length=10, choices=CouponValidity.choices)
    valid_from = models.DateTimeField(_("生效时间"), null=True, blank=True)
    valid_until = models.DateTimeField(_("失效时间"), null=True, blank=True)
    valid_days = models.PositiveIntegerField(_("领取后有效天数"), null=True, blank=True)
    is_claimable = models.BooleanField(_("会员可领取"), default=True, help_text=_("否则只能由商家发放。"))
    claim_starts_at = models.DateTimeField(_("领取开始"), null=True, blank=True)
    claim_ends_at = models.DateTimeField(_("领取结束"), null=True, blank=True)
    total_quantity = models.PositiveIntegerField(_("发行总量"), null=True, blank=True, help_text=_("留空表示不限。"))
    issued = models.PositiveIntegerField(_("已发放"), default=0)
    per_member_limit = models.PositiveIntegerField(_("每人限领"), default=1)
    status = models.CharField(
        _("状态"), max_length=8, choices=CouponTemplateStatus.choices, default=CouponTemplateStatus.DRAFT
    )
    created_at = models.DateTimeField(_("创建时间"), default=timezone.now)
    created_by = models.CharField(_("创建人"), max_length=150, blank=True)

    class Meta:
        verbose_name = _("优惠券")
        verbose_name_plural = _("优惠券")
        ordering = ["-id"]
        constraints = [
            models.CheckConstraint(condition=_Q(kind__in=CouponKind.values), name="coupon_template_kind_valid"),
            models.CheckConstraint(
                condition=_Q(kind=CouponKind.AMOUNT_OFF, amount_off_fen__gt=0, percent_off=0, max_discount_fen=0)
                | _Q(
                    kind=CouponKind.PERCENT_OFF,
                    amount_off_fen=0,
                    percent_off__gte=1,
                    percent_off__lte=99,
                    max_discount_fen__gte=0,
                ),
                name="coupon_template_value",
                violation_error_message=_("满减券须填减免金额，折扣券须填 1–99 的减免比例。"),
            ),
            models.CheckConstraint(condition=_Q(threshold_fen__gte=0), name="coupon_template_threshold"),
            models.CheckConstraint(
                condition=_Q(
                    validity=CouponValidity.FIXED,
                    valid_from__isnull=False,
                    valid_until__isnull=False,
                    valid_until__gt=_F("valid_from"),
                    valid_days__isnull=True,
                )
                | _Q(
                    validity=CouponValidity.RELATIVE,
                    valid_from__isnull=True,
                    valid_until__isnull=True,
                    valid_days__isnull=False,
                    valid_days__gte=1,
                    valid_days__lte=3650,
                ),
                name="coupon_template_validity",
                violation_error_message=_("请设置有效期：固定日期须有起止时间，相对有效期须有天数。"),
            ),
            models.CheckConstraint(
                condition=_Q(claim_starts_at__isnull=True)
                | _Q(claim_ends_at__isnull=True)
                | _Q(claim_ends_at__gt=_F("claim_starts_at")),
                name="coupon_template_claim_window",
            ),
            models.CheckConstraint(
                condition=_Q(total_quantity__isnull=True) | _Q(issued__lte=_F("total_quantity")),
                name="coupon_template_within_quantity",
                violation_error_message=_("优惠券已发完。"),
            ),
            models.CheckConstraint(condition=_Q(per_member_limit__gte=1), name="coupon_template_member_limit"),
            models.CheckConstraint(condition=_Q(status__in=CouponTemplateStatus.values), name="coupon_template_status"),
        ]

    def __str__(self) -> str:
        return self.name


class CouponStatus(models.TextChoices):
    AVAILABLE = "available", _("可使用")
    RESERVED = "reserved", _("下单占用")
    USED = "used", _("已使用")
    EXPIRED = "expired", _("已过期")
    REVOKED = "revoked", _("已作废")


class MemberCoupon(models.Model):
    """A coupon a member holds. `seq` is its number among the member's coupons of the template
    (1, 2, ...): issuing takes count + 1, so two concurrent issues race on the unique
    (template, member, seq) and the per-member limit (seq <= per_member_limit) holds without a lock.
    `source` makes an issuance by another feature idempotent ("claim:<id>", "issue:<ref>"), blank for a
    member's own claim. `order` is the order holding (reserved) or having used it."""

    template = models.ForeignKey(
        CouponTemplate, on_delete=models.PROTECT, related_name="coupons", verbose_name=_("优惠券")
    )
    member = models.ForeignKey(
        "commerce.Member", on_delete=models.PROTECT, related_name="coupons", verbose_name=_("会员")
    )
    code = models.CharField(_("券码"), max_length=16, unique=True, default=new_coupon_code)
    seq = models.PositiveIntegerField(_("第几张"))
    source = models.CharField(_("来源"), max_length=80, blank=True)
    status = models.CharField(_("状态"), max_length=10, choices=CouponStatus.choices, default=CouponStatus.AVAILABLE)
    valid_from = models.DateTimeField(_("生效时间"))
    valid_until = models.DateTimeField(_("失效时间"))
    order = models.ForeignKey(
        "commerce.Order",
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="+",
        verbose_name=_("占用/使用订单"),
    )
    issued_at = models.DateTimeField(_("领取时间"), default=timezone.now)
    reserved_at = models.DateTimeField(null=True, blank=True)
    used_at = models.DateTimeField(_("使用时间"), null=True, blank=True)
    ended_at = models.DateTimeField(null=True, blank=True)  # expired or revoked

    class Meta:
        verbose_name = _("会员优惠券")
        verbose_name_plural = _("会员优惠券")
        ordering = ["-id"]
        constraints = [
            models.CheckConstraint(condition=_Q(code__regex=COUPON_CODE_REGEX), name="member_coupon_code_format"),
            models.UniqueConstraint(fields=["template", "member", "seq"], name="member_coupon_seq_unique"),
            models.CheckConstraint(condition=_Q(seq__gte=1), name="member_coupon_seq_positive"),
            models.UniqueConstraint(
                fields=["member", "source"], condition=~_Q(source=""), name="member_coupon_once_per_source"
            ),
            models.CheckConstraint(condition=_Q(valid_until__gt=_F("valid_from")), name="member_coupon_validity"),
            models.CheckConstraint(condition=_Q(status__in=CouponStatus.values), name="member_coupon_status_valid"),
            models.CheckConstraint(
                condition=_Q(status=CouponStatus.RESERVED, order__isnull=False, reserved_at__isnull=False)
                | _Q(status=CouponStatus.USED, order__isnull=False, used_at__isnull=False)
                | _Q(status=CouponStatus.AVAILABLE, order__isnull=True)
                | _Q(
                    status__in=[CouponStatus.EXPIRED, CouponStatus.REVOKED], order__isnull=True, ended_at__isnull=False
                ),
                name="member_coupon_order_matches_status",
                violation_error_message=_("优惠券状态与占用订单不一致。"),
            ),
        ]
        indexes = [
            models.Index(fields=["member", "status", "valid_until"], name="member_coupon_wallet"),
            models.Index(
                fields=["valid_until"], condition=_Q(status=CouponStatus.AVAILABLE), name="member_coupon_expiring"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.code} ({self.status})"
