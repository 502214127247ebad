"""Scanning a cap: the authenticity page, the scan record, first-scan facts, warnings, the code host."""

from __future__ import annotations

from datetime import date
from typing import Any

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from django_tenants.utils import tenant_context

from codes import format as code_format
from codes import partitions, services
from codes.keyring import keyring
from codes.models import Batch, CodeStatus, CodeSummary, Scan, SerialGroup
from codes.scanning import Verdict, record_scan
from commerce.models import Product, Sku
from tests.conftest import Brand

CODE_HOST = "c.localhost"


@pytest.fixture
def batch(alpha: Brand) -> Batch:
    keyring.clear()
    with tenant_context(alpha.tenant):
        product = Product.objects.create(name="酱香经典")
        sku = Sku.objects.create(product=product, code="JX-53-500", spec="53%vol 500ml")
        made = services.create_batch(
            services.BatchRequest(
                bottles=20,
                bottles_per_case=6,
                sku_id=sku.pk,
                production_date=date(2026, 10, 8),
                production_line="3号线",
            )
        )
        services.set_batch_status(made, CodeStatus.ACTIVE)
    return made


def _code(brand: Brand, batch: Batch, kind: code_format.Kind, index: int = 0) -> str:
    serial = batch.serial_range(SerialGroup.of(kind)).start + index
    return code_format.make(keyring.current_key(brand.tenant.number), kind, serial)


def _scan(host: str, code: str, ip: str = "127.0.0.1") -> Any:
    return Client(HTTP_HOST=host).get(f"/C/{code}", REMOTE_ADDR=ip)


def test_a_genuine_outer_code_shows_the_product_and_records_a_first_scan(alpha: Brand, batch: Batch) -> None:
    page = _scan(alpha.host, _code(alpha, batch, code_format.Kind.OUTER, 3))
    body = page.content.decode()
    assert page.status_code == 200
    assert 'data-verdict="genuine"' in body
    assert "正品验证通过" in body
    assert "这是该码的首次查询" in body
    assert "酱香经典 53%vol 500ml" in body
    assert batch.number in body
    assert "2026年10月8日" in body
    assert page["Cache-Control"] == "no-store"
    with tenant_context(alpha.tenant):
        (scan,) = Scan.objects.filter(serial=batch.first_bottle_serial + 3)
        assert scan.is_first
        assert scan.kind == code_format.Kind.OUTER
        assert scan.batch_id == batch.pk


def test_a_second_scan_says_when_and_how_often_the_code_was_checked(alpha: Brand, batch: Batch) -> None:
    code = _code(alpha, batch, code_format.Kind.OUTER, 4)
    _scan(alpha.host, code)
    again = _scan(alpha.host, code.lower()).content.decode()  # another spelling of the same code
    assert "已被查询 2 次" in again
    with tenant_context(alpha.tenant):
        summary = CodeSummary.objects.get(kind=code_format.Kind.OUTER, serial=batch.first_bottle_serial + 4)
        assert summary.scan_count == 2
        firsts = [scan.is_first for scan in Scan.objects.filter(kind=1, serial=summary.serial).order_by("id")]
        assert firsts == [True, False]


def test_an_outer_code_warns_when_its_bottles_inner_code_was_already_scanned(alpha: Brand, batch: Batch) -> None:
    outer = _code(alpha, batch, code_format.Kind.OUTER, 5)
    assert 'data-warning="inner-scanned"' not in _scan(alpha.host, outer).content.decode()
    _scan(alpha.host, _code(alpha, batch, code_format.Kind.INNER, 5))
    assert 'data-warning="inner-scanned"' in _scan(alpha.host, outer).content.decode()
    neighbour = _scan(alpha.host, _code(alpha, batch, code_format.Kind.OUTER, 6)).content.decode()
    assert 'data-warning="inner-scanned"' not in neighbour


def test_a_forged_code_is_not_genuine_and_costs_no_query(alpha: Brand, batch: Batch) -> None:
    genuine = _code(alpha, batch, code_format.Kind.OUTER, 7)
    forged = genuine[:-1] + ("0" if genuine[-1] != "0" else "1")
    _scan(alpha.host, genuine)  # warm the keyring
    with tenant_context(alpha.tenant), CaptureQueriesContext(connection) as captured:
        assert record_scan(forged).verdict == Verdict.NOT_GENUINE
    assert captured.captured_queries == []
    page = _scan(alpha.host, forged)
    assert page.status_code == 404
    assert "未查询到该码" in page.content.decode()
    with tenant_context(alpha.tenant):
        assert Scan.objects.filter(serial=batch.first_bottle_serial + 7).count() == 1


def test_another_brands_code_is_not_genuine_on_this_brands_host(alpha: Brand, beta: Brand, batch: Batch) -> None:
    page = _scan(beta.host, _code(alpha, batch, code_format.Kind.OUTER, 8))
    assert page.status_code == 404
    assert 'data-verdict="not_genuine"' in page.content.decode()
    with tenant_context(beta.tenant):
        assert not Scan.objects.exists()


@pytest.mark.parametrize(
    ("status", "verdict", "text"),
    [
        (CodeStatus.VOID, "void", "该码已作废"),
        (CodeStatus.FROZEN, "frozen", "该码已冻结"),
        (CodeStatus.BLACKLISTED, "blacklisted", "该码已列入黑名单"),
    ],
)
def test_voided_frozen_and_blacklisted_codes_say_so(
    alpha: Brand, batch: Batch, status: CodeStatus, verdict: str, text: str
) -> None:
    serial = batch.first_bottle_serial + 9
    with tenant_context(alpha.tenant):
        services.set_status(SerialGroup.BOTTLE, serial, serial, status, reason="窜货回收")
    body = _scan(alpha.host, _code(alpha, batch, code_format.Kind.OUTER, 9)).content.decode()
    assert f'data-verdict="{verdict}"' in body
    assert text in body


def test_a_code_not_yet_activated_is_genuine_with_a_note(alpha: Brand) -> None:
    keyring.clear()
    with tenant_context(alpha.tenant):
        fresh = services.create_batch(services.BatchRequest(bottles=2))
    body = _scan(alpha.host, _code(alpha, fresh, code_format.Kind.OUTER)).content.decode()
    assert 'data-verdict="genuine"' in body
    assert "未激活" in body


def test_the_short_code_host_routes_any_brands_code_to_its_brand(alpha: Brand, beta: Brand, batch: Batch) -> None:
    page = _scan(CODE_HOST, _code(alpha, batch, code_format.Kind.OUTER, 10))
    assert page.status_code == 200
    assert alpha.tenant.name in page.content.decode()
    with tenant_context(beta.tenant):
        beta_batch = services.create_batch(services.BatchRequest(bottles=1))
    beta_page = _scan(CODE_HOST, _code(beta, beta_batch, code_format.Kind.OUTER)).content.decode()
    assert beta.tenant.name in beta_page
    assert alpha.tenant.name not in beta_page


@pytest.mark.parametrize("path", ["/C/NOTACODE", "/C/" + "0" * 24, "/c/" + "Z" * 24])
def test_junk_on_the_code_host_gets_a_chinese_not_genuine_page(db: None, path: str) -> None:
    page = Client(HTTP_HOST=CODE_HOST).get(path)
    assert page.status_code == 404
    assert "可能不是正品" in page.content.decode()


def test_scans_land_in_monthly_partitions_made_ahead(alpha: Brand) -> None:
    with tenant_context(alpha.tenant):
        names = partitions.existing_partitions()
        today = timezone.localdate()
        assert partitions.partition_name(date(today.year, today.month, 1)) in names
        assert "codes_scan_default" in names
        # A month far ahead is made on demand; a row that had landed in the default partition moves.
        future = timezone.now().replace(year=today.year + 3)
        Scan.objects.create(scanned_at=future, kind=1, serial=1, key_version=1, region_code="", user_agent="")
        created = partitions.ensure_scan_partitions(months_ahead=0, today=timezone.localdate(future))
        assert created == [partitions.partition_name(date(future.year, future.month, 1))]
        with connection.cursor() as cursor:
            cursor.execute(f'SELECT count(*) FROM "{created[0]}"')
            assert cursor.fetchone()[0] == 1
            cursor.execute("SELECT count(*) FROM codes_scan_default")
            assert cursor.fetchone()[0] == 0


def test_a_scan_costs_a_bounded_number_of_queries(alpha: Brand, batch: Batch) -> None:
    """Warm, a scan is one statement: it upserts the code's summary, inserts the scan, reads the
    code's status rule and checks the bottle's inner code. Batch and brand profile come from
    per-process caches. A regression shows up here first."""
    code = _code(alpha, batch, code_format.Kind.OUTER, 11)
    client = Client(HTTP_HOST=CODE_HOST)
    client.get(f"/C/{code}")  # warm: host, brand number, keyring
    with CaptureQueriesContext(connection) as captured:
        assert client.get(f"/C/{code}").status_code == 200
    assert len(captured.captured_queries) == 1, [query["sql"][:80] for query in captured.captured_queries]
