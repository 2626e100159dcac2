// Benchmark: a scenario on the ns-3 engine at N nodes x B broadcasts, and the same on the model
// engine side by side. Prints wall time (median of the repetitions), events, peak memory and
// delivery as one JSON object. One configuration per process, so peak RSS is this run's.
// Usage: mixcast-bench-ns3 [--scenario FILE] [--nodes N] [--broadcasts B] [--mode tcp|mixed] [--reps R]
#include <sys/resource.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "mixcast/sim/metrics.hpp"
#include "mixcast/sim/model_engine.hpp"
#include "mixcast/sim/ns3_engine.hpp"

using namespace mixcast::sim;

namespace {
double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v.empty() ? 0 : v[v.size() / 2];
}
double peak_rss_mb() {
  rusage u{};
  getrusage(RUSAGE_SELF, &u);
  return static_cast<double>(u.ru_maxrss) / 1024.0;
}
}  // namespace

int main(int argc, char** argv) {
  std::string scenario = std::string(MIXCAST_SOURCE_DIR) + "/scenarios/multi-subnet.yaml", mode = "tcp";
  unsigned nodes = 1000, broadcasts = 10;
  int reps = 3;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    auto next = [&]() -> std::string {
      if (i + 1 >= argc) {
        std::fprintf(stderr, "mixcast-bench-ns3: %s needs a value\n", a.c_str());
        std::exit(2);
      }
      return argv[++i];
    };
    if (a == "--scenario") scenario = next();
    else if (a == "--nodes") nodes = static_cast<unsigned>(std::strtoul(next().c_str(), nullptr, 10));
    else if (a == "--broadcasts") broadcasts = static_cast<unsigned>(std::strtoul(next().c_str(), nullptr, 10));
    else if (a == "--mode") mode = next();
    else if (a == "--reps") reps = std::max(1, std::atoi(next().c_str()));
    else if (a == "--help") {
      std::puts("mixcast-bench-ns3 [--scenario FILE] [--nodes N] [--broadcasts B] [--mode tcp|mixed] [--reps R]\n"
                "  ns-3 and model engine on one scenario (default scenarios/multi-subnet.yaml, 1000 nodes,\n"
                "  10 broadcasts, tcp, 3 repetitions); prints medians and peak memory as JSON");
      return 0;
    } else {
      std::fprintf(stderr, "mixcast-bench-ns3: unknown argument '%s' (see --help)\n", a.c_str());
      return 2;
    }
  }
  try {
    Scenario s = load_scenario(scenario, {"protocol.mode=" + mode, "workload.broadcasts=" + std::to_string(broadcasts)});
    rescale(s, nodes);
    validate(s);
    std::vector<double> ns3_wall, model_wall;
    RunResult ns3_last, model_last;
    for (int r = 0; r < reps; ++r) {  // alternate the engines so noise hits both alike
      auto t0 = std::chrono::steady_clock::now();
      ns3_last = run_ns3(s);
      ns3_wall.push_back(std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
      t0 = std::chrono::steady_clock::now();
      model_last = run_model(s);
      model_wall.push_back(std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
    }
    const auto js = summarize(ns3_last), jm = summarize(model_last);
    const nlohmann::json out = {
        {"scenario", s.name}, {"mode", mode}, {"nodes", nodes}, {"broadcasts", broadcasts}, {"reps", reps},
        {"ns3", {{"wall_s_p50", median(ns3_wall)}, {"events", ns3_last.events}, {"simulated_s", ns3_last.simulated_s},
                 {"delivery_ratio", js["delivery_ratio"]}, {"rounds_max", js["rounds"]["max"]}}},
        {"model", {{"wall_s_p50", median(model_wall)}, {"events", model_last.events},
                   {"delivery_ratio", jm["delivery_ratio"]}, {"rounds_max", jm["rounds"]["max"]}}},
        {"ns3_over_model_wall", median(model_wall) > 0 ? median(ns3_wall) / median(model_wall) : 0.0},
        {"peak_rss_mb", peak_rss_mb()}};
    std::puts(out.dump(2).c_str());
  } catch (const std::exception& e) {
    std::fprintf(stderr, "mixcast-bench-ns3: %s\n", e.what());
    return 2;
  }
  return 0;
}
