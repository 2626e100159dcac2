// The model engine: a deterministic discrete-event network in memory that runs one core node per
// scenario node. Same scenario and seed -> identical results.
#pragma once
#include <functional>

#include "mixcast/sim/result.hpp"
#include "mixcast/sim/scenario.hpp"

namespace mixcast::sim {

struct RunOptions {
  // Called now and then with simulated seconds and the share of expected deliveries done (0..1).
  std::function<void(double simulated_s, double done)> progress;
};

RunResult run_model(const Scenario& scenario, const RunOptions& options = {});

}  // namespace mixcast::sim
