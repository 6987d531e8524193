#!/usr/bin/env bash
# Issue 15's same-run comparison: graphile-worker through its own public API, then Konduit's benchmark (bulk insert,
# runtime burn-downs batched and one task per lease call, steady-state pickup), one after the other on the same
# PostgreSQL server.
#
#   scripts/bench-peers.sh [--jobs N] [--no-services]    (N defaults to 20000, the issue's figure)
#
# Needs Node (graphile-worker 0.18 asks for Node >= 22.18 and warns on 20; it ran here on 20). Installs the pinned
# packages from benchmarks/peers/package-lock.json with `npm ci`, writes artifacts/bench/peers-graphile.json and a
# Konduit report, and prints graphile-worker's figures beside the Konduit rows they compare with.
set -euo pipefail
cd "$(dirname "$0")/.."
jobs=20000 services=1
while [ $# -gt 0 ]; do
  case "$1" in
    --jobs) jobs="$2"; shift ;;
    --no-services) services=0 ;;
    -h|--help) sed -n '2,10p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "unknown argument $1" >&2; exit 2 ;;
  esac
  shift
done
command -v node >/dev/null 2>&1 || { echo "error: Node is required for the peer benchmark (node not on PATH)." >&2; exit 1; }
if [ "$services" -eq 1 ]; then
  scripts/services.sh up >&2
  # shellcheck disable=SC1091
  source .services/env
fi
: "${KONDUIT_TEST_POSTGRES:?KONDUIT_TEST_POSTGRES is not set: run scripts/services.sh up and source .services/env}"
# The Npgsql connection string, as a libpq URL for node-postgres (same server, same database).
field() { printf '%s' "$KONDUIT_TEST_POSTGRES" | tr ';' '\n' | sed -n "s/^$1=//Ip" | head -n 1; }
export DATABASE_URL="postgres://$(field Username):$(field Password)@$(field Host):$(field Port)/$(field Database)"

mkdir -p artifacts/bench
(cd benchmarks/peers && npm ci --no-audit --no-fund --loglevel=error >&2)
echo "== graphile-worker, $jobs jobs" >&2
JOBS="$jobs" node benchmarks/peers/graphile.js | tee artifacts/bench/peers-graphile.json

echo "== Konduit (postgres and raw-sql): batch, burndown, steady" >&2
dotnet build -c Release --nologo -v quiet benchmarks/Konduit.Benchmarks >&2
out=$(mktemp)
trap 'rm -f "$out"' EXIT
dotnet benchmarks/Konduit.Benchmarks/bin/Release/net10.0/Konduit.Benchmarks.dll load --quick --scenarios batch,burndown,steady \
  --targets raw-sql,postgres --out artifacts/bench >"$out"
report=$(sed -n 's/^report: //p' "$out" | tail -n 1)
echo
echo "graphile-worker: $(cat artifacts/bench/peers-graphile.json)"
echo "Konduit rows to compare (report: $report):"
grep -E '^\| (enqueue batch 100 \(binary COPY\) \| (raw-sql|postgres)|burn-down: worker runtime, [^|]*\| postgres|postgres \| idle \| on)' "$report" || true
