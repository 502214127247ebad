"""Checks on what ops staff type when onboarding a brand. Each failure is a JiumaError with a Chinese message."""

from __future__ import annotations

import re

from django.conf import settings
from django.contrib.auth.password_validation import validate_password
from django.core.exceptions import ValidationError
from django.utils.translation import gettext as _

from tenants.errors import JiumaError, TenantErrorCode

BRAND_CODE_RE = re.compile(r"^[a-z][a-z0-9]{1,30}$")
RESERVED_CODES = frozenset(
    {
        "www",
        "ops",
        "api",
        "admin",
        "static",
        "media",
        "public",
        "template",
        "platform",
        "localhost",
        "pg",
        "information",
        "jiuma",
        "root",
        "test",
    }
)
_LABEL = r"[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?"
DOMAIN_RE = re.compile(rf"^(?=.{{1,253}}$)(?:{_LABEL}\.)+{_LABEL}$")
USERNAME_RE = re.compile(r"^[A-Za-z0-9_.@+-]{3,150}$")
PHONE_RE = re.compile(r"^\+?[0-9-]{5,20}$")


def schema_name_for(code: str) -> str:
    return f"t_{code}"


def clean_brand_code(raw: str) -> str:
    code = (raw or "").strip()
    if not BRAND_CODE_RE.match(code) or code in RESERVED_CODES:
        raise JiumaError(
            TenantErrorCode.INVALID_CODE,
            _("品牌代码须为 2–31 位小写字母或数字，以字母开头，且不能使用保留字。"),
            fields={"code": raw},
        )
    return code


def clean_domain(raw: str) -> str:
    domain = (raw or "").strip().lower().rstrip(".")
    if not DOMAIN_RE.match(domain) or domain in settings.PLATFORM_HOSTS:
        raise JiumaError(
            TenantErrorCode.INVALID_DOMAIN, _("域名格式不正确，或是平台保留域名。"), fields={"domain": raw}
        )
    return domain


def clean_admin_username(raw: str) -> str:
    username = (raw or "").strip()
    if not USERNAME_RE.match(username):
        raise JiumaError(
            TenantErrorCode.INVALID_ADMIN,
            _("管理员用户名须为 3–150 位字母、数字或 _ . @ + - 符号。"),
            fields={"admin_username": raw},
        )
    return username


def clean_admin_password(raw: str) -> str:
    try:
        validate_password(raw)
    except ValidationError as exc:
        raise JiumaError(
            TenantErrorCode.INVALID_ADMIN,
            _("管理员密码不符合要求：") + "；".join(exc.messages),
            fields={"admin_password": "***"},
        ) from exc
    return raw


def clean_phone(raw: str, field: str) -> str:
    phone = (raw or "").strip()
    if phone and not PHONE_RE.match(phone):
        raise JiumaError(TenantErrorCode.INVALID_ADMIN, _("手机号格式不正确。"), fields={field: raw})
    return phone
