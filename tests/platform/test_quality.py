"""Project-wide rules that no single feature test would notice breaking.

- The dependency direction of DESIGN.md (import-linter's contracts in pyproject.toml).
- Every admin that can write is audited: each ModelAdmin of the brand console subclasses
  AuditedModelAdmin, unless nobody at all may add, change or delete through it.
- Language and time: Simplified Chinese, stored in UTC, shown in Asia/Shanghai.

(No translation-catalogue check: the project has no locale directory; zh-hans is its source
language, so there is nothing to compile.)
"""

from __future__ import annotations

import re
import subprocess
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from django.conf import settings
from django.contrib import admin
from django.db import connection
from django.template import Context, Template
from django.test import RequestFactory
from django.utils import timezone, translation
from django_tenants.utils import schema_context

from tenants.brand.admin import AuditedModelAdmin, site
from tenants.brand.models import AuditEntry, User
from tests.conftest import Brand

ROOT = Path(__file__).resolve().parents[2]
SHANGHAI = ZoneInfo("Asia/Shanghai")


# --- dependency direction ----------------------------------------------------------------------


@pytest.mark.slow
def test_import_linter_contracts_are_kept() -> None:
    linter = ROOT / ".venv" / "bin" / "lint-imports"
    assert linter.exists(), f"{linter} is missing: the dev dependencies are not installed"
    # --no-cache: nothing written into the working tree, which other runs may share.
    result = subprocess.run(
        [str(linter), "--no-cache"], cwd=ROOT, capture_output=True, text=True, timeout=120, check=False
    )
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    kept = re.search(r"Contracts: (\d+) kept, 0 broken", output)
    assert kept, output
    assert int(kept[1]) >= 3, "pyproject.toml's contracts were not all read"


# --- audited admin -----------------------------------------------------------------------------


def _can_write(model_admin: admin.ModelAdmin, request: Any) -> bool:  # type: ignore[type-arg]
    return bool(
        model_admin.has_add_permission(request)
        or model_admin.has_change_permission(request)
        or model_admin.has_delete_permission(request)
    )


def _unaudited_writers(brand: Brand) -> list[str]:
    """ModelAdmins of the brand site that let someone write without being an AuditedModelAdmin."""
    superuser = User(username="root_probe", is_staff=True, is_superuser=True, is_active=True)
    found = []
    with schema_context(brand.schema):
        for model, model_admin in site._registry.items():
            if isinstance(model_admin, AuditedModelAdmin):
                continue
            for user in (superuser, brand.users["owner"]):
                request = RequestFactory().get("/admin/", HTTP_HOST=brand.host)
                request.user = user
                if _can_write(model_admin, request):
                    found.append(f"{model._meta.label}: {type(model_admin).__name__}")
                    break
    return found


def test_every_brand_admin_that_can_write_is_audited(alpha: Brand) -> None:
    registered = {model._meta.label_lower for model in site._registry}
    assert {"brand.user", "auth.group", "brand.brandprofile", "brand.auditentry"} <= registered
    audited = [ma for ma in site._registry.values() if isinstance(ma, AuditedModelAdmin)]
    assert len(audited) >= 3
    assert _unaudited_writers(alpha) == []


def test_the_audit_check_catches_an_unaudited_writable_admin(alpha: Brand) -> None:
    """The rule above is not vacuous: a plain ModelAdmin registered on the site is reported."""

    class Plain(admin.ModelAdmin):  # type: ignore[type-arg]
        pass

    original = site._registry[AuditEntry]
    site._registry[AuditEntry] = Plain(AuditEntry, site)
    try:
        assert _unaudited_writers(alpha) == ["brand.AuditEntry: Plain"]
    finally:
        site._registry[AuditEntry] = original


# --- language and time -------------------------------------------------------------------------


def test_language_and_time_settings() -> None:
    assert settings.LANGUAGE_CODE == "zh-hans"
    assert settings.USE_I18N is True
    assert settings.TIME_ZONE == "Asia/Shanghai"
    assert settings.USE_TZ is True
    assert translation.get_language() == "zh-hans"
    # The texts of Django and DRF (form and field errors) come out in Chinese.
    assert re.search(r"[\u4e00-\u9fff]", translation.gettext("This field is required."))


def test_times_are_stored_in_utc_and_shown_in_shanghai_time(alpha: Brand) -> None:
    with connection.cursor() as cursor:
        cursor.execute("SHOW TimeZone")
        assert cursor.fetchone() == ("UTC",)

    eight_am_in_shanghai = datetime(2026, 1, 1, 8, 0, tzinfo=SHANGHAI)
    operator = alpha.users["operator"]
    with schema_context(alpha.schema):
        User.objects.filter(pk=operator.pk).update(last_login=eight_am_in_shanghai)
        with connection.cursor() as cursor:
            cursor.execute("SELECT last_login::text FROM brand_user WHERE id = %s", [operator.pk])
            assert cursor.fetchone() == ("2026-01-01 00:00:00+00",)
        stored = User.objects.get(pk=operator.pk).last_login
    assert stored is not None
    assert stored.utcoffset() == timedelta(0)

    # Templates show it in Asia/Shanghai, Chinese style.
    assert timezone.get_current_timezone_name() == "Asia/Shanghai"
    rendered = Template("{{ t }}|{{ t|date:'Y-m-d H:i' }}").render(Context({"t": stored}))
    assert rendered == "2026年1月1日 08:00|2026-01-01 08:00"

    # The API gives ISO 8601 with the +08:00 offset.
    staff = alpha.client("owner").get("/api/v1/staff/").json()
    (row,) = [row for row in staff if row["id"] == operator.pk]
    assert row["last_login"] == "2026-01-01T08:00:00+08:00"
