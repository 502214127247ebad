"""The project's settings without the tenant layer, for the baseline of benchmarks/tenant_overhead.py.

Removed: TenantMiddleware and TenantStatusMiddleware; django-tenants' database backend is replaced
by Django's stock PostgreSQL backend (plain_backend only adds a constant `schema_name` attribute
for the project's schema-aware code: audit middleware, log filter, cache key function), and the
brand's schema is put on the search_path once, as a connection option, so the view reads the same
row. Everything else (apps, the other middleware, pooling or persistent connections, cache,
logging) is the project's.
"""

from django.core.exceptions import ImproperlyConfigured

from config.env import env
from config.settings import *  # noqa: F403
from config.settings import DATABASES, MIDDLEWARE

_TENANT_LAYER = ("tenants.middleware.TenantMiddleware", "tenants.middleware.TenantStatusMiddleware")
if not set(_TENANT_LAYER) <= set(MIDDLEWARE):
    # Renamed or moved: this baseline would no longer be "the project minus the tenant layer".
    raise ImproperlyConfigured(f"benchmark baseline: {_TENANT_LAYER} are not all in MIDDLEWARE; update this file")
MIDDLEWARE = [name for name in MIDDLEWARE if name not in _TENANT_LAYER]

ROOT_URLCONF = "benchmarks.overhead.urls"

_schema = env.str("JIUMA_BENCH_SCHEMA", default="t_bench")
_options = dict(DATABASES["default"].get("OPTIONS", {}))
_options["options"] = f"{_options.get('options', '')} -c search_path={_schema},public".strip()
DATABASES = {
    "default": {
        **DATABASES["default"],
        "ENGINE": "benchmarks.overhead.plain_backend",
        "BENCH_SCHEMA": _schema,
        "OPTIONS": _options,
    }
}
