# Local development entry points. Services (PostgreSQL, broker, cache) are resolved by
# platform/local/services.py, which writes .local/services.env for config/env.py to read.

PYTHON ?= python3
VENV := .venv
VENV_PYTHON := $(VENV)/bin/python
STAMP := $(VENV)/.installed
SERVICES := $(VENV_PYTHON) platform/local/services.py
PYTEST_ARGS ?= -n 2 --dist loadgroup -q
# uv is only needed by `make lock`, so it is installed on demand rather than pinned in the lock.
UV_VERSION ?= 0.13.9

.PHONY: venv services test demo bench lint lock down clean-local

venv: $(STAMP)

# Reinstalled whenever the lock or pyproject.toml is newer than the stamp.
$(STAMP): requirements.lock pyproject.toml
	test -x $(VENV_PYTHON) || $(PYTHON) -m venv $(VENV)
	$(VENV_PYTHON) -m pip install -q -r requirements.lock
	touch $@

services: venv
	$(SERVICES) up

test: services
	$(VENV_PYTHON) -m pytest $(PYTEST_ARGS)

demo: services
	$(VENV_PYTHON) platform/local/demo.py

# wrk is optional (benchmarks that need it should say so); as root with apt-get we try to install
# it once, quietly, and carry on if that fails (offline machine, no apt lists, ...).
bench: services
	@if ! command -v wrk >/dev/null 2>&1 && [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
		echo "installing wrk with apt-get..."; \
		DEBIAN_FRONTEND=noninteractive apt-get install -y -qq wrk >/dev/null 2>&1 || \
		{ DEBIAN_FRONTEND=noninteractive apt-get update -qq >/dev/null 2>&1 && \
		  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq wrk >/dev/null 2>&1; } || \
		echo "could not install wrk; continuing without it"; \
	fi
	@set -e; for script in benchmarks/*.py; do \
		[ -f "$$script" ] || continue; \
		echo "== $$script"; \
		$(VENV_PYTHON) "$$script"; \
	done

lint: venv
	$(VENV)/bin/ruff check .
	$(VENV)/bin/mypy .
	$(VENV)/bin/lint-imports

lock: venv
	test -x $(VENV)/bin/uv || $(VENV_PYTHON) -m pip install -q uv==$(UV_VERSION)
	$(VENV)/bin/uv pip compile pyproject.toml --extra dev -o requirements.lock \
		--python $(VENV_PYTHON) --no-header -q

# No venv dependency: stopping must not trigger an install. Without a venv nothing was started.
down:
	@if [ -x $(VENV_PYTHON) ]; then $(SERVICES) down; fi

clean-local: down
	rm -rf .local
