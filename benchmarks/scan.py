"""Scan throughput and latency: outer-code scans over HTTP, against a trivial tenant view.

One gunicorn (gthread, 2 workers x 4 threads by default, the project's settings) serves both: the
scan page `/C/<code>` on the short code host (verify, batch lookup, one statement that upserts the
code's summary, inserts into the partitioned scans table and reads the status rule, the
authenticity page) and `/bench/row/` (one query of a one-row table) on the brand host. Scans cycle
through 50,000 different codes of an activated batch. Requests come from 127.0.0.1, which IP
geolocation skips.

Two measurements:

- Throughput (`rps`, `ratio`): closed loop at saturation. wrk (or, without it, the built-in asyncio
  client of tenant_overhead.py) keeps 16 connections busy on each page in turn, twice; medians.
  The p99 of these runs is printed as `saturated_p99_ms`: at saturation every request queues behind
  the others, so that figure measures the connection count as much as the server.
- Latency (`p99_ms`): at a steady rate of --load (0.7) times the scan throughput just measured,
  the way phones arrive. With wrk: 16 connections, each pausing an exponentially distributed time
  before every request (wrk's delay()), so arrivals are close to a Poisson stream at that rate.
  Without wrk: the asyncio client's open-loop mode (requests scheduled on the clock, latency from
  the scheduled time); it costs the machine more CPU than wrk, so its figures are worse.

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
from benchmarks.tenant_overhead import (
    BenchError,
    RunResult,
    Server,
    http_get,
    python_load,
    python_paced_load,
    run_wrk,
)

DATABASE = "jiuma_bench_codes"
CODE_HOST = "c.localhost"
BRAND_HOST = "benchcodes.localhost"
CODES = 50_000


# Paced runs: 16 connections (as the saturation runs; in production nginx funnels phones into a few
# upstream connections), each pausing a random (exponential) time before every request, so
# arrivals are close to a Poisson stream at the target rate. (Measured here: with 64 mostly idle
# keep-alive connections, gunicorn's gthread workers answer a trivial view at 300/s with a p99 of
# ~500 ms, against ~20 ms over 16: a property of the server set-up, not of the page.)
PACED_CONNECTIONS = 16


def _lua(paths_file: Path, mean_delay_ms: float | None = None) -> str:
    """A wrk script cycling through the scan paths (each thread from a random point), optionally
    pausing before each request (wrk's delay())."""
    script = (
        f'local paths = {{}}\nfor line in io.lines("{paths_file}") do paths[#paths + 1] = line end\n'
        "local i = 0\n"
        "init = function(args) math.randomseed(os.time() + tonumber(tostring({}):sub(8), 16)); "
        "i = math.random(#paths) end\n"
        "request = function()\n  i = i + 1\n  if i > #paths then i = 1 end\n"
        '  return wrk.format("GET", paths[i])\nend\n'
    )
    if mean_delay_ms is not None:
        script += f"delay = function() return -math.log(1 - math.random()) * {mean_delay_ms:.3f} end\n"
    return script


def _paced(
    wrk: str | None, port: int, host: str, paths: list[str], paths_file: Path, duration: float, rate: float
) -> RunResult:
    """`rate` requests per second, as steady arrivals. With wrk each connection waits a random delay
    before every request, so it runs at 1 / (mean delay + latency): a short first run measures
    that and the delay is shortened by the latency it found, so the measured run is served at
    `rate` (the latency is what the server adds, and a slower server still gets the same pace)."""
    if wrk is None:
        return asyncio.run(python_paced_load(port, paths, host, duration, rate))
    script = ROOT / ".local" / "bench-scan-paced.lua"
    per_connection = rate / PACED_CONNECTIONS
    delay_s = 1.0 / per_connection
    script.write_text(_lua(paths_file, mean_delay_ms=delay_s * 1000.0))
    trial = Load(wrk, PACED_CONNECTIONS).run(port, host, paths, min(3.0, duration), script)
    latency_s = PACED_CONNECTIONS / max(trial.rps, 1.0) - delay_s  # the time each request took, on average
    delay_s = max(0.0, 1.0 / per_connection - latency_s)
    script.write_text(_lua(paths_file, mean_delay_ms=delay_s * 1000.0))
    return Load(wrk, PACED_CONNECTIONS).run(port, host, paths, duration, script)


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
    parser.add_argument("--load", type=float, default=0.7, help="paced rate as a share of the measured throughput")
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
    script.write_text(_lua(paths_file))

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
        rps = statistics.median(run.rps for run in scan_runs)
        rate = args.load * rps
        paced = _paced(wrk, server.port, CODE_HOST, scan_paths, paths_file, duration, rate)
        # The trivial view at the same rate: what the server and this machine add to any request.
        plain_file = ROOT / ".local" / "bench-scan-trivial-path.txt"
        plain_file.write_text("/bench/row/\n")
        plain_paced = _paced(wrk, server.port, BRAND_HOST, ["/bench/row/"], plain_file, duration, rate)
        say(f"  paced trivial view at the same rate: p50 {plain_paced.p50_ms:.2f} ms, p99 {plain_paced.p99_ms:.2f} ms")
        if paced.bad_status or paced.errors:
            failures = f"{paced.bad_status} bad statuses, {paced.errors} errors"
            raise BenchError(f"paced scans: {failures}\n{server.log_tail()}")
        say(
            f"  paced: {rate:.0f} scans/s scheduled ({args.load:.0%} of {rps:.0f}), {paced.rps:.0f}/s served, "
            f"p50 {paced.p50_ms:.2f} ms, p99 {paced.p99_ms:.2f} ms"
        )
    finally:
        server.stop()
    p99 = paced.p99_ms
    saturated_p99 = statistics.median(run.p99_ms for run in scan_runs)
    plain_rps = statistics.median(run.rps for run in plain_runs)
    ratio = rps / plain_rps
    goal = p99 < 50 and ratio >= 0.5
    verdict = "met" if goal else "NOT met"
    say(
        f"==> scans {rps:.0f}/s at saturation (p99 there {saturated_p99:.1f} ms), ratio to the trivial view "
        f"{ratio:.2f}; p99 {p99:.1f} ms at {args.load:.0%} load: goals {verdict}"
    )
    say("    (the load generator, the server's workers and PostgreSQL share this machine's 2 cores)")
    print(
        json.dumps(
            {
                "rps": round(rps, 1),
                "p99_ms": round(p99, 2),
                "ratio": round(ratio, 3),
                "p50_ms": round(paced.p50_ms, 2),
                "paced_rate": round(rate, 1),
                "paced_served_rps": round(paced.rps, 1),
                "load": args.load,
                "saturated_p99_ms": round(saturated_p99, 2),
                "trivial_paced_p99_ms": round(plain_paced.p99_ms, 2),
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
