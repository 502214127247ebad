"""Claiming an inner code: the draw, the prize it takes, and what the prize sets in motion.

`claim(member, context)` runs in one transaction:
1. the Claim row is inserted after steps 2-4, with its outcome: its unique serial makes a second
   claim of the same cap wait for the first and then fail (ALREADY_CLAIMED), undoing everything
   that claim did, so a cap is drawn and rewarded at most once;
2. the member's counters for the campaign are raised under the caps (a guarded UPDATE; over a cap
   the whole claim is undone and the cap stays claimable another day);
3. the ticket is derived from the campaign's seed (rewards.draw) and the prize it draws is taken:
   one unit of the prize's quantity and, for cash, the amount from the campaign's budget, each by a
   guarded UPDATE, so under any concurrency neither goes over. Cash also obeys pacing: at any moment
   at most (elapsed share of the campaign + slack) of the budget is reserved. A prize that cannot be
   taken leaves the draw empty-handed (SOLD_OUT / PACED), as the rules state;
4. a member's first draw in a first-scan-guarantee campaign that won nothing takes the guarantee
   prize instead (if it can be taken);
5. the prize's effect: cash → a BudgetEntry and a Payout (paid after commit by the worker), points →
   a ledger credit (commerce.services.points, source "claim:<id>").
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from django.db import IntegrityError, transaction
from django.db.models import F
from django.utils import timezone
from django.utils.translation import gettext as _

from commerce.models import Dealer, Member, PointsEntry, PointsKind
from commerce.services import points
from rewards import draw, risk, selectors
from rewards.errors import RewardErrorCode as E
from rewards.models import (
    BudgetEntry,
    Campaign,
    Card,
    Claim,
    ClaimOutcome,
    ClaimStatus,
    Payout,
    Prize,
    PrizeKind,
    Redemption,
)
from rewards.services import campaigns, payouts
from tenants.db import prepared
from tenants.errors import Conflict, JiumaError


@dataclass(frozen=True)
class ClaimContext:
    """The scan of an inner code, as codes/ recorded it."""

    serial: int
    scan_id: int | None = None
    batch_id: int | None = None
    sku_id: int | None = None
    region_code: str = ""
    dealer_id: int | None = None
    ip: str | None = None
    device: str = ""
    # The store the scan is tied to and the clerk who served (rewards.services.store_rewards.tie_of).
    store_id: int | None = None
    clerk_id: int | None = None


@dataclass(frozen=True)
class ClaimResult:
    claim: Claim
    prize: Prize | None
    payout: Payout | None = None
    points_entry: PointsEntry | None = None
    redemption: Redemption | None = None
    card: Card | None = None


def allowed_spend(campaign: Campaign, now: datetime) -> int:
    """How much of the budget may be reserved by `now` (pacing: the elapsed share plus the slack)."""
    if not campaign.pacing:
        return campaign.budget_fen
    duration = (campaign.ends_at - campaign.starts_at).total_seconds()
    elapsed = max(0.0, (now - campaign.starts_at).total_seconds())
    share = min(1.0, elapsed / duration + campaign.pacing_slack_percent / 100)
    return min(campaign.budget_fen, int(campaign.budget_fen * share))


# The guarded updates of a draw, as raw SQL (they run on every winning draw; the ORM's update()
# costs several times the round trip): one unit of a prize under its quantity, and an amount of
# the budget under the limit pacing allows.
_TAKE_UNIT = "UPDATE rewards_prize SET awarded = awarded + 1 WHERE id = %s AND awarded < quantity"
_TAKE_BUDGET = "UPDATE rewards_campaign SET spent_fen = spent_fen + %s WHERE id = %s AND spent_fen <= %s"


def _guarded(sql: str, params: list[object]) -> bool:
    with prepared(sql, params) as cursor:
        return bool(cursor.rowcount)


def _take(campaign: Campaign, prize: Prize, now: datetime) -> ClaimOutcome | None:
    """Take one unit of the prize (and its cash from the budget); None if taken, else why not."""
    if not _guarded(_TAKE_UNIT, [prize.pk]):
        return ClaimOutcome.SOLD_OUT
    if prize.kind == PrizeKind.CASH:
        limit = allowed_spend(campaign, now) - prize.amount_fen
        reserved = _guarded(_TAKE_BUDGET, [prize.amount_fen, campaign.pk, limit])
        if not reserved:
            Prize.objects.filter(pk=prize.pk).update(awarded=F("awarded") - 1)
            spent = Campaign.objects.filter(pk=campaign.pk).values_list("spent_fen", flat=True).get()
            return ClaimOutcome.SOLD_OUT if spent + prize.amount_fen > campaign.budget_fen else ClaimOutcome.PACED
    return None


# The member's counters raised under the caps in one statement: a first draw inserts the row; later
# ones update it only while under the caps (a new day starts the daily count again). No row back:
# a cap is reached.
_COUNT = """
INSERT INTO rewards_membercampaigncounter (member_id, campaign_id, day, day_count, total_count)
VALUES (%(member)s, %(campaign)s, %(today)s, 1, 1)
ON CONFLICT (member_id, campaign_id) DO UPDATE SET
    day_count = CASE WHEN rewards_membercampaigncounter.day = EXCLUDED.day
                     THEN rewards_membercampaigncounter.day_count + 1 ELSE 1 END,
    day = EXCLUDED.day,
    total_count = rewards_membercampaigncounter.total_count + 1
WHERE (%(total_cap)s = 0 OR rewards_membercampaigncounter.total_count < %(total_cap)s)
  AND (%(daily_cap)s = 0 OR rewards_membercampaigncounter.day <> EXCLUDED.day
       OR rewards_membercampaigncounter.day_count < %(daily_cap)s)
RETURNING total_count
"""


def _count(member: Member, campaign: Campaign, now: datetime) -> int:
    """Raise the member's counters under the caps; returns their total draws (this one included)."""
    with prepared(
        _COUNT,
        {
            "member": member.pk,
            "campaign": campaign.pk,
            "today": timezone.localdate(now),
            "total_cap": campaign.member_total_cap,
            "daily_cap": campaign.member_daily_cap,
        },
    ) as cursor:
        row = cursor.fetchone()
    if row is None:
        raise Conflict(E.CAP_REACHED, _("您今天的抽奖次数已用完，请明天再来。"))
    return int(row[0])


def claim(member: Member, context: ClaimContext, *, now: datetime | None = None) -> ClaimResult:
    """Draw the inner code of `context` for `member` (see the module doc)."""
    now = now or timezone.now()
    if member.is_erased or not member.openid:
        raise JiumaError(E.NOT_IDENTIFIED, _("请先登录。"), status=401)
    campaign = selectors.campaign_for(
        now=now,
        batch_id=context.batch_id,
        sku_id=context.sku_id,
        region_code=context.region_code,
        dealer_id=context.dealer_id,
    )
    if campaign is None:
        raise JiumaError(E.NO_CAMPAIGN, _("当前没有进行中的扫码活动，感谢您的支持。"), status=404)
    dealer = Dealer.objects.filter(pk=context.dealer_id).first() if context.dealer_id is not None else None
    reasons = risk.assess(
        member, ip=context.ip, device=context.device, region_code=context.region_code, dealer=dealer, now=now
    )
    ticket = draw.ticket(campaigns.seed_of(campaign), campaign.pk, context.serial)
    table = campaigns.prize_table(campaign)
    try:
        with transaction.atomic():
            draws = _count(member, campaign, now)
            prize_id = draw.prize_for(ticket, table)
            prize = campaigns.prizes_of(campaign).get(prize_id) if prize_id is not None else None
            outcome = ClaimOutcome.WON if prize is not None else ClaimOutcome.LOST
            if prize is not None:
                refused = _take(campaign, prize, now)
                if refused is not None:
                    outcome, prize = refused, None
            if prize is None and campaign.first_scan_guarantee and draws == 1:
                guarantee = next((p for p in campaigns.prizes_of(campaign).values() if p.is_guarantee), None)
                if guarantee is not None and _take(campaign, guarantee, now) is None:
                    outcome, prize = ClaimOutcome.GUARANTEED, guarantee
            # Inserted last, with its outcome: a second claim of the same cap fails here on the
            # unique serial and the whole transaction (counters, prize unit, budget) is undone.
            record = Claim.objects.create(
                serial=context.serial,
                member=member,
                campaign=campaign,
                scan_id=context.scan_id,
                ticket=ticket,
                prize=prize,
                outcome=outcome,
                status=ClaimStatus.HELD if reasons else ClaimStatus.OK,
                risk_reasons=reasons,
                region_code=context.region_code,
                ip=context.ip or None,
                device=context.device[:64],
                store_id=context.store_id,
                clerk_id=context.clerk_id,
                created_at=now,
            )
            if draws == 1 and not reasons:  # a first draw in this campaign: maybe an invitee's first scan
                from rewards.services import referrals

                referrals.on_first_claim(member, record, now=now)
            if record.store_id is not None and not reasons:
                from rewards.services import store_rewards

                store_rewards.on_claim(record, now=now)
            return _effects(member, campaign, record, prize, now)
    except IntegrityError as exc:
        if Claim.objects.filter(serial=context.serial).exists():
            raise Conflict(E.ALREADY_CLAIMED, _("这个瓶盖的奖励已经领取过了。")) from exc
        raise


def _effects(member: Member, campaign: Campaign, record: Claim, prize: Prize | None, now: datetime) -> ClaimResult:
    if prize is None:
        return ClaimResult(claim=record, prize=None)
    source = f"claim:{record.pk}"
    if prize.kind == PrizeKind.CASH:
        BudgetEntry.objects.create(campaign=campaign, amount_fen=prize.amount_fen, source=source, created_at=now)
        payout = payouts.create(
            source,
            member=member,
            amount_fen=prize.amount_fen,
            remark=campaign.name,
            now=now,
            claim=record,
            campaign=campaign,
            held=record.status == ClaimStatus.HELD,
        )
        return ClaimResult(claim=record, prize=prize, payout=payout)
    if prize.kind == PrizeKind.POINTS:
        if record.status == ClaimStatus.HELD:  # credited when staff approve the claim (review)
            return ClaimResult(claim=record, prize=prize)
        entry = points.credit(
            member.pk,
            prize.points,
            kind=PointsKind.SCAN,
            source=source,
            note=f"{campaign.name} · {prize.name}",
            now=now,
        )
        return ClaimResult(claim=record, prize=prize, points_entry=entry)
    if prize.kind == PrizeKind.PHYSICAL and record.status != ClaimStatus.HELD:
        from rewards.services import redemptions

        record.campaign = campaign
        record.prize = prize
        return ClaimResult(claim=record, prize=prize, redemption=redemptions.issue(record, now=now))
    if prize.kind == PrizeKind.CARD:
        from rewards.services import cards

        # The card is picked now (the claim shows it, held or not); it joins the member's cards
        # when the claim is not held, or when staff approve it (review).
        card = cards.on_card_prize(record, prize, now=now)
        return ClaimResult(claim=record, prize=prize, card=card)
    return ClaimResult(claim=record, prize=prize)


def existing_claim(serial: int) -> Claim | None:
    return Claim.objects.select_related("prize", "campaign", "redemption").filter(serial=serial).first()


def review(record: Claim, *, approve: bool, actor: str, now: datetime | None = None) -> Claim:
    """Staff decide on a held claim: approved, its prize is paid or credited as if never held;
    rejected, nothing is paid and the prize unit (and cash) go back to the campaign."""
    now = now or timezone.now()
    with transaction.atomic():
        locked = Claim.objects.select_for_update(of=("self",)).select_related("prize", "campaign").get(pk=record.pk)
        if locked.status != ClaimStatus.HELD:
            raise Conflict("claim_not_held", _("该抽奖记录不在待审核状态。"))
        payout = Payout.objects.filter(claim=locked).first()
        if payout is not None:
            (payouts.approve if approve else payouts.reject)(payout, actor=actor, now=now)
        else:
            status = ClaimStatus.OK if approve else ClaimStatus.REJECTED
            Claim.objects.filter(pk=locked.pk).update(status=status, reviewed_at=now, reviewed_by=actor)
            prize = locked.prize
            if prize is not None and approve and prize.kind == PrizeKind.POINTS:
                points.credit(
                    locked.member_id,
                    prize.points,
                    kind=PointsKind.SCAN,
                    source=f"claim:{locked.pk}",
                    note=f"{locked.campaign.name} · {prize.name}",
                    now=now,
                )
            if prize is not None and approve and prize.kind == PrizeKind.PHYSICAL:
                from rewards.services import redemptions

                redemptions.issue(locked, now=now)
            if prize is not None and approve and prize.kind == PrizeKind.CARD:
                from rewards.services import cards

                cards.on_claim_approved(locked, now=now)
            if prize is not None and not approve:
                Prize.objects.filter(pk=prize.pk, awarded__gt=0).update(awarded=F("awarded") - 1)
        if approve and locked.store_id is not None:
            from rewards.services import store_rewards

            store_rewards.on_claim(locked, now=now)
    locked.refresh_from_db()
    return locked
