"""Group buy (拼团): opening and joining teams, the team side of payments and cancels, success, and
the expiry sweep (see the commerce.models contract: GroupBuyTeam / GroupBuySeat machines, lock order).

- `join` (team_id None opens a team) runs in one durable transaction in lock order: the buyer's
  Member row (client_token, member_limit, one live seat per team), the team row (seats_taken + 1 by
  a guarded UPDATE: status open, not expired, seats_taken < size — the last seat is taken once), the
  campaign counter (sold + q <= quantity), then the order (orders.create_activity_order: its
  "created" event names the team) and the stock. The seat is stored with the order.
- `on_order_paid` runs after the payment commits (orders.mark_paid schedules it; the payment holds
  the order's row, and the team comes before orders in lock order): seat reserved → paid,
  seats_paid + 1; the leader's payment opens the team (expires_at = paid_at + team_hours); the
  payment that fills the team succeeds it: every paid seat's order, in id order, awaiting_group →
  awaiting_shipment | awaiting_pickup (event group_succeeded) and its commission accrues. A payment
  for a team that has failed meanwhile is refunded at once (group_failed).
- `on_order_cancelling` (in orders.cancel's transaction, after the member's row): the seat is
  released (seats_taken - 1), a pending team whose leader cancels is void, the counter comes down.
- `fail_team` (the sweep and the eta task at expires_at): open → failed; every paid seat → refunded
  and its own order cancelled with exactly one Refund (orders.fail_group_order); then, each in its
  own transaction, the still-reserved seats' orders are cancelled (orders.cancel reason
  group_failed). `sweep_expired` also repairs seats whose payment's after-commit step was lost.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

from django.db import transaction
from django.db.models import F, Q, Sum
from django.utils import timezone
from django.utils.translation import gettext as _

from commerce.errors import GroupBuyErrorCode as E
from commerce.models import (
    CancelReason,
    Delivery,
    GroupBuyCampaign,
    GroupBuySeat,
    GroupBuyTeam,
    Member,
    Order,
    OrderKind,
    OrderLine,
    OrderStatus,
    PaymentStatus,
    PriceSource,
    SeatStatus,
    TeamStatus,
)
from commerce.services import orders
from tenants.errors import Conflict, JiumaError, NotFound

log = logging.getLogger(__name__)

ACTOR_EXPIRY = "system:group_buy_team_expiry"


def _enqueue(task_name: str, team_id: int, eta: datetime | None) -> None:
    """Send a deadline task (on commit); the periodic sweep picks up whatever the broker missed."""
    try:
        from commerce import tasks

        getattr(tasks, task_name).apply_async(args=[team_id], eta=eta)
    except Exception:
        log.warning("could not enqueue %s for team %s; the sweep will", task_name, team_id, exc_info=True)


def _lock_member(member_id: int) -> Member:
    member = Member.objects.select_for_update().filter(pk=member_id).first()
    if member is None or member.is_erased:
        raise NotFound("member_not_found", _("会员不存在。"))
    return member


def _campaign(campaign_id: int, now: datetime) -> GroupBuyCampaign:
    campaign = GroupBuyCampaign.objects.filter(pk=campaign_id).first()
    if campaign is None:
        raise NotFound(E.CAMPAIGN_NOT_FOUND, _("拼团活动不存在。"))
    if not campaign.is_active or not campaign.starts_at <= now < campaign.ends_at:
        raise Conflict(E.CAMPAIGN_NOT_ACTIVE, _("该拼团活动未在进行中。"))
    return campaign


def _take_counter(campaign: GroupBuyCampaign, quantity: int) -> None:
    taken = (
        GroupBuyCampaign.objects.filter(pk=campaign.pk)
        .filter(Q(quantity__isnull=True) | Q(quantity__gte=F("sold") + quantity))
        .update(sold=F("sold") + quantity)
    )
    if not taken:
        raise Conflict(E.SOLD_OUT, _("该拼团活动已售罄。"))


def _give_back_counter(campaign_id: int, quantity: int) -> None:
    if quantity > 0:
        GroupBuyCampaign.objects.filter(pk=campaign_id, sold__gte=quantity).update(sold=F("sold") - quantity)


def _quantity_of(order_ids: list[int]) -> int:
    if not order_ids:
        return 0
    return int(OrderLine.objects.filter(order_id__in=order_ids).aggregate(n=Sum("quantity"))["n"] or 0)


# --- open / join --------------------------------------------------------------------------------


def join(
    member_id: int,
    campaign_id: int,
    *,
    team_id: int | None = None,
    quantity: int = 1,
    delivery: str = Delivery.EXPRESS,
    address_id: int | None = None,
    pickup_store_id: int | None = None,
    client_token: str = "",
    now: datetime | None = None,
) -> Order:
    """Open a team (team_id None: the member leads it; it opens when their order is paid) or join an
    open one: an order at the campaign's group price with its seat. Idempotent per client_token."""
    now = now or timezone.now()
    client_token = orders.check_activity_request(delivery, address_id, pickup_store_id, client_token)
    if isinstance(quantity, bool) or not isinstance(quantity, int) or quantity < 1:
        raise JiumaError(E.INVALID_QUANTITY, _("购买数量无效。"))
    found = orders.existing_order(member_id, client_token)
    if found is not None:
        return found
    with transaction.atomic(durable=True):
        member = _lock_member(member_id)  # step 1
        found = orders.existing_order(member_id, client_token)
        if found is not None:
            return found
        campaign = _campaign(campaign_id, now)
        if quantity > campaign.per_order_limit:
            raise JiumaError(
                E.INVALID_QUANTITY,
                _("每单限购 %(n)d 件。") % {"n": campaign.per_order_limit},
                fields={"quantity": quantity},
            )
        live = GroupBuySeat.objects.filter(member_id=member_id, team__campaign_id=campaign.pk).exclude(
            status=SeatStatus.RELEASED
        )
        if campaign.member_limit is not None and live.count() >= campaign.member_limit:
            raise Conflict(E.MEMBER_LIMIT, _("每人限参团 %(n)d 次。") % {"n": campaign.member_limit})
        if team_id is None:
            team = GroupBuyTeam.objects.create(
                campaign=campaign, leader=member, size=campaign.team_size, seats_taken=1, created_at=now
            )
            leader = True
        else:
            locked = GroupBuyTeam.objects.select_for_update().filter(pk=team_id, campaign_id=campaign.pk).first()
            if locked is None:
                raise NotFound(E.TEAM_NOT_FOUND, _("该团不存在。"))
            team = locked  # step 2: the team's row, held until commit
            if live.filter(team=team).exists():
                raise Conflict(E.ALREADY_IN_TEAM, _("你已在这个团里。"))
            if not GroupBuyTeam.objects.filter(
                pk=team.pk, status=TeamStatus.OPEN, expires_at__gt=now, seats_taken__lt=F("size")
            ).update(seats_taken=F("seats_taken") + 1):
                raise Conflict(E.TEAM_NOT_JOINABLE, _("该团已满或已结束，请另开一团。"), fields={"team_id": team.pk})
            leader = False
        _take_counter(campaign, quantity)  # step 2: the campaign counter
        order = orders.create_activity_order(
            member,
            sku_id=campaign.sku_id,
            quantity=quantity,
            unit_price_fen=campaign.group_price_fen,
            price_source=PriceSource.GROUP_BUY,
            kind=OrderKind.GROUP_BUY,
            delivery=delivery,
            address_id=address_id,
            pickup_store_id=pickup_store_id,
            client_token=client_token,
            event_data={"group_buy_team": team.pk},
            pays_commission=campaign.pays_commission,
            now=now,
        )
        GroupBuySeat.objects.create(team=team, member=member, order=order, is_leader=leader, joined_at=now)
    return order


# --- payment ------------------------------------------------------------------------------------


def on_order_paid(order_id: int, *, now: datetime | None = None) -> str:
    """The team side of a group-buy order's payment (after it commits; idempotent). Returns what
    happened: "paid", "opened", "succeeded", "failed" (the team had failed: refunded) or "nothing"."""
    now = now or timezone.now()
    seat = GroupBuySeat.objects.filter(order_id=order_id).first()
    if seat is None:
        return "nothing"
    with transaction.atomic(durable=True):
        team = GroupBuyTeam.objects.select_for_update().get(pk=seat.team_id)  # step 2
        seat = GroupBuySeat.objects.get(pk=seat.pk)
        order = Order.objects.get(pk=order_id)
        if (
            seat.status != SeatStatus.RESERVED
            or order.payment_status != PaymentStatus.PAID
            or order.status != OrderStatus.AWAITING_GROUP
        ):
            return "nothing"
        paid_at = order.paid_at or now
        if team.status not in (TeamStatus.PENDING, TeamStatus.OPEN):
            # The team failed (or is void) while this payment was on its way: refund it now.
            GroupBuySeat.objects.filter(pk=seat.pk, status=SeatStatus.RESERVED).update(
                status=SeatStatus.REFUNDED, paid_at=paid_at, ended_at=now
            )
            GroupBuyTeam.objects.filter(pk=team.pk, seats_taken__gt=F("seats_paid")).update(
                seats_taken=F("seats_taken") - 1
            )
            _give_back_counter(team.campaign_id, _quantity_of([order_id]))
            orders.fail_group_order(order_id, team_id=team.pk, now=now, actor=ACTOR_EXPIRY)
            return "failed"
        GroupBuySeat.objects.filter(pk=seat.pk, status=SeatStatus.RESERVED).update(
            status=SeatStatus.PAID, paid_at=paid_at
        )
        if team.status == TeamStatus.PENDING:
            campaign = GroupBuyCampaign.objects.get(pk=team.campaign_id)
            expires_at = paid_at + timedelta(hours=campaign.team_hours)
            GroupBuyTeam.objects.filter(pk=team.pk, status=TeamStatus.PENDING).update(
                status=TeamStatus.OPEN, opened_at=paid_at, expires_at=expires_at, seats_paid=F("seats_paid") + 1
            )
            team_id = team.pk
            transaction.on_commit(lambda: _enqueue("group_buy_team_expiry_one", team_id, expires_at))
            outcome = "opened"
        else:
            GroupBuyTeam.objects.filter(pk=team.pk, status=TeamStatus.OPEN).update(seats_paid=F("seats_paid") + 1)
            outcome = "paid"
        team.refresh_from_db()
        if team.status == TeamStatus.OPEN and team.seats_paid >= team.size and (team.expires_at or now) > now:
            _succeed(team, now)
            outcome = "succeeded"
    return outcome


def _succeed(team: GroupBuyTeam, now: datetime) -> None:
    """Under the team's lock: open → succeeded; every paid seat's order (ascending id) leaves
    awaiting_group and its commission accrues."""
    if not GroupBuyTeam.objects.filter(pk=team.pk, status=TeamStatus.OPEN, seats_paid=F("size")).update(
        status=TeamStatus.SUCCEEDED, finished_at=now
    ):
        return
    order_ids = list(GroupBuySeat.objects.filter(team=team, status=SeatStatus.PAID).values_list("order_id", flat=True))
    for order_id in sorted(order_ids):  # step 3: ascending id
        orders.group_succeeded(order_id, team_id=team.pk, now=now)


# --- cancel -------------------------------------------------------------------------------------


def on_order_cancelling(order: Order, *, now: datetime) -> None:
    """In orders.cancel's transaction (after the member's row, before the order's): release the
    order's reserved seat (seats_taken - 1; a pending team whose leader cancels is void) and the
    campaign counter. The cancel's own guarded UPDATE decides: if it refuses, all of this rolls back."""
    seat = GroupBuySeat.objects.filter(order_id=order.pk).first()
    if seat is None:
        return
    team = GroupBuyTeam.objects.select_for_update().get(pk=seat.team_id)  # step 2
    if not GroupBuySeat.objects.filter(pk=seat.pk, status=SeatStatus.RESERVED).update(
        status=SeatStatus.RELEASED, ended_at=now
    ):
        return
    GroupBuyTeam.objects.filter(pk=team.pk, seats_taken__gt=F("seats_paid")).update(seats_taken=F("seats_taken") - 1)
    if seat.is_leader:
        GroupBuyTeam.objects.filter(pk=team.pk, status=TeamStatus.PENDING).update(
            status=TeamStatus.VOID, finished_at=now
        )
    _give_back_counter(team.campaign_id, _quantity_of([order.pk]))


# --- expiry -------------------------------------------------------------------------------------


def fail_team(team_id: int, *, now: datetime | None = None) -> bool:
    """expires_at passed: open → failed; every paid seat → refunded and its own order cancelled with
    one Refund (group_failed); then the still-reserved seats' orders are cancelled. Idempotent (a
    second call finishes what a first left: reserved seats of a failed team)."""
    now = now or timezone.now()
    failed = False
    with transaction.atomic(durable=True):
        team = GroupBuyTeam.objects.select_for_update().filter(pk=team_id).first()  # step 2
        if team is None:
            return False
        if team.status == TeamStatus.OPEN and team.expires_at is not None and team.expires_at <= now:
            GroupBuyTeam.objects.filter(pk=team.pk, status=TeamStatus.OPEN).update(
                status=TeamStatus.FAILED, finished_at=now
            )
            failed = True
            paid = list(GroupBuySeat.objects.filter(team=team, status=SeatStatus.PAID).order_by("order_id"))
            _give_back_counter(team.campaign_id, _quantity_of([s.order_id for s in paid]))
            GroupBuySeat.objects.filter(pk__in=[s.pk for s in paid], status=SeatStatus.PAID).update(
                status=SeatStatus.REFUNDED, ended_at=now
            )
            for seat in paid:  # step 3: orders in ascending id
                orders.fail_group_order(seat.order_id, team_id=team.pk, now=now, actor=ACTOR_EXPIRY)
        elif team.status != TeamStatus.FAILED:
            return False
    _finish_reserved(team_id, now)
    return failed


def _finish_reserved(team_id: int, now: datetime) -> None:
    """A failed team's reserved seats: an unpaid order is cancelled (its seat released); one whose
    payment came in meanwhile is refunded (on_order_paid)."""
    for seat in GroupBuySeat.objects.filter(team_id=team_id, status=SeatStatus.RESERVED).order_by("order_id"):
        try:
            order = Order.objects.get(pk=seat.order_id)
            if order.status == OrderStatus.PENDING_PAYMENT:
                orders.cancel(order.pk, reason=CancelReason.GROUP_FAILED, actor=ACTOR_EXPIRY, now=now)
            elif order.status == OrderStatus.AWAITING_GROUP:
                on_order_paid(order.pk, now=now)
        except JiumaError:
            log.warning("team %s: seat %s not finished yet; the next sweep will", team_id, seat.pk, exc_info=True)


def sweep_expired(*, now: datetime | None = None, limit: int = 200) -> int:
    """Every few minutes (beat): fail open teams past expires_at, finish failed teams' reserved seats,
    and apply paid seats whose after-payment step was lost. Returns the teams failed."""
    now = now or timezone.now()
    done = 0
    due = list(
        GroupBuyTeam.objects.filter(status=TeamStatus.OPEN, expires_at__lte=now)
        .order_by("expires_at")
        .values_list("id", flat=True)[:limit]
    )
    leftover = list(
        GroupBuySeat.objects.filter(team__status=TeamStatus.FAILED, status=SeatStatus.RESERVED)
        .values_list("team_id", flat=True)
        .distinct()[:limit]
    )
    for team_id in [*due, *[t for t in leftover if t not in due]]:
        try:
            done += fail_team(team_id, now=now)
        except Exception:  # one bad team never stops the sweep
            log.exception("team %s: expiry step failed", team_id)
    lost = list(
        GroupBuySeat.objects.filter(
            status=SeatStatus.RESERVED,
            order__payment_status=PaymentStatus.PAID,
            order__status=OrderStatus.AWAITING_GROUP,
        ).values_list("order_id", flat=True)[:limit]
    )
    for order_id in lost:
        try:
            on_order_paid(order_id, now=now)
        except Exception:
            log.exception("order %s: group-buy payment step failed", order_id)
    return done
