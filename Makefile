# Two commands do all the set-up: `make run` starts the service, `make test` runs every check.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

.PHONY: run test lint typecheck unit bench venv tools clean lock

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	# torch first: 2.13.0 is a CPU wheel on disk here; a bare `torch` would pull a CUDA build
	$(BIN)/pip install -q "torch==2.13.0" || $(BIN)/pip install -q "torch>=2.6,<3"
	$(BIN)/pip install -q -e ".[dev,firefox]"
	touch $(STAMP)

venv: $(STAMP)

run: $(STAMP)
	$(BIN)/translator up

test: lint typecheck unit

lint: $(STAMP)
	$(BIN)/ruff format --check .
	$(BIN)/ruff check .

typecheck: $(STAMP)
	$(BIN)/mypy

# Debian's docker-compose 1.x validates docker-compose.yml without a Docker engine, and Debian's
# prometheus package brings promtool (alert rule unit tests) and a real Prometheus (tests)
tools:
	@command -v docker-compose >/dev/null 2>&1 && command -v promtool >/dev/null 2>&1 && \
		command -v prometheus >/dev/null 2>&1 || $(SUDO) sh -c 'apt-get update -qq && \
		DEBIAN_FRONTEND=noninteractive apt-get install -y -qq docker-compose prometheus >/dev/null'

# tests/test_nats_clients.py drives a NATS client in another language: nats.js, from npm
JS_DEPS := tests/js/node_modules/.package-lock.json
$(JS_DEPS): tests/js/package.json tests/js/package-lock.json
	npm ci --prefix tests/js --no-audit --no-fund

unit: $(STAMP) tools $(JS_DEPS)
	$(BIN)/pytest

bench: $(STAMP)
	$(BIN)/python -m bench.worker_throughput
	$(BIN)/python -m bench.gateway_pipeline
	$(BIN)/python -m bench.scaler_burst
	$(BIN)/python -m bench.tracing_overhead
	$(BIN)/python -m bench.load_test --rates 60,70,80 --duration 60

# requirements.lock: the exact runtime set the image installs (torch apart: per VARIANT)
LOCK_VENV := .lock-venv
lock:
	rm -rf $(LOCK_VENV) && $(PY) -m venv $(LOCK_VENV)
	$(LOCK_VENV)/bin/pip install -q "torch==2.13.0" || $(LOCK_VENV)/bin/pip install -q "torch>=2.6,<3"
	$(LOCK_VENV)/bin/pip install -q ".[firefox]"
	{ sed -n '1,3p' requirements.lock; $(LOCK_VENV)/bin/pip freeze | \
		grep -v -i -E '^(torch|nvidia|triton|meeshy-translator)'; } > requirements.lock.new
	mv requirements.lock.new requirements.lock && rm -rf $(LOCK_VENV)

clean:
	rm -rf $(VENV) $(LOCK_VENV) .data .pytest_cache .mypy_cache .ruff_cache tests/js/node_modules
