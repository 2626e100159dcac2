"""mixcast: scenarios, the model and ns-3 engines, results and lower bounds from Python.

    import mixcast
    s = mixcast.load_scenario("scenarios/lan.yaml", ["workload.broadcasts=20"], mode="mixed", seed=3)
    r = mixcast.run(s, "model")            # or "ns3" (one ns-3 run per process; isolate=True for more)
    r.summary["rounds"], r.deliveries["round"], r.links
    mixcast.load_results("results/default") # an output folder of mixcast-sim run (or the testbed)

See analysis/README.md. The C++ side is the extension mixcast._core."""
from . import _core
from ._core import (EngineBusyError, OutputError, Scenario, ScenarioError, __version__, ceil_log2, has_ns3,
                    lower_bound_mixed, lower_bound_tcp)
from .results import (BROADCAST_DTYPE, CHANNELS, DELIVERY_DTYPE, LINK_DTYPE, Result, engines, load_results, run,
                      run_model, run_ns3)
from .scenarios import load_scenario, load_scenario_text, load_spec, scale_scenario_yaml
from .tidy import read_tidy, rows_from_result, write_tidy

__all__ = [
    "EngineBusyError", "OutputError", "Scenario", "ScenarioError", "__version__", "ceil_log2", "has_ns3",
    "lower_bound_mixed", "lower_bound_tcp", "BROADCAST_DTYPE", "CHANNELS", "DELIVERY_DTYPE", "LINK_DTYPE",
    "Result", "engines", "load_results", "run", "run_model", "run_ns3", "load_scenario", "load_scenario_text",
    "load_spec", "scale_scenario_yaml", "read_tidy", "rows_from_result", "write_tidy",
]
