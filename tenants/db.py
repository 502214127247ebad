"""The database connection, typed as the tenant-aware wrapper it is at run time.

`django.db.connection` is a proxy to the current thread's connection; with our ENGINE that is a
tenants.postgresql_backend DatabaseWrapper, which has schema_name, set_tenant() and friends.

`prepared()` runs one of the hot paths' raw statements as a server-side prepared statement.
"""

from __future__ import annotations

import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any, cast

import psycopg
from django.db import connection as _connection

if TYPE_CHECKING:
    from tenants.postgresql_backend.base import DatabaseWrapper

connection = cast("DatabaseWrapper", _connection)

__all__ = ["connection", "prepared"]

_EXPLICIT_ONLY = 2**31 - 1  # a threshold no statement reaches by repetition


@contextmanager
def prepared(sql: str, params: Sequence[Any] | Mapping[str, Any]) -> Iterator[psycopg.Cursor[Any]]:
    """Execute `sql` as a server-side prepared statement on the current connection (in its current
    transaction and tenant search path) and yield the cursor for its rows.

    Django runs statements with client-side binding and never prepares them, so PostgreSQL plans
    each one afresh; for the few raw statements every scan runs, planning costs more than running.
    psycopg prepares a statement once per connection (keyed by its text) and reuses the plan;
    PostgreSQL re-plans it by itself when the search path (the tenant) changes. Parameters are
    bound server-side, so each must have a type PostgreSQL can infer (cast a NULL where it cannot).
    Errors come out as Django's (IntegrityError, ...), and the statement is in `connection.queries`
    when queries are logged (tests count them).
    """
    with connection.cursor() as django_cursor:  # opens the connection, sets the tenant's search path
        raw_connection = django_cursor.cursor.connection
    if raw_connection.prepare_threshold is None:
        # Django turns preparing off for the connection (its client-side cursors never prepare
        # anyway); only the statements executed here with prepare=True are prepared.
        raw_connection.prepare_threshold = _EXPLICIT_ONLY
    cursor = psycopg.Cursor(raw_connection)
    started = time.monotonic()
    try:
        with connection.wrap_database_errors:
            cursor.execute(sql, params, prepare=True)
        yield cursor
    finally:
        if connection.queries_logged:
            connection.queries_log.append({"sql": sql, "time": f"{time.monotonic() - started:.3f}"})
        cursor.close()
