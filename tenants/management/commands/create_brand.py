"""Onboard a brand from the command line (ops). Prints the admin password when one was generated."""

from __future__ import annotations

import time
from typing import Any

from django.core.management.base import BaseCommand, CommandError

from tenants import services
from tenants.errors import JiumaError
from tenants.models import Tenant, TenantStatus


class Command(BaseCommand):
    help = "Create a brand with its domain, plan and first admin; its schema is provisioned by a Celery worker."

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("code", help="brand code: 2-31 lower-case letters/digits, e.g. moutai")
        parser.add_argument("--name", required=True, help="brand display name, e.g. 茅台")
        parser.add_argument("--plan", default="standard")
        parser.add_argument("--domain", default=None, help="host name; default <code>.<JIUMA_BRAND_BASE_DOMAIN>")
        parser.add_argument("--admin", default="admin", help="first brand admin's username")
        parser.add_argument("--admin-password", default=None, help="default: generated and printed once")
        parser.add_argument("--contact-name", default="")
        parser.add_argument("--contact-phone", default="")
        parser.add_argument(
            "--sync", action="store_true", help="provision in this process instead of waiting for a Celery worker"
        )
        parser.add_argument("--wait", type=float, default=0.0, help="seconds to wait for the brand to become ready")

    def handle(self, *args: Any, **opts: Any) -> None:
        try:
            created = services.create_brand(
                code=opts["code"],
                name=opts["name"],
                plan_code=opts["plan"],
                domain=opts["domain"],
                admin_username=opts["admin"],
                admin_password=opts["admin_password"],
                contact_name=opts["contact_name"],
                contact_phone=opts["contact_phone"],
            )
        except JiumaError as exc:
            raise CommandError(f"{exc.code}: {exc.message}") from exc
        tenant = created.tenant
        self.stdout.write(f"brand {tenant.code} registered (schema {tenant.schema_name}), status {tenant.status}")
        if opts["sync"]:
            op = services.provision(created.operation.pk)
            self.stdout.write(f"provisioned: {op.status} {op.result}")
        elif opts["wait"]:
            deadline = time.monotonic() + opts["wait"]
            while time.monotonic() < deadline:
                tenant = Tenant.objects.get(pk=tenant.pk)
                if tenant.status != TenantStatus.PENDING:
                    break
                time.sleep(0.1)
        tenant = Tenant.objects.get(pk=tenant.pk)
        self.stdout.write(f"status: {tenant.status}")
        self.stdout.write(f"admin: {created.admin_username}")
        if created.generated_password:
            self.stdout.write(f"admin password (shown once): {created.generated_password}")
