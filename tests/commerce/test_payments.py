"""Paying orders through WeChat Pay (the local simulator): every payment applied exactly once through
duplicate, repeated, late and lost notifications; amounts checked; money that arrives for an order
that no longer wants it refunded in full."""

from __future__ import annotations

import base64
import json
import secrets
import time
from datetime import datetime, timedelta
from typing import Any

import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding
from django.test import Client
from django.utils import timezone

from commerce.models import (
    CancelReason,
    Member,
    Order,
    OrderEvent,
    OrderEventKind,
    OrderLine,
    OrderStatus,
    Payment,
    PaymentRecordStatus,
    PaymentStatus,
    PayNotification,
    Product,
    Refund,
    RefundReason,
    Sku,
)
from commerce.services import catalog, payments
from tests.support import wechat as _wechat_fixtures
from tests.support.wechat import PayBrand

wechat_sim, alpha_pay = _wechat_fixtures.wechat_sim, _wechat_fixtures.alpha_pay  # fixtures used here

# -- helpers shared by the payment, refund and after-sale tests -------------------------------------


def make_order(
    member: Member | None = None, *, total_fen: int = 10_000, quantity: int = 2, status: str = "pending"
) -> Order:
    """An express order of one line built directly (respecting the model's constraints): pending
    payment, or already paid (`status="paid"`, awaiting shipment, with a paid Payment row that
    WeChat does not know)."""
    now = timezone.now()
    member = member or Member.objects.create(openid=f"o-buyer-{secrets.token_hex(4)}")
    product = Product.objects.create(name="飞天 53度")
    sku = Sku.objects.create(
        product=product, code=f"SKU-{secrets.token_hex(5)}", spec="500ml", price_fen=total_fen // quantity
    )
    number = timezone.localtime(now).strftime("%Y%m%d%H%M%S") + f"{secrets.randbelow(10**6):06d}"
    paid = status == "paid"
    order = Order.objects.create(
        number=number,
        member=member,
        status=OrderStatus.AWAITING_SHIPMENT if paid else OrderStatus.PENDING_PAYMENT,
        payment_status=PaymentStatus.PAID if paid else PaymentStatus.UNPAID,
        items_fen=total_fen,
        total_fen=total_fen,
        receiver_name="张三",
        receiver_phone="13800138000",
        region_code="520102",
        address_detail="中华北路 1 号",
        pay_by=None if paid else now + timedelta(minutes=30),
        paid_at=now if paid else None,
        created_at=now,
    )
    unit = total_fen // quantity
    line = OrderLine.objects.create(
        order=order,
        sku=sku,
        sku_name="飞天 53度 500ml",
        sku_code=sku.code,
        list_price_fen=unit,
        unit_price_fen=unit,
        quantity=quantity,
        subtotal_fen=unit * quantity,
        paid_fen=unit * quantity,
    )
    # The line holds its units, as checkout leaves them (the orders service releases them on refunds).
    catalog.inbound(sku.pk, quantity, ref=f"test-{sku.code}", actor="test")
    catalog.reserve([catalog.StockLine(sku.pk, quantity, line.stock_source)])
    if paid:
        Payment.objects.create(
            order=order,
            out_trade_no=f"{number}P01",
            amount_fen=total_fen,
            status=PaymentRecordStatus.PAID,
            payer_openid=member.openid or "o",
            transaction_id=f"4200{secrets.randbelow(10**20):020d}",
            paid_at=now,
        )
    return order


def deliver(pay: PayBrand, event_type: str, number: str, *, copies: int = 1) -> list[int]:
    """Hand WeChat's notification(s) of `event_type` naming `number` (out_trade_no / out_refund_no),
    as WeChat posted them, to the brand's notify endpoint. Returns the answers' status codes."""
    deadline = time.monotonic() + 5
    while True:
        wanted = {
            n["id"]
            for n in pay.simulator.notifications()
            if n["event_type"] == event_type
            and number in (n["resource"].get("out_trade_no"), n["resource"].get("out_refund_no"))
            and event_type.startswith(("TRANSACTION", "REFUND"))
            and (event_type.startswith("TRANSACTION") or n["resource"].get("out_refund_no") == number)
        }
        posts = [i for i, (_h, body) in enumerate(pay.catcher.received) if json.loads(body)["id"] in wanted]
        if len(posts) >= copies or time.monotonic() > deadline:
            break
        time.sleep(0.02)
    assert len(posts) >= copies, (event_type, number, pay.simulator.notifications()[-2:])
    client = Client(HTTP_HOST=pay.brand.host)
    return [
        client.post(
            "/pay/notify/", data=pay.catcher.received[i][1], content_type="application/json", **pay.catcher.meta(i)
        ).status_code
        for i in posts[:copies]
    ]


def paid_order(pay: PayBrand, *, total_fen: int = 10_000, quantity: int = 2) -> tuple[Order, Payment]:
    """An order paid the real way: attempt, the consumer pays in WeChat, the notification applied."""
    order = make_order(total_fen=total_fen, quantity=quantity)
    started = payments.start_payment(order, openid=order.member.openid or "")
    pay.simulator.pay(started.payment.out_trade_no)
    assert deliver(pay, "TRANSACTION.SUCCESS", started.payment.out_trade_no) == [204]
    order.refresh_from_db()
    started.payment.refresh_from_db()
    assert started.payment.status == PaymentRecordStatus.PAID
    return order, started.payment


def sim_payment(pay: PayBrand, out_trade_no: str) -> dict[str, Any]:
    (found,) = [p for p in pay.simulator.payments(pay.mchid) if p["out_trade_no"] == out_trade_no]
    return found


# -- tests --------------------------------------------------------------------------------------


def test_a_payment_is_started_signed_paid_and_applied_once(alpha_pay: PayBrand) -> None:
    order = make_order()
    started = payments.start_payment(order, openid=order.member.openid or "")
    payment = started.payment
    assert payment.out_trade_no == f"{order.number}P01"
    assert (payment.status, payment.amount_fen) == (PaymentRecordStatus.PENDING, 10_000)
    assert sim_payment(alpha_pay, payment.out_trade_no)["prepay_id"] == payment.prepay_id
    params = started.js_params
    assert params["package"] == f"prepay_id={payment.prepay_id}"
    assert params["signType"] == "RSA"
    # paySign: RSA-SHA256 with the merchant key over appId, timeStamp, nonceStr, package (one per line).
    from commerce.wechat import config

    key = serialization.load_pem_private_key(config.require().private_key.encode(), None).public_key()
    message = "".join(f"{params[k]}\n" for k in ("appId", "timeStamp", "nonceStr", "package")).encode()
    key.verify(base64.b64decode(params["paySign"]), message, padding.PKCS1v15(), hashes.SHA256())  # type: ignore[union-attr,call-arg,arg-type]
    # Opening the page again reuses the attempt (no second WeChat order).
    again = payments.start_payment(order, openid=order.member.openid or "")
    assert again.payment.pk == payment.pk
    assert (
        len([p for p in alpha_pay.simulator.payments(alpha_pay.mchid) if p["out_trade_no"].startswith(order.number)])
        == 1
    )

    alpha_pay.simulator.pay(payment.out_trade_no)
    assert deliver(alpha_pay, "TRANSACTION.SUCCESS", payment.out_trade_no) == [204]
    payment.refresh_from_db()
    order.refresh_from_db()
    assert payment.status == PaymentRecordStatus.PAID
    assert payment.transaction_id == sim_payment(alpha_pay, payment.out_trade_no)["transaction_id"]
    assert order.payment_status == PaymentStatus.PAID
    assert order.status == OrderStatus.AWAITING_SHIPMENT
    # The same event again: answered as received, applied once.
    assert deliver(alpha_pay, "TRANSACTION.SUCCESS", payment.out_trade_no) == [204]
    assert PayNotification.objects.count() == 1
    # A second, different event for the same payment (and the active query): nothing changes.
    resource = sim_payment(alpha_pay, payment.out_trade_no)
    assert payments.handle_event("TRANSACTION.SUCCESS", resource, timezone.now()).endswith("already paid")
    assert payments.query_pending(now=timezone.now() + timedelta(hours=1))["paid"] == 0
    assert OrderEvent.objects.filter(order=order, kind=OrderEventKind.PAID).count() == 2  # status + payment_status
    assert not Refund.objects.filter(order=order).exists()
    with pytest.raises(Exception, match="已支付"):
        payments.start_payment(order, openid=order.member.openid or "")


def test_a_duplicated_notification_is_applied_once(alpha_pay: PayBrand) -> None:
    order = make_order()
    payment = payments.start_payment(order, openid=order.member.openid or "").payment
    alpha_pay.simulator.inject_notification("duplicate", 1)
    alpha_pay.simulator.pay(payment.out_trade_no)
    assert deliver(alpha_pay, "TRANSACTION.SUCCESS", payment.out_trade_no, copies=2) == [204, 204]
    payment.refresh_from_db()
    assert payment.status == PaymentRecordStatus.PAID
    assert PayNotification.objects.count() == 1
    assert OrderEvent.objects.filter(order=order, kind=OrderEventKind.PAID).count() == 2


def test_an_amount_mismatch_is_refused_recorded_and_changes_nothing(alpha_pay: PayBrand) -> None:
    order = make_order(total_fen=10_000)
    payment = payments.start_payment(order, openid=order.member.openid or "").payment
    alpha_pay.simulator.pay(payment.out_trade_no)
    # What we stored differs from what WeChat took (as if the row or the notification were wrong).
    Payment.objects.filter(pk=payment.pk).update(amount_fen=9_999)
    assert deliver(alpha_pay, "TRANSACTION.SUCCESS", payment.out_trade_no) == [204]
    payment.refresh_from_db()
    order.refresh_from_db()
    assert payment.status == PaymentRecordStatus.PENDING
    assert order.payment_status == PaymentStatus.UNPAID
    (note,) = PayNotification.objects.all()
    assert "amount mismatch" in note.result
    # Another merchant's or app's payment is refused likewise.
    resource = {**sim_payment(alpha_pay, payment.out_trade_no), "mchid": "1900000000"}
    assert "merchant mismatch" in payments.handle_event("TRANSACTION.SUCCESS", resource, timezone.now())
    payment.refresh_from_db()
    assert payment.status == PaymentRecordStatus.PENDING


def test_a_lost_notification_is_made_up_for_by_the_pending_query(alpha_pay: PayBrand) -> None:
    order = make_order()
    now = timezone.now()
    payment = payments.start_payment(order, openid=order.member.openid or "", now=now).payment
    alpha_pay.simulator.inject_notification("drop", 1)
    alpha_pay.simulator.pay(payment.out_trade_no)
    assert payments.query_pending(now=now)["paid"] == 0  # not overdue yet: not asked
    counts = payments.query_pending(now=now + payments.QUERY_AFTER + timedelta(seconds=1))
    assert counts["paid"] == 1
    payment.refresh_from_db()
    order.refresh_from_db()
    assert payment.status == PaymentRecordStatus.PAID
    assert order.payment_status == PaymentStatus.PAID
    # The notification WeChat resends later finds it done.
    resource = sim_payment(alpha_pay, payment.out_trade_no)
    assert payments.handle_event("TRANSACTION.SUCCESS", resource, timezone.now()).endswith("already paid")


def test_cancelling_closes_the_attempt_at_wechat_and_a_new_attempt_gets_a_new_number(alpha_pay: PayBrand) -> None:
    order = make_order()
    first = payments.start_payment(order, openid=order.member.openid or "").payment
    assert payments.close_open(order) is None
    first.refresh_from_db()
    assert first.status == PaymentRecordStatus.CLOSED
    assert sim_payment(alpha_pay, first.out_trade_no)["trade_state"] == "CLOSED"
    second = payments.start_payment(order, openid=order.member.openid or "").payment
    assert second.out_trade_no == f"{order.number}P02"
    # Another payer (e.g. a new login) closes the open attempt first and gets a new number.
    third = payments.start_payment(order, openid="o-someone-else").payment
    assert third.out_trade_no == f"{order.number}P03"
    second.refresh_from_db()
    assert second.status == PaymentRecordStatus.CLOSED


def test_closing_an_attempt_that_was_paid_applies_the_payment_instead(alpha_pay: PayBrand) -> None:
    order = make_order()
    payment = payments.start_payment(order, openid=order.member.openid or "").payment
    alpha_pay.simulator.inject_notification("drop", 1)
    alpha_pay.simulator.pay(payment.out_trade_no)  # paid in WeChat; we never heard
    found = payments.close_open(order)
    assert found is not None
    assert found.status == PaymentRecordStatus.PAID
    order.refresh_from_db()
    assert order.payment_status == PaymentStatus.PAID


def _cancel_directly(order: Order, now: datetime) -> None:
    """The order was cancelled without learning of the payment (e.g. its group-buy team failed)."""
    Order.objects.filter(pk=order.pk).update(
        status=OrderStatus.CANCELLED,
        payment_status=PaymentStatus.CLOSED,
        cancelled_at=now,
        cancel_reason=CancelReason.TIMEOUT,
    )


def test_a_payment_arriving_after_the_cancel_is_surplus_and_refunded_once(alpha_pay: PayBrand) -> None:
    from commerce.services import refunds

    order = make_order(total_fen=8_800)
    payment = payments.start_payment(order, openid=order.member.openid or "").payment
    alpha_pay.simulator.configure_merchant(alpha_pay.mchid, refund_delay_seconds=None)
    alpha_pay.simulator.pay(payment.out_trade_no)
    _cancel_directly(order, timezone.now())
    assert deliver(alpha_pay, "TRANSACTION.SUCCESS", payment.out_trade_no) == [204]
    payment.refresh_from_db()
    order.refresh_from_db()
    assert payment.status == PaymentRecordStatus.SURPLUS
    assert payment.transaction_id
    assert (order.status, order.payment_status) == (OrderStatus.CANCELLED, PaymentStatus.CLOSED)
    (refund,) = Refund.objects.filter(order=order)
    assert (refund.reason, refund.amount_fen, refund.refund_no) == (
        RefundReason.SURPLUS_PAYMENT,
        8_800,
        f"{order.number}R01",
    )
    assert order.refund_booked_fen == 0  # not the order's money
    assert OrderEvent.objects.filter(order=order, kind=OrderEventKind.PAYMENT_SURPLUS).count() == 1
    # Resent: nothing more booked.
    assert deliver(alpha_pay, "TRANSACTION.SUCCESS", payment.out_trade_no) == [204]
    assert payments.handle_event("TRANSACTION.SUCCESS", sim_payment(alpha_pay, payment.out_trade_no), timezone.now())
    assert Refund.objects.filter(order=order).count() == 1
    # The worker sends it; WeChat pays it back; the notification closes it.
    sent = refunds.submit(refund.pk)
    assert sent is not None
    assert sent.status == "processing"
    alpha_pay.simulator.complete_refund(refund.refund_no)
    assert deliver(alpha_pay, "REFUND.SUCCESS", refund.refund_no) == [204]
    refund.refresh_from_db()
    assert refund.status == "succeeded"
    assert refund.provider_refund_id
    assert [
        r["amount"]["refund"]
        for r in alpha_pay.simulator.refunds(alpha_pay.mchid)
        if r["out_refund_no"] == refund.refund_no
    ] == [8_800]


def test_payment_of_an_order_not_payable_is_refused(alpha_pay: PayBrand) -> None:
    order = make_order(status="paid")
    with pytest.raises(Exception, match="已支付"):
        payments.start_payment(order, openid="o-x")
    pending = make_order()
    Order.objects.filter(pk=pending.pk).update(pay_by=timezone.now() - timedelta(seconds=1))
    pending.refresh_from_db()
    with pytest.raises(Exception, match="不能支付"):
        payments.start_payment(pending, openid="o-x")
    assert not Payment.objects.filter(order=pending).exists()


def test_other_events_are_ignored(alpha_pay: PayBrand) -> None:
    assert payments.handle_event("SOMETHING.ELSE", {}, timezone.now()) == "ignored"
    assert payments.handle_event("TRANSACTION.SUCCESS", {"out_trade_no": "x"}, timezone.now()).startswith("unknown")
