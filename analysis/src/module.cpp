// mixcast._core: the pybind11 half of the Python package `mixcast` (analysis/python/mixcast holds
// the other half). It binds scenario loading (with overrides and rescaling), the model engine, the
// ns-3 engine when built, the metrics (summary.json, output folders) and the lower bounds. Result
// tables come out as dicts of numpy columns; mixcast/results.py turns them into structured arrays.
#include <pybind11/functional.h>
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <atomic>
#include <chrono>
#include <memory>
#include <cstdint>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

#include "mixcast/core/types.hpp"
#include "mixcast/sim/metrics.hpp"
#include "mixcast/sim/model_engine.hpp"
#include "mixcast/sim/result.hpp"
#include "mixcast/sim/run_options.hpp"
#include "mixcast/sim/scenario.hpp"
#ifdef MIXCAST_HAVE_NS3
#include "mixcast/sim/ns3_engine.hpp"
#endif

#ifndef MIXCAST_VERSION
#define MIXCAST_VERSION "0.1.0"
#endif

namespace py = pybind11;
using mixcast::sim::RunResult;
using mixcast::sim::Scenario;

namespace {

// ns-3's one-run-per-process guard, as its own Python exception (a RuntimeError).
struct EngineBusy : std::runtime_error {
  using std::runtime_error::runtime_error;
};

// A loaded scenario plus where it came from, so overrides can be applied later the same way the
// CLI applies them: reload the source with the extra overrides, then rescale and validate.
struct PyScenario {
  Scenario s;
  std::string path;  // file it was loaded from, or empty
  std::string text;  // YAML text it was loaded from (when path is empty)
  std::vector<std::string> overrides;
  std::optional<std::uint32_t> nodes;  // rescaled to this many nodes after loading
};

PyScenario make_scenario(std::string path, std::string text, std::string source_name, std::vector<std::string> overrides,
                         std::optional<std::uint32_t> nodes) {
  PyScenario p;
  {
    py::gil_scoped_release release;  // big generated scenarios take a while to parse
    p.s = path.empty() ? mixcast::sim::load_scenario_text(text, source_name, overrides)
                       : mixcast::sim::load_scenario(path, overrides);
    if (nodes) {
      if (*nodes == 0) throw mixcast::sim::ScenarioError("nodes must be >= 1, got 0");
      mixcast::sim::rescale(p.s, *nodes);
      mixcast::sim::validate(p.s);
    }
  }
  p.path = std::move(path);
  p.text = std::move(text);
  p.overrides = std::move(overrides);
  p.nodes = nodes;
  return p;
}

std::uint64_t island_count(const Scenario& s) {
  std::uint64_t islands = 0;
  for (const auto& dc : s.datacenters)
    for (const auto& sn : dc.subnets) islands += sn.multicast ? 1 : sn.nodes;
  return islands;
}

py::dict scenario_topology(const Scenario& s) {
  py::list dcs;
  for (const auto& dc : s.datacenters) {
    py::list subnets;
    for (const auto& sn : dc.subnets) {
      py::dict d;
      d["name"] = sn.name;
      d["nodes"] = sn.nodes;
      d["multicast"] = sn.multicast;
      d["nat"] = sn.nat;
      d["bandwidth_bps"] = sn.lan.bandwidth_bps;
      d["latency_s"] = sn.lan.latency_s;
      d["loss"] = sn.lan.loss;
      d["multicast_loss"] = sn.multicast_loss;
      subnets.append(d);
    }
    py::dict d;
    d["name"] = dc.name;
    d["subnets"] = subnets;
    dcs.append(d);
  }
  py::list wan;
  for (const auto& w : s.wan) {
    py::dict d;
    d["between"] = py::make_tuple(w.a, w.b);
    d["bandwidth_bps"] = w.link.bandwidth_bps;
    d["latency_s"] = w.link.latency_s;
    d["loss"] = w.link.loss;
    wan.append(d);
  }
  py::dict out;
  out["datacenters"] = dcs;
  out["wan"] = wan;
  return out;
}

template <typename T>
py::array_t<T> column(std::size_t n) {
  return py::array_t<T>(static_cast<py::ssize_t>(n));
}

// Python's json module turns nlohmann's dump into plain dicts, lists and numbers.
py::object to_python(const nlohmann::json& j) { return py::module_::import("json").attr("loads")(j.dump()); }

py::dict deliveries_columns(const RunResult& r) {
  const std::size_t n = r.deliveries.size();
  auto broadcast = column<std::uint32_t>(n);
  auto node = column<std::uint32_t>(n);
  auto round = column<std::uint32_t>(n);
  auto time_s = column<double>(n);
  auto channel = column<std::uint8_t>(n);
  auto b = broadcast.mutable_unchecked<1>();
  auto no = node.mutable_unchecked<1>();
  auto ro = round.mutable_unchecked<1>();
  auto t = time_s.mutable_unchecked<1>();
  auto c = channel.mutable_unchecked<1>();
  for (std::size_t i = 0; i < n; ++i) {
    const auto& d = r.deliveries[i];
    const auto k = static_cast<py::ssize_t>(i);
    b(k) = d.broadcast;
    no(k) = d.node;
    ro(k) = d.round;
    t(k) = d.time_s;
    c(k) = static_cast<std::uint8_t>(d.channel);
  }
  py::dict out;
  out["broadcast"] = broadcast;
  out["node"] = node;
  out["round"] = round;
  out["time_s"] = time_s;
  out["channel_code"] = channel;
  return out;
}

py::dict broadcasts_columns(const RunResult& r) {
  const std::size_t n = r.broadcasts.size();
  auto index = column<std::uint32_t>(n);
  auto origin = column<std::uint32_t>(n);
  auto seq = column<std::uint64_t>(n);
  auto start = column<double>(n);
  auto warmup = column<bool>(n);
  auto i0 = index.mutable_unchecked<1>();
  auto o = origin.mutable_unchecked<1>();
  auto sq = seq.mutable_unchecked<1>();
  auto st = start.mutable_unchecked<1>();
  auto w = warmup.mutable_unchecked<1>();
  for (std::size_t i = 0; i < n; ++i) {
    const auto& b = r.broadcasts[i];
    const auto k = static_cast<py::ssize_t>(i);
    i0(k) = b.index;
    o(k) = b.origin;
    sq(k) = b.seq;
    st(k) = b.start_s;
    w(k) = b.warmup;
  }
  py::dict out;
  out["broadcast"] = index;
  out["origin"] = origin;
  out["seq"] = seq;
  out["start_s"] = start;
  out["warmup"] = warmup;
  return out;
}

py::dict traffic_columns(const RunResult& r) {
  const std::size_t n = r.traffic.size();
  const char* names[] = {"tcp_messages",    "tcp_bytes",    "multicast_messages",  "multicast_bytes",
                         "repair_messages", "repair_bytes", "forced_messages",     "forced_bytes",
                         "delivered_by_repair", "delivered_by_forced"};
  std::vector<py::array_t<std::uint64_t>> cols;
  for (std::size_t c = 0; c < 10; ++c) cols.push_back(column<std::uint64_t>(n));
  for (std::size_t i = 0; i < n; ++i) {
    const auto& t = r.traffic[i];
    const std::uint64_t v[] = {t.tcp_messages,    t.tcp_bytes,    t.multicast_messages,  t.multicast_bytes,
                               t.repair_messages, t.repair_bytes, t.forced_messages,     t.forced_bytes,
                               t.delivered_by_repair, t.delivered_by_forced};
    for (std::size_t c = 0; c < 10; ++c) cols[c].mutable_at(static_cast<py::ssize_t>(i)) = v[c];
  }
  py::dict out;
  for (std::size_t c = 0; c < 10; ++c) out[names[c]] = cols[c];
  return out;
}

py::dict link_rounds_columns(const RunResult& r) {
  const std::size_t n = r.link_rounds.size();
  auto link = column<std::uint32_t>(n);
  auto round = column<std::uint32_t>(n);
  auto channel = column<std::uint8_t>(n);
  auto bytes = column<std::uint64_t>(n);
  auto packets = column<std::uint64_t>(n);
  for (std::size_t i = 0; i < n; ++i) {
    const auto& lr = r.link_rounds[i];
    const auto k = static_cast<py::ssize_t>(i);
    link.mutable_at(k) = lr.link;
    round.mutable_at(k) = lr.round;
    channel.mutable_at(k) = static_cast<std::uint8_t>(lr.channel);
    bytes.mutable_at(k) = lr.bytes;
    packets.mutable_at(k) = lr.packets;
  }
  py::list names, kinds;
  for (const auto& l : r.links) {
    names.append(l.name);
    kinds.append(mixcast::sim::to_string(l.kind));
  }
  py::dict out;
  out["link_names"] = names;
  out["link_kinds"] = kinds;
  out["link"] = link;
  out["round"] = round;
  out["channel_code"] = channel;
  out["bytes"] = bytes;
  out["packets"] = packets;
  return out;
}

// Progress for the engines: forwards to a Python callable (if any) at most every 0.2 s and checks
// for Ctrl-C, so a long run can be interrupted. Runs with the GIL released otherwise.
mixcast::sim::RunOptions run_options(const py::object& progress) {
  mixcast::sim::RunOptions opt;
  struct State {
    std::chrono::steady_clock::time_point last = std::chrono::steady_clock::now();
    bool finished = false;
  };
  auto state = std::make_shared<State>();
  opt.progress = [progress, state](double sim_s, double done, std::uint64_t events) {
    const auto now = std::chrono::steady_clock::now();
    const bool first_finished = done >= 1.0 && !state->finished;  // always report reaching 100%
    if (!first_finished && now - state->last < std::chrono::milliseconds(200)) return;
    state->last = now;
    state->finished = state->finished || done >= 1.0;
    py::gil_scoped_acquire gil;
    if (PyErr_CheckSignals() != 0) throw py::error_already_set();
    if (!progress.is_none()) progress(sim_s, done, events);
  };
  return opt;
}

RunResult run_engine(const std::string& engine, const PyScenario& sc, const py::object& progress) {
#ifdef MIXCAST_HAVE_NS3
  const char* available = "model, ns3";
#else
  const char* available = "model";
  if (engine == "ns3")
    throw py::value_error("engine ns3 is not built into this mixcast module (ns-3 3.37 was not found at build time)");
#endif
  if (engine != "model" && engine != "ns3")
    throw py::value_error("unknown engine '" + engine + "' (available: " + available + ")");
  // The callback object is copied into the std::function: take the copies while holding the GIL,
  // and drop them holding it too.
  auto opt = std::make_unique<mixcast::sim::RunOptions>(run_options(progress));
#ifdef MIXCAST_HAVE_NS3
  // Stricter than run_ns3's own guard (one run at a time): a second ns-3 run in a process starts
  // from the first one's leftovers (measured: other ARP and handshake timings), so its results
  // would not match mixcast-sim's for the same scenario and seed. Refuse it instead.
  static std::atomic<int> ns3_state{0};  // 0 never ran, 1 running, 2 ran
  if (engine == "ns3") {
    int expected = 0;
    if (!ns3_state.compare_exchange_strong(expected, 1)) {
      throw EngineBusy(expected == 1
                           ? "the ns3 engine is already running in this process: ns-3 keeps global state, so one "
                             "ns-3 run per process at a time (use mixcast.run(..., isolate=True))"
                           : "ns-3 already ran once in this process: ns-3 keeps global state, so a second run "
                             "would not reproduce mixcast-sim's results; run each ns-3 simulation in its own "
                             "process (mixcast.run(scenario, 'ns3', isolate=True) does that)");
    }
  }
  struct MarkDone {
    bool ns3;
    ~MarkDone() {
      if (ns3) ns3_state = 2;
    }
  } mark_done{engine == "ns3"};
#endif
  RunResult r;
  try {
    py::gil_scoped_release release;
#ifdef MIXCAST_HAVE_NS3
    if (engine == "ns3") {
      r = mixcast::sim::run_ns3(sc.s, *opt);
    } else
#endif
      r = mixcast::sim::run_model(sc.s, *opt);
  } catch (const std::logic_error& e) {
    if (engine == "ns3") throw EngineBusy(e.what());  // the one-run-per-process guard
    throw;
  }
  return r;
}

}  // namespace

PYBIND11_MODULE(_core, m) {
  m.doc() = "mixcast's C++ scenarios, engines and metrics (use the `mixcast` package, not this module)";
  m.attr("__version__") = MIXCAST_VERSION;
#ifdef MIXCAST_HAVE_NS3
  m.attr("has_ns3") = true;
#else
  m.attr("has_ns3") = false;
#endif

  // A scenario problem is bad input: a ValueError; an output folder problem an OSError.
  static py::exception<mixcast::sim::ScenarioError> scenario_error(m, "ScenarioError", PyExc_ValueError);
  static py::exception<mixcast::sim::OutputError> output_error(m, "OutputError", PyExc_OSError);
  static py::exception<EngineBusy> busy_error(m, "EngineBusyError", PyExc_RuntimeError);
  py::register_exception_translator([](std::exception_ptr p) {
    try {
      if (p) std::rethrow_exception(p);
    } catch (const EngineBusy& e) {
      PyErr_SetString(busy_error.ptr(), e.what());
    } catch (const mixcast::sim::ScenarioError& e) {
      PyErr_SetString(scenario_error.ptr(), e.what());
    } catch (const mixcast::sim::OutputError& e) {
      PyErr_SetString(output_error.ptr(), e.what());
    }
  });

  m.def("ceil_log2", &mixcast::ceil_log2, py::arg("n"), "Smallest r with 2**r >= n (0 for n <= 1).");
  m.def(
      "lower_bound_tcp", [](std::uint64_t n) { return mixcast::ceil_log2(n); }, py::arg("nodes"),
      "Round lower bound of TCP mode for n nodes: ceil(log2 n).");
  m.def(
      "lower_bound_mixed", [](std::uint64_t islands) { return mixcast::ceil_log2(islands) + 1; }, py::arg("islands"),
      "Round lower bound of mixed mode with S multicast islands: ceil(log2 S) + 1.");

  py::class_<PyScenario>(m, "Scenario", "A validated scenario (use mixcast.load_scenario).")
      .def_property_readonly("name", [](const PyScenario& p) { return p.s.name; })
      .def_property_readonly("source", [](const PyScenario& p) { return p.s.source; })
      .def_property_readonly("path", [](const PyScenario& p) { return p.path; })
      .def_property_readonly("text", [](const PyScenario& p) { return p.text; })
      .def_property_readonly("overrides", [](const PyScenario& p) { return p.overrides; })
      .def_property_readonly("rescaled_to", [](const PyScenario& p) { return p.nodes; })
      .def_property_readonly("seed", [](const PyScenario& p) { return p.s.seed; })
      .def_property_readonly("mode", [](const PyScenario& p) { return std::string(mixcast::to_string(p.s.protocol.mode)); })
      .def_property_readonly("nodes", [](const PyScenario& p) { return p.s.total_nodes(); })
      .def_property_readonly("subnets", [](const PyScenario& p) { return p.s.total_subnets(); })
      .def_property_readonly("islands", [](const PyScenario& p) { return island_count(p.s); },
                             "Multicast islands: one per subnet with multicast, one per node of a subnet without.")
      .def_property_readonly("broadcasts", [](const PyScenario& p) { return p.s.workload.broadcasts; })
      .def_property_readonly("warmup_broadcasts", [](const PyScenario& p) { return p.s.workload.warmup_broadcasts; })
      .def_property_readonly("time_limit_s", [](const PyScenario& p) { return p.s.time_limit_s; })
      .def_property_readonly("topology", [](const PyScenario& p) { return scenario_topology(p.s); })
      .def(
          "lower_bounds",
          [](const PyScenario& p) {
            py::dict d;
            d["tcp"] = mixcast::ceil_log2(p.s.total_nodes());
            d["mixed"] = mixcast::ceil_log2(island_count(p.s)) + 1;
            return d;
          },
          "Round lower bounds of this topology: {'tcp': ceil(log2 n), 'mixed': ceil(log2 S) + 1}.")
      .def("explain", [](const PyScenario& p) { return mixcast::sim::explain(p.s); })
      .def(
          "with_overrides",
          [](const PyScenario& p, const std::vector<std::string>& extra) {
            std::vector<std::string> all = p.overrides;
            all.insert(all.end(), extra.begin(), extra.end());
            return make_scenario(p.path, p.text, p.s.source, all, p.nodes);
          },
          py::arg("overrides"),
          "A new scenario: this one's source reloaded with more KEY=VALUE overrides (applied after the\n"
          "earlier ones, like repeated --set), then rescaled as this one was.")
      .def(
          "rescaled",
          [](const PyScenario& p, std::uint32_t nodes) {
            return make_scenario(p.path, p.text, p.s.source, p.overrides, nodes);
          },
          py::arg("nodes"), "A new scenario rescaled to `nodes` nodes (like mixcast-sim --nodes).")
      .def("__repr__", [](const PyScenario& p) {
        return "<mixcast.Scenario '" + p.s.name + "' " + std::to_string(p.s.total_nodes()) + " nodes, " +
               std::string(mixcast::to_string(p.s.protocol.mode)) + " mode, seed " + std::to_string(p.s.seed) + ">";
      });

  m.def(
      "_load_scenario",
      [](const std::string& path, const std::vector<std::string>& overrides, std::optional<std::uint32_t> nodes) {
        return make_scenario(path, "", "", overrides, nodes);
      },
      py::arg("path"), py::arg("overrides"), py::arg("nodes"));
  m.def(
      "_load_scenario_text",
      [](const std::string& text, const std::string& source_name, const std::vector<std::string>& overrides,
         std::optional<std::uint32_t> nodes) { return make_scenario("", text, source_name, overrides, nodes); },
      py::arg("text"), py::arg("source_name"), py::arg("overrides"), py::arg("nodes"));

  py::class_<RunResult>(m, "RunResult", "What one engine run produced (wrapped by mixcast.Result).")
      .def_readonly("engine", &RunResult::engine)
      .def_readonly("duplicates", &RunResult::duplicates)
      .def_readonly("repairs", &RunResult::repairs)
      .def_readonly("forced_tcp", &RunResult::forced_tcp)
      .def_readonly("redelegations", &RunResult::redelegations)
      .def_readonly("bad_frames", &RunResult::bad_frames)
      .def_readonly("islands", &RunResult::islands)
      .def_readonly("measured_from_s", &RunResult::measured_from_s)
      .def_readonly("islands_agreed", &RunResult::islands_agreed)
      .def_readonly("simulated_s", &RunResult::simulated_s)
      .def_readonly("wall_s", &RunResult::wall_s)
      .def_readonly("events", &RunResult::events)
      .def("summary", [](const RunResult& r) { return to_python(mixcast::sim::summarize(r)); },
           "summary.json as a dict (the same figures the CLI writes).")
      .def("human_summary", [](const RunResult& r) { return mixcast::sim::human_summary(mixcast::sim::summarize(r)); })
      .def("deliveries", &deliveries_columns)
      .def("broadcasts", &broadcasts_columns)
      .def("traffic", &traffic_columns)
      .def("link_rounds", &link_rounds_columns)
      .def("crashed_at_s",
           [](const RunResult& r) {
             auto a = column<double>(r.crashed_at_s.size());
             for (std::size_t i = 0; i < r.crashed_at_s.size(); ++i) a.mutable_at(static_cast<py::ssize_t>(i)) = r.crashed_at_s[i];
             return a;
           })
      .def(
          "write",
          [](const RunResult& r, const std::string& dir) {
            const nlohmann::json summary = mixcast::sim::summarize(r);
            py::gil_scoped_release release;
            mixcast::sim::write_outputs(r, summary, dir);
          },
          py::arg("dir"), "Writes summary.json, deliveries.csv, broadcasts.csv (and links.csv) like mixcast-sim run.");

  m.def(
      "_run", [](const std::string& engine, const PyScenario& sc, const py::object& progress) {
        return run_engine(engine, sc, progress);
      },
      py::arg("engine"), py::arg("scenario"), py::arg("progress") = py::none());
}
