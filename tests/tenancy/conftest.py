"""Helpers of the tenancy suites: a brand's session cookies carried to another host, and what
identifies a brand's data in a response.

Nothing here is autouse: the other modules of this folder are unaffected.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest
from django.conf import settings
from django.test import Client

from tests.conftest import Brand


def brand_markers(brand: Brand) -> list[str]:
    """Strings that appear only in `brand`'s data: a response of another brand must contain none.

    "owner" is left out on purpose: every brand's first admin has that username.
    """
    name = brand.tenant.name
    staff = [user.username for role, user in brand.users.items() if role != "owner"]
    return [name, f"{name}的口号", brand.host, brand.schema, *staff]


def leaked(body: str, brand: Brand) -> list[str]:
    """The markers of `brand` found in `body`."""
    return [marker for marker in brand_markers(brand) if marker in body]


def client_with_cookies(
    host: str, cookies: dict[str, str], *, enforce_csrf_checks: bool = False, **headers: str
) -> Client:
    """A client on `host` that sends `cookies` (as a browser would if they had leaked to it)."""
    client = Client(HTTP_HOST=host, enforce_csrf_checks=enforce_csrf_checks, **headers)
    for name, value in cookies.items():
        client.cookies[name] = value
    return client


def signed_in_cookies(brand: Brand, role: str = "owner") -> dict[str, str]:
    """Session and CSRF cookies of `role` signed in on `brand`'s own host, checked to work there."""
    client = brand.client(role)
    assert client.get("/api/v1/auth/csrf/").status_code == 200
    me = client.get("/api/v1/me/")
    assert me.status_code == 200, me.content
    assert me.json()["username"] == brand.users[role].username
    return {
        settings.SESSION_COOKIE_NAME: client.cookies[settings.SESSION_COOKIE_NAME].value,
        settings.CSRF_COOKIE_NAME: client.cookies[settings.CSRF_COOKIE_NAME].value,
    }


@pytest.fixture
def alpha_owner_cookies(alpha: Brand) -> dict[str, str]:
    """alpha's owner's session and CSRF cookies (valid on alpha's host: checked)."""
    return signed_in_cookies(alpha)


@pytest.fixture
def cookies_of() -> Callable[[Brand, str], dict[str, str]]:
    return signed_in_cookies


from tests.support.wechat import wechat_sim  # noqa: E402, F401 (fixture of the payout-through-the-worker test)
