"""Paying red packets through WeChat Pay (the local simulator): every prize paid exactly once through
timeouts, 5xx, lost answers, duplicate and lost notifications, rate limits and a worker that dies."""

from __future__ import annotations

import time
from datetime import timedelta
from typing import Any

import pytest
from django.test import Client
from django.utils import timezone

from commerce.models import Member, PayNotification
from rewards.models import Campaign, Payout, PayoutStatus, Prize
from rewards.services import claims, payouts
from rewards.services.campaigns import PrizeSpec
from rewards.services.claims import ClaimContext
from tests.rewards.conftest import running_campaign
from tests.support.wechat import PayBrand

TRANSFERS = "/v3/fund-app/mch-transfer/transfer-bills"


def _won(pay: PayBrand, serial: int = 1, amount_fen: int = 288, openid: str = "o-winner") -> Payout:
    if not Campaign.objects.exists():
        running_campaign([PrizeSpec(name="红包", kind="cash", amount_fen=amount_fen, odds_ppm=1_000_000, quantity=100)])
    member, _ = Member.objects.get_or_create(openid=openid)
    result = claims.claim(member, ClaimContext(serial=serial))
    assert result.payout is not None
    return result.payout


def _bills(pay: PayBrand, payout: Payout) -> list[dict[str, Any]]:
    return [bill for bill in pay.simulator.transfer_bills(pay.mchid) if bill["out_bill_no"] == payout.out_bill_no]


def _deliver(pay: PayBrand, index: int = -1) -> Any:
    """Hand notification `index` (as WeChat sent it) to the brand's notify endpoint."""
    headers, body = pay.catcher.received[index]
    del headers
    return Client(HTTP_HOST=pay.brand.host).post(
        "/pay/notify/", data=body, content_type="application/json", **pay.catcher.meta(index)
    )


def _wait_for_notifications(pay: PayBrand, count: int) -> None:
    deadline = time.monotonic() + 5
    while len(pay.catcher.received) < count and time.monotonic() < deadline:
        time.sleep(0.02)
    assert len(pay.catcher.received) >= count, pay.simulator.notifications()[-1:]


def test_a_red_packet_is_submitted_confirmed_and_settled_by_the_notification(alpha_pay: PayBrand) -> None:
    payout = _won(alpha_pay)
    sent = payouts.pay(payout.pk)
    assert sent is not None
    assert sent.status == PayoutStatus.SUBMITTED
    assert sent.package_info  # for the consumer's page to open WeChat's confirmation
    (bill,) = _bills(alpha_pay, payout)
    assert (bill["transfer_amount"], bill["openid"], bill["state"]) == (288, "o-winner", "WAIT_USER_CONFIRM")
    alpha_pay.simulator.confirm_transfer(payout.out_bill_no, alpha_pay.mchid)
    _wait_for_notifications(alpha_pay, 1)
    assert _deliver(alpha_pay).status_code == 204
    payout.refresh_from_db()
    assert payout.status == PayoutStatus.SUCCEEDED
    # WeChat sends it again: answered as received, nothing changes, one inbox row.
    assert _deliver(alpha_pay).status_code == 204
    assert PayNotification.objects.count() == 1


def test_a_forged_notification_is_refused_and_changes_nothing(alpha_pay: PayBrand) -> None:
    payout = _won(alpha_pay)
    payouts.pay(payout.pk)
    alpha_pay.simulator.confirm_transfer(payout.out_bill_no, alpha_pay.mchid)
    _wait_for_notifications(alpha_pay, 1)
    _headers, body = alpha_pay.catcher.received[-1]
    tampered = body.replace(b'"ciphertext":"', b'"ciphertext":"A')
    answer = Client(HTTP_HOST=alpha_pay.brand.host).post(
        "/pay/notify/", data=tampered, content_type="application/json", **alpha_pay.catcher.meta(-1)
    )
    assert answer.status_code == 401
    unsigned = Client(HTTP_HOST=alpha_pay.brand.host).post("/pay/notify/", data=body, content_type="application/json")
    assert unsigned.status_code == 401
    payout.refresh_from_db()
    assert payout.status == PayoutStatus.SUBMITTED
    assert not PayNotification.objects.exists()


@pytest.mark.parametrize("fault", ["timeout", "lost_response"])
def test_an_applied_transfer_whose_answer_never_came_is_found_not_sent_again(alpha_pay: PayBrand, fault: str) -> None:
    payout = _won(alpha_pay)
    alpha_pay.simulator.inject(fault, TRANSFERS, 1)
    sent = payouts.pay(payout.pk)
    assert sent is not None
    assert sent.status == PayoutStatus.SUBMITTED  # asked WeChat by the bill number: it was made
    assert len(_bills(alpha_pay, payout)) == 1


def test_a_5xx_is_retried_later_with_the_same_bill_number(alpha_pay: PayBrand) -> None:
    payout = _won(alpha_pay)
    alpha_pay.simulator.inject("error_500", TRANSFERS, 1)
    now = timezone.now()
    first = payouts.pay(payout.pk, now=now)
    assert first is not None
    assert first.status == PayoutStatus.PENDING
    assert "SYSTEM_ERROR" in first.last_error
    assert first.next_attempt_at > now
    assert not _bills(alpha_pay, payout)
    assert payouts.pay(payout.pk, now=now) is None  # not due yet: nothing sent
    second = payouts.pay(payout.pk, now=first.next_attempt_at)
    assert second is not None
    assert second.status == PayoutStatus.SUBMITTED
    assert second.attempts == 2
    assert len(_bills(alpha_pay, payout)) == 1


def test_a_worker_that_dies_mid_payout_leaves_it_to_be_finished_once(alpha_pay: PayBrand) -> None:
    payout = _won(alpha_pay)
    now = timezone.now()
    # A worker took it and sent it to WeChat, then died before writing down the answer.
    assert payouts._take(payout.pk, now) is not None
    client = payouts._client()
    client.create_transfer(
        out_bill_no=payout.out_bill_no,
        openid=payout.openid,
        amount_fen=payout.amount_fen,
        remark=payout.remark,
        notify_url=payouts.notify_url(),
        activity=payout.remark,
    )
    assert payouts.due(now) == []  # another worker leaves it alone while the lease runs
    later = now + payouts.LEASE + timedelta(seconds=1)
    assert payouts.due(later) == [payout.pk]
    finished = payouts.pay(payout.pk, now=later)
    assert finished is not None
    assert finished.status == PayoutStatus.SUBMITTED
    assert len(_bills(alpha_pay, payout)) == 1  # WeChat saw the same bill number twice: one transfer


def test_rate_limits_and_daily_limits_queue_the_payout_instead_of_failing_it(alpha_pay: PayBrand) -> None:
    first, second = _won(alpha_pay, serial=1), _won(alpha_pay, serial=2)
    now = timezone.now()
    alpha_pay.simulator.inject("rate_limit", TRANSFERS, 1)
    limited = payouts.pay(first.pk, now=now)
    assert limited is not None
    assert limited.status == PayoutStatus.PENDING
    assert limited.attempts == 0  # WeChat's pace, not a failure
    assert now < limited.next_attempt_at <= now + timedelta(seconds=5)
    assert payouts.pay(first.pk, now=limited.next_attempt_at).status == PayoutStatus.SUBMITTED  # type: ignore[union-attr]
    alpha_pay.simulator.configure_merchant(alpha_pay.mchid, per_user_daily_count=1)
    queued = payouts.pay(second.pk, now=now)
    assert queued is not None
    assert queued.status == PayoutStatus.PENDING
    assert "QUOTA_EXCEED" in queued.last_error
    tomorrow = timezone.localtime(queued.next_attempt_at)
    assert (tomorrow.date(), tomorrow.hour) == (timezone.localdate(now) + timedelta(days=1), 0)


def test_a_lost_notification_is_made_up_for_by_reconciliation(alpha_pay: PayBrand) -> None:
    payout = _won(alpha_pay)
    now = timezone.now()
    payouts.pay(payout.pk, now=now)
    alpha_pay.simulator.inject_notification("drop", 1)
    alpha_pay.simulator.confirm_transfer(payout.out_bill_no, alpha_pay.mchid)
    assert payouts.reconcile(now=now) == 0  # not time to ask yet
    assert payouts.reconcile(now=now + payouts.RECHECK + timedelta(seconds=1)) == 1
    payout.refresh_from_db()
    assert payout.status == PayoutStatus.SUCCEEDED


def test_a_transfer_the_consumer_never_confirms_gives_its_money_and_prize_back(alpha_pay: PayBrand) -> None:
    payout = _won(alpha_pay, amount_fen=500)
    campaign = Campaign.objects.get()
    payouts.pay(payout.pk)
    alpha_pay.simulator.configure_merchant(alpha_pay.mchid, confirm_timeout_seconds=0.01)
    alpha_pay.simulator.advance_clock(1)
    _wait_for_notifications(alpha_pay, 1)
    assert _deliver(alpha_pay).status_code == 204
    payout.refresh_from_db()
    assert payout.status == PayoutStatus.CANCELLED
    campaign.refresh_from_db()
    assert campaign.spent_fen == 0
    assert Prize.objects.get(campaign=campaign).awarded == 0


def test_held_payouts_wait_for_review(alpha_pay: PayBrand) -> None:
    payout = _won(alpha_pay, serial=1)
    other = _won(alpha_pay, serial=2)
    Payout.objects.filter(pk__in=[payout.pk, other.pk]).update(status=PayoutStatus.HELD)
    assert payouts.pay(payout.pk) is None  # held: the worker leaves it
    approved = payouts.approve(Payout.objects.get(pk=payout.pk), actor="owner")
    assert approved.status == PayoutStatus.PENDING
    assert payouts.pay(payout.pk).status == PayoutStatus.SUBMITTED  # type: ignore[union-attr]
    rejected = payouts.reject(Payout.objects.get(pk=other.pk), actor="owner")
    assert rejected.status == PayoutStatus.CANCELLED
    assert Campaign.objects.get().spent_fen == 288
    assert not _bills(alpha_pay, other)


def test_notifications_reach_the_brand_at_the_one_platform_address(alpha_pay: PayBrand) -> None:
    payout = _won(alpha_pay)
    payouts.pay(payout.pk)
    assert payouts.notify_url() == alpha_pay.catcher.url  # the fixture's; the default names the brand number
    alpha_pay.simulator.confirm_transfer(payout.out_bill_no, alpha_pay.mchid)
    _wait_for_notifications(alpha_pay, 1)
    _headers, body = alpha_pay.catcher.received[-1]
    platform = Client(HTTP_HOST="localhost")
    meta = alpha_pay.catcher.meta(-1)
    assert platform.post("/pay/notify/65000/", data=body, content_type="application/json", **meta).status_code == 404
    number = alpha_pay.brand.tenant.number
    answer = platform.post(f"/pay/notify/{number}/", data=body, content_type="application/json", **meta)
    assert answer.status_code == 204
    payout.refresh_from_db()
    assert payout.status == PayoutStatus.SUCCEEDED


def test_the_default_notify_address_names_the_brand_number(alpha_pay: PayBrand) -> None:
    from django.test import override_settings

    with override_settings(WECHAT_PAY_NOTIFY_URL="https://pay.example.cn/pay/notify/{number}/"):
        assert payouts.notify_url() == f"https://pay.example.cn/pay/notify/{alpha_pay.brand.tenant.number}/"
