"""Reads of the commerce core: the sales channel's lists and lookups, and whether a dealer may sell
somewhere (anti-diversion asks that of every scan of a bottle that left through a dealer).

Every function runs in the current brand's schema.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from django.db.models import Prefetch, Q, QuerySet
from django.utils.translation import gettext as _

from commerce import regions
from commerce.errors import ChannelErrorCode
from commerce.models import ChannelStaff, ChannelStatus, Dealer, DealerArea, DealerLevel, Store
from tenants.errors import NotFound

_PREFIX_LENGTH = {"province": 2, "city": 4, "county": 6}


# --- dealers ----------------------------------------------------------------------------------------


def dealers(
    *,
    search: str = "",
    status: str = "",
    level: int | None = None,
    parent_id: int | None = None,
    region_code: str = "",
) -> QuerySet[Dealer]:
    """Dealers by code, with their parent and areas loaded (two queries for any page).

    `search` matches code, name, contact; `region_code` keeps dealers with an own area inside or
    around that region (an unknown region matches nothing).
    """
    qs = Dealer.objects.select_related("parent").prefetch_related(
        Prefetch("areas", queryset=DealerArea.objects.order_by("region_code"))
    )
    if search:
        qs = qs.filter(
            Q(code__icontains=search)
            | Q(name__icontains=search)
            | Q(contact_name__icontains=search)
            | Q(contact_phone__icontains=search)
        )
    if status:
        qs = qs.filter(status=status)
    if level is not None:
        qs = qs.filter(level=level)
    if parent_id is not None:
        qs = qs.filter(parent_id=parent_id)
    if region_code:
        region = regions.get(region_code)
        if region is None:
            return qs.none()
        around = [region.code, *(r.code for r in regions.ancestors(region.code))]
        inside = Q(areas__region_code__startswith=region.code[: _PREFIX_LENGTH[region.level]])
        qs = qs.filter(Q(areas__region_code__in=around) | inside).distinct()
    return qs.order_by("code")


def get_dealer(dealer_id: int) -> Dealer:
    dealer = dealers().filter(pk=dealer_id).first()
    if dealer is None:
        raise NotFound(ChannelErrorCode.DEALER_NOT_FOUND, _("经销商不存在。"))
    return dealer


def area_codes(dealer_id: int) -> list[str]:
    """The dealer's own authorised areas, by code."""
    return list(
        DealerArea.objects.filter(dealer_id=dealer_id).order_by("region_code").values_list("region_code", flat=True)
    )


def effective_area_codes(dealer: Dealer) -> list[str]:
    """Where the dealer may sell: its own areas, or, for a second-level dealer without any, its
    parent's. Empty: no area is set, the dealer is not restricted. One query."""
    ids = [dealer.pk] if dealer.parent_id is None else [dealer.pk, dealer.parent_id]
    rows = list(DealerArea.objects.filter(dealer_id__in=ids).values_list("dealer_id", "region_code"))
    own = sorted(code for owner, code in rows if owner == dealer.pk)
    if own or dealer.level == DealerLevel.FIRST:
        return own
    return sorted(code for owner, code in rows if owner == dealer.parent_id)


def dealer_covers(dealer: Dealer, region_code: str) -> bool | None:
    """Whether the dealer is authorised to sell in the region (anti-diversion's question).

    True: the region is inside one of the dealer's areas (effective_area_codes). False: it is
    outside all of them, and precise enough to say so. None, inconclusive: the region is unknown,
    the dealer has no area at all, or the region is less precise than an area inside it (a scan
    located to a city when the dealer holds one of its counties). See commerce.regions.coverage.
    One query; callers checking many regions for one dealer should use covers() instead.
    """
    return covers(effective_area_codes(dealer), region_code)


def covers(area_codes: Iterable[str], region_code: str) -> bool | None:
    """dealer_covers() for area codes already at hand (no query)."""
    return regions.coverage(region_code, area_codes)


# --- stores -----------------------------------------------------------------------------------------


def stores(
    *, search: str = "", status: str = "", dealer_id: int | None = None, region_code: str = ""
) -> QuerySet[Store]:
    """Stores by code, with their dealer. `region_code` keeps the stores inside that region (at any
    level; an unknown region matches nothing)."""
    qs = Store.objects.select_related("dealer")
    if search:
        qs = qs.filter(
            Q(code__icontains=search)
            | Q(name__icontains=search)
            | Q(address__icontains=search)
            | Q(contact_name__icontains=search)
            | Q(contact_phone__icontains=search)
        )
    if status:
        qs = qs.filter(status=status)
    if dealer_id is not None:
        qs = qs.filter(dealer_id=dealer_id)
    if region_code:
        region = regions.get(region_code)
        if region is None:
            return qs.none()
        qs = qs.filter(region_code__startswith=region.code[: _PREFIX_LENGTH[region.level]])
    return qs.order_by("code")


def get_store(store_id: int) -> Store:
    store = stores().filter(pk=store_id).first()
    if store is None:
        raise NotFound(ChannelErrorCode.STORE_NOT_FOUND, _("门店不存在。"))
    return store


def store_by_qr_token(token: str) -> Store | None:
    """The active store whose QR token this is (store rewards: the QR shown at the till)."""
    if not isinstance(token, str) or not token or len(token) > 64:
        return None
    return Store.objects.select_related("dealer").filter(qr_token=token, status=ChannelStatus.ACTIVE).first()


# --- channel staff ----------------------------------------------------------------------------------


def channel_staff(
    *,
    search: str = "",
    role: str = "",
    dealer_id: int | None = None,
    store_id: int | None = None,
    is_active: bool | None = None,
) -> QuerySet[ChannelStaff]:
    """Channel staff, newest first, with their account, dealer and store."""
    qs = ChannelStaff.objects.select_related("user", "dealer", "store")
    if search:
        qs = qs.filter(
            Q(phone__icontains=search) | Q(user__username__icontains=search) | Q(user__display_name__icontains=search)
        )
    if role:
        qs = qs.filter(role=role)
    if dealer_id is not None:
        qs = qs.filter(dealer_id=dealer_id)
    if store_id is not None:
        qs = qs.filter(store_id=store_id)
    if is_active is not None:
        qs = qs.filter(is_active=is_active)
    return qs.order_by("-created_at", "-id")


def get_channel_staff(staff_id: int) -> ChannelStaff:
    staff = channel_staff().filter(pk=staff_id).first()
    if staff is None:
        raise NotFound(ChannelErrorCode.STAFF_NOT_FOUND, _("渠道人员不存在。"))
    return staff


def channel_staff_of(user: Any) -> ChannelStaff | None:
    """The active channel staff record of a signed-in user (terminal pages), or None."""
    if user is None or not getattr(user, "is_authenticated", False):
        return None
    return ChannelStaff.objects.select_related("dealer", "store").filter(user_id=user.pk, is_active=True).first()
