"""Paying cash prizes: the worker side of the Payout outbox, WeChat's notifications, reconciliation.

Exactly once, whatever fails:
- a payout's merchant bill number is fixed when the prize is awarded; every request for it, first
  try or retry, carries that number, and WeChat makes at most one transfer per number;
- a worker takes a payout by moving its next attempt a lease into the future under the row lock
  (another worker, or the sweeper, skips it meanwhile); a worker that dies leaves the lease to run
  out, and the payout is tried again with the same number;
- when WeChat could not be reached or the answer was lost, the next step asks WeChat by the number
  before sending again;
- WeChat's answers and notifications only move a payout forward (pending → submitted → succeeded,
  failed or cancelled), each by a conditional update, so a late or repeated message changes nothing;
- notifications land in an inbox keyed by WeChat's event id (commerce.PayNotification).
WeChat's limits are met by queueing: too many requests → again in a few seconds; a consumer's daily
limit → tomorrow; the merchant short of funds or misconfigured → again in ten minutes, logged.

A cash prize needs the consumer to confirm receipt in WeChat (the 2025 merchant transfer): the
submitted payout keeps WeChat's package_info for the consumer's page to open WeChat's confirmation.
"""

from __future__ import annotations

import logging
import secrets
from datetime import datetime, timedelta
from functools import partial

from django.conf import settings
from django.db import transaction
from django.db.models import F
from django.utils import timezone
from django.utils.translation import gettext as _

from commerce.models import Member, PayNotification
from commerce.wechat import config
from commerce.wechat.pay import PayClient, PayError, TransferBill, pay_client
from rewards.models import BudgetEntry, Campaign, Claim, ClaimStatus, Payout, PayoutStatus, Prize
from tenants.db import connection
from tenants.errors import Conflict
from tenants.models import Domain

logger = logging.getLogger(__name__)

LEASE = timedelta(seconds=60)
RECHECK = timedelta(hours=1)  # a submitted payout is asked about this often until it is final
MAX_BACKOFF = timedelta(hours=1)
_OPEN = (PayoutStatus.PENDING, PayoutStatus.SUBMITTED)
_SUBMITTED_STATES = {"ACCEPTED", "PROCESSING", "WAIT_USER_CONFIRM", "TRANSFERING"}


# One letter per kind of payout source in the merchant bill number: each kind numbers its own ids,
# so two kinds must never share a letter (an unknown kind is a programming error, not a collision).
_BILL_LETTERS = {"claim": "C", "set": "S", "commission": "K"}


def bill_no(source: str) -> str:
    """The merchant bill number of a payout: fixed by its source ("<kind>:<id>"), unique across
    brands and kinds, in WeChat's alphabet (letters and digits, at most 32)."""
    kind, _sep, ident = source.partition(":")
    return f"JM{int(connection.tenant.number):05d}{_BILL_LETTERS[kind]}{int(ident):015d}"


def enqueue(payout_id: int) -> None:
    """Hand the payout to the worker (a sweeper picks up any the broker never got)."""
    try:
        from rewards.tasks import pay

        pay.delay(payout_id)
    except Exception:  # the broker down: the payout stays due and the sweeper sends it
        logger.warning("could not enqueue payout %s; the sweeper will", payout_id, exc_info=True)


def create(
    source: str,
    *,
    member: Member,
    amount_fen: int,
    remark: str,
    now: datetime,
    claim: Claim | None = None,
    campaign: Campaign | None = None,
    held: bool = False,
) -> Payout:
    """A cash amount owed to a member (in the caller's transaction): the Payout row, the outbox,
    with its merchant bill number fixed now, so every call to WeChat for it names the same bill;
    handed to the worker after commit (held ones wait for review)."""
    payout = Payout.objects.create(
        source=source,
        claim=claim,
        campaign=campaign,
        member=member,
        openid=member.openid or "",
        amount_fen=amount_fen,
        remark=remark[:32],
        out_bill_no=bill_no(source),
        status=PayoutStatus.HELD if held else PayoutStatus.PENDING,
        next_attempt_at=now,
        created_at=now,
    )
    transaction.on_commit(partial(enqueue, payout.pk))
    return payout


def backoff(attempts: int) -> timedelta:
    seconds = min(MAX_BACKOFF.total_seconds(), 5 * 2 ** max(0, attempts - 1))
    return timedelta(seconds=seconds * (1 + secrets.randbelow(250) / 1000))


def notify_url() -> str:
    domain = (
        Domain.objects.filter(tenant_id=connection.tenant.pk, is_primary=True).values_list("domain", flat=True).first()
    )
    return settings.WECHAT_PAY_NOTIFY_URL.format(domain=domain or "localhost", number=connection.tenant.number)


def _tomorrow(now: datetime) -> datetime:
    local = timezone.localtime(now)
    return (local + timedelta(days=1)).replace(hour=0, minute=5, second=0, microsecond=0)


def _client() -> PayClient:
    return pay_client(config.require())


def _take(payout_id: int, now: datetime) -> Payout | None:
    """The payout if it is due and nobody else holds it; moves its next attempt a lease ahead."""
    with transaction.atomic():
        payout = (
            Payout.objects.select_for_update(skip_locked=True)
            .filter(pk=payout_id, status=PayoutStatus.PENDING, next_attempt_at__lte=now)
            .first()
        )
        if payout is None:
            return None
        Payout.objects.filter(pk=payout.pk).update(attempts=F("attempts") + 1, next_attempt_at=now + LEASE)
        payout.attempts += 1
        return payout


def _later(payout: Payout, when: datetime, error: str, *, count: bool = True) -> Payout:
    changes: dict[str, object] = {"next_attempt_at": when, "last_error": error[:300]}
    if not count:
        changes["attempts"] = F("attempts") - 1
    Payout.objects.filter(pk=payout.pk, status=PayoutStatus.PENDING).update(**changes)
    payout.refresh_from_db()
    return payout


def pay(payout_id: int, *, client: PayClient | None = None, now: datetime | None = None) -> Payout | None:
    """Send one due payout to WeChat (or learn what became of it). Returns it, or None if not due."""
    now = now or timezone.now()
    payout = _take(payout_id, now)
    if payout is None:
        return None
    try:
        client = client or _client()
        bill = client.create_transfer(
            out_bill_no=payout.out_bill_no,
            openid=payout.openid,
            amount_fen=payout.amount_fen,
            remark=payout.remark,
            notify_url=notify_url(),
            activity=payout.remark,
        )
    except PayError as exc:
        return _after_error(payout, client, exc, now)
    return apply_bill(payout, bill, now)


def _after_error(payout: Payout, client: PayClient | None, exc: PayError, now: datetime) -> Payout:
    if exc.kind == "retry" and client is not None:
        try:
            bill = client.query_transfer(payout.out_bill_no)
        except PayError:
            bill = None
        if bill is not None:  # applied after all (the answer was lost): carry on from there
            return apply_bill(payout, bill, now)
        return _later(payout, now + backoff(payout.attempts), str(exc))
    if exc.kind == "rate":
        return _later(payout, now + timedelta(seconds=1 + secrets.randbelow(3000) / 1000), str(exc), count=False)
    if exc.kind == "quota":
        return _later(payout, _tomorrow(now), str(exc), count=False)
    if exc.kind in ("funds", "config"):
        logger.error("payout %s cannot be paid now (%s): check the WeChat Pay merchant", payout.out_bill_no, exc)
        return _later(payout, now + timedelta(minutes=10), str(exc))
    # Refused as it is: never sent again by itself; staff can look at it (failed, budget kept).
    Payout.objects.filter(pk=payout.pk, status=PayoutStatus.PENDING).update(
        status=PayoutStatus.FAILED, last_error=str(exc)[:300], finished_at=now
    )
    payout.refresh_from_db()
    logger.error("payout %s refused by WeChat: %s", payout.out_bill_no, exc)
    _finished(payout, now)
    return payout


def apply_bill(payout: Payout, bill: TransferBill, now: datetime) -> Payout:
    """Move the payout forward to what WeChat says of its bill (never backwards)."""
    fields: dict[str, object] = {"last_error": ""}
    if bill.transfer_bill_no:
        fields["transfer_bill_no"] = bill.transfer_bill_no
    if bill.state in _SUBMITTED_STATES:
        if bill.package_info:
            fields["package_info"] = bill.package_info
        Payout.objects.filter(pk=payout.pk, status=PayoutStatus.PENDING).update(
            status=PayoutStatus.SUBMITTED, submitted_at=now, next_attempt_at=now + RECHECK, **fields
        )
        Payout.objects.filter(pk=payout.pk, status=PayoutStatus.SUBMITTED).update(**fields)
    elif bill.state == "SUCCESS":
        Payout.objects.filter(pk=payout.pk, status__in=_OPEN).update(
            status=PayoutStatus.SUCCEEDED, finished_at=now, **fields
        )
    elif bill.state == "FAIL":
        Payout.objects.filter(pk=payout.pk, status__in=_OPEN).update(
            status=PayoutStatus.FAILED, finished_at=now, last_error=bill.fail_reason[:300] or "FAIL"
        )
    elif bill.state in ("CANCELLED", "CANCELING"):
        with transaction.atomic():
            if Payout.objects.filter(pk=payout.pk, status__in=_OPEN).update(
                status=PayoutStatus.CANCELLED, finished_at=now, last_error=bill.fail_reason[:300] or bill.state
            ):
                _release(payout, now)
    payout.refresh_from_db()
    _finished(payout, now)
    return payout


def _finished(payout: Payout, now: datetime) -> None:
    """A commission withdrawal's payout that became final tells its withdrawal (paid / failed)."""
    if payout.source.startswith("commission:") and payout.status not in _OPEN:
        from rewards.services import commission_payouts

        commission_payouts.on_payout_final(payout, now)


def _release(payout: Payout, now: datetime) -> None:
    """Give a payout that will never be made back to the campaign: its cash and its prize unit."""
    if payout.campaign_id is None:
        return
    BudgetEntry.objects.create(
        campaign_id=payout.campaign_id, amount_fen=-payout.amount_fen, source=f"release:{payout.pk}", created_at=now
    )
    Campaign.objects.filter(pk=payout.campaign_id).update(spent_fen=F("spent_fen") - payout.amount_fen)
    if payout.claim_id is not None:
        prize_id = Claim.objects.filter(pk=payout.claim_id).values_list("prize_id", flat=True).first()
        if prize_id is not None:
            Prize.objects.filter(pk=prize_id, awarded__gt=0).update(awarded=F("awarded") - 1)


def handle_notification(headers: dict[str, str], body: bytes, *, now: datetime | None = None) -> bool:
    """A notification from WeChat Pay: False if it is not genuinely WeChat's (answer 4xx so it is
    not taken as received); True once stored (and applied, if it names one of our bills)."""
    now = now or timezone.now()
    account = config.load()
    if account is None or not account.can_pay:
        return False
    notification = pay_client(account).notification(headers, body)
    if notification is None or not notification.event_id:
        return False
    with transaction.atomic():
        inbox, created = PayNotification.objects.get_or_create(
            event_id=notification.event_id,
            defaults={"event_type": notification.event_type, "resource": notification.resource, "received_at": now},
        )
        if not created and inbox.processed_at is not None:
            return True  # a resend: applied already
        locked = PayNotification.objects.select_for_update().get(pk=inbox.pk)
        if locked.processed_at is not None:
            return True
        result = _apply_notification(notification.event_type, notification.resource, now)
        PayNotification.objects.filter(pk=locked.pk).update(processed_at=now, result=result[:200])
    return True


def _apply_notification(event_type: str, resource: dict[str, object], now: datetime) -> str:
    if event_type.startswith(("TRANSACTION.", "REFUND.")):  # an order's payment or refund
        from commerce.services import payments

        return payments.handle_event(event_type, dict(resource), now)
    if not event_type.startswith("MCHTRANSFER."):
        return "ignored"
    out_bill_no = str(resource.get("out_bill_no", ""))
    payout = Payout.objects.filter(out_bill_no=out_bill_no).first()
    if payout is None:
        return f"unknown bill {out_bill_no}"
    bill = TransferBill(
        out_bill_no=out_bill_no,
        transfer_bill_no=str(resource.get("transfer_bill_no", "")),
        state=str(resource.get("state", "")),
        fail_reason=str(resource.get("fail_reason", "")),
    )
    return f"{apply_bill(payout, bill, now).status}"


def due(now: datetime | None = None, limit: int = 500) -> list[int]:
    """Payouts waiting to be sent (the sweeper's list)."""
    now = now or timezone.now()
    return list(
        Payout.objects.filter(status=PayoutStatus.PENDING, next_attempt_at__lte=now)
        .order_by("next_attempt_at")
        .values_list("pk", flat=True)[:limit]
    )


def reconcile(*, client: PayClient | None = None, now: datetime | None = None, limit: int = 500) -> int:
    """Ask WeChat about submitted payouts whose recheck time has come (a notification may never have
    arrived) and move them on. Returns how many changed."""
    now = now or timezone.now()
    changed = 0
    ids = list(
        Payout.objects.filter(status=PayoutStatus.SUBMITTED, next_attempt_at__lte=now)
        .order_by("next_attempt_at")
        .values_list("pk", flat=True)[:limit]
    )
    if not ids:
        return 0
    client = client or _client()
    for payout in Payout.objects.filter(pk__in=ids):
        try:
            bill = client.query_transfer(payout.out_bill_no)
        except PayError as exc:
            logger.warning("reconciling payout %s: %s", payout.out_bill_no, exc)
            continue
        before = payout.status
        if bill is None:
            continue
        after = apply_bill(payout, bill, now)
        if after.status == PayoutStatus.SUBMITTED:
            Payout.objects.filter(pk=payout.pk, status=PayoutStatus.SUBMITTED).update(next_attempt_at=now + RECHECK)
        changed += after.status != before
    return changed


def retry_now(payout_ids: list[int], *, now: datetime | None = None) -> list[tuple[Payout, datetime]]:
    """Pending payouts waiting for a later attempt become due now, under their row locks; each is
    handed to the worker after commit. Returns those rescheduled, each with when it was due.

    A payout that moved on meanwhile is left alone, and so is one due within a lease: it may be in a
    worker's hands right now, and is sent within a minute anyway. Sending again is safe: the bill
    number is fixed and WeChat makes one transfer per number. Runs inside the caller's transaction
    when there is one (the caller audits what it returns)."""
    from functools import partial

    now = now or timezone.now()
    with transaction.atomic():
        waiting = list(
            Payout.objects.select_for_update()
            .filter(pk__in=payout_ids, status=PayoutStatus.PENDING, next_attempt_at__gt=now + LEASE)
            .order_by("pk")
        )
        Payout.objects.filter(pk__in=[payout.pk for payout in waiting]).update(next_attempt_at=now)
        for payout in waiting:
            transaction.on_commit(partial(enqueue, payout.pk))
    return [(payout, payout.next_attempt_at) for payout in waiting]


def approve(payout: Payout, *, actor: str, now: datetime | None = None) -> Payout:
    """Release a payout held by risk control to the worker."""
    now = now or timezone.now()
    with transaction.atomic():
        if not Payout.objects.filter(pk=payout.pk, status=PayoutStatus.HELD).update(
            status=PayoutStatus.PENDING, next_attempt_at=now
        ):
            raise Conflict("payout_not_held", _("该红包不在待审核状态。"))
        if payout.claim_id is not None:
            Claim.objects.filter(pk=payout.claim_id).update(status=ClaimStatus.OK, reviewed_at=now, reviewed_by=actor)
    payout.refresh_from_db()
    return payout


def reject(payout: Payout, *, actor: str, now: datetime | None = None) -> Payout:
    """Refuse a held payout: never paid; its cash and prize unit go back to the campaign."""
    now = now or timezone.now()
    with transaction.atomic():
        if not Payout.objects.filter(pk=payout.pk, status=PayoutStatus.HELD).update(
            status=PayoutStatus.CANCELLED, finished_at=now, last_error=f"rejected by {actor}"[:300]
        ):
            raise Conflict("payout_not_held", _("该红包不在待审核状态。"))
        if payout.claim_id is not None:
            Claim.objects.filter(pk=payout.claim_id).update(
                status=ClaimStatus.REJECTED, reviewed_at=now, reviewed_by=actor
            )
        _release(payout, now)
    payout.refresh_from_db()
    return payout
