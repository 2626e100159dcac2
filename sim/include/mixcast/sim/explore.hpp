// Random scenarios as users write them, and shrinking a failing one to a small case
// (`mixcast-sim explore`). Every case is a plain Scenario: to_yaml() writes it as a scenario file
// that `mixcast-sim run` replays.
#pragma once
#include <cstdint>
#include <functional>

#include "mixcast/sim/scenario.hpp"

namespace mixcast::sim {

struct ExploreLimits {
  std::uint32_t max_nodes = 500;
  // Broadcasts x nodes per case, so a case stays a fraction of a second on the model engine.
  std::uint64_t max_deliveries = 200'000;
  bool restarts = true;  // crashed nodes may come back (crashes[].restart_after); the ns3 engine cannot yet
};

// Case `index` of an exploration seeded with `seed`: topology (1-6 datacenters, 1-8 subnets each,
// NAT and multicast-less subnets, broken senders and receivers, loss, latency, bandwidth), mode,
// workload (1 to thousands of broadcasts, up to 1,000/s, payloads up to 64 KiB) and crashes aimed
// at origins, NAT gateways, island leaders and random nodes, at any time, warm-up included, some of
// them restarting; a subnet's multicast may fail, and recover.
// The same (seed, index) always gives the same case. Always valid (validate() passes).
Scenario random_case(std::uint64_t seed, std::uint64_t index, const ExploreLimits& limits = {});

// Greedy shrinking: tries smaller variants (fewer broadcasts, crashes, datacenters, subnets, nodes,
// no loss) and keeps each one for which `still_fails` is true, until none helps or `budget` runs
// were spent. Returns the smallest failing case found.
Scenario shrink(const Scenario& failing, const std::function<bool(const Scenario&)>& still_fails,
                std::uint32_t budget = 80);

}  // namespace mixcast::sim
