#!/usr/bin/env bash
# The README's main-job command: starts the local PostgreSQL and runs the sample host, which enqueues and
# works N tasks through the worker runtime and prints tasks/s and queue-wait percentiles.
set -euo pipefail
cd "$(dirname "$0")/.."
command -v dotnet >/dev/null 2>&1 || { echo "error: the .NET 10 SDK is required (dotnet not on PATH)." >&2; exit 1; }
scripts/services.sh up
# shellcheck disable=SC1091
source .services/env
exec dotnet run -c Release --project samples/Konduit.Sample -- \
  --Konduit:Postgres:ConnectionString="$KONDUIT_TEST_POSTGRES" "$@"
