#!/usr/bin/env bash
# README command 1: installs the dependencies, builds the release preset and runs one scenario
# on the default engine (ns-3 when it was found at build time); prints the human summary and
# where the results are, then writes the run's convergence plot (RESULTS/convergence.png and
# .svg, analysis/plot_convergence.py with /usr/bin/python3 and the module of the release build).
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
out_dir=results/default
json=0
no_run=0  # --help / --version: nothing ran, so nothing to plot
prev=
for arg in "$@"; do
  if [[ "$arg" == --out || "$arg" == --out=* ]]; then out_args=(); fi
  if [[ "$prev" == --out ]]; then out_dir=$arg; fi
  if [[ "$arg" == --out=* ]]; then out_dir=${arg#--out=}; fi
  if [[ "$arg" == --json ]]; then json=1; fi
  if [[ "$arg" == -h || "$arg" == --help || "$arg" == --version ]]; then no_run=1; fi
  prev=$arg
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

build/release/sim/mixcast-sim run "$scenario" "${out_args[@]}" "$@" || exit $?
((no_run)) && exit 0

# The convergence plot of this run. Plotting is a bonus: when it cannot be done, say why and keep
# the run's success. With --json, stdout stays pure JSON and these lines go to stderr.
say() { if ((json)); then echo "$*" >&2; else echo "$*"; fi; }
python=/usr/bin/python3
if [[ ! -x "$python" ]]; then
  echo "run.sh: no convergence plot: $python is missing (the analysis needs Debian's python3 with python3-matplotlib)" >&2
elif [[ ! -f build/release/python/mixcast/__init__.py ]]; then
  echo "run.sh: no convergence plot: the mixcast Python module was not built (needs python3-dev and pybind11-dev; see $log)" >&2
elif plot_log=$("$python" analysis/plot_convergence.py "$out_dir" --out "$out_dir/convergence" --build-dir build/release 2>&1); then
  say "convergence plot: $out_dir/convergence.png ($out_dir/convergence.svg)"
else
  echo "run.sh: no convergence plot: $(tail -n 3 <<<"$plot_log")" >&2
fi
