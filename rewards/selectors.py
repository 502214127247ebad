"""Reads of rewards/: which campaign a scan enters."""

from __future__ import annotations

import time
from datetime import datetime
from typing import Any

from commerce import regions
from rewards.models import Campaign, CampaignStatus
from tenants.db import connection

# Published campaigns, read at most every PUBLISHED_CACHE_SECONDS per process; which of them runs
# is decided from their windows at each call, so a start or an end applies to the second. (A
# campaign is only published before it starts and only cancelled before then too.)
PUBLISHED_CACHE_SECONDS = 5.0
_published: dict[str, tuple[float, list[Campaign]]] = {}


def running_campaigns(now: datetime) -> list[Campaign]:
    schema = connection.schema_name
    cached = _published.get(schema)
    clock = time.monotonic()
    if cached is None or cached[0] <= clock:
        campaigns = list(
            Campaign.objects.filter(status=CampaignStatus.PUBLISHED, ends_at__gt=now).order_by(
                "-priority", "starts_at", "id"
            )
        )
        cached = (clock + PUBLISHED_CACHE_SECONDS, campaigns)
        _published[schema] = cached
    return [campaign for campaign in cached[1] if campaign.starts_at <= now < campaign.ends_at]


def forget_campaigns() -> None:
    """Drop this process's list (after publishing or cancelling, and in tests)."""
    _published.clear()


def matches(
    campaign: Campaign, *, batch_id: int | None, sku_id: int | None, region_code: str, dealer_id: int | None
) -> bool:
    """Whether a bottle (its batch, SKU and dealer) scanned in `region_code` is in the campaign's targets.
    An empty target list admits anything; a scan whose place is unknown is outside any region target."""
    if campaign.target_batch_ids and batch_id not in campaign.target_batch_ids:
        return False
    if campaign.target_sku_ids and sku_id not in campaign.target_sku_ids:
        return False
    if campaign.target_dealer_ids and dealer_id not in campaign.target_dealer_ids:
        return False
    return not campaign.target_region_codes or (
        bool(region_code) and regions.is_within_any(region_code, campaign.target_region_codes)
    )


def campaign_for(
    *, now: datetime, batch_id: int | None, sku_id: int | None, region_code: str, dealer_id: int | None
) -> Campaign | None:
    """The campaign a scan enters when several run at once: the matching one with the highest
    priority, then the earliest start, then the lowest id (the rule the rules pages state)."""
    for campaign in running_campaigns(now):
        if matches(campaign, batch_id=batch_id, sku_id=sku_id, region_code=region_code, dealer_id=dealer_id):
            return campaign
    return None


def member_export(member: Any) -> dict[str, Any]:
    """What rewards/ keeps about a member, as plain data: their draws, red packets, prize codes,
    cards and invitations (the rewards part of their copy of their data, PIPL art. 45)."""
    from django.db.models import Q
    from django.utils import timezone

    from rewards.models import CardGift, CardHolding, Claim, Payout, Redemption, Referral

    def when(value: Any) -> str | None:
        return timezone.localtime(value).isoformat() if value is not None else None

    return {
        "draws": [
            {
                "campaign": claim.campaign.name,
                "serial": claim.serial,
                "outcome": claim.outcome,
                "prize": claim.prize.name if claim.prize is not None else None,
                "card": claim.card.name if claim.card is not None else None,
                "status": claim.status,
                "region_code": claim.region_code,
                "ip": claim.ip,
                "at": when(claim.created_at),
            }
            for claim in Claim.objects.filter(member=member).select_related("campaign", "prize", "card").order_by("id")
        ],
        "red_packets": [
            {
                "amount_fen": payout.amount_fen,
                "status": payout.status,
                "bill": payout.out_bill_no,
                "at": when(payout.created_at),
            }
            for payout in Payout.objects.filter(member=member).order_by("id")
        ],
        "prize_codes": [
            {"prize": item.prize_name, "code": item.code, "status": item.status, "expires_at": when(item.expires_at)}
            for item in Redemption.objects.filter(member=member).order_by("id")
        ],
        "cards": [
            {"set": holding.card.card_set.name, "card": holding.card.name, "count": holding.count}
            for holding in CardHolding.objects.filter(member=member, count__gt=0).select_related("card__card_set")
        ],
        "card_gifts": [
            {
                "card": gift.card.name,
                "direction": "sent" if gift.sender_id == member.pk else "received",
                "status": gift.status,
                "at": when(gift.created_at),
            }
            for gift in CardGift.objects.filter(Q(sender=member) | Q(receiver=member))
            .select_related("card")
            .order_by("id")
        ],
        "invitations": [
            {
                "role": "inviter" if referral.inviter_id == member.pk else "invitee",
                "status": referral.status,
                "at": when(referral.created_at),
            }
            for referral in Referral.objects.filter(Q(inviter=member) | Q(invitee=member)).order_by("id")
        ],
    }
