"""Re-wrap every brand's code secrets under the current master key (after a master-key rotation)."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand

from tenants import code_keys


class Command(BaseCommand):
    help = "Re-wrap all code secrets under the first key of JIUMA_MASTER_KEYS (or the configured ring)."

    def handle(self, *args: Any, **options: Any) -> None:
        count = code_keys.rewrap_all()
        self.stdout.write(f"re-wrapped {count} code secrets")
