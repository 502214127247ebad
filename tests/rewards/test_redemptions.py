"""Physical prizes: a one-time code for the winner, redeemed once at a store's terminal."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.test import Client
from django_tenants.utils import tenant_context

from commerce.models import ChannelStatus, Member, Store
from commerce.services import channel
from rewards.models import Redemption, RedemptionStatus, RiskPolicy
from rewards.services import claims, redemptions
from rewards.services.campaigns import PrizeSpec
from rewards.services.claims import ClaimContext
from tenants.errors import JiumaError
from tests.conftest import Brand
from tests.rewards.conftest import member, remove_campaign, running_campaign
from tests.support.threads import run_concurrently

GIFT = PrizeSpec(name="定制酒杯一对", kind="physical", value_fen=12_800, odds_ppm=1_000_000, quantity=10)


def _store() -> Store:
    dealer = channel.create_dealer(code="GY01", name="贵阳经销商", areas=["520100"])
    return channel.create_store(code="S001", name="南明门店", dealer_id=dealer.pk, region_code="520102")


def test_a_physical_prize_gets_a_code_that_a_store_redeems_once(in_alpha: Brand) -> None:
    running_campaign([GIFT])
    store = _store()
    won = claims.claim(member(), ClaimContext(serial=1))
    assert won.redemption is not None
    code = won.redemption.code
    assert len(code) == 12
    typed = f"{code[:4].lower()}-{code[4:8]} {code[8:]}".replace("1", "l")  # as a clerk might type it
    done = redemptions.redeem(typed, store=store, staff="店员小王")
    assert done.prize_name == "定制酒杯一对"
    redemption = Redemption.objects.get(code=code)
    assert (redemption.status, redemption.store, redemption.redeemed_by) == (
        RedemptionStatus.REDEEMED,
        store,
        "店员小王",
    )
    with pytest.raises(JiumaError) as again:
        redemptions.redeem(code, store=store, staff="店员小李")
    assert again.value.code == "redemption_code_used"
    assert "南明门店" in again.value.message


@pytest.mark.parametrize(
    ("code", "error"),
    [
        ("0000-0000-0000", "unknown_redemption_code"),
        ("short", "invalid_redemption_code"),
        ("", "invalid_redemption_code"),
    ],
)
def test_bad_codes_are_refused_with_a_reason(in_alpha: Brand, code: str, error: str) -> None:
    with pytest.raises(JiumaError) as refused:
        redemptions.redeem(code, store=_store(), staff="x")
    assert refused.value.code == error


def test_expired_codes_and_suspended_stores_redeem_nothing(in_alpha: Brand) -> None:
    running_campaign([GIFT])
    store = _store()
    won = claims.claim(member(), ClaimContext(serial=1))
    assert won.redemption is not None
    later = won.redemption.expires_at + timedelta(seconds=1)
    with pytest.raises(JiumaError) as expired:
        redemptions.redeem(won.redemption.code, store=store, staff="x", now=later)
    assert expired.value.code == "redemption_code_expired"
    Store.objects.filter(pk=store.pk).update(status=ChannelStatus.SUSPENDED)
    store.refresh_from_db()
    with pytest.raises(JiumaError):
        redemptions.redeem(won.redemption.code, store=store, staff="x")
    assert Redemption.objects.get().status == RedemptionStatus.ISSUED


def test_a_held_physical_prize_gets_its_code_only_when_approved(in_alpha: Brand) -> None:
    running_campaign([GIFT])
    RiskPolicy.objects.create(member_claims_per_hour=1)
    someone = member()
    claims.claim(someone, ClaimContext(serial=1))
    held = claims.claim(someone, ClaimContext(serial=2))
    assert held.redemption is None
    assert not Redemption.objects.filter(claim=held.claim).exists()
    claims.review(held.claim, approve=True, actor="owner")
    assert Redemption.objects.filter(claim=held.claim).exists()


def test_the_store_terminal_redeems_and_only_store_staff_may(alpha: Brand) -> None:
    with tenant_context(alpha.tenant):
        running_campaign([GIFT])
        store = _store()
        clerk = channel.add_channel_staff(
            role="store_clerk", phone="13900000009", store_id=store.pk, password="Clerk-pass-2026"
        )
        dealer_staff = channel.add_channel_staff(
            role="dealer_clerk", phone="13900000010", dealer_id=store.dealer_id, password="Dealer-pass-2026"
        )
        code = claims.claim(member(), ClaimContext(serial=1)).redemption.code  # type: ignore[union-attr]
    till = Client(HTTP_HOST=alpha.host)
    assert till.post("/t/login/", {"username": clerk.user.username, "password": "Clerk-pass-2026"}).status_code == 302
    page = till.get("/t/")
    assert "data-redeem" in page.content.decode()
    answer = till.post("/t/redeem/", {"code": code}, content_type="application/json")
    assert answer.status_code == 200, answer.content
    assert answer.json()["prize"] == "定制酒杯一对"
    again = till.post("/t/redeem/", {"code": code}, content_type="application/json")
    assert again.status_code == 409
    assert "已于" in again.json()["message"]
    assert till.post("/t/redeem/", data=b"{not json", content_type="application/json").status_code == 400
    dealer = Client(HTTP_HOST=alpha.host)
    dealer.post("/t/login/", {"username": dealer_staff.user.username, "password": "Dealer-pass-2026"})
    assert dealer.post("/t/redeem/", {"code": code}, content_type="application/json").status_code == 403
    assert (
        Client(HTTP_HOST=alpha.host).post("/t/redeem/", {"code": code}, content_type="application/json").status_code
        == 401
    )


def test_two_tills_entering_one_code_at_once_hand_the_prize_over_once(alpha: Brand) -> None:
    def setup() -> tuple[int, str, int]:
        campaign = running_campaign([GIFT])
        store = _store()
        code = claims.claim(Member.objects.create(openid="o-tills"), ClaimContext(serial=5)).redemption.code  # type: ignore[union-attr]
        return campaign.pk, code, store.pk

    ((campaign_id, code, store_id),) = run_concurrently([setup], tenant=alpha.tenant)
    try:
        outcomes = run_concurrently(
            [
                lambda n=n: redemptions.redeem(code, store=Store.objects.get(pk=store_id), staff=f"till-{n}")
                for n in range(6)
            ],
            tenant=alpha.tenant,
        )
        assert sum(isinstance(o, redemptions.Redeemed) for o in outcomes) == 1, outcomes
        assert {o.code for o in outcomes if isinstance(o, JiumaError)} == {"redemption_code_used"}
    finally:

        def cleanup() -> None:
            remove_campaign(campaign_id, Member.objects.filter(openid="o-tills").values_list("pk", flat=True))
            store = Store.objects.get(pk=store_id)
            Store.objects.filter(pk=store_id).delete()
            from commerce.models import Dealer, DealerArea

            DealerArea.objects.filter(dealer_id=store.dealer_id).delete()
            Dealer.objects.filter(pk=store.dealer_id).delete()

        run_concurrently([cleanup], tenant=alpha.tenant)
