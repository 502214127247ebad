"""Association (关联): packing-line uploads of parent→child links, pallet→case→bottle.

A file is CSV lines `parent,child` (codes as printed or their scan URLs; an optional header).
Every line is checked: malformed, another brand's code, a code we never issued, kinds that do not
nest (bottle in case, case in pallet), a child listed twice, a child already packed elsewhere.
The file is applied whole or not at all; the per-line report says what each line is. Uploading
the same file again returns its first report and changes nothing.
"""

from __future__ import annotations

import csv
import hashlib
import io
from collections.abc import Iterable
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from django.db import IntegrityError, transaction
from django.db.models import Q
from django.utils.translation import gettext as _

from codes import format as code_format
from codes.errors import CodeErrorCode
from codes.keyring import check
from codes.models import AssociationUpload, Batch, CodeLink, SerialGroup
from codes.services import batch_of, cached_batch_of, current_tenant
from tenants.brand import audit
from tenants.errors import Conflict, JiumaError

MAX_LINES = 200_000
MAX_BYTES = 20 * 1024 * 1024


class LineStatus(StrEnum):
    LINKED = "linked"  # new link
    ALREADY = "already"  # the same link exists: nothing to do
    MALFORMED = "malformed"
    WRONG_BRAND = "wrong_brand"
    UNKNOWN = "unknown"  # not a genuine code of this brand, or never issued
    BAD_NESTING = "bad_nesting"
    DUPLICATE = "duplicate"  # the child appears earlier in the file
    TAKEN = "taken"  # the child is already packed in another parent


_MESSAGES = {
    LineStatus.MALFORMED: "格式错误：每行应为“父码,子码”。",
    LineStatus.WRONG_BRAND: "不是本品牌的码。",
    LineStatus.UNKNOWN: "码无效或未发放。",
    LineStatus.BAD_NESTING: "包装层级不对：瓶码只能关联到箱码，箱码只能关联到托盘码。",
    LineStatus.DUPLICATE: "子码在文件中重复出现。",
    LineStatus.TAKEN: "子码已关联到其他箱/托盘。",
}
_NESTS = {SerialGroup.BOTTLE: SerialGroup.CASE, SerialGroup.CASE: SerialGroup.PALLET}
ERRORS = frozenset(_MESSAGES)


@dataclass(frozen=True)
class UploadResult:
    upload: AssociationUpload
    repeated: bool  # the same file was applied before; nothing changed now


def _identify(cell: str, brand_number: int, batches: dict[tuple[str, int], Batch | None]) -> Any:
    """(group, serial) of a cell, or the LineStatus saying why not."""
    text = code_format.from_scan(cell)
    parsed = code_format.parse(text)
    if parsed is None:
        return LineStatus.MALFORMED
    if code_format.brand_number(parsed[0]) != brand_number:
        return LineStatus.WRONG_BRAND
    code = check(text, tenant_number=brand_number)
    if code is None:
        return LineStatus.UNKNOWN
    group = SerialGroup.of(code.kind)
    key = (group, code.serial)
    if key not in batches:
        batches[key] = batch_of(group, code.serial)
    if batches[key] is None:
        return LineStatus.UNKNOWN
    return key


def _rows(content: bytes) -> Iterable[tuple[int, list[str]]]:
    try:
        text = content.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise JiumaError(CodeErrorCode.INVALID_UPLOAD, _("文件须为 UTF-8 编码的 CSV。")) from exc
    for number, row in enumerate(csv.reader(io.StringIO(text)), start=1):
        if not row or not any(cell.strip() for cell in row):
            continue
        if number == 1 and row[0].strip().lower() in ("parent", "父码", "parent_code"):
            continue
        yield number, row


def upload(content: bytes, *, filename: str = "", source: str = "upload", actor: Any = None) -> UploadResult:
    """Check every line and apply the file if all lines are good (idempotent per file content)."""
    if len(content) > MAX_BYTES:
        raise JiumaError(CodeErrorCode.INVALID_UPLOAD, _("文件过大（上限 20 MB），请分批上传。"))
    digest = hashlib.sha256(content).hexdigest()
    earlier = AssociationUpload.objects.filter(sha256=digest, applied=True).first()
    if earlier is not None:
        return UploadResult(earlier, repeated=True)

    brand_number = current_tenant().number
    batches: dict[tuple[str, int], Batch | None] = {}
    report: list[dict[str, Any]] = []
    wanted: dict[tuple[str, int], tuple[str, int]] = {}  # child -> parent, first occurrence
    line_of_child: dict[tuple[str, int], int] = {}
    for number, row in _rows(content):
        if len(report) >= MAX_LINES:
            raise JiumaError(CodeErrorCode.INVALID_UPLOAD, _("行数过多（上限 20 万行），请分批上传。"))
        entry: dict[str, Any] = {"line": number}
        report.append(entry)
        if len(row) != 2:
            entry["status"] = LineStatus.MALFORMED
            continue
        parent = _identify(row[0], brand_number, batches)
        child = _identify(row[1], brand_number, batches)
        problem = next((value for value in (parent, child) if isinstance(value, LineStatus)), None)
        if problem is not None:
            entry["status"] = problem
            entry["column"] = "parent" if isinstance(parent, LineStatus) else "child"
            continue
        if _NESTS.get(child[0]) != parent[0]:
            entry["status"] = LineStatus.BAD_NESTING
            continue
        if child in wanted:
            entry["status"] = LineStatus.DUPLICATE
            entry["first_line"] = line_of_child[child]
            continue
        wanted[child] = parent
        line_of_child[child] = number
        entry["status"] = LineStatus.LINKED
        entry["child"] = [child[0], child[1]]

    # Links already in the database: the same one is fine, another parent is a conflict.
    existing = _existing_parents(list(wanted))
    for entry in report:
        if entry["status"] != LineStatus.LINKED:
            continue
        child = (entry["child"][0], entry["child"][1])
        if child in existing:
            entry["status"] = LineStatus.ALREADY if existing[child] == wanted[child] else LineStatus.TAKEN
    for entry in report:
        entry.pop("child", None)
        if entry["status"] in ERRORS:
            entry["message"] = _(_MESSAGES[entry["status"]])
    errors = sum(1 for entry in report if entry["status"] in ERRORS)
    new_links = [] if errors else [(child, parent) for child, parent in wanted.items() if child not in existing]

    record = AssociationUpload(
        sha256=digest,
        filename=filename[:200],
        lines=len(report),
        errors=errors,
        linked=len(new_links),
        applied=not errors,
        report=[{**entry, "status": str(entry["status"])} for entry in report],
        source=source[:20],
        created_by=actor if getattr(actor, "pk", None) else None,
    )
    try:
        with transaction.atomic():
            record.save()
            CodeLink.objects.bulk_create(
                [
                    CodeLink(
                        child_group=child[0],
                        child_serial=child[1],
                        parent_group=parent[0],
                        parent_serial=parent[1],
                        upload=record,
                    )
                    for child, parent in new_links
                ],
                batch_size=5000,
            )
            audit.record(
                "create",
                obj=record,
                detail=f"association upload: {len(report)} lines, {len(new_links)} linked, {errors} errors",
                actor=actor,
            )
    except IntegrityError as exc:
        # Another upload linked one of these children (or applied this very file) meanwhile.
        raise Conflict(CodeErrorCode.UPLOAD_CONFLICT, _("有其他上传同时修改了这些关联，请重新上传。")) from exc
    return UploadResult(record, repeated=False)


def _existing_parents(children: list[tuple[str, int]]) -> dict[tuple[str, int], tuple[str, int]]:
    found: dict[tuple[str, int], tuple[str, int]] = {}
    for start in range(0, len(children), 2000):
        chunk = children[start : start + 2000]
        query = Q()
        for group, serial in chunk:
            query |= Q(child_group=group, child_serial=serial)
        for row in CodeLink.objects.filter(query).values_list(
            "child_group", "child_serial", "parent_group", "parent_serial"
        ):
            found[(row[0], row[1])] = (row[2], row[3])
    return found


def parent_of(group: SerialGroup, serial: int) -> tuple[str, int] | None:
    """The case of a bottle or the pallet of a case: an uploaded link, else sequential packing."""
    link = (
        CodeLink.objects.filter(child_group=group, child_serial=serial)
        .values_list("parent_group", "parent_serial")
        .first()
    )
    if link is not None:
        return (link[0], link[1])
    batch = cached_batch_of(group, serial)
    if batch is None:
        return None
    if group == SerialGroup.BOTTLE and batch.cases and batch.bottles_per_case:
        index = serial - (batch.first_bottle_serial or 0)
        return (SerialGroup.CASE, (batch.first_case_serial or 0) + index // batch.bottles_per_case)
    if group == SerialGroup.CASE and batch.pallets and batch.cases_per_pallet:
        index = serial - (batch.first_case_serial or 0)
        return (SerialGroup.PALLET, (batch.first_pallet_serial or 0) + index // batch.cases_per_pallet)
    return None
