#!/usr/bin/env bash
# A long random exploration on both engines, and its figures: cases run, cases that broke an
# invariant (by invariant), wall time and cases per second. Failing cases and their shrunk copies
# stay in the output directory (see `mixcast-sim explore --help`).
#
#   bash scripts/explore-bench.sh [--model N] [--ns3 M] [--seed S] [--jobs J] [--out DIR]
#
# Defaults: 10000 model cases, 300 ns-3 cases, seed 1, jobs = cores, out results/explore-bench.
# Builds the release preset first if mixcast-sim is missing. Exit status 1 if any case failed.
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"

model=10000 ns3=300 seed=1 jobs=$(nproc) out=results/explore-bench
usage() { sed -n '2,9p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'; }
while (($#)); do
  case "$1" in
    --model) model=$2; shift 2 ;;
    --ns3) ns3=$2; shift 2 ;;
    --seed) seed=$2; shift 2 ;;
    --jobs) jobs=$2; shift 2 ;;
    --out) out=$2; shift 2 ;;
    -h|--help) usage; exit 0 ;;
    *) echo "explore-bench: unknown argument '$1'" >&2; usage >&2; exit 2 ;;
  esac
done
for v in model ns3 seed jobs; do
  if ! [[ ${!v} =~ ^[0-9]+$ ]]; then echo "explore-bench: --$v needs a whole number, got '${!v}'" >&2; exit 2; fi
done

sim=build/release/sim/mixcast-sim
if [[ ! -x "$sim" ]]; then
  cmake --preset default >/dev/null && cmake --build --preset default -j"$jobs" >/dev/null
fi

status=0
run() {  # run ENGINE RUNS
  (($2 > 0)) || return 0
  echo "explore-bench: $2 cases on the $1 engine (seed $seed, $jobs jobs) -> $out/$1" >&2
  rm -rf "${out:?}/$1"
  "$sim" explore --engine "$1" --runs "$2" --seed "$seed" --jobs "$jobs" --out "$out/$1" || status=1
}
run model "$model"
run ns3 "$ns3"

/usr/bin/python3 - "$out" <<'EOF'
import json, os, sys
out = sys.argv[1]
print("| engine | cases | failed | violations | determinism checked | wall s | cases/s |")
print("| --- | --- | --- | --- | --- | --- | --- |")
for engine in ("model", "ns3"):
    path = os.path.join(out, engine, "report.json")
    if not os.path.exists(path):
        continue
    r = json.load(open(path))
    v = ", ".join(f"{k} {n}" for k, n in sorted(r.get("violations", {}).items())) or "none"
    rate = r["runs"] / r["wall_s"] if r["wall_s"] else 0
    print(f"| {engine} | {r['runs']} | {r['failed']} | {v} | {r['determinism_checked']} | {r['wall_s']:.0f} | {rate:.1f} |")
EOF
exit "$status"
