// Benchmark: one TCP-mode broadcast to N nodes in the model engine. Prints wall time, peak memory
// and rounds; medians over repetitions. Usage: mixcast-bench-model [N...] [--reps R]
#include <sys/resource.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include "mixcast/sim/model_engine.hpp"

using namespace mixcast::sim;

int main(int argc, char** argv) {
  std::vector<std::uint32_t> sizes;
  int reps = 3;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    if (a == "--reps" && i + 1 < argc) reps = std::atoi(argv[++i]);
    else if (a == "--help") {
      std::puts("mixcast-bench-model [N...] [--reps R]: one TCP broadcast to N nodes (default 100000)");
      return 0;
    } else sizes.push_back(static_cast<std::uint32_t>(std::strtoul(a.c_str(), nullptr, 10)));
  }
  if (sizes.empty()) sizes = {100000};
  std::printf("%10s %12s %12s %8s %8s %12s\n", "nodes", "wall_s_p50", "events", "rounds", "bound", "delivered");
  for (auto n : sizes) {
    Scenario s = single_subnet_scenario(n, "bench");
    std::vector<double> walls;
    RunResult last;
    for (int r = 0; r < reps; ++r) {
      auto t0 = std::chrono::steady_clock::now();
      last = run_model(s);
      walls.push_back(std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
    }
    std::sort(walls.begin(), walls.end());
    std::uint32_t rounds = 0;
    for (const auto& d : last.deliveries) rounds = std::max(rounds, d.round);
    std::printf("%10u %12.3f %12llu %8u %8u %12zu\n", n, walls[walls.size() / 2],
                static_cast<unsigned long long>(last.events), rounds, mixcast::ceil_log2(n), last.deliveries.size());
  }
  rusage ru{};
  getrusage(RUSAGE_SELF, &ru);
  std::printf("peak_rss_mib %.1f\n", static_cast<double>(ru.ru_maxrss) / 1024.0);
  return 0;
}
