"""The bottle-code format: 24 Crockford base32 characters, derived from a key, never stored.

A code carries 120 bits, most significant first:

    tenant number (16) | key version (4) | sealed kind and serial (36) | tag (64)

- The tenant number and key version are in clear: a platform host routes a code to its brand and
  picks the key without a database query.
- tag = first 64 bits of AES-128(K_tag, tenant ‖ version ‖ kind ‖ "JMT1" ‖ serial): a pseudo-random
  function of everything the code stands for. A guessed or altered code passes with chance 2^-64.
- The kind (2 bits) and serial (34 bits) are sealed: XOR-ed with 36 bits of
  AES-128(K_mask, tag ‖ tenant ‖ version ‖ "SEAL1"). This is the SIV construction (the tag is the
  IV): serials, and so production volumes and the neighbours of a code, cannot be read or
  enumerated from caps. Verification unseals, recomputes the tag and compares in constant time.

K_tag and K_mask are derived with HKDF-SHA256 from the brand's secret for that key version. AES is
used only as a pseudo-random function through `cryptography`; nothing here is a home-made cipher.

Each 120-bit value has exactly one canonical string (24 × 5 bits, no padding). Decoding accepts
lower case and Crockford's look-alikes (I, L → 1; O → 0) and rejects everything else, U included.

Bulk generation works on numpy arrays: the tags of consecutive serials are one AES-CTR keystream
(block i of CTR is AES(K, IV + i), and the serial is the low half of the block), the seals are one
AES-ECB call over a buffer, and base32 is shifts and a table lookup. No Python runs per code.
"""

from __future__ import annotations

import hmac
import threading
from collections.abc import Mapping
from enum import IntEnum
from typing import Any, NamedTuple

import numpy as np
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"  # Crockford base32
CODE_LENGTH = 24
TENANT_BITS = 16
VERSION_BITS = 4
KIND_BITS = 2
SERIAL_BITS = 34
TAG_BITS = 64
SEALED_BITS = KIND_BITS + SERIAL_BITS

MAX_TENANT_NUMBER = (1 << TENANT_BITS) - 1
MAX_KEY_VERSION = (1 << VERSION_BITS) - 1
MAX_SERIAL = (1 << SERIAL_BITS) - 1
SECRET_BYTES = 32

_TAG_LABEL = b"JMT1"
_SEAL_LABEL = b"SEAL1"
_SEALED_MASK = (1 << SEALED_BITS) - 1
_TAG_MASK = (1 << TAG_BITS) - 1
_PREFIX_SHIFT = SEALED_BITS + TAG_BITS  # above it: brand number and key version, in clear
_SEAL_SHIFT = 128 - SEALED_BITS  # the mask is the first SEALED_BITS bits of the seal block


class Kind(IntEnum):
    """What a code is printed on. Inner and outer codes of one bottle share its serial."""

    INNER = 0  # 盖内码: under the cap, seen once the bottle is opened; the reward claim
    OUTER = 1  # 盖外码: visible on the cap or label; anyone checks authenticity with it
    CASE = 2  # 箱码
    PALLET = 3  # 托盘码

    @property
    def letter(self) -> str:
        return "IOCP"[self.value]


class InvalidCode(ValueError):
    """Not a code of this format, or not one of ours (forged, altered, unknown key)."""


# --- keys ------------------------------------------------------------------------------------


class CodeKey:
    """One brand's key of one version, ready to sign and verify. Holds no database state."""

    __slots__ = (
        "_local",
        "_prefix",
        "_seal_suffix",
        "_tag_prefixes",
        "seal_key",
        "tag_key",
        "tenant_number",
        "version",
    )

    def __init__(self, tenant_number: int, version: int, tag_key: bytes, seal_key: bytes) -> None:
        if not 1 <= tenant_number <= MAX_TENANT_NUMBER:
            raise ValueError(f"tenant number must be 1..{MAX_TENANT_NUMBER}")
        if not 1 <= version <= MAX_KEY_VERSION:
            raise ValueError(f"key version must be 1..{MAX_KEY_VERSION}")
        self.tenant_number = tenant_number
        self.version = version
        self.tag_key = tag_key
        self.seal_key = seal_key
        # The clear top 20 bits of every code of this key.
        self._prefix = (tenant_number << VERSION_BITS) | version
        head = tenant_number.to_bytes(2, "big")
        # Tag block: tenant ‖ version ‖ kind ‖ label (8 bytes), then the serial (8 bytes).
        self._tag_prefixes = tuple(head + bytes((version, kind)) + _TAG_LABEL for kind in range(4))
        # Seal block: the tag (8 bytes), then tenant ‖ version ‖ label (8 bytes).
        self._seal_suffix = head + bytes((version,)) + _SEAL_LABEL
        self._local = threading.local()

    def __repr__(self) -> str:
        return f"CodeKey(tenant_number={self.tenant_number}, version={self.version})"

    @classmethod
    def derive(cls, secret: bytes, tenant_number: int, version: int) -> CodeKey:
        """The signing keys of `secret` (the brand's random 32 bytes for this version)."""
        if len(secret) != SECRET_BYTES:
            raise ValueError("a code secret is 32 bytes")
        info = b"jiuma-code|%d|%d" % (tenant_number, version)
        material = HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=info).derive(secret)
        return cls(tenant_number, version, material[:16], material[16:])

    def _encryptors(self) -> tuple[Any, Any]:
        # One pair of ECB encryptors per thread: a cipher context is not shared between threads,
        # and building one per call would double the cost of a verification.
        pair: tuple[Any, Any] | None = getattr(self._local, "pair", None)
        if pair is None:
            pair = (
                Cipher(algorithms.AES(self.tag_key), modes.ECB()).encryptor(),  # noqa: S305 (a PRF, one block)
                Cipher(algorithms.AES(self.seal_key), modes.ECB()).encryptor(),  # noqa: S305
            )
            self._local.pair = pair
        return pair

    def tag_bytes(self, kind: int, serial: int) -> bytes:
        return self._encryptors()[0].update(self._tag_prefixes[kind] + serial.to_bytes(8, "big"))[:8]

    def seal_mask(self, tag: bytes) -> int:
        return int.from_bytes(self._encryptors()[1].update(tag + self._seal_suffix)) >> _SEAL_SHIFT


# --- one code --------------------------------------------------------------------------------


class Code(NamedTuple):
    tenant_number: int
    version: int
    kind: Kind
    serial: int
    raw: bytes  # as scanned (ASCII; may use lower case or look-alikes)

    @property
    def text(self) -> str:
        """The canonical string (what was printed)."""
        return self.raw.translate(_CANONICAL).decode("ascii")


def _build_tables() -> tuple[bytes, bytes]:
    # _DECODE maps each accepted byte to its digit in int(x, 32)'s alphabet (0-9a-v) and every
    # other byte to "!", which int() refuses (as it must refuse "_", spaces and signs, which it
    # would otherwise accept). _CANONICAL maps accepted bytes to the canonical character.
    decode = bytearray(b"!" * 256)
    canonical = bytearray(b"!" * 256)
    digits = b"0123456789abcdefghijklmnopqrstuv"
    accepted = [(char, char) for char in ALPHABET]
    accepted += [(char.lower(), char) for char in ALPHABET if char.isalpha()]
    accepted += [("I", "1"), ("i", "1"), ("L", "1"), ("l", "1"), ("O", "0"), ("o", "0")]
    for char, canon in accepted:
        decode[ord(char)] = digits[ALPHABET.index(canon)]
        canonical[ord(char)] = ord(canon)
    return bytes(decode), bytes(canonical)


_DECODE, _CANONICAL = _build_tables()


def encode_value(value: int) -> str:
    chars = []
    for _ in range(CODE_LENGTH):
        chars.append(ALPHABET[value & 31])
        value >>= 5
    return "".join(reversed(chars))


def parse(text: str) -> tuple[int, bytes] | None:
    """(120-bit value, ASCII bytes) of a code string, or None if it is not one (aliases accepted)."""
    # Every byte outside the accepted set decodes to "!", which int() refuses; so do non-ASCII
    # characters (their UTF-8 bytes are >= 0x80). A well-formed string raises nothing.
    try:
        if len(text) != CODE_LENGTH:  # before any work on an arbitrarily long string
            return None
        raw = text.encode()
        value = int(raw.translate(_DECODE), 32)
    except (ValueError, TypeError, AttributeError):  # UnicodeEncodeError (lone surrogates) is a ValueError
        return None
    return value, raw


def _decode(text: str) -> tuple[int, bytes]:
    parsed = parse(text)
    if parsed is None:
        raise InvalidCode("malformed")
    return parsed


def from_scan(text: str) -> str:
    """The code in what a scanner typed: the code itself or its scan URL (…/C/<code>)."""
    text = text.strip()
    return text.rsplit("/", 1)[-1] if "/" in text else text


def decode_value(text: str) -> int:
    """The 120-bit value of a code string (aliases accepted). Raises InvalidCode."""
    return _decode(text)[0]


def canonical(text: str) -> str:
    """The one canonical spelling of a code string. Raises InvalidCode."""
    return _decode(text)[1].translate(_CANONICAL).decode("ascii")


def split(value: int) -> tuple[int, int, int, int]:
    """(tenant number, key version, sealed bits, tag) of a 120-bit value."""
    tag = value & _TAG_MASK
    sealed = (value >> TAG_BITS) & _SEALED_MASK
    version = (value >> (TAG_BITS + SEALED_BITS)) & MAX_KEY_VERSION
    tenant = value >> (TAG_BITS + SEALED_BITS + VERSION_BITS)
    return tenant, version, sealed, tag


def brand_number(value: int) -> int:
    """The brand number (in clear) of a parsed 120-bit code value."""
    return value >> (VERSION_BITS + SEALED_BITS + TAG_BITS)


def peek_tenant(text: str) -> tuple[int, int]:
    """(tenant number, key version) of a code string, unverified: to pick the key. Raises InvalidCode."""
    tenant, version, _, _ = split(decode_value(text))
    return tenant, version


def make(key: CodeKey, kind: Kind, serial: int) -> str:
    """The canonical string of one code (the bulk path is `generate`)."""
    if not 0 <= serial <= MAX_SERIAL:
        raise ValueError("serial out of range")
    tag = key.tag_bytes(kind, serial)
    sealed = ((int(kind) << SERIAL_BITS) | serial) ^ key.seal_mask(tag)
    value = (((key._prefix << SEALED_BITS) | sealed) << TAG_BITS) | int.from_bytes(tag, "big")
    return encode_value(value)


def check_text(
    text: str,
    keys: Mapping[int, CodeKey | None],
    tenant_number: int | None = None,
    *,
    _from_bytes: Any = int.from_bytes,
    _equal: Any = hmac.compare_digest,
    _new: Any = tuple.__new__,
) -> Code | None:
    """The code `text` stands for if one of `keys` signed it, else None (malformed, forged, no such
    key, or with `tenant_number` another brand's). `keys` maps a code's clear 20-bit prefix
    (brand number and key version) to its key; a missing prefix is looked up as `keys[prefix]`,
    so a mapping with `__missing__` can load keys lazily and answer None for unknown ones.

    The hot path of every scan: a table decode, one dictionary lookup, two AES blocks and a few
    int operations; no exception for a well-formed string. (Builtins are bound as defaults and
    int/bytes conversions use their big-endian defaults: at about 2 µs per code, a global lookup
    or a parsed keyword argument is a visible cost.)
    """
    # parse(), inlined. Every byte outside the accepted set decodes to "!", which int() refuses.
    try:
        if len(text) != CODE_LENGTH:
            return None
        raw = text.encode()
        value = int(raw.translate(_DECODE), 32)
    except (ValueError, TypeError, AttributeError):
        return None
    key = keys[value >> _PREFIX_SHIFT]
    if key is None or (tenant_number is not None and key.tenant_number != tenant_number):
        return None
    tag_cipher, seal_cipher = getattr(key._local, "pair", None) or key._encryptors()
    tag = (value & _TAG_MASK).to_bytes(8)
    mask = _from_bytes(seal_cipher.update(tag + key._seal_suffix)) >> _SEAL_SHIFT
    plain = ((value >> TAG_BITS) & _SEALED_MASK) ^ mask
    kind = plain >> SERIAL_BITS
    serial = plain & MAX_SERIAL
    if not _equal(tag_cipher.update(key._tag_prefixes[kind] + serial.to_bytes(8))[:8], tag):
        return None
    # tuple.__new__ directly: a NamedTuple's generated __new__ costs a fifth of this function.
    return _new(Code, (key.tenant_number, key.version, _KINDS[kind], serial, raw))


class _OneKey(dict[int, "CodeKey | None"]):
    def __missing__(self, prefix: int) -> None:
        return None


def verify(key: CodeKey, text: str) -> Code:
    """The code `text` stands for, if `key` signed it. Raises InvalidCode otherwise."""
    code = check_text(text, _OneKey({key._prefix: key}))
    if code is None:
        raise InvalidCode("not a code signed by this key")
    return code


_KINDS = tuple(Kind)
_new_tuple = tuple.__new__


# --- many codes --------------------------------------------------------------------------------

_ALPHABET_ARRAY = np.frombuffer(ALPHABET.encode(), dtype=np.uint8)


def generate(key: CodeKey, kind: Kind, first_serial: int, count: int) -> np.ndarray:
    """Codes of `count` consecutive serials as a (count, 24) array of ASCII bytes.

    Byte-identical to `make` for every serial (the tests check it).
    """
    if count <= 0:
        return np.empty((0, CODE_LENGTH), dtype=np.uint8)
    if first_serial < 0 or first_serial + count - 1 > MAX_SERIAL:
        raise ValueError("serial out of range")
    # Tags: AES-CTR keystream from the block of the first serial. The counter adds 1 per block to
    # the whole 128-bit block; serials stay below 2^34, so it never carries into the prefix.
    iv = key._tag_prefixes[int(kind)] + first_serial.to_bytes(8, "big")
    ctr = Cipher(algorithms.AES(key.tag_key), modes.CTR(iv)).encryptor()
    stream = np.frombuffer(ctr.update(bytes(16 * count)), dtype=np.uint8).reshape(count, 16)
    tag_bytes = np.ascontiguousarray(stream[:, :8])
    tags = tag_bytes.view(">u8").reshape(count).astype(np.uint64)
    # Seals: one ECB call over (tag ‖ suffix) blocks.
    blocks = np.empty((count, 16), dtype=np.uint8)
    blocks[:, :8] = tag_bytes
    blocks[:, 8:] = np.frombuffer(key._seal_suffix, dtype=np.uint8)
    sealed_stream = _ecb(key.seal_key, blocks)
    mask_bytes = np.frombuffer(sealed_stream, dtype=np.uint8).reshape(count, 16)[:, :5]
    mask = np.zeros(count, dtype=np.uint64)
    for column in range(5):
        mask = (mask << np.uint64(8)) | mask_bytes[:, column].astype(np.uint64)
    mask >>= np.uint64(40 - SEALED_BITS)
    serials = np.arange(first_serial, first_serial + count, dtype=np.uint64)
    sealed = ((np.uint64(int(kind)) << np.uint64(SERIAL_BITS)) | serials) ^ mask
    head = (np.uint64(key._prefix) << np.uint64(SEALED_BITS)) | sealed
    return _to_chars(head, tags)


def _ecb(key: bytes, blocks: np.ndarray) -> bytes:
    encryptor = Cipher(algorithms.AES(key), modes.ECB()).encryptor()  # noqa: S305 (a PRF over independent blocks)
    return encryptor.update(blocks.tobytes()) + encryptor.finalize()


# Two characters per 10-bit group: entry v holds ALPHABET[v >> 5] then ALPHABET[v & 31] in memory.
_PAIRS = (
    _ALPHABET_ARRAY[np.arange(1024) >> 5].astype("<u2") | (_ALPHABET_ARRAY[np.arange(1024) & 31].astype("<u2") << 8)
).astype("<u2")


def _to_chars(head: np.ndarray, tags: np.ndarray) -> np.ndarray:
    """Base32 of the 120-bit values head (56 bits) ‖ tags (64 bits), most significant char first.

    Works on 10-bit groups (12 per code, two characters each): groups 6..11 lie in the tag, group
    5 takes the tag's top 4 bits and head's low 6 bits, groups 0..4 lie in head.
    """
    count = head.shape[0]
    pairs = np.empty((count, CODE_LENGTH // 2), dtype="<u2")
    mask10 = np.uint64(1023)
    scratch = np.empty(count, dtype=np.uint64)
    for group in range(6, 12):
        np.right_shift(tags, np.uint64(10 * (11 - group)), out=scratch)
        np.bitwise_and(scratch, mask10, out=scratch)
        pairs[:, group] = _PAIRS[scratch]
    np.left_shift(head & np.uint64(63), np.uint64(4), out=scratch)
    scratch |= tags >> np.uint64(60)
    pairs[:, 5] = _PAIRS[scratch]
    for group in range(5):
        np.right_shift(head, np.uint64(10 * (11 - group) - 64), out=scratch)
        np.bitwise_and(scratch, mask10, out=scratch)
        pairs[:, group] = _PAIRS[scratch]
    return pairs.view(np.uint8).reshape(count, CODE_LENGTH)


_DIGITS = np.full(256, 255, dtype=np.uint8)
for _byte in range(256):
    if _DECODE[_byte] != ord("!"):
        _DIGITS[_byte] = int(chr(_DECODE[_byte]), 32)


def verify_many(key: CodeKey, codes: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Verify a (n, 24) array of ASCII code bytes at once (packing-line uploads, audits).

    Returns (valid, kinds, serials): a boolean array and, where valid, each code's kind and
    serial. Accepts exactly what `verify` accepts (the tests check they agree).
    """
    count = codes.shape[0]
    digits = _DIGITS[codes]
    valid = (digits != 255).all(axis=1)
    digits = np.where(digits == 255, 0, digits).astype(np.uint64)
    head = np.zeros(count, dtype=np.uint64)  # 56 bits: characters 0..10 and the top bit of 11
    for position in range(11):
        head = (head << np.uint64(5)) | digits[:, position]
    head = (head << np.uint64(1)) | (digits[:, 11] >> np.uint64(4))
    tags = digits[:, 11] & np.uint64(15)
    for position in range(12, CODE_LENGTH):
        tags = (tags << np.uint64(5)) | digits[:, position]
    valid &= (head >> np.uint64(SEALED_BITS)) == np.uint64(key._prefix)
    tag_bytes = tags.astype(">u8").view(np.uint8).reshape(count, 8)
    blocks = np.empty((count, 16), dtype=np.uint8)
    blocks[:, :8] = tag_bytes
    blocks[:, 8:] = np.frombuffer(key._seal_suffix, dtype=np.uint8)
    mask_bytes = np.frombuffer(_ecb(key.seal_key, blocks), dtype=np.uint8).reshape(count, 16)[:, :5]
    mask = np.zeros(count, dtype=np.uint64)
    for column in range(5):
        mask = (mask << np.uint64(8)) | mask_bytes[:, column].astype(np.uint64)
    plain = (head & np.uint64(_SEALED_MASK)) ^ (mask >> np.uint64(40 - SEALED_BITS))
    kinds = (plain >> np.uint64(SERIAL_BITS)).astype(np.uint8)
    serials = plain & np.uint64(MAX_SERIAL)
    prefixes = np.frombuffer(b"".join(key._tag_prefixes), dtype=np.uint8).reshape(4, 8)
    blocks[:, :8] = prefixes[kinds]
    blocks[:, 8:] = serials.astype(">u8").view(np.uint8).reshape(count, 8)
    expected = np.frombuffer(_ecb(key.tag_key, blocks), dtype=np.uint8).reshape(count, 16)[:, :8]
    valid &= (expected == tag_bytes).all(axis=1)
    return valid, kinds, serials.astype(np.int64)


def as_array(texts: list[str]) -> np.ndarray:
    """Code strings as a (n, 24) byte array for `verify_many`; wrong lengths become invalid rows."""
    invalid = b"!" * CODE_LENGTH
    encoded = (text.encode("ascii", "replace") for text in texts)
    fixed = [raw if len(raw) == CODE_LENGTH else invalid for raw in encoded]
    return np.frombuffer(b"".join(fixed), dtype=np.uint8).reshape(len(texts), CODE_LENGTH)
