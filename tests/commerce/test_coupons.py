"""Coupons: issuing within the quantity and the per-member limit (also under concurrency), the
discount rules, and the coupon's states (reserve, use, release, expiry, revoke)."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from django.utils import timezone

from commerce.models import CouponTemplate, MemberCoupon
from commerce.services import coupons
from commerce.services.coupons import Priced
from tenants.errors import JiumaError
from tests.commerce.test_orders import buyer, committed, many_connections, template  # noqa: F401
from tests.conftest import Brand
from tests.support.threads import run_concurrently


def code_of(call: Any) -> str:
    with pytest.raises(JiumaError) as caught:
        call()
    return caught.value.code


def test_issue_counts_and_limits(in_alpha: Brand) -> None:
    member, other = buyer(), buyer()
    t = template(total_quantity=3, per_member_limit=2)
    first = coupons.issue(t.pk, member.pk)
    second = coupons.issue(t.pk, member.pk)
    assert (first.seq, second.seq) == (1, 2)
    assert code_of(lambda: coupons.issue(t.pk, member.pk)) == "coupon_member_limit"
    coupons.issue(t.pk, other.pk)
    assert code_of(lambda: coupons.issue(t.pk, buyer().pk)) == "coupon_sold_out"
    assert CouponTemplate.objects.get(pk=t.pk).issued == 3


def test_issue_by_source_is_idempotent_and_claims_follow_the_rules(in_alpha: Brand) -> None:
    member = buyer()
    t = template(per_member_limit=5)
    assert coupons.issue(t.pk, member.pk, source="issue:a").pk == coupons.issue(t.pk, member.pk, source="issue:a").pk
    assert CouponTemplate.objects.get(pk=t.pk).issued == 1
    hidden = template(is_claimable=False)
    assert code_of(lambda: coupons.claim(hidden.pk, member.pk)) == "coupon_not_claimable"
    later = template(claim_starts_at=timezone.now() + timedelta(days=1))
    assert code_of(lambda: coupons.claim(later.pk, member.pk)) == "coupon_claim_window_closed"
    draft = template(status="draft")
    assert code_of(lambda: coupons.claim(draft.pk, member.pk)) == "coupon_template_not_active"
    relative = template(validity="relative", valid_from=None, valid_until=None, valid_days=7)
    now = timezone.now()
    held = coupons.issue(relative.pk, member.pk, now=now)
    assert held.valid_until == now + timedelta(days=7)


def test_discounts_follow_the_contract(in_alpha: Brand) -> None:
    amount = template(amount_off_fen=2_000, threshold_fen=10_000)
    assert coupons.discount_of(amount, 9_999) == 0
    assert coupons.discount_of(amount, 10_000) == 2_000
    percent = template(kind="percent_off", amount_off_fen=0, percent_off=15, max_discount_fen=1_000, threshold_fen=0)
    assert coupons.discount_of(percent, 3_333) == 499  # 499.95 rounded down
    assert coupons.discount_of(percent, 100_000) == 1_000  # capped
    assert coupons.split(1_001, [5_673, 4_500], [0, 1]) == [558, 443]
    assert coupons.split(99, [1, 1, 100], [0, 1, 2]) == [0, 0, 99]
    shares = coupons.split(9_998, [3_333, 3_333, 3_334], [0, 1, 2])
    assert sum(shares) == 9_998
    assert all(s <= cap for s, cap in zip(shares, [3_333, 3_333, 3_334], strict=True))


def test_a_coupon_applies_to_its_scope_and_threshold(in_alpha: Brand) -> None:
    from commerce.models import Category, Product

    member = buyer()
    top = Category.objects.create(name="酱香")
    child = Category.objects.create(name="53度", parent=top)
    inside = Product.objects.create(name="在内", category=child)
    outside = Product.objects.create(name="在外")
    scoped = template(scope="categories", threshold_fen=5_000, amount_off_fen=500)
    scoped.categories.add(top)
    held = coupons.issue(scoped.pk, member.pk)
    now = timezone.now()
    lines = [Priced(inside.pk, child.pk, 6_000), Priced(outside.pk, None, 9_000)]
    applied = coupons.apply(held.code, member.pk, lines, now=now)
    assert (applied.discount_fen, applied.shares) == (500, [500, 0])
    assert code_of(lambda: coupons.apply(held.code, member.pk, lines[1:], now=now)) == "coupon_not_applicable"
    assert code_of(lambda: coupons.apply(held.code, member.pk, [Priced(inside.pk, child.pk, 4_999)], now=now)) == (
        "coupon_below_threshold"
    )
    assert code_of(lambda: coupons.apply(held.code, buyer().pk, lines, now=now)) == "coupon_not_found"
    assert code_of(lambda: coupons.apply(held.code, member.pk, lines, now=held.valid_until)) == "coupon_expired"


def test_expiry_sweep_and_revoke(in_alpha: Brand) -> None:
    member = buyer()
    t = template(per_member_limit=3)
    a, b = coupons.issue(t.pk, member.pk), coupons.issue(t.pk, member.pk)
    coupons.revoke(b.pk, actor="staff:ops")
    assert code_of(lambda: coupons.revoke(b.pk, actor="staff:ops")) == "coupon_wrong_state"
    assert coupons.expire_due(now=a.valid_until - timedelta(seconds=1)) == 0
    assert coupons.expire_due(now=a.valid_until) >= 1
    statuses = dict(MemberCoupon.objects.filter(pk__in=[a.pk, b.pk]).values_list("pk", "status"))
    assert statuses == {a.pk: "expired", b.pk: "revoked"}


@many_connections
def test_concurrent_issues_never_pass_the_quantity_or_the_member_limit(
    alpha: Brand,
    committed: dict[str, list[int]],  # noqa: F811 (the fixture)
) -> None:
    def setup() -> tuple[int, int, list[int]]:
        scarce = template(total_quantity=10, per_member_limit=1)
        limited = template(per_member_limit=2)
        return scarce.pk, limited.pk, [buyer().pk for _ in range(20)]

    ((scarce_id, limited_id, member_ids),) = run_concurrently([setup], tenant=alpha.tenant)
    committed["members"].extend(member_ids)
    committed["templates"].extend([scarce_id, limited_id])

    outcomes = run_concurrently([lambda m=m: coupons.issue(scarce_id, m) for m in member_ids], tenant=alpha.tenant)
    assert len([o for o in outcomes if isinstance(o, MemberCoupon)]) == 10
    assert {o.code for o in outcomes if isinstance(o, JiumaError)} == {"coupon_sold_out"}

    one = member_ids[0]
    outcomes = run_concurrently([lambda: coupons.issue(limited_id, one) for _ in range(12)], tenant=alpha.tenant)
    assert len([o for o in outcomes if isinstance(o, MemberCoupon)]) == 2, outcomes[:3]
    assert {o.code for o in outcomes if isinstance(o, JiumaError)} == {"coupon_member_limit"}

    def totals() -> tuple[int, int, int, int]:
        return (
            CouponTemplate.objects.get(pk=scarce_id).issued,
            MemberCoupon.objects.filter(template_id=scarce_id).count(),
            CouponTemplate.objects.get(pk=limited_id).issued,
            MemberCoupon.objects.filter(template_id=limited_id, member_id=one).count(),
        )

    (found,) = run_concurrently([totals], tenant=alpha.tenant)
    assert found == (10, 10, 2, 2)
