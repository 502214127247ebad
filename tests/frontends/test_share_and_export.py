"""After the draw: the share step (邀请有礼 link), the consent read with the member, the bounded cost of
a draw, and the member's copy of their rewards data."""

from __future__ import annotations

import json

from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django_tenants.utils import tenant_context

from codes.models import Batch
from commerce.models import ConsentPurpose, Member
from commerce.services import members
from rewards.models import Referral
from tests.conftest import Brand
from tests.frontends.test_scan_to_win import CODE_HOST, RED_PACKET, _consenting, _inner, _signed_in, batch  # noqa: F401
from tests.rewards.conftest import running_campaign
from tests.support.members import signed_in


def _share_link(body: str) -> str:
    marker = 'data-share-step><a href="'
    assert marker in body, body
    return body.split(marker, 1)[1].split('"', 1)[0]


def test_the_prize_page_leads_to_a_share_page_whose_link_invites_a_friend(alpha: Brand, batch: Batch) -> None:  # noqa: F811
    with tenant_context(alpha.tenant):
        running_campaign([RED_PACKET])
    winner = _consenting(alpha, "o-share-1")
    page = _signed_in(alpha, winner).get(f"/C/{_inner(alpha, batch, 0)}").content.decode()
    assert 'data-outcome="won"' in page
    link = _share_link(page)
    assert link.startswith(f"http://{alpha.host}/m/invite/")  # on the brand's site, signed
    path = link.removeprefix(f"http://{alpha.host}")
    # The winner opening their own link gets the page to share it from (not an invitation to themselves).
    own = signed_in(alpha, winner).get(path, HTTP_USER_AGENT="Mozilla/5.0 MicroMessenger/8.0")
    body = own.content.decode()
    assert own.status_code == 200
    assert "data-invite-share" in body
    assert f'data-url="http://{alpha.host}{path}"' in body
    assert "data-wechat-hint" in body  # inside WeChat: the top-right menu shares this page
    # A friend who opens it is invited, and accepting makes the referral.
    with tenant_context(alpha.tenant):
        friend = Member.objects.create(openid="o-share-2")
    friend_client = signed_in(alpha, friend)
    invited = friend_client.get(path).content.decode()
    assert "data-invite-accept" in invited
    assert friend_client.post(path).status_code == 200
    with tenant_context(alpha.tenant):
        assert Referral.objects.filter(inviter=winner, invitee=friend).count() == 1
    # Someone else's claimed cap offers no share step.
    other = _consenting(alpha, "o-share-3")
    theirs = _signed_in(alpha, other).get(f"/C/{_inner(alpha, batch, 0)}").content.decode()
    assert "data-share-step" not in theirs


def test_the_consent_read_with_the_member_follows_withdrawal_and_policy_versions(alpha: Brand, batch: Batch) -> None:  # noqa: F811
    with tenant_context(alpha.tenant):
        running_campaign([RED_PACKET])
        member = Member.objects.create(openid="o-consent-1")
        members.record_consent(member, ConsentPurpose.PRIVACY_POLICY, version="2020-01", granted=True)
    client = _signed_in(alpha, member)
    assert 'data-reward="consent"' in client.get(f"/C/{_inner(alpha, batch, 1)}").content.decode()  # old version
    with tenant_context(alpha.tenant):
        members.record_consent(member, ConsentPurpose.PRIVACY_POLICY, version="2026-11", granted=True)
    assert 'data-reward="result"' in client.get(f"/C/{_inner(alpha, batch, 1)}").content.decode()
    with tenant_context(alpha.tenant):
        members.record_consent(member, ConsentPurpose.PRIVACY_POLICY, version="2026-11", granted=False)
    assert 'data-reward="consent"' in client.get(f"/C/{_inner(alpha, batch, 2)}").content.decode()  # withdrawn


def test_a_fresh_caps_draw_costs_a_bounded_number_of_statements(alpha: Brand, batch: Batch) -> None:  # noqa: F811
    """The whole scan → draw → page path of a cash win (the costliest outcome) on a fresh cap: one
    statement each for the member with their consent, the scan, the bottle's channel, the risk
    counts; then the draw's transaction. A regression to per-row lookups shows here."""
    with tenant_context(alpha.tenant):
        running_campaign([RED_PACKET])
    member = _consenting(alpha, "o-cost-1")
    client = _signed_in(alpha, member)
    client.get(f"/C/{_inner(alpha, batch, 4)}")  # the member's first draw (referral check, caches)
    with CaptureQueriesContext(connection) as captured:
        page = client.get(f"/C/{_inner(alpha, batch, 5)}")
    assert 'data-prize="cash"' in page.content.decode()
    # Routing reads (the brand, its code key, the search path) are cached per process in a server;
    # each test starts with empty caches, so they are left out here.
    statements = [
        query["sql"]
        for query in captured.captured_queries
        if not query["sql"].startswith("SET search_path") and '"tenants_' not in query["sql"]
    ]
    assert len(statements) <= 13, "\n".join(statements)


def test_the_members_copy_of_their_data_includes_their_rewards(alpha: Brand, batch: Batch) -> None:  # noqa: F811
    with tenant_context(alpha.tenant):
        running_campaign([RED_PACKET])
    member = _consenting(alpha, "o-export-1")
    _signed_in(alpha, member).get(f"/C/{_inner(alpha, batch, 6)}")
    exported = signed_in(alpha, member).get("/m/me/export/")
    assert exported.status_code == 200
    data = json.loads(exported.content)
    (drawn,) = data["rewards"]["draws"]
    assert drawn["outcome"] == "won"
    assert drawn["prize"] == RED_PACKET.name
    assert [packet["amount_fen"] for packet in data["rewards"]["red_packets"]] == [RED_PACKET.amount_fen]
    assert Client(HTTP_HOST=alpha.host).get("/m/me/export/").status_code == 302  # signed-in members only
