"""Machine-to-machine API keys of a brand: issued (shown once), scoped, revocable, hashed at rest.

A request with `Authorization: Bearer jmk_...` is authenticated as an `ApiKeyClient`, which has
only the key's scopes: views ask `has_scope(request, scope)`. Keys are per brand schema, so a key
of one brand means nothing on another brand's host. Issuing, revoking and every write made with a
key are in the brand's audit log (actor "apikey:<name>").
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _
from rest_framework import authentication, exceptions
from rest_framework.request import Request

from tenants.brand import audit
from tenants.brand.models import ApiKey, ApiKeyScope
from tenants.errors import JiumaError, NotFound

# last_used_at is written at most this often per key (not on every request).
_TOUCH_SECONDS = 60


def _hash(raw: str) -> str:
    return hashlib.sha256(raw.encode()).hexdigest()


@dataclass(frozen=True)
class IssuedKey:
    key: ApiKey
    raw: str  # shown once


def issue(name: str, scopes: list[str], *, expires_at: datetime | None = None, actor: Any = None) -> IssuedKey:
    name = (name or "").strip()
    valid = {scope.value for scope in ApiKeyScope}
    unknown = sorted(set(scopes) - valid)
    if not name or len(name) > 64:
        raise JiumaError("invalid_api_key", _("名称不能为空，且不超过 64 个字。"), fields={"name": name})
    if not scopes or unknown:
        raise JiumaError("invalid_api_key", _("请选择有效的权限范围。"), fields={"scopes": unknown or scopes})
    if expires_at is not None and expires_at <= timezone.now():
        raise JiumaError("invalid_api_key", _("过期时间须晚于现在。"), fields={"expires_at": str(expires_at)})
    raw = ApiKey.PREFIX + secrets.token_urlsafe(32)
    with transaction.atomic():
        key = ApiKey.objects.create(
            name=name,
            key_hash=_hash(raw),
            key_hint=raw[:10],
            scopes=sorted(set(scopes)),
            expires_at=expires_at,
            created_by=actor if getattr(actor, "pk", None) else None,
        )
        audit.record("create", obj=key, after={"name": name, "scopes": key.scopes}, actor=actor)
    return IssuedKey(key, raw)


def revoke(key_id: int, *, actor: Any = None) -> ApiKey:
    with transaction.atomic():
        key = ApiKey.objects.select_for_update().filter(pk=key_id).first()
        if key is None:
            raise NotFound("api_key_not_found", _("API 密钥不存在。"))
        if key.revoked_at is None:
            key.revoked_at = timezone.now()
            key.save(update_fields=["revoked_at"])
            audit.record("action", obj=key, detail="revoke api key", actor=actor)
    return key


@dataclass(frozen=True)
class ApiKeyClient:
    """request.user for a request made with an API key: a machine, with the key's scopes only."""

    key: ApiKey

    is_authenticated = True
    is_anonymous = False
    is_staff = False
    is_active = True

    @property
    def pk(self) -> None:
        return None

    @property
    def username(self) -> str:
        return f"apikey:{self.key.name}"

    def has_perm(self, perm: str, obj: Any = None) -> bool:
        return False  # staff permissions never apply to a key; views check scopes

    def __str__(self) -> str:
        return self.username


class ApiKeyAuthentication(authentication.BaseAuthentication):
    keyword = "Bearer"

    def authenticate(self, request: Request) -> tuple[ApiKeyClient, ApiKey] | None:
        header = authentication.get_authorization_header(request).decode("latin-1")
        scheme, _sep, raw = header.partition(" ")
        if scheme != self.keyword or not raw.startswith(ApiKey.PREFIX):
            return None
        key = ApiKey.objects.filter(key_hash=_hash(raw.strip())).first()
        now = timezone.now()
        if key is None or key.revoked_at is not None or (key.expires_at is not None and key.expires_at <= now):
            raise exceptions.AuthenticationFailed(_("API 密钥无效、已过期或已吊销。"))
        if key.last_used_at is None or (now - key.last_used_at).total_seconds() > _TOUCH_SECONDS:
            ApiKey.objects.filter(pk=key.pk).update(last_used_at=now)
        client = ApiKeyClient(key)
        ctx = audit.current_context()
        if ctx is not None:
            ctx.actor_id = None
            ctx.actor_name = client.username
            ctx.via = "apikey"
        return client, key

    def authenticate_header(self, request: Request) -> str:
        return self.keyword


def has_scope(request: Request, scope: ApiKeyScope) -> bool:
    user: object = request.user
    return isinstance(user, ApiKeyClient) and scope.value in user.key.scopes
