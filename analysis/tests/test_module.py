"""The mixcast module against mixcast-sim: same scenario and seed, same results."""
import math
import os
import re
import subprocess
import sys
import textwrap

import numpy as np
import pytest

from conftest import BUILD, ROOT, SCENARIOS, cli, cli_run, env_with_module, read_bytes, read_summary, script

OUTPUT_FILES = ("deliveries.csv", "broadcasts.csv")


def scenario_path(name):
    return os.path.join(SCENARIOS, name)


def assert_same_folder(a, b, files=OUTPUT_FILES):
    assert read_summary(a) == read_summary(b)
    for f in files:
        assert read_bytes(os.path.join(a, f)) == read_bytes(os.path.join(b, f)), f


def assert_arrays_match_folder(result, folder, mixcast):
    """The Result's numpy arrays hold what the CLI wrote (CSV times carry 9 decimals)."""
    loaded = mixcast.load_results(folder)
    for name in ("broadcast", "node", "round", "channel"):
        assert np.array_equal(result.deliveries[name], loaded.deliveries[name]), name
    assert np.allclose(result.deliveries["time_s"], loaded.deliveries["time_s"], rtol=0, atol=1e-9)
    for name in ("broadcast", "origin", "seq", "warmup"):
        assert np.array_equal(result.broadcasts[name], loaded.broadcasts[name]), name
    assert len(result.deliveries) > 0


# (scenario, mode, seed, nodes, overrides): every shipped topology, both modes, loss and warm-up.
CASES = [
    ("lan.yaml", "tcp", 3, None, []),
    ("lan.yaml", "mixed", 4, 40, ["workload.broadcasts=4"]),
    ("multi-subnet.yaml", "mixed", 5, 48, []),
    ("multi-dc.yaml", "tcp", 6, 60, []),
    ("nat.yaml", "mixed", 7, None, ["protocol.nat_links=3"]),
    ("lossy.yaml", "mixed", 8, 64, ["crashes=[{at: 0.6s, count: 3}]"]),
]


@pytest.mark.parametrize("name,mode,seed,nodes,sets", CASES, ids=[f"{c[0]}-{c[1]}" for c in CASES])
def test_model_run_matches_cli(tmp_path, mixcast, name, mode, seed, nodes, sets):
    path = scenario_path(name)
    cli_dir = cli_run(str(tmp_path / "cli"), path, "model", mode, seed, nodes, sets)
    s = mixcast.load_scenario(path, sets, nodes=nodes, mode=mode, seed=seed)
    r = mixcast.run(s, "model", out=tmp_path / "py")
    assert_same_folder(cli_dir, str(tmp_path / "py"))
    assert_arrays_match_folder(r, cli_dir, mixcast)
    summary = read_summary(cli_dir)
    got = dict(r.summary)
    got.pop("wall_s")
    assert got == summary
    assert (r.mode, r.seed, r.engine) == (mode, seed, "model")
    assert r.nodes == s.nodes == summary["nodes"]


def test_overrides_applied_later_match_cli(tmp_path, mixcast):
    path = scenario_path("multi-subnet.yaml")
    base = mixcast.load_scenario(path, nodes=40, mode="mixed", seed=11)
    s = base.with_overrides(["workload.broadcasts=3", "datacenters.0.subnets.1.multicast=false"])
    assert (s.broadcasts, s.nodes, s.mode, s.seed) == (3, 40, "mixed", 11)
    assert s.islands > base.islands  # the subnet without multicast is now one island per node
    cli_dir = cli_run(str(tmp_path / "cli"), path, "model", "mixed", 11, 40,
                      ["workload.broadcasts=3", "datacenters.0.subnets.1.multicast=false"])
    mixcast.run(s, out=tmp_path / "py")
    assert_same_folder(cli_dir, str(tmp_path / "py"))
    assert s.rescaled(20).nodes == 20


def test_lower_bounds_match_cli_check(mixcast):
    for name, nodes in (("multi-subnet.yaml", 1000), ("nat.yaml", 300), ("lan.yaml", 5)):
        out = cli("check", scenario_path(name), "--nodes", nodes).stdout
        m = re.search(r"tcp mode ceil\(log2 (\d+)\) = (\d+); mixed mode (\d+) multicast islands? -> "
                      r"ceil\(log2 \d+\)\+1 = (\d+)", out)
        assert m, out
        s = mixcast.load_scenario(scenario_path(name), nodes=nodes)
        assert s.nodes == int(m.group(1))
        assert s.islands == int(m.group(3))
        assert s.lower_bounds() == {"tcp": int(m.group(2)), "mixed": int(m.group(4))}
    for n in (1, 2, 3, 4, 5, 1023, 1024, 1025, 100000):
        assert mixcast.lower_bound_tcp(n) == math.ceil(math.log2(n))
        assert mixcast.lower_bound_mixed(n) == math.ceil(math.log2(n)) + 1


def test_run_lower_bound_is_the_summary_one(mixcast):
    s = mixcast.load_scenario(scenario_path("multi-subnet.yaml"), nodes=64, mode="mixed", seed=2)
    r = mixcast.run(s)
    assert r.lower_bound == mixcast.lower_bound_mixed(r.summary["islands"]) == s.lower_bounds()["mixed"]
    assert r.rounds["max"] >= r.lower_bound


def test_scenario_errors_name_the_problem(mixcast, tmp_path):
    bad = "protocol.moed=mixed"
    with pytest.raises(mixcast.ScenarioError) as e:
        mixcast.load_scenario(scenario_path("lan.yaml"), [bad])
    assert isinstance(e.value, ValueError)
    p = cli("run", scenario_path("lan.yaml"), "--engine", "model", "--set", bad, "--out", tmp_path, check=False)
    assert p.returncode == 2
    assert str(e.value) in p.stderr  # the same message as the CLI's
    with pytest.raises(mixcast.ScenarioError, match="does not exist"):
        mixcast.load_scenario(tmp_path / "missing.yaml")
    with pytest.raises(mixcast.ScenarioError, match="nodes must be"):
        mixcast.load_scenario(scenario_path("lan.yaml"), nodes=0)
    with pytest.raises(mixcast.ScenarioError, match="mode must be"):
        mixcast.load_scenario(scenario_path("lan.yaml"), mode="udp")
    with pytest.raises(mixcast.ScenarioError, match="YAML syntax error"):
        mixcast.load_scenario_text("datacenters: [", "inline")
    with pytest.raises(ValueError, match="unknown engine"):
        mixcast.run(mixcast.load_scenario(scenario_path("lan.yaml")), "udp")


def test_scale_scenario_matches_cli(tmp_path, mixcast):
    text = mixcast.scale_scenario_yaml(1000, 64)
    sizes = [int(m) for m in re.findall(r"nodes: (\d+)", text)]
    assert len(sizes) == math.ceil(1000 / 64) and sum(sizes) == 1000 and max(sizes) - min(sizes) <= 1
    path = tmp_path / "scale.yaml"
    path.write_text(text)
    cli_dir = cli_run(str(tmp_path / "cli"), str(path), "model", "mixed", 3)
    s = mixcast.load_spec("scale:64", nodes=1000, mode="mixed", seed=3)
    assert (s.nodes, s.subnets, s.islands) == (1000, len(sizes), len(sizes))
    mixcast.run(s, out=tmp_path / "py")
    assert_same_folder(cli_dir, str(tmp_path / "py"))


def test_derived_series_are_consistent(mixcast):
    s = mixcast.load_scenario(scenario_path("lossy.yaml"), nodes=64, seed=3)
    r = mixcast.run(s)
    rounds, share = r.convergence_by_round()
    assert np.all(np.diff(share) >= 0) and rounds[-1] == r.rounds["max"]
    assert share[-1] == pytest.approx(r.summary["delivery_ratio"])
    times, tshare = r.convergence_by_time()
    assert tshare[-1] == pytest.approx(r.summary["delivery_ratio"])
    assert times[-1] == pytest.approx(r.summary["time_to_last_delivery_s"]["max"])
    t20, s20 = r.convergence_by_time(points=20)
    assert len(t20) <= 20 and np.all(np.diff(t20) >= 0)
    # Warm-up broadcasts are not measured.
    warm = set(r.broadcasts["broadcast"][r.broadcasts["warmup"]])
    assert warm and not warm & set(r.measured_deliveries()["broadcast"])


def test_result_pickles_without_the_cpp_object(mixcast):
    import pickle
    s = mixcast.load_scenario(scenario_path("lan.yaml"), nodes=16, seed=2)
    r = mixcast.run(s)
    back = pickle.loads(pickle.dumps(r))
    assert back.summary == r.summary
    assert np.array_equal(back.deliveries, r.deliveries)
    assert back.scenario.nodes == 16 and back.scenario.seed == 2
    with pytest.raises(ValueError, match="run in this process"):
        back.write("/nonexistent")


def test_load_results_rejects_other_folders(mixcast, tmp_path):
    with pytest.raises(FileNotFoundError, match="summary.json"):
        mixcast.load_results(tmp_path)
    cli_dir = cli_run(str(tmp_path / "cli"), scenario_path("lan.yaml"), "model", nodes=8)
    with open(os.path.join(cli_dir, "deliveries.csv"), "a") as f:
        f.write("1,2,3\n")
    with pytest.raises(ValueError, match=r"deliveries.csv:\d+: expected 5 fields"):
        mixcast.load_results(cli_dir)


def test_tidy_round_trip(mixcast, tmp_path):
    from mixcast import tidy
    r = mixcast.run(mixcast.load_scenario(scenario_path("multi-subnet.yaml"), nodes=32, mode="mixed", seed=1))
    rows = tidy.rows_from_result(r)
    tidy.write_tidy(tmp_path / "t.csv", rows)
    back = tidy.read_tidy(tmp_path / "t.csv")
    assert back == tidy.records(rows)
    one = {x["metric"]: x["value"] for x in back if x["series"] == "" and x["x"] is None}
    assert one["rounds_max"] == r.rounds["max"] and one["lower_bound"] == r.lower_bound
    assert one["subnets"] == 4 and one["islands"] == r.summary["islands"]


# --- ns-3: one run per process, so each check runs in a subprocess of its own --------------------

NS3_CHILD = textwrap.dedent("""
    import sys
    import mixcast
    s = mixcast.load_scenario(sys.argv[1], nodes=int(sys.argv[2]), mode=sys.argv[3], seed=int(sys.argv[4]))
    concurrent = []

    def progress(sim_s, done, events):
        # A second ns-3 run while the first one runs (from its own progress callback).
        if not concurrent:
            try:
                mixcast.run(s, "ns3")
                concurrent.append("ran")
            except mixcast.EngineBusyError as e:
                concurrent.append(str(e))

    r = mixcast.run(s, "ns3", out=sys.argv[5], progress=progress)
    print(len(r.links), r.summary["links"]["lan"]["bytes_per_broadcast"])
    print("concurrent:", concurrent[0])
    try:
        mixcast.run(s, "ns3")
    except mixcast.EngineBusyError as e:
        assert isinstance(e, RuntimeError)
        print("refused:", e)
""")


def ns3_or_skip(has_ns3):
    if not has_ns3:
        pytest.skip("this mixcast module was built without ns-3 (libns3-dev 3.37 not found at build time)")


@pytest.mark.parametrize("name,mode,nodes,seed", [("multi-subnet.yaml", "tcp", 32, 3), ("nat.yaml", "mixed", 24, 4)])
def test_ns3_run_matches_cli_and_refuses_a_second_run(tmp_path, mixcast, has_ns3, name, mode, nodes, seed):
    ns3_or_skip(has_ns3)
    path = scenario_path(name)
    cli_dir = cli_run(str(tmp_path / "cli"), path, "ns3", mode, seed, nodes)
    p = subprocess.run([sys.executable, "-c", NS3_CHILD, path, str(nodes), mode, str(seed), str(tmp_path / "py")],
                       capture_output=True, text=True, env=env_with_module(), cwd=ROOT)
    assert p.returncode == 0, p.stderr
    assert_same_folder(cli_dir, str(tmp_path / "py"), OUTPUT_FILES + ("links.csv",))
    lines = p.stdout.splitlines()
    assert int(lines[0].split()[0]) > 0  # per-link rows came through
    assert lines[1].startswith("concurrent:") and "already running" in lines[1]
    assert lines[2].startswith("refused:") and "own process" in lines[2]


def test_ns3_isolated_runs_match_cli(tmp_path, mixcast, has_ns3):
    ns3_or_skip(has_ns3)
    path = scenario_path("multi-dc.yaml")
    cli_dir = cli_run(str(tmp_path / "cli"), path, "ns3", "mixed", 5, 24)
    s = mixcast.load_scenario(path, nodes=24, mode="mixed", seed=5)
    seen = []
    for k in range(2):  # twice from this process: each in a fresh one
        r = mixcast.run(s, "ns3", isolate=True, out=tmp_path / f"py{k}", progress=lambda *a: seen.append(a))
        assert_same_folder(cli_dir, str(tmp_path / f"py{k}"), OUTPUT_FILES + ("links.csv",))
        assert_arrays_match_folder(r, cli_dir, mixcast)
        loaded = mixcast.load_results(cli_dir)
        assert np.array_equal(r.links[["link", "kind", "round", "channel", "bytes", "packets"]],
                              loaded.links[["link", "kind", "round", "channel", "bytes", "packets"]])
        assert set(r.links["kind"]) == {"LAN", "WAN"}
    assert seen and seen[-1][1] == 1.0  # progress reached 100%
    # Bytes per link per round add up to the summary's per-kind figures.
    for kind in ("LAN", "WAN"):
        total = sum(per.sum() for k, _, per in r.link_bytes_by_round().values() if k == kind)
        assert total == pytest.approx(r.summary["links"][kind.lower()]["bytes_per_broadcast"])


def test_load_testbed_folder(tmp_path, mixcast):
    """The testbed (real daemons on 127.0.0.1) writes the same folder; load_results reads it."""
    import csv
    testbed = os.path.join(BUILD, "real", "mixcast-testbed")
    if not os.access(testbed, os.X_OK):
        pytest.skip(f"{testbed} is not in this build (the real runtime is not built)")
    out = tmp_path / "tb"
    p = subprocess.run([testbed, "run", scenario_path("multi-subnet.yaml"), "--net", "loopback", "--nodes", "12",
                        "--mode", "mixed", "--seed", "3", "--out", str(out), "--quiet"], capture_output=True, text=True)
    assert p.returncode == 0, p.stderr
    r = mixcast.load_results(out)
    assert (r.engine, r.mode, r.nodes, r.seed) == ("real", "mixed", 12, 3)
    with open(out / "deliveries.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert len(r.deliveries) == len(rows)
    assert [int(x["round"]) for x in rows] == r.deliveries["round"].tolist()
    assert [x["channel"] for x in rows] == r.deliveries["channel"].tolist()
    rounds, share = r.convergence_by_round()
    assert share[-1] == pytest.approx(r.summary["delivered"] / r.summary["expected"])
    plot = script("plot_convergence.py", out, "--out", tmp_path / "conv")
    assert plot.returncode == 0, plot.stderr
    assert "multi-subnet mixed (real, n=12)" in (tmp_path / "conv.svg").read_text()
