"""The draw: a pure function of the campaign's secret seed and the inner code, re-checkable by anyone.

    ticket = first 8 bytes of HMAC-SHA256(seed, "jiuma-draw|<campaign id>|<serial>"), scaled to
             0 .. 999,999 (parts per million)
    prize  = the first prize, in the published order, whose cumulative odds exceed the ticket
             (none: "谢谢参与")

The SHA-256 of the seed is published with the rules before the campaign starts and the seed itself
when it ends: with it, the serials and the published prize table, every recorded draw can be
recomputed (rewards.services.campaigns.audit_rows gives the list). Nobody can pick a winning cap in
advance without the seed, and the brand cannot change a draw after the fact without the published
commitment giving it away.

A card prize (集卡) then picks one card of its set the same way, under its own label:

    point = first 8 bytes of HMAC-SHA256(seed, "jiuma-card|<campaign id>|<serial>"), scaled to
            0 .. (sum of the set's weights) - 1
    card  = the first card, in the published order (position, id), whose cumulative weight exceeds
            the point

so a card's chance is its weight over the set's total, in integers, re-derivable once the seed is out.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from collections.abc import Sequence

from rewards.models import ODDS_SCALE

SEED_BYTES = 32


def new_seed() -> bytes:
    return secrets.token_bytes(SEED_BYTES)


def commitment(seed: bytes) -> str:
    return hashlib.sha256(seed).hexdigest()


def ticket(seed: bytes, campaign_id: int, serial: int) -> int:
    digest = hmac.new(seed, b"jiuma-draw|%d|%d" % (campaign_id, serial), hashlib.sha256).digest()
    return (int.from_bytes(digest[:8], "big") * ODDS_SCALE) >> 64


def prize_for(ticket_value: int, table: Sequence[tuple[int, int]]) -> int | None:
    """The prize id a ticket draws from `table` ((prize id, odds in ppm) in published order)."""
    cumulative = 0
    for prize_id, odds in table:
        cumulative += odds
        if ticket_value < cumulative:
            return prize_id
    return None


def card_for(seed: bytes, campaign_id: int, serial: int, cards: Sequence[tuple[int, int]]) -> int:
    """The card id a card prize gives for this cap: `cards` are (card id, rarity weight >= 1) in
    published order. Independent of the ticket (another HMAC label), integers only."""
    total = sum(weight for _card, weight in cards)
    if not cards or total <= 0 or any(weight < 1 for _card, weight in cards):
        raise ValueError("a card set needs cards, each with a weight of at least 1")
    digest = hmac.new(seed, b"jiuma-card|%d|%d" % (campaign_id, serial), hashlib.sha256).digest()
    point = (int.from_bytes(digest[:8], "big") * total) >> 64
    cumulative = 0
    for card_id, weight in cards:
        cumulative += weight
        if point < cumulative:
            return card_id
    raise AssertionError("unreachable: point < total")  # pragma: no cover
