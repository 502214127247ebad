"""Helpers of the sales channel tests: running inside a brand's schema, and its audit log."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import pytest
from django_tenants.utils import schema_context

from tenants.brand.models import AuditEntry
from tests.conftest import Brand

CJK = re.compile(r"[\u4e00-\u9fff]")

# 贵州省 520000: 贵阳市 520100 (南明区 520102, 云岩区 520103), 遵义市 520300 (红花岗区 520302).
GUIZHOU, GUIYANG, NANMING, YUNYAN, ZUNYI, HONGHUAGANG = "520000", "520100", "520102", "520103", "520300", "520302"
YUNNAN = "530000"


@pytest.fixture
def in_alpha(alpha: Brand) -> Iterator[Brand]:
    """The test body runs in alpha's schema (services and models used directly)."""
    with schema_context(alpha.schema):
        yield alpha


def last_audit_id() -> int:
    last = AuditEntry.objects.order_by("-id").values_list("id", flat=True).first()
    return last or 0


def audit_since(since: int, **filters: Any) -> list[AuditEntry]:
    return list(AuditEntry.objects.filter(id__gt=since, **filters).order_by("id"))


def assert_refused(response: Any, status: int, code: str) -> dict[str, Any]:
    """An API refusal: the status, the machine code and a Chinese message."""
    assert response.status_code == status, response.content.decode()[:500]
    body: dict[str, Any] = response.json()
    assert body["code"] == code, body
    assert CJK.search(body["message"]), body
    return body
