"""A real gunicorn serving the project to the test database, for tests that need what Django's test
client skips: separate processes, worker threads, sockets, keep-alive and the project's own
connection handling (persistent connections or the psycopg pool).

The server runs the production settings (`config.settings`), not `config.settings_test`, so the
database options are the ones a deployment gets from the same environment variables. It is pointed
at the session's test database (committed data, e.g. the alpha and beta brands, is what it sees:
a test's own transaction is invisible to it) and shares the suite's cache key prefix and task
queue, so it never touches another suite's entries on the same machine.

    with running_server(suite_database_url(), env={"DB_POOL": "1"}) as server:
        with server.connection() as conn:
            reply = conn.request("GET", "/api/v1/site/", host="alpha.localhost")

pytest-django creates the test database only when a collected test uses the database, so call
`suite_database_url()` from a test that does (the `db` fixture, e.g. through `alpha`). The test's
transaction holds no lock unless the test writes: reads are fine, but a write the server then has
to wait for would hang the request.
"""

from __future__ import annotations

import http.client
import json as jsonlib
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from http.cookies import SimpleCookie
from pathlib import Path
from types import TracebackType
from typing import Any
from urllib.parse import quote

from django.conf import settings
from django.db import connection as django_connection

ROOT = Path(__file__).resolve().parents[2]
LOOPBACK = "127.0.0.1"
# Methods that may be sent again on a fresh connection when the server closed an idle keep-alive one.
_RETRYABLE = frozenset({"GET", "HEAD", "OPTIONS"})
_LOG_TAIL_LINES = 200


class ServerError(RuntimeError):
    """The server did not start, or died while a test was using it."""


def suite_database_url() -> str:
    """The URL of the test database of this pytest process (see the module docstring)."""
    params = django_connection.settings_dict
    test_name = str(params.get("TEST", {}).get("NAME") or "")
    if not test_name or not str(params["NAME"]).startswith(test_name):
        raise RuntimeError(
            f"the connection still points at {params['NAME']!r}, not a test database: "
            "use this from a test that uses the database (the `db` fixture, e.g. through `alpha`)"
        )
    user = quote(str(params.get("USER") or ""), safe="")
    password = quote(str(params.get("PASSWORD") or ""), safe="")
    credentials = f"{user}:{password}@" if password else (f"{user}@" if user else "")
    host = params.get("HOST") or LOOPBACK
    port = params.get("PORT") or 5432
    return f"postgres://{credentials}{host}:{port}/{quote(str(params['NAME']), safe='')}"


def server_environment(database_url: str, overrides: Mapping[str, str | None] = {}) -> dict[str, str]:
    """The environment of a server process: this process's (broker, cache and the rest, as resolved
    by config/env.py), the test database, the suite's cache prefix, task queue, password hasher and
    throttle rates, then `overrides` (None removes a variable, so the project's default applies)."""
    env = dict(os.environ)
    env.update(
        {
            "DJANGO_SETTINGS_MODULE": "config.settings",
            "DATABASE_URL": database_url,
            "CELERY_TASK_DEFAULT_QUEUE": settings.CELERY_TASK_DEFAULT_QUEUE,
            "LOG_LEVEL": "WARNING",
            "PYTHONUNBUFFERED": "1",
            # The brands' code secrets were wrapped under the suite's master key.
            "JIUMA_MASTER_KEYS": settings.JIUMA_MASTER_KEYS,
        }
    )
    # As in the suite (pyproject's filterwarnings): no collected static files is fine here.
    env.setdefault("PYTHONWARNINGS", "ignore:No directory at:UserWarning")
    prefix = settings.CACHES["default"].get("KEY_PREFIX")
    if prefix:
        env["CACHE_KEY_PREFIX"] = str(prefix)
    # The suite's users have MD5 password hashes (settings_test); the production settings accept
    # them only with this switch.
    if settings.PASSWORD_HASHERS[0].endswith("MD5PasswordHasher"):
        env["DJANGO_FAST_PASSWORD_HASHER"] = "1"
    rates = settings.REST_FRAMEWORK.get("DEFAULT_THROTTLE_RATES")
    if isinstance(rates, dict):
        for scope in ("anon", "user", "ops"):
            if rates.get(scope):
                env[f"API_THROTTLE_{scope.upper()}"] = str(rates[scope])
    for name, value in overrides.items():
        if value is None:
            env.pop(name, None)
        else:
            env[name] = value
    return env


@dataclass(frozen=True)
class Reply:
    status: int
    headers: http.client.HTTPMessage
    body: bytes

    @property
    def text(self) -> str:
        return self.body.decode("utf-8", errors="replace")

    def json(self) -> Any:
        return jsonlib.loads(self.body)

    def cookies(self) -> dict[str, str]:
        """The cookies this reply sets (name -> value)."""
        jar: SimpleCookie = SimpleCookie()
        for header in self.headers.get_all("Set-Cookie") or []:
            jar.load(header)
        return {name: morsel.value for name, morsel in jar.items()}


class Connection:
    """One HTTP/1.1 keep-alive connection to the server. Any Host may be sent on it, so requests of
    different brands can follow each other on the same socket (and the same server worker).
    Not thread-safe: give each thread its own."""

    def __init__(self, port: int, timeout: float) -> None:
        self._port = port
        self._timeout = timeout
        self._conn = http.client.HTTPConnection(LOOPBACK, port, timeout=timeout)
        self.reconnects = 0

    def request(
        self,
        method: str,
        path: str,
        *,
        host: str,
        cookies: Mapping[str, str] | None = None,
        headers: Mapping[str, str] | None = None,
        json: Any = None,
    ) -> Reply:
        sent = {"Host": host, **(headers or {})}
        if cookies:
            sent["Cookie"] = "; ".join(f"{name}={value}" for name, value in cookies.items())
        body = None
        if json is not None:
            body = jsonlib.dumps(json).encode()
            sent["Content-Type"] = "application/json"
        try:
            return self._send(method, path, sent, body)
        except (http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError):
            if method.upper() not in _RETRYABLE:
                raise
            # The server closed an idle keep-alive connection before reading this request.
            self._conn.close()
            self._conn = http.client.HTTPConnection(LOOPBACK, self._port, timeout=self._timeout)
            self.reconnects += 1
            return self._send(method, path, sent, body)

    def _send(self, method: str, path: str, headers: dict[str, str], body: bytes | None) -> Reply:
        self._conn.request(method, path, body=body, headers=headers)
        response = self._conn.getresponse()
        return Reply(status=response.status, headers=response.headers, body=response.read())

    def close(self) -> None:
        self._conn.close()

    def __enter__(self) -> Connection:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()


class Server:
    """A running gunicorn (see `running_server`)."""

    def __init__(self, process: subprocess.Popen[bytes], port: int, log_path: Path) -> None:
        self.process = process
        self.port = port
        self.log_path = log_path

    @property
    def base_url(self) -> str:
        return f"http://{LOOPBACK}:{self.port}"

    def connection(self, timeout: float = 15.0) -> Connection:
        return Connection(self.port, timeout)

    def request(self, method: str, path: str, *, host: str, **kwargs: Any) -> Reply:
        """One request on a connection of its own."""
        with self.connection() as conn:
            return conn.request(method, path, host=host, **kwargs)

    def log(self) -> str:
        """Everything the server wrote to stdout and stderr so far."""
        return self.log_path.read_text(encoding="utf-8", errors="replace")

    def log_tail(self, lines: int = _LOG_TAIL_LINES) -> str:
        return "\n".join(self.log().splitlines()[-lines:])

    def running(self) -> bool:
        return self.process.poll() is None


def sign_in(server: Server, host: str, username: str, password: str) -> dict[str, str]:
    """Signs `username` in on `host` through the brand API as a browser would (CSRF cookie first);
    returns the session and CSRF cookies to send with later requests."""
    csrf = server.request("GET", "/api/v1/auth/csrf/", host=host)
    assert csrf.status == 200, (csrf.status, csrf.text)
    cookies = csrf.cookies()
    token = cookies[settings.CSRF_COOKIE_NAME]
    login = server.request(
        "POST",
        "/api/v1/auth/login/",
        host=host,
        cookies=cookies,
        headers={"X-CSRFToken": token},
        json={"username": username, "password": password},
    )
    assert login.status == 200, (login.status, login.text)
    cookies.update(login.cookies())
    assert settings.SESSION_COOKIE_NAME in cookies, login.headers
    return cookies


def _listening_socket() -> socket.socket:
    """A socket bound to a free loopback port and listening; gunicorn inherits it (no port race)."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((LOOPBACK, 0))
    sock.listen(128)
    return sock


def _wait_until_healthy(server: Server, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    last_error = ""
    while time.monotonic() < deadline:
        if not server.running():
            raise ServerError(f"gunicorn exited with code {server.process.returncode} while starting")
        try:
            reply = server.request("GET", "/healthz", host="localhost")
            if reply.status == 200:
                return
            last_error = f"/healthz answered {reply.status}"
        except OSError as error:  # refused, reset, timed out: the workers are still booting
            last_error = repr(error)
        time.sleep(0.1)
    raise ServerError(f"gunicorn did not answer /healthz within {timeout:.0f} s ({last_error})")


def _stop(process: subprocess.Popen[bytes], timeout: float = 15.0) -> None:
    """Graceful stop (SIGTERM to the arbiter), then SIGKILL to the server's own process group."""
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        with suppress(subprocess.TimeoutExpired):
            process.wait(timeout=timeout)
    # The arbiter leads its own session (start_new_session): this reaches its workers, nothing else.
    with suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGKILL)
    process.wait(timeout=timeout)


@contextmanager
def running_server(
    database_url: str,
    *,
    env: Mapping[str, str | None] = {},
    workers: int = 2,
    threads: int = 4,
    app: str = "config.wsgi:application",
    startup_timeout: float = 30.0,
) -> Iterator[Server]:
    """Starts gunicorn (gthread workers) on a free loopback port, waits for /healthz, yields the
    server and stops it. If starting fails, the body raises, or the server died meanwhile, the
    error carries the tail of the server's output."""
    sock = _listening_socket()
    port = sock.getsockname()[1]
    argv = [
        sys.executable,
        "-m",
        "gunicorn",
        app,
        "--worker-class",
        "gthread",
        "--workers",
        str(workers),
        "--threads",
        str(threads),
        "--bind",
        f"fd://{sock.fileno()}",
        "--chdir",
        str(ROOT),
        "--graceful-timeout",
        "5",
        "--log-level",
        "warning",
        "--error-logfile",
        "-",
    ]
    with tempfile.NamedTemporaryFile(prefix="jiuma-gunicorn-", suffix=".log", delete=False) as log_file:
        log_path = Path(log_file.name)
    try:
        with sock, log_path.open("wb") as log_output:  # the server keeps its own copies of both
            process = subprocess.Popen(
                argv,
                cwd=ROOT,
                env=server_environment(database_url, env),
                stdin=subprocess.DEVNULL,
                stdout=log_output,
                stderr=subprocess.STDOUT,
                pass_fds=(sock.fileno(),),
                start_new_session=True,
            )
        server = Server(process, port, log_path)
        try:
            _wait_until_healthy(server, startup_timeout)
            yield server
            if not server.running():
                raise ServerError(f"gunicorn exited with code {process.returncode} during the test")
        except BaseException as error:
            _stop(process)
            error.add_note(f"--- gunicorn output (last {_LOG_TAIL_LINES} lines) ---\n{server.log_tail()}")
            raise
        _stop(process)
    finally:
        log_path.unlink(missing_ok=True)
