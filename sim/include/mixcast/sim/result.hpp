// What an engine run produces; metrics and output writers turn it into summary.json and CSVs.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "mixcast/core/types.hpp"
#include "mixcast/sim/scenario.hpp"

namespace mixcast::sim {

struct BroadcastRecord {
  std::uint32_t index = 0;  // 0-based, warm-up broadcasts first
  NodeId origin = 0;
  std::uint64_t seq = 0;
  double start_s = 0;
  bool warmup = false;
};

struct DeliveryRecord {
  std::uint32_t broadcast = 0;
  NodeId node = 0;
  std::uint32_t round = 0;
  double time_s = 0;  // since the broadcast started
  Channel channel = Channel::tcp;
};

// Traffic attributed to one broadcast (frames are attributed to the first broadcast they carry;
// acks to the broadcast they acknowledge). Control traffic (beacons, confirmations) is kept apart.
struct Traffic {
  std::uint64_t tcp_messages = 0, tcp_bytes = 0;
  std::uint64_t multicast_messages = 0, multicast_bytes = 0;
  // Parts of the TCP figures above (message bytes without stream framing).
  std::uint64_t repair_messages = 0, repair_bytes = 0;  // resent because a multicast was missed
  std::uint64_t forced_messages = 0, forced_bytes = 0;  // forced TCP copies
  // First deliveries that came by a repair or by a forced copy: the losses each of them made good.
  std::uint64_t delivered_by_repair = 0, delivered_by_forced = 0;
  Traffic& operator+=(const Traffic& o) {
    tcp_messages += o.tcp_messages; tcp_bytes += o.tcp_bytes;
    multicast_messages += o.multicast_messages; multicast_bytes += o.multicast_bytes;
    repair_messages += o.repair_messages; repair_bytes += o.repair_bytes;
    forced_messages += o.forced_messages; forced_bytes += o.forced_bytes;
    delivered_by_repair += o.delivered_by_repair; delivered_by_forced += o.delivered_by_forced;
    return *this;
  }
};

// Packet-level engines count what crosses each link: every frame's bytes (headers included) as
// the device sends it, by the round of the broadcast message it carries. Round 0 holds what no
// measured broadcast's message rode in: TCP handshakes and pure acks, control messages, warm-up.
enum class LinkKind : std::uint8_t { lan, wan, nat };
constexpr const char* to_string(LinkKind k) { return k == LinkKind::lan ? "LAN" : k == LinkKind::wan ? "WAN" : "NAT"; }

struct LinkInfo {
  std::string name;  // lan:<dc>/<subnet>, wan:<dc>><dc> (one per direction), nat:<dc>/<subnet>
  LinkKind kind = LinkKind::lan;
};

struct LinkRound {
  std::uint32_t link = 0;  // index into RunResult::links
  std::uint32_t round = 0;
  Channel channel = Channel::tcp;
  std::uint64_t bytes = 0, packets = 0;
};

// Why a run stopped. `time_limit` while deliveries are still missing means the run waited for work
// that could not happen: the termination invariant (invariants.hpp) fails on it.
enum class EndReason : std::uint8_t { complete, quiet, idle, time_limit };
constexpr const char* to_string(EndReason e) {
  return e == EndReason::complete ? "complete" : e == EndReason::quiet ? "quiet" : e == EndReason::idle ? "idle" : "time_limit";
}

// An expected delivery that did not happen: a node up from the broadcast's start to the end of the
// run that never delivered it, with what the run book knows of why.
struct MissingDelivery {
  std::uint32_t broadcast = 0;
  NodeId node = 0;
  std::string cause;  // no_gateway, crashed_delegate, never_reached
};

struct RunResult {
  std::string engine;  // "model", "ns3", "real"
  Scenario scenario;   // as run (after overrides and rescaling)
  std::vector<BroadcastRecord> broadcasts;
  std::vector<DeliveryRecord> deliveries;  // first deliveries only, in time order
  std::vector<double> crashed_at_s;        // per node: < 0 if it never crashed
  std::vector<Traffic> traffic;            // per broadcast
  Traffic control;                         // not attributable to a broadcast
  std::uint64_t duplicates = 0;            // deliveries beyond the first per (node, broadcast): must be 0
  std::uint64_t repairs = 0;               // all runs long: messages resent because a multicast was missed
  std::uint64_t forced_tcp = 0;            // all run long: TCP copies sent to multicast-reachable nodes
  std::uint64_t redelegations = 0;         // delegations handed to another node after a failure
  std::uint32_t restarts = 0;              // crashed nodes brought back (each as a new life)
  std::uint64_t bad_frames = 0;
  std::uint32_t islands = 0;               // islands known to the origins when measurement began
  double measured_from_s = 0;              // when the first measured broadcast was due
  bool islands_agreed = true;              // mixed: every live node had the same islands by then
  std::vector<LinkInfo> links;             // packet-level engines only
  std::vector<LinkRound> link_rounds;      // sorted by link, round, channel
  std::vector<MissingDelivery> missing;    // sorted by broadcast, node
  std::uint64_t invented = 0;              // deliveries of messages no one broadcast
  std::uint64_t corrupted = 0;             // deliveries whose payload differs from what was sent
  EndReason end = EndReason::idle;
  double last_start_s = 0;                 // when the last broadcast started
  double simulated_s = 0;
  double wall_s = 0;
  std::uint64_t events = 0;
};

}  // namespace mixcast::sim
