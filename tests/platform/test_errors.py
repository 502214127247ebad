"""Invariant 7, at the edges: bad input gets a clear 4xx, never a 500, and nothing half-written stays.

Every refusal of the APIs is JSON with a machine `code` (stable snake_case, asserted exactly) and a
`message` in Simplified Chinese (zh-hans is the only language). Outside the APIs the same refusals
are Chinese pages. A crash is a 500 with the same shape and nothing of the traceback.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest
from django.contrib.auth.models import Group
from django.test import Client
from django_tenants.utils import schema_context

from tenants.brand.models import AuditEntry, BrandProfile, User
from tenants.models import Tenant, TenantStatus
from tests.conftest import STAFF_PASSWORD, Brand

CJK = re.compile(r"[\u4e00-\u9fff]")
SNAKE_CASE = re.compile(r"[a-z]+(?:_[a-z0-9]+)*")
# What an error response must never show.
INTERNALS = ("Traceback", 'File "', "psycopg", "django.db", "Exception", "Error:")


def assert_api_refusal(response: Any, status: int, code: str) -> dict[str, Any]:
    """A JSON refusal: the status, the exact code, a Chinese message, and (for bad fields) Chinese per-field text."""
    text = response.content.decode(errors="replace")
    assert response.status_code == status, f"{response.status_code} {text[:500]}"
    assert response["Content-Type"].startswith("application/json"), response["Content-Type"]
    body: dict[str, Any] = response.json()
    assert SNAKE_CASE.fullmatch(body["code"]), body
    assert body["code"] == code, body
    assert CJK.search(body["message"]), f"message not in Chinese: {body['message']!r}"
    if code == "invalid_input":
        messages = list(_strings(body["fields"]))
        assert messages, body
        for message in messages:
            assert CJK.search(message), f"field message not in Chinese: {message!r}"
    for internal in INTERNALS:
        assert internal not in text, f"{internal!r} in {text[:500]}"
    return body


def assert_page_refusal(response: Any, status: int) -> str:
    """A refusal page for people: HTML, in Chinese, nothing of Django's English defaults or internals."""
    page = response.content.decode()
    assert response.status_code == status, f"{response.status_code} {page[:500]}"
    assert response["Content-Type"].startswith("text/html"), response["Content-Type"]
    assert 'lang="zh-CN"' in page
    assert CJK.search(page)
    for english in ("Not Found", "Server Error", "Bad Request", "Forbidden", "The requested resource"):
        assert english not in page, f"{english!r} on a user-facing page"
    for internal in INTERNALS:
        assert internal not in page
    return page


def _strings(value: Any) -> Any:
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for item in value.values():
            yield from _strings(item)
    elif isinstance(value, list):
        for item in value:
            yield from _strings(item)


@dataclass(frozen=True)
class Bad:
    """One bad request: method, path, body (already encoded) and content type, and the expected refusal."""

    method: str
    path: str
    body: str | bytes | None
    content_type: str
    status: int
    code: str

    def send(self, client: Client) -> Any:
        call = getattr(client, self.method)
        if self.body is None:
            return call(self.path)
        return call(self.path, self.body, content_type=self.content_type)


JSON = "application/json"
DEEP = "[" * 5000 + "]" * 5000  # a few KiB that made the decoder recurse past Python's limit

BRAND_API_CASES = [
    # Bodies that are not JSON, or JSON nobody can use.
    Bad("post", "/api/v1/staff/", "{'username': 'x'", JSON, 400, "malformed_request"),
    Bad("post", "/api/v1/staff/", b'{"username": "\xff\xfe"}', JSON, 400, "malformed_request"),
    Bad("post", "/api/v1/staff/", '{"username": NaN}', JSON, 400, "malformed_request"),
    Bad("post", "/api/v1/staff/", DEEP, JSON, 400, "malformed_request"),
    Bad("patch", "/api/v1/profile/", "null", JSON, 400, "malformed_request"),
    Bad("post", "/api/v1/staff/", "[1, 2]", JSON, 400, "invalid_input"),
    Bad("patch", "/api/v1/profile/", '"a string"', JSON, 400, "invalid_input"),
    # The wrong content type.
    Bad("post", "/api/v1/staff/", "username=x", "text/plain", 415, "unsupported_media_type"),
    Bad("patch", "/api/v1/profile/", "<profile/>", "application/xml", 415, "unsupported_media_type"),
    # Wrong types, unknown fields, missing fields, values past their limits.
    Bad(
        "post", "/api/v1/staff/", '{"username": ["a"], "password": {}, "role": "operator"}', JSON, 400, "invalid_input"
    ),
    Bad("post", "/api/v1/staff/", '{"username": "new_hire"}', JSON, 400, "invalid_input"),
    Bad(
        "post",
        "/api/v1/staff/",
        '{"username": "a\\u0000b", "password": "x", "role": "operator"}',
        JSON,
        400,
        "invalid_input",
    ),
    Bad(
        "post",
        "/api/v1/staff/",
        '{"username": "new_hire", "password": "Long-enough-2026", "role": "operator", "is_superuser": true}',
        JSON,
        400,
        "invalid_input",
    ),
    Bad(
        "post",
        "/api/v1/staff/",
        '{"username": "new_hire", "password": "Long-enough-2026", "role": 5}',
        JSON,
        400,
        "invalid_role",
    ),
    Bad("patch", "/api/v1/profile/", '{"slogn": "typo in the field name"}', JSON, 400, "invalid_input"),
    Bad("patch", "/api/v1/profile/", '{"display_name": null}', JSON, 400, "invalid_input"),
    Bad("patch", "/api/v1/profile/", '{"display_name": "' + "酒" * 101 + '"}', JSON, 400, "invalid_input"),
    Bad("patch", "/api/v1/profile/", '{"display_name": "   "}', JSON, 400, "invalid_input"),
    Bad("post", "/api/v1/staff/1/role/", '{"role": ["owner"]}', JSON, 400, "invalid_input"),
    Bad("post", "/api/v1/staff/99999999999999999999/role/", '{"role": "owner"}', JSON, 404, "staff_not_found"),
    Bad(
        "post",
        "/api/v1/auth/login/",
        '{"username": "owner", "password": "x", "remember": true}',
        JSON,
        400,
        "invalid_input",
    ),
    # Methods a URL does not take.
    Bad("put", "/api/v1/staff/", "{}", JSON, 405, "method_not_allowed"),
    Bad("delete", "/api/v1/profile/", None, JSON, 405, "method_not_allowed"),
    Bad("get", "/api/v1/auth/login/", None, JSON, 405, "method_not_allowed"),
    # Paths that do not exist.
    Bad("get", "/api/v1/no-such-thing/", None, JSON, 404, "not_found"),
    Bad("post", "/api/v2/staff/", "{}", JSON, 404, "not_found"),
    Bad("get", "/api/v1/staff/abc/role/", None, JSON, 404, "not_found"),
    # A NUL character in a list filter (PostgreSQL text cannot hold one).
    Bad("get", "/api/v1/audit/?actor=own%00er", None, JSON, 400, "malformed_request"),
    Bad("get", "/api/v1/audit/?action%00=login", None, JSON, 400, "malformed_request"),
]


def _state(brand: Brand) -> tuple[Any, ...]:
    """What a refused request must leave exactly as it was."""
    with schema_context(brand.schema):
        return (
            list(User.objects.order_by("pk").values_list("username", "is_active", "is_superuser")),
            list(User.groups.through.objects.order_by("pk").values_list("user_id", "group_id")),
            BrandProfile.objects.values("display_name", "slogan", "service_phone").get(id=1),
            AuditEntry.objects.count(),
            Group.objects.count(),
        )


@pytest.mark.parametrize("bad", BRAND_API_CASES, ids=lambda bad: f"{bad.method} {bad.path} {str(bad.body)[:40]}")
def test_bad_input_to_the_brand_api_is_a_coded_chinese_4xx_and_changes_nothing(bad: Bad, alpha: Brand) -> None:
    owner = alpha.client("owner")  # signing in is audited: take the state after it
    before = _state(alpha)
    assert_api_refusal(bad.send(owner), bad.status, bad.code)
    assert _state(alpha) == before


def test_unknown_fields_are_named_in_the_refusal(alpha: Brand) -> None:
    response = alpha.client("owner").patch(
        "/api/v1/profile/", {"display_name": "新名字", "slogn": "错字"}, content_type=JSON
    )
    body = assert_api_refusal(response, 400, "invalid_input")
    assert set(body["fields"]) == {"slogn"}
    with schema_context(alpha.schema):
        assert BrandProfile.objects.get(id=1).display_name == alpha.tenant.name, "half of a refused change was saved"


def test_a_form_encoded_body_is_understood_and_checked_like_json(alpha: Brand) -> None:
    owner = alpha.client("owner")
    response = owner.post("/api/v1/staff/1/role/", {"role": "no-such-role"})
    assert_api_refusal(response, 400, "invalid_role")


OPS_CASES = [
    Bad("post", "/ops/api/v1/brands/", '{"code": "x",', JSON, 400, "malformed_request"),
    Bad("post", "/ops/api/v1/brands/", DEEP, JSON, 400, "malformed_request"),
    Bad("post", "/ops/api/v1/brands/", "code=x", "text/plain", 415, "unsupported_media_type"),
    Bad("post", "/ops/api/v1/brands/", '{"code": ["x"], "name": 5, "plan": null}', JSON, 400, "invalid_input"),
    Bad(
        "post",
        "/ops/api/v1/brands/",
        '{"code": "strictnew", "name": "新品牌", "plan": "standard", "admin_username": "boss", "quota": 9999}',
        JSON,
        400,
        "invalid_input",
    ),
    Bad(
        "post",
        "/ops/api/v1/brands/",
        '{"code": "Bad Code!", "name": "新品牌", "plan": "standard", "admin_username": "boss"}',
        JSON,
        400,
        "invalid_brand_code",
    ),
    Bad("post", "/ops/api/v1/brands/alpha/suspend/", '{"reasn": "typo"}', JSON, 400, "invalid_input"),
    Bad("post", "/ops/api/v1/brands/alpha/domains/", '{"domain": 42, "primary": "maybe"}', JSON, 400, "invalid_input"),
    Bad("post", "/ops/api/v1/brands/alpha/deletion/confirm/", '{"export_id": "abc"}', JSON, 400, "invalid_input"),
    Bad("delete", "/ops/api/v1/brands/", None, JSON, 405, "method_not_allowed"),
    Bad("put", "/ops/api/v1/brands/alpha/", "{}", JSON, 405, "method_not_allowed"),
    Bad("get", "/ops/api/v1/no-such-thing/", None, JSON, 404, "not_found"),
    Bad("get", "/ops/api/v1/brands/no-such-brand/", None, JSON, 404, "brand_not_found"),
    Bad("get", "/ops/api/v1/brands/?status=ready%00", None, JSON, 400, "malformed_request"),
]


def _ops_state() -> tuple[Any, ...]:
    return (
        list(Tenant.objects.order_by("pk").values_list("code", "status")),
        list(Tenant.objects.order_by("pk").values_list("domains__domain", flat=True)),
    )


@pytest.mark.parametrize("bad", OPS_CASES, ids=lambda bad: f"{bad.method} {bad.path} {str(bad.body)[:40]}")
def test_bad_input_to_the_ops_api_is_a_coded_chinese_4xx_and_changes_nothing(
    bad: Bad, ops_client: Client, alpha: Brand
) -> None:
    before = _ops_state()
    assert_api_refusal(bad.send(ops_client), bad.status, bad.code)
    assert _ops_state() == before
    assert Tenant.objects.get(code="alpha").status == TenantStatus.READY


# --- who is asking -----------------------------------------------------------------------------


def test_unauthenticated_and_unauthorised_callers_get_coded_refusals(alpha: Brand) -> None:
    anonymous = alpha.client()
    assert_api_refusal(anonymous.get("/api/v1/staff/"), 403, "not_authenticated")
    assert_api_refusal(anonymous.patch("/api/v1/profile/", {}, content_type=JSON), 403, "not_authenticated")
    # Signed in, but the role does not allow it.
    assert_api_refusal(
        alpha.client("warehouse").patch("/api/v1/profile/", {"slogan": "x"}, content_type=JSON),
        403,
        "permission_denied",
    )
    assert_api_refusal(
        alpha.client("finance").post(
            "/api/v1/staff/",
            {"username": "by_finance", "password": STAFF_PASSWORD, "role": "owner"},
            content_type=JSON,
        ),
        403,
        "permission_denied",
    )
    # Asking for a format the API does not speak.
    assert_api_refusal(alpha.client("owner").get("/api/v1/me/", HTTP_ACCEPT="application/xml"), 406, "not_acceptable")


def test_the_ops_api_refuses_missing_and_wrong_credentials_with_codes(db: None) -> None:
    assert_api_refusal(Client(HTTP_HOST="localhost").get("/ops/api/v1/brands/"), 401, "not_authenticated")
    wrong = Client(HTTP_HOST="localhost", HTTP_AUTHORIZATION="Bearer jmo_not_a_real_token")
    assert_api_refusal(wrong.get("/ops/api/v1/brands/"), 401, "authentication_failed")
    garbled = Client(HTTP_HOST="localhost", HTTP_AUTHORIZATION="Basic !!!not-base64!!!")
    assert_api_refusal(garbled.get("/ops/api/v1/brands/"), 401, "authentication_failed")


def test_an_unknown_host_header_is_refused_in_chinese() -> None:
    """A Host outside ALLOWED_HOSTS (a scanner, a misrouted request): 400, not Django's English page.

    No database fixture: refusing it costs no query."""
    stranger = Client(HTTP_HOST="evil.example.com")
    assert_api_refusal(stranger.get("/api/v1/site/"), 400, "bad_request")
    assert_page_refusal(stranger.get("/"), 400)


# --- pages ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("host", "role", "path"),
    [
        ("alpha.localhost", None, "/no-such-page/"),
        ("alpha.localhost", "owner", "/admin/no-such-app/"),
        ("alpha.localhost", None, "/apiv1/staff/"),
        ("localhost", None, "/no-such-page/"),
        ("localhost", None, "/ops/no-such-page/"),
    ],
)
def test_a_missing_page_is_a_chinese_404_page(host: str, role: str | None, path: str, alpha: Brand) -> None:
    client = alpha.client(role) if role else Client(HTTP_HOST=host)
    page = assert_page_refusal(client.get(path), 404)
    assert "页面不存在" in page


def test_an_admin_page_the_role_does_not_allow_is_a_chinese_403_page(alpha: Brand) -> None:
    finance = alpha.client("finance")
    for path in ("/admin/brand/user/add/", "/admin/brand/auditentry/"):
        assert_page_refusal(finance.get(path), 403)


def test_a_nul_character_in_an_admin_filter_is_a_chinese_400_page(alpha: Brand) -> None:
    owner = alpha.client("owner")
    assert owner.get("/admin/brand/auditentry/?action=login").status_code == 200
    assert_page_refusal(owner.get("/admin/brand/auditentry/?action=log%00in"), 400)


# --- pages of lists ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "query",
    [
        "limit=9223372036854775808",
        "limit=99999999999999999999999999&offset=99999999999999999999999999",
        "offset=9223372036854775807",
        "limit=-1&offset=-5",
        "limit=abc&offset=1e9",
        "limit=0",
    ],
)
def test_oversized_or_odd_page_numbers_give_a_page_not_a_500(query: str, alpha: Brand) -> None:
    response = alpha.client("owner").get(f"/api/v1/audit/?{query}")
    assert response.status_code == 200, response.content[:500]
    body = response.json()
    assert body["count"] >= 1  # the owner's own sign-in at least
    assert len(body["results"]) <= 1000


def test_a_huge_limit_is_cut_to_the_maximum_page(alpha: Brand) -> None:
    with schema_context(alpha.schema):
        AuditEntry.objects.bulk_create(
            AuditEntry(action="request", object_type="http", object_repr=f"/bulk/{n}", via="system")
            for n in range(1005)
        )
    body = alpha.client("owner").get("/api/v1/audit/?limit=100000").json()
    assert body["count"] > 1000
    assert len(body["results"]) == 1000
    assert body["next"] is not None


# --- crashes -------------------------------------------------------------------------------------


def _crash(message: str) -> Callable[..., Any]:
    def boom(*args: Any, **kwargs: Any) -> Any:
        raise RuntimeError(message)

    return boom


SECRET_DETAIL = "internal detail 7f3a: password=hunter2"


def test_a_crash_in_the_brand_api_is_a_coded_chinese_500_without_the_traceback(
    alpha: Brand, monkeypatch: pytest.MonkeyPatch
) -> None:
    from tenants.brand.api import views

    monkeypatch.setattr(views.services, "update_profile", _crash(SECRET_DETAIL))
    owner = alpha.client("owner")
    owner.raise_request_exception = False
    response = owner.patch("/api/v1/profile/", {"slogan": "新口号"}, content_type=JSON)
    assert_api_refusal(response, 500, "server_error")
    assert SECRET_DETAIL not in response.content.decode()


def test_a_crash_in_the_ops_api_is_a_coded_chinese_500_without_the_traceback(
    ops_client: Client, monkeypatch: pytest.MonkeyPatch
) -> None:
    from tenants.api import views

    monkeypatch.setattr(views.services, "get_brand", _crash(SECRET_DETAIL))
    ops_client.raise_request_exception = False
    response = ops_client.get("/ops/api/v1/brands/alpha/")
    assert_api_refusal(response, 500, "server_error")
    assert SECRET_DETAIL not in response.content.decode()


def test_a_crash_on_a_page_is_a_chinese_500_page_without_the_traceback(
    alpha: Brand, monkeypatch: pytest.MonkeyPatch
) -> None:
    from frontends import views

    class Broken:
        objects = type("Manager", (), {"filter": staticmethod(_crash(SECRET_DETAIL))})

    monkeypatch.setattr(views, "BrandProfile", Broken)
    visitor = alpha.client()
    visitor.raise_request_exception = False
    response = visitor.get("/")
    page = assert_page_refusal(response, 500)
    assert SECRET_DETAIL not in page
