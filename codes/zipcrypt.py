"""Password-protected zip archives in WinZip's AES-256 format (AE-2), written in one streaming pass.

The printer package must open in the tools printers use (7-Zip, WinZip, WinRAR, Bandizip, ...). This
module writes that container on `cryptography` primitives, following WinZip's published
specification "AES Encryption Information: Encryption Specification AE-1 and AE-2" and PKWARE's
APPNOTE for the zip records. It is a container format; the cryptography is OpenSSL's.

Each entry:

- is stored (no compression) and marked with method 99 plus the 0x9901 extra field: vendor version
  2 (AE-2), vendor "AE", strength 3 (AES-256), actual method 0. AE-2 leaves the CRC field 0: the
  HMAC protects the data instead (and no CRC pass is needed);
- holds salt (16 random bytes) ‖ password verifier (2) ‖ ciphertext ‖ authentication code (10), where
  PBKDF2-HMAC-SHA1(password, salt, 1000 iterations) gives the 32-byte AES key, the 32-byte HMAC
  key and the verifier, in that order; the ciphertext is AES-256 in CTR mode; the authentication
  code is the first 10 bytes of HMAC-SHA1 over the ciphertext;
- uses WinZip's CTR counter: block i (from 0) of an entry is XOR-ed with AES(key, i + 1), the counter
  a 128-bit little-endian integer. OpenSSL's CTR mode counts big-endian, so the keystream here is
  AES-ECB over counter blocks built with numpy.

Sizes are given when an entry is opened (a printer file's size follows from its line count), so every
local header is written once with its final sizes: no data descriptor, no seeking back, and the
archive's SHA-256 is computed as it is written. Zip64 extra fields (local and central headers) and
the Zip64 end records are written when a size, an offset or the entry count needs them.

Threads: `AesZipWriter(threaded=True)` encrypts and authenticates in one worker thread and hashes and
writes the output in another, so both overlap the caller's work. OpenSSL, hashlib and numpy release
the GIL on large buffers. Every call on the writer and its entries comes from one thread (the caller's);
`Entry.write` returns a future that completes once its buffer may be reused.

Output: ciphertext is XOR-ed straight into page-aligned 1 MiB blocks, each hashed and written whole;
a new file given by path is written with direct I/O where the file system allows (see DirectFile).
"""

from __future__ import annotations

import errno
import hashlib
import mmap
import os
import struct
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from types import TracebackType
from typing import Any, BinaryIO, TypeVar

import numpy as np
import numpy.typing as npt
from cryptography.hazmat.primitives import hashes, hmac
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from cryptography.hazmat.primitives.kdf.pbkdf2 import PBKDF2HMAC

SALT_BYTES = 16  # for AES-256
KEY_BYTES = 32
VERIFIER_BYTES = 2
MAC_BYTES = 10
KDF_ITERATIONS = 1000
OVERHEAD = SALT_BYTES + VERIFIER_BYTES + MAC_BYTES  # stored size = plaintext size + this

METHOD_AES = 99
METHOD_STORED = 0
AES_EXTRA_ID = 0x9901
AE_2 = 2
AES_256 = 3
ZIP64_EXTRA_ID = 0x0001
FLAG_ENCRYPTED = 0x0001
VERSION_NEEDED = 51  # 5.1: AES encryption (covers Zip64's 4.5)
VERSION_MADE_BY = (3 << 8) | 63  # Unix, APPNOTE 6.3
EXTERNAL_ATTR = 0o100644 << 16  # a regular file, rw-r--r--

# A size or offset this large does not fit a 32-bit field: the field holds 0xFFFFFFFF and the value
# moves to the Zip64 extra field (a module constant so tests can force the Zip64 layout on small data).
ZIP64_LIMIT = 0xFFFFFFFF
_MAX16 = 0xFFFF
_MAX32 = 0xFFFFFFFF

_LOCAL = struct.Struct("<IHHHHHIIIHH")
_CENTRAL = struct.Struct("<IHHHHHHIIIHHHHHII")
_END = struct.Struct("<IHHHHIIH")
_END64 = struct.Struct("<IQHHIIQQQQ")
_LOCATOR64 = struct.Struct("<IIQI")
_AES_EXTRA = struct.pack("<HHH2sBH", AES_EXTRA_ID, 7, AE_2, b"AE", AES_256, METHOD_STORED)

PIECE = 256 << 10  # bytes encrypted per step: counters, keystream and data stay in a core's cache
BLOCK = 1 << 20  # bytes handed to the writer thread (and written) at a time
OUTPUT_BLOCKS = 8  # blocks that may wait for the writer thread

BytesLike = bytes | bytearray | memoryview | npt.NDArray[np.uint8]
T = TypeVar("T")


def derive_keys(password: bytes, salt: bytes) -> tuple[bytes, bytes, bytes]:
    """(AES key, HMAC key, password verifier) of a password and an entry's salt."""
    material = PBKDF2HMAC(
        algorithm=hashes.SHA1(),  # noqa: S303 (the format's key derivation, not a signature)
        length=2 * KEY_BYTES + VERIFIER_BYTES,
        salt=salt,
        iterations=KDF_ITERATIONS,
    ).derive(password)
    return material[:KEY_BYTES], material[KEY_BYTES : 2 * KEY_BYTES], material[2 * KEY_BYTES :]


class CounterModeLE:
    """AES-CTR with WinZip's counter: byte p of the stream is XOR-ed with byte p % 16 of
    AES(key, p // 16 + 1), the counter written as a 128-bit little-endian integer."""

    def __init__(self, key: bytes, piece: int = PIECE) -> None:
        self._ecb = Cipher(algorithms.AES(key), modes.ECB()).encryptor()  # noqa: S305 (CTR keystream blocks)
        self._position = 0
        self._piece = piece
        blocks = piece // 16 + 2  # a piece may start and end inside a block
        self._counters = np.zeros((blocks, 2), dtype="<u8")  # low half: the counter; high half: 0
        self._counter_bytes = self._counters.reshape(-1).view(np.uint8)
        self._steps = np.arange(blocks, dtype=np.uint64)
        self._keystream = np.empty(blocks * 16 + 16, dtype=np.uint8)  # update_into wants a block spare

    @property
    def position(self) -> int:
        return self._position

    def apply(self, data: npt.NDArray[np.uint8], out: npt.NDArray[np.uint8]) -> None:
        """out = data XOR the next len(data) keystream bytes (a piece at a time)."""
        for start in range(0, data.shape[0], self._piece):
            self._apply(data[start : start + self._piece], out[start : start + self._piece])

    def _apply(self, data: npt.NDArray[np.uint8], out: npt.NDArray[np.uint8]) -> None:
        size = data.shape[0]
        skip = self._position % 16
        blocks = (skip + size + 15) // 16
        np.add(self._steps[:blocks], np.uint64(self._position // 16 + 1), out=self._counters[:blocks, 0])
        self._ecb.update_into(self._counter_bytes[: blocks * 16].data, self._keystream.data)
        np.bitwise_xor(data, self._keystream[skip : skip + size], out=out)
        self._position += size


# --- records -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class EntryRecord:
    """What the central directory says of an entry."""

    name: bytes
    size: int  # plaintext bytes
    offset: int  # of its local header
    dos_time: int
    dos_date: int

    @property
    def stored_size(self) -> int:
        return self.size + OVERHEAD


def dos_stamp(moment: time.struct_time) -> tuple[int, int]:
    """(time, date) fields of a local time, in MS-DOS format (2-second resolution, from 1980)."""
    year = max(1980, min(2107, moment.tm_year))
    stamp_date = ((year - 1980) << 9) | (moment.tm_mon << 5) | moment.tm_mday
    stamp_time = (moment.tm_hour << 11) | (moment.tm_min << 5) | (min(moment.tm_sec, 59) // 2)
    return stamp_time, stamp_date


def local_header(record: EntryRecord) -> bytes:
    """The local file header of an entry: Zip64 (both sizes in the extra field) when a size needs it."""
    extra = b""
    stored, size = record.stored_size, record.size
    if stored >= ZIP64_LIMIT or size >= ZIP64_LIMIT:
        extra = struct.pack("<HHQQ", ZIP64_EXTRA_ID, 16, size, stored)
        stored = size = _MAX32
    extra += _AES_EXTRA
    head = _LOCAL.pack(
        0x04034B50,
        VERSION_NEEDED,
        FLAG_ENCRYPTED,
        METHOD_AES,
        record.dos_time,
        record.dos_date,
        0,  # AE-2: no CRC
        stored,
        size,
        len(record.name),
        len(extra),
    )
    return head + record.name + extra


def central_header(record: EntryRecord) -> bytes:
    """The central directory header of an entry: a Zip64 extra field with exactly the values that
    do not fit their 32-bit field, in the APPNOTE's order (size, stored size, offset)."""
    wide: list[int] = []
    size, stored, offset = record.size, record.stored_size, record.offset
    if size >= ZIP64_LIMIT:
        wide.append(size)
        size = _MAX32
    if stored >= ZIP64_LIMIT:
        wide.append(stored)
        stored = _MAX32
    if offset >= ZIP64_LIMIT:
        wide.append(offset)
        offset = _MAX32
    extra = struct.pack(f"<HH{len(wide)}Q", ZIP64_EXTRA_ID, 8 * len(wide), *wide) if wide else b""
    extra += _AES_EXTRA
    head = _CENTRAL.pack(
        0x02014B50,
        VERSION_MADE_BY,
        VERSION_NEEDED,
        FLAG_ENCRYPTED,
        METHOD_AES,
        record.dos_time,
        record.dos_date,
        0,
        stored,
        size,
        len(record.name),
        len(extra),
        0,  # comment
        0,  # disk number
        0,  # internal attributes
        EXTERNAL_ATTR,
        offset,
    )
    return head + record.name + extra


def end_records(entries: int, directory_offset: int, directory_size: int) -> bytes:
    """End of central directory, preceded by the Zip64 end record and locator when a value needs them
    (then each value too large for its field reads 0xFFFF or 0xFFFFFFFF there)."""
    tail = b""
    if entries >= _MAX16 or directory_offset >= ZIP64_LIMIT or directory_size >= ZIP64_LIMIT:
        end_offset = directory_offset + directory_size
        tail += _END64.pack(
            0x06064B50, _END64.size - 12, VERSION_MADE_BY, 45, 0, 0, entries, entries, directory_size, directory_offset
        )
        tail += _LOCATOR64.pack(0x07064B50, 0, end_offset, 1)
        entries = min(entries, _MAX16)
        directory_offset = directory_offset if directory_offset < ZIP64_LIMIT else _MAX32
        directory_size = directory_size if directory_size < ZIP64_LIMIT else _MAX32
    return tail + _END.pack(0x06054B50, 0, 0, entries, entries, directory_size, directory_offset, 0)


# --- ordered work ---------------------------------------------------------------------------------


class Lane:
    """Runs submitted calls one after another in a worker thread (or at once when not threaded);
    with more than one worker, calls run concurrently and the caller orders their results.

    The first failure sticks: every later call fails with it too, so whoever waits on any later
    future learns of it, and nothing runs on top of broken state.
    """

    def __init__(self, name: str, threaded: bool = True, workers: int = 1) -> None:
        self._pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix=name) if threaded else None
        self._failure: BaseException | None = None
        self._lock = threading.Lock()

    def submit(self, call: Callable[..., T], *args: Any) -> Future[T]:
        if self._pool is None:
            done: Future[T] = Future()
            done.set_result(self._run(call, *args))
            return done
        return self._pool.submit(self._run, call, *args)

    def _run(self, call: Callable[..., T], *args: Any) -> T:
        if self._failure is not None:
            raise self._failure
        try:
            return call(*args)
        except BaseException as exc:
            with self._lock:
                self._failure = self._failure or exc
            raise

    def drain(self) -> None:
        """Wait for everything submitted; raise the first failure."""
        self.submit(lambda: None).result()

    def shutdown(self, *, cancel: bool = False) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=cancel)


class DirectFile:
    """A new file written with direct I/O (O_DIRECT) where the system allows it, else as usual.

    A printer package is written once, in large sequential blocks, and read rarely: through the
    page cache, every run would also have the kernel find (and on a virtual machine often have the
    host back) fresh pages for all of it, which costs more CPU than the whole encryption. Direct I/O
    goes from our buffers to the device. It needs aligned memory, offsets and lengths: `write`
    takes whole blocks of page-aligned memory, `write_last` the tail (written padded, then the file
    is truncated to its size). File systems without direct I/O (tmpfs, ...) get ordinary writes.
    """

    ALIGN = 4096

    def __init__(self, path: str | os.PathLike[str]) -> None:
        flags = os.O_WRONLY | os.O_CREAT | os.O_TRUNC | getattr(os, "O_CLOEXEC", 0)
        direct = getattr(os, "O_DIRECT", 0)
        self.direct = False
        if direct:
            try:
                self._fd = os.open(path, flags | direct, 0o600)
                self.direct = True
            except OSError:
                pass
        if not self.direct:
            self._fd = os.open(path, flags, 0o600)
        self.size = 0

    def tell(self) -> int:
        return self.size

    def write(self, data: memoryview) -> None:
        try:
            self._write_all(data)
        except OSError as exc:
            if not (self.direct and exc.errno == errno.EINVAL):
                raise
            self._stop_direct()  # accepted at open, refused at write: carry on through the page cache
            self._write_all(data)

    def write_last(self, block: memoryview, size: int) -> None:
        """The final `size` bytes, at the start of an aligned `block` that has room to pad them."""
        if not self.direct or size % self.ALIGN == 0:
            self.write(block[:size])
            return
        padded = -(-size // self.ALIGN) * self.ALIGN
        self.write(block[:padded])
        self.size -= padded - size
        os.ftruncate(self._fd, self.size)

    def close(self) -> None:
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1

    def _write_all(self, data: memoryview) -> None:
        while data:
            written = os.write(self._fd, data)
            self.size += written
            data = data[written:]

    def _stop_direct(self) -> None:
        import fcntl

        fcntl.fcntl(self._fd, fcntl.F_SETFL, fcntl.fcntl(self._fd, fcntl.F_GETFL) & ~os.O_DIRECT)
        self.direct = False


def _aligned_block(size: int) -> npt.NDArray[np.uint8]:
    """`size` bytes of page-aligned memory (what direct I/O wants)."""
    return np.frombuffer(mmap.mmap(-1, size), dtype=np.uint8)


class _Output:
    """The archive's bytes in order, staged in page-aligned blocks that the writer lane hashes
    (SHA-256) and writes. The encryption lane fills the blocks: ciphertext goes straight into them,
    headers are copied in. Every block is written whole, except the last."""

    def __init__(self, sink: BinaryIO | DirectFile, threaded: bool) -> None:
        self._sink = sink
        self._digest = hashlib.sha256()
        self._lane = Lane("zip-write", threaded)
        try:
            self.position = sink.tell()  # an archive may follow other data (offsets are absolute)
        except (AttributeError, OSError):
            self.position = 0
        self._blocks = [_aligned_block(BLOCK) for _ in range(OUTPUT_BLOCKS)]
        self._pending: list[Future[None] | None] = [None] * OUTPUT_BLOCKS
        self._index = 0
        self._current: npt.NDArray[np.uint8] | None = None
        self._used = 0

    def space(self) -> npt.NDArray[np.uint8]:
        """The free rest of the current block (waiting until the writer is done with it)."""
        if self._current is None:
            pending = self._pending[self._index]
            if pending is not None:
                pending.result()
            self._current = self._blocks[self._index]
        return self._current[self._used :]

    def commit(self, size: int) -> None:
        """`size` more bytes of `space()` are filled."""
        self._used += size
        self.position += size
        if self._used == BLOCK:
            self._hand_over(last=False)

    def write(self, data: bytes) -> None:
        view = np.frombuffer(data, dtype=np.uint8)
        while view.shape[0]:
            space = self.space()
            size = min(space.shape[0], view.shape[0])
            space[:size] = view[:size]
            self.commit(size)
            view = view[size:]

    def _hand_over(self, *, last: bool) -> None:
        assert self._current is not None
        self._pending[self._index] = self._lane.submit(self._emit, self._current.data, self._used, last)
        self._index = (self._index + 1) % OUTPUT_BLOCKS
        self._current = None
        self._used = 0

    def _emit(self, block: memoryview, size: int, last: bool) -> None:
        self._digest.update(block[:size])
        if last and isinstance(self._sink, DirectFile):
            self._sink.write_last(block, size)
        else:
            self._sink.write(block[:size])

    def finish(self) -> str:
        """Write the last, partial block; wait for everything; the SHA-256 of all bytes written."""
        if self._used:
            self._hand_over(last=True)
        self._lane.drain()
        self._lane.shutdown()
        return self._digest.hexdigest()

    def abort(self) -> None:
        self._lane.shutdown(cancel=True)


# --- the writer -------------------------------------------------------------------------------------


class Entry:
    """One file of the archive, `size` bytes long, written in order with `write`, then `close`d."""

    def __init__(self, archive: AesZipWriter, name: str, size: int) -> None:
        self._archive = archive
        self.name = name
        self.size = size
        self._queued = 0
        self._closed = False
        # Set in the encryption lane:
        self._record: EntryRecord | None = None
        self._ctr: CounterModeLE | None = None
        self._mac: hmac.HMAC | None = None

    def write(self, data: BytesLike) -> Future[None]:
        """Queue `data` (any contiguous buffer) for encryption; the future completes once the buffer
        may be reused (and raises if the archive failed)."""
        if self._closed:
            raise ValueError(f"{self.name}: entry already closed")
        view = np.frombuffer(data, dtype=np.uint8)
        if self._queued + view.shape[0] > self.size:
            raise ValueError(f"{self.name}: more than the announced {self.size} bytes")
        self._queued += view.shape[0]
        return self._archive._lane.submit(self._encrypt, view)

    def close(self) -> None:
        if not self._closed:
            self._closed = True
            self._archive._lane.submit(self._finish)

    def __enter__(self) -> Entry:
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        if kind is None:
            self.close()

    # In the encryption lane:

    def _start(self, password: bytes, output: _Output, stamp: tuple[int, int]) -> None:
        salt = os.urandom(SALT_BYTES)
        aes_key, mac_key, verifier = derive_keys(password, salt)
        self._ctr = CounterModeLE(aes_key)
        self._mac = hmac.HMAC(mac_key, hashes.SHA1())  # noqa: S303 (the format's authentication code)
        self._record = EntryRecord(self.name.encode(), self.size, output.position, *stamp)
        output.write(local_header(self._record) + salt + verifier)

    def _encrypt(self, data: npt.NDArray[np.uint8]) -> None:
        assert self._ctr is not None
        assert self._mac is not None
        output = self._archive._output
        while data.shape[0]:
            out = output.space()[:PIECE]  # a piece is encrypted, then authenticated, while in cache
            size = min(out.shape[0], data.shape[0])
            self._ctr.apply(data[:size], out[:size])
            self._mac.update(out[:size].data)
            output.commit(size)
            data = data[size:]

    def _finish(self) -> None:
        assert self._ctr is not None
        assert self._mac is not None
        assert self._record is not None
        if self._ctr.position != self.size:
            raise ValueError(f"{self.name}: {self._ctr.position} bytes written, {self.size} announced")
        self._archive._output.write(self._mac.finalize()[:MAC_BYTES])
        self._archive._records.append(self._record)


class AesZipWriter:
    """A WinZip AES-256 (AE-2) zip of stored entries, written as entries are written.

    with AesZipWriter(path, password) as archive:
        with archive.open("a.csv", size) as entry:
            entry.write(chunk)  # ... exactly `size` bytes in all
        archive.writestr("manifest.json", data)
    archive.sha256  # of every byte written

    `target` is a path (a new file, written with direct I/O where possible and closed at the end)
    or an open binary file (left open; the archive starts at its current position).
    On an exception inside the `with`, pending work is cancelled and no central directory is written.
    """

    def __init__(
        self,
        target: str | os.PathLike[str] | BinaryIO,
        password: bytes,
        *,
        threaded: bool = True,
        moment: time.struct_time | None = None,
    ) -> None:
        if not password:
            raise ValueError("a password is required")
        self._password = password
        self._stamp = dos_stamp(moment or time.localtime())
        sink: BinaryIO | DirectFile
        self._owned: DirectFile | None = None
        if isinstance(target, str | os.PathLike):
            sink = self._owned = DirectFile(target)
        else:
            sink = target
        try:
            self._output = _Output(sink, threaded)
        except BaseException:
            if self._owned is not None:
                self._owned.close()
            raise
        self._lane = Lane("zip-encrypt", threaded)
        self._records: list[EntryRecord] = []
        self._entry: Entry | None = None
        self._sha256: str | None = None
        self._state = "open"

    def open(self, name: str, size: int) -> Entry:
        """Start the next entry: `size` bytes, given with `Entry.write`. Closes the previous entry."""
        if self._state != "open":
            raise ValueError("archive closed")
        if size < 0:
            raise ValueError("negative size")
        if self._entry is not None:
            self._entry.close()
        self._entry = Entry(self, name, size)
        self._lane.submit(self._entry._start, self._password, self._output, self._stamp)
        return self._entry

    def writestr(self, name: str, data: bytes) -> None:
        with self.open(name, len(data)) as entry:
            entry.write(data)

    def close(self) -> str:
        """Write the central directory, wait for every byte to be written; the archive's SHA-256."""
        if self._state == "closed":
            assert self._sha256 is not None
            return self._sha256
        if self._state == "aborted":
            raise ValueError("archive aborted after an error")
        if self._entry is not None:
            self._entry.close()
        try:
            self._lane.submit(self._write_directory)
            self._lane.drain()
            self._sha256 = self._output.finish()
        except BaseException:
            self.abort()
            raise
        self._lane.shutdown()
        self._state = "closed"
        if self._owned is not None:
            self._owned.close()
        return self._sha256

    def abort(self) -> None:
        """Stop: pending work is cancelled; the file is left incomplete (the caller removes it)."""
        self._state = "aborted"
        self._lane.shutdown(cancel=True)
        self._output.abort()
        if self._owned is not None:
            self._owned.close()

    @property
    def sha256(self) -> str:
        """Hex SHA-256 of the archive's bytes (once closed)."""
        if self._sha256 is None:
            raise ValueError("archive not closed")
        return self._sha256

    def _write_directory(self) -> None:
        start = self._output.position
        directory = b"".join(central_header(record) for record in self._records)
        self._output.write(directory + end_records(len(self._records), start, len(directory)))

    def __enter__(self) -> AesZipWriter:
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        if kind is None and self._state == "open":
            self.close()
        elif kind is not None:
            self.abort()
