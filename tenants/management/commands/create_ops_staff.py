"""Create or update a platform (ops) staff account and optionally issue an API token."""

from __future__ import annotations

import getpass
from typing import Any

from django.core.management.base import BaseCommand, CommandError

from tenants.models import OpsToken, PlatformRole, PlatformStaff


class Command(BaseCommand):
    help = "Create or update a platform staff account; --token prints a new API token once."

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("username")
        parser.add_argument("--password", default=None)
        parser.add_argument("--role", choices=[r.value for r in PlatformRole], default=PlatformRole.ADMIN.value)
        parser.add_argument("--display-name", default="")
        parser.add_argument("--token", action="store_true", help="issue an API token and print it")
        parser.add_argument("--token-value", default=None, help=f"use this token (must start with {OpsToken.PREFIX})")

    def handle(self, *args: Any, **opts: Any) -> None:
        staff, created = PlatformStaff.objects.get_or_create(username=opts["username"])
        staff.role = opts["role"]
        staff.display_name = opts["display_name"] or staff.display_name
        password = opts["password"]
        if created and not password:
            password = getpass.getpass("password: ")
        if password:
            if len(password) < 10:
                raise CommandError("password must be at least 10 characters")
            staff.set_password(password)
        staff.save()
        self.stdout.write(f"{'created' if created else 'updated'} ops staff {staff.username} ({staff.role})")
        if opts["token"] or opts["token_value"]:
            raw = opts["token_value"] or OpsToken.new_raw_key()
            if not raw.startswith(OpsToken.PREFIX) or len(raw) < 24:
                raise CommandError(f"token must start with {OpsToken.PREFIX} and be at least 24 characters")
            OpsToken.objects.get_or_create(
                key_hash=OpsToken.hash_key(raw), defaults={"staff": staff, "key_hint": raw[:8], "name": "cli"}
            )
            self.stdout.write(f"token: {raw}")
