"""Matching a place name as geolocation databases and map services write it to a region's official name.

They shorten names in a few regular ways: the province's 省/市/自治区 is often dropped ("贵州",
"北京", "内蒙古"), as is a city's 市 ("贵阳"), and an autonomous prefecture is cut to its place name
("延边", "恩施州", "黔东南") or written in full ("广西壮族自治区"). So within one parent a name is
tried, in order, as: the exact name; the same *core* (the name without one administrative suffix);
a prefix of the official name (cores of two or more characters only). A step that matches two
regions is ambiguous and matches nothing, so a name is never resolved by a guess.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Protocol, TypeVar

# Longest first: "自治区" must be tried before "区", "地区" before "区".
_SUFFIXES = ("特别行政区", "自治区", "自治州", "自治县", "自治旗", "地区", "省", "市", "盟", "州", "县", "区", "旗")


class _Named(Protocol):
    @property
    def name(self) -> str: ...


N = TypeVar("N", bound=_Named)


def core(name: str) -> str:
    """The name without one administrative suffix, keeping at least two characters ("忠县" stays)."""
    for suffix in _SUFFIXES:
        if name.endswith(suffix) and len(name) - len(suffix) >= 2:
            return name[: -len(suffix)]
    return name


def _only(found: list[N]) -> N | None:
    return found[0] if len(found) == 1 else None


def pick(name: str, candidates: Iterable[N]) -> N | None:
    """The one candidate `name` designates, or None (no match, or more than one at the deciding step)."""
    pool = list(candidates)
    exact = [c for c in pool if c.name == name]
    if exact:
        return _only(exact)
    key = core(name)
    same_core = [c for c in pool if core(c.name) == key]
    if same_core:
        return _only(same_core)
    if len(key) >= 2:
        return _only([c for c in pool if c.name.startswith(key)])
    return None


def clean(name: str | None) -> str | None:
    """A name with surrounding (also full-width) spaces removed; None for a missing or blank one."""
    if name is None:
        return None
    stripped = name.strip().strip("\u3000").strip()
    return stripped or None
