"""Celery tasks of the platform: thin wrappers over services, stable names, ids not objects."""

from __future__ import annotations

from typing import Any

from celery import shared_task

from tenants import export, services
from tenants.db import connection


@shared_task(name="tenants.provision_tenant", acks_late=True, max_retries=0)
def provision_tenant(operation_id: int) -> dict[str, Any]:
    op = services.provision(operation_id)
    return {"operation": op.pk, "status": op.status}


@shared_task(name="tenants.export_tenant_data", acks_late=True, max_retries=0)
def export_tenant_data(operation_id: int) -> dict[str, Any]:
    # Runs in the brand's schema: it was sent from there (services._enqueue_export).
    op = export.run_export(operation_id)
    return {"operation": op.pk, "status": op.status}


@shared_task(name="tenants.sweep_stuck_provisioning")
def sweep_stuck_provisioning() -> list[int]:
    return services.requeue_stale_provisioning()


@shared_task(name="tenants.current_schema")
def current_schema() -> str:
    """Reports the schema a task runs in (used by readiness checks and tests of task routing)."""
    return str(connection.schema_name)
