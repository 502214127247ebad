"""Referral (邀请有礼): signed links, both sides rewarded once on the invitee's first scan, no self-referral,
no loops, one inviter per invitee, a cap per inviter that holds under concurrency."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from django.core import signing
from django.test import Client

from commerce.models import Member, PointsEntry
from rewards.models import Referral, ReferralProgram, ReferralStatus
from rewards.services import claims, referrals
from rewards.services.campaigns import PrizeSpec
from rewards.services.claims import ClaimContext
from tenants.errors import JiumaError
from tests.conftest import Brand
from tests.rewards.conftest import member, remove_campaign, running_campaign
from tests.support.members import signed_in as member_client
from tests.support.threads import run_concurrently

NOTHING = PrizeSpec(name="谢谢参与", kind="points", points=1, odds_ppm=0, quantity=1)


def _balance(who: Member) -> int:
    who.refresh_from_db()
    return who.points_balance


def test_both_sides_earn_once_when_the_invitee_first_scans(in_alpha: Brand) -> None:
    running_campaign([NOTHING])
    ReferralProgram.objects.create(inviter_points=100, invitee_points=50)
    inviter, invitee = member("o-a"), member("o-b")
    found = referrals.inviter_of(referrals.link_token(inviter))
    assert found == inviter
    referral = referrals.accept(inviter, invitee)
    claims.claim(invitee, ClaimContext(serial=1))
    claims.claim(invitee, ClaimContext(serial=2))  # a second scan earns nothing more
    referral.refresh_from_db()
    assert referral.status == ReferralStatus.REWARDED
    assert (_balance(inviter), _balance(invitee)) == (100, 50)
    assert PointsEntry.objects.filter(source=f"referral:{referral.pk}").count() == 2


def test_self_referral_loops_second_inviters_and_old_members_are_refused(in_alpha: Brand) -> None:
    running_campaign([NOTHING])
    a, b, c = member("o-a"), member("o-b"), member("o-c")
    twin = Member.objects.create(openid="o-a-other-account", unionid="u-same")
    Member.objects.filter(pk=a.pk).update(unionid="u-same")
    a.refresh_from_db()
    for inviter, invitee, code in ((a, a, "self_referral"), (a, twin, "self_referral")):
        with pytest.raises(JiumaError) as refused:
            referrals.accept(inviter, invitee)
        assert refused.value.code == code
    referrals.accept(a, b)
    referrals.accept(b, c)
    with pytest.raises(JiumaError) as loop:
        referrals.accept(c, a)  # a brought in b, who brought in c
    assert loop.value.code == "referral_loop"
    with pytest.raises(JiumaError) as second:
        referrals.accept(member("o-d"), b)
    assert second.value.code == "already_referred"
    veteran = member("o-veteran")
    claims.claim(veteran, ClaimContext(serial=9))
    with pytest.raises(JiumaError) as old:
        referrals.accept(a, veteran)
    assert old.value.code == "not_a_new_member"


def test_links_of_another_brand_or_forged_links_name_nobody(in_alpha: Brand, beta: Brand) -> None:
    inviter = member("o-a")
    forged = signing.dumps([beta.tenant.number, inviter.pk], salt="jiuma.rewards.referral", compress=False)
    assert referrals.inviter_of(forged) is None
    assert referrals.inviter_of("junk") is None


def test_an_expired_acceptance_earns_nothing(in_alpha: Brand) -> None:
    running_campaign([NOTHING])
    ReferralProgram.objects.create(accept_days=7)
    inviter, invitee = member("o-a"), member("o-b")
    referral = referrals.accept(inviter, invitee)
    Referral.objects.filter(pk=referral.pk).update(created_at=referral.created_at - timedelta(days=8))
    claims.claim(invitee, ClaimContext(serial=1))
    referral.refresh_from_db()
    assert referral.status == ReferralStatus.EXPIRED
    assert _balance(inviter) == 0


def test_the_invite_pages(alpha: Brand) -> None:
    from django_tenants.utils import tenant_context

    with tenant_context(alpha.tenant):
        inviter, invitee = member("o-a"), member("o-b")
        token = referrals.link_token(inviter)

    def signed_in(who: Member) -> Client:
        return member_client(alpha, who)

    page = signed_in(inviter).get("/m/invite/").content.decode()
    # The page's links name the inviter (a token carries its signing time: not the same string).
    links = re.findall(r"/m/invite/([^/\"]+)/", page)
    assert links
    with tenant_context(alpha.tenant):
        assert {referrals.inviter_of(link) for link in links} == {inviter}
    guest = signed_in(invitee)
    assert "data-invite-accept" in guest.get(f"/m/invite/{token}/").content.decode()
    assert guest.post(f"/m/invite/{token}/").status_code == 200
    assert guest.post(f"/m/invite/{token}/").status_code == 409  # accepted already
    assert signed_in(inviter).post(f"/m/invite/{token}/").status_code == 400  # oneself
    assert Client(HTTP_HOST=alpha.host).get("/m/invite/junk/").status_code == 404
    with tenant_context(alpha.tenant):
        assert Referral.objects.get().invitee_id == invitee.pk


@pytest.mark.xdist_group("many_connections")
def test_an_inviter_at_the_cap_is_rewarded_once_when_two_invitees_scan_at_once(alpha: Brand) -> None:
    def setup() -> tuple[int, list[int]]:
        campaign = running_campaign([NOTHING])
        ReferralProgram.objects.create(max_per_inviter=1, inviter_points=10, invitee_points=5)
        inviter = Member.objects.create(openid="o-capped")
        invitees = [Member.objects.create(openid=f"o-inv{n}") for n in range(4)]
        for invitee in invitees:
            referrals.accept(inviter, invitee)
        return campaign.pk, [inviter.pk, *[i.pk for i in invitees]]

    ((campaign_id, ids),) = run_concurrently([setup], tenant=alpha.tenant)
    try:
        jobs = [
            lambda n=n: claims.claim(Member.objects.get(pk=ids[n + 1]), ClaimContext(serial=70_000 + n))
            for n in range(4)
        ]
        outcomes = run_concurrently(jobs, tenant=alpha.tenant)
        assert not [o for o in outcomes if isinstance(o, BaseException)], outcomes

        def state() -> tuple[list[str], int]:
            statuses = sorted(Referral.objects.filter(inviter_id=ids[0]).values_list("status", flat=True))
            return statuses, Member.objects.get(pk=ids[0]).points_balance

        ((statuses, balance),) = run_concurrently([state], tenant=alpha.tenant)
        assert statuses == ["capped", "capped", "capped", "rewarded"]
        assert balance == 10
    finally:

        def cleanup() -> None:
            remove_campaign(campaign_id, ids)
            ReferralProgram.objects.all().delete()

        run_concurrently([cleanup], tenant=alpha.tenant)
