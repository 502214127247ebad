"""Running jobs at once in threads, each on its own database connection, as concurrent requests do.

What the jobs write is committed (they are outside the test's transaction), so a test using this
cleans up after itself. Each job's return value, or the exception it raised, is collected.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

from django.db import connections
from django_tenants.utils import tenant_context


def run_concurrently(jobs: list[Callable[[], Any]], tenant: Any = None) -> list[Any]:
    """Start every job at the same moment (a barrier) and wait for all; results in finishing order.

    With `tenant`, each job runs in that brand's schema; without, in the public schema.
    """
    results: list[Any] = []
    barrier = threading.Barrier(len(jobs))

    def worker(job: Callable[[], Any]) -> None:
        try:
            if tenant is not None:
                with tenant_context(tenant):
                    barrier.wait()
                    results.append(job())
            else:
                barrier.wait()
                results.append(job())
        except BaseException as exc:
            results.append(exc)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=worker, args=(job,)) for job in jobs]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return results
