#!/usr/bin/env bash
# README command 1: installs the dependencies, builds the release preset and runs one scenario
# on the default engine (ns-3 when it was found at build time); prints the human summary and
# where the results are.
# Usage: bash scripts/run.sh [SCENARIO] [extra 'mixcast-sim run' arguments]
#   bash scripts/run.sh                                   # scenarios/multi-subnet.yaml
#   bash scripts/run.sh scenarios/lan.yaml --mode mixed --nodes 200
# Results go to results/default unless --out is given.
set -euo pipefail

orig_pwd=$PWD
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"

scenario=scenarios/multi-subnet.yaml
if (($# > 0)) && [[ "$1" != -* ]]; then
  scenario=$1
  shift
  # A path relative to where the user stands, not to the repository root.
  if [[ "$scenario" != /* && -f "$orig_pwd/$scenario" ]]; then
    scenario="$orig_pwd/$scenario"
  fi
fi

out_args=(--out results/default)
for arg in "$@"; do
  if [[ "$arg" == --out || "$arg" == --out=* ]]; then out_args=(); fi
done

bash scripts/install-deps.sh

mkdir -p build
log=build/run-build.log
echo "run.sh: building (cmake preset 'default', log in $log) ..." >&2
if ! { cmake --preset default && cmake --build --preset default; } >"$log" 2>&1; then
  tail -n 80 "$log" >&2
  echo "run.sh: the build failed; full log: $log" >&2
  exit 1
fi

exec build/release/sim/mixcast-sim run "$scenario" "${out_args[@]}" "$@"
