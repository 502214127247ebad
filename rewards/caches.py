"""The per-process caches of rewards/ in one place, so tests (and a brand's deletion) can empty them."""

from __future__ import annotations


def clear() -> None:
    from rewards import risk, selectors
    from rewards.services import campaigns

    selectors.forget_campaigns()
    campaigns._prizes.clear()
    campaigns._seeds.clear()
    risk.forget()
