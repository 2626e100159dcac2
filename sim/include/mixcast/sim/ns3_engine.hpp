// The ns-3 engine: the scenario as a packet-level network in ns-3.37 (CSMA LANs with a router per
// datacenter, point-to-point WAN links, static routes, multicast inside subnets, NAT gateways) with
// one core node per scenario node, hosted by an ns3::Application. Same outputs as the model
// engine, plus bytes per link per round (RunResult::links).
//
// ns-3 keeps global state (one simulator, one set of nodes): one run per process at a time. A
// second concurrent call throws std::logic_error.
#pragma once
#include "mixcast/sim/result.hpp"
#include "mixcast/sim/run_options.hpp"
#include "mixcast/sim/scenario.hpp"

namespace mixcast::sim {

RunResult run_ns3(const Scenario& scenario, const RunOptions& options = {});

}  // namespace mixcast::sim
