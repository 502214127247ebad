"""Support files of benchmarks/scan.py (a package, so `make bench` does not run them)."""
