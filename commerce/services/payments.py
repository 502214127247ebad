"""Collecting an order's cash through WeChat Pay (JSAPI): attempts, notifications, the active query.

Exactly once, whatever WeChat resends or loses:
- an attempt's out_trade_no (<order number>P<nn>) is stored and committed before WeChat is called,
  and every create, query and close of the attempt carries it; a new attempt (new number) is only
  made once the previous one is closed at WeChat, so an order never has two payable attempts;
- a payment is applied (TRANSACTION.SUCCESS notification, its resends, or the query of a pending
  attempt whose notification was lost) under the order's row lock by a conditional UPDATE of the
  Payment from pending: the first applies, the others find it paid and change nothing;
- what WeChat says is checked against what we stored: the merchant, the app and the amount; a
  mismatch is refused, logged and recorded in the notification's result, and changes nothing;
- money that arrives for an order already paid by another attempt, or already cancelled, makes the
  attempt `surplus` and books a refund of all of it at once (reason surplus_payment, not counted
  against the order), submitted after commit.

WeChat is never called inside a database transaction; rows are written before (numbers) and after
(answers). Lock order: Order, then its Payment rows (commerce.models).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from commerce.errors import PaymentErrorCode
from commerce.models import (
    Order,
    OrderEvent,
    OrderEventKind,
    OrderStatus,
    Payment,
    PaymentRecordStatus,
    PaymentStatus,
    Refund,
    RefundReason,
)
from commerce.wechat import config
from commerce.wechat.pay import PayClient, PayError, Transaction, pay_client, transaction_of
from tenants.db import connection
from tenants.errors import Conflict, JiumaError
from tenants.models import Domain

logger = logging.getLogger(__name__)

PREPAY_FRESH = timedelta(minutes=100)  # WeChat keeps a prepay_id 2 hours; past this, ask for it again
QUERY_AFTER = timedelta(minutes=1)  # a pending attempt is asked about once its notification is overdue
_PAID_STATES = ("SUCCESS", "REFUND")  # REFUND: paid, then (partly) refunded
_DEAD_STATES = ("CLOSED", "REVOKED", "PAYERROR")
ACTOR = "wechat"


@dataclass(frozen=True)
class PaymentStart:
    """An attempt ready for the consumer page: `js_params` go to WeixinJSBridge getBrandWCPayRequest."""

    payment: Payment
    js_params: dict[str, str]


def notify_url() -> str:
    """Where WeChat Pay posts this brand's notifications (the same address as payouts')."""
    domain = (
        Domain.objects.filter(tenant_id=connection.tenant.pk, is_primary=True).values_list("domain", flat=True).first()
    )
    return str(settings.WECHAT_PAY_NOTIFY_URL).format(domain=domain or "localhost", number=connection.tenant.number)


def client() -> PayClient:
    return pay_client(config.require())


def _unavailable(exc: PayError) -> JiumaError:
    if exc.kind == "rejected":
        return Conflict(PaymentErrorCode.WECHAT_REFUSED, _("微信支付拒绝了该请求，请稍后重试或联系客服。"))
    return JiumaError(PaymentErrorCode.WECHAT_UNAVAILABLE, _("微信支付暂时不可用，请稍后重试。"), status=503)


# -- starting a payment -----------------------------------------------------------------------


def _check_payable(order: Order, now: datetime) -> None:
    if order.payment_status == PaymentStatus.PAID:
        raise Conflict(PaymentErrorCode.ORDER_ALREADY_PAID, _("订单已支付。"))
    if (
        order.status != OrderStatus.PENDING_PAYMENT
        or order.payment_status != PaymentStatus.UNPAID
        or order.total_fen <= 0
        or (order.pay_by is not None and order.pay_by <= now)
    ):
        raise Conflict(PaymentErrorCode.ORDER_NOT_PAYABLE, _("订单当前不能支付。"))


def _open_attempt(order: Order, openid: str, now: datetime) -> Payment:
    """The order's pending attempt for this payer, or a new one (number committed before WeChat)."""
    with transaction.atomic():
        locked = Order.objects.select_for_update().get(pk=order.pk)
        _check_payable(locked, now)
        pending = list(locked.payments.select_for_update().filter(status=PaymentRecordStatus.PENDING).order_by("id"))
        if pending:
            return pending[-1]
        count = locked.payments.count()
        if count >= 99:
            raise Conflict(PaymentErrorCode.ORDER_NOT_PAYABLE, _("该订单支付尝试次数过多，请重新下单。"))
        return Payment.objects.create(
            order=locked,
            out_trade_no=f"{locked.number}P{count + 1:02d}",
            amount_fen=locked.total_fen,
            payer_openid=openid,
            created_at=now,
        )


def _mark_closed(payment: Payment, now: datetime) -> bool:
    return bool(
        Payment.objects.filter(pk=payment.pk, status=PaymentRecordStatus.PENDING).update(
            status=PaymentRecordStatus.CLOSED, closed_at=now
        )
    )


def start_payment(
    order: Order, *, openid: str, now: datetime | None = None, pay: PayClient | None = None
) -> PaymentStart:
    """Open (or reopen) the order's WeChat Pay attempt for `openid` and sign the consumer page's
    parameters. The pending attempt is reused while it is the same payer (WeChat answers the same
    out_trade_no with the same order); another payer, or an attempt WeChat has closed, is closed
    and replaced by a new number."""
    now = now or timezone.now()
    if not openid:
        raise JiumaError(PaymentErrorCode.NO_OPENID, _("请在微信中打开后支付。"))
    pay = pay or client()
    for _round in range(3):
        payment = _open_attempt(order, openid, now)
        if payment.payer_openid != openid or payment.amount_fen != order.total_fen:
            if close_attempt(payment, now=now, pay=pay) is not None:
                raise Conflict(PaymentErrorCode.ORDER_ALREADY_PAID, _("订单已支付。"))
            continue
        if payment.prepay_id and payment.prepay_at is not None and payment.prepay_at > now - PREPAY_FRESH:
            return PaymentStart(payment, pay.jsapi_params(payment.prepay_id))
        try:
            prepay_id = pay.create_jsapi(
                out_trade_no=payment.out_trade_no,
                description=_("订单 %(number)s") % {"number": order.number},
                amount_fen=payment.amount_fen,
                openid=openid,
                notify_url=notify_url(),
                time_expire=order.pay_by,
            )
        except PayError as exc:
            if exc.code == "ORDER_CLOSED":  # expired at WeChat (time_expire): a new attempt
                _mark_closed(payment, now)
                continue
            if exc.code == "ORDERPAID" and query_attempt(payment, now=now, pay=pay) is not None:
                raise Conflict(PaymentErrorCode.ORDER_ALREADY_PAID, _("订单已支付。")) from exc
            raise _unavailable(exc) from exc
        Payment.objects.filter(pk=payment.pk, status=PaymentRecordStatus.PENDING).update(
            prepay_id=prepay_id, prepay_at=now
        )
        payment.refresh_from_db()
        return PaymentStart(payment, pay.jsapi_params(prepay_id))
    raise Conflict(PaymentErrorCode.ORDER_NOT_PAYABLE, _("订单当前不能支付。"))


# -- applying what WeChat says ----------------------------------------------------------------


def _book_surplus(order: Order, payment: Payment, now: datetime) -> Refund:
    """Under the order's lock: refund all of a payment the order did not need (not booked against it)."""
    existing = Refund.objects.filter(payment=payment, reason=RefundReason.SURPLUS_PAYMENT).first()
    if existing is not None:
        return existing
    from commerce.services import refunds

    refund = Refund.objects.create(
        refund_no=refunds.next_refund_no(order),
        order=order,
        payment=payment,
        reason=RefundReason.SURPLUS_PAYMENT,
        note=_("重复支付退回"),
        amount_fen=payment.amount_fen,
        created_by=f"system:{ACTOR}",
        created_at=now,
        next_attempt_at=now,
    )
    OrderEvent.objects.create(
        order=order,
        kind=OrderEventKind.PAYMENT_SURPLUS,
        actor=ACTOR,
        at=now,
        data={"payment": payment.out_trade_no, "refund_no": refund.refund_no, "amount_fen": payment.amount_fen},
    )
    refunds.schedule(refund)
    return refund


def apply_transaction(resource: dict[str, Any] | Transaction, now: datetime | None = None) -> str:
    """Apply WeChat's word on a payment (notification resource or query answer). Idempotent: a resend,
    a second event or the query after the notification change nothing. Returns what happened."""
    now = now or timezone.now()
    trade = resource if isinstance(resource, Transaction) else transaction_of(resource)
    payment = Payment.objects.filter(out_trade_no=trade.out_trade_no).first()
    if payment is None:
        return f"unknown payment {trade.out_trade_no}"[:200]
    account = config.require()
    if trade.mchid != account.mchid or trade.appid != account.appid:
        logger.error("payment %s: WeChat names mchid %s appid %s", payment.out_trade_no, trade.mchid, trade.appid)
        return f"refused {payment.out_trade_no}: merchant mismatch ({trade.mchid}/{trade.appid})"[:200]
    if trade.trade_state in _DEAD_STATES:
        closed = _mark_closed(payment, now)
        return f"{payment.out_trade_no} {'closed' if closed else 'unchanged'} ({trade.trade_state})"
    if trade.trade_state not in _PAID_STATES:
        return f"{payment.out_trade_no} waiting ({trade.trade_state})"
    if trade.amount_fen != payment.amount_fen or not trade.transaction_id:
        logger.error(
            "payment %s: WeChat says %s fen (%s), we asked %s: not applied",
            payment.out_trade_no,
            trade.amount_fen,
            trade.transaction_id,
            payment.amount_fen,
        )
        return f"refused {payment.out_trade_no}: amount mismatch {trade.amount_fen} != {payment.amount_fen}"[:200]
    paid_at = _parse_time(trade.success_time) or now
    with transaction.atomic():
        order = Order.objects.select_for_update().get(pk=payment.order_id)
        locked = Payment.objects.select_for_update().get(pk=payment.pk)
        if locked.status in (PaymentRecordStatus.PAID, PaymentRecordStatus.SURPLUS):
            return f"{locked.out_trade_no} already {locked.status}"
        # A closed attempt cannot be paid at WeChat; if WeChat says it was, the money is real: surplus.
        takes_order = (
            locked.status == PaymentRecordStatus.PENDING
            and order.status == OrderStatus.PENDING_PAYMENT
            and order.payment_status == PaymentStatus.UNPAID
        )
        status = PaymentRecordStatus.PAID if takes_order else PaymentRecordStatus.SURPLUS
        Payment.objects.filter(pk=locked.pk, status=locked.status).update(
            status=status, transaction_id=trade.transaction_id, paid_at=paid_at
        )
        locked.refresh_from_db()
        if takes_order:
            from commerce.services import orders

            orders.mark_paid(order, payment=locked, now=now)
            return f"{locked.out_trade_no} paid"
        refund = _book_surplus(order, locked, now)
        return f"{locked.out_trade_no} surplus, refund {refund.refund_no}"


def _parse_time(value: str) -> datetime | None:
    try:
        parsed = datetime.fromisoformat(value) if value else None
    except ValueError:
        return None
    return parsed if parsed is not None and parsed.tzinfo is not None else None


def query_attempt(payment: Payment, *, now: datetime | None = None, pay: PayClient | None = None) -> Payment | None:
    """Ask WeChat about one attempt and apply the answer. Returns the attempt if it turned out paid
    (paid or surplus), else None."""
    now = now or timezone.now()
    pay = pay or client()
    trade = pay.query_transaction(payment.out_trade_no)
    if trade is None:
        return None
    apply_transaction(trade, now)
    payment.refresh_from_db()
    return payment if payment.status in (PaymentRecordStatus.PAID, PaymentRecordStatus.SURPLUS) else None


def close_attempt(payment: Payment, *, now: datetime | None = None, pay: PayClient | None = None) -> Payment | None:
    """Close one pending attempt at WeChat, then here. If WeChat says it was paid, it is applied
    instead and returned; None once closed. PayError (kind retry, ...) when WeChat cannot say."""
    now = now or timezone.now()
    pay = pay or client()
    try:
        pay.close_transaction(payment.out_trade_no)  # False: WeChat never had it: nothing to close there
    except PayError as exc:
        if exc.code != "ORDERPAID":
            raise
        found = query_attempt(payment, now=now, pay=pay)
        if found is not None:
            return found
        raise
    _mark_closed(payment, now)
    return None


def close_open(order: Order, now: datetime | None = None, *, pay: PayClient | None = None) -> Payment | None:
    """Before an unpaid order is cancelled: close its pending attempts at WeChat. Returns the attempt
    WeChat says was paid (applied meanwhile: the caller must not cancel if it is `paid`), else None.
    Raises JiumaError wechat_pay_unavailable when WeChat cannot be asked: do not cancel yet."""
    now = now or timezone.now()
    pending = list(order.payments.filter(status=PaymentRecordStatus.PENDING).order_by("id"))
    if not pending:
        return None
    pay = pay or client()
    paid: Payment | None = None
    for payment in pending:
        try:
            found = close_attempt(payment, now=now, pay=pay)
        except PayError as exc:
            raise _unavailable(exc) from exc
        if found is not None and (paid is None or found.status == PaymentRecordStatus.PAID):
            paid = found
    return paid


def query_pending(*, now: datetime | None = None, limit: int = 200, pay: PayClient | None = None) -> dict[str, int]:
    """The sweeper (task payment_pending): ask WeChat about pending attempts whose notification is
    overdue. Paid → applied (a lost notification); closed at WeChat → closed; still unpaid for an
    order that no longer waits for it → closed at WeChat. Returns counts by outcome."""
    now = now or timezone.now()
    counts = {"paid": 0, "closed": 0, "waiting": 0, "errors": 0}
    attempts = list(
        Payment.objects.filter(status=PaymentRecordStatus.PENDING, created_at__lte=now - QUERY_AFTER)
        .select_related("order")
        .order_by("created_at")[:limit]
    )
    if not attempts:
        return counts
    pay = pay or client()
    for payment in attempts:
        try:
            trade = pay.query_transaction(payment.out_trade_no)
            if trade is not None and trade.trade_state in _PAID_STATES + _DEAD_STATES:
                apply_transaction(trade, now)
            elif payment.order.status != OrderStatus.PENDING_PAYMENT or (
                trade is None and payment.created_at <= now - 2 * PREPAY_FRESH
            ):
                close_attempt(payment, now=now, pay=pay)
        except PayError as exc:
            logger.warning("querying payment %s: %s", payment.out_trade_no, exc)
            counts["errors"] += 1
            continue
        payment.refresh_from_db()
        if payment.status in (PaymentRecordStatus.PAID, PaymentRecordStatus.SURPLUS):
            counts["paid"] += 1
        elif payment.status == PaymentRecordStatus.CLOSED:
            counts["closed"] += 1
        else:
            counts["waiting"] += 1
    return counts


def handle_event(event_type: str, resource: dict[str, Any], now: datetime) -> str:
    """A WeChat Pay notification about an order (from the inbox, rewards.services.payouts): returns
    the result recorded on the PayNotification row."""
    if event_type.startswith("TRANSACTION."):
        return apply_transaction(resource, now)
    if event_type.startswith("REFUND."):
        from commerce.services import refunds

        return refunds.apply_notification(resource, now)
    return "ignored"
