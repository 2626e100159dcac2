"""pytest setup for the analysis tests: the built mixcast package and mixcast-sim of one build.

The build is $MIXCAST_BUILD_DIR, else build/release (what scripts/test.sh builds). Run with the
interpreter the module was built for:  /usr/bin/python3 -m pytest analysis/tests"""
import json
import os
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BUILD = os.path.abspath(os.environ.get("MIXCAST_BUILD_DIR") or os.path.join(ROOT, "build", "release"))
PY_DIR = os.path.join(BUILD, "python")
CLI = os.path.join(BUILD, "sim", "mixcast-sim")
ANALYSIS = os.path.join(ROOT, "analysis")
SCENARIOS = os.path.join(ROOT, "scenarios")


def pytest_configure(config):
    if not os.path.isfile(os.path.join(PY_DIR, "mixcast", "__init__.py")):
        raise pytest.UsageError(f"the mixcast Python module is not built in {BUILD} (set MIXCAST_BUILD_DIR or build "
                                "with 'cmake --preset default && cmake --build --preset default')")
    if not os.access(CLI, os.X_OK):
        raise pytest.UsageError(f"{CLI} is missing: the tests compare the module with mixcast-sim of the same build")
    sys.path.insert(0, PY_DIR)
    os.environ["MIXCAST_BUILD_DIR"] = BUILD  # for the scripts the tests start


def env_with_module():
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([PY_DIR] + [p for p in [env.get("PYTHONPATH")] if p])
    env["MIXCAST_BUILD_DIR"] = BUILD
    return env


def cli(*args, check=True):
    """Runs mixcast-sim; returns the CompletedProcess."""
    p = subprocess.run([CLI, *map(str, args)], capture_output=True, text=True, cwd=ROOT)
    if check and p.returncode != 0:
        raise AssertionError(f"mixcast-sim {' '.join(map(str, args))} failed ({p.returncode}): {p.stderr}")
    return p


def cli_run(out, scenario, engine="model", mode=None, seed=None, nodes=None, sets=()):
    args = ["run", scenario, "--engine", engine, "--out", out, "--quiet"]
    if mode:
        args += ["--mode", mode]
    if seed is not None:
        args += ["--seed", seed]
    if nodes is not None:
        args += ["--nodes", nodes]
    for s in sets:
        args += ["--set", s]
    cli(*args)
    return out


def script(name, *args):
    """Runs analysis/NAME with this interpreter; returns the CompletedProcess."""
    return subprocess.run([sys.executable, os.path.join(ANALYSIS, name), *map(str, args)], capture_output=True,
                          text=True, cwd=ROOT, env=env_with_module())


def read_summary(folder):
    with open(os.path.join(folder, "summary.json")) as f:
        s = json.load(f)
    s.pop("wall_s")  # the only figure that differs between identical runs
    return s


def read_bytes(path):
    with open(path, "rb") as f:
        return f.read()


@pytest.fixture(scope="session")
def mixcast():
    import mixcast as m
    return m


@pytest.fixture(scope="session")
def has_ns3(mixcast):
    return mixcast.has_ns3
