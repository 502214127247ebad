"""Printer files: the codes of a batch as CSV lines, built in chunks with numpy.

One file per kind, one line per code, every line of a file the same length:

    serial,kind,url                                   (inner and outer codes)
    serial,kind,url,first_bottle,last_bottle          (case codes, sequential packing)
    serial,kind,url,first_case,last_case              (pallet codes)

Serials are zero-padded to 11 digits (2^34 fits), so a line's offset is its index times the line
length and printers' variable-data software can seek, and a file's size is known before it is
written. Lines are assembled in a byte matrix (no Python runs per code): each chunk buffer holds the
line template (kind letter, commas, URL prefix, newline) once, and a chunk only overwrites the
varying columns, through typed strided views: the codes as 24-byte items, a serial as an 8-byte
word of its constant leading digits plus a 4-byte word of its last four (consecutive serials take
consecutive entries of a table of 0000..9999).

`write_code_files` runs the package's pipeline on threads (numpy, OpenSSL and hashlib release the
GIL on large buffers, so they overlap on the cores): two threads build chunks (code generation is
numpy and AES), the calling thread hands them over in order to a thread computing each file's
SHA-256 for the manifest and to the archive, whose own threads encrypt, authenticate, hash and
write (codes.zipcrypt). A ring of chunk buffers bounds the memory (~20 MB). The work is CPU-bound
(10M codes: ~0.85 s generating, ~0.15 s assembling lines, ~0.9 s SHA-256 of the files and of the
zip, ~0.4 s HMAC-SHA1, ~0.25 s AES-CTR on one core), so the threads keep both cores busy.
Threads, not processes: this runs inside a Celery prefork child, which cannot start processes.
"""

from __future__ import annotations

import hashlib
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np
import numpy.typing as npt

from codes import format as code_format
from codes.zipcrypt import BytesLike, Lane

SERIAL_DIGITS = 11
CHUNK = 50_000  # codes per chunk (~3 MB of lines): fewer, larger hand-overs between threads
SLOTS = 6  # chunk buffers in flight
BUILDERS = 2  # threads building chunks
# ASCII of 0000..9999 as little-endian 4-byte words: what a serial's last 4 digits look like in memory.
_QUAD_WORDS = np.frombuffer("".join(f"{number:04d}" for number in range(10_000)).encode(), dtype="<u4")
_TEN_THOUSAND = np.uint64(10_000)


@dataclass(frozen=True)
class Children:
    """What a case or pallet holds, when packing is sequential: `per_parent` consecutive serials
    of the child group starting at `first_serial` for the first parent."""

    first_serial: int
    per_parent: int


@dataclass(frozen=True)
class CodeFile:
    """One printer file: `count` codes of `kind` from `first_serial`."""

    name: str
    kind: code_format.Kind
    first_serial: int
    count: int
    children: Children | None = None


def header(kind: code_format.Kind, children: Children | None) -> bytes:
    columns = ["serial", "kind", "url"]
    if children is not None:
        first, last = ("first_bottle", "last_bottle") if kind == code_format.Kind.CASE else ("first_case", "last_case")
        columns += [first, last]
    return (",".join(columns) + "\n").encode()


class Layout:
    """Where each column of a file's fixed-width lines lies."""

    def __init__(self, kind: code_format.Kind, url_prefix: str, children: Children | None) -> None:
        prefix = url_prefix.encode("ascii")
        pieces = [b"0" * SERIAL_DIGITS, b",", kind.letter.encode(), b",", prefix, b"0" * code_format.CODE_LENGTH]
        if children is not None:
            pieces += [b",", b"0" * SERIAL_DIGITS, b",", b"0" * SERIAL_DIGITS]
        pieces.append(b"\n")
        self.kind = kind
        self.children = children
        self.header = header(kind, children)
        self.template = np.frombuffer(b"".join(pieces), dtype=np.uint8)
        self.width = self.template.shape[0]
        self.code_at = SERIAL_DIGITS + 3 + len(prefix)
        self.first_at = self.code_at + code_format.CODE_LENGTH + 1
        self.last_at = self.first_at + SERIAL_DIGITS + 1

    def file_size(self, count: int) -> int:
        return len(self.header) + count * self.width


def file_size(kind: code_format.Kind, count: int, url_prefix: str, children: Children | None = None) -> int:
    """Bytes of a printer file of `count` codes (header included)."""
    return Layout(kind, url_prefix, children).file_size(count)


class _Chunk:
    """A buffer of `rows` lines holding the template, with typed views of its varying columns."""

    def __init__(self, layout: Layout, rows: int) -> None:
        self.layout = layout
        self.lines = np.empty((rows, layout.width), dtype=np.uint8)
        self.lines[:] = layout.template
        self.pending: tuple[Future[Any], ...] = ()
        width = layout.width

        def column(dtype: str, offset: int) -> npt.NDArray[Any]:
            return np.ndarray((rows,), dtype=dtype, buffer=self.lines, offset=offset, strides=(width,))

        self.serial_head = column("<u8", 0)  # digits 0..7 (digit 7 is then overwritten)
        self.serial_tail = column("<u4", SERIAL_DIGITS - 4)  # digits 7..10
        self.code = column("V24", layout.code_at)
        if layout.children is not None:
            self.first = self._number_columns(column, layout.first_at)
            self.last = self._number_columns(column, layout.last_at)

    @staticmethod
    def _number_columns(column: Callable[[str, int], npt.NDArray[Any]], at: int) -> tuple[npt.NDArray[Any], ...]:
        # 11 digits as three 4-byte words written in this order: [0..3] [3..6] [7..10].
        return column("<u4", at), column("<u4", at + 3), column("<u4", at + 7)

    def wait(self) -> None:
        """Block until every consumer of the previous contents is done (re-raising a failure)."""
        for future in self.pending:
            future.result()
        self.pending = ()

    def fill(self, key: code_format.CodeKey, first_serial: int, start: int, count: int) -> npt.NDArray[np.uint8]:
        """Lines [start, start + count) of the file whose first serial is `first_serial`."""
        layout = self.layout
        serial = first_serial + start
        _put_consecutive(self.serial_head[:count], self.serial_tail[:count], serial)
        codes = code_format.generate(key, layout.kind, serial, count)
        self.code[:count] = codes.view("V24").reshape(count)
        if layout.children is not None:
            children = layout.children
            index = np.arange(start, start + count, dtype=np.uint64)
            first = np.uint64(children.first_serial) + index * np.uint64(children.per_parent)
            _put_numbers(self.first, first, count)
            _put_numbers(self.last, first + np.uint64(children.per_parent - 1), count)
        return self.lines[:count].reshape(-1)


def _put_consecutive(head: npt.NDArray[Any], tail: npt.NDArray[Any], serial: int) -> None:
    """The 11 digits of serial, serial + 1, ...: within each run of serials sharing their leading 7
    digits, one word broadcast for those and a slice of the table for the last 4."""
    done = 0
    count = head.shape[0]
    while done < count:
        low = (serial + done) % 10_000
        run = min(count - done, 10_000 - low)
        head[done : done + run] = int.from_bytes(f"{serial + done:011d}"[:8].encode(), "little")
        tail[done : done + run] = _QUAD_WORDS[low : low + run]
        done += run


def _put_numbers(columns: tuple[npt.NDArray[Any], ...], values: npt.NDArray[np.uint64], count: int) -> None:
    """The 11 digits of any values below 10^11: 3 + 4 + 4 digits, three table lookups."""
    rest, low = np.divmod(values, _TEN_THOUSAND)
    high, middle = np.divmod(rest, _TEN_THOUSAND)
    top, upper, lower = columns
    top[:count] = _QUAD_WORDS[high * np.uint64(10)]  # "hhh0": its last digit is overwritten next
    upper[:count] = _QUAD_WORDS[middle]
    lower[:count] = _QUAD_WORDS[low]


def _digits(values: npt.NDArray[np.uint64]) -> npt.NDArray[np.uint8]:
    """(n, 11) ASCII digits of values below 10^11 (2^34 is 17,179,869,184)."""
    count = values.shape[0]
    out = np.empty((count, SERIAL_DIGITS), dtype=np.uint8)
    columns = tuple(
        np.ndarray((count,), dtype="<u4", buffer=out, offset=at, strides=(SERIAL_DIGITS,)) for at in (0, 3, 7)
    )
    _put_numbers(columns, values.astype(np.uint64), count)
    return out


def _warm_allocator() -> None:
    """Let the C allocator keep chunk-sized blocks instead of mapping and unmapping them.

    Each chunk's code generation allocates and frees a few hundred kB of numpy temporaries. glibc
    serves blocks above its mmap threshold (128 kB until a larger mapped block is freed) with fresh
    mappings, so every chunk would page-fault its temporaries in again (a quarter of the generation
    time). Freeing one larger block raises the threshold as glibc's own heuristic does on the first
    large free; with another allocator this is one harmless allocation.
    """
    probe = np.empty(8 << 20, dtype=np.uint8)
    del probe


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
    layout = Layout(kind, url_prefix, children)
    buffer = _Chunk(layout, min(chunk, max(count, 1)))
    for start in range(0, count, chunk):
        yield buffer.fill(key, first_serial, start, min(chunk, count - start)).tobytes()


# --- the package pipeline ------------------------------------------------------------------------


class ArchiveEntry(Protocol):
    def write(self, data: BytesLike) -> Future[None]: ...

    def close(self) -> None: ...


class Archive(Protocol):
    def open(self, name: str, size: int) -> ArchiveEntry: ...


@dataclass(frozen=True)
class WrittenFile:
    name: str
    kind: code_format.Kind
    codes: int
    bytes: int
    sha256: str


def write_code_files(
    archive: Archive,
    files: Sequence[CodeFile],
    key: code_format.CodeKey,
    url_prefix: str,
    *,
    on_progress: Callable[[int], None] | None = None,
    chunk: int = CHUNK,
    slots: int = SLOTS,
    builders: int = BUILDERS,
    threaded: bool = True,
) -> list[WrittenFile]:
    """Write each file into `archive` (header and lines), returning their sizes and SHA-256 sums.

    `builders` threads build chunks; this thread hands them, in order, to the hashing thread and to
    the archive. `on_progress(codes done so far, all files together)` is called in this thread.
    """
    if slots < builders + 2:
        raise ValueError("need at least builders + 2 chunk buffers")
    _warm_allocator()
    hashing = Lane("code-file-sha256", threaded)
    building = Lane("code-file-lines", threaded, workers=builders)
    digests: list[Future[str]] = []
    done = 0
    try:
        for spec in files:
            layout = Layout(spec.kind, url_prefix, spec.children)
            entry = archive.open(spec.name, layout.file_size(spec.count))
            digest = hashlib.sha256()
            hashing.submit(digest.update, layout.header)
            entry.write(layout.header)
            rows = min(chunk, max(spec.count, 1))
            ring = [_Chunk(layout, rows) for _ in range(min(slots, -(-spec.count // chunk)))]
            # Chunks being built, oldest first; at most builders + 1, so the ring never reaches one.
            queued: deque[tuple[_Chunk, Future[npt.NDArray[np.uint8]]]] = deque()
            for number, start in enumerate(range(0, spec.count, chunk)):
                buffer = ring[number % len(ring)]
                buffer.wait()
                count = min(chunk, spec.count - start)
                queued.append((buffer, building.submit(buffer.fill, key, spec.first_serial, start, count)))
                while len(queued) > builders or (queued and start + count == spec.count):
                    buffer, built = queued.popleft()
                    data = built.result()
                    buffer.pending = (hashing.submit(digest.update, data), entry.write(data))
                    done += data.shape[0] // layout.width
                    if on_progress is not None:
                        on_progress(done)
            entry.close()
            digests.append(hashing.submit(digest.hexdigest))
        written = [
            WrittenFile(
                name=spec.name,
                kind=spec.kind,
                codes=spec.count,
                bytes=file_size(spec.kind, spec.count, url_prefix, spec.children),
                sha256=sha.result(),
            )
            for spec, sha in zip(files, digests, strict=True)
        ]
    finally:
        building.shutdown(cancel=True)
        hashing.shutdown(cancel=True)
    return written
