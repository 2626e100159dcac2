#!/usr/bin/python3
"""Plots broadcast rounds vs node count: the headline plot.

Points come from runs: rounds.max (the worst delivery's round, worst over seeds) of TCP mode and
of mixed mode, and each mode's lower bound as the runs report it (TCP ceil(log2 n), mixed
ceil(log2 S)+1 with S multicast islands). References, drawn from their formulas at the same node
counts: push gossip's log2 n + ln n and a sequential loop's n - 1 sends.

Without --csv it first runs the grid on the model engine (on a local Dask cluster, as sweep.py)
with the generated scale:SIZE scenario, whose subnets stay near SIZE nodes as n grows, and keeps
its tidy CSV next to the plot. Writes PREFIX.png, PREFIX.svg and PREFIX.json (the plotted numbers).

Examples:
  analysis/plot_rounds.py                                # the README's headline plot (about an hour on 2 cores)
  analysis/plot_rounds.py --nodes 8,64,512 --mixed-max 512 --out results/plots/small
  analysis/plot_rounds.py --csv results/headline/rounds.csv --out results/plots/rounds
"""
from __future__ import annotations

import argparse
import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import _bootstrap  # noqa: E402

PROG = "plot_rounds.py"
DEFAULT_NODES = [8, 16, 32, 64, 128, 256, 512, 1024, 2048, 4096, 8192, 16384, 32768, 65536, 100000]
# Mixed mode runs at every default node count: the model engine's nodes share member lists and
# island partitions (core IslandCache), so per-node state is one claim slot per island.
DEFAULT_MIXED_MAX = 100000

LABELS = {
    "tcp": "TCP mode (runs)",
    "mixed": "mixed mode (runs)",
    "tcp_bound": "TCP lower bound ceil(log2 n) (runs)",
    "mixed_bound": "mixed lower bound ceil(log2 S)+1 (runs)",
    "gossip": "push gossip log2 n + ln n (reference)",
    "sequential": "sequential loop n-1 (reference)",
}


def parse_args(argv):
    p = argparse.ArgumentParser(prog=PROG, description=__doc__.split("\n\n")[0],
                                epilog=__doc__.split("\n\n", 1)[1], formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--csv", metavar="FILE", default=None,
                   help="plot this tidy CSV (from sweep.py) instead of running the grid")
    p.add_argument("--out", metavar="PREFIX", default="results/headline/rounds",
                   help="output prefix: PREFIX.png, PREFIX.svg, PREFIX.json (and PREFIX.csv when the grid runs); "
                        "default results/headline/rounds")
    p.add_argument("--scenario", default=None, metavar="NAME",
                   help="with --csv: plot this scenario name (default: the only one, or scale-s64 if present)")
    p.add_argument("--nodes", type=_bootstrap.int_list, default=DEFAULT_NODES, metavar="N,N,...",
                   help="node counts to run (default 8,16,...,65536,100000)")
    p.add_argument("--mixed-max", type=_bootstrap.positive_int, default=DEFAULT_MIXED_MAX, metavar="N",
                   help=f"run mixed mode only up to N nodes (default {DEFAULT_MIXED_MAX}; mixed mode's learning "
                        "traffic makes it the long part of the grid)")
    p.add_argument("--subnet-size", type=_bootstrap.positive_int, default=64, metavar="S",
                   help="subnet size of the generated scale scenario (default 64)")
    p.add_argument("--seeds", type=_bootstrap.positive_int, default=1, metavar="K", help="seeds per point (default 1)")
    p.add_argument("--workers", type=_bootstrap.positive_int, default=None, metavar="N",
                   help="local Dask worker processes (default: one per core)")
    p.add_argument("--scheduler", metavar="ADDRESS", default=None, help="use a running Dask scheduler")
    p.add_argument("--sequential", action="store_true", help="run the grid one by one in this process (no Dask)")
    p.add_argument("--quiet", "-q", action="store_true", help="no progress bar")
    _bootstrap.add_build_dir_arg(p)
    return p.parse_args(argv)


def series_from_rows(rows, scenario=None):
    """{key: (nodes list, values list)} for the keys of LABELS, from tidy rows (worst over seeds)."""
    from mixcast.plots import gossip_rounds, sequential_rounds

    names = sorted({r["scenario"] for r in rows if r["metric"] == "rounds_max"})
    if scenario is None:
        if len(names) == 1:
            scenario = names[0]
        elif any(n.startswith("scale-") for n in names):
            scenario = [n for n in names if n.startswith("scale-")][0]
        else:
            raise ValueError(f"the CSV holds several scenarios ({', '.join(names)}): pick one with --scenario")
    elif scenario not in names:
        raise ValueError(f"scenario '{scenario}' is not in the CSV (it has: {', '.join(names) or 'no rounds_max rows'})")

    def worst(mode, metric):
        by_n = {}
        for r in rows:
            if r["scenario"] == scenario and r["mode"] == mode and r["metric"] == metric:
                by_n[r["nodes"]] = max(by_n.get(r["nodes"], r["value"]), r["value"])
        ns = sorted(by_n)
        return ns, [by_n[n] for n in ns]

    out = {"tcp": worst("tcp", "rounds_max"), "mixed": worst("mixed", "rounds_max"),
           "tcp_bound": worst("tcp", "lower_bound"), "mixed_bound": worst("mixed", "lower_bound")}
    if not out["tcp"][0] and not out["mixed"][0]:
        raise ValueError(f"no rounds_max rows for scenario '{scenario}'")
    all_n = sorted(set(out["tcp"][0]) | set(out["mixed"][0]))
    out["gossip"] = (all_n, [gossip_rounds(n) for n in all_n])
    out["sequential"] = (all_n, [sequential_rounds(n) for n in all_n])
    return scenario, {k: v for k, v in out.items() if v[0]}


def make_figure(series, title):
    """Left: everything on log-log axes. Right: the same without the sequential loop, linear rounds,
    where the runs and their lower bounds can be told apart (runs draw on top of a wide bound band)."""
    from mixcast.plots import plt

    style = {
        "tcp": dict(marker="o", color="tab:blue", linewidth=2, zorder=3),
        "mixed": dict(marker="s", color="tab:orange", linewidth=2, zorder=3),
        "tcp_bound": dict(color="tab:blue", linewidth=7, alpha=0.25, solid_capstyle="butt", zorder=2),
        "mixed_bound": dict(color="tab:orange", linewidth=7, alpha=0.25, solid_capstyle="butt", zorder=2),
        "gossip": dict(color="tab:green", linestyle=":", linewidth=1.8, zorder=1),
        "sequential": dict(color="tab:gray", linestyle=":", linewidth=1.8, zorder=1),
    }
    fig, (ax_all, ax_zoom) = plt.subplots(1, 2, figsize=(12, 5))
    for key in ("sequential", "gossip", "tcp_bound", "mixed_bound", "tcp", "mixed"):
        if key not in series:
            continue
        ns, vs = series[key]
        ax_all.plot(ns, vs, label=LABELS[key], markersize=4, **style[key])
        if key != "sequential":
            # "_" labels stay out of legends and out of plots.line_labels: the left panel names them.
            ax_zoom.plot(ns, vs, label="_" + LABELS[key], markersize=4, **style[key])
    for ax in (ax_all, ax_zoom):
        ax.set_xscale("log")
        ax.set_xlabel("nodes")
    ax_all.set_yscale("log")
    ax_all.set_ylabel("broadcast rounds (rounds.max)")
    ax_all.set_title("log scale, with the sequential loop")
    ax_zoom.set_ylabel("broadcast rounds")
    ax_zoom.set_title("linear rounds")
    ax_zoom.yaxis.get_major_locator().set_params(integer=True)
    ax_all.legend(loc="upper left", fontsize=8)
    fig.suptitle(title)
    fig.tight_layout()
    return fig


def run_grid(a, mixcast):
    from mixcast import sweeping, tidy

    spec = f"scale:{a.subnet_size}"
    mixed_nodes = [n for n in a.nodes if n <= a.mixed_max]
    try:
        points = sweeping.expand_grid([spec], a.nodes, ["tcp"], a.seeds, ["model"])
        if mixed_nodes:
            points += sweeping.expand_grid([spec], mixed_nodes, ["mixed"], a.seeds, ["model"])
    except mixcast.ScenarioError as e:
        _bootstrap.fail(PROG, str(e))
    # Largest first (the long mixed runs start at once instead of trailing at the end); rows are
    # written back in grid order.
    order = sorted(range(len(points)), key=lambda i: points[i].nodes * (64 if points[i].mode == "mixed" else 1),
                   reverse=True)
    print(f"{PROG}: {len(points)} model runs of {spec} (tcp: {len(a.nodes)} node counts, mixed: {len(mixed_nodes)} "
          f"up to {a.mixed_max})", flush=True)
    ordered = [points[i] for i in order]
    if a.sequential:
        per_point = sweeping.run_sequential(ordered, progress=not a.quiet)
    else:
        try:
            per_point, _ = sweeping.run_dask(ordered, scheduler=a.scheduler, workers=a.workers, progress=not a.quiet)
        except (OSError, ValueError) as e:
            _bootstrap.fail(PROG, f"cannot use the Dask scheduler {a.scheduler}: {e}")
    by_grid = [None] * len(points)
    for i, rs in zip(order, per_point):
        by_grid[i] = rs
    rows = [r for rs in by_grid for r in rs]
    csv_path = a.out + ".csv"
    tidy.write_tidy(csv_path, rows)
    print(f"{PROG}: runs in {csv_path}")
    return tidy.read_tidy(csv_path)


def main(argv=None) -> int:
    a = parse_args(sys.argv[1:] if argv is None else argv)
    mixcast = _bootstrap.import_mixcast(PROG, a.build_dir)
    from mixcast import plots, tidy

    _bootstrap.check_output(PROG, a.out + ".png")
    if a.csv:
        try:
            rows = tidy.read_tidy(a.csv)
        except (OSError, ValueError) as e:
            _bootstrap.fail(PROG, str(e))
    else:
        rows = run_grid(a, mixcast)
    try:
        scenario, series = series_from_rows(rows, a.scenario)
    except ValueError as e:
        _bootstrap.fail(PROG, f"{a.csv or 'the runs'}: {e}")
    engines = sorted({r["engine"] for r in rows if r["scenario"] == scenario})
    fig = make_figure(series, f"Broadcast rounds vs node count ({scenario}, {'/'.join(engines)} engine)")
    png, svg = plots.save_figure(fig, a.out)
    data = {"scenario": scenario, "engines": engines, "source": a.csv or a.out + ".csv",
            "series": {LABELS[k]: {"key": k, "nodes": ns, "rounds": vs} for k, (ns, vs) in series.items()}}
    with open(a.out + ".json", "w") as f:
        json.dump(data, f, indent=1)
    # The numbers behind the plot, for the largest and a mid-size point.
    print(f"{'nodes':>8} " + " ".join(f"{k:>11}" for k in series))
    for n in sorted({n for ns, _ in series.values() for n in ns}):
        vals = []
        for k, (ns, vs) in series.items():
            vals.append(f"{vs[ns.index(n)]:11.2f}" if n in ns else f"{'-':>11}")
        print(f"{n:8d} " + " ".join(vals))
    print(f"plot: {png} {svg}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
