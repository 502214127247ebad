"""Bargaining: the cut rule (integer fen, at least 1 fen kept per helper to come, the last allowed
helper lands on the floor), one help per friend, ordering at the bargained price, the cancel and
expiry transitions, and simultaneous helps never going below the floor."""

from __future__ import annotations

import random
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
from django.utils import timezone

from commerce.models import (
    Address,
    BargainCampaign,
    BargainHelp,
    BargainSession,
    Member,
    Order,
    OrderEvent,
    OrderLine,
    Product,
    Sku,
    Stock,
    StockMovement,
)
from commerce.services import bargain, orders
from tenants.errors import JiumaError
from tests.commerce.test_orders import address_of, buyer, product_sku, refused, shop_policy, stock
from tests.conftest import Brand
from tests.support.threads import run_concurrently


@pytest.fixture(autouse=True)
def _no_broker(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(orders, "_enqueue", lambda *args, **kwargs: None)
    monkeypatch.setattr(bargain, "_enqueue", lambda *args, **kwargs: None)


def campaign(sku: Sku, **fields: Any) -> BargainCampaign:
    now = timezone.now()
    values: dict[str, Any] = {
        "name": "砍一刀",
        "sku": sku,
        "start_price_fen": 10_000,
        "floor_price_fen": 5_000,
        "max_helps": 5,
        "session_hours": 24,
        "starts_at": now - timedelta(hours=1),
        "ends_at": now + timedelta(days=7),
        "is_active": True,
    }
    values.update(fields)
    return BargainCampaign.objects.create(**values)


def buy(session: BargainSession, member: Member, **options: Any) -> Order:
    addr = Address.objects.filter(member=member).first() or address_of(member)
    return bargain.order(session.pk, member.pk, address_id=addr.pk, **options)


# --- the cut rule ----------------------------------------------------------------------------------


@pytest.mark.parametrize(("remaining", "helps"), [(5_000, 5), (7, 7), (1, 1), (100, 3), (999_999, 1000), (13, 12)])
def test_every_cut_keeps_a_fen_per_helper_to_come_and_the_last_lands_on_the_floor(remaining: int, helps: int) -> None:
    rng = random.Random(remaining * 31 + helps)
    for pick in (lambda upper: upper, lambda upper: 1, lambda upper: rng.randint(1, upper)):
        left, cuts = remaining, []
        for k in range(helps, 0, -1):
            cut = bargain.cut_for(left, k, pick)
            assert cut >= 1
            assert left - cut >= k - 1  # at least 1 fen kept per helper still to come
            left -= cut
            cuts.append(cut)
        assert left == 0
        assert sum(cuts) == remaining


def test_cuts_are_random_but_within_bounds() -> None:
    seen = {bargain.cut_for(5_000, 5) for _ in range(200)}
    assert len(seen) > 10
    assert all(1 <= cut <= 2_000 for cut in seen)


# --- sessions ----------------------------------------------------------------------------------------


def test_helps_reach_the_floor_then_the_member_orders_at_it(in_alpha: Brand) -> None:
    shop_policy(shipping_fee_fen=0)
    sku = product_sku(10_000)
    camp = campaign(sku)
    member = buyer()
    session = bargain.start(member.pk, camp.pk)
    assert bargain.start(member.pk, camp.pk).pk == session.pk  # one active session per campaign and member
    assert (session.current_price_fen, session.status) == (10_000, "active")

    refused("bargain_own_session", 400, lambda: bargain.help(session.pk, member.pk))
    friends = [buyer() for _ in range(6)]
    first = bargain.help(session.pk, friends[0].pk)
    assert first.cut_fen >= 1
    refused("bargain_already_helped", 409, lambda: bargain.help(session.pk, friends[0].pk))
    refused("bargain_not_at_floor", 409, lambda: buy(session, member))
    for friend in friends[1:5]:
        bargain.help(session.pk, friend.pk)
    session.refresh_from_db()
    assert (session.current_price_fen, session.helps_count) == (5_000, 5)
    assert sum(BargainHelp.objects.filter(session=session).values_list("cut_fen", flat=True)) == 5_000
    refused("bargain_session_not_found", 404, lambda: buy(session, buyer()))  # not theirs
    refused("bargain_at_floor", 409, lambda: bargain.help(session.pk, friends[5].pk))

    order = buy(session, member, client_token="b1")
    assert buy(session, member, client_token="b1").pk == order.pk
    line = OrderLine.objects.get(order=order)
    assert (order.kind, order.total_fen, line.unit_price_fen, line.price_source) == ("bargain", 5_000, 5_000, "bargain")
    assert OrderEvent.objects.get(order=order, kind="created").data["bargain_session"] == session.pk
    session.refresh_from_db()
    assert (session.status, session.order_id) == ("ordered", order.pk)
    assert BargainCampaign.objects.get(pk=camp.pk).sold == 1
    assert stock(sku) == (100, 1)

    orders.cancel(order.pk, reason="member", actor="member")
    session.refresh_from_db()
    assert (session.status, session.order_id) == ("active", None)
    assert BargainCampaign.objects.get(pk=camp.pk).sold == 0
    assert stock(sku) == (100, 0)


def test_buying_above_the_floor_when_allowed_and_a_cancel_after_expiry(in_alpha: Brand) -> None:
    sku = product_sku(10_000)
    camp = campaign(sku, allow_buy_above_floor=True)
    member = buyer()
    session = bargain.start(member.pk, camp.pk)
    bargain.help(session.pk, buyer().pk)
    session.refresh_from_db()
    order = buy(session, member)
    assert order.items_fen == session.current_price_fen > 5_000
    later = session.expires_at + timedelta(minutes=1)
    orders.cancel(order.pk, reason="timeout", actor="system", now=later)
    session.refresh_from_db()
    assert (session.status, session.order_id) == ("expired", None)


def test_the_sweep_expires_active_sessions(in_alpha: Brand) -> None:
    camp = campaign(product_sku(10_000))
    session = bargain.start(buyer().pk, camp.pk)
    assert bargain.sweep_expired(now=session.expires_at - timedelta(seconds=1)) == 0
    assert bargain.sweep_expired(now=session.expires_at) == 1
    assert bargain.sweep_expired(now=session.expires_at) == 0
    assert BargainSession.objects.get(pk=session.pk).status == "expired"
    refused("bargain_session_not_active", 409, lambda: bargain.help(session.pk, buyer().pk))


# --- concurrency (committed, each job on its own connection; cleaned up after) ----------------------


def _purge(member_ids: list[int], sku_ids: list[int], campaign_ids: list[int]) -> None:
    BargainHelp.objects.filter(session__campaign_id__in=campaign_ids).delete()
    BargainSession.objects.filter(campaign_id__in=campaign_ids).delete()
    BargainCampaign.objects.filter(pk__in=campaign_ids).delete()
    Member.objects.filter(pk__in=member_ids).delete()
    StockMovement.objects.filter(sku_id__in=sku_ids).delete()
    Stock.objects.filter(pk__in=sku_ids).delete()
    products = list(Sku.objects.filter(pk__in=sku_ids).values_list("product_id", flat=True))
    Sku.objects.filter(pk__in=sku_ids).delete()
    Product.objects.filter(pk__in=products).delete()


@pytest.fixture
def committed(alpha: Brand) -> Iterator[dict[str, list[int]]]:
    made: dict[str, list[int]] = {"members": [], "skus": [], "campaigns": []}
    yield made
    run_concurrently([lambda: _purge(made["members"], made["skus"], made["campaigns"])], tenant=alpha.tenant)


@pytest.mark.xdist_group("many_connections")
def test_simultaneous_helps_stop_exactly_at_the_floor_once_per_friend(
    alpha: Brand, committed: dict[str, list[int]]
) -> None:
    def setup() -> tuple[int, list[int]]:
        sku = product_sku(10_000, on_hand=0)
        camp = campaign(sku, start_price_fen=1_000, floor_price_fen=1, max_helps=5)
        owner = buyer()
        helpers = [buyer().pk for _ in range(8)]
        committed["skus"].append(sku.pk)
        committed["campaigns"].append(camp.pk)
        committed["members"].extend([owner.pk, *helpers])
        return bargain.start(owner.pk, camp.pk).pk, helpers

    ((session_id, helpers),) = run_concurrently([setup], tenant=alpha.tenant)
    # 8 friends at once, and the first of them three times.
    jobs = [lambda h=h: bargain.help(session_id, h) for h in [*helpers, helpers[0], helpers[0]]]
    outcomes = run_concurrently(jobs, tenant=alpha.tenant)
    made = [o for o in outcomes if isinstance(o, BargainHelp)]
    refusals = [o for o in outcomes if isinstance(o, JiumaError)]
    assert len(made) == 5, [o for o in outcomes if not isinstance(o, (BargainHelp, JiumaError))][:3]
    assert len(refusals) == 5
    assert {r.code for r in refusals} <= {"bargain_at_floor", "bargain_already_helped"}
    assert len({h.helper_id for h in made}) == 5

    def totals() -> tuple[int, int, int, int]:
        session = BargainSession.objects.get(pk=session_id)
        helps = list(BargainHelp.objects.filter(session_id=session_id).values_list("helper_id", "cut_fen"))
        return session.current_price_fen, session.helps_count, len({h for h, _c in helps}), sum(c for _h, c in helps)

    (found,) = run_concurrently([totals], tenant=alpha.tenant)
    assert found == (1, 5, 5, 999)
