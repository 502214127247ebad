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


class _KeysByPrefix(dict[int, "code_format.CodeKey | None"]):
    """(number << 4 | version) -> key: the one dictionary lookup of a warm verification. A prefix
    not in it is looked up in the keyring (loading the brand's keys if it exists), but only keys
    are stored: unknown prefixes (forgeries) never grow it."""

    def __init__(self, ring: Keyring) -> None:
        super().__init__()
        self._ring = ring

    def __missing__(self, prefix: int) -> code_format.CodeKey | None:
        return self._ring.key(prefix >> code_format.VERSION_BITS, prefix & code_format.MAX_KEY_VERSION)


@dataclass
class Keyring:
    _by_prefix: _KeysByPrefix = field(init=False)
    _numbers: frozenset[int] = frozenset()
    _numbers_loaded_at: float = float("-inf")
    _brands: dict[int, _BrandKeys] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def __post_init__(self) -> None:
        self._by_prefix = _KeysByPrefix(self)

    def clear(self) -> None:
        with self._lock:
            self._numbers = frozenset()
            self._numbers_loaded_at = float("-inf")
            self._brands = {}
            self._by_prefix.clear()

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
_by_prefix = keyring._by_prefix
_check_text = code_format.check_text


def check(text: str, *, tenant_number: int | None = None) -> code_format.Code | None:
    """The code `text` stands for, or None if it is malformed, forged or (with `tenant_number`)
    another brand's. No query for a forged code once the brand numbers are loaded; none at all
    for a genuine one once its brand's keys are. No exception is raised for a well-formed string:
    this is the hot path.
    """
    return _check_text(text, _by_prefix, tenant_number)


def verify(text: str, *, tenant_number: int | None = None) -> code_format.Code:
    """As `check`, raising InvalidCode instead of returning None."""
    code = check(text, tenant_number=tenant_number)
    if code is None:
        raise code_format.InvalidCode("not a genuine code")
    return code
