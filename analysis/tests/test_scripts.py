"""The analysis scripts: --help, bad input, sweeps that match mixcast-sim, plots with their series."""
import csv
import importlib.util
import json
import os
from collections import defaultdict

import pytest

from conftest import ANALYSIS, SCENARIOS, cli, cli_run, read_summary, script

SCRIPTS = ("sweep.py", "plot_rounds.py", "plot_convergence.py", "plot_bandwidth.py")


def load_script(name):
    spec = importlib.util.spec_from_file_location(name[:-3], os.path.join(ANALYSIS, name))
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def ok(p):
    assert p.returncode == 0, f"exit {p.returncode}\nstdout:\n{p.stdout}\nstderr:\n{p.stderr}"
    return p


def svg_text(path):
    with open(path) as f:
        return f.read()


def assert_plot_files(prefix):
    for ext in ("png", "svg"):
        path = f"{prefix}.{ext}"
        assert os.path.isfile(path) and os.path.getsize(path) > 1000, path
    with open(f"{prefix}.json") as f:
        assert json.load(f)
    with open(f"{prefix}.png", "rb") as f:
        assert f.read(8) == b"\x89PNG\r\n\x1a\n"
    assert svg_text(f"{prefix}.svg").lstrip().startswith("<?xml")


@pytest.mark.parametrize("name", SCRIPTS)
def test_help(name):
    p = ok(script(name, "--help"))
    assert p.stdout.startswith("usage: " + name) and "Examples:" in p.stdout


@pytest.mark.parametrize("args,message", [
    (("sweep.py", "scenarios/nope.yaml", "--out", "{tmp}/x.csv"), "scenario file 'scenarios/nope.yaml' does not exist"),
    (("sweep.py", "scenarios/lan.yaml", "--nodes", "8,0", "--out", "{tmp}/x.csv"), "--nodes"),
    (("sweep.py", "scenarios/lan.yaml", "--modes", "tcp,udp", "--out", "{tmp}/x.csv"), "'udp' is not one of"),
    (("sweep.py", "scenarios/lan.yaml", "--set", "protocol.moed=1", "--out", "{tmp}/x.csv"), 'unknown key "moed"'),
    (("sweep.py", "scale:x", "--nodes", "8", "--out", "{tmp}/x.csv"), "scale:SIZE"),
    (("sweep.py", "scenarios/lan.yaml", "--out", "{tmp}"), "is a directory"),
    (("plot_rounds.py", "--csv", "{tmp}/missing.csv", "--out", "{tmp}/r"), "missing.csv: no such file"),
    (("plot_rounds.py", "--csv", "scenarios/lan.yaml", "--out", "{tmp}/r"), "not a mixcast tidy CSV"),
    (("plot_convergence.py",), "give at least one RESULT_DIR"),
    (("plot_convergence.py", "{tmp}", "--out", "{tmp}/c"), "summary.json: missing"),
    (("plot_bandwidth.py", "--scenario", "scenarios/none.yaml", "--out", "{tmp}/b"), "does not exist"),
])
def test_bad_input_exits_2_naming_the_problem(tmp_path, args, message):
    args = [a.format(tmp=tmp_path) for a in args]
    p = script(*args)
    assert p.returncode == 2, p.stderr
    assert message in p.stderr
    assert "Traceback" not in p.stderr


def test_plot_bandwidth_refuses_model_results(tmp_path):
    d = cli_run(str(tmp_path / "m"), os.path.join(SCENARIOS, "lan.yaml"), "model", nodes=8)
    p = script("plot_bandwidth.py", d, "--out", tmp_path / "b")
    assert p.returncode == 2 and "no links.csv" in p.stderr


def read_cli_sweep(path):
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def test_sweep_on_dask_matches_cli_sweep(tmp_path):
    """A grid on the local Dask cluster gives the figures of `mixcast-sim sweep` for every run."""
    from mixcast import tidy
    grid = ["--nodes", "16,40", "--seeds", "2"]
    out = tmp_path / "sweep.csv"
    p = ok(script("sweep.py", "scenarios/lan.yaml", "scenarios/multi-subnet.yaml", *grid, "--modes", "tcp,mixed",
                  "--workers", "2", "--out", out))
    assert "16 runs" in p.stdout and "local Dask cluster, 2 workers" in p.stdout
    rows = tidy.read_tidy(out)
    checked = 0
    for name in ("lan", "multi-subnet"):
        cli_dir = tmp_path / f"cli-{name}"
        cli("sweep", os.path.join(SCENARIOS, f"{name}.yaml"), "--engine", "model", *grid, "--modes", "tcp,mixed",
            "--out", cli_dir, "--quiet")
        for c in read_cli_sweep(cli_dir / "sweep.csv"):
            mine = {r["metric"]: r["value"] for r in tidy.select(rows, scenario=name, mode=c["mode"],
                                                                    nodes=int(c["nodes"]), seed=int(c["seed"]),
                                                                    engine="model", series="")}
            for col in ("rounds_max", "rounds_p50", "rounds_p99", "lower_bound", "delivery_ratio", "duplicates",
                        "tcp_messages", "multicast_messages", "tcp_bytes", "multicast_bytes", "islands",
                        "repairs", "forced_tcp"):
                assert mine[col] == float(c[col]), (name, c["mode"], c["nodes"], c["seed"], col)
            for col in ("ttld_p50_s", "ttld_p99_s", "ttld_max_s"):
                assert mine[col] == pytest.approx(float(c[col]), abs=1e-9)
            checked += 1
    assert checked == 16


def test_sweep_ns3_runs_match_cli_runs(tmp_path, has_ns3):
    if not has_ns3:
        pytest.skip("this mixcast module was built without ns-3 (libns3-dev 3.37 not found at build time)")
    from mixcast import tidy
    out = tmp_path / "ns3.csv"
    ok(script("sweep.py", "scenarios/multi-subnet.yaml", "--nodes", "16", "--seeds", "2", "--engines", "ns3,model",
              "--sequential", "--out", out))
    rows = tidy.read_tidy(out)
    for mode in ("tcp", "mixed"):
        for seed in (2, 3):  # multi-subnet.yaml has seed 2
            d = cli_run(str(tmp_path / f"{mode}-{seed}"), os.path.join(SCENARIOS, "multi-subnet.yaml"), "ns3", mode,
                        seed, 16)
            s = read_summary(d)
            mine = tidy.select(rows, engine="ns3", mode=mode, seed=seed)
            scalar = {r["metric"]: r["value"] for r in mine if r["series"] == ""}
            assert scalar["rounds_max"] == s["rounds"]["max"] and scalar["tcp_bytes"] == s["bytes"]["tcp"]
            assert scalar["ttld_max_s"] == s["time_to_last_delivery_s"]["max"]
            # Per-link bytes per round agree with links.csv.
            expect = defaultdict(float)
            with open(os.path.join(d, "links.csv"), newline="") as f:
                for r in csv.DictReader(f):
                    if int(r["round"]) > 0:
                        expect[(r["link"], int(r["round"]))] += int(r["bytes"]) / s["broadcasts"]
            got = {(r["series"], int(r["x"])): r["value"] for r in mine if r["metric"] == "link_bytes"}
            assert set(got) == {k for k, v in expect.items()}
            for k, v in expect.items():
                assert got[k] == pytest.approx(v)


def _worker_http_hosts(dask_worker):
    from distributed.comm.utils import get_tcp_server_addresses
    return [a[0] for a in get_tcp_server_addresses(dask_worker.http_server)]


def test_sweep_with_scheduler_address(tmp_path):
    """--scheduler ADDRESS: a cluster started apart (here a local one on 127.0.0.1)."""
    from distributed import Client
    from distributed.comm.utils import get_tcp_server_addresses
    from mixcast import sweeping, tidy
    cluster = sweeping.start_local_cluster(1)
    try:
        assert cluster.scheduler_address.startswith("tcp://127.0.0.1:")
        out = tmp_path / "s.csv"
        p = ok(script("sweep.py", "scale:16", "--nodes", "20,50", "--modes", "mixed", "--scheduler",
                      cluster.scheduler_address, "--out", out))
        assert cluster.scheduler_address in p.stdout
        with Client(cluster) as c:  # the runs happened on that cluster
            prefixes = c.run_on_scheduler(lambda dask_scheduler: sorted(dask_scheduler.task_prefixes))
            assert any(p.startswith("mixcast-run") for p in prefixes), prefixes
            # Everything listens on loopback only: comms, nannies and the HTTP status servers.
            hosts = {a[0] for a in get_tcp_server_addresses(cluster.scheduler.http_server)}
            for w in c.scheduler_info()["workers"].values():
                hosts |= {w["host"], w["nanny"].split("//")[1].rsplit(":", 1)[0]}
            for addrs in c.run(_worker_http_hosts).values():
                hosts |= set(addrs)
            assert hosts == {"127.0.0.1"}
        rows = tidy.read_tidy(out)
        assert {r["nodes"] for r in rows} == {20, 50} and {r["scenario"] for r in rows} == {"scale-s16"}
        bounds = {r["nodes"]: r["value"] for r in rows if r["metric"] == "lower_bound"}
        assert bounds == {20: 1 + 1, 50: 2 + 1}  # 2 and 4 subnets: ceil(log2 2)+1, ceil(log2 4)+1
    finally:
        cluster.close()
    p = script("sweep.py", "scenarios/lan.yaml", "--scheduler", "tcp://127.0.0.1:1", "--out", tmp_path / "x.csv")
    assert p.returncode == 2 and "cannot use the Dask scheduler" in p.stderr


def test_plot_rounds_from_runs(tmp_path):
    """plot_rounds.py runs its grid (here small, one by one) and plots every series from the runs."""
    prefix = tmp_path / "rounds"
    p = ok(script("plot_rounds.py", "--nodes", "8,100,1000", "--mixed-max", "100", "--subnet-size", "32",
                  "--sequential", "--out", prefix))
    assert_plot_files(prefix)
    with open(f"{prefix}.json") as f:
        data = json.load(f)
    mod = load_script("plot_rounds.py")
    series = {v["key"]: (v["nodes"], v["rounds"]) for v in data["series"].values()}
    assert set(series) == {"tcp", "mixed", "tcp_bound", "mixed_bound", "gossip", "sequential"}
    assert series["tcp"][0] == [8, 100, 1000] and series["mixed"][0] == [8, 100]
    # The points are the runs' figures (the tidy CSV kept next to the plot), not formulas.
    from mixcast import tidy
    rows = tidy.read_tidy(f"{prefix}.csv")
    for key, (mode, metric) in {"tcp": ("tcp", "rounds_max"), "mixed": ("mixed", "rounds_max"),
                                "tcp_bound": ("tcp", "lower_bound"), "mixed_bound": ("mixed", "lower_bound")}.items():
        for n, v in zip(*series[key]):
            (row,) = tidy.select(rows, mode=mode, nodes=n, metric=metric)
            assert row["value"] == v
    assert series["sequential"][1] == [7, 99, 999]
    svg = svg_text(f"{prefix}.svg")
    for label in mod.LABELS.values():
        assert label in svg
    # The figure function draws exactly those series.
    from mixcast import plots
    fig = mod.make_figure({k: v for k, v in series.items()}, "t")
    assert sorted(plots.line_labels(fig)) == sorted(mod.LABELS.values())
    assert "1000" in p.stdout


def test_plot_rounds_from_sweep_csv(tmp_path):
    out = tmp_path / "s.csv"
    ok(script("sweep.py", "scale:64", "--nodes", "64,128", "--out", out, "--sequential"))
    p = ok(script("plot_rounds.py", "--csv", out, "--out", tmp_path / "r"))
    assert_plot_files(tmp_path / "r")
    p = script("plot_rounds.py", "--csv", out, "--scenario", "lan", "--out", tmp_path / "r2")
    assert p.returncode == 2 and "'lan' is not in the CSV" in p.stderr


def test_plot_convergence_of_cli_folders(tmp_path):
    ms = os.path.join(SCENARIOS, "multi-subnet.yaml")
    tcp = cli_run(str(tmp_path / "tcp"), ms, "model", "tcp", 4, 64)
    mixed = cli_run(str(tmp_path / "mixed"), ms, "model", "mixed", 4, 64)
    p = ok(script("plot_convergence.py", tcp, mixed, "--out", tmp_path / "conv"))
    assert "multi-subnet tcp (model, n=64): all nodes by round" in p.stdout
    assert_plot_files(tmp_path / "conv")
    with open(tmp_path / "conv.json") as f:
        data = json.load(f)
    labels = {"multi-subnet tcp (model, n=64)", "multi-subnet mixed (model, n=64)"}
    assert set(data) == labels
    svg = svg_text(tmp_path / "conv.svg")
    for label in labels:
        assert label in svg
    for mode, folder in (("tcp", tcp), ("mixed", mixed)):
        s = read_summary(folder)
        rounds, share = data[f"multi-subnet {mode} (model, n=64)"]["by_round"]
        assert rounds[-1] == s["rounds"]["max"] and share[-1] == pytest.approx(s["delivery_ratio"])
        times, tshare = data[f"multi-subnet {mode} (model, n=64)"]["by_time_s"]
        assert times[-1] == pytest.approx(s["time_to_last_delivery_s"]["max"]) and tshare[-1] == 1.0
    # One folder: the plot goes into it (what scripts/run.sh does).
    ok(script("plot_convergence.py", tcp))
    assert_plot_files(os.path.join(tcp, "convergence"))


def test_plot_convergence_from_sweep_averages_seeds(tmp_path):
    out = tmp_path / "s.csv"
    ok(script("sweep.py", "scenarios/lan.yaml", "--nodes", "32", "--seeds", "3", "--out", out, "--sequential"))
    ok(script("plot_convergence.py", "--csv", out, "--mode", "tcp", "--out", tmp_path / "c"))
    with open(tmp_path / "c.json") as f:
        data = json.load(f)
    assert list(data) == ["lan tcp (model, n=32, mean of 3 seeds)"]
    assert data["lan tcp (model, n=32, mean of 3 seeds)"]["by_round"][1][-1] == 1.0


def test_plot_bandwidth_of_cli_ns3_folders(tmp_path, has_ns3):
    if not has_ns3:
        pytest.skip("this mixcast module was built without ns-3 (libns3-dev 3.37 not found at build time)")
    path = os.path.join(SCENARIOS, "multi-dc.yaml")
    folders = {m: cli_run(str(tmp_path / m), path, "ns3", m, 3, 30) for m in ("tcp", "mixed")}
    p = ok(script("plot_bandwidth.py", folders["tcp"], folders["mixed"], "--out", tmp_path / "bw"))
    assert_plot_files(tmp_path / "bw")
    with open(tmp_path / "bw.json") as f:
        data = json.load(f)
    mod = load_script("plot_bandwidth.py")
    expected = {mod.label(k, m, w) for k in ("LAN", "WAN") for m in ("tcp", "mixed") for w in ("busiest", "mean")}
    assert set(data) == expected
    svg = svg_text(tmp_path / "bw.svg")
    assert all(label in svg for label in expected)
    # Recompute the busiest LAN link per round straight from links.csv.
    for mode, folder in folders.items():
        per = defaultdict(lambda: defaultdict(float))
        broadcasts = read_summary(folder)["broadcasts"]
        with open(os.path.join(folder, "links.csv"), newline="") as f:
            for r in csv.DictReader(f):
                if r["kind"] == "LAN" and int(r["round"]) > 0:
                    per[int(r["round"])][r["link"]] += int(r["bytes"]) / broadcasts
        got = data[mod.label("LAN", mode, "busiest")]
        assert got["rounds"] == list(range(1, max(per) + 1))
        assert got["bytes_per_broadcast"] == pytest.approx([max(per[x].values(), default=0.0) for x in got["rounds"]])
    assert "busiest link per round" in p.stdout
