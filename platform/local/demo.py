"""`make demo`: migrate, seed the demo brand, run the web server, a Celery worker and beat.

Runs in the foreground until Ctrl-C, then stops what it started. With --check it starts
everything, checks the demo URLs answer, prints them and stops (used to verify the set-up).
Services (PostgreSQL, broker) were resolved by `platform/local/services.py up` beforehand.
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PY = str(ROOT / ".venv" / "bin" / "python")
LOG_DIR = ROOT / ".local" / "log"


def manage(*args: str) -> None:
    subprocess.run([PY, "manage.py", *args], cwd=ROOT, check=True)


def start(name: str, argv: list[str]) -> subprocess.Popen[bytes]:
    LOG_DIR.mkdir(parents=True, exist_ok=True)
    log = open(LOG_DIR / f"{name}.log", "ab")  # noqa: SIM115 - handed to the child for its lifetime
    print(f"  starting {name} (log: .local/log/{name}.log)")
    return subprocess.Popen(argv, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)


def wait_http(url: str, host: str, timeout: float = 30.0) -> int:
    deadline = time.monotonic() + timeout
    while True:
        try:
            request = urllib.request.Request(url, headers={"Host": host})  # noqa: S310 - loopback only
            with urllib.request.urlopen(request, timeout=5) as response:  # noqa: S310 - loopback only
                return int(response.status)
        except Exception:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.3)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--port", type=int, default=int(os.environ.get("JIUMA_DEMO_PORT", "8000")))
    parser.add_argument("--check", action="store_true", help="start, verify the URLs, stop")
    parser.add_argument(
        "--wechat-port", type=int, default=int(os.environ.get("JIUMA_DEMO_WECHAT_PORT", "8765")), help="simulator port"
    )
    args = parser.parse_args()
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    # Scan URLs of the demo point at this server through the short code host c.localhost.
    os.environ.setdefault("JIUMA_CODE_URL_PREFIX", f"HTTP://C.LOCALHOST:{args.port}/C/")
    # WeChat (login, red packets) is the local simulator; every process started below inherits this.
    sim = f"http://127.0.0.1:{args.wechat_port}"
    os.environ.update(
        {
            "JIUMA_WECHAT_OAUTH_BASE_URL": f"{sim}/connect/",
            "JIUMA_WECHAT_API_BASE_URL": f"{sim}/",
            "JIUMA_WECHAT_PAY_BASE_URL": sim,
            "JIUMA_WECHAT_SIMULATED": "1",
            "JIUMA_WECHAT_PAY_NOTIFY_URL": f"http://127.0.0.1:{args.port}/pay/notify/{{number}}/",
        }
    )

    print("==> migrating the public schema and every brand schema")
    manage("migrate_schemas", "-v", "0")
    manage("collectstatic", "--noinput", "-v", "0")

    children: list[subprocess.Popen[bytes]] = []
    stopping = False

    def stop(*_: object) -> None:
        nonlocal stopping
        if stopping:
            return
        stopping = True
        print("\n==> stopping the demo")
        for child in children:
            if child.poll() is None:
                os.killpg(child.pid, signal.SIGTERM)
        for child in children:
            try:
                child.wait(timeout=15)
            except subprocess.TimeoutExpired:
                os.killpg(child.pid, signal.SIGKILL)

    signal.signal(signal.SIGTERM, lambda *_: (stop(), sys.exit(0)))
    try:
        print("==> starting the WeChat simulator, the Celery worker, beat and the web server")
        children.append(
            start(
                "wechat-simulator",
                [
                    PY,
                    str(ROOT / "platform" / "local" / "wechat_simulator.py"),
                    "--port",
                    str(args.wechat_port),
                    "--notify-retry-schedule",
                    "1,5,30",
                ],
            )
        )
        celery = [str(ROOT / ".venv" / "bin" / "celery"), "-A", "config"]
        children.append(start("worker", [*celery, "worker", "-c", "2", "-l", "INFO"]))
        children.append(
            start("beat", [*celery, "beat", "-l", "INFO", "-s", str(ROOT / ".local" / "celerybeat-schedule")])
        )
        children.append(
            start(
                "web",
                [
                    str(ROOT / ".venv" / "bin" / "gunicorn"),
                    "config.wsgi",
                    "-w",
                    "2",
                    "-k",
                    "gthread",
                    "--threads",
                    "4",
                    "-b",
                    f"127.0.0.1:{args.port}",
                    "--access-logfile",
                    "-",
                ],
            )
        )
        print("==> seeding the demo brand (provisioned by the worker)")
        manage("seed_demo", "--wait", "90")
        manage("seed_demo_codes")
        wait_http(f"{sim}/_sim/state", "127.0.0.1")
        manage("seed_demo_rewards")
        base = f"http://127.0.0.1:{args.port}"
        wait_http(f"{base}/healthz", "localhost")
        wait_http(f"{base}/api/v1/site/", "demo.localhost")
        port = args.port
        print(
            f"""
Jiuma demo is running.

  Consumer page (demo brand)   http://demo.localhost:{port}/
  Brand console (Django admin) http://demo.localhost:{port}/admin/
      owner / Demo-pass-2026   (also: operator, finance, warehouse, customer_service, same password)
  Brand API                    http://demo.localhost:{port}/api/v1/site/   OpenAPI: /api/schema/
  Ops API                      http://localhost:{port}/ops/api/v1/brands/   OpenAPI: /ops/api/schema/
      HTTP Basic ops / Ops-demo-2026, or
      Authorization: Bearer jmo_demo_ops_token_change_me_in_production
  Health / readiness           http://localhost:{port}/healthz   http://localhost:{port}/readyz
  Scan pages                   the two URLs printed above (a cap's outer and inner code): open the
                               inner one to draw; WeChat login and red packets run on the simulator
  WeChat simulator             {sim}/_sim/state   (login personas, transfers, notifications)

  Try: curl -H 'Authorization: Bearer jmo_demo_ops_token_change_me_in_production' \\
         -H 'Content-Type: application/json' http://localhost:{port}/ops/api/v1/brands/ \\
         -d '{{"code": "maotai2", "name": "新品牌", "plan": "standard", "admin_username": "boss"}}'

Browsers and curl resolve *.localhost to this machine. Logs: .local/log/. Ctrl-C stops everything.
""",
            flush=True,
        )
        if args.check:
            return 0
        while all(child.poll() is None for child in children):
            time.sleep(1)
        failed = [c for c in children if c.poll() is not None]
        print(f"a demo process exited ({failed[0].args[0]}); see .local/log/", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 0
    finally:
        stop()


if __name__ == "__main__":
    sys.exit(main())
