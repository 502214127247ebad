"""Sign-in events into the audit log (Django reports them only as signals)."""

from __future__ import annotations

from typing import Any

from django_tenants.utils import get_public_schema_name

from tenants.brand import audit
from tenants.brand.models import AuditAction
from tenants.db import connection


def _in_brand() -> bool:
    return bool(connection.schema_name) and connection.schema_name != get_public_schema_name()


def on_login(sender: Any, request: Any, user: Any, **kwargs: Any) -> None:
    if _in_brand():
        audit.record(AuditAction.LOGIN, obj=user, actor=user)


def on_logout(sender: Any, request: Any, user: Any, **kwargs: Any) -> None:
    if _in_brand() and user is not None:
        audit.record(AuditAction.LOGOUT, obj=user, actor=user)


def on_login_failed(sender: Any, credentials: dict[str, Any], request: Any = None, **kwargs: Any) -> None:
    if _in_brand():
        username = str(credentials.get("username", ""))[:150]
        audit.record(
            AuditAction.LOGIN_FAILED,
            object_type="brand.user",
            object_repr=username,
            detail="wrong credentials or locked",
        )
