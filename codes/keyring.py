"""The code keys of every brand, kept in each process so verifying a code costs no query.

A code names its brand's number and key version in clear (codes.format). The keyring knows which
brand numbers exist (one query, refreshed every KEYRING_REFRESH_SECONDS), so a code of a brand
number that does not exist is rejected without touching the database; a brand's keys are loaded
(unwrapped) on first use and kept. A key version the ring does not know yet (a rotation made in
another process) triggers at most one reload per brand per KEYRING_RETRY_SECONDS, so a flood of
forged codes cannot turn into a flood of queries.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field

from django.conf import settings
from django_tenants.utils import get_public_schema_name, schema_context

from codes import format as code_format
from tenants import code_keys
from tenants.models import Tenant


@dataclass
class _BrandKeys:
    keys: dict[int, code_format.CodeKey]
    current: int | None  # newest version not retired
    loaded_at: float


@dataclass
class Keyring:
    # (number << 4 | version) -> key: the one dictionary lookup of a warm verification.
    _by_prefix: dict[int, code_format.CodeKey] = field(default_factory=dict)
    _numbers: frozenset[int] = frozenset()
    _numbers_loaded_at: float = float("-inf")
    _brands: dict[int, _BrandKeys] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def clear(self) -> None:
        with self._lock:
            self._numbers = frozenset()
            self._numbers_loaded_at = float("-inf")
            self._brands = {}
            self._by_prefix = {}

    def _known_numbers(self) -> frozenset[int]:
        now = time.monotonic()
        if now - self._numbers_loaded_at > settings.KEYRING_REFRESH_SECONDS:
            with schema_context(get_public_schema_name()):
                numbers = frozenset(Tenant.objects.values_list("number", flat=True))
            self._numbers, self._numbers_loaded_at = numbers, now
        return self._numbers

    def _load(self, number: int) -> _BrandKeys:
        secrets = code_keys.load_secrets(number)
        keys = {row.version: code_format.CodeKey.derive(row.secret, number, row.version) for row in secrets}
        live = [row.version for row in secrets if not row.retired]
        brand = _BrandKeys(keys=keys, current=max(live) if live else None, loaded_at=time.monotonic())
        with self._lock:
            self._brands[number] = brand
            for key in keys.values():
                self._by_prefix[key._prefix] = key
        return brand

    def key(self, number: int, version: int) -> code_format.CodeKey | None:
        """The key of `number`'s `version`, or None if no such brand or version exists."""
        brand = self._brands.get(number)
        if brand is not None:
            found = brand.keys.get(version)
            if found is not None:
                return found
            if time.monotonic() - brand.loaded_at < settings.KEYRING_RETRY_SECONDS:
                return None
        if number not in self._known_numbers():
            return None
        return self._load(number).keys.get(version)

    def current_key(self, number: int) -> code_format.CodeKey:
        """The key new batches of brand `number` are made with (always read fresh: rotation applies at once)."""
        brand = self._load(number)
        if brand.current is None:
            raise LookupError(f"brand {number} has no live code key")
        return brand.keys[brand.current]


keyring = Keyring()
_DECODE = code_format._DECODE
_PREFIX_SHIFT = code_format.SEALED_BITS + code_format.TAG_BITS


def check(text: str, *, tenant_number: int | None = None) -> code_format.Code | None:
    """The code `text` stands for, or None if it is malformed, forged or (with `tenant_number`)
    another brand's. No query for a forged code once the brand numbers are loaded; none at all
    for a genuine one once its brand's keys are. No exception on the way: this is the hot path.
    """
    # code_format.parse, inlined: this function is the whole cost of rejecting a forged code.
    try:
        raw = text.encode("ascii")
    except (UnicodeEncodeError, AttributeError):
        return None
    digits = raw.translate(_DECODE)
    if len(raw) != code_format.CODE_LENGTH or b"!" in digits:
        return None
    value = int(digits, 32)
    prefix = value >> _PREFIX_SHIFT
    key = keyring._by_prefix.get(prefix)
    if key is None:
        number, version = prefix >> code_format.VERSION_BITS, prefix & code_format.MAX_KEY_VERSION
        if tenant_number is not None and number != tenant_number:
            return None
        key = keyring.key(number, version)
        if key is None:
            return None
    elif tenant_number is not None and key.tenant_number != tenant_number:
        return None
    return code_format.check(key, value, raw)


def verify(text: str, *, tenant_number: int | None = None) -> code_format.Code:
    """As `check`, raising InvalidCode instead of returning None."""
    code = check(text, tenant_number=tenant_number)
    if code is None:
        raise code_format.InvalidCode("not a genuine code")
    return code
