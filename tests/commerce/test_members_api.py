"""The members API (/api/v1/members/): members listed and filtered with their phone masked, their
points ledger, idempotent and audited manual adjustments through the points service, who may do
what, bad input as a coded Chinese 4xx that changes nothing, bounded queries, and brands apart."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from django_tenants.utils import tenant_context

from commerce.models import Member, PointsEntry, PointsKind
from commerce.services import members, points
from tenants.brand.models import AuditEntry
from tests.commerce.conftest import assert_refused
from tests.conftest import Brand

API = "/api/v1/members"
JSON = "application/json"
PHONE = "13812341234"


def _adjust(client: Client, member_id: int, body: dict[str, Any], **headers: Any) -> Any:
    return client.post(f"{API}/{member_id}/points/adjust/", body, content_type=JSON, **headers)


def _setup(brand: Brand) -> dict[str, int]:
    """Three members: one with a phone and points, one plain, one erased."""
    with tenant_context(brand.tenant):
        rich = Member.objects.create(openid=f"o-rich-{brand.schema}", nickname="张三")
        members.set_phone(rich, PHONE)
        points.credit(rich.pk, 100, kind=PointsKind.SCAN, source="scan:1")
        points.credit(rich.pk, 20, kind=PointsKind.ORDER, source="order:A1")
        plain = Member.objects.create(
            openid=f"o-plain-{brand.schema}", nickname="李四", created_at=timezone.now() - timedelta(days=10)
        )
        gone = Member.objects.create(openid=f"o-gone-{brand.schema}", nickname="王五")
        members.erase(gone)
    return {"rich": rich.pk, "plain": plain.pk, "gone": gone.pk}


@pytest.fixture
def ids(alpha: Brand) -> dict[str, int]:
    return _setup(alpha)


def _balance(brand: Brand, member_id: int) -> int:
    with tenant_context(brand.tenant):
        return Member.objects.get(pk=member_id).points_balance


def _ledger(brand: Brand, member_id: int) -> list[tuple[str, int]]:
    with tenant_context(brand.tenant):
        return list(PointsEntry.objects.filter(member_id=member_id).order_by("id").values_list("kind", "amount"))


# --- reading ------------------------------------------------------------------------------------------


def test_members_are_listed_in_pages_with_the_phone_masked(alpha: Brand, ids: dict[str, int]) -> None:
    owner = alpha.client("owner")
    response = owner.get(f"{API}/", {"limit": 2})
    assert response.status_code == 200, response.content
    page = response.json()
    assert page["count"] == 3
    assert page["next"]
    assert [row["id"] for row in page["results"]] == [ids["gone"], ids["plain"]]
    rich = owner.get(f"{API}/", {"limit": 2, "offset": 2}).json()["results"][0]
    assert rich["id"] == ids["rich"]
    assert rich["phone"] == "138****1234"
    assert rich["points_balance"] == 120
    assert PHONE not in owner.get(f"{API}/").content.decode()
    assert PHONE not in owner.get(f"{API}/{ids['rich']}/").content.decode()
    gone = page["results"][0]
    assert (gone["is_erased"], gone["openid"], gone["nickname"], gone["phone"]) == (True, None, "", "")


def test_members_are_filtered(alpha: Brand, ids: dict[str, int]) -> None:
    owner = alpha.client("owner")

    def found(**params: Any) -> list[int]:
        response = owner.get(f"{API}/", params)
        assert response.status_code == 200, response.content
        return [row["id"] for row in response.json()["results"]]

    assert found(q="张") == [ids["rich"]]
    assert found(q=f"o-plain-{alpha.schema}") == [ids["plain"]]
    assert found(q="o-plain") == []  # an openid matches whole only
    five_days_ago = (timezone.now() - timedelta(days=5)).isoformat()
    assert found(created_before=five_days_ago) == [ids["plain"]]
    assert found(created_after=five_days_ago) == [ids["gone"], ids["rich"]]
    assert found(erased="true") == [ids["gone"]]
    assert found(erased="false") == [ids["plain"], ids["rich"]]
    assert_refused(owner.get(f"{API}/", {"created_after": "yesterday"}), 400, "invalid_input")
    assert_refused(owner.get(f"{API}/", {"q": "x" * 65}), 400, "invalid_input")


def test_a_members_detail_has_the_balance_checked_against_the_ledger(alpha: Brand, ids: dict[str, int]) -> None:
    owner = alpha.client("owner")
    body = owner.get(f"{API}/{ids['rich']}/").json()
    assert body["points_balance"] == 120
    assert body["ledger"] == {"balance": 120, "ledger_sum": 120, "open_credits": 120, "ok": True}
    assert body["phone"] == "138****1234"
    assert owner.get(f"{API}/{ids['gone']}/").json()["is_erased"] is True
    assert_refused(owner.get(f"{API}/987654321/"), 404, "member_not_found")
    assert_refused(owner.get(f"{API}/99999999999999999999999/"), 404, "member_not_found")


def test_a_members_points_ledger_is_paged_newest_first(alpha: Brand, ids: dict[str, int]) -> None:
    owner = alpha.client("owner")
    page = owner.get(f"{API}/{ids['rich']}/points/", {"limit": 1}).json()
    assert page["count"] == 2
    assert page["next"]
    entry = page["results"][0]
    assert (entry["kind"], entry["kind_display"], entry["amount"], entry["balance_after"]) == (
        "order",
        "购物奖励",
        20,
        120,
    )
    assert entry["source"] == "order:A1"
    kinds = owner.get(f"{API}/{ids['rich']}/points/", {"kind": "scan"}).json()["results"]
    assert [row["amount"] for row in kinds] == [100]
    assert owner.get(f"{API}/{ids['plain']}/points/").json()["count"] == 0
    assert_refused(owner.get(f"{API}/{ids['rich']}/points/", {"kind": "gift"}), 400, "invalid_input")
    assert_refused(owner.get(f"{API}/987654321/points/"), 404, "member_not_found")


# --- adjusting points ------------------------------------------------------------------------------------


def test_an_adjustment_goes_through_the_ledger_once_and_is_audited(alpha: Brand, ids: dict[str, int]) -> None:
    finance = alpha.client("finance")
    body = {"amount": 30, "note": "客服补偿", "idempotency_key": "adj-0001-abcd"}
    first = _adjust(finance, ids["rich"], body)
    assert first.status_code == 201, first.content
    entry = first.json()
    assert (entry["kind"], entry["amount"], entry["balance_after"]) == ("adjustment", 30, 150)
    assert (entry["note"], entry["created_by"]) == ("客服补偿", "finance_alpha")
    assert entry["source"] == "adjustment:api:adj-0001-abcd"
    # The same request again (a retry): the same entry, no second movement, no second log entry.
    again = _adjust(finance, ids["rich"], body)
    assert again.status_code == 200
    assert again.json() == entry
    assert _balance(alpha, ids["rich"]) == 150
    with tenant_context(alpha.tenant):
        logged = list(AuditEntry.objects.filter(object_type="commerce.member", object_id=str(ids["rich"])))
        assert points.verify_ledger(ids["rich"]).ok
    assert len(logged) == 1
    assert (logged[0].action, logged[0].via, logged[0].actor_name) == ("update", "api", "finance_alpha")
    assert logged[0].after == {"points_adjustment": 30, "reason": "客服补偿", "source": entry["source"]}
    # The key reused for another amount is a conflict, not a second adjustment.
    assert_refused(_adjust(finance, ids["rich"], {**body, "amount": 31}), 409, "points_source_reused")
    assert _balance(alpha, ids["rich"]) == 150


def test_a_negative_adjustment_takes_points_but_never_below_zero(alpha: Brand, ids: dict[str, int]) -> None:
    owner = alpha.client("owner")
    taken = _adjust(owner, ids["rich"], {"amount": -50, "note": "误发扣回"}, HTTP_IDEMPOTENCY_KEY="header-key-0001")
    assert taken.status_code == 201, taken.content
    assert (taken.json()["amount"], taken.json()["balance_after"]) == (-50, 70)
    too_much = _adjust(owner, ids["rich"], {"amount": -71, "note": "扣回", "idempotency_key": "adj-too-much"})
    assert_refused(too_much, 409, "insufficient_points")
    assert _balance(alpha, ids["rich"]) == 70
    with tenant_context(alpha.tenant):
        assert points.verify_ledger(ids["rich"]).ok


BAD_ADJUSTMENTS = [
    ({"amount": 0, "note": "零", "idempotency_key": "adj-zero-0001"}, {}, "invalid_input"),
    ({"amount": 10, "note": "", "idempotency_key": "adj-blank-001"}, {}, "invalid_input"),
    ({"amount": 10, "idempotency_key": "adj-nonote-01"}, {}, "invalid_input"),
    ({"amount": "十", "note": "x", "idempotency_key": "adj-text-0001"}, {}, "invalid_input"),
    ({"amount": 10**9, "note": "x", "idempotency_key": "adj-huge-0001"}, {}, "invalid_input"),
    ({"amount": 10, "note": "x"}, {}, "invalid_input"),  # no key at all
    ({"amount": 10, "note": "x", "idempotency_key": "短"}, {}, "invalid_input"),
    ({"amount": 10, "note": "x"}, {"HTTP_IDEMPOTENCY_KEY": "bad key with spaces"}, "invalid_input"),
    (
        {"amount": 10, "note": "x", "idempotency_key": "key-one-0001"},
        {"HTTP_IDEMPOTENCY_KEY": "key-two-0002"},
        "invalid_input",
    ),
    ({"amount": 10, "note": "x", "idempotency_key": "adj-extra-001", "reason": "x"}, {}, "invalid_input"),
]


@pytest.mark.parametrize(("body", "headers", "code"), BAD_ADJUSTMENTS)
def test_bad_adjustments_are_a_coded_chinese_400_and_change_nothing(
    alpha: Brand, ids: dict[str, int], body: dict[str, Any], headers: dict[str, str], code: str
) -> None:
    before = _ledger(alpha, ids["rich"])
    assert_refused(_adjust(alpha.client("owner"), ids["rich"], body, **headers), 400, code)
    assert _ledger(alpha, ids["rich"]) == before


def test_adjusting_a_missing_or_erased_member_is_a_404(alpha: Brand, ids: dict[str, int]) -> None:
    owner = alpha.client("owner")
    body = {"amount": 10, "note": "补偿", "idempotency_key": "adj-404-00001"}
    assert_refused(_adjust(owner, 987654321, body), 404, "member_not_found")
    assert_refused(_adjust(owner, ids["gone"], body), 404, "member_erased")
    assert_refused(
        owner.post(f"{API}/{ids['rich']}/points/adjust/", "{oops", content_type=JSON), 400, "malformed_request"
    )
    assert_refused(owner.get(f"{API}/{ids['rich']}/points/adjust/"), 405, "method_not_allowed")
    assert _ledger(alpha, ids["gone"]) == []


# --- who may ------------------------------------------------------------------------------------------


def test_each_role_reads_and_adjusts_what_its_permissions_allow(alpha: Brand, ids: dict[str, int]) -> None:
    body = {"amount": 5, "note": "调整", "idempotency_key": "adj-roles-001"}
    paths = (f"{API}/", f"{API}/{ids['rich']}/", f"{API}/{ids['rich']}/points/")
    expected = {
        # role: (members and detail, ledger, adjust)
        "operator": (200, 200, 403),
        "finance": (200, 200, 201),
        "customer_service": (200, 403, 403),
        "warehouse": (403, 403, 403),
    }
    for role, (read, ledger, adjust) in expected.items():
        client = alpha.client(role)
        assert [client.get(path).status_code for path in paths] == [read, read, ledger], role
        response = _adjust(client, ids["plain"], {**body, "idempotency_key": f"adj-roles-{role}"})
        assert response.status_code == adjust, (role, response.content)
        if adjust == 403:
            assert_refused(response, 403, "permission_denied")
    assert _ledger(alpha, ids["plain"]) == [("adjustment", 5)]
    assert_refused(alpha.client().get(f"{API}/"), 403, "not_authenticated")
    assert_refused(_adjust(alpha.client(), ids["plain"], body), 403, "not_authenticated")


def test_a_brand_never_sees_another_brands_members(alpha: Brand, beta: Brand, ids: dict[str, int]) -> None:
    beta_ids = _setup(beta)
    owner = alpha.client("owner")
    listing = owner.get(f"{API}/", {"limit": 100}).content.decode()
    assert f"o-rich-{beta.schema}" not in listing
    assert owner.get(f"{API}/").json()["count"] == 3
    # beta's ids on alpha's host are alpha's own members or nobody: never beta's.
    for member_id in beta_ids.values():
        response = owner.get(f"{API}/{member_id}/")
        assert response.status_code in (200, 404)
        assert beta.schema not in response.content.decode()
    before = _ledger(beta, beta_ids["rich"])
    _adjust(owner, beta_ids["rich"], {"amount": 1, "note": "x", "idempotency_key": "adj-cross-001"})
    assert _ledger(beta, beta_ids["rich"]) == before


# --- cost and the document ---------------------------------------------------------------------------


def test_listing_members_and_a_ledger_costs_a_bounded_number_of_queries(
    alpha: Brand, django_assert_max_num_queries: Any
) -> None:
    with tenant_context(alpha.tenant):
        many = [Member.objects.create(openid=f"o-many-{n}", nickname=f"会员{n}") for n in range(20)]
        for n, someone in enumerate(many[:5]):
            members.set_phone(someone, f"1390000{n:04d}")
        for n in range(20):
            points.credit(many[0].pk, 5, kind=PointsKind.SCAN, source=f"scan:{n}")
    owner = alpha.client("owner")
    owner.get(f"{API}/")  # the first request of a process loads what is cached after it
    with CaptureQueriesContext(connection) as few:
        assert owner.get(f"{API}/", {"limit": 1}).status_code == 200
    with django_assert_max_num_queries(len(few)):
        response = owner.get(f"{API}/", {"limit": 20})
    assert len(response.json()["results"]) == 20
    with CaptureQueriesContext(connection) as one:
        assert owner.get(f"{API}/{many[0].pk}/points/", {"limit": 1}).status_code == 200
    with django_assert_max_num_queries(len(one)):
        ledger = owner.get(f"{API}/{many[0].pk}/points/", {"limit": 20})
    assert len(ledger.json()["results"]) == 20


def test_the_openapi_document_describes_the_members_api(alpha: Brand) -> None:
    schema = alpha.client("owner").get("/api/schema/", HTTP_ACCEPT="application/json")
    assert schema.status_code == 200
    paths = schema.json()["paths"]
    listing = paths["/api/v1/members/"]["get"]
    assert "PaginatedMemberList" in str(listing["responses"]["200"])
    assert {p["name"] for p in listing["parameters"]} >= {"q", "created_after", "created_before", "limit", "offset"}
    assert "MemberDetail" in str(paths["/api/v1/members/{member_id}/"]["get"]["responses"]["200"])
    assert "PaginatedPointsEntryList" in str(paths["/api/v1/members/{member_id}/points/"]["get"]["responses"])
    adjust = paths["/api/v1/members/{member_id}/points/adjust/"]["post"]
    assert "PointsAdjust" in str(adjust["requestBody"])
    assert "Idempotency-Key" in {p["name"] for p in adjust["parameters"]}
