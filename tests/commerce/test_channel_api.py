"""The channel API (/api/v1/channel/): who may do what, bad input as a coded Chinese 4xx that
changes nothing, paging and filters, bounded queries, and one brand never seeing another's channel."""

from __future__ import annotations

from typing import Any

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django_tenants.utils import schema_context

from commerce import regions
from commerce.models import ChannelStaff, Dealer, DealerArea, Store
from commerce.services import channel
from tenants.brand.models import AuditEntry, User
from tests.commerce.conftest import GUIYANG, GUIZHOU, NANMING, YUNYAN, ZUNYI, assert_refused
from tests.conftest import Brand

API = "/api/v1/channel"
JSON = "application/json"
READERS = ("warehouse", "finance", "customer_service")


def _post(client: Client, path: str, body: Any = None) -> Any:
    return client.post(f"{API}{path}", body if body is not None else {}, content_type=JSON)


def _patch(client: Client, path: str, body: Any) -> Any:
    return client.patch(f"{API}{path}", body, content_type=JSON)


def _put(client: Client, path: str, body: Any) -> Any:
    return client.put(f"{API}{path}", body, content_type=JSON)


def _counts(brand: Brand) -> tuple[int, ...]:
    with schema_context(brand.schema):
        return (
            Dealer.objects.count(),
            DealerArea.objects.count(),
            Store.objects.count(),
            ChannelStaff.objects.count(),
            User.objects.count(),
        )


def _setup(brand: Brand) -> dict[str, int]:
    """A first-level dealer for 贵阳 with a store in 南明区, a second-level dealer, a store clerk."""
    with schema_context(brand.schema):
        dealer = channel.create_dealer(code="GY-01", name=f"{brand.tenant.name}贵阳经销商", areas=[GUIYANG])
        sub = channel.create_dealer(code="GY-02", name="二级经销商", level=2, parent_id=dealer.pk, areas=[NANMING])
        store = channel.create_store(code="S-001", name="南明门店", dealer_id=dealer.pk, region_code=NANMING)
        clerk = channel.add_channel_staff(role="store_clerk", phone="13900000001", store_id=store.pk)
    return {"dealer": dealer.pk, "sub": sub.pk, "store": store.pk, "clerk": clerk.pk}


# --- dealers ------------------------------------------------------------------------------------------


def test_the_owner_creates_and_reads_a_dealer_with_its_areas(alpha: Brand) -> None:
    owner = alpha.client("owner")
    response = _post(
        owner,
        "/dealers/",
        {"code": "gz-01", "name": "贵州总经销", "contact_phone": "13800000000", "areas": [ZUNYI, NANMING]},
    )
    assert response.status_code == 201, response.content
    body = response.json()
    assert body["code"] == "GZ-01"
    assert body["level"] == 1
    assert body["level_display"] == "一级经销商"
    assert body["status_display"] == "正常"
    assert body["areas"] == [
        {"region_code": NANMING, "full_name": "贵州省贵阳市南明区"},
        {"region_code": ZUNYI, "full_name": "贵州省遵义市"},
    ]
    detail = owner.get(f"{API}/dealers/{body['id']}/")
    assert detail.status_code == 200
    assert detail.json() == body
    with schema_context(alpha.schema):
        entry = AuditEntry.objects.filter(object_type="commerce.dealer").latest("id")
    assert (entry.action, entry.via, entry.actor_name) == ("create", "api", "owner")
    assert entry.after["areas"] == [NANMING, ZUNYI]


def test_dealers_are_listed_in_pages_and_filtered(alpha: Brand) -> None:
    ids = _setup(alpha)
    owner = alpha.client("owner")
    page = owner.get(f"{API}/dealers/", {"limit": 1}).json()
    assert page["count"] == 2
    assert [row["code"] for row in page["results"]] == ["GY-01"]
    assert page["next"]

    def codes(**params: Any) -> list[str]:
        response = owner.get(f"{API}/dealers/", params)
        assert response.status_code == 200, response.content
        return [row["code"] for row in response.json()["results"]]

    assert codes(level=2) == ["GY-02"]
    assert codes(parent=ids["dealer"]) == ["GY-02"]
    assert codes(q="贵阳") == ["GY-01"]
    assert codes(region=YUNYAN) == ["GY-01"]  # inside 贵阳
    assert codes(region=GUIZHOU) == ["GY-01", "GY-02"]  # areas inside the province
    assert codes(region=ZUNYI) == []
    assert codes(region="999999") == []
    assert codes(status="suspended") == []
    assert_refused(owner.get(f"{API}/dealers/", {"level": 3}), 400, "invalid_input")
    assert_refused(owner.get(f"{API}/dealers/", {"parent": "x"}), 400, "invalid_input")
    assert_refused(owner.get(f"{API}/dealers/", {"parent": 2**70}), 400, "invalid_input")


def test_listing_dealers_costs_the_same_queries_for_many(alpha: Brand) -> None:
    owner = alpha.client("owner")

    def queries() -> int:
        with CaptureQueriesContext(connection) as captured:
            assert owner.get(f"{API}/dealers/").status_code == 200
        return len(captured)

    with schema_context(alpha.schema):
        channel.create_dealer(code="Q-00", name="经销商", areas=[GUIYANG])
    queries()  # the first request of a process loads what is cached after it
    few = queries()
    counties = [region.code for region in regions.children(GUIYANG)]
    with schema_context(alpha.schema):
        parent = Dealer.objects.get(code="Q-00")
        for n in range(1, 15):
            channel.create_dealer(code=f"Q-{n:02}", name="经销商", areas=[counties[n % len(counties)], ZUNYI])
            if n % 3 == 0:
                channel.create_dealer(code=f"Q-{n:02}-2", name="二级", level=2, parent_id=parent.pk)
    assert queries() == few


def test_updating_suspending_and_deleting_a_dealer(alpha: Brand) -> None:
    ids = _setup(alpha)
    owner = alpha.client("owner")
    updated = _patch(owner, f"/dealers/{ids['dealer']}/", {"name": "新名称", "contact_name": "李四"})
    assert updated.status_code == 200, updated.content
    assert (updated.json()["name"], updated.json()["contact_name"]) == ("新名称", "李四")
    suspended = _post(owner, f"/dealers/{ids['dealer']}/suspend/")
    assert suspended.json()["status"] == "suspended"
    assert _post(owner, f"/dealers/{ids['dealer']}/resume/").json()["status"] == "active"
    assert_refused(owner.delete(f"{API}/dealers/{ids['dealer']}/"), 409, "dealer_in_use")
    created = _post(owner, "/dealers/", {"code": "TMP", "name": "临时"}).json()
    assert owner.delete(f"{API}/dealers/{created['id']}/").status_code == 204
    assert_refused(owner.get(f"{API}/dealers/{created['id']}/"), 404, "dealer_not_found")


def test_replacing_a_dealers_areas(alpha: Brand) -> None:
    ids = _setup(alpha)
    owner = alpha.client("owner")
    path = f"/dealers/{ids['dealer']}/areas/"
    assert owner.get(f"{API}{path}").json() == {"areas": [{"region_code": GUIYANG, "full_name": "贵州省贵阳市"}]}
    response = _put(owner, path, {"areas": [GUIZHOU]})
    assert response.status_code == 200, response.content
    assert response.json()["areas"] == [{"region_code": GUIZHOU, "full_name": "贵州省"}]
    before = _counts(alpha)
    body = assert_refused(_put(owner, path, {"areas": [ZUNYI]}), 409, "areas_exclude_stores_or_sub_dealers")
    assert body["fields"] == {"stores": ["S-001"], "sub_dealers": ["GY-02"]}
    assert_refused(_put(owner, path, {"areas": ["000000"]}), 400, "unknown_region")
    assert_refused(_put(owner, path, {"areas": [GUIZHOU, GUIYANG]}), 400, "overlapping_areas")
    assert_refused(_put(owner, path, {"areas": "520000"}), 400, "invalid_input")
    assert_refused(_put(owner, path, {}), 400, "invalid_input")
    assert_refused(_put(owner, "/dealers/987654321/areas/", {"areas": []}), 404, "dealer_not_found")
    assert _counts(alpha) == before


BAD_DEALERS = [
    ({"code": "D1", "name": "经销商", "colour": "red"}, 400, "invalid_input"),
    ({"name": "经销商"}, 400, "invalid_input"),
    ({"code": "D 1", "name": "经销商"}, 400, "invalid_dealer"),
    ({"code": "D1", "name": "经销商", "areas": ["520199"]}, 400, "unknown_region"),
    ({"code": "D1", "name": "经销商", "areas": ["5201\x00"]}, 400, "invalid_input"),
    ({"code": "D1", "name": "经销商", "level": 2}, 400, "parent_dealer_required"),
    ({"code": "D1", "name": "经销商", "level": 2, "parent": 987654321}, 400, "unknown_parent_dealer"),
    ({"code": "D1", "name": "经销商", "level": 1, "parent": "{sub}"}, 400, "parent_dealer_not_allowed"),
    ({"code": "D1", "name": "经销商", "level": 2, "parent": "{sub}"}, 400, "parent_dealer_is_second_level"),
    (
        {"code": "D1", "name": "经销商", "level": 2, "parent": "{dealer}", "areas": [ZUNYI]},
        400,
        "area_outside_parent_dealer",
    ),
    ({"code": "gy-01", "name": "经销商"}, 409, "dealer_code_taken"),
    ({"code": "D1", "name": "经销商", "contact_phone": "电话"}, 400, "invalid_phone"),
]


@pytest.mark.parametrize(("body", "status", "code"), BAD_DEALERS, ids=[case[2] for case in BAD_DEALERS])
def test_bad_dealer_input_is_a_coded_chinese_4xx_and_writes_nothing(
    alpha: Brand, body: dict[str, Any], status: int, code: str
) -> None:
    ids = _setup(alpha)
    body = {key: ids[value[1:-1]] if value in ("{sub}", "{dealer}") else value for key, value in body.items()}
    owner = alpha.client("owner")
    before = _counts(alpha)
    assert_refused(_post(owner, "/dealers/", body), status, code)
    assert _counts(alpha) == before


def test_a_malformed_body_or_id_is_a_4xx(alpha: Brand) -> None:
    owner = alpha.client("owner")
    response = owner.post(f"{API}/dealers/", "{not json", content_type=JSON)
    assert_refused(response, 400, "malformed_request")
    assert_refused(owner.get(f"{API}/dealers/99999999999999999999999/"), 404, "dealer_not_found")
    assert_refused(_patch(owner, "/dealers/987654321/", {"name": "x"}), 404, "dealer_not_found")
    assert_refused(owner.put(f"{API}/dealers/", {}, content_type=JSON), 405, "method_not_allowed")


# --- roles --------------------------------------------------------------------------------------------


def test_the_operator_runs_the_channel(alpha: Brand) -> None:
    ids = _setup(alpha)
    operator = alpha.client("operator")
    assert _post(operator, "/dealers/", {"code": "OP-1", "name": "运营建的"}).status_code == 201
    assert _patch(operator, f"/stores/{ids['store']}/", {"address": "南明区某路1号"}).status_code == 200
    assert _post(operator, f"/staff/{ids['clerk']}/deactivate/").status_code == 200


@pytest.mark.parametrize("role", READERS)
def test_the_other_roles_read_the_channel_but_change_nothing(alpha: Brand, role: str) -> None:
    ids = _setup(alpha)
    client = alpha.client(role)
    for path in ("/dealers/", f"/dealers/{ids['dealer']}/", f"/dealers/{ids['dealer']}/areas/", "/stores/", "/staff/"):
        assert client.get(f"{API}{path}").status_code == 200, (role, path)
    before = _counts(alpha)
    refusals = [
        _post(client, "/dealers/", {"code": "X", "name": "x"}),
        _patch(client, f"/dealers/{ids['dealer']}/", {"name": "x"}),
        client.delete(f"{API}/dealers/{ids['sub']}/"),
        _put(client, f"/dealers/{ids['dealer']}/areas/", {"areas": []}),
        _post(client, f"/dealers/{ids['dealer']}/suspend/"),
        _post(client, "/stores/", {"code": "X", "name": "x", "dealer": ids["dealer"], "region_code": NANMING}),
        _post(client, f"/stores/{ids['store']}/rotate-qr/"),
        _post(client, "/staff/", {"role": "store_clerk", "phone": "13900000009", "store": ids["store"]}),
        _post(client, f"/staff/{ids['clerk']}/deactivate/"),
    ]
    for response in refusals:
        assert_refused(response, 403, "permission_denied")
    assert _counts(alpha) == before


def test_only_those_who_run_stores_see_their_qr_token(alpha: Brand) -> None:
    ids = _setup(alpha)
    with schema_context(alpha.schema):
        token = Store.objects.get(pk=ids["store"]).qr_token
    assert alpha.client("owner").get(f"{API}/stores/{ids['store']}/").json()["qr_token"] == token
    for role in READERS:
        body = alpha.client(role).get(f"{API}/stores/{ids['store']}/").content.decode()
        assert token not in body, role


def test_strangers_and_channel_staff_get_nothing(alpha: Brand) -> None:
    ids = _setup(alpha)
    assert_refused(alpha.client().get(f"{API}/dealers/"), 403, "not_authenticated")
    with schema_context(alpha.schema):
        clerk_user = ChannelStaff.objects.get(pk=ids["clerk"]).user
        manager = channel.add_channel_staff(
            role="dealer_manager", phone="13900000002", dealer_id=ids["dealer"], password="Manager-pass-2026"
        ).user
    for user in (clerk_user, manager):
        client = Client(HTTP_HOST=alpha.host)
        with schema_context(alpha.schema):
            client.force_login(user)
        assert_refused(client.get(f"{API}/dealers/"), 403, "permission_denied")
        assert_refused(client.get("/api/v1/me/"), 403, "permission_denied")
        admin = client.get("/admin/")
        assert admin.status_code == 302
        assert admin["Location"].startswith("/admin/login/")
    # Nor can they sign in to the brand console with a password.
    login = alpha.client().post(
        "/api/v1/auth/login/", {"username": "13900000002", "password": "Manager-pass-2026"}, content_type=JSON
    )
    assert_refused(login, 400, "login_failed")
    # And the brand's staff list is brand staff only.
    names = {row["username"] for row in alpha.client("owner").get("/api/v1/staff/").json()}
    assert "13900000001" not in names
    assert {user.username for user in alpha.users.values()} <= names


# --- stores -------------------------------------------------------------------------------------------


def test_stores_through_the_api(alpha: Brand) -> None:
    ids = _setup(alpha)
    owner = alpha.client("owner")
    response = _post(
        owner,
        "/stores/",
        {
            "code": "s-002",
            "name": "云岩门店",
            "dealer": ids["dealer"],
            "region_code": YUNYAN,
            "address": "云岩区中华北路 1 号",
            "latitude": "26.5906123456",
            "longitude": 106.7135,
            "contact_phone": "0851-88888888",
        },
    )
    assert response.status_code == 201, response.content
    store = response.json()
    assert (store["code"], store["dealer_code"], store["region_name"]) == ("S-002", "GY-01", "贵州省贵阳市云岩区")
    assert (store["latitude"], store["longitude"]) == ("26.590612", "106.713500")
    assert len(store["qr_token"]) == 32

    def codes(**params: Any) -> list[str]:
        return [row["code"] for row in owner.get(f"{API}/stores/", params).json()["results"]]

    assert codes() == ["S-001", "S-002"]
    assert codes(region=YUNYAN) == ["S-002"]
    assert codes(region=GUIYANG) == ["S-001", "S-002"]
    assert codes(region=ZUNYI) == []
    assert codes(dealer=ids["sub"]) == []
    assert codes(q="中华北路") == ["S-002"]

    moved = _patch(owner, f"/stores/{store['id']}/", {"dealer": ids["sub"]})
    assert_refused(moved, 400, "store_outside_dealer_area")
    moved = _patch(owner, f"/stores/{store['id']}/", {"dealer": ids["sub"], "region_code": NANMING})
    assert moved.status_code == 200, moved.content
    assert moved.json()["dealer_code"] == "GY-02"
    rotated = _post(owner, f"/stores/{store['id']}/rotate-qr/").json()["qr_token"]
    assert rotated != store["qr_token"]
    assert _post(owner, f"/stores/{store['id']}/suspend/").json()["status"] == "suspended"
    assert _post(owner, f"/stores/{store['id']}/resume/").json()["status"] == "active"
    assert owner.delete(f"{API}/stores/{store['id']}/").status_code == 204
    assert_refused(owner.delete(f"{API}/stores/{ids['store']}/"), 409, "store_in_use")


BAD_STORES = [
    ({"region_code": ZUNYI}, 400, "store_outside_dealer_area"),
    ({"region_code": GUIZHOU}, 400, "store_region_too_coarse"),
    ({"region_code": "52"}, 400, "unknown_region"),
    ({"dealer": 987654321}, 400, "unknown_dealer"),
    ({"dealer": "x"}, 400, "invalid_input"),
    ({"latitude": "26.5"}, 400, "invalid_store"),
    ({"latitude": 91, "longitude": 100}, 400, "invalid_input"),
    ({"latitude": "NaN", "longitude": 100}, 400, "invalid_input"),
    ({"code": "S-001"}, 409, "store_code_taken"),
    ({"qr_token": "mine"}, 400, "invalid_input"),
]


@pytest.mark.parametrize(("changes", "status", "code"), BAD_STORES, ids=[str(case[0])[:30] for case in BAD_STORES])
def test_bad_store_input_is_a_coded_chinese_4xx_and_writes_nothing(
    alpha: Brand, changes: dict[str, Any], status: int, code: str
) -> None:
    ids = _setup(alpha)
    body = {"code": "S-NEW", "name": "新门店", "dealer": ids["dealer"], "region_code": YUNYAN, **changes}
    before = _counts(alpha)
    assert_refused(_post(alpha.client("owner"), "/stores/", body), status, code)
    assert _counts(alpha) == before


def test_no_store_is_added_to_a_suspended_dealer(alpha: Brand) -> None:
    ids = _setup(alpha)
    owner = alpha.client("owner")
    _post(owner, f"/dealers/{ids['dealer']}/suspend/")
    body = {"code": "S-NEW", "name": "新门店", "dealer": ids["dealer"], "region_code": YUNYAN}
    assert_refused(_post(owner, "/stores/", body), 409, "dealer_suspended")


# --- channel staff ------------------------------------------------------------------------------------


def test_channel_staff_through_the_api(alpha: Brand) -> None:
    ids = _setup(alpha)
    owner = alpha.client("owner")
    response = _post(
        owner,
        "/staff/",
        {"role": "dealer_clerk", "phone": "13900000003", "dealer": ids["dealer"], "display_name": "业务员小李"},
    )
    assert response.status_code == 201, response.content
    staff = response.json()
    assert (staff["username"], staff["role_display"], staff["has_password"]) == ("13900000003", "经销商业务员", False)
    assert (staff["dealer"], staff["store"], staff["is_active"]) == (ids["dealer"], None, True)
    assert "password" not in staff

    rows = owner.get(f"{API}/staff/", {"dealer": ids["dealer"]}).json()["results"]
    assert [row["id"] for row in rows] == [staff["id"]]
    assert owner.get(f"{API}/staff/", {"role": "store_clerk"}).json()["count"] == 1
    assert owner.get(f"{API}/staff/", {"q": "小李"}).json()["count"] == 1
    assert_refused(owner.get(f"{API}/staff/", {"role": "owner"}), 400, "invalid_input")

    deactivated = _post(owner, f"/staff/{staff['id']}/deactivate/")
    assert deactivated.json()["is_active"] is False
    assert owner.get(f"{API}/staff/", {"is_active": "false"}).json()["count"] == 1
    assert owner.get(f"{API}/staff/{staff['id']}/").json()["is_active"] is False
    assert_refused(owner.get(f"{API}/staff/987654321/"), 404, "channel_staff_not_found")
    assert_refused(_post(owner, "/staff/987654321/deactivate/"), 404, "channel_staff_not_found")


BAD_STAFF = [
    ({"role": "owner"}, 400, "invalid_channel_role"),
    ({"role": "dealer_clerk"}, 400, "channel_staff_employer_mismatch"),
    ({"phone": "13900000001"}, 409, "phone_taken"),
    ({"phone": "x"}, 400, "invalid_phone"),
    ({"username": "owner"}, 409, "username_taken"),
    ({"password": "short"}, 400, "invalid_password"),
    ({"store": 987654321}, 400, "unknown_store"),
    ({"is_staff": True}, 400, "invalid_input"),
]


@pytest.mark.parametrize(("changes", "status", "code"), BAD_STAFF, ids=[case[2] for case in BAD_STAFF])
def test_bad_channel_staff_input_is_a_coded_chinese_4xx_and_writes_nothing(
    alpha: Brand, changes: dict[str, Any], status: int, code: str
) -> None:
    ids = _setup(alpha)
    body = {"role": "store_clerk", "phone": "13900000004", "store": ids["store"], **changes}
    before = _counts(alpha)
    assert_refused(_post(alpha.client("owner"), "/staff/", body), status, code)
    assert _counts(alpha) == before


# --- isolation ----------------------------------------------------------------------------------------


def test_a_brand_never_sees_another_brands_channel(alpha: Brand, beta: Brand) -> None:
    beta_ids = _setup(beta)
    alpha_owner = alpha.client("owner")
    listing = alpha_owner.get(f"{API}/dealers/").content.decode()
    assert beta.tenant.name not in listing
    assert alpha_owner.get(f"{API}/dealers/").json()["count"] == 0
    assert alpha_owner.get(f"{API}/stores/").json()["count"] == 0
    assert alpha_owner.get(f"{API}/staff/").json()["count"] == 0
    # An id of beta's on alpha's host looks exactly like an id nobody has.
    for kind, key, code in (("dealers", "dealer", "dealer_not_found"), ("stores", "store", "store_not_found")):
        seen = [alpha_owner.get(f"{API}/{kind}/{object_id}/").json() for object_id in (beta_ids[key], 987654321)]
        assert seen[0] == seen[1] == {"code": code, "message": seen[0]["message"]}
    # Nor does alpha's staff member change beta's channel through alpha's host.
    before = _counts(beta)
    assert_refused(_post(alpha_owner, f"/dealers/{beta_ids['dealer']}/suspend/"), 404, "dealer_not_found")
    assert_refused(_put(alpha_owner, f"/dealers/{beta_ids['dealer']}/areas/", {"areas": []}), 404, "dealer_not_found")
    assert_refused(_post(alpha_owner, f"/staff/{beta_ids['clerk']}/deactivate/"), 404, "channel_staff_not_found")
    assert _counts(beta) == before
    # alpha's session cookie on beta's host is nobody there.
    stolen = Client(HTTP_HOST=beta.host)
    stolen.cookies["jiuma_session"] = alpha_owner.cookies["jiuma_session"].value
    assert_refused(stolen.get(f"{API}/dealers/"), 403, "not_authenticated")
    assert_refused(_post(stolen, "/dealers/", {"code": "X", "name": "x"}), 403, "not_authenticated")
    with schema_context(beta.schema):
        assert Dealer.objects.get(pk=beta_ids["dealer"]).status == "active"


def test_the_openapi_document_describes_the_channel_api(alpha: Brand) -> None:
    schema = alpha.client("owner").get("/api/schema/", HTTP_ACCEPT="application/json")
    assert schema.status_code == 200
    paths = schema.json()["paths"]
    dealers = paths["/api/v1/channel/dealers/"]
    assert {"get", "post"} <= dealers.keys()
    assert "PaginatedDealerList" in str(dealers["get"]["responses"]["200"])
    assert {p["name"] for p in dealers["get"]["parameters"]} >= {"q", "status", "level", "parent", "region", "limit"}
    assert "DealerCreate" in str(dealers["post"]["requestBody"])
    assert "put" in paths["/api/v1/channel/dealers/{dealer_id}/areas/"]
    for path in ("/api/v1/channel/stores/{store_id}/rotate-qr/", "/api/v1/channel/staff/{staff_id}/deactivate/"):
        assert "post" in paths[path], path
