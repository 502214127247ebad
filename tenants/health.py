"""Liveness and readiness for load balancers: database, broker, migrations current."""

from __future__ import annotations

import time
from dataclasses import dataclass, field

from django.conf import settings
from django_tenants.utils import get_public_schema_name, schema_context

from tenants.db import connection
from tenants.migration_state import pending_schemas

# Checking every schema's migrations is cheap but not free: cache that part briefly.
_MIGRATION_CHECK_TTL_S = 30.0
_migration_cache: dict[str, tuple[float, dict[str, object]]] = {}


@dataclass
class Readiness:
    checks: dict[str, dict[str, object]] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return all(check.get("ok") for check in self.checks.values())

    def as_dict(self) -> dict[str, object]:
        return {"status": "ok" if self.ok else "unavailable", "checks": self.checks}


def check_database() -> dict[str, object]:
    started = time.perf_counter()
    try:
        with schema_context(get_public_schema_name()), connection.cursor() as cursor:
            cursor.execute("SELECT 1")
            cursor.fetchone()
    except Exception as exc:
        return {"ok": False, "error": type(exc).__name__}
    return {"ok": True, "ms": round((time.perf_counter() - started) * 1000, 2)}


def check_broker() -> dict[str, object]:
    from kombu.connection import Connection

    started = time.perf_counter()
    try:
        with Connection(settings.CELERY_BROKER_URL, connect_timeout=2) as conn:  # type: ignore[no-untyped-call]
            conn.ensure_connection(max_retries=1, timeout=2)
    except Exception as exc:
        return {"ok": False, "error": type(exc).__name__}
    return {"ok": True, "ms": round((time.perf_counter() - started) * 1000, 2)}


def check_migrations() -> dict[str, object]:
    cached = _migration_cache.get("result")
    if cached is not None and cached[0] > time.monotonic():
        return cached[1]
    from tenants.models import Tenant, TenantStatus

    try:
        with schema_context(get_public_schema_name()):
            schemas = [
                get_public_schema_name(),
                *Tenant.objects.filter(status__in=[TenantStatus.READY, TenantStatus.SUSPENDED]).values_list(
                    "schema_name", flat=True
                ),
            ]
            pending = pending_schemas(schemas)
    except Exception as exc:
        return {"ok": False, "error": type(exc).__name__}
    result: dict[str, object] = {"ok": not pending, "schemas": len(schemas), "pending": len(pending)}
    _migration_cache["result"] = (time.monotonic() + _MIGRATION_CHECK_TTL_S, result)
    return result


def readiness() -> Readiness:
    report = Readiness()
    report.checks["database"] = check_database()
    report.checks["broker"] = check_broker()
    if report.checks["database"]["ok"]:
        report.checks["migrations"] = check_migrations()
    return report
