"""Seed the demo: an ops account with a known token, and the demo brand with staff of every role.

Idempotent: running it again leaves an existing demo as it is. Provisioning goes through the
Celery worker like any onboarding, unless --sync.
"""

from __future__ import annotations

import os
import time
from typing import Any

from django.core.management import call_command
from django.core.management.base import BaseCommand, CommandError
from django_tenants.utils import schema_context

from tenants import services
from tenants.brand import services as staff_services
from tenants.brand.models import BrandProfile, User
from tenants.models import Tenant, TenantStatus

DEMO_OPS_USER = "ops"
# Demo credentials are public on purpose (make demo prints them); never seed a production system.
DEMO_OPS_PASSWORD = "Ops-demo-2026"  # noqa: S105
DEMO_OPS_TOKEN = "jmo_demo_ops_token_change_me_in_production"  # noqa: S105
DEMO_BRAND = "demo"
DEMO_OWNER = "owner"
DEMO_PASSWORD = "Demo-pass-2026"  # noqa: S105
DEMO_STAFF = {
    "operator": "运营小王",
    "finance": "财务小李",
    "warehouse": "仓库老张",
    "customer_service": "客服小陈",
}


class Command(BaseCommand):
    help = "Create the demo ops account and the demo brand (demo.localhost) with staff of every role."

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("--domain", default="demo.localhost")
        parser.add_argument("--sync", action="store_true", help="provision here instead of through Celery")
        parser.add_argument("--wait", type=float, default=60.0, help="seconds to wait for the worker")

    def handle(self, *args: Any, **opts: Any) -> None:
        if os.environ.get("JIUMA_ENV") == "production":
            raise CommandError("seed_demo creates accounts with public passwords; refusing in production")
        call_command(
            "create_ops_staff",
            DEMO_OPS_USER,
            password=DEMO_OPS_PASSWORD,
            role="admin",
            display_name="平台运营",
            token_value=DEMO_OPS_TOKEN,
            stdout=self.stdout,
        )
        tenant = Tenant.objects.filter(code=DEMO_BRAND).first()
        if tenant is None:
            created = services.create_brand(
                code=DEMO_BRAND,
                name="贵州演示酒业",
                plan_code="standard",
                domain=opts["domain"],
                admin_username=DEMO_OWNER,
                admin_password=DEMO_PASSWORD,
                contact_name="演示联系人",
                contact_phone="400-800-8888",
            )
            tenant = created.tenant
            if opts["sync"]:
                services.provision(created.operation.pk)
        deadline = time.monotonic() + opts["wait"]
        while tenant.status == TenantStatus.PENDING and time.monotonic() < deadline:
            time.sleep(0.2)
            tenant.refresh_from_db()
        if tenant.status != TenantStatus.READY:
            raise CommandError(
                f"demo brand is {tenant.status}; is the Celery worker running? (see `manage.py seed_demo --sync`)"
            )
        with schema_context(tenant.schema_name):
            BrandProfile.objects.filter(id=1).update(
                slogan="一瓶一码，扫码验真，开瓶有礼", service_phone="400-800-8888"
            )
            for role, name in DEMO_STAFF.items():
                if not User.objects.filter(username=role).exists():
                    staff_services.create_staff(username=role, password=DEMO_PASSWORD, role=role, display_name=name)
        self.stdout.write(f"demo brand ready: {tenant.name} ({tenant.code})")
