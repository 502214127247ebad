"""The member's prizes on their own page: red packets with their state and the receipt confirmation."""

from __future__ import annotations

import time

from django.test import Client, override_settings

from commerce.models import Member
from rewards.models import Payout, PayoutStatus
from rewards.services import claims, payouts
from rewards.services.campaigns import PrizeSpec
from rewards.services.claims import ClaimContext
from tests.rewards.conftest import running_campaign
from tests.support.members import signed_in
from tests.support.wechat import PayBrand


def _client(pay: PayBrand, member: Member) -> Client:
    return signed_in(pay.brand, member)


def test_a_red_packet_waits_for_the_members_confirmation_then_shows_as_received(alpha_pay: PayBrand) -> None:
    running_campaign([PrizeSpec(name="开瓶红包", kind="cash", amount_fen=666, odds_ppm=1_000_000, quantity=5)])
    member = Member.objects.create(openid="o-wallet")
    payout = claims.claim(member, ClaimContext(serial=42)).payout
    assert payout is not None
    payouts.pay(payout.pk)
    page = _client(alpha_pay, member).get("/m/me/").content.decode()
    assert "开瓶红包" in page
    assert "¥6.66" in page
    assert 'data-payout-status="submitted"' in page
    assert "data-confirm" in page  # inside WeChat: WeChat's own confirmation sheet
    with override_settings(WECHAT_SIMULATED=True):
        client = _client(alpha_pay, member)
        assert "确认收款（演示）" in client.get("/m/me/").content.decode()
        confirmed = client.post(f"/m/me/payouts/{payout.pk}/simulate-confirm/")
        assert confirmed.status_code == 302
        # Someone else's payout cannot be confirmed from this page.
        stranger = Member.objects.create(openid="o-stranger")
        assert _client(alpha_pay, stranger).post(f"/m/me/payouts/{payout.pk}/simulate-confirm/").status_code == 404
    deadline = time.monotonic() + 5
    while not alpha_pay.catcher.received and time.monotonic() < deadline:
        time.sleep(0.02)
    headers, body = alpha_pay.catcher.received[-1]
    del headers
    answer = Client(HTTP_HOST=alpha_pay.brand.host).post(
        "/pay/notify/", data=body, content_type="application/json", **alpha_pay.catcher.meta(-1)
    )
    assert answer.status_code == 204
    assert Payout.objects.get(pk=payout.pk).status == PayoutStatus.SUCCEEDED
    assert 'data-payout-status="succeeded"' in _client(alpha_pay, member).get("/m/me/").content.decode()


def test_outside_the_demo_the_simulated_confirmation_does_not_exist(alpha_pay: PayBrand) -> None:
    member = Member.objects.create(openid="o-prod")
    assert _client(alpha_pay, member).post("/m/me/payouts/1/simulate-confirm/").status_code == 404
