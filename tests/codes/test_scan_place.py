"""The position a consumer's phone shares after the scan page loaded: once per scan, signed, checked."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest
from django.core import signing
from django.test import Client
from django_tenants.utils import tenant_context

from codes import format as code_format
from codes import scanning, services
from codes.channel import record_movement
from codes.keyring import keyring
from codes.models import Batch, CodeStatus, CodeSummary, DiversionAlert, LocatedBy, MovementKind, Scan, SerialGroup
from commerce.services import channel as channel_services
from tenants.errors import JiumaError
from tests.conftest import Brand
from tests.support.threads import run_concurrently

CODE_HOST = "c.localhost"
GUIYANG = (26.580, 106.710)  # 贵阳市中心
SHANGHAI = (31.240, 121.490)  # 外滩
_TOKEN = re.compile(r'<script id="place-token" type="application/json">"([^"]+)"</script>')


@pytest.fixture
def batch(alpha: Brand) -> Batch:
    keyring.clear()
    with tenant_context(alpha.tenant):
        made = services.create_batch(services.BatchRequest(bottles=24, bottles_per_case=6))
        services.set_batch_status(made, CodeStatus.ACTIVE)
    return made


def _code(brand: Brand, batch: Batch, kind: code_format.Kind, index: int = 0) -> str:
    serial = batch.serial_range(SerialGroup.of(kind)).start + index
    return code_format.make(keyring.current_key(brand.tenant.number), kind, serial)


def _scan(code: str) -> str:
    """Scan on the code host (from 127.0.0.1: no IP region) and return the page's place token."""
    page = Client(HTTP_HOST=CODE_HOST).get(f"/C/{code}", REMOTE_ADDR="127.0.0.1")
    assert page.status_code == 200
    found = _TOKEN.search(page.content.decode())
    assert found is not None, "the scan page offers no place token"
    return found[1]


def _place(code: str, body: Any, *, raw: bytes | None = None) -> Any:
    data = raw if raw is not None else json.dumps(body)
    return Client(HTTP_HOST=CODE_HOST).post(f"/C/{code}/place", data=data, content_type="application/json")


def _position(token: str, where: tuple[float, float]) -> dict[str, Any]:
    return {"token": token, "latitude": where[0], "longitude": where[1]}


def _scan_row(alpha: Brand) -> Scan:
    with tenant_context(alpha.tenant):
        return Scan.objects.order_by("-id").first()  # type: ignore[return-value]


def test_a_shared_position_places_the_scan_and_its_first_scan_summary(alpha: Brand, batch: Batch) -> None:
    code = _code(alpha, batch, code_format.Kind.OUTER, 1)
    token = _scan(code)
    answer = _place(code, _position(token, (26.58049, 106.71049)))
    assert answer.status_code == 200, answer.content
    assert answer.json()["region"] == {"code": "520100", "name": "贵州省贵阳市"}
    scan = _scan_row(alpha)
    assert (scan.latitude, scan.longitude) == (26.58, 106.71)  # rounded to ~100 m, no finer
    assert scan.region_code == "520100"
    assert scan.located_by == LocatedBy.POSITION
    with tenant_context(alpha.tenant):
        summary = CodeSummary.objects.get(kind=code_format.Kind.OUTER, serial=batch.first_bottle_serial + 1)
    assert summary.first_region_code == "520100"
    # The next consumer sees where the bottle was first checked.
    page = Client(HTTP_HOST=CODE_HOST).get(f"/C/{code}", REMOTE_ADDR="127.0.0.1").content.decode()
    assert "首次查询地：贵州省贵阳市" in page


def test_a_scan_takes_one_position_only_even_when_two_arrive_at_once(alpha: Brand, batch: Batch) -> None:
    """Four positions for one scan, committed in separate connections at the same moment: one lands."""
    code = _code(alpha, batch, code_format.Kind.OUTER, 2)
    parsed = code_format.verify(keyring.current_key(alpha.tenant.number), code)

    def scan() -> Scan:
        return Scan.objects.create(kind=parsed.kind, serial=parsed.serial, key_version=parsed.version)

    (row,) = run_concurrently([scan], tenant=alpha.tenant)
    assert isinstance(row, Scan), row
    try:
        token = scanning.place_token(
            scanning.ScanResult(scanning.Verdict.GENUINE, code=parsed, scan_id=row.id, scanned_at=row.scanned_at)
        )
        assert token is not None
        jobs = [lambda: scanning.record_scan_place(parsed, token, *GUIYANG) for _ in range(4)]
        outcomes = run_concurrently(jobs, tenant=alpha.tenant)
        placed = [item for item in outcomes if isinstance(item, scanning.PlaceResult)]
        refused = [item for item in outcomes if isinstance(item, JiumaError)]
        assert len(placed) == 1, outcomes
        assert len(refused) == 3, outcomes
        assert {item.code for item in refused} == {"scan_already_located"}
        assert {item.status_code for item in refused} == {409}
        (stored,) = run_concurrently([lambda: Scan.objects.get(id=row.id)], tenant=alpha.tenant)
        assert (stored.latitude, stored.longitude, stored.region_code) == (*GUIYANG, "520100")
    finally:
        run_concurrently([lambda: Scan.objects.filter(id=row.id).delete()], tenant=alpha.tenant)


def test_a_second_position_for_a_scan_is_refused(alpha: Brand, batch: Batch) -> None:
    code = _code(alpha, batch, code_format.Kind.OUTER, 2)
    token = _scan(code)
    assert _place(code, _position(token, GUIYANG)).status_code == 200
    later = _place(code, _position(token, SHANGHAI))
    assert later.status_code == 409
    assert later.json()["code"] == "scan_already_located"
    assert _scan_row(alpha).region_code == "520100"


def test_a_position_the_points_cannot_place_is_kept_without_changing_the_region(alpha: Brand, batch: Batch) -> None:
    code = _code(alpha, batch, code_format.Kind.OUTER, 3)
    answer = _place(code, _position(_scan(code), (35.69, 139.69)))  # 东京
    assert answer.status_code == 200
    assert answer.json() == {"region": None}
    scan = _scan_row(alpha)
    assert (scan.latitude, scan.longitude, scan.region_code, scan.located_by) == (35.69, 139.69, "", "")


@pytest.mark.parametrize(
    ("change", "status", "error"),
    [
        ({"token": "forged"}, 403, "invalid_place_token"),
        ({"token": ""}, 403, "invalid_place_token"),
        ({"latitude": 91}, 400, "invalid_position"),
        ({"longitude": "121.49"}, 400, "invalid_position"),
        ({"latitude": None}, 400, "invalid_position"),
        ({"latitude": True}, 400, "invalid_position"),
    ],
)
def test_bad_place_requests_are_refused_with_a_reason(
    alpha: Brand, batch: Batch, change: dict[str, Any], status: int, error: str
) -> None:
    code = _code(alpha, batch, code_format.Kind.OUTER, 4)
    body = {**_position(_scan(code), SHANGHAI), **change}
    answer = _place(code, body)
    assert answer.status_code == status
    assert answer.json()["code"] == error
    assert answer.json()["message"]  # Chinese, for the page
    assert _scan_row(alpha).latitude is None


def test_malformed_bodies_foreign_codes_and_get_requests_are_refused(alpha: Brand, batch: Batch) -> None:
    code = _code(alpha, batch, code_format.Kind.OUTER, 5)
    token = _scan(code)
    assert _place(code, None, raw=b"{not json").json()["code"] == "malformed_request"
    assert _place(code, None, raw=b"[1, 2]").status_code == 400
    # The token names one code: it does not place a scan of another (not even the same bottle's inner code).
    other = _code(alpha, batch, code_format.Kind.INNER, 5)
    assert _place(other, _position(token, SHANGHAI)).json()["code"] == "invalid_place_token"
    forged = code[:-1] + ("0" if code[-1] != "0" else "1")
    assert _place(forged, _position(token, SHANGHAI)).status_code == 404
    assert Client(HTTP_HOST=CODE_HOST).get(f"/C/{code}/place").status_code == 405
    assert _scan_row(alpha).latitude is None


def test_an_expired_token_asks_for_a_new_scan(alpha: Brand, batch: Batch, monkeypatch: pytest.MonkeyPatch) -> None:
    code = _code(alpha, batch, code_format.Kind.OUTER, 6)
    token = _scan(code)
    monkeypatch.setattr(scanning, "PLACE_TOKEN_SECONDS", -1)
    answer = _place(code, _position(token, SHANGHAI))
    assert answer.status_code == 410
    assert answer.json()["code"] == "place_token_expired"


def test_a_token_of_another_brand_does_not_place_this_brands_scan(alpha: Brand, beta: Brand, batch: Batch) -> None:
    code = _code(alpha, batch, code_format.Kind.OUTER, 7)
    _scan(code)
    scan = _scan_row(alpha)
    payload = [beta.tenant.number, scan.id, scan.scanned_at.isoformat(), int(code_format.Kind.OUTER), scan.serial]
    token = signing.dumps(payload, salt=scanning.PLACE_TOKEN_SALT, compress=False)
    assert _place(code, _position(token, SHANGHAI)).status_code == 403


def test_a_position_outside_the_dealers_area_raises_the_diversion_alert_ip_could_not(
    alpha: Brand, batch: Batch
) -> None:
    with tenant_context(alpha.tenant):
        dealer = channel_services.create_dealer(code="GY01", name="贵阳一号经销商", areas=["520100"])
        case = _code(alpha, batch, code_format.Kind.CASE, 0)
        record_movement(case, MovementKind.OUTBOUND, dealer=dealer, by_name="仓管")
    inside, outside = _code(alpha, batch, code_format.Kind.OUTER, 0), _code(alpha, batch, code_format.Kind.OUTER, 1)
    assert _place(inside, _position(_scan(inside), GUIYANG)).status_code == 200
    with tenant_context(alpha.tenant):
        assert not DiversionAlert.objects.exists()
    assert _place(outside, _position(_scan(outside), SHANGHAI)).status_code == 200
    with tenant_context(alpha.tenant):
        (alert,) = DiversionAlert.objects.all()
    assert alert.serial == batch.first_bottle_serial + 1
    assert alert.scan_region_code == "310000"
    assert alert.evidence["scan"]["located_by"] == "position"
    assert alert.evidence["dealer"]["code"] == "GY01"
