#!/usr/bin/env bash
# Local Redis for the Redis store's tests (issue 5). Sourced by scripts/services.sh, which calls
# redis_up / redis_down / redis_status and provides log, die, apt_install and env_set.
#
# A private instance on 127.0.0.1:$KONDUIT_REDIS_PORT (default 26379: non-default, so a system install
# never clashes), `appendonly yes` (the store claims durability: AOF, fsync every second), data, log and
# pid file under .services/redis (git-ignored). Daemonized by redis-server itself; `up` is idempotent.

REDIS_PORT="${KONDUIT_REDIS_PORT:-26379}"
REDIS_DIR="$SERVICES_DIR/redis"
REDIS_PIDFILE="$REDIS_DIR/redis.pid"
REDIS_LOG="$REDIS_DIR/redis.log"
REDIS_START_TIMEOUT="${KONDUIT_REDIS_START_TIMEOUT:-30}"

_redis_ping() { redis-cli -h 127.0.0.1 -p "$REDIS_PORT" ping 2>/dev/null | grep -q '^PONG$'; }

_redis_running_pid() {
  [ -f "$REDIS_PIDFILE" ] || return 1
  local pid
  pid="$(cat "$REDIS_PIDFILE")"
  [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null && echo "$pid"
}

_redis_write_config() {
  mkdir -p "$REDIS_DIR"
  # Rewritten on every `up` so a changed KONDUIT_REDIS_PORT takes effect on the next start.
  cat >"$REDIS_DIR/redis.conf" <<EOF
# Written by scripts/services.d/redis.sh: a private test server.
bind 127.0.0.1
port $REDIS_PORT
protected-mode yes
daemonize yes
pidfile $REDIS_PIDFILE
logfile $REDIS_LOG
dir $REDIS_DIR
appendonly yes
appendfsync everysec
save ""
EOF
}

redis_up() {
  if ! command -v redis-server >/dev/null 2>&1 || ! command -v redis-cli >/dev/null 2>&1; then
    log "redis: installing the redis-server package"
    apt_install redis-server
  fi
  command -v redis-server >/dev/null 2>&1 || die "redis: no redis-server after installing redis-server"
  local pid
  if pid="$(_redis_running_pid)" && _redis_ping; then
    log "redis: already running (pid $pid) on 127.0.0.1:$REDIS_PORT"
  else
    if pid="$(_redis_running_pid)"; then
      log "redis: pid $pid not answering on port $REDIS_PORT; stopping it"
      kill "$pid" 2>/dev/null || true
    fi
    rm -f "$REDIS_PIDFILE"
    _redis_write_config
    log "redis: starting on 127.0.0.1:$REDIS_PORT (log: $REDIS_LOG)"
    redis-server "$REDIS_DIR/redis.conf" >/dev/null || { tail -n 20 "$REDIS_LOG" >&2 || true; die "redis: server did not start"; }
    local deadline=$(($(date +%s) + REDIS_START_TIMEOUT))
    until _redis_ping; do
      if [ "$(date +%s)" -ge "$deadline" ]; then
        tail -n 20 "$REDIS_LOG" >&2 || true
        die "redis: not answering PING after ${REDIS_START_TIMEOUT} s (log: $REDIS_LOG)"
      fi
      sleep 0.2
    done
  fi
  env_set KONDUIT_TEST_REDIS "127.0.0.1:$REDIS_PORT"
  log "redis: ready (KONDUIT_TEST_REDIS in $ENV_FILE)"
}

redis_down() {
  local pid
  if pid="$(_redis_running_pid)"; then
    log "redis: stopping (pid $pid)"
    # SHUTDOWN fsyncs the AOF; fall back to a signal (also a clean shutdown) when the port does not answer.
    redis-cli -h 127.0.0.1 -p "$REDIS_PORT" shutdown >/dev/null 2>&1 || kill "$pid" 2>/dev/null || true
    local i
    for i in $(seq 1 50); do
      kill -0 "$pid" 2>/dev/null || return 0
      sleep 0.2
    done
    die "redis: pid $pid still running after 10 s"
  else
    log "redis: not running"
  fi
}

redis_status() {
  if _redis_running_pid >/dev/null && _redis_ping; then
    echo "redis: up on 127.0.0.1:$REDIS_PORT"
  else
    echo "redis: down"
    return 1
  fi
}
