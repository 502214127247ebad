"""Shared set-up of the benchmarks (a package, so `make bench` does not run it as a benchmark)."""
