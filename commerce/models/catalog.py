"""The catalog: products and their SKUs (which code batches bind to), categories, images, prices in
fen, member-level prices, and the stock of each SKU with its movements (see commerce.models for the
invariants and the lock order)."""

from __future__ import annotations

from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

MAX_RATE_BP = 10_000  # basis points: 10000 = 100 %


class Category(models.Model):
    """A shop category (分类), at most two levels: a top category or a child of one."""

    name = models.CharField(_("分类名称"), max_length=40)
    parent = models.ForeignKey(
        "self", null=True, blank=True, on_delete=models.PROTECT, related_name="children", verbose_name=_("上级分类")
    )
    position = models.PositiveIntegerField(_("排序"), default=0)
    is_active = models.BooleanField(_("显示"), default=True)
    created_at = models.DateTimeField(_("创建时间"), default=timezone.now)

    class Meta:
        verbose_name = _("商品分类")
        verbose_name_plural = _("商品分类")
        ordering = ["position", "id"]
        constraints = [
            models.UniqueConstraint(
                fields=["parent", "name"],
                nulls_distinct=False,
                name="category_name_unique",
                violation_error_message=_("同一级下已有同名分类。"),
            ),
            models.CheckConstraint(condition=~models.Q(parent=models.F("id")), name="category_not_own_parent"),
        ]

    def __str__(self) -> str:
        return self.name


class Product(models.Model):
    """A liquor product line, e.g. 酱香53度 经典款. `is_active` is its shop shelf state (上架)."""

    name = models.CharField(_("商品名称"), max_length=100)
    description = models.TextField(_("商品介绍"), blank=True)
    is_active = models.BooleanField(_("上架"), default=True)
    created_at = models.DateTimeField(_("创建时间"), default=timezone.now)
    category = models.ForeignKey(
        Category, null=True, blank=True, on_delete=models.PROTECT, related_name="products", verbose_name=_("分类")
    )
    subtitle = models.CharField(_("卖点"), max_length=100, blank=True)
    position = models.PositiveIntegerField(_("排序"), default=0)

    class Meta:
        verbose_name = _("商品")
        verbose_name_plural = _("商品")

    def __str__(self) -> str:
        return self.name


class ProductImage(models.Model):
    """A picture of a product; the one with the lowest position is the cover."""

    product = models.ForeignKey(Product, on_delete=models.CASCADE, related_name="images", verbose_name=_("商品"))
    image = models.ImageField(_("图片"), upload_to="catalog/")
    position = models.PositiveIntegerField(_("排序"), default=0)
    alt = models.CharField(_("说明"), max_length=100, blank=True)

    class Meta:
        verbose_name = _("商品图片")
        verbose_name_plural = _("商品图片")
        ordering = ["product", "position", "id"]

    def __str__(self) -> str:
        return f"{self.product_id} #{self.position}"


class Sku(models.Model):
    """A sellable unit of a product (bottle size, strength, packaging), identified by its SKU code.

    Shop prices are in fen: `price_fen` is what a non-member pays, `original_price_fen` the struck-
    through reference price (0: none). A member level may have its own price (SkuLevelPrice), else
    its percentage of `price_fen` applies (MemberLevel.price_percent).
    """

    product = models.ForeignKey(Product, on_delete=models.PROTECT, related_name="skus", verbose_name=_("商品"))
    code = models.CharField(_("SKU 编码"), max_length=40, unique=True)
    spec = models.CharField(_("规格"), max_length=100, help_text=_("例如：53%vol 500ml×6瓶/箱"))
    bottles_per_case = models.PositiveSmallIntegerField(_("每箱瓶数"), default=6)
    is_active = models.BooleanField(_("启用"), default=True)
    price_fen = models.BigIntegerField(_("售价（分）"), default=0)
    original_price_fen = models.BigIntegerField(_("划线价（分）"), default=0)
    image = models.ImageField(_("规格图片"), upload_to="catalog/", blank=True)
    position = models.PositiveIntegerField(_("排序"), default=0)

    class Meta:
        verbose_name = _("SKU")
        verbose_name_plural = _("SKU")
        constraints = [
            models.CheckConstraint(
                condition=models.Q(price_fen__gte=0, original_price_fen__gte=0), name="sku_prices_not_negative"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.product.name} {self.spec}"

    @property
    def display_name(self) -> str:
        """What an order line keeps as the SKU's name (OrderLine.sku_name)."""
        return f"{self.product.name} {self.spec}"[:200]


# A SKU the shop sells for cash: its product on shelf, itself active, with a price. (Points-mall
# goods are MallItem rows and follow their own shelf state.)
SELLABLE_SKU = models.Q(is_active=True, product__is_active=True, price_fen__gt=0)


class SkuLevelPrice(models.Model):
    """A member level's own price for a SKU (会员价), overriding the level's percentage."""

    sku = models.ForeignKey(Sku, on_delete=models.CASCADE, related_name="level_prices", verbose_name=_("SKU"))
    level = models.ForeignKey(
        "commerce.MemberLevel", on_delete=models.CASCADE, related_name="sku_prices", verbose_name=_("会员等级")
    )
    price_fen = models.BigIntegerField(_("会员价（分）"))

    class Meta:
        verbose_name = _("会员价")
        verbose_name_plural = _("会员价")
        constraints = [
            models.UniqueConstraint(fields=["sku", "level"], name="sku_level_price_unique"),
            models.CheckConstraint(condition=models.Q(price_fen__gte=0), name="sku_level_price_not_negative"),
        ]

    def __str__(self) -> str:
        return f"{self.sku_id}@{self.level_id}: {self.price_fen}"


class Stock(models.Model):
    """The stock of one SKU (its primary key is the SKU's id, so "ascending sku id" is the lock order).

    `on_hand`: units in the warehouse, not yet shipped or picked up. `reserved`: the part of them
    held by live orders (created, not yet shipped/picked up, cancelled or refunded).
    available = on_hand - reserved. A SKU without a row has nothing available.

    Changed only by guarded UPDATEs that each append one StockMovement in the same transaction, so
    on_hand = sum(on_hand_delta) and reserved = sum(reserved_delta) of its movements.
    """

    sku = models.OneToOneField(
        Sku, primary_key=True, on_delete=models.PROTECT, related_name="stock", verbose_name=_("SKU")
    )
    on_hand = models.BigIntegerField(_("在库数量"), default=0)
    reserved = models.BigIntegerField(_("已占用"), default=0)
    updated_at = models.DateTimeField(_("更新时间"), default=timezone.now)

    class Meta:
        verbose_name = _("库存")
        verbose_name_plural = _("库存")
        constraints = [
            models.CheckConstraint(
                condition=models.Q(on_hand__gte=0),
                name="stock_on_hand_not_negative",
                violation_error_message=_("库存不能小于零。"),
            ),
            models.CheckConstraint(
                condition=models.Q(reserved__gte=0, reserved__lte=models.F("on_hand")),
                name="stock_reserved_within_on_hand",
                violation_error_message=_("占用数量不能超过在库数量。"),
            ),
        ]

    def __str__(self) -> str:
        return f"{self.sku_id}: {self.on_hand} ({self.reserved} reserved)"

    @property
    def available(self) -> int:
        return self.on_hand - self.reserved


class StockMovementKind(models.TextChoices):
    INBOUND = "inbound", _("入库")  # on_hand +q
    ADJUST = "adjust", _("盘点调整")  # on_hand ±q
    RESERVE = "reserve", _("下单占用")  # reserved +q
    RELEASE = "release", _("释放占用")  # reserved -q (cancelled / refunded before shipment)
    SHIP = "ship", _("发货出库")  # on_hand -q and reserved -q (shipped or picked up)
    RESTOCK = "restock", _("退货入库")  # on_hand +q (returned goods back in stock)


class StockMovement(models.Model):
    """One change of a SKU's stock: append-only, at most one per (sku, kind, source).

    Sources: "line:<order line id>" for a line's reserve, its release on cancel and its ship (each at
    most once: a retried or raced release fails on the uniqueness), "refund:<refund no>" for the
    release of units refunded before shipment, "aftersale:<id>" for restock, "inbound:<ref>" /
    "adjust:<ref>" for staff changes.
    """

    sku = models.ForeignKey(Sku, on_delete=models.PROTECT, related_name="stock_movements", verbose_name=_("SKU"))
    kind = models.CharField(_("类型"), max_length=10, choices=StockMovementKind.choices)
    on_hand_delta = models.BigIntegerField(_("在库变动"), default=0)
    reserved_delta = models.BigIntegerField(_("占用变动"), default=0)
    source = models.CharField(_("来源"), max_length=80)
    note = models.CharField(_("说明"), max_length=200, blank=True)
    created_at = models.DateTimeField(_("时间"), default=timezone.now)
    created_by = models.CharField(_("操作人"), max_length=150, blank=True)

    class Meta:
        verbose_name = _("库存流水")
        verbose_name_plural = _("库存流水")
        ordering = ["-id"]
        constraints = [
            models.UniqueConstraint(fields=["sku", "kind", "source"], name="stock_movement_once_per_source"),
            models.CheckConstraint(
                condition=models.Q(kind=StockMovementKind.INBOUND, on_hand_delta__gt=0, reserved_delta=0)
                | models.Q(kind=StockMovementKind.ADJUST, reserved_delta=0) & ~models.Q(on_hand_delta=0)
                | models.Q(kind=StockMovementKind.RESERVE, on_hand_delta=0, reserved_delta__gt=0)
                | models.Q(kind=StockMovementKind.RELEASE, on_hand_delta=0, reserved_delta__lt=0)
                | models.Q(kind=StockMovementKind.SHIP, on_hand_delta__lt=0, reserved_delta=models.F("on_hand_delta"))
                | models.Q(kind=StockMovementKind.RESTOCK, on_hand_delta__gt=0, reserved_delta=0),
                name="stock_movement_deltas_match_kind",
            ),
        ]
        indexes = [models.Index(fields=["sku", "-id"], name="stock_movement_of_sku")]

    def __str__(self) -> str:
        return f"{self.sku_id} {self.kind} {self.on_hand_delta:+d}/{self.reserved_delta:+d} ({self.source})"
