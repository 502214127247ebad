"""Periodic jobs: platform jobs run once in public; tenant jobs reach ready brands only."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from celery.schedules import schedule

from config.celery import app
from tenants import services
from tenants.beat import ReadyTenantScheduler
from tenants.db import connection
from tests.conftest import Brand


@pytest.fixture
def scheduler(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[ReadyTenantScheduler, list[str]]:
    sent: list[str] = []
    beat = ReadyTenantScheduler(app=app, lazy=True, schedule_filename=str(tmp_path / "beat"))

    def fake_apply_async(entry: Any, producer: Any = None, advance: bool = True, **kwargs: Any) -> Any:
        sent.append(connection.schema_name)

        class Result:
            id = "x"

        return Result()

    monkeypatch.setattr(beat, "apply_async", fake_apply_async)
    return beat, sent


def _entry(beat: ReadyTenantScheduler, **extra: Any) -> Any:
    config = {"every-minute": {"task": "tenants.current_schema", "schedule": schedule(60.0), **extra}}
    ((name, options),) = beat._tenant_aware_beat_schedule_to_dict(config).items()
    return beat.Entry(name=name, app=app, **options)


def test_a_platform_job_runs_once_in_the_public_schema(
    scheduler: tuple[ReadyTenantScheduler, list[str]], alpha: Brand
) -> None:
    beat, sent = scheduler
    beat.apply_entry(_entry(beat, tenant_schemas=["public"]))
    assert sent == ["public"]


def test_a_tenant_job_reaches_ready_brands_but_not_suspended_or_pending_ones(
    scheduler: tuple[ReadyTenantScheduler, list[str]], alpha: Brand, beta: Brand
) -> None:
    beat, sent = scheduler
    services.suspend_brand(beta.tenant, reason="欠费")
    pending = services.create_brand(
        code="beatpending",
        name="待开通",
        plan_code="standard",
        admin_username="owner",
        admin_password="Owner-pass-2026!",
    )
    beat.apply_entry(_entry(beat))
    assert alpha.schema in sent
    assert beta.schema not in sent
    assert pending.tenant.schema_name not in sent
