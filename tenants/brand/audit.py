"""The audit log: every write by brand staff, through the admin or the API, lands here.

Services and the admin/API base classes call `record()`. The request context (who, IP, client,
request id) is taken from the AuditContextMiddleware, so callers pass only what changed. A write
request that recorded nothing more specific still leaves one `request` entry (see the middleware),
so no staff write goes unlogged.
"""

from __future__ import annotations

import json
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Any

from django.core.serializers.json import DjangoJSONEncoder
from django.db import models
from django.forms.models import model_to_dict

from tenants.brand.models import AuditAction, AuditEntry

# Never copied into the log.
_SECRET_FIELDS = {"password", "secret", "token", "key_hash", "password_hash"}


@dataclass
class AuditContext:
    actor_id: int | None = None
    actor_name: str = ""
    ip: str | None = None
    user_agent: str = ""
    request_id: str = ""
    via: str = "system"
    recorded: int = field(default=0)


_context: ContextVar[AuditContext | None] = ContextVar("audit_context", default=None)


def set_context(ctx: AuditContext | None) -> Any:
    return _context.set(ctx)


def reset_context(token: Any) -> None:
    _context.reset(token)


def current_context() -> AuditContext | None:
    return _context.get()


def snapshot(instance: models.Model) -> dict[str, Any]:
    """A JSON-safe copy of a model's concrete fields, secrets masked."""
    data = model_to_dict(instance, fields=[f.name for f in instance._meta.concrete_fields])
    for name in list(data):
        if name in _SECRET_FIELDS:
            data[name] = "***"
    result: dict[str, Any] = json.loads(json.dumps(data, cls=DjangoJSONEncoder, default=str))
    return result


def changed_only(before: dict[str, Any] | None, after: dict[str, Any] | None) -> tuple[Any, Any]:
    if before is None or after is None:
        return before, after
    keys = [k for k in after if before.get(k) != after.get(k)]
    return {k: before.get(k) for k in keys}, {k: after[k] for k in keys}


def record(
    action: AuditAction | str,
    *,
    obj: models.Model | None = None,
    object_type: str = "",
    object_id: str = "",
    object_repr: str = "",
    before: dict[str, Any] | None = None,
    after: dict[str, Any] | None = None,
    detail: str = "",
    actor: Any = None,
) -> AuditEntry:
    ctx = current_context() or AuditContext()
    if obj is not None:
        object_type = object_type or obj._meta.label_lower
        object_id = object_id or str(obj.pk)
        object_repr = object_repr or str(obj)[:200]
    actor_id = getattr(actor, "pk", None) if actor is not None else ctx.actor_id
    actor_name = (getattr(actor, "username", "") if actor is not None else ctx.actor_name) or "system"
    entry = AuditEntry.objects.create(
        actor_id=actor_id,
        actor_name=actor_name,
        action=str(action),
        object_type=object_type,
        object_id=object_id,
        object_repr=object_repr[:200],
        before=before,
        after=after,
        detail=detail[:300],
        ip=ctx.ip,
        user_agent=ctx.user_agent[:300],
        request_id=ctx.request_id,
        via=ctx.via,
    )
    ctx.recorded += 1
    return entry
