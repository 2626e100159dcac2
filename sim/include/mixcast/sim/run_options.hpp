// Options every engine's run function takes.
#pragma once
#include <cstdint>
#include <functional>

namespace mixcast::sim {

struct RunOptions {
  // Called now and then with simulated seconds, the share of expected deliveries done (0..1) and
  // the engine's events processed so far.
  std::function<void(double simulated_s, double done, std::uint64_t events)> progress;
};

}  // namespace mixcast::sim
