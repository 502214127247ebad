"""A test client signed in as a member of a brand (the cookie the WeChat login would set)."""

from __future__ import annotations

from typing import Any

from django.test import Client

from commerce.models import Member
from frontends.consumer import member_cookie
from tests.conftest import Brand


def signed_in(brand: Brand, member: Member, host: str | None = None, **extra: Any) -> Client:
    """A client on `host` (the brand's own by default) carrying `member`'s cookie for `brand`."""
    client = Client(HTTP_HOST=host or brand.host, **extra)
    name, value = member_cookie(brand.tenant.number, member.pk)
    client.cookies[name] = value
    return client
