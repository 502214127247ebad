"""Distribution (分销): affiliates, their customers, the commission ledger and withdrawals.

The contract is the commerce.models docstring (lock order, the Affiliate and CommissionWithdrawal
machines, the commission ledger) and commerce.models.distribution. In short:

- Becoming an affiliate costs nothing, ever (there is no fee to take). The parent is the active
  affiliate whose share link the applicant came through (their live customer binding, or the link
  they apply from); the parent always joined earlier (a row created before), so the tree has no loop.
- A member arrives by an affiliate's signed share link and is bound to that affiliate (锁客): the
  first binding wins while it is live; once it has lapsed (policy binding_days) a new link rebinds.
  Nobody is bound to themselves, nor to an affiliate who is not active.
- Checkout asks `plan_for` who earns on an order (at most two levels: the buyer's affiliate and its
  parent, never the buyer) and at which rates per line; the order keeps that snapshot.
- The ledger, per order line and level: accrue at payment (a group buy: when its team succeeds),
  freeze at receipt, settle at completion; a succeeded refund reverses the line's share from whatever
  state it is in, after settlement too (the settled balance may go negative: a debt that later
  commission pays off). Every movement is one append-only CommissionEntry, once per source, so every
  function here may be called again: a retry books nothing twice. Balances are sums of entries.
- Withdrawals take from settled, under the affiliate's row lock, one open at a time. Commerce never
  pays: rewards.services.commission_payouts turns an approved withdrawal into a Payout and reports
  back through mark_paid / mark_failed.

The ledger movements run inside the caller's transaction (they lock the order row, step 3 of the
lock order, which the caller normally holds already); the member-facing services are durable.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from django.core import signing
from django.db import IntegrityError, transaction
from django.db.models import Q, Sum
from django.utils import timezone
from django.utils.translation import gettext as _

from commerce.errors import DistributionErrorCode as E
from commerce.models import (
    Affiliate,
    AffiliateCustomer,
    AffiliateStatus,
    AfterSaleLine,
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
    PaymentStatus,
    Refund,
    RefundReason,
    RefundRecordStatus,
    WithdrawalStatus,
)
from commerce.models.catalog import MAX_RATE_BP
from tenants.db import connection
from tenants.errors import Conflict, JiumaError, NotFound

_SALT = "jiuma.commerce.affiliate-link"
LEVELS = (1, 2)
# The order states in which a paid order's commission may accrue (a group buy leaves awaiting_group
# when its team succeeds), be frozen (received) and be settled (completed).
_ACCRUE_STATES = (
    OrderStatus.AWAITING_SHIPMENT,
    OrderStatus.AWAITING_PICKUP,
    OrderStatus.SHIPPED,
    OrderStatus.RECEIVED,
    OrderStatus.COMPLETED,
)
_FREEZE_STATES = (OrderStatus.RECEIVED, OrderStatus.COMPLETED)
_SETTLE_STATES = (OrderStatus.COMPLETED,)


def policy() -> DistributionPolicy:
    return DistributionPolicy.current()


# -- affiliates ---------------------------------------------------------------------------------


def link_token(affiliate: Affiliate) -> str:
    """The signed part of an affiliate's share link (names the brand and the affiliate)."""
    return signing.dumps([int(connection.tenant.number), affiliate.pk], salt=_SALT, compress=False)


def affiliate_of(token: str) -> Affiliate | None:
    """The affiliate a share link names, if the link is genuine and of this brand (any status)."""
    try:
        number, affiliate_id = signing.loads(token, salt=_SALT)
        affiliate_id = int(affiliate_id)
    except (signing.BadSignature, ValueError, TypeError):
        return None
    if number != int(connection.tenant.number):
        return None
    return Affiliate.objects.select_related("member").filter(pk=affiliate_id).first()


def _live(now: datetime) -> Q:
    return Q(expires_at__isnull=True) | Q(expires_at__gt=now)


def live_binding(member: Member | int, now: datetime | None = None) -> AffiliateCustomer | None:
    """The member's customer binding if it has not lapsed."""
    now = now or timezone.now()
    member_id = member if isinstance(member, int) else member.pk
    return AffiliateCustomer.objects.select_related("affiliate").filter(_live(now), member_id=member_id).first()


def apply(member: Member, *, token: str = "", now: datetime | None = None) -> Affiliate:
    """`member` applies to become an affiliate (free: nothing is ever charged). The parent is the
    affiliate of `token` (the link they apply from) or else of their live binding, when that one is
    active and not themselves. Active at once when the policy needs no approval."""
    now = now or timezone.now()
    rules = policy()
    if not rules.is_enabled:
        raise Conflict(E.DISABLED, _("分销功能未开启。"))
    parent: Affiliate | None = None
    if token:
        parent = affiliate_of(token)
        if parent is None:
            raise JiumaError(E.INVALID_LINK, _("邀请链接无效或已失效。"))
    else:
        binding = live_binding(member, now)
        parent = binding.affiliate if binding is not None else None
    if parent is not None and (parent.status != AffiliateStatus.ACTIVE or parent.member_id == member.pk):
        parent = None
    approved = not rules.requires_approval
    try:
        with transaction.atomic(durable=True):
            return Affiliate.objects.create(
                member=member,
                parent=parent,
                status=AffiliateStatus.ACTIVE if approved else AffiliateStatus.APPLIED,
                applied_at=now,
                approved_at=now if approved else None,
                reviewed_by="system:auto" if approved else "",
            )
    except IntegrityError as exc:
        if Affiliate.objects.filter(member=member).exists():
            raise Conflict(E.ALREADY_AFFILIATE, _("您已申请过成为分销员。")) from exc
        raise


def _move_affiliate(affiliate: Affiliate, frm: str, to: str, **changes: object) -> Affiliate:
    with transaction.atomic(durable=True):
        if not Affiliate.objects.filter(pk=affiliate.pk, status=frm).update(status=to, **changes):
            current = Affiliate.objects.filter(pk=affiliate.pk).values_list("status", flat=True).first()
            if current is None:
                raise NotFound(E.NOT_AFFILIATE, _("分销员不存在。"))
            raise Conflict(
                E.AFFILIATE_WRONG_STATE,
                _("该分销员当前状态为“%(status)s”，不能这样处理。") % {"status": AffiliateStatus(current).label},
            )
    return Affiliate.objects.get(pk=affiliate.pk)


def approve(affiliate: Affiliate, *, actor: str, now: datetime | None = None) -> Affiliate:
    now = now or timezone.now()
    return _move_affiliate(
        affiliate, AffiliateStatus.APPLIED, AffiliateStatus.ACTIVE, approved_at=now, reviewed_by=str(actor)[:150]
    )


def reject(affiliate: Affiliate, *, actor: str) -> Affiliate:
    return _move_affiliate(affiliate, AffiliateStatus.APPLIED, AffiliateStatus.REJECTED, reviewed_by=str(actor)[:150])


def suspend(affiliate: Affiliate, *, actor: str) -> Affiliate:
    """Earns nothing on orders created from now on; keeps (and may withdraw) what was earned."""
    return _move_affiliate(affiliate, AffiliateStatus.ACTIVE, AffiliateStatus.SUSPENDED, reviewed_by=str(actor)[:150])


def resume(affiliate: Affiliate, *, actor: str) -> Affiliate:
    return _move_affiliate(affiliate, AffiliateStatus.SUSPENDED, AffiliateStatus.ACTIVE, reviewed_by=str(actor)[:150])


def bind(member: Member, token: str, *, now: datetime | None = None) -> AffiliateCustomer:
    """Bind `member` to the affiliate of the share link `token` (锁客). The first binding wins while
    it is live (the same affiliate again is a no-op); a lapsed one is replaced. Refused: a forged link,
    one's own link, an affiliate who is not active."""
    now = now or timezone.now()
    rules = policy()
    if not rules.is_enabled:
        raise Conflict(E.DISABLED, _("分销功能未开启。"))
    affiliate = affiliate_of(token)
    if affiliate is None:
        raise JiumaError(E.INVALID_LINK, _("分享链接无效或已失效。"))
    if affiliate.member_id == member.pk:
        raise JiumaError(E.SELF_BINDING, _("不能通过自己的分享链接绑定自己。"))
    if affiliate.status != AffiliateStatus.ACTIVE:
        raise Conflict(E.AFFILIATE_INACTIVE, _("该分销员暂不可用。"))
    expires_at = now + timedelta(days=rules.binding_days) if rules.binding_days else None
    fields = {"affiliate": affiliate, "bound_at": now, "expires_at": expires_at, "source": f"share:{affiliate.pk}"}
    with transaction.atomic(durable=True):
        Member.objects.select_for_update().filter(pk=member.pk).first()  # serialises two links at once
        current = AffiliateCustomer.objects.filter(member=member).first()
        if current is None:
            return AffiliateCustomer.objects.create(member=member, **fields)
        if current.expires_at is None or current.expires_at > now:
            if current.affiliate_id == affiliate.pk:
                return current
            raise Conflict(E.ALREADY_BOUND, _("您已绑定其他分销员。"))
        AffiliateCustomer.objects.filter(pk=current.pk).update(**fields)
        return AffiliateCustomer.objects.get(pk=current.pk)


# -- checkout's plan ----------------------------------------------------------------------------


@dataclass(frozen=True)
class LineDraft:
    """What checkout knows of a line before it is written: its product, whether it is a points-mall
    line, and whether its campaign pays commission (True for ordinary goods)."""

    product_id: int
    is_mall: bool = False
    pays_commission: bool = True


@dataclass(frozen=True)
class Plan:
    """Who earns on an order and at which rates: the order's affiliate_l1 / affiliate_l2 and one
    (rate_l1_bp, rate_l2_bp) per line, in the lines' order (0 where nobody earns)."""

    affiliate_l1_id: int | None = None
    affiliate_l2_id: int | None = None
    rates: list[tuple[int, int]] = field(default_factory=list)


def plan_for(member: Member, lines: Sequence[LineDraft], *, now: datetime | None = None) -> Plan:
    """The distribution snapshot of `member`'s new order (read-only; checkout stores it on the order
    and its lines). Level 1: the buyer's live binding's affiliate if active and not the buyer; level
    2: its parent if active, the policy pays two levels and it is not the buyer. Rates: the product's
    CommissionRate, else the policy's; points-mall lines and campaigns that pay no commission: 0."""
    now = now or timezone.now()
    none = Plan(rates=[(0, 0)] * len(lines))
    rules = policy()
    if not rules.is_enabled:
        return none
    binding = live_binding(member, now)
    if binding is None:
        return none
    l1 = binding.affiliate
    if l1.status != AffiliateStatus.ACTIVE or l1.member_id == member.pk:
        return none
    l2: Affiliate | None = None
    if rules.levels == 2 and l1.parent_id is not None:
        parent = Affiliate.objects.filter(pk=l1.parent_id).first()
        if parent is not None and parent.status == AffiliateStatus.ACTIVE and parent.member_id != member.pk:
            l2 = parent
    own = {
        rate.product_id: (rate.rate_l1_bp, rate.rate_l2_bp)
        for rate in CommissionRate.objects.filter(product_id__in={line.product_id for line in lines})
    }
    rates: list[tuple[int, int]] = []
    for line in lines:
        if line.is_mall or not line.pays_commission:
            rates.append((0, 0))
            continue
        r1, r2 = own.get(line.product_id, (rules.rate_l1_bp, rules.rate_l2_bp))
        r2 = r2 if l2 is not None else 0
        rates.append((min(r1, MAX_RATE_BP - r2), r2))
    return Plan(affiliate_l1_id=l1.pk, affiliate_l2_id=l2.pk if l2 is not None else None, rates=rates)


# -- the ledger ---------------------------------------------------------------------------------


def commission_of(paid_fen: int, rate_bp: int) -> int:
    """A line's commission at a level: paid × rate // 10000 (down)."""
    return paid_fen * rate_bp // MAX_RATE_BP


@dataclass
class _Share:
    """What the ledger holds of one (line, level): its affiliate, the state it is in and how much is
    left in it (accrued minus reversed)."""

    affiliate_id: int
    accrued: int = 0
    reversed: int = 0
    state: str = CommissionState.PENDING
    moved: dict[str, int] = field(default_factory=dict)  # kind -> amount (accrue / freeze / settle)
    reversed_from: dict[str, int] = field(default_factory=lambda: defaultdict(int))

    def left_in(self, state: str) -> int:
        """What is left in `state`: what entered it, less what moved on and what was reversed."""
        into: dict[str, str] = {
            CommissionState.PENDING: CommissionKind.ACCRUE,
            CommissionState.FROZEN: CommissionKind.FREEZE,
        }
        onward: dict[str, str] = {
            CommissionState.PENDING: CommissionKind.FREEZE,
            CommissionState.FROZEN: CommissionKind.SETTLE,
        }
        entered = self.moved.get(into.get(state, CommissionKind.SETTLE), 0)
        left_next = self.moved.get(onward[state], 0) if state in onward else 0
        return entered - left_next - self.reversed_from[state]


def _shares(line_ids: Iterable[int]) -> dict[tuple[int, int], _Share]:
    shares: dict[tuple[int, int], _Share] = {}
    entries = CommissionEntry.objects.filter(order_line_id__in=list(line_ids)).values_list(
        "order_line_id", "level", "affiliate_id", "kind", "from_state", "amount_fen"
    )
    for line_id, level, affiliate_id, kind, from_state, amount in entries:
        share = shares.setdefault((line_id, level or 0), _Share(affiliate_id=affiliate_id))
        if kind == CommissionKind.REVERSE:
            share.reversed += amount
            share.reversed_from[from_state] += amount
        else:
            share.moved[kind] = amount
            if kind == CommissionKind.ACCRUE:
                share.accrued = amount
    for share in shares.values():
        if CommissionKind.SETTLE in share.moved:
            share.state = CommissionState.SETTLED
        elif CommissionKind.FREEZE in share.moved:
            share.state = CommissionState.FROZEN
    return shares


def _locked(order: Order) -> Order:
    """The order under its row lock (a no-op when the caller holds it already)."""
    return Order.objects.select_for_update().get(pk=order.pk)


def _book(entries: list[CommissionEntry]) -> None:
    """Append entries; one already there (same affiliate and source, or line/level/kind) is skipped."""
    if entries:
        CommissionEntry.objects.bulk_create(entries, ignore_conflicts=True)


def _wrong_order(order: Order, step: str) -> Conflict:
    return Conflict(
        E.ORDER_WRONG_STATE,
        _("订单%(number)s当前状态为“%(status)s”，不能%(step)s佣金。")
        % {"number": order.number, "status": OrderStatus(order.status).label, "step": step},
    )


def accrue_for_order(order: Order, now: datetime | None = None) -> list[CommissionEntry]:
    """Accrue each line's commission per level (→ pending): when the order is paid, or for a group
    buy when its team succeeds. Nothing for a line or level that pays 0. Idempotent."""
    now = now or timezone.now()
    with transaction.atomic():
        locked = _locked(order)
        if locked.affiliate_l1_id is None:
            return []
        if locked.payment_status != PaymentStatus.PAID or locked.status not in _ACCRUE_STATES:
            if locked.status in (OrderStatus.AWAITING_GROUP, OrderStatus.CANCELLED):
                # A group buy earns when its team succeeds; a paid order cancelled is refunded in full.
                return []
            raise _wrong_order(locked, _("计提"))
        beneficiaries = {1: locked.affiliate_l1_id, 2: locked.affiliate_l2_id}
        entries = []
        for line in OrderLine.objects.filter(order=locked).order_by("id"):
            for level, rate in ((1, line.rate_l1_bp), (2, line.rate_l2_bp)):
                affiliate_id = beneficiaries[level]
                amount = commission_of(line.paid_fen, rate)
                if affiliate_id is None or amount <= 0:
                    continue
                entries.append(
                    CommissionEntry(
                        affiliate_id=affiliate_id,
                        kind=CommissionKind.ACCRUE,
                        from_state="",
                        to_state=CommissionState.PENDING,
                        amount_fen=amount,
                        order_line=line,
                        level=level,
                        source=f"accrue:{line.pk}:L{level}",
                        note=locked.number,
                        created_at=now,
                    )
                )
        _book(entries)
        return list(CommissionEntry.objects.filter(order_line__order=locked, kind=CommissionKind.ACCRUE).order_by("id"))


def _advance(order: Order, kind: str, states: Sequence[str], step: str, now: datetime) -> list[CommissionEntry]:
    moves: dict[str, tuple[str, str]] = {
        CommissionKind.FREEZE: (CommissionState.PENDING, CommissionState.FROZEN),
        CommissionKind.SETTLE: (CommissionState.FROZEN, CommissionState.SETTLED),
    }
    frm, to = moves[kind]
    with transaction.atomic():
        locked = _locked(order)
        if locked.affiliate_l1_id is None:
            return []
        if locked.status not in states:
            raise _wrong_order(locked, step)
        line_ids = list(OrderLine.objects.filter(order=locked).values_list("pk", flat=True))
        entries = []
        for (line_id, level), share in sorted(_shares(line_ids).items()):
            if share.state != frm:
                continue
            amount = share.left_in(frm)
            if amount <= 0:
                continue  # reversed in full before this step
            entries.append(
                CommissionEntry(
                    affiliate_id=share.affiliate_id,
                    kind=kind,
                    from_state=frm,
                    to_state=to,
                    amount_fen=amount,
                    order_line_id=line_id,
                    level=level,
                    source=f"{kind}:{line_id}:L{level}",
                    note=locked.number,
                    created_at=now,
                )
            )
        _book(entries)
        return list(CommissionEntry.objects.filter(order_line_id__in=line_ids, kind=kind).order_by("id"))


def freeze_for_order(order: Order, now: datetime | None = None) -> list[CommissionEntry]:
    """At receipt: what is left pending of each line and level becomes frozen. Idempotent."""
    return _advance(order, CommissionKind.FREEZE, _FREEZE_STATES, _("冻结"), now or timezone.now())


def settle_for_order(order: Order, now: datetime | None = None) -> list[CommissionEntry]:
    """At completion (after-sales window closed): what is left frozen becomes settled. Idempotent."""
    return _advance(order, CommissionKind.SETTLE, _SETTLE_STATES, _("结算"), now or timezone.now())


def _refund_lines(order: Order, refunds: Sequence[Refund]) -> dict[int, dict[int, int]]:
    """How much of each line each refund gave back: refund id -> {line id -> fen}.

    An after-sale refund names its lines (AfterSaleLine amounts). A refund of the whole order (group
    failed, a paid order cancelled) gives back what is left of every line. Any other refund (manual)
    names no line: it is spread over what is left of the lines in proportion (down, the remainder to
    the last line with room), shipping included as goods, which is the best the data allows."""
    lines = list(OrderLine.objects.filter(order=order).order_by("id").values_list("pk", "paid_fen"))
    left = dict(lines)
    by_after_sale: dict[int, dict[int, int]] = defaultdict(dict)
    after_sale_ids = [r.after_sale_id for r in refunds if r.after_sale_id is not None]
    for after_sale_id, line_id, amount in AfterSaleLine.objects.filter(after_sale_id__in=after_sale_ids).values_list(
        "after_sale_id", "order_line_id", "amount_fen"
    ):
        by_after_sale[after_sale_id][line_id] = amount
    result: dict[int, dict[int, int]] = {}
    for refund in refunds:
        if refund.after_sale_id is not None:
            shares = {
                line_id: min(amount, left.get(line_id, 0))
                for line_id, amount in by_after_sale[refund.after_sale_id].items()
            }
        elif refund.reason in (RefundReason.GROUP_FAILED, RefundReason.CANCELLED):
            shares = dict(left)
        else:
            shares = _spread(refund.amount_fen, left)
        for line_id, amount in shares.items():
            left[line_id] = left.get(line_id, 0) - amount
        result[refund.pk] = shares
    return result


def _spread(amount: int, left: dict[int, int]) -> dict[int, int]:
    total = sum(v for v in left.values() if v > 0)
    amount = min(amount, total)
    if amount <= 0:
        return {}
    shares = {line_id: amount * v // total for line_id, v in left.items() if v > 0}
    rest = amount - sum(shares.values())
    for line_id in reversed(list(shares)):
        room = left[line_id] - shares[line_id]
        take = min(room, rest)
        shares[line_id] += take
        rest -= take
    return shares


def reverse_for_refund(refund: Refund, now: datetime | None = None) -> list[CommissionEntry]:
    """A succeeded refund takes back each refunded line's commission share, per level, from whatever
    state it is in (pending, frozen or settled: the settled balance may go negative). Share =
    accrued × refunded / paid_fen (down); the refund that completes a line's refunds takes what is
    left. Call in the transaction that marks the refund succeeded. Idempotent per refund."""
    now = now or timezone.now()
    if refund.reason == RefundReason.SURPLUS_PAYMENT or refund.amount_fen <= 0:
        return []  # a surplus payment is not the order's money; a points-only refund pays no commission
    with transaction.atomic():
        order = _locked(refund.order)
        if order.affiliate_l1_id is None:
            return []
        # The order's other succeeded refunds came first (whatever their numbers): this one is the
        # last so far, so the refund that completes a line is the one that takes the rest.
        earlier = list(
            Refund.objects.filter(order=order, status=RefundRecordStatus.SUCCEEDED)
            .exclude(pk=refund.pk)
            .exclude(reason=RefundReason.SURPLUS_PAYMENT)
            .order_by("finished_at", "pk")
        )
        per_refund = _refund_lines(order, [*earlier, refund])
        refunded_before: dict[int, int] = defaultdict(int)
        for earlier_refund in earlier:
            for line_id, amount in per_refund[earlier_refund.pk].items():
                refunded_before[line_id] += amount
        this = per_refund[refund.pk]
        paid = dict(OrderLine.objects.filter(order=order).values_list("pk", "paid_fen"))
        entries = []
        for (line_id, level), share in sorted(_shares(this).items()):
            refunded = this.get(line_id, 0)
            left = share.accrued - share.reversed
            if refunded <= 0 or left <= 0 or not paid.get(line_id):
                continue
            if refunded_before[line_id] + refunded >= paid[line_id]:
                amount = left  # the last refund of the line takes whatever is left
            else:
                amount = min(left, share.accrued * refunded // paid[line_id])
            if amount <= 0:
                continue
            entries.append(
                CommissionEntry(
                    affiliate_id=share.affiliate_id,
                    kind=CommissionKind.REVERSE,
                    from_state=share.state,
                    to_state="",
                    amount_fen=amount,
                    order_line_id=line_id,
                    level=level,
                    refund=refund,
                    source=f"reverse:{refund.refund_no}:{line_id}:L{level}",
                    note=order.number,
                    created_at=now,
                )
            )
        _book(entries)
        return list(CommissionEntry.objects.filter(refund=refund, kind=CommissionKind.REVERSE).order_by("id"))


@dataclass(frozen=True)
class Balances:
    pending: int
    frozen: int
    settled: int  # may be negative (a reversal after settlement): a debt later commission pays off

    @property
    def withdrawable(self) -> int:
        return max(0, self.settled)


def balances(affiliate: Affiliate | int) -> Balances:
    """The affiliate's balance per state: Σ entering − Σ leaving, from the entries."""
    affiliate_id = affiliate if isinstance(affiliate, int) else affiliate.pk
    sums = {
        f"{way}_{state}": Sum("amount_fen", filter=Q(**{f"{way}_state": state}))
        for state in CommissionState.values
        for way in ("to", "from")
    }
    got = CommissionEntry.objects.filter(affiliate_id=affiliate_id).aggregate(**sums)
    net = {state: (got[f"to_{state}"] or 0) - (got[f"from_{state}"] or 0) for state in CommissionState.values}
    return Balances(
        pending=net[CommissionState.PENDING], frozen=net[CommissionState.FROZEN], settled=net[CommissionState.SETTLED]
    )


# -- withdrawals --------------------------------------------------------------------------------


def request_withdrawal(affiliate: Affiliate, amount_fen: int, *, now: datetime | None = None) -> CommissionWithdrawal:
    """The affiliate asks to withdraw `amount_fen` of settled commission to their WeChat balance:
    at least the policy's minimum, at most the settled balance, one open request at a time. Checked
    and booked (a WITHDRAW entry) under the affiliate's row lock."""
    now = now or timezone.now()
    if not isinstance(amount_fen, int) or isinstance(amount_fen, bool) or amount_fen <= 0:
        raise JiumaError(E.INVALID_AMOUNT, _("提现金额无效。"), fields={"amount_fen": str(amount_fen)[:20]})
    minimum = policy().min_withdrawal_fen
    if amount_fen < minimum:
        raise JiumaError(E.BELOW_MINIMUM, _("单笔提现至少 ¥%(min)s。") % {"min": _yuan(minimum)})
    try:
        with transaction.atomic(durable=True):
            locked = Affiliate.objects.select_for_update().filter(pk=affiliate.pk).first()
            if locked is None:
                raise NotFound(E.NOT_AFFILIATE, _("分销员不存在。"))
            if locked.status not in (AffiliateStatus.ACTIVE, AffiliateStatus.SUSPENDED):
                raise Conflict(E.AFFILIATE_WRONG_STATE, _("您还不是分销员，不能提现。"))
            if CommissionWithdrawal.objects.filter(affiliate=locked, status__in=_open()).exists():
                raise Conflict(E.WITHDRAWAL_OPEN, _("已有一笔提现在处理中。"))
            settled = balances(locked).settled
            if amount_fen > settled:
                raise Conflict(
                    E.INSUFFICIENT, _("可提现佣金不足（当前 ¥%(balance)s）。") % {"balance": _yuan(max(0, settled))}
                )
            withdrawal = CommissionWithdrawal.objects.create(affiliate=locked, amount_fen=amount_fen, requested_at=now)
            CommissionEntry.objects.create(
                affiliate=locked,
                kind=CommissionKind.WITHDRAW,
                from_state=CommissionState.SETTLED,
                to_state="",
                amount_fen=amount_fen,
                withdrawal=withdrawal,
                source=f"withdraw:{withdrawal.pk}",
                created_at=now,
            )
            return withdrawal
    except IntegrityError as exc:  # the one-open backstop
        raise Conflict(E.WITHDRAWAL_OPEN, _("已有一笔提现在处理中。")) from exc


def _open() -> list[str]:
    return [WithdrawalStatus.REQUESTED, WithdrawalStatus.APPROVED]


def _wrong_withdrawal(withdrawal: CommissionWithdrawal) -> Conflict:
    current = CommissionWithdrawal.objects.filter(pk=withdrawal.pk).values_list("status", flat=True).first()
    label = WithdrawalStatus(current).label if current else _("不存在")
    return Conflict(E.WITHDRAWAL_WRONG_STATE, _("该提现当前状态为“%(status)s”，不能这样处理。") % {"status": label})


def _give_back(withdrawal: CommissionWithdrawal, now: datetime, note: str = "") -> None:
    CommissionEntry.objects.create(
        affiliate_id=withdrawal.affiliate_id,
        kind=CommissionKind.WITHDRAW_RETURN,
        from_state="",
        to_state=CommissionState.SETTLED,
        amount_fen=withdrawal.amount_fen,
        withdrawal=withdrawal,
        source=f"withdraw-return:{withdrawal.pk}",
        note=note[:200],
        created_at=now,
    )


def approve_withdrawal(
    withdrawal: CommissionWithdrawal, *, actor: str, now: datetime | None = None
) -> CommissionWithdrawal:
    """Finance approve a requested withdrawal (requested → approved): rewards then pays it
    (rewards.services.commission_payouts.approve does both in one transaction)."""
    now = now or timezone.now()
    with transaction.atomic():
        if not CommissionWithdrawal.objects.filter(pk=withdrawal.pk, status=WithdrawalStatus.REQUESTED).update(
            status=WithdrawalStatus.APPROVED, reviewed_at=now, reviewed_by=str(actor)[:150]
        ):
            raise _wrong_withdrawal(withdrawal)
    return CommissionWithdrawal.objects.get(pk=withdrawal.pk)


def _finish(
    withdrawal: CommissionWithdrawal, frm: str, to: str, now: datetime, *, give_back: bool, **changes: object
) -> bool:
    with transaction.atomic():
        if not CommissionWithdrawal.objects.filter(pk=withdrawal.pk, status=frm).update(
            status=to, finished_at=now, **changes
        ):
            return False
        if give_back:
            _give_back(withdrawal, now, str(changes.get("note", "")))
    return True


def reject_withdrawal(
    withdrawal: CommissionWithdrawal, *, actor: str, note: str = "", now: datetime | None = None
) -> CommissionWithdrawal:
    """Finance refuse a requested withdrawal: the amount returns to settled."""
    now = now or timezone.now()
    with transaction.atomic(durable=True):
        if not _finish(
            withdrawal,
            WithdrawalStatus.REQUESTED,
            WithdrawalStatus.REJECTED,
            now,
            give_back=True,
            reviewed_at=now,
            reviewed_by=str(actor)[:150],
            note=str(note)[:200],
        ):
            raise _wrong_withdrawal(withdrawal)
    return CommissionWithdrawal.objects.get(pk=withdrawal.pk)


def cancel_withdrawal(
    withdrawal: CommissionWithdrawal, *, member: Member, now: datetime | None = None
) -> CommissionWithdrawal:
    """The affiliate withdraws their own request before review: the amount returns to settled."""
    now = now or timezone.now()
    if not CommissionWithdrawal.objects.filter(pk=withdrawal.pk, affiliate__member=member).exists():
        raise NotFound(E.WITHDRAWAL_WRONG_STATE, _("提现记录不存在。"))
    with transaction.atomic(durable=True):
        if not _finish(withdrawal, WithdrawalStatus.REQUESTED, WithdrawalStatus.CANCELLED, now, give_back=True):
            raise _wrong_withdrawal(withdrawal)
    return CommissionWithdrawal.objects.get(pk=withdrawal.pk)


def mark_paid(withdrawal: CommissionWithdrawal, *, bill_no: str = "", now: datetime | None = None) -> bool:
    """The payout of an approved withdrawal succeeded (approved → paid). False if it was not
    approved (already paid or failed: a repeated report changes nothing)."""
    now = now or timezone.now()
    changes: dict[str, object] = {"payout_bill_no": bill_no[:32]} if bill_no else {}
    return _finish(withdrawal, WithdrawalStatus.APPROVED, WithdrawalStatus.PAID, now, give_back=False, **changes)


def mark_failed(withdrawal: CommissionWithdrawal, *, reason: str = "", now: datetime | None = None) -> bool:
    """The payout of an approved withdrawal failed or was cancelled (approved → failed): the amount
    returns to settled (one WITHDRAW_RETURN entry). False if it was not approved."""
    now = now or timezone.now()
    return _finish(
        withdrawal, WithdrawalStatus.APPROVED, WithdrawalStatus.FAILED, now, give_back=True, note=str(reason)[:200]
    )


def _yuan(fen: int) -> str:
    return f"{fen / 100:.2f}"
