"""Table listing that reads only the current schema's rows of pg_class.

Django's `get_table_list` filters all of pg_class with `pg_table_is_visible()`; with a thousand
tenant schemas that is ~80,000 rows and ~35 ms per call, four calls per tenant migrate. Filtering
on the schema's namespace first makes the cost independent of the number of tenants.
"""

from __future__ import annotations

from typing import Any

from django.db.backends.postgresql.introspection import TableInfo
from django_tenants.postgresql_backend.introspection import DatabaseSchemaIntrospection

_TABLE_LIST_SQL = """
    SELECT c.relname,
           CASE WHEN c.relispartition THEN 'p' WHEN c.relkind IN ('m', 'v') THEN 'v' ELSE 't' END,
           obj_description(c.oid, 'pg_class')
      FROM pg_catalog.pg_class c
     WHERE c.relnamespace = (SELECT oid FROM pg_catalog.pg_namespace WHERE nspname = %s)
       AND c.relkind IN ('f', 'm', 'p', 'r', 'v')
"""


class FastSchemaIntrospection(DatabaseSchemaIntrospection):
    def get_table_list(self, cursor: Any) -> list[TableInfo]:
        cursor.execute(_TABLE_LIST_SQL, [self.connection.schema_name])
        return [TableInfo(*row) for row in cursor.fetchall()]
