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
# One test module at a time: the Cassandra outage test stops and restarts the shared Cassandra, which the
# benchmark smoke test (event append) and the Cassandra event-log tests of other modules also use; tests inside
# a module still run in parallel, and each module orders its own outage test last.
# Tests with the trait Profile=Long (minutes-long soaks, and tests still being stabilised) run only with KONDUIT_LONG=1.
profile=(--filter-not-trait "Profile=Long")
[ "${KONDUIT_LONG:-0}" = "1" ] && profile=()
# The packages first: PackagingTests inspects them (and the Release build is then reused by the tests).
if ! scripts/pack.sh; then
  echo "error: scripts/pack.sh failed: the packages could not be built (see above)." >&2
  summary 0 1 0
  exit 1
fi
dotnet test Konduit.sln -c Release --no-progress --max-parallel-test-modules 1 "${profile[@]}" "$@" 2>&1 | tee "$log"
rc=${PIPESTATUS[0]}

# dotnet test (Microsoft.Testing.Platform) ends with "Test run summary: ..." then total/failed/succeeded/skipped.
block=$(awk '/Test run summary/{buf=""; grab=1} grab{buf=buf $0 "\n"} END{printf "%s", buf}' "$log")
num() { printf '%s' "$block" | sed -nE "s/^[[:space:]]*$1:[[:space:]]*([0-9]+).*/\1/p" | tail -1; }
passed=$(num succeeded); failed=$(num failed); skipped=$(num skipped)
passed=${passed:-0}; failed=${failed:-0}; skipped=${skipped:-0}

if [ "$rc" -ne 0 ] && [ "$failed" -eq 0 ]; then
  # Build error, crashed test host or a run with no summary: never report that as green.
  echo "error: dotnet test exited with $rc without reporting a failed test (build error or crashed test host?)" >&2
  failed=1
fi
if [ "$passed" -eq 0 ] && [ "$rc" -eq 0 ]; then
  echo "error: no test ran." >&2
  failed=1; rc=1
fi
summary "$passed" "$failed" "$skipped"
[ "$rc" -eq 0 ] && [ "$failed" -eq 0 ]
