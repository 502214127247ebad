"""Group buy: opening and joining teams, the team side of payments and cancels, success moving every
paid order on, the expiry sweep refunding every paid member's own order exactly once, and the last
seat taken exactly once under concurrent joins."""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
from django.db.models import Sum
from django.utils import timezone

from commerce.models import (
    Address,
    GroupBuyCampaign,
    GroupBuySeat,
    GroupBuyTeam,
    Member,
    Order,
    OrderEvent,
    OrderLine,
    Payment,
    PaymentRecordStatus,
    Product,
    Refund,
    Sku,
    Stock,
    StockMovement,
)
from commerce.services import group_buy, orders, refunds
from tenants.errors import JiumaError
from tests.commerce.test_orders import address_of, buyer, product_sku, refused, shop_policy, stock
from tests.conftest import Brand
from tests.support.threads import run_concurrently


@pytest.fixture(autouse=True)
def _no_broker(monkeypatch: pytest.MonkeyPatch) -> None:
    """Deadline tasks and refund submissions are not sent anywhere (the sweeps are tested directly)."""
    monkeypatch.setattr(orders, "_enqueue", lambda *args, **kwargs: None)
    monkeypatch.setattr(group_buy, "_enqueue", lambda *args, **kwargs: None)
    monkeypatch.setattr(refunds, "schedule", lambda refund: None)


def campaign(sku: Sku, *, size: int = 3, price_fen: int = 8_000, **fields: Any) -> GroupBuyCampaign:
    now = timezone.now()
    values: dict[str, Any] = {
        "name": "三人团",
        "sku": sku,
        "group_price_fen": price_fen,
        "team_size": size,
        "team_hours": 24,
        "starts_at": now - timedelta(hours=1),
        "ends_at": now + timedelta(days=7),
        "is_active": True,
    }
    values.update(fields)
    return GroupBuyCampaign.objects.create(**values)


def join(member: Member, camp: GroupBuyCampaign, team: GroupBuyTeam | None = None, **options: Any) -> Order:
    addr = Address.objects.filter(member=member).first() or address_of(member)
    return group_buy.join(member.pk, camp.pk, team_id=team.pk if team else None, address_id=addr.pk, **options)


def _payment(order: Order) -> Payment:
    return Payment.objects.create(
        order=order,
        out_trade_no=f"{order.number}P01",
        amount_fen=order.total_fen,
        status=PaymentRecordStatus.PAID,
        payer_openid=order.member.openid or "o",
        transaction_id=f"4200{secrets.randbelow(10**20):020d}",
        paid_at=timezone.now(),
    )


def pay(order: Order, django_capture_on_commit_callbacks: Any) -> Order:
    """The order's payment applied as the payments service does (the team side runs on commit)."""
    with django_capture_on_commit_callbacks(execute=True):
        orders.mark_paid(order.pk, payment=_payment(order))
    return Order.objects.get(pk=order.pk)


def team_of(order: Order) -> GroupBuyTeam:
    return GroupBuyTeam.objects.get(seats__order=order)


def seat_of(order: Order) -> GroupBuySeat:
    return GroupBuySeat.objects.get(order=order)


# --- open, join, pay, succeed ----------------------------------------------------------------------


def test_a_team_opens_with_its_leaders_payment_and_succeeds_when_full(
    in_alpha: Brand, django_capture_on_commit_callbacks: Any
) -> None:
    shop_policy(shipping_fee_fen=0)
    sku = product_sku(10_000)
    camp = campaign(sku, size=3)
    leader, b, c = buyer(), buyer(), buyer()

    first = join(leader, camp)
    team = team_of(first)
    assert (team.status, team.seats_taken, team.leader_id, seat_of(first).is_leader) == ("pending", 1, leader.pk, True)
    assert (first.kind, first.total_fen, first.status) == ("group_buy", 8_000, "pending_payment")
    line = OrderLine.objects.get(order=first)
    assert (line.unit_price_fen, line.price_source) == (8_000, "group_buy")
    created = OrderEvent.objects.get(order=first, kind="created")
    assert created.data["group_buy_team"] == team.pk
    refused("group_buy_team_not_joinable", 409, lambda: join(b, camp, team))  # pending: not yet joinable

    first = pay(first, django_capture_on_commit_callbacks)
    team.refresh_from_db()
    assert first.status == "awaiting_group"
    assert (team.status, team.seats_paid) == ("open", 1)
    assert team.expires_at == first.paid_at + timedelta(hours=24)
    refused("group_buy_already_in_team", 409, lambda: join(leader, camp, team))

    second, third = join(b, camp, team), join(c, camp, team)
    assert GroupBuyTeam.objects.get(pk=team.pk).seats_taken == 3
    refused("group_buy_team_not_joinable", 409, lambda: join(buyer(), camp, team))  # full

    second = pay(second, django_capture_on_commit_callbacks)
    assert second.status == "awaiting_group"
    assert GroupBuyTeam.objects.get(pk=team.pk).status == "open"
    third = pay(third, django_capture_on_commit_callbacks)

    team.refresh_from_db()
    assert (team.status, team.seats_paid, team.finished_at is not None) == ("succeeded", 3, True)
    for order in (first, second, third):
        order.refresh_from_db()
        assert order.status == "awaiting_shipment"
        assert seat_of(order).status == "paid"
        assert list(
            OrderEvent.objects.filter(order=order, kind="group_succeeded").values_list("from_state", "to_state")
        ) == [("awaiting_group", "awaiting_shipment")]
    assert stock(sku) == (100, 3)
    assert GroupBuyCampaign.objects.get(pk=camp.pk).sold == 3
    # Idempotent: the after-payment step again changes nothing.
    assert group_buy.on_order_paid(third.pk) == "nothing"


def test_cancels_release_seats_and_a_leaders_cancel_voids_a_pending_team(
    in_alpha: Brand, django_capture_on_commit_callbacks: Any
) -> None:
    sku = product_sku(10_000)
    camp = campaign(sku, size=2, quantity=5)
    leader, other = buyer(), buyer()

    pending = join(leader, camp)
    orders.cancel(pending.pk, reason="member", actor="member")
    team = team_of(pending)
    assert (team.status, team.seats_taken, seat_of(pending).status) == ("void", 0, "released")
    assert GroupBuyCampaign.objects.get(pk=camp.pk).sold == 0

    led = pay(join(leader, camp), django_capture_on_commit_callbacks)
    team = team_of(led)
    joined = join(other, camp, team)
    assert GroupBuyTeam.objects.get(pk=team.pk).seats_taken == 2
    orders.cancel(joined.pk, reason="member", actor="member")
    team.refresh_from_db()
    assert (team.status, team.seats_taken, team.seats_paid, seat_of(joined).status) == ("open", 1, 1, "released")
    assert GroupBuyCampaign.objects.get(pk=camp.pk).sold == 1
    assert stock(sku) == (100, 1)
    # A released seat frees the member to join again.
    again = pay(join(other, camp, team), django_capture_on_commit_callbacks)
    assert (again.status, GroupBuyTeam.objects.get(pk=team.pk).status) == ("awaiting_shipment", "succeeded")


def test_an_expired_team_refunds_every_paid_members_own_order_exactly_once(
    in_alpha: Brand, django_capture_on_commit_callbacks: Any
) -> None:
    shop_policy(shipping_fee_fen=0)
    sku = product_sku(10_000)
    camp = campaign(sku, size=4)
    leader, b, c = buyer(), buyer(), buyer()
    first = pay(join(leader, camp), django_capture_on_commit_callbacks)
    team = team_of(first)
    second = pay(join(b, camp, team), django_capture_on_commit_callbacks)
    unpaid = join(c, camp, team)
    assert stock(sku) == (100, 3)
    team.refresh_from_db()
    assert team.expires_at is not None

    assert group_buy.sweep_expired(now=team.expires_at - timedelta(seconds=1)) == 0
    later = team.expires_at + timedelta(minutes=1)
    assert group_buy.sweep_expired(now=later) == 1
    assert group_buy.sweep_expired(now=later + timedelta(minutes=1)) == 0  # twice: nothing more

    team.refresh_from_db()
    assert (team.status, team.finished_at) == ("failed", later)
    for order in (first, second):
        order.refresh_from_db()
        assert (order.status, order.payment_status, order.cancel_reason) == ("cancelled", "paid", "group_failed")
        assert order.refund_booked_fen == order.total_fen == 8_000
        found = list(Refund.objects.filter(order=order).values_list("reason", "amount_fen", "status"))
        assert found == [("group_failed", 8_000, "pending")]
        assert seat_of(order).status == "refunded"
        assert OrderEvent.objects.filter(order=order, kind="group_failed", to_state="cancelled").count() == 1
    unpaid.refresh_from_db()
    assert (unpaid.status, unpaid.payment_status, unpaid.cancel_reason) == ("cancelled", "closed", "group_failed")
    assert seat_of(unpaid).status == "released"
    assert not Refund.objects.filter(order=unpaid).exists()
    assert stock(sku) == (100, 0)
    assert GroupBuyCampaign.objects.get(pk=camp.pk).sold == 0


def test_a_payment_arriving_after_the_team_failed_is_refunded(
    in_alpha: Brand, django_capture_on_commit_callbacks: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The payment commits (awaiting_group) but the team fails before its after-commit step runs."""
    sku = product_sku(10_000)
    camp = campaign(sku, size=3)
    first = pay(join(buyer(), camp), django_capture_on_commit_callbacks)
    team = team_of(first)
    late = join(buyer(), camp, team)
    with monkeypatch.context() as patch:
        patch.setattr(group_buy, "on_order_paid", lambda order_id, **kw: "lost")
        late = pay(late, django_capture_on_commit_callbacks)
    assert (late.status, seat_of(late).status) == ("awaiting_group", "reserved")
    team.refresh_from_db()
    assert team.expires_at is not None
    group_buy.sweep_expired(now=team.expires_at + timedelta(minutes=1))
    late.refresh_from_db()
    assert (late.status, late.cancel_reason, seat_of(late).status) == ("cancelled", "group_failed", "refunded")
    assert Refund.objects.filter(order=late, reason="group_failed").count() == 1
    assert stock(sku) == (100, 0)


# --- concurrency (committed, each job on its own connection; cleaned up after) ----------------------


def _purge(member_ids: list[int], sku_ids: list[int], campaign_ids: list[int]) -> None:
    order_ids = list(Order.objects.filter(member_id__in=member_ids).values_list("id", flat=True))
    GroupBuySeat.objects.filter(team__campaign_id__in=campaign_ids).delete()
    GroupBuyTeam.objects.filter(campaign_id__in=campaign_ids).delete()
    GroupBuyCampaign.objects.filter(pk__in=campaign_ids).delete()
    Refund.objects.filter(order_id__in=order_ids).delete()
    Payment.objects.filter(order_id__in=order_ids).delete()
    OrderEvent.objects.filter(order_id__in=order_ids).delete()
    OrderLine.objects.filter(order_id__in=order_ids).delete()
    Order.objects.filter(pk__in=order_ids).delete()
    Address.objects.filter(member_id__in=member_ids).delete()
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
def test_ten_joins_for_the_last_seat_take_it_exactly_once(alpha: Brand, committed: dict[str, list[int]]) -> None:
    def setup() -> tuple[int, int, int, list[tuple[int, int]]]:
        sku = product_sku(10_000, on_hand=50)
        camp = campaign(sku, size=3)
        leader, second = buyer(), buyer()
        committed["skus"].append(sku.pk)
        committed["campaigns"].append(camp.pk)
        committed["members"].extend([leader.pk, second.pk])
        led = join(leader, camp)
        orders.mark_paid(led.pk, payment=_payment(led))  # committed: its team side runs on commit
        team = team_of(led)
        join(second, camp, team)  # 2 of 3 seats taken
        pairs = []
        for _ in range(10):
            member = buyer()
            committed["members"].append(member.pk)
            pairs.append((member.pk, address_of(member).pk))
        return camp.pk, team.pk, sku.pk, pairs

    ((campaign_id, team_id, sku_id, pairs),) = run_concurrently([setup], tenant=alpha.tenant)
    jobs = [
        lambda m=m, a=a: group_buy.join(m, campaign_id, team_id=team_id, address_id=a, client_token="t")
        for m, a in pairs
    ]
    outcomes = run_concurrently(jobs, tenant=alpha.tenant)
    made = [o for o in outcomes if isinstance(o, Order)]
    refusals = [o for o in outcomes if isinstance(o, JiumaError)]
    assert len(made) == 1, [o for o in outcomes if not isinstance(o, (Order, JiumaError))][:3]
    assert {r.code for r in refusals} == {"group_buy_team_not_joinable"}
    assert len(refusals) == 9

    def totals() -> tuple[Any, ...]:
        team = GroupBuyTeam.objects.get(pk=team_id)
        live = GroupBuySeat.objects.filter(team_id=team_id).exclude(status="released").count()
        units = OrderLine.objects.filter(order__group_buy_seat__team_id=team_id).aggregate(n=Sum("quantity"))["n"]
        return team.status, team.seats_taken, team.seats_paid, live, units, Stock.objects.get(pk=sku_id).reserved

    (found,) = run_concurrently([totals], tenant=alpha.tenant)
    assert found == ("open", 3, 1, 3, 3, 3)
