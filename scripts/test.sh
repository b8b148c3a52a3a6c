#!/usr/bin/env bash
# `make test`: lint, type-check, Rego tests, migrations check, pytest on PostgreSQL and on SQLite.
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=.venv/bin
source scripts/services.sh
trap stop_services EXIT
start=$(date +%s)
start_services

echo "== ruff"
$BIN/ruff check .
$BIN/ruff format --check .
echo "== mypy"; $BIN/mypy
echo "== hadolint"; $BIN/hadolint Dockerfile
echo "== import contracts"; $BIN/lint-imports
echo "== rego tests"; $BIN/python -m guardrails.rego_testing policies/rego
echo "== alembic check (PostgreSQL)"
FRAUDRAIL_DATABASE_URL="$FRAUDRAIL_TEST_DATABASE_URL" $BIN/python -c \
  'import os; from control_plane.migrate import upgrade, check; u=os.environ["FRAUDRAIL_DATABASE_URL"]; upgrade(u); check(u)'
echo "== pytest (PostgreSQL + Redis)"
FRAUDRAIL_TEST_DB=postgres $BIN/pytest -p no:cacheprovider "$@"
echo "== pytest control plane (SQLite)"
FRAUDRAIL_TEST_DB=sqlite $BIN/pytest -p no:cacheprovider tests/control_plane -m "not browser and not aws" "$@"
echo "make test: passed in $(( $(date +%s) - start )) s"
