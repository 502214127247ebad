"""Deleting a brand in two steps: suspend and export, then confirm with the brand code.

Always on a freshly provisioned brand (never alpha/beta); the export runs synchronously in the
brand's schema, as the Celery task would.
"""

from __future__ import annotations

import hashlib
import json
import re
import zipfile
from collections import Counter
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from django.contrib.auth.models import Group
from django.db import connection
from django.test import Client
from django.utils import timezone
from django_tenants.utils import schema_context, schema_exists

from tenants import export, services
from tenants.brand import services as staff_services
from tenants.brand.models import AuditEntry, User
from tenants.models import Domain, OperationKind, OperationStatus, OpsAuditEntry, Tenant, TenantOperation
from tests.conftest import Brand

BRANDS_URL = "/ops/api/v1/brands/"
PASSWORD = "Doomed-pass-2026!"
CJK = re.compile(r"[\u4e00-\u9fff]")

pytestmark = pytest.mark.django_db


@pytest.fixture
def exports(settings: Any, tmp_path: Path) -> Path:
    settings.EXPORT_ROOT = tmp_path / "exports"
    return Path(settings.EXPORT_ROOT)


@pytest.fixture
def doomed(db: None, exports: Path) -> Tenant:
    """A ready brand with a few staff, made for this test only."""
    created = services.create_brand(
        code="doomed", name="将删酒业", plan_code="standard", admin_username="boss", admin_password=PASSWORD
    )
    assert services.provision(created.operation.pk).status == OperationStatus.SUCCEEDED
    with schema_context("t_doomed"):
        staff_services.create_staff(username="cashier", password=PASSWORD, role="finance")
        staff_services.create_staff(username="picker", password=PASSWORD, role="warehouse")
    # In production these rows were committed long before the deletion. In this one test
    # transaction their deferred foreign-key checks are still pending, and PostgreSQL refuses to
    # drop tables with pending trigger events: run the checks now.
    connection.check_constraints()
    return Tenant.objects.get(code="doomed")


@pytest.fixture
def sent_exports(monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, int]]:
    """Export jobs that would have been sent to Celery: (schema they are sent from, operation id)."""
    sent: list[tuple[str, int]] = []
    monkeypatch.setattr(services, "_enqueue_export", lambda schema, op_id: sent.append((schema, op_id)))
    return sent


def _request_deletion(ops_client: Client, capture: Any, code: str = "doomed") -> Any:
    with capture(execute=True):
        return ops_client.post(f"{BRANDS_URL}{code}/deletion/")


def _confirm(ops_client: Client, export_id: int, confirm_code: str = "doomed") -> Any:
    return ops_client.post(
        f"{BRANDS_URL}doomed/deletion/confirm/",
        {"export_id": export_id, "confirm_code": confirm_code},
        content_type="application/json",
    )


def _run_export(op_id: int, schema: str = "t_doomed") -> TenantOperation:
    with schema_context(schema):
        return export.run_export(op_id)


def _assert_code(response: Any, status: int, code: str) -> None:
    assert response.status_code == status, response.content
    assert response.json()["code"] == code
    assert CJK.search(response.json()["message"])


def _still_there() -> None:
    tenant = Tenant.objects.get(code="doomed")
    assert tenant.status == "suspended"
    assert schema_exists("t_doomed")
    assert Domain.objects.filter(tenant=tenant).exists()


def test_deleting_a_brand_exports_it_then_drops_it_for_good(
    ops_client: Client,
    doomed: Tenant,
    sent_exports: list[tuple[str, int]],
    django_capture_on_commit_callbacks: Any,
) -> None:
    # Step one: suspend and export.
    response = _request_deletion(ops_client, django_capture_on_commit_callbacks)
    assert response.status_code == 202, response.content
    body = response.json()
    export_id = body["id"]
    assert body["kind"] == "export"
    assert body["status"] == "queued"
    assert body["next"]["confirm_with"]["export_id"] == export_id
    assert sent_exports == [("t_doomed", export_id)], "the export job is sent from the brand's own schema"
    assert Tenant.objects.get(code="doomed").status == "suspended"
    assert Client(HTTP_HOST="doomed.localhost").get("/").status_code == 503

    # Not before the export has finished.
    _assert_code(_confirm(ops_client, export_id), 409, "export_required")
    _still_there()

    with schema_context("t_doomed"):
        usernames = set(User.objects.values_list("username", flat=True))
        expected = {
            "brand.user": User.objects.count(),
            "auth.group": Group.objects.count(),
            "brand.auditentry": AuditEntry.objects.count(),
        }
    assert usernames == {"boss", "cashier", "picker"}
    done = _run_export(export_id)
    assert done.status == OperationStatus.SUCCEEDED, done.error
    archive_path = Path(done.result["path"])
    assert archive_path.is_file()

    # Not with the wrong code, nor with the id of some other job.
    _assert_code(_confirm(ops_client, export_id, "doome"), 400, "confirmation_mismatch")
    _assert_code(_confirm(ops_client, export_id, "DOOMED"), 400, "confirmation_mismatch")
    provision_op = TenantOperation.objects.get(tenant__code="doomed", kind=OperationKind.PROVISION)
    _assert_code(_confirm(ops_client, provision_op.pk), 409, "export_required")
    _still_there()

    # Step two.
    confirmed = _confirm(ops_client, export_id)
    assert confirmed.status_code == 200, confirmed.content
    assert confirmed.json()["status"] == "deleted"
    assert confirmed.json()["domains"] == []
    tenant = Tenant.objects.get(code="doomed")
    assert tenant.status == "deleted"
    assert not schema_exists("t_doomed")
    assert not Domain.objects.filter(domain="doomed.localhost").exists()
    assert TenantOperation.objects.get(tenant=tenant, kind=OperationKind.DELETE).status == OperationStatus.SUCCEEDED
    assert OpsAuditEntry.objects.filter(tenant=tenant, action="brand.delete", actor_name="ops-admin").exists()
    page = Client(HTTP_HOST="doomed.localhost").get("/")
    assert page.status_code == 404
    assert "页面不存在" in page.content.decode()
    # Confirming again is refused; nothing left to delete.
    _assert_code(_confirm(ops_client, export_id), 409, "brand_wrong_status")

    # The freed domain can be given to a new brand.
    reuse = ops_client.post(
        BRANDS_URL,
        {
            "code": "reborn",
            "name": "新生酒业",
            "plan": "standard",
            "admin_username": "boss",
            "domain": "doomed.localhost",
        },
        content_type="application/json",
    )
    assert reuse.status_code == 202, reuse.content
    services.provision(TenantOperation.objects.get(tenant__code="reborn").pk)
    assert Client(HTTP_HOST="doomed.localhost").get("/api/v1/site/").json()["display_name"] == "新生酒业"

    # The export outlives the brand and holds all of its data.
    with zipfile.ZipFile(archive_path) as archive:
        manifest = json.loads(archive.read("manifest.json"))
        data = archive.read("data.jsonl")
    assert manifest["schema"] == "t_doomed"
    for label, count in expected.items():
        assert manifest["rows"][label] == count, label
    assert not {"sessions.session", "axes.accessattempt"} & set(manifest["rows"]), "secrets are not exported"
    records = [json.loads(line) for line in data.decode().splitlines()]
    per_model = Counter(record["model"] for record in records)
    assert {label: n for label, n in manifest["rows"].items() if n} == dict(per_model)
    assert manifest["sha256"]["data.jsonl"] == hashlib.sha256(data).hexdigest()
    exported_users = {r["fields"]["username"] for r in records if r["model"] == "brand.user"}
    assert exported_users == usernames
    assert done.result["rows"] == sum(manifest["rows"].values())
    assert done.result["sha256"] == hashlib.sha256(archive_path.read_bytes()).hexdigest()


def test_an_expired_export_must_be_made_again(
    ops_client: Client,
    doomed: Tenant,
    settings: Any,
    sent_exports: list[tuple[str, int]],
    django_capture_on_commit_callbacks: Any,
) -> None:
    export_id = _request_deletion(ops_client, django_capture_on_commit_callbacks).json()["id"]
    _run_export(export_id)
    window = settings.BRAND_DELETION_CONFIRM_WINDOW_HOURS
    TenantOperation.objects.filter(pk=export_id).update(finished_at=timezone.now() - timedelta(hours=window, minutes=1))
    _assert_code(_confirm(ops_client, export_id), 409, "confirmation_expired")
    _still_there()

    # A second request makes a fresh export, which is then accepted.
    again = _request_deletion(ops_client, django_capture_on_commit_callbacks)
    assert again.status_code == 202, again.content
    fresh_id = again.json()["id"]
    assert fresh_id != export_id
    _run_export(fresh_id)
    _assert_code(_confirm(ops_client, export_id), 409, "confirmation_expired")
    assert _confirm(ops_client, fresh_id).status_code == 200


def test_a_shorter_confirmation_window_from_settings_is_honoured(
    ops_client: Client,
    doomed: Tenant,
    settings: Any,
    sent_exports: list[tuple[str, int]],
    django_capture_on_commit_callbacks: Any,
) -> None:
    export_id = _request_deletion(ops_client, django_capture_on_commit_callbacks).json()["id"]
    _run_export(export_id)
    settings.BRAND_DELETION_CONFIRM_WINDOW_HOURS = 0
    _assert_code(_confirm(ops_client, export_id), 409, "confirmation_expired")
    _still_there()


def test_a_second_deletion_request_while_the_export_runs_is_a_conflict(
    ops_client: Client,
    doomed: Tenant,
    sent_exports: list[tuple[str, int]],
    django_capture_on_commit_callbacks: Any,
) -> None:
    assert _request_deletion(ops_client, django_capture_on_commit_callbacks).status_code == 202
    _assert_code(_request_deletion(ops_client, django_capture_on_commit_callbacks), 409, "operation_running")
    assert len(sent_exports) == 1


def test_an_export_that_cannot_be_queued_fails_visibly(
    ops_client: Client, doomed: Tenant, monkeypatch: pytest.MonkeyPatch, django_capture_on_commit_callbacks: Any
) -> None:
    from tenants import tasks

    def broker_down(*args: Any, **kwargs: Any) -> None:
        raise ConnectionError("broker down")

    monkeypatch.setattr(tasks.export_tenant_data, "delay", broker_down)
    response = _request_deletion(ops_client, django_capture_on_commit_callbacks)
    assert response.status_code == 202
    op = TenantOperation.objects.get(pk=response.json()["id"])
    assert op.status == OperationStatus.FAILED
    assert op.error
    _assert_code(_confirm(ops_client, op.pk), 409, "export_required")
    _still_there()


@pytest.mark.parametrize("status", ["pending", "failed", "deleted"])
def test_only_a_ready_or_suspended_brand_can_be_deleted(
    ops_client: Client, doomed: Tenant, status: str, sent_exports: list[tuple[str, int]]
) -> None:
    Tenant.objects.filter(pk=doomed.pk).update(status=status)
    _assert_code(ops_client.post(f"{BRANDS_URL}doomed/deletion/"), 409, "brand_wrong_status")
    assert sent_exports == []
    assert schema_exists("t_doomed")


def test_deleting_one_brand_leaves_the_others_untouched(
    ops_client: Client,
    doomed: Tenant,
    alpha: Brand,
    sent_exports: list[tuple[str, int]],
    django_capture_on_commit_callbacks: Any,
) -> None:
    export_id = _request_deletion(ops_client, django_capture_on_commit_callbacks).json()["id"]
    _run_export(export_id)
    # A finished deletion export of another brand does not confirm this one.
    foreign = services.request_export(Tenant.objects.get(code="alpha"), for_deletion=True)
    TenantOperation.objects.filter(pk=foreign.pk).update(status=OperationStatus.SUCCEEDED, finished_at=timezone.now())
    _assert_code(_confirm(ops_client, foreign.pk), 409, "export_required")
    _still_there()

    assert _confirm(ops_client, export_id).status_code == 200
    assert schema_exists(alpha.schema)
    assert alpha.client().get("/api/v1/site/").json()["display_name"] == "阿尔法酒业"
    with schema_context(alpha.schema):
        assert User.objects.filter(username="owner").exists()
