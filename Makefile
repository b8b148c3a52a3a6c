# Fraudrail — the two set-up commands are `make run` and `make test`.
SHELL := /bin/bash
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
PORT ?= 8000
TIER ?= premium
# No default here: an unset FRAUDRAIL_HOME means control_plane/settings.py's default (<checkout>/var),
# the one every `fraudrail` command uses too. `make run FRAUDRAIL_HOME=/tmp/x` passes another.
# (A bare `export FRAUDRAIL_HOME` would export an empty value, which means the current folder.)
ifdef FRAUDRAIL_HOME
export FRAUDRAIL_HOME
endif
export JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION := 20
export JSII_RUNTIME_PACKAGE_CACHE_ROOT := $(CURDIR)/var/jsii-cache

.PHONY: run run-scaled test venv lint typecheck rego-test synth bench bench-model bench-scoring bench-rollback bench-isolation bench-soak bench-features bench-loop worker clean

$(VENV)/.installed: pyproject.toml constraints.txt
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/python scripts/pip_progress.py var/pip-install.log \
	  $(BIN)/pip install --disable-pip-version-check -c constraints.txt -e '.[dev,cdk]'
	touch $@

venv: $(VENV)/.installed

run: venv ## Serve the control plane on embedded defaults (127.0.0.1:$(PORT), state in $FRAUDRAIL_HOME or var/)
	FRAUDRAIL_PORT=$(PORT) $(BIN)/fraudrail serve

worker: venv
	$(BIN)/fraudrail worker

WORKERS ?= 2
run-scaled: venv ## $(WORKERS) server processes on throwaway PostgreSQL + Redis started on loopback; Ctrl-C stops all
	bash scripts/with-services.sh bash -c 'FRAUDRAIL_DATABASE_URL="$$FRAUDRAIL_TEST_DATABASE_URL" \
	  FRAUDRAIL_REDIS_URL="$$FRAUDRAIL_TEST_REDIS_URL" FRAUDRAIL_CACHE_BACKEND=redis FRAUDRAIL_BUS_BACKEND=redis \
	  FRAUDRAIL_WORKERS=$(WORKERS) FRAUDRAIL_PORT=$(PORT) FRAUDRAIL_HOME="$${FRAUDRAIL_HOME:-$(CURDIR)/var/scaled}" \
	  exec $(BIN)/fraudrail serve'

test: venv ## Install what the tests need, start PostgreSQL and Redis on loopback, lint, type-check, test
	bash scripts/test.sh

lint: venv
	$(BIN)/ruff check . && $(BIN)/ruff format --check .

typecheck: venv
	$(BIN)/mypy

rego-test: venv
	$(BIN)/python -m guardrails.rego_testing policies/rego

synth: venv ## Write a tier's CloudFormation templates to cdk.out/ (TIER=trial|standard|premium)
	$(BIN)/python scripts/synth.py --tier $(TIER) --out cdk.out

bench: bench-model bench-scoring bench-rollback bench-isolation

bench-model: venv
	$(BIN)/python bench/bench_model.py

bench-scoring: venv
	bash scripts/with-services.sh $(BIN)/python bench/bench_scoring.py

bench-features: venv
	$(BIN)/python bench/bench_features.py

bench-rollback: venv
	$(BIN)/python bench/bench_rollback.py

bench-isolation: venv
	$(BIN)/python bench/bench_isolation.py

bench-loop: venv ## the closed model loop on simulated time: drift alert, retraining, canary, AP, monitoring cost, backtest
	$(BIN)/python bench/bench_loop.py

bench-soak: venv ## 10 min (MINUTES=…) at 200 flagged checks/s: errors, p99, RSS growth; embedded, then PostgreSQL + Redis
	bash scripts/with-services.sh $(BIN)/python bench/bench_soak.py --minutes $(or $(MINUTES),10)

clean:
	rm -rf var/testenv cdk.out .pytest_cache .mypy_cache .ruff_cache
