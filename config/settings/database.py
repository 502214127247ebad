"""PostgreSQL through django-tenants, psycopg 3, persistent connections or Django's psycopg pool.

Never put PgBouncer in transaction mode in front of this: django-tenants sets a session-level
search_path, and transaction pooling hands it to another client (rows leak between tenants). The
scan path's few raw statements are also session-level prepared statements (tenants.db.prepared).
"""

from config.env import env

_db = env.db_url("DATABASE_URL", default="postgres://postgres@127.0.0.1:5432/jiuma")
_db["ENGINE"] = "tenants.postgresql_backend"
_db.setdefault("OPTIONS", {})
# Connection lifetime is bounded on purpose: every backend keeps a private catalog cache that grows
# by ~100 KiB per tenant schema it touches and is freed only when the connection closes.
if env.bool("DB_POOL", default=False):
    _db["CONN_MAX_AGE"] = 0
    _db["OPTIONS"]["pool"] = {
        "min_size": env.int("DB_POOL_MIN_SIZE", default=1),
        "max_size": env.int("DB_POOL_MAX_SIZE", default=4),
        "max_lifetime": env.float("DB_POOL_MAX_LIFETIME", default=600.0),
        "timeout": env.float("DB_POOL_TIMEOUT", default=10.0),
    }
else:
    _db["CONN_MAX_AGE"] = env.int("DB_CONN_MAX_AGE", default=600)
# A health check costs one `SELECT 1` on the first query of each request (about a fifth of a trivial
# request here); without it, the first request on a connection the server dropped fails.
_db["CONN_HEALTH_CHECKS"] = env.bool("DB_CONN_HEALTH_CHECKS", default=True)
_db["TEST"] = {"NAME": env.str("DATABASE_TEST_NAME", default=f"test_{_db['NAME']}")}

DATABASES = {"default": _db}
DATABASE_ROUTERS = ("django_tenants.routers.TenantSyncRouter",)
