"""The demo brand's codes: a product with a small, activated batch, and scan URLs to try.

Run by `make demo` after seed_demo (public demo data: refuses production).
"""

from __future__ import annotations

import os
from typing import Any

from django.core.management.base import BaseCommand, CommandError
from django_tenants.utils import tenant_context

from codes import format as code_format
from codes import services
from codes.keyring import keyring
from codes.models import Batch, CodeStatus
from commerce.models import Product, Sku
from tenants.models import Tenant


class Command(BaseCommand):
    help = "Give the demo brand a product and an activated code batch, and print scan URLs."

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("--brand", default="demo")

    def handle(self, *args: Any, **opts: Any) -> None:
        if os.environ.get("JIUMA_ENV") == "production":
            raise CommandError("demo data; refusing in production")
        tenant = Tenant.objects.filter(code=opts["brand"]).first()
        if tenant is None:
            raise CommandError(f"no brand {opts['brand']!r}; run seed_demo first")
        with tenant_context(tenant):
            batch = Batch.objects.order_by("pk").first()
            if batch is None:
                product, _ = Product.objects.get_or_create(name="演示酱香 经典款")
                sku, _ = Sku.objects.get_or_create(
                    code="DEMO-53-500", defaults={"product": product, "spec": "53%vol 500ml×6瓶/箱"}
                )
                batch = services.create_batch(
                    services.BatchRequest(
                        bottles=120, bottles_per_case=6, sku_id=sku.pk, production_line="演示1号线", max_downloads=10
                    )
                )
                services.set_batch_status(batch, CodeStatus.ACTIVE)
            key = keyring.key(tenant.number, batch.key_version)
            if key is None:
                raise CommandError("the demo brand's code key is unavailable (master key changed?)")
            first = batch.first_bottle_serial or 0
            prefix = services.url_prefix()
            self.stdout.write(f"demo batch {batch.number}: {batch.bottles} bottles in {batch.cases} cases")
            self.stdout.write(
                f"  outer code (authenticity): {prefix}{code_format.make(key, code_format.Kind.OUTER, first)}"
            )
            self.stdout.write(
                f"  inner code, same bottle:   {prefix}{code_format.make(key, code_format.Kind.INNER, first)}"
            )
