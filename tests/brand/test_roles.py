"""Brand staff roles: five groups in every brand schema, enforced in the admin and in the API."""

from __future__ import annotations

import re
from typing import Any

import pytest
from django.contrib.auth.models import Group, Permission
from django.db.models import Q
from django_tenants.utils import schema_context

from tenants import resolution
from tenants.brand.models import User
from tenants.brand.roles import Role, role_of, sync_roles
from tenants.models import Plan
from tests.conftest import ROLES, Brand

ROLE_NAMES = {"owner", "operator", "finance", "warehouse", "customer_service"}
CHANNEL_ROLE_NAMES = {"dealer_manager", "dealer_clerk", "store_owner", "store_clerk"}
NEW_STAFF = {"username": "newhire", "password": "Newhire-pass-2026", "role": "warehouse", "display_name": "新员工"}
CJK = re.compile(r"[\u4e00-\u9fff]")
STAFF_PERMS = ("brand.add_user", "brand.change_user", "brand.delete_user")


def _user(brand: Brand, role: str) -> User:
    """A fresh copy of the staff member (no permission cache carried over from other tests)."""
    return User.objects.get(pk=brand.users[role].pk)


def _perms(brand: Brand, role: str) -> set[str]:
    with schema_context(brand.schema):
        return _user(brand, role).get_all_permissions()


def _refused(response: Any, status: int, code: str) -> None:
    assert response.status_code == status, response.content
    assert response.json()["code"] == code
    assert CJK.search(response.json()["message"])


@pytest.mark.parametrize("brand_name", ["alpha", "beta"])
def test_every_brand_schema_has_the_five_roles(brands: dict[str, Brand], db: None, brand_name: str) -> None:
    brand = brands[brand_name]
    with schema_context(brand.schema):
        # ... and the four roles of dealers' and stores' people (tests/commerce/test_channel_roles.py).
        assert set(Group.objects.values_list("name", flat=True)) == ROLE_NAMES | CHANNEL_ROLE_NAMES
        for role in ("owner", *ROLES):
            assert role_of(_user(brand, role)) == Role(role)


def test_the_owner_holds_every_permission_including_the_audit_log(alpha: Brand) -> None:
    with schema_context(alpha.schema):
        every = {
            f"{p.content_type.app_label}.{p.codename}"
            for p in Permission.objects.select_related("content_type").exclude(
                Q(content_type__app_label="sessions") | Q(content_type__app_label="contenttypes")
            )
        }
    owner = _perms(alpha, "owner")
    assert every <= owner
    assert "brand.browse_audit" in owner
    assert set(STAFF_PERMS) <= owner
    assert "auth.change_group" in owner


def test_the_operator_runs_the_business_but_not_staff_or_the_audit_log(alpha: Brand) -> None:
    perms = _perms(alpha, "operator")
    assert "brand.change_brandprofile" in perms
    assert not set(STAFF_PERMS) & perms
    assert "brand.view_user" not in perms
    assert "brand.browse_audit" not in perms
    assert not {p for p in perms if p.startswith(("auth.", "axes."))}


@pytest.mark.parametrize("role", ["finance", "warehouse", "customer_service"])
def test_other_roles_cannot_touch_staff_roles_profile_or_audit(alpha: Brand, role: str) -> None:
    perms = _perms(alpha, role)
    assert not set(STAFF_PERMS) & perms
    assert not {"brand.browse_audit", "brand.change_brandprofile", "auth.change_group", "auth.add_group"} & perms
    assert not {p for p in perms if p.startswith(("auth.", "axes.", "admin."))}


def test_syncing_roles_again_changes_nothing(alpha: Brand) -> None:
    with schema_context(alpha.schema):
        before = {g.name: set(g.permissions.values_list("pk", flat=True)) for g in Group.objects.all()}
        sync_roles()
        sync_roles()
        after = {g.name: set(g.permissions.values_list("pk", flat=True)) for g in Group.objects.all()}
    assert before == after


# --- enforcement in the admin ---------------------------------------------------------------------


def test_only_the_owner_manages_staff_in_the_admin(alpha: Brand) -> None:
    assert alpha.client("owner").get("/admin/brand/user/").status_code == 200
    assert alpha.client("owner").get("/admin/brand/user/add/").status_code == 200
    for role in ROLES:
        client = alpha.client(role)
        assert client.get("/admin/brand/user/").status_code == 403, role
        assert client.get("/admin/brand/user/add/").status_code == 403, role
        assert client.get(f"/admin/brand/user/{alpha.users['owner'].pk}/change/").status_code == 403, role
        assert client.get("/admin/auth/group/").status_code == 403, role


def test_only_the_owner_sees_the_audit_log_in_the_admin(alpha: Brand) -> None:
    owner = alpha.client("owner")
    assert owner.get("/admin/brand/auditentry/").status_code == 200
    assert "/admin/brand/auditentry/" in owner.get("/admin/").content.decode()
    operator = alpha.client("operator")
    index = operator.get("/admin/")
    assert index.status_code == 200
    assert "/admin/brand/auditentry/" not in index.content.decode()
    assert "/admin/brand/user/" not in index.content.decode()
    assert operator.get("/admin/brand/auditentry/").status_code == 403


def test_the_operator_may_edit_the_brand_profile_in_the_admin(alpha: Brand) -> None:
    assert alpha.client("operator").get("/admin/brand/brandprofile/1/change/").status_code == 200
    assert alpha.client("finance").get("/admin/brand/brandprofile/1/change/").status_code == 403


# --- enforcement in the API -----------------------------------------------------------------------


@pytest.mark.parametrize("role", ROLES)
def test_only_the_owner_creates_staff_through_the_api(alpha: Brand, role: str) -> None:
    _refused(
        alpha.client(role).post("/api/v1/staff/", NEW_STAFF, content_type="application/json"), 403, "permission_denied"
    )
    with schema_context(alpha.schema):
        assert not User.objects.filter(username="newhire").exists()
    target = alpha.users["finance"].pk
    _refused(
        alpha.client(role).post(f"/api/v1/staff/{target}/role/", {"role": "owner"}, content_type="application/json"),
        403,
        "permission_denied",
    )
    _refused(alpha.client(role).post(f"/api/v1/staff/{target}/deactivate/"), 403, "permission_denied")
    with schema_context(alpha.schema):
        assert role_of(_user(alpha, "finance")) == Role.FINANCE
        assert _user(alpha, "finance").is_active


def test_the_owner_creates_staff_with_a_role(alpha: Brand) -> None:
    response = alpha.client("owner").post("/api/v1/staff/", NEW_STAFF, content_type="application/json")
    assert response.status_code == 201, response.content
    body = response.json()
    assert body["username"] == "newhire"
    assert body["role"] == "warehouse"
    assert "password" not in body
    with schema_context(alpha.schema):
        user = User.objects.get(username="newhire")
        assert user.is_staff
        assert user.check_password(NEW_STAFF["password"])
    login = alpha.client().post(
        "/api/v1/auth/login/",
        {"username": "newhire", "password": NEW_STAFF["password"]},
        content_type="application/json",
    )
    assert login.json()["role"] == "warehouse"


def test_unauthenticated_and_cross_brand_staff_get_nothing(alpha: Brand, beta: Brand) -> None:
    _refused(alpha.client().get("/api/v1/staff/"), 403, "not_authenticated")
    # Beta's owner session is unknown on alpha's host.
    beta_owner = beta.client("owner")
    cookie = beta_owner.cookies["jiuma_session"].value
    stolen = alpha.client()
    stolen.cookies["jiuma_session"] = cookie
    _refused(stolen.get("/api/v1/staff/"), 403, "not_authenticated")
    _refused(stolen.post("/api/v1/staff/", NEW_STAFF, content_type="application/json"), 403, "not_authenticated")


def test_bad_staff_input_is_refused(alpha: Brand) -> None:
    owner = alpha.client("owner")
    _refused(
        owner.post("/api/v1/staff/", {**NEW_STAFF, "role": "god"}, content_type="application/json"), 400, "invalid_role"
    )
    _refused(
        owner.post("/api/v1/staff/", {**NEW_STAFF, "username": "owner"}, content_type="application/json"),
        409,
        "username_taken",
    )
    _refused(
        owner.post("/api/v1/staff/", {**NEW_STAFF, "password": "123"}, content_type="application/json"),
        400,
        "invalid_admin_account",
    )
    with schema_context(alpha.schema):
        assert not User.objects.filter(username="newhire").exists()


def test_the_last_owner_cannot_be_demoted_or_deactivated(alpha: Brand) -> None:
    owner = alpha.client("owner")
    owner_id = alpha.users["owner"].pk
    _refused(
        owner.post(f"/api/v1/staff/{owner_id}/role/", {"role": "operator"}, content_type="application/json"),
        409,
        "last_owner",
    )
    _refused(owner.post(f"/api/v1/staff/{owner_id}/deactivate/"), 409, "last_owner")
    with schema_context(alpha.schema):
        assert role_of(_user(alpha, "owner")) == Role.OWNER
        assert _user(alpha, "owner").is_active


def test_with_a_second_owner_the_first_can_step_down(alpha: Brand) -> None:
    owner = alpha.client("owner")
    promoted = owner.post(
        f"/api/v1/staff/{alpha.users['operator'].pk}/role/", {"role": "owner"}, content_type="application/json"
    )
    assert promoted.status_code == 200
    assert promoted.json()["role"] == "owner"
    demoted = owner.post(
        f"/api/v1/staff/{alpha.users['owner'].pk}/role/", {"role": "finance"}, content_type="application/json"
    )
    assert demoted.status_code == 200
    assert demoted.json()["role"] == "finance"
    # Permissions follow the role at once.
    assert alpha.client("owner").get("/api/v1/audit/").status_code == 403
    assert alpha.client("operator").get("/api/v1/audit/").status_code == 200


def test_a_deactivated_staff_member_is_locked_out(alpha: Brand) -> None:
    target = alpha.users["warehouse"]
    response = alpha.client("owner").post(f"/api/v1/staff/{target.pk}/deactivate/")
    assert response.status_code == 200
    assert response.json()["is_active"] is False
    assert alpha.client("warehouse").get("/api/v1/me/").status_code == 403
    login = alpha.client().post(
        "/api/v1/auth/login/",
        {"username": target.username, "password": "Staff-pass-2026!"},
        content_type="application/json",
    )
    assert login.status_code == 400


# --- plan quota -------------------------------------------------------------------------------------------


def _set_quota(brand: Brand, max_staff: int) -> None:
    Plan.objects.filter(pk=brand.tenant.plan_id).update(max_staff=max_staff)
    resolution.invalidate()  # hosts are cached with their brand and plan


def test_the_plans_staff_quota_is_enforced_in_the_api(alpha: Brand) -> None:
    with schema_context(alpha.schema):
        active = User.objects.filter(is_active=True).count()
    _set_quota(alpha, active)
    _refused(
        alpha.client("owner").post("/api/v1/staff/", NEW_STAFF, content_type="application/json"),
        409,
        "staff_quota_exceeded",
    )
    with schema_context(alpha.schema):
        assert not User.objects.filter(username="newhire").exists()

    # Deactivating someone frees a seat.
    assert alpha.client("owner").post(f"/api/v1/staff/{alpha.users['warehouse'].pk}/deactivate/").status_code == 200
    assert alpha.client("owner").post("/api/v1/staff/", NEW_STAFF, content_type="application/json").status_code == 201


def test_the_plans_staff_quota_is_enforced_in_the_admin(alpha: Brand) -> None:
    with schema_context(alpha.schema):
        active = User.objects.filter(is_active=True).count()
    _set_quota(alpha, active)
    form = {
        "username": "adminhire",
        "usable_password": "true",
        "password1": "Adminhire-pass-2026",
        "password2": "Adminhire-pass-2026",
    }
    response = alpha.client("owner").post("/admin/brand/user/add/", form)
    assert response.status_code == 200, "the form is shown again with the reason"
    assert "上限" in response.content.decode()
    with schema_context(alpha.schema):
        assert not User.objects.filter(username="adminhire").exists()

    _set_quota(alpha, active + 1)
    response = alpha.client("owner").post("/admin/brand/user/add/", form)
    assert response.status_code == 302
    with schema_context(alpha.schema):
        assert User.objects.get(username="adminhire").is_staff
