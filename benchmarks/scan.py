"""Scan throughput: outer-code scans per second and p99 over HTTP, against a trivial tenant view.

One gunicorn (gthread, 2 workers x 4 threads by default, the project's settings) serves both: the scan page
`/C/<code>` on the short code host (verify, batch and status lookups, one upsert of the code's
summary, one insert into the partitioned scans table, the authenticity page) and `/bench/row/`
(one query of a one-row table) on the brand host. wrk runs each in turn, twice; medians are
reported. Scans cycle through 50,000 different codes of an activated batch (wrk's Lua state per
thread starts at a random point). Without wrk, the built-in asyncio client of tenant_overhead.py
does the same (it costs more CPU than wrk, on the same two cores). Requests come from 127.0.0.1,
which geolocation skips.

Last line: {"rps", "p99_ms", "ratio", ...}. Goals: p99_ms < 50, ratio >= 0.5.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import shutil
import statistics
import sys
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.common.setup import ROOT, ready_brand, say, setup_django
from benchmarks.tenant_overhead import BenchError, RunResult, Server, http_get, python_load, run_wrk

DATABASE = "jiuma_bench_codes"
CODE_HOST = "c.localhost"
BRAND_HOST = "benchcodes.localhost"
CODES = 50_000


@dataclass(frozen=True)
class Load:
    """wrk when installed (a Lua script cycles the scan paths), else the built-in asyncio client."""

    wrk: str | None
    connections: int

    def run(self, port: int, host: str, paths: list[str], duration: float, script: Path | None) -> RunResult:
        if self.wrk is not None:
            url = f"http://127.0.0.1:{port}{paths[0] if script is None else '/'}"
            return run_wrk(self.wrk, url, host, duration, connections=self.connections, threads=2, script=script)
        return asyncio.run(python_load(port, paths, host, duration, self.connections))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--duration", type=float, default=10.0)
    parser.add_argument("--quick", action="store_true", help="3-second runs")
    parser.add_argument("--workers", type=int, default=2, help="gunicorn workers")
    parser.add_argument("--threads", type=int, default=4, help="gunicorn threads per worker (gthread)")
    parser.add_argument("--connections", type=int, default=16, help="concurrent keep-alive connections")
    parser.add_argument("--load-generator", choices=["auto", "wrk", "python"], default="auto")
    args = parser.parse_args()
    duration = 3.0 if args.quick else args.duration
    wrk = shutil.which("wrk") if args.load_generator != "python" else None
    if wrk is None and args.load_generator == "wrk":
        raise SystemExit("wrk is not installed (`make bench` installs it with apt-get when it can)")
    load = Load(wrk, args.connections)
    generator = f"wrk -t2 -c{args.connections}" if wrk else f"python asyncio client, {args.connections} connections"
    say(f"scan: outer-code scan pages vs a trivial tenant view, one server, {generator}")
    url = setup_django(DATABASE)
    tenant = ready_brand("benchcodes", "基准酒业", BRAND_HOST)

    from django_tenants.utils import tenant_context

    from codes import format as code_format
    from codes import services
    from codes.keyring import keyring
    from codes.models import Batch, CodeStatus

    with tenant_context(tenant):
        batch = Batch.objects.filter(note="scan benchmark").first()
        if batch is None:
            from unittest import mock

            with mock.patch.object(services, "_enqueue_generation"):
                batch = services.create_batch(
                    services.BatchRequest(bottles=CODES, bottles_per_case=6, note="scan benchmark", max_downloads=1)
                )
            services.set_batch_status(batch, CodeStatus.ACTIVE)
        key = keyring.key(tenant.number, batch.key_version)
        assert key is not None
        codes = code_format.generate(key, code_format.Kind.OUTER, batch.first_bottle_serial or 0, CODES)
    paths_file = ROOT / ".local" / "bench-scan-paths.txt"
    paths_file.parent.mkdir(parents=True, exist_ok=True)
    scan_paths = [f"/C/{row.tobytes().decode()}" for row in codes]
    paths_file.write_text("".join(f"{path}\n" for path in scan_paths))
    script = ROOT / ".local" / "bench-scan.lua"
    script.write_text(
        f'local paths = {{}}\nfor line in io.lines("{paths_file}") do paths[#paths + 1] = line end\n'
        "local i = 0\n"
        "init = function(args) math.randomseed(os.time() + tonumber(tostring({}):sub(8), 16)); "
        "i = math.random(#paths) end\n"
        "request = function()\n  i = i + 1\n  if i > #paths then i = 1 end\n"
        '  return wrk.format("GET", paths[i])\nend\n'
    )

    env = {
        **dict(__import__("os").environ),
        "DATABASE_URL": url,
        "JIUMA_CODE_URL_PREFIX": f"HTTP://{CODE_HOST.upper()}/C/",
        "LOG_LEVEL": "WARNING",
    }
    server = Server("scan", "benchmarks.scanbench.settings", workers=args.workers, threads=args.threads, env=env)
    server.start()
    try:
        server.wait_ready()
        first = codes[0].tobytes().decode()
        status, body = http_get(server.port, f"/C/{first}", CODE_HOST)
        if status != 200 or b'data-verdict="genuine"' not in body:
            raise BenchError(f"the scan page answered {status}:\n{body[:500]!r}\n{server.log_tail()}")
        status, _body = http_get(server.port, "/bench/row/", BRAND_HOST)
        if status != 200:
            raise BenchError(f"the trivial view answered {status}\n{server.log_tail()}")
        load.run(server.port, CODE_HOST, scan_paths, 2.0, script)  # warm-up: keyring, caches, connections
        plain_runs, scan_runs = [], []
        for round_ in range(2):
            plain = load.run(server.port, BRAND_HOST, ["/bench/row/"], duration, None)
            scan = load.run(server.port, CODE_HOST, scan_paths, duration, script)
            for name, run in (("trivial view", plain), ("scan page", scan)):
                if run.bad_status or run.errors:
                    raise BenchError(f"{name}: {run.bad_status} bad statuses, {run.errors} errors\n{server.log_tail()}")
            say(
                f"  round {round_ + 1}: trivial {plain.rps:7.1f} req/s p99 {plain.p99_ms:6.2f} ms | "
                f"scan {scan.rps:7.1f} req/s p99 {scan.p99_ms:6.2f} ms"
            )
            plain_runs.append(plain)
            scan_runs.append(scan)
    finally:
        server.stop()
    rps = statistics.median(run.rps for run in scan_runs)
    p99 = statistics.median(run.p99_ms for run in scan_runs)
    plain_rps = statistics.median(run.rps for run in plain_runs)
    ratio = rps / plain_rps
    goal = p99 < 50 and ratio >= 0.5
    verdict = "met" if goal else "NOT met"
    say(f"==> scans {rps:.0f}/s, p99 {p99:.1f} ms, ratio to the trivial view {ratio:.2f}: goals {verdict}")
    say("    (the load generator, the server's workers and PostgreSQL share this machine's 2 cores)")
    print(
        json.dumps(
            {
                "rps": round(rps, 1),
                "p99_ms": round(p99, 2),
                "ratio": round(ratio, 3),
                "trivial_rps": round(plain_rps, 1),
                "trivial_p99_ms": round(statistics.median(run.p99_ms for run in plain_runs), 2),
                "duration_s": duration,
                "connections": args.connections,
                "server": f"gunicorn gthread {args.workers}x{args.threads}",
                "load_generator": "wrk" if wrk else "python",
                "codes": CODES,
                "goal_met": goal,
            }
        )
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
