#include "mixcast/sim/invariants.hpp"

#include <algorithm>
#include <string>

#include "mixcast/sim/metrics.hpp"

namespace mixcast::sim {

bool fault_free(const Scenario& s) {
  if (!s.crashes.empty()) return false;
  for (const auto& w : s.wan)
    if (w.link.loss > 0) return false;
  for (const auto& dc : s.datacenters)
    for (const auto& sub : dc.subnets)
      if (sub.lan.loss > 0 || sub.multicast_loss > 0 || sub.multicast_fails_at_s >= 0 ||
          !sub.multicast_send_broken.empty() || !sub.multicast_recv_broken.empty())
        return false;
  return true;
}

std::vector<Violation> check_invariants(const RunResult& r) {
  std::vector<Violation> out;
  const Scenario& s = r.scenario;
  // A NATed node whose gateways are all down is cut off (no_gateway): the network, not the protocol,
  // keeps those deliveries from happening. Every other missing delivery is a violation.
  std::vector<const MissingDelivery*> missed;
  for (const auto& m : r.missing)
    if (m.cause != "no_gateway") missed.push_back(&m);
  if (!missed.empty()) {
    const MissingDelivery& m = *missed.front();
    out.push_back({"delivery", std::to_string(missed.size()) + " expected deliveries missing (first: broadcast " +
                                   std::to_string(m.broadcast) + " at node " + std::to_string(m.node) + ", " +
                                   m.cause + ")"});
  }
  if (r.duplicates > 0)
    out.push_back({"delivery", std::to_string(r.duplicates) + " broadcasts delivered twice to one node"});
  if (r.invented > 0) out.push_back({"integrity", std::to_string(r.invented) + " deliveries of messages never broadcast"});
  if (r.corrupted > 0) out.push_back({"integrity", std::to_string(r.corrupted) + " deliveries with a changed payload"});
  if (r.end == EndReason::time_limit)
    out.push_back({"termination", "the run went on to its time limit (" + std::to_string(s.time_limit_s) +
                                      " s); the last broadcast started at " + std::to_string(r.last_start_s) + " s"});
  if (s.protocol.mode == Mode::tcp && fault_free(s) && r.missing.empty()) {
    const nlohmann::json summary = summarize(r);
    const auto max = summary["rounds"]["max"].get<std::uint64_t>();
    const auto bound = summary["rounds"]["lower_bound"].get<std::uint64_t>();
    std::uint64_t nat_subnets = 0;
    for (const auto& dc : s.datacenters)
      for (const auto& sub : dc.subnets) nat_subnets += sub.nat ? 1 : 0;
    if (summary["broadcasts"].get<std::uint64_t>() > 0 && (max < bound || max > bound + nat_subnets))
      out.push_back({"rounds", "rounds.max " + std::to_string(max) + " outside [" + std::to_string(bound) + ", " +
                                   std::to_string(bound + nat_subnets) + "] (ceil(log2 n) plus one per NAT subnet)"});
  }
  return out;
}

std::vector<Violation> compare_tables(const RunResult& a, const RunResult& b) {
  std::vector<Violation> out;
  const auto ta = csv_tables(a), tb = csv_tables(b);
  for (std::size_t i = 0; i < std::max(ta.size(), tb.size()); ++i) {
    if (i < ta.size() && i < tb.size() && ta[i] == tb[i]) continue;
    const std::string name = i < ta.size() ? ta[i].first : tb[i].first;
    std::string where;
    if (i < ta.size() && i < tb.size()) {
      const auto& x = ta[i].second;
      const auto& y = tb[i].second;
      const auto diff = std::mismatch(x.begin(), x.end(), y.begin(), y.end());
      where = " (first difference on line " +
              std::to_string(1 + std::count(x.begin(), diff.first, '\n')) + ")";
    }
    out.push_back({"determinism", name + " differs between two runs of the same scenario and seed" + where});
  }
  return out;
}

}  // namespace mixcast::sim
