"""Django's stock PostgreSQL backend, for the no-tenant baseline of benchmarks/tenant_overhead.py."""
