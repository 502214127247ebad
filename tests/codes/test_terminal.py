"""The terminal H5: store clerks receive into their store, warehouse staff ship out to a dealer,
everyone else is refused; a handheld scanner's input (URL + Enter) works."""

from __future__ import annotations

import json
from typing import Any

import pytest
from django.test import Client
from django_tenants.utils import tenant_context

from codes import format as code_format
from codes import services
from codes.keyring import keyring
from codes.models import Movement, MovementKind
from commerce.services import channel as channel_services
from tests.conftest import STAFF_PASSWORD, Brand


@pytest.fixture
def world(alpha: Brand) -> Any:
    keyring.clear()
    with tenant_context(alpha.tenant):
        dealer = channel_services.create_dealer(code="GY01", name="贵阳一号经销商", areas=["520100"])
        store = channel_services.create_store(code="S001", name="南明门店", dealer_id=dealer.pk, region_code="520102")
        clerk = channel_services.add_channel_staff(
            role="store_clerk", phone="13800000001", store_id=store.pk, password="Clerk-pass-2026!"
        )
        batch = services.create_batch(services.BatchRequest(bottles=12, bottles_per_case=6))
        key = keyring.current_key(alpha.tenant.number)
    cases = [code_format.make(key, code_format.Kind.CASE, batch.first_case_serial + i) for i in range(2)]
    return {"dealer": dealer, "store": store, "clerk": clerk, "cases": cases}


def _signed_in(brand: Brand, username: str, password: str) -> Client:
    client = Client(HTTP_HOST=brand.host)
    response = client.post("/t/login/", {"username": username, "password": password})
    assert response.status_code == 302, response.content[:300]
    return client


def _scan(client: Client, code: str, **extra: Any) -> Any:
    return client.post("/t/scan/", json.dumps({"code": code, **extra}), content_type="application/json")


def test_a_store_clerk_receives_cases_into_their_store(alpha: Brand, world: Any) -> None:
    client = _signed_in(alpha, world["clerk"].user.username, "Clerk-pass-2026!")
    page = client.get("/t/").content.decode()
    assert "门店入库：南明门店" in page
    first = _scan(client, services.url_prefix() + world["cases"][0]).json()
    assert first["outcome"] == "recorded"
    assert first["bottles"] == 6
    assert _scan(client, world["cases"][0]).json()["outcome"] == "repeated"
    assert _scan(client, "junk").json()["outcome"] == "not_genuine"
    with tenant_context(alpha.tenant):
        (movement,) = Movement.objects.all()
        assert movement.kind == MovementKind.RECEIVE
        assert movement.store == world["store"]


def test_warehouse_staff_ship_cases_out_to_a_dealer_they_pick(alpha: Brand, world: Any) -> None:
    client = _signed_in(alpha, "warehouse_alpha", STAFF_PASSWORD)
    assert "出库到经销商" in client.get("/t/").content.decode()
    assert _scan(client, world["cases"][1]).json()["code"] == "invalid_movement"  # no dealer picked
    result = _scan(client, world["cases"][1], dealer_id=world["dealer"].pk).json()
    assert result["outcome"] == "recorded"
    with tenant_context(alpha.tenant):
        assert Movement.objects.get().dealer == world["dealer"]


def test_others_are_refused(alpha: Brand, world: Any) -> None:
    finance = _signed_in(alpha, "finance_alpha", STAFF_PASSWORD)
    assert finance.get("/t/").status_code == 403
    stranger = Client(HTTP_HOST=alpha.host)
    assert stranger.get("/t/").status_code == 302
    assert _scan(stranger, world["cases"][0]).status_code in (401, 403)
    bad_login = Client(HTTP_HOST=alpha.host).post("/t/login/", {"username": "nobody", "password": "x"})
    assert "用户名或密码错误" in bad_login.content.decode()


def test_the_page_carries_the_csrf_token_its_script_sends(alpha: Brand, world: Any) -> None:
    client = Client(HTTP_HOST=alpha.host, enforce_csrf_checks=True)
    login_page = client.get("/t/login/").content.decode()
    token = login_page.split('name="csrfmiddlewaretoken" value="')[1].split('"')[0]
    client.post(
        "/t/login/",
        {"username": world["clerk"].user.username, "password": "Clerk-pass-2026!", "csrfmiddlewaretoken": token},
    )
    page = client.get("/t/").content.decode()
    page_token = page.split('id="csrf" value="')[1].split('"')[0]
    response = client.post(
        "/t/scan/",
        json.dumps({"code": world["cases"][0]}),
        content_type="application/json",
        HTTP_X_CSRFTOKEN=page_token,
    )
    assert response.status_code == 200, response.content[:300]
    assert response.json()["outcome"] == "recorded"


def test_repeated_wrong_passwords_lock_the_terminal_sign_in_without_an_error_page(alpha: Brand, world: Any) -> None:
    client = Client(HTTP_HOST=alpha.host, REMOTE_ADDR="203.0.113.50")
    username = world["clerk"].user.username
    for _ in range(6):
        response = client.post("/t/login/", {"username": username, "password": "wrong-password"})
        assert response.status_code in (200, 429)
    locked = client.post("/t/login/", {"username": username, "password": "Clerk-pass-2026!"})
    assert locked.status_code == 429
    assert "锁定" in locked.content.decode() or "稍后" in locked.content.decode()
