// The model engine's network: who can reach whom, how long it takes, what gets lost. Protocol-free.
//   - each node sends through its own NIC at its subnet's LAN bandwidth (serialisation delay);
//   - paths: same subnet = one LAN hop; same datacenter = two LAN hops via the router; across
//     datacenters = LAN + shortest WAN path (by latency, bottleneck bandwidth, queued per direction) + LAN;
//   - TCP: a connection costs one round trip before its first frame (the other side's frames wait
//     for that handshake too, and it hears the link is up then); a lost segment is retransmitted
//     after an RTO, and frames of a connection never overtake each other;
//   - a crash is a process crash: its kernel closes its connections (the peers see a FIN after what
//     it had sent), new connections to it fail after a round trip (reset), and a restarted node
//     starts with no connections; connections into a NAT subnet
//     from outside it are never dialled: frames wait until the NAT side opens the connection (the
//     engine holds them, as the real and ns-3 engines do);
//   - multicast reaches the sender's subnet only, each receiver losing it independently.
#pragma once
#include <cstdint>
#include <optional>
#include <unordered_map>
#include <vector>

#include "mixcast/core/rng.hpp"
#include "mixcast/core/types.hpp"
#include "mixcast/sim/scenario.hpp"

namespace mixcast::sim {

class NetworkModel {
 public:
  using Nanos = std::int64_t;
  static constexpr Nanos kMinRto = 200'000'000;

  explicit NetworkModel(const Scenario& s);

  bool crashed(NodeId n) const { return crashed_[n]; }
  struct Closed {
    NodeId peer;
    Nanos at;  // when the FIN reaches the peer, behind everything the crashed node had sent it
  };
  std::vector<Closed> crash(NodeId n, Nanos now);  // the connections its kernel closes
  // A crashed node's process starts again: it holds no connection (peers' old ones are dead).
  void restart(NodeId n);
  std::uint32_t subnet_of(NodeId n) const { return subnet_of_[n]; }
  bool behind_nat(NodeId n) const { return subnets_[subnet_of_[n]].nat; }

  Nanos latency(NodeId a, NodeId b) const;  // one way, propagation only
  // Whether `from` may open a connection to `to` (NAT: only from inside the subnet).
  bool may_connect(NodeId from, NodeId to) const;
  // Whether `to` hears multicasts from `from` at time `now` (same subnet, multicast working, not broken).
  bool hears_multicast(NodeId from, NodeId to, Nanos now) const;

  struct Unicast {
    Nanos arrival = 0;
    std::optional<Nanos> failed_at;  // the connection could not be made: report a link failure then
    bool held = false;  // `to` is behind a NAT and has no connection to `from`: wait for it to open one
    std::optional<Nanos> connected_at;  // a new connection: its handshake is done then (the link is up)
  };
  Unicast unicast(NodeId from, NodeId to, std::size_t bytes, Nanos now, Rng& rng);

  struct Arrival {
    NodeId to;
    Nanos at;
  };
  std::vector<Arrival> multicast(NodeId from, std::size_t bytes, Nanos now, Rng& rng);

 private:
  struct Subnet {
    std::uint32_t dc = 0;
    Nanos latency = 0;
    double bandwidth = 1e9, loss = 0;
    double multicast_loss = 0;  // LAN loss combined with the multicast-only loss
    bool multicast = true, nat = false;
    Nanos multicast_fails_at = -1, multicast_recovers_at = -1;
    std::vector<NodeId> members;
  };
  struct Connection {
    bool established = false;
    // The handshake: who dialled, and when it is done. The other side's bytes wait for it as well
    // (it could not send before the SYN came); it hears the link is up then, once.
    NodeId dialer = 0;
    Nanos ready_at = 0;
    bool other_side_told = false;
    Nanos last_arrival[2] = {0, 0};  // per direction: lower id -> higher id, and back
  };
  Nanos serialise(Nanos start, std::size_t bytes, double bandwidth) const;

  std::vector<Subnet> subnets_;
  std::vector<std::uint32_t> subnet_of_;
  std::vector<bool> crashed_, send_broken_, recv_broken_;
  std::vector<Nanos> nic_busy_;
  std::uint32_t dcs_ = 0;
  std::vector<Nanos> wan_latency_;   // dcs x dcs, shortest path
  std::vector<double> wan_bandwidth_, wan_loss_;
  std::vector<Nanos> wan_busy_;      // dcs x dcs, per direction
  std::unordered_map<std::uint64_t, Connection> connections_;
};

}  // namespace mixcast::sim
