"""Campaigns: compliance at creation, rules published before the start, the seed committed then revealed."""

from __future__ import annotations

import hashlib
from datetime import timedelta

import pytest
from django.utils import timezone

from rewards import draw
from rewards.models import Campaign, CampaignStatus, Prize
from rewards.services import campaigns
from rewards.services.campaigns import PrizeSpec
from tenants.errors import JiumaError
from tests.conftest import Brand

CASH = PrizeSpec(name="2元红包", kind="cash", amount_fen=200, odds_ppm=500_000, quantity=100)
CAR = PrizeSpec(name="豪车", kind="physical", value_fen=5_000_001, odds_ppm=1, quantity=1)
BIG = PrizeSpec(name="大红包", kind="cash", amount_fen=5_000_001, odds_ppm=1, quantity=1)
OVER = PrizeSpec(name="b", kind="cash", amount_fen=100, odds_ppm=500_001, quantity=1)


def _create(**fields: object) -> Campaign:
    now = timezone.now()
    values: dict[str, object] = {
        "name": "开盖有奖",
        "starts_at": now + timedelta(days=1),
        "ends_at": now + timedelta(days=31),
        "prizes": [CASH],
        "budget_fen": 100_000,
    }
    values.update(fields)
    return campaigns.create_campaign(**values)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("fields", "code"),
    [
        (
            {"prizes": [PrizeSpec(name="豪车", kind="physical", value_fen=5_000_001, odds_ppm=1, quantity=1)]},
            "prize_over_legal_cap",
        ),
        (
            {"prizes": [PrizeSpec(name="大红包", kind="cash", amount_fen=5_000_001, odds_ppm=1, quantity=1)]},
            "prize_over_legal_cap",
        ),
        (
            {"prizes": [CASH, PrizeSpec(name="b", kind="cash", amount_fen=100, odds_ppm=500_001, quantity=1)]},
            "odds_over_100_percent",
        ),
        ({"prizes": []}, "invalid_prize"),
        ({"prizes": [PrizeSpec(name="x", kind="cash", amount_fen=5, odds_ppm=1, quantity=1)]}, "invalid_prize"),
        ({"prizes": [PrizeSpec(name="x", kind="lottery", odds_ppm=1, quantity=1)]}, "invalid_prize"),
        ({"prizes": [PrizeSpec(name="x", kind="points", points=10, odds_ppm=1, quantity=0)]}, "invalid_prize"),
        ({"first_scan_guarantee": True}, "invalid_prize"),
        ({"target_region_codes": ["999999"]}, "invalid_campaign"),
        ({"name": ""}, "invalid_campaign"),
        ({"budget_fen": -1}, "invalid_campaign"),
    ],
)
def test_campaigns_that_break_the_rules_are_refused(in_alpha: Brand, fields: dict[str, object], code: str) -> None:
    with pytest.raises(JiumaError) as refused:
        _create(**fields)
    assert refused.value.code == code
    assert refused.value.message
    assert not Campaign.objects.exists()


def test_the_window_must_end_after_it_starts(in_alpha: Brand) -> None:
    now = timezone.now()
    with pytest.raises(JiumaError):
        _create(starts_at=now + timedelta(days=2), ends_at=now + timedelta(days=1))


def test_a_fifty_thousand_yuan_top_prize_is_allowed(in_alpha: Brand) -> None:
    top = PrizeSpec(name="特等奖", kind="cash", amount_fen=5_000_000, odds_ppm=1, quantity=1)
    campaign = _create(prizes=[top])
    assert Prize.objects.get(campaign=campaign).amount_fen == 5_000_000


def test_publishing_commits_to_a_seed_that_is_revealed_at_the_end(in_alpha: Brand) -> None:
    campaign = _create()
    published = campaigns.publish(campaign)
    assert published.status == CampaignStatus.PUBLISHED
    assert len(published.seed_commitment) == 64
    assert published.seed_revealed == ""
    assert bytes(published.seed_wrapped) != b""
    with pytest.raises(JiumaError) as again:
        campaigns.publish(published)
    assert again.value.code == "campaign_wrong_state"
    with pytest.raises(JiumaError):
        campaigns.end(published)  # not over yet
    ended = campaigns.end(published, now=published.ends_at)
    assert ended.status == CampaignStatus.ENDED
    assert hashlib.sha256(bytes.fromhex(ended.seed_revealed)).hexdigest() == ended.seed_commitment
    assert campaigns.end_due(now=ended.ends_at + timedelta(days=1)) == []


def test_rules_must_be_published_before_the_campaign_starts(in_alpha: Brand) -> None:
    campaign = _create()
    with pytest.raises(JiumaError) as late:
        campaigns.publish(campaign, now=campaign.starts_at)
    assert late.value.code == "campaign_must_be_published_before_start"
    assert Campaign.objects.get(pk=campaign.pk).status == CampaignStatus.DRAFT


def test_a_started_campaign_cannot_be_cancelled(in_alpha: Brand) -> None:
    campaign = campaigns.publish(_create())
    with pytest.raises(JiumaError):
        campaigns.cancel(campaign, now=campaign.starts_at + timedelta(seconds=1))
    assert campaigns.cancel(campaign).status == CampaignStatus.CANCELLED


def test_the_draw_is_a_pure_function_of_seed_campaign_and_serial() -> None:
    seed = bytes(range(32))
    assert draw.ticket(seed, 1, 42) == draw.ticket(seed, 1, 42)
    assert draw.ticket(seed, 1, 42) != draw.ticket(seed, 2, 42)
    assert draw.ticket(seed, 1, 42) != draw.ticket(seed, 1, 43)
    table = [(10, 100_000), (11, 400_000)]
    assert draw.prize_for(0, table) == 10
    assert draw.prize_for(99_999, table) == 10
    assert draw.prize_for(100_000, table) == 11
    assert draw.prize_for(499_999, table) == 11
    assert draw.prize_for(500_000, table) is None


def test_observed_prize_frequencies_match_the_published_odds() -> None:
    """200,000 simulated caps: each tier's share is within 4.5 standard deviations of its odds."""
    seed = bytes.fromhex("5" * 64)
    table = [(1, 5_000), (2, 45_000), (3, 250_000), (4, 400_000)]
    draws = 200_000
    counts: dict[int | None, int] = {}
    for serial in range(draws):
        prize = draw.prize_for(draw.ticket(seed, 7, serial), table)
        counts[prize] = counts.get(prize, 0) + 1
    for prize_id, odds in [*table, (None, 1_000_000 - sum(odds for _, odds in table))]:
        p = odds / 1_000_000
        expected = draws * p
        sigma = (draws * p * (1 - p)) ** 0.5
        assert abs(counts.get(prize_id, 0) - expected) < 4.5 * sigma, (prize_id, counts.get(prize_id), expected)
