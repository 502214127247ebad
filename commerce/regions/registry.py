"""The region registry: loads data/gbt2260.tsv once per process and answers lookups from memory."""

from __future__ import annotations

import functools
import re
import threading
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Final, Literal

from commerce.regions import names

Level = Literal["province", "city", "county"]
LEVELS: Final[tuple[Level, ...]] = ("province", "city", "county")
DATA_FILE: Final = Path(__file__).resolve().parent / "data" / "gbt2260.tsv"
_CODE = re.compile(r"\d{6}")


class UnknownRegionError(ValueError):
    """A code that is not a region of the registry; the message is for people (Simplified Chinese)."""

    def __init__(self, code: object) -> None:
        self.code = code
        if isinstance(code, str) and _CODE.fullmatch(code):
            message = f"行政区划代码 {code} 不存在"
        else:
            message = f"行政区划代码格式错误：{code!r}（应为 6 位数字）"
        super().__init__(message)


@dataclass(frozen=True, slots=True)
class Region:
    """One administrative division. `full_name` joins the names from the province down."""

    code: str
    name: str
    level: Level
    parent_code: str | None
    full_name: str

    @property
    def province_code(self) -> str:
        return self.code[:2] + "0000"

    def __str__(self) -> str:
        return self.full_name


@dataclass(frozen=True, slots=True)
class _Registry:
    by_code: dict[str, Region]
    children: dict[str | None, tuple[Region, ...]]  # None: the provinces
    ancestors: dict[str, tuple[Region, ...]]  # outermost first, the region itself excluded
    lineage: dict[str, frozenset[str]]  # the region's own code and its ancestors' codes
    below_province_by_name: dict[tuple[str, str], tuple[Region, ...]]  # (province code, name) -> regions


def _parse(path: Path) -> list[tuple[str, str, Level, str | None]]:
    rows = []
    for line in path.read_text(encoding="utf-8").splitlines():
        if not line or line.startswith("#"):
            continue
        code, name, level, parent = line.split("\t")
        if level not in LEVELS:
            raise ValueError(f"{path}: unknown level {level!r} for {code}")
        rows.append((code, name, level, parent or None))
    return rows


def _build(path: Path) -> _Registry:
    rows = _parse(path)  # sorted by code, so a parent always comes before its children
    by_code: dict[str, Region] = {}
    children: defaultdict[str | None, list[Region]] = defaultdict(list)
    ancestors: dict[str, tuple[Region, ...]] = {}
    by_name: defaultdict[tuple[str, str], list[Region]] = defaultdict(list)
    for code, name, level, parent_code in rows:
        above = () if parent_code is None else (*ancestors[parent_code], by_code[parent_code])
        region = Region(code, name, level, parent_code, "".join(r.name for r in above) + name)
        by_code[code] = region
        ancestors[code] = above
        children[parent_code].append(region)
        if parent_code is not None:
            by_name[(region.province_code, name)].append(region)
    return _Registry(
        by_code=by_code,
        children={key: tuple(value) for key, value in children.items()},
        ancestors=ancestors,
        lineage={code: frozenset((code, *(r.code for r in above))) for code, above in ancestors.items()},
        below_province_by_name={key: tuple(value) for key, value in by_name.items()},
    )


_loaded: _Registry | None = None
_lock = threading.Lock()


def _registry() -> _Registry:
    global _loaded  # the per-process cache of the data file
    if _loaded is None:
        with _lock:
            if _loaded is None:
                _loaded = _build(DATA_FILE)
    return _loaded


# --- lookups --------------------------------------------------------------------------------------


def get(code: str) -> Region | None:
    """The region with this 6-digit code, or None (unknown or malformed code)."""
    return _registry().by_code.get(code) if isinstance(code, str) else None


def validate(code: str) -> Region:
    """The region with this code; raises UnknownRegionError (a ValueError) with a Chinese message."""
    region = get(code)
    if region is None:
        raise UnknownRegionError(code)
    return region


def ancestors(code: str) -> tuple[Region, ...]:
    """The regions containing `code`, outermost (the province) first; () for a province.

    Raises UnknownRegionError for an unknown code.
    """
    return _registry().ancestors[validate(code).code]


def children(code: str) -> tuple[Region, ...]:
    """The regions directly under `code`, by code. A municipality's children are its districts and
    counties; a province's include its directly administered county-level units (e.g. 济源市).

    Raises UnknownRegionError for an unknown code.
    """
    return _registry().children.get(validate(code).code, ())


def provinces() -> tuple[Region, ...]:
    """The 34 province-level regions (incl. 台湾省, 香港, 澳门), by code."""
    return _registry().children[None]


def all_regions() -> tuple[Region, ...]:
    """Every region, by code."""
    return tuple(_registry().by_code.values())


def is_within(code: str, area_code: str) -> bool:
    """Whether region `code` is `area_code` or lies inside it (a county is within its city and its
    province). False when either code is unknown: an unknown place is never inside an area."""
    lineage = _registry().lineage.get(code) if isinstance(code, str) else None
    return lineage is not None and area_code in lineage


def is_within_any(code: str, area_codes: Iterable[str]) -> bool:
    """Whether region `code` lies inside at least one of the areas (given at any level)."""
    lineage = _registry().lineage.get(code) if isinstance(code, str) else None
    return lineage is not None and any(area in lineage for area in area_codes)


def coverage(code: str, area_codes: Iterable[str]) -> bool | None:
    """Whether region `code` lies inside one of the areas, telling "outside" from "cannot tell".

    True: `code` is one of the areas or inside one. False: it is precise enough to say it is
    outside all of them. None (inconclusive): `code` is unknown, there are no areas, or `code` is
    less precise than an area inside it (a city when the area is one of its counties, a province
    when the area is one of its cities): the place may or may not be inside.

        >>> coverage("520102", ["520100"]), coverage("520100", ["520102"]), coverage("520201", ["520102"])
        (True, None, False)
    """
    lineage = _registry().lineage.get(code) if isinstance(code, str) else None
    areas = list(area_codes)
    if lineage is None or not areas:
        return None
    if any(area in lineage for area in areas):
        return True
    if any(is_within(area, code) for area in areas):
        return None
    return False


# --- names ----------------------------------------------------------------------------------------


def find_by_names(province: str, city: str | None = None, county: str | None = None) -> Region | None:
    """The most precise region the names designate, as geolocation databases give them.

    Accepts official and short forms ("贵州省"/"贵州", "贵阳市"/"贵阳", "内蒙古"/"内蒙古自治区",
    "广西壮族自治区"/"广西", "延边"/"恩施州" for autonomous prefectures). Returns the province when
    the city is unknown to it, the city when the county is; None when the province is not found.
    A municipality's city may be given as the municipality itself ("北京", "北京市", "朝阳区").
    A county-level unit given as the city (济源, 仙桃, or a district) is found anywhere in the province.
    """
    return _find(names.clean(province), names.clean(city), names.clean(county))


@functools.lru_cache(maxsize=4096)
def _find(province: str | None, city: str | None, county: str | None) -> Region | None:
    registry = _registry()
    if province is None:
        return None
    found = names.pick(province, registry.children[None])
    if found is None:
        return None
    top = found
    for name in (city, county):
        if name is None or found.level == "county":
            continue
        deeper = names.pick(name, registry.children.get(found.code, ()))
        if deeper is None:
            # A county-level unit named where a city was expected, or a county whose city was not
            # found: an exact name that is unique in the whole province.
            same_name = registry.below_province_by_name.get((top.code, name), ())
            if len(same_name) == 1 and same_name[0].code != found.code and is_within(same_name[0].code, found.code):
                deeper = same_name[0]
        if deeper is not None:
            found = deeper
    return found
