#!/usr/bin/env bash
# Runs a command with throwaway PostgreSQL and Redis servers (stopped afterwards).
set -euo pipefail
source "$(dirname "$0")/services.sh"
trap stop_services EXIT
start_services
"$@"
