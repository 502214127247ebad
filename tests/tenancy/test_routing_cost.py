"""What routing a request to its brand costs in queries: nothing once the host is known.

The stock django-tenants middleware looks the host up in the Domain table on every request and
re-sends `SET search_path` before the first query of every request; both halve the throughput of
a simple view. Here the host lookup is cached per process and the search_path is only sent when
the connection's session holds another one. A regression in either shows up as extra queries.
"""

from __future__ import annotations

from typing import Any

from django.db import connection
from django.test.utils import CaptureQueriesContext

from tenants import resolution
from tests.conftest import Brand

SITE = "/api/v1/site/"


def _queries(brand: Brand, path: str = SITE) -> list[str]:
    client = brand.client()
    with CaptureQueriesContext(connection) as captured:
        response = client.get(path)
    assert response.status_code == 200, response.content
    return [query["sql"] for query in captured.captured_queries]


def _registry_lookups(sqls: list[str]) -> list[str]:
    return [sql for sql in sqls if '"tenants_domain"' in sql or '"tenants_tenant"' in sql]


def _search_path_sets(sqls: list[str]) -> list[str]:
    return [sql for sql in sqls if "search_path" in sql.lower()]


def test_a_known_host_costs_no_registry_query_and_no_search_path(alpha: Brand) -> None:
    first = _queries(alpha)
    assert len(_registry_lookups(first)) == 1, first  # the cold lookup, once per process and TTL

    again = _queries(alpha)
    assert _registry_lookups(again) == []
    assert _search_path_sets(again) == []
    # What is left is the view's own work: reading the brand profile.
    assert len(again) == 1, again
    assert '"brand_brandprofile"' in again[0]


def test_switching_brands_sets_the_search_path_once_and_only_when_it_changes(alpha: Brand, beta: Brand) -> None:
    _queries(alpha)
    _queries(beta)  # both hosts are now cached

    to_beta = _queries(beta)
    assert _search_path_sets(to_beta) == []
    to_alpha = _queries(alpha)
    assert len(_search_path_sets(to_alpha)) == 1, to_alpha
    assert alpha.schema in _search_path_sets(to_alpha)[0]
    assert _registry_lookups(to_alpha) == []


def test_an_unknown_host_is_remembered_too(db: None) -> None:
    from django.test import Client

    client = Client(HTTP_HOST="nobody.localhost")
    assert client.get(SITE).status_code == 404
    with CaptureQueriesContext(connection) as captured:
        assert client.get(SITE).status_code == 404
    assert _registry_lookups([query["sql"] for query in captured.captured_queries]) == []


def test_the_host_cache_is_bounded(alpha: Brand, settings: Any) -> None:
    """A flood of made-up host names cannot grow a process's memory without limit."""
    settings.TENANT_CACHE_MAX_ENTRIES = 50
    for number in range(200):
        resolution.resolve_host(f"made-up-{number}.localhost")
    assert len(resolution.tenant_cache._entries) == 50
    # Real hosts still resolve after the flood.
    assert resolution.resolve_host(alpha.host) == alpha.tenant
