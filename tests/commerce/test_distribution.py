"""Distribution (分销): affiliates, bindings, the two-level plan, the commission ledger (accrue →
freeze → settle, reversed on refund, after settlement too) and withdrawals, paid through the payout
outbox against the WeChat simulator. Orders and refunds are written as rows (their services are
elsewhere); every row respects the models' constraints."""

from __future__ import annotations

import itertools
import time
from datetime import timedelta
from typing import Any

import pytest
from django.db import IntegrityError, transaction
from django.test import Client
from django.utils import timezone
from django_tenants.utils import tenant_context

from commerce.models import (
    Affiliate,
    AffiliateCustomer,
    AffiliateStatus,
    AfterSale,
    AfterSaleKind,
    AfterSaleLine,
    AfterSaleReason,
    AfterSaleStatus,
    CommissionEntry,
    CommissionKind,
    CommissionRate,
    CommissionState,
    CommissionWithdrawal,
    DistributionPolicy,
    Member,
    Order,
    OrderLine,
    OrderStatus,
    Payment,
    PaymentRecordStatus,
    PaymentStatus,
    Product,
    Refund,
    RefundReason,
    RefundRecordStatus,
    Sku,
    WithdrawalStatus,
)
from commerce.services import distribution
from commerce.services.distribution import LineDraft
from rewards.models import Payout, PayoutStatus
from rewards.services import commission_payouts, payouts
from tenants.errors import JiumaError
from tests.conftest import Brand
from tests.support.threads import run_concurrently
from tests.support.wechat import PayBrand, alpha_pay, wechat_sim  # noqa: F401 (fixtures)

_numbers = itertools.count(1)
many_connections = pytest.mark.xdist_group("many_connections")


@pytest.fixture
def in_alpha(alpha: Brand) -> Any:
    with tenant_context(alpha.tenant):
        yield alpha


def _n() -> int:
    return next(_numbers)


def rules(**fields: Any) -> DistributionPolicy:
    values: dict[str, Any] = {
        "is_enabled": True,
        "levels": 2,
        "rate_l1_bp": 1000,
        "rate_l2_bp": 500,
        "requires_approval": False,
        "min_withdrawal_fen": 100,
        **fields,
    }
    DistributionPolicy.objects.update_or_create(pk=1, defaults=values)
    return DistributionPolicy.current()


def member(openid: str | None = None) -> Member:
    return Member.objects.create(openid=openid or f"o-dist-{_n()}-{time.monotonic_ns()}")


def affiliate(of: Member | None = None, parent: Affiliate | None = None, **fields: Any) -> Affiliate:
    values: dict[str, Any] = {
        "member": of or member(),
        "parent": parent,
        "status": AffiliateStatus.ACTIVE,
        "approved_at": timezone.now(),
    }
    values.update(fields)
    return Affiliate.objects.create(**values)


def sku() -> Sku:
    product = Product.objects.create(name=f"酱香53度 {_n()}")
    return Sku.objects.create(product=product, code=f"SKU-D{_n()}-{time.monotonic_ns()}", spec="500ml", price_fen=1)


def paid_order(buyer: Member, l1: Affiliate | None, l2: Affiliate | None, lines: list[tuple[int, int, int]]) -> Order:
    """A paid express order awaiting shipment; lines are (paid_fen, rate_l1_bp, rate_l2_bp)."""
    now = timezone.now()
    total = sum(paid for paid, _r1, _r2 in lines)
    order = Order.objects.create(
        number=f"2026112409{_n():04d}{time.monotonic_ns() % 1_000_000:06d}",
        member=buyer,
        status=OrderStatus.AWAITING_SHIPMENT,
        payment_status=PaymentStatus.PAID,
        paid_at=now,
        items_fen=total,
        total_fen=total,
        receiver_name="张三",
        receiver_phone="13800138000",
        region_code="520102",
        address_detail="遵义路 1 号",
        affiliate_l1=l1,
        affiliate_l2=l2,
    )
    for paid, r1, r2 in lines:
        item = sku()
        OrderLine.objects.create(
            order=order,
            sku=item,
            sku_name=item.spec,
            sku_code=item.code,
            list_price_fen=paid,
            unit_price_fen=paid,
            quantity=1,
            subtotal_fen=paid,
            paid_fen=paid,
            rate_l1_bp=r1,
            rate_l2_bp=r2,
        )
    Payment.objects.create(
        out_trade_no=f"{order.number}P01",
        order=order,
        amount_fen=total,
        payer_openid="o-payer",
        status=PaymentRecordStatus.PAID,
        transaction_id=f"42{order.number}",
        paid_at=now,
    )
    return order


def receive(order: Order) -> Order:
    now = timezone.now()
    Order.objects.filter(pk=order.pk).update(
        status=OrderStatus.RECEIVED, received_at=now, after_sales_until=now + timedelta(days=7)
    )
    return Order.objects.get(pk=order.pk)


def complete(order: Order) -> Order:
    Order.objects.filter(pk=order.pk).update(status=OrderStatus.COMPLETED, completed_at=timezone.now())
    return Order.objects.get(pk=order.pk)


def refund(order: Order, amounts: dict[int, int], *, reason: str = RefundReason.AFTER_SALE) -> Refund:
    """A succeeded refund of `amounts` ({line id: fen}); an after-sale names its lines."""
    now = timezone.now()
    seq = Refund.objects.filter(order=order).count() + 1
    total = sum(amounts.values())
    after_sale = None
    if reason == RefundReason.AFTER_SALE:
        after_sale = AfterSale.objects.create(
            number=f"{order.number}A{seq:02d}",
            order=order,
            kind=AfterSaleKind.REFUND_ONLY,
            reason=AfterSaleReason.DAMAGED,
            amount_fen=total,
            status=AfterSaleStatus.REFUNDED,
            finished_at=now,
        )
        for line_id, amount in amounts.items():
            AfterSaleLine.objects.create(after_sale=after_sale, order_line_id=line_id, quantity=1, amount_fen=amount)
    made = Refund.objects.create(
        refund_no=f"{order.number}R{seq:02d}",
        order=order,
        payment=Payment.objects.get(order=order),
        after_sale=after_sale,
        reason=reason,
        amount_fen=total,
        status=RefundRecordStatus.SUCCEEDED,
        finished_at=now,
        created_by="staff:owner",
    )
    Order.objects.filter(pk=order.pk).update(
        refund_booked_fen=order.refund_booked_fen + total,
        refunded_fen=order.refunded_fen + total,
        refund_status="full" if order.refunded_fen + total == order.total_fen else "partial",
    )
    order.refresh_from_db()
    return made


def settled_credit(who: Affiliate, amount: int, ref: str = "") -> CommissionEntry:
    """Settled commission from a manual adjustment (no order needed)."""
    return CommissionEntry.objects.create(
        affiliate=who,
        kind=CommissionKind.ADJUST,
        from_state="",
        to_state=CommissionState.SETTLED,
        amount_fen=amount,
        source=f"adjust:{ref or _n()}",
    )


def refused(code: str) -> Any:
    return pytest.raises(JiumaError, match=r".", check=lambda exc: exc.code == code)


# --- affiliates and bindings ------------------------------------------------------------------


def test_applying_is_free_and_the_parent_is_the_affiliate_whose_link_brought_the_applicant(in_alpha: Brand) -> None:
    rules(requires_approval=True)
    first = distribution.apply(member())
    assert first.status == AffiliateStatus.APPLIED
    assert {f.name for f in Affiliate._meta.get_fields()}.isdisjoint({"fee_fen", "entry_fee_fen", "deposit_fen"})
    first = distribution.approve(first, actor="owner")
    assert first.status == AffiliateStatus.ACTIVE
    assert first.approved_at is not None
    with refused("affiliate_wrong_state"):
        distribution.approve(first, actor="owner")

    newcomer = member()
    distribution.bind(newcomer, distribution.link_token(first))
    second = distribution.approve(distribution.apply(newcomer), actor="owner")
    assert second.parent_id == first.pk
    with refused("already_affiliate"):
        distribution.apply(newcomer)

    # A parent who is not active is not taken; a link names its affiliate as the parent.
    distribution.suspend(first, actor="owner")
    third = distribution.apply(member(), token=distribution.link_token(first))
    assert third.parent_id is None
    distribution.resume(first, actor="owner")
    fourth = distribution.apply(member(), token=distribution.link_token(second))
    assert fourth.parent_id == second.pk
    rejected = distribution.reject(third, actor="owner")
    assert rejected.status == AffiliateStatus.REJECTED
    with refused("invalid_affiliate_link"):
        distribution.apply(member(), token="forged")

    # The tree cannot loop: a parent always joined earlier.
    with pytest.raises(IntegrityError, match="affiliate_parent_earlier"), transaction.atomic():
        Affiliate.objects.filter(pk=first.pk).update(parent=fourth)


def test_self_referral_is_refused(in_alpha: Brand) -> None:
    rules()
    own = affiliate()
    with refused("self_binding"):
        distribution.bind(own.member, distribution.link_token(own))
    assert not AffiliateCustomer.objects.filter(member=own.member).exists()
    # Even a binding written by hand never pays the buyer on their own order.
    AffiliateCustomer.objects.create(member=own.member, affiliate=own)
    plan = distribution.plan_for(own.member, [LineDraft(product_id=1)])
    assert (plan.affiliate_l1_id, plan.affiliate_l2_id, plan.rates) == (None, None, [(0, 0)])
    # Nor as the second level: the buyer is the parent of the affiliate they bought through.
    child = affiliate(parent=own)
    AffiliateCustomer.objects.filter(member=own.member).update(affiliate=child)
    plan = distribution.plan_for(own.member, [LineDraft(product_id=1)])
    assert (plan.affiliate_l1_id, plan.affiliate_l2_id, plan.rates) == (child.pk, None, [(1000, 0)])


def test_the_first_binding_wins_until_it_lapses(in_alpha: Brand) -> None:
    rules(binding_days=7)
    one, two = affiliate(), affiliate()
    buyer = member()
    now = timezone.now()
    bound = distribution.bind(buyer, distribution.link_token(one), now=now)
    assert bound.expires_at == now + timedelta(days=7)
    assert distribution.bind(buyer, distribution.link_token(one), now=now).pk == bound.pk
    with refused("already_bound"):
        distribution.bind(buyer, distribution.link_token(two), now=now + timedelta(days=6))
    rebound = distribution.bind(buyer, distribution.link_token(two), now=now + timedelta(days=8))
    assert rebound.affiliate_id == two.pk
    distribution.suspend(one, actor="owner")
    with refused("affiliate_inactive"):
        distribution.bind(member(), distribution.link_token(one))
    with refused("invalid_affiliate_link"):
        distribution.bind(member(), distribution.link_token(one) + "x")


# --- the plan: two levels at most ---------------------------------------------------------------


def test_an_order_pays_two_levels_and_never_a_third(in_alpha: Brand) -> None:
    rules()
    top = affiliate()
    middle = affiliate(parent=top)
    bottom = affiliate(parent=middle)
    buyer = member()
    distribution.bind(buyer, distribution.link_token(bottom))
    special = Product.objects.create(name="特供")
    CommissionRate.objects.create(product=special, rate_l1_bp=2000, rate_l2_bp=300)
    plan = distribution.plan_for(
        buyer,
        [
            LineDraft(product_id=special.pk),
            LineDraft(product_id=special.pk + 1000),
            LineDraft(product_id=special.pk, is_mall=True),
            LineDraft(product_id=special.pk, pays_commission=False),
        ],
    )
    assert (plan.affiliate_l1_id, plan.affiliate_l2_id) == (bottom.pk, middle.pk)
    assert plan.rates == [(2000, 300), (1000, 500), (0, 0), (0, 0)]

    order = paid_order(buyer, bottom, middle, [(10_000, 1000, 500)])
    entries = distribution.accrue_for_order(order)
    assert sorted((e.affiliate_id, e.level, e.amount_fen) for e in entries) == [
        (middle.pk, 2, 500),
        (bottom.pk, 1, 1000),
    ]
    assert not CommissionEntry.objects.filter(affiliate=top).exists()
    # The ledger itself has no third level.
    line = order.lines.get()
    with pytest.raises(IntegrityError, match="commission_entry_level_1_or_2"), transaction.atomic():
        CommissionEntry.objects.create(
            affiliate=top,
            kind=CommissionKind.ACCRUE,
            to_state=CommissionState.PENDING,
            amount_fen=1,
            order_line=line,
            level=3,
            source="accrue:x:L3",
        )

    # One level only: no second affiliate, no second rate.
    rules(levels=1, rate_l2_bp=0)
    plan = distribution.plan_for(buyer, [LineDraft(product_id=special.pk)])
    assert (plan.affiliate_l2_id, plan.rates) == (None, [(2000, 0)])
    # An inactive parent earns nothing; disabled distribution names nobody.
    rules()
    distribution.suspend(middle, actor="owner")
    assert distribution.plan_for(buyer, [LineDraft(product_id=1)]).affiliate_l2_id is None
    rules(is_enabled=False)
    assert distribution.plan_for(buyer, [LineDraft(product_id=1)]).affiliate_l1_id is None


# --- the ledger ---------------------------------------------------------------------------------


def test_accrue_freeze_and_settle_are_idempotent(in_alpha: Brand) -> None:
    rules()
    parent = affiliate()
    child = affiliate(parent=parent)
    order = paid_order(member(), child, parent, [(9_999, 1000, 500), (1_000, 0, 0)])
    first = distribution.accrue_for_order(order)
    again = distribution.accrue_for_order(order)
    assert [e.pk for e in first] == [e.pk for e in again]
    assert sorted(e.amount_fen for e in first) == [499, 999]  # 9999 × 10% and 5% (down); 0 % books nothing
    assert distribution.balances(child) == distribution.Balances(pending=999, frozen=0, settled=0)
    with refused("commission_order_wrong_state"):
        distribution.settle_for_order(order)

    order = receive(order)
    distribution.freeze_for_order(order)
    distribution.freeze_for_order(order)
    distribution.accrue_for_order(order)
    assert distribution.balances(child) == distribution.Balances(pending=0, frozen=999, settled=0)

    order = complete(order)
    distribution.settle_for_order(order)
    distribution.settle_for_order(order)
    distribution.freeze_for_order(order)
    assert distribution.balances(child) == distribution.Balances(pending=0, frozen=0, settled=999)
    assert distribution.balances(parent) == distribution.Balances(pending=0, frozen=0, settled=499)
    assert CommissionEntry.objects.filter(order_line__order=order).count() == 6


def test_partial_refunds_reverse_proportionally_and_the_last_takes_the_rest(in_alpha: Brand) -> None:
    rules()
    parent = affiliate()
    child = affiliate(parent=parent)
    order = paid_order(member(), child, parent, [(10_000, 333, 100), (5_000, 1000, 0)])
    goods, other = order.lines.order_by("id")
    distribution.accrue_for_order(order)  # goods: 333 and 100; other: 500
    first = refund(order, {goods.pk: 3_000})
    entries = distribution.reverse_for_refund(first)
    assert sorted((e.level, e.amount_fen, e.from_state) for e in entries) == [(1, 99, "pending"), (2, 30, "pending")]
    assert distribution.reverse_for_refund(first) == entries  # idempotent
    order = receive(order)
    distribution.freeze_for_order(order)  # what is left pending is frozen
    assert distribution.balances(child).frozen == 333 - 99 + 500
    second = refund(order, {goods.pk: 3_000, other.pk: 2_500})
    assert sorted(
        (e.order_line_id, e.level, e.amount_fen, e.from_state) for e in distribution.reverse_for_refund(second)
    ) == [
        (goods.pk, 1, 99, "frozen"),
        (goods.pk, 2, 30, "frozen"),
        (other.pk, 1, 250, "frozen"),
    ]
    last = refund(order, {goods.pk: 4_000})  # the rest of the line: whatever commission is left
    assert sorted((e.level, e.amount_fen) for e in distribution.reverse_for_refund(last)) == [(1, 135), (2, 40)]
    assert distribution.balances(child) == distribution.Balances(pending=0, frozen=250, settled=0)
    assert distribution.balances(parent) == distribution.Balances(pending=0, frozen=0, settled=0)
    # A whole-order refund (e.g. a paid order cancelled) takes what is left of every line.
    final = refund(order, {other.pk: 2_500}, reason=RefundReason.MANUAL)
    assert [e.amount_fen for e in distribution.reverse_for_refund(final)] == [250]
    assert distribution.balances(child) == distribution.Balances(pending=0, frozen=0, settled=0)


def test_a_refund_after_settlement_leaves_a_debt_that_later_commission_pays_off(in_alpha: Brand) -> None:
    rules()
    earner = affiliate(member())
    first = paid_order(member(), earner, None, [(10_000, 1000, 0)])
    distribution.accrue_for_order(first)
    distribution.freeze_for_order(receive(first))
    distribution.settle_for_order(complete(first))
    withdrawal = distribution.request_withdrawal(earner, 1_000)
    distribution.approve_withdrawal(withdrawal, actor="finance")
    assert distribution.mark_paid(withdrawal, bill_no="JM1")
    assert distribution.balances(earner).settled == 0

    late = refund(first, {first.lines.get().pk: 10_000}, reason=RefundReason.MANUAL)
    (reversal,) = distribution.reverse_for_refund(late)
    assert (reversal.from_state, reversal.amount_fen) == (CommissionState.SETTLED, 1_000)
    debt = distribution.balances(earner)
    assert (debt.settled, debt.withdrawable) == (-1_000, 0)
    with refused("insufficient_commission"):
        distribution.request_withdrawal(earner, 100)

    second = paid_order(member(), earner, None, [(15_000, 1000, 0)])
    distribution.accrue_for_order(second)
    distribution.freeze_for_order(receive(second))
    distribution.settle_for_order(complete(second))
    assert distribution.balances(earner).settled == 500
    with refused("insufficient_commission"):
        distribution.request_withdrawal(earner, 501)
    assert distribution.request_withdrawal(earner, 500).amount_fen == 500
    assert distribution.balances(earner).settled == 0


def test_a_group_buy_waiting_for_its_team_and_a_surplus_refund_move_nothing(in_alpha: Brand) -> None:
    rules()
    earner = affiliate()
    order = paid_order(member(), earner, None, [(10_000, 1000, 0)])
    Order.objects.filter(pk=order.pk).update(kind="group_buy", status=OrderStatus.AWAITING_GROUP)
    assert distribution.accrue_for_order(order) == []
    Order.objects.filter(pk=order.pk).update(status=OrderStatus.AWAITING_SHIPMENT)
    assert len(distribution.accrue_for_order(order)) == 1
    surplus = Refund(order=order, reason=RefundReason.SURPLUS_PAYMENT, amount_fen=10_000)
    assert distribution.reverse_for_refund(surplus) == []


# --- withdrawals --------------------------------------------------------------------------------


def test_withdrawal_rules_and_their_returns(in_alpha: Brand) -> None:
    rules(min_withdrawal_fen=200)
    earner = affiliate()
    settled_credit(earner, 1_000)
    with refused("withdrawal_below_minimum"):
        distribution.request_withdrawal(earner, 199)
    with refused("insufficient_commission"):
        distribution.request_withdrawal(earner, 1_001)
    first = distribution.request_withdrawal(earner, 600)
    with refused("withdrawal_in_progress"):
        distribution.request_withdrawal(earner, 200)
    assert distribution.balances(earner).settled == 400
    distribution.cancel_withdrawal(first, member=earner.member)
    assert distribution.balances(earner).settled == 1_000
    with refused("withdrawal_wrong_state"):
        distribution.cancel_withdrawal(first, member=earner.member)
    second = distribution.request_withdrawal(earner, 700)
    distribution.reject_withdrawal(second, actor="finance", note="资料不全")
    third = distribution.request_withdrawal(earner, 300)
    distribution.approve_withdrawal(third, actor="finance")
    assert distribution.mark_failed(third, reason="FAIL")
    assert not distribution.mark_failed(third, reason="FAIL")  # once
    assert distribution.balances(earner).settled == 1_000
    kinds = list(CommissionEntry.objects.filter(affiliate=earner).values_list("kind", flat=True))
    assert kinds.count(CommissionKind.WITHDRAW_RETURN) == 3


@many_connections
def test_concurrent_withdrawals_never_take_more_than_is_settled(alpha: Brand) -> None:
    def setup() -> int:
        rules()
        earner = affiliate(member())
        settled_credit(earner, 1_000)
        return earner.pk

    ((earner_id,),) = [run_concurrently([setup], tenant=alpha.tenant)]

    def withdraw_until_refused() -> list[Any]:
        earner = Affiliate.objects.get(pk=earner_id)
        outcomes: list[Any] = []
        for _attempt in range(200):
            try:
                made = distribution.request_withdrawal(earner, 300)
            except JiumaError as exc:
                if exc.code == "withdrawal_in_progress":
                    time.sleep(0.002)
                    continue
                outcomes.append(exc.code)
                return outcomes
            distribution.approve_withdrawal(made, actor="finance")
            distribution.mark_paid(made, bill_no="x")
            outcomes.append(made.amount_fen)
        return outcomes

    try:
        results = run_concurrently([withdraw_until_refused for _ in range(8)], tenant=alpha.tenant)
        assert not [r for r in results if isinstance(r, BaseException)], results
        paid = [x for batch in results for x in batch if isinstance(x, int)]
        assert sum(paid) == 900
        assert {x for batch in results for x in batch if isinstance(x, str)} == {"insufficient_commission"}

        def totals() -> tuple[int, int]:
            return (
                distribution.balances(earner_id).settled,
                CommissionWithdrawal.objects.filter(affiliate_id=earner_id, status=WithdrawalStatus.PAID).count(),
            )

        ((found,),) = [run_concurrently([totals], tenant=alpha.tenant)]
        assert found == (100, 3)
    finally:

        def cleanup() -> None:
            CommissionEntry.objects.filter(affiliate_id=earner_id).delete()
            CommissionWithdrawal.objects.filter(affiliate_id=earner_id).delete()
            made = Affiliate.objects.get(pk=earner_id)
            made.delete()
            Member.objects.filter(pk=made.member_id).delete()
            DistributionPolicy.objects.filter(pk=1).delete()

        run_concurrently([cleanup], tenant=alpha.tenant)


# --- paid through the payout outbox (WeChat simulator) -----------------------------------------


def _deliver_last(pay: PayBrand) -> Any:
    deadline = time.monotonic() + 5
    while not pay.catcher.received and time.monotonic() < deadline:
        time.sleep(0.02)
    assert pay.catcher.received
    _headers, body = pay.catcher.received[-1]
    return Client(HTTP_HOST=pay.brand.host).post(
        "/pay/notify/", data=body, content_type="application/json", **pay.catcher.meta(-1)
    )


def _approved_payout(openid: str) -> tuple[Affiliate, CommissionWithdrawal, Payout]:
    rules()
    earner = affiliate(member(openid))
    settled_credit(earner, 1_000)
    withdrawal = distribution.request_withdrawal(earner, 600)
    payout = commission_payouts.approve(withdrawal, actor="finance")
    withdrawal.refresh_from_db()
    assert withdrawal.status == WithdrawalStatus.APPROVED
    assert (payout.source, payout.member_id, payout.openid, payout.amount_fen) == (
        f"commission:{withdrawal.pk}",
        earner.member_id,
        openid,
        600,
    )
    assert withdrawal.payout_bill_no == payout.out_bill_no
    # Never the bill number of a claim with the same id (each source kind has its own letter).
    assert payout.out_bill_no != payouts.bill_no(f"claim:{withdrawal.pk}")
    assert commission_payouts.create_payout(withdrawal) == payout  # once
    return earner, withdrawal, payout


def test_an_approved_withdrawal_is_paid_through_the_payout_and_marked_paid(alpha_pay: PayBrand) -> None:  # noqa: F811
    earner, withdrawal, payout = _approved_payout("o-affiliate-paid")
    sent = payouts.pay(payout.pk)
    assert sent is not None
    assert sent.status == PayoutStatus.SUBMITTED
    alpha_pay.simulator.confirm_transfer(payout.out_bill_no, alpha_pay.mchid)
    assert _deliver_last(alpha_pay).status_code == 204
    payout.refresh_from_db()
    withdrawal.refresh_from_db()
    assert payout.status == PayoutStatus.SUCCEEDED
    assert withdrawal.status == WithdrawalStatus.PAID
    assert withdrawal.finished_at is not None
    assert distribution.balances(earner).settled == 400
    assert _deliver_last(alpha_pay).status_code == 204  # a resend changes nothing
    assert distribution.balances(earner).settled == 400


def test_a_failed_payout_returns_the_money(alpha_pay: PayBrand) -> None:  # noqa: F811
    earner, withdrawal, payout = _approved_payout("o-affiliate-failed")
    payouts.pay(payout.pk)
    alpha_pay.simulator.fail_transfer(payout.out_bill_no, mchid=alpha_pay.mchid)
    assert _deliver_last(alpha_pay).status_code == 204
    payout.refresh_from_db()
    withdrawal.refresh_from_db()
    assert payout.status == PayoutStatus.FAILED
    assert withdrawal.status == WithdrawalStatus.FAILED
    assert distribution.balances(earner).settled == 1_000
    # The money is there to withdraw again.
    assert distribution.request_withdrawal(earner, 1_000).amount_fen == 1_000


def test_the_sweeper_pays_approved_withdrawals_and_catches_a_missed_outcome(in_alpha: Brand) -> None:
    rules()
    earner = affiliate(member("o-affiliate-sweep"))
    settled_credit(earner, 1_000)
    withdrawal = distribution.approve_withdrawal(distribution.request_withdrawal(earner, 500), actor="finance")
    assert commission_payouts.sweep() == 1  # the payout is made
    payout = Payout.objects.get(source=withdrawal.payout_source)
    Payout.objects.filter(pk=payout.pk).update(status=PayoutStatus.SUCCEEDED, finished_at=timezone.now())
    assert commission_payouts.sweep() == 1  # the hook was missed: applied now
    withdrawal.refresh_from_db()
    assert withdrawal.status == WithdrawalStatus.PAID
    assert commission_payouts.sweep() == 0
