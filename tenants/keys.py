"""Envelope encryption of the brands' code secrets under a platform master key.

Each brand has one random 32-byte secret per code-key version (tenants.models.CodeSecret); codes
are derived from it (codes.format). The secret is stored only wrapped: AES-256-GCM under a master
key, with the brand's number and the version as associated data, so a wrapped secret copied to
another brand's row or version does not unwrap.

Master keys come from a `MasterKeyRing`. The default ring reads them from the environment:

    JIUMA_MASTER_KEYS="k2026:<base64 of 32 bytes>,k2025:<base64 of 32 bytes>"

The first is used to wrap; all of them unwrap (so a master key is rotated by putting a new one
first and re-wrapping with `manage.py rewrap_code_secrets`, then dropping the old one). A cloud KMS
plugs in as another ring class named by JIUMA_MASTER_KEY_RING (wrap/unwrap are its two calls);
the secrets then never meet a master key in this process.

In development with no keys configured, a master key is generated once into .local/master.key.
Production refuses to start without configured keys.
"""

from __future__ import annotations

import base64
import binascii
import functools
import os
import secrets
from pathlib import Path
from typing import Protocol

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.utils.module_loading import import_string

SECRET_BYTES = 32
_NONCE_BYTES = 12
_FORMAT = b"\x01"  # first byte of every wrapped blob: the layout version


class KeyUnavailable(Exception):
    """A wrapped secret cannot be unwrapped: unknown master key id, or the blob was tampered with."""


class MasterKeyRing(Protocol):
    def current_key_id(self) -> str: ...

    def wrap(self, plaintext: bytes, context: bytes) -> tuple[str, bytes]:
        """(key id, blob) of `plaintext` bound to `context`."""
        ...

    def unwrap(self, key_id: str, blob: bytes, context: bytes) -> bytes: ...


class LocalMasterKeyRing:
    """Master keys held in this process (from the environment or the development key file)."""

    def __init__(self, keys: list[tuple[str, bytes]]) -> None:
        if not keys:
            raise ImproperlyConfigured("no master key configured (JIUMA_MASTER_KEYS)")
        for key_id, key in keys:
            if len(key) != 32:
                raise ImproperlyConfigured(f"master key {key_id!r} must be 32 bytes")
        self._current = keys[0][0]
        self._keys = {key_id: AESGCM(key) for key_id, key in keys}

    @classmethod
    def parse(cls, spec: str) -> LocalMasterKeyRing:
        """From "id:base64,id:base64" (the first wraps)."""
        keys = []
        for item in filter(None, (part.strip() for part in spec.split(","))):
            key_id, sep, encoded = item.partition(":")
            if not sep or not key_id:
                raise ImproperlyConfigured("JIUMA_MASTER_KEYS entries look like id:base64")
            try:
                keys.append((key_id, base64.b64decode(encoded, validate=True)))
            except binascii.Error as exc:
                raise ImproperlyConfigured(f"master key {key_id!r} is not valid base64") from exc
        return cls(keys)

    def current_key_id(self) -> str:
        return self._current

    def wrap(self, plaintext: bytes, context: bytes) -> tuple[str, bytes]:
        nonce = os.urandom(_NONCE_BYTES)
        sealed = self._keys[self._current].encrypt(nonce, plaintext, _FORMAT + context)
        return self._current, _FORMAT + nonce + sealed

    def unwrap(self, key_id: str, blob: bytes, context: bytes) -> bytes:
        aead = self._keys.get(key_id)
        if aead is None:
            raise KeyUnavailable(f"master key {key_id!r} is not configured")
        if not blob.startswith(_FORMAT) or len(blob) < 1 + _NONCE_BYTES + 16:
            raise KeyUnavailable("unknown wrapped-key layout")
        nonce, sealed = blob[1 : 1 + _NONCE_BYTES], blob[1 + _NONCE_BYTES :]
        try:
            return aead.decrypt(nonce, sealed, _FORMAT + context)
        except InvalidTag as exc:
            raise KeyUnavailable("wrapped secret does not match its brand, version or master key") from exc


def _development_key_file() -> Path:
    return Path(settings.JIUMA_DEV_MASTER_KEY_FILE)


def _development_ring() -> LocalMasterKeyRing:
    path = _development_key_file()
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        encoded = base64.b64encode(secrets.token_bytes(32)).decode()
        # Exclusive create: two processes starting at once keep the first one's key.
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:
            pass
        else:
            with os.fdopen(fd, "w") as fh:
                fh.write(f"dev:{encoded}\n")
    return LocalMasterKeyRing.parse(path.read_text().strip())


@functools.cache
def master_key_ring() -> MasterKeyRing:
    """The configured ring, built once per process."""
    dotted = settings.JIUMA_MASTER_KEY_RING
    if dotted:
        ring: MasterKeyRing = import_string(dotted)()
        return ring
    if settings.JIUMA_MASTER_KEYS:
        return LocalMasterKeyRing.parse(settings.JIUMA_MASTER_KEYS)
    if settings.JIUMA_ENV == "production":
        raise ImproperlyConfigured("production needs JIUMA_MASTER_KEYS or JIUMA_MASTER_KEY_RING")
    return _development_ring()


def secret_context(tenant_number: int, version: int) -> bytes:
    return b"jiuma-code-secret|tenant:%d|version:%d" % (tenant_number, version)


def new_secret() -> bytes:
    return secrets.token_bytes(SECRET_BYTES)


def field_context(tenant_number: int, field: str, object_id: int | str) -> bytes:
    """The context a wrapped personal field is bound to: a blob copied to another brand, another
    row or another field does not unwrap."""
    return b"jiuma-field|tenant:%d|%s|%s" % (tenant_number, field.encode(), str(object_id).encode())
