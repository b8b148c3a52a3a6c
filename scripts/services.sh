#!/usr/bin/env bash
# Installs (if missing) and starts throwaway PostgreSQL and Redis servers on loopback.
# Source it: it exports FRAUDRAIL_TEST_DATABASE_URL / FRAUDRAIL_TEST_REDIS_URL and defines stop_services.
set -euo pipefail

# The servers' state lives in a fresh folder under /tmp, not in the checkout: as root the cluster
# runs as the `postgres` user, who cannot enter a checkout under /root, a 0700 home or a
# `mktemp -d` folder (initdb: "could not access directory … Permission denied").
# FRAUDRAIL_TESTENV_TMP picks another parent; it must be enterable by `postgres`.
RUN_DIR=""

apt_install() {
  local missing=()
  for pair in "$@"; do
    local bin="${pair%%:*}" pkg="${pair##*:}"
    command -v "$bin" >/dev/null 2>&1 || [ -x "$bin" ] || missing+=("$pkg")
  done
  [ ${#missing[@]} -eq 0 ] && return 0
  echo "installing Debian packages: ${missing[*]}" >&2
  local sudo=""
  [ "$(id -u)" -eq 0 ] || sudo="sudo"
  export DEBIAN_FRONTEND=noninteractive
  $sudo apt-get install -y -q "${missing[@]}" >/dev/null 2>&1 || {
    $sudo apt-get update -q >/dev/null 2>&1
    $sudo apt-get install -y -q "${missing[@]}" >/dev/null
  }
}

free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()'
}

pg_bin() {
  local d
  for d in /usr/lib/postgresql/*/bin; do [ -x "$d/initdb" ] && { echo "$d"; return; }; done
  return 1
}

start_services() {
  apt_install "redis-server:redis-server" "/usr/lib/postgresql/15/bin/initdb:postgresql" \
    "chromium:chromium" "chromedriver:chromium-driver"
  PGBIN="$(pg_bin)" || { echo "PostgreSQL binaries not found" >&2; return 1; }
  RUN_DIR="$(mktemp -d "${FRAUDRAIL_TESTENV_TMP:-/tmp}/fraudrail-testenv.XXXXXX")"
  local pgdata="$RUN_DIR/pg" sock="$RUN_DIR/sock"
  mkdir -p "$pgdata" "$sock"
  local as_pg=()
  if [ "$(id -u)" -eq 0 ]; then
    chown -R postgres:postgres "$RUN_DIR"
    as_pg=(runuser -u postgres --)
  fi
  # From inside RUN_DIR: the postgres user may not be allowed into the caller's working directory.
  (cd "$RUN_DIR" && "${as_pg[@]}" "$PGBIN/initdb" -D "$pgdata" -U app --auth=trust --no-sync -E UTF8 >/dev/null)
  PG_PORT="$(free_port)"
  (cd "$RUN_DIR" && "${as_pg[@]}" "$PGBIN/pg_ctl" -D "$pgdata" -w -l "$RUN_DIR/pg.log" \
    -o "-p $PG_PORT -k $sock -c listen_addresses=127.0.0.1 -c fsync=off -c max_connections=200" start >/dev/null)
  (cd "$RUN_DIR" && "${as_pg[@]}" "$PGBIN/createdb" -h 127.0.0.1 -p "$PG_PORT" -U app fraudrail_test)
  REDIS_PORT="$(free_port)"
  redis-server --port "$REDIS_PORT" --bind 127.0.0.1 --save '' --appendonly no --daemonize yes \
    --pidfile "$RUN_DIR/redis.pid" --logfile "$RUN_DIR/redis.log" --dir "$RUN_DIR"
  for _ in $(seq 1 100); do redis-cli -p "$REDIS_PORT" ping >/dev/null 2>&1 && break; sleep 0.05; done
  export PGBIN PG_PORT REDIS_PORT RUN_DIR
  export FRAUDRAIL_TEST_DATABASE_URL="postgresql+psycopg://app@127.0.0.1:$PG_PORT/fraudrail_test"
  export FRAUDRAIL_TEST_REDIS_URL="redis://127.0.0.1:$REDIS_PORT/0"
  echo "PostgreSQL on 127.0.0.1:$PG_PORT, Redis on 127.0.0.1:$REDIS_PORT" >&2
}

stop_services() {
  if [ -n "${REDIS_PORT:-}" ]; then redis-cli -p "$REDIS_PORT" shutdown nosave >/dev/null 2>&1 || true; fi
  if [ -n "${PGBIN:-}" ] && [ -d "${RUN_DIR:-}/pg" ]; then
    if [ "$(id -u)" -eq 0 ]; then
      (cd "$RUN_DIR" && runuser -u postgres -- "$PGBIN/pg_ctl" -D "$RUN_DIR/pg" -m immediate stop >/dev/null 2>&1) || true
    else
      "$PGBIN/pg_ctl" -D "$RUN_DIR/pg" -m immediate stop >/dev/null 2>&1 || true
    fi
  fi
  if [ -n "${RUN_DIR:-}" ]; then rm -rf "$RUN_DIR"; fi
  return 0
}
