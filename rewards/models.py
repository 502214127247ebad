"""Scan-to-win: campaigns and their prize tables, the draw of each inner code, the money it moves.

What the database holds (the services in rewards/ are the only writers):
- a prize is never awarded more often than its quantity (awarded <= quantity, raised by a guarded
  UPDATE); a campaign never reserves more cash than its budget (spent_fen <= budget_fen, likewise);
- an inner code is drawn at most once (Claim.serial is unique): whatever the retries and races, a
  cap pays out at most once;
- a cash prize is one Payout (the outbox a worker pays through WeChat Pay), at most one per claim,
  with a merchant bill number fixed before the first call to WeChat (idempotent there too);
- the budget moves only through BudgetEntry rows (append-only, one per source): the sum of a
  campaign's entries is its spent_fen;
- no single prize is worth more than ¥50,000 (the legal cap on a lottery-type prize in China).
"""

from __future__ import annotations

from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from commerce.models import Member
from tenants.brand.models import SingletonModel

# 反不正当竞争法 art. 10: the top prize of a lottery-type prize sale is at most ¥50,000.
MAX_PRIZE_FEN = 5_000_000
ODDS_SCALE = 1_000_000  # odds are parts per million of draws


class CampaignStatus(models.TextChoices):
    DRAFT = "draft", _("草稿")
    PUBLISHED = "published", _("已发布")  # rules public; runs between starts_at and ends_at
    ENDED = "ended", _("已结束")  # seed revealed
    CANCELLED = "cancelled", _("已取消")


class Campaign(models.Model):
    name = models.CharField(_("活动名称"), max_length=100)
    description = models.TextField(_("活动说明"), blank=True)
    status = models.CharField(_("状态"), max_length=12, choices=CampaignStatus.choices, default=CampaignStatus.DRAFT)
    starts_at = models.DateTimeField(_("开始时间"))
    ends_at = models.DateTimeField(_("结束时间"))
    # Overlapping campaigns: a scan enters the one with the highest priority, then the earliest
    # start, then the lowest id (rewards.selectors.campaign_for).
    priority = models.IntegerField(_("优先级"), default=0)
    budget_fen = models.BigIntegerField(_("现金预算（分）"), default=0)
    spent_fen = models.BigIntegerField(_("已占用预算（分）"), default=0)
    pacing = models.BooleanField(_("匀速发放"), default=True)
    pacing_slack_percent = models.PositiveSmallIntegerField(_("匀速余量（%）"), default=20)
    first_scan_guarantee = models.BooleanField(_("首扫必中"), default=False)
    member_daily_cap = models.PositiveIntegerField(_("每人每日抽奖次数上限"), default=0)  # 0: none
    member_total_cap = models.PositiveIntegerField(_("每人总抽奖次数上限"), default=0)
    # Targets (empty: any). Batches and SKUs of the bottle, regions of the scan, dealers of the bottle.
    target_batch_ids = models.JSONField(_("指定批次"), default=list, blank=True)
    target_sku_ids = models.JSONField(_("指定商品规格"), default=list, blank=True)
    target_region_codes = models.JSONField(_("指定地区"), default=list, blank=True)
    target_dealer_ids = models.JSONField(_("指定经销商"), default=list, blank=True)
    # Fair draw: SHA-256 of the secret seed is published with the rules; the seed at the end.
    seed_key_id = models.CharField(max_length=64, blank=True)
    seed_wrapped = models.BinaryField(null=True, blank=True)
    seed_commitment = models.CharField(_("种子承诺（SHA-256）"), max_length=64, blank=True)
    seed_revealed = models.CharField(_("公开的种子"), max_length=64, blank=True)
    published_at = models.DateTimeField(_("发布时间"), null=True, blank=True)
    ended_at = models.DateTimeField(_("结束于"), null=True, blank=True)
    organiser = models.CharField(_("主办方"), max_length=100, blank=True)
    contact = models.CharField(_("咨询电话"), max_length=40, blank=True)
    created_at = models.DateTimeField(_("创建时间"), default=timezone.now)
    created_by = models.CharField(_("创建人"), max_length=150, blank=True)

    class Meta:
        verbose_name = _("扫码活动")
        verbose_name_plural = _("扫码活动")
        ordering = ["-starts_at", "-id"]
        constraints = [
            models.CheckConstraint(condition=models.Q(ends_at__gt=models.F("starts_at")), name="campaign_window"),
            models.CheckConstraint(
                condition=models.Q(spent_fen__gte=0, spent_fen__lte=models.F("budget_fen")),
                name="campaign_within_budget",
            ),
        ]
        indexes = [models.Index(fields=["status", "starts_at", "ends_at"], name="campaign_running")]

    def __str__(self) -> str:
        return self.name

    def is_running(self, at: object = None) -> bool:
        now = at or timezone.now()
        return self.status == CampaignStatus.PUBLISHED and self.starts_at <= now < self.ends_at  # type: ignore[operator]


class PrizeKind(models.TextChoices):
    CASH = "cash", _("现金红包")
    POINTS = "points", _("酒币")
    PHYSICAL = "physical", _("实物奖品")
    CARD = "card", _("集卡卡片")


class Prize(models.Model):
    campaign = models.ForeignKey(Campaign, on_delete=models.CASCADE, related_name="prizes")
    name = models.CharField(_("奖项名称"), max_length=60)
    kind = models.CharField(_("奖品类型"), max_length=10, choices=PrizeKind.choices)
    amount_fen = models.BigIntegerField(_("红包金额（分）"), default=0)
    points = models.BigIntegerField(_("酒币数量"), default=0)
    value_fen = models.BigIntegerField(_("奖品价值（分）"), default=0)  # physical prizes: market value
    odds_ppm = models.PositiveIntegerField(_("中奖概率（百万分之）"))
    quantity = models.PositiveIntegerField(_("数量"))
    awarded = models.PositiveIntegerField(_("已发出"), default=0)
    is_guarantee = models.BooleanField(_("首扫必中奖项"), default=False)
    position = models.PositiveSmallIntegerField(_("排序"), default=0)
    # A card prize gives one card of this set, picked by the cards' rarity weights (rewards.draw).
    card_set = models.ForeignKey(
        "CardSet", null=True, blank=True, on_delete=models.PROTECT, related_name="+", verbose_name=_("卡片套系")
    )

    class Meta:
        verbose_name = _("奖项")
        verbose_name_plural = _("奖项")
        ordering = ["campaign", "position", "id"]
        constraints = [
            models.CheckConstraint(condition=models.Q(awarded__lte=models.F("quantity")), name="prize_within_quantity"),
            models.CheckConstraint(condition=models.Q(odds_ppm__lte=ODDS_SCALE), name="prize_odds_range"),
            models.CheckConstraint(
                condition=models.Q(kind="cash", amount_fen__gt=0, amount_fen__lte=MAX_PRIZE_FEN, points=0)
                | models.Q(kind="points", points__gt=0, amount_fen=0)
                | models.Q(kind="physical", value_fen__gt=0, value_fen__lte=MAX_PRIZE_FEN, amount_fen=0, points=0)
                | models.Q(kind="card", card_set__isnull=False, amount_fen=0, points=0),
                name="prize_kind_fields",
            ),
            models.UniqueConstraint(
                fields=["campaign"], condition=models.Q(is_guarantee=True), name="prize_one_guarantee"
            ),
        ]

    def __str__(self) -> str:
        return self.name


class ClaimOutcome(models.TextChoices):
    WON = "won", _("中奖")
    GUARANTEED = "guaranteed", _("首扫必中")
    LOST = "lost", _("未中奖")
    SOLD_OUT = "sold_out", _("奖品已发完")
    PACED = "paced", _("预算匀速控制")


class ClaimStatus(models.TextChoices):
    OK = "ok", _("正常")
    HELD = "held", _("待审核")
    REJECTED = "rejected", _("已驳回")


class Claim(models.Model):
    """The draw of one inner code (盖内码): made once, whatever happens."""

    serial = models.BigIntegerField(_("瓶序号"), unique=True)
    member = models.ForeignKey(Member, on_delete=models.PROTECT, related_name="claims", verbose_name=_("会员"))
    campaign = models.ForeignKey(Campaign, on_delete=models.PROTECT, related_name="claims", verbose_name=_("活动"))
    scan_id = models.BigIntegerField(null=True, blank=True)
    ticket = models.PositiveIntegerField(_("抽奖号"))  # 0 .. ODDS_SCALE-1, derived from the seed
    prize = models.ForeignKey(Prize, null=True, blank=True, on_delete=models.PROTECT, verbose_name=_("奖项"))
    card = models.ForeignKey(
        "Card", null=True, blank=True, on_delete=models.PROTECT, related_name="+", verbose_name=_("卡片")
    )
    # The store the scan is tied to (the bottle's receiving store, or a store QR scanned at the till)
    # and the clerk who served, when one did (store rewards, rewards.services.store_rewards).
    store = models.ForeignKey(
        "commerce.Store", null=True, blank=True, on_delete=models.PROTECT, related_name="+", verbose_name=_("门店")
    )
    clerk = models.ForeignKey(
        "commerce.ChannelStaff",
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="+",
        verbose_name=_("店员"),
    )
    outcome = models.CharField(_("结果"), max_length=12, choices=ClaimOutcome.choices)
    status = models.CharField(_("审核"), max_length=10, choices=ClaimStatus.choices, default=ClaimStatus.OK)
    risk_reasons = models.JSONField(_("风险原因"), default=list, blank=True)
    region_code = models.CharField(_("地区"), max_length=6, blank=True)
    ip = models.GenericIPAddressField(null=True, blank=True)
    device = models.CharField(max_length=64, blank=True)
    created_at = models.DateTimeField(_("时间"), default=timezone.now, db_index=True)
    reviewed_at = models.DateTimeField(null=True, blank=True)
    reviewed_by = models.CharField(max_length=150, blank=True)

    class Meta:
        verbose_name = _("抽奖记录")
        verbose_name_plural = _("抽奖记录")
        ordering = ["-id"]
        indexes = [
            models.Index(fields=["member", "created_at"], name="claim_member_recent"),
            models.Index(fields=["campaign", "id"], name="claim_campaign"),
            # Velocity rules (rewards.risk): recent claims by address and by device.
            models.Index(fields=["ip", "created_at"], name="claim_ip_recent"),
            models.Index(fields=["device", "created_at"], name="claim_device_recent"),
            models.Index(fields=["status", "id"], condition=models.Q(status="held"), name="claim_held"),
        ]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(outcome__in=["won", "guaranteed"], prize__isnull=False)
                | models.Q(outcome__in=["lost", "sold_out", "paced"], prize__isnull=True),
                name="claim_prize_matches_outcome",
            )
        ]

    def __str__(self) -> str:
        return f"{self.serial}: {self.get_outcome_display()}"

    @property
    def won(self) -> bool:
        return self.prize_id is not None


class MemberCampaignCounter(models.Model):
    """A member's draws in a campaign, today and in all (for the per-member caps)."""

    member = models.ForeignKey(Member, on_delete=models.CASCADE)
    campaign = models.ForeignKey(Campaign, on_delete=models.CASCADE)
    day = models.DateField()
    day_count = models.PositiveIntegerField(default=0)
    total_count = models.PositiveIntegerField(default=0)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["member", "campaign"], name="counter_once_per_member")]

    def __str__(self) -> str:
        return f"{self.member_id}@{self.campaign_id}: {self.day_count}/{self.total_count}"


class BudgetEntry(models.Model):
    """One movement of a campaign's cash budget: + reserves (a cash prize awarded), - releases (a
    prize rejected or a payout that can never be made). Append-only, one per source."""

    campaign = models.ForeignKey(Campaign, on_delete=models.PROTECT, related_name="budget_entries")
    amount_fen = models.BigIntegerField()
    source = models.CharField(max_length=80)  # "claim:<id>", "release:<payout id>"
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        verbose_name = _("预算流水")
        verbose_name_plural = _("预算流水")
        constraints = [
            models.UniqueConstraint(fields=["campaign", "source"], name="budget_entry_once_per_source"),
            models.CheckConstraint(condition=~models.Q(amount_fen=0), name="budget_entry_not_zero"),
        ]

    def __str__(self) -> str:
        return f"{self.campaign_id} {self.amount_fen:+d} ({self.source})"


class PayoutStatus(models.TextChoices):
    PENDING = "pending", _("待发放")
    HELD = "held", _("风控暂缓")
    SUBMITTED = "submitted", _("待用户确认收款")
    SUCCEEDED = "succeeded", _("已到账")
    FAILED = "failed", _("发放失败")
    CANCELLED = "cancelled", _("已取消")


class Payout(models.Model):
    """A cash amount owed to a member, paid by a worker through WeChat Pay's merchant transfer.

    The outbox: created in the transaction that awards the prize; `out_bill_no` is fixed then, so
    every call to WeChat for it (first try, retries, queries) names the same bill and WeChat makes
    it at most once.
    """

    source = models.CharField(_("来源"), max_length=80, unique=True)  # "claim:<id>"
    claim = models.OneToOneField(Claim, null=True, blank=True, on_delete=models.PROTECT, related_name="payout")
    campaign = models.ForeignKey(Campaign, null=True, blank=True, on_delete=models.PROTECT, related_name="payouts")
    member = models.ForeignKey(Member, on_delete=models.PROTECT, related_name="payouts", verbose_name=_("会员"))
    openid = models.CharField(max_length=64)
    amount_fen = models.BigIntegerField(_("金额（分）"))
    remark = models.CharField(_("转账备注"), max_length=32)
    out_bill_no = models.CharField(_("商户单号"), max_length=32, unique=True)
    status = models.CharField(_("状态"), max_length=10, choices=PayoutStatus.choices, default=PayoutStatus.PENDING)
    attempts = models.PositiveIntegerField(_("尝试次数"), default=0)
    next_attempt_at = models.DateTimeField(_("下次尝试"), default=timezone.now)
    last_error = models.CharField(_("最近错误"), max_length=300, blank=True)
    transfer_bill_no = models.CharField(_("微信转账单号"), max_length=64, blank=True)
    package_info = models.TextField(blank=True)
    created_at = models.DateTimeField(_("创建时间"), default=timezone.now)
    submitted_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        verbose_name = _("红包发放")
        verbose_name_plural = _("红包发放")
        ordering = ["-id"]
        indexes = [
            models.Index(
                fields=["next_attempt_at"], condition=models.Q(status__in=["pending", "submitted"]), name="payout_due"
            )
        ]
        constraints = [models.CheckConstraint(condition=models.Q(amount_fen__gt=0), name="payout_positive")]

    def __str__(self) -> str:
        return f"{self.out_bill_no} ¥{self.amount_fen / 100:.2f}"


class RiskPolicy(SingletonModel):
    """The brand's risk rules (one row; every change is audited in the admin). A claim that trips any
    rule is held for review: drawn and counted, but its prize not paid or credited until staff approve
    it (rewards.services.claims.review). 0 turns a limit off."""

    member_claims_per_hour = models.PositiveIntegerField(_("同一会员每小时抽奖上限"), default=6)
    device_claims_per_hour = models.PositiveIntegerField(_("同一设备每小时抽奖上限"), default=10)
    ip_claims_per_hour = models.PositiveIntegerField(_("同一 IP 每小时抽奖上限"), default=30)
    new_member_minutes = models.PositiveIntegerField(_("新注册会员观察期（分钟）"), default=30)
    new_member_burst = models.PositiveIntegerField(_("同一 IP 观察期内新会员抽奖上限"), default=3)
    hold_outside_dealer_area = models.BooleanField(_("扫码地不在经销商授权区域时暂缓"), default=True)
    updated_at = models.DateTimeField(_("更新时间"), auto_now=True)

    class Meta:
        verbose_name = _("风控规则")
        verbose_name_plural = _("风控规则")
        constraints = [models.CheckConstraint(condition=models.Q(id=1), name="risk_policy_singleton")]

    def __str__(self) -> str:
        return str(_("风控规则"))


class BlockKind(models.TextChoices):
    OPENID = "openid", _("微信 OpenID")
    IP = "ip", _("IP 地址")
    DEVICE = "device", _("设备")


class BlockedItem(models.Model):
    """A known-bad account, address or device: its claims are held."""

    kind = models.CharField(_("类型"), max_length=8, choices=BlockKind.choices)
    value = models.CharField(_("值"), max_length=64)
    reason = models.CharField(_("原因"), max_length=200)
    created_at = models.DateTimeField(_("加入时间"), default=timezone.now)
    created_by = models.CharField(_("操作人"), max_length=150, blank=True)

    class Meta:
        verbose_name = _("风控名单")
        verbose_name_plural = _("风控名单")
        constraints = [models.UniqueConstraint(fields=["kind", "value"], name="blocked_item_once")]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} {self.value}"


class RedemptionStatus(models.TextChoices):
    ISSUED = "issued", _("待核销")
    REDEEMED = "redeemed", _("已核销")
    CANCELLED = "cancelled", _("已作废")


class Redemption(models.Model):
    """A physical prize's one-time redemption code (核销码): shown to the winner, entered by a store's
    staff in the terminal H5 when the prize is handed over. Redeemed once (a guarded update)."""

    # What won it: a draw's physical prize, or a full card set whose reward is physical.
    claim = models.OneToOneField(Claim, null=True, blank=True, on_delete=models.PROTECT, related_name="redemption")
    set_redemption = models.OneToOneField(
        "CardSetRedemption", null=True, blank=True, on_delete=models.PROTECT, related_name="redemption"
    )
    member = models.ForeignKey(Member, on_delete=models.PROTECT, related_name="redemptions")
    prize = models.ForeignKey(Prize, null=True, blank=True, on_delete=models.PROTECT, verbose_name=_("奖项"))
    prize_name = models.CharField(_("奖品名称"), max_length=60, blank=True)
    code = models.CharField(_("核销码"), max_length=12, unique=True)
    status = models.CharField(
        _("状态"), max_length=10, choices=RedemptionStatus.choices, default=RedemptionStatus.ISSUED
    )
    expires_at = models.DateTimeField(_("有效期至"))
    store = models.ForeignKey(
        "commerce.Store", null=True, blank=True, on_delete=models.PROTECT, verbose_name=_("核销门店")
    )
    redeemed_by = models.CharField(_("核销人"), max_length=150, blank=True)
    redeemed_at = models.DateTimeField(_("核销时间"), null=True, blank=True)
    created_at = models.DateTimeField(_("发放时间"), default=timezone.now)

    class Meta:
        verbose_name = _("奖品核销")
        verbose_name_plural = _("奖品核销")
        ordering = ["-id"]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(status="redeemed", redeemed_at__isnull=False) | ~models.Q(status="redeemed"),
                name="redemption_redeemed_has_time",
            ),
            models.CheckConstraint(
                condition=models.Q(claim__isnull=False, prize__isnull=False, set_redemption__isnull=True)
                | models.Q(claim__isnull=True, prize__isnull=True, set_redemption__isnull=False),
                name="redemption_one_origin",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.code} {self.get_status_display()}"

    @property
    def display_code(self) -> str:
        return f"{self.code[:4]}-{self.code[4:8]}-{self.code[8:]}"


class ReferralProgram(SingletonModel):
    """The brand's invite rules (one row): both sides earn points when the invitee's first verified
    scan (their first draw) happens; an inviter is rewarded for at most `max_per_inviter` invitees."""

    enabled = models.BooleanField(_("启用邀请有礼"), default=True)
    inviter_points = models.PositiveIntegerField(_("邀请人奖励酒币"), default=100)
    invitee_points = models.PositiveIntegerField(_("被邀请人奖励酒币"), default=50)
    max_per_inviter = models.PositiveIntegerField(_("每位邀请人奖励上限（人）"), default=20)
    accept_days = models.PositiveIntegerField(_("接受邀请后首次扫码期限（天）"), default=30)
    updated_at = models.DateTimeField(_("更新时间"), auto_now=True)

    class Meta:
        verbose_name = _("邀请有礼规则")
        verbose_name_plural = _("邀请有礼规则")
        constraints = [models.CheckConstraint(condition=models.Q(id=1), name="referral_program_singleton")]

    def __str__(self) -> str:
        return str(_("邀请有礼规则"))


class ReferralStatus(models.TextChoices):
    PENDING = "pending", _("待首次扫码")
    REWARDED = "rewarded", _("已奖励")
    CAPPED = "capped", _("邀请人已达上限")
    EXPIRED = "expired", _("已过期")


class Referral(models.Model):
    """Who invited whom: one inviter per invitee, made when the invitee accepts a share link."""

    inviter = models.ForeignKey(Member, on_delete=models.PROTECT, related_name="referrals_made")
    invitee = models.OneToOneField(Member, on_delete=models.PROTECT, related_name="referral")
    status = models.CharField(_("状态"), max_length=10, choices=ReferralStatus.choices, default=ReferralStatus.PENDING)
    created_at = models.DateTimeField(_("接受邀请时间"), default=timezone.now)
    rewarded_at = models.DateTimeField(_("奖励时间"), null=True, blank=True)
    claim = models.ForeignKey(Claim, null=True, blank=True, on_delete=models.PROTECT, related_name="+")

    class Meta:
        verbose_name = _("邀请记录")
        verbose_name_plural = _("邀请记录")
        ordering = ["-id"]
        indexes = [models.Index(fields=["inviter", "status"], name="referral_inviter_status")]
        constraints = [
            models.CheckConstraint(condition=~models.Q(inviter=models.F("invitee")), name="referral_not_self")
        ]

    def __str__(self) -> str:
        return f"{self.inviter_id} → {self.invitee_id}"


# --- card collecting (集卡) ----------------------------------------------------------------------


class CardSet(models.Model):
    """A set of cards (集卡套系): cards are won as prizes (PrizeKind.CARD, from any campaign whose
    prize table names the set) with rarity weights; a member holding every card of the set exchanges
    one of each for the set's reward until `exchange_ends_at`, at most `per_member_limit` times, and
    at most `reward_quantity` sets in all (a guarded update, like a prize). The set's cash is thus
    bounded by reward_quantity × reward_amount_fen, fixed when the set is made. Cards can be gifted
    between members within daily limits."""

    name = models.CharField(_("套系名称"), max_length=60)
    description = models.CharField(_("说明"), max_length=300, blank=True)
    reward_name = models.CharField(_("集齐奖励名称"), max_length=60)
    reward_kind = models.CharField(
        _("集齐奖励类型"), max_length=10, choices=[c for c in PrizeKind.choices if c[0] != PrizeKind.CARD]
    )
    reward_amount_fen = models.BigIntegerField(_("红包金额（分）"), default=0)
    reward_points = models.BigIntegerField(_("酒币数量"), default=0)
    reward_value_fen = models.BigIntegerField(_("奖品价值（分）"), default=0)
    reward_quantity = models.PositiveIntegerField(_("集齐奖励总数"))
    redeemed = models.PositiveIntegerField(_("已兑换"), default=0)
    per_member_limit = models.PositiveSmallIntegerField(_("每人可兑换次数"), default=1)
    gift_daily_limit = models.PositiveSmallIntegerField(_("每人每日可赠送张数"), default=3)
    receive_daily_limit = models.PositiveSmallIntegerField(_("每人每日可接收张数"), default=3)
    gift_expiry_hours = models.PositiveSmallIntegerField(_("赠送链接有效期（小时）"), default=48)
    exchange_ends_at = models.DateTimeField(_("兑换截止时间"))
    is_active = models.BooleanField(_("启用"), default=True)
    created_at = models.DateTimeField(_("创建时间"), default=timezone.now)

    class Meta:
        verbose_name = _("集卡套系")
        verbose_name_plural = _("集卡套系")
        ordering = ["-id"]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(redeemed__lte=models.F("reward_quantity")), name="card_set_within_quantity"
            ),
            models.CheckConstraint(condition=models.Q(per_member_limit__gte=1), name="card_set_member_limit"),
            models.CheckConstraint(
                condition=models.Q(
                    reward_kind="cash", reward_amount_fen__gt=0, reward_amount_fen__lte=MAX_PRIZE_FEN, reward_points=0
                )
                | models.Q(reward_kind="points", reward_points__gt=0, reward_amount_fen=0)
                | models.Q(
                    reward_kind="physical",
                    reward_value_fen__gt=0,
                    reward_value_fen__lte=MAX_PRIZE_FEN,
                    reward_amount_fen=0,
                    reward_points=0,
                ),
                name="card_set_reward_fields",
            ),
        ]

    def __str__(self) -> str:
        return self.name


class Card(models.Model):
    """One card of a set. Its rarity weight against the set's other cards decides how often a card
    prize gives it (weight / sum of the set's weights)."""

    card_set = models.ForeignKey(CardSet, on_delete=models.CASCADE, related_name="cards", verbose_name=_("套系"))
    name = models.CharField(_("卡片名称"), max_length=30)
    weight = models.PositiveIntegerField(_("稀有度权重"), default=100)
    position = models.PositiveSmallIntegerField(_("排序"), default=0)

    class Meta:
        verbose_name = _("卡片")
        verbose_name_plural = _("卡片")
        ordering = ["card_set", "position", "id"]
        constraints = [
            models.CheckConstraint(condition=models.Q(weight__gte=1), name="card_weight_positive"),
            models.UniqueConstraint(fields=["card_set", "name"], name="card_name_once_per_set"),
        ]

    def __str__(self) -> str:
        return self.name


class CardHolding(models.Model):
    """How many of a card a member holds now: moved only with a CardEntry (rewards.services.cards),
    never below zero."""

    member = models.ForeignKey(Member, on_delete=models.CASCADE, related_name="card_holdings")
    card = models.ForeignKey(Card, on_delete=models.PROTECT, related_name="holdings")
    count = models.PositiveIntegerField(default=0)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["member", "card"], name="card_holding_once")]

    def __str__(self) -> str:
        return f"{self.member_id}: {self.card_id} × {self.count}"


class CardEntry(models.Model):
    """One movement of a member's cards (append-only, one per member, card and source): +1 won
    ("claim:<id>"), -1/+1 gifted ("gift:<id>", "gift-back:<id>"), -1 exchanged ("set:<id>")."""

    member = models.ForeignKey(Member, on_delete=models.CASCADE, related_name="card_entries")
    card = models.ForeignKey(Card, on_delete=models.PROTECT, related_name="+")
    delta = models.SmallIntegerField()
    source = models.CharField(max_length=40)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        verbose_name = _("卡片流水")
        verbose_name_plural = _("卡片流水")
        constraints = [
            models.UniqueConstraint(fields=["member", "card", "source"], name="card_entry_once_per_source"),
            models.CheckConstraint(condition=models.Q(delta__in=[-1, 1]), name="card_entry_unit"),
        ]
        indexes = [models.Index(fields=["member", "created_at"], name="card_entry_member_recent")]

    def __str__(self) -> str:
        return f"{self.member_id} {self.card_id} {self.delta:+d} ({self.source})"


class CardGiftStatus(models.TextChoices):
    PENDING = "pending", _("待领取")
    ACCEPTED = "accepted", _("已领取")
    CANCELLED = "cancelled", _("已撤回")
    EXPIRED = "expired", _("已过期")


class CardGift(models.Model):
    """A card on its way from one member to another: taken from the sender when the gift link is
    made, given to whoever accepts it first, or back to the sender when cancelled or expired."""

    card = models.ForeignKey(Card, on_delete=models.PROTECT, related_name="+", verbose_name=_("卡片"))
    sender = models.ForeignKey(Member, on_delete=models.CASCADE, related_name="card_gifts_sent")
    receiver = models.ForeignKey(
        Member, null=True, blank=True, on_delete=models.CASCADE, related_name="card_gifts_received"
    )
    token = models.CharField(max_length=43, unique=True)
    status = models.CharField(_("状态"), max_length=10, choices=CardGiftStatus.choices, default=CardGiftStatus.PENDING)
    created_at = models.DateTimeField(_("赠送时间"), default=timezone.now)
    expires_at = models.DateTimeField(_("有效期至"))
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        verbose_name = _("卡片赠送")
        verbose_name_plural = _("卡片赠送")
        ordering = ["-id"]
        indexes = [
            models.Index(fields=["sender", "created_at"], name="card_gift_sender_recent"),
            models.Index(fields=["receiver", "finished_at"], name="card_gift_receiver_recent"),
            models.Index(fields=["expires_at"], condition=models.Q(status="pending"), name="card_gift_pending"),
        ]
        constraints = [
            models.CheckConstraint(condition=~models.Q(sender=models.F("receiver")), name="card_gift_not_self"),
            models.CheckConstraint(
                condition=models.Q(status="accepted", receiver__isnull=False)
                | (~models.Q(status="accepted") & models.Q(receiver__isnull=True)),
                name="card_gift_receiver_when_accepted",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.card_id}: {self.sender_id} → {self.receiver_id or '?'}"


class CardSetRedemption(models.Model):
    """A full set exchanged for the set's reward: the member's n-th of the set (1 ≤ n ≤ the set's
    per-member limit), so a set cannot be exchanged twice in a race."""

    card_set = models.ForeignKey(CardSet, on_delete=models.PROTECT, related_name="redemptions")
    member = models.ForeignKey(Member, on_delete=models.PROTECT, related_name="card_set_redemptions")
    number = models.PositiveSmallIntegerField()
    created_at = models.DateTimeField(_("兑换时间"), default=timezone.now)

    class Meta:
        verbose_name = _("集齐兑换")
        verbose_name_plural = _("集齐兑换")
        ordering = ["-id"]
        constraints = [
            models.UniqueConstraint(fields=["card_set", "member", "number"], name="card_set_redemption_once"),
            models.CheckConstraint(condition=models.Q(number__gte=1), name="card_set_redemption_number"),
        ]

    def __str__(self) -> str:
        return f"{self.card_set_id} #{self.number} by {self.member_id}"


# --- store rewards (开瓶奖励, BC 联动) -------------------------------------------------------------


class StoreRewardPolicy(SingletonModel):
    """The brand's store rewards (one row). 0 turns a reward off.

    - Opening reward (开瓶奖励): a consumer's draw tied to a store (the bottle was received there, or
      the consumer scanned the store's or a clerk's QR at the till within `qr_minutes`) earns the store
      `store_opening_fen` and the clerk who served `clerk_opening_fen`, once per bottle.
    - Clerk scan (服务员扫码): a store's clerk scans an opened cap's inner code in the terminal and
      earns `clerk_scan_fen`, once per bottle, at most `clerk_scans_per_day` a day.
    - Earnings are a ledger per store (and per clerk); a withdrawal of at least `min_withdrawal_fen`
      is requested in the terminal and decided by the brand's finance."""

    enabled = models.BooleanField(_("启用门店奖励"), default=True)
    store_opening_fen = models.PositiveIntegerField(_("门店开瓶奖励（分/瓶）"), default=100)
    clerk_opening_fen = models.PositiveIntegerField(_("店员开瓶奖励（分/瓶）"), default=50)
    clerk_scan_fen = models.PositiveIntegerField(_("服务员扫码奖励（分/瓶）"), default=100)
    clerk_scans_per_day = models.PositiveIntegerField(_("每位服务员每日扫码奖励上限（瓶）"), default=50)
    qr_minutes = models.PositiveIntegerField(_("扫门店码后关联时长（分钟）"), default=30)
    min_withdrawal_fen = models.PositiveIntegerField(_("最低提现金额（分）"), default=1000)
    updated_at = models.DateTimeField(_("更新时间"), auto_now=True)

    class Meta:
        verbose_name = _("门店奖励规则")
        verbose_name_plural = _("门店奖励规则")
        constraints = [models.CheckConstraint(condition=models.Q(id=1), name="store_reward_policy_singleton")]

    def __str__(self) -> str:
        return str(_("门店奖励规则"))


class StoreEarningKind(models.TextChoices):
    OPENING = "opening", _("开瓶奖励")
    CLERK_SCAN = "clerk_scan", _("服务员扫码")
    WITHDRAWAL = "withdrawal", _("提现")
    WITHDRAWAL_BACK = "withdrawal_back", _("提现退回")
    ADJUSTMENT = "adjustment", _("人工调整")


class StoreEarning(models.Model):
    """One movement of a store's (clerk null) or a clerk's earnings: append-only, one per source
    ("opening:<serial>", "clerk-scan:<serial>", "withdrawal:<id>", ...). The balance of an account
    is the sum of its entries, never below zero (checked under the account's row lock)."""

    store = models.ForeignKey("commerce.Store", on_delete=models.PROTECT, related_name="earnings")
    clerk = models.ForeignKey(
        "commerce.ChannelStaff", null=True, blank=True, on_delete=models.PROTECT, related_name="earnings"
    )
    kind = models.CharField(_("类型"), max_length=16, choices=StoreEarningKind.choices)
    amount_fen = models.BigIntegerField(_("金额（分）"))
    source = models.CharField(_("来源"), max_length=40)
    serial = models.BigIntegerField(_("瓶序号"), null=True, blank=True)
    claim = models.ForeignKey(Claim, null=True, blank=True, on_delete=models.PROTECT, related_name="+")
    note = models.CharField(_("备注"), max_length=200, blank=True)
    created_at = models.DateTimeField(_("时间"), default=timezone.now)

    class Meta:
        verbose_name = _("门店收益流水")
        verbose_name_plural = _("门店收益流水")
        ordering = ["-id"]
        constraints = [
            # One entry per source and account (the store's and its clerk's share of one opening
            # are two accounts).
            models.UniqueConstraint(
                fields=["store", "source"], condition=models.Q(clerk__isnull=True), name="store_earning_once"
            ),
            models.UniqueConstraint(
                fields=["clerk", "source"], condition=models.Q(clerk__isnull=False), name="clerk_earning_once"
            ),
            # A bottle earns one clerk scan (服务员扫码), whichever clerk scans it first.
            models.UniqueConstraint(
                fields=["serial"], condition=models.Q(kind="clerk_scan"), name="clerk_scan_once_per_bottle"
            ),
            models.CheckConstraint(condition=~models.Q(amount_fen=0), name="store_earning_not_zero"),
        ]
        indexes = [
            models.Index(fields=["store", "clerk", "created_at"], name="store_earning_account"),
            models.Index(fields=["clerk", "kind", "created_at"], name="store_earning_clerk_kind"),
        ]

    def __str__(self) -> str:
        return f"{self.store_id}/{self.clerk_id or '-'} {self.amount_fen:+d} ({self.source})"


class WithdrawalStatus(models.TextChoices):
    REQUESTED = "requested", _("待审核")
    APPROVED = "approved", _("已批准，待打款")
    PAID = "paid", _("已打款")
    REJECTED = "rejected", _("已驳回")


class StoreWithdrawal(models.Model):
    """A store's (clerk null) or a clerk's request to withdraw earnings: the amount leaves the balance
    when requested (an entry "withdrawal:<id>") and comes back if rejected ("withdrawal-back:<id>")."""

    store = models.ForeignKey("commerce.Store", on_delete=models.PROTECT, related_name="withdrawals")
    clerk = models.ForeignKey(
        "commerce.ChannelStaff", null=True, blank=True, on_delete=models.PROTECT, related_name="withdrawals"
    )
    amount_fen = models.BigIntegerField(_("金额（分）"))
    status = models.CharField(
        _("状态"), max_length=10, choices=WithdrawalStatus.choices, default=WithdrawalStatus.REQUESTED
    )
    requested_by = models.CharField(_("申请人"), max_length=150)
    decided_by = models.CharField(_("审核人"), max_length=150, blank=True)
    reference = models.CharField(_("打款凭证号"), max_length=64, blank=True)
    reason = models.CharField(_("驳回原因"), max_length=200, blank=True)
    created_at = models.DateTimeField(_("申请时间"), default=timezone.now)
    decided_at = models.DateTimeField(_("审核时间"), null=True, blank=True)
    paid_at = models.DateTimeField(_("打款时间"), null=True, blank=True)

    class Meta:
        verbose_name = _("门店提现")
        verbose_name_plural = _("门店提现")
        ordering = ["-id"]
        constraints = [models.CheckConstraint(condition=models.Q(amount_fen__gt=0), name="withdrawal_positive")]

    def __str__(self) -> str:
        return f"{self.store_id}/{self.clerk_id or '-'} ¥{self.amount_fen / 100:.2f} {self.get_status_display()}"
