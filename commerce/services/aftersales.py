"""After-sales (售后): a member asks for a refund only, or a return and refund, of some lines of a
delivered (or awaiting) order; staff approve or reject; the member sends the goods back; staff
confirm receipt; the refund goes through commerce.services.refunds.

Every step is a conditional UPDATE ... WHERE status = <from> under the order's row lock (lock order:
Order, then AfterSale, then what refunds.book locks) with one OrderEvent; a step from the wrong state
changes nothing and answers 409 after_sale_wrong_state. At most one open after-sale per order (the
database holds it too). Deadlines (due_at) are swept by `sweep_due` (task after_sale_due).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.db import IntegrityError, transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from commerce.errors import AfterSaleErrorCode
from commerce.models import (
    AfterSale,
    AfterSaleKind,
    AfterSaleLine,
    AfterSaleReason,
    AfterSaleStatus,
    Member,
    Order,
    OrderEvent,
    OrderEventKind,
    OrderLine,
    OrderStatus,
    RefundReason,
    ShopPolicy,
)
from commerce.services import refunds
from tenants.errors import Conflict, JiumaError

ALLOWED_ORDER_STATES = (
    OrderStatus.AWAITING_SHIPMENT,
    OrderStatus.AWAITING_PICKUP,
    OrderStatus.SHIPPED,
    OrderStatus.RECEIVED,
)
_RETURN_STATES = (OrderStatus.SHIPPED, OrderStatus.RECEIVED)  # goods in the member's hands
_TRACKING = re.compile(r"^[A-Za-z0-9-]{4,40}$")
_CARRIER = re.compile(r"^[A-Za-z0-9_]{1,20}$")


@dataclass(frozen=True)
class LineRequest:
    line_id: int
    quantity: int


def _policy() -> ShopPolicy:
    policy, _created = ShopPolicy.objects.get_or_create(id=1)
    return policy


def _wrong_state() -> Conflict:
    return Conflict(AfterSaleErrorCode.WRONG_STATE, _("售后单当前状态不允许此操作。"))


def _event(order_id: int, kind: str, actor: str, now: datetime, after_sale: AfterSale, **data: Any) -> None:
    OrderEvent.objects.create(
        order_id=order_id, kind=kind, actor=actor[:160], at=now, data={"after_sale": after_sale.number, **data}
    )


def _share(total: int, booked: int, units: int, remaining_units: int, quantity: int) -> int:
    """This request's share of a line's money or points: proportional (down); the last units take
    whatever is left of the line."""
    if quantity == remaining_units:
        return total - booked
    return total * quantity // units


def request(
    order: Order,
    *,
    member: Member,
    kind: str,
    lines: Sequence[LineRequest],
    reason: str,
    description: str = "",
    images: Sequence[str] = (),
    now: datetime | None = None,
) -> AfterSale:
    """The member asks for an after-sale of some units of some lines. Allowed from awaiting_shipment,
    awaiting_pickup, shipped and received (until after_sales_until); a return only once the goods
    are out (shipped, received); one open request per order."""
    now = now or timezone.now()
    if kind not in AfterSaleKind.values or reason not in AfterSaleReason.values:
        raise JiumaError(AfterSaleErrorCode.INVALID_LINES, _("售后类型或原因不正确。"))
    if not lines or len({x.line_id for x in lines}) != len(lines) or any(x.quantity < 1 for x in lines):
        raise JiumaError(AfterSaleErrorCode.INVALID_LINES, _("请选择要售后的商品和数量。"))
    policy = _policy()
    with transaction.atomic():
        locked = Order.objects.select_for_update().get(pk=order.pk)
        if locked.member_id != member.pk:
            raise JiumaError(AfterSaleErrorCode.NOT_YOURS, _("订单不存在。"), status=404)
        if (
            locked.status not in ALLOWED_ORDER_STATES
            or (kind == AfterSaleKind.RETURN_REFUND and locked.status not in _RETURN_STATES)
            or (locked.after_sales_until is not None and now > locked.after_sales_until)
        ):
            raise Conflict(AfterSaleErrorCode.NOT_ALLOWED, _("该订单当前不能申请售后。"))
        if AfterSale.objects.filter(order=locked, status__in=[s.value for s in _open()]).exists():
            raise Conflict(AfterSaleErrorCode.ALREADY_OPEN, _("该订单已有处理中的售后申请。"))
        by_id = {line.pk: line for line in OrderLine.objects.filter(order=locked, pk__in=[x.line_id for x in lines])}
        if len(by_id) != len(lines):
            raise JiumaError(AfterSaleErrorCode.INVALID_LINES, _("售后商品不属于该订单。"))
        specs: list[tuple[OrderLine, int, int, int]] = []
        for spec in lines:
            line = by_id[spec.line_id]
            remaining = line.quantity - line.refund_quantity
            if spec.quantity > remaining:
                raise JiumaError(AfterSaleErrorCode.INVALID_LINES, _("售后数量超过可退数量。"))
            fen = _share(line.paid_fen, line.refund_fen, line.quantity, remaining, spec.quantity)
            points = _share(line.points_subtotal, line.refund_points, line.quantity, remaining, spec.quantity)
            specs.append((line, spec.quantity, fen, points))
        amount_fen = min(sum(s[2] for s in specs), locked.cash_refundable_fen)
        points_total = min(sum(s[3] for s in specs), locked.points_refundable)
        if amount_fen <= 0 and points_total <= 0:
            raise Conflict(AfterSaleErrorCode.NOT_ALLOWED, _("所选商品已无可退金额。"))
        count = AfterSale.objects.filter(order=locked).count()
        if count >= 99:
            raise Conflict(AfterSaleErrorCode.TOO_MANY, _("该订单售后次数过多，请联系客服。"))
        due_at = None
        if kind == AfterSaleKind.REFUND_ONLY and policy.after_sale_review_hours > 0:
            due_at = now + timedelta(hours=policy.after_sale_review_hours)
        try:
            with transaction.atomic():
                after_sale = AfterSale.objects.create(
                    number=f"{locked.number}A{count + 1:02d}",
                    order=locked,
                    kind=kind,
                    reason=reason,
                    description=description[:500],
                    images=list(images)[:9],
                    amount_fen=amount_fen,
                    points=points_total,
                    due_at=due_at,
                    requested_at=now,
                )
        except IntegrityError as exc:
            raise Conflict(AfterSaleErrorCode.ALREADY_OPEN, _("该订单已有处理中的售后申请。")) from exc
        AfterSaleLine.objects.bulk_create(
            [
                AfterSaleLine(after_sale=after_sale, order_line=line, quantity=q, amount_fen=fen, points=pts)
                for line, q, fen, pts in specs
            ]
        )
        _event(
            locked.pk, OrderEventKind.AFTER_SALE_REQUESTED, f"member:{member.pk}", now, after_sale, after_sale_kind=kind
        )
    return after_sale


def _open() -> list[AfterSaleStatus]:
    return [
        AfterSaleStatus.REQUESTED,
        AfterSaleStatus.AWAITING_RETURN,
        AfterSaleStatus.RETURNED,
        AfterSaleStatus.REFUNDING,
    ]


def _step(
    after_sale: AfterSale, frm: Sequence[str], *, kind: str | None = None, **changes: Any
) -> tuple[Order, AfterSale]:
    """Under the order's lock: UPDATE the after-sale WHERE status IN frm (and kind); 409 if 0 rows."""
    order = Order.objects.select_for_update().get(pk=after_sale.order_id)
    query = AfterSale.objects.filter(pk=after_sale.pk, status__in=list(frm))
    if kind is not None:
        query = query.filter(kind=kind)
    if not query.update(**changes):
        raise _wrong_state()
    return order, AfterSale.objects.get(pk=after_sale.pk)


def _book_refund(order: Order, after_sale: AfterSale, actor: str, now: datetime) -> None:
    lines = [
        refunds.RefundLine(line_id=x.order_line_id, quantity=x.quantity, fen=x.amount_fen, points=x.points)
        for x in after_sale.lines.all()
    ]
    refunds.book(
        order,
        amount_fen=after_sale.amount_fen,
        points=after_sale.points,
        lines=lines,
        reason=RefundReason.AFTER_SALE,
        after_sale=after_sale,
        actor=actor,
        now=now,
        note=after_sale.number,
    )


def approve(after_sale: AfterSale, *, actor: str, now: datetime | None = None, note: str = "") -> AfterSale:
    """Staff approve a request: a return waits for the goods (due_at = now + return_days); a refund
    only is refunded now."""
    now = now or timezone.now()
    with transaction.atomic():
        if after_sale.kind == AfterSaleKind.RETURN_REFUND:
            order, updated = _step(
                after_sale,
                [AfterSaleStatus.REQUESTED],
                kind=AfterSaleKind.RETURN_REFUND,
                status=AfterSaleStatus.AWAITING_RETURN,
                due_at=now + timedelta(days=_policy().return_days),
                reviewed_at=now,
                reviewed_by=actor[:150],
                review_note=note[:200],
            )
            _event(order.pk, OrderEventKind.AFTER_SALE_APPROVED, actor, now, updated)
        else:
            order, updated = _step(
                after_sale,
                [AfterSaleStatus.REQUESTED],
                kind=AfterSaleKind.REFUND_ONLY,
                status=AfterSaleStatus.REFUNDING,
                due_at=None,
                reviewed_at=now,
                reviewed_by=actor[:150],
                review_note=note[:200],
            )
            _event(order.pk, OrderEventKind.AFTER_SALE_APPROVED, actor, now, updated)
            _book_refund(order, updated, actor, now)
    updated.refresh_from_db()
    return updated


def reject(after_sale: AfterSale, *, actor: str, now: datetime | None = None, note: str = "") -> AfterSale:
    """Staff refuse a request, or goods that came back not as agreed."""
    now = now or timezone.now()
    with transaction.atomic():
        order, updated = _step(
            after_sale,
            [AfterSaleStatus.REQUESTED, AfterSaleStatus.RETURNED],
            status=AfterSaleStatus.REJECTED,
            due_at=None,
            finished_at=now,
            reviewed_at=now,
            reviewed_by=actor[:150],
            review_note=note[:200],
        )
        _event(order.pk, OrderEventKind.AFTER_SALE_REJECTED, actor, now, updated, note=note[:200])
    return updated


def cancel(after_sale: AfterSale, *, member: Member, now: datetime | None = None) -> AfterSale:
    """The member withdraws the request (before the goods are on their way back)."""
    now = now or timezone.now()
    with transaction.atomic():
        if not Order.objects.filter(pk=after_sale.order_id, member_id=member.pk).exists():
            raise JiumaError(AfterSaleErrorCode.NOT_YOURS, _("售后单不存在。"), status=404)
        order, updated = _step(
            after_sale,
            [AfterSaleStatus.REQUESTED, AfterSaleStatus.AWAITING_RETURN],
            status=AfterSaleStatus.CANCELLED,
            due_at=None,
            finished_at=now,
        )
        _event(order.pk, OrderEventKind.AFTER_SALE_CANCELLED, f"member:{member.pk}", now, updated)
    return updated


def submit_return(
    after_sale: AfterSale, *, member: Member, carrier_code: str, tracking_no: str, now: datetime | None = None
) -> AfterSale:
    """The member has sent the goods back: the carrier and tracking number."""
    now = now or timezone.now()
    carrier_code, tracking_no = carrier_code.strip(), tracking_no.strip()
    if not _TRACKING.fullmatch(tracking_no) or not _CARRIER.fullmatch(carrier_code):
        raise JiumaError(AfterSaleErrorCode.INVALID_TRACKING, _("快递公司或快递单号格式不正确。"))
    with transaction.atomic():
        if not Order.objects.filter(pk=after_sale.order_id, member_id=member.pk).exists():
            raise JiumaError(AfterSaleErrorCode.NOT_YOURS, _("售后单不存在。"), status=404)
        order, updated = _step(
            after_sale,
            [AfterSaleStatus.AWAITING_RETURN],
            status=AfterSaleStatus.RETURNED,
            return_carrier_code=carrier_code,
            return_tracking_no=tracking_no,
            returned_at=now,
            due_at=None,  # the brand's receipt deadline: none by default
        )
        _event(order.pk, OrderEventKind.RETURN_SHIPPED, f"member:{member.pk}", now, updated, tracking_no=tracking_no)
    return updated


def confirm_return(
    after_sale: AfterSale, *, actor: str, restock: bool = True, now: datetime | None = None
) -> AfterSale:
    """Staff received the goods back: refund now (restock decides whether they go back to stock)."""
    now = now or timezone.now()
    with transaction.atomic():
        order, updated = _step(
            after_sale,
            [AfterSaleStatus.RETURNED],
            status=AfterSaleStatus.REFUNDING,
            restock=restock,
            return_received_at=now,
            due_at=None,
        )
        _event(order.pk, OrderEventKind.RETURN_RECEIVED, actor, now, updated, restock=restock)
        _book_refund(order, updated, actor, now)
    updated.refresh_from_db()
    return updated


def due(now: datetime | None = None, limit: int = 500) -> list[int]:
    now = now or timezone.now()
    return list(
        AfterSale.objects.filter(
            status__in=[AfterSaleStatus.REQUESTED, AfterSaleStatus.AWAITING_RETURN, AfterSaleStatus.RETURNED],
            due_at__isnull=False,
            due_at__lte=now,
        )
        .order_by("due_at")
        .values_list("pk", flat=True)[:limit]
    )


def run_due(after_sale_id: int, now: datetime | None = None) -> str:
    """One after-sale whose deadline passed: a refund-only request is approved (auto review), a return
    never sent back is closed. Idempotent: a request that moved on meanwhile is left alone."""
    now = now or timezone.now()
    after_sale = AfterSale.objects.filter(pk=after_sale_id, due_at__lte=now).first()
    if after_sale is None:
        return "not due"
    try:
        if after_sale.status == AfterSaleStatus.REQUESTED and after_sale.kind == AfterSaleKind.REFUND_ONLY:
            return approve(after_sale, actor="system:after_sale_due", now=now).status
        if after_sale.status == AfterSaleStatus.AWAITING_RETURN:
            with transaction.atomic():
                order, updated = _step(
                    after_sale,
                    [AfterSaleStatus.AWAITING_RETURN],
                    status=AfterSaleStatus.CLOSED,
                    due_at=None,
                    finished_at=now,
                )
                _event(order.pk, OrderEventKind.AFTER_SALE_CLOSED, "system:after_sale_due", now, updated)
            return updated.status
    except Conflict:
        return "moved on"
    return "nothing to do"


def sweep_due(now: datetime | None = None, limit: int = 500) -> int:
    now = now or timezone.now()
    return sum(run_due(pk, now) not in ("not due", "moved on", "nothing to do") for pk in due(now, limit))
