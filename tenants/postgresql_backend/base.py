"""django-tenants' backend, minus a `SET search_path` per request.

django-tenants forgets on every `set_tenant()` (so on every request) which search_path the server
session already has, and re-issues `SET search_path` before the first query. On a persistent
connection that mostly re-sends the same value. This wrapper remembers the value the session
really holds and skips the statement when it is unchanged.

It stays correct because the remembered value is dropped whenever PostgreSQL may have dropped the
setting: a SET inside a transaction is undone by ROLLBACK or ROLLBACK TO SAVEPOINT, and a closed or
pooled connection may come back as another session. Code must never issue its own `SET
search_path`; use django_tenants.utils.schema_context.
"""

from __future__ import annotations

from typing import Any

from django_tenants.postgresql_backend import base as tenant_base

from tenants.postgresql_backend.introspection import FastSchemaIntrospection


class DatabaseWrapper(tenant_base.DatabaseWrapper):
    schema_name: str
    tenant: Any

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self._session_search_path: list[str] | None = None
        super().__init__(*args, **kwargs)
        self.introspection = FastSchemaIntrospection(self)

    def _forget_session_search_path(self) -> None:
        self._session_search_path = None

    def close(self) -> None:
        self._forget_session_search_path()
        super().close()

    def connect(self) -> None:
        self._forget_session_search_path()
        super().connect()

    def rollback(self) -> None:
        self._forget_session_search_path()
        super().rollback()

    def savepoint_rollback(self, sid: str) -> None:
        try:
            super().savepoint_rollback(sid)
        finally:
            self._forget_session_search_path()

    def _handle_search_path(self, cursor: Any = None) -> None:
        if self._setting_search_path:
            return
        if (
            self.schema_name
            and self._session_search_path is not None
            and self._get_cursor_search_paths() == self._session_search_path
        ):
            self.search_path_set_schemas = self._session_search_path
            return
        super()._handle_search_path(cursor)
        self._session_search_path = self.search_path_set_schemas
