# Every target creates what it needs: a fresh clone only needs python3 (>= 3.11) and make.
PY ?= python3
UV_VERSION := 0.13.8
TOOLS := .tools
UV := $(TOOLS)/bin/uv
VENV := .venv
BIN := $(VENV)/bin
NODE_DEPS := tests/compat/node_modules/.package-lock.json

.PHONY: help serve run-example test check lint typecheck unit bench clean

help:
	@echo "make serve   - run the service on the embedded default (SQLite, port 4021)"
	@echo "make test    - install everything and run the whole test suite (lint, types, tests)"
	@echo "make bench   - print the benchmark figures (engine, durable executions)"

$(UV):
	$(PY) -m venv $(TOOLS)
	$(TOOLS)/bin/pip install --quiet --disable-pip-version-check uv==$(UV_VERSION)

$(VENV)/.synced: pyproject.toml uv.lock | $(UV)
	$(UV) sync --frozen --python $(PY)
	touch $@

$(NODE_DEPS): tests/compat/package.json tests/compat/package-lock.json
	cd tests/compat && npm ci --no-audit --no-fund --loglevel=error

venv: $(VENV)/.synced

serve: $(VENV)/.synced
	$(BIN)/chaingraph serve

run-example: $(VENV)/.synced
	$(BIN)/chaingraph run examples/hello-world.json

check: $(VENV)/.synced
	$(BIN)/ruff check src tests scripts
	$(BIN)/ruff format --check src tests scripts
	$(BIN)/mypy
	$(BIN)/lint-imports

test: $(VENV)/.synced $(NODE_DEPS) check
	scripts/ensure-postgres
	$(BIN)/pytest -n 2 --dist loadgroup

unit: $(VENV)/.synced
	$(BIN)/pytest tests/unit -q

bench: $(VENV)/.synced
	scripts/ensure-postgres
	$(BIN)/python scripts/bench_engine.py
	$(BIN)/python scripts/bench_durable.py

clean:
	rm -rf $(VENV) $(TOOLS) .pytest_cache .mypy_cache .ruff_cache tests/compat/node_modules .chaingraph
