"""Run results as Python objects and numpy arrays: from an engine run, or loaded from an output
folder of `mixcast-sim run` (or of the testbed, which writes the same files)."""
from __future__ import annotations

import copyreg
import csv
import json
import os
import pickle
import subprocess
import sys
import tempfile
from functools import cached_property
from typing import Callable, Dict, Optional, Tuple

import numpy as np

from . import _core

CHANNELS = ("local", "tcp", "multicast")  # core's Channel codes 0, 1, 2
# ns-3 link bytes: channel "other" is traffic that carried no broadcast message (Channel::local).
LINK_CHANNELS = ("other", "tcp", "multicast")

DELIVERY_DTYPE = np.dtype([("broadcast", "u4"), ("node", "u4"), ("round", "u4"), ("time_s", "f8"), ("channel", "U9")])
BROADCAST_DTYPE = np.dtype([("broadcast", "u4"), ("origin", "u4"), ("seq", "u8"), ("start_s", "f8"), ("warmup", "?")])
LINK_DTYPE = np.dtype([("link", "U128"), ("kind", "U3"), ("round", "u4"), ("channel", "U9"), ("bytes", "u8"),
                       ("packets", "u8"), ("bytes_per_broadcast", "f8")])

ProgressFn = Callable[[float, float, int], None]


# --- scenarios are picklable (Dask, subprocesses): rebuilt from their source and overrides -------

def _rebuild_scenario(path, text, source, overrides, nodes):
    if path:
        return _core._load_scenario(path, list(overrides), nodes)
    return _core._load_scenario_text(text, source, list(overrides), nodes)


def _reduce_scenario(s):
    return _rebuild_scenario, (s.path, s.text, s.source, list(s.overrides), s.rescaled_to)


copyreg.pickle(_core.Scenario, _reduce_scenario)


class Result:
    """One run's results.

    summary      dict: summary.json (the CLI's figures)
    deliveries   structured array broadcast,node,round,time_s,channel (first deliveries, warm-up included)
    broadcasts   structured array broadcast,origin,seq,start_s,warmup
    links        structured array link,kind,round,channel,bytes,packets,bytes_per_broadcast (ns-3 only;
                 empty otherwise): links.csv
    crashed_at_s numpy array per node (< 0: never crashed), or None when loaded from a folder
    scenario     the mixcast.Scenario that ran (None when loaded from a folder)
    source       "run" or the folder it was loaded from
    """

    def __init__(self, *, summary: dict, deliveries: np.ndarray, broadcasts: np.ndarray, links: np.ndarray,
                 crashed_at_s: Optional[np.ndarray] = None, scenario=None, source: str = "run", raw=None):
        self.summary = summary
        self._deliveries = deliveries
        self.broadcasts = broadcasts
        self.links = links
        self.crashed_at_s = crashed_at_s
        self.scenario = scenario
        self.source = source
        self._raw = raw  # the C++ RunResult, for write(); not pickled

    # -- construction -------------------------------------------------------------------------

    @classmethod
    def _from_raw(cls, raw, scenario) -> "Result":
        b = raw.broadcasts()
        broadcasts = np.empty(len(b["broadcast"]), dtype=BROADCAST_DTYPE)
        for name in BROADCAST_DTYPE.names:
            broadcasts[name] = b[name]
        lr = raw.link_rounds()
        summary = raw.summary()
        links = np.empty(len(lr["link"]), dtype=LINK_DTYPE)
        if len(links):
            names = np.array(lr["link_names"], dtype=LINK_DTYPE["link"])
            kinds = np.array(lr["link_kinds"], dtype=LINK_DTYPE["kind"])
            links["link"] = names[lr["link"]]
            links["kind"] = kinds[lr["link"]]
            links["round"] = lr["round"]
            links["channel"] = np.array(LINK_CHANNELS)[lr["channel_code"]]
            links["bytes"] = lr["bytes"]
            links["packets"] = lr["packets"]
            measured = summary.get("broadcasts", 0)
            # As links.csv: per measured broadcast, 0 for round 0 (traffic no measured broadcast rode in).
            links["bytes_per_broadcast"] = np.where((links["round"] > 0) & (measured > 0),
                                                    links["bytes"] / max(measured, 1), 0.0)
        return cls(summary=summary, deliveries=None, broadcasts=broadcasts, links=links,
                   crashed_at_s=np.asarray(raw.crashed_at_s()), scenario=scenario, source="run", raw=raw)

    @cached_property
    def deliveries(self) -> np.ndarray:
        if self._deliveries is not None:
            return self._deliveries
        d = self._raw.deliveries()  # built on first use: a 100,000-node run has a million rows
        out = np.empty(len(d["broadcast"]), dtype=DELIVERY_DTYPE)
        for name in ("broadcast", "node", "round", "time_s"):
            out[name] = d[name]
        out["channel"] = np.array(CHANNELS)[d["channel_code"]]
        return out

    def __getstate__(self):
        state = self.__dict__.copy()
        state["_deliveries"] = self.deliveries
        state.pop("deliveries", None)
        state["_raw"] = None
        return state

    # -- plain figures --------------------------------------------------------------------------

    @property
    def engine(self) -> str:
        return self.summary["engine"]

    @property
    def mode(self) -> str:
        return self.summary["mode"]

    @property
    def nodes(self) -> int:
        return int(self.summary["nodes"])

    @property
    def seed(self) -> int:
        return int(self.summary["seed"])

    @property
    def scenario_name(self) -> str:
        return self.summary["scenario"]

    @property
    def rounds(self) -> dict:
        return self.summary["rounds"]

    @property
    def lower_bound(self) -> int:
        return int(self.summary["rounds"]["lower_bound"])

    def human_summary(self) -> str:
        if self._raw is not None:
            return self._raw.human_summary()
        s = self.summary
        r = s["rounds"]
        return (f"{s['engine']} engine, {s['mode']} mode, scenario '{s['scenario']}': {s['nodes']} nodes, "
                f"{s['broadcasts']} broadcasts, seed {s['seed']}\n"
                f"delivered {s['delivered']} of {s['expected']} expected (ratio {s['delivery_ratio']:.6f})\n"
                f"rounds: max {r['max']}, p50 {r['p50']}, p99 {r['p99']} (lower bound {r['lower_bound']})\n")

    def write(self, directory: str | os.PathLike) -> None:
        """Writes summary.json, deliveries.csv, broadcasts.csv (and links.csv) exactly as
        `mixcast-sim run --out DIR` would. Only for results of a run in this process."""
        if self._raw is None:
            raise ValueError("write() needs the results of a run in this process; this one came from "
                             f"{self.source}")
        self._raw.write(os.fspath(directory))

    # -- derived series -------------------------------------------------------------------------

    def measured_deliveries(self) -> np.ndarray:
        """First deliveries of measured (not warm-up) broadcasts at nodes that never crashed (when
        crash times are known: runs; a loaded folder does not record which nodes crashed)."""
        warm = self.broadcasts["broadcast"][self.broadcasts["warmup"]]
        d = self.deliveries
        keep = ~np.isin(d["broadcast"], warm)
        if self.crashed_at_s is not None and len(self.crashed_at_s):
            keep &= self.crashed_at_s[d["node"]] < 0
        return d[keep]

    def convergence_by_round(self) -> Tuple[np.ndarray, np.ndarray]:
        """(rounds 0..max, share of expected deliveries done by the end of each round)."""
        d = self.measured_deliveries()
        expected = max(int(self.summary["expected"]), 1)
        top = int(d["round"].max()) if len(d) else 0
        counts = np.bincount(d["round"].astype(np.int64), minlength=top + 1)
        return np.arange(top + 1), np.cumsum(counts) / expected

    def convergence_by_time(self, points: Optional[int] = None) -> Tuple[np.ndarray, np.ndarray]:
        """(times since each broadcast's start, share of expected deliveries done by then): every
        delivery time, or `points` evenly spaced shares (the time each share was reached)."""
        d = self.measured_deliveries()
        expected = max(int(self.summary["expected"]), 1)
        t = np.sort(d["time_s"])
        frac = np.arange(1, len(t) + 1) / expected
        if points is None or len(t) == 0:
            return t, frac
        k = np.arange(1, points + 1, dtype=np.int64)
        shares = k / points
        ranks = (k * expected + points - 1) // points  # nearest rank ceil(share * expected), in integers
        ok = ranks <= len(t)
        return t[ranks[ok] - 1], shares[ok]

    def link_bytes_by_round(self) -> Dict[str, Tuple[str, np.ndarray, np.ndarray]]:
        """Per link: (kind, rounds 1..max, bytes per measured broadcast in each round, channels summed)."""
        out = {}
        l = self.links[self.links["round"] > 0]
        if len(l) == 0:
            return out
        top = int(l["round"].max())
        for name in np.unique(self.links["link"]):
            rows = l[l["link"] == name]
            per = np.zeros(top + 1)
            np.add.at(per, rows["round"].astype(np.int64), rows["bytes_per_broadcast"])
            kind = self.links["kind"][self.links["link"] == name][0]
            out[str(name)] = (str(kind), np.arange(1, top + 1), per[1:])
        return out

    def __repr__(self) -> str:
        r = self.summary["rounds"]
        return (f"<mixcast.Result {self.engine} {self.mode} '{self.scenario_name}' n={self.nodes} seed={self.seed}: "
                f"delivery {self.summary['delivery_ratio']:.4f}, rounds max {r['max']} (bound {r['lower_bound']})>")


# --- running ----------------------------------------------------------------------------------

def run(scenario, engine: str = "model", *, progress: Optional[ProgressFn] = None, isolate: bool = False,
        out: Optional[str | os.PathLike] = None) -> Result:
    """Runs a scenario on an engine ("model", or "ns3" when built) and returns its Result.

    progress(simulated_s, done_share, events) is called now and then. ns-3 keeps global state, so
    only one ns-3 simulation may run in a process (a second raises mixcast.EngineBusyError);
    isolate=True runs the simulation in a fresh Python process instead (any engine). With `out`,
    the output folder is written too, exactly as `mixcast-sim run --out` writes it."""
    if not isinstance(scenario, _core.Scenario):
        raise TypeError(f"scenario must be a mixcast.Scenario (mixcast.load_scenario), got {type(scenario).__name__}")
    if engine not in ("model", "ns3"):
        raise ValueError(f"unknown engine '{engine}' (available: {', '.join(engines())})")
    if engine == "ns3" and not _core.has_ns3:
        raise ValueError("engine ns3 is not built into this mixcast module (ns-3 3.37 was not found at build time)")
    if out is not None:
        out = os.fspath(out)
        os.makedirs(out, exist_ok=True)  # fail before the run, not after it
    if isolate:
        return _run_isolated(scenario, engine, progress, out)
    raw = _core._run(engine, scenario, progress)
    result = Result._from_raw(raw, scenario)
    if out is not None:
        result.write(out)
    return result


def run_model(scenario, **kwargs) -> Result:
    return run(scenario, "model", **kwargs)


def run_ns3(scenario, **kwargs) -> Result:
    return run(scenario, "ns3", **kwargs)


def engines() -> list:
    return ["model", "ns3"] if _core.has_ns3 else ["model"]


def _package_parent() -> str:
    return os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _run_isolated(scenario, engine: str, progress: Optional[ProgressFn], out: Optional[str]) -> Result:
    with tempfile.TemporaryDirectory(prefix="mixcast-run-") as tmp:
        request = os.path.join(tmp, "request.pkl")
        answer = os.path.join(tmp, "result.pkl")
        with open(request, "wb") as f:
            pickle.dump({"scenario": scenario, "engine": engine, "progress": progress is not None, "out": out}, f)
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join([_package_parent()] + [p for p in [env.get("PYTHONPATH")] if p])
        proc = subprocess.Popen([sys.executable, "-m", "mixcast._isolated", request, answer], stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True, env=env)
        # The child reports progress as "progress SIM DONE EVENTS" lines.
        for line in proc.stdout:
            parts = line.split()
            if progress is not None and len(parts) == 4 and parts[0] == "progress":
                progress(float(parts[1]), float(parts[2]), int(parts[3]))
        err = proc.stderr.read()
        code = proc.wait()
        if code != 0 or not os.path.exists(answer):
            raise RuntimeError(f"the isolated {engine} run failed (exit {code}): {err.strip()[-2000:]}")
        with open(answer, "rb") as f:
            outcome = pickle.load(f)
    if isinstance(outcome, BaseException):
        raise outcome
    return outcome


# --- loading output folders -------------------------------------------------------------------

def _read_csv(path: str, header: Tuple[str, ...], dtype: np.dtype) -> np.ndarray:
    if not os.path.isfile(path):
        raise FileNotFoundError(f"{path}: missing (not a mixcast-sim output folder?)")
    with open(path, newline="") as f:
        reader = csv.reader(f)
        first = next(reader, None)
        if first is None or tuple(first) != header:
            raise ValueError(f"{path}: expected the header {','.join(header)}, got {','.join(first or [])!r}")
        rows = []
        for lineno, row in enumerate(reader, start=2):
            if len(row) != len(header):
                raise ValueError(f"{path}:{lineno}: expected {len(header)} fields, got {len(row)}")
            rows.append(tuple(row))
    out = np.empty(len(rows), dtype=dtype)
    if not rows:
        return out
    cols = list(zip(*rows))
    for name, values in zip(header, cols):
        try:
            if dtype[name].kind == "b":
                out[name] = np.array(values, dtype=np.int8) != 0
            else:
                out[name] = np.array(values, dtype=dtype[name])
        except ValueError as e:
            raise ValueError(f"{path}: column {name}: {e}") from None
    return out


def load_results(directory: str | os.PathLike) -> Result:
    """Loads an output folder of `mixcast-sim run` (or of the testbed): summary.json,
    deliveries.csv, broadcasts.csv and, when present, links.csv."""
    d = os.fspath(directory)
    if not os.path.isdir(d):
        raise FileNotFoundError(f"{d}: not a directory")
    summary_path = os.path.join(d, "summary.json")
    if not os.path.isfile(summary_path):
        raise FileNotFoundError(f"{summary_path}: missing (not a mixcast-sim output folder?)")
    with open(summary_path) as f:
        try:
            summary = json.load(f)
        except json.JSONDecodeError as e:
            raise ValueError(f"{summary_path}: not valid JSON: {e}") from None
    for key in ("engine", "mode", "nodes", "seed", "expected", "rounds"):
        if key not in summary:
            raise ValueError(f"{summary_path}: key '{key}' missing")
    deliveries = _read_csv(os.path.join(d, "deliveries.csv"), DELIVERY_DTYPE.names, DELIVERY_DTYPE)
    broadcasts = _read_csv(os.path.join(d, "broadcasts.csv"), BROADCAST_DTYPE.names, BROADCAST_DTYPE)
    links_path = os.path.join(d, "links.csv")
    if os.path.exists(links_path):
        links = _read_csv(links_path, LINK_DTYPE.names, LINK_DTYPE)
    else:
        links = np.empty(0, dtype=LINK_DTYPE)
    return Result(summary=summary, deliveries=deliveries, broadcasts=broadcasts, links=links, source=d)
