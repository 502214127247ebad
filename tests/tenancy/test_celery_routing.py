"""A Celery task sent from a brand runs in that brand's schema: through the real broker, on a real worker.

The worker is Celery's own WorkController, started once for this module in a background thread of
the test process and consuming this session's queue (settings_test: one per test database and
xdist worker). Messages go through the configured broker and tenant-schemas-celery switches the
schema on the worker side, exactly as in production; nothing runs eagerly. Sharing the process
keeps the test database, the cache and the results at hand without plumbing: what each task
returned is collected from the worker's task_success / task_failure signals, so no result backend
is needed. (The controller is built here rather than with celery.contrib.testing's start_worker,
which would also replace the process's logging set-up with Celery's.) Celery's Django fixup closes
the worker's database connections around every task, so none is left to block dropping the test
database.

The worker has its own database connections, so it only sees committed rows: the session's alpha
and beta brands, and rows a test commits on purpose from another thread (and deletes afterwards).
"""

from __future__ import annotations

import json
import threading
import uuid
import zipfile
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from itertools import cycle, islice
from pathlib import Path
from typing import Any, TypeVar

import pytest
from celery import signals
from celery.contrib.testing.worker import TestWorkController, test_worker_started
from celery.worker import state as worker_state
from django.core.cache import cache
from django.db import connections
from django_tenants.utils import get_public_schema_name, schema_context, tenant_context

from config.celery import app
from tenants import services
from tenants.brand.models import User
from tenants.models import OperationKind, OperationStatus, TenantOperation
from tenants.tasks import current_schema
from tests.conftest import Brand
from tests.tenancy.conftest import leaked

pytestmark = [pytest.mark.django_db, pytest.mark.xdist_group("celery_worker")]

PUBLIC = get_public_schema_name()
RESULT_TIMEOUT = 20.0
T = TypeVar("T")


@app.task(name="tests.tenancy.remember_in_cache")
def remember_in_cache(key: str, value: str) -> None:
    """Writes one cache entry from the worker (no product task uses the cache yet)."""
    cache.set(key, value, timeout=120)


@dataclass(frozen=True)
class Outcome:
    task_id: str
    name: str
    args: tuple[Any, ...]
    ok: bool
    value: Any  # the return value, or the exception
    thread: str


class Worker:
    """The embedded worker's record of every task it finished, filled from its signals."""

    def __init__(self) -> None:
        self._outcomes: list[Outcome] = []
        self._changed = threading.Condition()

    def _record(self, task: Any, task_id: str, args: Any, ok: bool, value: Any) -> None:
        outcome = Outcome(task_id, task.name, tuple(args or ()), ok, value, threading.current_thread().name)
        with self._changed:
            self._outcomes.append(outcome)
            self._changed.notify_all()

    def on_success(self, sender: Any, result: Any, **kwargs: Any) -> None:
        self._record(sender, sender.request.id, sender.request.args, True, result)

    def on_failure(self, sender: Any, task_id: str, exception: BaseException, args: Any, **kwargs: Any) -> None:
        self._record(sender, task_id, args, False, exception)

    def outcome(self, match: Callable[[Outcome], bool], what: str) -> Outcome:
        with self._changed:
            found = self._changed.wait_for(
                lambda: next((o for o in self._outcomes if match(o)), None), timeout=RESULT_TIMEOUT
            )
        assert found is not None, f"the worker did not finish {what} within {RESULT_TIMEOUT} s"
        assert found.ok, f"{what} failed on the worker: {found.value!r}"
        return found

    def finished(self, task_id: str) -> Outcome:
        return self.outcome(lambda o: o.task_id == task_id, f"task {task_id}")

    def result(self, task_id: str) -> Any:
        return self.finished(task_id).value

    def result_of(self, name: str, *args: Any) -> Any:
        return self.outcome(lambda o: o.name == name and o.args == args, f"{name}{args}").value


@pytest.fixture(scope="module")
def worker(brands: dict[str, Brand]) -> Iterator[Worker]:
    assert not app.conf.task_always_eager
    queue = app.conf.task_default_queue
    # Messages nobody consumed are left in this queue by earlier sessions (provisioning jobs whose
    # operation ids are reused by every fresh test database) and by this session's setup.
    app.control.purge()

    record = Worker()
    started = threading.Event()

    def on_started(**kwargs: Any) -> None:
        started.set()

    signals.task_success.connect(record.on_success, weak=False)
    signals.task_failure.connect(record.on_failure, weak=False)
    test_worker_started.connect(on_started, sender=app, weak=False)
    thread: threading.Thread | None = None
    try:
        controller = TestWorkController(
            app=app,
            hostname=f"routing-{uuid.uuid4().hex[:8]}@test",
            queues=[queue],
            # Several tasks at once, each on its own thread and so its own database connection.
            pool="threads",
            concurrency=4,
            loglevel="WARNING",
            ready_callback=None,
            without_heartbeat=True,
            without_mingle=True,
            without_gossip=True,
        )
        thread = threading.Thread(target=controller.start, name="celery-routing-worker", daemon=True)
        thread.start()
        assert started.wait(timeout=20), "the embedded Celery worker did not start"
        yield record
    finally:
        if thread is not None:
            # Warm shutdown: the consumer loop sees the flag, lets running tasks finish, stops its pool.
            worker_state.should_stop = 0
            thread.join(timeout=20)
            worker_state.should_stop = None
        test_worker_started.disconnect(on_started, sender=app)
        signals.task_failure.disconnect(record.on_failure)
        signals.task_success.disconnect(record.on_success)
    assert thread is not None
    assert not thread.is_alive(), "the embedded Celery worker did not stop"


def _closing_connections(work: Callable[[], T]) -> Callable[[], T]:
    def run() -> T:
        try:
            return work()
        finally:
            connections.close_all()

    return run


def _in_another_connection(work: Callable[[], T]) -> T:
    """Runs `work` on a new thread, so on its own connection in autocommit: its writes are committed."""
    with ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(_closing_connections(work)).result(timeout=30)


def _send_current_schema(schema: str) -> str:
    """Sends tenants.current_schema from `schema`; returns the task id."""
    with schema_context(schema):
        # Results are read from the worker's signals: keep them out of any result backend.
        return str(current_schema.apply_async(ignore_result=True).id)


def _send_from_a_thread(schema: str) -> str:
    return _closing_connections(lambda: _send_current_schema(schema))()


def test_a_task_runs_in_the_schema_it_was_sent_from(worker: Worker, alpha: Brand, beta: Brand) -> None:
    with tenant_context(alpha.tenant):
        from_alpha = str(current_schema.apply_async(ignore_result=True).id)
    from_beta = _send_current_schema(beta.schema)
    from_public = _send_current_schema(PUBLIC)

    assert worker.result(from_alpha) == alpha.schema
    assert worker.result(from_beta) == beta.schema
    assert worker.result(from_public) == PUBLIC
    ran_on = {worker.finished(task_id).thread for task_id in (from_alpha, from_beta, from_public)}
    assert threading.current_thread().name not in ran_on, "the tasks ran on the worker, not here"


def test_interleaved_concurrent_sends_each_run_in_their_senders_schema(
    worker: Worker, alpha: Brand, beta: Brand
) -> None:
    senders = list(islice(cycle([alpha.schema, beta.schema, PUBLIC]), 60))
    with ThreadPoolExecutor(max_workers=6) as pool:
        task_ids = list(pool.map(_send_from_a_thread, senders))

    ran_in = {task_id: worker.result(task_id) for task_id in task_ids}
    wrong = [
        (sent, ran_in[task_id]) for task_id, sent in zip(task_ids, senders, strict=True) if ran_in[task_id] != sent
    ]
    assert wrong == [], f"tasks ran in another schema than their sender's (sent from, ran in): {wrong}"


# Celery's Redis result backend (the export job's result is kept when one is configured) still
# calls a redis-py method deprecated upstream.
@pytest.mark.filterwarnings("ignore:Call to deprecated setex:DeprecationWarning")
def test_the_export_task_sent_for_alpha_packs_alphas_rows_only(
    worker: Worker, alpha: Brand, beta: Brand, settings: Any, tmp_path: Path
) -> None:
    settings.EXPORT_ROOT = tmp_path / "exports"
    # The worker claims the operation row, so it must be committed (request_export would also
    # commit an append-only ops audit entry; the job itself is what is under test here).
    op_id = _in_another_connection(
        lambda: TenantOperation.objects.create(tenant_id=alpha.tenant.pk, kind=OperationKind.EXPORT).pk
    )
    try:
        services._enqueue_export(alpha.schema, op_id)  # what request_export runs on commit

        assert worker.result_of("tenants.export_tenant_data", op_id) == {
            "operation": op_id,
            "status": OperationStatus.SUCCEEDED,
        }
        op = TenantOperation.objects.get(pk=op_id)  # read committed: the worker's update is visible
        archive = Path(op.result["path"])
        assert archive.parent == settings.EXPORT_ROOT / alpha.schema
        with zipfile.ZipFile(archive) as zipped:
            manifest = json.loads(zipped.read("manifest.json"))
            data = zipped.read("data.jsonl").decode()
    finally:
        _in_another_connection(lambda: TenantOperation.objects.filter(pk=op_id).delete())

    assert manifest["schema"] == alpha.schema
    rows = [json.loads(line) for line in data.splitlines()]
    usernames = {row["fields"]["username"] for row in rows if row["model"] == User._meta.label_lower}
    assert {user.username for user in alpha.users.values()} <= usernames
    assert f"{alpha.tenant.name}的口号" in data, "alpha's brand profile is in its export"
    assert leaked(data, beta) == []


def test_a_cache_entry_written_by_a_task_is_scoped_to_the_senders_schema(
    worker: Worker, alpha: Brand, beta: Brand
) -> None:
    key = f"routing-probe-{uuid.uuid4().hex}"
    with schema_context(alpha.schema):
        from_alpha = str(remember_in_cache.apply_async((key, "alpha"), ignore_result=True).id)
    worker.result(from_alpha)
    try:
        with schema_context(alpha.schema):
            assert cache.get(key) == "alpha"
        with schema_context(beta.schema):
            assert cache.get(key) is None
        assert cache.get(key) is None  # public

        # The same key written from beta is another entry: alpha's is untouched.
        with schema_context(beta.schema):
            worker.result(str(remember_in_cache.apply_async((key, "beta"), ignore_result=True).id))
            assert cache.get(key) == "beta"
        with schema_context(alpha.schema):
            assert cache.get(key) == "alpha"
    finally:
        for schema in (alpha.schema, beta.schema):
            with schema_context(schema):
                cache.delete(key)


# --- a red packet paid by the real worker ----------------------------------------------------------


def test_a_won_red_packet_is_paid_by_the_worker_through_the_broker(
    worker: Worker, alpha: Brand, wechat_sim: Any
) -> None:
    """The claim's transaction enqueues rewards.pay on commit; the worker (in alpha's schema) sends the
    transfer to the WeChat Pay simulator. Everything committed from another connection, removed after."""
    from django.test import override_settings

    from commerce.models import Member
    from commerce.wechat import config
    from rewards.models import Campaign, PayoutStatus
    from rewards.services import claims
    from rewards.services.campaigns import PrizeSpec
    from rewards.services.claims import ClaimContext
    from tests.rewards.conftest import remove_campaign, running_campaign
    from tests.support.wechat import simulator_module

    module = simulator_module()
    credentials = module.merchant_credentials()
    mchid, appid, apiv3_key = f"18{alpha.tenant.number:08d}", f"wxworker{alpha.tenant.number:010d}", "w" * 32
    platform = wechat_sim.simulator.add_merchant(
        mchid, appid, credentials.public_key_pem, credentials.cert_serial_no, apiv3_key
    )
    wechat_sim.simulator.add_official_account(appid, "worker-secret")

    def setup() -> int:
        with tenant_context(alpha.tenant):
            config.save(
                appid=appid,
                secret="worker-secret",
                mchid=mchid,
                merchant_serial_no=credentials.cert_serial_no,
                private_key=credentials.private_key_pem,
                apiv3_key=apiv3_key,
                platform_public_key_id=platform.public_key_id,
                platform_public_key=platform.public_key_pem,
            )
            running_campaign([PrizeSpec(name="红包", kind="cash", amount_fen=520, odds_ppm=1_000_000, quantity=3)])
            member = Member.objects.create(openid="o-worker-paid")
            result = claims.claim(member, ClaimContext(serial=990_001))  # commits: enqueues on commit
            assert result.payout is not None
            return result.payout.pk

    def cleanup() -> None:
        with tenant_context(alpha.tenant):
            config.forget()
            paid = list(Member.objects.filter(openid="o-worker-paid").values_list("pk", flat=True))
            for campaign_id in Campaign.objects.values_list("pk", flat=True):
                remove_campaign(campaign_id, paid)
            from commerce.models import WeChatConfig

            WeChatConfig.objects.all().delete()

    with override_settings(WECHAT_PAY_BASE_URL=wechat_sim.base_url, WECHAT_PAY_NOTIFY_URL="http://127.0.0.1:9/"):
        try:
            payout_id = _in_another_connection(setup)
            assert worker.result_of("rewards.pay", payout_id) == PayoutStatus.SUBMITTED
            bills = [b for b in wechat_sim.simulator.transfer_bills(mchid) if b["transfer_amount"] == 520]
            assert len(bills) == 1
            assert bills[0]["state"] == "WAIT_USER_CONFIRM"
        finally:
            _in_another_connection(cleanup)
