"""Periodic jobs: tenant-aware beat that sends tenant jobs only to brands whose schema is ready.

An entry with `"tenant_schemas": ["public"]` is a platform job and runs once in the public schema;
an entry without `tenant_schemas` runs in every ready brand.
"""

from __future__ import annotations

from typing import Any

from django_tenants.utils import get_public_schema_name, schema_context
from tenant_schemas_celery.scheduler import TenantAwarePersistentScheduler

from tenants.models import Tenant, TenantStatus


class ReadyTenantScheduler(TenantAwarePersistentScheduler):
    @classmethod
    def get_queryset(cls) -> Any:
        # A brand still being provisioned has no tables yet; a suspended one does no background work.
        return Tenant.objects.filter(status=TenantStatus.READY)

    def apply_entry(self, entry: Any, producer: Any = None) -> None:
        headers = entry.options.setdefault("headers", {})
        if headers.get("_schema_name") == get_public_schema_name():
            with schema_context(get_public_schema_name()):
                self.apply_async(entry, producer=producer, advance=False)
            return
        super().apply_entry(entry, producer=producer)
