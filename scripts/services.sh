#!/usr/bin/env bash
# Private test servers for Konduit's adapters, one function group per service.
#
#   scripts/services.sh up      install what is missing, start every service, write .services/env
#   scripts/services.sh down    stop every service (data is kept under .services/)
#   scripts/services.sh env     print .services/env (source it: `source .services/env`)
#   scripts/services.sh status  say which services answer
#
# Everything lives under .services/ (git-ignored): data dirs, logs, sockets, generated passwords.
# Servers listen on 127.0.0.1 only, on non-default ports so they never clash with a system install.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
SERVICES_DIR="$ROOT/.services"
ENV_FILE="$SERVICES_DIR/env"

log() { printf '[services] %s\n' "$*" >&2; }
die() { printf '[services] error: %s\n' "$*" >&2; exit 1; }

apt_updated=0
apt_install() {
  # Only root can install; a developer without root installs the packages themselves.
  [ "$(id -u)" -eq 0 ] || die "missing packages ($*) and not root: install them with apt-get, then re-run"
  if [ "$apt_updated" -eq 0 ]; then
    DEBIAN_FRONTEND=noninteractive apt-get update -qq >&2
    apt_updated=1
  fi
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >&2
}

# Lines of .services/env are owned by one service each (keyed by variable name), so services can be
# added without rewriting the others' lines.
env_set() {
  local name="$1" value="$2" tmp
  mkdir -p "$SERVICES_DIR"
  touch "$ENV_FILE"
  tmp="$(mktemp "$SERVICES_DIR/env.XXXXXX")"
  grep -v "^export $name=" "$ENV_FILE" >"$tmp" || true
  printf 'export %s="%s"\n' "$name" "$value" >>"$tmp"
  mv "$tmp" "$ENV_FILE"
  chmod 600 "$ENV_FILE"
}

# ---------------------------------------------------------------------------------------------------
# PostgreSQL: a private cluster on 127.0.0.1:$KONDUIT_PG_PORT (default 25432: below the kernel ephemeral range 32768-60999, so no client socket can hold it), run as the `postgres`
# OS user (initdb refuses root), default durability (fsync and synchronous_commit on).
# ---------------------------------------------------------------------------------------------------
PG_PORT="${KONDUIT_PG_PORT:-25432}"
PG_DIR="$SERVICES_DIR/postgres"
PG_DATA="$PG_DIR/data"
PG_LOG="$PG_DIR/postgres.log"
PG_OS_USER=postgres
PG_ROLE=konduit
PG_DB=konduit

pg_bin_dir() {
  # Newest installed major version.
  local initdb
  initdb="$(ls -1d /usr/lib/postgresql/*/bin/initdb 2>/dev/null | sort -V | tail -1 || true)"
  [ -n "$initdb" ] && dirname "$initdb"
}

pg_as() { runuser -u "$PG_OS_USER" -- "$@"; }

pg_socket_dir() {
  # Unix socket paths are limited to ~107 bytes; fall back to /tmp for deep checkouts.
  local dir="$PG_DIR/run"
  if [ "${#dir}" -gt 80 ]; then dir="/tmp/konduit-pg-$PG_PORT"; fi
  printf '%s' "$dir"
}

pg_install() {
  if [ -z "$(pg_bin_dir)" ]; then
    log "postgres: installing the postgresql package"
    apt_install postgresql
  fi
  [ -n "$(pg_bin_dir)" ] || die "postgres: no /usr/lib/postgresql/*/bin/initdb after installing postgresql"
  if ! id "$PG_OS_USER" >/dev/null 2>&1; then
    log "postgres: creating OS user $PG_OS_USER"
    useradd --system --user-group --home-dir /var/lib/postgresql --shell /bin/bash "$PG_OS_USER"
  fi
}

pg_password() {
  local file="$PG_DIR/password"
  if [ ! -s "$file" ]; then
    mkdir -p "$PG_DIR"
    od -An -N16 -tx1 /dev/urandom | tr -d ' \n' >"$file"
    chmod 600 "$file"
  fi
  cat "$file"
}

pg_running() {
  [ -f "$PG_DATA/PG_VERSION" ] && pg_as "$(pg_bin_dir)/pg_ctl" -D "$PG_DATA" status >/dev/null 2>&1
}

pg_ready() { "$(pg_bin_dir)/pg_isready" -q -h 127.0.0.1 -p "$PG_PORT" -t 1; }

pg_init() {
  local bin sock
  bin="$(pg_bin_dir)"
  sock="$(pg_socket_dir)"
  mkdir -p "$PG_DIR" "$sock"
  chown "$PG_OS_USER:" "$PG_DIR" "$sock"
  # The postgres user must be able to reach the data dir; say so instead of failing inside initdb.
  pg_as test -x "$PG_DIR" || die "postgres: user $PG_OS_USER cannot reach $PG_DIR (check the permissions of its parent directories)"
  if [ ! -f "$PG_DATA/PG_VERSION" ]; then
    log "postgres: initdb in $PG_DATA"
    rm -rf "$PG_DATA"
    pg_as "$bin/initdb" -D "$PG_DATA" -U postgres -E UTF8 --no-locale \
      --auth-local=peer --auth-host=scram-sha-256 >"$PG_DIR/initdb.log" 2>&1 \
      || { cat "$PG_DIR/initdb.log" >&2; die "postgres: initdb failed"; }
    echo "include_if_exists = 'konduit.conf'" >>"$PG_DATA/postgresql.conf"
  fi
  # Rewritten on every `up` so a changed KONDUIT_PG_PORT takes effect on the next start.
  cat >"$PG_DATA/konduit.conf" <<EOF
# Written by scripts/services.sh: a private test server. Durability stays at the defaults.
listen_addresses = '127.0.0.1'
port = $PG_PORT
unix_socket_directories = '$sock'
max_connections = 300
fsync = on
synchronous_commit = on
# TLS for the clients that ask for it (the TLS tests); the default test connection string disables it.
ssl = on
ssl_cert_file = 'konduit-server.pem'
ssl_key_file = 'konduit-server.key'
EOF
  install -o "$PG_OS_USER" -g "$PG_OS_USER" -m 644 "$SERVICES_DIR/tls/server.pem" "$PG_DATA/konduit-server.pem"
  install -o "$PG_OS_USER" -g "$PG_OS_USER" -m 600 "$SERVICES_DIR/tls/server.key" "$PG_DATA/konduit-server.key"
  chown "$PG_OS_USER:" "$PG_DATA/konduit.conf"
}

pg_start() {
  local bin
  bin="$(pg_bin_dir)"
  if pg_running; then
    if pg_ready; then
      # konduit.conf may have changed (a newer checkout): every setting in it takes effect on reload.
      pg_as "$bin/pg_ctl" -D "$PG_DATA" reload >/dev/null 2>&1 || true
      log "postgres: already running on 127.0.0.1:$PG_PORT"
      return 0
    fi
    log "postgres: running but not answering on port $PG_PORT; restarting"
    pg_as "$bin/pg_ctl" -D "$PG_DATA" -m fast -w stop >/dev/null 2>&1 || true
  fi
  # A pid file left by a killed server would make pg_ctl refuse to start; the server is not running here.
  rm -f "$PG_DATA/postmaster.pid"
  log "postgres: starting on 127.0.0.1:$PG_PORT"
  pg_as "$bin/pg_ctl" -D "$PG_DATA" -l "$PG_LOG" -w -t 60 start >/dev/null \
    || { tail -n 30 "$PG_LOG" >&2 || true; die "postgres: server did not start (log: $PG_LOG)"; }
  local i
  for i in $(seq 1 60); do
    pg_ready && return 0
    sleep 1
  done
  die "postgres: not ready after 60 s (log: $PG_LOG)"
}

pg_provision() {
  local bin pw
  bin="$(pg_bin_dir)"
  pw="$(pg_password)"
  # Idempotent: create or update the role, then create the database if it is missing. CREATEROLE (not superuser):
  # the least-privilege tests create a runtime role without DDL rights, as an owner role does in production.
  pg_as "$bin/psql" -X -q -v ON_ERROR_STOP=1 -h "$(pg_socket_dir)" -p "$PG_PORT" -U postgres -d postgres \
    -v role="$PG_ROLE" -v pw="$pw" -v db="$PG_DB" <<'SQL'
SELECT format('CREATE ROLE %I LOGIN', :'role') WHERE NOT EXISTS (SELECT FROM pg_roles WHERE rolname = :'role') \gexec
SELECT format('ALTER ROLE %I LOGIN CREATEROLE PASSWORD %L', :'role', :'pw') \gexec
SELECT format('CREATE DATABASE %I OWNER %I', :'db', :'role') WHERE NOT EXISTS (SELECT FROM pg_database WHERE datname = :'db') \gexec
SQL
  # SSL Mode=Disable: the server speaks TLS, but every test and benchmark measures the store, not the cipher; the TLS
  # tests ask for VerifyFull themselves.
  env_set KONDUIT_TEST_POSTGRES "Host=127.0.0.1;Port=$PG_PORT;Username=$PG_ROLE;Password=$pw;Database=$PG_DB;SSL Mode=Disable"
}

postgres_up() {
  pg_install
  pg_init
  pg_start
  pg_provision
  log "postgres: ready (KONDUIT_TEST_POSTGRES in $ENV_FILE)"
}

postgres_down() {
  local bin
  bin="$(pg_bin_dir)"
  if [ -n "$bin" ] && pg_running; then
    log "postgres: stopping"
    pg_as "$bin/pg_ctl" -D "$PG_DATA" -m fast -w -t 60 stop >/dev/null
  else
    log "postgres: not running"
  fi
}

postgres_status() {
  if [ -n "$(pg_bin_dir)" ] && pg_running && pg_ready; then
    echo "postgres: up on 127.0.0.1:$PG_PORT"
  else
    echo "postgres: down"
    return 1
  fi
}

# ---------------------------------------------------------------------------------------------------
# Further services live in scripts/services.d/<name>.sh, each defining <name>_up/_down/_status.
# shellcheck source=services.d/tls.sh
source "$ROOT/scripts/services.d/tls.sh"
# shellcheck source=services.d/cassandra.sh
source "$ROOT/scripts/services.d/cassandra.sh"
source "$ROOT/scripts/services.d/redis.sh"
# shellcheck source=services.d/tools.sh
source "$ROOT/scripts/services.d/tools.sh"
# shellcheck source=services.d/postgres-standby.sh
source "$ROOT/scripts/services.d/postgres-standby.sh"
# cassandra_ring and cassandra_secure start only with KONDUIT_CASSANDRA_RING=1 / KONDUIT_CASSANDRA_SECURE=1
# (scripts/test.sh sets both); down always stops them. tls comes first: PostgreSQL and the secured node use its files.
# postgres_standby (a sync primary + standby pair on 25790/25791) starts only with KONDUIT_PG_STANDBY=1; the failover
# tests make their own pairs with the same script and need only the postgresql package that postgres_up installs.
SERVICE_NAMES=(tls postgres cassandra cassandra_ring cassandra_secure redis tools postgres_standby)

cmd_up() { local s; for s in "${SERVICE_NAMES[@]}"; do "${s}_up"; done; }
cmd_down() { local s; for s in "${SERVICE_NAMES[@]}"; do "${s}_down"; done; }
cmd_status() { local s rc=0; for s in "${SERVICE_NAMES[@]}"; do "${s}_status" || rc=1; done; return $rc; }
cmd_env() {
  [ -f "$ENV_FILE" ] || die "no $ENV_FILE yet: run scripts/services.sh up"
  cat "$ENV_FILE"
}

case "${1:-}" in
  up) cmd_up ;;
  down) cmd_down ;;
  env) cmd_env ;;
  status) cmd_status ;;
  *) echo "usage: $0 up|down|env|status" >&2; exit 2 ;;
esac
