#!/usr/bin/python3
"""Plots bytes per round per link, LAN vs WAN (and NAT), TCP mode vs mixed mode: does the TCP
broadcast's bandwidth grow each round (the seed's worry), and what does multicast save?

Bytes are what the ns-3 engine counts on each link (frames with their headers, by the round of
the broadcast message they carry), per measured broadcast. For each link kind the plot shows the
busiest link of that kind in each round and the mean over the links of that kind.

Inputs: output folders of `mixcast-sim run --engine ns3` (they hold links.csv) and/or tidy CSVs
of sweep.py with ns3 runs. Without inputs it runs SCENARIO in TCP and in mixed mode on the ns-3
engine first (each run in its own process) and keeps the folders next to the plot. Writes
PREFIX.png, PREFIX.svg and PREFIX.json (the plotted numbers).

Examples:
  analysis/plot_bandwidth.py                                     # scenarios/multi-dc.yaml, both modes
  analysis/plot_bandwidth.py --scenario scenarios/nat.yaml --nodes 64 --out results/plots/nat-bw
  analysis/plot_bandwidth.py results/ms-tcp results/ms-mixed --out results/plots/ms-bw
"""
from __future__ import annotations

import argparse
import json
import os
import sys
from collections import defaultdict

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import _bootstrap  # noqa: E402

PROG = "plot_bandwidth.py"
KINDS = ("LAN", "WAN", "NAT")


def parse_args(argv):
    p = argparse.ArgumentParser(prog=PROG, description=__doc__.split("\n\n")[0],
                                epilog=__doc__.split("\n\n", 1)[1], formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("results", nargs="*", metavar="RESULT_DIR", help="output folders of mixcast-sim run --engine ns3")
    p.add_argument("--csv", action="append", default=[], metavar="FILE", help="a tidy CSV of sweep.py (repeatable)")
    p.add_argument("--scenario", default="scenarios/multi-dc.yaml", metavar="FILE",
                   help="without inputs: the scenario to run (default scenarios/multi-dc.yaml)")
    p.add_argument("--nodes", type=_bootstrap.positive_int, default=None, metavar="N",
                   help="without inputs: rescale the scenario to N nodes")
    p.add_argument("--seed", type=int, default=None, metavar="SEED", help="without inputs: the seed")
    p.add_argument("--set", dest="sets", action="append", default=[], metavar="KEY=VALUE",
                   help="without inputs: override a scenario key (repeatable)")
    p.add_argument("--out", metavar="PREFIX", default="results/plots/bandwidth",
                   help="output prefix (default results/plots/bandwidth)")
    p.add_argument("--only-scenario", default=None, metavar="NAME",
                   help="with several scenarios in the inputs: plot this one (scenario name)")
    p.add_argument("--only-nodes", type=_bootstrap.positive_int, default=None, metavar="N",
                   help="with several node counts in the inputs: plot this one")
    p.add_argument("--linear", action="store_true", help="linear byte axis (default logarithmic)")
    _bootstrap.add_build_dir_arg(p)
    a = p.parse_args(argv)
    if a.seed is not None and a.seed < 0:
        p.error(f"--seed must be >= 0, got {a.seed}")
    for s in a.sets:
        if "=" not in s or s.startswith("="):
            p.error(f"--set expects KEY=VALUE, got '{s}'")
    return a


def kind_of(link: str) -> str:
    return link.split(":", 1)[0].upper()


def series_from_rows(rows):
    """{(kind, mode): {"busiest": (rounds, bytes), "mean": (rounds, bytes), "links": k, "runs": m}}:
    per round, the busiest link of that kind and the mean over the kind's links (means over runs)."""
    # (kind, mode) -> run -> round -> link -> bytes
    per = defaultdict(lambda: defaultdict(lambda: defaultdict(dict)))
    links = defaultdict(set)
    for r in rows:
        if r["metric"] != "link_bytes":
            continue
        kind = kind_of(r["series"])
        run = (r["scenario"], r["engine"], r["nodes"], r["seed"])
        per[(kind, r["mode"])][run][int(r["x"])][r["series"]] = r["value"]
        links[(kind, r["mode"], run)].add(r["series"])
    out = {}
    for (kind, mode), runs in sorted(per.items()):
        top = max(max(rounds) for rounds in runs.values())
        xs = list(range(1, top + 1))
        busiest, mean = [], []
        for x in xs:
            b, m = [], []
            for run, rounds in runs.items():
                vals = list(rounds.get(x, {}).values())
                count = len(links[(kind, mode, run)])
                b.append(max(vals) if vals else 0.0)
                m.append(sum(vals) / count if count else 0.0)
            busiest.append(sum(b) / len(b))
            mean.append(sum(m) / len(m))
        n_links = max(len(links[(kind, mode, run)]) for run in runs)
        out[(kind, mode)] = {"busiest": (xs, busiest), "mean": (xs, mean), "links": n_links, "runs": len(runs)}
    return out


def label(kind, mode, which):
    return f"{mode}: {'busiest' if which == 'busiest' else 'mean per'} {kind} link"


def make_figure(series, title, linear=False):
    from mixcast.plots import plt

    kinds = [k for k in KINDS if any(key[0] == k for key in series)]
    fig, axes = plt.subplots(1, len(kinds), figsize=(5.5 * len(kinds), 4.5), squeeze=False)
    colors = {"tcp": "tab:blue", "mixed": "tab:orange"}
    for ax, kind in zip(axes[0], kinds):
        for mode in ("tcp", "mixed"):
            s = series.get((kind, mode))
            if not s:
                continue
            for which, style in (("busiest", "-"), ("mean", "--")):
                xs, ys = s[which]
                # Zero bytes cannot sit on a log axis: leave those rounds out of the line.
                pts = [(x, y) for x, y in zip(xs, ys) if linear or y > 0]
                ax.plot([p[0] for p in pts], [p[1] for p in pts], linestyle=style, marker="o", markersize=3,
                        color=colors[mode], label=label(kind, mode, which))
        n = max(series[(kind, m)]["links"] for m in ("tcp", "mixed") if (kind, m) in series)
        ax.set_title(f"{kind} links ({n})")
        ax.set_xlabel("round")
        ax.set_ylabel("bytes per broadcast")
        ax.xaxis.get_major_locator().set_params(integer=True)
        if not linear:
            ax.set_yscale("log")
        ax.legend(fontsize=7)
    fig.suptitle(title)
    fig.tight_layout()
    return fig


def run_both_modes(a, mixcast):
    """Runs the scenario in TCP and mixed mode on ns-3, each in a fresh process; saves the folders."""
    if not mixcast.has_ns3:
        _bootstrap.fail(PROG, "this mixcast module was built without ns-3, and only the ns-3 engine counts bytes per "
                              "link: give RESULT_DIRs of ns3 runs, or build with libns3-dev")
    results = []
    for mode in ("tcp", "mixed"):
        try:
            s = mixcast.load_scenario(a.scenario, a.sets, nodes=a.nodes, mode=mode, seed=a.seed)
        except mixcast.ScenarioError as e:
            _bootstrap.fail(PROG, str(e))
        print(f"{PROG}: running {s.name} ({s.nodes} nodes) in {mode} mode on ns-3 ...", file=sys.stderr, flush=True)
        bar = ProgressLine(f"ns3 {mode}")
        folder = f"{a.out}-{mode}"
        r = mixcast.run(s, "ns3", isolate=True, progress=bar, out=folder)
        bar.close()
        print(f"{PROG}: {mode}: rounds max {r.rounds['max']} (bound {r.lower_bound}), results: {folder}")
        results.append(r)
    return results


class ProgressLine:
    def __init__(self, label):
        self.label, self.tty = label, sys.stderr.isatty()

    def __call__(self, sim_s, done, events):
        if self.tty:
            sys.stderr.write(f"\r[{self.label}] sim {sim_s:.3f} s, {done * 100:5.1f}% delivered, {events} events   ")
            sys.stderr.flush()

    def close(self):
        if self.tty:
            sys.stderr.write("\n")


def main(argv=None) -> int:
    a = parse_args(sys.argv[1:] if argv is None else argv)
    mixcast = _bootstrap.import_mixcast(PROG, a.build_dir)
    from mixcast import plots, tidy

    _bootstrap.check_output(PROG, a.out + ".png")
    rows = []
    if not a.results and not a.csv:
        if not os.path.isfile(a.scenario):
            _bootstrap.fail(PROG, f"scenario file '{a.scenario}' does not exist or is not a file")
        for r in run_both_modes(a, mixcast):
            rows += tidy.records(tidy.rows_from_result(r))
    for d in a.results:
        try:
            r = mixcast.load_results(d)
        except (OSError, ValueError) as e:
            _bootstrap.fail(PROG, str(e))
        if len(r.links) == 0:
            _bootstrap.fail(PROG, f"{d}: no links.csv (bytes per link come from the ns-3 engine: run with --engine ns3)")
        rows += tidy.records(tidy.rows_from_result(r))
    for path in a.csv:
        try:
            rows += tidy.read_tidy(path)
        except (OSError, ValueError) as e:
            _bootstrap.fail(PROG, str(e))
    rows = [r for r in rows if r["metric"] == "link_bytes"]
    if not rows:
        _bootstrap.fail(PROG, "no bytes per link in the inputs (metric link_bytes: ns-3 runs only)")
    if a.only_scenario is not None:
        rows = [r for r in rows if r["scenario"] == a.only_scenario]
    if a.only_nodes is not None:
        rows = [r for r in rows if r["nodes"] == a.only_nodes]
    # Seeds are averaged; different topologies are not: their links differ.
    topologies = sorted({(r["scenario"], r["nodes"]) for r in rows})
    if len(topologies) != 1:
        found = ", ".join(f"{s} n={n}" for s, n in topologies) or "none left after the filters"
        _bootstrap.fail(PROG, f"the inputs must hold one scenario at one size, found: {found} "
                              "(pick with --only-scenario / --only-nodes)")
    series = series_from_rows(rows)
    (scen, nodes), = topologies
    seeds = sorted({r["seed"] for r in rows})
    title = (f"Bytes per round per link ({scen}, {nodes} nodes, ns-3"
             + (f", mean of {len(seeds)} seeds)" if len(seeds) > 1 else f", seed {seeds[0]})"))
    fig = make_figure(series, title, a.linear)
    png, svg = plots.save_figure(fig, a.out)
    with open(a.out + ".json", "w") as f:
        json.dump({label(k, m, w): {"rounds": s[w][0], "bytes_per_broadcast": s[w][1]}
                   for (k, m), s in series.items() for w in ("busiest", "mean")}, f, indent=1)
    for (kind, mode), s in series.items():
        xs, ys = s["busiest"]
        print(f"{mode:>5} {kind}: busiest link per round " + ", ".join(f"r{x} {y:.0f}" for x, y in zip(xs, ys)))
    print(f"plot: {png} {svg}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
