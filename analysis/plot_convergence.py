#!/usr/bin/python3
"""Plots convergence: the share of nodes that delivered a broadcast vs time since it started
(left) and vs round (right), one line per scenario, mode, engine and node count.

Inputs: output folders of `mixcast-sim run` (or of the testbed) and/or tidy CSVs of sweep.py.
Measured broadcasts only (no warm-up); the share is of the expected deliveries (live nodes x
broadcasts), the origin's own delivery at time 0, round 0 included. Runs of the same scenario,
mode, engine and size with several seeds are averaged. Writes PREFIX.png, PREFIX.svg and
PREFIX.json (the plotted numbers).

Examples:
  analysis/plot_convergence.py results/default                    # writes results/default/convergence.*
  analysis/plot_convergence.py results/lan-tcp results/lan-mixed --out results/plots/lan
  analysis/plot_convergence.py --csv results/sweep/lan.csv --nodes 64 --out results/plots/conv
"""
from __future__ import annotations

import argparse
import json
import os
import sys
from collections import defaultdict

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import _bootstrap  # noqa: E402

PROG = "plot_convergence.py"


def parse_args(argv):
    p = argparse.ArgumentParser(prog=PROG, description=__doc__.split("\n\n")[0],
                                epilog=__doc__.split("\n\n", 1)[1], formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("results", nargs="*", metavar="RESULT_DIR", help="output folders of mixcast-sim run")
    p.add_argument("--csv", action="append", default=[], metavar="FILE", help="a tidy CSV of sweep.py (repeatable)")
    p.add_argument("--out", metavar="PREFIX", default=None,
                   help="output prefix (default: RESULT_DIR/convergence for one folder, else "
                        "results/plots/convergence)")
    p.add_argument("--scenario", action="append", default=None, metavar="NAME", help="only this scenario (repeatable)")
    p.add_argument("--mode", type=_bootstrap.choice_list(("tcp", "mixed")), default=None, metavar="MODE,...",
                   help="only these modes")
    p.add_argument("--engine", type=_bootstrap.choice_list(("model", "ns3", "real")), default=None,
                   metavar="ENGINE,...", help="only these engines")
    p.add_argument("--nodes", type=_bootstrap.int_list, default=None, metavar="N,...", help="only these node counts")
    p.add_argument("--log-time", action="store_true", help="logarithmic time axis")
    _bootstrap.add_build_dir_arg(p)
    a = p.parse_args(argv)
    if not a.results and not a.csv:
        p.error("give at least one RESULT_DIR or --csv FILE")
    return a


def curves_from_rows(rows, scenario=None, mode=None, engine=None, nodes=None):
    """{label: {"by_time": (times, shares), "by_round": (rounds, shares), "seeds": k}} from tidy rows."""
    runs = defaultdict(lambda: {"by_round": {}, "by_time": {}})
    for r in rows:
        if r["metric"] not in ("delivered_by_round", "delivered_by_time"):
            continue
        if scenario and r["scenario"] not in scenario or mode and r["mode"] not in mode:
            continue
        if engine and r["engine"] not in engine or nodes and r["nodes"] not in nodes:
            continue
        group = (r["scenario"], r["mode"], r["engine"], r["nodes"])
        kind = "by_round" if r["metric"] == "delivered_by_round" else "by_time"
        if kind == "by_round":
            runs[group + (r["seed"],)][kind][int(r["x"])] = r["value"]
        else:
            runs[group + (r["seed"],)][kind][round(r["value"], 9)] = r["x"]  # share -> time reached
    groups = defaultdict(list)
    for key, data in runs.items():
        groups[key[:4]].append(data)

    curves = {}
    for (scen, md, eng, n), seeds in sorted(groups.items()):
        top = max((max(d["by_round"]) for d in seeds if d["by_round"]), default=0)
        by_round_x = list(range(top + 1))
        by_round_y = []
        for x in by_round_x:
            vals = []
            for d in seeds:
                # A run that finished earlier stays at its final share.
                done = [v for k, v in d["by_round"].items() if k <= x]
                vals.append(max(done) if done else 0.0)
            by_round_y.append(sum(vals) / len(vals))
        shares = sorted(set.intersection(*[set(d["by_time"]) for d in seeds])) if seeds else []
        by_time_x = [sum(d["by_time"][s] for d in seeds) / len(seeds) for s in shares]
        label = f"{scen} {md} ({eng}, n={n}" + (f", mean of {len(seeds)} seeds)" if len(seeds) > 1 else ")")
        curves[label] = {"by_time": (by_time_x, shares), "by_round": (by_round_x, by_round_y), "seeds": len(seeds),
                         "scenario": scen, "mode": md, "engine": eng, "nodes": n}
    return curves


def make_figure(curves, log_time=False):
    from mixcast.plots import plt

    fig, (ax_t, ax_r) = plt.subplots(1, 2, figsize=(11, 4.5))
    for i, (label, c) in enumerate(curves.items()):
        color = f"C{i % 10}"
        style = "-" if c["mode"] == "tcp" else "--"
        tx, ty = c["by_time"]
        # The origin's own delivery is at t = 0: start each curve there.
        ax_t.plot([0.0] + [t * 1e3 for t in tx], [0.0] + list(ty), drawstyle="steps-post", color=color,
                  linestyle=style, label=label)
        rx, ry = c["by_round"]
        ax_r.plot(rx, ry, marker="o", markersize=3, color=color, linestyle=style, label=label)
    ax_t.set_xlabel("time since the broadcast started (ms)")
    ax_t.set_ylabel("share of nodes that delivered")
    ax_t.set_title("vs time")
    if log_time:
        ax_t.set_xscale("symlog", linthresh=0.01)
    ax_r.set_xlabel("round")
    ax_r.set_title("vs round")
    ax_r.xaxis.get_major_locator().set_params(integer=True)
    for ax in (ax_t, ax_r):
        ax.set_ylim(-0.02, 1.02)
    fig.suptitle("Convergence: share of nodes that delivered each broadcast")
    fig.tight_layout()
    # Below both panels: long labels would hide the curves inside them.
    handles, labels = ax_r.get_legend_handles_labels()
    fig.legend(handles, labels, loc="upper center", bbox_to_anchor=(0.5, 0.0), ncol=2, fontsize=8, frameon=False)
    return fig


def main(argv=None) -> int:
    a = parse_args(sys.argv[1:] if argv is None else argv)
    mixcast = _bootstrap.import_mixcast(PROG, a.build_dir)
    from mixcast import plots, tidy

    out = a.out or (os.path.join(a.results[0], "convergence") if len(a.results) == 1 and not a.csv
                    else "results/plots/convergence")
    _bootstrap.check_output(PROG, out + ".png")
    rows = []
    for d in a.results:
        try:
            rows += tidy.records(tidy.rows_from_result(mixcast.load_results(d)))
        except (OSError, ValueError) as e:
            _bootstrap.fail(PROG, str(e))
    for path in a.csv:
        try:
            rows += tidy.read_tidy(path)
        except (OSError, ValueError) as e:
            _bootstrap.fail(PROG, str(e))
    curves = curves_from_rows(rows, a.scenario, a.mode, a.engine, a.nodes)
    if not curves:
        _bootstrap.fail(PROG, "no runs match the filters (--scenario/--mode/--engine/--nodes)")
    fig = make_figure(curves, a.log_time)
    png, svg = plots.save_figure(fig, out)
    with open(out + ".json", "w") as f:
        json.dump({k: {"by_time_s": c["by_time"], "by_round": c["by_round"], "seeds": c["seeds"]}
                   for k, c in curves.items()}, f, indent=1)
    for label, c in curves.items():
        rx, ry = c["by_round"]
        tx, ty = c["by_time"]
        full = f"{tx[-1] * 1e3:.3f} ms" if ty and ty[-1] >= 1.0 else "never (not every node delivered)"
        print(f"{label}: all nodes by round {next((x for x, y in zip(rx, ry) if y >= 1.0), '-')}, by time {full}")
    print(f"plot: {png} {svg}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
