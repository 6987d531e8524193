#!/usr/bin/env bash
# The README's main-job command: how do the stores compare on this machine, against the raw SQL ceiling?
#
#   scripts/bench.sh --quick    a few minutes: load runner (burn-down, steady state, churn, per-operation loops)
#                               plus a short BenchmarkDotNet job over the enqueue paths (skip it with --no-bdn)
#   scripts/bench.sh --full     the issue's figures: full BenchmarkDotNet run, 10-minute churn, bigger budgets
#
# Starts the local services (scripts/services.sh up), builds Release, writes artifacts/bench/report-*.md and *.svg
# (git-ignored) and prints their paths. Extra arguments go to the load runner, e.g. --scenarios steady,churn or
# --targets raw-sql,postgres. With docker-compose.bench.yml instead of local services, export KONDUIT_BENCH_POSTGRES
# (see that file) and pass --no-services.
set -euo pipefail
cd "$(dirname "$0")/.."
command -v dotnet >/dev/null 2>&1 || { echo "error: the .NET 10 SDK is required (dotnet not on PATH)." >&2; exit 1; }

profile=quick bdn=1 services=1
load_args=()
for arg in "$@"; do
  case "$arg" in
    --quick) profile=quick ;;
    --full) profile=full ;;
    --no-bdn) bdn=0 ;;
    --no-services) services=0 ;;
    *) load_args+=("$arg") ;;
  esac
done

if [ "$services" -eq 1 ]; then
  scripts/services.sh up
  # shellcheck disable=SC1091
  source .services/env
fi

project=benchmarks/Konduit.Benchmarks
dotnet build -c Release --nologo -v quiet "$project" >&2
exe=(dotnet "$project/bin/Release/net10.0/Konduit.Benchmarks.dll")
mkdir -p artifacts/bench

if [ "$bdn" -eq 1 ]; then
  rm -rf artifacts/bench/bdn/results
  if [ "$profile" = quick ]; then
    echo "== BenchmarkDotNet (short job: enqueue single/batch and raw COPY; the cycle classes run in --full)" >&2
    "${exe[@]}" bdn --quick --filter '*EnqueueBenchmarks*' '*CopyBenchmarks*' >artifacts/bench/bdn.log 2>&1 \
      || { tail -n 40 artifacts/bench/bdn.log >&2; echo "bench: BenchmarkDotNet failed (log: artifacts/bench/bdn.log)" >&2; exit 1; }
  else
    echo "== BenchmarkDotNet (default job, every class)" >&2
    "${exe[@]}" bdn --filter '*' >artifacts/bench/bdn.log 2>&1 \
      || { tail -n 40 artifacts/bench/bdn.log >&2; echo "bench: BenchmarkDotNet failed (log: artifacts/bench/bdn.log)" >&2; exit 1; }
  fi
  load_args+=(--bdn artifacts/bench/bdn)
fi

echo "== load runner ($profile)" >&2
exec "${exe[@]}" load --profile "$profile" --out artifacts/bench "${load_args[@]}"
