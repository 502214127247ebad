"""Orders: the cart, checkout, and the order's transitions (see the commerce.models contract: state
machines, lock order, deadlines, numbers, points sources).

Checkout (`checkout`) runs in one durable transaction, in lock order: the buyer's Member row (it
serialises the member's checkouts, so a resubmitted client_token finds the first order, and the
per-member limits), the points-mall counters (guarded UPDATE of MallItem.sold), the new Order and its
lines, the points debit ("order:<number>"), the coupon (available → reserved), the stock (reserved +=
q, ascending sku id). Any refusal undoes all of it.

Every transition is a conditional UPDATE on the order's state (0 rows ⇒ Conflict order_wrong_state,
nothing changed) plus one OrderEvent per changed field. Those that also move points (cancel,
complete) lock the buyer's Member row first. Deadlines (pay_by, auto_receive_at, after_sales_until)
are stored on the order; an eta task at the deadline and a periodic sweep both call the same service
(`cancel_due`, `receive_due`, `complete_due`).
"""

from __future__ import annotations

import logging
import secrets
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from django.db import IntegrityError, transaction
from django.db.models import Exists, F, OuterRef, Q, Sum
from django.utils import timezone
from django.utils.translation import gettext as _

from commerce.errors import OrderErrorCode as E
from commerce.models import (
    AFTER_SALE_OPEN,
    SELLABLE_SKU,
    Address,
    AfterSale,
    AfterSaleLine,
    CancelReason,
    CartItem,
    ChannelStaff,
    ChannelStatus,
    Delivery,
    MallItem,
    Member,
    MemberLevel,
    Order,
    OrderEvent,
    OrderEventField,
    OrderEventKind,
    OrderKind,
    OrderLine,
    OrderStatus,
    PaymentStatus,
    PointsKind,
    PriceSource,
    Refund,
    RefundReason,
    RefundStatus,
    Shipment,
    ShopPolicy,
    Sku,
    StockMovement,
    StockMovementKind,
    Store,
)
from commerce.models.orders import MAX_CART_QUANTITY
from commerce.services import catalog, coupons, points
from commerce.services.catalog import StockLine
from tenants.db import connection
from tenants.errors import Conflict, JiumaError, NotFound

log = logging.getLogger(__name__)

MAX_LINES = 50  # per order and per cart
_SHANGHAI_NUMBER_FORMAT = "%Y%m%d%H%M%S"


# --- numbers ------------------------------------------------------------------------------------


def new_order_number(now: datetime) -> str:
    """YYYYMMDDHHMMSS (Shanghai) + 6 random digits."""
    return timezone.localtime(now).strftime(_SHANGHAI_NUMBER_FORMAT) + f"{secrets.randbelow(1_000_000):06d}"


def new_pickup_code() -> str:
    return f"{secrets.randbelow(10**12):012d}"


# --- events -------------------------------------------------------------------------------------


def _event(
    order: Order,
    kind: str,
    actor: str,
    now: datetime,
    *,
    field_name: str = "",
    from_state: str = "",
    to_state: str = "",
    data: dict[str, Any] | None = None,
) -> OrderEvent:
    return OrderEvent.objects.create(
        order=order,
        kind=kind,
        field=field_name,
        from_state=from_state,
        to_state=to_state,
        actor=actor[:160],
        at=now,
        data=data or {},
    )


def _transition_events(
    order: Order, kind: str, actor: str, now: datetime, changes: dict[str, tuple[str, str]], data: dict[str, Any] | None
) -> None:
    for field_name, (old, new) in changes.items():
        _event(order, kind, actor, now, field_name=field_name, from_state=old, to_state=new, data=data)


def _wrong_state(order_id: int, action: str) -> JiumaError:
    current = Order.objects.filter(pk=order_id).values_list("status", flat=True).first()
    if current is None:
        return NotFound(E.ORDER_NOT_FOUND, _("订单不存在。"))
    label = OrderStatus(current).label
    return Conflict(
        E.WRONG_STATE,
        _("订单当前状态（%(state)s）不能%(action)s。") % {"state": label, "action": action},
        fields={"status": current},
    )


def _get(order_id: int) -> Order:
    order = Order.objects.filter(pk=order_id).first()
    if order is None:
        raise NotFound(E.ORDER_NOT_FOUND, _("订单不存在。"))
    return order


def _lock_member(member_id: int) -> Member:
    member = Member.objects.select_for_update().filter(pk=member_id).first()
    if member is None:
        raise NotFound("member_not_found", _("会员不存在。"))
    return member


def _enqueue(task_name: str, order_id: int, eta: datetime | None) -> None:
    """Send a deadline task (on commit); the periodic sweep picks up whatever the broker missed."""
    try:
        from commerce import tasks

        task = getattr(tasks, task_name)
        task.apply_async(args=[order_id], eta=eta)
    except Exception:
        log.warning("could not enqueue %s for order %s; the sweep will", task_name, order_id, exc_info=True)


def _recompute_level_later(member_id: int) -> None:
    def run() -> None:
        try:
            from commerce.services import members_levels

            members_levels.recompute_level(member_id)
        except Exception:  # the next payment, refund or the sweep recomputes it
            log.warning("member %s: level recompute failed", member_id, exc_info=True)

    transaction.on_commit(run)


# --- cart ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class CartLine:
    sku_id: int
    name: str
    quantity: int
    is_selected: bool
    unit_price_fen: int
    price_source: str
    list_price_fen: int
    available: int
    sellable: bool


def _check_quantity(quantity: int, *, cap: int = MAX_CART_QUANTITY) -> None:
    if not isinstance(quantity, int) or isinstance(quantity, bool) or not 1 <= quantity <= cap:
        raise JiumaError(
            E.INVALID_QUANTITY,
            _("数量须在 1 到 %(cap)d 之间。") % {"cap": cap},
            fields={"quantity": str(quantity)[:20]},
        )


def _sellable(sku_id: int) -> Sku:
    sku = Sku.objects.select_related("product").filter(SELLABLE_SKU, pk=sku_id).first()
    if sku is None:
        raise JiumaError(E.SKU_NOT_SELLABLE, _("该商品已下架或不存在。"), fields={"sku_id": sku_id})
    return sku


_CART_ADD = """
INSERT INTO commerce_cartitem (member_id, sku_id, quantity, is_selected, added_at)
VALUES (%s, %s, %s, true, %s)
ON CONFLICT (member_id, sku_id) DO UPDATE
SET quantity = LEAST(commerce_cartitem.quantity + EXCLUDED.quantity, %s), is_selected = true
RETURNING quantity
"""


def cart_add(member_id: int, sku_id: int, quantity: int = 1, *, now: datetime | None = None) -> int:
    """Put a SKU in the cart (again: the quantity adds up, capped); returns the cart quantity."""
    _check_quantity(quantity)
    _sellable(sku_id)
    now = now or timezone.now()
    with transaction.atomic(durable=True):
        if (
            not CartItem.objects.filter(member_id=member_id, sku_id=sku_id).exists()
            and CartItem.objects.filter(member_id=member_id).count() >= MAX_LINES
        ):
            raise Conflict(E.CART_FULL, _("购物车最多放 %(n)d 种商品。") % {"n": MAX_LINES})
        with connection.cursor() as cursor:
            cursor.execute(_CART_ADD, [member_id, sku_id, quantity, now, MAX_CART_QUANTITY])
            row = cursor.fetchone()
    return int(row[0])


def cart_set_quantity(member_id: int, sku_id: int, quantity: int) -> None:
    """Set a cart line's quantity (0 removes it)."""
    if quantity == 0:
        cart_remove(member_id, [sku_id])
        return
    _check_quantity(quantity)
    if not CartItem.objects.filter(member_id=member_id, sku_id=sku_id).update(quantity=quantity):
        raise NotFound(E.INVALID_LINE, _("购物车中没有该商品。"))


def cart_select(member_id: int, sku_ids: Sequence[int], *, selected: bool) -> int:
    return CartItem.objects.filter(member_id=member_id, sku_id__in=list(sku_ids)).update(is_selected=selected)


def cart_remove(member_id: int, sku_ids: Sequence[int]) -> int:
    deleted, _rows = CartItem.objects.filter(member_id=member_id, sku_id__in=list(sku_ids)).delete()
    return deleted


def cart_list(member_id: int) -> list[CartLine]:
    """The member's cart with today's prices for their level and what is available."""
    member = Member.objects.select_related("level").get(pk=member_id)
    items = list(CartItem.objects.filter(member_id=member_id).select_related("sku__product", "sku__stock"))
    prices = catalog.unit_prices([item.sku for item in items], member.level)
    lines = []
    for item in items:
        sku = item.sku
        stock = getattr(sku, "stock", None)
        unit, source = prices[sku.pk]
        lines.append(
            CartLine(
                sku_id=sku.pk,
                name=sku.display_name,
                quantity=item.quantity,
                is_selected=item.is_selected,
                unit_price_fen=unit,
                price_source=source,
                list_price_fen=sku.price_fen,
                available=stock.available if stock is not None else 0,
                sellable=sku.is_active and sku.product.is_active and sku.price_fen > 0,
            )
        )
    return lines


# --- checkout -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class LineRequest:
    """What the buyer asks for: a SKU of the shop, or a points-mall item (mall_item_id)."""

    quantity: int
    sku_id: int | None = None
    mall_item_id: int | None = None


@dataclass
class _Draft:
    lines: list[OrderLine] = field(default_factory=list)
    mall_items: dict[int, MallItem] = field(default_factory=dict)


def _merge(lines: Sequence[LineRequest]) -> list[LineRequest]:
    merged: dict[tuple[str, int], int] = {}
    for line in lines:
        if (line.sku_id is None) == (line.mall_item_id is None):
            raise JiumaError(E.INVALID_LINE, _("订单商品无效。"))
        _check_quantity(line.quantity)
        key = ("mall", line.mall_item_id) if line.mall_item_id is not None else ("sku", line.sku_id or 0)
        merged[key] = merged.get(key, 0) + line.quantity
    if not merged:
        raise JiumaError(E.EMPTY, _("请选择要购买的商品。"))
    if len(merged) > MAX_LINES:
        raise JiumaError(E.TOO_MANY_LINES, _("一个订单最多 %(n)d 种商品。") % {"n": MAX_LINES})
    kinds = {kind for kind, _id in merged}
    if len(kinds) > 1:
        raise JiumaError(E.MIXED_MALL_LINES, _("积分兑换商品须单独下单。"))
    result = []
    for (kind, ident), quantity in merged.items():
        _check_quantity(quantity)
        result.append(
            LineRequest(
                quantity, sku_id=ident if kind == "sku" else None, mall_item_id=ident if kind == "mall" else None
            )
        )
    return result


def _shop_lines(requests: list[LineRequest], level: MemberLevel | None) -> _Draft:
    skus = {
        s.pk: s for s in Sku.objects.select_related("product").filter(SELLABLE_SKU, pk__in=[r.sku_id for r in requests])
    }
    missing = [r.sku_id for r in requests if r.sku_id not in skus]
    if missing:
        raise JiumaError(E.SKU_NOT_SELLABLE, _("部分商品已下架或不存在。"), fields={"sku_ids": missing})
    prices = catalog.unit_prices(list(skus.values()), level)
    draft = _Draft()
    for request in requests:
        assert request.sku_id is not None
        sku = skus[request.sku_id]
        unit, source = prices[sku.pk]
        draft.lines.append(_line(sku, request.quantity, unit, source))
    return draft


def _line(
    sku: Sku, quantity: int, unit: int, source: str, *, mall_item: MallItem | None = None, points_each: int = 0
) -> OrderLine:
    subtotal = unit * quantity
    return OrderLine(
        sku=sku,
        mall_item=mall_item,
        sku_name=(mall_item.title if mall_item is not None else sku.display_name)[:200],
        sku_code=sku.code,
        image_url=(sku.image.url if sku.image else "")[:300],
        price_source=source,
        list_price_fen=sku.price_fen,
        unit_price_fen=unit,
        unit_points=points_each,
        quantity=quantity,
        subtotal_fen=subtotal,
        discount_fen=0,
        paid_fen=subtotal,
        points_subtotal=points_each * quantity,
    )


def _mall_lines(requests: list[LineRequest], member_id: int, delivery: str, now: datetime) -> _Draft:
    """Points-mall lines, their counters taken (guarded UPDATE sold + q <= quantity; lock order step 2,
    after the member's row) and their per-member limit checked under the member's lock."""
    items = {
        item.pk: item
        for item in MallItem.objects.select_related("sku__product").filter(pk__in=[r.mall_item_id for r in requests])
    }
    draft = _Draft()
    for request in sorted(requests, key=lambda r: r.mall_item_id or 0):
        item = items.get(request.mall_item_id or 0)
        if (
            item is None
            or not item.is_active
            or (item.starts_at and now < item.starts_at)
            or (item.ends_at and now >= item.ends_at)
            or not item.sku.is_active
        ):
            raise JiumaError(
                E.MALL_ITEM_NOT_AVAILABLE, _("该兑换商品不在兑换期内。"), fields={"mall_item_id": request.mall_item_id}
            )
        if (delivery == Delivery.EXPRESS and not item.allow_delivery) or (
            delivery == Delivery.PICKUP and not item.allow_pickup
        ):
            raise JiumaError(E.INVALID_DELIVERY, _("该兑换商品不支持所选配送方式。"))
        if item.per_member_limit is not None:
            taken = (
                OrderLine.objects.filter(order__member_id=member_id, mall_item=item)
                .exclude(order__status=OrderStatus.CANCELLED)
                .aggregate(n=Sum("quantity"))["n"]
                or 0
            )
            if taken + request.quantity > item.per_member_limit:
                raise Conflict(E.MALL_MEMBER_LIMIT, _("每人限兑 %(n)d 件。") % {"n": item.per_member_limit})
        taken_now = (
            MallItem.objects.filter(pk=item.pk)
            .filter(Q(quantity__isnull=True) | Q(quantity__gte=F("sold") + request.quantity))
            .update(sold=F("sold") + request.quantity)
        )
        if not taken_now:
            raise Conflict(E.MALL_SOLD_OUT, _("该兑换商品已兑完。"), fields={"mall_item_id": item.pk})
        draft.mall_items[item.pk] = item
        draft.lines.append(
            _line(
                item.sku,
                request.quantity,
                item.cash_price_fen,
                PriceSource.POINTS_MALL,
                mall_item=item,
                points_each=item.points_price,
            )
        )
    return draft


def _shipping(policy: ShopPolicy, delivery: str, items_fen: int, level: MemberLevel | None) -> int:
    if delivery != Delivery.EXPRESS:
        return 0
    if level is not None and level.is_active and level.free_shipping:
        return 0
    if policy.free_shipping_threshold_fen and items_fen >= policy.free_shipping_threshold_fen:
        return 0
    return policy.shipping_fee_fen


def reward_points_of(total_fen: int, policy: ShopPolicy, level: MemberLevel | None) -> int:
    """total_fen // 100 × points_per_yuan × (100 + level.extra_points_percent) // 100."""
    extra = level.extra_points_percent if level is not None and level.is_active else 0
    return total_fen // 100 * policy.points_per_yuan * (100 + extra) // 100


def _distribution() -> Any:
    """commerce.services.distribution, if it is there (imported lazily: it imports orders' models)."""
    try:
        from commerce.services import distribution
    except ImportError:
        return None
    return distribution


def _plan_distribution(
    member: Member, lines: list[OrderLine], now: datetime
) -> tuple[int | None, int | None, list[tuple[int, int]]]:
    """The order's affiliates and each line's rates (distribution.plan_for), none without it."""
    distribution = _distribution()
    plan_for = getattr(distribution, "plan_for", None)
    if plan_for is None:
        return None, None, [(0, 0)] * len(lines)
    drafts = [
        distribution.LineDraft(product_id=line.sku.product_id, is_mall=line.mall_item_id is not None) for line in lines
    ]
    plan = plan_for(member, drafts, now=now)
    return plan.affiliate_l1_id, plan.affiliate_l2_id, list(plan.rates)


def _commission(step: str, order: Order, now: datetime) -> None:
    """accrue_for_order (paid) / freeze_for_order (received) / settle_for_order (completed)."""
    hook = getattr(_distribution(), step, None)
    if hook is not None:
        hook(order, now=now)


def checkout(
    member_id: int,
    *,
    lines: Sequence[LineRequest] | None = None,
    from_cart: bool = False,
    delivery: str = Delivery.EXPRESS,
    address_id: int | None = None,
    pickup_store_id: int | None = None,
    coupon_code: str = "",
    client_token: str = "",
    member_note: str = "",
    now: datetime | None = None,
) -> Order:
    """Create an order (pending_payment, pay_by set) from `lines` or the selected cart lines.

    Idempotent per client_token: a resubmission returns the order the first made. Normal orders take
    member prices and at most one coupon; points-mall lines (mall_item_id) make a points_mall order
    whose points are debited now (source "order:<number>"). An order whose total is 0 is paid at
    once. Refusals undo everything (stock, coupon, points, counters)."""
    now = now or timezone.now()
    client_token = client_token.strip()
    if len(client_token) > 64 or (client_token and not client_token.isprintable()):
        raise JiumaError(E.INVALID_CLIENT_TOKEN, _("提交标识无效。"))
    if delivery not in Delivery.values:
        raise JiumaError(E.INVALID_DELIVERY, _("请选择配送方式。"))
    if delivery == Delivery.EXPRESS and address_id is None:
        raise JiumaError(E.ADDRESS_REQUIRED, _("请选择收货地址。"))
    if delivery == Delivery.PICKUP and pickup_store_id is None:
        raise JiumaError(E.STORE_REQUIRED, _("请选择自提门店。"))
    if client_token:
        existing = Order.objects.filter(member_id=member_id, client_token=client_token).first()
        if existing is not None:
            return existing

    with transaction.atomic(durable=True):
        member = _lock_member(member_id)  # lock order step 1
        if member.is_erased:
            raise NotFound("member_erased", _("该会员已注销。"))
        if client_token:  # decided under the member's lock: the first submission's order, if any
            existing = Order.objects.filter(member_id=member_id, client_token=client_token).first()
            if existing is not None:
                return existing
        if from_cart:
            requests = [
                LineRequest(item.quantity, sku_id=item.sku_id)
                for item in CartItem.objects.filter(member_id=member_id, is_selected=True).order_by("id")
            ]
        else:
            requests = list(lines or [])
        requests = _merge(requests)
        level = member.level
        mall = requests[0].mall_item_id is not None
        if mall:
            if coupon_code:
                raise JiumaError("coupon_not_applicable", _("积分兑换订单不能使用优惠券。"))
            draft = _mall_lines(requests, member_id, delivery, now)
        else:
            draft = _shop_lines(requests, level)

        snapshot = _delivery_snapshot(member_id, delivery, address_id, pickup_store_id)
        items_fen = sum(line.subtotal_fen for line in draft.lines)
        applied = None
        if coupon_code:
            applied = coupons.apply(
                coupon_code,
                member_id,
                [
                    coupons.Priced(line.sku.product_id, line.sku.product.category_id, line.subtotal_fen)
                    for line in draft.lines
                ],
                now=now,
            )
            for line, share in zip(draft.lines, applied.shares, strict=True):
                line.discount_fen = share
                line.paid_fen = line.subtotal_fen - share
        policy = ShopPolicy.current()
        discount_fen = applied.discount_fen if applied else 0
        shipping_fen = _shipping(policy, delivery, items_fen, level)
        total_fen = items_fen - discount_fen + shipping_fen
        points_total = sum(line.points_subtotal for line in draft.lines)

        l1, l2, rates = _plan_distribution(member, draft.lines, now)
        for line, (rate_l1, rate_l2) in zip(draft.lines, rates, strict=True):
            line.rate_l1_bp, line.rate_l2_bp = (rate_l1, rate_l2) if l1 is not None else (0, 0)

        order = _insert_order(
            Order(
                member=member,
                kind=OrderKind.POINTS_MALL if mall else OrderKind.NORMAL,
                delivery=delivery,
                client_token=client_token,
                items_fen=items_fen,
                discount_fen=discount_fen,
                shipping_fen=shipping_fen,
                total_fen=total_fen,
                points_total=points_total,
                reward_points=reward_points_of(total_fen, policy, level),
                coupon=applied.coupon if applied else None,
                affiliate_l1_id=l1,
                affiliate_l2_id=l2 if l1 is not None else None,
                pay_by=now + timedelta(minutes=policy.pay_timeout_minutes),
                created_at=now,
                member_note=member_note.strip()[:200],
                **snapshot,
            )
        )
        for line in draft.lines:
            line.order = order
        OrderLine.objects.bulk_create(draft.lines)
        _event(order, OrderEventKind.CREATED, f"member:{member_id}", now, data={"lines": len(draft.lines)})
        if points_total:
            points.debit(member_id, points_total, kind=PointsKind.REDEMPTION, source=f"order:{order.number}", now=now)
        if applied is not None:
            coupons.reserve(order, applied.coupon, now=now)
        catalog.reserve([StockLine(line.sku_id, line.quantity, line.stock_source) for line in draft.lines], now=now)
        if from_cart:
            CartItem.objects.filter(member_id=member_id, sku_id__in=[line.sku_id for line in draft.lines]).delete()
        if total_fen == 0:
            _apply_payment(order, now=now, actor="system:checkout")
        else:
            order_id, pay_by = order.pk, order.pay_by
            transaction.on_commit(lambda: _enqueue("order_pay_due_one", order_id, pay_by))
    order.refresh_from_db()
    return order


def _delivery_snapshot(member_id: int, delivery: str, address_id: int | None, store_id: int | None) -> dict[str, Any]:
    if delivery == Delivery.EXPRESS:
        assert address_id is not None
        address = Address.objects.filter(pk=address_id, member_id=member_id).first()
        if address is None:
            raise NotFound(E.ADDRESS_REQUIRED, _("收货地址不存在。"))
        return {
            "receiver_name": address.receiver_name,
            "receiver_phone": address.phone,
            "region_code": address.region_code,
            "address_detail": address.detail,
        }
    assert store_id is not None
    store = Store.objects.filter(pk=store_id, status=ChannelStatus.ACTIVE).first()
    if store is None:
        raise JiumaError(E.STORE_NOT_AVAILABLE, _("该门店暂不支持自提。"))
    return {"pickup_store": store, "pickup_code": ""}


def _insert_order(order: Order) -> Order:
    """Insert with a fresh number (and pickup code); a collision is retried with new digits."""
    for attempt in range(5):
        order.number = new_order_number(order.created_at)
        if order.delivery == Delivery.PICKUP:
            order.pickup_code = new_pickup_code()
        else:
            order.pickup_code = None
        try:
            with transaction.atomic():
                order.save(force_insert=True)
            return order
        except IntegrityError as exc:
            text = str(exc)
            if attempt == 4 or ("number" not in text and "pickup_code" not in text):
                raise
            order.pk = None
    raise AssertionError("unreachable")  # pragma: no cover


# --- payment ------------------------------------------------------------------------------------


def _paid_status(order: Order) -> str:
    if order.kind == OrderKind.GROUP_BUY:
        return OrderStatus.AWAITING_GROUP
    return OrderStatus.AWAITING_SHIPMENT if order.delivery == Delivery.EXPRESS else OrderStatus.AWAITING_PICKUP


def _apply_payment(order: Order, *, now: datetime, actor: str, payment: Any = None) -> Order:
    new_status = _paid_status(order)
    changed = Order.objects.filter(
        pk=order.pk, status=OrderStatus.PENDING_PAYMENT, payment_status=PaymentStatus.UNPAID
    ).update(status=new_status, payment_status=PaymentStatus.PAID, paid_at=now)
    if not changed:
        raise _wrong_state(order.pk, _("付款"))
    data = {"payment": payment.pk} if payment is not None else {}
    _transition_events(
        order,
        OrderEventKind.PAID,
        actor,
        now,
        {
            OrderEventField.STATUS: (OrderStatus.PENDING_PAYMENT, new_status),
            OrderEventField.PAYMENT_STATUS: (PaymentStatus.UNPAID, PaymentStatus.PAID),
        },
        data,
    )
    coupons.consume(order, now=now)
    order.status, order.payment_status, order.paid_at = new_status, PaymentStatus.PAID, now
    if new_status != OrderStatus.AWAITING_GROUP:  # a group buy earns when its team succeeds
        _commission("accrue_for_order", order, now)
    _recompute_level_later(order.member_id)
    return order


def mark_paid(order: Order | int, *, payment: Any = None, now: datetime | None = None, actor: str = "wechat") -> Order:
    """pending_payment → awaiting_shipment | awaiting_pickup (awaiting_group for a group-buy order),
    unpaid → paid; the coupon is used. Refused (order_wrong_state, 409) unless the order is unpaid
    and pending: the caller (a payment being applied) then treats its money as surplus.

    Runs in the caller's transaction (the payment's, which holds the order before its Payment row);
    opens one if there is none. Group-buy seats and teams are the group-buy service's."""
    now = now or timezone.now()
    order_id = order if isinstance(order, int) else order.pk
    with transaction.atomic():
        current = _get(order_id)
        paid = _apply_payment(current, now=now, actor=actor, payment=payment)
        if paid.kind == OrderKind.GROUP_BUY:  # the team side, after commit (team before order in lock order)
            transaction.on_commit(lambda: _group_buy_paid(order_id))
        return paid


# --- cancel -------------------------------------------------------------------------------------


def _close_payments_first(order: Order) -> None:
    """Pending WeChat payments are closed at WeChat before an unpaid order is cancelled (if WeChat
    says one was paid, it is applied, and the cancel below then finds the order paid)."""
    try:
        from commerce.services import payments
    except ImportError:
        return
    close_open = getattr(payments, "close_open", None)
    if close_open is not None:
        close_open(order)


def cancel(
    order_id: int,
    *,
    reason: str,
    actor: str,
    now: datetime | None = None,
    member_id: int | None = None,
) -> Order:
    """Cancel an unpaid order: pending_payment → cancelled, unpaid → closed; the stock, the coupon,
    the points-mall counters and points ("order-cancel:<number>") go back. `member_id`: the member
    cancelling must own the order. Refused (order_wrong_state) once paid: a paid order is cancelled
    by refunding it."""
    now = now or timezone.now()
    if reason not in (CancelReason.MEMBER, CancelReason.TIMEOUT, CancelReason.STAFF, CancelReason.GROUP_FAILED):
        raise JiumaError(E.INVALID_REASON, _("取消原因无效。"))
    order = _get(order_id)
    if member_id is not None and order.member_id != member_id:
        raise NotFound(E.ORDER_NOT_FOUND, _("订单不存在。"))
    if order.status != OrderStatus.PENDING_PAYMENT:
        raise _wrong_state(order_id, _("取消"))
    _close_payments_first(order)
    with transaction.atomic(durable=True):
        _lock_member(order.member_id)  # step 1: the points come back to it
        _cancel_activity(order, now)  # step 2: the group-buy seat / bargain session and campaign counter
        lines = list(OrderLine.objects.filter(order_id=order_id).order_by("sku_id"))
        for line in sorted((ln for ln in lines if ln.mall_item_id), key=lambda ln: ln.mall_item_id or 0):
            MallItem.objects.filter(pk=line.mall_item_id or 0, sold__gte=line.quantity).update(
                sold=F("sold") - line.quantity
            )
        changed = Order.objects.filter(
            pk=order_id, status=OrderStatus.PENDING_PAYMENT, payment_status=PaymentStatus.UNPAID
        ).update(
            status=OrderStatus.CANCELLED,
            payment_status=PaymentStatus.CLOSED,
            cancelled_at=now,
            cancel_reason=reason,
        )
        if not changed:
            raise _wrong_state(order_id, _("取消"))
        _transition_events(
            order,
            OrderEventKind.CANCELLED,
            actor,
            now,
            {
                OrderEventField.STATUS: (OrderStatus.PENDING_PAYMENT, OrderStatus.CANCELLED),
                OrderEventField.PAYMENT_STATUS: (PaymentStatus.UNPAID, PaymentStatus.CLOSED),
            },
            {"reason": reason},
        )
        coupons.release(order, now=now)
        held = [StockLine(ln.sku_id, ln.quantity - ln.refund_quantity, ln.stock_source) for ln in lines]
        catalog.release([h for h in held if h.quantity > 0], now=now)
        if order.points_total:
            points.credit(
                order.member_id,
                order.points_total,
                kind=PointsKind.REFUND,
                source=f"order-cancel:{order.number}",
                note=str(_("订单取消退回")),
                now=now,
            )
    return _get(order_id)


def cancel_due(order_id: int, *, now: datetime | None = None) -> bool:
    """The pay_by deadline: cancel the order if it is still unpaid and due (idempotent)."""
    now = now or timezone.now()
    if not Order.objects.filter(pk=order_id, status=OrderStatus.PENDING_PAYMENT, pay_by__lte=now).exists():
        return False
    try:
        cancel(order_id, reason=CancelReason.TIMEOUT, actor="system:order_pay_due", now=now)
    except Conflict:
        return False
    return True


# --- fulfilment ---------------------------------------------------------------------------------


def _has_open_after_sale(order_id: int) -> bool:
    return AfterSale.objects.filter(order_id=order_id, status__in=AFTER_SALE_OPEN).exists()


@dataclass(frozen=True)
class Parcel:
    carrier_code: str
    carrier_name: str
    tracking_no: str


def ship(order_id: int, parcels: Sequence[Parcel], *, actor: str, now: datetime | None = None) -> Order:
    """Staff ship an express order in one go (one or more parcels): awaiting_shipment → shipped,
    auto_receive_at set; the units still held leave the stock. Refused while an after-sale is open."""
    now = now or timezone.now()
    if not parcels or len(parcels) > 20:
        raise JiumaError(E.INVALID_SHIPMENT, _("请填写快递公司和快递单号。"))
    for parcel in parcels:
        if not parcel.carrier_code or not parcel.carrier_name or not parcel.tracking_no:
            raise JiumaError(E.INVALID_SHIPMENT, _("请填写快递公司和快递单号。"))
    policy = ShopPolicy.current()
    with transaction.atomic(durable=True):
        order = Order.objects.select_for_update().filter(pk=order_id).first()
        if order is None:
            raise NotFound(E.ORDER_NOT_FOUND, _("订单不存在。"))
        if order.status != OrderStatus.AWAITING_SHIPMENT:
            raise _wrong_state(order_id, _("发货"))
        if _has_open_after_sale(order_id):
            raise Conflict(E.AFTER_SALE_OPEN, _("该订单有处理中的售后申请，请先处理售后。"))
        auto_receive_at = now + timedelta(days=policy.auto_receive_days)
        Order.objects.filter(pk=order_id, status=OrderStatus.AWAITING_SHIPMENT).update(
            status=OrderStatus.SHIPPED, shipped_at=now, auto_receive_at=auto_receive_at
        )
        try:
            with transaction.atomic():
                Shipment.objects.bulk_create(
                    [
                        Shipment(
                            order=order,
                            carrier_code=p.carrier_code.strip(),
                            carrier_name=p.carrier_name.strip()[:40],
                            tracking_no=p.tracking_no.strip(),
                            shipped_at=now,
                            shipped_by=actor[:150],
                        )
                        for p in parcels
                    ]
                )
        except IntegrityError:
            raise JiumaError(E.INVALID_SHIPMENT, _("快递单号格式不正确或重复。")) from None
        _event(
            order,
            OrderEventKind.SHIPPED,
            actor,
            now,
            field_name=OrderEventField.STATUS,
            from_state=OrderStatus.AWAITING_SHIPMENT,
            to_state=OrderStatus.SHIPPED,
            data={"tracking_nos": [p.tracking_no for p in parcels]},
        )
        _ship_stock(order_id, now, actor)
        transaction.on_commit(lambda: _enqueue("order_receive_due_one", order_id, auto_receive_at))
    return _get(order_id)


def _ship_stock(order_id: int, now: datetime, actor: str) -> None:
    lines = OrderLine.objects.filter(order_id=order_id)
    released = _released_by_refunds(order_id)
    moves = []
    for line in lines:
        quantity = line.quantity - released.get(line.sku_id, 0)
        if quantity > 0:
            moves.append(StockLine(line.sku_id, quantity, line.stock_source))
    catalog.ship(moves, now=now, actor=actor)


def _released_by_refunds(order_id: int) -> dict[int, int]:
    """Units of the order's lines that succeeded refunds already released (per sku)."""
    sources = [f"refund:{no}" for no in Refund.objects.filter(order_id=order_id).values_list("refund_no", flat=True)]
    if not sources:
        return {}
    rows = (
        StockMovement.objects.filter(kind=StockMovementKind.RELEASE, source__in=sources)
        .values("sku_id")
        .annotate(n=Sum("reserved_delta"))
    )
    return {row["sku_id"]: -row["n"] for row in rows}


def _receive(order_id: int, *, from_state: str, kind: str, actor: str, now: datetime, extra: dict[str, Any]) -> None:
    policy = ShopPolicy.current()
    changed = Order.objects.filter(pk=order_id, status=from_state).update(
        status=OrderStatus.RECEIVED,
        received_at=now,
        after_sales_until=now + timedelta(days=policy.after_sales_days),
        **extra,
    )
    if not changed:
        raise _wrong_state(order_id, _("确认收货"))
    order = _get(order_id)
    _event(
        order, kind, actor, now, field_name=OrderEventField.STATUS, from_state=from_state, to_state=OrderStatus.RECEIVED
    )
    until = order.after_sales_until
    transaction.on_commit(lambda: _enqueue("order_after_sales_due_one", order_id, until))


def confirm_received(order_id: int, *, actor: str, member_id: int | None = None, now: datetime | None = None) -> Order:
    """shipped → received (the member confirms, or auto_receive_at passed); after_sales_until set."""
    now = now or timezone.now()
    order = _get(order_id)
    if member_id is not None and order.member_id != member_id:
        raise NotFound(E.ORDER_NOT_FOUND, _("订单不存在。"))
    with transaction.atomic(durable=True):
        _receive(order_id, from_state=OrderStatus.SHIPPED, kind=OrderEventKind.RECEIVED, actor=actor, now=now, extra={})
    return _get(order_id)


def receive_due(order_id: int, *, now: datetime | None = None) -> bool:
    """The auto_receive_at deadline (idempotent)."""
    now = now or timezone.now()
    if not Order.objects.filter(pk=order_id, status=OrderStatus.SHIPPED, auto_receive_at__lte=now).exists():
        return False
    try:
        confirm_received(order_id, actor="system:order_receive_due", now=now)
    except Conflict:
        return False
    return True


def redeem_pickup(code: str, *, staff_id: int, now: datetime | None = None) -> Order:
    """核销: a clerk of the order's pickup store hands the goods over (awaiting_pickup → received);
    the held units leave the stock. The code is the order's 12-digit pickup code."""
    now = now or timezone.now()
    code = (code or "").strip()
    staff = ChannelStaff.objects.filter(pk=staff_id, is_active=True).first()
    if staff is None or staff.store_id is None:
        raise JiumaError(E.WRONG_STORE, _("只有门店店员可以核销。"), status=403)
    order = Order.objects.filter(pickup_code=code).first() if len(code) == 12 and code.isdigit() else None
    if order is None:
        raise NotFound(E.PICKUP_CODE_INVALID, _("提货码无效。"))
    if order.pickup_store_id != staff.store_id:
        raise JiumaError(E.WRONG_STORE, _("该订单不在本店自提。"), status=403)
    with transaction.atomic(durable=True):
        Order.objects.select_for_update().filter(pk=order.pk).first()
        if _has_open_after_sale(order.pk):
            raise Conflict(E.AFTER_SALE_OPEN, _("该订单有处理中的售后申请，请先处理售后。"))
        _receive(
            order.pk,
            from_state=OrderStatus.AWAITING_PICKUP,
            kind=OrderEventKind.PICKED_UP,
            actor=f"clerk:{staff.pk}",
            now=now,
            extra={"picked_up_by": staff},
        )
        _ship_stock(order.pk, now, f"clerk:{staff.pk}")
    return _get(order.pk)


def complete(order_id: int, *, actor: str = "system:order_after_sales_due", now: datetime | None = None) -> Order:
    """received → completed once after_sales_until passed and no after-sale is open; the order's
    reward points are credited ("order-reward:<number>"): reward_points × (total - refunded) //
    total (all of it when total is 0)."""
    now = now or timezone.now()
    order = _get(order_id)
    with transaction.atomic(durable=True):
        _lock_member(order.member_id)  # step 1: the reward is credited to it
        open_after_sale = AfterSale.objects.filter(order_id=OuterRef("pk"), status__in=AFTER_SALE_OPEN)
        changed = (
            Order.objects.filter(pk=order_id, status=OrderStatus.RECEIVED, after_sales_until__lte=now)
            .filter(~Exists(open_after_sale))
            .update(status=OrderStatus.COMPLETED, completed_at=now)
        )
        if not changed:
            if _has_open_after_sale(order_id):
                raise Conflict(E.AFTER_SALE_OPEN, _("该订单有处理中的售后申请。"))
            raise _wrong_state(order_id, _("完成"))
        order = _get(order_id)
        _event(
            order,
            OrderEventKind.COMPLETED,
            actor,
            now,
            field_name=OrderEventField.STATUS,
            from_state=OrderStatus.RECEIVED,
            to_state=OrderStatus.COMPLETED,
        )
        _commission("settle_for_order", order, now)
        reward = reward_earned(order)
        if reward > 0:
            points.credit(
                order.member_id,
                reward,
                kind=PointsKind.ORDER,
                source=f"order-reward:{order.number}",
                note=str(_("订单完成奖励")),
                now=now,
            )
        _recompute_level_later(order.member_id)
    return order


def reward_earned(order: Order) -> int:
    if order.total_fen == 0:
        return order.reward_points
    return order.reward_points * (order.total_fen - order.refunded_fen) // order.total_fen


def complete_due(order_id: int, *, now: datetime | None = None) -> bool:
    """The after_sales_until deadline (idempotent; skipped while an after-sale is open)."""
    now = now or timezone.now()
    if not Order.objects.filter(pk=order_id, status=OrderStatus.RECEIVED, after_sales_until__lte=now).exists():
        return False
    try:
        complete(order_id, now=now)
    except Conflict:
        return False
    return True


# --- sweeps -------------------------------------------------------------------------------------


def _sweep(ids: list[int], one: Any, now: datetime) -> int:
    done = 0
    for order_id in ids:
        try:
            done += bool(one(order_id, now=now))
        except Exception:  # one bad order never stops the sweep
            log.exception("order %s: sweep step failed", order_id)
    return done


def sweep_pay_due(*, now: datetime | None = None, limit: int = 500) -> int:
    now = now or timezone.now()
    ids = list(
        Order.objects.filter(status=OrderStatus.PENDING_PAYMENT, pay_by__lte=now)
        .order_by("pay_by")
        .values_list("id", flat=True)[:limit]
    )
    return _sweep(ids, cancel_due, now)


def sweep_receive_due(*, now: datetime | None = None, limit: int = 500) -> int:
    now = now or timezone.now()
    ids = list(
        Order.objects.filter(status=OrderStatus.SHIPPED, auto_receive_at__lte=now)
        .order_by("auto_receive_at")
        .values_list("id", flat=True)[:limit]
    )
    return _sweep(ids, receive_due, now)


def sweep_after_sales_due(*, now: datetime | None = None, limit: int = 500) -> int:
    now = now or timezone.now()
    open_after_sale = AfterSale.objects.filter(order_id=OuterRef("pk"), status__in=AFTER_SALE_OPEN)
    ids = list(
        Order.objects.filter(status=OrderStatus.RECEIVED, after_sales_until__lte=now)
        .filter(~Exists(open_after_sale))
        .order_by("after_sales_until")
        .values_list("id", flat=True)[:limit]
    )
    return _sweep(ids, complete_due, now)


# --- refunds ------------------------------------------------------------------------------------


def _refund_status(order: Order, refunded_fen: int, refunded_points: int) -> str:
    if refunded_fen == 0 and refunded_points == 0:
        return RefundStatus.NONE
    if refunded_fen == order.total_fen and refunded_points == order.points_total:
        return RefundStatus.FULL
    return RefundStatus.PARTIAL


def on_refund_succeeded(refund: Refund, *, now: datetime | None = None, actor: str = "wechat") -> Order:
    """A refund of the order succeeded (the payments service has just moved it to succeeded, in its
    transaction, holding the order's row): the order's refunded amounts and refund_status, the units
    it covers that were not shipped yet go back to stock ("refund:<refund no>"), its points come back
    ("refund:<refund no>"), the coupon is released when the order is now fully refunded, an order
    whose every unit was refunded before fulfilment is cancelled (reason refunded), and the
    commission is reversed (commerce.services.distribution.reverse_for_refund). Surplus refunds (money
    paid twice) are not the order's and change nothing here.

    Lock order: the points credit locks the member's row after the order's; the caller should lock
    the buyer's Member row first when the refund returns points."""
    now = now or timezone.now()
    if refund.reason == RefundReason.SURPLUS_PAYMENT:
        return _get(refund.order_id)
    with transaction.atomic():
        order = Order.objects.select_for_update().get(pk=refund.order_id)
        refunded_fen = order.refunded_fen + refund.amount_fen
        refunded_points = order.refunded_points + refund.points
        new_refund_status = _refund_status(order, refunded_fen, refunded_points)
        Order.objects.filter(pk=order.pk).update(
            refunded_fen=refunded_fen, refunded_points=refunded_points, refund_status=new_refund_status
        )
        data = {"refund": refund.refund_no, "amount_fen": refund.amount_fen, "points": refund.points}
        if new_refund_status != order.refund_status:
            _event(
                order,
                OrderEventKind.REFUND_SUCCEEDED,
                actor,
                now,
                field_name=OrderEventField.REFUND_STATUS,
                from_state=order.refund_status,
                to_state=new_refund_status,
                data=data,
            )
        else:
            _event(order, OrderEventKind.REFUND_SUCCEEDED, actor, now, data=data)
        full = new_refund_status == RefundStatus.FULL
        unfulfilled = order.status in (
            OrderStatus.AWAITING_SHIPMENT,
            OrderStatus.AWAITING_PICKUP,
            OrderStatus.AWAITING_GROUP,
        )
        if unfulfilled:
            _release_refunded_units(order, refund, full=full, now=now)
        if refund.points:
            points.credit(
                order.member_id,
                refund.points,
                kind=PointsKind.REFUND,
                source=f"refund:{refund.refund_no}",
                note=str(_("退款退回")),
                now=now,
            )
        if full:
            coupons.release(order, now=now)
            if order.status in (OrderStatus.AWAITING_SHIPMENT, OrderStatus.AWAITING_PICKUP) and (
                Order.objects.filter(pk=order.pk, status=order.status).update(
                    status=OrderStatus.CANCELLED, cancelled_at=now, cancel_reason=CancelReason.REFUNDED
                )
            ):
                _event(
                    order,
                    OrderEventKind.CANCELLED,
                    actor,
                    now,
                    field_name=OrderEventField.STATUS,
                    from_state=order.status,
                    to_state=OrderStatus.CANCELLED,
                    data={"reason": CancelReason.REFUNDED, "refund": refund.refund_no},
                )
        _reverse_commission(refund, now)
        _recompute_level_later(order.member_id)
    return _get(refund.order_id)


def _release_refunded_units(order: Order, refund: Refund, *, full: bool, now: datetime) -> None:
    """Units this refund covers that are still held: an after-sale's lines, or (a full refund) all
    the order still holds."""
    lines = {line.pk: line for line in OrderLine.objects.filter(order=order)}
    released = _released_by_refunds(order.pk)
    wanted: dict[int, int] = {}
    if refund.after_sale_id is not None:
        for row in AfterSaleLine.objects.filter(after_sale_id=refund.after_sale_id):
            wanted[row.order_line_id] = wanted.get(row.order_line_id, 0) + row.quantity
    elif full:
        wanted = {line_id: line.quantity for line_id, line in lines.items()}
    moves = []
    counters: list[tuple[int, int]] = []
    for line_id, quantity in wanted.items():
        line = lines[line_id]
        still_held = line.quantity - released.get(line.sku_id, 0)
        quantity = min(quantity, still_held)
        if quantity > 0:
            moves.append(StockLine(line.sku_id, quantity, f"refund:{refund.refund_no}"))
            if line.mall_item_id:
                counters.append((line.mall_item_id, quantity))
    for item_id, quantity in sorted(counters):
        MallItem.objects.filter(pk=item_id, sold__gte=quantity).update(sold=F("sold") - quantity)
    catalog.release(moves, now=now)


def _reverse_commission(refund: Refund, now: datetime) -> None:
    reverse_for_refund = getattr(_distribution(), "reverse_for_refund", None)
    if reverse_for_refund is not None:
        reverse_for_refund(refund, now=now)


# --- activity orders (group buy, bargain: commerce.services.group_buy / bargain) ------------------


def check_activity_request(
    delivery: str, address_id: int | None, pickup_store_id: int | None, client_token: str
) -> str:
    """The checks checkout makes on delivery and client_token, before any lock; returns the token."""
    client_token = client_token.strip()
    if len(client_token) > 64 or (client_token and not client_token.isprintable()):
        raise JiumaError(E.INVALID_CLIENT_TOKEN, _("提交标识无效。"))
    if delivery not in Delivery.values:
        raise JiumaError(E.INVALID_DELIVERY, _("请选择配送方式。"))
    if delivery == Delivery.EXPRESS and address_id is None:
        raise JiumaError(E.ADDRESS_REQUIRED, _("请选择收货地址。"))
    if delivery == Delivery.PICKUP and pickup_store_id is None:
        raise JiumaError(E.STORE_REQUIRED, _("请选择自提门店。"))
    return client_token


def existing_order(member_id: int, client_token: str) -> Order | None:
    """The order a client_token already made (idempotent submissions), if any."""
    if not client_token:
        return None
    return Order.objects.filter(member_id=member_id, client_token=client_token).first()


def create_activity_order(
    member: Member,
    *,
    sku_id: int,
    quantity: int,
    unit_price_fen: int,
    price_source: str,
    kind: str,
    delivery: str,
    address_id: int | None,
    pickup_store_id: int | None,
    client_token: str,
    event_data: dict[str, Any],
    pays_commission: bool,
    now: datetime,
) -> Order:
    """A group-buy or bargain order of one SKU at the campaign's final price (no member price, no
    coupon), in the caller's transaction: the caller holds the buyer's Member row and the activity's
    rows and has taken the campaign counter (lock order steps 1-2). Creates the order (pending, pay_by
    set), its line, its "created" event (event_data names the team / session) and the stock
    reservation (step 6); an order whose total is 0 is paid at once."""
    _check_quantity(quantity)
    sku = _sellable(sku_id)
    snapshot = _delivery_snapshot(member.pk, delivery, address_id, pickup_store_id)
    line = _line(sku, quantity, unit_price_fen, price_source)
    policy = ShopPolicy.current()
    level = member.level
    shipping_fen = _shipping(policy, delivery, line.subtotal_fen, level)
    total_fen = line.subtotal_fen + shipping_fen
    l1, l2, rates = _plan_distribution(member, [line], now)
    line.rate_l1_bp, line.rate_l2_bp = rates[0] if l1 is not None and pays_commission else (0, 0)
    order = _insert_order(
        Order(
            member=member,
            kind=kind,
            delivery=delivery,
            client_token=client_token,
            items_fen=line.subtotal_fen,
            discount_fen=0,
            shipping_fen=shipping_fen,
            total_fen=total_fen,
            points_total=0,
            reward_points=reward_points_of(total_fen, policy, level),
            affiliate_l1_id=l1,
            affiliate_l2_id=l2 if l1 is not None else None,
            pay_by=now + timedelta(minutes=policy.pay_timeout_minutes),
            created_at=now,
            **snapshot,
        )
    )
    line.order = order
    line.save(force_insert=True)
    _event(order, OrderEventKind.CREATED, f"member:{member.pk}", now, data={"lines": 1, **event_data})
    catalog.reserve([StockLine(line.sku_id, line.quantity, line.stock_source)], now=now)
    if total_fen == 0:
        _apply_payment(order, now=now, actor="system:checkout")
    else:
        order_id, pay_by = order.pk, order.pay_by
        transaction.on_commit(lambda: _enqueue("order_pay_due_one", order_id, pay_by))
    order.refresh_from_db()
    return order


def fail_group_order(order_id: int, *, team_id: int, now: datetime, actor: str) -> bool:
    """The order's team failed (caller's transaction, holding the team; lock order step 3 on): an
    awaiting_group order is cancelled (reason group_failed), the units it holds go back to stock
    ("line:<line id>"), and one Refund (reason group_failed) of all it has left to refund is booked.
    Idempotent: False when the order was not awaiting its group."""
    from commerce.services import refunds

    order = Order.objects.select_for_update().get(pk=order_id)
    changed = Order.objects.filter(pk=order_id, status=OrderStatus.AWAITING_GROUP).update(
        status=OrderStatus.CANCELLED, cancelled_at=now, cancel_reason=CancelReason.GROUP_FAILED
    )
    if not changed:
        return False
    _event(
        order,
        OrderEventKind.GROUP_FAILED,
        actor,
        now,
        field_name=OrderEventField.STATUS,
        from_state=OrderStatus.AWAITING_GROUP,
        to_state=OrderStatus.CANCELLED,
        data={"group_buy_team": team_id, "reason": CancelReason.GROUP_FAILED},
    )
    lines = list(OrderLine.objects.filter(order_id=order_id).order_by("sku_id"))
    amount = order.total_fen - order.refund_booked_fen
    if amount > 0 and not Refund.objects.filter(order_id=order_id, reason=RefundReason.GROUP_FAILED).exists():
        refunds.book(
            order,
            amount_fen=amount,
            lines=[
                refunds.RefundLine(
                    line_id=ln.pk, quantity=ln.quantity - ln.refund_quantity, fen=ln.paid_fen - ln.refund_fen
                )
                for ln in lines
                if ln.quantity > ln.refund_quantity or ln.paid_fen > ln.refund_fen
            ],
            reason=RefundReason.GROUP_FAILED,
            actor=actor,
            now=now,
            note=str(_("拼团失败退款")),
        )
    released = _released_by_refunds(order_id)
    held = [StockLine(ln.sku_id, ln.quantity - released.get(ln.sku_id, 0), ln.stock_source) for ln in lines]
    catalog.release([h for h in held if h.quantity > 0], now=now)
    return True


def _cancel_activity(order: Order, now: datetime) -> None:
    """In cancel's transaction, after the member's row: the group-buy seat is released / the bargain
    session goes back, and the campaign counter comes down."""
    if order.kind == OrderKind.GROUP_BUY:
        from commerce.services import group_buy

        group_buy.on_order_cancelling(order, now=now)
    elif order.kind == OrderKind.BARGAIN:
        from commerce.services import bargain

        bargain.on_order_cancelling(order, now=now)


def _group_buy_paid(order_id: int) -> None:
    """After a group-buy order's payment commits: its seat and team (the expiry sweep repairs it if
    this fails)."""
    try:
        from commerce.services import group_buy

        group_buy.on_order_paid(order_id)
    except Exception:
        log.exception("order %s: group-buy seat not updated after payment; the sweep will", order_id)


def group_succeeded(order_id: int, *, team_id: int, now: datetime) -> bool:
    """The order's team succeeded (caller's transaction, holding the team; orders in ascending id):
    awaiting_group → awaiting_shipment | awaiting_pickup (event group_succeeded) and its commission
    accrues. Idempotent: False when the order was not awaiting its group."""
    order = Order.objects.select_for_update().get(pk=order_id)
    target = OrderStatus.AWAITING_SHIPMENT if order.delivery == Delivery.EXPRESS else OrderStatus.AWAITING_PICKUP
    if not Order.objects.filter(pk=order_id, status=OrderStatus.AWAITING_GROUP).update(status=target):
        return False
    _event(
        order,
        OrderEventKind.GROUP_SUCCEEDED,
        "system:group_buy",
        now,
        field_name=OrderEventField.STATUS,
        from_state=OrderStatus.AWAITING_GROUP,
        to_state=target,
        data={"group_buy_team": team_id},
    )
    order.status = target
    _commission("accrue_for_order", order, now)
    return True
