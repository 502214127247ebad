#!/usr/bin/env python
"""Tenant scale: provisioning time, a no-op `migrate_schemas` and request cost at N brand schemas.

    .venv/bin/python benchmarks/tenant_scale.py --tenants 1000      # after `make services`

Two databases of their own on the resolved PostgreSQL server (never the `jiuma` database):
`jiuma_bench_scale` holds N real brands and `jiuma_bench_scale_small` holds a few, so every
figure at N has its small-count twin measured in the same run. Both are kept between runs and
only the missing brands are created; `--reset` drops and rebuilds them, `--drop` only drops them.

Every brand is created by the product's own path, `services.create_brand` then
`services.provision` (the Celery task's body), run in a few worker processes at once: the schemas
are real, fully migrated brand schemas with their roles, profile and owner. Only the password
hasher differs for these bulk brands (MD5 instead of PBKDF2, whose 0.3 s per brand is not what is
measured here, and the owners of bench brands need no usable login).

Measured, once the brands exist:

* provisioning: fresh brands are onboarded through the same services with the real hasher,
  alternating TENANT_PROVISIONING_METHOD `migrate` and `clone`, each retired again afterwards
  (marked deleted, domain and schema dropped, as a confirmed deletion leaves it) so the count
  stays N. `provision_median_s` is `services.provision` (schema, roles, profile, owner, ready)
  with the project's default method; `onboard_median_s` adds `create_brand` before it;
* `noop_migrate_s`: `manage.py migrate_schemas` as a subprocess, end to end, nothing to apply
  (median of a few runs); `--all-schemas` (migrate run in every schema) once for contrast at the
  small count, and at N when N is small or `--all-schemas-at-n` is given;
* request cost: in-process requests (django.test.Client) for the home page of 10 brand hosts
  in turn, in the small database and at N; and at N one request each to brands this connection
  has not touched yet (the first-touch cost: host lookup and catalogue loading per schema).

The last line printed is one JSON object with the figures.

Cost on the 2-core box: creating 1,000 brands takes about 8 minutes (two processes; the server
is the bottleneck), once; a re-run with the brands in place measures in about a minute. A brand
schema takes about 1.1 MiB on disk (printed, and checked against the free space, before the bulk
of them is created). A database already holding more than N bench brands is refused: use
`--reset` or another `--database`.
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import shutil
import statistics
import subprocess
import sys
import time
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import psycopg
from psycopg import sql

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

DEFAULT_DATABASE = "jiuma_bench_scale"
BULK_PREFIX = "bs"  # bulk brands are bs00001, bs00002, ...
BULK_CODE_SQL = r"^bs[0-9]{5}$"
SAMPLE_CODE_SQL = r"^s[mc][0-9a-z]+$"  # brands onboarded to time provisioning, retired right after
MAX_TENANTS = 99_999
GOAL_PROVISION_S = 1.0
GOAL_NOOP_MIGRATE_S = 30.0
MiB = 1024 * 1024
GiB = 1024 * MiB


def log(message: str) -> None:
    print(message, flush=True)


def bulk_code(index: int) -> str:
    return f"{BULK_PREFIX}{index:05d}"


def base36(number: int) -> str:
    digits = "0123456789abcdefghijklmnopqrstuvwxyz"
    out = ""
    while number:
        number, rest = divmod(number, 36)
        out = digits[rest] + out
    return out or "0"


def median(values: list[float]) -> float:
    return statistics.median(values) if values else float("nan")


def percentile(values: list[float], pct: int) -> float:
    if len(values) < 2:
        return values[0] if values else float("nan")
    return statistics.quantiles(values, n=100, method="inclusive")[pct - 1]


# --------------------------------------------------------------------------------------------
# Worker processes: each configures Django against one bench database (DATABASE_URL)
# --------------------------------------------------------------------------------------------


def _setup_django() -> None:
    # WhiteNoise warns once per process when collectstatic has not been run; pages do not need it.
    warnings.filterwarnings("ignore", message="No directory at", category=UserWarning)
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    import django

    django.setup()


def worker_build(params: dict[str, Any]) -> dict[str, Any]:
    """Create and provision the bulk brands `params["indices"]` that are not ready yet."""
    _setup_django()
    from django.contrib.auth.hashers import make_password
    from django.test import override_settings
    from django.utils import timezone

    from tenants import services
    from tenants.models import OperationKind, OperationStatus, Tenant, TenantOperation, TenantStatus

    password = secrets.token_urlsafe(18)  # never shown: bench owners need no usable login
    created = repaired = 0
    started = time.perf_counter()
    with override_settings(
        PASSWORD_HASHERS=["django.contrib.auth.hashers.MD5PasswordHasher"],
        TENANT_PROVISIONING_METHOD=params["method"],
    ):
        for index in params["indices"]:
            code = bulk_code(index)
            tenant = Tenant.objects.filter(code=code).first()
            if tenant is None:
                registered = services.create_brand(
                    code=code,
                    name=f"压测品牌{index}",
                    plan_code="standard",
                    admin_username="owner",
                    admin_password=password,
                )
                operation_id = registered.operation.pk
                created += 1
            elif tenant.status == TenantStatus.READY:
                continue
            else:
                # Left over by an interrupted run: queue its provisioning again, as the sweeper
                # does for a job whose worker died (build_schema drops a half-built schema first).
                last = TenantOperation.objects.filter(tenant=tenant, kind=OperationKind.PROVISION).latest("pk")
                admin = {"username": "owner", "password_hash": make_password(password), **last.params.get("admin", {})}
                TenantOperation.objects.filter(pk=last.pk).update(
                    status=OperationStatus.QUEUED, started_at=None, error="", params={**last.params, "admin": admin}
                )
                Tenant.objects.filter(pk=tenant.pk).update(
                    status=TenantStatus.PENDING, status_changed_at=timezone.now()
                )
                operation_id = last.pk
                repaired += 1
            operation = services.provision(operation_id)
            if operation.status != OperationStatus.SUCCEEDED:
                raise SystemExit(f"provisioning of {code} failed: {operation.error}")
    return {"created": created, "repaired": repaired, "seconds": time.perf_counter() - started}


def _retire(tenant_pk: int) -> None:
    """Leave a sample brand as a confirmed deletion does: status deleted, no domain, no schema."""
    from django.utils import timezone

    from tenants import provisioning, resolution
    from tenants.models import Domain, Tenant, TenantStatus

    tenant = Tenant.objects.get(pk=tenant_pk)
    Tenant.objects.filter(pk=tenant_pk).update(
        status=TenantStatus.DELETED, status_reason="benchmark sample", status_changed_at=timezone.now()
    )
    Domain.objects.filter(tenant_id=tenant_pk).delete()
    provisioning.drop_schema(tenant.schema_name)
    resolution.invalidate()


def worker_provision(params: dict[str, Any]) -> dict[str, Any]:
    """Onboard fresh brands with each method in turn (the first round untimed), retiring each."""
    _setup_django()
    from django.conf import settings
    from django.test import override_settings

    from tenants import provisioning, services
    from tenants.db import connection
    from tenants.models import OperationStatus

    methods: list[str] = params["methods"]
    # migrate_schemas keeps the template current in production; creating it is not a clone's cost.
    provisioning.ensure_template()
    stamp = base36(int(time.time()))
    password = secrets.token_urlsafe(18)
    provision: dict[str, list[float]] = {m: [] for m in methods}
    onboard: dict[str, list[float]] = {m: [] for m in methods}
    for round_no in range(params["samples"] + 1):
        order = methods if round_no % 2 == 0 else list(reversed(methods))
        for method in order:
            code = f"s{method[0]}{stamp}{round_no:02d}"
            started = time.perf_counter()
            registered = services.create_brand(
                code=code, name=f"压测样本{code}", plan_code="standard", admin_username="owner", admin_password=password
            )
            registered_at = time.perf_counter()
            with override_settings(TENANT_PROVISIONING_METHOD=method):
                operation = services.provision(registered.operation.pk)
            finished = time.perf_counter()
            if operation.status != OperationStatus.SUCCEEDED or operation.result.get("method") != method:
                raise SystemExit(f"sample {code} ({method}): {operation.status} {operation.error}")
            connection.set_schema_to_public()
            _retire(registered.tenant.pk)
            if round_no == 0:
                continue  # warm-up: first use of each path in this process
            provision[method].append(finished - registered_at)
            onboard[method].append(finished - started)
    return {"provision": provision, "onboard": onboard, "default_method": settings.TENANT_PROVISIONING_METHOD}


def worker_retire_samples(params: dict[str, Any]) -> dict[str, Any]:
    """Retire sample brands an interrupted run left behind, so the count is N again."""
    _setup_django()
    from tenants.models import Tenant, TenantStatus

    leftovers = list(
        Tenant.objects.filter(code__regex=SAMPLE_CODE_SQL)
        .exclude(status=TenantStatus.DELETED)
        .values_list("pk", flat=True)
    )
    for pk in leftovers:
        _retire(pk)
    return {"retired": len(leftovers)}


def worker_requests(params: dict[str, Any]) -> dict[str, Any]:
    """Time GET / on brand hosts through Django's whole stack (middleware, routing, view, template)."""
    _setup_django()
    from django.db import connection as django_connection
    from django.test import Client
    from django.test.utils import CaptureQueriesContext

    from tenants.db import connection
    from tenants.models import Domain, TenantStatus

    hosts = list(
        Domain.objects.filter(is_primary=True, tenant__status=TenantStatus.READY, tenant__code__regex=BULK_CODE_SQL)
        .order_by("tenant__code")
        .values_list("domain", flat=True)
    )
    hot = hosts[: params["hot"]]
    client = Client()

    def hit(host: str) -> float:
        started = time.perf_counter()
        response = client.get("/", HTTP_HOST=host)
        elapsed = time.perf_counter() - started
        if response.status_code != 200:
            raise SystemExit(f"GET / on {host}: HTTP {response.status_code}")
        return elapsed * 1000

    def backend_memory_mib() -> float:
        connection.set_schema_to_public()
        with connection.cursor() as cursor:
            cursor.execute("SELECT sum(total_bytes) FROM pg_catalog.pg_backend_memory_contexts")
            row = cursor.fetchone()
        return float(row[0] or 0) / MiB if row else float("nan")

    for _ in range(3):
        for host in hot:
            hit(host)
    with CaptureQueriesContext(django_connection) as queries:
        hit(hot[0])
    query_count = len(queries.captured_queries)  # read now: the next request clears the log
    hot_ms = [hit(hot[i % len(hot)]) for i in range(params["requests"])]
    result: dict[str, Any] = {
        "hosts": len(hosts),
        "hot_hosts": len(hot),
        "queries": query_count,
        "hot_ms": hot_ms,
        "memory_mib_hot": backend_memory_mib(),
    }
    rest = hosts[len(hot) :]
    if params["cold"] and rest:
        count = min(params["cold"], len(rest))
        cold = [rest[i * len(rest) // count] for i in range(count)]
        result["cold_ms"] = [hit(host) for host in cold]
        result["memory_mib_after_cold"] = backend_memory_mib()
    return result


WORKERS: dict[str, Callable[[dict[str, Any]], dict[str, Any]]] = {
    "build": worker_build,
    "provision": worker_provision,
    "requests": worker_requests,
    "retire_samples": worker_retire_samples,
}


def worker_main(argv: list[str]) -> int:
    name, params = argv[0], json.loads(argv[1])
    result = WORKERS[name](params)
    print(json.dumps(result), flush=True)
    return 0


# --------------------------------------------------------------------------------------------
# The orchestrating process: no Django here, only psycopg and subprocesses
# --------------------------------------------------------------------------------------------


class BenchDatabase:
    def __init__(self, base_url: str, name: str, label: str) -> None:
        self.name = name
        self.label = label
        parts = urlsplit(base_url)
        self.url = urlunsplit(parts._replace(path=f"/{name}"))
        self.base_url = base_url

    def env(self, *, isolated: bool) -> dict[str, str]:
        """Environment for a child process on this database.

        `isolated`: also a broker nobody consumes (provisioning jobs queued by create_brand must
        not reach a real worker on another database) and the in-process cache.
        """
        env = dict(os.environ)
        env["DATABASE_URL"] = self.url
        env["DJANGO_SETTINGS_MODULE"] = "config.settings"
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), env.get("PYTHONPATH", "")]))
        if isolated:
            env.update(
                CELERY_BROKER_URL="memory://localhost/", CELERY_RESULT_BACKEND="", CACHE_URL="", LOG_LEVEL="WARNING"
            )
        return env

    @contextmanager
    def admin(self) -> Iterator[psycopg.Connection[Any]]:
        with psycopg.connect(self.base_url, dbname="postgres", autocommit=True) as conn:
            yield conn

    @contextmanager
    def connect(self) -> Iterator[psycopg.Connection[Any]]:
        with psycopg.connect(self.url, autocommit=True) as conn:
            yield conn

    def exists(self) -> bool:
        with self.admin() as conn:
            return conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [self.name]).fetchone() is not None

    def create(self) -> bool:
        if self.exists():
            return False
        with self.admin() as conn:
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(self.name)))
        return True

    def drop(self) -> None:
        with self.admin() as conn:
            conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(self.name)))

    def size(self) -> int:
        with self.connect() as conn:
            row = conn.execute("SELECT pg_database_size(current_database())").fetchone()
        return int(row[0]) if row else 0

    def bulk_status(self) -> dict[str, list[int]]:
        """Bulk brand indices by status."""
        with self.connect() as conn:
            rows = conn.execute("SELECT code, status FROM tenants_tenant WHERE code ~ %s", [BULK_CODE_SQL]).fetchall()
        by_status: dict[str, list[int]] = {}
        for code, status in rows:
            by_status.setdefault(status, []).append(int(code[len(BULK_PREFIX) :]))
        return by_status

    def leftover_samples(self) -> int:
        with self.connect() as conn:
            row = conn.execute(
                "SELECT count(*) FROM tenants_tenant WHERE code ~ %s AND status <> 'deleted'", [SAMPLE_CODE_SQL]
            ).fetchone()
        return int(row[0]) if row else 0

    def live_schemas(self) -> int:
        with self.connect() as conn:
            row = conn.execute(
                """SELECT count(*) FROM tenants_tenant t
                     JOIN pg_catalog.pg_namespace n ON n.nspname = t.schema_name
                    WHERE t.status IN ('ready', 'suspended')"""
            ).fetchone()
        return int(row[0]) if row else 0

    def data_directory(self) -> str | None:
        try:
            with self.connect() as conn:
                row = conn.execute("SHOW data_directory").fetchone()
        except psycopg.Error:
            return None
        return str(row[0]) if row else None


def run_worker(db: BenchDatabase, name: str, params: dict[str, Any]) -> dict[str, Any]:
    proc = subprocess.run(
        [sys.executable, __file__, "_worker", name, json.dumps(params)],
        env=db.env(isolated=True),
        cwd=REPO,
        stdout=subprocess.PIPE,
        text=True,
        check=False,
    )
    if proc.returncode != 0:
        raise SystemExit(f"{name} worker on {db.name} failed (exit {proc.returncode})")
    return dict(json.loads(proc.stdout.strip().splitlines()[-1]))


def start_worker(db: BenchDatabase, name: str, params: dict[str, Any]) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, __file__, "_worker", name, json.dumps(params)],
        env=db.env(isolated=True),
        cwd=REPO,
        stdout=subprocess.PIPE,
        text=True,
    )


def manage(db: BenchDatabase, *args: str) -> tuple[float, str]:
    """Run `manage.py <args>` on the bench database; return wall seconds and its output."""
    started = time.perf_counter()
    proc = subprocess.run(
        [sys.executable, "manage.py", *args],
        env=db.env(isolated=False),
        cwd=REPO,
        capture_output=True,
        text=True,
        check=False,
    )
    elapsed = time.perf_counter() - started
    if proc.returncode != 0:
        raise SystemExit(f"manage.py {' '.join(args)} on {db.name} failed:\n{proc.stdout}\n{proc.stderr}")
    return elapsed, proc.stdout + proc.stderr


def mem_available_gib() -> float:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) * 1024 / GiB
    except OSError:
        pass
    return float("nan")


def free_disk(db: BenchDatabase) -> tuple[str, int]:
    for path in (db.data_directory(), str(REPO)):
        if path:
            try:
                return path, shutil.disk_usage(path).free
            except OSError:
                continue
    return str(REPO), shutil.disk_usage(REPO).free


def build(db: BenchDatabase, count: int, workers: int, method: str) -> dict[str, Any]:
    """Bring `db` to exactly `count` ready bulk brands, creating only the missing ones."""
    created_db = db.create()
    log(f"[{db.label}] database {db.name}: {'created' if created_db else 'exists'}")
    seconds, _ = manage(db, "migrate_schemas", "--shared", "-v0")
    log(f"[{db.label}] public schema migrated ({seconds:.1f} s)")
    status = db.bulk_status()
    ready = set(status.get("ready", []))
    beyond = sorted(i for ids in status.values() for i in ids if i > count)
    if beyond:
        raise SystemExit(
            f"{db.name} already has bulk brands past {count} (up to {bulk_code(beyond[-1])}); "
            "use --reset, or another --database"
        )
    if db.leftover_samples():
        retired = run_worker(db, "retire_samples", {})["retired"]
        log(f"[{db.label}] retired {retired} sample brands left by an interrupted run")
    missing = [i for i in range(1, count + 1) if i not in ready]
    log(f"[{db.label}] {len(ready)} of {count} brands ready; {len(missing)} to create or finish")
    info: dict[str, Any] = {"created": len(missing), "build_s": 0.0}
    if not missing:
        size = db.size()
        log(f"[{db.label}] database size {size / MiB:.0f} MiB ({size / MiB / max(count, 1):.2f} MiB per brand, all in)")
        info["mib_per_schema"] = size / MiB / max(count, 1)
        return info
    started = time.perf_counter()
    # A first batch alone, to measure the size of a schema before committing the disk to N of them.
    first, rest = missing[:10], missing[10:]
    size_before = db.size()
    result = run_worker(db, "build", {"indices": first, "method": method})
    per_schema = (db.size() - size_before) / len(first)
    per_tenant_s = result["seconds"] / len(first)
    info["mib_per_schema"] = per_schema / MiB
    where, free = free_disk(db)
    need = per_schema * len(rest)
    log(
        f"[{db.label}] first {len(first)} brands in {result['seconds']:.1f} s ({per_tenant_s:.2f} s each); "
        f"≈{per_schema / MiB:.2f} MiB per schema, {len(rest)} more need ≈{need / GiB:.2f} GiB; "
        f"{free / GiB:.0f} GiB free at {where}"
    )
    if need > 0.5 * free:
        raise SystemExit(f"not enough disk: {need / GiB:.1f} GiB needed, {free / GiB:.1f} GiB free")
    if rest:
        workers = max(1, min(workers, len(rest)))
        log(
            f"[{db.label}] creating {len(rest)} brands in {workers} processes "
            f"(≈{per_tenant_s * len(rest) / workers / 60:.1f} min if they scale)"
        )
        procs = [start_worker(db, "build", {"indices": rest[w::workers], "method": method}) for w in range(workers)]
        target = len(ready) + len(missing)
        last_report = time.perf_counter()
        min_mem = mem_available_gib()
        while any(p.poll() is None for p in procs):
            time.sleep(1)
            min_mem = min(min_mem, mem_available_gib())
            if time.perf_counter() - last_report >= 15:
                last_report = time.perf_counter()
                done = len(db.bulk_status().get("ready", []))
                elapsed = time.perf_counter() - started
                log(
                    f"[{db.label}]   {done}/{target} ready, {elapsed:.0f} s, "
                    f"memory available {mem_available_gib():.1f} GiB (lowest {min_mem:.1f})"
                )
        for p in procs:
            out, _ = p.communicate()
            if p.returncode != 0:
                raise SystemExit(f"a build worker on {db.name} failed (exit {p.returncode})")
            json.loads(out.strip().splitlines()[-1])
    info["build_s"] = time.perf_counter() - started
    log(
        f"[{db.label}] created {len(missing)} brands in {info['build_s']:.0f} s "
        f"({info['build_s'] / len(missing):.2f} s each, wall)"
    )
    seconds = analyze(db)
    log(f"[{db.label}] ANALYZE after the build: {seconds:.1f} s (autovacuum would do this on a live server)")
    return info


def analyze(db: BenchDatabase) -> float:
    started = time.perf_counter()
    with db.connect() as conn:
        conn.execute("ANALYZE")
    return time.perf_counter() - started


def measure_provisioning(db: BenchDatabase, samples: int) -> dict[str, Any]:
    log(f"[{db.label}] provisioning {samples} brands per method (+1 warm-up each), migrate and clone in turn")
    result = run_worker(db, "provision", {"samples": samples, "methods": ["migrate", "clone"]})
    for method in ("migrate", "clone"):
        times = result["provision"][method]
        log(
            f"[{db.label}]   {method:<7} provision median {median(times):.3f} s "
            f"(min {min(times):.3f}, max {max(times):.3f}); with create_brand "
            f"{median(result['onboard'][method]):.3f} s"
        )
    return result


def measure_noop_migrate(db: BenchDatabase, runs: int) -> list[float]:
    times = []
    for run in range(runs):
        seconds, output = manage(db, "migrate_schemas")
        summary = next((line for line in output.splitlines() if "brand schemas are up to date" in line), "")
        if "migrating 0." not in summary:
            raise SystemExit(f"migrate_schemas on {db.name} was not a no-op:\n{output}")
        log(f"[{db.label}]   migrate_schemas run {run + 1}: {seconds:.2f} s  ({summary.strip()})")
        times.append(seconds)
    return times


def measure_all_schemas(db: BenchDatabase) -> float:
    seconds, _ = manage(db, "migrate_schemas", "--all-schemas", "-v0")
    log(f"[{db.label}]   migrate_schemas --all-schemas (migrate run in every schema): {seconds:.2f} s")
    return seconds


def measure_requests(db: BenchDatabase, hot: int, requests: int, cold: int) -> dict[str, Any]:
    result = run_worker(db, "requests", {"hot": hot, "requests": requests, "cold": cold})
    hot_ms = result["hot_ms"]
    log(
        f"[{db.label}]   GET / on {result['hot_hosts']} hosts in turn, {len(hot_ms)} requests: "
        f"median {median(hot_ms):.2f} ms, p90 {percentile(hot_ms, 90):.2f}, p99 {percentile(hot_ms, 99):.2f}; "
        f"{result['queries']} queries per request; backend memory {result['memory_mib_hot']:.1f} MiB"
    )
    if "cold_ms" in result:
        cold_ms = result["cold_ms"]
        log(
            f"[{db.label}]   first request to each of {len(cold_ms)} other brands: median {median(cold_ms):.2f} ms, "
            f"p90 {percentile(cold_ms, 90):.2f}; backend memory then {result['memory_mib_after_cold']:.1f} MiB"
        )
    return result


def resolve_base_url() -> str:
    import config.env  # noqa: F401 - fills os.environ from .local/services.env (`make services`)

    url = os.environ.get("DATABASE_URL", "")
    if not url:
        raise SystemExit("no DATABASE_URL: run `make services` first")
    return url


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--tenants", type=int, default=1000, help="number of brands N (default 1000)")
    parser.add_argument("--small", type=int, default=10, help="brands in the small comparison database")
    parser.add_argument("--database", default=DEFAULT_DATABASE, help="bench database name (and <name>_small)")
    parser.add_argument("--reset", action="store_true", help="drop both bench databases first, then rebuild")
    parser.add_argument("--drop", action="store_true", help="drop both bench databases and exit")
    parser.add_argument("--workers", type=int, default=2, help="processes creating brands (default 2)")
    parser.add_argument("--build-method", choices=["migrate", "clone"], default="migrate")
    parser.add_argument("--samples", type=int, default=5, help="timed provisionings per method (default 5)")
    parser.add_argument("--migrate-runs", type=int, default=3, help="no-op migrate_schemas runs (default 3)")
    parser.add_argument("--requests", type=int, default=400, help="timed requests per database (default 400)")
    parser.add_argument("--cold", type=int, default=200, help="first-touch requests at N (default 200)")
    parser.add_argument(
        "--all-schemas-at-n", action="store_true", help="also time `--all-schemas` at N (default only if N <= 100)"
    )
    args = parser.parse_args(argv)
    if not 1 <= args.small <= args.tenants <= MAX_TENANTS:
        parser.error(f"need 1 <= --small <= --tenants <= {MAX_TENANTS}")
    if args.samples < 1 or args.migrate_runs < 1 or args.requests < 1:
        parser.error("--samples, --migrate-runs and --requests must be at least 1")
    return args


def main(argv: list[str]) -> int:
    args = parse_args(argv)
    started = time.perf_counter()
    base_url = resolve_base_url()
    big = BenchDatabase(base_url, args.database, f"N={args.tenants}")
    small = BenchDatabase(base_url, f"{args.database}_small", f"small={args.small}")
    if args.drop or args.reset:
        for db in (big, small):
            db.drop()
            log(f"dropped database {db.name}")
        if args.drop:
            return 0
    log(
        f"tenant scale benchmark: N={args.tenants} (vs {args.small}), {os.cpu_count()} cores, "
        f"{mem_available_gib():.1f} GiB memory available; server {urlsplit(base_url).hostname}:"
        f"{urlsplit(base_url).port or 5432}"
    )

    log("== building (only missing brands are created)")
    small_build = build(small, args.small, 1, args.build_method)
    big_build = build(big, args.tenants, args.workers, args.build_method)
    live = big.live_schemas()
    if live != args.tenants:
        raise SystemExit(f"{big.name} has {live} live brand schemas, expected {args.tenants}")

    log("== provisioning one brand (services.create_brand + services.provision)")
    prov_small = measure_provisioning(small, args.samples)
    prov_big = measure_provisioning(big, args.samples)
    default_method = prov_big["default_method"]

    log("== request cost (django.test.Client, GET / on brand hosts, in process)")
    req_small = measure_requests(small, 10, args.requests, 0)
    req_big = measure_requests(big, 10, args.requests, args.cold)

    log("== no-op migrate_schemas (subprocess, end to end)")
    migrate_small = measure_noop_migrate(small, args.migrate_runs)
    migrate_big = measure_noop_migrate(big, args.migrate_runs)
    all_small = measure_all_schemas(small)
    all_big = measure_all_schemas(big) if args.all_schemas_at_n or args.tenants <= 100 else None

    def prov(result: dict[str, Any], method: str) -> float:
        return round(median(result["provision"][method]), 3)

    provision_median = prov(prov_big, default_method)
    faster = min(("migrate", "clone"), key=lambda m: median(prov_big["provision"][m]))
    figures: dict[str, Any] = {
        "tenants": args.tenants,
        "provision_median_s": provision_median,
        "provision_method": default_method,
        "provision_migrate_median_s": prov(prov_big, "migrate"),
        "provision_clone_median_s": prov(prov_big, "clone"),
        "provision_faster_method": faster,
        "provision_migrate_small_median_s": prov(prov_small, "migrate"),
        "provision_clone_small_median_s": prov(prov_small, "clone"),
        "onboard_median_s": round(median(prov_big["onboard"][default_method]), 3),
        "noop_migrate_s": round(median(migrate_big), 2),
        "noop_migrate_small_s": round(median(migrate_small), 2),
        "noop_migrate_all_schemas_s": round(all_big, 2) if all_big is not None else None,
        "noop_migrate_all_schemas_small_s": round(all_small, 2),
        "request_ms_small": round(median(req_small["hot_ms"]), 3),
        "request_ms_at_n": round(median(req_big["hot_ms"]), 3),
        "request_ratio": round(median(req_big["hot_ms"]) / median(req_small["hot_ms"]), 3),
        "request_ms_at_n_first_touch": round(median(req_big["cold_ms"]), 3) if "cold_ms" in req_big else None,
        "queries_per_request": req_big["queries"],
        "backend_mib_after_first_touch": (
            round(req_big["memory_mib_after_cold"], 1) if "memory_mib_after_cold" in req_big else None
        ),
        "small_tenants": args.small,
        "mib_per_schema": round(big_build["mib_per_schema"], 2),
        "created": small_build["created"] + big_build["created"],
        "build_s": round(small_build["build_s"] + big_build["build_s"], 1),
        "total_s": round(time.perf_counter() - started, 1),
    }

    log("== summary")
    goal_provision = "meets" if provision_median <= GOAL_PROVISION_S else "MISSES"
    log(f"provision ({default_method}): {provision_median:.3f} s, {goal_provision} the goal of ≤ {GOAL_PROVISION_S} s")
    if faster != default_method:
        log(f"note: {faster} measured faster than the default method {default_method} at N={args.tenants}")
    goal_migrate = "meets" if figures["noop_migrate_s"] < GOAL_NOOP_MIGRATE_S else "MISSES"
    log(
        f"no-op migrate_schemas at N={args.tenants}: {figures['noop_migrate_s']:.2f} s, "
        f"{goal_migrate} the goal of < {GOAL_NOOP_MIGRATE_S:.0f} s (at N = 1,000)"
    )
    log(
        f"request: {figures['request_ms_small']:.2f} ms with {args.small} brands, {figures['request_ms_at_n']:.2f} ms "
        f"with {args.tenants} (×{figures['request_ratio']:.2f})"
    )
    log(f"total {figures['total_s']:.0f} s")
    print(json.dumps(figures, ensure_ascii=False), flush=True)
    return 0


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "_worker":
        sys.exit(worker_main(sys.argv[2:]))
    sys.exit(main(sys.argv[1:]))
