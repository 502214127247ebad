"""Dealer outbound and store receiving by case code; a bottle's channel; anti-diversion alerts."""

from __future__ import annotations

from typing import Any

import pytest
from django.test import Client
from django_tenants.utils import tenant_context

from codes import channel, services
from codes import format as code_format
from codes.channel import MoveOutcome
from codes.keyring import keyring
from codes.models import AlertSeverity, Batch, DiversionAlert, MovementKind, SerialGroup
from commerce.models import Dealer, Store
from commerce.services import channel as channel_services
from tests.conftest import Brand

GUIYANG_IP, GUANGZHOU_IP, NANJING_IP, HANGZHOU_IP = "58.16.0.1", "202.96.128.86", "114.114.114.114", "223.5.5.5"
GUIYANG, GUIZHOU_ZUNYI = "520100", "520300"


@pytest.fixture
def setup(alpha: Brand) -> Any:
    keyring.clear()
    with tenant_context(alpha.tenant):
        dealer = channel_services.create_dealer(code="GY01", name="贵阳一号经销商", areas=[GUIYANG])
        store = channel_services.create_store(code="S001", name="南明门店", dealer_id=dealer.pk, region_code="520102")
        other = channel_services.create_dealer(code="ZY01", name="遵义经销商", areas=[GUIZHOU_ZUNYI])
        batch = services.create_batch(services.BatchRequest(bottles=24, bottles_per_case=6, cases_per_pallet=2))
        yield {"brand": alpha, "dealer": dealer, "store": store, "other": other, "batch": batch}


def _code(setup: Any, kind: code_format.Kind, index: int = 0) -> str:
    batch: Batch = setup["batch"]
    serial = batch.serial_range(SerialGroup.of(kind)).start + index
    return code_format.make(keyring.current_key(setup["brand"].tenant.number), kind, serial)


def _out(setup: Any, text: str, dealer: Dealer | None = None) -> channel.MoveResult:
    return channel.record_movement(text, MovementKind.OUTBOUND, dealer=dealer or setup["dealer"], by_name="仓管")


def test_outbound_by_case_code_gives_every_bottle_in_the_case_its_dealer(setup: Any) -> None:
    case = _code(setup, code_format.Kind.CASE, 1)
    result = _out(setup, services.url_prefix() + case)  # scanners type the whole URL
    assert result.outcome == MoveOutcome.RECORDED
    assert result.bottles == 6
    batch = setup["batch"]
    for index in range(6, 12):
        bottle = channel.channel_of_bottle(batch.first_bottle_serial + index)
        assert bottle is not None
        assert bottle.dealer == setup["dealer"]
        assert bottle.case_serial == batch.first_case_serial + 1
    assert channel.channel_of_bottle(batch.first_bottle_serial) is None  # another case, not shipped


def test_a_pallet_outbound_covers_its_cases_and_a_case_scan_overrides_it(setup: Any) -> None:
    batch = setup["batch"]
    assert _out(setup, _code(setup, code_format.Kind.PALLET, 0)).bottles == 12
    bottle = batch.first_bottle_serial + 7
    assert channel.channel_of_bottle(bottle).dealer == setup["dealer"]  # type: ignore[union-attr]
    _out(setup, _code(setup, code_format.Kind.CASE, 1), dealer=setup["other"])
    assert channel.channel_of_bottle(bottle).dealer == setup["other"]  # type: ignore[union-attr]


def test_bad_scans_at_the_terminal_say_why(setup: Any, beta: Brand) -> None:
    bottle = _code(setup, code_format.Kind.OUTER, 0)
    assert _out(setup, bottle).outcome == MoveOutcome.NOT_A_CASE
    assert _out(setup, "HTTP://C.LOCALHOST:8000/C/NOTACODE").outcome == MoveOutcome.NOT_GENUINE
    case = _code(setup, code_format.Kind.CASE, 0)
    assert _out(setup, case).outcome == MoveOutcome.RECORDED
    repeated = _out(setup, case)
    assert repeated.outcome == MoveOutcome.REPEATED
    assert "无需重复" in repeated.message


def test_a_store_receiving_a_case_its_dealer_did_not_ship_is_flagged(setup: Any) -> None:
    store: Store = setup["store"]
    mine, theirs = _code(setup, code_format.Kind.CASE, 0), _code(setup, code_format.Kind.CASE, 2)
    _out(setup, mine)
    _out(setup, theirs, dealer=setup["other"])
    ok = channel.record_movement(mine, MovementKind.RECEIVE, store=store)
    assert ok.outcome == MoveOutcome.RECORDED
    flagged = channel.record_movement(theirs, MovementKind.RECEIVE, store=store)
    assert flagged.outcome == MoveOutcome.DEALER_MISMATCH
    assert flagged.movement is not None


def _consumer_scan(setup: Any, kind: code_format.Kind, index: int, ip: str) -> Any:
    return Client(HTTP_HOST=setup["brand"].host).get(f"/C/{_code(setup, kind, index)}", REMOTE_ADDR=ip)


def test_a_scan_inside_the_dealers_area_raises_no_alert(setup: Any) -> None:
    _out(setup, _code(setup, code_format.Kind.CASE, 0))
    assert _consumer_scan(setup, code_format.Kind.OUTER, 0, GUIYANG_IP).status_code == 200
    assert not DiversionAlert.objects.exists()


def test_a_scan_in_another_province_raises_one_alert_with_the_evidence_chain(setup: Any) -> None:
    batch = setup["batch"]
    _out(setup, _code(setup, code_format.Kind.CASE, 0))
    _consumer_scan(setup, code_format.Kind.OUTER, 2, GUANGZHOU_IP)
    _consumer_scan(setup, code_format.Kind.INNER, 2, GUANGZHOU_IP)  # same bottle again: still one alert
    (alert,) = DiversionAlert.objects.all()
    assert alert.serial == batch.first_bottle_serial + 2
    assert alert.dealer == setup["dealer"]
    assert alert.severity == AlertSeverity.MEDIUM
    assert alert.scan_region_code == "440100"
    evidence = alert.evidence
    assert evidence["case_serial"] == batch.first_case_serial
    assert evidence["dealer"]["code"] == "GY01"
    assert evidence["dealer_areas"][0]["code"] == GUIYANG
    assert "广州" in evidence["scan"]["region"]


def test_unshipped_bottles_and_imprecise_places_raise_nothing(setup: Any) -> None:
    _consumer_scan(setup, code_format.Kind.OUTER, 0, GUANGZHOU_IP)  # case 0 never shipped
    dealer = setup["dealer"]
    channel_services.set_dealer_areas(dealer.pk, ["520102"])  # one district: an IP-located city can't tell
    _out(setup, _code(setup, code_format.Kind.CASE, 1))
    _consumer_scan(setup, code_format.Kind.OUTER, 6, GUIYANG_IP)
    assert not DiversionAlert.objects.exists()


def test_repeated_diversion_by_one_dealer_escalates(setup: Any) -> None:
    _out(setup, _code(setup, code_format.Kind.CASE, 0))
    for index, ip in enumerate((GUANGZHOU_IP, NANJING_IP, HANGZHOU_IP)):
        _consumer_scan(setup, code_format.Kind.OUTER, index, ip)
    severities = list(DiversionAlert.objects.order_by("id").values_list("severity", flat=True))
    assert severities == [AlertSeverity.MEDIUM, AlertSeverity.MEDIUM, AlertSeverity.HIGH]


def test_a_warehouse_system_posts_outbound_scans_with_its_key(setup: Any) -> None:
    from tenants.brand import api_keys

    raw = api_keys.issue("WMS", ["outbound:write"]).raw
    client = Client(HTTP_HOST=setup["brand"].host, HTTP_AUTHORIZATION=f"Bearer {raw}")
    body = {
        "kind": "outbound",
        "dealer_id": setup["dealer"].pk,
        "codes": [_code(setup, code_format.Kind.CASE, 0), _code(setup, code_format.Kind.OUTER, 0), "junk"],
    }
    response = client.post("/api/v1/codes/movements/", body, content_type="application/json")
    assert response.status_code == 200, response.content
    assert [item["outcome"] for item in response.json()["results"]] == ["recorded", "not_a_case", "not_genuine"]
    assert response.json()["recorded"] == 1
    bad_dealer = client.post(
        "/api/v1/codes/movements/", {**body, "dealer_id": 999_999}, content_type="application/json"
    )
    assert bad_dealer.status_code == 400
    assert bad_dealer.json()["code"] == "invalid_movement"
    no_scope = api_keys.issue("reader", ["batches:read"]).raw
    refused = Client(HTTP_HOST=setup["brand"].host, HTTP_AUTHORIZATION=f"Bearer {no_scope}").post(
        "/api/v1/codes/movements/", body, content_type="application/json"
    )
    assert refused.status_code == 403
