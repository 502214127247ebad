"""Refunds of orders: booking under the order's lock, the outbox a worker submits to WeChat Pay, and
applying WeChat's answers and REFUND.* notifications.

Exactly once, whatever fails:
- `book` takes refund_no = <order number>R<nn> (nn = 1 + the order's refund count) under the order's
  row lock, books the amounts against the order's and the lines' caps by guarded UPDATEs, and stores
  the Refund (pending) in that transaction: nothing is sent to WeChat before it is committed;
- every submission and query of a refund carries its refund_no and the same parameters, and WeChat
  refunds a number at most once; a worker takes a refund by moving its next attempt a lease ahead
  under the row lock (like rewards' payouts), and after a timeout, a 5xx or a lost answer the next
  step asks WeChat by the number before sending again;
- answers and notifications only move a refund forward (pending → processing → succeeded | failed)
  by conditional UPDATEs under the order's lock, so a resend or a late answer changes nothing.
Success moves the refund (and its after-sale: refunding → refunded) here and, in the same transaction
holding the order's row, hands the order to commerce.services.orders.on_refund_succeeded (refunded
amounts and refund_status, stock, points, commission, coupon, cancel); failure
un-books the amounts so staff can book a new refund (new number). A refund of points only succeeds
at once. Surplus payments (money paid twice) are refunded in full and never booked against the order.

The line breakdown of a refund is kept in its "refund_requested" OrderEvent (data["lines"]); read it
with refund_lines().
"""

from __future__ import annotations

import logging
import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.db import transaction
from django.db.models import F
from django.utils import timezone
from django.utils.translation import gettext as _

from commerce.errors import RefundErrorCode
from commerce.models import (
    AfterSale,
    AfterSaleStatus,
    Member,
    Order,
    OrderEvent,
    OrderEventKind,
    OrderLine,
    Payment,
    PaymentRecordStatus,
    PaymentStatus,
    Refund,
    RefundReason,
    RefundRecordStatus,
)
from commerce.wechat.pay import PayClient, PayError, RefundResult, refund_of
from tenants.errors import Conflict, JiumaError

logger = logging.getLogger(__name__)

LEASE = timedelta(seconds=60)
RECHECK = timedelta(minutes=5)  # a processing refund is asked about at least this often (backoff up to MAX)
MAX_BACKOFF = timedelta(hours=1)
_OPEN = (RefundRecordStatus.PENDING, RefundRecordStatus.PROCESSING)
_REFUND_REASON_TEXT: dict[str, str] = {
    RefundReason.AFTER_SALE: "售后退款",
    RefundReason.GROUP_FAILED: "拼团失败退款",
    RefundReason.CANCELLED: "订单取消退款",
    RefundReason.SURPLUS_PAYMENT: "重复支付退款",
    RefundReason.MANUAL: "退款",
}


@dataclass(frozen=True)
class RefundLine:
    """Part of an order line a refund gives back: units (0 when only money), fen and points."""

    line_id: int
    quantity: int
    fen: int
    points: int = 0


def backoff(attempts: int) -> timedelta:
    seconds = min(MAX_BACKOFF.total_seconds(), 5 * 2 ** max(0, attempts - 1))
    return timedelta(seconds=seconds * (1 + secrets.randbelow(250) / 1000))


def next_refund_no(order: Order) -> str:
    """<order number>R<nn>; call under the order's row lock."""
    count = Refund.objects.filter(order_id=order.pk).count()
    if count >= 99:
        raise Conflict(RefundErrorCode.TOO_MANY, _("该订单退款次数过多，请联系技术支持。"))
    return f"{order.number}R{count + 1:02d}"


def schedule(refund: Refund) -> None:
    """After commit: hand a cash refund to the worker (the refund_due sweeper picks up any missed)."""
    if refund.amount_fen <= 0:
        return
    refund_id = refund.pk

    def enqueue() -> None:
        try:
            from commerce.tasks import submit_refund

            submit_refund.delay(refund_id)
        except Exception:  # the broker down: the refund stays due and the sweeper sends it
            logger.warning("could not enqueue refund %s; the sweeper will", refund_id, exc_info=True)

    transaction.on_commit(enqueue)


def _invalid(message: str) -> JiumaError:
    return JiumaError(RefundErrorCode.INVALID_AMOUNT, message)


def _exceeds() -> Conflict:
    return Conflict(RefundErrorCode.EXCEEDS_PAID, _("退款超过订单可退金额。"))


def book(
    order: Order,
    *,
    amount_fen: int,
    points: int = 0,
    lines: Sequence[RefundLine] = (),
    reason: str,
    after_sale: AfterSale | None = None,
    actor: str,
    now: datetime | None = None,
    note: str = "",
) -> Refund:
    """Book a refund of a paid order under its row lock (caps: what the order and each line have left)
    and store it pending, to be sent after commit (a points-only refund succeeds at once). Runs in
    the caller's transaction when there is one (the after-sale services), else its own."""
    now = now or timezone.now()
    if isinstance(amount_fen, bool) or isinstance(points, bool) or amount_fen < 0 or points < 0:
        raise _invalid(_("退款金额和退还酒币不能为负。"))
    if amount_fen == 0 and points == 0:
        raise _invalid(_("退款金额和退还酒币不能都为零。"))
    if reason == RefundReason.SURPLUS_PAYMENT or reason not in RefundReason.values:
        raise _invalid(_("退款原因不正确。"))
    if (reason == RefundReason.AFTER_SALE) != (after_sale is not None):
        raise _invalid(_("售后退款须对应售后单。"))
    if any(line.quantity < 0 or line.fen < 0 or line.points < 0 for line in lines):
        raise _invalid(_("退款商品的数量和金额不能为负。"))
    if sum(line.fen for line in lines) > amount_fen or sum(line.points for line in lines) > points:
        raise _invalid(_("商品退款之和超过退款金额。"))
    if len({line.line_id for line in lines}) != len(lines):
        raise _invalid(_("同一商品只能出现一次。"))
    with transaction.atomic():
        if points:  # lock order: the buyer's Member row first (a points refund credits it)
            Member.objects.select_for_update().filter(pk=order.member_id).first()
        locked = Order.objects.select_for_update().get(pk=order.pk)
        if locked.payment_status != PaymentStatus.PAID:
            raise Conflict(RefundErrorCode.NOT_PAID, _("订单未支付，不能退款。"))
        if amount_fen > locked.total_fen - locked.refund_booked_fen or points > locked.points_refundable:
            raise _exceeds()
        payment: Payment | None = None
        if amount_fen > 0:
            payment = locked.payments.filter(status=PaymentRecordStatus.PAID).first()
            if payment is None:
                raise _exceeds()
        by_id = {line.pk: line for line in OrderLine.objects.filter(order=locked, pk__in=[x.line_id for x in lines])}
        if len(by_id) != len(lines):
            raise JiumaError(RefundErrorCode.UNKNOWN_LINE, _("退款商品不属于该订单。"))
        if not Order.objects.filter(
            pk=locked.pk,
            refund_booked_fen__lte=F("total_fen") - amount_fen,
            refund_booked_points__lte=F("points_total") - points,
        ).update(
            refund_booked_fen=F("refund_booked_fen") + amount_fen,
            refund_booked_points=F("refund_booked_points") + points,
        ):
            raise _exceeds()
        for spec in sorted(lines, key=lambda x: x.line_id):
            if not OrderLine.objects.filter(
                pk=spec.line_id,
                refund_quantity__lte=F("quantity") - spec.quantity,
                refund_fen__lte=F("paid_fen") - spec.fen,
                refund_points__lte=F("points_subtotal") - spec.points,
            ).update(
                refund_quantity=F("refund_quantity") + spec.quantity,
                refund_fen=F("refund_fen") + spec.fen,
                refund_points=F("refund_points") + spec.points,
            ):
                raise _exceeds()  # rolls back the order's booking with it
        refund = Refund.objects.create(
            refund_no=next_refund_no(locked),
            order=locked,
            payment=payment,
            after_sale=after_sale,
            reason=reason,
            note=note[:200],
            amount_fen=amount_fen,
            points=points,
            created_by=actor[:160],
            created_at=now,
            next_attempt_at=now,
        )
        OrderEvent.objects.create(
            order=locked,
            kind=OrderEventKind.REFUND_REQUESTED,
            actor=actor[:160],
            at=now,
            data={
                "refund_no": refund.refund_no,
                "reason": reason,
                "amount_fen": amount_fen,
                "points": points,
                "lines": [{"line": x.line_id, "quantity": x.quantity, "fen": x.fen, "points": x.points} for x in lines],
            },
        )
        if amount_fen == 0:
            _succeed(refund.pk, now, provider_refund_id="")
            refund.refresh_from_db()
        else:
            schedule(refund)
    return refund


def refund_lines(refund: Refund) -> list[RefundLine]:
    """The order lines (and how much of each) a refund gives back, as booked."""
    event = (
        OrderEvent.objects.filter(
            order_id=refund.order_id, kind=OrderEventKind.REFUND_REQUESTED, data__refund_no=refund.refund_no
        )
        .order_by("id")
        .first()
    )
    if event is None:
        return []
    return [
        RefundLine(line_id=int(x["line"]), quantity=int(x["quantity"]), fen=int(x["fen"]), points=int(x["points"]))
        for x in event.data.get("lines", [])
    ]


# -- applying results -------------------------------------------------------------------------


def _succeed(refund_id: int, now: datetime, *, provider_refund_id: str) -> bool:
    """pending | processing → succeeded, then the order's side (orders.on_refund_succeeded); False if
    it was not open."""
    with transaction.atomic():
        refund = Refund.objects.select_related("order").get(pk=refund_id)
        if refund.points:  # lock order: the buyer's Member row (points come back) before the Order
            Member.objects.select_for_update().filter(pk=refund.order.member_id).first()
        order = Order.objects.select_for_update().get(pk=refund.order_id)
        changes: dict[str, Any] = {"status": RefundRecordStatus.SUCCEEDED, "finished_at": now, "last_error": ""}
        if provider_refund_id:
            changes["provider_refund_id"] = provider_refund_id
        if not Refund.objects.filter(pk=refund_id, status__in=_OPEN).update(**changes):
            return False
        refund.refresh_from_db()
        if refund.reason == RefundReason.SURPLUS_PAYMENT:  # not the order's money: no order change
            OrderEvent.objects.create(
                order=order,
                kind=OrderEventKind.REFUND_SUCCEEDED,
                actor="wechat",
                at=now,
                data={"refund_no": refund.refund_no, "amount_fen": refund.amount_fen, "surplus": True},
            )
        if refund.after_sale_id is not None:
            AfterSale.objects.filter(pk=refund.after_sale_id, status=AfterSaleStatus.REFUNDING).update(
                status=AfterSaleStatus.REFUNDED, finished_at=now, due_at=None
            )
        if refund.reason != RefundReason.SURPLUS_PAYMENT:
            from commerce.services import orders

            orders.on_refund_succeeded(refund, now=now)
    return True


def _fail(refund_id: int, now: datetime, error: str) -> bool:
    """pending | processing → failed; un-book what it claimed on the order and its lines."""
    with transaction.atomic():
        refund = Refund.objects.get(pk=refund_id)
        order = Order.objects.select_for_update().get(pk=refund.order_id)
        if not Refund.objects.filter(pk=refund_id, status__in=_OPEN).update(
            status=RefundRecordStatus.FAILED, finished_at=now, last_error=error[:300]
        ):
            return False
        if refund.reason != RefundReason.SURPLUS_PAYMENT:
            Order.objects.filter(pk=order.pk).update(
                refund_booked_fen=F("refund_booked_fen") - refund.amount_fen,
                refund_booked_points=F("refund_booked_points") - refund.points,
            )
            for spec in sorted(refund_lines(refund), key=lambda x: x.line_id):
                OrderLine.objects.filter(pk=spec.line_id).update(
                    refund_quantity=F("refund_quantity") - spec.quantity,
                    refund_fen=F("refund_fen") - spec.fen,
                    refund_points=F("refund_points") - spec.points,
                )
        OrderEvent.objects.create(
            order=order,
            kind=OrderEventKind.REFUND_FAILED,
            actor="wechat",
            at=now,
            data={"refund_no": refund.refund_no, "error": error[:200]},
        )
    logger.error("refund %s failed: %s", refund.refund_no, error)
    return True


def apply_result(refund: Refund, result: RefundResult, now: datetime | None = None) -> Refund:
    """Move the refund forward to what WeChat says of it (never backwards)."""
    now = now or timezone.now()
    if result.amount_fen is not None and result.amount_fen != refund.amount_fen:
        logger.error(
            "refund %s: WeChat says %s fen, we asked %s", refund.refund_no, result.amount_fen, refund.amount_fen
        )
        Refund.objects.filter(pk=refund.pk, status__in=_OPEN).update(
            last_error=f"amount mismatch: WeChat {result.amount_fen}"[:300]
        )
    elif result.status == "SUCCESS":
        _succeed(refund.pk, now, provider_refund_id=result.refund_id)
    elif result.status in ("CLOSED", "ABNORMAL"):
        _fail(refund.pk, now, f"WeChat {result.status}")
    elif result.status == "PROCESSING":
        changes: dict[str, Any] = {"last_error": ""}
        if result.refund_id:
            changes["provider_refund_id"] = result.refund_id
        Refund.objects.filter(pk=refund.pk, status=RefundRecordStatus.PENDING).update(
            status=RefundRecordStatus.PROCESSING, submitted_at=now, **changes
        )
        Refund.objects.filter(pk=refund.pk, status=RefundRecordStatus.PROCESSING).update(
            next_attempt_at=now + max(RECHECK, backoff(refund.attempts)), **changes
        )
    refund.refresh_from_db()
    return refund


def apply_notification(resource: dict[str, Any], now: datetime) -> str:
    """A REFUND.* notification's resource (from payments.handle_event)."""
    from commerce.wechat import config

    result = refund_of(resource)
    refund = Refund.objects.filter(refund_no=result.out_refund_no).select_related("payment").first()
    if refund is None:
        return f"unknown refund {result.out_refund_no}"[:200]
    if result.mchid and result.mchid != config.require().mchid:
        return f"refused {refund.refund_no}: merchant mismatch {result.mchid}"[:200]
    if refund.payment is not None and result.out_trade_no and result.out_trade_no != refund.payment.out_trade_no:
        return f"refused {refund.refund_no}: names {result.out_trade_no}"[:200]
    if result.amount_fen is not None and result.amount_fen != refund.amount_fen:
        apply_result(refund, result, now)
        return f"refused {refund.refund_no}: amount mismatch {result.amount_fen} != {refund.amount_fen}"[:200]
    before = refund.status
    after = apply_result(refund, result, now).status
    return f"{refund.refund_no} {after}" if after != before else f"{refund.refund_no} already {after}"


# -- the worker -------------------------------------------------------------------------------


def _take(refund_id: int, now: datetime) -> Refund | None:
    """The refund if it is due and nobody else holds it; moves its next attempt a lease ahead."""
    with transaction.atomic():
        refund = (
            Refund.objects.select_for_update(skip_locked=True)
            .filter(pk=refund_id, status__in=_OPEN, next_attempt_at__lte=now, amount_fen__gt=0)
            .first()
        )
        if refund is None:
            return None
        Refund.objects.filter(pk=refund.pk).update(attempts=F("attempts") + 1, next_attempt_at=now + LEASE)
        refund.attempts += 1
        return refund


def _later(refund: Refund, when: datetime, error: str, *, count: bool = True) -> Refund:
    changes: dict[str, object] = {"next_attempt_at": when, "last_error": error[:300]}
    if not count:
        changes["attempts"] = F("attempts") - 1
    Refund.objects.filter(pk=refund.pk, status__in=_OPEN).update(**changes)
    refund.refresh_from_db()
    return refund


def submit(refund_id: int, *, pay: PayClient | None = None, now: datetime | None = None) -> Refund | None:
    """Send one due refund to WeChat, or ask about it when it was sent already. Returns it, or None
    when it is not due (or in another worker's hands)."""
    from commerce.services.payments import client, notify_url

    now = now or timezone.now()
    refund = _take(refund_id, now)
    if refund is None:
        return None
    payment = Payment.objects.get(pk=refund.payment_id or 0)
    try:
        pay = pay or client()
        if refund.status == RefundRecordStatus.PROCESSING:
            found = pay.query_refund(refund.refund_no)
            if found is None:  # cannot be: WeChat answered PROCESSING once. Send it again (same number).
                found = _create(pay, refund, payment, notify_url())
            return apply_result(refund, found, now)
        return apply_result(refund, _create(pay, refund, payment, notify_url()), now)
    except PayError as exc:
        return _after_error(refund, pay, exc, now)


def _create(pay: PayClient, refund: Refund, payment: Payment, url: str) -> RefundResult:
    return pay.create_refund(
        out_refund_no=refund.refund_no,
        out_trade_no=payment.out_trade_no,
        refund_fen=refund.amount_fen,
        total_fen=payment.amount_fen,
        reason=_REFUND_REASON_TEXT.get(refund.reason, "退款"),
        notify_url=url,
    )


def _after_error(refund: Refund, pay: PayClient | None, exc: PayError, now: datetime) -> Refund:
    if exc.kind == "retry" and pay is not None:
        try:
            found = pay.query_refund(refund.refund_no)
        except PayError:
            found = None
        if found is not None:  # made after all (the answer was lost): carry on from there
            return apply_result(refund, found, now)
        return _later(refund, now + backoff(refund.attempts), str(exc))
    if exc.kind == "rate":
        return _later(refund, now + timedelta(seconds=1 + secrets.randbelow(3000) / 1000), str(exc), count=False)
    if exc.kind in ("funds", "config", "quota"):
        logger.error("refund %s cannot be made now (%s): check the WeChat Pay merchant", refund.refund_no, exc)
        return _later(refund, now + timedelta(minutes=10), str(exc))
    # Refused as it is (the same request would be refused again): failed, un-booked; staff decide.
    _fail(refund.pk, now, str(exc))
    refund.refresh_from_db()
    return refund


def due(now: datetime | None = None, limit: int = 500) -> list[int]:
    """Cash refunds whose next step (send or ask) is due: the refund_due sweeper's list."""
    now = now or timezone.now()
    return list(
        Refund.objects.filter(status__in=_OPEN, next_attempt_at__lte=now, amount_fen__gt=0)
        .order_by("next_attempt_at")
        .values_list("pk", flat=True)[:limit]
    )


def sweep(*, now: datetime | None = None, pay: PayClient | None = None, limit: int = 500) -> int:
    """Run every due refund once (the task refund_due). Returns how many were handled."""
    now = now or timezone.now()
    handled = 0
    for refund_id in due(now, limit):
        handled += submit(refund_id, pay=pay, now=now) is not None
    return handled
