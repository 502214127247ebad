"""The brand audit log: every staff write (admin or API) is recorded with who, what, before/after,
when and from where; the log is append-only in the database and readable by the owner only."""

from __future__ import annotations

import json
import re
from datetime import timedelta
from typing import Any

import pytest
from django.db import DatabaseError, connection, transaction
from django.utils import timezone
from django_tenants.utils import schema_context

from tenants.brand import audit
from tenants.brand.models import AuditEntry, BrandProfile, User
from tests.conftest import OWNER_PASSWORD, ROLES, STAFF_PASSWORD, Brand

NEW_STAFF = {"username": "auditee", "password": "Auditee-pass-2026", "role": "finance", "display_name": "审计对象"}
CJK = re.compile(r"[\u4e00-\u9fff]")


def _entries(brand: Brand, **filters: Any) -> list[AuditEntry]:
    with schema_context(brand.schema):
        return list(AuditEntry.objects.filter(**filters).order_by("id"))


def _last_id(brand: Brand) -> int:
    with schema_context(brand.schema):
        last = AuditEntry.objects.order_by("-id").first()
        return last.pk if last else 0


def _new_entries(brand: Brand, since: int) -> list[AuditEntry]:
    return _entries(brand, id__gt=since)


def _profile_form(brand: Brand, **changes: str) -> dict[str, str]:
    with schema_context(brand.schema):
        profile = BrandProfile.objects.get(id=1)
    return {
        "display_name": profile.display_name,
        "slogan": profile.slogan,
        "service_phone": profile.service_phone,
        **changes,
    }


def test_creating_staff_through_the_api_is_recorded_without_the_password(alpha: Brand) -> None:
    owner = alpha.client("owner")  # force_login records a login entry: count from here
    since = _last_id(alpha)
    started = timezone.now()
    response = owner.post(
        "/api/v1/staff/", NEW_STAFF, content_type="application/json", HTTP_USER_AGENT="测试浏览器/1.0"
    )
    assert response.status_code == 201
    (entry,) = _new_entries(alpha, since)
    assert entry.actor_id == alpha.users["owner"].pk
    assert entry.actor_name == "owner"
    assert entry.action == "create"
    assert entry.object_type == "brand.user"
    assert entry.object_id == str(response.json()["id"])
    assert entry.before is None
    assert entry.after["username"] == "auditee"
    assert entry.after["role"] == "finance"
    assert entry.ip == "127.0.0.1"
    assert entry.via == "api"
    assert entry.user_agent == "测试浏览器/1.0"
    assert entry.request_id == response["X-Request-ID"]
    assert started <= entry.at <= timezone.now()
    with schema_context(alpha.schema):
        password_hash = User.objects.get(username="auditee").password
    logged = json.dumps(entry.after)
    assert NEW_STAFF["password"] not in logged
    assert password_hash not in logged
    assert entry.after["password"] == "***"


def test_a_profile_change_records_only_the_changed_fields(alpha: Brand) -> None:
    old = _profile_form(alpha)["slogan"]
    operator = alpha.client("operator")
    since = _last_id(alpha)
    response = operator.patch(
        "/api/v1/profile/",
        {"slogan": "好酒不怕巷子深", "display_name": _profile_form(alpha)["display_name"]},
        content_type="application/json",
    )
    assert response.status_code == 200, response.content
    (entry,) = _new_entries(alpha, since)
    assert entry.action == "update"
    assert entry.actor_name == alpha.users["operator"].username
    assert entry.object_type == "brand.brandprofile"
    assert entry.before == {"slogan": old}
    assert entry.after == {"slogan": "好酒不怕巷子深"}


def test_an_admin_change_form_is_recorded_with_before_and_after(alpha: Brand) -> None:
    old = _profile_form(alpha)["slogan"]
    owner = alpha.client("owner")
    since = _last_id(alpha)
    response = owner.post(
        "/admin/brand/brandprofile/1/change/", _profile_form(alpha, slogan="一瓶一码"), HTTP_X_REQUEST_ID="req-admin-1"
    )
    assert response.status_code == 302, response.content.decode()[-500:]
    (entry,) = _new_entries(alpha, since)
    assert entry.via == "admin"
    assert entry.action == "update"
    assert entry.actor_name == "owner"
    assert entry.object_type == "brand.brandprofile"
    assert entry.object_id == "1"
    assert entry.before == {"slogan": old}
    assert entry.after == {"slogan": "一瓶一码"}
    assert entry.request_id == "req-admin-1"
    assert entry.ip == "127.0.0.1"


def test_deleting_in_the_admin_is_recorded_with_what_was_deleted(alpha: Brand) -> None:
    target = alpha.users["customer_service"]
    owner = alpha.client("owner")
    since = _last_id(alpha)
    response = owner.post(f"/admin/brand/user/{target.pk}/delete/", {"post": "yes"})
    assert response.status_code == 302
    (entry,) = _new_entries(alpha, since)
    assert entry.action == "delete"
    assert entry.object_id == str(target.pk)
    assert entry.before["username"] == target.username
    assert entry.before["password"] == "***"
    assert entry.after is None


def test_a_write_without_its_own_record_still_leaves_a_request_entry(alpha: Brand) -> None:
    """The admin's password change form saves without calling audit.record (verified: one entry)."""
    client = alpha.client("finance")
    since = _last_id(alpha)
    response = client.post(
        "/admin/password_change/",
        {"old_password": STAFF_PASSWORD, "new_password1": "Changed-pass-2026", "new_password2": "Changed-pass-2026"},
    )
    assert response.status_code == 302, response.content.decode()[-500:]
    (entry,) = _new_entries(alpha, since)
    assert entry.action == "request"
    assert entry.actor_id == alpha.users["finance"].pk
    assert entry.actor_name == alpha.users["finance"].username
    assert entry.object_repr == "/admin/password_change/"
    assert "POST /admin/password_change/ -> 302" in entry.detail
    assert entry.via == "admin"
    assert "Changed-pass-2026" not in json.dumps([entry.detail, entry.before, entry.after])


def test_refused_writes_and_reads_leave_no_entry(alpha: Brand) -> None:
    operator, owner = alpha.client("operator"), alpha.client("owner")
    since = _last_id(alpha)
    assert operator.post("/api/v1/staff/", NEW_STAFF, content_type="application/json").status_code == 403
    assert operator.patch("/api/v1/profile/", {"display_name": " "}, content_type="application/json").status_code == 400
    assert owner.get("/api/v1/staff/").status_code == 200
    assert owner.get("/admin/brand/user/").status_code == 200
    assert _new_entries(alpha, since) == []


def test_sign_in_failed_sign_in_and_sign_out_are_logged(alpha: Brand) -> None:
    since = _last_id(alpha)
    client = alpha.client()
    bad = client.post(
        "/api/v1/auth/login/", {"username": "owner", "password": "Wr0ng-guess-9"}, content_type="application/json"
    )
    assert bad.status_code == 400
    good = client.post(
        "/api/v1/auth/login/", {"username": "owner", "password": OWNER_PASSWORD}, content_type="application/json"
    )
    assert good.status_code == 200
    assert client.post("/api/v1/auth/logout/").status_code == 204
    admin = alpha.client()
    assert admin.post("/admin/login/", {"username": "owner", "password": OWNER_PASSWORD}).status_code == 302

    failed, login, logout, admin_login = _new_entries(alpha, since)
    assert failed.action == "login_failed"
    assert failed.object_repr == "owner"
    assert failed.ip == "127.0.0.1"
    assert "Wr0ng-guess-9" not in json.dumps([failed.detail, failed.before, failed.after])
    assert (login.action, login.actor_name, login.via) == ("login", "owner", "api")
    assert login.actor_id == alpha.users["owner"].pk
    assert (logout.action, logout.actor_name) == ("logout", "owner")
    assert (admin_login.action, admin_login.via) == ("login", "admin")


def test_the_audit_table_refuses_update_delete_and_truncate(alpha: Brand) -> None:
    with schema_context(alpha.schema):
        entry = audit.record("action", object_type="test", detail="原始记录")
        for statement in (
            lambda: AuditEntry.objects.filter(pk=entry.pk).update(detail="篡改"),
            lambda: AuditEntry.objects.filter(pk=entry.pk).delete(),
        ):
            with pytest.raises(DatabaseError, match="append-only"), transaction.atomic():
                statement()
        with pytest.raises(DatabaseError, match="append-only"), transaction.atomic(), connection.cursor() as cursor:
            cursor.execute("TRUNCATE brand_auditentry")
        entry.detail = "篡改"
        with pytest.raises(ValueError, match="append-only"):
            entry.save()
        assert AuditEntry.objects.get(pk=entry.pk).detail == "原始记录"


@pytest.mark.parametrize("role", ROLES)
def test_only_the_owner_can_browse_the_audit_log(alpha: Brand, role: str) -> None:
    response = alpha.client(role).get("/api/v1/audit/")
    assert response.status_code == 403
    assert response.json()["code"] == "permission_denied"
    assert CJK.search(response.json()["message"])
    assert alpha.client().get("/api/v1/audit/").status_code == 403


def test_the_audit_log_lists_newest_first_and_filters(alpha: Brand) -> None:
    with schema_context(alpha.schema):
        older = audit.record("action", object_type="test", detail="较早")
        AuditEntry.objects.create(
            action="action", object_type="test", detail="很早", at=timezone.now() - timedelta(days=1)
        )
        newer = audit.record("action", object_type="test", detail="较新")
    owner = alpha.client("owner")
    body = owner.get("/api/v1/audit/", {"object_type": "test"}).json()
    assert body["count"] == 3
    assert [e["detail"] for e in body["results"]] == ["较新", "较早", "很早"]
    assert body["results"][0]["id"] == newer.pk
    assert body["results"][1]["id"] == older.pk
    everything = owner.get("/api/v1/audit/").json()["results"]
    stamps = [e["at"] for e in everything]
    assert stamps == sorted(stamps, reverse=True)

    owner.post("/api/v1/staff/", NEW_STAFF, content_type="application/json")
    created = owner.get("/api/v1/audit/", {"action": "create", "actor": "owner"}).json()
    assert created["count"] >= 1
    assert created["results"][0]["object_repr"] == "审计对象"
    assert all(e["action"] == "create" and e["actor_name"] == "owner" for e in created["results"])


def test_each_brand_keeps_its_own_audit_log(alpha: Brand, beta: Brand) -> None:
    with schema_context(alpha.schema):
        marker = audit.record("action", object_type="test", detail="阿尔法的秘密")
    alpha_log = alpha.client("owner").get("/api/v1/audit/", {"object_type": "test"}).json()
    beta_log = beta.client("owner").get("/api/v1/audit/", {"object_type": "test"}).json()
    assert [e["id"] for e in alpha_log["results"]] == [marker.pk]
    assert beta_log["count"] == 0
    assert "阿尔法的秘密" not in beta.client("owner").get("/api/v1/audit/").content.decode()
    with schema_context(beta.schema):
        assert not AuditEntry.objects.filter(detail="阿尔法的秘密").exists()
