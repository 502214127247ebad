"""The points mall (积分商城): goods listed for points, or points plus cash.

Mall goods are listings of SKUs, not SKUs with a points price: a SKU keeps one stock and one catalog
entry whether it is sold for cash in the shop or redeemed in the mall, while a listing has its own
price in points, shelf state, window, quota and per-member limit, and a SKU may be listed more than
once over time. Redemption is an ordinary Order (kind points_mall) whose line names the listing; its
points are debited from the ledger (source "order:<number>") in the transaction that creates the
order, its cash (if any) is paid like any order, and it is delivered or picked up at a store
(核销 at the store's terminal: Order.pickup_*).
"""

from __future__ import annotations

from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

_Q = models.Q
_F = models.F


class MallItem(models.Model):
    """A points-mall listing. `sold` is raised by a guarded UPDATE (sold + q <= quantity) with the
    order's stock reservation and lowered with its release."""

    sku = models.ForeignKey("commerce.Sku", on_delete=models.PROTECT, related_name="mall_items", verbose_name=_("SKU"))
    title = models.CharField(_("兑换商品名称"), max_length=100)
    points_price = models.BigIntegerField(_("所需酒币"))
    cash_price_fen = models.BigIntegerField(_("另需现金（分）"), default=0)
    quantity = models.PositiveIntegerField(
        _("可兑换总量"), null=True, blank=True, help_text=_("留空表示只受库存限制。")
    )
    sold = models.PositiveIntegerField(_("已兑换"), default=0)
    per_member_limit = models.PositiveIntegerField(_("每人限兑"), null=True, blank=True)
    allow_delivery = models.BooleanField(_("可快递"), default=True)
    allow_pickup = models.BooleanField(_("可门店自提"), default=False)
    is_active = models.BooleanField(_("上架"), default=False)
    starts_at = models.DateTimeField(_("开始时间"), null=True, blank=True)
    ends_at = models.DateTimeField(_("结束时间"), null=True, blank=True)
    position = models.PositiveIntegerField(_("排序"), default=0)
    created_at = models.DateTimeField(_("创建时间"), default=timezone.now)

    class Meta:
        verbose_name = _("积分商品")
        verbose_name_plural = _("积分商品")
        ordering = ["position", "-id"]
        constraints = [
            models.CheckConstraint(
                condition=_Q(points_price__gt=0, cash_price_fen__gte=0),
                name="mall_item_prices",
                violation_error_message=_("积分商品须设置所需酒币，现金部分不能为负。"),
            ),
            models.CheckConstraint(
                condition=_Q(quantity__isnull=True) | _Q(sold__lte=_F("quantity")),
                name="mall_item_within_quantity",
                violation_error_message=_("兑换数量超过了可兑换总量。"),
            ),
            models.CheckConstraint(
                condition=_Q(per_member_limit__isnull=True) | _Q(per_member_limit__gte=1), name="mall_item_member_limit"
            ),
            models.CheckConstraint(
                condition=_Q(allow_delivery=True) | _Q(allow_pickup=True), name="mall_item_delivery"
            ),
            models.CheckConstraint(
                condition=_Q(starts_at__isnull=True) | _Q(ends_at__isnull=True) | _Q(ends_at__gt=_F("starts_at")),
                name="mall_item_window",
            ),
        ]

    def __str__(self) -> str:
        return self.title
