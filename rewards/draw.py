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
