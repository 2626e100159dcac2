// Mixed-mode reachability learning between a few nodes on one simulated multicast group:
// confirmations travel as multicast heard lists, TCP only to senders that cannot hear them.
#include <gtest/gtest.h>

#include <map>
#include <memory>
#include <set>
#include <vector>

#include "mixcast/core/node.hpp"

using namespace mixcast;

namespace {

// One multicast group plus TCP between every pair, 100 us latency, stepped in 1 ms ticks.
// `mute` nodes' multicasts reach nobody (their receive side works).
struct Group {
  std::vector<std::unique_ptr<Node>> nodes;
  std::set<NodeId> mute;
  std::map<NodeId, std::uint64_t> tcp_confirms_from;
  std::uint64_t multicasts = 0;  // Confirm messages sent over TCP, by sender
  std::uint64_t list_datagram_bytes_max = 0;  // of datagrams carrying a heard list
  Micros now = 0;
  NodeId stride;

  // Node k has id k * stride (scattered ids make heard lists longer).
  Group(std::size_t n, NodeConfig base, NodeId id_stride = 1) : stride(id_stride) {
    std::vector<NodeId> ids;
    for (NodeId i = 0; i < n; ++i) ids.push_back(i * stride);
    auto view = std::make_shared<const View>(ids);
    for (NodeId i = 0; i < n; ++i) {
      base.self = i * stride;
      base.seed = 7 + i;
      nodes.push_back(std::make_unique<Node>(base, view));
    }
  }

  void run_until(Micros end) {
    struct InFlight {
      NodeId from, to;
      Channel channel;
      wire::Bytes bytes;
    };
    std::vector<InFlight> flight;
    for (; now <= end; now += 1000) {
      for (auto& f : flight) nodes[f.to / stride]->on_frame(f.from, f.channel, f.bytes.data(), f.bytes.size(), now);
      flight.clear();
      for (auto& node : nodes) {
        if (node->next_timeout() <= now) node->on_timeout(now);
        while (auto t = node->poll_transmit()) {
          const NodeId from = node->id();
          if (t->channel == Channel::multicast) {
            ++multicasts;
            for (const auto& m : wire::decode_frame(t->bytes).messages)
              if (std::holds_alternative<wire::HeardList>(m))
                list_datagram_bytes_max = std::max<std::uint64_t>(list_datagram_bytes_max, t->bytes.size());
            if (mute.count(from)) continue;
            for (const auto& to : nodes)
              if (to->id() != from) flight.push_back({from, to->id(), Channel::multicast, t->bytes});
          } else {
            for (const auto& m : wire::decode_frame(t->bytes).messages)
              if (std::holds_alternative<wire::Confirm>(m)) ++tcp_confirms_from[from];
            flight.push_back({from, t->to, Channel::tcp, std::move(t->bytes)});
          }
        }
        while (node->poll_delivery()) {
        }
      }
    }
  }
};

NodeConfig mixed_config() {
  NodeConfig c;
  c.mode = Mode::mixed;
  return c;
}

}  // namespace

TEST(Reachability, HeardListsConfirmEveryoneWithoutTcp) {
  Group g(6, mixed_config());
  g.run_until(2'000'000);
  for (NodeId a = 0; a < 6; ++a) {
    EXPECT_EQ(g.nodes[a]->island_count(), 1u) << "node " << a;
    EXPECT_GT(g.nodes[a]->counters().heard_lists, 0u);
    for (NodeId b = 0; b < 6; ++b) {
      if (a == b) continue;
      EXPECT_TRUE(g.nodes[a]->reachability().hears_me(b, g.now)) << a << " <- " << b;
    }
  }
  EXPECT_TRUE(g.tcp_confirms_from.empty()) << "a symmetric group needs no TCP confirmations";
}

TEST(Reachability, SenderThatCannotHearOurListsGetsTcpConfirms) {
  Group g(4, mixed_config());
  g.mute = {3};  // 3 hears the group, nobody hears 3 (so nobody hears 3's lists either)
  g.run_until(2'000'000);
  // 3 confirms over TCP to the senders it hears; they learn that 3 hears them.
  EXPECT_GT(g.tcp_confirms_from[3], 0u);
  for (NodeId a = 0; a < 3; ++a) {
    EXPECT_TRUE(g.nodes[a]->reachability().hears_me(3, g.now)) << "node " << a;
    EXPECT_FALSE(g.nodes[a]->reachability().i_hear(3, g.now));
    EXPECT_EQ(g.tcp_confirms_from.count(a), 0u) << "node " << a << " hears 3's nothing, confirms nothing";
  }
  // Nobody hears 3 both ways: islands {0, 1, 2} and {3}.
  EXPECT_EQ(g.nodes[0]->island_count(), 2u);
}

TEST(Reachability, ScatteredIdsSplitListsIntoDatagramsUnderTheLimit) {
  NodeConfig c = mixed_config();
  c.max_datagram_bytes = 200;  // about 80 scattered ids per datagram
  Group g(150, c, 3);         // ids 0, 3, 6, ...: every id is a run of its own
  g.run_until(1'200'000);
  EXPECT_LE(g.list_datagram_bytes_max, 200u);
  EXPECT_GT(g.list_datagram_bytes_max, 150u);  // and filled
  for (NodeId a : {0u, 77u, 149u}) {
    EXPECT_EQ(g.nodes[a]->island_count(), 1u) << "node " << a;
    for (NodeId b : {1u, 76u, 148u}) {
      if (a == b) continue;
      EXPECT_TRUE(g.nodes[a]->reachability().hears_me(3 * b, g.now)) << a << " <- " << b;
    }
  }
  EXPECT_TRUE(g.tcp_confirms_from.empty());
}

TEST(Reachability, SteadyStateCostsAboutOneMulticastPerNodePerBeaconInterval) {
  Group g(32, mixed_config());
  g.run_until(1'000'000);
  const auto learned = g.multicasts;
  g.run_until(3'000'000);
  // 2 s at one list (or beacon) per 100 ms: 20 per node, plus island announcement refreshes.
  const double per_node = double(g.multicasts - learned) / 32;
  EXPECT_GE(per_node, 19.0);
  EXPECT_LE(per_node, 24.0);
  EXPECT_TRUE(g.tcp_confirms_from.empty());
}
