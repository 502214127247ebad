"""Tenant routing overhead: a trivial brand view with and without the tenant layer, over real HTTP.

Two gunicorn servers run side by side on the same database, with the same gunicorn flags, settings
and URLconf (benchmarks/overhead/):

* tenant: the project's settings: TenantMiddleware resolves the Host header to the brand and our
  tenant database backend (tenants/postgresql_backend) selects its schema;
* plain:  the same settings without TenantMiddleware/TenantStatusMiddleware, with Django's stock
  PostgreSQL backend and the brand's schema put on the search_path once per connection.

Both serve `/bench/row/` (reads the brand's one-row profile table) with `Host: bench.localhost`.
Runs alternate plain/tenant (order swapped every round) and the medians are reported. The load
generator is wrk when installed, else a small asyncio HTTP/1.1 keep-alive client; either way it
shares the machine's cores with the servers and PostgreSQL.

The benchmark uses its own database (default `jiuma_bench_overhead` on the server of
DATABASE_URL / .local/services.env), migrated and given one brand by this script, and reused on
later runs while it is current.

    .venv/bin/python benchmarks/tenant_overhead.py            # full run (~1.5 min)
    .venv/bin/python benchmarks/tenant_overhead.py --quick    # smoke run (~20 s)

The last line printed is one JSON object: tenant_rps, plain_rps, ratio (goal >= 0.85), p99_ms
(tenant), and more.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import http.client
import io
import json
import math
import os
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType, ModuleType
from typing import Any
from urllib.parse import urlsplit, urlunsplit

ROOT = Path(__file__).resolve().parents[1]
LOG_DIR = ROOT / ".local" / "log"
PYTHON = sys.executable
GUNICORN = str(Path(sys.executable).parent / "gunicorn")

DEFAULT_DATABASE = "jiuma_bench_overhead"
BRAND_CODE = "bench"
BRAND_DOMAIN = "bench.localhost"
BRAND_NAME = "基准测试品牌"
GOAL_RATIO = 0.85
VIEWS = {"row": "/bench/row/", "nodb": "/bench/nodb/"}
SETTINGS = {
    "plain": "benchmarks.overhead.settings_plain",
    "tenant": "benchmarks.overhead.settings_tenant",
}


class BenchError(RuntimeError):
    """The benchmark cannot produce trustworthy figures; the message says why."""


def say(message: str) -> None:
    print(message, flush=True)


def load_services_module() -> ModuleType:
    """platform/local/services.py (config.local_tools)."""
    from config.local_tools import local_module

    return local_module("services")


# --------------------------------------------------------------------------------------------
# The benchmark database
# --------------------------------------------------------------------------------------------


def base_database_url(services: ModuleType) -> str:
    """DATABASE_URL from the environment, else from .local/services.env (written by `make services`)."""
    if url := os.environ.get("DATABASE_URL"):
        return url
    env_file: Path = services.env_file_path(os.environ)
    try:
        values: dict[str, str] = services.parse_env_file(env_file.read_text())
    except OSError:
        values = {}
    if url := values.get("DATABASE_URL"):
        return url
    raise BenchError(f"no DATABASE_URL in the environment or in {env_file}; run `make services` first")


def with_database(url: str, name: str) -> str:
    return urlunsplit(urlsplit(url)._replace(path=f"/{name}"))


def drop_database(url: str, services: ModuleType) -> None:
    import psycopg
    from psycopg import sql

    name = urlsplit(url).path.lstrip("/")
    with psycopg.connect(url, dbname="postgres", autocommit=True, connect_timeout=5) as conn:
        conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))
    say(f"  dropped database {name} ({services.redact(url)})")


def child_env(database_url: str, **extra: str) -> dict[str, str]:
    """Environment of every process this script starts (the same for both setups)."""
    env = dict(os.environ)
    env.update(
        {
            "DATABASE_URL": database_url,
            "DJANGO_DEBUG": "0",
            "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH", "")])),
            # No task is sent while measuring; provisioning's "queue the job" message goes nowhere
            # instead of into a shared broker queue that some worker on another database consumes.
            "CELERY_BROKER_URL": "memory://",
            "CELERY_RESULT_BACKEND": "",
            "JIUMA_BENCH_SCHEMA": f"t_{BRAND_CODE}",
            "PYTHONUNBUFFERED": "1",
        }
    )
    env.update(extra)
    return env


def run_helper(mode: str, env: dict[str, str]) -> dict[str, Any]:
    """Run this script in a helper mode in a child process; its last stdout line is JSON."""
    proc = subprocess.run(
        [PYTHON, str(Path(__file__).resolve()), mode],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        check=False,
        timeout=600,
    )
    lines = proc.stdout.strip().splitlines()
    if proc.returncode != 0 or not lines:
        raise BenchError(f"{mode} failed (exit {proc.returncode}):\n{proc.stdout}\n{proc.stderr}")
    for line in lines[:-1]:
        say(f"  {line}")
    result: dict[str, Any] = json.loads(lines[-1])
    return result


def prepare_database(url: str, services: ModuleType, fresh: bool) -> dict[str, Any]:
    if fresh:
        drop_database(url, services)
    services.ensure_database(url)
    env = child_env(url, DJANGO_SETTINGS_MODULE="config.settings")
    try:
        return run_helper("--prepare", env)
    except BenchError as exc:
        if fresh or "NEEDS_REBUILD" not in str(exc):
            raise
    say("  the benchmark brand is unusable; rebuilding the benchmark database")
    drop_database(url, services)
    services.ensure_database(url)
    return run_helper("--prepare", env)


def helper_prepare() -> int:
    """(child) Migrate the benchmark database and create + provision its brand, when needed."""
    import django

    django.setup()
    from django.core.management import call_command
    from django_tenants.utils import get_public_schema_name, schema_context

    from tenants import services
    from tenants.brand.models import BrandProfile
    from tenants.migration_state import pending_schemas
    from tenants.models import Tenant, TenantStatus

    started = time.perf_counter()
    migrated = created = False
    if pending_schemas([get_public_schema_name()]):
        print("migrating the public schema")
        call_command("migrate_schemas", shared=True, interactive=False, verbosity=0)
        migrated = True
    tenant = Tenant.objects.filter(code=BRAND_CODE).first()
    if tenant is not None and tenant.status != TenantStatus.READY:
        print(f"NEEDS_REBUILD: brand {BRAND_CODE} is {tenant.status}")
        return 3
    if tenant is None:
        print(f"creating brand {BRAND_CODE} ({BRAND_DOMAIN}) and provisioning its schema")
        made = services.create_brand(
            code=BRAND_CODE,
            name=BRAND_NAME,
            plan_code="standard",
            domain=BRAND_DOMAIN,
            admin_username="admin",
        )
        operation = services.provision(made.operation.pk)
        tenant = Tenant.objects.get(pk=made.tenant.pk)
        if tenant.status != TenantStatus.READY:
            print(f"NEEDS_REBUILD: provisioning ended {operation.status}: {operation.error}")
            return 3
        created = True
    elif pending_schemas([tenant.schema_name]):
        print(f"migrating brand schema {tenant.schema_name}")
        call_command("migrate_schemas", tenant=True, interactive=False, verbosity=0)
        migrated = True
    if not tenant.domains.filter(domain=BRAND_DOMAIN).exists():
        print(f"NEEDS_REBUILD: brand {BRAND_CODE} has no domain {BRAND_DOMAIN}")
        return 3
    with schema_context(tenant.schema_name):
        profile = BrandProfile.objects.filter(id=1).first()
    if profile is None:
        print("NEEDS_REBUILD: the brand has no profile row")
        return 3
    result = {
        "schema": tenant.schema_name,
        "display_name": profile.display_name,
        "created": created,
        "migrated": migrated,
        "seconds": round(time.perf_counter() - started, 2),
    }
    print(json.dumps(result, ensure_ascii=False))
    return 0


def helper_probe() -> int:
    """(child) Database statements and CPU per request of the benchmark view, in process.

    Runs under the settings in DJANGO_SETTINGS_MODULE and calls Django's WSGI handler (what gunicorn
    calls, request_started/finished signals included, so connections are kept, closed or returned
    to the pool as in the server), without HTTP parsing or the network. Measured after warm-up
    requests, i.e. the steady state, and without the noise of a load generator or of the other
    setup sharing the CPUs. The database server's time is not in the CPU figure.
    """
    import django

    django.setup()
    from django.core.handlers.wsgi import WSGIHandler
    from django.db import connection

    path = os.environ["JIUMA_BENCH_PATH"]
    handler = WSGIHandler()
    environ = {
        "REQUEST_METHOD": "GET",
        "PATH_INFO": path,
        "QUERY_STRING": "",
        "SERVER_NAME": "127.0.0.1",
        "SERVER_PORT": "80",
        "SERVER_PROTOCOL": "HTTP/1.1",
        "HTTP_HOST": BRAND_DOMAIN,
        "REMOTE_ADDR": "127.0.0.1",
        "wsgi.url_scheme": "http",
        "wsgi.input": io.BytesIO(),
        "wsgi.errors": sys.stderr,
    }
    statuses: set[int] = set()

    def write(data: bytes) -> None:
        pass

    def start_response(
        status: str, headers: list[tuple[str, str]], exc_info: Any = None, /
    ) -> Callable[[bytes], object]:
        statuses.add(int(status.split(" ", 1)[0]))
        return write

    def one_request() -> None:
        response = handler(dict(environ), start_response)
        b"".join(response)
        response.close()

    for _ in range(100):
        one_request()

    # Every statement sent through Django's cursors (SET search_path included; Django's own
    # connection health check, SELECT 1 on the raw connection, is not: it is the same in both).
    statements: list[str] = []

    def count(execute: Callable[..., Any], sql: str, params: Any, many: bool, context: Any) -> Any:
        statements.append(sql)
        return execute(sql, params, many, context)

    counted = 100
    with connection.execute_wrapper(count):
        for _ in range(counted):
            one_request()

    timed = int(os.environ.get("JIUMA_BENCH_PROBE_REQUESTS", "2000"))
    cpu_started, wall_started = time.process_time(), time.perf_counter()
    for _ in range(timed):
        one_request()
    cpu = time.process_time() - cpu_started
    wall = time.perf_counter() - wall_started
    result = {
        "queries_per_request": round(len(statements) / counted, 2),
        "statements": sorted(set(statements))[:5],
        "statuses": sorted(statuses),
        "cpu_us_per_request": round(cpu / timed * 1e6, 1),
        "wall_us_per_request": round(wall / timed * 1e6, 1),
    }
    print(json.dumps(result, ensure_ascii=False))
    return 0


# --------------------------------------------------------------------------------------------
# Servers
# --------------------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def http_get(port: int, path: str, host: str, timeout: float = 5.0) -> tuple[int, bytes]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        conn.request("GET", path, headers={"Host": host})
        response = conn.getresponse()
        return response.status, response.read()
    finally:
        conn.close()


@dataclass
class Server:
    name: str
    settings: str
    workers: int
    threads: int
    env: dict[str, str]
    port: int = 0
    proc: subprocess.Popen[bytes] | None = None
    log_path: Path = field(default_factory=Path)

    def argv(self) -> list[str]:
        # Identical for both setups; no --access-logfile, so no access log.
        return [
            GUNICORN,
            "config.wsgi",
            "--worker-class",
            "gthread",
            "--workers",
            str(self.workers),
            "--threads",
            str(self.threads),
            "--bind",
            f"127.0.0.1:{self.port}",
            "--chdir",
            str(ROOT),
            "--log-level",
            "warning",
        ]

    def start(self) -> None:
        self.port = free_port()
        LOG_DIR.mkdir(parents=True, exist_ok=True)
        self.log_path = LOG_DIR / f"bench-overhead-{self.name}.log"
        env = {**self.env, "DJANGO_SETTINGS_MODULE": self.settings}
        with self.log_path.open("wb") as log:
            self.proc = subprocess.Popen(
                self.argv(), cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
            )
        say(f"  started {self.name} server: gunicorn pid {self.proc.pid}, port {self.port}, settings {self.settings}")

    def log_tail(self, lines: int = 30) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError as exc:
            return f"(no log: {exc})"

    def wait_ready(self, timeout: float = 60.0) -> None:
        deadline = time.monotonic() + timeout
        while True:
            if self.proc is None or self.proc.poll() is not None:
                raise BenchError(f"the {self.name} server exited; {self.log_path}:\n{self.log_tail()}")
            with contextlib.suppress(OSError, http.client.HTTPException):
                status, _ = http_get(self.port, "/healthz", "localhost", timeout=2.0)
                if status == 200:
                    return
            if time.monotonic() > deadline:
                raise BenchError(f"the {self.name} server did not answer within {timeout:.0f} s:\n{self.log_tail()}")
            time.sleep(0.2)

    def stop(self) -> None:
        proc = self.proc
        if proc is None or proc.poll() is not None:
            return
        # The server runs in its own session: its process group is gunicorn's master and workers.
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=5)
        say(f"  stopped {self.name} server (pid {proc.pid})")


# --------------------------------------------------------------------------------------------
# Load generation
# --------------------------------------------------------------------------------------------


@dataclass
class RunResult:
    rps: float
    p50_ms: float
    p99_ms: float
    requests: int
    seconds: float
    bad_status: int  # responses that were not 200 (wrk: status >= 400)
    errors: int  # socket errors and timeouts


_UNIT_MS = {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60_000.0, "h": 3_600_000.0}


def _ms(value: str, unit: str) -> float:
    return float(value) * _UNIT_MS[unit]


def parse_wrk(output: str) -> RunResult:
    def find(pattern: str) -> re.Match[str]:
        match = re.search(pattern, output, re.MULTILINE)
        if match is None:
            raise BenchError(f"unexpected wrk output (no {pattern!r}):\n{output}")
        return match

    p50 = find(r"^\s*50%\s+([\d.]+)(us|ms|s|m|h)\s*$")
    p99 = find(r"^\s*99%\s+([\d.]+)(us|ms|s|m|h)\s*$")
    total = find(r"^\s*(\d+) requests in ([\d.]+)(us|ms|s|m|h)")
    rps = find(r"^Requests/sec:\s+([\d.]+)")
    non2xx = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", output)
    sock = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", output)
    return RunResult(
        rps=float(rps.group(1)),
        p50_ms=_ms(p50.group(1), p50.group(2)),
        p99_ms=_ms(p99.group(1), p99.group(2)),
        requests=int(total.group(1)),
        seconds=_ms(total.group(2), total.group(3)) / 1000.0,
        bad_status=int(non2xx.group(1)) if non2xx else 0,
        errors=sum(int(n) for n in sock.groups()) if sock else 0,
    )


def run_wrk(
    wrk: str, url: str, host: str, duration: float, connections: int, threads: int, script: Path | None = None
) -> RunResult:
    """wrk against `url` with a Host header; `script` is a Lua file (e.g. to vary the request path)."""
    argv = [
        wrk,
        f"-t{min(threads, connections)}",
        f"-c{connections}",
        f"-d{max(1, round(duration))}s",
        "--latency",
        "--timeout",
        "10s",
        "-H",
        f"Host: {host}",
        *(["-s", str(script)] if script is not None else []),
        url,
    ]
    proc = subprocess.run(argv, capture_output=True, text=True, check=False, timeout=duration + 60)
    if proc.returncode != 0:
        raise BenchError(f"wrk failed (exit {proc.returncode}):\n{proc.stdout}\n{proc.stderr}")
    return parse_wrk(proc.stdout)


def percentile(sorted_values: list[float], fraction: float) -> float:
    if not sorted_values:
        return math.nan
    index = min(len(sorted_values) - 1, max(0, math.ceil(fraction * len(sorted_values)) - 1))
    return sorted_values[index]


async def _exchange(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, request: bytes) -> tuple[int, bool]:
    """Send one request on a keep-alive connection and read its whole response.
    Returns (status, whether the server closes the connection)."""
    writer.write(request)
    async with asyncio.timeout(10):
        head = await reader.readuntil(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        status = int(lines[0].split(" ", 2)[1])
        headers = {}
        for line in lines[1:]:
            if ":" in line:
                key, value = line.split(":", 1)
                headers[key.strip().lower()] = value.strip()
        if "content-length" not in headers:
            raise BenchError(f"response without Content-Length: {lines[0]}")
        await reader.readexactly(int(headers["content-length"]))
    return status, headers.get("connection", "").lower() == "close"


_CONNECTION_ERRORS = (OSError, TimeoutError, asyncio.IncompleteReadError, asyncio.LimitOverrunError, ValueError)


async def _client_loop(
    port: int, requests: Sequence[bytes], start: int, deadline: float, latencies: list[float], counts: dict[str, int]
) -> None:
    """One keep-alive connection sending requests back to back until the deadline (like wrk),
    cycling through `requests` from index `start`."""
    reader: asyncio.StreamReader | None = None
    writer: asyncio.StreamWriter | None = None
    index = start
    try:
        while time.perf_counter() < deadline:
            request = requests[index % len(requests)]
            index += 1
            if writer is None:
                reader, writer = await asyncio.open_connection("127.0.0.1", port)
            assert reader is not None
            sent = time.perf_counter()
            try:
                status, closing = await _exchange(reader, writer, request)
            except _CONNECTION_ERRORS:
                counts["errors"] += 1
                writer.close()
                reader = writer = None
                continue
            latencies.append(time.perf_counter() - sent)
            if status != 200:
                counts["bad_status"] += 1
            if closing:
                writer.close()
                reader = writer = None
    finally:
        if writer is not None:
            writer.close()


async def python_paced_load(
    port: int, paths: str | Sequence[str], host: str, duration: float, rate: float, connections: int = 64
) -> RunResult:
    """Open-loop load: requests *scheduled* at a steady `rate` per second for `duration` seconds,
    whatever the server's pace, over up to `connections` keep-alive connections. Each latency runs
    from the request's scheduled time, so time spent waiting for a free connection counts (no
    coordinated omission: a slow server cannot slow the clock down and hide its own delay)."""
    paths = [paths] if isinstance(paths, str) else list(paths)
    requests = [
        f"GET {path} HTTP/1.1\r\nHost: {host}\r\nUser-Agent: jiuma-bench\r\nAccept: */*\r\n\r\n".encode()
        for path in paths
    ]
    idle: asyncio.Queue[tuple[asyncio.StreamReader, asyncio.StreamWriter] | None] = asyncio.Queue()
    for _ in range(connections):
        idle.put_nowait(None)  # a slot; the connection is opened on first use
    latencies: list[float] = []
    counts = {"errors": 0, "bad_status": 0}

    async def one(request: bytes, scheduled: float) -> None:
        pair = await idle.get()
        try:
            if pair is None:
                pair = await asyncio.open_connection("127.0.0.1", port)
            status, closing = await _exchange(*pair, request)
        except _CONNECTION_ERRORS:
            counts["errors"] += 1
            if pair is not None:
                pair[1].close()
            idle.put_nowait(None)
            return
        latencies.append(time.perf_counter() - scheduled)
        if status != 200:
            counts["bad_status"] += 1
        if closing:
            pair[1].close()
            pair = None
        idle.put_nowait(pair)

    started = time.perf_counter()
    total = int(duration * rate)
    tasks = []
    for index in range(total):
        scheduled = started + index / rate
        delay = scheduled - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        tasks.append(asyncio.create_task(one(requests[index % len(requests)], scheduled)))
    await asyncio.gather(*tasks)
    elapsed = time.perf_counter() - started
    while not idle.empty():
        pair = idle.get_nowait()
        if pair is not None:
            pair[1].close()
    latencies.sort()
    return RunResult(
        rps=len(latencies) / elapsed,
        p50_ms=percentile(latencies, 0.50) * 1000.0,
        p99_ms=percentile(latencies, 0.99) * 1000.0,
        requests=len(latencies),
        seconds=elapsed,
        bad_status=counts["bad_status"],
        errors=counts["errors"],
    )


async def python_load(port: int, paths: str | Sequence[str], host: str, duration: float, connections: int) -> RunResult:
    """The built-in load generator: `connections` keep-alive connections for `duration` seconds,
    each cycling through `paths` (one path or many) from its own starting point."""
    paths = [paths] if isinstance(paths, str) else list(paths)
    requests = [
        f"GET {path} HTTP/1.1\r\nHost: {host}\r\nUser-Agent: jiuma-bench\r\nAccept: */*\r\n\r\n".encode()
        for path in paths
    ]
    latencies: list[float] = []
    counts = {"errors": 0, "bad_status": 0}
    started = time.perf_counter()
    deadline = started + duration
    step = max(1, len(requests) // connections)
    await asyncio.gather(
        *(_client_loop(port, requests, i * step, deadline, latencies, counts) for i in range(connections))
    )
    elapsed = time.perf_counter() - started
    latencies.sort()
    return RunResult(
        rps=len(latencies) / elapsed,
        p50_ms=percentile(latencies, 0.50) * 1000.0,
        p99_ms=percentile(latencies, 0.99) * 1000.0,
        requests=len(latencies),
        seconds=elapsed,
        bad_status=counts["bad_status"],
        errors=counts["errors"],
    )


@dataclass(frozen=True)
class LoadGenerator:
    wrk: str | None  # None: the built-in asyncio client
    connections: int
    wrk_threads: int

    @property
    def description(self) -> str:
        if self.wrk:
            return f"wrk -t{min(self.wrk_threads, self.connections)} -c{self.connections} --latency"
        return f"python asyncio keep-alive client, {self.connections} connections, 1 process"

    def run(self, port: int, path: str, host: str, duration: float) -> RunResult:
        if self.wrk:
            return run_wrk(
                self.wrk, f"http://127.0.0.1:{port}{path}", host, duration, self.connections, self.wrk_threads
            )
        return asyncio.run(python_load(port, path, host, duration, self.connections))


# --------------------------------------------------------------------------------------------
# The run
# --------------------------------------------------------------------------------------------


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description="Tenant middleware/backend overhead over HTTP (see the docstring).")
    parser.add_argument("--duration", type=float, default=None, help="seconds per measured run (default 10)")
    parser.add_argument("--rounds", type=int, default=None, help="plain+tenant pairs, order alternating (default 3)")
    parser.add_argument("--warmup", type=float, default=None, help="seconds of unmeasured load per server (default 3)")
    parser.add_argument("--quick", action="store_true", help="smoke run: 2 rounds of 3 s, 1 s warm-up")
    parser.add_argument("--connections", type=int, default=16, help="concurrent keep-alive connections")
    parser.add_argument("--wrk-threads", type=int, default=2)
    parser.add_argument("--workers", type=int, default=2, help="gunicorn workers per server")
    parser.add_argument("--threads", type=int, default=4, help="gunicorn threads per worker (gthread)")
    parser.add_argument("--view", choices=sorted(VIEWS), default="row", help="row: reads one row; nodb: no query")
    parser.add_argument("--load-generator", choices=["auto", "wrk", "python"], default="auto")
    parser.add_argument("--db-pool", action="store_true", help="DB_POOL=1 (psycopg pool) in both servers")
    parser.add_argument("--database", default=DEFAULT_DATABASE, help="benchmark database name")
    parser.add_argument("--fresh", action="store_true", help="drop and rebuild the benchmark database first")
    args = parser.parse_args(argv)
    args.duration = args.duration or (3.0 if args.quick else 10.0)
    args.rounds = args.rounds or (2 if args.quick else 3)
    args.warmup = args.warmup if args.warmup is not None else (1.0 if args.quick else 3.0)
    if args.rounds < 1 or args.duration <= 0 or args.connections < 1:
        parser.error("--rounds, --duration and --connections must be positive")
    return args


def pick_load_generator(args: argparse.Namespace) -> LoadGenerator:
    wrk = shutil.which("wrk")
    if args.load_generator == "wrk" and wrk is None:
        raise BenchError("--load-generator wrk: wrk is not installed (apt-get install wrk)")
    if args.load_generator == "python":
        wrk = None
    return LoadGenerator(wrk=wrk, connections=args.connections, wrk_threads=args.wrk_threads)


def check_view(server: Server, path: str, expected_brand: str | None) -> None:
    status, body = http_get(server.port, path, BRAND_DOMAIN)
    if status != 200:
        raise BenchError(f"{server.name}: GET {path} answered {status}: {body[:300]!r}\n{server.log_tail()}")
    payload = json.loads(body)
    if expected_brand is not None and payload.get("brand") != expected_brand:
        raise BenchError(f"{server.name}: GET {path} returned {payload!r}, expected brand {expected_brand!r}")


def measure(server: Server, loadgen: LoadGenerator, path: str, duration: float) -> RunResult:
    result = loadgen.run(server.port, path, BRAND_DOMAIN, duration)
    if result.bad_status or result.errors or result.requests == 0:
        raise BenchError(
            f"{server.name}: {result.bad_status} bad responses and {result.errors} socket errors "
            f"in {result.requests} requests; the figures would be meaningless\n{server.log_tail()}"
        )
    # A bad status that wrk does not count (3xx) would show here.
    check_view(server, path, None)
    return result


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    started = time.perf_counter()
    loadavg = os.getloadavg()
    cpus = os.cpu_count() or 1
    path = VIEWS[args.view]
    services = load_services_module()
    loadgen = pick_load_generator(args)

    say("Tenant overhead: the same trivial brand view with and without the tenant layer, over HTTP.")
    say(f"  view: GET {path} with Host: {BRAND_DOMAIN}")
    say(f"  servers: gunicorn gthread, {args.workers} workers x {args.threads} threads each, DEBUG off, no access log")
    say(f"  load: {loadgen.description}, {args.rounds} rounds x {args.duration:g} s per setup")
    say(
        f"  note: the load generator, both servers and PostgreSQL share this machine's {cpus} CPU(s) "
        f"(load average before start {loadavg[0]:.2f}); figures are relative, compare the ratio"
    )
    if loadavg[0] > cpus / 2:
        say(f"  WARNING: the machine is busy (load average {loadavg[0]:.2f} on {cpus} CPUs): expect noisy figures")
    if not loadgen.wrk:
        why = "as asked" if args.load_generator == "python" else "wrk not found"
        say(f"  using the built-in Python client ({why}); it takes more CPU from the servers than wrk would")

    url = with_database(base_database_url(services), args.database)
    say(f"==> benchmark database {services.redact(url)}")
    brand = prepare_database(url, services, args.fresh)
    state = "created" if brand["created"] else "migrated" if brand["migrated"] else "reused (current)"
    say(f"  {state}: brand {BRAND_CODE} schema {brand['schema']} ({brand['seconds']} s)")

    extra_env = {"DB_POOL": "1"} if args.db_pool else {}
    env = child_env(url, **extra_env)

    say("==> in process: database statements and CPU per request (Django's WSGI handler, steady state, no HTTP)")
    probes: dict[str, dict[str, Any]] = {}
    for name in ("plain", "tenant"):
        probes[name] = run_helper(
            "--probe",
            {
                **env,
                "DJANGO_SETTINGS_MODULE": SETTINGS[name],
                "JIUMA_BENCH_PATH": path,
                "JIUMA_BENCH_PROBE_REQUESTS": "500" if args.quick else "3000",
            },
        )
        probe = probes[name]
        say(
            f"  {name:<6} {probe['queries_per_request']} statements/request {probe['statements']}; "
            f"CPU {probe['cpu_us_per_request']} us/request through the WSGI handler"
        )
        if probes[name]["statuses"] != [200]:
            raise BenchError(f"{name}: the view answered {probes[name]['statuses']} in process")

    servers = {name: Server(name, SETTINGS[name], args.workers, args.threads, env) for name in ("plain", "tenant")}
    results: dict[str, list[RunResult]] = {"plain": [], "tenant": []}
    try:
        say("==> starting the servers")
        for server in servers.values():
            server.start()
        for server in servers.values():
            server.wait_ready()
            expected = brand["display_name"] if args.view == "row" else None
            check_view(server, path, expected)
        say(f"==> warming up ({args.warmup:g} s each)")
        for server in servers.values():
            if args.warmup > 0:
                measure(server, loadgen, path, args.warmup)
        say("==> measuring")
        for round_no in range(args.rounds):
            order = ("plain", "tenant") if round_no % 2 == 0 else ("tenant", "plain")
            for name in order:
                result = measure(servers[name], loadgen, path, args.duration)
                results[name].append(result)
                say(
                    f"  round {round_no + 1} {name:<6} {result.rps:8.1f} req/s  p50 {result.p50_ms:6.2f} ms  "
                    f"p99 {result.p99_ms:6.2f} ms  ({result.requests} requests in {result.seconds:.1f} s)"
                )
    finally:
        for server in servers.values():
            server.stop()

    def median(name: str, attr: str) -> float:
        return statistics.median(getattr(r, attr) for r in results[name])

    tenant_rps, plain_rps = median("tenant", "rps"), median("plain", "rps")
    ratio = tenant_rps / plain_rps
    round_ratios = [t.rps / p.rps for t, p in zip(results["tenant"], results["plain"], strict=True)]
    summary: dict[str, Any] = {
        "tenant_rps": round(tenant_rps, 1),
        "plain_rps": round(plain_rps, 1),
        "ratio": round(ratio, 3),
        "p99_ms": round(median("tenant", "p99_ms"), 2),
        "plain_p99_ms": round(median("plain", "p99_ms"), 2),
        "tenant_p50_ms": round(median("tenant", "p50_ms"), 2),
        "plain_p50_ms": round(median("plain", "p50_ms"), 2),
        "goal_ratio": GOAL_RATIO,
        "goal_met": ratio >= GOAL_RATIO,
        "round_ratios": [round(r, 3) for r in round_ratios],
        "tenant_queries_per_request": probes["tenant"]["queries_per_request"],
        "plain_queries_per_request": probes["plain"]["queries_per_request"],
        "tenant_cpu_us_per_request": probes["tenant"]["cpu_us_per_request"],
        "plain_cpu_us_per_request": probes["plain"]["cpu_us_per_request"],
        "view": path,
        "rounds": args.rounds,
        "duration_s": args.duration,
        "connections": args.connections,
        "load_generator": "wrk" if loadgen.wrk else "python",
        "server": f"gunicorn gthread {args.workers}x{args.threads}",
        "db_pool": args.db_pool,
        "cpus": cpus,
        "loadavg_before": round(loadavg[0], 2),
        "total_s": round(time.perf_counter() - started, 1),
    }
    say(f"  per-round ratios: {', '.join(f'{r:.3f}' for r in round_ratios)} (their spread shows the noise)")
    say(
        f"==> tenant {tenant_rps:.1f} req/s vs plain {plain_rps:.1f} req/s: ratio {ratio:.3f} "
        f"(goal >= {GOAL_RATIO}: {'met' if ratio >= GOAL_RATIO else 'NOT met'}); "
        f"p99 tenant {summary['p99_ms']} ms, plain {summary['plain_p99_ms']} ms"
    )
    say(json.dumps(summary, ensure_ascii=False))
    return 0


def _terminate(signum: int, frame: FrameType | None) -> None:
    raise SystemExit(128 + signum)  # unwinds through main's finally, which stops the servers


if __name__ == "__main__":
    sys.stdout.reconfigure(line_buffering=True)  # type: ignore[union-attr]
    if ROOT.as_posix() not in sys.path:
        sys.path.insert(0, ROOT.as_posix())
    if sys.argv[1:] == ["--prepare"]:
        sys.exit(helper_prepare())
    if sys.argv[1:] == ["--probe"]:
        sys.exit(helper_probe())
    signal.signal(signal.SIGTERM, _terminate)
    try:
        sys.exit(main())
    except BenchError as exc:
        print(f"tenant_overhead: {exc}", file=sys.stderr)
        sys.exit(1)
