"""Printer files and their encrypted container, without the database: the CSV lines are exactly the
codes `codes.format.make` gives, and the WinZip AES-256 zip opens in pyzipper and 7-Zip, refuses a
wrong password, detects tampering and switches to Zip64 where sizes or offsets need it."""

from __future__ import annotations

import hashlib
import io
import os
import shutil
import struct
import subprocess
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import pyzipper
from Cryptodome.Cipher import AES
from Cryptodome.Util import Counter

from codes import format as code_format
from codes import printing, zipcrypt

KEY = code_format.CodeKey.derive(bytes(range(32)), 7, 1)
PREFIX = "HTTPS://J.EXAMPLE.CN/C/"
PASSWORD = b"Pass-word-2026"
SEVEN_ZIP = shutil.which("7z")


def _expected_lines(kind: code_format.Kind, first: int, count: int, children: printing.Children | None = None) -> bytes:
    out = []
    for index in range(count):
        serial = first + index
        line = f"{serial:011d},{kind.letter},{PREFIX}{code_format.make(KEY, kind, serial)}"
        if children is not None:
            child = children.first_serial + index * children.per_parent
            line += f",{child:011d},{child + children.per_parent - 1:011d}"
        out.append(line + "\n")
    return "".join(out).encode()


# --- CSV lines -------------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", [code_format.Kind.INNER, code_format.Kind.OUTER])
@pytest.mark.parametrize(
    ("first", "count", "chunk"),
    [
        (0, 1, 50),
        (9_990, 25, 7),  # serials cross 10,000 inside a chunk and between chunks
        (12_345_679_995, 30, 9),  # a large serial crossing a 10,000 boundary
        (code_format.MAX_SERIAL - 12, 13, 5),  # up to the last serial
        (19_990, 20_030, 8_192),  # runs of 10,000 inside one chunk
    ],
)
def test_lines_are_exactly_the_codes_of_format_make(kind: code_format.Kind, first: int, count: int, chunk: int) -> None:
    got = b"".join(printing.lines(KEY, kind, first, count, PREFIX, chunk=chunk))
    if count > 1000:  # check a sample of the long case: every line has the same width
        width = printing.Layout(kind, PREFIX, None).width
        assert len(got) == count * width
        for index in [*range(0, count, 997), count - 1]:
            assert got[index * width : (index + 1) * width] == _expected_lines(kind, first + index, 1)
    else:
        assert got == _expected_lines(kind, first, count)


@pytest.mark.parametrize(
    ("kind", "children"),
    [
        (code_format.Kind.CASE, printing.Children(99_999_994, 6)),
        (code_format.Kind.PALLET, printing.Children(code_format.MAX_SERIAL - 200, 4)),
    ],
)
def test_case_and_pallet_lines_carry_their_children_ranges(kind: code_format.Kind, children: printing.Children) -> None:
    got = b"".join(printing.lines(KEY, kind, 9_997, 40, PREFIX, children, chunk=11))
    assert got == _expected_lines(kind, 9_997, 40, children)
    assert printing.header(kind, children).count(b",") == 4


def test_file_size_is_known_before_writing() -> None:
    for kind, children in ((code_format.Kind.INNER, None), (code_format.Kind.CASE, printing.Children(1, 6))):
        data = printing.header(kind, children) + b"".join(printing.lines(KEY, kind, 5, 123, PREFIX, children))
        assert printing.file_size(kind, 123, PREFIX, children) == len(data)


# --- the package pipeline ------------------------------------------------------------------------


FILES = [
    printing.CodeFile("inner.csv", code_format.Kind.INNER, 9_000, 1_000),
    printing.CodeFile("outer.csv", code_format.Kind.OUTER, 9_000, 1_000),
    printing.CodeFile("case.csv", code_format.Kind.CASE, 400, 167, printing.Children(9_000, 6)),
    printing.CodeFile("pallet.csv", code_format.Kind.PALLET, 70, 42, printing.Children(400, 4)),
]


def _write_package(path: Path, *, threaded: bool = True, **options: Any) -> tuple[list[printing.WrittenFile], str]:
    progress: list[int] = []
    with zipcrypt.AesZipWriter(path, PASSWORD, threaded=threaded) as archive:  # as the product writes it
        written = printing.write_code_files(
            archive, FILES, KEY, PREFIX, on_progress=progress.append, threaded=threaded, **options
        )
        archive.writestr("manifest.json", b'{"files": 4}')
    assert progress == sorted(progress)
    assert progress[-1] == sum(spec.count for spec in FILES)
    return written, archive.sha256


def _read(path: Path, password: bytes = PASSWORD) -> dict[str, bytes]:
    with pyzipper.AESZipFile(path) as archive:
        archive.setpassword(password)
        return {name: archive.read(name) for name in archive.namelist()}


@pytest.mark.parametrize(
    ("threaded", "options"),
    [
        (True, {}),
        (True, {"chunk": 64, "slots": 4, "builders": 2}),  # many chunks, buffers reused
        (False, {"chunk": 100, "slots": 3, "builders": 1}),
    ],
)
def test_package_files_round_trip_with_their_manifest_hashes(
    tmp_path: Path, threaded: bool, options: dict[str, int]
) -> None:
    path = tmp_path / "package.zip"
    written, archive_sha = _write_package(path, threaded=threaded, **options)
    assert archive_sha == hashlib.sha256(path.read_bytes()).hexdigest()
    files = _read(path)
    assert list(files) == [spec.name for spec in FILES] + ["manifest.json"]
    for spec, result in zip(FILES, written, strict=True):
        expected = printing.header(spec.kind, spec.children) + _expected_lines(
            spec.kind, spec.first_serial, spec.count, spec.children
        )
        assert files[spec.name] == expected
        assert (result.name, result.kind, result.codes) == (spec.name, spec.kind, spec.count)
        assert result.bytes == len(expected)
        assert result.sha256 == hashlib.sha256(expected).hexdigest()


def test_a_failing_archive_stops_the_pipeline() -> None:
    class Broken(io.BytesIO):
        def write(self, data: Any) -> int:
            if self.tell() > 0:  # the second block
                raise OSError("disk full")
            return super().write(data)

    many = [printing.CodeFile("inner.csv", code_format.Kind.INNER, 0, 40_000)]  # 2.5 MB: several blocks
    with pytest.raises(OSError, match="disk full"), zipcrypt.AesZipWriter(Broken(), PASSWORD) as archive:
        printing.write_code_files(archive, many, KEY, PREFIX, chunk=1_000, slots=4)


# --- the container -------------------------------------------------------------------------------


def _zip(path: Path, entries: dict[str, bytes], *, piece: int = 100_003, threaded: bool = True) -> str:
    with path.open("wb") as fh, zipcrypt.AesZipWriter(fh, PASSWORD, threaded=threaded) as archive:
        for name, data in entries.items():
            with archive.open(name, len(data)) as entry:
                for start in range(0, len(data), piece):
                    entry.write(data[start : start + piece])
    return archive.sha256


@pytest.mark.parametrize("threaded", [True, False])
def test_small_and_multi_piece_entries_round_trip_through_pyzipper(tmp_path: Path, threaded: bool) -> None:
    rng = np.random.default_rng(7)
    entries = {f"f{size}.bin": rng.bytes(size) for size in (0, 1, 15, 16, 17, 4_099)}
    entries["big.csv"] = rng.bytes(3 * zipcrypt.BLOCK + 12_345)  # pieces, slots reused, odd write sizes
    path = tmp_path / "a.zip"
    digest = _zip(path, entries, threaded=threaded)
    assert digest == hashlib.sha256(path.read_bytes()).hexdigest()
    assert _read(path) == entries
    with pyzipper.AESZipFile(path) as archive:
        for info in archive.infolist():
            assert info.compress_type == zipcrypt.METHOD_STORED  # what the 0x9901 field says
            assert info.wz_aes_version == zipcrypt.AE_2
            assert info.CRC == 0
            assert info.flag_bits & 1


def test_the_counter_is_winzips_little_endian_one() -> None:
    """Against an independent AES-CTR (pycryptodome's, little-endian counter from 1), across the
    carry out of the counter's first byte and with writes that start and end inside blocks."""
    key = bytes(range(32))
    data = os.urandom(16 * 600 + 5)
    reference = AES.new(key, AES.MODE_CTR, counter=Counter.new(128, initial_value=1, little_endian=True))
    expected = reference.encrypt(data)
    ctr = zipcrypt.CounterModeLE(key, piece=1024)
    out = np.empty(len(data), dtype=np.uint8)
    view = np.frombuffer(data, dtype=np.uint8)
    position = 0
    for size in [1, 15, 16, 17, 1024, 1000, 3, *([1024] * 6)]:
        end = min(len(data), position + size)
        ctr.apply(view[position:end], out[position:end])
        position = end
    ctr.apply(view[position:], out[position:])
    assert out.tobytes() == expected


def test_keys_follow_pbkdf2_hmac_sha1_with_1000_iterations() -> None:
    salt = bytes(16)
    material = hashlib.pbkdf2_hmac("sha1", PASSWORD, salt, 1000, 66)
    assert zipcrypt.derive_keys(PASSWORD, salt) == (material[:32], material[32:64], material[64:])


def test_a_wrong_password_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "a.zip"
    _zip(path, {"a.csv": b"serial,kind,url\n" * 100})
    with pytest.raises(RuntimeError, match="Bad password"):
        _read(path, b"not-the-password")


@pytest.mark.parametrize("where", ["ciphertext", "mac"])
def test_tampering_is_detected_by_the_hmac(tmp_path: Path, where: str) -> None:
    path = tmp_path / "a.zip"
    data = b"00000000001,I,HTTPS://J.EXAMPLE.CN/C/0123456789ABCDEFGHJKMNPQ\n" * 1000
    _zip(path, {"a.csv": data})
    raw = bytearray(path.read_bytes())
    header = 30 + len("a.csv") + 11  # local header, name, AES extra field
    data_at = header + zipcrypt.SALT_BYTES + zipcrypt.VERIFIER_BYTES
    raw[data_at + 1234 if where == "ciphertext" else data_at + len(data) + 3] ^= 0x01
    path.write_bytes(bytes(raw))
    with pytest.raises(pyzipper.BadZipFile, match="HMAC"):
        _read(path)


def test_sizes_must_match_what_was_announced(tmp_path: Path) -> None:
    with (tmp_path / "a.zip").open("wb") as fh, zipcrypt.AesZipWriter(fh, PASSWORD) as archive:
        entry = archive.open("a.csv", 10)
        with pytest.raises(ValueError, match="more than"):
            entry.write(b"x" * 11)
        entry.write(b"x" * 9)
        with pytest.raises(ValueError, match="9 bytes written, 10 announced"):
            archive.close()


@pytest.mark.parametrize("size", [0, 1, 4_096, 4_097, zipcrypt.BLOCK - 60, 2 * zipcrypt.BLOCK + 12_345])
def test_a_new_file_is_written_with_direct_io_and_its_exact_size(tmp_path: Path, size: int) -> None:
    data = os.urandom(size)
    path = tmp_path / "a.zip"
    with zipcrypt.AesZipWriter(path, PASSWORD) as archive:
        assert archive._owned is not None
        assert archive._owned.direct == hasattr(os, "O_DIRECT")  # the test directory is on a disk
        archive.writestr("a.csv", data)
    assert archive.sha256 == hashlib.sha256(path.read_bytes()).hexdigest()
    assert _read(path) == {"a.csv": data}


def test_direct_io_refused_at_write_falls_back_to_ordinary_writes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    if not hasattr(os, "O_DIRECT"):
        pytest.skip("no direct I/O here")
    import errno
    import fcntl

    real_write = os.write

    def refusing(fd: int, data: Any) -> int:
        if fcntl.fcntl(fd, fcntl.F_GETFL) & os.O_DIRECT:
            raise OSError(errno.EINVAL, "Invalid argument")
        return real_write(fd, data)

    monkeypatch.setattr(zipcrypt.os, "write", refusing)
    data = os.urandom(zipcrypt.BLOCK + 5_000)
    path = tmp_path / "a.zip"
    with zipcrypt.AesZipWriter(path, PASSWORD) as archive:
        archive.writestr("a.csv", data)
    assert archive._owned is not None
    assert not archive._owned.direct
    assert _read(path) == {"a.csv": data}


# --- Zip64 ---------------------------------------------------------------------------------------


def test_headers_move_large_values_to_zip64_extra_fields() -> None:
    record = zipcrypt.EntryRecord(b"inner.csv", 5 << 30, 6 << 30, 0, 0)
    local = zipcrypt.local_header(record)
    (_, needed, flags, method, _, _, crc, stored, size, name_len, extra_len) = struct.unpack("<IHHHHHIIIHH", local[:30])
    assert (needed, flags, method, crc, stored, size) == (51, 1, 99, 0, 0xFFFFFFFF, 0xFFFFFFFF)
    extra = local[30 + name_len :]
    assert len(extra) == extra_len
    assert struct.unpack("<HHQQ", extra[:20]) == (0x0001, 16, 5 << 30, (5 << 30) + 28)
    assert extra[20:] == struct.pack("<HHH2sBH", 0x9901, 7, 2, b"AE", 3, 0)

    central = zipcrypt.central_header(record)
    fields = struct.unpack("<IHHHHHHIIIHHHHHII", central[:46])
    assert fields[8:10] == (0xFFFFFFFF, 0xFFFFFFFF)
    assert fields[-1] == 0xFFFFFFFF  # offset
    extra = central[46 + fields[10] :]
    assert struct.unpack("<HHQQQ", extra[:28]) == (0x0001, 24, 5 << 30, (5 << 30) + 28, 6 << 30)

    small = zipcrypt.central_header(zipcrypt.EntryRecord(b"m.json", 100, 7 << 30, 0, 0))
    extra = small[46 + len(b"m.json") :]
    assert struct.unpack("<HHQ", extra[:12]) == (0x0001, 8, 7 << 30)  # only the offset is wide

    end = zipcrypt.end_records(5, 12 << 30, 300)
    assert struct.unpack("<IQHHIIQQQQ", end[:56])[6:] == (5, 5, 300, 12 << 30)
    assert struct.unpack("<IIQI", end[56:76]) == (0x07064B50, 0, (12 << 30) + 300, 1)
    assert struct.unpack("<IHHHHIIH", end[76:])[5:7] == (300, 0xFFFFFFFF)
    assert len(zipcrypt.end_records(5, 1000, 300)) == 22  # nothing wide: the plain end record


def test_zip64_layout_opens_everywhere(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Every size and offset forced into Zip64 fields (as a > 4 GiB package has them)."""
    monkeypatch.setattr(zipcrypt, "ZIP64_LIMIT", 1)
    entries = {"inner.csv": os.urandom(100_000), "manifest.json": b"{}"}
    path = tmp_path / "a.zip"
    _zip(path, entries)
    assert _read(path) == entries
    if SEVEN_ZIP:
        _seven_zip_test(path, entries)


def test_offsets_past_4_gib(tmp_path: Path) -> None:
    """An archive starting 5 GiB into a sparse file: its offsets only fit Zip64 fields."""
    path = tmp_path / "a.zip"
    entries = {"inner.csv": b"00000000001,I,X\n" * 1000, "manifest.json": b"{}"}
    with path.open("wb") as fh:
        fh.seek(5 << 30)
        with zipcrypt.AesZipWriter(fh, PASSWORD) as archive:
            for name, data in entries.items():
                archive.writestr(name, data)
    assert _read(path) == entries
    with pyzipper.AESZipFile(path) as archive:
        assert archive.getinfo("manifest.json").header_offset > 5 << 30


# --- 7-Zip -----------------------------------------------------------------------------------------


def _seven_zip_test(path: Path, entries: dict[str, bytes]) -> None:
    assert SEVEN_ZIP is not None
    tested = subprocess.run([SEVEN_ZIP, "t", f"-p{PASSWORD.decode()}", str(path)], capture_output=True, text=True)
    assert tested.returncode == 0, tested.stdout + tested.stderr
    assert "Everything is Ok" in tested.stdout
    for name, data in entries.items():
        extracted = subprocess.run(
            [SEVEN_ZIP, "x", "-so", f"-p{PASSWORD.decode()}", str(path), name], capture_output=True
        )
        assert extracted.returncode == 0
        assert extracted.stdout == data


@pytest.mark.skipif(SEVEN_ZIP is None, reason="7-Zip (7z) is not installed")
def test_seven_zip_opens_the_package_and_refuses_a_wrong_password(tmp_path: Path) -> None:
    path = tmp_path / "package.zip"
    _write_package(path, chunk=64, slots=4)
    _seven_zip_test(path, _read(path))
    wrong = subprocess.run([SEVEN_ZIP, "t", "-pwrong", str(path)], capture_output=True, text=True)
    assert wrong.returncode != 0


def test_consecutive_serial_digits_are_exact_across_the_serial_space() -> None:
    rng = np.random.default_rng(11)
    starts = [0, 9_999, 99_990_000, code_format.MAX_SERIAL - 25_000, *rng.integers(0, 10**10, 20).tolist()]
    for start in starts:
        count = 25_001
        layout = printing.Layout(code_format.Kind.INNER, PREFIX, None)
        chunk = printing._Chunk(layout, count)
        printing._put_consecutive(chunk.serial_head, chunk.serial_tail, int(start))
        got = chunk.lines[:, : printing.SERIAL_DIGITS].tobytes()
        assert got == "".join(f"{serial:011d}" for serial in range(int(start), int(start) + count)).encode()
