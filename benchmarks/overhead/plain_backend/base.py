"""Django's PostgreSQL backend with nothing changed but a constant `schema_name` attribute.

Project code outside the tenant layer reads `connection.schema_name` (the audit middleware, the log
filter, the tenant cache key function). Here it is the schema the connection option puts on the
search_path, so that code does the same work as under the tenant backend.
"""

from __future__ import annotations

from typing import Any

from django.db import DEFAULT_DB_ALIAS
from django.db.backends.postgresql import base


class DatabaseWrapper(base.DatabaseWrapper):
    def __init__(self, settings_dict: dict[str, Any], alias: str = DEFAULT_DB_ALIAS) -> None:
        super().__init__(settings_dict, alias)
        self.schema_name: str = settings_dict.get("BENCH_SCHEMA", "public")
