"""Scan throughput: outer-code scans per second and p99 over HTTP, against a trivial tenant view.

One gunicorn (gthread, 2 workers x 4 threads, the project's settings) serves both: the scan page
`/C/<code>` on the short code host (verify, batch and status lookups, one upsert of the code's
summary, one insert into the partitioned scans table, the authenticity page) and `/bench/row/`
(one query of a one-row table) on the brand host. wrk runs each in turn, twice; medians are
reported. Scans cycle through 50,000 different codes of an activated batch (wrk's Lua state per
thread starts at a random point). Requests come from 127.0.0.1, which geolocation skips.

Last line: {"rps", "p99_ms", "ratio", ...}. Goals: p99_ms < 50, ratio >= 0.5.
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.common.setup import ROOT, ready_brand, say, setup_django
from benchmarks.tenant_overhead import BenchError, RunResult, Server, http_get, run_wrk

DATABASE = "jiuma_bench_codes"
CODE_HOST = "c.localhost"
BRAND_HOST = "benchcodes.localhost"
CODES = 50_000


def _wrk(wrk: str, port: int, host: str, path: str, duration: float, script: Path | None) -> RunResult:
    return run_wrk(wrk, f"http://127.0.0.1:{port}{path}", host, duration, connections=16, threads=2, script=script)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--duration", type=float, default=10.0)
    parser.add_argument("--quick", action="store_true", help="3-second runs")
    args = parser.parse_args()
    duration = 3.0 if args.quick else args.duration
    wrk = shutil.which("wrk")
    if wrk is None:
        raise SystemExit("scan.py needs wrk (`make bench` installs it with apt-get when it can)")

    say("scan: outer-code scan pages vs a trivial tenant view, one server, wrk -t2 -c16")
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
    paths_file.write_text("".join(f"/C/{row.tobytes().decode()}\n" for row in codes))
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
    server = Server("scan", "benchmarks.scanbench.settings", workers=2, threads=4, env=env)
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
        _wrk(wrk, server.port, CODE_HOST, "/", 2.0, script)  # warm-up: keyring, caches, connections
        plain_runs, scan_runs = [], []
        for round_ in range(2):
            plain = _wrk(wrk, server.port, BRAND_HOST, "/bench/row/", duration, None)
            scan = _wrk(wrk, server.port, CODE_HOST, "/", duration, script)
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
    say("    (wrk, both server processes and PostgreSQL share this machine's 2 cores)")
    print(
        json.dumps(
            {
                "rps": round(rps, 1),
                "p99_ms": round(p99, 2),
                "ratio": round(ratio, 3),
                "trivial_rps": round(plain_rps, 1),
                "trivial_p99_ms": round(statistics.median(run.p99_ms for run in plain_runs), 2),
                "duration_s": duration,
                "codes": CODES,
                "goal_met": goal,
            }
        )
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
