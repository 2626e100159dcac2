#include <gtest/gtest.h>

#include <map>
#include <set>

#include "mixcast/sim/model_engine.hpp"
#include "mixcast/sim/scenario.hpp"

using namespace mixcast;
using namespace mixcast::sim;

namespace {
Scenario one_subnet(std::uint32_t nodes, std::uint32_t broadcasts = 1) {
  Scenario s = single_subnet_scenario(nodes, "test-lan");
  s.seed = 11;
  s.workload.broadcasts = broadcasts;
  return s;
}

// node -> deliveries of broadcast b
std::map<NodeId, int> deliveries_of(const RunResult& r, std::uint32_t b) {
  std::map<NodeId, int> m;
  for (const auto& d : r.deliveries)
    if (d.broadcast == b) ++m[d.node];
  return m;
}

std::uint32_t max_round(const RunResult& r) {
  std::uint32_t m = 0;
  for (const auto& d : r.deliveries) m = std::max(m, d.round);
  return m;
}
}  // namespace

TEST(ModelEngine, TcpRoundsAreCeilLog2ForEveryN) {
  for (std::uint32_t n = 1; n <= 1100; ++n) {
    auto r = run_model(one_subnet(n));
    ASSERT_EQ(r.deliveries.size(), n) << n;
    ASSERT_EQ(r.duplicates, 0u);
    ASSERT_EQ(max_round(r), ceil_log2(n)) << "n = " << n;
  }
  for (std::uint32_t n : {4097u}) {
    auto r = run_model(one_subnet(n));
    ASSERT_EQ(r.deliveries.size(), n);
    EXPECT_EQ(max_round(r), ceil_log2(n));
  }
}

TEST(ModelEngine, MultiDatacenterTcpReachesEveryone) {
  Scenario s = one_subnet(40, 5);
  DatacenterSpec us{"us", {SubnetSpec{}}};
  us.subnets[0].name = "us-a";
  us.subnets[0].nodes = 30;
  s.datacenters.push_back(us);
  s.wan.push_back(WanLinkSpec{"dc", "us", LinkSpec{100e6, 40e-3, 0.01}});
  auto r = run_model(s);
  for (std::uint32_t b = 0; b < 5; ++b) {
    auto m = deliveries_of(r, b);
    EXPECT_EQ(m.size(), 70u);
    for (auto [node, c] : m) EXPECT_EQ(c, 1) << node;
  }
  // Some deliveries crossed the WAN: they took at least its latency.
  double slowest = 0;
  for (const auto& d : r.deliveries) slowest = std::max(slowest, d.time_s);
  EXPECT_GT(slowest, 0.04);
}

TEST(ModelEngine, TenPercentCrashedAtBroadcastStart) {
  Scenario s = one_subnet(500, 3);
  s.workload.rate_per_s = 1;  // broadcasts at 0, 1, 2 s
  CrashSpec c;
  c.at_s = 1.0;  // the start of the second broadcast
  c.fraction = 0.1;
  s.crashes.push_back(c);
  auto r = run_model(s);
  std::set<NodeId> crashed;
  for (NodeId i = 0; i < r.crashed_at_s.size(); ++i)
    if (r.crashed_at_s[i] >= 0) crashed.insert(i);
  EXPECT_EQ(crashed.size(), 50u);
  for (std::uint32_t b = 1; b < 3; ++b) {
    auto m = deliveries_of(r, b);
    for (NodeId i = 0; i < 500; ++i) {
      if (crashed.count(i)) continue;
      EXPECT_EQ(m[i], 1) << "broadcast " << b << " node " << i;
    }
  }
  EXPECT_GT(r.redelegations, 0u);
  EXPECT_EQ(r.duplicates, 0u);
}

TEST(ModelEngine, SameSeedSameResultDifferentSeedDifferentOrigins) {
  Scenario s = one_subnet(200, 20);
  s.datacenters[0].subnets[0].lan.loss = 0.05;
  auto a = run_model(s);
  auto b = run_model(s);
  ASSERT_EQ(a.deliveries.size(), b.deliveries.size());
  for (std::size_t i = 0; i < a.deliveries.size(); ++i) {
    EXPECT_EQ(a.deliveries[i].node, b.deliveries[i].node);
    EXPECT_EQ(a.deliveries[i].time_s, b.deliveries[i].time_s);
    EXPECT_EQ(a.deliveries[i].round, b.deliveries[i].round);
  }
  s.seed = 12;
  auto c = run_model(s);
  bool differs = false;
  for (std::size_t i = 0; i < a.broadcasts.size(); ++i) differs |= a.broadcasts[i].origin != c.broadcasts[i].origin;
  EXPECT_TRUE(differs);
}

TEST(ModelEngine, TrafficIsAttributedToBroadcasts) {
  auto r = run_model(one_subnet(64, 4));
  ASSERT_EQ(r.traffic.size(), 4u);
  for (const auto& t : r.traffic) {
    EXPECT_GE(t.tcp_messages, 63u);  // at least one message per target
    EXPECT_GT(t.tcp_bytes, 63u * 64u);
    EXPECT_EQ(t.multicast_messages, 0u);
  }
}

namespace {
Scenario subnets(std::uint32_t count, std::uint32_t per_subnet, Mode mode) {
  Scenario s;
  s.name = "test-subnets";
  s.seed = 5;
  DatacenterSpec dc;
  dc.name = "dc";
  for (std::uint32_t i = 0; i < count; ++i) {
    SubnetSpec sub;
    sub.name = "s" + std::to_string(i);
    sub.nodes = per_subnet;
    dc.subnets.push_back(sub);
  }
  s.datacenters.push_back(dc);
  s.protocol.mode = mode;
  s.workload.broadcasts = 6;
  s.workload.warmup_broadcasts = 2;
  s.time_limit_s = 20;
  return s;
}

// Measured (not warm-up) deliveries: every live node exactly once per measured broadcast?
struct Measured {
  std::size_t broadcasts = 0, deliveries = 0;
  std::uint32_t max_round = 0;
  std::uint64_t repairs = 0, repaired = 0, forced_repaired = 0;
};
Measured measured(const RunResult& r) {
  Measured m;
  for (const auto& b : r.broadcasts) m.broadcasts += b.warmup ? 0 : 1;
  for (const auto& d : r.deliveries)
    if (!r.broadcasts[d.broadcast].warmup) {
      m.max_round = std::max(m.max_round, d.round);
      ++m.deliveries;
    }
  for (std::size_t b = 0; b < r.traffic.size(); ++b)
    if (!r.broadcasts[b].warmup) {
      m.repairs += r.traffic[b].repair_messages;
      m.repaired += r.traffic[b].delivered_by_repair;
      m.forced_repaired += r.traffic[b].delivered_by_forced;
    }
  return m;
}

void expect_rounds_bound(std::uint32_t islands, std::uint32_t nodes) {
  Scenario s = subnets(islands, nodes / islands, Mode::mixed);
  s.datacenters[0].subnets[0].nodes += nodes % islands;
  s.workload.broadcasts = 4;
  s.workload.warmup_broadcasts = 0;
  const auto r = run_model(s);
  const auto m = measured(r);
  SCOPED_TRACE(std::to_string(islands) + " islands, " + std::to_string(nodes) + " nodes");
  EXPECT_TRUE(r.islands_agreed);
  EXPECT_EQ(r.islands, islands);
  EXPECT_EQ(m.deliveries, std::size_t{4} * nodes);
  EXPECT_EQ(r.duplicates, 0u);
  EXPECT_EQ(m.max_round, ceil_log2(islands) + 1);
}
}  // namespace

TEST(ModelEngineMixed, RoundsAreCeilLog2SPlusOneForEveryIslandCountUpTo64) {
  for (std::uint32_t islands = 1; islands <= 64; ++islands) expect_rounds_bound(islands, std::max(8u, 4 * islands));
}

// Islands of two or more nodes (with only islands of one, no multicast is needed and the bound is
// the TCP one, ceil(log2 S)).
TEST(ModelEngineMixed, RoundsAreCeilLog2SPlusOneFrom8To256Nodes) {
  for (std::uint32_t nodes = 8; nodes <= 256; nodes *= 2) expect_rounds_bound(std::min(nodes / 2, 16u), nodes);
  expect_rounds_bound(7, 250);  // islands of unequal size
}

// Large: skipped in the sanitizer build (see scripts/test.sh), run in the release build.
TEST(ModelEngineMixedLarge, RoundsAreCeilLog2SPlusOneFrom512To4096Nodes) {
  expect_rounds_bound(16, 512);
  expect_rounds_bound(32, 1024);
  expect_rounds_bound(64, 4096);
}

TEST(ModelEngineMixed, LossyScenarioDeliversEveryMessageExactlyOnce) {
  for (double loss : {0.0, 0.05, 0.2, 0.4}) {
    Scenario s = load_scenario(std::string(MIXCAST_SOURCE_DIR) + "/scenarios/lossy.yaml");
    for (auto& dc : s.datacenters)
      for (auto& sub : dc.subnets) sub.multicast_loss = loss;
    const auto r = run_model(s);
    const auto m = measured(r);
    SCOPED_TRACE("multicast loss " + std::to_string(loss));
    EXPECT_EQ(m.deliveries, m.broadcasts * s.total_nodes());
    EXPECT_EQ(r.duplicates, 0u);
    if (loss == 0) {
      EXPECT_EQ(m.repairs, 0u);
      EXPECT_EQ(m.max_round, ceil_log2(4) + 1);
    } else {
      // Lost multicasts were made good by repairs (and some by forced TCP copies).
      EXPECT_GT(m.repaired, 0u);
      EXPECT_GE(m.repairs, m.repaired);
    }
  }
}

TEST(ModelEngineMixed, AsymmetricReachabilityStillDeliversBothWays) {
  Scenario s = subnets(2, 16, Mode::mixed);
  s.datacenters[0].subnets[0].multicast_send_broken = {3};  // hears the group; nobody hears it
  s.datacenters[0].subnets[0].multicast_recv_broken = {5};  // heard by the group; hears nothing
  s.workload.origins = {3, 5, 0, 20, 3, 5};
  s.workload.broadcasts = 6;
  const auto r = run_model(s);
  const auto m = measured(r);
  EXPECT_EQ(m.deliveries, 6u * 32u);
  EXPECT_EQ(r.duplicates, 0u);
  // Neither is in a mutual island with its subnet: {0..15} - {3, 5}, {3}, {5}, {16..31}.
  EXPECT_EQ(r.islands, 4u);
  for (const auto& d : r.deliveries) {
    if (!r.broadcasts[d.broadcast].warmup && d.node == 5) {
      EXPECT_NE(d.channel, Channel::multicast);
    }
  }
  // Broadcasts from the two odd nodes reached everyone.
  for (std::uint32_t b = 0; b < r.broadcasts.size(); ++b)
    if (r.broadcasts[b].origin == 3 || r.broadcasts[b].origin == 5) {
      EXPECT_EQ(deliveries_of(r, b).size(), 32u) << "origin " << r.broadcasts[b].origin;
    }
}

TEST(ModelEngineMixed, SubnetWhoseMulticastFailsFallsBackToTcp) {
  Scenario s = subnets(2, 16, Mode::mixed);
  s.datacenters[0].subnets[1].multicast_fails_at_s = 1.5;
  s.workload.warmup_broadcasts = 0;
  s.workload.broadcasts = 60;  // 20/s from about 0.7 s: before, during and well after the expiry (1 s)
  const auto r = run_model(s);
  const auto m = measured(r);
  EXPECT_EQ(m.deliveries, 60u * 32u);
  EXPECT_EQ(r.duplicates, 0u);
  std::size_t multicast_before = 0, multicast_after = 0;
  for (const auto& d : r.deliveries) {
    if (d.node < 16 || d.channel != Channel::multicast) continue;
    const double start = r.broadcasts[d.broadcast].start_s;
    if (start + d.time_s < 1.5) ++multicast_before;
    if (start > 1.5 + 1.0 + 0.2) ++multicast_after;  // past the expiry: nobody relies on it any more
  }
  EXPECT_GT(multicast_before, 0u);
  EXPECT_EQ(multicast_after, 0u);
}

TEST(ModelEngineMixed, NatAndMultiDatacenterScenariosDeliverEverything) {
  for (const char* name : {"nat", "multi-dc"}) {
    Scenario s = load_scenario(std::string(MIXCAST_SOURCE_DIR) + "/scenarios/" + name + ".yaml");
    s.protocol.mode = Mode::mixed;
    const auto r = run_model(s);
    const auto m = measured(r);
    SCOPED_TRACE(name);
    EXPECT_EQ(m.deliveries, m.broadcasts * s.total_nodes());
    EXPECT_EQ(r.duplicates, 0u);
    EXPECT_TRUE(r.islands_agreed);
    EXPECT_EQ(r.islands, s.total_subnets());  // one island per subnet, NATed or not
    // A NATed island is reached through its gateway: one hop more than the bound.
    const std::uint32_t bound = ceil_log2(r.islands) + 1;
    EXPECT_EQ(m.max_round, std::string(name) == "nat" ? bound + 1 : bound);
  }
}

// TCP mode, no loss, no faults (invariant 5): rounds.max is exactly ceil(log2 n), plus the one
// gateway hop into a NATed subnet. Every shipped scenario without loss.
TEST(ModelEngine, ShippedScenariosInTcpModeTakeExactlyCeilLog2Rounds) {
  for (const char* name : {"lan", "multi-subnet", "multi-dc", "nat"}) {
    Scenario s = load_scenario(std::string(MIXCAST_SOURCE_DIR) + "/scenarios/" + name + ".yaml");
    s.protocol.mode = Mode::tcp;
    SCOPED_TRACE(name);
    bool lossless = s.crashes.empty();
    for (const auto& dc : s.datacenters)
      for (const auto& sn : dc.subnets) lossless = lossless && sn.lan.loss == 0 && sn.multicast_loss == 0;
    for (const auto& w : s.wan) lossless = lossless && w.link.loss == 0;
    ASSERT_TRUE(lossless) << "not a lossless, fault-free scenario any more";
    const auto r = run_model(s);
    const auto m = measured(r);
    EXPECT_EQ(m.deliveries, m.broadcasts * s.total_nodes());
    EXPECT_EQ(r.duplicates, 0u);
    const bool natted = std::string(name) == "nat";
    EXPECT_EQ(m.max_round, ceil_log2(s.total_nodes()) + (natted ? 1 : 0));
  }
}

TEST(ModelEngineMixed, MulticastSavesBytesOverTcpMode) {
  auto bytes = [](const RunResult& r) {
    std::uint64_t total = 0;
    for (std::size_t b = 0; b < r.traffic.size(); ++b)
      if (!r.broadcasts[b].warmup) total += r.traffic[b].tcp_bytes + r.traffic[b].multicast_bytes;
    return total;
  };
  auto tcp = run_model(subnets(4, 32, Mode::tcp));
  auto mixed = run_model(subnets(4, 32, Mode::mixed));
  EXPECT_LT(bytes(mixed) * 5, bytes(tcp));
}

// ---------------------------------------------------------------- restarts (crashes[].restart_after)

namespace {
// Two subnets (the second NATed unless told otherwise), `origins` broadcasting in turn, node
// `victim` down from 0.3 s to 0.3 s + `down_s`.
Scenario restart_scenario(Mode mode, NodeId victim, double down_s, bool nat = true, std::uint32_t nat_links = 2) {
  Scenario s = one_subnet(6, 30);
  s.datacenters[0].subnets[0].name = "open";
  SubnetSpec natted;
  natted.name = "natted";
  natted.nodes = 4;
  natted.nat = nat;
  s.datacenters[0].subnets.push_back(natted);
  s.protocol.mode = mode;
  s.protocol.nat_links = nat_links;
  s.workload.rate_per_s = 20;  // 1.5 s of broadcasts
  s.workload.origins = {victim, 1, 7};
  CrashSpec c;
  c.at_s = 0.3;
  c.nodes = {victim};
  c.restart_after_s = down_s;
  s.crashes.push_back(c);
  validate(s);
  return s;
}

// Whether every node that is up from broadcast b's start to the end delivered it: the checker's
// `missing` list, tested here against the run's own records.
void expect_restart_delivered(const RunResult& r, NodeId victim, double back_s) {
  EXPECT_EQ(r.restarts, 1u);
  EXPECT_TRUE(r.missing.empty()) << r.missing.size() << " missing, first at node " << r.missing.front().node;
  EXPECT_EQ(r.duplicates, 0u);
  EXPECT_EQ(r.invented, 0u);
  std::uint32_t after = 0, from_victim_after = 0;
  for (const auto& b : r.broadcasts) {
    if (b.start_s < back_s) continue;
    ++after;
    from_victim_after += b.origin == victim ? 1 : 0;
    const auto m = deliveries_of(r, b.index);
    EXPECT_EQ(m.size(), r.scenario.total_nodes()) << "broadcast " << b.index << " from " << b.origin;
    EXPECT_EQ(m.count(victim), 1u) << "the restarted node missed broadcast " << b.index;
  }
  EXPECT_GT(after, 10u);
  // A new life starts its seqs again: peers must not take its broadcasts for old duplicates.
  EXPECT_GT(from_victim_after, 3u);
}
}  // namespace

TEST(ModelEngineRestart, ARestartedNodeOwesAndDeliversEveryBroadcastStartedOnceItIsBack) {
  for (Mode mode : {Mode::tcp, Mode::mixed})
    for (NodeId victim : {NodeId{2}, NodeId{8}}) {  // an open node, a NATed one
      SCOPED_TRACE(std::string(to_string(mode)) + " victim " + std::to_string(victim));
      const auto r = run_model(restart_scenario(mode, victim, 0.2));
      expect_restart_delivered(r, victim, 0.5);
    }
}

TEST(ModelEngineRestart, NatedNodesReconnectToARestartedGateway) {
  // Node 0 is the only gateway (nat_links 1) of the NATed nodes 6..9: while it is down nothing can
  // reach them from outside; once it is back their keepalives open the links again.
  for (Mode mode : {Mode::tcp, Mode::mixed}) {
    SCOPED_TRACE(to_string(mode));
    Scenario s = restart_scenario(mode, 0, 0.1, true, 1);
    s.workload.origins = {1, 2, 3};
    s.workload.broadcasts = 60;  // 3 s
    const auto r = run_model(s);
    EXPECT_EQ(r.restarts, 1u);
    EXPECT_EQ(r.duplicates, 0u);
    for (const auto& m : r.missing) EXPECT_EQ(m.cause, "no_gateway") << "broadcast " << m.broadcast << " node " << m.node;
    // Broadcasts that start a keepalive interval after the gateway is back reach everyone.
    const double settled_s = 0.4 + 2 * s.protocol.ack_timeout_s;
    std::uint32_t checked = 0;
    for (const auto& b : r.broadcasts) {
      if (b.start_s < settled_s) continue;
      ++checked;
      EXPECT_EQ(deliveries_of(r, b.index).size(), s.total_nodes()) << "broadcast " << b.index;
    }
    EXPECT_GT(checked, 3u);
  }
}

TEST(ModelEngineRestart, FramesForTheOldLifeAreRefusedAndTheSenderHearsSo) {
  // Restarted at once: copies sent to its old life while it was down arrive at the new one, which
  // must refuse them (the sender's link fails and it re-delegates), not deliver them.
  const auto r = run_model(restart_scenario(Mode::tcp, 2, 0.001, false));
  EXPECT_EQ(r.restarts, 1u);
  EXPECT_TRUE(r.missing.empty());
  EXPECT_EQ(r.duplicates, 0u);
  // Broadcasts started while it was down are not owed; it is not counted as live in the summary.
  const auto m = deliveries_of(r, 0);
  EXPECT_EQ(m.size(), r.scenario.total_nodes());
}

TEST(ModelEngineRestart, SameScenarioSameBytes) {
  const Scenario s = restart_scenario(Mode::mixed, 8, 0.2);
  const auto a = run_model(s), b = run_model(s);
  ASSERT_EQ(a.deliveries.size(), b.deliveries.size());
  for (std::size_t i = 0; i < a.deliveries.size(); ++i) {
    EXPECT_EQ(a.deliveries[i].node, b.deliveries[i].node);
    EXPECT_EQ(a.deliveries[i].time_s, b.deliveries[i].time_s);
  }
}

TEST(ModelEngineMixed, MulticastThatRecoversIsUsedAgain) {
  Scenario s = subnets(2, 16, Mode::mixed);
  s.datacenters[0].subnets[1].multicast_fails_at_s = 1.0;
  s.datacenters[0].subnets[1].multicast_recovers_at_s = 2.0;
  s.workload.warmup_broadcasts = 0;
  s.workload.broadcasts = 90;  // 20/s from about 0.7 s to 5.2 s
  const auto r = run_model(s);
  EXPECT_EQ(measured(r).deliveries, 90u * 32u);
  EXPECT_EQ(r.duplicates, 0u);
  EXPECT_TRUE(r.missing.empty());
  std::size_t during = 0, after = 0;
  for (const auto& d : r.deliveries) {
    if (d.node < 16 || d.channel != Channel::multicast) continue;
    const double at = r.broadcasts[d.broadcast].start_s + d.time_s;
    if (at >= 1.0 && at < 2.0) ++during;
    if (at > 4.0) ++after;  // relearned: beacons heard and confirmed again
  }
  EXPECT_EQ(during, 0u);
  EXPECT_GT(after, 0u);
}
