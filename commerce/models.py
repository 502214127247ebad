"""The shared commerce core. For now: the catalog's products and SKUs that code batches bind to.

The full catalog (prices, stock, images, member prices) arrives with the commerce issue; these two
models are its seed and keep their names.
"""

from __future__ import annotations

from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _


class Product(models.Model):
    """A liquor product line, e.g. 酱香53度 经典款."""

    name = models.CharField(_("商品名称"), max_length=100)
    description = models.TextField(_("商品介绍"), blank=True)
    is_active = models.BooleanField(_("上架"), default=True)
    created_at = models.DateTimeField(_("创建时间"), default=timezone.now)

    class Meta:
        verbose_name = _("商品")
        verbose_name_plural = _("商品")

    def __str__(self) -> str:
        return self.name


class Sku(models.Model):
    """A sellable unit of a product (bottle size, strength, packaging), identified by its SKU code."""

    product = models.ForeignKey(Product, on_delete=models.PROTECT, related_name="skus", verbose_name=_("商品"))
    code = models.CharField(_("SKU 编码"), max_length=40, unique=True)
    spec = models.CharField(_("规格"), max_length=100, help_text=_("例如：53%vol 500ml×6瓶/箱"))
    bottles_per_case = models.PositiveSmallIntegerField(_("每箱瓶数"), default=6)
    is_active = models.BooleanField(_("启用"), default=True)

    class Meta:
        verbose_name = _("SKU")
        verbose_name_plural = _("SKU")

    def __str__(self) -> str:
        return f"{self.product.name} {self.spec}"
