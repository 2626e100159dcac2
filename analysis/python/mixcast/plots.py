"""Shared plotting helpers: a headless matplotlib, PNG + SVG output, the reference curves."""
from __future__ import annotations

import math
import os
from typing import List, Tuple

import matplotlib

matplotlib.use("Agg")  # files only; no display needed (CI, ssh)
import matplotlib.pyplot as plt  # noqa: E402

# Text stays text in the SVG (labels can be searched), and files are byte-stable across runs.
matplotlib.rcParams.update({"svg.fonttype": "none", "svg.hashsalt": "mixcast", "figure.dpi": 100,
                            "axes.grid": True, "grid.alpha": 0.3})
_METADATA = {"png": {"Software": None}, "svg": {"Date": None, "Creator": None}}


def gossip_rounds(n: float) -> float:
    """Push gossip's expected rounds to reach n nodes: log2 n + ln n (Frieze & Grimmett; Pittel)."""
    return math.log2(n) + math.log(n) if n > 1 else 0.0


def sequential_rounds(n: float) -> float:
    """A sender that loops over every other node: n - 1 sends, one per round."""
    return max(n - 1, 0)


def save_figure(fig, prefix: str | os.PathLike) -> Tuple[str, str]:
    """Writes PREFIX.png and PREFIX.svg (creating the folder); returns both paths."""
    prefix = os.fspath(prefix)
    for ext in (".png", ".svg"):
        if prefix.endswith(ext):
            prefix = prefix[: -len(ext)]
    parent = os.path.dirname(prefix)
    if parent:
        os.makedirs(parent, exist_ok=True)
    paths = []
    for ext in ("png", "svg"):
        path = f"{prefix}.{ext}"
        fig.savefig(path, format=ext, bbox_inches="tight", metadata=_METADATA[ext], dpi=120 if ext == "png" else None)
        paths.append(path)
    return paths[0], paths[1]


def line_labels(fig) -> List[str]:
    """Labels of every labelled line of a figure (for tests and checks)."""
    out = []
    for ax in fig.axes:
        for line in ax.get_lines():
            label = line.get_label()
            if label and not label.startswith("_"):
                out.append(label)
    return out
