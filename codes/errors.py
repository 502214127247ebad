"""Machine-readable codes of the refusals in codes/ (messages are Simplified Chinese)."""

from __future__ import annotations

from enum import StrEnum


class CodeErrorCode(StrEnum):
    NO_BRAND = "no_brand"
    INVALID_BATCH = "invalid_batch"
    QUOTA_EXCEEDED = "code_quota_exceeded"
    SERIALS_EXHAUSTED = "serials_exhausted"
    WRONG_STATUS = "batch_wrong_status"
    PASSWORD_SHOWN = "package_password_already_shown"  # noqa: S105 (an error code)
    DOWNLOADS_EXHAUSTED = "downloads_exhausted"
    ALREADY_BOUND = "batch_already_bound"
    INVALID_RANGE = "invalid_serial_range"
    NOT_ISSUED = "serials_not_issued"
    INVALID_UPLOAD = "invalid_upload"
    UPLOAD_CONFLICT = "upload_conflict"
    INVALID_PLACE_TOKEN = "invalid_place_token"  # noqa: S105 (an error code)
    PLACE_TOKEN_EXPIRED = "place_token_expired"  # noqa: S105
    INVALID_POSITION = "invalid_position"
    ALREADY_LOCATED = "scan_already_located"
