#!/usr/bin/python3
"""Runs a grid of mixcast simulations in parallel on Dask and writes one tidy CSV.

The grid is scenarios x node counts x modes x seeds x engines. Each run is one Dask task; ns-3
runs each get a fresh Python process (ns-3 keeps global state). By default a local Dask cluster
(one single-threaded worker process per core, on 127.0.0.1) runs the grid; --scheduler ADDRESS
uses a running cluster instead (its workers must import the same mixcast package, e.g. with
PYTHONPATH=<build>/python). The CSV (columns scenario,engine,mode,nodes,seed,metric,series,x,value;
see analysis/README.md) is what plot_rounds.py, plot_convergence.py and plot_bandwidth.py read.

Scenarios are YAML files, or scale:SIZE: a generated one-datacenter topology whose subnets stay
near SIZE nodes as the node count grows (scale = scale:64).

Examples:
  analysis/sweep.py scenarios/lan.yaml scenarios/multi-subnet.yaml --nodes 16,32,64 \\
      --modes tcp,mixed --seeds 3 --out results/sweep/lan.csv
  analysis/sweep.py scale:64 --nodes 64,1024,16384 --modes tcp --out results/sweep/scale.csv
  analysis/sweep.py scenarios/nat.yaml --nodes 32 --engines model,ns3 --out results/sweep/nat.csv
  analysis/sweep.py scenarios/lan.yaml --nodes 8,16,32,64 --seeds 15 --compare-sequential \\
      --out results/sweep/timing.csv     # the same runs one by one too: wall times side by side
"""
from __future__ import annotations

import argparse
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import _bootstrap  # noqa: E402

PROG = "sweep.py"


def parse_args(argv):
    p = argparse.ArgumentParser(prog=PROG, description=__doc__.split("\n\n")[0],
                                epilog=__doc__.split("\n\n", 1)[1], formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("scenarios", nargs="+", metavar="SCENARIO", help="scenario YAML files, or scale:SIZE")
    p.add_argument("--nodes", type=_bootstrap.int_list, default=None, metavar="N,N,...",
                   help="node counts (rescaling, as mixcast-sim --nodes); default: each file's own size")
    p.add_argument("--modes", type=_bootstrap.choice_list(("tcp", "mixed")), default=["tcp", "mixed"],
                   metavar="MODE,...", help="tcp,mixed (default: both)")
    p.add_argument("--seeds", type=_bootstrap.positive_int, default=1, metavar="K",
                   help="seeds per point: the scenario's seed, seed+1, ..., seed+K-1 (default 1)")
    p.add_argument("--engines", type=_bootstrap.choice_list(("model", "ns3")), default=["model"],
                   metavar="ENGINE,...", help="model,ns3 (default: model)")
    p.add_argument("--set", dest="sets", action="append", default=[], metavar="KEY=VALUE",
                   help="override a scenario key in every run, as mixcast-sim --set (repeatable)")
    p.add_argument("--out", required=True, metavar="CSV", help="the tidy CSV to write")
    p.add_argument("--scheduler", metavar="ADDRESS", default=None,
                   help="a running Dask scheduler, e.g. tcp://10.0.0.5:8786 (default: a local cluster)")
    p.add_argument("--workers", type=_bootstrap.positive_int, default=None, metavar="N",
                   help="worker processes of the local cluster (default: one per core)")
    p.add_argument("--sequential", action="store_true", help="no Dask: run one by one in this process")
    p.add_argument("--compare-sequential", action="store_true",
                   help="after the Dask run, run the same grid one by one in this process, check the results "
                        "agree and print both wall times")
    p.add_argument("--quiet", "-q", action="store_true", help="no progress bar")
    _bootstrap.add_build_dir_arg(p)
    a = p.parse_args(argv)
    if a.sequential and (a.scheduler or a.compare_sequential):
        p.error("--sequential cannot be combined with --scheduler or --compare-sequential")
    for s in a.sets:
        if "=" not in s or s.startswith("="):
            p.error(f"--set expects KEY=VALUE, got '{s}'")
    return a


def comparable(rows):
    """Rows without the figures that measure the machine rather than the run."""
    return [r for r in rows if r[5] != "wall_s"]


def main(argv=None) -> int:
    a = parse_args(sys.argv[1:] if argv is None else argv)
    mixcast = _bootstrap.import_mixcast(PROG, a.build_dir)
    from mixcast import sweeping, tidy

    _bootstrap.check_output(PROG, a.out)
    try:
        for spec in a.scenarios:
            if mixcast.scenarios.parse_scale_spec(spec) is None and not os.path.isfile(spec):
                _bootstrap.fail(PROG, f"scenario file '{spec}' does not exist or is not a file")
        points = sweeping.expand_grid(a.scenarios, a.nodes or [None], a.modes, a.seeds, a.engines, a.sets)
    except mixcast.ScenarioError as e:
        _bootstrap.fail(PROG, str(e))
    print(f"sweep: {len(points)} runs ({len(a.scenarios)} scenarios x {len(a.nodes or [None])} node counts x "
          f"{len(a.modes)} modes x {a.seeds} seeds x {len(a.engines)} engines)", flush=True)

    t0 = time.monotonic()
    if a.sequential:
        per_point = sweeping.run_sequential(points, progress=not a.quiet)
        where = "sequential, this process"
    else:
        try:
            per_point, where = sweeping.run_dask(points, scheduler=a.scheduler, workers=a.workers,
                                                 progress=not a.quiet)
        except (OSError, ValueError) as e:  # no scheduler at that address, or a malformed one
            _bootstrap.fail(PROG, f"cannot use the Dask scheduler {a.scheduler}: {e}")
    wall = time.monotonic() - t0
    rows = [r for rs in per_point for r in rs]
    n = tidy.write_tidy(a.out, rows)
    print(f"sweep: {len(points)} runs in {wall:.1f} s ({where})")

    if a.compare_sequential:
        t0 = time.monotonic()
        seq = sweeping.run_sequential(points, progress=not a.quiet)
        seq_wall = time.monotonic() - t0
        same = all(comparable(x) == comparable(y) for x, y in zip(per_point, seq))
        print(f"sequential: {len(points)} runs in {seq_wall:.1f} s (one by one in this process)")
        print(f"speed-up: {seq_wall / wall:.2f}x (Dask {wall:.1f} s vs sequential {seq_wall:.1f} s); "
              f"results identical except wall_s: {'yes' if same else 'NO'}")
        if not same:
            print("sweep.py: the Dask and sequential results differ", file=sys.stderr)
            return 1
    print(f"results: {a.out} ({n} rows)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
