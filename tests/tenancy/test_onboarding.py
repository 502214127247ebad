"""Onboarding a brand: create → pending → provision → ready, failures, retries, the sweeper, the CLI.

Provisioning runs synchronously here (services.provision) inside the test transaction; the schema
it creates with migrate_schemas is DDL, and PostgreSQL rolls it back with everything else.
"""

from __future__ import annotations

import json
from datetime import timedelta
from io import StringIO
from typing import Any

import pytest
from django.contrib.auth.hashers import check_password
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import connection, transaction
from django.test import Client
from django.utils import timezone
from django_tenants.utils import schema_context, schema_exists

from tenants import provisioning, services
from tenants.models import (
    OperationKind,
    OperationStatus,
    OpsAuditEntry,
    Tenant,
    TenantOperation,
    TenantStatus,
)
from tests.conftest import Brand

BRANDS_URL = "/ops/api/v1/brands/"
GOOD_PASSWORD = "Brand-owner-2026!"

pytestmark = pytest.mark.django_db


def _post_brand(client: Client, **fields: Any) -> Any:
    return client.post(BRANDS_URL, fields, content_type="application/json")


def _provision_op(code: str) -> TenantOperation:
    return TenantOperation.objects.get(tenant__code=code, kind=OperationKind.PROVISION)


def _api_login(host: str, username: str, password: str) -> Any:
    return Client(HTTP_HOST=host).post(
        "/api/v1/auth/login/", {"username": username, "password": password}, content_type="application/json"
    )


@pytest.fixture
def enqueued(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Provisioning jobs that would have been sent to Celery (recorded instead of sent)."""
    sent: list[int] = []
    monkeypatch.setattr(services, "_enqueue_provisioning", sent.append)
    return sent


def test_a_new_brand_is_pending_until_provisioned_then_its_host_serves_it(
    ops_client: Client, enqueued: list[int], django_capture_on_commit_callbacks: Any
) -> None:
    with django_capture_on_commit_callbacks(execute=True):
        response = _post_brand(ops_client, code="onbnew", name="新开酒业", plan="standard", admin_username="boss")
    assert response.status_code == 202, response.content
    body = response.json()
    assert body["status"] == "pending"
    assert body["schema_name"] == "t_onbnew"
    assert body["domains"] == [{"domain": "onbnew.localhost", "is_primary": True}]
    assert body["admin_username"] == "boss"
    password = body["admin_password_once"]
    assert len(password) >= 12
    op = _provision_op("onbnew")
    assert op.status == OperationStatus.QUEUED
    assert enqueued == [op.pk], "the provisioning job is sent once the brand is committed"
    assert not schema_exists("t_onbnew"), "the schema is built by the job, not by the request"

    # Before the job has run the brand's host says it is being prepared.
    host = Client(HTTP_HOST="onbnew.localhost")
    assert host.get("/api/v1/site/").json()["code"] == "tenant_not_ready"

    done = services.provision(op.pk)
    assert done.status == OperationStatus.SUCCEEDED, done.error
    assert done.result["method"] == "migrate"
    assert done.started_at is not None
    assert done.finished_at is not None
    tenant = Tenant.objects.get(code="onbnew")
    assert tenant.status == TenantStatus.READY
    assert tenant.ready_at is not None
    assert schema_exists("t_onbnew")

    # Routing works at once: no restart, no waiting for a cache to expire.
    site = host.get("/api/v1/site/")
    assert site.status_code == 200
    assert site.json()["display_name"] == "新开酒业"
    assert "新开酒业" in host.get("/").content.decode()

    detail = ops_client.get(f"{BRANDS_URL}onbnew/").json()
    assert detail["status"] == "ready"
    assert detail["operations"][0]["status"] == "succeeded"

    # The first admin signs in with the password shown once, in the API and in the admin.
    login = _api_login("onbnew.localhost", "boss", password)
    assert login.status_code == 200, login.content
    assert login.json()["role"] == "owner"
    admin = Client(HTTP_HOST="onbnew.localhost")
    response = admin.post("/admin/login/?next=/admin/", {"username": "boss", "password": password, "next": "/admin/"})
    assert response.status_code == 302
    assert response["Location"] == "/admin/"
    index = admin.get("/admin/")
    assert index.status_code == 200
    assert "新开酒业" in index.content.decode()


def test_the_generated_admin_password_is_shown_once_and_never_stored_in_clear(ops_client: Client) -> None:
    response = _post_brand(ops_client, code="onbsecret", name="保密酒业", plan="trial", admin_username="boss")
    password = response.json()["admin_password_once"]

    # Not readable again through the API.
    assert password not in ops_client.get(f"{BRANDS_URL}onbsecret/").content.decode()
    assert password not in ops_client.get(BRANDS_URL).content.decode()
    # Not in the platform's own records in clear.
    op = _provision_op("onbsecret")
    stored = json.dumps(op.params)
    assert password not in stored
    assert check_password(password, op.params["admin"]["password_hash"])
    for entry in OpsAuditEntry.objects.filter(tenant__code="onbsecret"):
        assert password not in json.dumps(entry.detail)

    done = services.provision(op.pk)
    assert done.status == OperationStatus.SUCCEEDED, done.error
    # Once the account exists, not even the hash stays in the job's parameters.
    assert "password_hash" not in json.dumps(done.params)
    assert done.params["admin"]["username"] == "boss"
    with schema_context("t_onbsecret"):
        from tenants.brand.models import User

        owner = User.objects.get(username="boss")
        assert owner.password != password
        assert owner.check_password(password)


def test_a_password_chosen_by_ops_is_not_echoed_back(ops_client: Client) -> None:
    response = _post_brand(
        ops_client,
        code="onbchosen",
        name="自选酒业",
        plan="standard",
        admin_username="boss",
        admin_password=GOOD_PASSWORD,
    )
    assert response.status_code == 202
    assert "admin_password_once" not in response.json()
    assert GOOD_PASSWORD not in response.content.decode()
    services.provision(_provision_op("onbchosen").pk)
    assert _api_login("onbchosen.localhost", "boss", GOOD_PASSWORD).status_code == 200


def test_the_schema_built_by_provisioning_is_rolled_back_with_its_transaction() -> None:
    """What every test here relies on: a brand provisioned inside a transaction leaves nothing behind."""

    class Undo(Exception):
        pass

    def build_then_undo() -> None:
        with transaction.atomic():
            created = services.create_brand(
                code="onbundo",
                name="撤销酒业",
                plan_code="standard",
                admin_username="boss",
                admin_password=GOOD_PASSWORD,
            )
            assert services.provision(created.operation.pk).status == OperationStatus.SUCCEEDED
            assert schema_exists("t_onbundo")
            raise Undo

    with pytest.raises(Undo):
        build_then_undo()
    assert not schema_exists("t_onbundo")
    assert not Tenant.objects.filter(code="onbundo").exists()


def test_a_failed_provisioning_marks_the_brand_failed_and_a_retry_makes_it_ready(
    ops_client: Client,
    monkeypatch: pytest.MonkeyPatch,
    enqueued: list[int],
    django_capture_on_commit_callbacks: Any,
) -> None:
    def broken_build(schema_name: str, method: str | None = None) -> str:
        raise RuntimeError("磁盘已满")

    _post_brand(
        ops_client,
        code="onbfail",
        name="失败酒业",
        plan="standard",
        admin_username="boss",
        admin_password=GOOD_PASSWORD,
    )
    op = _provision_op("onbfail")
    with monkeypatch.context() as patch:
        patch.setattr(provisioning, "build_schema", broken_build)
        failed = services.provision(op.pk)
    assert failed.status == OperationStatus.FAILED
    assert "RuntimeError: 磁盘已满" in failed.error
    assert failed.finished_at is not None
    tenant = Tenant.objects.get(code="onbfail")
    assert tenant.status == TenantStatus.FAILED
    assert tenant.status_reason
    detail = ops_client.get(f"{BRANDS_URL}onbfail/").json()
    assert detail["status"] == "failed"
    assert detail["operations"][0]["status"] == "failed"
    assert "磁盘已满" in detail["operations"][0]["error"]
    # The brand's host does not pretend to work.
    page = Client(HTTP_HOST="onbfail.localhost").get("/")
    assert page.status_code == 503

    with django_capture_on_commit_callbacks(execute=True):
        retry = ops_client.post(f"{BRANDS_URL}onbfail/retry-provisioning/")
    assert retry.status_code == 202, retry.content
    assert retry.json()["id"] == op.pk
    assert retry.json()["status"] == "queued"
    assert retry.json()["error"] == ""
    assert enqueued == [op.pk]
    assert Tenant.objects.get(code="onbfail").status == TenantStatus.PENDING
    # Only a failed brand can be retried.
    again = ops_client.post(f"{BRANDS_URL}onbfail/retry-provisioning/")
    assert again.status_code == 409
    assert again.json()["code"] == "brand_wrong_status"

    done = services.provision(op.pk)
    assert done.status == OperationStatus.SUCCEEDED, done.error
    assert done.attempts == 2
    assert Tenant.objects.get(code="onbfail").status == TenantStatus.READY
    assert _api_login("onbfail.localhost", "boss", GOOD_PASSWORD).status_code == 200
    assert ops_client.post(f"{BRANDS_URL}onbfail/retry-provisioning/").json()["code"] == "brand_wrong_status"


def test_a_retry_after_a_half_built_schema_rebuilds_it_with_one_owner(monkeypatch: pytest.MonkeyPatch) -> None:
    created = services.create_brand(
        code="onbhalf", name="半成酒业", plan_code="standard", admin_username="boss", admin_password=GOOD_PASSWORD
    )

    def broken_defaults(**kwargs: Any) -> None:
        raise RuntimeError("写入默认数据失败")

    with monkeypatch.context() as patch:
        patch.setattr(provisioning, "create_brand_defaults", broken_defaults)
        assert services.provision(created.operation.pk).status == OperationStatus.FAILED
    assert schema_exists("t_onbhalf"), "the schema was built before the failure"
    # In production each step commits; in this one test transaction the deferred foreign-key checks
    # of the half-built schema are still pending and PostgreSQL refuses to drop their tables. Fire them.
    connection.check_constraints()

    services.retry_provisioning(Tenant.objects.get(code="onbhalf"))
    assert services.provision(created.operation.pk).status == OperationStatus.SUCCEEDED
    with schema_context("t_onbhalf"):
        from django.contrib.auth.models import Group

        from tenants.brand.models import User

        assert list(User.objects.values_list("username", flat=True)) == ["boss"]
        assert Group.objects.count() == 9  # five staff roles, four channel roles


def test_provisioning_twice_neither_fails_nor_duplicates_the_admin() -> None:
    created = services.create_brand(
        code="onbtwice", name="两次酒业", plan_code="standard", admin_username="boss", admin_password=GOOD_PASSWORD
    )
    first = services.provision(created.operation.pk)
    second = services.provision(created.operation.pk)
    assert first.status == second.status == OperationStatus.SUCCEEDED
    assert second.attempts == 1, "the second delivery did not run the job again"
    assert second.finished_at == first.finished_at
    with schema_context("t_onbtwice"):
        from tenants.brand.models import User

        assert User.objects.filter(username="boss").count() == 1
        assert User.objects.count() == 1
    assert Tenant.objects.get(code="onbtwice").status == TenantStatus.READY


def test_the_sweeper_requeues_stale_jobs_and_gives_up_after_three_attempts(enqueued: list[int]) -> None:
    def brand(code: str) -> TenantOperation:
        return services.create_brand(
            code=code, name=code, plan_code="standard", admin_username="boss", admin_password=GOOD_PASSWORD
        ).operation

    long_ago = timezone.now() - timedelta(hours=1)
    died = brand("onbdied")  # a worker took it and died
    TenantOperation.objects.filter(pk=died.pk).update(status=OperationStatus.RUNNING, started_at=long_ago, attempts=1)
    lost = brand("onblost")  # the message never reached a worker
    TenantOperation.objects.filter(pk=lost.pk).update(created_at=long_ago)
    fresh = brand("onbfresh")  # queued a moment ago: leave it alone
    hopeless = brand("onbhopeless")
    TenantOperation.objects.filter(pk=hopeless.pk).update(
        status=OperationStatus.RUNNING, started_at=long_ago, attempts=3
    )

    requeued = services.requeue_stale_provisioning()

    assert sorted(requeued) == sorted([died.pk, lost.pk])
    assert sorted(enqueued) == sorted([died.pk, lost.pk])
    died.refresh_from_db()
    assert died.status == OperationStatus.QUEUED
    assert died.started_at is None
    fresh.refresh_from_db()
    assert fresh.status == OperationStatus.QUEUED
    assert fresh.pk not in requeued
    hopeless.refresh_from_db()
    assert hopeless.status == OperationStatus.FAILED
    assert "3 attempts" in hopeless.error
    assert Tenant.objects.get(code="onbhopeless").status == TenantStatus.FAILED
    # A requeued job runs normally.
    assert services.provision(died.pk).status == OperationStatus.SUCCEEDED
    assert Tenant.objects.get(code="onbdied").status == TenantStatus.READY
    # Running the sweeper again right away finds nothing new to do.
    enqueued.clear()
    assert services.requeue_stale_provisioning() == []
    assert enqueued == []


def test_the_create_brand_command_provisions_with_sync_and_prints_the_password_once() -> None:
    out = StringIO()
    call_command("create_brand", "onbcli", name="命令行酒业", plan="trial", admin="boss", sync=True, stdout=out)
    text = out.getvalue()
    assert "status: ready" in text
    assert "admin: boss" in text
    line = next(line for line in text.splitlines() if line.startswith("admin password (shown once): "))
    password = line.split(": ", 1)[1]
    tenant = Tenant.objects.get(code="onbcli")
    assert tenant.status == TenantStatus.READY
    assert tenant.plan.code == "trial"
    assert _api_login("onbcli.localhost", "boss", password).status_code == 200

    out = StringIO()
    call_command(
        "create_brand", "onbcli2", name="命令行二", admin="boss", admin_password=GOOD_PASSWORD, sync=True, stdout=out
    )
    assert "shown once" not in out.getvalue()
    assert GOOD_PASSWORD not in out.getvalue()


@pytest.mark.parametrize(
    ("code", "error"),
    [("Bad-Code", "invalid_brand_code"), ("www", "invalid_brand_code"), ("alpha", "brand_code_taken")],
)
def test_the_create_brand_command_reports_bad_input_clearly(alpha: Brand, code: str, error: str) -> None:
    before = Tenant.objects.count()
    with pytest.raises(CommandError) as info:
        call_command("create_brand", code, name="坏代码", sync=True, stdout=StringIO())
    assert error in str(info.value)
    assert "品牌代码" in str(info.value)
    assert Tenant.objects.count() == before
