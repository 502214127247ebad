"""A benchmark database with one ready brand, prepared in this process.

Each benchmark names its own database (on the server of DATABASE_URL or .local/services.env), so a
benchmark never touches the development data and re-runs reuse what an earlier run built.
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path
from types import ModuleType
from typing import Any
from urllib.parse import urlsplit, urlunsplit

ROOT = Path(__file__).resolve().parents[2]


def say(message: str) -> None:
    print(message, flush=True)


def services_module() -> ModuleType:
    """platform/local/services.py (config.local_tools)."""
    from config.local_tools import local_module

    return local_module("services")


def database_url(name: str) -> str:
    """The URL of database `name` on the configured server; the database is created if missing."""
    services = services_module()
    url = os.environ.get("DATABASE_URL")
    if not url:
        env_file: Path = services.env_file_path(os.environ)
        try:
            url = services.parse_env_file(env_file.read_text()).get("DATABASE_URL")
        except OSError:
            url = None
    if not url:
        raise SystemExit("no DATABASE_URL in the environment or .local/services.env: run `make services` first")
    bench_url = urlunsplit(urlsplit(url)._replace(path=f"/{name}"))
    services.ensure_database(bench_url)
    return str(bench_url)


def setup_django(database_name: str, **settings_env: str) -> str:
    """Point this process at the benchmark database and start Django. Returns the database URL."""
    url = database_url(database_name)
    os.environ["DATABASE_URL"] = url
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    os.environ.setdefault("LOG_LEVEL", "WARNING")
    os.environ.update(settings_env)
    if str(ROOT) not in sys.path:
        sys.path.insert(0, str(ROOT))
    import django

    django.setup()
    return url


def ready_brand(code: str, name: str, domain: str) -> Any:
    """The brand `code`, migrated and ready; created and provisioned synchronously if missing."""
    from django.core.management import call_command
    from django_tenants.utils import get_public_schema_name

    from tenants import services
    from tenants.migration_state import pending_schemas
    from tenants.models import Tenant, TenantStatus

    started = time.perf_counter()
    if pending_schemas([get_public_schema_name()]):
        say("  migrating the public schema")
        call_command("migrate_schemas", shared=True, interactive=False, verbosity=0)
    tenant = Tenant.objects.filter(code=code).first()
    if tenant is None:
        say(f"  creating brand {code} ({domain}) and provisioning its schema")
        made = services.create_brand(
            code=code, name=name, plan_code="enterprise", domain=domain, admin_username="admin"
        )
        services.provision(made.operation.pk)
        tenant = Tenant.objects.get(pk=made.tenant.pk)
    elif pending_schemas([tenant.schema_name]):
        say(f"  migrating brand schema {tenant.schema_name}")
        call_command("migrate_schemas", interactive=False, verbosity=0)
    if tenant.status != TenantStatus.READY:
        raise SystemExit(f"benchmark brand {code} is {tenant.status}; drop the database and run again")
    say(f"  brand {code} ready ({time.perf_counter() - started:.1f} s)")
    return tenant
