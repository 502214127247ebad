"""Suspending a brand: consumers see a notice, staff may read but not write, resume restores writes.

Also what a brand that is not ready yet, and a host that belongs to no brand, show.
"""

from __future__ import annotations

import re
from typing import Any

import pytest
from django.test import Client
from django_tenants.utils import schema_context

from tenants import services
from tenants.brand.models import AuditEntry, BrandProfile, User
from tenants.models import Tenant
from tests.conftest import OWNER_PASSWORD, Brand

BRANDS_URL = "/ops/api/v1/brands/"
CJK = re.compile(r"[\u4e00-\u9fff]")

pytestmark = pytest.mark.django_db


def _suspend(ops_client: Client, code: str, reason: str = "合同到期") -> Any:
    return ops_client.post(f"{BRANDS_URL}{code}/suspend/", {"reason": reason}, content_type="application/json")


def _slogan(brand: Brand) -> str:
    with schema_context(brand.schema):
        return BrandProfile.objects.get(id=1).slogan


def _audit_count(brand: Brand) -> int:
    with schema_context(brand.schema):
        return AuditEntry.objects.count()


def _profile_form(brand: Brand, **changes: str) -> dict[str, str]:
    with schema_context(brand.schema):
        profile = BrandProfile.objects.get(id=1)
    return {
        "display_name": profile.display_name,
        "slogan": profile.slogan,
        "service_phone": profile.service_phone,
        **changes,
    }


def test_suspending_shows_consumers_a_chinese_notice(ops_client: Client, alpha: Brand) -> None:
    response = _suspend(ops_client, "alpha", "欠费")
    assert response.status_code == 200, response.content
    assert response.json()["status"] == "suspended"
    assert response.json()["status_reason"] == "欠费"

    page = alpha.client().get("/")
    assert page.status_code == 503
    assert "暂停" in page.content.decode()
    assert "阿尔法酒业的口号" not in page.content.decode()

    site = alpha.client().get("/api/v1/site/")
    assert site.status_code == 503
    assert site.json()["code"] == "tenant_suspended"
    assert CJK.search(site.json()["message"])


def test_staff_of_a_suspended_brand_can_read_and_sign_in(ops_client: Client, alpha: Brand) -> None:
    _suspend(ops_client, "alpha")
    owner = alpha.client("owner")
    assert owner.get("/admin/").status_code == 200
    assert owner.get("/admin/brand/brandprofile/1/change/").status_code == 200
    assert owner.get("/api/v1/me/").status_code == 200
    assert owner.get("/api/v1/staff/").status_code == 200
    assert owner.get("/api/v1/audit/").status_code == 200

    login = alpha.client().post(
        "/api/v1/auth/login/", {"username": "owner", "password": OWNER_PASSWORD}, content_type="application/json"
    )
    assert login.status_code == 200, login.content
    admin_login = alpha.client().post(
        "/admin/login/?next=/admin/", {"username": "owner", "password": OWNER_PASSWORD, "next": "/admin/"}
    )
    assert admin_login.status_code == 302
    assert admin_login["Location"] == "/admin/"


def test_staff_of_a_suspended_brand_cannot_write(ops_client: Client, alpha: Brand) -> None:
    _suspend(ops_client, "alpha")
    owner = alpha.client("owner")
    slogan = _slogan(alpha)
    audited = _audit_count(alpha)
    with schema_context(alpha.schema):
        staff = User.objects.count()

    patch = owner.patch("/api/v1/profile/", {"slogan": "暂停期间的新口号"}, content_type="application/json")
    assert patch.status_code == 403
    assert patch.json()["code"] == "tenant_suspended"
    assert CJK.search(patch.json()["message"])

    create = owner.post(
        "/api/v1/staff/",
        {"username": "newbie", "password": "Newbie-pass-2026", "role": "operator"},
        content_type="application/json",
    )
    assert create.status_code == 403
    assert create.json()["code"] == "tenant_suspended"

    form = owner.post("/admin/brand/brandprofile/1/change/", _profile_form(alpha, slogan="暂停期间的新口号"))
    assert form.status_code == 403
    assert "暂停" in form.content.decode()

    assert _slogan(alpha) == slogan
    with schema_context(alpha.schema):
        assert User.objects.count() == staff
    assert _audit_count(alpha) == audited


def test_resuming_allows_writes_again(ops_client: Client, alpha: Brand) -> None:
    _suspend(ops_client, "alpha")
    resumed = ops_client.post(f"{BRANDS_URL}alpha/resume/")
    assert resumed.status_code == 200
    assert resumed.json()["status"] == "ready"
    assert resumed.json()["status_reason"] == ""

    owner = alpha.client("owner")
    patch = owner.patch("/api/v1/profile/", {"slogan": "恢复后的口号"}, content_type="application/json")
    assert patch.status_code == 200, patch.content
    assert _slogan(alpha) == "恢复后的口号"
    assert alpha.client().get("/").status_code == 200
    assert alpha.client().get("/api/v1/site/").json()["slogan"] == "恢复后的口号"


def test_suspending_twice_or_resuming_a_ready_brand_is_a_conflict(ops_client: Client, alpha: Brand) -> None:
    resume = ops_client.post(f"{BRANDS_URL}alpha/resume/")
    assert resume.status_code == 409
    assert resume.json()["code"] == "brand_wrong_status"
    assert _suspend(ops_client, "alpha").status_code == 200
    again = _suspend(ops_client, "alpha", "再次暂停")
    assert again.status_code == 409
    assert again.json()["code"] == "brand_wrong_status"
    assert CJK.search(again.json()["message"])
    assert Tenant.objects.get(code="alpha").status_reason == "合同到期", "the refused request changed nothing"


def test_suspending_one_brand_leaves_the_others_alone(ops_client: Client, alpha: Brand, beta: Brand) -> None:
    _suspend(ops_client, "alpha")
    assert beta.client().get("/").status_code == 200
    assert beta.client().get("/api/v1/site/").status_code == 200
    patch = beta.client("owner").patch("/api/v1/profile/", {"slogan": "照常营业"}, content_type="application/json")
    assert patch.status_code == 200
    assert _slogan(beta) == "照常营业"


@pytest.mark.parametrize("failed", [False, True])
def test_a_brand_that_is_not_ready_shows_a_notice_everywhere(db: None, failed: bool) -> None:
    services.create_brand(
        code="suspwait", name="等待酒业", plan_code="standard", admin_username="boss", admin_password=OWNER_PASSWORD
    )
    if failed:
        Tenant.objects.filter(code="suspwait").update(status="failed")
    host = Client(HTTP_HOST="suspwait.localhost")
    for path in ("/", "/admin/", "/admin/login/"):
        page = host.get(path)
        assert page.status_code == 503, path
        assert "开通中" in page.content.decode()
    api = host.get("/api/v1/site/")
    assert api.status_code == 503
    assert api.json()["code"] == "tenant_not_ready"
    assert CJK.search(api.json()["message"])
    login = host.post("/api/v1/auth/login/", {"username": "boss", "password": OWNER_PASSWORD})
    assert login.status_code == 503


@pytest.mark.parametrize("path", ["/", "/admin/", "/api/v1/site/"])
def test_an_unknown_host_gets_a_chinese_404_page(db: None, path: str) -> None:
    page = Client(HTTP_HOST="nobody.localhost").get(path)
    assert page.status_code == 404
    text = page.content.decode()
    assert "页面不存在" in text
    assert "品牌站点" in text
