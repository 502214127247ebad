"""Money in templates: integer fen shown as yuan."""

from __future__ import annotations

from django import template

register = template.Library()


@register.filter
def yuan(fen: object) -> str:
    """12345 → "123.45"; 200 → "2"; 250 → "2.50" (whole yuan without decimals)."""
    if not isinstance(fen, int) or isinstance(fen, bool):
        return ""
    sign = "-" if fen < 0 else ""
    whole, cents = divmod(abs(fen), 100)
    return f"{sign}{whole}" if cents == 0 else f"{sign}{whole}.{cents:02d}"


@register.filter
def ppm_percent(ppm: object) -> str:
    """Parts per million as a percentage: 500000 → "50%", 5000 → "0.5%", 1 → "0.0001%"."""
    if not isinstance(ppm, int) or isinstance(ppm, bool):
        return ""
    whole, rest = divmod(ppm, 10_000)
    return f"{whole}%" if rest == 0 else f"{whole}.{rest:04d}".rstrip("0") + "%"
