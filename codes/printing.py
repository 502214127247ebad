"""Printer files: the codes of a batch as CSV lines, built in chunks with numpy.

One file per kind, one line per code, every line of a file the same length:

    serial,kind,url                                   (inner and outer codes)
    serial,kind,url,first_bottle,last_bottle          (case codes, sequential packing)
    serial,kind,url,first_case,last_case              (pallet codes)

Serials are zero-padded to 11 digits (2^34 fits), so a line's offset is its index times the line
length and printers' variable-data software can seek. Lines are assembled as a byte matrix (no
Python runs per code); ~50,000 codes per chunk keeps the working set in cache.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import BinaryIO

import numpy as np

from codes import format as code_format

SERIAL_DIGITS = 11
CHUNK = 50_000
# ASCII of 0000..9999: a serial's 11 digits are 3 + 4 + 4 of these (three divisions, not eleven).
_QUADS = np.frombuffer("".join(f"{number:04d}" for number in range(10_000)).encode(), dtype=np.uint8).reshape(10_000, 4)
_TEN_THOUSAND = np.uint64(10_000)


@dataclass(frozen=True)
class Children:
    """What a case or pallet holds, when packing is sequential: `per_parent` consecutive serials
    of the child group starting at `first_serial` for the first parent."""

    first_serial: int
    per_parent: int


def header(kind: code_format.Kind, children: Children | None) -> bytes:
    columns = ["serial", "kind", "url"]
    if children is not None:
        first, last = ("first_bottle", "last_bottle") if kind == code_format.Kind.CASE else ("first_case", "last_case")
        columns += [first, last]
    return (",".join(columns) + "\n").encode()


def _digits(values: np.ndarray) -> np.ndarray:
    """(n, 11) ASCII digits of serials below 10^11 (2^34 is 17,179,869,184)."""
    out = np.empty((values.shape[0], SERIAL_DIGITS), dtype=np.uint8)
    rest, low = np.divmod(values, _TEN_THOUSAND)
    high, middle = np.divmod(rest, _TEN_THOUSAND)
    out[:, 0:3] = _QUADS[high][:, 1:]
    out[:, 3:7] = _QUADS[middle]
    out[:, 7:11] = _QUADS[low]
    return out


def lines(
    key: code_format.CodeKey,
    kind: code_format.Kind,
    first_serial: int,
    count: int,
    url_prefix: str,
    children: Children | None = None,
    chunk: int = CHUNK,
) -> Iterator[bytes]:
    """The file's lines (without its header) in chunks of bytes."""
    prefix = url_prefix.encode("ascii")
    letter = kind.letter.encode()
    # Template of one line: serial, kind letter, URL prefix, code, [first, last], newline.
    pieces = [b"0" * SERIAL_DIGITS, b",", letter, b",", prefix, b"0" * code_format.CODE_LENGTH]
    if children is not None:
        pieces += [b",", b"0" * SERIAL_DIGITS, b",", b"0" * SERIAL_DIGITS]
    pieces.append(b"\n")
    template = np.frombuffer(b"".join(pieces), dtype=np.uint8)
    width = template.shape[0]
    code_at = SERIAL_DIGITS + 3 + len(prefix)
    for start in range(0, count, chunk):
        n = min(chunk, count - start)
        out = np.empty((n, width), dtype=np.uint8)
        out[:] = template
        serials = np.arange(first_serial + start, first_serial + start + n, dtype=np.uint64)
        out[:, :SERIAL_DIGITS] = _digits(serials)
        out[:, code_at : code_at + code_format.CODE_LENGTH] = code_format.generate(key, kind, first_serial + start, n)
        if children is not None:
            index = np.arange(start, start + n, dtype=np.uint64)
            first = np.uint64(children.first_serial) + index * np.uint64(children.per_parent)
            at = code_at + code_format.CODE_LENGTH + 1
            out[:, at : at + SERIAL_DIGITS] = _digits(first)
            at += SERIAL_DIGITS + 1
            out[:, at : at + SERIAL_DIGITS] = _digits(first + np.uint64(children.per_parent - 1))
        yield out.tobytes()


@dataclass(frozen=True)
class WrittenFile:
    name: str
    kind: code_format.Kind
    codes: int
    bytes: int
    sha256: str


def write_code_file(
    out: BinaryIO,
    name: str,
    key: code_format.CodeKey,
    kind: code_format.Kind,
    first_serial: int,
    count: int,
    url_prefix: str,
    children: Children | None = None,
    on_chunk: Callable[[int], None] | None = None,
) -> WrittenFile:
    """Write one code file to `out`, returning its size and SHA-256 (for the manifest)."""
    head = header(kind, children)
    out.write(head)
    digest = hashlib.sha256(head)
    size = len(head)
    done = 0
    for block in lines(key, kind, first_serial, count, url_prefix, children):
        out.write(block)
        digest.update(block)
        size += len(block)
        done = min(count, done + CHUNK)
        if on_chunk is not None:
            on_chunk(done)
    return WrittenFile(name=name, kind=kind, codes=count, bytes=size, sha256=digest.hexdigest())
