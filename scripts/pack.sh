#!/usr/bin/env bash
# Packs every shipped package (src/ and adapters/) into artifacts/packages: .nupkg and .snupkg (symbols with SourceLink).
# scripts/test.sh runs it before the tests; tests/Konduit.Architecture.Tests/PackagingTests.cs inspects the result.
set -euo pipefail
cd "$(dirname "$0")/.."
rm -rf artifacts/packages
dotnet pack Konduit.sln -c Release --nologo -v quiet -o artifacts/packages "$@"
