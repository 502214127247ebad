"""The consumer pages of card collecting (集卡): the card on the scan's reward page, the member's cards,
gifting through a share link, exchanging a full set, the public rules with every card's chance; every
refusal a 4xx with its code (JSON when asked), every POST behind CSRF."""

from __future__ import annotations

import re
from typing import Any

import pytest
from django.test import Client
from django_tenants.utils import tenant_context

from codes import format as code_format
from codes import services as code_services
from codes.keyring import keyring
from codes.models import Batch, CodeStatus, SerialGroup
from commerce.models import ConsentPurpose, Member
from commerce.services import members
from rewards.models import CardGift, CardGiftStatus, CardHolding, CardSet, CardSetRedemption
from rewards.services import cards
from tests.conftest import Brand
from tests.rewards.conftest import running_campaign
from tests.rewards.test_cards import card_prize, count, give, make_set, set_cards
from tests.support.members import signed_in

CODE_HOST = "c.localhost"
JSON = {"HTTP_ACCEPT": "application/json"}


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


def _member(brand: Brand, openid: str, *, consent: bool = False) -> Member:
    with tenant_context(brand.tenant):
        made = Member.objects.create(openid=openid)
        if consent:
            members.record_consent(made, ConsentPurpose.PRIVACY_POLICY, version="2026-11", granted=True)
    return made


def _set(brand: Brand, **fields: Any) -> CardSet:
    with tenant_context(brand.tenant):
        return make_set(**fields)


# --- the reward page and the rules ---------------------------------------------------------------------


def test_the_scan_page_shows_the_card_won_with_a_link_to_the_members_cards(alpha: Brand, batch: Batch) -> None:
    card_set = _set(alpha)
    with tenant_context(alpha.tenant):
        running_campaign([card_prize(card_set)])
    winner = _member(alpha, "o-card-scan", consent=True)
    page = signed_in(alpha, winner, CODE_HOST).get(f"/C/{_inner(alpha, batch)}")
    body = page.content.decode()
    assert page.status_code == 200
    assert 'data-outcome="won"' in body
    with tenant_context(alpha.tenant):
        (held,) = CardHolding.objects.filter(member=winner)
        name = held.card.name
    assert f"恭喜获得「{name}」卡" in body
    assert "http://alpha.localhost/m/cards/" in body  # the cards page is on the brand's own site
    # Opening the cap again shows the same card (read back from the claim).
    again = signed_in(alpha, winner, CODE_HOST).get(f"/C/{_inner(alpha, batch)}").content.decode()
    assert f"恭喜获得「{name}」卡" in again


def test_the_public_rules_list_each_cards_chance_the_reward_and_the_deadline(alpha: Brand) -> None:
    card_set = _set(alpha, names=("金", "银", "铜"), weights=(1, 3, 4), reward_kind="points")
    with tenant_context(alpha.tenant):
        campaign = running_campaign([card_prize(card_set, odds_ppm=250_000)])
    body = Client(HTTP_HOST=alpha.host).get(f"/r/{campaign.pk}/").content.decode()
    assert "「福禄寿」集卡卡片一张" in body
    for name, share in (("金", "12.5%"), ("银", "37.5%"), ("铜", "50%")):
        assert re.search(rf"<td>{name}</td><td>\d+</td><td data-share>{re.escape(share)}</td>", body), name
    assert "集齐红包（500 酒币）" in body
    assert "data-exchange-ends" in body
    assert "每人最多兑换 1 次" in body


# --- the member's cards --------------------------------------------------------------------------------


def test_a_stranger_is_sent_through_the_wechat_login(alpha: Brand) -> None:
    response = Client(HTTP_HOST=alpha.host).get("/m/cards/")
    assert response.status_code == 302
    assert response["Location"] == "/wx/login/?next=%2Fm%2Fcards%2F"
    assert Client(HTTP_HOST=alpha.host).get("/m/cards/", **JSON).status_code == 401


def test_the_cards_page_shows_counts_progress_and_the_buttons(alpha: Brand) -> None:
    card_set = _set(alpha)
    someone = _member(alpha, "o-cards")
    with tenant_context(alpha.tenant):
        fu, lu, shou = set_cards(card_set)
        give(someone, fu, fu, lu)
    client = signed_in(alpha, someone)
    body = client.get("/m/cards/").content.decode()
    assert f'data-set="{card_set.pk}" data-collected="2" data-total="3"' in body
    assert f'data-card="{fu.pk}" data-count="2"' in body
    assert f'data-gift="{fu.pk}"' in body
    assert f'data-gift="{shou.pk}"' not in body  # none to give
    assert "data-exchange=" not in body
    assert "集齐后可兑换" in body
    with tenant_context(alpha.tenant):
        give(someone, shou)
    body = client.get("/m/cards/").content.decode()
    assert f'data-exchange="{card_set.pk}"' in body
    assert client.get("/m/cards/", **JSON).json()["sets"][0]["can_exchange"] is True
    assert "/m/cards/" in client.get("/m/me/").content.decode()  # linked from the member centre


# --- gifting through HTTP -------------------------------------------------------------------------------


def test_a_gift_link_made_shared_and_accepted_over_http(alpha: Brand) -> None:
    card_set = _set(alpha)
    sender, receiver, late = _member(alpha, "o-giver"), _member(alpha, "o-taker"), _member(alpha, "o-late")
    with tenant_context(alpha.tenant):
        fu = set_cards(card_set)[0]
        give(sender, fu)
    giver = signed_in(alpha, sender)
    made = giver.post("/m/cards/gift/", {"card": str(fu.pk)})
    assert made.status_code == 303
    link = made["Location"]
    assert re.fullmatch(r"/m/cards/g/[A-Za-z0-9_-]{43}/", link)
    own_view = giver.get(link).content.decode()
    assert f"http://alpha.localhost{link}" in own_view  # the link to share
    assert "data-cancel" in own_view
    assert 'data-status="pending"' in own_view
    # A stranger opening the link signs in first, then comes back to it.
    stranger = Client(HTTP_HOST=alpha.host).get(link)
    assert stranger.status_code == 302
    assert stranger["Location"].startswith("/wx/login/?next=%2Fm%2Fcards%2Fg%2F")
    taker = signed_in(alpha, receiver)
    assert "data-accept" in taker.get(link).content.decode()
    accepted = taker.post(link)
    assert accepted.status_code == 200
    assert "data-accepted" in accepted.content.decode()
    with tenant_context(alpha.tenant):
        assert (count(sender, fu), count(receiver, fu)) == (0, 1)
    # Too late: 409 with the reason, as a page or as JSON.
    page = signed_in(alpha, late).post(link)
    assert page.status_code == 409
    assert 'data-error="card_gift_taken"' in page.content.decode()
    assert "已被领取" in page.content.decode()
    as_json = signed_in(alpha, late).post(link, **JSON)
    assert as_json.status_code == 409
    assert as_json.json()["code"] == "card_gift_taken"
    assert "已被领取" in as_json.json()["message"]


def test_a_sender_cancels_a_gift_over_http(alpha: Brand) -> None:
    card_set = _set(alpha)
    sender, other = _member(alpha, "o-giver"), _member(alpha, "o-other")
    with tenant_context(alpha.tenant):
        fu = set_cards(card_set)[0]
        give(sender, fu)
    giver = signed_in(alpha, sender)
    made = giver.post("/m/cards/gift/", {"card": str(fu.pk)}, **JSON)
    assert made.status_code == 201
    token = made.json()["url"].rstrip("/").rsplit("/", 1)[1]
    assert f"/m/cards/g/{token}/" in giver.get("/m/cards/").content.decode()  # listed as waiting
    refused = signed_in(alpha, other).post(f"/m/cards/g/{token}/cancel/", **JSON)
    assert (refused.status_code, refused.json()["code"]) == (404, "card_gift_not_found")
    cancelled = giver.post(f"/m/cards/g/{token}/cancel/")
    assert (cancelled.status_code, cancelled["Location"]) == (303, "/m/cards/")
    with tenant_context(alpha.tenant):
        assert count(sender, fu) == 1
        assert CardGift.objects.get().status == CardGiftStatus.CANCELLED
    assert giver.post(f"/m/cards/g/{token}/cancel/", **JSON).json()["code"] == "card_gift_cancelled"


@pytest.mark.parametrize(
    ("path", "data", "status", "code"),
    [
        ("/m/cards/gift/", {"card": "abc"}, 400, "card_not_found"),
        ("/m/cards/gift/", {"card": "999999"}, 404, "card_not_found"),
        ("/m/cards/gift/", {"card": "{lu}"}, 409, "card_not_held"),
        ("/m/cards/exchange/", {"card_set": ""}, 400, "card_set_not_found"),
        ("/m/cards/exchange/", {"card_set": "{set}"}, 409, "card_set_incomplete"),
        ("/m/cards/exchange/", {"card_set": "999999"}, 404, "card_set_not_found"),
        ("/m/cards/g/no-such-token/", {}, 404, "card_gift_not_found"),
        ("/m/cards/g/{own}/", {}, 400, "card_gift_own"),
    ],
)
def test_refusals_are_4xx_with_their_code(
    alpha: Brand, path: str, data: dict[str, str], status: int, code: str
) -> None:
    card_set = _set(alpha)
    someone = _member(alpha, "o-refused")
    with tenant_context(alpha.tenant):
        fu, lu, _shou = set_cards(card_set)
        give(someone, fu)
        own = cards.gift(someone, fu.pk).token
    values = {"lu": str(lu.pk), "set": str(card_set.pk), "own": own}
    path = path.format(**values)
    data = {key: value.format(**values) for key, value in data.items()}
    client = signed_in(alpha, someone)
    as_json = client.post(path, data, **JSON)
    assert (as_json.status_code, as_json.json()["code"]) == (status, code)
    assert as_json.json()["message"]
    page = client.post(path, data)
    assert page.status_code == status
    assert f'data-error="{code}"' in page.content.decode()


def test_posts_need_the_csrf_token(alpha: Brand) -> None:
    card_set = _set(alpha)
    someone = _member(alpha, "o-csrf")
    with tenant_context(alpha.tenant):
        fu = set_cards(card_set)[0]
        give(someone, fu)
    client = signed_in(alpha, someone, enforce_csrf_checks=True)
    forged = client.post("/m/cards/gift/", {"card": str(fu.pk)})
    assert forged.status_code == 403
    page = client.get("/m/cards/").content.decode()
    token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page)
    assert token is not None
    made = client.post("/m/cards/gift/", {"card": str(fu.pk), "csrfmiddlewaretoken": token.group(1)})
    assert made.status_code == 303
    with tenant_context(alpha.tenant):
        assert count(someone, fu) == 0


# --- exchanging through HTTP ----------------------------------------------------------------------------


def test_a_full_set_is_exchanged_over_http(alpha: Brand) -> None:
    card_set = _set(alpha, reward_kind="physical", reward_name="定制酒杯")
    someone = _member(alpha, "o-exchange")
    with tenant_context(alpha.tenant):
        give(someone, *set_cards(card_set))
    client = signed_in(alpha, someone)
    done = client.post("/m/cards/exchange/", {"card_set": str(card_set.pk)})
    assert done.status_code == 200
    body = done.content.decode()
    assert "兑换成功" in body
    with tenant_context(alpha.tenant):
        (made,) = CardSetRedemption.objects.filter(member=someone)
        code = made.redemption.code
    assert f'data-redemption="{code}"' in body
    assert f'data-redemption="{code}"' in client.get("/m/cards/").content.decode()  # kept on the cards page
    again = client.post("/m/cards/exchange/", {"card_set": str(card_set.pk)}, **JSON)
    assert (again.status_code, again.json()["code"]) == (409, "card_set_incomplete")


def test_points_exchange_answers_json(alpha: Brand) -> None:
    card_set = _set(alpha, reward_kind="points")
    someone = _member(alpha, "o-exchange-json")
    with tenant_context(alpha.tenant):
        give(someone, *set_cards(card_set))
    done = signed_in(alpha, someone).post("/m/cards/exchange/", {"card_set": str(card_set.pk)}, **JSON)
    assert done.status_code == 201
    assert (done.json()["number"], done.json()["points"]) == (1, 500)
