"""The shared commerce core: the catalog's products and SKUs that code batches bind to, and the sales
channel (dealers with their authorised areas, the stores they supply, and the people working there).

The full catalog (prices, stock, images, member prices) arrives with the commerce issue; Product and
Sku are its seed and keep their names.

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
from tenants.brand.models import SingletonModel
from tenants.brand.roles import CHANNEL_ROLE_NAMES, DEALER_ROLES, STORE_ROLES, ChannelRole


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


# --- the sales channel ------------------------------------------------------------------------------

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


# --- members and their points ------------------------------------------------------------------


class Member(models.Model):
    """A consumer of this brand, known by the WeChat openid of the brand's official account.

    Created on the first identified scan (or order). Personal information is kept to what the
    features use: the openid (to pay red packets to), the unionid, the nickname and avatar WeChat
    shares with consent, and an optional phone number stored encrypted (only its last four digits
    in clear, for display). Erasing a member (PIPL: the member's own request) clears all of it and
    keeps the row, so the ledgers that point at it stay whole without naming anyone.

    `points_balance` is the sum of the member's PointsEntry amounts, kept on the row so a balance
    check is one read; it only changes in the same transaction as a ledger entry
    (commerce.services.points) and the database refuses it below zero.
    """

    openid = models.CharField(_("OpenID"), max_length=64, null=True, blank=True, unique=True)
    unionid = models.CharField(_("UnionID"), max_length=64, blank=True, db_index=True)
    nickname = models.CharField(_("昵称"), max_length=64, blank=True)
    avatar_url = models.URLField(_("头像"), max_length=500, blank=True)
    phone_key_id = models.CharField(max_length=64, blank=True)
    phone_wrapped = models.BinaryField(null=True, blank=True)
    phone_hint = models.CharField(_("手机号"), max_length=16, blank=True)  # 138****5678
    points_balance = models.BigIntegerField(_("酒币余额"), default=0)
    created_at = models.DateTimeField(_("注册时间"), default=timezone.now)
    last_seen_at = models.DateTimeField(_("最近访问"), default=timezone.now)
    erased_at = models.DateTimeField(_("注销时间"), null=True, blank=True)

    class Meta:
        verbose_name = _("会员")
        verbose_name_plural = _("会员")
        ordering = ["-id"]
        constraints = [
            models.CheckConstraint(condition=models.Q(points_balance__gte=0), name="member_points_not_negative"),
            models.CheckConstraint(
                condition=models.Q(erased_at__isnull=True) | models.Q(openid__isnull=True, phone_wrapped__isnull=True),
                name="member_erased_holds_no_identity",
            ),
        ]

    def __str__(self) -> str:
        if self.erased_at is not None:
            return f"#{self.pk} (已注销)"
        return self.nickname or f"#{self.pk}"

    @property
    def is_erased(self) -> bool:
        return self.erased_at is not None


class ConsentPurpose(models.TextChoices):
    PRIVACY_POLICY = "privacy", _("隐私政策与用户协议")
    LOCATION = "location", _("位置信息（防窜货核验）")
    MARKETING = "marketing", _("营销消息")


class MemberConsent(models.Model):
    """One consent given or withdrawn (PIPL): what, which text version, when, from where. Append-only:
    the member's current consent to a purpose is their newest row for it."""

    member = models.ForeignKey(Member, on_delete=models.PROTECT, related_name="consents")
    purpose = models.CharField(_("事项"), max_length=16, choices=ConsentPurpose.choices)
    version = models.CharField(_("文本版本"), max_length=32)
    granted = models.BooleanField(_("同意"))
    at = models.DateTimeField(_("时间"), default=timezone.now)
    ip = models.GenericIPAddressField(null=True, blank=True)
    user_agent = models.CharField(max_length=300, blank=True)

    class Meta:
        verbose_name = _("会员授权记录")
        verbose_name_plural = _("会员授权记录")
        ordering = ["-at", "-id"]
        indexes = [models.Index(fields=["member", "purpose", "-at"], name="consent_latest")]

    def __str__(self) -> str:
        return f"{self.member_id} {self.purpose} {'✓' if self.granted else '✗'}"


class PointsKind(models.TextChoices):
    """Where a points movement comes from (every entry names its source)."""

    SCAN = "scan", _("扫码奖励")
    ORDER = "order", _("购物奖励")
    REDEMPTION = "redemption", _("积分兑换")
    REFUND = "refund", _("退款退回")
    EXPIRY = "expiry", _("过期")
    ADJUSTMENT = "adjustment", _("人工调整")
    REFERRAL = "referral", _("邀请奖励")
    CARD = "card", _("集卡奖励")


class PointsEntry(models.Model):
    """One movement of a member's points (酒币): append-only, never updated except the `remaining`
    of a credit, which debits and expiry consume oldest first.

    Idempotent per source: one entry per (member, source) whatever the retries. A credit may expire
    (`expires_at`); what is left of it then leaves the balance through an EXPIRY entry whose source
    is the credit itself.
    """

    member = models.ForeignKey(Member, on_delete=models.PROTECT, related_name="points_entries")
    kind = models.CharField(_("类型"), max_length=16, choices=PointsKind.choices)
    amount = models.BigIntegerField(_("数量"))  # > 0 credit, < 0 debit
    balance_after = models.BigIntegerField(_("变动后余额"))
    source = models.CharField(_("来源"), max_length=80)  # e.g. "scan:123", "order:B2026..", "expiry:42"
    remaining = models.BigIntegerField(_("未使用"), default=0)  # credits only
    expires_at = models.DateTimeField(_("过期时间"), null=True, blank=True)
    note = models.CharField(_("说明"), max_length=200, blank=True)
    created_at = models.DateTimeField(_("时间"), default=timezone.now)
    created_by = models.CharField(_("操作人"), max_length=150, blank=True)  # adjustments

    class Meta:
        verbose_name = _("酒币流水")
        verbose_name_plural = _("酒币流水")
        ordering = ["-id"]
        constraints = [
            models.UniqueConstraint(fields=["member", "source"], name="points_entry_once_per_source"),
            models.CheckConstraint(condition=~models.Q(amount=0), name="points_entry_not_zero"),
            models.CheckConstraint(condition=models.Q(balance_after__gte=0), name="points_entry_balance_not_negative"),
            models.CheckConstraint(
                condition=models.Q(remaining__gte=0)
                & (models.Q(amount__gt=0, remaining__lte=models.F("amount")) | models.Q(amount__lt=0, remaining=0)),
                name="points_entry_remaining_within_credit",
            ),
        ]
        indexes = [
            # Credits still to consume or expire, oldest first (debits and the expiry sweep).
            models.Index(
                fields=["member", "expires_at", "id"], condition=models.Q(remaining__gt=0), name="points_open_credits"
            ),
            models.Index(fields=["expires_at"], condition=models.Q(remaining__gt=0), name="points_expiring"),
        ]

    def __str__(self) -> str:
        return f"{self.member_id} {self.amount:+d} ({self.source})"


class PointsPolicy(SingletonModel):
    """The brand's points rules (one row). Credits expire `expiry_days` after they are earned
    (0: never), or, with `expire_at_year_end`, at the end of the year after the one they were earned in
    (a common rule: 酒币 earned in 2026 lapse on 2027-12-31)."""

    expiry_days = models.PositiveIntegerField(_("有效天数"), default=365)
    expire_at_year_end = models.BooleanField(_("次年年底过期"), default=False)
    updated_at = models.DateTimeField(_("更新时间"), auto_now=True)

    class Meta:
        verbose_name = _("酒币规则")
        verbose_name_plural = _("酒币规则")
        constraints = [models.CheckConstraint(condition=models.Q(id=1), name="points_policy_singleton")]

    def __str__(self) -> str:
        return str(_("酒币规则"))


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
    rewards/, orders in commerce/), marked processed when applied."""

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
