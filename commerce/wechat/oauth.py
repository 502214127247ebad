"""Who the consumer is: WeChat web OAuth (公众号网页授权) behind a small interface.

    client = oauth_client(settings)             # the brand's official account
    url = client.authorize_url(redirect_uri, state)
    identity = client.identify(code)            # after WeChat redirected back with ?code=

The real client is wechatpy's WeChatOAuth with its base URLs taken from Django settings
(WECHAT_OAUTH_BASE_URL, WECHAT_API_BASE_URL), so production reaches WeChat and the demo and tests
reach the simulator through the same code. WeChat's failures (a used or expired code, a wrong
secret, WeChat unreachable) become OAuthError with a Chinese message for the consumer.
"""

from __future__ import annotations

from typing import Protocol

import requests
from django.conf import settings
from django.utils.translation import gettext as _
from wechatpy.exceptions import WeChatClientException, WeChatOAuthException
from wechatpy.oauth import WeChatOAuth

from commerce.services.members import Identity
from commerce.wechat.config import WeChatSettings
from tenants.errors import JiumaError

_FAILURES = (WeChatOAuthException, WeChatClientException, requests.RequestException, KeyError, TypeError, ValueError)


class OAuthError(JiumaError):
    status_code = 400


class OAuthClient(Protocol):
    def authorize_url(self, redirect_uri: str, state: str) -> str: ...

    def identify(self, code: str) -> Identity: ...


class WeChatOAuthClient:
    def __init__(self, account: WeChatSettings) -> None:
        self.account = account

    def _client(self, redirect_uri: str = "", state: str = "") -> WeChatOAuth:
        client = WeChatOAuth(
            self.account.appid, self.account.secret, redirect_uri, scope=self.account.oauth_scope, state=state
        )
        client.OAUTH_BASE_URL = settings.WECHAT_OAUTH_BASE_URL
        client.API_BASE_URL = settings.WECHAT_API_BASE_URL
        return client

    def authorize_url(self, redirect_uri: str, state: str) -> str:
        return str(self._client(redirect_uri, state).authorize_url)

    def identify(self, code: str) -> Identity:
        if not code or len(code) > 128:
            raise OAuthError("oauth_failed", _("微信授权失败，请重新进入。"))
        client = self._client()
        try:
            # wechatpy's fetch_access_token / get_user_info, through its request helper so that a
            # timeout applies (the public methods take none, and WeChat may not answer).
            token = client._request(
                "get",
                "sns/oauth2/access_token",
                params={
                    "appid": self.account.appid,
                    "secret": self.account.secret,
                    "code": code,
                    "grant_type": "authorization_code",
                },
                timeout=settings.WECHAT_TIMEOUT_SECONDS,
            )
            identity = Identity(openid=str(token["openid"]), unionid=str(token.get("unionid", "")))
            if token.get("scope", "") == "snsapi_userinfo":
                info = client._request(
                    "get",
                    "sns/userinfo",
                    params={"access_token": token["access_token"], "openid": token["openid"], "lang": "zh_CN"},
                    timeout=settings.WECHAT_TIMEOUT_SECONDS,
                )
                identity = Identity(
                    openid=identity.openid,
                    unionid=str(info.get("unionid", identity.unionid)),
                    nickname=str(info.get("nickname", "")),
                    avatar_url=str(info.get("headimgurl", "")),
                )
        except (
            WeChatOAuthException,
            WeChatClientException,
            requests.RequestException,
            KeyError,
            TypeError,
            ValueError,
        ) as exc:
            raise OAuthError("oauth_failed", _("微信授权失败，请重新进入。")) from exc
        return identity


def oauth_client(account: WeChatSettings) -> OAuthClient:
    return WeChatOAuthClient(account)
