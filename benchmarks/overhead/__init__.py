"""Support code for benchmarks/tenant_overhead.py: the benchmark view and the two settings modules.

Kept in a sub-package so that `make bench`, which runs every `benchmarks/*.py`, does not run these
modules as benchmarks.
"""
