"""The commerce core's data model: every invariant the database holds refuses the write that would
break it (the constraint named in the error is the one expected), and the valid neighbour of each
broken row is accepted.

These tests write rows directly (no services): they prove the last line of defence, whatever a
service does.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta
from typing import Any

import pytest
from django.db import IntegrityError, transaction
from django.db.models import F
from django.utils import timezone
from django_tenants.utils import tenant_context

from commerce.models import (
    Address,
    Affiliate,
    AffiliateStatus,
    AfterSale,
    AfterSaleKind,
    AfterSaleReason,
    AfterSaleStatus,
    BargainCampaign,
    BargainHelp,
    BargainSession,
    BargainStatus,
    CancelReason,
    CartItem,
    Category,
    ChannelStatus,
    CommissionEntry,
    CommissionKind,
    CommissionState,
    CommissionWithdrawal,
    CouponKind,
    CouponStatus,
    CouponTemplate,
    CouponValidity,
    Dealer,
    Delivery,
    DistributionPolicy,
    GroupBuyCampaign,
    GroupBuySeat,
    GroupBuyTeam,
    MallItem,
    Member,
    MemberCoupon,
    MemberLevel,
    MemberTag,
    MemberTagging,
    Order,
    OrderEvent,
    OrderEventKind,
    OrderKind,
    OrderLine,
    OrderStatus,
    Payment,
    PaymentRecordStatus,
    PaymentStatus,
    PayNotification,
    PriceSource,
    Product,
    Refund,
    RefundReason,
    RefundRecordStatus,
    RefundStatus,
    SeatStatus,
    Shipment,
    ShopPolicy,
    Sku,
    SkuLevelPrice,
    Stock,
    StockMovement,
    StockMovementKind,
    Store,
    TagKind,
    TeamStatus,
    WithdrawalStatus,
)
from tests.conftest import Brand

_numbers = itertools.count(1)


@pytest.fixture
def in_alpha(alpha: Brand) -> Iterator[Brand]:
    with tenant_context(alpha.tenant):
        yield alpha


@contextmanager
def refused(constraint: str) -> Iterator[None]:
    """The block's write fails on `constraint` (a name, or a "(column)" of a unique key) and
    leaves nothing behind."""
    with pytest.raises(IntegrityError) as caught, transaction.atomic():
        yield
    assert constraint in str(caught.value), str(caught.value)


def _n() -> int:
    return next(_numbers)


def member(**fields: Any) -> Member:
    return Member.objects.create(openid=f"o-core-{_n()}", **fields)


def sku(price_fen: int = 10_000) -> Sku:
    product = Product.objects.create(name=f"酱香53度 {_n()}")
    return Sku.objects.create(product=product, code=f"SKU-{_n()}", spec="500ml", price_fen=price_fen)


def order_number() -> str:
    return f"20261124093015{_n():06d}"


def order(buyer: Member | None = None, **fields: Any) -> Order:
    """A valid order: unpaid, express, 100 yuan, unless `fields` say otherwise."""
    now = timezone.now()
    values: dict[str, Any] = {
        "number": order_number(),
        "member": buyer or member(),
        "items_fen": 10_000,
        "total_fen": 10_000,
        "pay_by": now + timedelta(minutes=30),
        "receiver_name": "张三",
        "receiver_phone": "13800138000",
        "region_code": "520102",
        "address_detail": "遵义路 1 号",
    }
    values.update(fields)
    return Order.objects.create(**values)


def paid(**fields: Any) -> dict[str, Any]:
    """Fields of an order paid and waiting for shipment (merged with `fields`)."""
    return {
        "status": OrderStatus.AWAITING_SHIPMENT,
        "payment_status": PaymentStatus.PAID,
        "paid_at": timezone.now(),
        **fields,
    }


def line(of: Order, item: Sku | None = None, **fields: Any) -> OrderLine:
    item = item or sku()
    values: dict[str, Any] = {
        "order": of,
        "sku": item,
        "sku_name": item.display_name,
        "sku_code": item.code,
        "list_price_fen": 10_000,
        "unit_price_fen": 10_000,
        "quantity": 1,
        "subtotal_fen": 10_000,
        "paid_fen": 10_000,
    }
    values.update(fields)
    return OrderLine.objects.create(**values)


def store() -> Store:
    dealer = Dealer.objects.create(code=f"D{_n()}", name="贵阳经销商")
    return Store.objects.create(code=f"S{_n()}", name="南明门店", dealer=dealer, region_code="520102")


# --- the split keeps every import -----------------------------------------------------------------


def test_the_models_package_keeps_the_old_names() -> None:
    import commerce.models as models
    from commerce.models.channel import new_store_token

    # Migration 0002 refers to the store token default by this path.
    assert models.new_store_token is new_store_token
    assert models.ChannelStatus.ACTIVE == ChannelStatus.ACTIVE
    assert {m._meta.db_table for m in (Member, Sku, Store, PayNotification)} == {
        "commerce_member",
        "commerce_sku",
        "commerce_store",
        "commerce_paynotification",
    }


# --- catalog and stock ------------------------------------------------------------------------------


def test_stock_never_goes_below_zero(in_alpha: Brand) -> None:
    stock = Stock.objects.create(sku=sku(), on_hand=3)
    with refused("stock_on_hand_not_negative"):
        Stock.objects.filter(pk=stock.pk).update(on_hand=F("on_hand") - 4)
    Stock.objects.filter(pk=stock.pk).update(on_hand=F("on_hand") - 3)
    assert Stock.objects.get(pk=stock.pk).available == 0


def test_stock_reserved_never_exceeds_on_hand(in_alpha: Brand) -> None:
    stock = Stock.objects.create(sku=sku(), on_hand=10, reserved=9)
    with refused("stock_reserved_within_on_hand"):
        Stock.objects.filter(pk=stock.pk).update(reserved=F("reserved") + 2)
    with refused("stock_reserved_within_on_hand"):
        Stock.objects.filter(pk=stock.pk).update(reserved=-1)
    # Shipping more than is reserved would leave reserved above on hand.
    with refused("stock_reserved_within_on_hand"):
        Stock.objects.filter(pk=stock.pk).update(on_hand=F("on_hand") - 2)
    Stock.objects.filter(pk=stock.pk).update(reserved=F("reserved") + 1)
    assert Stock.objects.get(pk=stock.pk).available == 0


def test_a_stock_movement_happens_once_per_source(in_alpha: Brand) -> None:
    item = sku()
    StockMovement.objects.create(sku=item, kind=StockMovementKind.RELEASE, reserved_delta=-2, source="line:7")
    with refused("stock_movement_once_per_source"):
        StockMovement.objects.create(sku=item, kind=StockMovementKind.RELEASE, reserved_delta=-2, source="line:7")
    # The same line's reservation is another movement.
    StockMovement.objects.create(sku=item, kind=StockMovementKind.RESERVE, reserved_delta=2, source="line:7")


@pytest.mark.parametrize(
    ("kind", "on_hand_delta", "reserved_delta"),
    [
        (StockMovementKind.RESERVE, 0, -1),
        (StockMovementKind.RESERVE, 1, 1),
        (StockMovementKind.RELEASE, 0, 1),
        (StockMovementKind.SHIP, -2, -1),
        (StockMovementKind.SHIP, 0, 0),
        (StockMovementKind.INBOUND, -1, 0),
        (StockMovementKind.ADJUST, 0, 0),
        (StockMovementKind.RESTOCK, 1, 1),
    ],
)
def test_a_stock_movement_moves_what_its_kind_says(
    in_alpha: Brand, kind: str, on_hand_delta: int, reserved_delta: int
) -> None:
    with refused("stock_movement_deltas_match_kind"):
        StockMovement.objects.create(
            sku=sku(), kind=kind, on_hand_delta=on_hand_delta, reserved_delta=reserved_delta, source="x:1"
        )


def test_prices_are_not_negative_and_a_level_has_one_price_per_sku(in_alpha: Brand) -> None:
    item = sku()
    with refused("sku_prices_not_negative"):
        Sku.objects.filter(pk=item.pk).update(price_fen=-1)
    level = MemberLevel.objects.create(name="金卡", rank=2, min_points=1000)
    SkuLevelPrice.objects.create(sku=item, level=level, price_fen=9000)
    with refused("sku_level_price_unique"):
        SkuLevelPrice.objects.create(sku=item, level=level, price_fen=8000)
    with refused("sku_level_price_not_negative"):
        SkuLevelPrice.objects.create(sku=sku(), level=level, price_fen=-1)


def test_category_names_are_unique_per_parent(in_alpha: Brand) -> None:
    top = Category.objects.create(name="酱香")
    with refused("category_name_unique"):
        Category.objects.create(name="酱香")  # two top categories: NULL parents are not distinct
    Category.objects.create(name="酱香", parent=top)
    with refused("category_name_unique"):
        Category.objects.create(name="酱香", parent=top)
    with refused("category_not_own_parent"):
        Category.objects.filter(pk=top.pk).update(parent=top.pk)


# --- members ----------------------------------------------------------------------------------------


def address(owner: Member, **fields: Any) -> Address:
    values: dict[str, Any] = {
        "member": owner,
        "receiver_name": "张三",
        "phone": "13800138000",
        "region_code": "520102",
        "detail": "遵义路 1 号",
    }
    values.update(fields)
    return Address.objects.create(**values)


def test_a_member_has_one_default_address(in_alpha: Brand) -> None:
    owner = member()
    address(owner, is_default=True)
    address(owner)
    with refused("address_one_default"):
        address(owner, is_default=True)
    address(member(), is_default=True)  # another member's default


@pytest.mark.parametrize(
    ("fields", "constraint"),
    [
        ({"region_code": "52010"}, "address_region_code"),
        ({"region_code": "52010x"}, "address_region_code"),
        ({"phone": "call me"}, "address_phone"),
        ({"receiver_name": ""}, "address_receiver_and_detail"),
        ({"postal_code": "5500"}, "address_postal_code"),
    ],
)
def test_an_address_is_well_formed(in_alpha: Brand, fields: dict[str, Any], constraint: str) -> None:
    with refused(constraint):
        address(member(), **fields)


def test_member_levels_and_tags(in_alpha: Brand) -> None:
    with refused("member_level_has_threshold"):
        MemberLevel.objects.create(name="无门槛", rank=1)
    with refused("member_level_price_percent"):
        MemberLevel.objects.create(name="白送", rank=1, min_spend_fen=0, price_percent=0)
    with refused("member_level_thresholds_not_negative"):
        MemberLevel.objects.create(name="负数", rank=1, min_points=-1)
    level = MemberLevel.objects.create(name="银卡", rank=1, min_spend_fen=100_000, price_percent=95)
    Member.objects.filter(pk=member().pk).update(level=level)

    tag = MemberTag.objects.create(name="高价值")
    someone = member()
    MemberTagging.objects.create(member=someone, tag=tag)
    with refused("member_tagging_unique"):
        MemberTagging.objects.create(member=someone, tag=tag)
    with refused("member_tag_rule_matches_kind"):
        MemberTag.objects.create(name="空规则", kind=TagKind.RULE)
    with refused("member_tag_rule_matches_kind"):
        MemberTag.objects.create(name="手动有规则", kind=TagKind.MANUAL, rule={"min_orders": 3})
    MemberTag.objects.create(name="复购", kind=TagKind.RULE, rule={"min_orders": 3})


def test_a_cart_holds_a_sku_once(in_alpha: Brand) -> None:
    owner, item = member(), sku()
    CartItem.objects.create(member=owner, sku=item, quantity=2)
    with refused("cart_item_once_per_sku"):
        CartItem.objects.create(member=owner, sku=item)
    with refused("cart_item_quantity"):
        CartItem.objects.create(member=owner, sku=sku(), quantity=0)


# --- orders -----------------------------------------------------------------------------------------


def test_order_numbers_are_unique_and_well_formed(in_alpha: Brand) -> None:
    first = order()
    with refused("(number)"):
        order(number=first.number)
    with refused("order_number_format"):
        order(number="B2026-0001")


def test_a_checkout_submission_makes_one_order(in_alpha: Brand) -> None:
    buyer = member()
    order(buyer, client_token="k-1")
    with refused("order_once_per_client_token"):
        order(buyer, client_token="k-1")
    order(buyer)  # no token: no constraint
    order(buyer)
    order(member(), client_token="k-1")  # another member's token


@pytest.mark.parametrize(
    ("fields", "constraint"),
    [
        ({"items_fen": 10_000, "shipping_fen": 1000, "total_fen": 10_000}, "order_total_adds_up"),
        ({"items_fen": 10_000, "shipping_fen": 0, "total_fen": 10_001}, "order_total_adds_up"),
        ({"items_fen": -1, "total_fen": -1}, "order_amounts_not_negative"),
        ({"points_total": -5}, "order_amounts_not_negative"),
        ({"discount_fen": 500, "total_fen": 9500}, "order_discount_needs_coupon"),
        ({"kind": OrderKind.POINTS_MALL}, "order_mall_costs_points"),
        ({"kind": "flash_sale"}, "order_kind_valid"),
        ({"status": "lost"}, "order_status_valid"),
    ],
)
def test_order_money_adds_up(in_alpha: Brand, fields: dict[str, Any], constraint: str) -> None:
    with refused(constraint):
        order(**fields)


def test_a_discount_never_exceeds_the_items(in_alpha: Brand) -> None:
    coupon = member_coupon(status=CouponStatus.AVAILABLE)
    with refused("order_amounts_not_negative"):
        order(coupon=coupon, items_fen=1000, discount_fen=2000, shipping_fen=1000, total_fen=0)
    order(coupon=coupon, items_fen=1000, discount_fen=1000, total_fen=0)


def test_refunds_never_exceed_what_was_paid(in_alpha: Brand) -> None:
    unpaid = order()
    with refused("order_refunds_only_when_paid"):
        Order.objects.filter(pk=unpaid.pk).update(refund_booked_fen=100)
    done = order(**paid())
    with refused("order_refunds_within_total"):
        Order.objects.filter(pk=done.pk).update(refund_booked_fen=F("total_fen") + 1)
    with refused("order_refunds_within_total"):
        # More back than was booked.
        Order.objects.filter(pk=done.pk).update(refunded_fen=100, refund_status=RefundStatus.PARTIAL)
    Order.objects.filter(pk=done.pk).update(refund_booked_fen=F("total_fen"))
    Order.objects.filter(pk=done.pk).update(refunded_fen=F("total_fen"), refund_status=RefundStatus.FULL)


@pytest.mark.parametrize(
    ("refunded_fen", "refund_status"),
    [(0, RefundStatus.PARTIAL), (0, RefundStatus.FULL), (3000, RefundStatus.NONE), (3000, RefundStatus.FULL)],
)
def test_the_refund_status_agrees_with_the_amounts(in_alpha: Brand, refunded_fen: int, refund_status: str) -> None:
    done = order(**paid(refund_booked_fen=10_000))
    with refused("order_refund_status_matches_amounts"):
        Order.objects.filter(pk=done.pk).update(refunded_fen=refunded_fen, refund_status=refund_status)


@pytest.mark.parametrize(
    ("fields", "constraint"),
    [
        ({"pay_by": None}, "order_pending_is_unpaid_with_deadline"),
        ({"payment_status": PaymentStatus.PAID, "paid_at": timezone.now()}, "order_pending_is_unpaid_with_deadline"),
        ({"status": OrderStatus.AWAITING_SHIPMENT}, "order_fulfilment_needs_payment"),
        (
            {"status": OrderStatus.CANCELLED, "cancelled_at": timezone.now(), "cancel_reason": CancelReason.TIMEOUT},
            "order_unpaid_is_pending",
        ),
        ({"status": OrderStatus.CANCELLED, "payment_status": PaymentStatus.CLOSED}, "order_cancelled_at"),
        (paid(status=OrderStatus.SHIPPED, shipped_at=timezone.now()), "order_shipped_has_deadline"),
        (paid(status=OrderStatus.RECEIVED, received_at=timezone.now()), "order_received_has_deadline"),
        (
            paid(
                status=OrderStatus.COMPLETED,
                received_at=timezone.now(),
                after_sales_until=timezone.now(),
            ),
            "order_completed_at",
        ),
        (paid(paid_at=None), "order_paid_at"),
        (paid(status=OrderStatus.AWAITING_GROUP), "order_awaiting_group_is_group_buy"),
        (paid(status=OrderStatus.AWAITING_PICKUP), "order_pickup_is_pickup"),
        (
            {
                "status": OrderStatus.AWAITING_SHIPMENT,
                "payment_status": PaymentStatus.CLOSED,
            },
            "order_closed_is_cancelled",
        ),
    ],
)
def test_the_three_states_agree(in_alpha: Brand, fields: dict[str, Any], constraint: str) -> None:
    with refused(constraint):
        order(**fields)


def test_each_state_with_its_times_is_accepted(in_alpha: Brand) -> None:
    now = timezone.now()
    order(status=OrderStatus.CANCELLED, payment_status=PaymentStatus.CLOSED, cancelled_at=now, cancel_reason="timeout")
    order(**paid(kind=OrderKind.GROUP_BUY, status=OrderStatus.AWAITING_GROUP))
    order(**paid(status=OrderStatus.SHIPPED, shipped_at=now, auto_receive_at=now + timedelta(days=10)))
    order(**paid(status=OrderStatus.RECEIVED, received_at=now, after_sales_until=now + timedelta(days=7)))
    order(**paid(status=OrderStatus.COMPLETED, received_at=now, after_sales_until=now, completed_at=now))
    order(**paid(status=OrderStatus.CANCELLED, cancelled_at=now, cancel_reason=CancelReason.GROUP_FAILED))


def test_an_express_order_has_an_address_and_a_pickup_order_a_store(in_alpha: Brand) -> None:
    with refused("order_delivery_details"):
        order(address_detail="")
    with refused("order_delivery_details"):
        order(region_code="52")
    with refused("order_delivery_details"):
        order(delivery=Delivery.PICKUP)
    shop = store()
    with refused("order_delivery_details"):
        order(delivery=Delivery.PICKUP, pickup_store=shop, pickup_code="12ab")
    with refused("order_delivery_details"):
        order(delivery=Delivery.PICKUP, pickup_store=shop)  # NULL code: a CHECK must not let NULL through
    with refused("order_delivery_details"):
        order(pickup_store=shop, pickup_code="123456789012")  # express with a pickup store
    first = order(delivery=Delivery.PICKUP, pickup_store=shop, pickup_code="123456789012", receiver_name="")
    with refused("(pickup_code)"):
        order(delivery=Delivery.PICKUP, pickup_store=shop, pickup_code=first.pickup_code)


def test_an_order_names_at_most_two_different_affiliates(in_alpha: Brand) -> None:
    upline = affiliate()
    direct = affiliate(parent=upline)
    with refused("order_affiliate_levels"):
        order(affiliate_l2=upline)
    with refused("order_affiliate_levels"):
        order(affiliate_l1=direct, affiliate_l2=direct)
    order(affiliate_l1=direct, affiliate_l2=upline)
    order(affiliate_l1=direct)


@pytest.mark.parametrize(
    ("fields", "constraint"),
    [
        ({"subtotal_fen": 9_000, "paid_fen": 9_000}, "order_line_subtotal_adds_up"),
        ({"quantity": 2}, "order_line_subtotal_adds_up"),
        ({"unit_points": 100}, "order_line_subtotal_adds_up"),
        ({"quantity": 0, "subtotal_fen": 0, "paid_fen": 0}, "order_line_prices_not_negative"),
        ({"discount_fen": 500}, "order_line_paid_adds_up"),
        ({"discount_fen": 10_001, "paid_fen": -1}, "order_line_paid_adds_up"),
        ({"refund_quantity": 2}, "order_line_refunds_within_line"),
        ({"refund_fen": 10_001}, "order_line_refunds_within_line"),
        ({"refund_points": 1}, "order_line_refunds_within_line"),
        ({"rate_l1_bp": 6_000, "rate_l2_bp": 5_000}, "order_line_commission_rates"),
        ({"price_source": PriceSource.POINTS_MALL}, "order_line_mall_item_matches_price"),
    ],
)
def test_an_order_line_snapshot_adds_up(in_alpha: Brand, fields: dict[str, Any], constraint: str) -> None:
    with refused(constraint):
        line(order(), **fields)


def test_an_order_has_a_sku_once(in_alpha: Brand) -> None:
    of, item = order(), sku()
    line(of, item)
    with refused("order_line_once_per_sku"):
        line(of, item)
    line(of, sku(), quantity=3, unit_price_fen=9_000, subtotal_fen=27_000, discount_fen=1_000, paid_fen=26_000)


def test_an_order_event_names_a_real_transition(in_alpha: Brand) -> None:
    of = order()
    OrderEvent.objects.create(
        order=of, kind=OrderEventKind.PAID, field="payment_status", from_state="unpaid", to_state="paid", actor="wechat"
    )
    OrderEvent.objects.create(order=of, kind=OrderEventKind.NOTE, actor="staff:owner", data={"text": "加急"})
    with refused("order_event_transition"):
        OrderEvent.objects.create(
            order=of, kind=OrderEventKind.PAID, field="status", from_state="paid", to_state="paid", actor="wechat"
        )
    with refused("order_event_transition"):
        OrderEvent.objects.create(order=of, kind=OrderEventKind.CANCELLED, to_state="cancelled", actor="system:sweep")
    with refused("order_event_transition"):
        OrderEvent.objects.create(
            order=of, kind=OrderEventKind.PAID, field="kind", from_state="a", to_state="b", actor="x"
        )
    with refused("order_event_actor"):
        OrderEvent.objects.create(order=of, kind=OrderEventKind.NOTE, actor="")


def test_a_parcel_is_recorded_once(in_alpha: Brand) -> None:
    of = order(**paid())
    Shipment.objects.create(order=of, carrier_code="SF", carrier_name="顺丰", tracking_no="SF1234567890")
    with refused("shipment_once_per_order"):
        Shipment.objects.create(order=of, carrier_code="SF", carrier_name="顺丰", tracking_no="SF1234567890")
    with refused("shipment_tracking_format"):
        Shipment.objects.create(order=of, carrier_code="SF", carrier_name="顺丰", tracking_no="单号")


def after_sale(of: Order, seq: int = 1, **fields: Any) -> AfterSale:
    values: dict[str, Any] = {
        "number": f"{of.number}A{seq:02d}",
        "order": of,
        "kind": AfterSaleKind.REFUND_ONLY,
        "reason": AfterSaleReason.DAMAGED,
        "amount_fen": 5_000,
    }
    values.update(fields)
    return AfterSale.objects.create(**values)


def test_an_order_has_one_open_after_sale_at_a_time(in_alpha: Brand) -> None:
    of = order(**paid())
    first = after_sale(of)
    with refused("after_sale_one_open_per_order"):
        after_sale(of, 2)
    AfterSale.objects.filter(pk=first.pk).update(status=AfterSaleStatus.CANCELLED, finished_at=timezone.now())
    after_sale(of, 2)


@pytest.mark.parametrize(
    ("fields", "constraint"),
    [
        ({"amount_fen": 0}, "after_sale_amount"),
        ({"status": AfterSaleStatus.AWAITING_RETURN}, "after_sale_return_steps_need_return"),
        ({"kind": AfterSaleKind.RETURN_REFUND, "status": AfterSaleStatus.RETURNED}, "after_sale_returned_has_tracking"),
        ({"status": AfterSaleStatus.REFUNDED}, "after_sale_finished_at"),
        ({"number": "A01"}, "after_sale_number_format"),
    ],
)
def test_an_after_sale_is_consistent(in_alpha: Brand, fields: dict[str, Any], constraint: str) -> None:
    with refused(constraint):
        after_sale(order(**paid()), **fields)


# --- payments and refunds ---------------------------------------------------------------------------


def payment(of: Order, attempt: int = 1, **fields: Any) -> Payment:
    values: dict[str, Any] = {
        "out_trade_no": f"{of.number}P{attempt:02d}",
        "order": of,
        "amount_fen": of.total_fen,
        "payer_openid": "o-payer",
    }
    values.update(fields)
    return Payment.objects.create(**values)


def succeeded(transaction_id: str, status: str = PaymentRecordStatus.PAID) -> dict[str, Any]:
    return {"status": status, "transaction_id": transaction_id, "paid_at": timezone.now()}


def test_an_order_is_paid_by_at_most_one_payment(in_alpha: Brand) -> None:
    of = order(**paid())
    payment(of, 1, **succeeded("4200000001"))
    with refused("payment_one_paid_per_order"):
        payment(of, 2, **succeeded("4200000002"))
    # A second success is recorded as surplus (to be refunded), not as paying the order again.
    payment(of, 2, **succeeded("4200000002", PaymentRecordStatus.SURPLUS))
    with refused("payment_transaction_unique"):
        payment(of, 3, **succeeded("4200000002", PaymentRecordStatus.SURPLUS))
    with refused("(out_trade_no)"):
        payment(of, 1)


@pytest.mark.parametrize(
    ("fields", "constraint"),
    [
        ({"amount_fen": 0}, "payment_amount_positive"),
        ({"out_trade_no": "20261124P01"}, "payment_number_format"),
        ({"status": PaymentRecordStatus.PAID}, "payment_paid_has_transaction"),
        ({"status": PaymentRecordStatus.SURPLUS, "transaction_id": "42"}, "payment_paid_has_transaction"),
        ({"status": PaymentRecordStatus.CLOSED}, "payment_closed_at"),
    ],
)
def test_a_payment_is_well_formed(in_alpha: Brand, fields: dict[str, Any], constraint: str) -> None:
    with refused(constraint):
        payment(order(), **fields)


def refund(of: Order, seq: int = 1, **fields: Any) -> Refund:
    values: dict[str, Any] = {
        "refund_no": f"{of.number}R{seq:02d}",
        "order": of,
        "reason": RefundReason.MANUAL,
        "amount_fen": 1000,
        "created_by": "staff:owner",
    }
    values.update(fields)
    return Refund.objects.create(**values)


def test_a_refund_number_is_used_once(in_alpha: Brand) -> None:
    of = order(**paid())
    pay = payment(of, **succeeded("4200000011"))
    refund(of, 1, payment=pay)
    with refused("(refund_no)"):
        refund(of, 1, payment=pay)
    with refused("refund_number_format"):
        refund(of, 2, payment=pay, refund_no=f"{of.number}-2")
    refund(of, 2, payment=pay, provider_refund_id="50300000001")
    with refused("refund_provider_id_unique"):
        refund(of, 3, payment=pay, provider_refund_id="50300000001")


def test_a_failed_team_refunds_each_order_once(in_alpha: Brand) -> None:
    of = order(**paid(kind=OrderKind.GROUP_BUY, status=OrderStatus.AWAITING_GROUP))
    pay = payment(of, **succeeded("4200000021"))
    refund(of, 1, payment=pay, reason=RefundReason.GROUP_FAILED, amount_fen=of.total_fen)
    with refused("refund_group_failed_once"):
        refund(of, 2, payment=pay, reason=RefundReason.GROUP_FAILED, amount_fen=of.total_fen)


def test_a_surplus_payment_is_refunded_once(in_alpha: Brand) -> None:
    of = order(**paid())
    surplus = payment(of, 2, **succeeded("4200000031", PaymentRecordStatus.SURPLUS))
    refund(of, 1, payment=surplus, reason=RefundReason.SURPLUS_PAYMENT, amount_fen=of.total_fen)
    with refused("refund_surplus_once"):
        refund(of, 2, payment=surplus, reason=RefundReason.SURPLUS_PAYMENT, amount_fen=of.total_fen)


def test_an_after_sale_has_one_refund(in_alpha: Brand) -> None:
    of = order(**paid())
    pay = payment(of, **succeeded("4200000041"))
    request = after_sale(of)
    refund(of, 1, payment=pay, reason=RefundReason.AFTER_SALE, after_sale=request)
    with refused("(after_sale_id)"):
        refund(of, 2, payment=pay, reason=RefundReason.AFTER_SALE, after_sale=request)


@pytest.mark.parametrize(
    ("fields", "constraint"),
    [
        ({"amount_fen": 0, "points": 0}, "refund_amount"),
        ({"amount_fen": -100}, "refund_amount"),
        ({"amount_fen": 100}, "refund_cash_names_payment"),
        ({"amount_fen": 0, "points": 100, "with_payment": True}, "refund_cash_names_payment"),
        ({"reason": RefundReason.AFTER_SALE, "with_payment": True}, "refund_after_sale_matches_reason"),
        ({"status": RefundRecordStatus.SUCCEEDED, "with_payment": True}, "refund_finished_at"),
        (
            {"reason": RefundReason.SURPLUS_PAYMENT, "points": 10, "with_payment": True},
            "refund_surplus_is_cash",
        ),
    ],
)
def test_a_refund_is_well_formed(in_alpha: Brand, fields: dict[str, Any], constraint: str) -> None:
    of = order(**paid(kind=OrderKind.POINTS_MALL, points_total=500))
    if fields.pop("with_payment", False):
        fields["payment"] = payment(of, **succeeded(f"42000001{_n()}"))
    with refused(constraint):
        refund(of, **fields)


# --- coupons ----------------------------------------------------------------------------------------


def template(**fields: Any) -> CouponTemplate:
    values: dict[str, Any] = {
        "name": "满200减20",
        "kind": CouponKind.AMOUNT_OFF,
        "amount_off_fen": 2_000,
        "threshold_fen": 20_000,
        "validity": CouponValidity.RELATIVE,
        "valid_days": 30,
    }
    values.update(fields)
    return CouponTemplate.objects.create(**values)


def member_coupon(
    owner: Member | None = None, of: CouponTemplate | None = None, seq: int = 1, **fields: Any
) -> MemberCoupon:
    now = timezone.now()
    values: dict[str, Any] = {
        "template": of or template(),
        "member": owner or member(),
        "seq": seq,
        "valid_from": now,
        "valid_until": now + timedelta(days=30),
    }
    values.update(fields)
    return MemberCoupon.objects.create(**values)


def test_a_coupon_template_never_issues_more_than_its_quantity(in_alpha: Brand) -> None:
    limited = template(total_quantity=2, issued=1)
    CouponTemplate.objects.filter(pk=limited.pk).update(issued=F("issued") + 1)
    with refused("coupon_template_within_quantity"):
        CouponTemplate.objects.filter(pk=limited.pk).update(issued=F("issued") + 1)
    unlimited = template()
    CouponTemplate.objects.filter(pk=unlimited.pk).update(issued=1_000_000)


@pytest.mark.parametrize(
    ("fields", "constraint"),
    [
        ({"amount_off_fen": 0}, "coupon_template_value"),
        ({"percent_off": 10}, "coupon_template_value"),
        ({"kind": CouponKind.PERCENT_OFF, "amount_off_fen": 0, "percent_off": 100}, "coupon_template_value"),
        ({"kind": CouponKind.PERCENT_OFF, "percent_off": 20}, "coupon_template_value"),
        ({"valid_days": None}, "coupon_template_validity"),
        (
            {"validity": CouponValidity.FIXED, "valid_days": None, "valid_from": timezone.now()},
            "coupon_template_validity",
        ),
        ({"valid_from": timezone.now()}, "coupon_template_validity"),
        (
            {
                "validity": CouponValidity.FIXED,
                "valid_days": None,
                "valid_from": timezone.now(),
                "valid_until": timezone.now() - timedelta(days=1),
            },
            "coupon_template_validity",
        ),
        ({"per_member_limit": 0}, "coupon_template_member_limit"),
        ({"threshold_fen": -1}, "coupon_template_threshold"),
        (
            {"claim_starts_at": timezone.now(), "claim_ends_at": timezone.now() - timedelta(hours=1)},
            "coupon_template_claim_window",
        ),
    ],
)
def test_a_coupon_template_is_consistent(in_alpha: Brand, fields: dict[str, Any], constraint: str) -> None:
    with refused(constraint):
        template(**fields)


def test_a_percent_off_coupon_with_a_cap_is_accepted(in_alpha: Brand) -> None:
    template(kind=CouponKind.PERCENT_OFF, amount_off_fen=0, percent_off=20, max_discount_fen=5_000)


def test_concurrent_issues_race_on_the_members_coupon_number(in_alpha: Brand) -> None:
    owner, of = member(), template(per_member_limit=2)
    member_coupon(owner, of, 1)
    with refused("member_coupon_seq_unique"):
        member_coupon(owner, of, 1)
    member_coupon(owner, of, 2)
    with refused("member_coupon_seq_positive"):
        member_coupon(owner, of, 0)


def test_an_issuance_by_source_is_idempotent(in_alpha: Brand) -> None:
    owner = member()
    member_coupon(owner, source="claim:12")
    with refused("member_coupon_once_per_source"):
        member_coupon(owner, source="claim:12")
    member_coupon(owner)  # blank sources do not collide
    member_coupon(owner)


def test_a_coupon_code_is_unique_and_well_formed(in_alpha: Brand) -> None:
    first = member_coupon()
    with refused("(code)"):
        member_coupon(code=first.code)
    with refused("member_coupon_code_format"):
        member_coupon(code="0000OOOO1111IIII")


@pytest.mark.parametrize(
    ("fields", "constraint"),
    [
        ({"status": CouponStatus.RESERVED}, "member_coupon_order_matches_status"),
        ({"status": CouponStatus.USED, "with_order": True}, "member_coupon_order_matches_status"),
        ({"status": CouponStatus.AVAILABLE, "with_order": True}, "member_coupon_order_matches_status"),
        ({"status": CouponStatus.EXPIRED}, "member_coupon_order_matches_status"),
        ({"valid_until": timezone.now() - timedelta(days=1)}, "member_coupon_validity"),
    ],
)
def test_a_member_coupon_status_agrees_with_its_order(in_alpha: Brand, fields: dict[str, Any], constraint: str) -> None:
    if fields.pop("with_order", False):
        fields["order"] = order()
    with refused(constraint):
        member_coupon(**fields)


def test_a_coupon_is_reserved_then_used_by_an_order(in_alpha: Brand) -> None:
    coupon = member_coupon()
    of = order(coupon=coupon, discount_fen=2_000, total_fen=8_000)
    now = timezone.now()
    MemberCoupon.objects.filter(pk=coupon.pk, status=CouponStatus.AVAILABLE).update(
        status=CouponStatus.RESERVED, order=of, reserved_at=now
    )
    MemberCoupon.objects.filter(pk=coupon.pk, status=CouponStatus.RESERVED).update(
        status=CouponStatus.USED, used_at=now
    )
    with refused("member_coupon_order_matches_status"):
        MemberCoupon.objects.filter(pk=coupon.pk).update(status=CouponStatus.AVAILABLE)


# --- points mall ------------------------------------------------------------------------------------


def test_mall_goods_cost_points_and_never_sell_past_their_quantity(in_alpha: Brand) -> None:
    item = MallItem.objects.create(sku=sku(), title="品鉴杯", points_price=500, quantity=1)
    MallItem.objects.filter(pk=item.pk).update(sold=F("sold") + 1)
    with refused("mall_item_within_quantity"):
        MallItem.objects.filter(pk=item.pk).update(sold=F("sold") + 1)
    with refused("mall_item_prices"):
        MallItem.objects.create(sku=sku(), title="白送", points_price=0)
    with refused("mall_item_prices"):
        MallItem.objects.create(sku=sku(), title="倒贴", points_price=10, cash_price_fen=-1)
    with refused("mall_item_delivery"):
        MallItem.objects.create(sku=sku(), title="拿不到", points_price=10, allow_delivery=False)


def test_a_points_mall_line_names_its_listing(in_alpha: Brand) -> None:
    item = sku()
    listing = MallItem.objects.create(sku=item, title="品鉴杯", points_price=500, cash_price_fen=990)
    of = order(kind=OrderKind.POINTS_MALL, items_fen=990, total_fen=990, points_total=500)
    line(
        of,
        item,
        mall_item=listing,
        price_source=PriceSource.POINTS_MALL,
        list_price_fen=10_000,
        unit_price_fen=990,
        unit_points=500,
        subtotal_fen=990,
        paid_fen=990,
        points_subtotal=500,
    )


# --- group buy --------------------------------------------------------------------------------------


def campaign(**fields: Any) -> GroupBuyCampaign:
    now = timezone.now()
    values: dict[str, Any] = {
        "name": "三人团",
        "sku": sku(),
        "group_price_fen": 8_000,
        "team_size": 3,
        "starts_at": now,
        "ends_at": now + timedelta(days=7),
    }
    values.update(fields)
    return GroupBuyCampaign.objects.create(**values)


def open_team(size: int = 3, **fields: Any) -> GroupBuyTeam:
    now = timezone.now()
    values: dict[str, Any] = {
        "campaign": campaign(team_size=max(size, 2)),
        "leader": member(),
        "status": TeamStatus.OPEN,
        "size": size,
        "seats_taken": 1,
        "seats_paid": 1,
        "opened_at": now,
        "expires_at": now + timedelta(hours=24),
    }
    values.update(fields)
    return GroupBuyTeam.objects.create(**values)


def seat(team: GroupBuyTeam, who: Member, **fields: Any) -> GroupBuySeat:
    of = order(who, kind=OrderKind.GROUP_BUY)
    return GroupBuySeat.objects.create(team=team, member=who, order=of, **fields)


def test_a_member_holds_one_seat_per_team(in_alpha: Brand) -> None:
    team, joiner = open_team(), member()
    first = seat(team, joiner)
    with refused("group_buy_seat_once_per_member"):
        seat(team, joiner)
    # Once that seat is released (its order cancelled unpaid), the member may join again.
    GroupBuySeat.objects.filter(pk=first.pk).update(status=SeatStatus.RELEASED, ended_at=timezone.now())
    seat(team, joiner)
    seat(open_team(), joiner)  # another team


def test_a_team_has_one_leader_and_an_order_one_seat(in_alpha: Brand) -> None:
    team = open_team()
    leader_seat = seat(team, team.leader, is_leader=True, status=SeatStatus.PAID, paid_at=timezone.now())
    with refused("group_buy_seat_one_leader"):
        seat(team, member(), is_leader=True)
    with refused("(order_id)"):
        GroupBuySeat.objects.create(team=open_team(), member=member(), order=leader_seat.order)
    with refused("group_buy_seat_paid_at"):
        seat(team, member(), status=SeatStatus.PAID)


def test_a_team_never_takes_more_seats_than_its_size(in_alpha: Brand) -> None:
    team = open_team(size=2)
    GroupBuyTeam.objects.filter(pk=team.pk).update(seats_taken=F("seats_taken") + 1)
    with refused("group_buy_team_seats_within_size"):
        GroupBuyTeam.objects.filter(pk=team.pk).update(seats_taken=F("seats_taken") + 1)
    with refused("group_buy_team_seats_within_size"):
        GroupBuyTeam.objects.filter(pk=team.pk).update(seats_paid=3)


def test_a_team_succeeds_only_when_every_seat_is_paid(in_alpha: Brand) -> None:
    team = open_team(size=2, seats_taken=2)
    with refused("group_buy_team_succeeded_is_full"):
        GroupBuyTeam.objects.filter(pk=team.pk).update(status=TeamStatus.SUCCEEDED, finished_at=timezone.now())
    GroupBuyTeam.objects.filter(pk=team.pk).update(seats_paid=2)
    GroupBuyTeam.objects.filter(pk=team.pk).update(status=TeamStatus.SUCCEEDED, finished_at=timezone.now())


@pytest.mark.parametrize(
    ("fields", "constraint"),
    [
        ({"expires_at": None}, "group_buy_team_open"),
        ({"seats_paid": 0}, "group_buy_team_open"),
        ({"status": TeamStatus.PENDING, "seats_paid": 0}, "group_buy_team_pending"),
        ({"status": TeamStatus.FAILED}, "group_buy_team_finished_at"),
        ({"size": 1, "seats_taken": 1}, "group_buy_team_size_min"),
    ],
)
def test_a_team_is_consistent(in_alpha: Brand, fields: dict[str, Any], constraint: str) -> None:
    with refused(constraint):
        open_team(**fields)


@pytest.mark.parametrize(
    ("fields", "constraint"),
    [
        ({"team_size": 1}, "group_buy_team_size"),
        ({"group_price_fen": 0}, "group_buy_price_positive"),
        ({"ends_at": timezone.now() - timedelta(days=1)}, "group_buy_window"),
        ({"quantity": 5, "sold": 6}, "group_buy_within_quantity"),
    ],
)
def test_a_group_buy_campaign_is_consistent(in_alpha: Brand, fields: dict[str, Any], constraint: str) -> None:
    with refused(constraint):
        campaign(**fields)


# --- bargaining -------------------------------------------------------------------------------------


def bargain(**fields: Any) -> BargainSession:
    now = timezone.now()
    offer = BargainCampaign.objects.create(
        name="砍到 1 元",
        sku=sku(),
        start_price_fen=10_000,
        floor_price_fen=100,
        max_helps=3,
        starts_at=now,
        ends_at=now + timedelta(days=7),
    )
    values: dict[str, Any] = {
        "campaign": offer,
        "member": member(),
        "start_price_fen": 10_000,
        "floor_price_fen": 100,
        "current_price_fen": 10_000,
        "max_helps": 3,
        "expires_at": now + timedelta(hours=24),
    }
    values.update(fields)
    return BargainSession.objects.create(**values)


def test_a_bargained_price_never_goes_below_the_floor(in_alpha: Brand) -> None:
    session = bargain()
    BargainSession.objects.filter(pk=session.pk).update(
        current_price_fen=F("current_price_fen") - 9_000, helps_count=F("helps_count") + 1
    )
    with refused("bargain_session_price_within_range"):
        BargainSession.objects.filter(pk=session.pk).update(current_price_fen=F("current_price_fen") - 1_000)
    with refused("bargain_session_price_within_range"):
        bargain(current_price_fen=10_001)


def test_the_last_help_reaches_the_floor(in_alpha: Brand) -> None:
    session = bargain(helps_count=2, current_price_fen=500)
    with refused("bargain_session_last_help_reaches_floor"):
        BargainSession.objects.filter(pk=session.pk).update(helps_count=3, current_price_fen=200)
    with refused("bargain_session_helps"):
        BargainSession.objects.filter(pk=session.pk).update(helps_count=4, current_price_fen=100)
    BargainSession.objects.filter(pk=session.pk).update(helps_count=3, current_price_fen=100)


def test_a_friend_helps_once_and_cuts_something(in_alpha: Brand) -> None:
    session, friend = bargain(), member()
    BargainHelp.objects.create(session=session, helper=friend, cut_fen=1)
    with refused("bargain_help_once_per_helper"):
        BargainHelp.objects.create(session=session, helper=friend, cut_fen=300)
    with refused("bargain_help_cut_positive"):
        BargainHelp.objects.create(session=session, helper=member(), cut_fen=0)
    BargainHelp.objects.create(session=bargain(), helper=friend, cut_fen=300)  # another session


def test_a_member_bargains_once_at_a_time_per_campaign(in_alpha: Brand) -> None:
    first = bargain()
    with refused("bargain_session_one_active"):
        bargain(campaign=first.campaign, member=first.member)
    BargainSession.objects.filter(pk=first.pk).update(status=BargainStatus.EXPIRED)
    bargain(campaign=first.campaign, member=first.member)


def test_an_ordered_session_names_its_order(in_alpha: Brand) -> None:
    with refused("bargain_session_order_matches_status"):
        bargain(status=BargainStatus.ORDERED)
    with refused("bargain_session_order_matches_status"):
        bargain(order=order())
    session = bargain(status=BargainStatus.ORDERED, order=order(kind=OrderKind.BARGAIN))
    with refused("(order_id)"):
        bargain(status=BargainStatus.ORDERED, order=session.order)


# --- distribution -----------------------------------------------------------------------------------


def affiliate(parent: Affiliate | None = None, **fields: Any) -> Affiliate:
    values: dict[str, Any] = {
        "member": member(),
        "parent": parent,
        "status": AffiliateStatus.ACTIVE,
        "approved_at": timezone.now(),
    }
    values.update(fields)
    return Affiliate.objects.create(**values)


def commission(
    who: Affiliate, kind: str, amount: int, source: str, from_state: str = "", to_state: str = "", **fields: Any
) -> CommissionEntry:
    return CommissionEntry.objects.create(
        affiliate=who,
        kind=kind,
        amount_fen=amount,
        source=source,
        from_state=from_state,
        to_state=to_state,
        **fields,
    )


def test_commission_goes_at_most_two_levels_up(in_alpha: Brand) -> None:
    top = affiliate()
    middle = affiliate(parent=top)
    bottom = affiliate(parent=middle)
    of = order(**paid(affiliate_l1=bottom, affiliate_l2=middle))
    sold = line(of, rate_l1_bp=1_000, rate_l2_bp=500)
    commission(
        bottom, CommissionKind.ACCRUE, 1_000, f"accrue:{sold.pk}:L1", to_state="pending", order_line=sold, level=1
    )
    commission(middle, CommissionKind.ACCRUE, 500, f"accrue:{sold.pk}:L2", to_state="pending", order_line=sold, level=2)
    with refused("commission_entry_level_1_or_2"):
        commission(
            top, CommissionKind.ACCRUE, 100, f"accrue:{sold.pk}:L3", to_state="pending", order_line=sold, level=3
        )
    with refused("commission_entry_once_per_line_level"):
        commission(
            top, CommissionKind.ACCRUE, 500, f"accrue:{sold.pk}:L2", to_state="pending", order_line=sold, level=2
        )
    # A level without an order line, and an order line without a level.
    with refused("commission_entry_level_1_or_2"):
        commission(top, CommissionKind.ADJUST, 100, "adjust:orphan", to_state="settled", level=1)
    with refused("commission_entry_level_1_or_2"):
        commission(top, CommissionKind.ACCRUE, 100, "accrue:no-level", to_state="pending", order_line=sold)


def test_a_refund_after_settlement_books_a_reversal_out_of_settled(in_alpha: Brand) -> None:
    earner = affiliate()
    of = order(**paid(affiliate_l1=earner))
    sold = line(of, rate_l1_bp=1_000)
    pay = payment(of, **succeeded("4200000051"))
    back = refund(of, payment=pay, amount_fen=10_000)
    moves = [
        (CommissionKind.ACCRUE, "", "pending"),
        (CommissionKind.FREEZE, "pending", "frozen"),
        (CommissionKind.SETTLE, "frozen", "settled"),
    ]
    for kind, src, dst in moves:
        commission(earner, kind, 1_000, f"{kind}:{sold.pk}:L1", src, dst, order_line=sold, level=1)
    commission(
        earner,
        CommissionKind.REVERSE,
        1_000,
        f"reverse:{back.refund_no}:{sold.pk}:L1",
        "settled",
        "",
        order_line=sold,
        level=1,
        refund=back,
    )
    with refused("commission_entry_once_per_source"):
        commission(
            earner,
            CommissionKind.REVERSE,
            1_000,
            f"reverse:{back.refund_no}:{sold.pk}:L1",
            "settled",
            "",
            order_line=sold,
            level=1,
            refund=back,
        )
    with refused("commission_entry_once_per_line_level"):
        commission(
            earner, CommissionKind.SETTLE, 1, f"settle-again:{sold.pk}", "frozen", "settled", order_line=sold, level=1
        )
    entries = CommissionEntry.objects.filter(affiliate=earner)
    settled = sum(e.amount_fen for e in entries if e.to_state == CommissionState.SETTLED) - sum(
        e.amount_fen for e in entries if e.from_state == CommissionState.SETTLED
    )
    assert settled == 0


@pytest.mark.parametrize(
    ("kind", "from_state", "to_state", "links"),
    [
        (CommissionKind.ACCRUE, "settled", "", {"line"}),
        (CommissionKind.ACCRUE, "", "settled", {"line"}),
        (CommissionKind.FREEZE, "pending", "settled", {"line"}),
        (CommissionKind.SETTLE, "pending", "settled", {"line"}),
        (CommissionKind.REVERSE, "settled", "", {"line"}),  # a reversal names its refund
        (CommissionKind.REVERSE, "", "pending", {"line", "refund"}),
        (CommissionKind.WITHDRAW, "pending", "", {"withdrawal"}),
        (CommissionKind.WITHDRAW, "settled", "", set()),
        (CommissionKind.WITHDRAW_RETURN, "", "frozen", {"withdrawal"}),
        (CommissionKind.ADJUST, "", "pending", set()),
        (CommissionKind.ADJUST, "", "", set()),
        (CommissionKind.ACCRUE, "", "pending", {"line", "withdrawal"}),
    ],
)
def test_a_commission_entry_moves_what_its_kind_says(
    in_alpha: Brand, kind: str, from_state: str, to_state: str, links: set[str]
) -> None:
    earner = affiliate()
    of = order(**paid(affiliate_l1=earner))
    fields: dict[str, Any] = {}
    if "line" in links:
        fields.update(order_line=line(of), level=1)
    if "refund" in links:
        fields["refund"] = refund(of, payment=payment(of, **succeeded(f"42000006{_n()}")))
    if "withdrawal" in links:
        fields["withdrawal"] = CommissionWithdrawal.objects.create(affiliate=earner, amount_fen=100)
    with refused("commission_entry_kind_moves"):
        commission(earner, kind, 100, f"x:{_n()}", from_state, to_state, **fields)


def test_commission_amounts_are_positive_movements(in_alpha: Brand) -> None:
    earner = affiliate()
    with refused("commission_entry_amount_positive"):
        commission(earner, CommissionKind.ADJUST, -100, "adjust:1", "", "settled")
    commission(earner, CommissionKind.ADJUST, 100, "adjust:1", "settled", "")


def test_a_withdrawal_moves_out_and_back_once(in_alpha: Brand) -> None:
    earner = affiliate()
    request = CommissionWithdrawal.objects.create(affiliate=earner, amount_fen=500)
    commission(earner, CommissionKind.WITHDRAW, 500, f"withdraw:{request.pk}", "settled", "", withdrawal=request)
    with refused("commission_entry_once_per_withdrawal"):
        commission(earner, CommissionKind.WITHDRAW, 500, f"withdraw-2:{request.pk}", "settled", "", withdrawal=request)
    commission(
        earner, CommissionKind.WITHDRAW_RETURN, 500, f"withdraw-return:{request.pk}", "", "settled", withdrawal=request
    )
    assert request.payout_source == f"commission:{request.pk}"


def test_an_affiliate_has_one_open_withdrawal(in_alpha: Brand) -> None:
    earner = affiliate()
    first = CommissionWithdrawal.objects.create(affiliate=earner, amount_fen=500)
    with refused("commission_withdrawal_one_open"):
        CommissionWithdrawal.objects.create(affiliate=earner, amount_fen=300)
    with refused("commission_withdrawal_finished_at"):
        CommissionWithdrawal.objects.filter(pk=first.pk).update(status=WithdrawalStatus.PAID)
    CommissionWithdrawal.objects.filter(pk=first.pk).update(status=WithdrawalStatus.PAID, finished_at=timezone.now())
    CommissionWithdrawal.objects.create(affiliate=earner, amount_fen=300)
    with refused("commission_withdrawal_positive"):
        CommissionWithdrawal.objects.create(affiliate=affiliate(), amount_fen=0)


def test_the_affiliate_tree_has_no_cycle(in_alpha: Brand) -> None:
    older = affiliate()
    younger = affiliate(parent=older)
    with refused("affiliate_parent_earlier"):
        Affiliate.objects.filter(pk=older.pk).update(parent=younger.pk)
    with refused("affiliate_parent_earlier"):
        Affiliate.objects.filter(pk=older.pk).update(parent=older.pk)
    with refused("(member_id)"):
        affiliate(member=younger.member)
    with refused("affiliate_approved_at"):
        affiliate(approved_at=None)


def test_the_distribution_policy_pays_one_or_two_levels(in_alpha: Brand) -> None:
    with refused("distribution_policy_levels"):
        DistributionPolicy.objects.create(levels=3)
    with refused("distribution_policy_rates"):
        DistributionPolicy.objects.create(levels=1, rate_l1_bp=1_000, rate_l2_bp=500)
    with refused("distribution_policy_rates"):
        DistributionPolicy.objects.create(rate_l1_bp=9_000, rate_l2_bp=2_000)
    DistributionPolicy.objects.create(levels=2, rate_l1_bp=1_000, rate_l2_bp=500)


def test_the_shop_policy_keeps_sane_periods(in_alpha: Brand) -> None:
    with refused("shop_policy_periods"):
        ShopPolicy.objects.create(pay_timeout_minutes=0)
    with refused("shop_policy_fees_not_negative"):
        ShopPolicy.objects.create(shipping_fee_fen=-1)
    assert ShopPolicy.current().pay_timeout_minutes == 30
