"""Orders: checkout (prices, coupon, shipping, points mall, idempotency), the transitions and their
refusals, the deadline sweeps, refunds, and checkout under concurrency (no oversell, one order per
client token, one use per coupon)."""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterator
from datetime import timedelta
from typing import Any

import pytest
from django.db.models import Sum
from django.utils import timezone

from commerce.models import (
    Address,
    CouponStatus,
    CouponTemplate,
    Dealer,
    MallItem,
    Member,
    MemberCoupon,
    MemberLevel,
    Order,
    OrderEvent,
    OrderLine,
    PointsEntry,
    Product,
    Refund,
    ShopPolicy,
    Sku,
    SkuLevelPrice,
    Stock,
    StockMovement,
    Store,
)
from commerce.services import catalog, coupons, orders, points
from commerce.services.orders import LineRequest, Parcel
from tenants.errors import JiumaError
from tests.conftest import Brand
from tests.support.threads import run_concurrently

_numbers = itertools.count(1)
many_connections = pytest.mark.xdist_group("many_connections")


def _n() -> int:
    return next(_numbers) + timezone.now().microsecond * 1000


@pytest.fixture(autouse=True)
def _no_broker(monkeypatch: pytest.MonkeyPatch) -> None:
    """Deadline tasks are not sent anywhere (the sweeps are tested directly)."""
    monkeypatch.setattr(orders, "_enqueue", lambda *args, **kwargs: None)


# --- builders -------------------------------------------------------------------------------------


def buyer(**fields: Any) -> Member:
    return Member.objects.create(openid=f"o-ord-{_n()}", **fields)


def address_of(member: Member) -> Address:
    return Address.objects.create(
        member=member, receiver_name="张三", phone="13800138000", region_code="520102", detail="遵义路 1 号"
    )


def product_sku(price_fen: int = 10_000, on_hand: int = 100, category: Any = None) -> Sku:
    product = Product.objects.create(name=f"酱香53度 {_n()}", category=category)
    sku = Sku.objects.create(product=product, code=f"SKU-{_n()}", spec="500ml", price_fen=price_fen)
    if on_hand:
        catalog.inbound(sku.pk, on_hand, ref=f"init-{sku.pk}", actor="test")
    return sku


def shop_policy(**fields: Any) -> ShopPolicy:
    policy = ShopPolicy.current()
    for key, value in fields.items():
        setattr(policy, key, value)
    policy.save()
    return policy


def template(**fields: Any) -> CouponTemplate:
    now = timezone.now()
    values: dict[str, Any] = {
        "name": "满100减20",
        "kind": "amount_off",
        "amount_off_fen": 2_000,
        "threshold_fen": 10_000,
        "validity": "fixed",
        "valid_from": now - timedelta(days=1),
        "valid_until": now + timedelta(days=30),
        "status": "active",
    }
    values.update(fields)
    return CouponTemplate.objects.create(**values)


def coupon_for(member: Member, **fields: Any) -> MemberCoupon:
    return coupons.issue(template(**fields).pk, member.pk)


def store() -> Store:
    dealer = Dealer.objects.create(code=f"D{_n()}", name="贵阳经销商")
    return Store.objects.create(code=f"S{_n()}", name="南明门店", dealer=dealer, region_code="520102")


def buy(member: Member, *items: tuple[Sku, int], **options: Any) -> Order:
    addr = options.pop("address", None) or Address.objects.filter(member=member).first() or address_of(member)
    return orders.checkout(
        member.pk,
        lines=[LineRequest(quantity, sku_id=sku.pk) for sku, quantity in items],
        address_id=addr.pk,
        **options,
    )


def stock(sku: Sku) -> tuple[int, int]:
    row = Stock.objects.get(pk=sku.pk)
    return row.on_hand, row.reserved


def events(order: Order) -> list[tuple[str, str, str, str]]:
    return list(
        OrderEvent.objects.filter(order=order).order_by("id").values_list("kind", "field", "from_state", "to_state")
    )


def refused(code: str, status: int, call: Callable[[], Any]) -> JiumaError:
    with pytest.raises(JiumaError) as caught:
        call()
    assert caught.value.code == code, caught.value.message
    assert caught.value.status_code == status
    return caught.value


# --- checkout -------------------------------------------------------------------------------------


def test_checkout_prices_reserves_and_records_the_order(in_alpha: Brand) -> None:
    shop_policy(shipping_fee_fen=1_000, free_shipping_threshold_fen=0, points_per_yuan=1, pay_timeout_minutes=30)
    level = MemberLevel.objects.create(
        name=f"金卡{_n()}", rank=_n() % 30000, min_points=0, price_percent=95, extra_points_percent=50
    )
    member = buyer(level=level)
    a, b = product_sku(1_990), product_sku(5_000)
    SkuLevelPrice.objects.create(sku=b, level=level, price_fen=4_500)
    coupon = coupon_for(member, threshold_fen=5_000, amount_off_fen=1_001)
    now = timezone.now()

    order = buy(member, (a, 3), (b, 1), coupon_code=coupon.code, now=now)

    # a: 1990 × 95 % = 1890.5 → 1891 (half up); b: its own member price 4500.
    lines = {line.sku_id: line for line in OrderLine.objects.filter(order=order)}
    assert (lines[a.pk].unit_price_fen, lines[a.pk].price_source) == (1_891, "member")
    assert (lines[b.pk].unit_price_fen, lines[b.pk].price_source) == (4_500, "member")
    assert order.items_fen == 3 * 1_891 + 4_500 == 10_173
    assert order.discount_fen == 1_001
    assert sum(line.discount_fen for line in lines.values()) == 1_001
    assert all(line.paid_fen == line.subtotal_fen - line.discount_fen for line in lines.values())
    assert order.shipping_fen == 1_000
    assert order.total_fen == 10_173 - 1_001 + 1_000
    assert order.reward_points == order.total_fen // 100 * 1 * 150 // 100
    assert order.pay_by == now + timedelta(minutes=30)
    assert (order.status, order.payment_status, order.number[:8]) == (
        "pending_payment",
        "unpaid",
        timezone.localtime(now).strftime("%Y%m%d"),
    )
    assert len(order.number) == 20
    assert stock(a) == (100, 3)
    assert stock(b) == (100, 1)
    assert MemberCoupon.objects.get(pk=coupon.pk).status == CouponStatus.RESERVED
    assert events(order) == [("created", "", "", "")]
    assert (
        StockMovement.objects.filter(source__in=[f"line:{line.pk}" for line in lines.values()], kind="reserve").count()
        == 2
    )


def test_free_shipping_by_threshold_and_pickup_orders_carry_a_code(in_alpha: Brand) -> None:
    shop_policy(shipping_fee_fen=800, free_shipping_threshold_fen=20_000)
    member = buyer()
    sku = product_sku(10_000)
    assert buy(member, (sku, 1)).shipping_fen == 800
    assert buy(member, (sku, 2)).shipping_fen == 0
    shop = store()
    order = orders.checkout(
        member.pk, lines=[LineRequest(1, sku_id=sku.pk)], delivery="pickup", pickup_store_id=shop.pk
    )
    assert order.shipping_fen == 0
    assert order.pickup_code is not None
    assert len(order.pickup_code) == 12
    assert order.receiver_name == ""


def test_checkout_refusals_leave_nothing_behind(in_alpha: Brand) -> None:
    member = buyer()
    sku = product_sku(10_000, on_hand=2)
    address = address_of(member)
    before = Order.objects.count()
    refused("insufficient_stock", 409, lambda: buy(member, (sku, 3), address=address))
    refused("order_empty", 400, lambda: orders.checkout(member.pk, lines=[], address_id=address.pk))
    refused("address_required", 400, lambda: orders.checkout(member.pk, lines=[LineRequest(1, sku_id=sku.pk)]))
    refused("invalid_order_quantity", 400, lambda: buy(member, (sku, 0), address=address))
    other = buyer()
    refused(
        "address_required",
        404,
        lambda: orders.checkout(other.pk, lines=[LineRequest(1, sku_id=sku.pk)], address_id=address.pk),
    )
    Product.objects.filter(pk=sku.product_id).update(is_active=False)
    refused("sku_not_sellable", 400, lambda: buy(member, (sku, 1), address=address))
    assert Order.objects.count() == before
    assert stock(sku) == (2, 0)


def test_a_refused_step_undoes_the_coupon_and_stock(in_alpha: Brand) -> None:
    member = buyer()
    plenty, scarce = product_sku(10_000), product_sku(10_000, on_hand=1)
    coupon = coupon_for(member)
    refused("insufficient_stock", 409, lambda: buy(member, (plenty, 1), (scarce, 2), coupon_code=coupon.code))
    assert MemberCoupon.objects.get(pk=coupon.pk).status == CouponStatus.AVAILABLE
    assert stock(plenty) == (100, 0)


def test_a_client_token_makes_one_order(in_alpha: Brand) -> None:
    member = buyer()
    sku = product_sku()
    first = buy(member, (sku, 1), client_token="tok-1")
    again = buy(member, (sku, 1), client_token="tok-1")
    assert again.pk == first.pk
    assert stock(sku) == (100, 1)


def test_checkout_from_the_cart_empties_the_bought_lines(in_alpha: Brand) -> None:
    member = buyer()
    address = address_of(member)
    a, b = product_sku(1_000), product_sku(2_000)
    orders.cart_add(member.pk, a.pk, 2)
    orders.cart_add(member.pk, a.pk, 1)
    orders.cart_add(member.pk, b.pk, 1)
    orders.cart_select(member.pk, [b.pk], selected=False)
    cart = {line.sku_id: line for line in orders.cart_list(member.pk)}
    assert cart[a.pk].quantity == 3
    order = orders.checkout(member.pk, from_cart=True, address_id=address.pk)
    assert order.items_fen == 3_000
    assert [line.sku_id for line in orders.cart_list(member.pk)] == [b.pk]
    refused("invalid_order_quantity", 400, lambda: orders.cart_add(member.pk, a.pk, 1000))


# --- transitions ----------------------------------------------------------------------------------


def test_payment_moves_the_order_and_uses_the_coupon(in_alpha: Brand) -> None:
    member = buyer()
    sku = product_sku()
    coupon = coupon_for(member)
    order = buy(member, (sku, 1), coupon_code=coupon.code)
    paid = orders.mark_paid(order.pk)
    assert (paid.status, paid.payment_status) == ("awaiting_shipment", "paid")
    assert MemberCoupon.objects.get(pk=coupon.pk).status == CouponStatus.USED
    assert events(order)[1:] == [
        ("paid", "status", "pending_payment", "awaiting_shipment"),
        ("paid", "payment_status", "unpaid", "paid"),
    ]
    refused("order_wrong_state", 409, lambda: orders.mark_paid(order.pk))
    assert len(events(order)) == 3


def test_cancel_gives_back_stock_and_coupon(in_alpha: Brand) -> None:
    member = buyer()
    sku = product_sku()
    coupon = coupon_for(member)
    order = buy(member, (sku, 2), coupon_code=coupon.code)
    cancelled = orders.cancel(order.pk, reason="member", actor=f"member:{member.pk}", member_id=member.pk)
    assert (cancelled.status, cancelled.payment_status, cancelled.cancel_reason) == ("cancelled", "closed", "member")
    assert stock(sku) == (100, 0)
    assert MemberCoupon.objects.get(pk=coupon.pk).status == CouponStatus.AVAILABLE
    refused("order_wrong_state", 409, lambda: orders.cancel(order.pk, reason="member", actor="x"))
    refused("order_not_found", 404, lambda: orders.cancel(order.pk, reason="member", actor="x", member_id=buyer().pk))


def test_a_coupon_past_its_validity_expires_when_its_order_is_cancelled(in_alpha: Brand) -> None:
    member = buyer()
    sku = product_sku()
    coupon = coupon_for(member)
    order = buy(member, (sku, 1), coupon_code=coupon.code)
    later = coupon.valid_until + timedelta(seconds=1)
    orders.cancel(order.pk, reason="staff", actor="staff:ops", now=later)
    assert MemberCoupon.objects.get(pk=coupon.pk).status == CouponStatus.EXPIRED


def _snapshot(order: Order) -> tuple[Any, ...]:
    fresh = Order.objects.get(pk=order.pk)
    return (fresh.status, fresh.payment_status, fresh.refund_status, OrderEvent.objects.filter(order=order).count())


def test_every_illegal_transition_is_refused_and_changes_nothing(in_alpha: Brand) -> None:
    member = buyer()
    sku = product_sku()
    shop = store()
    pending = buy(member, (sku, 1))
    paid = orders.mark_paid(buy(member, (sku, 1)).pk)
    pickup = orders.checkout(
        member.pk, lines=[LineRequest(1, sku_id=sku.pk)], delivery="pickup", pickup_store_id=shop.pk
    )
    parcel = [Parcel("SF", "顺丰", "SF1234567890")]
    attempts: list[tuple[Order, Callable[[], Any]]] = [
        (pending, lambda: orders.ship(pending.pk, parcel, actor="staff:w")),
        (pending, lambda: orders.confirm_received(pending.pk, actor="m")),
        (pending, lambda: orders.complete(pending.pk, now=timezone.now() + timedelta(days=99))),
        (paid, lambda: orders.cancel(paid.pk, reason="member", actor="m")),
        (paid, lambda: orders.mark_paid(paid.pk)),
        (paid, lambda: orders.confirm_received(paid.pk, actor="m")),
        (paid, lambda: orders.complete(paid.pk, now=timezone.now() + timedelta(days=99))),
        (pickup, lambda: orders.ship(pickup.pk, parcel, actor="staff:w")),
    ]
    for order, attempt in attempts:
        before = _snapshot(order)
        refused("order_wrong_state", 409, attempt)
        assert _snapshot(order) == before
    assert stock(sku) == (100, 3)


def test_ship_receive_complete_and_the_reward(in_alpha: Brand) -> None:
    shop_policy(points_per_yuan=2, auto_receive_days=10, after_sales_days=7, shipping_fee_fen=0)
    member = buyer()
    sku = product_sku(12_345)
    order = orders.mark_paid(buy(member, (sku, 2)).pk)
    now = timezone.now()
    shipped = orders.ship(order.pk, [Parcel("SF", "顺丰", "SF1234567890")], actor="staff:w", now=now)
    assert shipped.status == "shipped"
    assert shipped.auto_receive_at == now + timedelta(days=10)
    assert stock(sku) == (98, 0)

    # Not yet due: the sweep leaves it; at the deadline it receives.
    assert orders.sweep_receive_due(now=now + timedelta(days=9)) == 0
    assert orders.sweep_receive_due(now=now + timedelta(days=10)) == 1
    received = Order.objects.get(pk=order.pk)
    assert received.status == "received"
    assert received.after_sales_until == now + timedelta(days=17)

    assert orders.sweep_after_sales_due(now=now + timedelta(days=16)) == 0
    assert orders.sweep_after_sales_due(now=now + timedelta(days=17)) == 1
    done = Order.objects.get(pk=order.pk)
    assert done.status == "completed"
    reward = PointsEntry.objects.get(member=member, source=f"order-reward:{order.number}")
    assert reward.amount == 24_690 // 100 * 2 == order.reward_points
    assert orders.sweep_after_sales_due(now=now + timedelta(days=30)) == 0  # once


def test_the_pay_deadline_cancels_unpaid_orders(in_alpha: Brand) -> None:
    member = buyer()
    sku = product_sku()
    now = timezone.now()
    order = buy(member, (sku, 4), now=now)
    assert orders.sweep_pay_due(now=now + timedelta(minutes=29)) == 0
    assert Order.objects.get(pk=order.pk).status == "pending_payment"
    assert orders.cancel_due(order.pk, now=now + timedelta(minutes=31))
    cancelled = Order.objects.get(pk=order.pk)
    assert (cancelled.status, cancelled.cancel_reason) == ("cancelled", "timeout")
    assert stock(sku) == (100, 0)
    assert not orders.cancel_due(order.pk, now=now + timedelta(minutes=40))


def test_pickup_is_redeemed_by_a_clerk_of_its_store(in_alpha: Brand) -> None:
    from django.contrib.auth import get_user_model

    from commerce.models import ChannelStaff

    member = buyer()
    sku = product_sku()
    shop, elsewhere = store(), store()
    order = orders.checkout(
        member.pk, lines=[LineRequest(1, sku_id=sku.pk)], delivery="pickup", pickup_store_id=shop.pk
    )
    user_model = get_user_model()

    def clerk(at: Store) -> ChannelStaff:
        user = user_model.objects.create(username=f"clerk{_n()}")
        return ChannelStaff.objects.create(user=user, role="store_clerk", store=at, phone=f"139{_n() % 10**8:08d}")

    mine, theirs = clerk(shop), clerk(elsewhere)
    assert order.pickup_code is not None
    refused("order_wrong_state", 409, lambda: orders.redeem_pickup(order.pickup_code or "", staff_id=mine.pk))
    orders.mark_paid(order.pk)
    refused("pickup_wrong_store", 403, lambda: orders.redeem_pickup(order.pickup_code or "", staff_id=theirs.pk))
    refused("pickup_code_invalid", 404, lambda: orders.redeem_pickup("000000000000", staff_id=mine.pk))
    received = orders.redeem_pickup(order.pickup_code, staff_id=mine.pk)
    assert (received.status, received.picked_up_by_id) == ("received", mine.pk)
    assert stock(sku) == (99, 0)
    refused("order_wrong_state", 409, lambda: orders.redeem_pickup(order.pickup_code or "", staff_id=mine.pk))


# --- points mall ----------------------------------------------------------------------------------


def mall_item(sku: Sku, **fields: Any) -> MallItem:
    values: dict[str, Any] = {"sku": sku, "title": "兑换：酱香小酒", "points_price": 300, "is_active": True}
    values.update(fields)
    return MallItem.objects.create(**values)


def test_a_points_mall_order_debits_points_and_a_cancel_returns_them(in_alpha: Brand) -> None:
    member = buyer()
    points.credit(member.pk, 1_000, kind="scan", source=f"scan:{_n()}")
    item = mall_item(product_sku(5_000), cash_price_fen=990, quantity=5, per_member_limit=2)
    address = address_of(member)
    order = orders.checkout(member.pk, lines=[LineRequest(2, mall_item_id=item.pk)], address_id=address.pk)
    assert (order.kind, order.points_total, order.items_fen) == ("points_mall", 600, 1_980)
    assert Member.objects.get(pk=member.pk).points_balance == 400
    assert PointsEntry.objects.get(member=member, source=f"order:{order.number}").amount == -600
    assert MallItem.objects.get(pk=item.pk).sold == 2
    refused(
        "mall_item_member_limit",
        409,
        lambda: orders.checkout(member.pk, lines=[LineRequest(1, mall_item_id=item.pk)], address_id=address.pk),
    )
    orders.cancel(order.pk, reason="member", actor="m")
    assert Member.objects.get(pk=member.pk).points_balance == 1_000
    assert PointsEntry.objects.get(member=member, source=f"order-cancel:{order.number}").amount == 600
    assert MallItem.objects.get(pk=item.pk).sold == 0
    assert points.verify_ledger(member.pk).ok


def test_a_points_mall_order_needs_the_points(in_alpha: Brand) -> None:
    member = buyer()
    item = mall_item(product_sku(5_000))
    address = address_of(member)
    refused(
        "insufficient_points",
        409,
        lambda: orders.checkout(member.pk, lines=[LineRequest(1, mall_item_id=item.pk)], address_id=address.pk),
    )
    assert MallItem.objects.get(pk=item.pk).sold == 0
    assert not Order.objects.filter(member=member).exists()


def test_an_order_paid_in_points_only_is_paid_at_once_and_a_points_refund_cancels_it(in_alpha: Brand) -> None:
    member = buyer()
    points.credit(member.pk, 500, kind="scan", source=f"scan:{_n()}")
    sku = product_sku(5_000)
    item = mall_item(sku, allow_pickup=True)
    shop = store()
    order = orders.checkout(
        member.pk, lines=[LineRequest(1, mall_item_id=item.pk)], delivery="pickup", pickup_store_id=shop.pk
    )
    assert (order.total_fen, order.status, order.payment_status) == (0, "awaiting_pickup", "paid")
    Order.objects.filter(pk=order.pk).update(refund_booked_points=300)
    refund = Refund.objects.create(
        refund_no=f"{order.number}R01", order=order, reason="manual", points=300, created_by="staff:cs"
    )
    after = orders.on_refund_succeeded(refund)
    assert (after.status, after.refund_status, after.refunded_points, after.cancel_reason) == (
        "cancelled",
        "full",
        300,
        "refunded",
    )
    assert stock(sku) == (100, 0)
    assert Member.objects.get(pk=member.pk).points_balance == 500
    assert MallItem.objects.get(pk=item.pk).sold == 0


# --- concurrency (committed, each job on its own connection; cleaned up after) ----------------------


def _purge(member_ids: list[int], sku_ids: list[int], template_ids: list[int] = ()) -> None:  # type: ignore[assignment]
    order_ids = list(Order.objects.filter(member_id__in=member_ids).values_list("id", flat=True))
    MemberCoupon.objects.filter(member_id__in=member_ids).update(
        order=None, status="available", reserved_at=None, used_at=None
    )
    OrderEvent.objects.filter(order_id__in=order_ids).delete()
    OrderLine.objects.filter(order_id__in=order_ids).delete()
    Order.objects.filter(pk__in=order_ids).delete()
    MemberCoupon.objects.filter(member_id__in=member_ids).delete()
    CouponTemplate.objects.filter(pk__in=template_ids).delete()
    PointsEntry.objects.filter(member_id__in=member_ids).delete()
    Address.objects.filter(member_id__in=member_ids).delete()
    Member.objects.filter(pk__in=member_ids).delete()
    StockMovement.objects.filter(sku_id__in=sku_ids).delete()
    Stock.objects.filter(pk__in=sku_ids).delete()
    products = list(Sku.objects.filter(pk__in=sku_ids).values_list("product_id", flat=True))
    Sku.objects.filter(pk__in=sku_ids).delete()
    Product.objects.filter(pk__in=products).delete()


@pytest.fixture
def committed(alpha: Brand) -> Iterator[dict[str, list[int]]]:
    """Ids of committed rows to remove after the test."""
    made: dict[str, list[int]] = {"members": [], "skus": [], "templates": []}
    yield made
    run_concurrently([lambda: _purge(made["members"], made["skus"], made["templates"])], tenant=alpha.tenant)


@many_connections
def test_a_hundred_buyers_for_ten_units_make_exactly_ten_orders(alpha: Brand, committed: dict[str, list[int]]) -> None:
    def setup() -> tuple[int, list[tuple[int, int]]]:
        sku = product_sku(10_000, on_hand=10)
        pairs = []
        for _ in range(100):
            member = buyer()
            pairs.append((member.pk, address_of(member).pk))
        return sku.pk, pairs

    ((sku_id, pairs),) = run_concurrently([setup], tenant=alpha.tenant)
    committed["skus"].append(sku_id)
    committed["members"].extend(member_id for member_id, _a in pairs)

    def shopper(first: int) -> list[Any]:
        results: list[Any] = []
        for member_id, address_id in pairs[first::20]:
            try:
                results.append(orders.checkout(member_id, lines=[LineRequest(1, sku_id=sku_id)], address_id=address_id))
            except JiumaError as exc:
                results.append(exc)
        return results

    outcomes = [
        o for batch in run_concurrently([lambda f=f: shopper(f) for f in range(20)], tenant=alpha.tenant) for o in batch
    ]
    assert len(outcomes) == 100
    made = [o for o in outcomes if isinstance(o, Order)]
    refusals = [o for o in outcomes if isinstance(o, JiumaError)]
    assert len(made) == 10, [o for o in outcomes if not isinstance(o, (Order, JiumaError))][:3]
    assert {r.code for r in refusals} == {"insufficient_stock"}

    def totals() -> tuple[int, int, int, int]:
        row = Stock.objects.get(pk=sku_id)
        moved = StockMovement.objects.filter(sku_id=sku_id, kind="reserve").aggregate(s=Sum("reserved_delta"))["s"]
        return row.on_hand, row.reserved, Order.objects.filter(lines__sku_id=sku_id).count(), moved

    ((found,),) = [run_concurrently([totals], tenant=alpha.tenant)]
    assert found == (10, 10, 10, 10)


@many_connections
def test_concurrent_submissions_of_one_client_token_make_one_order(
    alpha: Brand, committed: dict[str, list[int]]
) -> None:
    def setup() -> tuple[int, int, int]:
        sku = product_sku(10_000, on_hand=50)
        member = buyer()
        return sku.pk, member.pk, address_of(member).pk

    ((sku_id, member_id, address_id),) = run_concurrently([setup], tenant=alpha.tenant)
    committed["skus"].append(sku_id)
    committed["members"].append(member_id)
    jobs = [
        lambda: orders.checkout(
            member_id, lines=[LineRequest(1, sku_id=sku_id)], address_id=address_id, client_token="same"
        )
        for _ in range(15)
    ]
    outcomes = run_concurrently(jobs, tenant=alpha.tenant)
    assert all(isinstance(o, Order) for o in outcomes), outcomes[:3]
    assert len({o.pk for o in outcomes}) == 1

    def totals() -> tuple[int, int]:
        return Order.objects.filter(member_id=member_id).count(), Stock.objects.get(pk=sku_id).reserved

    (found,) = run_concurrently([totals], tenant=alpha.tenant)
    assert found == (1, 1)


@many_connections
def test_one_coupon_in_concurrent_checkouts_is_used_once(alpha: Brand, committed: dict[str, list[int]]) -> None:
    def setup() -> tuple[int, int, int, str, int]:
        sku = product_sku(10_000, on_hand=50)
        member = buyer()
        coupon = coupon_for(member)
        return sku.pk, member.pk, address_of(member).pk, coupon.code, coupon.template_id

    ((sku_id, member_id, address_id, code, template_id),) = run_concurrently([setup], tenant=alpha.tenant)
    committed["skus"].append(sku_id)
    committed["members"].append(member_id)
    committed["templates"].append(template_id)
    jobs = [
        lambda n=n: orders.checkout(
            member_id,
            lines=[LineRequest(1, sku_id=sku_id)],
            address_id=address_id,
            coupon_code=code,
            client_token=f"t{n}",
        )
        for n in range(10)
    ]
    outcomes = run_concurrently(jobs, tenant=alpha.tenant)
    made = [o for o in outcomes if isinstance(o, Order)]
    refusals = [o for o in outcomes if isinstance(o, JiumaError)]
    assert len(made) == 1, outcomes[:3]
    assert len(refusals) == 9
    assert {r.code for r in refusals} == {"coupon_unavailable"}

    def totals() -> tuple[int, int, str]:
        coupon = MemberCoupon.objects.get(code=code)
        return Order.objects.filter(member_id=member_id).count(), Stock.objects.get(pk=sku_id).reserved, coupon.status

    (found,) = run_concurrently([totals], tenant=alpha.tenant)
    assert found == (1, 1, "reserved")
