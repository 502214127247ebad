"""The error type every service raises for a refusal a user can understand.

Each app defines its own codes (a StrEnum) and raises `JiumaError(code, message)`; the API turns it
into HTTP 4xx with `{"code": ..., "message": ...}` where the message is Simplified Chinese.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Any


class JiumaError(Exception):
    status_code = 400

    def __init__(
        self, code: StrEnum | str, message: str, *, status: int | None = None, fields: dict[str, Any] | None = None
    ) -> None:
        super().__init__(message)
        self.code = str(code)
        self.message = str(message)
        self.fields = fields or {}
        if status is not None:
            self.status_code = status


class NotFound(JiumaError):
    status_code = 404


class Conflict(JiumaError):
    status_code = 409


class TenantErrorCode(StrEnum):
    INVALID_CODE = "invalid_brand_code"
    CODE_TAKEN = "brand_code_taken"
    INVALID_DOMAIN = "invalid_domain"
    DOMAIN_TAKEN = "domain_taken"
    UNKNOWN_PLAN = "unknown_plan"
    INVALID_ADMIN = "invalid_admin_account"
    NOT_FOUND = "brand_not_found"
    WRONG_STATUS = "brand_wrong_status"
    OPERATION_RUNNING = "operation_running"
    EXPORT_REQUIRED = "export_required"
    CONFIRMATION_MISMATCH = "confirmation_mismatch"
    CONFIRMATION_EXPIRED = "confirmation_expired"
    QUOTA_EXCEEDED = "quota_exceeded"
    KEY_VERSIONS_EXHAUSTED = "code_key_versions_exhausted"
