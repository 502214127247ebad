"""Create a code batch for a brand and generate its printer package here, with progress.

    manage.py create_code_batch BRAND --bottles 1000000 --per-case 6 [--per-pallet 40] [--sku CODE]

The package password is printed once (and erased, as in the console); the package is then
downloadable in the brand console within the download limit.
"""

from __future__ import annotations

import sys
import time
from typing import Any
from unittest import mock

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django_tenants.utils import tenant_context

from codes import services
from commerce.models import Sku
from tenants.errors import JiumaError
from tenants.models import Tenant, TenantStatus


class Command(BaseCommand):
    help = "Create a code batch for a brand and generate its printer package, showing progress."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("brand", help="brand code")
        parser.add_argument("--bottles", type=int, required=True)
        parser.add_argument("--per-case", type=int, default=0, help="bottles per case (0: no case codes)")
        parser.add_argument("--per-pallet", type=int, default=0, help="cases per pallet (0: no pallet codes)")
        parser.add_argument("--no-inner", action="store_true", help="no inner (under-cap) codes")
        parser.add_argument("--no-outer", action="store_true", help="no outer codes")
        parser.add_argument("--sku", help="SKU code to bind the batch to (blank batch if omitted)")
        parser.add_argument("--line", default="", help="production line")
        parser.add_argument("--downloads", type=int, default=3, help="allowed downloads of the package")

    def handle(self, *args: Any, **opts: Any) -> None:
        tenant = Tenant.objects.filter(code=opts["brand"]).first()
        if tenant is None or tenant.status != TenantStatus.READY:
            raise CommandError(f"no ready brand {opts['brand']!r}")
        with tenant_context(tenant):
            sku_id = None
            if opts["sku"]:
                sku = Sku.objects.filter(code=opts["sku"]).first()
                if sku is None:
                    raise CommandError(f"no SKU {opts['sku']!r}")
                sku_id = sku.pk
            request = services.BatchRequest(
                bottles=opts["bottles"],
                has_inner=not opts["no_inner"],
                has_outer=not opts["no_outer"],
                bottles_per_case=opts["per_case"],
                cases_per_pallet=opts["per_pallet"],
                sku_id=sku_id,
                production_line=opts["line"],
                max_downloads=opts["downloads"],
            )
            try:
                # Generated here, with progress, rather than by the worker.
                with mock.patch.object(services, "_enqueue_generation"):
                    batch = services.create_batch(request)
            except JiumaError as exc:
                raise CommandError(f"{exc.message} {exc.fields or ''}") from exc
            self.stdout.write(f"batch {batch.number}: {batch.code_count:,} codes")
            started = time.perf_counter()

            def progress(percent: int) -> None:
                bar = "#" * (percent // 5)
                sys.stdout.write(f"\r  [{bar:<20}] {percent:3d}%")
                sys.stdout.flush()

            done = services.generate_package(batch.pk, on_progress=progress)
            progress(100)
            sys.stdout.write("\n")
            seconds = time.perf_counter() - started
            self.stdout.write(
                f"package ready in {seconds:.1f} s: {done.package_bytes / 1e6:.1f} MB, sha256 {done.package_sha256}"
            )
            password = services.reveal_password(done)
            self.stdout.write(f"package password (shown once, write it down): {password}")
