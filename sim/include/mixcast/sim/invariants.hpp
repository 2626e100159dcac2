// The invariants every run must hold, checked by one function after every run: by the engine
// tests, `mixcast-sim explore` and the testbed. docs/invariants.md states them for users.
//   delivery     every node up from a broadcast's start to the end of the run delivers it, and no
//                node delivers a broadcast twice (within one incarnation)
//   integrity    nothing is delivered that was never broadcast; payloads arrive intact
//   determinism  the same scenario and seed give byte-identical CSV tables (compare_tables)
//   termination  a run never waits for its time limit for work that cannot happen
//   rounds       TCP mode without loss or faults: rounds.max is ceil(log2 n), plus at most one per
//                NAT subnet (each relay through a gateway costs a round)
#pragma once
#include <string>
#include <utility>
#include <vector>

#include "mixcast/sim/result.hpp"

namespace mixcast::sim {

struct Violation {
  std::string invariant;  // delivery, integrity, determinism, termination, rounds
  std::string detail;     // what was seen, for people
};

std::vector<Violation> check_invariants(const RunResult& result);

// The run's CSV tables as write_outputs() writes them: {file name, text}.
std::vector<std::pair<std::string, std::string>> csv_tables(const RunResult& result);

// Determinism: the tables of two runs of the same scenario and seed must be byte-identical.
std::vector<Violation> compare_tables(const RunResult& a, const RunResult& b);

// Whether the scenario has no loss and no faults (the rounds invariant applies to these).
bool fault_free(const Scenario& s);

}  // namespace mixcast::sim
