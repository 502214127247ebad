"""Code batches: serial ranges without a row per code, the encrypted printer package, its password
shown once, limited and audited downloads, blank batches bound later, sparse status rules."""

from __future__ import annotations

import csv
import io
import itertools
import json
from collections.abc import Iterator
from datetime import date
from pathlib import Path
from typing import Any

import pytest
import pyzipper
from django.core.files.storage import default_storage
from django_tenants.utils import tenant_context

from codes import format as code_format
from codes import services
from codes.keyring import keyring, verify
from codes.models import Batch, BatchStatus, CodeStatus, SerialGroup
from commerce.models import Product, Sku
from tenants.brand import audit
from tenants.brand.models import AuditEntry
from tenants.errors import JiumaError
from tests.conftest import Brand
from tests.support.threads import run_concurrently


@pytest.fixture
def in_alpha(alpha: Brand) -> Iterator[Brand]:
    keyring.clear()
    token = audit.set_context(audit.AuditContext(actor_name="owner", ip="203.0.113.7", via="api"))
    with tenant_context(alpha.tenant):
        yield alpha
    audit.reset_context(token)


def _batch(**overrides: Any) -> Batch:
    request = services.BatchRequest(
        **{"bottles": 100, "bottles_per_case": 6, "cases_per_pallet": 4, "production_date": date(2026, 11, 1)}
        | overrides
    )
    return services.create_batch(request)


def _unzip(batch: Batch, password: str) -> dict[str, bytes]:
    with services.open_download(batch) as fh, pyzipper.AESZipFile(io.BytesIO(fh.read())) as archive:
        archive.setpassword(password.encode())
        return {name: archive.read(name) for name in archive.namelist()}


def test_a_batch_reserves_serial_ranges_and_writes_no_row_per_code(in_alpha: Brand) -> None:
    first = _batch()
    second = _batch(bottles=10, bottles_per_case=0, cases_per_pallet=0, has_outer=False)
    assert (first.bottles, first.cases, first.pallets) == (100, 17, 5)
    assert first.number.startswith("B")
    assert second.number != first.number
    assert second.first_bottle_serial == first.first_bottle_serial + 100
    assert second.cases == 0
    assert second.first_case_serial is None
    assert first.kinds == [
        code_format.Kind.INNER,
        code_format.Kind.OUTER,
        code_format.Kind.CASE,
        code_format.Kind.PALLET,
    ]
    assert first.code_count == 100 * 2 + 17 + 5
    assert AuditEntry.objects.filter(object_type="codes.batch", object_id=str(first.pk), action="create").exists()


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"bottles": 0}, "bottles"),
        ({"bottles": services.MAX_BOTTLES_PER_BATCH + 1}, "bottles"),
        ({"has_inner": False, "has_outer": False}, "has_inner"),
        ({"bottles_per_case": 101}, "bottles_per_case"),
        ({"bottles_per_case": 0, "cases_per_pallet": 4}, "cases_per_pallet"),
        ({"max_downloads": 0}, "max_downloads"),
        ({"sku_id": 999_999}, "sku"),
    ],
)
def test_bad_batch_requests_are_refused_with_the_field_named(
    in_alpha: Brand, overrides: dict[str, Any], field: str
) -> None:
    before = Batch.objects.count()
    with pytest.raises(JiumaError) as refused:
        _batch(**overrides)
    assert refused.value.code == "invalid_batch"
    assert field in refused.value.fields
    assert Batch.objects.count() == before


def test_the_plans_monthly_code_quota_is_enforced(in_alpha: Brand) -> None:
    plan = in_alpha.tenant.plan
    original = plan.max_codes_per_month
    plan.max_codes_per_month = 250
    try:
        _batch()  # 222 codes
        with pytest.raises(JiumaError) as refused:
            _batch(bottles=20, bottles_per_case=0, cases_per_pallet=0)  # 40 more
        assert refused.value.code == "code_quota_exceeded"
        assert refused.value.status_code == 403
    finally:
        plan.max_codes_per_month = original


def test_the_printer_package_holds_every_code_with_its_url_and_a_checked_manifest(in_alpha: Brand) -> None:
    batch = services.generate_package(_batch().pk)
    assert batch.status == BatchStatus.READY
    assert batch.progress == 100
    password = services.reveal_password(batch)
    files = _unzip(batch, password)
    assert sorted(files) == ["case.csv", "inner.csv", "manifest.json", "outer.csv", "pallet.csv"]

    manifest = json.loads(files["manifest.json"])
    assert manifest["batch"] == batch.number
    assert manifest["codes"] == batch.code_count
    import hashlib

    for entry in manifest["files"]:
        assert hashlib.sha256(files[entry["name"]]).hexdigest() == entry["sha256"]
        assert len(files[entry["name"]]) == entry["bytes"]
    package = Path(default_storage.path(batch.package_path)).read_bytes()
    assert batch.package_sha256 == hashlib.sha256(package).hexdigest()  # hashed while written
    assert batch.package_bytes == len(package)

    prefix = services.url_prefix()
    bottles = batch.serial_range(SerialGroup.BOTTLE)
    for name, kind in (("inner.csv", code_format.Kind.INNER), ("outer.csv", code_format.Kind.OUTER)):
        rows = list(csv.DictReader(io.StringIO(files[name].decode())))
        assert len(rows) == 100
        for row, serial in zip(rows, bottles, strict=True):
            assert row["url"].startswith(prefix)
            code = verify(row["url"][len(prefix) :], tenant_number=in_alpha.tenant.number)
            assert (code.kind, code.serial, int(row["serial"]), row["kind"]) == (kind, serial, serial, kind.letter)

    cases = list(csv.DictReader(io.StringIO(files["case.csv"].decode())))
    assert len(cases) == 17
    assert int(cases[0]["first_bottle"]) == bottles.start
    assert int(cases[1]["first_bottle"]) == bottles.start + 6
    assert int(cases[0]["last_bottle"]) == bottles.start + 5
    assert verify(cases[0]["url"][len(prefix) :]).kind == code_format.Kind.CASE
    pallets = list(csv.DictReader(io.StringIO(files["pallet.csv"].decode())))
    assert int(pallets[1]["first_case"]) == batch.first_case_serial + 4


def test_the_package_cannot_be_opened_without_its_password(in_alpha: Brand) -> None:
    batch = services.generate_package(_batch(bottles=6).pk)
    with pytest.raises(RuntimeError):
        _unzip(batch, "not-the-password")


def test_the_password_is_shown_once_and_the_reveal_is_audited(in_alpha: Brand) -> None:
    batch = services.generate_package(_batch(bottles=6).pk)
    password = services.reveal_password(batch)
    assert len(password) == 20
    with pytest.raises(JiumaError) as again:
        services.reveal_password(batch)
    assert again.value.code == "package_password_already_shown"
    batch.refresh_from_db()
    assert batch.password_wrapped in (b"", memoryview(b""))
    assert AuditEntry.objects.filter(object_id=str(batch.pk), detail="reveal package password").count() == 1


def test_downloads_are_limited_and_each_is_audited_with_who_and_where(in_alpha: Brand) -> None:
    batch = services.generate_package(_batch(bottles=6, max_downloads=2).pk)
    for _ in range(2):
        services.open_download(batch).close()
    with pytest.raises(JiumaError) as refused:
        services.open_download(batch)
    assert refused.value.code == "downloads_exhausted"
    entries = AuditEntry.objects.filter(object_id=str(batch.pk), action="download").order_by("id")
    assert [entry.ip for entry in entries] == ["203.0.113.7", "203.0.113.7"]
    assert [entry.actor_name for entry in entries] == ["owner", "owner"]
    batch.refresh_from_db()
    assert batch.downloads == 2


def test_a_package_not_generated_yet_cannot_be_downloaded_or_revealed(in_alpha: Brand) -> None:
    batch = _batch(bottles=6)
    for attempt in (services.open_download, services.reveal_password):
        with pytest.raises(JiumaError) as refused:
            attempt(batch)
        assert refused.value.code == "batch_wrong_status"


def test_a_blank_batch_is_bound_to_a_sku_once(in_alpha: Brand) -> None:
    product = Product.objects.create(name="酱香经典")
    sku = Sku.objects.create(product=product, code="JX-53-500", spec="53%vol 500ml")
    other = Sku.objects.create(product=product, code="JX-53-1000", spec="53%vol 1000ml")
    batch = _batch(bottles=6)
    assert batch.sku is None
    bound = services.bind_sku(batch, sku)
    assert bound.sku == sku
    assert bound.bound_at is not None
    with pytest.raises(JiumaError) as refused:
        services.bind_sku(batch, other)
    assert refused.value.code == "batch_already_bound"


def test_code_status_is_sparse_and_the_newest_rule_wins(in_alpha: Brand) -> None:
    batch = _batch()
    bottles = batch.serial_range(SerialGroup.BOTTLE)
    middle = bottles.start + 50
    assert services.status_of(SerialGroup.BOTTLE, middle) is None  # never activated
    services.set_batch_status(batch, CodeStatus.ACTIVE)
    assert services.status_of(SerialGroup.BOTTLE, middle) == CodeStatus.ACTIVE
    assert services.status_of(SerialGroup.CASE, batch.first_case_serial) == CodeStatus.ACTIVE
    services.set_status(SerialGroup.BOTTLE, middle, middle + 9, CodeStatus.FROZEN, reason="抽检")
    assert services.status_of(SerialGroup.BOTTLE, middle + 9) == CodeStatus.FROZEN
    assert services.status_of(SerialGroup.BOTTLE, middle + 10) == CodeStatus.ACTIVE
    services.set_status(SerialGroup.BOTTLE, middle, middle, CodeStatus.BLACKLISTED, reason="举报假酒")
    assert services.status_of(SerialGroup.BOTTLE, middle) == CodeStatus.BLACKLISTED
    assert services.batch_of(SerialGroup.BOTTLE, middle) == batch
    assert services.batch_of(SerialGroup.BOTTLE, bottles.stop) is None


@pytest.mark.parametrize(
    ("first", "last", "status", "reason", "code"),
    [
        (5, 4, CodeStatus.VOID, "", "invalid_serial_range"),
        (1, 1, CodeStatus.BLACKLISTED, "  ", "invalid_serial_range"),
        (10**9, 10**9, CodeStatus.VOID, "", "serials_not_issued"),
    ],
)
def test_bad_status_changes_are_refused(
    in_alpha: Brand, first: int, last: int, status: CodeStatus, reason: str, code: str
) -> None:
    _batch()
    with pytest.raises(JiumaError) as refused:
        services.set_status(SerialGroup.BOTTLE, first, last, status, reason=reason)
    assert refused.value.code == code


# --- concurrency: the database decides, not the application -------------------------------------


def _run_threads(brand: Brand, jobs: list[Any]) -> list[Any]:
    return run_concurrently(jobs, tenant=brand.tenant)


@pytest.mark.django_db(transaction=False)
def test_concurrent_batches_get_disjoint_serials_and_downloads_never_pass_the_limit(
    alpha: Brand,
) -> None:
    """Committed work in other connections (as concurrent requests would do), cleaned up after."""
    created: list[Any] = []
    try:
        created = _run_threads(
            alpha,
            [lambda: services.create_batch(services.BatchRequest(bottles=50, max_downloads=3)) for _ in range(4)],
        )
        batches = [item for item in created if isinstance(item, Batch)]
        assert len(batches) == 4, created
        ranges = sorted((b.first_bottle_serial, b.first_bottle_serial + b.bottles) for b in batches)
        for (_, end), (start, _) in itertools.pairwise(ranges):
            assert start >= end, ranges
        assert len({b.number for b in batches}) == 4

        target = batches[0]
        ready = _run_threads(alpha, [lambda: services.generate_package(target.pk)])
        assert isinstance(ready[0], Batch), ready

        def download() -> str:
            services.open_download(target).close()
            return "ok"

        outcomes = _run_threads(alpha, [download for _ in range(8)])
        assert outcomes.count("ok") == 3, outcomes
        refusals = [item for item in outcomes if isinstance(item, JiumaError)]
        assert [item.code for item in refusals] == ["downloads_exhausted"] * 5
        with tenant_context(alpha.tenant):
            assert Batch.objects.get(pk=target.pk).downloads == 3
    finally:

        def cleanup() -> int:
            return Batch.objects.filter(pk__in=[b.pk for b in created if isinstance(b, Batch)]).delete()[0]

        _run_threads(alpha, [cleanup])


def test_the_cli_creates_a_batch_shows_progress_and_prints_the_password_once(alpha: Brand, capsys: Any) -> None:
    from django.core.management import call_command

    call_command("create_code_batch", "alpha", "--bottles", "120000", "--per-case", "6")
    out = capsys.readouterr().out
    assert "100%" in out
    assert "package password (shown once" in out
    with tenant_context(alpha.tenant):
        batch = Batch.objects.get(bottles=120_000)
        assert batch.status == BatchStatus.READY
        assert not batch.password_wrapped
        assert batch.cases == 20_000
