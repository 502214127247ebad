"""DRF throttling: past the rate a caller gets 429 with a code, a Chinese message and Retry-After,
and each brand has its own buckets (cache keys are prefixed by schema), so traffic on one brand
never throttles another, even for the same client address or the same user id.

The suite runs with very high rates (config/settings_test.py); these tests set low ones. Two
things hold the old rates and are patched here: DRF's cached api_settings (reloaded by the
setting_changed signal, checked below) and SimpleRateThrottle.THROTTLE_RATES, bound to the rates
dict when DRF was imported. Throttle history lives in the cache (Redis, kept across tests), so the
buckets used here are emptied before and after each test.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import pytest
from django.core.cache import cache
from django.test import Client
from django_tenants.utils import schema_context
from rest_framework.settings import api_settings
from rest_framework.throttling import SimpleRateThrottle

from tenants.models import PlatformStaff
from tests.conftest import SUPPORT_TOKEN, Brand

CJK = re.compile(r"[\u4e00-\u9fff]")
RATES = {"anon": "3/min", "user": "4/min", "ops": "2/min"}
CLIENT_IP = "192.0.2.77"
OTHER_IP = "192.0.2.78"

pytestmark = pytest.mark.usefixtures("low_rates", "empty_buckets")


@pytest.fixture
def low_rates(settings: Any, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    settings.REST_FRAMEWORK = {**settings.REST_FRAMEWORK, "DEFAULT_THROTTLE_RATES": RATES}
    # DRF's settings object noticed the change (setting_changed -> api_settings.reload()) ...
    assert api_settings.DEFAULT_THROTTLE_RATES == RATES
    # ... but the throttle classes still hold the dict read at import time.
    assert SimpleRateThrottle.THROTTLE_RATES != RATES
    monkeypatch.setattr(SimpleRateThrottle, "THROTTLE_RATES", api_settings.DEFAULT_THROTTLE_RATES)
    return RATES


@pytest.fixture
def empty_buckets(alpha: Brand, beta: Brand) -> Iterator[None]:
    """Forget the throttle history of the client address and users used here, in every schema."""
    staff_ids = list(PlatformStaff.objects.values_list("pk", flat=True))
    user_ids = {user.pk for brand in (alpha, beta) for user in brand.users.values()}
    keys = [
        # Anonymous callers are counted by address in both the anon and the user throttle.
        *(f"throttle_{scope}_{ip}" for scope in ("anon", "user") for ip in (CLIENT_IP, OTHER_IP)),
        *(f"throttle_user_{pk}" for pk in user_ids),
        *(f"throttle_ops_{pk}" for pk in staff_ids),
    ]

    def forget() -> None:
        for schema in ("public", alpha.schema, beta.schema):
            with schema_context(schema):
                cache.delete_many(keys)

    forget()
    yield
    forget()


def assert_throttled(response: Any) -> None:
    assert response.status_code == 429, response.content[:300]
    body = response.json()
    assert body["code"] == "throttled"
    assert CJK.search(body["message"])
    retry_after = int(response["Retry-After"])
    assert 0 < retry_after <= 60
    assert body["retry_after_s"] == retry_after


def _anonymous(brand: Brand) -> Client:
    return Client(HTTP_HOST=brand.host, REMOTE_ADDR=CLIENT_IP)


def test_anonymous_calls_past_the_rate_get_429_with_retry_after(alpha: Brand) -> None:
    visitor = _anonymous(alpha)
    for _ in range(3):
        assert visitor.get("/api/v1/site/").status_code == 200
    assert_throttled(visitor.get("/api/v1/site/"))
    # The bucket is per client: the login endpoint shares it, so guessing passwords is slowed too.
    assert_throttled(
        visitor.post("/api/v1/auth/login/", {"username": "owner", "password": "x"}, content_type="application/json")
    )
    # Another address is not affected.
    assert Client(HTTP_HOST=alpha.host, REMOTE_ADDR=OTHER_IP).get("/api/v1/site/").status_code == 200


def test_anonymous_buckets_are_per_brand(alpha: Brand, beta: Brand) -> None:
    for _ in range(3):
        assert _anonymous(alpha).get("/api/v1/site/").status_code == 200
    assert_throttled(_anonymous(alpha).get("/api/v1/site/"))

    # The same address on beta has beta's own, full allowance ...
    for _ in range(3):
        assert _anonymous(beta).get("/api/v1/site/").status_code == 200
    # ... which runs out on its own.
    assert_throttled(_anonymous(beta).get("/api/v1/site/"))
    with schema_context(alpha.schema):
        assert cache.get(f"throttle_anon_{CLIENT_IP}") is not None
        assert cache.make_key(f"throttle_anon_{CLIENT_IP}").startswith(f"{alpha.schema}:")


def test_signed_in_staff_are_throttled_per_brand_even_with_the_same_user_id(alpha: Brand, beta: Brand) -> None:
    # Every brand's first owner has user id 1: one shared bucket would throttle them together.
    assert alpha.users["owner"].pk == beta.users["owner"].pk
    alpha_owner = alpha.client("owner")
    for _ in range(4):
        assert alpha_owner.get("/api/v1/me/").status_code == 200
    assert_throttled(alpha_owner.get("/api/v1/me/"))

    beta_owner = beta.client("owner")
    for _ in range(4):
        assert beta_owner.get("/api/v1/me/").status_code == 200
    assert_throttled(beta_owner.get("/api/v1/me/"))


def test_the_ops_api_is_throttled_per_staff_member(ops_client: Client) -> None:
    for _ in range(2):
        assert ops_client.get("/ops/api/v1/me/").status_code == 200
    assert_throttled(ops_client.get("/ops/api/v1/me/"))
    # Another member of the ops team keeps working.
    colleague = Client(HTTP_HOST="localhost", HTTP_AUTHORIZATION=f"Bearer {SUPPORT_TOKEN}")
    assert colleague.get("/ops/api/v1/me/").status_code == 200
