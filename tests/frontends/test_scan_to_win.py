"""The inner-code scan page: identify, consent, draw on the scan, show the prize; rules and draws pages."""

from __future__ import annotations

from typing import Any

import pytest
from django.test import Client
from django_tenants.utils import tenant_context

from codes import format as code_format
from codes import services as code_services
from codes.keyring import keyring
from codes.models import Batch, CodeStatus, Scan, SerialGroup
from commerce.models import ConsentPurpose, Member
from commerce.services import members
from rewards.models import Campaign, Claim
from rewards.services import campaigns
from rewards.services.campaigns import PrizeSpec
from tests.conftest import Brand
from tests.rewards.conftest import running_campaign
from tests.support.members import signed_in

CODE_HOST = "c.localhost"
RED_PACKET = PrizeSpec(name="二等奖", kind="cash", amount_fen=288, odds_ppm=1_000_000, quantity=50)


@pytest.fixture
def batch(alpha: Brand) -> Batch:
    keyring.clear()
    with tenant_context(alpha.tenant):
        made = code_services.create_batch(code_services.BatchRequest(bottles=10, bottles_per_case=5))
        code_services.set_batch_status(made, CodeStatus.ACTIVE)
    return made


def _inner(brand: Brand, batch: Batch, index: int = 0) -> str:
    serial = batch.serial_range(SerialGroup.BOTTLE).start + index
    return code_format.make(keyring.current_key(brand.tenant.number), code_format.Kind.INNER, serial)


def _signed_in(brand: Brand, member: Member, **extra: Any) -> Client:
    return signed_in(brand, member, CODE_HOST, **extra)


def _consenting(brand: Brand, openid: str) -> Member:
    with tenant_context(brand.tenant):
        member = Member.objects.create(openid=openid)
        members.record_consent(member, ConsentPurpose.PRIVACY_POLICY, version="2026-11", granted=True)
    return member


def test_a_signed_in_consumer_sees_the_prize_as_the_cap_page_opens(alpha: Brand, batch: Batch) -> None:
    with tenant_context(alpha.tenant):
        running_campaign([RED_PACKET])
    member = _consenting(alpha, "o-scan-1")
    code = _inner(alpha, batch)
    page = _signed_in(alpha, member).get(f"/C/{code}")
    body = page.content.decode()
    assert page.status_code == 200
    assert 'data-reward="result"' in body
    assert 'data-outcome="won"' in body
    assert "¥2.88" in body
    assert "alpha.localhost" in body  # the wallet is on the brand's own site
    with tenant_context(alpha.tenant):
        (claim,) = Claim.objects.all()
        assert claim.member_id == member.pk
        assert Scan.objects.filter(member_id=member.pk).count() == 1  # the scan names the member
    # Opening the page again shows the same prize and draws nothing new.
    again = _signed_in(alpha, member).get(f"/C/{code}").content.decode()
    assert "¥2.88" in again
    with tenant_context(alpha.tenant):
        assert Claim.objects.count() == 1


def test_someone_elses_claimed_cap_says_so(alpha: Brand, batch: Batch) -> None:
    with tenant_context(alpha.tenant):
        running_campaign([RED_PACKET])
    first, second = _consenting(alpha, "o-first"), _consenting(alpha, "o-second")
    code = _inner(alpha, batch, 1)
    _signed_in(alpha, first).get(f"/C/{code}")
    body = _signed_in(alpha, second).get(f"/C/{code}").content.decode()
    assert "已经被领取过了" in body
    assert "¥2.88" not in body


def test_a_stranger_is_asked_to_log_in_and_inside_wechat_is_sent_at_once(alpha: Brand, batch: Batch) -> None:
    with tenant_context(alpha.tenant):
        running_campaign([RED_PACKET])
    code = _inner(alpha, batch, 2)
    body = Client(HTTP_HOST=CODE_HOST).get(f"/C/{code}").content.decode()
    assert 'data-reward="login"' in body
    assert f"/C/{code}/wx/login?next=" in body
    assert "location.replace" not in body
    wechat = Client(HTTP_HOST=CODE_HOST, HTTP_USER_AGENT="Mozilla/5.0 MicroMessenger/8.0.50").get(f"/C/{code}")
    assert "location.replace" in wechat.content.decode()
    with tenant_context(alpha.tenant):
        assert not Claim.objects.exists()


def test_consent_comes_before_the_draw(alpha: Brand, batch: Batch) -> None:
    with tenant_context(alpha.tenant):
        running_campaign([RED_PACKET])
        member = Member.objects.create(openid="o-new")
    code = _inner(alpha, batch, 3)
    client = _signed_in(alpha, member)
    assert 'data-reward="consent"' in client.get(f"/C/{code}").content.decode()
    with tenant_context(alpha.tenant):
        assert not Claim.objects.exists()
    agreed = client.post(f"/C/{code}/consent", {"decision": "accept"})
    assert agreed.status_code == 302
    assert agreed["Location"] == f"/C/{code}"
    assert 'data-outcome="won"' in client.get(f"/C/{code}").content.decode()


def test_caps_not_yet_in_circulation_and_outer_codes_draw_nothing(alpha: Brand) -> None:
    keyring.clear()
    with tenant_context(alpha.tenant):
        running_campaign([RED_PACKET])
        dormant = code_services.create_batch(code_services.BatchRequest(bottles=4))
    member = _consenting(alpha, "o-dormant")
    body = _signed_in(alpha, member).get(f"/C/{_inner(alpha, dormant)}").content.decode()
    assert 'data-reward="closed"' in body
    outer = code_format.make(
        keyring.current_key(alpha.tenant.number), code_format.Kind.OUTER, dormant.first_bottle_serial or 0
    )
    assert "data-reward" not in _signed_in(alpha, member).get(f"/C/{outer}").content.decode()
    with tenant_context(alpha.tenant):
        assert not Claim.objects.exists()


def test_without_a_campaign_the_page_says_so(alpha: Brand, batch: Batch) -> None:
    member = _consenting(alpha, "o-none")
    body = _signed_in(alpha, member).get(f"/C/{_inner(alpha, batch, 4)}").content.decode()
    assert 'data-reward="none"' in body
    assert "没有进行中的扫码活动" in body


def test_the_rules_page_is_public_and_the_draws_are_published_after_the_end(alpha: Brand, batch: Batch) -> None:
    with tenant_context(alpha.tenant):
        campaign = running_campaign(
            [
                PrizeSpec(name="二等奖", kind="cash", amount_fen=288, odds_ppm=995_000, quantity=50),
                PrizeSpec(name="三等奖", kind="points", points=20, odds_ppm=5_000, quantity=10),
            ],
            organiser="阿尔法酒业有限公司",
            contact="400-000-0000",
        )
    member = _consenting(alpha, "o-rules")
    code = _inner(alpha, batch, 5)
    _signed_in(alpha, member).get(f"/C/{code}")
    site = Client(HTTP_HOST=alpha.host)
    rules = site.get(f"/r/{campaign.pk}/").content.decode()
    for text in ("二等奖", "现金红包 2.88 元", "99.5%", "0.5%", "阿尔法酒业有限公司", campaign.seed_commitment):
        assert text in rules, text
    assert "data-seed" not in rules  # not before the end
    assert Client(HTTP_HOST=CODE_HOST).get(f"/C/{code}/rules").status_code == 200
    assert site.get(f"/r/{campaign.pk}/draws/").status_code == 404
    with tenant_context(alpha.tenant):
        campaigns.end(campaign, now=campaign.ends_at)
    published = site.get(f"/r/{campaign.pk}/draws/").json()
    assert published["seed_commitment"] == campaign.seed_commitment
    assert len(published["draws"]) == 1
    assert published["draws"][0]["serial"] == batch.first_bottle_serial + 5
    with tenant_context(alpha.tenant):
        draft = campaigns.create_campaign(
            name="草稿", starts_at=campaign.ends_at, ends_at=campaign.ends_at.replace(year=2099), prizes=[RED_PACKET]
        )
        assert Campaign.objects.filter(pk=draft.pk).exists()
    assert site.get(f"/r/{draft.pk}/").status_code == 404
