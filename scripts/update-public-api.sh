#!/usr/bin/env bash
# Rewrites the public API baselines of the shipped packages (every project under src/ and adapters/, the conformance
# suite included: adapter authors reference it) from their code, with Microsoft.CodeAnalysis.PublicApiAnalyzers' own
# code fix (RS0016, applied by `dotnet format analyzers`).
#
#   scripts/update-public-api.sh                  every shipped package (one `dotnet format` each: 1-2 minutes apiece)
#   scripts/update-public-api.sh src/Konduit …    only these project folders
#   scripts/update-public-api.sh --ship           after a release: move every Unshipped entry into Shipped
#
# PublicAPI.Unshipped.txt is emptied and refilled, so API that was added, changed or removed since the last release is
# listed as it is now; PublicAPI.Shipped.txt (what a release promised) is never rewritten except by --ship. A package
# without the two files gets them. Removing a Shipped entry is a breaking change: the build fails with RS0017 until
# the entry is marked in Unshipped as `*REMOVED*<entry>`, by hand, on purpose. Review the diff: every new line is a
# promise to users. Run it after merging branches that change public API; the build (warnings are errors) fails with
# RS0016/RS0017 while a baseline is stale.
set -euo pipefail
cd "$(dirname "$0")/.."

usage() { sed -n '2,16p' "$0" | sed 's/^# \{0,1\}//'; }
ship=0
dirs=()
for arg in "$@"; do
  case "$arg" in
    --ship) ship=1 ;;
    -h|--help) usage; exit 0 ;;
    -*) echo "unknown option $arg" >&2; usage >&2; exit 2 ;;
    *) dirs+=("${arg%/}") ;;
  esac
done
if [ "${#dirs[@]}" -eq 0 ]; then
  for csproj in src/*/*.csproj adapters/*/*.csproj; do dirs+=("$(dirname "$csproj")"); done
fi

header='#nullable enable'
# Entries sorted byte-wise under the header, so a regenerated file differs from the old one only where the API did.
sort_entries() { { echo "$header"; grep -v -x -F "$header" "$1" | grep -v '^[[:space:]]*$' | LC_ALL=C sort -u || true; } >"$1.tmp"; mv "$1.tmp" "$1"; }

for dir in "${dirs[@]}"; do
  [ -n "$(find "$dir" -maxdepth 1 -name '*.csproj' -print -quit)" ] || { echo "error: no project in $dir" >&2; exit 2; }
  for f in PublicAPI.Shipped.txt PublicAPI.Unshipped.txt; do [ -f "$dir/$f" ] || echo "$header" >"$dir/$f"; done
done

if [ "$ship" -eq 1 ]; then
  for dir in "${dirs[@]}"; do
    shipped="$dir/PublicAPI.Shipped.txt" unshipped="$dir/PublicAPI.Unshipped.txt"
    # *REMOVED* entries take their line out of Shipped; the rest join it.
    grep '^\*REMOVED\*' "$unshipped" | sed 's/^\*REMOVED\*//' >"$unshipped.removed" || true
    { cat "$shipped"; grep -v '^\*REMOVED\*' "$unshipped"; } | grep -v -x -F -f "$unshipped.removed" >"$shipped.tmp" || true
    mv "$shipped.tmp" "$shipped"
    rm -f "$unshipped.removed"
    sort_entries "$shipped"
    echo "$header" >"$unshipped"
    echo "shipped: $dir" >&2
  done
  exit 0
fi

# Keep deliberate removals (*REMOVED* lines) across the rewrite; everything else in Unshipped comes from the code.
for dir in "${dirs[@]}"; do
  { echo "$header"; grep '^\*REMOVED\*' "$dir/PublicAPI.Unshipped.txt" || true; } >"$dir/PublicAPI.Unshipped.txt.tmp"
  mv "$dir/PublicAPI.Unshipped.txt.tmp" "$dir/PublicAPI.Unshipped.txt"
done

# One `dotnet format` per project: its fix-all writes the Unshipped file of one project per run (given a solution it
# fills only the first project's). RS0016's fix appends each missing symbol to the project's Unshipped file.
for dir in "${dirs[@]}"; do
  echo "== dotnet format analyzers $dir (RS0016)" >&2
  dotnet format analyzers "$(find "$dir" -maxdepth 1 -name '*.csproj' -print -quit)" --diagnostics RS0016 --severity warn -v q
done

for dir in "${dirs[@]}"; do
  sort_entries "$dir/PublicAPI.Unshipped.txt"
  echo "$dir: $(grep -c -v -x -F "$header" "$dir/PublicAPI.Shipped.txt" || true) shipped, $(grep -c -v -x -F "$header" "$dir/PublicAPI.Unshipped.txt" || true) unshipped" >&2
done
