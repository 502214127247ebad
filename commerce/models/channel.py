"""The sales channel: dealers with their authorised areas, the stores they supply, and the people
working there.

Channel rules the database holds (the rest, e.g. "a store's region lies inside its dealer's areas",
is checked by commerce.services.channel, the only writer):
- a first-level dealer has no parent, a second-level one has one;
- an area is stored once per dealer; region codes are 6 digits (the services check they exist);
- a store's coordinates are both given or both missing, and on the globe;
- a channel staff member works for exactly one dealer or one store, matching their role;
- an active channel staff member's phone number is unique.
"""

from __future__ import annotations

import secrets

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from commerce import regions
from tenants.brand.roles import CHANNEL_ROLE_NAMES, DEALER_ROLES, STORE_ROLES, ChannelRole

_REGION_CODE = models.Q(region_code__regex=r"^[0-9]{6}$")
_REGION_CODE_MESSAGE = _("行政区划代码应为 6 位数字。")


def _check_region(code: str) -> None:
    """Model validation (forms): the code names a region of commerce.regions."""
    try:
        regions.validate(code)
    except regions.UnknownRegionError as exc:
        raise ValidationError({"region_code": str(exc)}, code="unknown_region") from exc


class ChannelStatus(models.TextChoices):
    ACTIVE = "active", _("正常")
    SUSPENDED = "suspended", _("已停用")


class DealerLevel(models.IntegerChoices):
    FIRST = 1, _("一级经销商")
    SECOND = 2, _("二级经销商")


class Dealer(models.Model):
    """A dealer (经销商). A second-level dealer buys from a first-level one (its parent)."""

    code = models.CharField(_("经销商编码"), max_length=32, unique=True)
    name = models.CharField(_("经销商名称"), max_length=100)
    contact_name = models.CharField(_("联系人"), max_length=50, blank=True)
    contact_phone = models.CharField(_("联系电话"), max_length=20, blank=True)
    level = models.PositiveSmallIntegerField(_("级别"), choices=DealerLevel.choices, default=DealerLevel.FIRST)
    parent = models.ForeignKey(
        "self",
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="children",
        verbose_name=_("上级经销商"),
    )
    status = models.CharField(_("状态"), max_length=16, choices=ChannelStatus.choices, default=ChannelStatus.ACTIVE)
    created_at = models.DateTimeField(_("创建时间"), default=timezone.now)

    class Meta:
        verbose_name = _("经销商")
        verbose_name_plural = _("经销商")
        ordering = ["code"]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(level=DealerLevel.FIRST, parent__isnull=True)
                | models.Q(level=DealerLevel.SECOND, parent__isnull=False),
                name="dealer_level_parent",
                violation_error_message=_("一级经销商不能有上级经销商，二级经销商须有上级经销商。"),
            ),
            models.CheckConstraint(
                condition=~models.Q(parent=models.F("id")),
                name="dealer_not_own_parent",
                violation_error_message=_("经销商不能是自己的上级。"),
            ),
            models.CheckConstraint(
                condition=models.Q(status__in=ChannelStatus.values),
                name="dealer_status",
                violation_error_message=_("状态无效。"),
            ),
        ]

    def __str__(self) -> str:
        return f"{self.name}（{self.code}）"

    @property
    def is_active(self) -> bool:
        return self.status == ChannelStatus.ACTIVE


class DealerArea(models.Model):
    """One authorised sales area of a dealer: a province, city or county by GB/T 2260 code."""

    dealer = models.ForeignKey(Dealer, on_delete=models.CASCADE, related_name="areas", verbose_name=_("经销商"))
    region_code = models.CharField(
        _("行政区划代码"), max_length=6, help_text=_("6 位 GB/T 2260 代码，省、市或区县均可，如 520102。")
    )
    created_at = models.DateTimeField(_("创建时间"), default=timezone.now)

    class Meta:
        verbose_name = _("授权区域")
        verbose_name_plural = _("授权区域")
        ordering = ["dealer_id", "region_code"]
        constraints = [
            models.UniqueConstraint(
                fields=["dealer", "region_code"],
                name="dealer_area_unique",
                violation_error_message=_("该经销商已有此授权区域。"),
            ),
            models.CheckConstraint(
                condition=_REGION_CODE, name="dealer_area_region_code", violation_error_message=_REGION_CODE_MESSAGE
            ),
        ]
        # "Which dealers may sell here": the region and each of its ancestors, by equality.
        indexes = [models.Index(fields=["region_code"], name="dealer_area_region")]

    def __str__(self) -> str:
        return self.full_name

    def clean(self) -> None:
        _check_region(self.region_code)

    @property
    def full_name(self) -> str:
        region = regions.get(self.region_code)
        return region.full_name if region is not None else self.region_code


def new_store_token() -> str:
    """A store's QR token: 192 random bits, URL-safe (32 characters)."""
    return secrets.token_urlsafe(24)


class Store(models.Model):
    """A store (终端门店) supplied by a dealer. Its QR token identifies it at the till (store rewards)."""

    code = models.CharField(_("门店编码"), max_length=32, unique=True)
    name = models.CharField(_("门店名称"), max_length=100)
    dealer = models.ForeignKey(Dealer, on_delete=models.PROTECT, related_name="stores", verbose_name=_("供货经销商"))
    region_code = models.CharField(
        _("所在区域"), max_length=6, help_text=_("6 位 GB/T 2260 代码，精确到区县（或不设区县的市）。")
    )
    address = models.CharField(_("详细地址"), max_length=200, blank=True)
    latitude = models.DecimalField(_("纬度"), max_digits=9, decimal_places=6, null=True, blank=True)
    longitude = models.DecimalField(_("经度"), max_digits=9, decimal_places=6, null=True, blank=True)
    contact_name = models.CharField(_("联系人"), max_length=50, blank=True)
    contact_phone = models.CharField(_("联系电话"), max_length=20, blank=True)
    status = models.CharField(_("状态"), max_length=16, choices=ChannelStatus.choices, default=ChannelStatus.ACTIVE)
    qr_token = models.CharField(_("门店码令牌"), max_length=64, unique=True, default=new_store_token, editable=False)
    created_at = models.DateTimeField(_("创建时间"), default=timezone.now)

    class Meta:
        verbose_name = _("门店")
        verbose_name_plural = _("门店")
        ordering = ["code"]
        constraints = [
            models.CheckConstraint(
                condition=_REGION_CODE, name="store_region_code", violation_error_message=_REGION_CODE_MESSAGE
            ),
            models.CheckConstraint(
                condition=models.Q(latitude__isnull=True, longitude__isnull=True)
                | models.Q(latitude__gte=-90, latitude__lte=90, longitude__gte=-180, longitude__lte=180),
                name="store_coordinates",
                violation_error_message=_("经纬度须同时填写或同时留空，且在有效范围内。"),
            ),
            models.CheckConstraint(
                condition=models.Q(status__in=ChannelStatus.values),
                name="store_status",
                violation_error_message=_("状态无效。"),
            ),
        ]
        indexes = [
            # Stores of a province or city: region_code LIKE '52%' / '5201%'.
            models.Index(fields=["region_code"], name="store_region", opclasses=["varchar_pattern_ops"]),
            models.Index(fields=["dealer", "status"], name="store_dealer_status"),
        ]

    def __str__(self) -> str:
        return f"{self.name}（{self.code}）"

    @property
    def is_active(self) -> bool:
        return self.status == ChannelStatus.ACTIVE

    def clean(self) -> None:
        _check_region(self.region_code)

    @property
    def region_name(self) -> str:
        region = regions.get(self.region_code)
        return region.full_name if region is not None else self.region_code


class ChannelStaff(models.Model):
    """A person working for a dealer or a store: a brand User that is not brand staff (is_staff False),
    so never in the admin or the brand API; they act through the terminal pages.

    Their rights come from their role's group (tenants.brand.roles: the business apps' `dealer_*` and
    `store_*` permissions), always together with the dealer or store named here.
    """

    user = models.OneToOneField(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="channel_staff", verbose_name=_("账号")
    )
    role = models.CharField(
        _("角色"), max_length=20, choices=[(role.value, name) for role, name in CHANNEL_ROLE_NAMES.items()]
    )
    dealer = models.ForeignKey(
        Dealer, null=True, blank=True, on_delete=models.PROTECT, related_name="staff", verbose_name=_("所属经销商")
    )
    store = models.ForeignKey(
        Store, null=True, blank=True, on_delete=models.PROTECT, related_name="staff", verbose_name=_("所属门店")
    )
    phone = models.CharField(_("手机号"), max_length=20)
    is_active = models.BooleanField(_("启用"), default=True)
    created_at = models.DateTimeField(_("创建时间"), default=timezone.now)

    class Meta:
        verbose_name = _("渠道人员")
        verbose_name_plural = _("渠道人员")
        ordering = ["-created_at", "-id"]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(
                    role__in=sorted(r.value for r in DEALER_ROLES), dealer__isnull=False, store__isnull=True
                )
                | models.Q(role__in=sorted(r.value for r in STORE_ROLES), dealer__isnull=True, store__isnull=False),
                name="channel_staff_employer",
                violation_error_message=_("经销商人员须只属于一个经销商，门店人员须只属于一家门店。"),
            ),
            models.UniqueConstraint(
                fields=["phone"],
                condition=models.Q(is_active=True),
                name="channel_staff_active_phone",
                violation_error_message=_("该手机号已被其他在职渠道人员使用。"),
            ),
        ]
        # Custom permissions of the channel roles (see tenants.brand.roles): `dealer_*` go to dealer
        # staff, `store_*` to store staff, `*_manage_*` only to the dealer's manager / the store's owner.
        permissions = [
            ("dealer_use_terminal", _("使用经销商终端")),
            ("dealer_manage_staff", _("管理经销商的渠道人员")),
            ("store_use_terminal", _("使用门店终端")),
            ("store_manage_staff", _("管理门店的渠道人员")),
        ]

    def __str__(self) -> str:
        return f"{self.user} · {self.get_role_display()}"

    @property
    def employer(self) -> Dealer | Store | None:
        return self.dealer if self.dealer_id is not None else self.store

    @property
    def channel_role(self) -> ChannelRole:
        return ChannelRole(self.role)
