"""Reads of rewards/: which campaign a scan enters."""

from __future__ import annotations

import time
from datetime import datetime

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
