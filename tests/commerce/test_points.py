"""Points (酒币): append-only ledger, idempotent per source, never below zero, expiry oldest first."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, timedelta
from typing import Any

import pytest
from django_tenants.utils import tenant_context

from commerce.models import Member, PointsEntry, PointsKind, PointsPolicy
from commerce.services import points
from tenants.errors import JiumaError
from tests.conftest import Brand
from tests.support.threads import run_concurrently

SCAN = PointsKind.SCAN
SHOP = PointsKind.REDEMPTION


@pytest.fixture
def member(alpha: Brand) -> Iterator[Member]:
    with tenant_context(alpha.tenant):
        yield Member.objects.create(openid="o-points-test")


def _balance(member: Member) -> int:
    member.refresh_from_db()
    return member.points_balance


def test_credits_and_debits_move_the_balance_and_each_names_its_source(member: Member) -> None:
    points.credit(member.pk, 100, kind=SCAN, source="scan:1")
    points.credit(member.pk, 50, kind=SCAN, source="scan:2")
    spent = points.debit(member.pk, 120, kind=SHOP, source="order:M1")
    assert spent.amount == -120
    assert spent.balance_after == 30
    assert _balance(member) == 30
    assert [e.source for e in PointsEntry.objects.filter(member=member).order_by("id")] == [
        "scan:1",
        "scan:2",
        "order:M1",
    ]
    assert points.verify_ledger(member.pk).ok


def test_a_retried_movement_is_made_once_and_a_reused_source_is_refused(member: Member) -> None:
    first = points.credit(member.pk, 10, kind=SCAN, source="scan:7")
    again = points.credit(member.pk, 10, kind=SCAN, source="scan:7")
    assert again.pk == first.pk
    assert _balance(member) == 10
    with pytest.raises(JiumaError) as refused:
        points.credit(member.pk, 99, kind=SCAN, source="scan:7")
    assert refused.value.code == "points_source_reused"
    assert refused.value.status_code == 409
    assert _balance(member) == 10


def test_spending_more_than_the_balance_is_refused_and_writes_nothing(member: Member) -> None:
    points.credit(member.pk, 30, kind=SCAN, source="scan:1")
    with pytest.raises(JiumaError) as refused:
        points.debit(member.pk, 31, kind=SHOP, source="order:M2")
    assert refused.value.code == "insufficient_points"
    assert "30" in refused.value.message
    assert _balance(member) == 30
    assert PointsEntry.objects.filter(member=member).count() == 1


@pytest.mark.parametrize(
    ("amount", "source", "code"),
    [
        (0, "scan:1", "invalid_points_amount"),
        (-5, "scan:1", "invalid_points_amount"),
        (True, "scan:1", "invalid_points_amount"),
        (points.MAX_AMOUNT + 1, "scan:1", "invalid_points_amount"),
        (5, "", "invalid_points_source"),
        (5, "no-colon", "invalid_points_source"),
    ],
)
def test_bad_movements_are_refused(member: Member, amount: Any, source: str, code: str) -> None:
    with pytest.raises(JiumaError) as refused:
        points.credit(member.pk, amount, kind=SCAN, source=source)
    assert refused.value.code == code
    with pytest.raises(JiumaError):
        points.debit(member.pk, 5, kind=PointsKind.SCAN, source="order:x")  # a scan never takes points
    assert _balance(member) == 0


def test_debits_spend_the_credits_that_lapse_soonest_and_lapsed_points_cannot_be_spent(member: Member) -> None:
    PointsPolicy.objects.create(expiry_days=30)
    start = datetime(2026, 1, 1, 4, tzinfo=datetime.now().astimezone().tzinfo)
    old = points.credit(member.pk, 40, kind=SCAN, source="scan:old", now=start)  # lapses 2026-01-31
    new = points.credit(member.pk, 60, kind=SCAN, source="scan:new", now=start + timedelta(days=20))
    points.debit(member.pk, 30, kind=SHOP, source="order:A", now=start + timedelta(days=25))
    old.refresh_from_db()
    new.refresh_from_db()
    assert (old.remaining, new.remaining) == (10, 60)
    # After the old credit's day, its last 10 are gone: 60 can be spent, 61 cannot.
    later = start + timedelta(days=31)
    with pytest.raises(JiumaError) as refused:
        points.debit(member.pk, 61, kind=SHOP, source="order:B", now=later)
    assert "当前 60" in refused.value.message
    points.debit(member.pk, 60, kind=SHOP, source="order:C", now=later)
    assert _balance(member) == 0
    lapsed = PointsEntry.objects.get(member=member, kind=PointsKind.EXPIRY)
    assert (lapsed.amount, lapsed.source) == (-10, f"expiry:{old.pk}")
    assert points.verify_ledger(member.pk).ok


def test_the_daily_sweep_lapses_due_credits_once(member: Member) -> None:
    PointsPolicy.objects.create(expiry_days=10)
    earned = datetime(2026, 3, 1, tzinfo=datetime.now().astimezone().tzinfo)
    points.credit(member.pk, 25, kind=SCAN, source="scan:1", now=earned)
    points.credit(member.pk, 5, kind=SCAN, source="scan:2", now=earned + timedelta(days=5))
    assert points.expire_due(now=earned + timedelta(days=9)) == 0
    assert points.expire_due(now=earned + timedelta(days=11)) == 25
    assert points.expire_due(now=earned + timedelta(days=12)) == 0
    assert _balance(member) == 5
    assert points.verify_ledger(member.pk).ok


def test_year_end_expiry_and_never_expiring_points() -> None:
    earned = datetime(2026, 6, 15, 12, tzinfo=datetime.now().astimezone().tzinfo)
    year_end = points.expiry_of(earned, PointsPolicy(expire_at_year_end=True))
    assert year_end is not None
    assert (year_end.year, year_end.month, year_end.day, year_end.hour) == (2028, 1, 1, 0)
    assert str(year_end.tzinfo) == "Asia/Shanghai"
    assert points.expiry_of(earned, PointsPolicy(expiry_days=0)) is None
    assert points.expiry_of(earned, PointsPolicy(expiry_days=365)) == earned + timedelta(days=365)


def test_concurrent_spending_never_takes_the_balance_below_zero(alpha: Brand) -> None:
    """Twenty 10-point redemptions race for 100 points, each in its own committed transaction."""

    def make() -> int:
        created = Member.objects.create(openid="o-points-race")
        points.credit(created.pk, 100, kind=SCAN, source="scan:race")
        return created.pk

    (member_id,) = run_concurrently([make], tenant=alpha.tenant)
    try:
        jobs = [lambda n=n: points.debit(member_id, 10, kind=SHOP, source=f"order:race-{n}") for n in range(20)]
        outcomes = run_concurrently(jobs, tenant=alpha.tenant)
        spent = [o for o in outcomes if isinstance(o, PointsEntry)]
        refused = [o for o in outcomes if isinstance(o, JiumaError)]
        assert len(spent) == 10, outcomes
        assert {o.code for o in refused} == {"insufficient_points"}
        assert len(refused) == 10

        def state() -> tuple[int, bool]:
            return Member.objects.get(pk=member_id).points_balance, points.verify_ledger(member_id).ok

        ((balance, ok),) = run_concurrently([state], tenant=alpha.tenant)
        assert balance == 0
        assert ok
        # The same credit retried at once lands once.
        retries = run_concurrently(
            [lambda: points.credit(member_id, 7, kind=SCAN, source="scan:retry") for _ in range(6)],
            tenant=alpha.tenant,
        )
        assert len({entry.pk for entry in retries}) == 1, retries
        ((balance, ok),) = run_concurrently([state], tenant=alpha.tenant)
        assert (balance, ok) == (7, True)
    finally:

        def cleanup() -> None:
            PointsEntry.objects.filter(member_id=member_id).delete()
            Member.objects.filter(pk=member_id).delete()

        run_concurrently([cleanup], tenant=alpha.tenant)
