"""Store rewards (开瓶奖励, BC 联动): a draw tied to a store (received there, or its store / clerk QR
scanned at the till) earns the store and clerk once per bottle; clerks scan opened caps (服务员扫码)
once per bottle and within a daily cap, exact under concurrency; store and clerk accounts withdraw at
most their balance, one withdrawal at a time, and a rejected withdrawal gives the money back."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import UTC, date, datetime, timedelta
from functools import partial
from types import SimpleNamespace
from typing import Any

import pytest
from django.contrib.auth import get_user_model
from django.core import signing
from django.db import connection
from django.db.models import Sum
from django.utils import timezone
from django_tenants.utils import tenant_context

from codes import channel
from codes import format as code_format
from codes import services as code_services
from codes.keyring import keyring
from codes.models import CodeStatus, MovementKind, SerialGroup
from commerce.models import ChannelStaff, ChannelStatus, Dealer, Store
from commerce.services import channel as channel_services
from rewards import risk
from rewards.models import (
    BlockedItem,
    Claim,
    ClaimStatus,
    StoreEarning,
    StoreEarningKind,
    StoreRewardPolicy,
    StoreWithdrawal,
    WithdrawalStatus,
)
from rewards.services import claims, store_rewards
from rewards.services.campaigns import PrizeSpec
from rewards.services.claims import ClaimContext
from tenants.errors import JiumaError
from tests.conftest import Brand
from tests.rewards.conftest import member, running_campaign
from tests.support.threads import run_concurrently

CLERK_PASSWORD = "Clerk-pass-2026!"
POINTS = PrizeSpec(name="酒币", kind="points", points=10, odds_ppm=1_000_000, quantity=10_000)


def build_world(brand: Brand) -> SimpleNamespace:
    """In `brand`'s schema (the caller's context): a dealer, two stores, their people, an active batch
    of 24 bottles in cases of 6, and the store reward rules."""
    keyring.clear()
    dealer = channel_services.create_dealer(code="SR01", name="开瓶经销商", areas=["520100"])
    store = channel_services.create_store(code="SR-S1", name="南明酒楼", dealer_id=dealer.pk, region_code="520102")
    other = channel_services.create_store(code="SR-S2", name="云岩酒楼", dealer_id=dealer.pk, region_code="520103")

    def person(role: str, phone: str, store_id: int | None = None, dealer_id: int | None = None) -> ChannelStaff:
        return channel_services.add_channel_staff(
            role=role, phone=phone, password=CLERK_PASSWORD, store_id=store_id, dealer_id=dealer_id
        )

    batch = code_services.create_batch(code_services.BatchRequest(bottles=24, bottles_per_case=6))
    code_services.set_batch_status(batch, CodeStatus.ACTIVE)
    StoreRewardPolicy.objects.create(
        store_opening_fen=100,
        clerk_opening_fen=50,
        clerk_scan_fen=80,
        clerk_scans_per_day=3,
        qr_minutes=30,
        min_withdrawal_fen=500,
    )
    return SimpleNamespace(
        brand=brand,
        dealer=dealer,
        store=store,
        other=other,
        owner=person("store_owner", "13800001001", store_id=store.pk),
        clerk=person("store_clerk", "13800001002", store_id=store.pk),
        clerk2=person("store_clerk", "13800001003", store_id=store.pk),
        elsewhere=person("store_clerk", "13800001004", store_id=other.pk),
        dealer_clerk=person("dealer_clerk", "13800001005", dealer_id=dealer.pk),
        batch=batch,
    )


def serial_of(world: SimpleNamespace, index: int) -> int:
    return int(world.batch.first_bottle_serial) + index


def code_of(world: SimpleNamespace, kind: code_format.Kind, index: int = 0) -> str:
    serial = world.batch.serial_range(SerialGroup.of(kind)).start + index
    return code_format.make(keyring.current_key(world.brand.tenant.number), kind, serial)


def inner(world: SimpleNamespace, index: int) -> str:
    return code_of(world, code_format.Kind.INNER, index)


@pytest.fixture
def world(in_alpha: Brand) -> SimpleNamespace:
    return build_world(in_alpha)


def _claim(serial: int, store_id: int | None, clerk_id: int | None = None, **context: Any) -> Claim:
    who = member(f"o-store-{serial}")
    return claims.claim(who, ClaimContext(serial=serial, store_id=store_id, clerk_id=clerk_id, **context)).claim


def _accounts(store: Store) -> dict[tuple[int, int | None], int]:
    """Every account of `store` with its ledger sum."""
    rows = StoreEarning.objects.filter(store=store).values("clerk_id").annotate(s=Sum("amount_fen"))
    return {(store.pk, row["clerk_id"]): int(row["s"]) for row in rows}


# --- tying a scan to a store -------------------------------------------------------------------------


def test_a_bottle_received_at_a_store_earns_the_store_its_opening_reward(world: SimpleNamespace) -> None:
    running_campaign([POINTS])
    case = code_of(world, code_format.Kind.CASE, 0)
    assert channel.record_movement(case, MovementKind.RECEIVE, store=world.store).movement is not None
    bottle = serial_of(world, 2)  # in case 0
    assert channel.received_store_of_bottle(bottle) == world.store
    assert channel.received_store_of_bottle(serial_of(world, 7)) is None  # case 1: never received
    assert store_rewards.tie_for(bottle, None) == (world.store.pk, None)
    record = _claim(bottle, *store_rewards.tie_for(bottle, None))
    assert record.store_id == world.store.pk
    (entry,) = StoreEarning.objects.all()
    assert (entry.store_id, entry.clerk_id, entry.kind, entry.amount_fen) == (world.store.pk, None, "opening", 100)
    assert (entry.source, entry.serial, entry.claim_id) == (f"opening:{bottle}", bottle, record.pk)
    assert store_rewards.balance(world.store) == 100
    assert store_rewards.tie_for(serial_of(world, 8), None) == (None, None)


def test_a_store_qr_and_a_clerk_qr_tie_the_next_scan_within_the_minutes(world: SimpleNamespace) -> None:
    running_campaign([POINTS])
    now = timezone.now()
    store_tie = store_rewards.resolve_qr(world.store.qr_token)
    assert store_tie is not None
    assert (store_tie.store, store_tie.clerk) == (world.store, None)
    clerk_token = store_rewards.clerk_token(world.clerk)
    number = connection.tenant.number  # the path names the brand, for the short code host
    assert store_rewards.qr_path(world.store, world.clerk) == f"/s/{number}/{clerk_token}/"
    assert store_rewards.qr_path(world.store) == f"/s/{number}/{world.store.qr_token}/"
    clerk_tie = store_rewards.resolve_qr(clerk_token)
    assert clerk_tie is not None
    assert (clerk_tie.store, clerk_tie.clerk) == (world.store, world.clerk)

    by_store = store_rewards.tie_cookie_value(store_tie, now)
    by_clerk = store_rewards.tie_cookie_value(clerk_tie, now)
    assert store_rewards.tie_for(serial_of(world, 0), by_store, now + timedelta(minutes=29)) == (world.store.pk, None)
    tied = store_rewards.tie_for(serial_of(world, 1), by_clerk, now + timedelta(minutes=5))
    assert tied == (world.store.pk, world.clerk.pk)

    _claim(serial_of(world, 1), *tied)
    entries = {(e.clerk_id, e.amount_fen) for e in StoreEarning.objects.all()}
    assert entries == {(None, 100), (world.clerk.pk, 50)}
    assert store_rewards.balance(world.store, world.clerk) == 50


def test_a_fresh_cookie_wins_over_the_receiving_store(world: SimpleNamespace) -> None:
    channel.record_movement(code_of(world, code_format.Kind.CASE, 0), MovementKind.RECEIVE, store=world.other)
    tie = store_rewards.resolve_qr(world.store.qr_token)
    assert tie is not None
    now = timezone.now()
    cookie = store_rewards.tie_cookie_value(tie, now)
    assert store_rewards.tie_for(serial_of(world, 0), cookie, now) == (world.store.pk, None)
    # Expired: the bottle's receiving store again.
    later = now + timedelta(minutes=31)
    assert store_rewards.tie_for(serial_of(world, 0), cookie, later) == (world.other.pk, None)


def test_expired_forged_and_foreign_cookies_tie_nothing(world: SimpleNamespace, beta: Brand) -> None:
    tie = store_rewards.resolve_qr(store_rewards.clerk_token(world.clerk))
    assert tie is not None
    now = timezone.now()
    cookie = store_rewards.tie_cookie_value(tie, now)
    bottle = serial_of(world, 3)
    assert store_rewards.tie_for(bottle, cookie, now + timedelta(minutes=31)) == (None, None)
    assert store_rewards.tie_for(bottle, cookie, now - timedelta(minutes=5)) == (None, None)  # from the future
    assert store_rewards.tie_for(bottle, cookie[:-2] + "xx", now) == (None, None)
    assert store_rewards.tie_for(bottle, "garbage", now) == (None, None)
    # Same ids, signed with the right salt but for another brand: refused.
    foreign = signing.dumps(
        [beta.tenant.number, world.store.pk, world.clerk.pk, int(now.timestamp())],
        salt=store_rewards.TIE_SALT,
        compress=False,
    )
    assert store_rewards.tie_for(bottle, foreign, now) == (None, None)
    # Another salt (e.g. a member cookie's value) is no tie either.
    member_like = signing.dumps([world.brand.tenant.number, world.store.pk, None, int(now.timestamp())])
    assert store_rewards.tie_for(bottle, member_like, now) == (None, None)


def test_a_clerk_who_left_keeps_the_store_but_not_the_clerk_and_a_closed_store_ties_nothing(
    world: SimpleNamespace,
) -> None:
    tie = store_rewards.resolve_qr(store_rewards.clerk_token(world.clerk))
    assert tie is not None
    now = timezone.now()
    cookie = store_rewards.tie_cookie_value(tie, now)
    channel_services.deactivate_channel_staff(world.clerk.pk)
    assert store_rewards.tie_for(serial_of(world, 0), cookie, now) == (world.store.pk, None)
    assert store_rewards.resolve_qr(store_rewards.clerk_token(world.clerk)) is None
    channel_services.suspend_store(world.store.pk)
    assert store_rewards.tie_for(serial_of(world, 0), cookie, now) == (None, None)
    assert store_rewards.resolve_qr(world.store.qr_token) is None


def test_forged_rotated_and_foreign_qr_tokens_name_no_store(world: SimpleNamespace, beta: Brand) -> None:
    token = store_rewards.clerk_token(world.clerk)
    assert store_rewards.resolve_qr(token[:-3] + "abc") is None
    assert store_rewards.resolve_qr("not-a-token") is None
    assert store_rewards.resolve_qr("") is None
    # A clerk of this store signed for the other store (moved): refused.
    moved = signing.dumps(
        [world.brand.tenant.number, world.other.pk, world.clerk.pk], salt=store_rewards.CLERK_QR_SALT, compress=False
    )
    assert store_rewards.resolve_qr(moved) is None
    with tenant_context(beta.tenant):
        assert store_rewards.resolve_qr(token) is None  # alpha's clerk token on beta
    old = world.store.qr_token
    channel_services.rotate_store_qr_token(world.store.pk)
    assert store_rewards.resolve_qr(old) is None


# --- the opening reward -------------------------------------------------------------------------------


def test_an_opening_reward_is_earned_once_per_bottle(world: SimpleNamespace) -> None:
    running_campaign([POINTS])
    record = _claim(serial_of(world, 0), world.store.pk, world.clerk.pk)
    assert StoreEarning.objects.count() == 2
    assert store_rewards.on_claim(record, now=timezone.now()) == []
    assert store_rewards.on_claim(record, now=timezone.now()) == []
    assert StoreEarning.objects.count() == 2
    assert store_rewards.balance(world.store) == 100


def test_a_held_claim_earns_nothing_until_approved(world: SimpleNamespace) -> None:
    running_campaign([POINTS])
    BlockedItem.objects.create(kind="device", value="farm-device", reason="羊毛党设备")
    risk.forget()
    held = _claim(serial_of(world, 0), world.store.pk, world.clerk.pk, device="farm-device")
    rejected = _claim(serial_of(world, 1), world.store.pk, world.clerk.pk, device="farm-device")
    assert held.status == ClaimStatus.HELD
    assert not StoreEarning.objects.exists()
    claims.review(rejected, approve=False, actor="finance_alpha")
    assert not StoreEarning.objects.exists()
    claims.review(held, approve=True, actor="finance_alpha")
    assert {(e.clerk_id, e.amount_fen, e.claim_id) for e in StoreEarning.objects.all()} == {
        (None, 100, held.pk),
        (world.clerk.pk, 50, held.pk),
    }


def test_rules_off_a_closed_store_or_a_departed_clerk_earn_nothing(world: SimpleNamespace) -> None:
    running_campaign([POINTS])
    StoreRewardPolicy.objects.filter(pk=1).update(enabled=False)
    _claim(serial_of(world, 0), world.store.pk, world.clerk.pk)
    assert not StoreEarning.objects.exists()
    StoreRewardPolicy.objects.filter(pk=1).update(enabled=True, store_opening_fen=0)
    _claim(serial_of(world, 1), world.store.pk, world.clerk.pk)
    assert [(e.clerk_id, e.amount_fen) for e in StoreEarning.objects.all()] == [(world.clerk.pk, 50)]
    StoreEarning.objects.all().delete()
    StoreRewardPolicy.objects.filter(pk=1).update(store_opening_fen=100)
    channel_services.deactivate_channel_staff(world.clerk2.pk)
    _claim(serial_of(world, 2), world.store.pk, world.clerk2.pk)
    assert [(e.clerk_id, e.amount_fen) for e in StoreEarning.objects.all()] == [(None, 100)]
    channel_services.suspend_store(world.other.pk)
    _claim(serial_of(world, 3), world.other.pk)
    assert not StoreEarning.objects.filter(store=world.other).exists()


# --- the clerk scan (服务员扫码) ---------------------------------------------------------------------------


def test_a_clerk_scan_pays_the_clerk_once_per_bottle_whoever_scans(world: SimpleNamespace) -> None:
    result = store_rewards.clerk_scan(world.clerk, code_services.url_prefix() + inner(world, 0))
    assert (result.amount_fen, result.today, result.cap, result.serial) == (80, 1, 3, serial_of(world, 0))
    entry = result.entry
    assert (entry.store_id, entry.clerk_id, entry.kind, entry.source) == (
        world.store.pk,
        world.clerk.pk,
        StoreEarningKind.CLERK_SCAN,
        f"clerk-scan:{serial_of(world, 0)}",
    )
    for who in (world.clerk, world.clerk2, world.elsewhere):
        with pytest.raises(JiumaError) as again:
            store_rewards.clerk_scan(who, inner(world, 0))
        assert again.value.code == "bottle_already_clerk_scanned"
        assert again.value.status_code == 409
    assert store_rewards.balance(world.store, world.clerk) == 80
    assert store_rewards.balance(world.store) == 0  # the store's account is not the clerk's


def test_a_clerk_scan_refuses_what_is_no_opened_cap_of_this_brand(world: SimpleNamespace, beta: Brand) -> None:
    def refused(text: str, who: ChannelStaff | None = None) -> JiumaError:
        with pytest.raises(JiumaError) as caught:
            store_rewards.clerk_scan(who or world.clerk, text)
        assert 400 <= caught.value.status_code < 500
        assert caught.value.message
        return caught.value

    assert refused("junk").code == "code_not_genuine"
    genuine = inner(world, 1)
    forged = genuine[:-1] + ("0" if genuine[-1] != "0" else "1")
    assert refused(forged).code == "code_not_genuine"
    assert refused(code_of(world, code_format.Kind.OUTER, 1)).code == "not_an_inner_code"
    assert refused(code_of(world, code_format.Kind.CASE, 0)).code == "not_an_inner_code"
    with tenant_context(beta.tenant):
        theirs = code_services.create_batch(code_services.BatchRequest(bottles=2))
        beta_code = code_format.make(
            keyring.current_key(beta.tenant.number), code_format.Kind.INNER, theirs.first_bottle_serial or 0
        )
    assert refused(beta_code).code == "code_not_genuine"
    code_services.set_code_status(inner(world, 2), CodeStatus.VOID, reason="测试作废")
    assert "作废" in refused(inner(world, 2)).message
    code_services.set_code_status(inner(world, 3), CodeStatus.FROZEN, reason="测试冻结")
    assert refused(inner(world, 3)).code == "code_blocked"
    dormant = code_services.create_batch(code_services.BatchRequest(bottles=2))
    dormant_code = code_format.make(
        keyring.current_key(world.brand.tenant.number), code_format.Kind.INNER, dormant.first_bottle_serial or 0
    )
    assert refused(dormant_code).code == "code_not_active"
    assert refused(inner(world, 4), world.dealer_clerk).code == "not_store_staff"
    channel_services.suspend_store(world.other.pk)
    assert refused(inner(world, 4), world.elsewhere).code == "not_store_staff"
    assert not StoreEarning.objects.exists()


def test_the_daily_cap_counts_by_beijing_day(world: SimpleNamespace) -> None:
    # 23:30 in Beijing is 15:30 UTC; the next Beijing day starts 30 minutes later.
    late = datetime(2026, 3, 1, 15, 30, tzinfo=UTC)
    for index in range(3):
        assert store_rewards.clerk_scan(world.clerk, inner(world, index), now=late).today == index + 1
    with pytest.raises(JiumaError) as capped:
        store_rewards.clerk_scan(world.clerk, inner(world, 3), now=late + timedelta(minutes=29))
    assert capped.value.code == "clerk_daily_cap_reached"
    # Another clerk has their own cap; the next day starts at midnight Beijing time.
    assert store_rewards.clerk_scan(world.clerk2, inner(world, 3), now=late).today == 1
    assert store_rewards.clerk_scan(world.clerk, inner(world, 4), now=late + timedelta(minutes=31)).today == 1
    StoreRewardPolicy.objects.filter(pk=1).update(clerk_scan_fen=0)
    with pytest.raises(JiumaError) as off:
        store_rewards.clerk_scan(world.clerk2, inner(world, 5))
    assert off.value.code == "store_reward_off"


# --- accounts, statements and withdrawals ---------------------------------------------------------------


def _credit(store: Store, clerk: ChannelStaff | None, amount_fen: int, source: str, at: datetime | None = None) -> None:
    StoreEarning.objects.create(
        store=store,
        clerk=clerk,
        kind=StoreEarningKind.ADJUSTMENT,
        amount_fen=amount_fen,
        source=source,
        created_at=at or timezone.now(),
    )


def test_a_withdrawal_takes_the_amount_and_a_rejection_gives_it_back(world: SimpleNamespace) -> None:
    _credit(world.store, None, 3000, "test:1")
    request = store_rewards.request_withdrawal(world.store, None, 2000, by="13800001001")
    assert request.status == WithdrawalStatus.REQUESTED
    assert store_rewards.balance(world.store) == 1000
    assert StoreEarning.objects.get(source=f"withdrawal:{request.pk}").amount_fen == -2000
    with pytest.raises(JiumaError) as second:
        store_rewards.request_withdrawal(world.store, None, 500, by="13800001001")
    assert second.value.code == "withdrawal_in_progress"
    with pytest.raises(JiumaError) as no_reason:
        store_rewards.reject(request, actor="finance_alpha", reason="  ")
    assert no_reason.value.code == "withdrawal_note_required"
    store_rewards.approve(request, actor="finance_alpha")
    with pytest.raises(JiumaError) as twice:
        store_rewards.approve(request, actor="finance_alpha")
    assert twice.value.code == "withdrawal_wrong_state"
    rejected = store_rewards.reject(request, actor="finance_alpha", reason="账户信息不符")
    assert (rejected.status, rejected.reason, rejected.decided_by) == ("rejected", "账户信息不符", "finance_alpha")
    assert store_rewards.balance(world.store) == 3000
    back = StoreEarning.objects.get(source=f"withdrawal-back:{request.pk}")
    assert (back.kind, back.amount_fen) == (StoreEarningKind.WITHDRAWAL_BACK, 2000)
    with pytest.raises(JiumaError):
        store_rewards.reject(request, actor="finance_alpha", reason="再次驳回")
    assert store_rewards.balance(world.store) == 3000  # given back once
    # The next one is paid.
    paid = store_rewards.request_withdrawal(world.store, None, 3000, by="13800001001")
    with pytest.raises(JiumaError) as early:
        store_rewards.mark_paid(paid, actor="finance_alpha", reference="BANK-1")
    assert early.value.code == "withdrawal_wrong_state"
    store_rewards.approve(paid, actor="finance_alpha")
    done = store_rewards.mark_paid(paid, actor="finance_alpha", reference="BANK-1")
    assert (done.status, done.reference) == ("paid", "BANK-1")
    assert done.paid_at is not None
    with pytest.raises(JiumaError):
        store_rewards.reject(done, actor="finance_alpha", reason="已打款不能驳回")
    assert store_rewards.balance(world.store) == 0
    assert _accounts(world.store) == {(world.store.pk, None): 0}


def test_a_withdrawal_is_at_least_the_minimum_and_at_most_the_balance(world: SimpleNamespace) -> None:
    _credit(world.store, world.clerk, 800, "test:2")

    def refused(amount: Any) -> str:
        with pytest.raises(JiumaError) as caught:
            store_rewards.request_withdrawal(world.store, world.clerk, amount, by="clerk")
        return caught.value.code

    assert refused(499) == "withdrawal_below_minimum"
    assert refused(801) == "insufficient_balance"
    assert refused(0) == "invalid_withdrawal_amount"
    assert refused(-500) == "invalid_withdrawal_amount"
    assert refused(True) == "invalid_withdrawal_amount"
    assert refused("800") == "invalid_withdrawal_amount"
    assert not StoreWithdrawal.objects.exists()
    made = store_rewards.request_withdrawal(world.store, world.clerk, 800, by="clerk")
    assert made.clerk_id == world.clerk.pk
    assert store_rewards.balance(world.store, world.clerk) == 0
    # Another clerk's account is their own.
    with pytest.raises(JiumaError) as other:
        store_rewards.request_withdrawal(world.store, world.clerk2, 500, by="clerk2")
    assert other.value.code == "insufficient_balance"
    # A clerk's account belongs to their own store only.
    with pytest.raises(JiumaError):
        store_rewards.request_withdrawal(world.other, world.clerk, 500, by="clerk")


def test_only_the_owner_acts_on_the_store_account(world: SimpleNamespace) -> None:
    assert store_rewards.account_for(world.owner, "store") == (world.store, None)
    assert store_rewards.account_for(world.owner, "me") == (world.store, world.owner)
    assert store_rewards.account_for(world.clerk, "me") == (world.store, world.clerk)
    with pytest.raises(JiumaError) as clerk:
        store_rewards.account_for(world.clerk, "store")
    assert (clerk.value.code, clerk.value.status_code) == ("not_account_holder", 403)
    with pytest.raises(JiumaError) as dealer:
        store_rewards.account_for(world.dealer_clerk, "me")
    assert dealer.value.code == "not_store_staff"


def test_a_statement_is_newest_first_by_page_and_by_beijing_month(world: SimpleNamespace) -> None:
    # 2026-01-31 20:00 UTC is already 1 February in Beijing.
    feb_first = datetime(2026, 1, 31, 20, 0, tzinfo=UTC)
    _credit(world.store, None, 100, "test:jan", feb_first - timedelta(hours=5))
    for n in range(25):
        _credit(world.store, None, 10 + n, f"test:feb-{n}", feb_first + timedelta(minutes=n))
    everything = store_rewards.statement(world.store)
    assert (everything.count, everything.pages, everything.page, everything.balance_fen) == (26, 2, 1, 100 + 550)
    assert [e.source for e in everything.entries[:2]] == ["test:feb-24", "test:feb-23"]
    last = store_rewards.statement(world.store, page=2)
    assert [e.source for e in last.entries][-1] == "test:jan"
    assert store_rewards.statement(world.store, page="junk").page == 1
    february = store_rewards.statement(world.store, month=date(2026, 2, 17))
    assert (february.count, february.month) == (25, date(2026, 2, 1))
    january = store_rewards.statement(world.store, month=date(2026, 1, 1))
    assert [e.source for e in january.entries] == ["test:jan"]
    assert store_rewards.statement(world.store, world.clerk).count == 0


# --- concurrency: committed in separate connections, cleaned up after --------------------------------

many_connections = pytest.mark.xdist_group("many_connections")


@pytest.fixture
def committed(alpha: Brand, monkeypatch: pytest.MonkeyPatch) -> Iterator[SimpleNamespace]:
    """A store with an owner and two clerks, committed (other connections see them); the code check
    stands in for real caps ("cap:<serial>"), which the tests above verify; removed afterwards."""
    User = get_user_model()

    def setup() -> SimpleNamespace:
        dealer = Dealer.objects.create(code="SR-RACE-D", name="并发经销商")
        store = Store.objects.create(code="SR-RACE-S", name="并发门店", dealer=dealer, region_code="520102")
        people = []
        for n, role in enumerate(("store_owner", "store_clerk", "store_clerk")):
            user = User.objects.create(username=f"sr-race-{n}", is_staff=False)
            people.append(
                ChannelStaff.objects.create(user=user, role=role, store=store, phone=f"1390000900{n}", is_active=True)
            )
        return SimpleNamespace(dealer=dealer, store=store, owner=people[0], clerk=people[1], clerk2=people[2])

    def teardown(made: SimpleNamespace) -> None:
        StoreEarning.objects.filter(store=made.store).delete()
        StoreWithdrawal.objects.filter(store=made.store).delete()
        users = [made.owner.user_id, made.clerk.user_id, made.clerk2.user_id]
        ChannelStaff.objects.filter(store=made.store).delete()
        User.objects.filter(pk__in=users).delete()
        Store.objects.filter(pk=made.store.pk).delete()
        Dealer.objects.filter(pk=made.dealer.pk).delete()

    monkeypatch.setattr(store_rewards, "_inner_serial", lambda text: int(str(text).removeprefix("cap:")))
    monkeypatch.setattr(
        store_rewards,
        "policy",
        lambda: StoreRewardPolicy(clerk_scan_fen=80, clerk_scans_per_day=5, min_withdrawal_fen=100),
    )
    (made,) = run_concurrently([setup], tenant=alpha.tenant)
    assert isinstance(made, SimpleNamespace), made
    try:
        yield made
    finally:
        run_concurrently([lambda: teardown(made)], tenant=alpha.tenant)


@many_connections
def test_two_clerks_racing_for_one_bottle_get_one_reward(alpha: Brand, committed: SimpleNamespace) -> None:
    jobs: list[Callable[[], Any]] = [
        partial(store_rewards.clerk_scan, who, "cap:910001") for who in [committed.clerk, committed.clerk2] * 5
    ]
    outcomes = run_concurrently(jobs, tenant=alpha.tenant)
    won = [o for o in outcomes if isinstance(o, store_rewards.ClerkScanResult)]
    refused = [o for o in outcomes if isinstance(o, JiumaError)]
    assert len(won) == 1, outcomes
    assert {o.code for o in refused} == {"bottle_already_clerk_scanned"}
    assert len(refused) == 9

    def found() -> int:
        return StoreEarning.objects.filter(serial=910001, kind=StoreEarningKind.CLERK_SCAN).count()

    assert run_concurrently([found], tenant=alpha.tenant) == [1]


@many_connections
def test_the_daily_cap_is_exact_under_concurrency(alpha: Brand, committed: SimpleNamespace) -> None:
    jobs: list[Callable[[], Any]] = [
        partial(store_rewards.clerk_scan, committed.clerk, f"cap:{920000 + n}") for n in range(12)
    ]
    outcomes = run_concurrently(jobs, tenant=alpha.tenant)
    won = [o for o in outcomes if isinstance(o, store_rewards.ClerkScanResult)]
    refused = [o for o in outcomes if isinstance(o, JiumaError)]
    assert len(won) == 5, outcomes
    assert sorted(o.today for o in won) == [1, 2, 3, 4, 5]
    assert len(refused) == 7
    assert {o.code for o in refused} == {"clerk_daily_cap_reached"}

    def found() -> int:
        return store_rewards.clerk_scans_on(committed.clerk, timezone.now())

    assert run_concurrently([found], tenant=alpha.tenant) == [5]


@many_connections
def test_racing_withdrawals_never_take_more_than_the_balance(alpha: Brand, committed: SimpleNamespace) -> None:
    def fund() -> None:
        _credit(committed.store, None, 1500, "test:fund")
        _credit(committed.store, committed.clerk, 900, "test:fund")

    run_concurrently([fund], tenant=alpha.tenant)
    store_jobs = [lambda: store_rewards.request_withdrawal(committed.store, None, 1000, by="owner") for _ in range(8)]
    clerk_jobs = [
        lambda: store_rewards.request_withdrawal(committed.store, committed.clerk, 400, by="clerk") for _ in range(8)
    ]
    outcomes = run_concurrently(store_jobs + clerk_jobs, tenant=alpha.tenant)
    made = [o for o in outcomes if isinstance(o, StoreWithdrawal)]
    refused = [o for o in outcomes if isinstance(o, JiumaError)]
    assert len(made) == 2, outcomes  # one per account: one at a time, and within the balance
    assert len(refused) == 14
    assert {o.code for o in refused} <= {"withdrawal_in_progress", "insufficient_balance"}

    def totals() -> dict[str, Any]:
        return {
            "store": store_rewards.balance(committed.store),
            "clerk": store_rewards.balance(committed.store, committed.clerk),
            "ledger": _accounts(committed.store),
            "open": StoreWithdrawal.objects.filter(store=committed.store, status="requested").count(),
        }

    (found,) = run_concurrently([totals], tenant=alpha.tenant)
    assert found == {
        "store": 500,
        "clerk": 500,
        "ledger": {(committed.store.pk, None): 500, (committed.store.pk, committed.clerk.pk): 500},
        "open": 2,
    }

    # Rejected, the money is back; then 8 racing again over the same 1500: still one, never negative.
    def reject_all() -> None:
        for withdrawal in StoreWithdrawal.objects.filter(store=committed.store):
            store_rewards.reject(withdrawal, actor="finance", reason="测试驳回")

    run_concurrently([reject_all], tenant=alpha.tenant)
    again = run_concurrently(store_jobs, tenant=alpha.tenant)
    assert len([o for o in again if isinstance(o, StoreWithdrawal)]) == 1, again
    (after,) = run_concurrently([totals], tenant=alpha.tenant)
    assert (after["store"], after["clerk"]) == (500, 900)
    assert all(value >= 0 for value in after["ledger"].values())


def test_ledger_sums_are_the_balances(world: SimpleNamespace) -> None:
    running_campaign([POINTS])
    _claim(serial_of(world, 0), world.store.pk, world.clerk.pk)
    store_rewards.clerk_scan(world.clerk2, inner(world, 1))
    _credit(world.store, None, 2000, "test:3")
    made = store_rewards.request_withdrawal(world.store, None, 1500, by="owner")
    store_rewards.reject(made, actor="finance", reason="测试")
    store_rewards.request_withdrawal(world.store, None, 600, by="owner")
    ledger = _accounts(world.store)
    assert ledger == {
        (world.store.pk, None): 100 + 2000 - 600,
        (world.store.pk, world.clerk.pk): 50,
        (world.store.pk, world.clerk2.pk): 80,
    }
    for (store_id, clerk_id), total in ledger.items():
        assert store_rewards.balance(store_id, clerk_id) == total
    assert store_rewards.balances([world.store.pk, world.other.pk]) == {world.store.pk: 1500, world.other.pk: 0}
    assert Store.objects.get(pk=world.store.pk).status == ChannelStatus.ACTIVE
