"""Members (consumers of the brand): their consents, points ledger, levels, tags and addresses."""

from __future__ import annotations

from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from commerce.models.channel import _REGION_CODE, _REGION_CODE_MESSAGE, _check_region
from tenants.brand.models import SingletonModel


class MemberLevel(models.Model):
    """A member level (会员等级) and its benefits.

    A member qualifies for a level when their growth reaches any threshold the level sets:
    `min_points` against the points they have earned (the sum of their credits of kinds scan, order,
    referral, card and positive adjustments; refunds and expiry do not count), `min_spend_fen`
    against what they have paid for orders minus what was refunded. Their level is the active level
    of the highest rank they qualify for (none: no level), recomputed by the services after a
    payment, a refund or a points credit, in a transaction of its own.
    """

    name = models.CharField(_("等级名称"), max_length=20, unique=True)
    rank = models.PositiveSmallIntegerField(_("等级"), unique=True, help_text=_("数字越大等级越高。"))
    min_points = models.BigIntegerField(_("累计获得酒币门槛"), null=True, blank=True)
    min_spend_fen = models.BigIntegerField(_("累计消费门槛（分）"), null=True, blank=True)
    price_percent = models.PositiveSmallIntegerField(
        _("会员折扣（%）"), default=100, help_text=_("按售价的百分比计价，95 即九五折；SKU 设了会员价时以会员价为准。")
    )
    extra_points_percent = models.PositiveSmallIntegerField(_("额外积分（%）"), default=0)
    free_shipping = models.BooleanField(_("包邮"), default=False)
    is_active = models.BooleanField(_("启用"), default=True)
    created_at = models.DateTimeField(_("创建时间"), default=timezone.now)

    class Meta:
        verbose_name = _("会员等级")
        verbose_name_plural = _("会员等级")
        ordering = ["rank"]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(min_points__isnull=False) | models.Q(min_spend_fen__isnull=False),
                name="member_level_has_threshold",
                violation_error_message=_("请至少设置一个升级门槛。"),
            ),
            models.CheckConstraint(
                condition=(models.Q(min_points__isnull=True) | models.Q(min_points__gte=0))
                & (models.Q(min_spend_fen__isnull=True) | models.Q(min_spend_fen__gte=0)),
                name="member_level_thresholds_not_negative",
            ),
            models.CheckConstraint(
                condition=models.Q(price_percent__gte=1, price_percent__lte=100), name="member_level_price_percent"
            ),
            models.CheckConstraint(
                condition=models.Q(extra_points_percent__lte=1000), name="member_level_extra_points_percent"
            ),
        ]

    def __str__(self) -> str:
        return self.name


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
    level = models.ForeignKey(
        MemberLevel, null=True, blank=True, on_delete=models.PROTECT, related_name="members", verbose_name=_("会员等级")
    )

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


class TagKind(models.TextChoices):
    MANUAL = "manual", _("手动标签")
    RULE = "rule", _("规则标签")


class MemberTag(models.Model):
    """A member tag (会员标签). Manual tags are put on by staff; rule tags by the daily task that
    evaluates `rule` and makes the tagging match it (adds and removes its rule taggings).

    A rule is a JSON object whose keys all have to hold (absent keys: no condition):
    {"min_spend_fen": int, "min_orders": int, "min_points": int, "level_ranks": [int],
     "region_prefixes": ["52", "5201"], "scanned_sku_ids": [int], "inactive_days": int}.
    """

    name = models.CharField(_("标签名称"), max_length=30, unique=True)
    kind = models.CharField(_("类型"), max_length=8, choices=TagKind.choices, default=TagKind.MANUAL)
    rule = models.JSONField(_("规则"), default=dict, blank=True)
    description = models.CharField(_("说明"), max_length=200, blank=True)
    created_at = models.DateTimeField(_("创建时间"), default=timezone.now)

    class Meta:
        verbose_name = _("会员标签")
        verbose_name_plural = _("会员标签")
        ordering = ["name"]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(kind=TagKind.MANUAL, rule={}) | models.Q(kind=TagKind.RULE) & ~models.Q(rule={}),
                name="member_tag_rule_matches_kind",
                violation_error_message=_("规则标签须设置规则，手动标签不设规则。"),
            ),
        ]

    def __str__(self) -> str:
        return self.name


class MemberTagging(models.Model):
    """A tag on a member, at most once."""

    member = models.ForeignKey(Member, on_delete=models.CASCADE, related_name="taggings", verbose_name=_("会员"))
    tag = models.ForeignKey(MemberTag, on_delete=models.CASCADE, related_name="taggings", verbose_name=_("标签"))
    created_at = models.DateTimeField(_("时间"), default=timezone.now)
    created_by = models.CharField(_("操作人"), max_length=150, blank=True)  # "" for rule taggings

    class Meta:
        verbose_name = _("会员打标")
        verbose_name_plural = _("会员打标")
        constraints = [models.UniqueConstraint(fields=["member", "tag"], name="member_tagging_unique")]
        indexes = [models.Index(fields=["tag", "member"], name="member_tagging_by_tag")]

    def __str__(self) -> str:
        return f"{self.member_id} #{self.tag_id}"


class Address(models.Model):
    """A member's delivery address. Orders copy it (Order.receiver_*), so editing or deleting one
    never changes an order; erasing a member deletes theirs."""

    member = models.ForeignKey(Member, on_delete=models.CASCADE, related_name="addresses", verbose_name=_("会员"))
    receiver_name = models.CharField(_("收货人"), max_length=30)
    phone = models.CharField(_("联系电话"), max_length=20)
    region_code = models.CharField(_("所在地区"), max_length=6, help_text=_("6 位 GB/T 2260 代码，精确到区县。"))
    detail = models.CharField(_("详细地址"), max_length=200)
    postal_code = models.CharField(_("邮编"), max_length=6, blank=True)
    is_default = models.BooleanField(_("默认地址"), default=False)
    created_at = models.DateTimeField(_("创建时间"), default=timezone.now)
    updated_at = models.DateTimeField(_("更新时间"), auto_now=True)

    class Meta:
        verbose_name = _("收货地址")
        verbose_name_plural = _("收货地址")
        ordering = ["-is_default", "-updated_at", "-id"]
        constraints = [
            models.UniqueConstraint(
                fields=["member"],
                condition=models.Q(is_default=True),
                name="address_one_default",
                violation_error_message=_("只能有一个默认地址。"),
            ),
            models.CheckConstraint(
                condition=_REGION_CODE, name="address_region_code", violation_error_message=_REGION_CODE_MESSAGE
            ),
            models.CheckConstraint(
                condition=models.Q(phone__regex=r"^[0-9][0-9-]{4,19}$"),
                name="address_phone",
                violation_error_message=_("联系电话格式不正确。"),
            ),
            models.CheckConstraint(
                condition=~models.Q(receiver_name="") & ~models.Q(detail=""), name="address_receiver_and_detail"
            ),
            models.CheckConstraint(
                condition=models.Q(postal_code="") | models.Q(postal_code__regex=r"^[0-9]{6}$"),
                name="address_postal_code",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.receiver_name} {self.region_code} {self.detail}"

    def clean(self) -> None:
        _check_region(self.region_code)
