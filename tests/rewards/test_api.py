"""The rewards API (/api/v1/rewards/): campaigns created with their prize tables and checked by the
services' own rules, drafts edited, published, cancelled and ended; draws (claims) listed and held
ones reviewed; red packets (payouts) listed, approved, rejected and retried. Who may do what, bad
input and wrong states as coded Chinese 4xx that change nothing, every write audited, bounded
queries per page, brands apart, and an OpenAPI document generated without warnings."""

from __future__ import annotations

import hashlib
from dataclasses import replace
from datetime import datetime, timedelta
from typing import Any

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import include, path
from django.utils import timezone
from django.utils.dateparse import parse_datetime
from django_tenants.utils import tenant_context

from commerce.models import Member
from rewards.models import (
    BudgetEntry,
    Campaign,
    CampaignStatus,
    Card,
    CardSet,
    Claim,
    ClaimStatus,
    Payout,
    PayoutStatus,
    Prize,
    RiskPolicy,
)
from rewards.services import campaigns, claims
from rewards.services.campaigns import PrizeSpec
from rewards.services.claims import ClaimContext
from tenants.brand.models import AuditEntry
from tests.commerce.conftest import assert_refused
from tests.conftest import Brand
from tests.rewards.conftest import member, running_campaign

API = "/api/v1/rewards"
JSON = "application/json"
CASH = PrizeSpec(name="1元红包", kind="cash", amount_fen=100, odds_ppm=1_000_000, quantity=100)
COINS = PrizeSpec(name="30酒币", kind="points", points=30, odds_ppm=1_000_000, quantity=100)


def _post(client: Client, url: str, body: Any = None) -> Any:
    return client.post(f"{API}{url}", body if body is not None else {}, content_type=JSON)


def _patch(client: Client, url: str, body: Any) -> Any:
    return client.patch(f"{API}{url}", body, content_type=JSON)


def _body(**overrides: Any) -> dict[str, Any]:
    """A campaign starting tomorrow for thirty days, with a cash and a points prize."""
    starts = timezone.now() + timedelta(days=1)
    body: dict[str, Any] = {
        "name": "开盖有奖",
        "starts_at": starts.isoformat(),
        "ends_at": (starts + timedelta(days=30)).isoformat(),
        "budget_fen": 100_000,
        "organiser": "阿尔法酒业",
        "prizes": [
            {"name": "2.88元红包", "kind": "cash", "amount_fen": 288, "odds_ppm": 50_000, "quantity": 100},
            {"name": "50酒币", "kind": "points", "points": 50, "odds_ppm": 100_000, "quantity": 1000},
        ],
    }
    body.update(overrides)
    return body


def _prize(**fields: Any) -> dict[str, Any]:
    row: dict[str, Any] = {"name": "红包", "kind": "cash", "amount_fen": 100, "odds_ppm": 10_000, "quantity": 10}
    row.update(fields)
    return row


def _counts(brand: Brand) -> tuple[int, ...]:
    with tenant_context(brand.tenant):
        return (Campaign.objects.count(), Prize.objects.count(), AuditEntry.objects.count())


def _audit(brand: Brand, object_type: str, object_id: int) -> list[AuditEntry]:
    with tenant_context(brand.tenant):
        return list(AuditEntry.objects.filter(object_type=object_type, object_id=str(object_id)).order_by("id"))


def _create(client: Client, **overrides: Any) -> dict[str, Any]:
    response = _post(client, "/campaigns/", _body(**overrides))
    assert response.status_code == 201, response.content
    created: dict[str, Any] = response.json()
    return created


def _move_window(brand: Brand, campaign_id: int, *, starts: datetime, ends: datetime) -> None:
    """As if the clock had moved on (the rules forbid publishing a campaign that has started)."""
    with tenant_context(brand.tenant):
        Campaign.objects.filter(pk=campaign_id).update(starts_at=starts, ends_at=ends)


# --- campaigns ----------------------------------------------------------------------------------------


def test_the_owner_creates_a_campaign_with_its_prize_table(alpha: Brand) -> None:
    owner = alpha.client("owner")
    body = _create(owner, target_region_codes=["520100"], member_daily_cap=3)
    assert (body["name"], body["status"], body["status_display"]) == ("开盖有奖", "draft", "草稿")
    assert (body["budget_fen"], body["spent_fen"], body["budget_remaining_fen"]) == (100_000, 0, 100_000)
    assert [
        (p["name"], p["kind"], p["amount_fen"], p["points"], p["odds_ppm"], p["quantity"]) for p in body["prizes"]
    ] == [
        ("2.88元红包", "cash", 288, 0, 50_000, 100),
        ("50酒币", "points", 0, 50, 100_000, 1000),
    ]
    assert all(p["card_set"] is None and p["awarded"] == 0 for p in body["prizes"])
    assert (body["prize_quantity"], body["prizes_awarded"]) == (1100, 0)
    assert (body["seed_commitment"], body["seed_revealed"]) == ("", None)
    assert body["claims"] == {
        "total": 0,
        "by_outcome": {"won": 0, "guaranteed": 0, "lost": 0, "sold_out": 0, "paced": 0},
        "by_status": {"ok": 0, "held": 0, "rejected": 0},
    }
    assert (body["target_region_codes"], body["member_daily_cap"], body["created_by"]) == (["520100"], 3, "owner")
    assert alpha.client("owner").get(f"{API}/campaigns/{body['id']}/").json() == body
    (entry,) = _audit(alpha, "rewards.campaign", body["id"])
    assert (entry.action, entry.via, entry.actor_name) == ("create", "api", "owner")
    assert [p["amount_fen"] for p in entry.after["prizes"]] == [288, 0]


def _with_guarantee_prizes() -> list[dict[str, Any]]:
    return [_prize(is_guarantee=True), _prize(name="另一个", is_guarantee=True)]


BAD_CAMPAIGNS = [
    ("unknown_field", {"colour": "red"}, 400, "invalid_input"),
    ("name_missing", {"name": None}, 400, "invalid_input"),
    ("budget_text", {"budget_fen": "一千"}, 400, "invalid_input"),
    ("budget_negative", {"budget_fen": -1}, 400, "invalid_input"),
    ("budget_overflow", {"budget_fen": 2**70}, 400, "invalid_input"),
    ("slack_over_100", {"pacing_slack_percent": 101}, 400, "invalid_input"),
    ("bad_time", {"starts_at": "明天"}, 400, "invalid_input"),
    ("window_backwards", {"ends_at": timezone.now().isoformat()}, 400, "invalid_campaign"),
    ("unknown_region", {"target_region_codes": ["999999"]}, 400, "invalid_campaign"),
    ("unknown_batch", {"target_batch_ids": [987654]}, 400, "unknown_campaign_target"),
    ("unknown_dealer", {"target_dealer_ids": [987654]}, 400, "unknown_campaign_target"),
    ("no_prizes", {"prizes": []}, 400, "invalid_prize"),
    ("prizes_not_a_list", {"prizes": "红包"}, 400, "invalid_input"),
    ("prize_unknown_field", {"prizes": [_prize(colour="red")]}, 400, "invalid_input"),
    (
        "prize_without_odds",
        {"prizes": [{"name": "红包", "kind": "cash", "amount_fen": 100, "quantity": 1}]},
        400,
        "invalid_input",
    ),
    ("card_prize_without_set", {"prizes": [_prize(kind="card", amount_fen=0)]}, 400, "invalid_prize"),
    ("card_prize_unknown_set", {"prizes": [_prize(kind="card", amount_fen=0, card_set=987654)]}, 400, "invalid_prize"),
    ("unknown_prize_kind", {"prizes": [_prize(kind="voucher")]}, 400, "invalid_input"),
    ("odds_over_100", {"prizes": [_prize(odds_ppm=600_000), _prize(odds_ppm=400_001)]}, 400, "odds_over_100_percent"),
    ("odds_over_scale", {"prizes": [_prize(odds_ppm=1_000_001)]}, 400, "invalid_prize"),
    ("over_legal_cap", {"prizes": [_prize(amount_fen=5_000_001)]}, 400, "prize_over_legal_cap"),
    ("cash_below_10_fen", {"prizes": [_prize(amount_fen=9)]}, 400, "invalid_prize"),
    ("points_without_points", {"prizes": [_prize(kind="points", amount_fen=0)]}, 400, "invalid_prize"),
    ("zero_quantity", {"prizes": [_prize(quantity=0)]}, 400, "invalid_prize"),
    ("two_guarantees", {"prizes": _with_guarantee_prizes()}, 400, "invalid_prize"),
    ("guarantee_missing", {"first_scan_guarantee": True}, 400, "invalid_prize"),
    ("too_many_prizes", {"prizes": [_prize(odds_ppm=1)] * 51}, 400, "invalid_input"),
]


@pytest.mark.parametrize(
    ("changes", "status", "code"), [c[1:] for c in BAD_CAMPAIGNS], ids=[c[0] for c in BAD_CAMPAIGNS]
)
def test_bad_campaigns_are_refused_by_the_services_rules_and_write_nothing(
    alpha: Brand, changes: dict[str, Any], status: int, code: str
) -> None:
    body = {key: value for key, value in _body(**changes).items() if value is not None}
    owner = alpha.client("owner")
    before = _counts(alpha)
    assert_refused(_post(owner, "/campaigns/", body), status, code)
    assert _counts(alpha) == before


def test_a_card_prize_names_an_active_set_with_cards(alpha: Brand) -> None:
    with tenant_context(alpha.tenant):
        card_set = CardSet.objects.create(
            name="福禄寿喜",
            reward_name="集齐红包",
            reward_kind="cash",
            reward_amount_fen=888,
            reward_quantity=10,
            exchange_ends_at=timezone.now() + timedelta(days=60),
        )
        empty = CardSet.objects.create(
            name="空套系",
            reward_name="酒币",
            reward_kind="points",
            reward_points=10,
            reward_quantity=10,
            exchange_ends_at=timezone.now() + timedelta(days=60),
        )
        Card.objects.create(card_set=card_set, name="福")
    owner = alpha.client("owner")
    card = _prize(name="集卡", kind="card", amount_fen=0, card_set=card_set.pk)
    created = _create(owner, prizes=[card, _prize(odds_ppm=20_000)])
    assert [(p["kind"], p["card_set"], p["amount_fen"]) for p in created["prizes"]] == [
        ("card", card_set.pk, 0),
        ("cash", None, 100),
    ]
    # A draft edited without a new table keeps its card prize as it was.
    renamed = _patch(owner, f"/campaigns/{created['id']}/", {"name": "集卡活动"})
    assert renamed.status_code == 200, renamed.content
    assert [p["card_set"] for p in renamed.json()["prizes"]] == [card_set.pk, None]
    before = _counts(alpha)
    refused = _post(owner, "/campaigns/", _body(prizes=[{**card, "card_set": empty.pk}]))
    assert_refused(refused, 400, "invalid_prize")
    assert _counts(alpha) == before


def test_a_malformed_body_or_id_is_a_4xx(alpha: Brand) -> None:
    owner = alpha.client("owner")
    assert_refused(owner.post(f"{API}/campaigns/", "{oops", content_type=JSON), 400, "malformed_request")
    assert_refused(owner.post(f"{API}/campaigns/", "null", content_type=JSON), 400, "malformed_request")
    assert_refused(owner.get(f"{API}/campaigns/987654321/"), 404, "campaign_not_found")
    assert_refused(owner.get(f"{API}/campaigns/99999999999999999999999/"), 404, "campaign_not_found")
    assert_refused(_post(owner, "/campaigns/987654321/publish/"), 404, "campaign_not_found")
    assert_refused(_patch(owner, "/campaigns/987654321/", {"name": "x"}), 404, "campaign_not_found")
    assert_refused(owner.delete(f"{API}/campaigns/987654321/"), 405, "method_not_allowed")


def test_campaigns_are_listed_in_pages_and_filtered(alpha: Brand) -> None:
    owner = alpha.client("owner")
    first = _create(owner, name="春节活动")
    second = _create(owner, name="端午活动")
    _post(owner, f"/campaigns/{second['id']}/publish/")
    page = owner.get(f"{API}/campaigns/", {"limit": 1}).json()
    assert page["count"] == 2
    assert page["next"]
    row = page["results"][0]
    assert (row["prize_quantity"], row["prizes_awarded"]) == (1100, 0)
    assert "prizes" not in row  # the detail has the table

    def names(**params: Any) -> list[str]:
        response = owner.get(f"{API}/campaigns/", params)
        assert response.status_code == 200, response.content
        return sorted(row["name"] for row in response.json()["results"])

    assert names() == sorted(["端午活动", "春节活动"])
    assert names(status="published") == ["端午活动"]
    assert names(q="春节") == [first["name"]]
    assert_refused(owner.get(f"{API}/campaigns/", {"status": "running"}), 400, "invalid_input")


def test_a_draft_is_edited_and_its_prize_table_replaced(alpha: Brand) -> None:
    owner = alpha.client("owner")
    draft = _create(owner)
    url = f"/campaigns/{draft['id']}/"
    renamed = _patch(owner, url, {"name": " 中秋活动 ", "budget_fen": 50_000})
    assert renamed.status_code == 200, renamed.content
    body = renamed.json()
    assert (body["name"], body["budget_fen"]) == ("中秋活动", 50_000)
    assert [p["name"] for p in body["prizes"]] == ["2.88元红包", "50酒币"]  # kept as it was
    table = [_prize(name="8.88元红包", amount_fen=888, is_guarantee=True)]
    replaced = _patch(owner, url, {"prizes": table, "first_scan_guarantee": True})
    assert replaced.status_code == 200, replaced.content
    assert [(p["name"], p["amount_fen"], p["is_guarantee"]) for p in replaced.json()["prizes"]] == [
        ("8.88元红包", 888, True)
    ]
    assert replaced.json()["first_scan_guarantee"] is True
    updates = [e for e in _audit(alpha, "rewards.campaign", draft["id"]) if e.action == "update"]
    assert [sorted(e.after) for e in updates] == [["budget_fen", "name"], ["first_scan_guarantee", "prizes"]]
    assert updates[0].before == {"name": "开盖有奖", "budget_fen": 100_000}


BAD_EDITS = [
    ("window_backwards", {"ends_at": (timezone.now() - timedelta(days=3)).isoformat()}, "invalid_campaign"),
    ("guarantee_without_prize", {"first_scan_guarantee": True}, "invalid_prize"),
    ("prize_row_incomplete", {"prizes": [{"name": "红包", "kind": "cash", "amount_fen": 100}]}, "invalid_input"),
    ("odds_over_100", {"prizes": [_prize(odds_ppm=1_000_000), _prize(odds_ppm=1)]}, "odds_over_100_percent"),
    ("unknown_sku", {"target_sku_ids": [987654]}, "unknown_campaign_target"),
    ("unknown_region", {"target_region_codes": ["000000"]}, "invalid_campaign"),
    ("unknown_field", {"status": "published"}, "invalid_input"),
    ("blank_name", {"name": "   "}, "invalid_input"),
]


@pytest.mark.parametrize(("changes", "code"), [c[1:] for c in BAD_EDITS], ids=[c[0] for c in BAD_EDITS])
def test_bad_edits_of_a_draft_are_refused_and_change_nothing(alpha: Brand, changes: dict[str, Any], code: str) -> None:
    owner = alpha.client("owner")
    draft = _create(owner)
    before = owner.get(f"{API}/campaigns/{draft['id']}/").json()
    counts = _counts(alpha)
    assert_refused(_patch(owner, f"/campaigns/{draft['id']}/", changes), 400, code)
    assert owner.get(f"{API}/campaigns/{draft['id']}/").json() == before
    assert _counts(alpha) == counts


def test_publishing_commits_the_seed_and_freezes_the_rules(alpha: Brand) -> None:
    owner = alpha.client("owner")
    draft = _create(owner)
    published = _post(owner, f"/campaigns/{draft['id']}/publish/")
    assert published.status_code == 200, published.content
    body = published.json()
    assert body["status"] == "published"
    assert len(body["seed_commitment"]) == 64
    assert body["seed_revealed"] is None
    assert body["published_at"]
    (entry,) = [e for e in _audit(alpha, "rewards.campaign", draft["id"]) if e.action == "action"]
    assert (entry.detail, entry.before, entry.after["status"]) == ("发布活动", {"status": "draft"}, "published")
    before = _counts(alpha)
    assert_refused(_post(owner, f"/campaigns/{draft['id']}/publish/"), 409, "campaign_wrong_state")
    assert_refused(_patch(owner, f"/campaigns/{draft['id']}/", {"name": "改名"}), 409, "campaign_wrong_state")
    assert_refused(_patch(owner, f"/campaigns/{draft['id']}/", {"colour": "red"}), 409, "campaign_wrong_state")
    assert_refused(_post(owner, f"/campaigns/{draft['id']}/end/"), 409, "campaign_wrong_state")  # not over yet
    assert _counts(alpha) == before
    assert owner.get(f"{API}/campaigns/{draft['id']}/").json()["name"] == "开盖有奖"


def test_a_campaign_is_published_before_its_start_only(alpha: Brand) -> None:
    owner = alpha.client("owner")
    late = _create(owner)
    now = timezone.now()
    _move_window(alpha, late["id"], starts=now - timedelta(minutes=1), ends=now + timedelta(days=1))
    assert_refused(_post(owner, f"/campaigns/{late['id']}/publish/"), 409, "campaign_must_be_published_before_start")
    assert owner.get(f"{API}/campaigns/{late['id']}/").json()["status"] == "draft"


def test_cancelling_before_the_start_and_ending_with_the_seed_revealed(alpha: Brand) -> None:
    owner = alpha.client("owner")
    draft = _create(owner)
    cancelled = _post(owner, f"/campaigns/{draft['id']}/cancel/")
    assert cancelled.status_code == 200, cancelled.content
    assert cancelled.json()["status"] == "cancelled"
    assert_refused(_post(owner, f"/campaigns/{draft['id']}/cancel/"), 409, "campaign_wrong_state")
    assert_refused(_post(owner, f"/campaigns/{draft['id']}/publish/"), 409, "campaign_wrong_state")

    running = _create(owner, name="进行中")
    _post(owner, f"/campaigns/{running['id']}/publish/")
    now = timezone.now()
    _move_window(alpha, running["id"], starts=now - timedelta(days=2), ends=now + timedelta(days=2))
    assert_refused(_post(owner, f"/campaigns/{running['id']}/cancel/"), 409, "campaign_wrong_state")
    assert_refused(_post(owner, f"/campaigns/{running['id']}/end/"), 409, "campaign_wrong_state")
    _move_window(alpha, running["id"], starts=now - timedelta(days=2), ends=now - timedelta(seconds=1))
    ended = _post(owner, f"/campaigns/{running['id']}/end/")
    assert ended.status_code == 200, ended.content
    body = ended.json()
    assert body["status"] == "ended"
    assert hashlib.sha256(bytes.fromhex(body["seed_revealed"])).hexdigest() == body["seed_commitment"]
    details = [e.detail for e in _audit(alpha, "rewards.campaign", running["id"]) if e.action == "action"]
    assert details == ["发布活动", "结束活动并公开种子"]


def test_the_roles_that_may_not_change_campaigns_only_read_them(alpha: Brand) -> None:
    draft = _create(alpha.client("owner"))
    operator = alpha.client("operator")
    assert _patch(operator, f"/campaigns/{draft['id']}/", {"name": "运营改的"}).status_code == 200
    for role in ("finance", "customer_service"):
        client = alpha.client(role)
        assert client.get(f"{API}/campaigns/").status_code == 200, role
        assert client.get(f"{API}/campaigns/{draft['id']}/").status_code == 200, role
        before = _counts(alpha)
        for response in (
            _post(client, "/campaigns/", _body()),
            _patch(client, f"/campaigns/{draft['id']}/", {"name": "x"}),
            _post(client, f"/campaigns/{draft['id']}/publish/"),
            _post(client, f"/campaigns/{draft['id']}/cancel/"),
        ):
            assert_refused(response, 403, "permission_denied")
        assert _counts(alpha) == before
    assert_refused(alpha.client("warehouse").get(f"{API}/campaigns/"), 403, "permission_denied")
    assert_refused(alpha.client().get(f"{API}/campaigns/"), 403, "not_authenticated")
    assert_refused(_post(alpha.client(), "/campaigns/", _body()), 403, "not_authenticated")


# --- claims and payouts: a running campaign whose draws risk control holds --------------------------


@pytest.fixture
def held(alpha: Brand) -> dict[str, Any]:
    """A running cash campaign; a member's first draw paid (payout pending), the second and third
    held by the velocity rule (claims and payouts held); a points campaign's draw held too."""
    with tenant_context(alpha.tenant):
        campaign = running_campaign([CASH], budget_fen=10_000, priority=1)
        RiskPolicy.objects.create(member_claims_per_hour=1)
        someone = member("o-claimer")
        ok = claims.claim(someone, ClaimContext(serial=1, region_code="520102"))
        second = claims.claim(someone, ClaimContext(serial=2))
        third = claims.claim(someone, ClaimContext(serial=3))
        assert ok.payout is not None
        assert second.payout is not None
        assert third.payout is not None
        assert second.claim.status == third.claim.status == ClaimStatus.HELD
        Campaign.objects.filter(pk=campaign.pk).update(ends_at=timezone.now() - timedelta(seconds=1))
        # The points campaign runs once the cash one is over (publishing it refreshes the running list).
        points_campaign = running_campaign([COINS], name="酒币活动")
        coin = claims.claim(someone, ClaimContext(serial=4))
        assert coin.claim.status == ClaimStatus.HELD
        assert coin.points_entry is None
    return {
        "campaign": campaign.pk,
        "points_campaign": points_campaign.pk,
        "member": someone.pk,
        "ok": ok.claim.pk,
        "held": second.claim.pk,
        "held_too": third.claim.pk,
        "coin": coin.claim.pk,
        "paying": ok.payout.pk,
        "held_payout": second.payout.pk,
        "held_payout_too": third.payout.pk,
    }


def test_claims_are_listed_in_pages_and_filtered(alpha: Brand, held: dict[str, Any]) -> None:
    owner = alpha.client("owner")
    page = owner.get(f"{API}/claims/", {"limit": 2}).json()
    assert page["count"] == 4
    assert page["next"]
    assert [row["id"] for row in page["results"]] == [held["coin"], held["held_too"]]
    row = page["results"][1]
    assert (row["outcome"], row["status"], row["status_display"]) == ("won", "held", "待审核")
    assert (row["campaign"], row["campaign_name"], row["prize_name"]) == (held["campaign"], "开盖有奖", "1元红包")
    assert (row["payout"], row["payout_status"], row["member"]) == (held["held_payout_too"], "held", held["member"])
    assert row["risk_reasons"][0]["rule"] == "member_velocity"

    def found(**params: Any) -> list[int]:
        response = owner.get(f"{API}/claims/", params)
        assert response.status_code == 200, response.content
        return sorted(row["id"] for row in response.json()["results"])

    assert found(status="held") == sorted([held["held"], held["held_too"], held["coin"]])
    assert found(status="ok") == [held["ok"]]
    assert found(campaign=held["points_campaign"]) == [held["coin"]]
    assert found(outcome="won", member=held["member"]) == sorted(
        [held["ok"], held["held"], held["held_too"], held["coin"]]
    )
    assert found(outcome="lost") == []
    assert found(created_after=(timezone.now() + timedelta(minutes=1)).isoformat()) == []
    assert len(found(created_before=(timezone.now() + timedelta(minutes=1)).isoformat())) == 4
    for bad in ({"status": "pending"}, {"campaign": "x"}, {"member": 0}, {"created_after": "昨天"}):
        assert_refused(owner.get(f"{API}/claims/", bad), 400, "invalid_input")


def test_a_claims_detail_shows_why_it_was_held(alpha: Brand, held: dict[str, Any]) -> None:
    body = alpha.client("customer_service").get(f"{API}/claims/{held['held']}/").json()
    assert body["serial"] == 2
    assert body["risk_reasons"] == [{"rule": "member_velocity", "detail": "该会员一小时内已抽奖 1 次"}]
    assert body["ticket"] >= 0
    ok = alpha.client("owner").get(f"{API}/claims/{held['ok']}/").json()
    assert (ok["risk_reasons"], ok["region_code"], ok["status"]) == ([], "520102", "ok")
    assert_refused(alpha.client("owner").get(f"{API}/claims/987654321/"), 404, "claim_not_found")


def test_approving_a_held_claim_pays_it_and_rejecting_gives_the_prize_back(alpha: Brand, held: dict[str, Any]) -> None:
    operator = alpha.client("operator")
    approved = _post(operator, f"/claims/{held['held']}/review/", {"approve": True})
    assert approved.status_code == 200, approved.content
    assert (approved.json()["status"], approved.json()["reviewed_by"]) == ("ok", "operator_alpha")
    assert approved.json()["payout_status"] == "pending"  # released to the worker
    rejected = _post(operator, f"/claims/{held['held_too']}/review/", {"approve": False})
    assert rejected.status_code == 200, rejected.content
    assert (rejected.json()["status"], rejected.json()["payout_status"]) == ("rejected", "cancelled")
    coin = _post(operator, f"/claims/{held['coin']}/review/", {"approve": True})
    assert coin.json()["status"] == "ok"
    with tenant_context(alpha.tenant):
        campaign = Campaign.objects.get(pk=held["campaign"])
        assert campaign.spent_fen == 200  # the rejected one's 100 fen back in the budget
        assert Prize.objects.get(campaign=campaign).awarded == 2
        assert BudgetEntry.objects.filter(campaign=campaign, amount_fen=-100).count() == 1
        assert Member.objects.get(pk=held["member"]).points_balance == 30  # the coins, credited on approval
    for claim_id, status in ((held["held"], "ok"), (held["held_too"], "rejected")):
        (entry,) = _audit(alpha, "rewards.claim", claim_id)
        assert (entry.action, entry.via, entry.detail, entry.after["status"]) == (
            "update",
            "api",
            "审核抽奖记录",
            status,
        )
    # Decided already: a conflict, nothing changes.
    before = _counts(alpha)
    assert_refused(_post(operator, f"/claims/{held['held']}/review/", {"approve": False}), 409, "claim_not_held")
    assert_refused(_post(operator, f"/claims/{held['ok']}/review/", {"approve": True}), 409, "claim_not_held")
    assert _counts(alpha) == before


def test_a_review_needs_a_decision_and_the_permission(alpha: Brand, held: dict[str, Any]) -> None:
    url = f"/claims/{held['held']}/review/"
    owner = alpha.client("owner")
    for body in ({}, {"approve": "也许"}, {"approve": True, "reason": "x"}):
        assert_refused(_post(owner, url, body), 400, "invalid_input")
    assert_refused(_post(owner, "/claims/987654321/review/", {"approve": True}), 404, "claim_not_found")
    for role in ("customer_service", "finance"):
        assert alpha.client(role).get(f"{API}/claims/").status_code == 200
        assert_refused(_post(alpha.client(role), url, {"approve": True}), 403, "permission_denied")
    assert_refused(alpha.client("warehouse").get(f"{API}/claims/"), 403, "permission_denied")
    with tenant_context(alpha.tenant):
        assert Claim.objects.get(pk=held["held"]).status == ClaimStatus.HELD


def test_payouts_are_listed_in_pages_and_filtered(alpha: Brand, held: dict[str, Any]) -> None:
    finance = alpha.client("finance")
    page = finance.get(f"{API}/payouts/", {"limit": 1}).json()
    assert page["count"] == 3
    assert page["next"]
    row = page["results"][0]
    assert (row["id"], row["status"], row["status_display"], row["amount_fen"]) == (
        held["held_payout_too"],
        "held",
        "风控暂缓",
        100,
    )
    assert (row["campaign_name"], row["member"]) == ("开盖有奖", held["member"])
    assert "package_info" not in row
    assert "openid" not in row

    def found(**params: Any) -> list[int]:
        response = finance.get(f"{API}/payouts/", params)
        assert response.status_code == 200, response.content
        return sorted(row["id"] for row in response.json()["results"])

    assert found(status="held") == sorted([held["held_payout"], held["held_payout_too"]])
    assert found(status="pending") == [held["paying"]]
    assert found(campaign=held["points_campaign"]) == []
    assert len(found(member=held["member"], campaign=held["campaign"])) == 3
    assert_refused(finance.get(f"{API}/payouts/", {"status": "paid"}), 400, "invalid_input")
    assert finance.get(f"{API}/payouts/{held['paying']}/").json()["status"] == "pending"
    assert_refused(finance.get(f"{API}/payouts/987654321/"), 404, "payout_not_found")


def test_held_payouts_are_approved_and_rejected_as_the_signed_in_user(alpha: Brand, held: dict[str, Any]) -> None:
    finance = alpha.client("finance")
    approved = _post(finance, f"/payouts/{held['held_payout']}/approve/")
    assert approved.status_code == 200, approved.content
    assert approved.json()["status"] == "pending"
    rejected = _post(finance, f"/payouts/{held['held_payout_too']}/reject/")
    assert rejected.status_code == 200, rejected.content
    assert (rejected.json()["status"], rejected.json()["last_error"]) == ("cancelled", "rejected by finance_alpha")
    with tenant_context(alpha.tenant):
        assert Claim.objects.get(pk=held["held"]).status == ClaimStatus.OK
        assert Claim.objects.get(pk=held["held_too"]).reviewed_by == "finance_alpha"
        assert Claim.objects.get(pk=held["held_too"]).status == ClaimStatus.REJECTED
        assert Campaign.objects.get(pk=held["campaign"]).spent_fen == 200
        assert Prize.objects.get(campaign_id=held["campaign"]).awarded == 2
    for payout_id, detail in ((held["held_payout"], "审核通过红包"), (held["held_payout_too"], "驳回红包")):
        (entry,) = _audit(alpha, "rewards.payout", payout_id)
        assert (entry.action, entry.detail, entry.actor_name, entry.before) == (
            "action",
            detail,
            "finance_alpha",
            {"status": "held"},
        )
    before = _counts(alpha)
    for url in (f"/payouts/{held['held_payout']}/approve/", f"/payouts/{held['held_payout_too']}/reject/"):
        assert_refused(_post(finance, url), 409, "payout_not_held")
    assert_refused(_post(finance, f"/payouts/{held['paying']}/reject/"), 409, "payout_not_held")
    assert_refused(_post(finance, "/payouts/987654321/approve/"), 404, "payout_not_found")
    assert _counts(alpha) == before


def test_a_waiting_payout_is_retried_now(alpha: Brand, held: dict[str, Any]) -> None:
    finance = alpha.client("finance")
    url = f"/payouts/{held['paying']}/retry/"
    assert_refused(_post(finance, url), 409, "payout_not_waiting_for_retry")  # due now already
    assert_refused(_post(finance, f"/payouts/{held['held_payout']}/retry/"), 409, "payout_not_waiting_for_retry")
    later = timezone.now() + timedelta(hours=1)
    with tenant_context(alpha.tenant):
        Payout.objects.filter(pk=held["paying"]).update(next_attempt_at=later, attempts=3)
    before = timezone.now()
    retried = _post(finance, url)
    assert retried.status_code == 200, retried.content
    moved = parse_datetime(retried.json()["next_attempt_at"])
    assert moved is not None
    assert before <= moved <= timezone.now()
    assert (retried.json()["status"], retried.json()["attempts"]) == ("pending", 3)
    (entry,) = _audit(alpha, "rewards.payout", held["paying"])
    assert (entry.detail, entry.via) == ("立即重试红包", "api")
    assert_refused(_post(finance, url), 409, "payout_not_waiting_for_retry")


def test_roles_that_may_not_change_payouts_cannot_review_them(alpha: Brand, held: dict[str, Any]) -> None:
    operator = alpha.client("operator")
    assert operator.get(f"{API}/payouts/").status_code == 200
    for action in ("approve", "reject", "retry"):
        assert_refused(_post(operator, f"/payouts/{held['held_payout']}/{action}/"), 403, "permission_denied")
    service = alpha.client("customer_service")
    assert_refused(service.get(f"{API}/payouts/"), 403, "permission_denied")
    assert_refused(service.get(f"{API}/payouts/{held['held_payout']}/"), 403, "permission_denied")
    with tenant_context(alpha.tenant):
        assert Payout.objects.get(pk=held["held_payout"]).status == PayoutStatus.HELD


# --- brands apart, cost, the document ---------------------------------------------------------------


def test_a_brand_never_sees_another_brands_campaigns_claims_or_payouts(alpha: Brand, beta: Brand) -> None:
    with tenant_context(beta.tenant):
        campaign = running_campaign([CASH], name="贝塔的活动")
        result = claims.claim(member("o-beta"), ClaimContext(serial=1))
        assert result.payout is not None
    owner = alpha.client("owner")
    for kind in ("campaigns", "claims", "payouts"):
        response = owner.get(f"{API}/{kind}/")
        assert response.json()["count"] == 0, kind
    for url, code in (
        (f"/campaigns/{campaign.pk}/", "campaign_not_found"),
        (f"/claims/{result.claim.pk}/", "claim_not_found"),
        (f"/payouts/{result.payout.pk}/", "payout_not_found"),
    ):
        assert_refused(owner.get(f"{API}{url}"), 404, code)
    assert_refused(_post(owner, f"/campaigns/{campaign.pk}/cancel/"), 404, "campaign_not_found")
    assert_refused(_post(owner, f"/payouts/{result.payout.pk}/reject/"), 404, "payout_not_found")
    with tenant_context(beta.tenant):
        assert Campaign.objects.get(pk=campaign.pk).status == CampaignStatus.PUBLISHED
        assert Payout.objects.get(pk=result.payout.pk).status == PayoutStatus.PENDING


def test_listing_twenty_rows_costs_a_bounded_number_of_queries(
    alpha: Brand, django_assert_max_num_queries: Any
) -> None:
    with tenant_context(alpha.tenant):
        running_campaign([CASH], name="多人活动")
        for n in range(20):
            claims.claim(member(f"o-many-{n}"), ClaimContext(serial=100 + n))
        for n in range(20):
            campaigns.create_campaign(
                name=f"草稿{n}",
                starts_at=timezone.now() + timedelta(days=1),
                ends_at=timezone.now() + timedelta(days=2),
                prizes=[replace(CASH, odds_ppm=5_000), replace(COINS, odds_ppm=5_000)],
            )
    owner = alpha.client("owner")
    for kind in ("campaigns", "claims", "payouts"):
        owner.get(f"{API}/{kind}/")  # the first request of a process loads what is cached after it
        with CaptureQueriesContext(connection) as one:
            assert owner.get(f"{API}/{kind}/", {"limit": 1}).status_code == 200
        with django_assert_max_num_queries(len(one)):
            response = owner.get(f"{API}/{kind}/", {"limit": 20})
        assert len(response.json()["results"]) == 20, kind


def test_the_openapi_document_describes_the_rewards_and_members_apis_without_warnings() -> None:
    from drf_spectacular.drainage import GENERATOR_STATS
    from drf_spectacular.generators import SchemaGenerator

    patterns = [
        path("api/v1/members/", include("commerce.api.member_urls")),
        path("api/v1/rewards/", include("rewards.api.urls")),
    ]
    GENERATOR_STATS.reset()
    with GENERATOR_STATS.silence():
        schema = SchemaGenerator(patterns=patterns).get_schema(request=None, public=True)
    warnings, errors = list(GENERATOR_STATS._warn_cache), list(GENERATOR_STATS._error_cache)
    GENERATOR_STATS.reset()
    assert warnings == []
    assert errors == []
    paths = schema["paths"]
    assert len(paths) == 17
    campaigns_path = paths["/api/v1/rewards/campaigns/"]
    assert "PaginatedCampaignList" in str(campaigns_path["get"]["responses"]["200"])
    assert "CampaignInput" in str(campaigns_path["post"]["requestBody"])
    assert "PatchedCampaignInput" in str(paths["/api/v1/rewards/campaigns/{campaign_id}/"]["patch"]["requestBody"])
    assert {p["name"] for p in paths["/api/v1/rewards/claims/"]["get"]["parameters"]} >= {
        "campaign",
        "status",
        "outcome",
        "member",
        "created_after",
        "created_before",
        "limit",
    }
    for action in ("approve", "reject", "retry"):
        assert "post" in paths[f"/api/v1/rewards/payouts/{{payout_id}}/{action}/"]
    components = schema["components"]["schemas"]
    for name in ("CampaignStatusEnum", "ClaimStatusEnum", "ClaimOutcomeEnum", "PayoutStatusEnum", "PrizeKindEnum"):
        assert name in components, name
    assert components["PrizeKindEnum"]["enum"] == ["cash", "points", "physical", "card"]


def test_the_brand_hosts_schema_includes_the_rewards_api(alpha: Brand) -> None:
    response = alpha.client("owner").get("/api/schema/", HTTP_ACCEPT="application/json")
    assert response.status_code == 200
    paths = response.json()["paths"]
    assert "/api/v1/rewards/claims/{claim_id}/review/" in paths
    assert "/api/v1/members/{member_id}/points/adjust/" in paths
