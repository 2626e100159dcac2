// Options every engine's run function takes.
#pragma once
#include <cstdint>
#include <functional>
#include <ostream>

namespace mixcast::sim {

struct RunOptions {
  // Called now and then with simulated seconds, the share of expected deliveries done (0..1) and
  // the engine's events processed so far.
  std::function<void(double simulated_s, double done, std::uint64_t events)> progress;
  // When set, the model engine writes one line per frame sent, frame received, link event, crash,
  // restart and broadcast start (`mixcast-sim run --trace`). It never changes the run.
  std::ostream* trace = nullptr;
};

}  // namespace mixcast::sim
