"""Card collecting (集卡) in templates: a set's cards with their chances, links to the member's cards."""

from __future__ import annotations

from typing import Any

from django import template

register = template.Library()


@register.simple_tag
def card_odds(card_set: Any) -> list[Any]:
    """`{% card_odds prize.card_set as rows %}`: each card of the set with its weight and its chance
    within the set (weight / sum of the set's weights, e.g. "12.5%"), in published order."""
    from rewards.services import cards

    if card_set is None:
        return []
    return cards.odds(card_set)


@register.simple_tag(takes_context=True)
def brand_link(context: Any, path: str) -> str:
    """`path` on the brand's own site, from any host serving the brand (the short code host too)."""
    from frontends import consumer

    request = context.get("request")
    return consumer.brand_url(request, path) if request is not None else path
