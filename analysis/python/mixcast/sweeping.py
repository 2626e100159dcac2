"""Grids of runs (scenarios x node counts x modes x seeds x engines), run one by one or on Dask.

Every run is an independent task returning its tidy rows (mixcast.tidy). ns-3 runs go to a fresh
Python process each (ns-3 keeps global state); model runs run in the worker itself."""
from __future__ import annotations

import os
import sys
import time
from dataclasses import dataclass
from typing import Callable, List, Optional, Sequence, Tuple

from . import _core
from .results import run
from .scenarios import load_spec, parse_scale_spec
from .tidy import rows_from_result


@dataclass(frozen=True)
class Point:
    """One run of a grid. scenario is a spec: a YAML path or "scale:SIZE"."""
    scenario: str
    nodes: Optional[int]
    mode: str
    seed: int
    engine: str
    sets: Tuple[str, ...] = ()

    def label(self) -> str:
        n = "file" if self.nodes is None else str(self.nodes)
        return f"{self.scenario} n={n} {self.mode} seed={self.seed} {self.engine}"

    def load(self):
        return load_spec(self.scenario, self.sets, nodes=self.nodes, mode=self.mode, seed=self.seed)


def expand_grid(scenarios: Sequence[str], nodes: Sequence[Optional[int]], modes: Sequence[str], seeds: int,
                engines: Sequence[str], sets: Sequence[str] = ()) -> List[Point]:
    """The grid in order: scenarios, then node counts, modes, seeds, engines. Seeds are the
    scenario's seed, seed+1, ..., seed+seeds-1 (as `mixcast-sim sweep --seeds K`). Every point is
    loaded once, so a bad scenario, override or size fails before anything runs (ScenarioError)."""
    if seeds < 1:
        raise _core.ScenarioError(f"seeds must be >= 1, got {seeds}")
    for e in engines:
        if e not in ("model", "ns3"):
            raise _core.ScenarioError(f"unknown engine '{e}' (available: model, ns3)")
        if e == "ns3" and not _core.has_ns3:
            raise _core.ScenarioError("engine ns3 is not built into this mixcast module")
    points = []
    for spec in scenarios:
        is_scale = parse_scale_spec(spec) is not None
        for n in nodes:
            if is_scale and n is None:
                raise _core.ScenarioError(f"scenario spec '{spec}' needs node counts (--nodes)")
            base = load_spec(spec, sets, nodes=n).seed
            for mode in modes:
                for k in range(seeds):
                    for engine in engines:
                        p = Point(spec, n, mode, base + k, engine, tuple(sets))
                        p.load()
                        points.append(p)
    return points


def run_point(point: Point) -> List[tuple]:
    """Runs one point and returns its tidy rows (the Dask task)."""
    scenario = point.load()
    result = run(scenario, point.engine, isolate=point.engine == "ns3")
    return rows_from_result(result, subnets=scenario.subnets)


class Progress:
    """A progress line on stderr: redrawn in place on a terminal, else a line every 10%."""

    def __init__(self, total: int, label: str = "sweep", enabled: bool = True, stream=None):
        self.total, self.label, self.enabled = total, label, enabled
        self.stream = stream or sys.stderr
        self.tty = self.stream.isatty()
        self.done = 0
        self.start = time.monotonic()
        self._last_decile = -1
        self.update(0)

    def update(self, done: int, note: str = "") -> None:
        self.done = done
        if not self.enabled:
            return
        elapsed = time.monotonic() - self.start
        frac = done / self.total if self.total else 1.0
        eta = f", ~{elapsed / done * (self.total - done):.0f} s left" if 0 < done < self.total else ""
        bar = "#" * int(frac * 30)
        line = f"[{self.label}] [{bar:<30}] {done}/{self.total} runs, {elapsed:.1f} s{eta}"
        if note:
            line += f"  {note}"
        if self.tty:
            self.stream.write("\r" + line[:150].ljust(150))
            self.stream.flush()
        else:
            decile = int(frac * 10)
            if decile != self._last_decile:
                self._last_decile = decile
                self.stream.write(line + "\n")
                self.stream.flush()

    def close(self) -> None:
        if self.enabled and self.tty:
            self.stream.write("\n")
            self.stream.flush()


def run_sequential(points: Sequence[Point], progress: bool = True) -> List[List[tuple]]:
    """Runs the points one after the other in this process; returns their rows in grid order."""
    bar = Progress(len(points), "sequential", progress)
    out = []
    for i, p in enumerate(points):
        out.append(run_point(p))
        bar.update(i + 1, p.label())
    bar.close()
    return out


def _module_path() -> str:
    return os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def start_local_cluster(workers: Optional[int] = None):
    """A Dask LocalCluster on 127.0.0.1 with one single-threaded worker process per core (the
    engines are single-threaded C++; processes keep ns-3's and the GIL's state apart)."""
    from distributed import LocalCluster
    # Workers are spawned processes: they find the mixcast package through PYTHONPATH.
    parts = [_module_path()] + [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p]
    os.environ["PYTHONPATH"] = os.pathsep.join(dict.fromkeys(parts))
    n = workers or os.cpu_count() or 1
    # Loopback only: the scheduler, workers and nannies, and the HTTP servers (status pages) that
    # the scheduler and workers start even without a dashboard (on all interfaces by default).
    # No worker memory limit: a run is one C++ engine call that Dask cannot spill, and the nanny
    # would kill a worker whose run grows past its share (mixed mode at 100,000 nodes takes GBs).
    return LocalCluster(n_workers=n, threads_per_worker=1, processes=True, host="127.0.0.1", memory_limit=0,
                        dashboard_address="127.0.0.1:0", worker_dashboard_address="127.0.0.1:0", silence_logs=40)


def run_dask(points: Sequence[Point], scheduler: Optional[str] = None, workers: Optional[int] = None,
             progress: bool = True, on_result: Optional[Callable[[int, List[tuple]], None]] = None
             ) -> Tuple[List[List[tuple]], str]:
    """Runs the points as Dask tasks: on a fresh local cluster, or on the scheduler at `scheduler`
    (its workers must be able to import this mixcast package). Returns (rows per point in grid
    order, a description of the cluster)."""
    from distributed import Client, as_completed

    t0 = time.monotonic()
    cluster = None
    if scheduler is None:
        cluster = start_local_cluster(workers)
        client = Client(cluster)
    else:
        client = Client(scheduler, timeout="20s")
    try:
        info = client.scheduler_info()
        where = (f"{'local' if cluster else scheduler} Dask cluster, {len(info['workers'])} workers, "
                 f"{sum(w['nthreads'] for w in info['workers'].values())} threads; connecting "
                 f"{time.monotonic() - t0:.1f} s")
        # pure=False: same point twice (a repeated seed) still runs twice; each task is one run.
        futures = [client.submit(run_point, p, pure=False, key=f"mixcast-run-{i}-{p.label()}")
                   for i, p in enumerate(points)]
        index = {f.key: i for i, f in enumerate(futures)}
        out: List[Optional[List[tuple]]] = [None] * len(points)
        bar = Progress(len(points), "dask", progress)
        done = 0
        try:
            for f in as_completed(futures):
                i = index[f.key]
                out[i] = f.result()  # re-raises a task's exception here
                done += 1
                if on_result:
                    on_result(i, out[i])
                bar.update(done, points[i].label())
        finally:
            bar.close()
            for f in futures:
                f.cancel()
        return out, where
    finally:
        client.close()
        if cluster is not None:
            cluster.close()
