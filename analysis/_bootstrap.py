"""Shared start-up of the analysis scripts: finds the built `mixcast` package and reports
problems the way mixcast-sim does (a message naming the problem, exit status 2)."""
from __future__ import annotations

import argparse
import os
import sys
from typing import NoReturn

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DEFAULT_BUILD = os.path.join(ROOT, "build", "release")


def fail(prog: str, message: str, code: int = 2) -> NoReturn:
    sys.stderr.write(f"{prog}: error: {message}\n")
    sys.exit(code)


def add_build_dir_arg(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--build-dir", metavar="DIR", default=None,
                        help="CMake build folder holding python/mixcast (default: $MIXCAST_BUILD_DIR, "
                             "else build/release)")


def import_mixcast(prog: str, build_dir: str | None = None):
    """Puts <build>/python first on sys.path and imports mixcast; exits 2 with a message if it cannot."""
    build = build_dir or os.environ.get("MIXCAST_BUILD_DIR") or DEFAULT_BUILD
    pkg_parent = os.path.join(os.path.abspath(build), "python")
    if not os.path.isfile(os.path.join(pkg_parent, "mixcast", "__init__.py")):
        fail(prog, f"the mixcast Python module is not built in '{build}' (no {pkg_parent}/mixcast): build it "
                   "with 'cmake --preset default && cmake --build --preset default' (MIXCAST_WITH_PYTHON=ON, "
                   "needs python3-dev and pybind11-dev), or point --build-dir / MIXCAST_BUILD_DIR at a build")
    sys.path.insert(0, pkg_parent)
    try:
        import mixcast  # noqa: F401
        import numpy  # noqa: F401
    except ImportError as e:
        fail(prog, f"cannot import the mixcast module from {pkg_parent} with {sys.executable}: {e}. Run the "
                   "scripts with the interpreter it was built for, /usr/bin/python3 (it has Debian's numpy, "
                   "matplotlib and distributed)")
    return sys.modules["mixcast"]


def int_list(text: str) -> list:
    """argparse type for "8,16,32": positive integers."""
    out = []
    for part in text.split(","):
        part = part.strip()
        if not part.isdigit() or int(part) < 1:
            raise argparse.ArgumentTypeError(f"expected comma-separated integers >= 1, got '{text}'")
        out.append(int(part))
    return out


def positive_int(text: str) -> int:
    if not text.isdigit() or int(text) < 1:
        raise argparse.ArgumentTypeError(f"expected an integer >= 1, got '{text}'")
    return int(text)


def choice_list(choices):
    def parse(text: str) -> list:
        out = [p.strip() for p in text.split(",")]
        for p in out:
            if p not in choices:
                raise argparse.ArgumentTypeError(f"'{p}' is not one of {', '.join(choices)} (in '{text}')")
        return out
    return parse


def check_output(prog: str, path: str) -> None:
    """Fails (exit 2) before any work if `path` cannot be written; creates its folder."""
    parent = os.path.dirname(os.path.abspath(path))
    if os.path.isdir(path):
        fail(prog, f"output '{path}' is a directory, expected a file name")
    try:
        os.makedirs(parent, exist_ok=True)
    except OSError as e:
        fail(prog, f"cannot create the output folder '{parent}': {e.strerror}")
    if not os.access(parent, os.W_OK):
        fail(prog, f"cannot write in the output folder '{parent}'")
