"""A brand's WeChat settings: stored with secrets wrapped, read back unwrapped and kept briefly.

Secrets (the official account's AppSecret, the merchant's API private key and APIv3 key) are wrapped
by the platform master key ring and bound to the brand and the field (tenants.keys.field_context),
so a blob copied to another brand or field does not open. Unwrapped settings are kept per process
for CACHE_SECONDS (a KMS-backed ring would otherwise be asked on every consumer login).
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass

from django.utils.translation import gettext as _

from commerce.models import WeChatConfig
from tenants import keys
from tenants.db import connection
from tenants.errors import JiumaError

CACHE_SECONDS = 60.0
_cache: dict[str, tuple[float, WeChatSettings | None]] = {}
_lock = threading.Lock()


@dataclass(frozen=True)
class WeChatSettings:
    """Unwrapped: never log or serialise it."""

    appid: str
    secret: str
    oauth_scope: str
    mchid: str = ""
    merchant_serial_no: str = ""
    private_key: str = ""
    apiv3_key: str = ""
    platform_public_key_id: str = ""
    platform_public_key: str = ""
    transfer_scene_id: str = "1000"

    @property
    def can_pay(self) -> bool:
        return bool(self.mchid and self.private_key and self.apiv3_key and self.platform_public_key)


class NotConfigured(JiumaError):
    status_code = 409


def _number() -> int:
    return int(connection.tenant.number)


def _wrap(field: str, value: str) -> tuple[str, bytes | None]:
    if not value:
        return "", None
    return keys.master_key_ring().wrap(value.encode(), keys.field_context(_number(), f"wechat.{field}", 1))


def _unwrap(field: str, key_id: str, blob: bytes | memoryview | None) -> str:
    if not blob:
        return ""
    context = keys.field_context(_number(), f"wechat.{field}", 1)
    return keys.master_key_ring().unwrap(key_id, bytes(blob), context).decode()


def save(
    *,
    appid: str,
    secret: str,
    oauth_scope: str = "snsapi_base",
    mchid: str = "",
    merchant_serial_no: str = "",
    private_key: str = "",
    apiv3_key: str = "",
    platform_public_key_id: str = "",
    platform_public_key: str = "",
    transfer_scene_id: str = "1000",
) -> WeChatConfig:
    """Store the brand's WeChat settings (replacing them)."""
    secret_key_id, secret_wrapped = _wrap("secret", secret)
    private_key_id, private_key_wrapped = _wrap("private_key", private_key)
    apiv3_key_id, apiv3_key_wrapped = _wrap("apiv3_key", apiv3_key)
    config, _created = WeChatConfig.objects.update_or_create(
        id=1,
        defaults={
            "appid": appid.strip(),
            "secret_key_id": secret_key_id,
            "secret_wrapped": secret_wrapped,
            "oauth_scope": oauth_scope,
            "mchid": mchid.strip(),
            "merchant_serial_no": merchant_serial_no.strip(),
            "private_key_id": private_key_id,
            "private_key_wrapped": private_key_wrapped,
            "apiv3_key_id": apiv3_key_id,
            "apiv3_key_wrapped": apiv3_key_wrapped,
            "platform_public_key_id": platform_public_key_id.strip(),
            "platform_public_key": platform_public_key.strip(),
            "transfer_scene_id": transfer_scene_id.strip() or "1000",
        },
    )
    forget()
    return config


def forget_all() -> None:
    """Drop every brand's cached settings in this process (tests, a brand's deletion)."""
    with _lock:
        _cache.clear()


def forget() -> None:
    """Drop this process's cached settings of the current brand (after a change)."""
    with _lock:
        _cache.pop(connection.schema_name, None)


def load() -> WeChatSettings | None:
    """The current brand's settings, or None when it has no official account configured."""
    schema = connection.schema_name
    cached = _cache.get(schema)
    now = time.monotonic()
    if cached is not None and cached[0] > now:
        return cached[1]
    row = WeChatConfig.objects.filter(id=1).first()
    found = None
    if row is not None and row.appid and row.secret_wrapped:
        found = WeChatSettings(
            appid=row.appid,
            secret=_unwrap("secret", row.secret_key_id, row.secret_wrapped),
            oauth_scope=row.oauth_scope,
            mchid=row.mchid,
            merchant_serial_no=row.merchant_serial_no,
            private_key=_unwrap("private_key", row.private_key_id, row.private_key_wrapped),
            apiv3_key=_unwrap("apiv3_key", row.apiv3_key_id, row.apiv3_key_wrapped),
            platform_public_key_id=row.platform_public_key_id,
            platform_public_key=row.platform_public_key,
            transfer_scene_id=row.transfer_scene_id,
        )
    with _lock:
        _cache[schema] = (now + CACHE_SECONDS, found)
    return found


def require() -> WeChatSettings:
    found = load()
    if found is None:
        raise NotConfigured("wechat_not_configured", _("品牌尚未配置微信公众号，暂时无法登录。"))
    return found
