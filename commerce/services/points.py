"""Points (酒币): an append-only ledger per member, a balance that never goes negative.

Every movement is one PointsEntry naming its source ("scan:<id>", "order:<no>", ...), at most one per
(member, source): a retried credit or debit returns the entry already made, and the same source with
a different amount is refused. The member's row carries the balance; it changes only here, in the
transaction that appends the entry, under the member's row lock, so concurrent movements of one
member serialize and the database's CHECK (balance >= 0) is never the one to say no.

Credits may expire (PointsPolicy). Debits spend the credits that expire soonest first; a credit's
`remaining` says what is left of it, and when it lapses that much leaves through an EXPIRY entry
(source "expiry:<credit id>"). A member's expired credits are swept before any debit of theirs, so
an expired point is never spent, and a daily task sweeps everybody.

`verify_ledger` recomputes a member's balance from the entries: the balance on the row, the sum of
the amounts and (for credits) the remainders must all agree.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.db import IntegrityError, transaction
from django.db.models import F, Q, Sum
from django.utils import timezone
from django.utils.translation import gettext as _

from commerce.errors import PointsErrorCode as E
from commerce.models import Member, PointsEntry, PointsKind, PointsPolicy
from tenants.db import connection
from tenants.errors import Conflict, JiumaError, NotFound

MAX_AMOUNT = 100_000_000  # per movement: far above any real use, far below overflow
_CREDIT_KINDS = frozenset({PointsKind.SCAN, PointsKind.ORDER, PointsKind.REFUND, PointsKind.REFERRAL, PointsKind.CARD})
_DEBIT_KINDS = frozenset({PointsKind.REDEMPTION})


def policy() -> PointsPolicy:
    return PointsPolicy.current()


def expiry_of(earned_at: datetime, rules: PointsPolicy | None = None) -> datetime | None:
    """When a credit earned at `earned_at` lapses under the brand's rules (None: never)."""
    rules = rules or policy()
    if rules.expire_at_year_end:
        local = timezone.localtime(earned_at)
        # The first instant of the year after next, in Shanghai time: the end of next year.
        return local.replace(year=local.year + 2, month=1, day=1, hour=0, minute=0, second=0, microsecond=0)
    if rules.expiry_days:
        return earned_at + timedelta(days=rules.expiry_days)
    return None


def _check(amount: int, source: str) -> None:
    if not isinstance(amount, int) or isinstance(amount, bool) or not 0 < amount <= MAX_AMOUNT:
        raise JiumaError(E.INVALID_AMOUNT, _("酒币数量无效。"), fields={"amount": str(amount)[:20]})
    if not source or len(source) > 80 or ":" not in source:
        raise JiumaError(E.INVALID_SOURCE, _("酒币变动缺少来源。"), fields={"source": source[:80]})


def _locked_member(member_id: int) -> Member:
    member = Member.objects.select_for_update().filter(pk=member_id).first()
    if member is None:
        raise NotFound("member_not_found", _("会员不存在。"))
    return member


_RAISE_BALANCE = (
    "UPDATE commerce_member SET points_balance = points_balance + %s WHERE id = %s RETURNING points_balance"
)


def _existing(member: Member, source: str, kind: str, amount: int) -> PointsEntry | None:
    return _existing_of(member.pk, source, kind, amount)


def _existing_of(member_id: int, source: str, kind: str, amount: int) -> PointsEntry | None:
    entry = PointsEntry.objects.filter(member_id=member_id, source=source).first()
    if entry is not None and (entry.kind != kind or entry.amount != amount):
        raise Conflict(E.SOURCE_REUSED, _("该来源已记过不同的酒币变动。"), fields={"source": source})
    return entry


def _append(member: Member, amount: int, **fields: Any) -> PointsEntry:
    Member.objects.filter(pk=member.pk).update(points_balance=F("points_balance") + amount)
    member.points_balance += amount
    return PointsEntry.objects.create(member=member, amount=amount, balance_after=member.points_balance, **fields)


def credit(
    member_id: int,
    amount: int,
    *,
    kind: str,
    source: str,
    note: str = "",
    created_by: str = "",
    now: datetime | None = None,
) -> PointsEntry:
    """Add `amount` points to the member (idempotent per source). The credit's expiry follows the
    brand's rules."""
    _check(amount, source)
    if kind not in _CREDIT_KINDS and kind != PointsKind.ADJUSTMENT:
        raise JiumaError(E.INVALID_SOURCE, _("该类型不能增加酒币。"), fields={"kind": kind})
    now = now or timezone.now()
    expires_at = expiry_of(now)
    try:
        # The balance is raised first (its UPDATE takes the member's row lock), then the entry is
        # appended; a source already booked fails on the entry's unique (member, source), which
        # undoes the raise, and the entry made before is the answer.
        with transaction.atomic():
            with connection.cursor() as cursor:
                cursor.execute(_RAISE_BALANCE, [amount, member_id])
                row = cursor.fetchone()
            if row is None:
                raise NotFound("member_not_found", _("会员不存在。"))
            return PointsEntry.objects.create(
                member_id=member_id,
                amount=amount,
                balance_after=row[0],
                kind=kind,
                source=source,
                remaining=amount,
                expires_at=expires_at,
                note=note[:200],
                created_by=created_by[:150],
                created_at=now,
            )
    except IntegrityError:
        existing = _existing_of(member_id, source, kind, amount)
        if existing is None:
            raise
        return existing


def debit(
    member_id: int,
    amount: int,
    *,
    kind: str,
    source: str,
    note: str = "",
    created_by: str = "",
    now: datetime | None = None,
) -> PointsEntry:
    """Take `amount` points from the member (idempotent per source); refused when they have fewer.
    Spends the credits that lapse soonest first."""
    _check(amount, source)
    if kind not in _DEBIT_KINDS and kind != PointsKind.ADJUSTMENT:
        raise JiumaError(E.INVALID_SOURCE, _("该类型不能扣减酒币。"), fields={"kind": kind})
    now = now or timezone.now()
    with transaction.atomic():
        member = _locked_member(member_id)
        existing = _existing(member, source, kind, -amount)
        if existing is not None:
            return existing
        _expire_member(member, now)
        if member.points_balance < amount:
            raise Conflict(
                E.INSUFFICIENT,
                _("酒币不足：需要 %(need)d，当前 %(have)d。") % {"need": amount, "have": member.points_balance},
            )
        left = amount
        credits = PointsEntry.objects.filter(member=member, remaining__gt=0).order_by(
            F("expires_at").asc(nulls_last=True), "id"
        )
        for entry in credits:
            take = min(left, entry.remaining)
            PointsEntry.objects.filter(pk=entry.pk).update(remaining=F("remaining") - take)
            left -= take
            if not left:
                break
        if left:  # pragma: no cover - the balance and the remainders are kept equal (verify_ledger)
            raise RuntimeError(f"member {member.pk}: balance {member.points_balance} but credits short by {left}")
        return _append(
            member, -amount, kind=kind, source=source, note=note[:200], created_by=created_by[:150], created_at=now
        )


def adjust(member_id: int, amount: int, *, reason: str, actor: str, source: str) -> PointsEntry:
    """A manual correction by brand staff: positive adds, negative takes (never below zero)."""
    if not reason.strip():
        raise JiumaError(E.INVALID_SOURCE, _("请填写调整原因。"))
    if amount > 0:
        return credit(member_id, amount, kind=PointsKind.ADJUSTMENT, source=source, note=reason, created_by=actor)
    return debit(member_id, -amount, kind=PointsKind.ADJUSTMENT, source=source, note=reason, created_by=actor)


def _expire_member(member: Member, now: datetime) -> int:
    """Lapse the member's credits whose time has come (the caller holds the member's row lock)."""
    lapsed = 0
    due = PointsEntry.objects.filter(member=member, remaining__gt=0, expires_at__lte=now).order_by("id")
    for entry in due:
        PointsEntry.objects.filter(pk=entry.pk).update(remaining=0)
        _append(
            member,
            -entry.remaining,
            kind=PointsKind.EXPIRY,
            source=f"expiry:{entry.pk}",
            note=str(_("%(day)s 获得的酒币已过期") % {"day": timezone.localtime(entry.created_at).date()}),
            created_at=now,
        )
        lapsed += entry.remaining
    return lapsed


def expire_due(*, now: datetime | None = None, limit: int = 10_000) -> int:
    """Lapse every member's due credits (the daily sweep); returns the points lapsed. Each member
    in its own short transaction, so the sweep never holds many locks."""
    now = now or timezone.now()
    member_ids = (
        PointsEntry.objects.filter(remaining__gt=0, expires_at__lte=now)
        .values_list("member_id", flat=True)
        .distinct()[:limit]
    )
    total = 0
    for member_id in list(member_ids):
        with transaction.atomic():
            member = _locked_member(member_id)
            total += _expire_member(member, now)
    return total


@dataclass(frozen=True)
class LedgerCheck:
    balance: int  # on the member row
    ledger_sum: int  # of every entry's amount
    open_credits: int  # of every credit's remaining

    @property
    def ok(self) -> bool:
        return self.balance == self.ledger_sum == self.open_credits and self.balance >= 0


def verify_ledger(member_id: int) -> LedgerCheck:
    member = Member.objects.get(pk=member_id)
    totals = PointsEntry.objects.filter(member=member).aggregate(
        ledger=Sum("amount"), open=Sum("remaining", filter=Q(remaining__gt=0))
    )
    return LedgerCheck(member.points_balance, totals["ledger"] or 0, totals["open"] or 0)
