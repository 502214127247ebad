"""migrate_schemas migrates only the brand schemas with migrations left, found by two catalogue queries."""

from __future__ import annotations

from io import StringIO
from typing import Any

import pytest
from django.conf import settings
from django.core.management import call_command
from django.db import connection

from tenants import migration_state
from tenants.migration_state import existing_schemas, is_up_to_date, pending_schemas
from tenants.models import Tenant, TenantStatus
from tests.conftest import Brand

# A leaf migration whose operations change nothing in the database (only `choices`), so applying it
# again is harmless; nothing depends on it, so Django accepts the history without it.
LEAF = ("admin", "0003_logentry_add_action_flag_choices")


def _forget(schema: str, app: str, name: str) -> None:
    with connection.cursor() as cursor:
        cursor.execute(f'DELETE FROM "{schema}".django_migrations WHERE app = %s AND name = %s', [app, name])
        assert cursor.rowcount == 1


def _applied(schema: str, app: str, name: str) -> bool:
    with connection.cursor() as cursor:
        cursor.execute(f'SELECT 1 FROM "{schema}".django_migrations WHERE app = %s AND name = %s', [app, name])
        return cursor.fetchone() is not None


def _brand_schemas() -> list[str]:
    """What migrate_schemas considers: the template (if built) and every ready or suspended brand."""
    brands = Tenant.objects.filter(status__in=[TenantStatus.READY, TenantStatus.SUSPENDED]).order_by("pk")
    return existing_schemas([settings.TENANT_TEMPLATE_SCHEMA, *brands.values_list("schema_name", flat=True)])


def test_provisioned_brands_have_nothing_pending(alpha: Brand, beta: Brand) -> None:
    assert pending_schemas([alpha.schema, beta.schema]) == []
    assert pending_schemas(["public"]) == []
    assert migration_state.public_is_current()


def test_a_schema_missing_one_migration_is_the_only_one_reported(alpha: Brand, beta: Brand) -> None:
    _forget(beta.schema, *LEAF)
    assert pending_schemas([alpha.schema, beta.schema]) == [beta.schema]
    assert pending_schemas([beta.schema, alpha.schema, "public"]) == [beta.schema]


def test_a_schema_without_a_migration_table_is_pending(alpha: Brand) -> None:
    with connection.cursor() as cursor:
        cursor.execute('CREATE SCHEMA "t_emptyone"')
    assert pending_schemas([alpha.schema, "t_emptyone"]) == ["t_emptyone"]
    assert existing_schemas(["t_nosuchschema", "t_emptyone", alpha.schema]) == ["t_emptyone", alpha.schema]


def test_migrate_schemas_migrates_only_the_pending_brand(
    alpha: Brand, beta: Brand, capsys: pytest.CaptureFixture[str]
) -> None:
    _forget(alpha.schema, *LEAF)
    total = len(_brand_schemas())
    assert total >= 2
    out = StringIO()
    call_command("migrate_schemas", interactive=False, stdout=out)

    assert f"{total - 1} of {total} brand schemas are up to date" in out.getvalue()
    assert "migrating 1." in out.getvalue()
    assert _applied(alpha.schema, *LEAF), "the missing migration was applied again"
    assert pending_schemas([alpha.schema, beta.schema]) == []
    executor_log = capsys.readouterr().out
    assert f":{alpha.schema}]" in executor_log
    assert f":{beta.schema}]" not in executor_log, "an up-to-date brand was not touched"


def test_migrate_schemas_with_nothing_to_do_touches_no_brand(alpha: Brand, capsys: pytest.CaptureFixture[str]) -> None:
    total = len(_brand_schemas())
    out = StringIO()
    call_command("migrate_schemas", interactive=False, stdout=out)
    assert f"{total} of {total} brand schemas are up to date" in out.getvalue()
    assert "migrating 0." in out.getvalue()
    assert f":{alpha.schema}]" not in capsys.readouterr().out


def test_all_schemas_migrates_every_live_brand_and_skips_deleted_ones(
    alpha: Brand, beta: Brand, capsys: pytest.CaptureFixture[str]
) -> None:
    """--all-schemas re-runs migrate everywhere, but a deleted brand (schema gone) is not an error."""
    gone = Tenant.objects.create(
        code="gonebrand",
        name="已删酒业",
        plan=alpha.tenant.plan,
        schema_name="t_gonebrand",
        status=TenantStatus.DELETED,
    )
    total = len(_brand_schemas())
    out = StringIO()
    call_command("migrate_schemas", interactive=False, all_schemas=True, stdout=out)
    assert f"--all-schemas: migrating all {total} brand schemas." in out.getvalue()
    executor_log = capsys.readouterr().out
    assert f":{alpha.schema}]" in executor_log
    assert f":{beta.schema}]" in executor_log
    assert f":{gone.schema_name}]" not in executor_log


def test_brands_being_provisioned_are_left_to_their_provisioning_job(alpha: Brand) -> None:
    Tenant.objects.filter(schema_name=alpha.schema).update(status=TenantStatus.PENDING)
    _forget(alpha.schema, *LEAF)
    call_command("migrate_schemas", interactive=False, stdout=StringIO())
    assert not _applied(alpha.schema, *LEAF)


# --- squashed migrations (unit) ---------------------------------------------------------------------

SQUASHED = ("shop", "0001_squashed_0003")
REPLACED = [("shop", "0001_initial"), ("shop", "0002_price"), ("shop", "0003_stock")]
LATER = ("shop", "0004_sku")


@pytest.mark.parametrize(
    ("applied", "up_to_date"),
    [
        # Applied one by one before the squash existed: all replaced ones and the later one.
        ({*REPLACED, LATER}, True),
        # A schema created after the squash records the replaced migrations and the squash itself.
        ({*REPLACED, SQUASHED, LATER}, True),
        # Recorded under the squash's own name only.
        ({SQUASHED, LATER}, True),
        # Partly through the replaced migrations: the rest is still to apply.
        ({REPLACED[0], REPLACED[1], LATER}, False),
        # Squash applied but the migration after it is not.
        (set(REPLACED), False),
        (set(), False),
        # Rows of migrations deleted from the code do not matter.
        ({*REPLACED, LATER, ("shop", "0000_removed_long_ago")}, True),
    ],
)
def test_squashed_migrations_count_as_applied_only_when_all_they_replace_is(
    applied: set[tuple[str, str]], up_to_date: bool
) -> None:
    nodes = {SQUASHED, LATER}
    replaces = {SQUASHED: REPLACED}
    assert is_up_to_date(applied, nodes, replaces) is up_to_date


def test_expected_migrations_reads_the_projects_graph() -> None:
    nodes, replaces = migration_state.expected_migrations()
    assert ("brand", "0002_audit_append_only") in nodes
    assert LEAF in nodes
    for squashed, replaced in replaces.items():
        assert squashed in nodes
        assert not set(replaced) & nodes


def test_the_executor_gets_the_pending_schemas_only(alpha: Brand, beta: Brand, monkeypatch: Any) -> None:
    """The command hands the executor exactly the pending list (not every brand)."""
    from django_tenants.migration_executors.standard import StandardExecutor

    seen: list[list[str]] = []
    monkeypatch.setattr(StandardExecutor, "run_migrations", lambda self, tenants=None: seen.append(list(tenants or [])))
    _forget(beta.schema, *LEAF)
    call_command("migrate_schemas", tenant=True, interactive=False, stdout=StringIO())
    assert seen == [[beta.schema]]
