#!/usr/bin/env bash
# Local Redis for the Redis store's tests (issue 5). Sourced by scripts/services.sh, which calls
# redis_up / redis_down / redis_status and provides log, die, apt_install and env_set.
#
# A private instance on 127.0.0.1:$KONDUIT_REDIS_PORT (default 26379: non-default, so a system install
# never clashes), `appendonly yes` (the store claims durability: AOF, fsync every second), data, log and
# pid file under .services/redis (git-ignored). Daemonized by redis-server itself; `up` is idempotent.
# `up` also starts the Redis Cluster below (KONDUIT_TEST_REDIS_CLUSTER).

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
  redis_cluster_up
}

redis_down() {
  redis_cluster_down
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
  local rc=0
  if _redis_running_pid >/dev/null && _redis_ping; then
    echo "redis: up on 127.0.0.1:$REDIS_PORT"
  else
    echo "redis: down"
    rc=1
  fi
  [ "${KONDUIT_REDIS_CLUSTER:-1}" = "0" ] || redis_cluster_status || rc=1
  return $rc
}

# ---------------------------------------------------------------------------------------------------- cluster
# A Redis Cluster (issue 16): 3 masters + 3 replicas on 127.0.0.1:26401–26406, cluster bus on `cluster-port`
# 28401–28406 (never port+10000, which lands in the ephemeral range), cluster-node-timeout 1500 ms so that a killed
# master's replica is promoted within a few seconds; created with `redis-cli --cluster create --cluster-replicas 1`.
# Exported as KONDUIT_TEST_REDIS_CLUSTER (every node, comma-separated). KONDUIT_REDIS_CLUSTER=0 skips it.

REDIS_CLUSTER_FIRST_PORT="${KONDUIT_REDIS_CLUSTER_PORT:-26401}"
REDIS_CLUSTER_FIRST_BUS_PORT="${KONDUIT_REDIS_CLUSTER_BUS_PORT:-28401}"
REDIS_CLUSTER_NODE_TIMEOUT="${KONDUIT_REDIS_CLUSTER_NODE_TIMEOUT:-1500}"
REDIS_CLUSTER_DIR="$SERVICES_DIR/redis-cluster"

_redis_cluster_ports() { local i; for i in 0 1 2 3 4 5; do echo $((REDIS_CLUSTER_FIRST_PORT + i)); done; }

_redis_cluster_ok() {
  redis-cli -h 127.0.0.1 -p "$REDIS_CLUSTER_FIRST_PORT" cluster info 2>/dev/null | grep -q '^cluster_state:ok'
}

_redis_cluster_node_up() {
  local port=$1 bus=$2 dir="$REDIS_CLUSTER_DIR/$1"
  mkdir -p "$dir"
  if redis-cli -h 127.0.0.1 -p "$port" ping 2>/dev/null | grep -q '^PONG$'; then return 0; fi
  {
    echo "# Written by scripts/services.d/redis.sh: one node of the private test cluster."
    echo "bind 127.0.0.1"
    echo "port $port"
    echo "protected-mode yes"
    echo "daemonize yes"
    echo "pidfile $dir/redis.pid"
    echo "logfile $dir/redis.log"
    echo "dir $dir"
    echo "appendonly yes"
    echo "appendfsync everysec"
    echo 'save ""'
    echo "cluster-enabled yes"
    echo "cluster-port $bus"
    echo "cluster-config-file nodes.conf"
    echo "cluster-node-timeout $REDIS_CLUSTER_NODE_TIMEOUT"
  } >"$dir/redis.conf"
  redis-server "$dir/redis.conf" >/dev/null || { tail -n 20 "$dir/redis.log" >&2 || true; die "redis-cluster: node $port did not start"; }
}

redis_cluster_up() {
  if [ "${KONDUIT_REDIS_CLUSTER:-1}" = "0" ]; then log "redis-cluster: skipped (KONDUIT_REDIS_CLUSTER=0)"; return 0; fi
  local started i port deadline known nodes=()
  started=$(date +%s)
  for i in 0 1 2 3 4 5; do
    _redis_cluster_node_up $((REDIS_CLUSTER_FIRST_PORT + i)) $((REDIS_CLUSTER_FIRST_BUS_PORT + i))
  done
  for port in $(_redis_cluster_ports); do
    deadline=$(($(date +%s) + REDIS_START_TIMEOUT))
    until redis-cli -h 127.0.0.1 -p "$port" ping 2>/dev/null | grep -q '^PONG$'; do
      [ "$(date +%s)" -ge "$deadline" ] && die "redis-cluster: node $port not answering PING after ${REDIS_START_TIMEOUT} s"
      sleep 0.2
    done
    nodes+=("127.0.0.1:$port")
  done
  # Nodes that restarted keep their layout (nodes.conf); only a fresh set of nodes is joined into a cluster.
  if ! _redis_cluster_ok; then
    known="$(redis-cli -h 127.0.0.1 -p "$REDIS_CLUSTER_FIRST_PORT" cluster info 2>/dev/null | tr -d '\r' | sed -nE 's/^cluster_known_nodes:([0-9]+)$/\1/p')"
    if [ "$known" = "1" ]; then
      log "redis-cluster: creating 3 masters + 3 replicas on ${nodes[*]}"
      redis-cli --cluster create "${nodes[@]}" --cluster-replicas 1 --cluster-yes >"$REDIS_CLUSTER_DIR/create.log" 2>&1 \
        || { tail -n 20 "$REDIS_CLUSTER_DIR/create.log" >&2; die "redis-cluster: redis-cli --cluster create failed"; }
    fi
    deadline=$(($(date +%s) + 60))
    until _redis_cluster_ok; do
      [ "$(date +%s)" -ge "$deadline" ] && die "redis-cluster: not cluster_state:ok after 60 s (logs: $REDIS_CLUSTER_DIR/*/redis.log)"
      sleep 0.2
    done
  fi
  env_set KONDUIT_TEST_REDIS_CLUSTER "$(IFS=,; echo "${nodes[*]}")"
  log "redis-cluster: ready in $(($(date +%s) - started)) s (KONDUIT_TEST_REDIS_CLUSTER in $ENV_FILE)"
}

redis_cluster_down() {
  local port pid
  for port in $(_redis_cluster_ports); do
    [ -f "$REDIS_CLUSTER_DIR/$port/redis.pid" ] || continue
    pid="$(cat "$REDIS_CLUSTER_DIR/$port/redis.pid")"
    kill -0 "$pid" 2>/dev/null || continue
    log "redis-cluster: stopping node $port (pid $pid)"
    redis-cli -h 127.0.0.1 -p "$port" shutdown >/dev/null 2>&1 || kill "$pid" 2>/dev/null || true
  done
}

redis_cluster_status() {
  if _redis_cluster_ok; then
    echo "redis-cluster: up on 127.0.0.1:$REDIS_CLUSTER_FIRST_PORT-$((REDIS_CLUSTER_FIRST_PORT + 5))"
  else
    echo "redis-cluster: down"
    return 1
  fi
}
