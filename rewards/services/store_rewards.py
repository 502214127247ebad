"""Store rewards (开瓶奖励, BC 联动): what a store and its clerks earn, and their withdrawals.

Tying a consumer's draw to a store (`tie_for`, called by the scan page before the draw):
- a store QR (`/s/<Store.qr_token>/`) or a clerk QR (`/s/<signed (brand, store, clerk)>/`) scanned at
  the till leaves a signed, httponly cookie per brand naming (brand, store, clerk, time); while it
  is younger than the policy's `qr_minutes`, its store (if still active) wins, with its clerk if
  the clerk is still active in that store (else the store alone);
- else the store the bottle's case (or pallet) was received at (入库, codes.channel), if active;
- else nothing.

Earnings are an append-only ledger (StoreEarning), one account per store (clerk null) and one per
clerk (store, clerk). Every entry has a source, unique per account, so a repeated call adds nothing:
- `on_claim`: a draw tied to a store (not held by risk control; a held one when approved) earns
  the store and its clerk their opening reward, "opening:<serial>";
- `clerk_scan`: a store's clerk scans an opened cap in the terminal, "clerk-scan:<serial>", once
  per bottle whoever scans (a unique index is the backstop of a race between two clerks) and at
  most `clerk_scans_per_day` a clerk per Beijing day (counted under the clerk's row lock);
- `request_withdrawal`: under the account owner's row lock (the Store row for the store's account,
  the ChannelStaff row for a clerk's), at most the balance and one open withdrawal at a time; the
  amount leaves at once ("withdrawal:<id>") and comes back if rejected ("withdrawal-back:<id>").
  `approve`, `reject` and `mark_paid` each move a withdrawal by a conditional update from the
  state it must be in, so two finance staff acting at once decide it once.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from django.core import signing
from django.core.paginator import Paginator
from django.db import IntegrityError, transaction
from django.db.models import Q, Sum
from django.utils import timezone
from django.utils.translation import gettext as _

from codes import format as code_format
from codes.channel import received_store_of_bottle
from codes.keyring import check
from codes.models import CodeStatus, SerialGroup
from codes.services import cached_batch_of, status_of
from commerce.models import ChannelStaff, ChannelStatus, Store
from rewards.errors import RewardErrorCode as E
from rewards.models import (
    Claim,
    StoreEarning,
    StoreEarningKind,
    StoreRewardPolicy,
    StoreWithdrawal,
    WithdrawalStatus,
)
from tenants.brand.roles import STORE_ROLES
from tenants.db import connection
from tenants.errors import Conflict, JiumaError

SHANGHAI = ZoneInfo("Asia/Shanghai")
CLERK_QR_SALT = "jiuma.rewards.clerk-qr"
TIE_SALT = "jiuma.rewards.store-tie"
TIE_COOKIE_PREFIX = "jm_store_"
# A tie cookie dated this far in the future is refused (clocks of web nodes differ a little).
CLOCK_SKEW = timedelta(minutes=1)
STATEMENT_PAGE_SIZE = 20
OPEN_WITHDRAWAL = (WithdrawalStatus.REQUESTED, WithdrawalStatus.APPROVED)
MANAGE_STORE_PERM = "commerce.store_manage_staff"  # the store's owner
USE_TERMINAL_PERM = "commerce.store_use_terminal"  # every store staff


def policy() -> StoreRewardPolicy:
    return StoreRewardPolicy.current()


def _brand_number() -> int:
    return int(connection.tenant.number)


def _is_store_staff(staff: ChannelStaff | None, store_id: int | None = None) -> bool:
    return (
        staff is not None
        and staff.is_active
        and staff.store_id is not None
        and staff.role in {role.value for role in STORE_ROLES}
        and (store_id is None or staff.store_id == store_id)
    )


# --- store and clerk QR codes, and the tie of a scan to a store ------------------------------------


@dataclass(frozen=True)
class Tie:
    store: Store
    clerk: ChannelStaff | None = None


def clerk_token(staff: ChannelStaff) -> str:
    """The token of a clerk's QR: signed (brand, store, clerk), so it cannot be forged nor carried to
    another brand (the signing key is the platform's); it never expires, the clerk's record decides."""
    return signing.dumps([_brand_number(), staff.store_id, staff.pk], salt=CLERK_QR_SALT, compress=False)


def qr_path(store: Store, clerk: ChannelStaff | None = None) -> str:
    """The path a store's (or a clerk's) QR code encodes: it names the brand by number, so the short
    code host (where caps are scanned, and so where the tie cookie must live) routes it to the brand
    (codes.middleware) as it routes the caps."""
    return f"/s/{_brand_number()}/{clerk_token(clerk) if clerk is not None else store.qr_token}/"


def resolve_qr(token: str) -> Tie | None:
    """The active store (and clerk) a QR token names, None if it names none (forged, another
    brand's, a rotated store token, a suspended store, a clerk who left or moved)."""
    token = str(token)[:200]
    if ":" not in token:  # a store token (URL-safe base64, no colon)
        store = Store.objects.filter(qr_token=token, status=ChannelStatus.ACTIVE).first() if token else None
        return Tie(store) if store is not None else None
    try:
        number, store_id, staff_id = signing.loads(token, salt=CLERK_QR_SALT)
    except (signing.BadSignature, ValueError, TypeError):
        return None
    if number != _brand_number() or not isinstance(store_id, int) or not isinstance(staff_id, int):
        return None
    staff = ChannelStaff.objects.select_related("store").filter(pk=staff_id, store_id=store_id).first()
    if not _is_store_staff(staff, store_id) or staff is None or staff.store is None or not staff.store.is_active:
        return None
    return Tie(staff.store, staff)


def tie_cookie_name(number: int | None = None) -> str:
    """One tie cookie per brand (the short code host serves every brand)."""
    return f"{TIE_COOKIE_PREFIX}{_brand_number() if number is None else number}"


def tie_cookie_value(tie: Tie, now: datetime | None = None) -> str:
    now = now or timezone.now()
    clerk_id = tie.clerk.pk if tie.clerk is not None else None
    return signing.dumps([_brand_number(), tie.store.pk, clerk_id, int(now.timestamp())], salt=TIE_SALT, compress=False)


def _read_tie_cookie(value: str, now: datetime, minutes: int) -> tuple[int, int | None] | None:
    try:
        number, store_id, clerk_id, at = signing.loads(str(value), salt=TIE_SALT)
    except (signing.BadSignature, ValueError, TypeError):
        return None
    if number != _brand_number() or not isinstance(store_id, int) or not isinstance(at, int):
        return None
    if clerk_id is not None and not isinstance(clerk_id, int):
        return None
    age = now.timestamp() - at
    if age > minutes * 60 or age < -CLOCK_SKEW.total_seconds():
        return None
    return store_id, clerk_id


_LOOK_UP: Any = object()


def tie_for(
    serial: int,
    cookie_value: str | None,
    now: datetime | None = None,
    *,
    received_store_id: int | None = _LOOK_UP,
) -> tuple[int | None, int | None]:
    """(store id, clerk id) a draw of bottle `serial` is tied to (see the module doc).
    `received_store_id`: the store the bottle was received at when the caller knows it already
    (e.g. from codes.channel.bottle_path); looked up otherwise."""
    now = now or timezone.now()
    if cookie_value:
        fresh = _read_tie_cookie(cookie_value, now, policy().qr_minutes)
        if fresh is not None:
            store_id, clerk_id = fresh
            if Store.objects.filter(pk=store_id, status=ChannelStatus.ACTIVE).exists():
                if clerk_id is not None:
                    clerk = ChannelStaff.objects.filter(pk=clerk_id).first()
                    clerk_id = clerk_id if _is_store_staff(clerk, store_id) else None
                return store_id, clerk_id
    if received_store_id is _LOOK_UP:
        received = received_store_of_bottle(serial)
        received_store_id = received.pk if received is not None and received.is_active else None
    elif received_store_id is not None:
        received_store_id = (
            received_store_id
            if Store.objects.filter(pk=received_store_id, status=ChannelStatus.ACTIVE).exists()
            else None
        )
    return received_store_id, None


# --- earnings ------------------------------------------------------------------------------------


def on_claim(record: Claim, *, now: datetime) -> list[StoreEarning]:
    """The opening reward of a draw tied to a store (called in the claim's transaction; again when a
    held claim is approved). Idempotent: a repeated call adds nothing. Returns the entries added."""
    rules = policy()
    if not rules.enabled or record.store_id is None:
        return []
    store = Store.objects.filter(pk=record.store_id).first()
    if store is None or not store.is_active:
        return []
    source = f"opening:{record.serial}"
    entries: list[tuple[ChannelStaff | None, int]] = []
    if rules.store_opening_fen > 0:
        entries.append((None, rules.store_opening_fen))
    if rules.clerk_opening_fen > 0 and record.clerk_id is not None:
        clerk = ChannelStaff.objects.filter(pk=record.clerk_id).first()
        if _is_store_staff(clerk, store.pk):
            entries.append((clerk, rules.clerk_opening_fen))
    added = []
    for clerk, amount in entries:
        entry = _credit(
            store,
            clerk,
            StoreEarningKind.OPENING,
            amount,
            source=source,
            serial=record.serial,
            claim=record,
            now=now,
        )
        if entry is not None:
            added.append(entry)
    return added


def _credit(
    store: Store,
    clerk: ChannelStaff | None,
    kind: StoreEarningKind,
    amount_fen: int,
    *,
    source: str,
    now: datetime,
    serial: int | None = None,
    claim: Claim | None = None,
    note: str = "",
) -> StoreEarning | None:
    """Add one entry unless its account has one of the same source (None then): a savepoint, so
    the caller's transaction goes on."""
    try:
        with transaction.atomic():
            return StoreEarning.objects.create(
                store=store,
                clerk=clerk,
                kind=kind,
                amount_fen=amount_fen,
                source=source,
                serial=serial,
                claim=claim,
                note=note[:200],
                created_at=now,
            )
    except IntegrityError:
        if StoreEarning.objects.filter(_account(store.pk, clerk.pk if clerk else None), source=source).exists():
            return None
        raise


def _inner_serial(text: str) -> int:
    """The serial of a genuine, active inner code of this brand in what was scanned or typed."""
    not_genuine = JiumaError(E.NOT_GENUINE, _("不是本品牌的正品码，不能领取奖励。"), status=400)
    code = check(code_format.from_scan(str(text)), tenant_number=_brand_number())
    if code is None:
        raise not_genuine
    if code.kind != code_format.Kind.INNER:
        raise JiumaError(E.NOT_INNER_CODE, _("请扫描开瓶后瓶盖内的码（盖内码）。"), status=400)
    batch = cached_batch_of(SerialGroup.BOTTLE, code.serial)
    if batch is None or batch.key_version != code.version:
        raise not_genuine
    status = status_of(SerialGroup.BOTTLE, code.serial)
    if status is None:
        raise JiumaError(E.NOT_ACTIVE, _("该瓶尚未进入销售流通，不能领取奖励。"), status=400)
    if status != CodeStatus.ACTIVE:
        message = {
            CodeStatus.VOID: _("该码已作废，不能领取奖励。"),
            CodeStatus.FROZEN: _("该码已冻结，不能领取奖励。"),
        }.get(CodeStatus(status), _("该码已被列入黑名单，不能领取奖励。"))
        raise JiumaError(E.CODE_BLOCKED, message, status=400)
    return int(code.serial)


def day_window(now: datetime) -> tuple[datetime, datetime]:
    """The Beijing day `now` falls in, as [start, end)."""
    local = now.astimezone(SHANGHAI)
    start = local.replace(hour=0, minute=0, second=0, microsecond=0)
    return start, start + timedelta(days=1)


def clerk_scans_on(clerk: ChannelStaff, now: datetime) -> int:
    start, end = day_window(now)
    return StoreEarning.objects.filter(
        clerk=clerk, kind=StoreEarningKind.CLERK_SCAN, created_at__gte=start, created_at__lt=end
    ).count()


@dataclass(frozen=True)
class ClerkScanResult:
    entry: StoreEarning
    serial: int
    amount_fen: int
    today: int  # the clerk's rewarded scans today, this one included
    cap: int


def clerk_scan(staff: ChannelStaff, text: str, *, now: datetime | None = None) -> ClerkScanResult:
    """A store's clerk scans an opened cap (服务员扫码): the clerk earns `clerk_scan_fen`, once per
    bottle whoever scans it, at most `clerk_scans_per_day` a Beijing day (0 turns it off).
    Raises JiumaError (4xx) with the reason otherwise."""
    now = now or timezone.now()
    if not _is_store_staff(staff):
        raise JiumaError(E.NOT_STORE_STAFF, _("只有门店人员可以扫码领取服务员奖励。"), status=403)
    rules = policy()
    if not rules.enabled or rules.clerk_scan_fen <= 0 or rules.clerk_scans_per_day <= 0:
        raise JiumaError(E.STORE_REWARD_OFF, _("品牌暂未开启服务员扫码奖励。"), status=409)
    serial = _inner_serial(text)
    already = Conflict(E.ALREADY_CLERK_SCANNED, _("这瓶酒的服务员奖励已经领取过了。"))
    with transaction.atomic():
        # The clerk's row lock orders this clerk's scans: the count below sees every earlier one.
        locked = ChannelStaff.objects.select_for_update(of=("self",)).select_related("store").get(pk=staff.pk)
        if not _is_store_staff(locked) or locked.store is None or not locked.store.is_active:
            raise JiumaError(E.NOT_STORE_STAFF, _("门店或账号已停用，不能领取奖励。"), status=403)
        if StoreEarning.objects.filter(kind=StoreEarningKind.CLERK_SCAN, serial=serial).exists():
            raise already
        today = clerk_scans_on(locked, now)
        if today >= rules.clerk_scans_per_day:
            raise Conflict(
                E.CLERK_DAILY_CAP,
                _("今天的服务员扫码奖励已达上限（%(n)d 瓶），请明天再来。") % {"n": rules.clerk_scans_per_day},
            )
        try:
            with transaction.atomic():
                entry = StoreEarning.objects.create(
                    store=locked.store,
                    clerk=locked,
                    kind=StoreEarningKind.CLERK_SCAN,
                    amount_fen=rules.clerk_scan_fen,
                    source=f"clerk-scan:{serial}",
                    serial=serial,
                    created_at=now,
                )
        except IntegrityError as exc:  # another clerk's scan of the same bottle committed first
            raise already from exc
    return ClerkScanResult(entry, serial, rules.clerk_scan_fen, today + 1, rules.clerk_scans_per_day)


# --- accounts, statements and withdrawals ----------------------------------------------------------


def _id(obj: Any) -> int | None:
    return None if obj is None else int(getattr(obj, "pk", obj))


def _account(store_id: int | None, clerk_id: int | None) -> Q:
    return Q(store_id=store_id, clerk_id=clerk_id) if clerk_id is not None else Q(store_id=store_id, clerk__isnull=True)


def balance(store: Store | int, clerk: ChannelStaff | int | None = None) -> int:
    """The balance of an account (fen): the sum of its entries."""
    total = StoreEarning.objects.filter(_account(_id(store), _id(clerk))).aggregate(s=Sum("amount_fen"))["s"]
    return int(total or 0)


def balances(store_ids: list[int]) -> dict[int, int]:
    """The store accounts' balances (clerks' accounts not included), by store id, in one query."""
    rows = (
        StoreEarning.objects.filter(store_id__in=store_ids, clerk__isnull=True)
        .values("store_id")
        .annotate(s=Sum("amount_fen"))
    )
    found = {row["store_id"]: int(row["s"] or 0) for row in rows}
    return {store_id: found.get(store_id, 0) for store_id in store_ids}


@dataclass(frozen=True)
class Statement:
    entries: list[StoreEarning]
    page: int
    pages: int
    count: int
    balance_fen: int
    month: date | None  # the first day of the month shown, None: all


def month_window(month: date) -> tuple[datetime, datetime]:
    start = datetime(month.year, month.month, 1, tzinfo=SHANGHAI)
    end = datetime(month.year + month.month // 12, month.month % 12 + 1, 1, tzinfo=SHANGHAI)
    return start, end


def statement(
    store: Store | int,
    clerk: ChannelStaff | int | None = None,
    month: date | None = None,
    *,
    page: int | str = 1,
    per_page: int = STATEMENT_PAGE_SIZE,
) -> Statement:
    """An account's entries, newest first, one page at a time; only `month`'s (Beijing time) if given."""
    entries = StoreEarning.objects.filter(_account(_id(store), _id(clerk)))
    total = balance(store, clerk)
    if month is not None:
        month = month.replace(day=1)
        start, end = month_window(month)
        entries = entries.filter(created_at__gte=start, created_at__lt=end)
    shown = Paginator(entries.order_by("-created_at", "-id"), per_page).get_page(page)
    return Statement(
        entries=list(shown.object_list),
        page=shown.number,
        pages=shown.paginator.num_pages,
        count=shown.paginator.count,
        balance_fen=total,
        month=month,
    )


def account_for(staff: ChannelStaff, which: str) -> tuple[Store, ChannelStaff | None]:
    """The account `staff` acts on: "me" (their own, every store staff) or "store" (the store's,
    only its owner: the permission to manage the store's staff)."""
    if not _is_store_staff(staff) or staff.store is None:
        raise JiumaError(E.NOT_STORE_STAFF, _("只有门店人员有收益账户。"), status=403)
    if which == "store":
        if not staff.user.has_perm(MANAGE_STORE_PERM):
            raise JiumaError(E.NOT_ACCOUNT_HOLDER, _("只有店主可以查看和提现门店收益。"), status=403)
        return staff.store, None
    if which == "me":
        return staff.store, staff
    raise JiumaError(E.NOT_ACCOUNT_HOLDER, _("账户无效。"), status=400)


def open_withdrawal(store: Store | int, clerk: ChannelStaff | int | None = None) -> StoreWithdrawal | None:
    return (
        StoreWithdrawal.objects.filter(_account(_id(store), _id(clerk)), status__in=OPEN_WITHDRAWAL)
        .order_by("-id")
        .first()
    )


def request_withdrawal(
    store: Store,
    clerk: ChannelStaff | None,
    amount_fen: int,
    *,
    by: str,
    now: datetime | None = None,
) -> StoreWithdrawal:
    """Withdraw `amount_fen` from an account (see the module doc). Raises JiumaError (4xx)."""
    now = now or timezone.now()
    if not isinstance(amount_fen, int) or isinstance(amount_fen, bool) or amount_fen <= 0:
        raise JiumaError(E.INVALID_AMOUNT, _("请输入正确的提现金额。"), status=400)
    minimum = policy().min_withdrawal_fen
    if amount_fen < minimum:
        raise JiumaError(
            E.BELOW_MINIMUM,
            _("提现金额不能少于 ¥%(min)s。") % {"min": _yuan(minimum)},
            status=400,
        )
    with transaction.atomic():
        # The account owner's row lock: every withdrawal of the account waits here for the one
        # before it, so the balance read below is the balance (credits may only raise it meanwhile).
        if clerk is None:
            Store.objects.select_for_update().filter(pk=store.pk).values_list("pk", flat=True).get()
        else:
            locked = ChannelStaff.objects.select_for_update().filter(pk=clerk.pk).first()
            if locked is None or locked.store_id != store.pk:
                raise JiumaError(E.NOT_ACCOUNT_HOLDER, _("账户无效。"), status=400)
        account = _account(store.pk, clerk.pk if clerk is not None else None)
        if StoreWithdrawal.objects.filter(account, status__in=OPEN_WITHDRAWAL).exists():
            raise Conflict(E.WITHDRAWAL_OPEN, _("上一笔提现还在处理中，完成后才能再次申请。"))
        available = balance(store, clerk)
        if amount_fen > available:
            raise Conflict(
                E.INSUFFICIENT_BALANCE,
                _("可提现余额不足（当前余额 ¥%(balance)s）。") % {"balance": _yuan(available)},
            )
        withdrawal = StoreWithdrawal.objects.create(
            store=store, clerk=clerk, amount_fen=amount_fen, requested_by=str(by)[:150], created_at=now
        )
        StoreEarning.objects.create(
            store=store,
            clerk=clerk,
            kind=StoreEarningKind.WITHDRAWAL,
            amount_fen=-amount_fen,
            source=f"withdrawal:{withdrawal.pk}",
            created_at=now,
        )
    return withdrawal


def _wrong_state(withdrawal: StoreWithdrawal) -> Conflict:
    current = StoreWithdrawal.objects.filter(pk=withdrawal.pk).values_list("status", flat=True).first()
    label = WithdrawalStatus(current).label if current else _("不存在")
    return Conflict(E.WITHDRAWAL_WRONG_STATE, _("该提现当前状态为“%(status)s”，不能这样处理。") % {"status": label})


def approve(withdrawal: StoreWithdrawal, *, actor: str, now: datetime | None = None) -> StoreWithdrawal:
    """Finance approve a requested withdrawal (to be paid)."""
    now = now or timezone.now()
    moved = StoreWithdrawal.objects.filter(pk=withdrawal.pk, status=WithdrawalStatus.REQUESTED).update(
        status=WithdrawalStatus.APPROVED, decided_by=str(actor)[:150], decided_at=now
    )
    if not moved:
        raise _wrong_state(withdrawal)
    return StoreWithdrawal.objects.get(pk=withdrawal.pk)


def reject(withdrawal: StoreWithdrawal, *, actor: str, reason: str, now: datetime | None = None) -> StoreWithdrawal:
    """Finance reject a withdrawal not paid yet (requested or approved): the amount goes back."""
    now = now or timezone.now()
    reason = str(reason or "").strip()
    if not reason:
        raise JiumaError(E.WITHDRAWAL_NOTE_REQUIRED, _("请填写驳回原因。"), status=400)
    with transaction.atomic():
        moved = StoreWithdrawal.objects.filter(pk=withdrawal.pk, status__in=OPEN_WITHDRAWAL).update(
            status=WithdrawalStatus.REJECTED, reason=reason[:200], decided_by=str(actor)[:150], decided_at=now
        )
        if not moved:
            raise _wrong_state(withdrawal)
        done = StoreWithdrawal.objects.select_related("store", "clerk").get(pk=withdrawal.pk)
        StoreEarning.objects.create(
            store=done.store,
            clerk=done.clerk,
            kind=StoreEarningKind.WITHDRAWAL_BACK,
            amount_fen=done.amount_fen,
            source=f"withdrawal-back:{done.pk}",
            note=reason[:200],
            created_at=now,
        )
    return done


def mark_paid(
    withdrawal: StoreWithdrawal, *, actor: str, reference: str, now: datetime | None = None
) -> StoreWithdrawal:
    """Finance record an approved withdrawal as paid, with the payment's reference number."""
    now = now or timezone.now()
    reference = str(reference or "").strip()
    if not reference:
        raise JiumaError(E.WITHDRAWAL_NOTE_REQUIRED, _("请填写打款凭证号。"), status=400)
    moved = StoreWithdrawal.objects.filter(pk=withdrawal.pk, status=WithdrawalStatus.APPROVED).update(
        status=WithdrawalStatus.PAID, reference=reference[:64], paid_at=now
    )
    if not moved:
        raise _wrong_state(withdrawal)
    return StoreWithdrawal.objects.get(pk=withdrawal.pk)


def _yuan(fen: int) -> str:
    sign = "-" if fen < 0 else ""
    whole, cents = divmod(abs(int(fen)), 100)
    return f"{sign}{whole}.{cents:02d}"
