"""Helpers of the rewards tests: a published, running campaign and identified members in alpha."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from datetime import timedelta

import pytest
from django.db.models import Q
from django.utils import timezone
from django_tenants.utils import tenant_context

from commerce.models import Member
from rewards.models import Campaign
from rewards.services import campaigns
from rewards.services.campaigns import PrizeSpec
from tests.conftest import Brand


@pytest.fixture
def in_alpha(alpha: Brand) -> Iterator[Brand]:
    with tenant_context(alpha.tenant):
        yield alpha


def running_campaign(prizes: list[PrizeSpec], *, budget_fen: int = 1_000_000, **fields: object) -> Campaign:
    """A campaign published a moment ago and running now (its start set back after publishing, as
    if the clock had moved on)."""
    now = timezone.now()
    campaign = campaigns.create_campaign(
        name=str(fields.pop("name", "开盖有奖")),
        starts_at=now + timedelta(minutes=1),
        ends_at=now + timedelta(days=30),
        prizes=prizes,
        budget_fen=budget_fen,
        **fields,  # type: ignore[arg-type]
    )
    campaigns.publish(campaign, now=now)
    Campaign.objects.filter(pk=campaign.pk).update(starts_at=now - timedelta(days=1))
    campaign.refresh_from_db()
    return campaign


def remove_campaign(campaign_id: int | None, member_ids: Iterable[int] = (), card_set_ids: Iterable[int] = ()) -> None:
    """Delete a committed campaign and everything its draws wrote, and `member_ids` with their points,
    referrals and cards (holdings, ledger, gifts, exchanges and what those paid), then the card sets
    `card_set_ids` with their cards (the cleanup of tests that commit from other connections)."""
    from commerce.models import PointsEntry
    from rewards.models import (
        BudgetEntry,
        CardEntry,
        CardGift,
        CardHolding,
        CardSet,
        CardSetRedemption,
        Claim,
        MemberCampaignCounter,
        Payout,
        Prize,
        Redemption,
        Referral,
    )

    members = list(member_ids)
    nothing = Q(pk__in=[])  # no campaign: only the members' rows (a None would match every NULL)
    of_claims = Q(claim__campaign_id=campaign_id) if campaign_id is not None else nothing
    Redemption.objects.filter(of_claims | Q(member_id__in=members)).delete()
    Referral.objects.filter(Q(inviter_id__in=members) | Q(invitee_id__in=members)).delete()
    Payout.objects.filter(
        (Q(campaign_id=campaign_id) if campaign_id is not None else nothing) | Q(member_id__in=members)
    ).delete()
    CardSetRedemption.objects.filter(member_id__in=members).delete()
    CardGift.objects.filter(Q(sender_id__in=members) | Q(receiver_id__in=members)).delete()
    CardEntry.objects.filter(member_id__in=members).delete()
    CardHolding.objects.filter(member_id__in=members).delete()
    BudgetEntry.objects.filter(campaign_id=campaign_id).delete()
    PointsEntry.objects.filter(member_id__in=members).delete()
    Claim.objects.filter(campaign_id=campaign_id).delete()
    MemberCampaignCounter.objects.filter(campaign_id=campaign_id).delete()
    Prize.objects.filter(campaign_id=campaign_id).delete()
    Campaign.objects.filter(pk=campaign_id).delete()
    Member.objects.filter(pk__in=members).delete()
    CardSet.objects.filter(pk__in=list(card_set_ids)).delete()


def member(openid: str = "o-member") -> Member:
    return Member.objects.create(openid=openid)


from tests.support.wechat import alpha_pay, alpha_wechat, wechat_sim  # noqa: E402, F401 (fixtures)
