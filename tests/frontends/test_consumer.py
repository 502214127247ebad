"""Consumer identity through WeChat web OAuth (against the local simulator) and the member centre."""

from __future__ import annotations

import json
from typing import Any
from urllib.error import HTTPError
from urllib.parse import parse_qs, urlencode, urlsplit
from urllib.request import HTTPRedirectHandler, Request, build_opener

from django.test import Client
from django_tenants.utils import tenant_context

from commerce.models import ConsentPurpose, Member, MemberConsent, PointsKind
from commerce.services import members, points
from tests.conftest import Brand
from tests.support.wechat import WeChatBrand


class _NoRedirect(HTTPRedirectHandler):
    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None


def _approve(authorize_url: str, user: str) -> str:
    """What WeChat does when the consumer approves: redirect back with ?code=&state=."""
    split = urlsplit(authorize_url)
    url = f"{split.scheme}://{split.netloc}{split.path}?{split.query}&{urlencode({'sim_user': user})}"
    location = ""
    try:
        build_opener(_NoRedirect).open(Request(url), timeout=5)  # noqa: S310 (loopback simulator)
    except HTTPError as unfollowed:  # the 302 urllib was told not to follow
        location = unfollowed.headers.get("Location", "")
    assert location, "the simulator did not redirect"
    return location


def _sign_in(client: Client, user: str = "张三", next_path: str = "/m/me/") -> Any:
    start = client.get("/wx/login/", {"next": next_path})
    assert start.status_code == 302, start.content[:300]
    back = urlsplit(_approve(start["Location"], user))
    assert back.path == "/wx/callback/"
    return client.get(back.path, parse_qs(back.query))


def test_a_consumer_signs_in_with_wechat_and_becomes_a_member(alpha_wechat: WeChatBrand) -> None:
    client = Client(HTTP_HOST=alpha_wechat.brand.host)
    done = _sign_in(client, "张三")
    assert done.status_code == 302
    assert done["Location"] == "/m/me/"
    with tenant_context(alpha_wechat.brand.tenant):
        (member,) = Member.objects.all()
    assert member.openid
    assert member.nickname == "张三"  # snsapi_userinfo: WeChat shared the profile
    page = client.get("/m/me/")
    assert page.status_code == 200
    assert f'data-member="{member.pk}"' in page.content.decode()
    # Signing in again is the same member.
    assert _sign_in(Client(HTTP_HOST=alpha_wechat.brand.host), "张三").status_code == 302
    with tenant_context(alpha_wechat.brand.tenant):
        assert Member.objects.count() == 1


def test_a_callback_not_started_in_this_browser_or_with_a_used_code_is_refused(alpha_wechat: WeChatBrand) -> None:
    client = Client(HTTP_HOST=alpha_wechat.brand.host)
    start = client.get("/wx/login/")
    back = urlsplit(_approve(start["Location"], "李四"))
    query = parse_qs(back.query)
    # Another browser (no state cookie) presenting this callback: refused, nobody signed in.
    stranger = Client(HTTP_HOST=alpha_wechat.brand.host).get(back.path, query)
    assert stranger.status_code == 400
    assert "登录" in stranger.content.decode()
    # A forged state in the right browser: refused.
    assert client.get(back.path, {**query, "state": "forged"}).status_code == 400
    assert client.get(back.path, query).status_code == 302
    # The code is single-use at WeChat: replaying it (with a fresh login's state) fails cleanly.
    again = client.get("/wx/login/")
    state = parse_qs(urlsplit(again["Location"]).query)["state"][0]
    replay = client.get(back.path, {"code": query["code"][0], "state": state})
    assert replay.status_code == 400
    assert "微信授权失败" in replay.content.decode()


def test_without_an_official_account_login_says_so(alpha: Brand) -> None:
    page = Client(HTTP_HOST=alpha.host).get("/wx/login/")
    assert page.status_code == 409
    assert "尚未配置微信公众号" in page.content.decode()


def test_member_pages_ask_for_login_and_only_follow_local_next_paths(alpha_wechat: WeChatBrand) -> None:
    client = Client(HTTP_HOST=alpha_wechat.brand.host)
    page = client.get("/m/me/")
    assert page.status_code == 302
    assert page["Location"].startswith("/wx/login/?next=")
    done = _sign_in(client, "王五", next_path="https://evil.example/")
    assert done["Location"] == "/m/me/"


def test_the_member_cookie_of_one_brand_means_nothing_on_another(alpha_wechat: WeChatBrand, beta: Brand) -> None:
    client = Client(HTTP_HOST=alpha_wechat.brand.host)
    _sign_in(client)
    cookie = client.cookies[f"jm_member_{alpha_wechat.brand.tenant.number}"].value
    other = Client(HTTP_HOST=beta.host)
    other.cookies[f"jm_member_{beta.tenant.number}"] = cookie
    assert other.get("/m/me/").status_code == 302  # not signed in at beta


def test_a_member_sees_exports_and_erases_their_data(alpha_wechat: WeChatBrand) -> None:
    client = Client(HTTP_HOST=alpha_wechat.brand.host)
    _sign_in(client, "赵六")
    with tenant_context(alpha_wechat.brand.tenant):
        member = Member.objects.get()
        points.credit(member.pk, 30, kind=PointsKind.SCAN, source="scan:1")
    home = client.get("/m/me/").content.decode()
    assert 'data-balance="30"' in home
    # Privacy consent from the policy page.
    assert client.get("/m/privacy/").status_code == 200
    assert client.post("/m/privacy/consent/", {"decision": "accept"}).status_code == 302
    assert client.post("/m/privacy/consent/", {"decision": "maybe"}).status_code == 400
    with tenant_context(alpha_wechat.brand.tenant):
        assert members.has_consent(member, ConsentPurpose.PRIVACY_POLICY)
        consent = MemberConsent.objects.get(member=member)
        assert consent.ip == "127.0.0.1"
    exported = client.get("/m/me/export/")
    assert exported.status_code == 200
    assert exported["Content-Disposition"].startswith("attachment;")
    data = json.loads(exported.content)
    assert data["member"]["nickname"] == "赵六"
    assert data["points"][0]["amount"] == 30
    # Erasing asks first, then deletes and signs out.
    assert client.get("/m/me/erase/").status_code == 200
    assert client.post("/m/me/erase/", {}).status_code == 200  # no confirmation: nothing happens
    with tenant_context(alpha_wechat.brand.tenant):
        assert not Member.objects.get(pk=member.pk).is_erased
    gone = client.post("/m/me/erase/", {"confirm": "erase"})
    assert gone.status_code == 200
    assert "已删除" in gone.content.decode()
    with tenant_context(alpha_wechat.brand.tenant):
        erased = Member.objects.get(pk=member.pk)
    assert erased.is_erased
    assert erased.openid is None
    assert client.get("/m/me/").status_code == 302  # signed out


def test_the_scan_path_login_returns_to_the_scan(alpha_wechat: WeChatBrand) -> None:
    client = Client(HTTP_HOST="c.localhost")
    code = "0" * 24  # routing needs only the brand number in the code: build one of alpha's
    from codes import format as code_format
    from codes.keyring import keyring

    with tenant_context(alpha_wechat.brand.tenant):
        code = code_format.make(keyring.current_key(alpha_wechat.brand.tenant.number), code_format.Kind.INNER, 5)
    start = client.get(f"/C/{code}/wx/login")
    assert start.status_code == 302
    redirect_uri = parse_qs(urlsplit(start["Location"]).query)["redirect_uri"][0]
    assert redirect_uri == f"http://c.localhost/C/{code}/wx/callback"
    back = urlsplit(_approve(start["Location"], "张三"))
    done = client.get(back.path, parse_qs(back.query))
    assert done.status_code == 302
    assert done["Location"] == f"/C/{code}"
    assert f"jm_member_{alpha_wechat.brand.tenant.number}" in client.cookies
