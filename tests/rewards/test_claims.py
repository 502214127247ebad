"""Claiming inner codes: one draw per cap, prizes and budget exact under concurrency, caps, pacing,
the first-scan guarantee, overlapping campaigns, and draws anyone can re-check after the end."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from django.db.models import Sum
from django.utils import timezone

from commerce.models import Member
from rewards import selectors
from rewards.models import BudgetEntry, Campaign, Claim, ClaimOutcome, MemberCampaignCounter, Payout, Prize
from rewards.services import campaigns, claims
from rewards.services.campaigns import PrizeSpec
from rewards.services.claims import ClaimContext
from tenants.errors import JiumaError
from tests.conftest import Brand
from tests.rewards.conftest import member, remove_campaign, running_campaign
from tests.support.threads import run_concurrently


def cash(amount_fen: int = 200, odds_ppm: int = 1_000_000, quantity: int = 100, **fields: Any) -> PrizeSpec:
    return PrizeSpec(
        name=f"{amount_fen / 100:g}元红包",
        kind="cash",
        amount_fen=amount_fen,
        odds_ppm=odds_ppm,
        quantity=quantity,
        **fields,
    )


def test_a_winning_cap_reserves_the_budget_and_queues_one_payout(in_alpha: Brand) -> None:
    campaign = running_campaign([cash(200)])
    result = claims.claim(member(), ClaimContext(serial=1001))
    assert result.claim.outcome == ClaimOutcome.WON
    assert result.payout is not None
    assert result.payout.amount_fen == 200
    assert result.payout.out_bill_no == f"JM{in_alpha.tenant.number:05d}C{result.claim.pk:015d}"
    campaign.refresh_from_db()
    assert campaign.spent_fen == 200
    assert BudgetEntry.objects.get(campaign=campaign).source == f"claim:{result.claim.pk}"


def test_a_cap_is_drawn_once_whoever_scans_it_again(in_alpha: Brand) -> None:
    running_campaign([cash(200)])
    claims.claim(member("o-1"), ClaimContext(serial=7))
    for who in ("o-1", "o-2"):
        with pytest.raises(JiumaError) as again:
            claims.claim(Member.objects.get_or_create(openid=who)[0], ClaimContext(serial=7))
        assert again.value.code == "code_already_claimed"
        assert again.value.status_code == 409
    assert Claim.objects.count() == 1
    assert Payout.objects.count() == 1


def test_a_points_prize_lands_in_the_ledger_once(in_alpha: Brand) -> None:
    running_campaign([PrizeSpec(name="50酒币", kind="points", points=50, odds_ppm=1_000_000, quantity=10)])
    someone = member()
    result = claims.claim(someone, ClaimContext(serial=5))
    assert result.points_entry is not None
    assert result.points_entry.source == f"claim:{result.claim.pk}"
    someone.refresh_from_db()
    assert someone.points_balance == 50


def test_without_a_matching_campaign_nothing_is_drawn(in_alpha: Brand) -> None:
    running_campaign([cash()], target_region_codes=["520000"], target_batch_ids=[99])
    for context in (
        ClaimContext(serial=1, batch_id=99, region_code="310000"),  # wrong region
        ClaimContext(serial=2, batch_id=98, region_code="520100"),  # wrong batch
        ClaimContext(serial=3, batch_id=99, region_code=""),  # place unknown
    ):
        with pytest.raises(JiumaError) as none:
            claims.claim(member(f"o-{context.serial}"), context)
        assert none.value.code == "no_running_campaign"
    assert claims.claim(member("o-4"), ClaimContext(serial=4, batch_id=99, region_code="520102")).claim.won


def test_overlapping_campaigns_the_higher_priority_one_applies(in_alpha: Brand) -> None:
    low = running_campaign([cash(100)], name="常规活动", priority=0)
    high = running_campaign([cash(500)], name="节日加码", priority=10)
    assert claims.claim(member(), ClaimContext(serial=1)).claim.campaign_id == high.pk
    Campaign.objects.filter(pk=high.pk).update(ends_at=timezone.now())
    selectors.forget_campaigns()  # other processes see a changed window within PUBLISHED_CACHE_SECONDS
    assert claims.claim(member("o-b"), ClaimContext(serial=2)).claim.campaign_id == low.pk


def test_a_sold_out_prize_leaves_the_draw_empty_handed(in_alpha: Brand) -> None:
    running_campaign([cash(quantity=1)])
    assert claims.claim(member("o-a"), ClaimContext(serial=1)).claim.outcome == ClaimOutcome.WON
    later = claims.claim(member("o-b"), ClaimContext(serial=2))
    assert later.claim.outcome == ClaimOutcome.SOLD_OUT
    assert later.payout is None


def test_pacing_keeps_the_budget_for_the_rest_of_the_campaign(in_alpha: Brand) -> None:
    campaign = running_campaign([cash(100)], budget_fen=10_000, pacing_slack_percent=0)
    now = timezone.now()
    # 1% of the campaign has passed: 100 fen may be reserved, no more.
    Campaign.objects.filter(pk=campaign.pk).update(
        starts_at=now - timedelta(hours=1), ends_at=now + timedelta(hours=99)
    )
    assert claims.claim(member("o-a"), ClaimContext(serial=1), now=now).claim.outcome == ClaimOutcome.WON
    assert claims.claim(member("o-b"), ClaimContext(serial=2), now=now).claim.outcome == ClaimOutcome.PACED
    assert Prize.objects.get(campaign=campaign).awarded == 1  # the paced draw gave its unit back
    # Half-way through, half the budget is open.
    halfway = now + timedelta(hours=49)
    assert claims.claim(member("o-c"), ClaimContext(serial=3), now=halfway).claim.outcome == ClaimOutcome.WON


def test_the_first_scan_guarantee_pays_a_members_first_draw_only(in_alpha: Brand) -> None:
    guarantee = PrizeSpec(name="首扫红包", kind="cash", amount_fen=100, odds_ppm=0, quantity=10, is_guarantee=True)
    running_campaign([guarantee], first_scan_guarantee=True)
    someone = member()
    first = claims.claim(someone, ClaimContext(serial=1))
    assert first.claim.outcome == ClaimOutcome.GUARANTEED
    assert first.payout is not None
    assert claims.claim(someone, ClaimContext(serial=2)).claim.outcome == ClaimOutcome.LOST


def test_member_caps_refuse_the_extra_draw_and_leave_the_cap_claimable(in_alpha: Brand) -> None:
    campaign = running_campaign([cash()], member_daily_cap=2, member_total_cap=3)
    someone = member()
    claims.claim(someone, ClaimContext(serial=1))
    claims.claim(someone, ClaimContext(serial=2))
    with pytest.raises(JiumaError) as capped:
        claims.claim(someone, ClaimContext(serial=3))
    assert capped.value.code == "member_cap_reached"
    assert not Claim.objects.filter(serial=3).exists()
    # Tomorrow the third draw is allowed; the fourth hits the total cap.
    MemberCampaignCounter.objects.filter(member=someone, campaign=campaign).update(
        day=timezone.localdate() - timedelta(days=1)
    )
    assert claims.claim(someone, ClaimContext(serial=3)).claim.won
    MemberCampaignCounter.objects.filter(member=someone, campaign=campaign).update(
        day=timezone.localdate() - timedelta(days=1)
    )
    with pytest.raises(JiumaError):
        claims.claim(someone, ClaimContext(serial=4))


def test_an_erased_member_cannot_draw(in_alpha: Brand) -> None:
    running_campaign([cash()])
    gone = Member.objects.create(openid=None, erased_at=timezone.now())
    with pytest.raises(JiumaError) as refused:
        claims.claim(gone, ClaimContext(serial=1))
    assert refused.value.status_code == 401


def test_every_draw_is_recomputed_from_the_revealed_seed(in_alpha: Brand) -> None:
    campaign = running_campaign(
        [
            cash(500, odds_ppm=100_000, quantity=1000),
            PrizeSpec(name="10酒币", kind="points", points=10, odds_ppm=300_000, quantity=1000),
        ]
    )
    someone = member()
    Campaign.objects.filter(pk=campaign.pk).update(member_daily_cap=0)
    for serial in range(60):
        claims.claim(someone, ClaimContext(serial=10_000 + serial))
    ended = campaigns.end(campaign, now=campaign.ends_at)
    rows = campaigns.audit_rows(ended)
    assert len(rows) == 60
    assert all(row["ticket"] == row["recomputed_ticket"] for row in rows)
    assert all(row["drawn_prize"] == row["prize"] for row in rows if row["outcome"] == "won")
    assert {row["outcome"] for row in rows} <= {"won", "lost"}


# --- concurrency: committed in separate connections, cleaned up after ---------------------------


# Up to 50 connections each: one xdist worker runs them one after the other, so the suite stays
# under PostgreSQL's default limit of 100 connections.
many_connections = pytest.mark.xdist_group("many_connections")


@many_connections
def test_two_hundred_concurrent_claims_take_exactly_the_hundred_prizes(alpha: Brand) -> None:
    def setup() -> tuple[int, list[int]]:
        campaign = running_campaign([cash(300, quantity=100)], budget_fen=1_000_000)
        return campaign.pk, [Member.objects.create(openid=f"o-race-{n}").pk for n in range(200)]

    ((campaign_id, member_ids),) = run_concurrently([setup], tenant=alpha.tenant)
    try:
        # 40 connections at once (the server's connection limit is shared with the rest of the suite),
        # each claiming 5 caps back to back: 200 claims interleaved over the same 100 prizes.
        def claimer(first: int) -> list[Any]:
            results: list[Any] = []
            for n in range(first, 200, 40):
                try:
                    results.append(claims.claim(Member.objects.get(pk=member_ids[n]), ClaimContext(serial=50_000 + n)))
                except JiumaError as exc:
                    results.append(exc)
            return results

        outcomes = [
            o
            for batch in run_concurrently([lambda f=f: claimer(f) for f in range(40)], tenant=alpha.tenant)
            for o in (batch if isinstance(batch, list) else [batch])
        ]
        assert len(outcomes) == 200
        assert not [o for o in outcomes if isinstance(o, BaseException)], outcomes[:3]

        def totals() -> dict[str, Any]:
            return {
                "won": Claim.objects.filter(campaign_id=campaign_id, outcome="won").count(),
                "sold_out": Claim.objects.filter(campaign_id=campaign_id, outcome="sold_out").count(),
                "awarded": Prize.objects.get(campaign_id=campaign_id).awarded,
                "spent": Campaign.objects.get(pk=campaign_id).spent_fen,
                "ledger": BudgetEntry.objects.filter(campaign_id=campaign_id).aggregate(s=Sum("amount_fen"))["s"],
                "payouts": Payout.objects.filter(campaign_id=campaign_id).count(),
            }

        ((found,),) = [run_concurrently([totals], tenant=alpha.tenant)]
        assert found == {"won": 100, "sold_out": 100, "awarded": 100, "spent": 30_000, "ledger": 30_000, "payouts": 100}
    finally:
        run_concurrently([lambda: remove_campaign(campaign_id, member_ids)], tenant=alpha.tenant)


@many_connections
def test_fifty_concurrent_scans_of_one_inner_code_pay_once(alpha: Brand) -> None:
    def setup() -> tuple[int, list[int]]:
        campaign = running_campaign([cash(888, quantity=1000)])
        return campaign.pk, [Member.objects.create(openid=f"o-same-{n}").pk for n in range(50)]

    ((campaign_id, member_ids),) = run_concurrently([setup], tenant=alpha.tenant)
    try:
        jobs = [
            lambda n=n: claims.claim(Member.objects.get(pk=member_ids[n]), ClaimContext(serial=77)) for n in range(50)
        ]
        outcomes = run_concurrently(jobs, tenant=alpha.tenant)
        won = [o for o in outcomes if isinstance(o, claims.ClaimResult)]
        refused = [o for o in outcomes if isinstance(o, JiumaError)]
        assert len(won) == 1, outcomes[:3]
        assert len(refused) == 49
        assert {o.code for o in refused} == {"code_already_claimed"}

        def totals() -> tuple[int, int, int]:
            return (
                Claim.objects.filter(serial=77).count(),
                Payout.objects.filter(campaign_id=campaign_id).count(),
                Campaign.objects.get(pk=campaign_id).spent_fen,
            )

        (found,) = run_concurrently([totals], tenant=alpha.tenant)
        assert found == (1, 1, 888)
    finally:
        run_concurrently([lambda: remove_campaign(campaign_id, member_ids)], tenant=alpha.tenant)
