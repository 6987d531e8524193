#!/usr/bin/env bash
# A PostgreSQL primary with a streaming standby on loopback, for the failover tests (issue 15, "Failover").
#
# Run directly (the failover tests do; each test makes a fresh pair in a temp dir and destroys it):
#   postgres-standby.sh up <dir> <primaryPort> <standbyPort> sync|async
#   postgres-standby.sh cut-replication <dir>  SIGSTOP the primary's walsender: from now on the standby receives nothing
#                                              (async: the primary still acknowledges commits; sync: commits wait)
#   postgres-standby.sh stop-primary <dir>     pg_ctl stop -m immediate of the primary (a crash: no shutdown checkpoint);
#                                              a cut walsender is killed, never resumed, so it sends nothing more
#   postgres-standby.sh promote <dir>          pg_ctl promote -w of the standby: it answers read-write when this returns
#   postgres-standby.sh down <dir>             stop both servers (immediate); the caller removes <dir>
#   postgres-standby.sh status <dir>
# Sourced by scripts/services.sh, it defines postgres_standby_up/_down/_status: with KONDUIT_PG_STANDBY=1, `up` also
# starts a long-lived sync pair under .services/postgres-standby on 25790/25791 (for trying failover by hand);
# `down` always stops it.
#
# Both servers come from the same binaries as the shared server (/usr/lib/postgresql/<newest>/bin, the postgresql
# package that scripts/services.sh up installs), run as the `postgres` OS user (initdb refuses root), listen on
# 127.0.0.1 only and trust loopback: throwaway clusters that live for one test. The standby is a pg_basebackup -R
# of the primary, streaming through a physical replication slot (the primary keeps its WAL until the standby has it).
# `sync` sets synchronous_standby_names on the primary once the standby streams (synchronous_commit = on: a commit
# is acknowledged only after the standby flushed it); `async` leaves it empty. The standby's own copy of the
# settings never names a synchronous standby, so once promoted it accepts commits alone.
# Role `konduit` (no password, trust) owns database `konduit`; unix sockets go to <dir>/run.

_pgsb_standalone=0
if ! declare -F log >/dev/null; then
  _pgsb_standalone=1
  set -euo pipefail
  log() { printf '[postgres-standby] %s\n' "$*" >&2; }
  die() { printf '[postgres-standby] error: %s\n' "$*" >&2; exit 1; }
fi

PGSB_OS_USER=postgres
PGSB_SLOT=konduit_standby
# The standby's application_name (its cluster_name), which synchronous_standby_names names.
PGSB_STANDBY_NAME=konduit_standby
PGSB_START_TIMEOUT="${KONDUIT_PG_STANDBY_START_TIMEOUT:-60}"

_pgsb_bin() {
  local initdb
  initdb="$(ls -1d /usr/lib/postgresql/*/bin/initdb 2>/dev/null | sort -V | tail -1 || true)"
  [ -n "$initdb" ] || die "no /usr/lib/postgresql/*/bin/initdb: run scripts/services.sh up (as root it installs the postgresql package)"
  dirname "$initdb"
}

_pgsb_as() {
  if [ "$(id -u)" -eq 0 ]; then runuser -u "$PGSB_OS_USER" -- "$@"; else "$@"; fi
}

_pgsb_psql() { # port sql...
  local port="$1"; shift
  _pgsb_as "$(_pgsb_bin)/psql" -X -q -A -t -v ON_ERROR_STOP=1 -h 127.0.0.1 -p "$port" -U postgres -d postgres "$@"
}

_pgsb_port_free() {
  ! (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
}

_pgsb_wait_until() { # description command...
  local what="$1"; shift
  local deadline=$(($(date +%s) + PGSB_START_TIMEOUT))
  until "$@" >/dev/null 2>&1; do
    [ "$(date +%s)" -lt "$deadline" ] || return 1
    sleep 0.1
  done
  log "$what"
}

_pgsb_conf() { # data port socket cluster_name
  cat >"$1/konduit.conf" <<EOF
# Written by scripts/services.d/postgres-standby.sh: a throwaway failover pair. Durability at the defaults.
listen_addresses = '127.0.0.1'
port = $2
unix_socket_directories = '$3'
cluster_name = '$4'
max_connections = 100
shared_buffers = 64MB
fsync = on
synchronous_commit = on
wal_level = replica
max_wal_senders = 5
max_replication_slots = 5
hot_standby = on
# The standby reports its flush position at once and the primary notices a dead standby quickly.
wal_receiver_status_interval = 1s
wal_sender_timeout = 10s
log_min_messages = warning
EOF
  grep -q "include_if_exists = 'konduit.conf'" "$1/postgresql.conf" || echo "include_if_exists = 'konduit.conf'" >>"$1/postgresql.conf"
  if [ "$(id -u)" -eq 0 ]; then chown "$PGSB_OS_USER:" "$1/konduit.conf"; fi
}

_pgsb_start() { # data log
  _pgsb_as "$(_pgsb_bin)/pg_ctl" -D "$1" -l "$2" -w -t "$PGSB_START_TIMEOUT" start >/dev/null \
    || { tail -n 30 "$2" >&2 || true; die "server in $1 did not start (log: $2)"; }
}

_pgsb_replicating() { # primaryPort state
  [ "$(_pgsb_psql "$1" -c "SELECT count(*) FROM pg_stat_replication WHERE application_name = '$PGSB_STANDBY_NAME' AND state = 'streaming' AND sync_state = '$2'")" = "1" ]
}

pgsb_up() { # dir primaryPort standbyPort mode
  local dir="${1:?dir}" p1="${2:?primary port}" p2="${3:?standby port}" mode="${4:?sync|async}"
  case "$mode" in sync | async) ;; *) die "mode must be sync or async, not '$mode'" ;; esac
  local bin
  bin="$(_pgsb_bin)"
  id "$PGSB_OS_USER" >/dev/null 2>&1 || die "no OS user $PGSB_OS_USER: run scripts/services.sh up (it creates it)"
  [ -e "$dir/primary/PG_VERSION" ] && die "$dir already holds a pair: run down and remove it first"
  local port
  for port in "$p1" "$p2"; do _pgsb_port_free "$port" || die "port $port is in use"; done
  mkdir -p "$dir/run"
  if [ "$(id -u)" -eq 0 ]; then chown -R "$PGSB_OS_USER:" "$dir"; fi
  _pgsb_as test -w "$dir" || die "user $PGSB_OS_USER cannot write $dir (check the permissions of its parent directories)"

  # trust on loopback (local and host, replication included): a throwaway pair on 127.0.0.1 for one test.
  _pgsb_as "$bin/initdb" -D "$dir/primary" -U postgres -E UTF8 --no-locale --auth=trust --no-sync >"$dir/initdb.log" 2>&1 \
    || { cat "$dir/initdb.log" >&2; die "initdb failed"; }
  _pgsb_conf "$dir/primary" "$p1" "$dir/run" konduit_primary
  _pgsb_start "$dir/primary" "$dir/primary.log"
  echo "$p1" >"$dir/primary.port"
  _pgsb_psql "$p1" >/dev/null <<SQL
CREATE ROLE konduit LOGIN;
CREATE DATABASE konduit OWNER konduit;
SELECT pg_create_physical_replication_slot('$PGSB_SLOT');
SQL

  # -R writes standby.signal and primary_conninfo; -S streams through the slot made above.
  _pgsb_as "$bin/pg_basebackup" -h 127.0.0.1 -p "$p1" -U postgres -D "$dir/standby" -R -X stream -S "$PGSB_SLOT" -c fast --no-sync \
    >"$dir/basebackup.log" 2>&1 || { cat "$dir/basebackup.log" >&2; die "pg_basebackup failed"; }
  _pgsb_conf "$dir/standby" "$p2" "$dir/run" "$PGSB_STANDBY_NAME"
  # Never a synchronous standby of its own: promoted, it must commit alone.
  echo "synchronous_standby_names = ''" >>"$dir/standby/konduit.conf"
  _pgsb_start "$dir/standby" "$dir/standby.log"

  if [ "$mode" = sync ]; then
    _pgsb_psql "$p1" -c "ALTER SYSTEM SET synchronous_standby_names = '$PGSB_STANDBY_NAME'" -c "SELECT pg_reload_conf()" >/dev/null
    _pgsb_wait_until "primary 127.0.0.1:$p1, synchronous standby 127.0.0.1:$p2 streaming" _pgsb_replicating "$p1" sync \
      || die "the standby on $p2 is not a streaming synchronous standby after ${PGSB_START_TIMEOUT} s (logs in $dir)"
  else
    _pgsb_wait_until "primary 127.0.0.1:$p1, asynchronous standby 127.0.0.1:$p2 streaming" _pgsb_replicating "$p1" async \
      || die "the standby on $p2 is not streaming after ${PGSB_START_TIMEOUT} s (logs in $dir)"
  fi
}

_pgsb_gone() { ! kill -0 "$1" 2>/dev/null; }

pgsb_cut_replication() {
  local dir="${1:?dir}" pid
  pid="$(_pgsb_psql "$(cat "$dir/primary.port")" -c "SELECT pid FROM pg_stat_replication WHERE application_name = '$PGSB_STANDBY_NAME'")"
  [ -n "$pid" ] || die "no walsender streams to the standby"
  kill -STOP "$pid"
  echo "$pid" >"$dir/walsender.stopped"
  log "replication cut: walsender $pid stopped"
}

pgsb_stop_primary() {
  local dir="${1:?dir}" bin
  bin="$(_pgsb_bin)"
  if [ -f "$dir/walsender.stopped" ]; then
    # A stopped walsender cannot take the postmaster's SIGQUIT, and resumed it might send WAL the standby must not
    # get: start the immediate shutdown, kill the walsender where it stands, then wait for the postmaster to exit.
    local postmaster
    postmaster="$(head -1 "$dir/primary/postmaster.pid")"
    _pgsb_as "$bin/pg_ctl" -D "$dir/primary" -m immediate -W stop >/dev/null
    kill -KILL "$(cat "$dir/walsender.stopped")" 2>/dev/null || true
    rm -f "$dir/walsender.stopped"
    _pgsb_wait_until "primary in $dir stopped (immediate, replication cut)" _pgsb_gone "$postmaster" \
      || die "the primary in $dir did not stop"
  else
    _pgsb_as "$bin/pg_ctl" -D "$dir/primary" -m immediate -w stop >/dev/null
    log "primary in $dir stopped (immediate)"
  fi
}

pgsb_promote() {
  local dir="${1:?dir}"
  _pgsb_as "$(_pgsb_bin)/pg_ctl" -D "$dir/standby" -w -t "$PGSB_START_TIMEOUT" promote >/dev/null \
    || die "the standby in $dir was not promoted (log: $dir/standby.log)"
  log "standby in $dir promoted"
}

pgsb_down() {
  local dir="${1:?dir}" node bin
  bin="$(_pgsb_bin)"
  for node in primary standby; do
    if [ -f "$dir/$node/postmaster.pid" ] && _pgsb_as "$bin/pg_ctl" -D "$dir/$node" status >/dev/null 2>&1; then
      _pgsb_as "$bin/pg_ctl" -D "$dir/$node" -m immediate -w stop >/dev/null || true
    fi
  done
}

pgsb_status() {
  local dir="${1:?dir}" node rc=0 bin
  bin="$(_pgsb_bin)"
  for node in primary standby; do
    if [ -f "$dir/$node/postmaster.pid" ] && _pgsb_as "$bin/pg_ctl" -D "$dir/$node" status >/dev/null 2>&1; then
      echo "postgres-standby: $node up ($dir/$node)"
    else
      echo "postgres-standby: $node down ($dir/$node)"
      rc=1
    fi
  done
  return $rc
}

# ---------------------------------------------------------------------------------------------------- services.sh
# The long-lived pair (KONDUIT_PG_STANDBY=1): fresh on every `up`, since a promoted standby cannot rejoin as is.
PGSB_SERVICE_DIR="${SERVICES_DIR:-/tmp}/postgres-standby"

postgres_standby_up() {
  [ "${KONDUIT_PG_STANDBY:-0}" = "1" ] || return 0
  pgsb_down "$PGSB_SERVICE_DIR"
  rm -rf "$PGSB_SERVICE_DIR"
  pgsb_up "$PGSB_SERVICE_DIR" "${KONDUIT_PG_STANDBY_PRIMARY_PORT:-25790}" "${KONDUIT_PG_STANDBY_PORT:-25791}" sync
  env_set KONDUIT_TEST_POSTGRES_FAILOVER \
    "Host=127.0.0.1:${KONDUIT_PG_STANDBY_PRIMARY_PORT:-25790},127.0.0.1:${KONDUIT_PG_STANDBY_PORT:-25791};Username=konduit;Database=konduit;Target Session Attributes=read-write;Host Recheck Seconds=1"
}

postgres_standby_down() {
  [ -d "$PGSB_SERVICE_DIR" ] && pgsb_down "$PGSB_SERVICE_DIR"
  return 0
}

postgres_standby_status() {
  [ "${KONDUIT_PG_STANDBY:-0}" = "1" ] || return 0
  pgsb_status "$PGSB_SERVICE_DIR"
}

if [ "$_pgsb_standalone" = 1 ]; then
  cmd="${1:-}"
  shift || true
  case "$cmd" in
    up) pgsb_up "$@" ;;
    cut-replication) pgsb_cut_replication "$@" ;;
    stop-primary) pgsb_stop_primary "$@" ;;
    promote) pgsb_promote "$@" ;;
    down) pgsb_down "$@" ;;
    status) pgsb_status "$@" ;;
    *) echo "usage: $0 up <dir> <primaryPort> <standbyPort> sync|async | cut-replication <dir> | stop-primary <dir> | promote <dir> | down <dir> | status <dir>" >&2; exit 2 ;;
  esac
fi
