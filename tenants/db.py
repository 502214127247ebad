"""The database connection, typed as the tenant-aware wrapper it is at run time.

`django.db.connection` is a proxy to the current thread's connection; with our ENGINE that is a
tenants.postgresql_backend DatabaseWrapper, which has schema_name, set_tenant() and friends.
"""

from typing import TYPE_CHECKING, cast

from django.db import connection as _connection

if TYPE_CHECKING:
    from tenants.postgresql_backend.base import DatabaseWrapper

connection = cast("DatabaseWrapper", _connection)

__all__ = ["connection"]
