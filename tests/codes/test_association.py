"""Association uploads: per-line validation, all-or-nothing, idempotent re-uploads, parents of codes."""

from __future__ import annotations

from typing import Any

import pytest
from django_tenants.utils import tenant_context

from codes import association, services
from codes import format as code_format
from codes.keyring import keyring
from codes.models import Batch, CodeLink, SerialGroup
from tenants.errors import JiumaError
from tests.conftest import Brand
from tests.support.threads import run_concurrently

INNER, OUTER, CASE, PALLET = (
    code_format.Kind.INNER,
    code_format.Kind.OUTER,
    code_format.Kind.CASE,
    code_format.Kind.PALLET,
)


@pytest.fixture
def in_alpha(alpha: Brand) -> Any:
    keyring.clear()
    with tenant_context(alpha.tenant):
        yield alpha


def _batch(**fields: Any) -> Batch:
    return services.create_batch(services.BatchRequest(**({"bottles": 12} | fields)))


def _code(brand: Brand, batch: Batch, kind: code_format.Kind, index: int) -> str:
    serial = batch.serial_range(SerialGroup.of(kind)).start + index
    return code_format.make(keyring.current_key(brand.tenant.number), kind, serial)


def _csv(*lines: str) -> bytes:
    return ("\n".join(["parent,child", *lines]) + "\n").encode()


def _statuses(result: association.UploadResult) -> list[str]:
    return [entry["status"] for entry in result.upload.report]


def test_a_clean_file_links_bottles_to_cases_and_cases_to_pallets(in_alpha: Brand) -> None:
    batch = _batch(bottles_per_case=6, cases_per_pallet=2)
    case, pallet = _code(in_alpha, batch, CASE, 1), _code(in_alpha, batch, PALLET, 0)
    prefix = services.url_prefix()
    lines = [f"{case},{_code(in_alpha, batch, OUTER, i)}" for i in range(3)]
    lines.append(f"{prefix}{pallet},{prefix}{case}")  # scan URLs are accepted too
    result = association.upload(_csv(*lines), filename="line3.csv")
    assert _statuses(result) == ["linked"] * 4
    assert result.upload.applied
    assert result.upload.linked == 4
    first_bottle = batch.first_bottle_serial
    assert association.parent_of(SerialGroup.BOTTLE, first_bottle) == ("case", batch.first_case_serial + 1)
    assert association.parent_of(SerialGroup.CASE, batch.first_case_serial + 1) == (
        "pallet",
        batch.first_pallet_serial,
    )
    # A bottle with no uploaded link falls back to sequential packing.
    assert association.parent_of(SerialGroup.BOTTLE, first_bottle + 7) == ("case", batch.first_case_serial + 1)


def test_uploading_the_same_file_again_changes_nothing(in_alpha: Brand) -> None:
    batch = _batch(bottles_per_case=6)
    content = _csv(f"{_code(in_alpha, batch, CASE, 0)},{_code(in_alpha, batch, OUTER, 0)}")
    first = association.upload(content)
    again = association.upload(content)
    assert again.repeated
    assert again.upload.pk == first.upload.pk
    assert CodeLink.objects.count() == 1


def test_any_bad_line_rejects_the_whole_file_with_a_report_per_line(in_alpha: Brand, beta: Brand) -> None:
    batch = _batch(bottles_per_case=6)
    case = _code(in_alpha, batch, CASE, 0)
    bottle = _code(in_alpha, batch, OUTER, 0)
    with tenant_context(beta.tenant):
        beta_batch = _batch()
    other_brand = _code(beta, beta_batch, OUTER, 0)
    forged = bottle[:-1] + ("0" if bottle[-1] != "0" else "1")
    content = _csv(
        f"{case},{bottle}",  # fine on its own
        f"{case},{bottle}",  # the same child again
        f"{case},{other_brand}",
        f"{case},{forged}",
        f"{bottle},{case}",  # a case inside a bottle
        f"{case}",  # one column
        f"{case},not-a-code",
    )
    result = association.upload(content)
    assert _statuses(result) == [
        "linked",
        "duplicate",
        "wrong_brand",
        "unknown",
        "bad_nesting",
        "malformed",
        "malformed",
    ]
    assert not result.upload.applied
    assert result.upload.errors == 6
    assert CodeLink.objects.count() == 0
    messages = [entry.get("message", "") for entry in result.upload.report]
    assert all(message for message in messages[1:])
    assert result.upload.report[1]["first_line"] == 2


def test_a_child_already_packed_elsewhere_is_refused_and_the_same_link_is_fine(in_alpha: Brand) -> None:
    batch = _batch(bottles_per_case=6)
    case_a, case_b = _code(in_alpha, batch, CASE, 0), _code(in_alpha, batch, CASE, 1)
    bottle, other = _code(in_alpha, batch, INNER, 0), _code(in_alpha, batch, INNER, 1)
    association.upload(_csv(f"{case_a},{bottle}"))
    result = association.upload(_csv(f"{case_a},{bottle}", f"{case_b},{other}"))
    assert _statuses(result) == ["already", "linked"]
    assert result.upload.applied
    moved = association.upload(_csv(f"{case_b},{bottle}"))
    assert _statuses(moved) == ["taken"]
    assert not moved.upload.applied
    assert association.parent_of(SerialGroup.BOTTLE, batch.first_bottle_serial) == ("case", batch.first_case_serial)


def test_files_that_are_not_utf8_csv_or_too_big_are_refused(in_alpha: Brand, settings: Any) -> None:
    with pytest.raises(JiumaError) as refused:
        association.upload("父码,子码\n".encode("gbk"))
    assert refused.value.code == "invalid_upload"
    with pytest.raises(JiumaError):
        association.upload(b"x" * (association.MAX_BYTES + 1))


def test_two_uploads_packing_one_bottle_into_different_cases_at_once_cannot_both_win(alpha: Brand) -> None:
    """Committed in separate connections, as two packing lines would; cleaned up after."""
    from codes.models import AssociationUpload

    def run(jobs: list[Any]) -> list[Any]:
        return run_concurrently(jobs, tenant=alpha.tenant)

    keyring.clear()
    (batch,) = run([lambda: _batch(bottles_per_case=6)])
    assert isinstance(batch, Batch), batch
    try:
        bottle = _code(alpha, batch, OUTER, 0)
        files = [_csv(f"{_code(alpha, batch, CASE, index)},{bottle}") for index in (0, 1)]
        outcomes = run([lambda content=content: association.upload(content) for content in files])
        applied = [item for item in outcomes if isinstance(item, association.UploadResult) and item.upload.applied]
        refused = [
            item for item in outcomes if not isinstance(item, association.UploadResult) or not item.upload.applied
        ]
        assert len(applied) == 1, outcomes
        assert len(refused) == 1, outcomes
        loser = refused[0]
        if isinstance(loser, association.UploadResult):
            assert [entry["status"] for entry in loser.upload.report] == ["taken"]
        else:
            assert isinstance(loser, JiumaError)
            assert loser.code == "upload_conflict"
    finally:

        def cleanup() -> None:
            CodeLink.objects.all().delete()
            AssociationUpload.objects.all().delete()
            Batch.objects.filter(pk=batch.pk).delete()

        run([cleanup])
