#!/usr/bin/env bash
# The README's main-job command: how do the stores compare on this machine, against the raw SQL and raw Redis Streams
# ceilings?
#
#   scripts/bench.sh --quick    ≤ 4 minutes on 2 cores: every scenario × every store (enqueue, batch, cycle at 1/4/16
#                               workers single and batched, burn-down, heartbeat, event append, steady state with push
#                               on/off, churn, pinned xmin horizon) with short budgets, plus a short in-process
#                               BenchmarkDotNet job over the enqueue paths (skip it with --no-bdn)
#   scripts/bench.sh --full     the issue's figures: every BenchmarkDotNet class, 10-minute churn, 2-minute pinned horizon,
#                               longer budgets
#
# Starts the local services (scripts/services.sh up; --no-services to use servers already pointed at by
# KONDUIT_BENCH_* / KONDUIT_TEST_* variables, e.g. docker-compose.bench.yml's), builds Release, writes
# artifacts/bench/report-*.md and its charts, *.svg and *.png (git-ignored), and prints the report's path last, with
# the wall time. Extra arguments go to the load runner, e.g. --scenarios steady,churn or --targets raw-sql,postgres
# (see --help).
set -euo pipefail
cd "$(dirname "$0")/.."
start=$(date +%s)

usage() { sed -n '2,16p' "$0" | sed 's/^# \{0,1\}//'; }
profile=quick bdn=1 services=1
load_args=()
for arg in "$@"; do
  case "$arg" in
    --quick) profile=quick ;;
    --full) profile=full ;;
    --no-bdn) bdn=0 ;;
    --no-services) services=0 ;;
    -h|--help) usage; exit 0 ;;
    *) load_args+=("$arg") ;;
  esac
done
command -v dotnet >/dev/null 2>&1 || { echo "error: the .NET 10 SDK is required (dotnet not on PATH)." >&2; exit 1; }

if [ "$services" -eq 1 ]; then
  scripts/services.sh up
  # shellcheck disable=SC1091
  source .services/env
fi

project=benchmarks/Konduit.Benchmarks
echo "== build (Release)" >&2
dotnet build -c Release --nologo -v quiet "$project" >&2
exe=(dotnet "$project/bin/Release/net10.0/Konduit.Benchmarks.dll")
mkdir -p artifacts/bench

if [ "$bdn" -eq 1 ]; then
  rm -rf artifacts/bench/bdn/results
  if [ "$profile" = quick ]; then
    echo "== BenchmarkDotNet (short in-process job: enqueue single/batch per target and raw COPY; the cycle classes run in --full)" >&2
    bdn_filter=('*EnqueueBenchmarks*' '*CopyBenchmarks*')
    bdn_mode=(--quick)
  else
    echo "== BenchmarkDotNet (default job, every class)" >&2
    bdn_filter=('*')
    bdn_mode=()
  fi
  "${exe[@]}" bdn "${bdn_mode[@]}" --filter "${bdn_filter[@]}" >artifacts/bench/bdn.log 2>&1 \
    || { tail -n 40 artifacts/bench/bdn.log >&2; echo "bench: BenchmarkDotNet failed (log: artifacts/bench/bdn.log)" >&2; exit 1; }
  load_args+=(--bdn artifacts/bench/bdn)
fi

echo "== load runner ($profile)" >&2
out=$(mktemp)
trap 'rm -f "$out"' EXIT
"${exe[@]}" load --profile "$profile" --out artifacts/bench "${load_args[@]}" | tee "$out"
report=$(sed -n 's/^report: //p' "$out" | tail -n 1)
elapsed=$(( $(date +%s) - start ))
echo
echo "bench: $profile run took $((elapsed / 60)) min $((elapsed % 60)) s (services, build, BenchmarkDotNet and load runner)"
echo "bench: report ${report:-not written}"
