"""The tidy CSV that sweeps write and the plot scripts read: one observation per row.

Columns: scenario,engine,mode,nodes,seed,metric,series,x,value
- scalar figures of a run (series and x empty): the summary's rounds_max, rounds_p50, rounds_p99,
  lower_bound, delivery_ratio, duplicates, ttld_p50_s, ttld_p99_s, ttld_max_s, tcp_messages,
  multicast_messages, tcp_bytes, multicast_bytes, bytes_per_broadcast_tcp,
  bytes_per_broadcast_multicast, islands, subnets, repairs, forced_tcp, events, simulated_s, wall_s
- delivered_by_round: x = round, value = share of expected deliveries done by the end of that round
- delivered_by_time: x = seconds since the broadcast started, value = share done by then, at the
  shares 1/TIME_POINTS, 2/TIME_POINTS, ..., 1 (the time each was reached)
- link_bytes (ns-3 runs): series = link name (lan:..., wan:a>b, nat:...), x = round (>= 1),
  value = bytes per measured broadcast, channels summed
"""
from __future__ import annotations

import csv
import math
import os
from typing import Dict, Iterable, List, Optional, Sequence

COLUMNS = ("scenario", "engine", "mode", "nodes", "seed", "metric", "series", "x", "value")
TIME_POINTS = 50
SCALAR_METRICS = ("rounds_max", "rounds_p50", "rounds_p99", "lower_bound", "delivery_ratio", "duplicates",
                  "ttld_p50_s", "ttld_p99_s", "ttld_max_s", "tcp_messages", "multicast_messages", "tcp_bytes",
                  "multicast_bytes", "bytes_per_broadcast_tcp", "bytes_per_broadcast_multicast", "islands",
                  "subnets", "repairs", "forced_tcp", "events", "simulated_s", "wall_s")


def _scalars(summary: dict) -> Dict[str, float]:
    r, t = summary["rounds"], summary["time_to_last_delivery_s"]
    return {
        "rounds_max": r["max"], "rounds_p50": r["p50"], "rounds_p99": r["p99"], "lower_bound": r["lower_bound"],
        "delivery_ratio": summary["delivery_ratio"], "duplicates": summary["duplicates"],
        "ttld_p50_s": t["p50"], "ttld_p99_s": t["p99"], "ttld_max_s": t["max"],
        "tcp_messages": summary["messages"]["tcp"], "multicast_messages": summary["messages"]["multicast"],
        "tcp_bytes": summary["bytes"]["tcp"], "multicast_bytes": summary["bytes"]["multicast"],
        "bytes_per_broadcast_tcp": summary["bytes_per_broadcast"]["tcp"],
        "bytes_per_broadcast_multicast": summary["bytes_per_broadcast"]["multicast"],
        "islands": summary["islands"], "repairs": summary["repairs"]["messages"],
        "forced_tcp": summary["forced_tcp"]["messages"], "events": summary["events"],
        "simulated_s": summary["simulated_s"], "wall_s": summary["wall_s"],
    }


def rows_from_result(result, subnets: Optional[int] = None) -> List[tuple]:
    """The tidy rows of one run (a mixcast.Result)."""
    s = result.summary
    key = (s["scenario"], s["engine"], s["mode"], int(s["nodes"]), int(s["seed"]))
    rows = []
    scalars = _scalars(s)
    if subnets is None and result.scenario is not None:
        subnets = result.scenario.subnets
    scalars["subnets"] = subnets if subnets is not None else float("nan")
    for metric in SCALAR_METRICS:
        rows.append(key + (metric, "", "", scalars[metric]))
    rounds, share = result.convergence_by_round()
    for x, v in zip(rounds, share):
        rows.append(key + ("delivered_by_round", "", int(x), float(v)))
    times, share = result.convergence_by_time(points=TIME_POINTS)
    for x, v in zip(times, share):
        rows.append(key + ("delivered_by_time", "", float(x), float(v)))
    for link, (_kind, rounds, per) in sorted(result.link_bytes_by_round().items()):
        for x, v in zip(rounds, per):
            rows.append(key + ("link_bytes", link, int(x), float(v)))
    return rows


def _fmt(v) -> str:
    if v == "" or v is None:
        return ""
    if isinstance(v, float):
        if math.isnan(v):
            return "nan"
        return repr(v)  # shortest exact form: reading it back gives the same float
    return str(v)


def write_tidy(path: str | os.PathLike, rows: Iterable[Sequence]) -> int:
    """Writes rows (tuples in COLUMNS order) with a header; returns the number of rows."""
    path = os.fspath(path)
    parent = os.path.dirname(path)
    if parent:
        os.makedirs(parent, exist_ok=True)
    n = 0
    with open(path, "w", newline="") as f:
        w = csv.writer(f, lineterminator="\n")
        w.writerow(COLUMNS)
        for row in rows:
            w.writerow([_fmt(v) for v in row])
            n += 1
    return n


class TidyRow(dict):
    """A row of the tidy CSV: nodes and seed are ints, value a float, x a float or None."""


def read_tidy(path: str | os.PathLike) -> List[TidyRow]:
    """Reads a tidy CSV written by write_tidy (mixcast sweep). Raises ValueError naming the line."""
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise FileNotFoundError(f"{path}: no such file")
    out = []
    with open(path, newline="") as f:
        reader = csv.reader(f)
        header = next(reader, None)
        if header is None or tuple(header) != COLUMNS:
            raise ValueError(f"{path}: not a mixcast tidy CSV: expected the header {','.join(COLUMNS)}, "
                             f"got {','.join(header or [])!r}")
        for lineno, fields in enumerate(reader, start=2):
            if len(fields) != len(COLUMNS):
                raise ValueError(f"{path}:{lineno}: expected {len(COLUMNS)} fields, got {len(fields)}")
            row = TidyRow(zip(COLUMNS, fields))
            try:
                row["nodes"] = int(row["nodes"])
                row["seed"] = int(row["seed"])
                row["x"] = float(row["x"]) if row["x"] != "" else None
                row["value"] = float(row["value"])
            except ValueError as e:
                raise ValueError(f"{path}:{lineno}: {e}") from None
            out.append(row)
    return out


def select(rows: Iterable[dict], **equal) -> List[dict]:
    """The rows whose columns equal the given values (a list or tuple value means any of them)."""
    def ok(row):
        for k, v in equal.items():
            if isinstance(v, (list, tuple, set)):
                if row[k] not in v:
                    return False
            elif row[k] != v:
                return False
        return True
    return [r for r in rows if ok(r)]


def records(rows: Iterable[Sequence]) -> List[TidyRow]:
    """Tuples from rows_from_result as the dict rows read_tidy gives (x None when empty)."""
    out = []
    for t in rows:
        row = TidyRow(zip(COLUMNS, t))
        row["x"] = None if row["x"] in ("", None) else float(row["x"])
        row["value"] = float(row["value"])
        out.append(row)
    return out
