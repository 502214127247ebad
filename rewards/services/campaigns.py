"""Campaigns: drafted with their prize table, published (rules public, seed committed) before they
start, ended with the seed revealed. Plain functions in the current brand's schema.

Compliance is checked where the data is made: no prize above ¥50,000 (also a database constraint),
odds that add up to at most 100%, a window that ends after it starts, rules published before the
start (规范促销行为暂行规定: prize information published in advance and not changed to the
consumer's disadvantage afterwards). Once published, a campaign's prizes, odds, quantities and window
do not change; it can only be cancelled before it starts, or end.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from commerce import regions
from commerce.services import points as points_service
from rewards import draw, selectors
from rewards.errors import RewardErrorCode as E
from rewards.models import (
    MAX_PRIZE_FEN,
    ODDS_SCALE,
    Campaign,
    CampaignStatus,
    Card,
    CardSet,
    Claim,
    Prize,
    PrizeKind,
)
from tenants import keys
from tenants.db import connection
from tenants.errors import Conflict, JiumaError, NotFound


@dataclass(frozen=True)
class PrizeSpec:
    name: str
    kind: str
    odds_ppm: int
    quantity: int
    amount_fen: int = 0
    points: int = 0
    value_fen: int = 0
    is_guarantee: bool = False
    card_set_id: int | None = None  # a card prize (集卡): the set whose cards it gives


def _invalid(message: str, code: str = E.INVALID_CAMPAIGN, **fields: Any) -> JiumaError:
    return JiumaError(code, message, fields={key: str(value)[:100] for key, value in fields.items()})


def check_prizes(prizes: Sequence[PrizeSpec], *, first_scan_guarantee: bool = False) -> None:
    """A prize table as a whole: each prize by its kind, odds adding up to at most 100%, at most one
    guarantee prize, and one when the campaign guarantees the first scan."""
    if not prizes:
        raise _invalid(_("请至少设置一个奖项。"), E.INVALID_PRIZE)
    total = 0
    guarantees = 0
    for spec in prizes:
        if not spec.name.strip() or len(spec.name) > 60:
            raise _invalid(_("奖项名称不能为空，且不超过 60 字。"), E.INVALID_PRIZE, name=spec.name)
        if spec.kind not in PrizeKind.values:
            raise _invalid(_("奖品类型无效。"), E.INVALID_PRIZE, kind=spec.kind)
        if not 0 <= spec.odds_ppm <= ODDS_SCALE or spec.quantity < 1:
            raise _invalid(_("中奖概率或数量无效。"), E.INVALID_PRIZE, name=spec.name)
        worth = {"cash": spec.amount_fen, "points": 0, "physical": spec.value_fen, "card": 0}[spec.kind]
        if worth > MAX_PRIZE_FEN:
            raise _invalid(
                _("单个奖项价值不得超过 50,000 元（抽奖式有奖销售的法定上限）。"), E.PRIZE_TOO_LARGE, name=spec.name
            )
        if spec.kind == PrizeKind.CASH and spec.amount_fen < 10:
            raise _invalid(_("现金红包至少 0.10 元。"), E.INVALID_PRIZE, name=spec.name)
        if spec.kind == PrizeKind.POINTS and spec.points <= 0:
            raise _invalid(_("酒币奖品的数量须大于 0。"), E.INVALID_PRIZE, name=spec.name)
        if spec.kind == PrizeKind.POINTS and spec.points > points_service.MAX_AMOUNT:
            raise _invalid(
                _("酒币奖品的数量不得超过 %(n)d。") % {"n": points_service.MAX_AMOUNT}, E.INVALID_PRIZE, name=spec.name
            )
        if spec.kind == PrizeKind.PHYSICAL and spec.value_fen <= 0:
            raise _invalid(_("实物奖品须填写价值。"), E.INVALID_PRIZE, name=spec.name)
        if spec.kind == PrizeKind.CARD:
            check_card_set(spec)
        if spec.is_guarantee:
            guarantees += 1
            if spec.kind == PrizeKind.PHYSICAL:
                raise _invalid(_("首扫必中奖项须为红包或酒币。"), E.INVALID_PRIZE, name=spec.name)
        total += spec.odds_ppm
    if total > ODDS_SCALE:
        raise _invalid(_("各奖项中奖概率之和不能超过 100%。"), E.ODDS_OVER_ONE, total_ppm=total)
    if guarantees > 1:
        raise _invalid(_("首扫必中奖项只能设置一个。"), E.INVALID_PRIZE)
    if first_scan_guarantee and not guarantees:
        raise _invalid(_("开启首扫必中须指定一个必中奖项。"), E.INVALID_PRIZE)


def check_card_set(spec: PrizeSpec) -> None:
    """A card prize names an active set that has cards (its odds are published with the rules)."""
    if spec.card_set_id is None:
        raise _invalid(_("集卡奖品须选择卡片套系。"), E.INVALID_PRIZE, name=spec.name)
    active = CardSet.objects.filter(pk=spec.card_set_id).values_list("is_active", flat=True).first()
    if active is None:
        raise _invalid(_("卡片套系不存在。"), E.INVALID_PRIZE, name=spec.name)
    if not active:
        raise _invalid(_("卡片套系已停用。"), E.INVALID_PRIZE, name=spec.name)
    if not Card.objects.filter(card_set_id=spec.card_set_id).exists():
        raise _invalid(_("卡片套系还没有卡片，请先添加卡片。"), E.INVALID_PRIZE, name=spec.name)


def check_targets(region_codes: Sequence[str]) -> list[str]:
    """The region targets, each an existing GB/T 2260 code."""
    checked = []
    for code in region_codes:
        if regions.get(str(code)) is None:
            raise _invalid(_("地区代码不存在。"), region=code)
        checked.append(str(code))
    return checked


def check_fields(
    *,
    name: str,
    starts_at: datetime,
    ends_at: datetime,
    budget_fen: int,
    pacing_slack_percent: int,
    member_daily_cap: int,
    member_total_cap: int,
    **_others: Any,
) -> None:
    """A campaign's own fields (a new one, or a draft's changed ones): the one set of rules the
    admin, the API and create_campaign apply."""
    if not name.strip() or len(name) > 100:
        raise _invalid(_("活动名称不能为空，且不超过 100 字。"))
    if ends_at <= starts_at:
        raise _invalid(_("结束时间须晚于开始时间。"))
    if budget_fen < 0 or not 0 <= pacing_slack_percent <= 100 or member_daily_cap < 0 or member_total_cap < 0:
        raise _invalid(_("预算或限制条件无效。"))


def create_campaign(
    *,
    name: str,
    starts_at: datetime,
    ends_at: datetime,
    prizes: Sequence[PrizeSpec],
    budget_fen: int = 0,
    description: str = "",
    priority: int = 0,
    pacing: bool = True,
    pacing_slack_percent: int = 20,
    first_scan_guarantee: bool = False,
    member_daily_cap: int = 0,
    member_total_cap: int = 0,
    target_batch_ids: Sequence[int] = (),
    target_sku_ids: Sequence[int] = (),
    target_region_codes: Sequence[str] = (),
    target_dealer_ids: Sequence[int] = (),
    organiser: str = "",
    contact: str = "",
    created_by: str = "",
) -> Campaign:
    """A draft campaign with its prize table (checked as a whole, written at once)."""
    check_fields(
        name=name,
        starts_at=starts_at,
        ends_at=ends_at,
        budget_fen=budget_fen,
        pacing_slack_percent=pacing_slack_percent,
        member_daily_cap=member_daily_cap,
        member_total_cap=member_total_cap,
    )
    check_prizes(prizes, first_scan_guarantee=first_scan_guarantee)
    regions_checked = check_targets(target_region_codes)
    with transaction.atomic():
        campaign = Campaign.objects.create(
            name=name.strip(),
            description=description,
            starts_at=starts_at,
            ends_at=ends_at,
            priority=priority,
            budget_fen=budget_fen,
            pacing=pacing,
            pacing_slack_percent=pacing_slack_percent,
            first_scan_guarantee=first_scan_guarantee,
            member_daily_cap=member_daily_cap,
            member_total_cap=member_total_cap,
            target_batch_ids=[int(x) for x in target_batch_ids],
            target_sku_ids=[int(x) for x in target_sku_ids],
            target_region_codes=regions_checked,
            target_dealer_ids=[int(x) for x in target_dealer_ids],
            organiser=organiser,
            contact=contact,
            created_by=created_by,
        )
        Prize.objects.bulk_create(prize_rows(campaign.pk, prizes))
    return campaign


def prize_rows(campaign_id: int, prizes: Sequence[PrizeSpec]) -> list[Prize]:
    """The Prize rows of a table: only the kind's own amount, positions in table order."""
    return [
        Prize(
            campaign_id=campaign_id,
            name=spec.name.strip(),
            kind=spec.kind,
            amount_fen=spec.amount_fen if spec.kind == PrizeKind.CASH else 0,
            points=spec.points if spec.kind == PrizeKind.POINTS else 0,
            value_fen=spec.value_fen if spec.kind == PrizeKind.PHYSICAL else 0,
            card_set_id=spec.card_set_id if spec.kind == PrizeKind.CARD else None,
            odds_ppm=spec.odds_ppm,
            quantity=spec.quantity,
            is_guarantee=spec.is_guarantee,
            position=index,
        )
        for index, spec in enumerate(prizes)
    ]


def update_draft(campaign: Campaign, *, values: dict[str, Any], prizes: Sequence[PrizeSpec]) -> Campaign:
    """A draft's new fields and prize table, replaced as a whole (a draft has no draws) under its
    row lock; refused once it is no longer a draft. The caller checked `values` and `prizes`."""
    with transaction.atomic():
        locked = Campaign.objects.select_for_update().filter(pk=campaign.pk).first()
        if locked is None or locked.status != CampaignStatus.DRAFT:
            raise Conflict(E.WRONG_STATE, _("活动已发布或已结束，规则不能再修改。"))
        Campaign.objects.filter(pk=locked.pk).update(**values)
        Prize.objects.filter(campaign_id=locked.pk).delete()
        Prize.objects.bulk_create(prize_rows(locked.pk, prizes))
    locked.refresh_from_db()
    return locked


def get_campaign(campaign_id: int) -> Campaign:
    campaign = Campaign.objects.filter(pk=campaign_id).first()
    if campaign is None:
        raise NotFound(E.CAMPAIGN_NOT_FOUND, _("活动不存在。"))
    return campaign


def _seed_context(campaign: Campaign) -> bytes:
    return keys.field_context(int(connection.tenant.number), "campaign.seed", campaign.pk)


def publish(campaign: Campaign, *, now: datetime | None = None) -> Campaign:
    """Make the rules public and commit to the draw's seed. Only a draft, and only before it starts."""
    now = now or timezone.now()
    with transaction.atomic():
        locked = Campaign.objects.select_for_update().get(pk=campaign.pk)
        if locked.status != CampaignStatus.DRAFT:
            raise Conflict(E.WRONG_STATE, _("只有草稿状态的活动可以发布。"))
        if locked.starts_at <= now:
            raise Conflict(E.TOO_LATE_TO_PUBLISH, _("活动规则须在开始前发布，请调整开始时间。"))
        # A card set named by a draft may have been stopped or emptied since: its cards' odds are
        # published with the rules, so they must be there now.
        for prize in Prize.objects.filter(campaign=locked, kind=PrizeKind.CARD):
            check_card_set(
                PrizeSpec(prize.name, prize.kind, prize.odds_ppm, prize.quantity, card_set_id=prize.card_set_id)
            )
        seed = draw.new_seed()
        key_id, wrapped = keys.master_key_ring().wrap(seed, _seed_context(locked))
        Campaign.objects.filter(pk=locked.pk).update(
            status=CampaignStatus.PUBLISHED,
            seed_key_id=key_id,
            seed_wrapped=wrapped,
            seed_commitment=draw.commitment(seed),
            published_at=now,
        )
    selectors.forget_campaigns()
    locked.refresh_from_db()
    return locked


_seeds: dict[tuple[str, int], bytes] = {}
_seeds_lock = threading.Lock()


def seed_of(campaign: Campaign) -> bytes:
    """The campaign's seed (unwrapped once per process; never shown before the campaign ends)."""
    key = (connection.schema_name, campaign.pk)
    found = _seeds.get(key)
    if found is None:
        if not campaign.seed_wrapped:
            raise Conflict(E.WRONG_STATE, _("活动尚未发布。"))
        found = keys.master_key_ring().unwrap(
            campaign.seed_key_id, bytes(campaign.seed_wrapped), _seed_context(campaign)
        )
        with _seeds_lock:
            _seeds[key] = found
    return found


def cancel(campaign: Campaign, *, now: datetime | None = None) -> Campaign:
    """Call off a campaign that has not started (a draft at any time)."""
    now = now or timezone.now()
    with transaction.atomic():
        locked = Campaign.objects.select_for_update().get(pk=campaign.pk)
        if locked.status == CampaignStatus.PUBLISHED and locked.starts_at <= now:
            raise Conflict(E.WRONG_STATE, _("活动已开始，不能取消，只能到期结束。"))
        if locked.status not in (CampaignStatus.DRAFT, CampaignStatus.PUBLISHED):
            raise Conflict(E.WRONG_STATE, _("该活动不能取消。"))
        Campaign.objects.filter(pk=locked.pk).update(status=CampaignStatus.CANCELLED, ended_at=now)
    selectors.forget_campaigns()
    locked.refresh_from_db()
    return locked


def end(campaign: Campaign, *, now: datetime | None = None) -> Campaign:
    """Close a published campaign whose time is up and reveal its seed."""
    now = now or timezone.now()
    with transaction.atomic():
        locked = Campaign.objects.select_for_update().get(pk=campaign.pk)
        if locked.status != CampaignStatus.PUBLISHED or now < locked.ends_at:
            raise Conflict(E.WRONG_STATE, _("活动尚未到结束时间。"))
        seed = seed_of(locked)
        Campaign.objects.filter(pk=locked.pk).update(
            status=CampaignStatus.ENDED, ended_at=now, seed_revealed=seed.hex()
        )
    locked.refresh_from_db()
    return locked


def end_due(*, now: datetime | None = None) -> list[int]:
    """End every published campaign past its end (the beat task); returns their ids."""
    now = now or timezone.now()
    ended = []
    for campaign in Campaign.objects.filter(status=CampaignStatus.PUBLISHED, ends_at__lte=now):
        end(campaign, now=now)
        ended.append(campaign.pk)
    return ended


# A published campaign's prizes never change (only their `awarded` counters, which are always
# updated in the database, never read from here): kept per process once read.
_prizes: dict[tuple[str, int], dict[int, Prize]] = {}


def prizes_of(campaign: Campaign) -> dict[int, Prize]:
    """The campaign's prizes by id, in published order (cached per process once published)."""
    key = (connection.schema_name, campaign.pk)
    found = _prizes.get(key)
    if found is None:
        found = {prize.pk: prize for prize in campaign.prizes.order_by("position", "id")}
        if campaign.status != CampaignStatus.DRAFT:
            _prizes[key] = found
    return found


def prize_table(campaign: Campaign) -> list[tuple[int, int]]:
    return [(prize.pk, prize.odds_ppm) for prize in prizes_of(campaign).values()]


def audit_rows(campaign: Campaign) -> list[dict[str, Any]]:
    """Every draw of an ended campaign, recomputed from the revealed seed next to what was recorded."""
    if not campaign.seed_revealed:
        raise Conflict(E.WRONG_STATE, _("活动结束后才公开抽奖种子。"))
    seed = bytes.fromhex(campaign.seed_revealed)
    table = prize_table(campaign)
    # A card prize's cards (id, weight) in published order, per prize: the card is recomputed too.
    decks: dict[int, list[tuple[int, int]]] = {}
    for prize in prizes_of(campaign).values():
        if prize.kind == PrizeKind.CARD and prize.card_set_id is not None:
            decks[prize.pk] = list(
                Card.objects.filter(card_set_id=prize.card_set_id)
                .order_by("position", "id")
                .values_list("id", "weight")
            )
    rows = []
    for claim in Claim.objects.filter(campaign=campaign).order_by("id").iterator():
        recomputed = draw.ticket(seed, campaign.pk, claim.serial)
        row = {
            "serial": claim.serial,
            "ticket": claim.ticket,
            "recomputed_ticket": recomputed,
            "drawn_prize": draw.prize_for(recomputed, table),
            "outcome": claim.outcome,
            "prize": claim.prize_id,
        }
        deck = decks.get(claim.prize_id or 0)
        if deck:
            row["card"] = claim.card_id
            row["recomputed_card"] = draw.card_for(seed, campaign.pk, claim.serial, deck)
        rows.append(row)
    return rows
