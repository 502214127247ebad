"""/healthz and /readyz, as a load balancer and an ops engineer use them.

/healthz says the process is up: on any host name, without touching the database (a database
outage must not make every web node look dead and get restarted). /readyz says whether this node
can serve: database, broker and migrations current, 503 when any of them is not, and it never
shows a connection string, a password or a brand's schema name (it answers on every host).
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import pytest
from django.conf import settings
from django.db import OperationalError, connection
from django.test import Client

from tenants import health
from tests.conftest import Brand

# Hosts a load balancer may use: the platform's own, a brand's, and names nobody registered
# (not even in ALLOWED_HOSTS).
ANY_HOST = ("localhost", "alpha.localhost", "no-such-brand.localhost", "10.0.0.7", "lb-probe.internal")
# A leaf migration that changes nothing in the database; forgetting it makes a schema "pending"
# (the same trick as tests/tenancy/test_migrate_schemas.py).
LEAF = ("admin", "0003_logentry_add_action_flag_choices")
BROKER_PASSWORD = "br0ker-Secret-pw"
CLOSED_BROKER = f"redis://:{BROKER_PASSWORD}@127.0.0.1:1/0"


@pytest.fixture(autouse=True)
def _fresh_migration_check() -> Iterator[None]:
    """readiness() caches the migration check for 30 s per process: each test starts without it."""
    health._migration_cache.clear()
    yield
    health._migration_cache.clear()


def _json(response: Any) -> dict[str, Any]:
    assert response["Content-Type"] == "application/json", response["Content-Type"]
    body: dict[str, Any] = response.json()
    return body


def _assert_no_secrets(response: Any) -> None:
    text = response.content.decode()
    for secret in (BROKER_PASSWORD, settings.SECRET_KEY, "redis://", "amqp://", "postgres://", "127.0.0.1:"):
        assert secret not in text, f"/readyz shows {secret!r}"
    db_password = settings.DATABASES["default"].get("PASSWORD")
    if db_password:
        assert db_password not in text


# --- liveness ----------------------------------------------------------------------------------


@pytest.mark.parametrize("host", ANY_HOST)
def test_liveness_answers_on_any_host_without_touching_the_database(host: str) -> None:
    # No `db` fixture: pytest-django makes any database access here an error.
    response = Client(HTTP_HOST=host).get("/healthz")
    assert response.status_code == 200
    assert _json(response) == {"status": "ok"}


def test_liveness_stays_up_while_the_broker_is_down(settings: Any) -> None:
    settings.CELERY_BROKER_URL = CLOSED_BROKER
    response = Client(HTTP_HOST="localhost").get("/healthz")
    assert response.status_code == 200
    assert _json(response) == {"status": "ok"}


# --- readiness ---------------------------------------------------------------------------------


@pytest.mark.parametrize("host", ["localhost", "alpha.localhost", "lb-probe.internal"])
def test_readiness_is_200_with_every_check_when_all_is_well(host: str, alpha: Brand, beta: Brand) -> None:
    response = Client(HTTP_HOST=host).get("/readyz")
    body = _json(response)
    assert response.status_code == 200, body
    assert body["status"] == "ok"
    checks = body["checks"]
    assert set(checks) == {"database", "broker", "migrations"}
    assert all(check["ok"] is True for check in checks.values()), checks
    # public plus at least the two brands of the suite were looked at, none pending.
    assert checks["migrations"]["schemas"] >= 3
    assert checks["migrations"]["pending"] == 0
    _assert_no_secrets(response)


def test_readiness_is_503_with_the_broker_check_false_when_the_broker_is_down(alpha: Brand, settings: Any) -> None:
    settings.CELERY_BROKER_URL = CLOSED_BROKER
    started = time.monotonic()
    response = Client(HTTP_HOST="localhost").get("/readyz")
    elapsed = time.monotonic() - started

    body = _json(response)
    assert response.status_code == 503, body
    assert body["status"] == "unavailable"
    assert body["checks"]["broker"]["ok"] is False
    assert body["checks"]["database"]["ok"] is True
    assert body["checks"]["migrations"]["ok"] is True
    _assert_no_secrets(response)
    # A load balancer's probe times out after a few seconds: a dead broker must be reported sooner.
    assert elapsed < 5, f"/readyz took {elapsed:.1f} s with the broker down"


def test_readiness_is_503_when_a_brand_schema_has_a_migration_pending(alpha: Brand, beta: Brand) -> None:
    client = Client(HTTP_HOST="localhost")
    assert client.get("/readyz").status_code == 200
    health._migration_cache.clear()  # the 200 above was cached for 30 s

    with connection.cursor() as cursor:
        cursor.execute(f'DELETE FROM "{beta.schema}".django_migrations WHERE app = %s AND name = %s', list(LEAF))
        assert cursor.rowcount == 1
    response = client.get("/readyz")

    body = _json(response)
    assert response.status_code == 503, body
    assert body["status"] == "unavailable"
    assert body["checks"]["migrations"]["ok"] is False
    assert body["checks"]["migrations"]["pending"] == 1
    assert body["checks"]["database"]["ok"] is True
    assert body["checks"]["broker"]["ok"] is True
    # It counts; it does not name the brand (this answer is on every host, brand hosts included).
    assert beta.schema not in response.content.decode()
    assert beta.tenant.code not in response.content.decode()


def test_readiness_is_503_without_asking_for_migrations_when_the_database_is_unreachable(
    alpha: Brand, monkeypatch: pytest.MonkeyPatch
) -> None:
    class Unreachable:
        def cursor(self) -> Any:
            raise OperationalError(f"connection to server failed: password {BROKER_PASSWORD} rejected")

    monkeypatch.setattr(health, "connection", Unreachable())
    asked: list[bool] = []
    monkeypatch.setattr(health, "pending_schemas", lambda schemas: asked.append(True) or [])

    response = Client(HTTP_HOST="localhost").get("/readyz")
    body = _json(response)
    assert response.status_code == 503, body
    assert body["checks"]["database"] == {"ok": False, "error": "OperationalError"}
    assert "migrations" not in body["checks"]
    assert asked == []
    _assert_no_secrets(response)
