"""Scanning over a real server: two brands' caps on the one short code host, racing, in real processes.

What the test client cannot show: the code host routing each request to its brand by the number in
the code while the same worker threads serve the other brand in between (per-process keyring,
batch cache and brand cache included), and the first-scan facts staying exact when many phones
scan one code at the same moment (the summary upsert).

The batches are committed in their own connections (the server sees only committed data) and
removed afterwards with everything the scans wrote.
"""

from __future__ import annotations

import re
import threading
from collections import Counter
from typing import Any

import pytest
from django_tenants.utils import tenant_context

from codes import format as code_format
from codes import services
from codes.keyring import keyring
from codes.models import Batch, CodeStatus, CodeSummary, DiversionAlert, Scan, SerialGroup, StatusRule
from tests.conftest import Brand
from tests.support.server import running_server, suite_database_url
from tests.support.threads import run_concurrently

pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("real_server")]

CODE_HOST = "c.localhost"
BOTTLES = 12
PHONES = 8  # concurrent clients
_TOKEN = re.compile(r'<script id="place-token" type="application/json">"([^"]+)"</script>')


def _committed_batch(brand: Brand) -> Batch:
    def make() -> Batch:
        batch = services.create_batch(services.BatchRequest(bottles=BOTTLES, bottles_per_case=6, note="server scans"))
        services.set_batch_status(batch, CodeStatus.ACTIVE)
        return batch

    (batch,) = run_concurrently([make], tenant=brand.tenant)
    assert isinstance(batch, Batch), batch
    return batch


def _remove(brand: Brand, batch: Batch) -> None:
    def remove() -> None:
        DiversionAlert.objects.all().delete()
        Scan.objects.filter(batch_id=batch.pk).delete()
        bottles = batch.serial_range(SerialGroup.BOTTLE)
        CodeSummary.objects.filter(serial__gte=bottles.start, serial__lt=bottles.stop).delete()
        StatusRule.objects.filter(batch=batch).delete()
        Batch.objects.filter(pk=batch.pk).delete()

    run_concurrently([remove], tenant=brand.tenant)


def _codes(brand: Brand, batch: Batch, kind: code_format.Kind) -> list[str]:
    key = keyring.current_key(brand.tenant.number)
    start = batch.serial_range(SerialGroup.BOTTLE).start
    return [code_format.make(key, kind, start + index) for index in range(BOTTLES)]


def _in(brand: Brand, query: Any) -> Any:
    with tenant_context(brand.tenant):
        return query()


def test_two_brands_codes_on_one_code_host_each_reach_their_brand_and_first_scans_stay_exact(
    alpha: Brand, beta: Brand
) -> None:
    keyring.clear()
    batches = {alpha.tenant.schema_name: _committed_batch(alpha), beta.tenant.schema_name: _committed_batch(beta)}
    try:
        codes = {
            brand.tenant.schema_name: _codes(brand, batches[brand.tenant.schema_name], code_format.Kind.OUTER)
            for brand in (alpha, beta)
        }
        names = {alpha.tenant.schema_name: alpha.tenant.name, beta.tenant.schema_name: beta.tenant.name}
        # Every phone scans every code of both brands, alternating brands, each from its own offset:
        # so each code is scanned PHONES times, often at the same moment, on shared server threads.
        plan = [code for pair in zip(*codes.values(), strict=True) for code in pair]
        owner = {code: schema for schema, listed in codes.items() for code in listed}
        problems: list[str] = []
        firsts: Counter[str] = Counter()
        lock = threading.Lock()

        with running_server(suite_database_url(), workers=2, threads=4) as server:

            def phone(offset: int) -> None:
                with server.connection() as conn:
                    for step in range(len(plan)):
                        code = plan[(offset + step) % len(plan)]
                        reply = conn.request("GET", f"/C/{code}", host=CODE_HOST)
                        page = reply.text
                        with lock:
                            if reply.status != 200 or 'data-verdict="genuine"' not in page:
                                problems.append(f"{code}: {reply.status} {page[:200]}")
                            elif names[owner[code]] not in page:
                                problems.append(f"{code}: not {names[owner[code]]}'s page")
                            if "这是该码的首次查询" in page:
                                firsts[code] += 1

            threads = [threading.Thread(target=phone, args=(index * 3,)) for index in range(PHONES)]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join(120)
            assert not problems, problems[:5]

            # The position a phone shares goes to the right brand's scan too, over the real server.
            beta_code = codes[beta.tenant.schema_name][0]
            page = server.request("GET", f"/C/{beta_code}", host=CODE_HOST).text
            token = _TOKEN.search(page)
            assert token is not None
            placed = server.request(
                "POST",
                f"/C/{beta_code}/place",
                host=CODE_HOST,
                json={"token": token[1], "latitude": 26.58, "longitude": 106.71},
            )
            assert placed.status == 200, placed.text
            assert placed.json()["region"]["code"] == "520100"
            assert "Traceback" not in server.log(), server.log_tail()

        # Exactly one phone was told "first scan" per code, and the counts are exact.
        assert firsts == Counter(dict.fromkeys(owner, 1)), firsts
        for brand in (alpha, beta):
            schema = brand.tenant.schema_name
            batch = batches[schema]
            summaries = _in(
                brand,
                lambda batch=batch: list(
                    CodeSummary.objects.filter(kind=code_format.Kind.OUTER).values_list("scan_count", flat=True)
                ),
            )
            extra = 1 if brand is beta else 0  # the scan before the position
            assert sorted(summaries) == sorted([PHONES] * (BOTTLES - 1) + [PHONES + extra]), summaries
            scans = _in(brand, lambda batch=batch: Scan.objects.filter(batch_id=batch.pk).count())
            assert scans == PHONES * BOTTLES + extra
            first_rows = _in(brand, lambda batch=batch: Scan.objects.filter(batch_id=batch.pk, is_first=True).count())
            assert first_rows == BOTTLES
        located = _in(beta, lambda: list(Scan.objects.filter(located_by="position").values_list("region_code")))
        assert located == [("520100",)]
    finally:
        _remove(alpha, batches[alpha.tenant.schema_name])
        _remove(beta, batches[beta.tenant.schema_name])
