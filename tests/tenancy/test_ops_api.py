"""The ops API (platform host): who may use it, and that bad onboarding input is refused cleanly.

Every refusal is a 4xx with a machine `code` and a Chinese `message`, and leaves no brand, domain,
job or ops audit row behind.
"""

from __future__ import annotations

import base64
import re
from collections.abc import Iterator
from typing import Any

import pytest
from django.db import DatabaseError, transaction
from django.test import Client
from django.utils import timezone

from tenants.models import Domain, OpsAuditEntry, OpsToken, Plan, Tenant, TenantOperation
from tests.conftest import OPS_TOKEN, Brand

BRANDS_URL = "/ops/api/v1/brands/"
GOOD_PASSWORD = "Brand-owner-2026!"
CJK = re.compile(r"[\u4e00-\u9fff]")

pytestmark = pytest.mark.django_db


def _post_brand(client: Client, **overrides: Any) -> Any:
    fields = {"code": "opsnew", "name": "运营新品牌", "plan": "standard", "admin_username": "boss", **overrides}
    return client.post(BRANDS_URL, fields, content_type="application/json")


def _rows() -> tuple[int, int, int, int]:
    return (
        Tenant.objects.count(),
        Domain.objects.count(),
        TenantOperation.objects.count(),
        OpsAuditEntry.objects.count(),
    )


@pytest.fixture
def nothing_written() -> Iterator[None]:
    """Fails the test if the refused request left any public-schema row behind."""
    before = _rows()
    yield
    assert _rows() == before, "a refused request left rows behind"


def _assert_refused(response: Any, status: int, code: str) -> dict[str, Any]:
    assert response.status_code == status, response.content
    body: dict[str, Any] = response.json()
    assert body["code"] == code
    assert CJK.search(body["message"]), body["message"]
    return body


# --- bad input ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "code",
    [
        "Upper",  # upper case
        "a",  # too short
        "a" * 32,  # too long
        "www",  # reserved
        "admin",
        "public",
        "a;drop",  # SQL-ish
        "x';drop schema public;--",
        "pg_x",  # underscore, and PostgreSQL's own prefix
        "1brand",  # must start with a letter
        "brand-x",
        "品牌",
    ],
)
def test_bad_brand_codes_are_refused(ops_client: Client, nothing_written: None, code: str) -> None:
    body = _assert_refused(_post_brand(ops_client, code=code), 400, "invalid_brand_code")
    assert body["fields"] == {"code": code}


def test_an_overlong_code_is_refused_by_the_form(ops_client: Client, nothing_written: None) -> None:
    body = _assert_refused(_post_brand(ops_client, code="a" * 65), 400, "invalid_input")
    assert "code" in body["fields"]


@pytest.mark.parametrize(
    "domain",
    [
        "bad domain.example.com",
        "-x.example.com",
        "a..b.example.com",
        "http://x.example.com",
        "x.example.com/path",
        "nodot",
        "localhost",  # platform hosts are not brand hosts
        "ops.localhost",
        "127.0.0.1",
        "例子.中国",
    ],
)
def test_bad_domains_are_refused(ops_client: Client, nothing_written: None, domain: str) -> None:
    body = _assert_refused(_post_brand(ops_client, domain=domain), 400, "invalid_domain")
    assert body["fields"] == {"domain": domain}


def test_a_taken_brand_code_is_a_conflict(ops_client: Client, alpha: Brand, nothing_written: None) -> None:
    _assert_refused(_post_brand(ops_client, code="alpha", domain="other-alpha.localhost"), 409, "brand_code_taken")


@pytest.mark.parametrize("domain", ["alpha.localhost", "ALPHA.localhost.", " alpha.localhost "])
def test_a_domain_of_another_brand_is_a_conflict(
    ops_client: Client, alpha: Brand, nothing_written: None, domain: str
) -> None:
    _assert_refused(_post_brand(ops_client, domain=domain), 409, "domain_taken")


def test_a_default_domain_already_used_by_another_brand_is_a_conflict(ops_client: Client) -> None:
    assert _post_brand(ops_client, code="opsfirst", domain="opssecond.localhost").status_code == 202
    before = _rows()
    _assert_refused(_post_brand(ops_client, code="opssecond"), 409, "domain_taken")
    assert _rows() == before
    assert not Tenant.objects.filter(code="opssecond").exists()


def test_an_unknown_or_retired_plan_is_refused(ops_client: Client, nothing_written: None) -> None:
    _assert_refused(_post_brand(ops_client, plan="gold"), 400, "unknown_plan")
    Plan.objects.filter(code="trial").update(is_active=False)
    _assert_refused(_post_brand(ops_client, plan="trial"), 400, "unknown_plan")


@pytest.mark.parametrize("password", ["12345678901", "password123", "Zq9"])
def test_a_weak_admin_password_is_refused_and_not_echoed(
    ops_client: Client, nothing_written: None, password: str
) -> None:
    response = _post_brand(ops_client, admin_password=password)
    body = _assert_refused(response, 400, "invalid_admin_account")
    assert password not in response.content.decode()
    assert body["fields"] == {"admin_password": "***"}


@pytest.mark.parametrize("username", ["a b", "ab", "管理员", "x" * 151])
def test_a_bad_admin_username_is_refused(ops_client: Client, nothing_written: None, username: str) -> None:
    response = _post_brand(ops_client, admin_username=username)
    assert response.status_code == 400
    assert response.json()["code"] in {"invalid_admin_account", "invalid_input"}
    assert CJK.search(response.json()["message"])


def test_missing_fields_are_listed(ops_client: Client, nothing_written: None) -> None:
    response = ops_client.post(BRANDS_URL, {"code": "opsnew"}, content_type="application/json")
    body = _assert_refused(response, 400, "invalid_input")
    assert {"name", "plan", "admin_username"} <= set(body["fields"])


def test_a_bad_brand_code_in_the_url_is_a_clean_404(ops_client: Client) -> None:
    _assert_refused(ops_client.get(f"{BRANDS_URL}nosuchbrand/"), 404, "brand_not_found")
    response = ops_client.post(f"{BRANDS_URL}a;drop/suspend/")
    assert response.status_code == 404
    assert response.json()["code"] == "not_found"


# --- who may use it -------------------------------------------------------------------------------


def test_without_a_token_the_api_answers_401(db: None, nothing_written: None) -> None:
    anonymous = Client(HTTP_HOST="localhost")
    response = anonymous.get(BRANDS_URL)
    _assert_refused(response, 401, "not_authenticated")
    assert response["WWW-Authenticate"] == "Bearer"
    _assert_refused(_post_brand(anonymous), 401, "not_authenticated")


def test_a_wrong_or_revoked_token_answers_401(ops_client: Client, nothing_written: None) -> None:
    wrong = Client(HTTP_HOST="localhost", HTTP_AUTHORIZATION="Bearer jmo_not_a_real_token_000000000000")
    _assert_refused(wrong.get(BRANDS_URL), 401, "authentication_failed")
    OpsToken.objects.filter(key_hash=OpsToken.hash_key(OPS_TOKEN)).update(revoked_at=timezone.now())
    _assert_refused(ops_client.get(BRANDS_URL), 401, "authentication_failed")


def test_http_basic_works_for_a_browser(db: None) -> None:
    def basic(user: str, password: str) -> Client:
        raw = base64.b64encode(f"{user}:{password}".encode()).decode()
        return Client(HTTP_HOST="localhost", HTTP_AUTHORIZATION=f"Basic {raw}")

    me = basic("ops-admin", "ops-admin-password").get("/ops/api/v1/me/")
    assert me.status_code == 200
    assert me.json()["role"] == "admin"
    _assert_refused(basic("ops-admin", "wrong").get("/ops/api/v1/me/"), 401, "authentication_failed")


def test_support_staff_can_read_but_not_change_brands(
    support_client: Client, alpha: Brand, beta: Brand, nothing_written: None
) -> None:
    listing = support_client.get(BRANDS_URL)
    assert listing.status_code == 200
    codes = {brand["code"] for brand in listing.json()}
    assert {"alpha", "beta"} <= codes
    assert support_client.get(f"{BRANDS_URL}alpha/").status_code == 200
    assert support_client.get("/ops/api/v1/plans/").status_code == 200

    _assert_refused(_post_brand(support_client), 403, "permission_denied")
    _assert_refused(support_client.post(f"{BRANDS_URL}alpha/suspend/"), 403, "permission_denied")
    _assert_refused(support_client.post(f"{BRANDS_URL}alpha/deletion/"), 403, "permission_denied")
    assert Tenant.objects.get(code="alpha").status == "ready"


def test_the_ops_api_is_not_served_on_brand_hosts(alpha: Brand) -> None:
    on_brand = Client(HTTP_HOST=alpha.host, HTTP_AUTHORIZATION=f"Bearer {OPS_TOKEN}")
    response = on_brand.get(BRANDS_URL)
    assert response.status_code == 404
    assert "beta" not in response.content.decode()


# --- reading and managing ----------------------------------------------------------------------------


def test_the_brand_list_can_be_filtered_by_status(ops_client: Client, alpha: Brand) -> None:
    _post_brand(ops_client, code="opspending")
    ready = {b["code"] for b in ops_client.get(BRANDS_URL, {"status": "ready"}).json()}
    pending = {b["code"] for b in ops_client.get(BRANDS_URL, {"status": "pending"}).json()}
    assert "alpha" in ready
    assert "opspending" not in ready
    assert pending == {"opspending"}
    every = ops_client.get(BRANDS_URL).json()
    assert "tenant_template" not in {b["schema_name"] for b in every}
    assert every[0]["code"] == "opspending", "newest first"


def test_a_domain_added_to_a_brand_routes_to_it_at_once(ops_client: Client, alpha: Brand, beta: Brand) -> None:
    response = ops_client.post(
        f"{BRANDS_URL}alpha/domains/", {"domain": "Shop.Alpha.localhost"}, content_type="application/json"
    )
    assert response.status_code == 201, response.content
    assert response.json() == {"domain": "shop.alpha.localhost", "is_primary": False}
    site = Client(HTTP_HOST="shop.alpha.localhost").get("/api/v1/site/")
    assert site.json()["display_name"] == "阿尔法酒业"

    before = _rows()
    taken = ops_client.post(
        f"{BRANDS_URL}beta/domains/", {"domain": "shop.alpha.localhost"}, content_type="application/json"
    )
    _assert_refused(taken, 409, "domain_taken")
    bad = ops_client.post(f"{BRANDS_URL}beta/domains/", {"domain": "bad domain"}, content_type="application/json")
    _assert_refused(bad, 400, "invalid_domain")
    assert _rows() == before

    primary = ops_client.post(
        f"{BRANDS_URL}alpha/domains/",
        {"domain": "www.alpha.localhost", "primary": True},
        content_type="application/json",
    )
    assert primary.status_code == 201
    assert list(Domain.objects.filter(tenant__code="alpha", is_primary=True).values_list("domain", flat=True)) == [
        "www.alpha.localhost"
    ]


def test_an_operation_is_only_visible_under_its_own_brand(ops_client: Client, alpha: Brand, beta: Brand) -> None:
    op = TenantOperation.objects.filter(tenant__code="beta").first()
    assert op is not None
    own = ops_client.get(f"{BRANDS_URL}beta/operations/{op.pk}/")
    assert own.status_code == 200
    assert own.json()["kind"] == "provision"
    _assert_refused(ops_client.get(f"{BRANDS_URL}alpha/operations/{op.pk}/"), 404, "brand_not_found")


def test_ops_actions_are_audited_and_the_ops_log_is_append_only(ops_client: Client) -> None:
    assert _post_brand(ops_client, code="opsaudit").status_code == 202
    entry = OpsAuditEntry.objects.get(action="brand.create", tenant__code="opsaudit")
    assert entry.actor_name == "ops-admin"
    assert entry.ip == "127.0.0.1"
    assert entry.detail["domain"] == "opsaudit.localhost"
    with pytest.raises(DatabaseError, match="append-only"), transaction.atomic():
        OpsAuditEntry.objects.filter(pk=entry.pk).update(action="brand.nothing")
    with pytest.raises(DatabaseError, match="append-only"), transaction.atomic():
        OpsAuditEntry.objects.filter(pk=entry.pk).delete()
    assert OpsAuditEntry.objects.get(pk=entry.pk).action == "brand.create"
