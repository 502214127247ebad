"""Shop checkout: orders per second through create → pay → paid over HTTP, and queries per request.

One gunicorn (gthread, 2 workers x 4 threads by default, the project's settings; the shop's URL
module is added to the brand URLconf by a generated settings module while config.urls_tenant does
not include it yet) serves the brand's shop pages; the WeChat simulator runs in this process with a
merchant for the brand, and posts its notifications to the server's `/pay/notify/<brand number>/`
(WECHAT_PAY_NOTIFY_URL), as WeChat would. Each client thread is one signed-in member (the member
cookie the WeChat login sets; one member per thread, since a member's checkouts serialise on their
row) with an address, and repeats:

  1. POST /shop/checkout/          (buy now: one unit of a SKU with plenty of stock, a fresh
                                    client_token; CSRF token from one GET of the page) → 303;
  2. POST /shop/orders/<n>/pay/    → JSON JS-SDK params (the product creates the JSAPI order at the
                                    simulator: a signed request and a signed answer);
  3. POST <sim>/_sim/payments/<n>P01/pay  (the consumer pays in WeChat: the simulator's control API;
                                    it then notifies the brand: signed, AES-GCM encrypted);
  4. GET  /shop/orders/<n>/ (JSON) every few ms until payment_status is paid (the server applied
                                    the notification).

`orders_per_s` = orders that reached paid / seconds, over --duration (10 s; --quick 3 s) after a
short warm-up. Queries per request: in this process, Django's test client (whole middleware stack,
no HTTP) with CaptureQueriesContext around one checkout POST and one pay POST (after a warm-up pair).

Last line: {"orders_per_s", "queries_per_request" (max of checkout and pay), ...}. Goal: >= 100/s.

    .venv/bin/python benchmarks/checkout.py            # ~1 minute after the first setup
    .venv/bin/python benchmarks/checkout.py --quick
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import re
import secrets
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any
from urllib.parse import urlsplit

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.common.setup import ROOT, ready_brand, say, setup_django
from benchmarks.tenant_overhead import LOG_DIR, BenchError, Server, free_port, percentile

DATABASE = "jiuma_bench_checkout"
BRAND_CODE = "benchshop"
BRAND_HOST = "benchshop.localhost"
GOAL_ORDERS_PER_S = 100.0
PAID_DEADLINE_S = 10.0
POLL_S = 0.005

_SETTINGS = """from config.settings import *  # noqa: F403
"""


def settings_module() -> tuple[str, str]:
    """The settings module of the server and this process, in a new directory added to sys.path."""
    folder = tempfile.mkdtemp(prefix="jiuma-checkout-bench-")
    Path(folder, "checkoutbench_settings.py").write_text(_SETTINGS)
    sys.path.insert(0, folder)
    return "checkoutbench_settings", folder


class ShopServer(Server):
    """tenant_overhead's gunicorn on a port chosen first, so the notify URL can name it."""

    def start(self) -> None:
        if not self.port:
            self.port = free_port()
        LOG_DIR.mkdir(parents=True, exist_ok=True)
        self.log_path = LOG_DIR / f"bench-{self.name}.log"
        env = {**self.env, "DJANGO_SETTINGS_MODULE": self.settings}
        with self.log_path.open("wb") as log:
            self.proc = subprocess.Popen(
                self.argv(), cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
            )
        say(f"  started {self.name} server: gunicorn pid {self.proc.pid}, port {self.port}, settings {self.settings}")


# --------------------------------------------------------------------------------------------
# The brand's data and WeChat Pay
# --------------------------------------------------------------------------------------------


def simulator_module() -> ModuleType:
    from config.local_tools import local_module

    return local_module("wechat_simulator")


def ready_shop(tenant: Any, members: int, stock: int) -> tuple[int, list[tuple[int, int, str]]]:
    """A SKU with `stock` more units and `members` members with an address: (sku id, [(member id,
    address id, cookie)])."""
    from commerce.models import Address, Member, Product, Sku
    from commerce.services import catalog, members_levels
    from frontends import consumer

    sku = Sku.objects.filter(code="BENCH-SHOP-1").first()
    if sku is None:
        product = Product.objects.create(name="基准 酱香53度", subtitle="基准测试商品")
        sku = Sku.objects.create(product=product, code="BENCH-SHOP-1", spec="500ml", price_fen=9_900)
    catalog.inbound(sku.pk, stock, ref=f"bench-{secrets.token_hex(6)}", actor="bench")
    openids = [f"o-bench-shop-{n:04d}" for n in range(members)]
    existing = set(Member.objects.filter(openid__in=openids).values_list("openid", flat=True))
    Member.objects.bulk_create(Member(openid=openid) for openid in openids if openid not in existing)
    rows = []
    for member in Member.objects.filter(openid__in=openids).order_by("openid"):
        address = Address.objects.filter(member=member).first() or members_levels.add_address(
            member.pk, receiver_name="基准", phone="13800138000", region_code="520102", detail="中华北路 1 号"
        )
        name, value = consumer.member_cookie(tenant.number, member.pk)
        rows.append((member.pk, address.pk, f"{name}={value}"))
    return sku.pk, rows


def add_merchant(tenant: Any, simulator: Any) -> str:
    """The brand's official account and WeChat Pay merchant, at the simulator and in the brand's config."""
    from commerce.wechat import config as wechat_config

    module = simulator_module()
    appid, secret = f"wx{tenant.number:016d}", f"bench-secret-{tenant.number}"
    mchid = f"19{secrets.randbelow(10**8):08d}"
    credentials = module.merchant_credentials()
    apiv3_key = secrets.token_hex(16)
    simulator.add_official_account(appid, secret)
    platform = simulator.add_merchant(
        mchid, appid, credentials.public_key_pem, credentials.cert_serial_no, apiv3_key, module.MerchantOptions()
    )
    wechat_config.save(
        appid=appid,
        secret=secret,
        mchid=mchid,
        merchant_serial_no=credentials.cert_serial_no,
        private_key=credentials.private_key_pem,
        apiv3_key=apiv3_key,
        platform_public_key_id=platform.public_key_id,
        platform_public_key=platform.public_key_pem,
    )
    return mchid


# --------------------------------------------------------------------------------------------
# Queries per request, in process
# --------------------------------------------------------------------------------------------


@dataclass
class Probe:
    checkout: list[str]
    pay: list[str]
    checkout_ms: float
    pay_ms: float


def probe_queries(sku_id: int, member: tuple[int, int, str]) -> Probe:
    from django.db import connection
    from django.test import Client
    from django.test.utils import CaptureQueriesContext

    _member_id, address_id, cookie = member
    client = Client(HTTP_HOST=BRAND_HOST, HTTP_COOKIE=cookie)
    captured: dict[str, tuple[list[str], float]] = {}
    for round_ in range(2):  # the first warms the per-process caches (tenant, domain, WeChat config)
        form = {
            "client_token": secrets.token_urlsafe(12),
            "mode": "sku",
            "sku": sku_id,
            "quantity": 1,
            "delivery": "express",
            "address": address_id,
        }
        with CaptureQueriesContext(connection) as queries:
            started = time.perf_counter()
            placed = client.post("/shop/checkout/", form)
            elapsed = time.perf_counter() - started
        if placed.status_code != 303:
            raise BenchError(f"in process, checkout answered {placed.status_code}: {placed.content[:800]!r}")
        captured["checkout"] = ([q["sql"] for q in queries.captured_queries], elapsed)
        number = placed["Location"].rstrip("/").split("/")[-1]
        with CaptureQueriesContext(connection) as queries:
            started = time.perf_counter()
            paid = client.post(f"/shop/orders/{number}/pay/")
            elapsed = time.perf_counter() - started
        if paid.status_code != 200 or "params" not in paid.json():
            raise BenchError(f"in process, pay answered {paid.status_code}: {paid.content[:800]!r}")
        captured["pay"] = ([q["sql"] for q in queries.captured_queries], elapsed)
        del round_
    return Probe(captured["checkout"][0], captured["pay"][0], captured["checkout"][1] * 1000, captured["pay"][1] * 1000)


def statement_kind(sql: str) -> str:
    words = sql.split(None, 3)
    head = words[0].upper() if words else "?"
    if head == "SELECT":
        match = re.search(r'\bFROM\s+"?([\w.]+)"?', sql, re.IGNORECASE)
        return f"SELECT {match.group(1) if match else ''}".strip()
    if head in ("INSERT", "UPDATE", "DELETE"):
        match = re.search(r'\b(?:INTO|UPDATE|FROM)\s+"?([\w.]+)"?', sql, re.IGNORECASE)
        return f"{head} {match.group(1) if match else ''}".strip()
    return " ".join(words[:2]).upper()


# --------------------------------------------------------------------------------------------
# Load over HTTP
# --------------------------------------------------------------------------------------------


@dataclass
class Stats:
    lock: threading.Lock = field(default_factory=threading.Lock)
    paid: int = 0
    failures: list[str] = field(default_factory=list)
    durations: list[float] = field(default_factory=list)
    polls: int = 0
    steps: dict[str, list[float]] = field(default_factory=lambda: {"checkout": [], "pay": [], "sim": [], "wait": []})


class Member:
    """One phone: its member cookie, CSRF cookie and keep-alive connection to the server."""

    def __init__(self, port: int, sim_url: str, sku_id: int, member: tuple[int, int, str]) -> None:
        _member_id, self.address_id, self.cookie = member
        self.port, self.sku_id = port, sku_id
        sim = urlsplit(sim_url)
        self.sim_host, self.sim_port = sim.hostname or "127.0.0.1", sim.port or 80
        self.conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        self.sim = http.client.HTTPConnection(self.sim_host, self.sim_port, timeout=30)
        self.csrf = ""

    def request(
        self, method: str, path: str, body: str | None = None, accept: str = "text/html"
    ) -> tuple[int, dict[str, str], bytes]:
        headers = {"Host": BRAND_HOST, "Cookie": self.cookie, "Accept": accept}
        if body is not None:
            headers["Content-Type"] = "application/x-www-form-urlencoded"
        for attempt in range(2):
            try:
                self.conn.request(method, path, body=body, headers=headers)
                response = self.conn.getresponse()
                return response.status, dict(response.getheaders()), response.read()
            except (http.client.HTTPException, OSError):
                self.conn.close()
                self.conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
                if attempt:
                    raise
        raise AssertionError("unreachable")

    def sign_in(self) -> None:
        status, headers, body = self.request("GET", f"/shop/checkout/?sku={self.sku_id}")
        match = re.search(rb'name="csrfmiddlewaretoken" value="([^"]+)"', body)
        cookie = re.search(r"csrftoken=([^;]+)", headers.get("Set-Cookie", ""))
        if status != 200 or match is None or cookie is None:
            raise BenchError(f"the checkout page answered {status} without a CSRF token: {body[:500]!r}")
        self.csrf = match.group(1).decode()
        self.cookie = f"{self.cookie}; csrftoken={cookie.group(1)}"

    def one_order(self, stats: Stats) -> None:
        from urllib.parse import urlencode

        started = time.perf_counter()
        form = urlencode(
            {
                "csrfmiddlewaretoken": self.csrf,
                "client_token": secrets.token_urlsafe(12),
                "mode": "sku",
                "sku": self.sku_id,
                "quantity": 1,
                "delivery": "express",
                "address": self.address_id,
            }
        )
        status, headers, body = self.request("POST", "/shop/checkout/", form)
        if status != 303:
            raise BenchError(f"checkout answered {status}: {body[:300]!r}")
        number = headers["Location"].rstrip("/").split("/")[-1]
        placed = time.perf_counter()
        token = urlencode({"csrfmiddlewaretoken": self.csrf})
        status, _h, body = self.request("POST", f"/shop/orders/{number}/pay/", token, accept="application/json")
        if status != 200 or b'"params"' not in body:
            raise BenchError(f"pay answered {status}: {body[:300]!r}")
        started_pay = time.perf_counter()
        self.sim.request(
            "POST", f"/_sim/payments/{number}P01/pay", body=b"{}", headers={"Content-Type": "application/json"}
        )
        answer = self.sim.getresponse()
        answer.read()
        if answer.status != 200:
            raise BenchError(f"the simulator would not pay {number}P01: {answer.status}")
        sim_done = time.perf_counter()
        polls = 0
        while True:
            status, _h, body = self.request("GET", f"/shop/orders/{number}/", accept="application/json")
            polls += 1
            if status == 200 and json.loads(body)["payment_status"] == "paid":
                break
            if time.perf_counter() - sim_done > PAID_DEADLINE_S:
                raise BenchError(f"order {number} not paid {PAID_DEADLINE_S:.0f} s after WeChat took the money")
            time.sleep(POLL_S)
        done = time.perf_counter()
        with stats.lock:
            stats.paid += 1
            stats.polls += polls
            stats.durations.append(done - started)
            stats.steps["checkout"].append(placed - started)
            stats.steps["pay"].append(started_pay - placed)
            stats.steps["sim"].append(sim_done - started_pay)
            stats.steps["wait"].append(done - sim_done)


def run_load(phones: list[Member], seconds: float) -> tuple[Stats, float]:
    stats = Stats()
    stop = threading.Event()

    def worker(phone: Member) -> None:
        while not stop.is_set():
            try:
                phone.one_order(stats)
            except Exception as exc:
                with stats.lock:
                    stats.failures.append(f"{type(exc).__name__}: {exc}")
                return

    threads = [threading.Thread(target=worker, args=(phone,), daemon=True) for phone in phones]
    started = time.perf_counter()
    for thread in threads:
        thread.start()
    time.sleep(seconds)
    stop.set()
    for thread in threads:
        thread.join(timeout=PAID_DEADLINE_S + 30)
    return stats, time.perf_counter() - started


# --------------------------------------------------------------------------------------------


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--duration", type=float, default=10.0, help="seconds measured")
    parser.add_argument("--quick", action="store_true", help="a 3-second run")
    parser.add_argument("--clients", type=int, default=8, help="concurrent phones (one member each)")
    parser.add_argument("--workers", type=int, default=2, help="gunicorn workers")
    parser.add_argument("--threads", type=int, default=4, help="gunicorn threads per worker (gthread)")
    args = parser.parse_args()
    if args.quick:
        args.duration = 3.0
    if args.duration <= 0 or args.clients < 1:
        parser.error("--duration and --clients must be positive")
    return args


def main() -> int:
    args = parse_args()
    say(f"checkout: create → pay (WeChat Pay simulator) → paid over HTTP, {args.clients} phones")
    loadavg = os.getloadavg()[0]
    if loadavg > (os.cpu_count() or 1) / 2:
        say(f"  WARNING: the machine is busy (load average {loadavg:.2f}): expect noisy figures")
    settings_name, extra_path = settings_module()
    os.environ["DJANGO_SETTINGS_MODULE"] = settings_name
    port = free_port()
    module = simulator_module()
    running = module.WeChatSimulator(notify_retry_schedule=(0.05, 0.2, 1.0)).start()
    notify_url = f"http://127.0.0.1:{port}/pay/notify/{{number}}/"
    env_settings = {
        # Deadline tasks go to an in-memory broker (no worker: the orders are paid long before pay_by).
        "CELERY_BROKER_URL": "memory://",
        "CELERY_RESULT_BACKEND": "",
        "JIUMA_WECHAT_PAY_BASE_URL": running.base_url,
        "JIUMA_WECHAT_API_BASE_URL": f"{running.base_url}/",
        "JIUMA_WECHAT_OAUTH_BASE_URL": f"{running.base_url}/connect/",
        "JIUMA_WECHAT_PAY_NOTIFY_URL": notify_url,
        "JIUMA_WECHAT_SIMULATED": "1",
        "DJANGO_DEBUG": "0",
        "LOG_LEVEL": "WARNING",
    }
    server: ShopServer | None = None
    try:
        setup_django(DATABASE, **env_settings)
        tenant = ready_brand(BRAND_CODE, "基准酒业（商城）", BRAND_HOST)
        from django_tenants.utils import tenant_context

        started = time.perf_counter()
        with tenant_context(tenant):
            mchid = add_merchant(tenant, running.simulator)
            sku_id, members = ready_shop(tenant, args.clients + 1, stock=200_000)
        say(
            f"  WeChat simulator at {running.base_url} (merchant {mchid}, notifications to {notify_url}); "
            f"SKU {sku_id} stocked, {len(members)} members with an address ({time.perf_counter() - started:.1f} s)"
        )
        probe = probe_queries(sku_id, members[-1])
        queries = max(len(probe.checkout), len(probe.pay))
        say(
            f"  in process: checkout POST {len(probe.checkout)} queries ({probe.checkout_ms:.0f} ms), "
            f"pay POST {len(probe.pay)} queries ({probe.pay_ms:.0f} ms; the WeChat call included)"
        )
        for label, statements in (("checkout", probe.checkout), ("pay", probe.pay)):
            say(
                f"    {label}: "
                + ", ".join(f"{n} x {k}" for k, n in Counter(map(statement_kind, statements)).most_common())
            )

        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), extra_path, env.get("PYTHONPATH", "")]))
        server = ShopServer("checkout", settings_name, workers=args.workers, threads=args.threads, env=env, port=port)
        server.start()
        server.wait_ready()
        phones = [Member(port, running.base_url, sku_id, member) for member in members[: args.clients]]
        for phone in phones:
            phone.sign_in()
        warm, _s = run_load(phones, 2.0)
        if warm.failures:
            raise BenchError(f"warm-up failed: {warm.failures[:3]}\n{server.log_tail()}")
        say(f"  warm-up: {warm.paid} orders paid in 2 s")
        stats, seconds = run_load(phones, args.duration)
        if stats.failures:
            raise BenchError(f"{len(stats.failures)} phones failed: {stats.failures[:3]}\n{server.log_tail()}")
    finally:
        if server is not None:
            server.stop()
        running.stop()
        shutil.rmtree(extra_path, ignore_errors=True)

    rate = stats.paid / seconds
    durations = sorted(stats.durations)
    steps = {name: statistics.median(values) * 1000 if values else 0.0 for name, values in stats.steps.items()}
    met = rate >= GOAL_ORDERS_PER_S
    say(
        f"==> {stats.paid} orders created, paid and seen paid in {seconds:.1f} s: {rate:.1f} orders/s "
        f"(goal >= {GOAL_ORDERS_PER_S:.0f}: {'met' if met else 'NOT met'}); per order p50 "
        f"{percentile(durations, 0.5) * 1000:.0f} ms, p99 {percentile(durations, 0.99) * 1000:.0f} ms "
        f"(median checkout {steps['checkout']:.0f} ms, pay {steps['pay']:.0f} ms, simulator pays "
        f"{steps['sim']:.0f} ms, notification applied and seen {steps['wait']:.0f} ms); "
        f"{stats.polls / max(stats.paid, 1):.1f} polls per order"
    )
    say(f"    (the phones, the simulator, gunicorn and PostgreSQL share this machine's {os.cpu_count()} cores)")
    print(
        json.dumps(
            {
                "orders_per_s": round(rate, 1),
                "queries_per_request": queries,
                "queries_checkout": len(probe.checkout),
                "queries_pay": len(probe.pay),
                "orders": stats.paid,
                "seconds": round(seconds, 2),
                "order_p50_ms": round(percentile(durations, 0.5) * 1000, 1),
                "order_p99_ms": round(percentile(durations, 0.99) * 1000, 1),
                "median_step_ms": {name: round(value, 1) for name, value in steps.items()},
                "polls_per_order": round(stats.polls / max(stats.paid, 1), 2),
                "clients": args.clients,
                "server": f"gunicorn gthread {args.workers}x{args.threads}",
                "duration_s": args.duration,
                "loadavg_before": round(loadavg, 2),
                "loadavg_after": round(os.getloadavg()[0], 2),
                "goal_met": met,
            },
            ensure_ascii=False,
        )
    )
    return 0


if __name__ == "__main__":
    try:
        raise SystemExit(main())
    except BenchError as exc:
        print(f"checkout: {exc}", file=sys.stderr)
        raise SystemExit(1) from exc
