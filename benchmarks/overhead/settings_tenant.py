"""The project's settings unchanged (tenant middleware, tenant database backend), except that the
brand URLconf is the benchmark's, which TenantMiddleware selects for brand hosts."""

from config.settings import *  # noqa: F403

ROOT_URLCONF = "benchmarks.overhead.urls"
