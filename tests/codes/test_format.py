"""The code format on its own (no database): what a cap carries and what verification accepts."""

from __future__ import annotations

import os
import random

import numpy as np
import pytest
import qrcode
from qrcode.util import MODE_ALPHA_NUM, QRData

from codes import format as f

KEY = f.CodeKey.derive(bytes(range(32)), 7, 1)
OTHER_VERSION = f.CodeKey.derive(bytes(range(1, 33)), 7, 2)
OTHER_BRAND = f.CodeKey.derive(bytes(range(32)), 8, 1)  # even the same secret: another brand's key


def _random_codes(count: int, rng: np.random.Generator, prefix: str = "") -> np.ndarray:
    alphabet = np.frombuffer(f.ALPHABET.encode(), dtype=np.uint8)
    codes = alphabet[rng.integers(0, 32, size=(count, f.CODE_LENGTH))]
    if prefix:
        codes[:, : len(prefix)] = np.frombuffer(prefix.encode(), dtype=np.uint8)
    return codes


def _text(row: np.ndarray) -> str:
    return row.tobytes().decode()


@pytest.mark.parametrize("kind", list(f.Kind))
def test_bulk_generation_matches_one_by_one_and_verifies(kind: f.Kind) -> None:
    first = 123_456
    codes = f.generate(KEY, kind, first, 3000)
    for offset in range(0, 3000, 7):
        text = _text(codes[offset])
        assert text == f.make(KEY, kind, first + offset)
        code = f.verify(KEY, text)
        assert (code.tenant_number, code.version, code.kind, code.serial, code.text) == (
            7,
            1,
            kind,
            first + offset,
            text,
        )


def test_the_ends_of_the_serial_range_work_and_beyond_them_nothing_is_made() -> None:
    for serial in (0, 1, f.MAX_SERIAL):
        text = f.make(KEY, f.Kind.INNER, serial)
        assert f.verify(KEY, text).serial == serial
    assert _text(f.generate(KEY, f.Kind.INNER, f.MAX_SERIAL, 1)[0]) == f.make(KEY, f.Kind.INNER, f.MAX_SERIAL)
    with pytest.raises(ValueError, match="serial"):
        f.make(KEY, f.Kind.INNER, f.MAX_SERIAL + 1)
    with pytest.raises(ValueError, match="serial"):
        f.generate(KEY, f.Kind.INNER, f.MAX_SERIAL, 2)


def test_a_code_is_24_characters_of_the_qr_alphanumeric_set_and_fits_a_version_3_q_symbol() -> None:
    text = f.make(KEY, f.Kind.INNER, 42)
    assert len(text) == 24
    assert set(text) <= set(f.ALPHABET)
    url = f"HTTPS://Q.EXAMPLE.CN/C/{text}"  # a 16-character host: 47 characters in all
    qr = qrcode.QRCode(error_correction=qrcode.constants.ERROR_CORRECT_Q)
    qr.add_data(QRData(url, mode=MODE_ALPHA_NUM))
    qr.make(fit=True)
    assert qr.version == 3


def test_inner_and_outer_codes_of_a_bottle_share_its_serial_but_look_unrelated() -> None:
    inner, outer = f.make(KEY, f.Kind.INNER, 1000), f.make(KEY, f.Kind.OUTER, 1000)
    assert f.verify(KEY, inner).serial == f.verify(KEY, outer).serial == 1000
    assert sum(a == b for a, b in zip(inner[4:], outer[4:], strict=True)) <= 5


def test_neighbouring_serials_cannot_be_read_off_the_codes() -> None:
    """Past the brand/version prefix, codes of consecutive serials look independent."""
    codes = f.generate(KEY, f.Kind.INNER, 0, 20_000)
    body = codes[:, 4:]
    # Each body character is close to uniform over the alphabet, even in the highest positions
    # (where a plain serial would sit still).
    for column in range(body.shape[1]):
        counts = np.unique(body[:, column], return_counts=True)[1]
        assert len(counts) == 32
        assert counts.min() > 20_000 / 32 * 0.75
    same = (body[1:] == body[:-1]).mean()
    assert same < 1 / 32 * 1.5


def test_lower_case_and_look_alikes_are_accepted_but_there_is_one_canonical_string() -> None:
    text = f.make(KEY, f.Kind.OUTER, 77)
    variants = {text.lower(), text.replace("1", "I").replace("0", "O"), text.replace("1", "l")}
    for variant in variants:
        assert f.verify(KEY, variant).text == text
        assert f.canonical(variant) == text


@pytest.mark.parametrize(
    "bad",
    [
        "",
        "SHORT",
        "U" * 24,
        "0" * 23,
        "0" * 25,
        " " + "0" * 23,
        "+" + "0" * 23,
        "_" * 24,
        "Ａ" * 24,  # full-width letters
        "0" * 22 + "\x00\x00",
        "0" * 23 + "é",  # 24 characters, 25 UTF-8 bytes
        "\ud800" * 24,  # lone surrogates cannot even be encoded
        "0_" * 12,  # int() would accept underscores between digits
        "0" * 23 + "\n",
        "0" * 10_000,
    ],
)
def test_malformed_strings_are_invalid(bad: str) -> None:
    with pytest.raises(f.InvalidCode):
        f.verify(KEY, bad)
    assert f.parse(bad) is None
    if "\ud800" not in bad:  # as_array takes what a file can hold
        assert not f.verify_many(KEY, f.as_array([bad]))[0][0]


def test_a_million_random_codes_with_the_brands_own_prefix_are_all_rejected() -> None:
    rng = np.random.default_rng(2026)
    prefix = f.make(KEY, f.Kind.INNER, 5)[:4]
    for _ in range(4):
        valid, _kinds, _serials = f.verify_many(KEY, _random_codes(250_000, rng, prefix))
        assert not valid.any()


def test_random_codes_are_rejected_one_by_one_too() -> None:
    rng = random.Random(7)
    prefix = f.make(KEY, f.Kind.INNER, 5)[:4]
    for _ in range(20_000):
        text = prefix + "".join(rng.choice(f.ALPHABET) for _ in range(20))
        with pytest.raises(f.InvalidCode):
            f.verify(KEY, text)


def test_every_single_character_change_of_ten_thousand_codes_is_rejected() -> None:
    codes = np.concatenate(
        [f.generate(KEY, kind, 10_000 * int(kind), 2_500) for kind in f.Kind]
    )  # 10,000 genuine codes
    alphabet = np.frombuffer(f.ALPHABET.encode(), dtype=np.uint8)
    for position in range(f.CODE_LENGTH):
        for shift in range(1, 32):
            changed = codes.copy()
            current = np.searchsorted(alphabet, changed[:, position])
            changed[:, position] = alphabet[(current + shift) % 32]
            valid, _kinds, _serials = f.verify_many(KEY, changed)
            assert not valid.any(), (position, shift)
    assert f.verify_many(KEY, codes)[0].all()


def test_codes_verify_only_under_the_key_that_made_them() -> None:
    text = f.make(KEY, f.Kind.INNER, 9)
    for other in (OTHER_VERSION, OTHER_BRAND):
        with pytest.raises(f.InvalidCode):
            f.verify(other, text)
    # Rewriting the clear brand number or version to the other key's does not help either.
    for other in (OTHER_VERSION, OTHER_BRAND):
        value = f.decode_value(text)
        _, _, sealed, tag = f.split(value)
        forged = f.encode_value((((other._prefix << f.SEALED_BITS) | sealed) << f.TAG_BITS) | tag)
        with pytest.raises(f.InvalidCode):
            f.verify(other, forged)


def test_scalar_and_bulk_verification_agree() -> None:
    rng = np.random.default_rng(11)
    genuine = [_text(row) for row in f.generate(KEY, f.Kind.CASE, 500, 200)]
    mixed = genuine + [code.lower() for code in genuine[:50]]
    mixed += [_text(row) for row in _random_codes(200, rng, genuine[0][:4])]
    mixed += [code[:-1] for code in genuine[:20]] + [code + "0" for code in genuine[:20]]
    bulk_valid, kinds, serials = f.verify_many(KEY, f.as_array(mixed))
    for index, text in enumerate(mixed):
        try:
            code = f.verify(KEY, text)
        except f.InvalidCode:
            assert not bulk_valid[index], text
        else:
            assert bulk_valid[index], text
            assert (kinds[index], serials[index]) == (code.kind, code.serial)


def test_keys_are_derived_deterministically_and_checked() -> None:
    secret = os.urandom(32)
    assert f.make(f.CodeKey.derive(secret, 3, 1), f.Kind.INNER, 1) == f.make(
        f.CodeKey.derive(secret, 3, 1), f.Kind.INNER, 1
    )
    with pytest.raises(ValueError, match="32 bytes"):
        f.CodeKey.derive(b"short", 3, 1)
    with pytest.raises(ValueError, match="tenant number"):
        f.CodeKey.derive(secret, 0, 1)
    with pytest.raises(ValueError, match="key version"):
        f.CodeKey.derive(secret, 3, 16)
    assert "secret" not in repr(f.CodeKey.derive(secret, 3, 1))


def test_printer_serial_digits_are_exact_across_the_serial_space() -> None:
    from codes.printing import _digits

    values = np.array([0, 1, 9_999, 10_000, 99_999_999, 100_000_000, f.MAX_SERIAL], dtype=np.uint64)
    values = np.concatenate([values, np.random.default_rng(3).integers(0, f.MAX_SERIAL, 5_000).astype(np.uint64)])
    texts = [row.tobytes().decode() for row in _digits(values)]
    assert texts == [f"{int(value):011d}" for value in values]
