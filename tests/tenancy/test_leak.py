"""Invariant 1 under load: thousands of interleaved requests of two brands, over a real server, never
get a row of the other brand.

A real gunicorn (gthread: 2 processes x 4 threads) serves the production settings against the test
database, once with persistent connections and once with Django's psycopg pool squeezed to two
connections per process, so database connections (and their session-level search_path) pass from
one brand to the other all the time. Many client threads each keep one connection open and
alternate alpha and beta requests on it, so the same server thread serves both brands back to back.

Every endpoint read here is first fetched alone for each brand (the baseline, checked to hold that
brand's own data and none of the other's); under load every reply must be exactly its brand's
baseline. A row of the other brand's baseline, or any row with the other brand's markers, counts as
a leaked row.
"""

from __future__ import annotations

import json
import logging
import random
import threading
import time
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime

import pytest
from django.db import connection

from tests.conftest import OWNER_PASSWORD, Brand
from tests.support.server import Reply, Server, running_server, sign_in, suite_database_url
from tests.tenancy.conftest import brand_markers, leaked

pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("real_server")]

log = logging.getLogger(__name__)

WORKERS = 2
THREADS = 4
CLIENT_THREADS = 16
REQUESTS_PER_CLIENT = 128  # 16 x 128 = 2,048 requests per run
MIN_REQUESTS = 2_000
POOL_MAX_SIZE = 2

POOLING: dict[str, dict[str, str | None]] = {
    # The project's default: one connection per server thread, kept for DB_CONN_MAX_AGE.
    "persistent": {"DB_POOL": "0", "DB_CONN_MAX_AGE": None},
    # Django's psycopg pool, two connections per process for four threads: every request may get a
    # connection that last served the other brand.
    "psycopg_pool": {"DB_POOL": "1", "DB_POOL_MIN_SIZE": "1", "DB_POOL_MAX_SIZE": str(POOL_MAX_SIZE)},
}


def _rows_of_json(key: str | None) -> Callable[[str], list[str]]:
    def rows(body: str) -> list[str]:
        data = json.loads(body)
        if key is not None:
            data = data[key]
        items = data if isinstance(data, list) else [data]
        return [json.dumps(item, ensure_ascii=False, sort_keys=True) for item in items]

    return rows


def _whole_page(body: str) -> list[str]:
    return [body]


# path -> how a reply body splits into rows (one row per tenant record it shows).
ENDPOINTS: dict[str, Callable[[str], list[str]]] = {
    "/": _whole_page,  # consumer home page: the brand profile, server-rendered
    "/api/v1/site/": _rows_of_json(None),  # public: the brand profile
    "/api/v1/me/": _rows_of_json(None),  # signed in: the user row of the session
    "/api/v1/staff/": _rows_of_json(None),  # signed in: every staff user of the brand
    "/api/v1/audit/": _rows_of_json("results"),  # signed in: the brand's audit log
}
# The cheap consumer paths twice as often as the staff API (which costs 2-5 times more per request):
# more requests, and so more brand switches, in the same time.
DECK = ["/", "/api/v1/site/", *ENDPOINTS]


@dataclass(frozen=True)
class Outcome:
    code: str  # the brand the request was sent for
    path: str
    status: int
    body: str


@dataclass
class Expected:
    """What one brand's replies must be: the baseline body and rows of every endpoint."""

    brand: Brand
    cookies: dict[str, str]
    bodies: dict[str, str]
    rows: set[str]


def _date(value: str) -> datetime:
    return datetime.fromisoformat(value)


def _baseline(server: Server, brand: Brand, other: Brand) -> Expected:
    cookies = sign_in(server, brand.host, "owner", OWNER_PASSWORD)
    bodies: dict[str, str] = {}
    rows: set[str] = set()
    for path, split in ENDPOINTS.items():
        reply = server.request("GET", path, host=brand.host, cookies=cookies)
        assert reply.status == 200, (brand.host, path, reply.status, reply.text)
        assert not leaked(reply.text, other), (brand.host, path, leaked(reply.text, other), reply.text)
        bodies[path] = reply.text
        rows.update(split(reply.text))
    _assert_own_data(brand, bodies)
    return Expected(brand=brand, cookies=cookies, bodies=bodies, rows=rows)


def _assert_own_data(brand: Brand, bodies: dict[str, str]) -> None:
    """Each baseline holds the brand's own records: a test that compares replies with a baseline of
    the wrong brand, or of nothing, would prove nothing."""
    name = brand.tenant.name
    staff_names = [user.username for role, user in brand.users.items() if role != "owner"]
    assert len(staff_names) == 4, staff_names
    assert set(staff_names) <= set(brand_markers(brand)), staff_names
    for path in ("/", "/api/v1/site/"):
        assert name in bodies[path], (path, bodies[path])
        assert f"{name}的口号" in bodies[path], (path, bodies[path])
    # The owner's row is "owner" in every brand: its date_joined tells whose it is.
    me = json.loads(bodies["/api/v1/me/"])
    assert me["username"] == "owner", me
    assert _date(me["date_joined"]) == brand.users["owner"].date_joined, me
    staff = json.loads(bodies["/api/v1/staff/"])
    expected_staff = {(user.username, user.date_joined) for user in brand.users.values()}
    assert {(row["username"], _date(row["date_joined"])) for row in staff} == expected_staff, staff
    audit = bodies["/api/v1/audit/"]
    assert all(username in audit for username in staff_names), audit


def _plan(seed: int, codes: tuple[str, str]) -> list[tuple[str, str]]:
    """One client's requests: brands alternate, endpoints dealt from DECK in a random order."""
    paths = (DECK * (REQUESTS_PER_CLIENT // len(DECK) + 1))[:REQUESTS_PER_CLIENT]
    random.Random(seed).shuffle(paths)
    return [(codes[(seed + i) % 2], path) for i, path in enumerate(paths)]


def _fire(server: Server, expected: dict[str, Expected]) -> tuple[list[Outcome], int]:
    codes = tuple(expected)
    assert len(codes) == 2
    start = threading.Barrier(CLIENT_THREADS, timeout=30)

    def client(seed: int) -> tuple[list[Outcome], int]:
        outcomes: list[Outcome] = []
        with server.connection() as conn:
            start.wait()
            for code, path in _plan(seed, (codes[0], codes[1])):
                own = expected[code]
                reply: Reply = conn.request("GET", path, host=own.brand.host, cookies=own.cookies)
                outcomes.append(Outcome(code=code, path=path, status=reply.status, body=reply.text))
            return outcomes, conn.reconnects

    with ThreadPoolExecutor(max_workers=CLIENT_THREADS) as pool:
        results = list(pool.map(client, range(CLIENT_THREADS)))
    return [outcome for outcomes, _ in results for outcome in outcomes], sum(n for _, n in results)


def _server_connections() -> int:
    """Sessions the server holds open on the test database right now (this process's excluded).

    A read of pg_stat_activity: the test's own transaction takes no lock the server could wait on."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid()"
        )
        (count,) = cursor.fetchone()
    return int(count)


@dataclass
class Tally:
    wrong_rows: list[tuple[str, str, str]] = field(default_factory=list)  # (brand asked for, path, the row)
    bad_status: Counter[tuple[str, str, int]] = field(default_factory=Counter)
    not_baseline: list[Outcome] = field(default_factory=list)


def _rows(path: str, body: str) -> list[str]:
    """The rows of a reply; a body that does not parse as the endpoint's kind of reply is one row."""
    try:
        return ENDPOINTS[path](body)
    except (ValueError, KeyError, TypeError):
        return [body]


def _tally(outcomes: list[Outcome], expected: dict[str, Expected]) -> Tally:
    tally = Tally()
    for outcome in outcomes:
        own = expected[outcome.code]
        (other,) = (e for code, e in expected.items() if code != outcome.code)
        if outcome.status == 200:
            rows = _rows(outcome.path, outcome.body)
            if outcome.body != own.bodies[outcome.path]:
                tally.not_baseline.append(outcome)
        else:  # an error page must not name the other brand either
            tally.bad_status[(outcome.code, outcome.path, outcome.status)] += 1
            rows = [outcome.body]
        tally.wrong_rows += [
            (outcome.code, outcome.path, f"{leaked(row, other.brand)} {row[:200]}")
            for row in rows
            if row in other.rows or leaked(row, other.brand)
        ]
    return tally


@pytest.mark.parametrize("pooling", list(POOLING))
def test_interleaved_requests_of_two_brands_never_get_the_other_brands_rows(
    pooling: str, alpha: Brand, beta: Brand
) -> None:
    """The server sees only committed data (the session's brands); this test writes nothing."""
    with running_server(suite_database_url(), env=POOLING[pooling], workers=WORKERS, threads=THREADS) as server:
        a, b = _baseline(server, alpha, beta), _baseline(server, beta, alpha)
        for path in ENDPOINTS:
            assert a.bodies[path] != b.bodies[path], f"{path} says the same for both brands: nothing to tell apart"
        assert a.rows.isdisjoint(b.rows), a.rows & b.rows

        expected = {alpha.tenant.code: a, beta.tenant.code: b}
        started = time.monotonic()
        outcomes, reconnects = _fire(server, expected)
        elapsed = time.monotonic() - started
        server_connections = _server_connections()
        tally = _tally(outcomes, expected)
        wrong_rows, bad_status, not_baseline = len(tally.wrong_rows), tally.bad_status.total(), len(tally.not_baseline)
        log.info(
            "%s: %d requests %s in %.1f s (%.0f/s, %d reconnects, %d server DB sessions): "
            "%d wrong-tenant rows, %d non-200, %d differing from the baseline",
            pooling,
            len(outcomes),
            dict(Counter(outcome.code for outcome in outcomes)),
            elapsed,
            len(outcomes) / elapsed,
            reconnects,
            server_connections,
            wrong_rows,
            bad_status,
            not_baseline,
        )

        assert wrong_rows == 0, f"{wrong_rows} rows of the other brand, e.g. {tally.wrong_rows[:5]}"
        assert bad_status == 0, f"replies other than 200: {dict(tally.bad_status)}"
        assert not_baseline == 0, (
            f"{not_baseline} replies differ from their brand's baseline, e.g. "
            f"{[(o.code, o.path, o.body[:300]) for o in tally.not_baseline[:3]]}"
        )
        assert len(outcomes) >= MIN_REQUESTS
        per_target = Counter((outcome.code, outcome.path) for outcome in outcomes)
        assert len(per_target) == 2 * len(ENDPOINTS), per_target
        assert min(per_target.values()) >= 100, per_target
        assert server_connections >= 1, "the server holds no database session: is it using the test database?"
        if pooling == "psycopg_pool":
            assert server_connections <= WORKERS * POOL_MAX_SIZE, f"{server_connections} sessions: the pool is off"
        assert "Traceback" not in server.log(), server.log_tail()
