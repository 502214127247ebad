"""Paying approved commission withdrawals (分销佣金提现) through the Payout outbox.

Commerce never pays (commerce.models.CommissionWithdrawal): an approved withdrawal becomes one
rewards.Payout whose source is the withdrawal's `payout_source` ("commission:<id>", unique, so it is
paid at most once) and whose merchant bill number is fixed then; the payout worker
(rewards.services.payouts) sends it like a red packet. When WeChat says the transfer succeeded the
withdrawal becomes paid; when it failed or was cancelled (the consumer never confirmed), failed, and
its amount returns to the affiliate's settled balance (commerce.services.distribution.mark_*).

The hook in payouts (`on_payout_final`) runs right after the payout's final state is written; if it
is ever missed (a crash between the two), `sweep` finds approved withdrawals whose payout is final
and applies the outcome, and creates the payout of any approved withdrawal that has none.
"""

from __future__ import annotations

from datetime import datetime

from django.db import IntegrityError, transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from commerce.errors import DistributionErrorCode as E
from commerce.models import CommissionWithdrawal, WithdrawalStatus
from commerce.services import distribution
from rewards.models import Payout, PayoutStatus
from rewards.services import payouts
from tenants.errors import Conflict

SOURCE_PREFIX = "commission:"
REMARK = "分销佣金提现"
_FAILED = (PayoutStatus.FAILED, PayoutStatus.CANCELLED)


def bill_no(withdrawal: CommissionWithdrawal) -> str:
    """The merchant bill number of a withdrawal's payout (payouts.bill_no of its source)."""
    return payouts.bill_no(withdrawal.payout_source)


def create_payout(withdrawal: CommissionWithdrawal, *, now: datetime | None = None) -> Payout:
    """The payout of an approved withdrawal (in the caller's transaction; the existing one if it was
    made already). Sent to the worker after commit."""
    now = now or timezone.now()
    source = withdrawal.payout_source
    existing = Payout.objects.filter(source=source).first()
    if existing is not None:
        return existing
    found = (
        CommissionWithdrawal.objects.select_related("affiliate__member")
        .filter(pk=withdrawal.pk, status=WithdrawalStatus.APPROVED)
        .first()
    )
    if found is None:
        raise Conflict(E.WITHDRAWAL_WRONG_STATE, _("该提现不在待打款状态。"))
    member = found.affiliate.member
    if not member.openid:
        raise Conflict(E.NO_OPENID, _("分销员未绑定微信，无法打款。"))
    number = bill_no(found)
    try:
        with transaction.atomic():
            payout = payouts.create(source, member=member, amount_fen=found.amount_fen, remark=REMARK, now=now)
    except IntegrityError:  # made meanwhile by another worker
        return Payout.objects.get(source=source)
    CommissionWithdrawal.objects.filter(pk=found.pk).update(payout_bill_no=number)
    return payout


def approve(withdrawal: CommissionWithdrawal, *, actor: str, now: datetime | None = None) -> Payout:
    """Finance approve a requested withdrawal and hand it to the payout worker, in one transaction."""
    now = now or timezone.now()
    with transaction.atomic(durable=True):
        approved = distribution.approve_withdrawal(withdrawal, actor=actor, now=now)
        return create_payout(approved, now=now)


def _withdrawal_of(payout: Payout) -> CommissionWithdrawal | None:
    if not payout.source.startswith(SOURCE_PREFIX):
        return None
    ident = payout.source.removeprefix(SOURCE_PREFIX)
    if not ident.isdigit():
        return None
    return CommissionWithdrawal.objects.filter(pk=int(ident)).first()


def on_payout_final(payout: Payout, now: datetime | None = None) -> None:
    """A commission payout reached its final state: the withdrawal becomes paid or failed (its
    amount back to settled). Repeated calls change nothing."""
    now = now or timezone.now()
    withdrawal = _withdrawal_of(payout)
    if withdrawal is None:
        return
    if payout.status == PayoutStatus.SUCCEEDED:
        distribution.mark_paid(withdrawal, bill_no=payout.out_bill_no, now=now)
    elif payout.status in _FAILED:
        distribution.mark_failed(withdrawal, reason=payout.last_error or str(_("打款失败")), now=now)


def sweep(now: datetime | None = None, limit: int = 200) -> int:
    """The approved withdrawals' sweeper (commission_withdrawal_due): create missing payouts, and
    apply final payouts whose outcome the withdrawal has not taken yet. Returns how many it moved."""
    now = now or timezone.now()
    moved = 0
    approved = list(
        CommissionWithdrawal.objects.filter(status=WithdrawalStatus.APPROVED).order_by("reviewed_at")[:limit]
    )
    payouts = {p.source: p for p in Payout.objects.filter(source__in=[w.payout_source for w in approved])}
    for withdrawal in approved:
        payout = payouts.get(withdrawal.payout_source)
        if payout is None:
            try:
                with transaction.atomic():
                    create_payout(withdrawal, now=now)
                moved += 1
            except Conflict:
                continue  # no openid: staff see it waiting
        elif payout.status == PayoutStatus.SUCCEEDED or payout.status in _FAILED:
            on_payout_final(payout, now)
            moved += 1
    return moved
