"""Refunds through WeChat Pay (the local simulator): booked under the order's lock within its caps,
numbered before WeChat is called, made exactly once through timeouts, 5xx and lost answers, closed
by the notification or the query, un-booked when WeChat fails them."""

from __future__ import annotations

import pytest
from django.utils import timezone

from commerce.models import (
    Member,
    Order,
    OrderEvent,
    OrderLine,
    Payment,
    Product,
    Refund,
    RefundReason,
    RefundRecordStatus,
    Sku,
    Stock,
    StockMovement,
)
from commerce.services import refunds
from commerce.wechat.pay import RefundResult
from tenants.errors import JiumaError
from tests.commerce.test_payments import deliver, make_order, paid_order
from tests.conftest import Brand
from tests.support import wechat as _wechat_fixtures
from tests.support.threads import run_concurrently
from tests.support.wechat import PayBrand

wechat_sim, alpha_pay = _wechat_fixtures.wechat_sim, _wechat_fixtures.alpha_pay  # fixtures used here

REFUNDS = "/v3/refund/domestic/refunds"


def _sim_refunds(pay: PayBrand, refund: Refund) -> list[dict[str, object]]:
    return [r for r in pay.simulator.refunds(pay.mchid) if r["out_refund_no"] == refund.refund_no]


def _book(order: Order, amount_fen: int, quantity: int = 1) -> Refund:
    line = OrderLine.objects.get(order=order)
    return refunds.book(
        order,
        amount_fen=amount_fen,
        lines=[refunds.RefundLine(line_id=line.pk, quantity=quantity, fen=amount_fen)],
        reason=RefundReason.MANUAL,
        actor="staff:owner",
    )


def test_a_refund_is_booked_numbered_sent_once_and_closed_by_the_notification(alpha_pay: PayBrand) -> None:
    alpha_pay.simulator.configure_merchant(alpha_pay.mchid, refund_delay_seconds=None)
    order, payment = paid_order(alpha_pay, total_fen=10_000, quantity=2)
    refund = _book(order, 5_000)
    assert (refund.refund_no, refund.status, refund.payment_id) == (f"{order.number}R01", "pending", payment.pk)
    order.refresh_from_db()
    assert order.refund_booked_fen == 5_000
    line = OrderLine.objects.get(order=order)
    assert (line.refund_quantity, line.refund_fen) == (1, 5_000)
    assert refunds.refund_lines(refund) == [refunds.RefundLine(line.pk, 1, 5_000, 0)]
    assert not _sim_refunds(alpha_pay, refund)  # nothing sent inside the booking transaction
    sent = refunds.submit(refund.pk)
    assert sent is not None
    assert sent.status == RefundRecordStatus.PROCESSING
    alpha_pay.simulator.complete_refund(refund.refund_no)
    assert deliver(alpha_pay, "REFUND.SUCCESS", refund.refund_no) == [204]
    assert deliver(alpha_pay, "REFUND.SUCCESS", refund.refund_no) == [204]  # resent: nothing more
    refund.refresh_from_db()
    assert refund.status == RefundRecordStatus.SUCCEEDED
    assert len(_sim_refunds(alpha_pay, refund)) == 1
    order.refresh_from_db()
    assert (order.refunded_fen, order.refund_status) == (5_000, "partial")  # orders.on_refund_succeeded
    # The worker asking again finds nothing to do.
    assert refunds.submit(refund.pk, now=timezone.now() + refunds.MAX_BACKOFF) is None
    second = _book(order, 5_000)
    assert second.refund_no == f"{order.number}R02"


@pytest.mark.parametrize("fault", ["timeout", "lost_response"])
def test_a_refund_whose_answer_was_lost_is_found_not_made_again(alpha_pay: PayBrand, fault: str) -> None:
    order, _payment = paid_order(alpha_pay)
    refund = _book(order, 3_000)
    alpha_pay.simulator.inject(fault, REFUNDS, 1)
    sent = refunds.submit(refund.pk)
    assert sent is not None
    assert sent.status == RefundRecordStatus.PROCESSING  # asked WeChat by the refund_no: it was made
    assert len(_sim_refunds(alpha_pay, refund)) == 1


def test_a_5xx_is_retried_later_with_the_same_refund_no(alpha_pay: PayBrand) -> None:
    order, _payment = paid_order(alpha_pay)
    refund = _book(order, 3_000)
    now = timezone.now()
    alpha_pay.simulator.inject("error_500", REFUNDS, 1)
    first = refunds.submit(refund.pk, now=now)
    assert first is not None
    assert first.status == RefundRecordStatus.PENDING
    assert "SYSTEM_ERROR" in first.last_error
    assert not _sim_refunds(alpha_pay, refund)
    assert refunds.submit(refund.pk, now=now) is None  # not due yet
    assert refunds.due(first.next_attempt_at) == [refund.pk]
    second = refunds.submit(refund.pk, now=first.next_attempt_at)
    assert second is not None
    assert (second.status, second.attempts, second.refund_no) == ("processing", 2, refund.refund_no)
    # A worker that died after sending: the next one asks, and WeChat still has one refund.
    assert refunds.submit(refund.pk, now=second.next_attempt_at) is not None
    assert len(_sim_refunds(alpha_pay, refund)) == 1
    # The query closes it when the notification never comes.
    alpha_pay.simulator.inject_notification("drop", 1)
    alpha_pay.simulator.complete_refund(refund.refund_no)
    refund.refresh_from_db()
    finished = refunds.submit(refund.pk, now=refund.next_attempt_at)
    assert finished is not None
    assert finished.status == RefundRecordStatus.SUCCEEDED


def test_a_refund_notification_before_our_answer_is_recorded_applies(alpha_pay: PayBrand) -> None:
    """REFUND.SUCCESS arrives while our row still says pending (the worker died after sending)."""
    alpha_pay.simulator.configure_merchant(alpha_pay.mchid, refund_delay_seconds=None)
    order, payment = paid_order(alpha_pay)
    refund = _book(order, 2_000)
    from commerce.services.payments import client, notify_url

    client().create_refund(
        out_refund_no=refund.refund_no,
        out_trade_no=payment.out_trade_no,
        refund_fen=2_000,
        total_fen=payment.amount_fen,
        reason="退款",
        notify_url=notify_url(),
    )
    alpha_pay.simulator.complete_refund(refund.refund_no)
    assert deliver(alpha_pay, "REFUND.SUCCESS", refund.refund_no) == [204]
    refund.refresh_from_db()
    assert refund.status == RefundRecordStatus.SUCCEEDED
    assert refunds.submit(refund.pk) is None
    assert len(_sim_refunds(alpha_pay, refund)) == 1


def test_a_failed_refund_is_unbooked_and_a_new_one_gets_a_new_number(alpha_pay: PayBrand) -> None:
    order = make_order(status="paid", total_fen=10_000)
    refund = _book(order, 4_000)
    failed = refunds.apply_result(refund, RefundResult(out_refund_no=refund.refund_no, status="ABNORMAL"))
    assert failed.status == RefundRecordStatus.FAILED
    order.refresh_from_db()
    line = OrderLine.objects.get(order=order)
    assert (order.refund_booked_fen, line.refund_quantity, line.refund_fen) == (0, 0, 0)
    # A late success for a failed refund changes nothing.
    assert refunds.apply_result(refund, RefundResult(refund.refund_no, "SUCCESS")).status == "failed"
    assert _book(order, 4_000).refund_no == f"{order.number}R02"


def test_refund_caps_and_bad_input_are_refused_with_nothing_written(alpha_pay: PayBrand) -> None:
    order = make_order(status="paid", total_fen=10_000, quantity=2)
    line = OrderLine.objects.get(order=order)
    cases = [
        {"amount_fen": 0},
        {"amount_fen": -1},
        {"amount_fen": 10_001},
        {"amount_fen": 6_000, "lines": [refunds.RefundLine(line.pk, 3, 6_000)]},
        {"amount_fen": 100, "lines": [refunds.RefundLine(line.pk + 999, 1, 100)]},
        {"amount_fen": 100, "points": 1},
    ]
    for case in cases:
        with pytest.raises(JiumaError):
            refunds.book(order, reason=RefundReason.MANUAL, actor="staff:owner", **case)  # type: ignore[arg-type]
    unpaid = make_order()
    with pytest.raises(JiumaError, match="未支付"):
        refunds.book(unpaid, amount_fen=100, reason=RefundReason.MANUAL, actor="staff:owner")
    assert not Refund.objects.exists()
    order.refresh_from_db()
    assert order.refund_booked_fen == 0


@pytest.mark.xdist_group("many_connections")
def test_two_concurrent_refund_bookings_never_exceed_the_order(alpha: Brand, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(refunds, "schedule", lambda refund: None)  # no worker: only the booking races

    def setup() -> int:
        return make_order(status="paid", total_fen=10_000, quantity=2).pk

    ((order_id,),) = [run_concurrently([setup], tenant=alpha.tenant)]
    try:

        def booking() -> object:
            order = Order.objects.get(pk=order_id)
            line = OrderLine.objects.get(order=order)
            return refunds.book(
                order,
                amount_fen=6_000,
                lines=[refunds.RefundLine(line.pk, 1, 5_000)],
                reason=RefundReason.MANUAL,
                actor="staff:owner",
            )

        outcomes = run_concurrently([booking, booking], tenant=alpha.tenant)
        booked = [o for o in outcomes if isinstance(o, Refund)]
        refused = [o for o in outcomes if isinstance(o, JiumaError)]
        assert len(booked) == 1, outcomes
        assert [e.code for e in refused] == ["refund_exceeds_paid"]

        def totals() -> tuple[int, int, int]:
            order = Order.objects.get(pk=order_id)
            return (
                order.refund_booked_fen,
                Refund.objects.filter(order=order).count(),
                OrderLine.objects.get(order=order).refund_fen,
            )

        assert run_concurrently([totals], tenant=alpha.tenant) == [(6_000, 1, 5_000)]
    finally:

        def cleanup() -> None:
            order = Order.objects.get(pk=order_id)
            member_id, sku_ids = (
                order.member_id,
                list(OrderLine.objects.filter(order=order).values_list("sku", flat=True)),
            )
            Refund.objects.filter(order=order).delete()
            OrderEvent.objects.filter(order=order).delete()
            OrderLine.objects.filter(order=order).delete()
            Payment.objects.filter(order=order).delete()
            order.delete()
            products = list(Sku.objects.filter(pk__in=sku_ids).values_list("product", flat=True))
            StockMovement.objects.filter(sku_id__in=sku_ids).delete()
            Stock.objects.filter(sku_id__in=sku_ids).delete()
            Sku.objects.filter(pk__in=sku_ids).delete()
            Product.objects.filter(pk__in=products).delete()
            Member.objects.filter(pk=member_id).delete()

        run_concurrently([cleanup], tenant=alpha.tenant)
