// The model engine: a deterministic discrete-event network in memory that runs one core node per
// scenario node. Same scenario and seed -> identical results.
#pragma once
#include "mixcast/sim/result.hpp"
#include "mixcast/sim/run_options.hpp"
#include "mixcast/sim/scenario.hpp"

namespace mixcast::sim {

RunResult run_model(const Scenario& scenario, const RunOptions& options = {});

}  // namespace mixcast::sim
