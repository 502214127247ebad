"""Bargaining (砍价): sessions, friends' cuts, the order at the bargained price, its cancel, and the
expiry sweep (see the commerce.models contract: BargainSession machine, the cut rule, lock order).

- `start`: one active session per (campaign, member) (a second start returns the active one), the
  campaign's member_limit counted under the member's row lock.
- `help`: the helper's Member row (their helper_limit), then the session's row; the cut is computed
  under that lock in integer fen: with R fen left to the floor and k helps left, the last help takes
  R; any other takes a random 1 .. min(R - (k - 1), 2R // k), so every helper still to come keeps at
  least 1 fen and the max_helps-th help lands exactly on the floor. One help per (session, helper).
- `order`: at the current price (only at the floor unless allow_buy_above_floor): member row,
  session row (active → ordered by a guarded UPDATE), campaign counter, then the order
  (orders.create_activity_order: its "created" event names the session) and the stock.
- `on_order_cancelling` (in orders.cancel's transaction): ordered → active (not expired, no other
  active session; the order link cleared) or expired; the counter comes down.
- `expire` / `sweep_expired`: active sessions past expires_at expire.
"""

from __future__ import annotations

import logging
import secrets
from collections.abc import Callable
from datetime import datetime, timedelta

from django.db import IntegrityError, transaction
from django.db.models import F, Q
from django.utils import timezone
from django.utils.translation import gettext as _

from commerce.errors import BargainErrorCode as E
from commerce.models import (
    BargainCampaign,
    BargainHelp,
    BargainSession,
    BargainStatus,
    Delivery,
    Member,
    Order,
    OrderKind,
    OrderLine,
    PriceSource,
)
from commerce.services import orders
from tenants.errors import Conflict, JiumaError, NotFound

log = logging.getLogger(__name__)


def _enqueue(task_name: str, session_id: int, eta: datetime | None) -> None:
    try:
        from commerce import tasks

        getattr(tasks, task_name).apply_async(args=[session_id], eta=eta)
    except Exception:
        log.warning("could not enqueue %s for session %s; the sweep will", task_name, session_id, exc_info=True)


def _lock_member(member_id: int) -> Member:
    member = Member.objects.select_for_update().filter(pk=member_id).first()
    if member is None or member.is_erased:
        raise NotFound("member_not_found", _("会员不存在。"))
    return member


def _active_campaign(campaign_id: int, now: datetime) -> BargainCampaign:
    campaign = BargainCampaign.objects.filter(pk=campaign_id).first()
    if campaign is None:
        raise NotFound(E.CAMPAIGN_NOT_FOUND, _("砍价活动不存在。"))
    if not campaign.is_active or not campaign.starts_at <= now < campaign.ends_at:
        raise Conflict(E.CAMPAIGN_NOT_ACTIVE, _("该砍价活动未在进行中。"))
    return campaign


def _not_active() -> Conflict:
    return Conflict(E.SESSION_NOT_ACTIVE, _("该砍价已结束。"))


# --- start --------------------------------------------------------------------------------------


def start(member_id: int, campaign_id: int, *, now: datetime | None = None) -> BargainSession:
    """Open a session at the start price, or return the member's active one on this campaign."""
    now = now or timezone.now()
    with transaction.atomic(durable=True):
        _lock_member(member_id)  # step 1
        campaign = _active_campaign(campaign_id, now)
        active = BargainSession.objects.filter(
            campaign=campaign, member_id=member_id, status=BargainStatus.ACTIVE, expires_at__gt=now
        ).first()
        if active is not None:
            return active
        # An active session past its time (the sweep has not come yet) expires now.
        BargainSession.objects.filter(campaign=campaign, member_id=member_id, status=BargainStatus.ACTIVE).update(
            status=BargainStatus.EXPIRED
        )
        if campaign.member_limit is not None and (
            BargainSession.objects.filter(campaign=campaign, member_id=member_id).count() >= campaign.member_limit
        ):
            raise Conflict(E.MEMBER_LIMIT, _("每人限发起 %(n)d 次。") % {"n": campaign.member_limit})
        session = BargainSession.objects.create(
            campaign=campaign,
            member_id=member_id,
            start_price_fen=campaign.start_price_fen,
            floor_price_fen=campaign.floor_price_fen,
            current_price_fen=campaign.start_price_fen,
            max_helps=campaign.max_helps,
            expires_at=now + timedelta(hours=campaign.session_hours),
            created_at=now,
        )
        session_id, expires_at = session.pk, session.expires_at
        transaction.on_commit(lambda: _enqueue("bargain_session_expiry_one", session_id, expires_at))
    return session


# --- help ---------------------------------------------------------------------------------------


def _random_cut(upper: int) -> int:
    return 1 + secrets.randbelow(upper)


def cut_for(remaining_fen: int, helps_left: int, rand: Callable[[int], int] = _random_cut) -> int:
    """The next cut: all of `remaining_fen` for the last help, else 1 .. min(R - (k - 1), 2R // k) at
    random (`rand(upper)` returns 1..upper), so each helper still to come keeps at least 1 fen."""
    if remaining_fen <= 0 or helps_left <= 0:
        return 0
    if helps_left == 1:
        return remaining_fen
    upper = max(1, min(remaining_fen - (helps_left - 1), 2 * remaining_fen // helps_left))
    return max(1, min(rand(upper), upper, remaining_fen))


def help(session_id: int, helper_id: int, *, now: datetime | None = None) -> BargainHelp:
    """A friend cuts the price once; refused on their own session, twice, after the end, at the floor."""
    now = now or timezone.now()
    session = BargainSession.objects.filter(pk=session_id).first()
    if session is None:
        raise NotFound(E.SESSION_NOT_FOUND, _("砍价不存在。"))
    if session.member_id == helper_id:
        raise JiumaError(E.OWN_SESSION, _("不能给自己砍价。"))
    try:
        with transaction.atomic(durable=True):
            _lock_member(helper_id)  # step 1: the helper's limit
            locked = BargainSession.objects.select_for_update().get(pk=session_id)  # step 2
            if locked.status != BargainStatus.ACTIVE or locked.expires_at <= now:
                raise _not_active()
            if BargainHelp.objects.filter(session=locked, helper_id=helper_id).exists():
                raise Conflict(E.ALREADY_HELPED, _("你已经帮砍过了。"))
            campaign = BargainCampaign.objects.get(pk=locked.campaign_id)
            if campaign.helper_limit is not None and (
                BargainHelp.objects.filter(helper_id=helper_id, session__campaign=campaign).count()
                >= campaign.helper_limit
            ):
                raise Conflict(E.HELPER_LIMIT, _("你在本活动的帮砍次数已用完。"))
            cut = cut_for(locked.current_price_fen - locked.floor_price_fen, locked.max_helps - locked.helps_count)
            if cut <= 0:
                raise Conflict(E.AT_FLOOR, _("已经砍到底价了。"))
            if not BargainSession.objects.filter(
                pk=locked.pk,
                status=BargainStatus.ACTIVE,
                helps_count=locked.helps_count,
                current_price_fen=locked.current_price_fen,
            ).update(current_price_fen=F("current_price_fen") - cut, helps_count=F("helps_count") + 1):
                raise _not_active()  # pragma: no cover (the row lock makes this unreachable)
            return BargainHelp.objects.create(session=locked, helper_id=helper_id, cut_fen=cut, created_at=now)
    except IntegrityError:
        raise Conflict(E.ALREADY_HELPED, _("你已经帮砍过了。")) from None


# --- order --------------------------------------------------------------------------------------


def order(
    session_id: int,
    member_id: int,
    *,
    delivery: str = Delivery.EXPRESS,
    address_id: int | None = None,
    pickup_store_id: int | None = None,
    client_token: str = "",
    now: datetime | None = None,
) -> Order:
    """Order the session's SKU (one unit) at its current price: active → ordered. Idempotent per
    client_token."""
    now = now or timezone.now()
    client_token = orders.check_activity_request(delivery, address_id, pickup_store_id, client_token)
    found = orders.existing_order(member_id, client_token)
    if found is not None:
        return found
    with transaction.atomic(durable=True):
        member = _lock_member(member_id)  # step 1
        found = orders.existing_order(member_id, client_token)
        if found is not None:
            return found
        session = BargainSession.objects.select_for_update().filter(pk=session_id, member_id=member_id).first()
        if session is None:
            raise NotFound(E.SESSION_NOT_FOUND, _("砍价不存在。"))
        if session.status != BargainStatus.ACTIVE or session.expires_at <= now:
            raise _not_active()
        campaign = BargainCampaign.objects.get(pk=session.campaign_id)
        if not campaign.is_active:
            raise Conflict(E.CAMPAIGN_NOT_ACTIVE, _("该砍价活动未在进行中。"))
        if session.current_price_fen > session.floor_price_fen and not campaign.allow_buy_above_floor:
            raise Conflict(E.NOT_AT_FLOOR, _("砍到底价才能购买。"))
        if not (
            BargainCampaign.objects.filter(pk=campaign.pk)
            .filter(Q(quantity__isnull=True) | Q(quantity__gte=F("sold") + 1))
            .update(sold=F("sold") + 1)
        ):
            raise Conflict(E.SOLD_OUT, _("该砍价活动已售罄。"))
        made = orders.create_activity_order(
            member,
            sku_id=campaign.sku_id,
            quantity=1,
            unit_price_fen=session.current_price_fen,
            price_source=PriceSource.BARGAIN,
            kind=OrderKind.BARGAIN,
            delivery=delivery,
            address_id=address_id,
            pickup_store_id=pickup_store_id,
            client_token=client_token,
            event_data={"bargain_session": session.pk},
            pays_commission=campaign.pays_commission,
            now=now,
        )
        if not BargainSession.objects.filter(pk=session.pk, status=BargainStatus.ACTIVE).update(
            status=BargainStatus.ORDERED, order=made
        ):
            raise _not_active()  # pragma: no cover (the row lock makes this unreachable)
    made.refresh_from_db()
    return made


def on_order_cancelling(order: Order, *, now: datetime) -> None:
    """In orders.cancel's transaction (after the member's row): ordered → active (not expired, no
    other active session; the order link cleared) or expired; the counter comes down."""
    session = BargainSession.objects.select_for_update().filter(order_id=order.pk).first()  # step 2
    if session is None or session.status != BargainStatus.ORDERED:
        return
    other_active = (
        BargainSession.objects.filter(campaign_id=session.campaign_id, member_id=session.member_id)
        .filter(status=BargainStatus.ACTIVE)
        .exclude(pk=session.pk)
        .exists()
    )
    to = BargainStatus.ACTIVE if session.expires_at > now and not other_active else BargainStatus.EXPIRED
    if BargainSession.objects.filter(pk=session.pk, status=BargainStatus.ORDERED).update(status=to, order=None):
        quantity = sum(OrderLine.objects.filter(order_id=order.pk).values_list("quantity", flat=True))
        if quantity:
            BargainCampaign.objects.filter(pk=session.campaign_id, sold__gte=quantity).update(sold=F("sold") - quantity)


# --- expiry -------------------------------------------------------------------------------------


def expire(session_id: int, *, now: datetime | None = None) -> bool:
    """expires_at passed: active → expired (idempotent)."""
    now = now or timezone.now()
    return bool(
        BargainSession.objects.filter(pk=session_id, status=BargainStatus.ACTIVE, expires_at__lte=now).update(
            status=BargainStatus.EXPIRED
        )
    )


def sweep_expired(*, now: datetime | None = None, limit: int = 1000) -> int:
    now = now or timezone.now()
    ids = list(
        BargainSession.objects.filter(status=BargainStatus.ACTIVE, expires_at__lte=now)
        .order_by("expires_at")
        .values_list("id", flat=True)[:limit]
    )
    return sum(expire(session_id, now=now) for session_id in ids)
