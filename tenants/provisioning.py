"""Building and dropping brand schemas.

Two ways to build a schema, chosen by TENANT_PROVISIONING_METHOD (benchmarks/tenant_scale.py
measures both): "migrate" runs every tenant migration in a new schema; "clone" copies the template
tenant, a real schema that migrate_schemas keeps fully migrated, and fake-applies its migrations.
"""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core.management import call_command
from django_tenants.clone import CloneSchema
from django_tenants.utils import get_public_schema_name, quote_schema_name, schema_exists

from tenants.db import connection
from tenants.migration_state import pending_schemas


def drop_schema(schema_name: str) -> None:
    if schema_name == get_public_schema_name():
        raise ValueError("the public schema is never dropped")
    with connection.cursor() as cursor:
        cursor.execute(f"DROP SCHEMA IF EXISTS {quote_schema_name(schema_name)} CASCADE")


def _migrate(schema_name: str) -> None:
    call_command("migrate_schemas", tenant=True, schema_name=schema_name, interactive=False, verbosity=0)
    connection.set_schema_to_public()


def ensure_template() -> None:
    """Create the template tenant schema if missing, and bring it up to date."""
    template = settings.TENANT_TEMPLATE_SCHEMA
    connection.set_schema_to_public()
    if not schema_exists(template):
        with connection.cursor() as cursor:
            cursor.execute(f"CREATE SCHEMA {quote_schema_name(template)}")
    if pending_schemas([template]):
        _migrate(template)


def build_schema(schema_name: str, method: str | None = None) -> str:
    """Create `schema_name` fully migrated. A leftover of a failed attempt is dropped first."""
    method = method or settings.TENANT_PROVISIONING_METHOD
    connection.set_schema_to_public()
    if schema_exists(schema_name):
        # Only reached for brands that never became ready: nothing in it is worth keeping.
        drop_schema(schema_name)
    if method == "clone":
        ensure_template()
        CloneSchema().clone_schema(settings.TENANT_TEMPLATE_SCHEMA, schema_name, "DATA")
        call_command("migrate_schemas", tenant=True, schema_name=schema_name, fake=True, interactive=False, verbosity=0)
        connection.set_schema_to_public()
    else:
        with connection.cursor() as cursor:
            cursor.execute(f"CREATE SCHEMA {quote_schema_name(schema_name)}")
        _migrate(schema_name)
    return method


def create_brand_defaults(*, brand_name: str, admin: dict[str, Any]) -> None:
    """Inside the new schema: roles, the brand profile and the first owner account."""
    from tenants.brand.models import BrandProfile, User
    from tenants.brand.roles import Role, sync_roles

    assert connection.schema_name != get_public_schema_name()
    groups = sync_roles()
    BrandProfile.objects.update_or_create(id=1, defaults={"display_name": brand_name})
    user, _ = User.objects.update_or_create(
        username=admin["username"],
        defaults={
            "password": admin["password_hash"],
            "phone": admin.get("phone", ""),
            "is_staff": True,
            "is_active": True,
        },
    )
    user.groups.add(groups[Role.OWNER])
