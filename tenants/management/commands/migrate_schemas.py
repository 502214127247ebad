"""migrate_schemas that skips brand schemas already at the latest migration.

Stock django-tenants runs Django's migrate in every schema even when nothing is pending, which
takes minutes at a thousand brands. Here the pending schemas are found first with two catalogue
queries (tenants.migration_state) and only those are migrated. The template tenant is migrated
too, so cloning from it stays correct. `--all-schemas` runs migrate in every one of those schemas,
pending or not (the stock command would also visit deleted brands, whose schema is gone, and fail).
Explicit schema, app label, --fake or --plan runs go to the stock command unchanged.
"""

from __future__ import annotations

import time
from typing import Any

from django.conf import settings
from django_tenants.management.commands.migrate_schemas import Command as StockCommand
from django_tenants.migration_executors import get_executor

from tenants.migration_state import existing_schemas, pending_schemas
from tenants.models import Tenant, TenantStatus


class Command(StockCommand):
    help = "Migrate the public schema and every brand schema that has migrations left to apply."

    def add_arguments(self, parser: Any) -> None:
        super().add_arguments(parser)
        parser.add_argument(
            "--all-schemas",
            action="store_true",
            dest="all_schemas",
            help="Run migrate in every brand schema, even those already up to date.",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        selective = any(
            options.get(k)
            for k in (
                "schema_name",
                "app_label",
                "migration_name",
                "fake",
                "plan",
                "fake_initial",
                "prune",
                "check_unapplied",
            )
        )
        if selective:
            super().handle(*args, **options)
            return
        run_public = options.get("shared") or not options.get("tenant")
        run_tenants = options.get("tenant") or not options.get("shared")
        if run_public:
            super().handle(*args, **{**options, "shared": True, "tenant": False})
        if run_tenants:
            self._migrate_pending_tenants(args, options)

    def _migrate_pending_tenants(self, args: tuple[Any, ...], options: dict[str, Any]) -> None:
        started = time.perf_counter()
        # Brands still being provisioned are migrated by their provisioning job, not here.
        brands = Tenant.objects.filter(status__in=[TenantStatus.READY, TenantStatus.SUSPENDED]).order_by("pk")
        schemas = [settings.TENANT_TEMPLATE_SCHEMA, *brands.values_list("schema_name", flat=True)]
        schemas = existing_schemas(schemas)
        if options.get("all_schemas"):
            pending = schemas
            summary = f"--all-schemas: migrating all {len(schemas)} brand schemas."
        else:
            pending = pending_schemas(schemas)
            summary = (
                f"{len(schemas) - len(pending)} of {len(schemas)} brand schemas are up to date "
                f"(checked in {time.perf_counter() - started:.2f} s); migrating {len(pending)}."
            )
        if int(options.get("verbosity", 1)) >= 1:
            self.stdout.write(summary)
        if pending:
            executor = get_executor(codename=options.get("executor"))(args, options)
            executor.run_migrations(tenants=pending)
