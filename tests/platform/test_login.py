"""Brand staff sign-in through the API and the admin, and the lockout after repeated failures.

The lockout (django-axes) counts failures per username and client IP, in the brand's own schema:
locking `owner` on alpha does nothing to beta's `owner`. Attempts are database rows, so the
per-test rollback resets them and the tests do not depend on their order. That a session cookie of
one brand is worthless on another brand's host is tested in tests/tenancy/test_isolation.py.
"""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Any

import pytest
from axes.models import AccessAttempt
from django.conf import settings
from django.db import connection
from django.test import Client
from django_tenants.utils import schema_context

from tests.conftest import OWNER_PASSWORD, STAFF_PASSWORD, Brand

CJK = re.compile(r"[\u4e00-\u9fff]")
WRONG = "Wrong-guess-2026!"
ATTACKER_IP = "198.51.100.23"
OWNER_IP = "203.0.113.8"


def _limit() -> int:
    limit = int(settings.AXES_FAILURE_LIMIT)
    assert limit >= 2, "the tests below need at least two tries before the lockout"
    return limit


def _client(brand: Brand, ip: str = ATTACKER_IP) -> Client:
    return Client(HTTP_HOST=brand.host, REMOTE_ADDR=ip)


def api_login(client: Client, username: str, password: str) -> Any:
    return client.post(
        "/api/v1/auth/login/", {"username": username, "password": password}, content_type="application/json"
    )


def admin_login(client: Client, username: str, password: str) -> Any:
    return client.post("/admin/login/?next=/admin/", {"username": username, "password": password, "next": "/admin/"})


def assert_login_failed(response: Any) -> None:
    assert response.status_code == 400, response.content
    body = response.json()
    assert body["code"] == "login_failed"
    assert CJK.search(body["message"])


def assert_locked(response: Any, *, api: bool) -> None:
    assert response.status_code == 429, response.content[:300]
    minutes = int(settings.AXES_COOLOFF_TIME.total_seconds() // 60)
    if api:
        assert response["Content-Type"] == "application/json"
        body = response.json()
        assert body["code"] == "login_locked"
        message = body["message"]
    else:
        assert response["Content-Type"].startswith("text/html")
        message = response.content.decode()
        assert "账号已锁定" in message
    assert CJK.search(message)
    assert f"{minutes} 分钟" in message, "the message says how long to wait"


def _attempts(brand: Brand) -> list[dict[str, Any]]:
    with schema_context(brand.schema):
        return list(AccessAttempt.objects.values("username", "ip_address", "failures_since_start"))


def _fail_until_locked(brand: Brand, via: str = "api", username: str = "owner") -> Client:
    """Fail `limit` times from ATTACKER_IP: the first limit-1 are plain failures, the last locks."""
    client = _client(brand)
    for _ in range(_limit() - 1):
        if via == "api":
            assert_login_failed(api_login(client, username, WRONG))
        else:
            page = admin_login(client, username, WRONG)
            assert page.status_code == 200  # the form again, with the reason
    assert client.get("/api/v1/me/").status_code == 403
    last = api_login(client, username, WRONG) if via == "api" else admin_login(client, username, WRONG)
    assert_locked(last, api=via == "api")
    return client


# --- signing in ----------------------------------------------------------------------------------


def test_staff_sign_in_through_the_api_and_get_a_session(alpha: Brand) -> None:
    client = _client(alpha, OWNER_IP)
    response = api_login(client, "operator_alpha", STAFF_PASSWORD)
    assert response.status_code == 200, response.content
    assert response.json()["username"] == "operator_alpha"
    assert response.json()["role"] == "operator"
    me = client.get("/api/v1/me/")
    assert me.status_code == 200
    assert me.json()["username"] == "operator_alpha"


def test_staff_sign_in_through_the_admin_login_page(alpha: Brand) -> None:
    client = _client(alpha, OWNER_IP)
    response = admin_login(client, "owner", OWNER_PASSWORD)
    assert response.status_code == 302
    assert response["Location"] == "/admin/"
    index = client.get("/admin/")
    assert index.status_code == 200
    assert alpha.tenant.name in index.content.decode()


def test_a_wrong_password_and_an_unknown_user_get_the_same_coded_refusal(alpha: Brand) -> None:
    client = _client(alpha)
    wrong_password = api_login(client, "owner", WRONG)
    unknown_user = api_login(client, "nobody_here", WRONG)
    assert_login_failed(wrong_password)
    # Nothing tells an attacker which usernames exist.
    assert wrong_password.content == unknown_user.content
    assert client.get("/api/v1/me/").status_code == 403


def test_a_wrong_password_on_the_admin_page_shows_the_form_again_in_chinese(alpha: Brand) -> None:
    client = _client(alpha)
    page = admin_login(client, "owner", WRONG)
    assert page.status_code == 200
    assert "请输入一个正确的" in page.content.decode()
    assert client.get("/admin/").status_code == 302


# --- lockout -------------------------------------------------------------------------------------


@pytest.mark.parametrize("via", ["api", "admin"])
def test_after_the_failure_limit_even_the_right_password_is_refused_on_both_doors(alpha: Brand, via: str) -> None:
    client = _fail_until_locked(alpha, via)

    assert_locked(api_login(client, "owner", OWNER_PASSWORD), api=True)
    assert_locked(admin_login(client, "owner", OWNER_PASSWORD), api=False)
    assert client.get("/api/v1/me/").status_code == 403, "a locked sign-in must not open a session"
    assert _attempts(alpha)[0]["failures_since_start"] >= _limit()


def test_the_lockout_is_per_brand(alpha: Brand, beta: Brand) -> None:
    _fail_until_locked(alpha)

    # The same username, from the same address, on another brand: not locked.
    on_beta = _client(beta)
    response = api_login(on_beta, "owner", OWNER_PASSWORD)
    assert response.status_code == 200, response.content
    # And beta's counter starts from zero: limit-1 failures there still only fail.
    for _ in range(_limit() - 1):
        assert_login_failed(api_login(_client(beta), "operator_beta", WRONG))
    assert api_login(_client(beta), "operator_beta", STAFF_PASSWORD).status_code == 200


def test_attempts_are_stored_in_the_brands_own_schema(alpha: Brand, beta: Brand) -> None:
    # The database handler (not the cache one): attempts are rows of the brand's schema.
    assert settings.AXES_HANDLER == "axes.handlers.database.AxesDatabaseHandler"
    with connection.cursor() as cursor:
        cursor.execute("SELECT table_schema FROM information_schema.tables WHERE table_name = 'axes_accessattempt'")
        schemas = {row[0] for row in cursor.fetchall()}
    assert {alpha.schema, beta.schema} <= schemas
    assert "public" not in schemas, "login attempts of every brand would share one table"

    _fail_until_locked(alpha)
    assert _attempts(alpha) == [{"username": "owner", "ip_address": ATTACKER_IP, "failures_since_start": _limit()}]
    assert _attempts(beta) == []


def test_an_attacker_does_not_lock_the_owner_out_of_their_own_network(alpha: Brand) -> None:
    """Failures count per username and address: guessing from elsewhere does not lock the real owner out."""
    attacker = _fail_until_locked(alpha)
    owner = _client(alpha, OWNER_IP)
    assert api_login(owner, "owner", OWNER_PASSWORD).status_code == 200
    assert_locked(api_login(attacker, "owner", OWNER_PASSWORD), api=True)


def test_a_successful_sign_in_resets_the_failure_count(alpha: Brand) -> None:
    client = _client(alpha)
    for _ in range(_limit() - 1):
        assert_login_failed(api_login(client, "owner", WRONG))
    assert api_login(client, "owner", OWNER_PASSWORD).status_code == 200
    assert _attempts(alpha) == []

    # A fresh allowance: limit-1 more failures are still only failures ...
    for _ in range(_limit() - 1):
        assert_login_failed(api_login(client, "owner", WRONG))
    # ... and the limit-th locks again.
    assert_locked(api_login(client, "owner", WRONG), api=True)


def test_the_lockout_ends_after_the_cool_off_time(alpha: Brand) -> None:
    client = _fail_until_locked(alpha)
    assert_locked(api_login(client, "owner", OWNER_PASSWORD), api=True)
    with schema_context(alpha.schema):
        AccessAttempt.objects.update(
            attempt_time=AccessAttempt.objects.get().attempt_time - settings.AXES_COOLOFF_TIME - timedelta(seconds=1)
        )
    response = api_login(client, "owner", OWNER_PASSWORD)
    assert response.status_code == 200, response.content
