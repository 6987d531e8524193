#!/usr/bin/env bash
# The README's test command: starts the local services, runs every test project, and ends with one line
#   tests: N passed, N failed, N skipped
# (dotnet test's own summary is parsed, not trusted as the last word: a build failure counts as a failure).
set -uo pipefail
cd "$(dirname "$0")/.."
mkdir -p artifacts

summary() { echo "tests: $1 passed, $2 failed, $3 skipped"; }

if ! command -v dotnet >/dev/null 2>&1; then
  echo "error: the .NET 10 SDK is required (dotnet not on PATH); install it from https://dot.net and re-run." >&2
  summary 0 1 0
  exit 1
fi

# The Cassandra ring tests (issue 14) run in CI: start the two-node ring too.
export KONDUIT_CASSANDRA_RING=1
# The secured Cassandra node (PasswordAuthenticator + TLS) for the CQL client's auth and TLS tests.
export KONDUIT_CASSANDRA_SECURE=1
if ! scripts/services.sh up; then
  echo "error: scripts/services.sh up failed: the local test servers could not be started (see above)." >&2
  summary 0 1 0
  exit 1
fi
# shellcheck disable=SC1091
source .services/env

log=artifacts/test-output.log
chaos_log=artifacts/test-output-chaos.log
# Every module one at a time (one lane) by default: the Cassandra outage test stops and restarts the shared Cassandra
# (below). KONDUIT_TEST_LANES=2 (for a machine with more cores) runs two
# lanes side by side instead:
# - the chaos module (private servers of its own; ~6 min);
# - every other module, one at a time: the Cassandra outage test stops and restarts the shared Cassandra, which the
#   benchmark smoke test (event append) and the Cassandra event-log tests of other modules also use; tests inside a
#   module still run in parallel, and each module orders its own outage test last.
# The chaos module's one Cassandra run and that outage test take the same cross-process lock (tests/Shared/SharedServerLock.cs).
# Any extra argument (a filter) means one lane. On this project's 2-core CI box two lanes saved nothing (16.5 min
# against 15.5–17.8 sequential: the modules are CPU-bound) and a chaos throughput-recovery check failed beside the
# busy neighbour (0.90 against the 0.95 it needs), so one lane stays the default.
# Tests with the trait Profile=Long (minutes-long soaks, and tests still being stabilised) run only with KONDUIT_LONG=1.
profile=(--filter-not-trait "Profile=Long")
[ "${KONDUIT_LONG:-0}" = "1" ] && profile=()
# The packages first: PackagingTests inspects them. Then one build, which both lanes reuse (--no-build: two
# concurrent builds of the same projects would race on their outputs).
if ! scripts/pack.sh; then
  echo "error: scripts/pack.sh failed: the packages could not be built (see above)." >&2
  summary 0 1 0
  exit 1
fi
if ! dotnet build Konduit.sln -c Release --nologo -v quiet; then
  echo "error: the solution did not build (see above)." >&2
  summary 0 1 0
  exit 1
fi
lanes=1
[ "${KONDUIT_TEST_LANES:-1}" = "2" ] && [ "$#" -eq 0 ] && lanes=2
rc_chaos=0
: >"$chaos_log"
if [ "$lanes" = "2" ]; then
  dotnet test --project tests/Konduit.Chaos.Tests -c Release --no-build --no-progress "${profile[@]}" >"$chaos_log" 2>&1 &
  chaos_pid=$!
  # The other lane at a lower CPU priority: the chaos verdicts include a throughput ratio (recovery to 95 % of the
  # rate before the fault) that a busy neighbour would skew; the other modules' checks are states and counts.
  nice -n 10 dotnet test Konduit.sln -c Release --no-build --no-progress -p:KonduitTestLane=others --max-parallel-test-modules 1 "${profile[@]}" 2>&1 | tee "$log"
  rc=${PIPESTATUS[0]}
  wait "$chaos_pid"; rc_chaos=$?
  echo "---- chaos lane (tests/Konduit.Chaos.Tests, $chaos_log) ----"
  cat "$chaos_log"
else
  dotnet test Konduit.sln -c Release --no-build --no-progress --max-parallel-test-modules 1 "${profile[@]}" "$@" 2>&1 | tee "$log"
  rc=${PIPESTATUS[0]}
fi

# dotnet test (Microsoft.Testing.Platform) ends with "Test run summary: ..." then total/failed/succeeded/skipped.
lane_count() { # lane_count <log> <field>
  awk '/Test run summary/{buf=""; grab=1} grab{buf=buf $0 "\n"} END{printf "%s", buf}' "$1" \
    | sed -nE "s/^[[:space:]]*$2:[[:space:]]*([0-9]+).*/\1/p" | tail -1
}
passed=0; failed=0; skipped=0
for lane_log in "$log" "$chaos_log"; do
  [ -s "$lane_log" ] || continue
  p=$(lane_count "$lane_log" succeeded); f=$(lane_count "$lane_log" failed); k=$(lane_count "$lane_log" skipped)
  passed=$((passed + ${p:-0})); failed=$((failed + ${f:-0})); skipped=$((skipped + ${k:-0}))
  if [ -z "$p" ]; then
    echo "error: no test summary in $lane_log (build error or crashed test host?)" >&2
    failed=$((failed + 1))
  fi
done

if [ "$rc" -ne 0 ] || [ "$rc_chaos" -ne 0 ]; then
  if [ "$failed" -eq 0 ]; then
    # Build error, crashed test host or a run with no summary: never report that as green.
    echo "error: dotnet test exited with $rc (chaos lane: $rc_chaos) without reporting a failed test (build error or crashed test host?)" >&2
    failed=1
  fi
  rc=1
fi
if [ "$passed" -eq 0 ] && [ "$rc" -eq 0 ]; then
  echo "error: no test ran." >&2
  failed=1; rc=1
fi
summary "$passed" "$failed" "$skipped"
[ "$rc" -eq 0 ] && [ "$failed" -eq 0 ]
