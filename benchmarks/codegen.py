"""Code generation: a 10,000,000-code batch with its printer package, through the product's path.

Creates a batch (5,000,000 bottles x inner + outer codes by default) in a benchmark brand and runs
the same generation the Celery task runs (codes.services.generate_package: fixed-width CSV lines
built with numpy, SHA-256 manifest, WinZip AES-256 zip written by codes.zipcrypt, all overlapped on
threads), timed end to end. In the same run it
times the bare pipeline: the same AES primitive over the same count plus base32 encoding into
code strings (codes.format.generate), with nothing written. ratio = bare seconds / product seconds.

Last line: {"codes", "seconds", "codes_per_s", "ratio", ...}. Goals: seconds <= 2, ratio >= 0.5.
The machine's load average is printed too: the product path uses both cores, the bare one only one,
so other work on the machine lowers the ratio.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.common.setup import ready_brand, say, setup_django

DATABASE = "jiuma_bench_codes"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--codes", type=int, default=10_000_000, help="codes in the batch (even; default 10M)")
    args = parser.parse_args()
    bottles = args.codes // 2

    say(f"codegen: a batch of {bottles:,} bottles (inner + outer: {bottles * 2:,} codes) with its printer package")
    setup_django(DATABASE, CELERY_TASK_ALWAYS_EAGER="0")
    tenant = ready_brand("benchcodes", "基准酒业", "benchcodes.localhost")

    from django_tenants.utils import tenant_context

    from codes import format as code_format
    from codes import services
    from codes.keyring import keyring
    from codes.models import Batch

    with tenant_context(tenant):
        # Creating the batch enqueues its generation; the worker is not running here, so the
        # benchmark generates in this process exactly what the task would.
        from unittest import mock

        with mock.patch.object(services, "_enqueue_generation"):
            batch = services.create_batch(services.BatchRequest(bottles=bottles, max_downloads=1))
        started = time.perf_counter()
        cpu_started = time.process_time()
        done = services.generate_package(batch.pk, on_progress=lambda percent: say(f"  {percent:3d}%"))
        seconds = time.perf_counter() - started
        cpu_seconds = time.process_time() - cpu_started
        assert done.status == "ready", done.error
        package_mb = done.package_bytes / 1e6

        key = keyring.key(tenant.number, batch.key_version)
        assert key is not None
        bare_started = time.perf_counter()
        chunk = 50_000
        for kind in (code_format.Kind.INNER, code_format.Kind.OUTER):
            for start in range(0, bottles, chunk):
                code_format.generate(key, kind, batch.first_bottle_serial + start, min(chunk, bottles - start))
        bare_seconds = time.perf_counter() - bare_started

        # Clean up: the package file and the batch (the benchmark database is reused).
        from django.core.files.storage import default_storage

        default_storage.delete(done.package_path)
        Batch.objects.filter(pk=batch.pk).delete()

    codes = bottles * 2
    ratio = bare_seconds / seconds
    say(
        f"  product path: {seconds:.2f} s ({cpu_seconds:.2f} s CPU), {codes / seconds / 1e6:.2f} M codes/s,"
        f" package {package_mb:.0f} MB"
    )
    say(
        f"  bare pipeline (AES + base32, nothing written): {bare_seconds:.2f} s,"
        f" {codes / bare_seconds / 1e6:.2f} M codes/s"
    )
    load = os.getloadavg()
    say(f"  load average (1, 5, 15 min): {load[0]:.2f} {load[1]:.2f} {load[2]:.2f} on {os.cpu_count()} CPUs")
    goal = seconds <= 2 and ratio >= 0.5
    say(f"==> ratio {ratio:.2f}; goals (<= 2 s, ratio >= 0.5): {'met' if goal else 'NOT met'}")
    print(
        json.dumps(
            {
                "codes": codes,
                "seconds": round(seconds, 3),
                "codes_per_s": round(codes / seconds),
                "ratio": round(ratio, 3),
                "bare_seconds": round(bare_seconds, 3),
                "cpu_seconds": round(cpu_seconds, 3),
                "package_mb": round(package_mb, 1),
                "load_avg": round(load[0], 2),
                "goal_met": goal,
            }
        )
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
