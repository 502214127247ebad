"""After-sales: refund only and return-and-refund, each step a conditional transition (an illegal one
answers 409 and changes nothing), the refund through refunds.book, deadlines swept."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from commerce.models import (
    AfterSale,
    AfterSaleKind,
    AfterSaleReason,
    AfterSaleStatus,
    Order,
    OrderEvent,
    OrderLine,
    OrderStatus,
    Refund,
    RefundReason,
    ShopPolicy,
)
from commerce.services import aftersales, refunds
from commerce.services.aftersales import LineRequest
from tenants.errors import Conflict, JiumaError
from tests.commerce.test_payments import deliver, make_order, paid_order
from tests.support import wechat as _wechat_fixtures
from tests.support.wechat import PayBrand

wechat_sim, alpha_pay = _wechat_fixtures.wechat_sim, _wechat_fixtures.alpha_pay  # fixtures used here


def _ship(order: Order) -> None:
    now = timezone.now()
    Order.objects.filter(pk=order.pk).update(
        status=OrderStatus.SHIPPED, shipped_at=now, auto_receive_at=now + timedelta(days=10)
    )
    order.refresh_from_db()


def _line(order: Order) -> OrderLine:
    return OrderLine.objects.get(order=order)


def test_refund_only_is_approved_refunded_and_closed_by_the_refund(alpha_pay: PayBrand) -> None:
    alpha_pay.simulator.configure_merchant(alpha_pay.mchid, refund_delay_seconds=None)
    order, _payment = paid_order(alpha_pay, total_fen=10_000, quantity=2)
    sale = aftersales.request(
        order,
        member=order.member,
        kind=AfterSaleKind.REFUND_ONLY,
        lines=[LineRequest(_line(order).pk, 1)],
        reason=AfterSaleReason.NOT_WANTED,
    )
    assert (sale.number, sale.status, sale.amount_fen, sale.due_at) == (f"{order.number}A01", "requested", 5_000, None)
    approved = aftersales.approve(sale, actor="staff:cs")
    assert approved.status == AfterSaleStatus.REFUNDING
    refund = Refund.objects.get(after_sale=sale)
    assert (refund.reason, refund.amount_fen, refund.refund_no) == (
        RefundReason.AFTER_SALE,
        5_000,
        f"{order.number}R01",
    )
    assert _line(order).refund_quantity == 1
    refunds.submit(refund.pk)
    alpha_pay.simulator.complete_refund(refund.refund_no)
    assert deliver(alpha_pay, "REFUND.SUCCESS", refund.refund_no) == [204]
    sale.refresh_from_db()
    assert sale.status == AfterSaleStatus.REFUNDED
    assert sale.finished_at is not None


def test_return_and_refund_goes_through_return_and_receipt(alpha_pay: PayBrand) -> None:
    order = make_order(status="paid", total_fen=9_000, quantity=3)
    line = _line(order)
    with pytest.raises(Conflict) as refused:  # nothing to send back before shipment
        aftersales.request(
            order, member=order.member, kind="return_refund", lines=[LineRequest(line.pk, 1)], reason="damaged"
        )
    assert refused.value.code == "after_sale_not_allowed"
    _ship(order)
    now = timezone.now()
    sale = aftersales.request(
        order, member=order.member, kind="return_refund", lines=[LineRequest(line.pk, 3)], reason="damaged", now=now
    )
    assert sale.amount_fen == 9_000
    waiting = aftersales.approve(sale, actor="staff:cs", now=now)
    assert waiting.status == AfterSaleStatus.AWAITING_RETURN
    assert waiting.due_at == now + timedelta(days=ShopPolicy.objects.get().return_days)
    back = aftersales.submit_return(waiting, member=order.member, carrier_code="SF", tracking_no="SF1234567890")
    assert (back.status, back.return_tracking_no, back.due_at) == ("returned", "SF1234567890", None)
    done = aftersales.confirm_return(back, actor="staff:wh", restock=False)
    assert (done.status, done.restock) == (AfterSaleStatus.REFUNDING, False)
    refund = Refund.objects.get(after_sale=sale)
    assert refund.amount_fen == 9_000
    order.refresh_from_db()
    assert order.refund_booked_fen == 9_000


def test_illegal_after_sale_steps_are_refused_with_409_and_change_nothing(alpha_pay: PayBrand) -> None:
    order = make_order(status="paid", total_fen=10_000, quantity=2)
    _ship(order)
    line = _line(order)
    sale = aftersales.request(
        order, member=order.member, kind="return_refund", lines=[LineRequest(line.pk, 1)], reason="quality"
    )
    with pytest.raises(Conflict) as second:
        aftersales.request(
            order, member=order.member, kind="refund_only", lines=[LineRequest(line.pk, 1)], reason="quality"
        )
    assert second.value.code == "after_sale_already_open"
    events_before = OrderEvent.objects.filter(order=order).count()
    illegal = [
        lambda: aftersales.submit_return(sale, member=order.member, carrier_code="SF", tracking_no="SF123456"),
        lambda: aftersales.confirm_return(sale, actor="staff:wh"),
    ]
    for step in illegal:
        with pytest.raises(Conflict) as refused:
            step()
        assert refused.value.code == "after_sale_wrong_state"
        assert refused.value.status_code == 409
    aftersales.approve(sale, actor="staff:cs")
    for step in [
        lambda: aftersales.approve(sale, actor="staff:cs"),
        lambda: aftersales.reject(sale, actor="staff:cs"),
        lambda: aftersales.confirm_return(sale, actor="staff:wh"),
    ]:
        with pytest.raises(Conflict) as refused:
            step()
        assert refused.value.code == "after_sale_wrong_state"
    sale.refresh_from_db()
    assert sale.status == AfterSaleStatus.AWAITING_RETURN
    assert OrderEvent.objects.filter(order=order).count() == events_before + 1  # the approval only
    assert not Refund.objects.filter(order=order).exists()
    with pytest.raises(JiumaError):
        aftersales.submit_return(sale, member=order.member, carrier_code="SF", tracking_no="bad no!")
    cancelled = aftersales.cancel(sale, member=order.member)
    assert cancelled.status == AfterSaleStatus.CANCELLED
    with pytest.raises(Conflict):
        aftersales.cancel(sale, member=order.member)
    # Closed: a new request is allowed again (next number).
    again = aftersales.request(
        order, member=order.member, kind="refund_only", lines=[LineRequest(line.pk, 1)], reason="quality"
    )
    assert again.number == f"{order.number}A02"


def test_after_sales_are_refused_outside_the_allowed_states_and_window(alpha_pay: PayBrand) -> None:
    pending = make_order()
    with pytest.raises(Conflict):
        aftersales.request(
            pending,
            member=pending.member,
            kind="refund_only",
            lines=[LineRequest(_line(pending).pk, 1)],
            reason="other",
        )
    order = make_order(status="paid")
    now = timezone.now()
    Order.objects.filter(pk=order.pk).update(
        status=OrderStatus.RECEIVED,
        shipped_at=now - timedelta(days=9),
        auto_receive_at=now - timedelta(days=8),
        received_at=now - timedelta(days=8),
        after_sales_until=now - timedelta(days=1),
    )
    order.refresh_from_db()
    with pytest.raises(Conflict) as late:
        aftersales.request(
            order, member=order.member, kind="refund_only", lines=[LineRequest(_line(order).pk, 1)], reason="other"
        )
    assert late.value.code == "after_sale_not_allowed"
    assert not AfterSale.objects.exists()


def test_deadlines_auto_approve_refund_only_and_close_unsent_returns(alpha_pay: PayBrand) -> None:
    ShopPolicy.objects.update_or_create(id=1, defaults={"after_sale_review_hours": 24})
    now = timezone.now()
    quick = make_order(status="paid")
    sale = aftersales.request(
        quick, member=quick.member, kind="refund_only", lines=[LineRequest(_line(quick).pk, 1)], reason="other", now=now
    )
    assert sale.due_at == now + timedelta(hours=24)
    shipped = make_order(status="paid")
    _ship(shipped)
    ret = aftersales.request(
        shipped, member=shipped.member, kind="return_refund", lines=[LineRequest(_line(shipped).pk, 1)], reason="other"
    )
    ret = aftersales.approve(ret, actor="staff:cs", now=now)
    assert aftersales.sweep_due(now) == 0
    later = now + timedelta(days=8)
    assert aftersales.sweep_due(later) == 2
    sale.refresh_from_db()
    ret.refresh_from_db()
    assert sale.status == AfterSaleStatus.REFUNDING
    assert Refund.objects.filter(after_sale=sale).count() == 1
    assert ret.status == AfterSaleStatus.CLOSED
    assert aftersales.sweep_due(later) == 0  # idempotent
