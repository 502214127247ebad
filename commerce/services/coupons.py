"""Coupons: issuing them from templates, checking and computing what they take off an order, and the
MemberCoupon state machine (see the commerce.models contract "Coupons" and "MemberCoupon.status").

Issuing locks the member's row (lock order step 1: it serialises the member's count), raises the
template's `issued` by a guarded UPDATE (step 2: never above total_quantity) and inserts the coupon
with seq = the member's count + 1; the unique (template, member, seq) and seq <= per_member_limit
hold the per-member limit even without the lock. Order-side changes (reserve, consume, release) are
conditional UPDATEs on the coupon (step 5) inside the order's transaction.

Discounts: the eligible amount is the subtotal of the lines in the template's scope; an amount-off
coupon takes min(amount_off_fen, eligible) once eligible reaches the threshold; a percent-off coupon
takes min(eligible × percent_off // 100, max_discount_fen or ∞) (rounded down). Coupons apply to
normal orders only, one per order.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.db import IntegrityError, transaction
from django.db.models import Q
from django.utils import timezone
from django.utils.translation import gettext as _

from commerce.errors import CouponErrorCode as E
from commerce.models import (
    CouponKind,
    CouponScope,
    CouponStatus,
    CouponTemplate,
    CouponTemplateStatus,
    CouponValidity,
    Member,
    MemberCoupon,
    Order,
)
from tenants.errors import Conflict, JiumaError, NotFound


@dataclass(frozen=True)
class Priced:
    """A line as coupons see it: its product, category and subtotal (fen)."""

    product_id: int
    category_id: int | None
    subtotal_fen: int


# --- issuing ------------------------------------------------------------------------------------


def _validity(template: CouponTemplate, now: datetime) -> tuple[datetime, datetime]:
    if template.validity == CouponValidity.FIXED:
        assert template.valid_from is not None
        assert template.valid_until is not None
        if template.valid_until <= now:
            raise Conflict(E.TEMPLATE_EXPIRED, _("该优惠券已过有效期。"))
        return template.valid_from, template.valid_until
    assert template.valid_days is not None
    return now, now + timedelta(days=template.valid_days)


_TAKE_ONE = (
    "UPDATE commerce_coupontemplate SET issued = issued + 1 WHERE id = %s AND status = 'active'"
    " AND (total_quantity IS NULL OR issued < total_quantity)"
)


def issue(
    template_id: int, member_id: int, *, source: str = "", by_member: bool = False, now: datetime | None = None
) -> MemberCoupon:
    """Give the member one coupon of the template. `source` ("issue:<ref>", "claim:<id>", ...) makes
    the issuance idempotent: the coupon already issued for it is returned. `by_member`: the member's
    own claim (需 is_claimable and the claim window). Refusals: template_not_active, sold_out,
    member_limit, claim window, template expired.

    Runs in the caller's transaction if there is one (another feature issuing as part of its own
    work must not hold locks past step 1 of the lock order when it calls this)."""
    from tenants.db import connection

    now = now or timezone.now()
    if len(source) > 80:
        raise JiumaError(E.NOT_FOUND, _("来源过长。"))
    with transaction.atomic():
        member = Member.objects.select_for_update().filter(pk=member_id, erased_at__isnull=True).first()
        if member is None:
            raise NotFound("member_not_found", _("会员不存在。"))
        if source:
            existing = MemberCoupon.objects.filter(member_id=member_id, source=source).first()
            if existing is not None:
                return existing
        template = CouponTemplate.objects.filter(pk=template_id).first()
        if template is None:
            raise NotFound(E.TEMPLATE_NOT_FOUND, _("优惠券不存在。"))
        if template.status != CouponTemplateStatus.ACTIVE:
            raise Conflict(E.TEMPLATE_NOT_ACTIVE, _("该优惠券未在发放中。"))
        if by_member:
            if not template.is_claimable:
                raise JiumaError(E.NOT_CLAIMABLE, _("该优惠券不能自行领取。"), status=403)
            if (template.claim_starts_at and now < template.claim_starts_at) or (
                template.claim_ends_at and now >= template.claim_ends_at
            ):
                raise Conflict(E.CLAIM_WINDOW, _("不在领取时间内。"))
        valid_from, valid_until = _validity(template, now)
        held = MemberCoupon.objects.filter(template=template, member_id=member_id).count()
        if held >= template.per_member_limit:
            raise Conflict(E.MEMBER_LIMIT, _("每人限领 %(n)d 张，您已领完。") % {"n": template.per_member_limit})
        with connection.cursor() as cursor:
            cursor.execute(_TAKE_ONE, [template.pk])
            if cursor.rowcount != 1:
                raise Conflict(E.SOLD_OUT, _("优惠券已领完。"))
        try:
            with transaction.atomic():
                return MemberCoupon.objects.create(
                    template=template,
                    member_id=member_id,
                    seq=held + 1,
                    source=source,
                    valid_from=valid_from,
                    valid_until=valid_until,
                    issued_at=now,
                )
        except IntegrityError:  # the seq was taken (only possible without the member lock)
            raise Conflict(E.MEMBER_LIMIT, _("领取太频繁，请稍后再试。")) from None


def claim(template_id: int, member_id: int, *, now: datetime | None = None) -> MemberCoupon:
    """A member claims a coupon in the coupon centre (top-level)."""
    with transaction.atomic(durable=True):
        return issue(template_id, member_id, by_member=True, now=now)


def revoke(member_coupon_id: int, *, actor: str, now: datetime | None = None) -> MemberCoupon:
    """Staff void a coupon the member has not used (available → revoked)."""
    now = now or timezone.now()
    with transaction.atomic(durable=True):
        changed = MemberCoupon.objects.filter(pk=member_coupon_id, status=CouponStatus.AVAILABLE).update(
            status=CouponStatus.REVOKED, ended_at=now
        )
        coupon = MemberCoupon.objects.filter(pk=member_coupon_id).first()
        if coupon is None:
            raise NotFound(E.NOT_FOUND, _("优惠券不存在。"))
        if not changed:
            raise Conflict(
                E.WRONG_STATE, _("只有未使用的优惠券可以作废（当前：%(s)s）。") % {"s": coupon.get_status_display()}
            )
    return coupon


def expire_due(*, now: datetime | None = None, limit: int = 5000) -> int:
    """The sweep (member_coupon_expiring): available coupons past valid_until expire."""
    now = now or timezone.now()
    ids = list(
        MemberCoupon.objects.filter(status=CouponStatus.AVAILABLE, valid_until__lte=now)
        .order_by("valid_until")
        .values_list("id", flat=True)[:limit]
    )
    if not ids:
        return 0
    with transaction.atomic(durable=True):
        return MemberCoupon.objects.filter(pk__in=ids, status=CouponStatus.AVAILABLE, valid_until__lte=now).update(
            status=CouponStatus.EXPIRED, ended_at=now
        )


# --- applicability and discount -----------------------------------------------------------------


def _in_scope(template: CouponTemplate, lines: Sequence[Priced]) -> list[int]:
    """Indexes of the lines the template applies to."""
    if template.scope == CouponScope.ALL:
        return list(range(len(lines)))
    if template.scope == CouponScope.PRODUCTS:
        products = set(template.products.values_list("id", flat=True))
        return [i for i, line in enumerate(lines) if line.product_id in products]
    categories = set(template.categories.values_list("id", flat=True))
    from commerce.models import Category

    parents = dict(Category.objects.filter(pk__in={line.category_id for line in lines}).values_list("id", "parent_id"))
    return [
        i
        for i, line in enumerate(lines)
        if line.category_id is not None
        and (line.category_id in categories or parents.get(line.category_id) in categories)
    ]


def discount_of(template: CouponTemplate, eligible_fen: int) -> int:
    """What the template takes off `eligible_fen` (0 below its threshold or with nothing eligible)."""
    if eligible_fen <= 0 or eligible_fen < template.threshold_fen:
        return 0
    if template.kind == CouponKind.AMOUNT_OFF:
        return min(template.amount_off_fen, eligible_fen)
    discount = eligible_fen * template.percent_off // 100
    if template.max_discount_fen:
        discount = min(discount, template.max_discount_fen)
    return discount


def split(discount_fen: int, subtotals: Sequence[int], eligible: Sequence[int]) -> list[int]:
    """Each line's share of the discount: proportional to its subtotal among the eligible lines
    (rounded down), the remainder to the last eligible line (then the ones before it, each up to
    its subtotal). The shares add up to the discount."""
    shares = [0] * len(subtotals)
    base = sum(subtotals[i] for i in eligible)
    if not base or not discount_fen:
        return shares
    for i in eligible:
        shares[i] = discount_fen * subtotals[i] // base
    left = discount_fen - sum(shares)
    for i in reversed(eligible):
        take = min(left, subtotals[i] - shares[i])
        shares[i] += take
        left -= take
    assert left == 0
    return shares


@dataclass(frozen=True)
class Applied:
    coupon: MemberCoupon
    discount_fen: int
    shares: list[int]  # per line


def apply(code: str, member_id: int, lines: Sequence[Priced], *, now: datetime) -> Applied:
    """Check the member's coupon `code` against the lines (owner, status, window, scope, threshold)
    and compute its discount and the lines' shares. Read-only: reserve() takes it."""
    coupon = MemberCoupon.objects.select_related("template").filter(code=code.strip().upper()).first()
    if coupon is None or coupon.member_id != member_id:
        raise NotFound(E.NOT_FOUND, _("优惠券不存在。"))
    if coupon.status != CouponStatus.AVAILABLE:
        raise Conflict(E.UNAVAILABLE, _("该优惠券不可用（%(s)s）。") % {"s": coupon.get_status_display()})
    if coupon.valid_until <= now:
        raise Conflict(E.EXPIRED, _("该优惠券已过期。"))
    if coupon.valid_from > now:
        raise Conflict(E.NOT_YET_VALID, _("该优惠券尚未生效。"))
    template = coupon.template
    eligible = _in_scope(template, lines)
    eligible_fen = sum(lines[i].subtotal_fen for i in eligible)
    if not eligible_fen:
        raise JiumaError(E.NOT_APPLICABLE, _("该优惠券不适用于所选商品。"))
    if eligible_fen < template.threshold_fen:
        raise JiumaError(
            E.BELOW_THRESHOLD,
            _("适用商品满 %(t).2f 元可用。") % {"t": template.threshold_fen / 100},
            fields={"threshold_fen": template.threshold_fen, "eligible_fen": eligible_fen},
        )
    discount = discount_of(template, eligible_fen)
    return Applied(coupon, discount, split(discount, [line.subtotal_fen for line in lines], eligible))


# --- the order's side ---------------------------------------------------------------------------


def reserve(order: Order, coupon: MemberCoupon, *, now: datetime) -> None:
    """available → reserved by the order (its creation). Refused unless the coupon is the buyer's,
    available and valid now."""
    changed = MemberCoupon.objects.filter(
        pk=coupon.pk, member_id=order.member_id, status=CouponStatus.AVAILABLE, valid_from__lte=now, valid_until__gt=now
    ).update(status=CouponStatus.RESERVED, order=order, reserved_at=now)
    if not changed:
        raise Conflict(E.UNAVAILABLE, _("该优惠券已被使用或已失效。"))


def consume(order: Order, *, now: datetime) -> int:
    """reserved → used (the order is paid); returns how many changed (0 or 1)."""
    return MemberCoupon.objects.filter(order=order, status=CouponStatus.RESERVED).update(
        status=CouponStatus.USED, used_at=now
    )


def release(order: Order, *, now: datetime) -> int:
    """reserved | used → available, or expired when past valid_until (the order cancelled or fully
    refunded); returns how many changed."""
    held = Q(order=order, status__in=[CouponStatus.RESERVED, CouponStatus.USED])
    expired = MemberCoupon.objects.filter(held, valid_until__lte=now).update(
        status=CouponStatus.EXPIRED, order=None, reserved_at=None, used_at=None, ended_at=now
    )
    back = MemberCoupon.objects.filter(held).update(
        status=CouponStatus.AVAILABLE, order=None, reserved_at=None, used_at=None
    )
    return expired + back
