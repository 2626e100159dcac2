#include <gtest/gtest.h>

#include <map>
#include <set>

#include "mixcast/sim/model_engine.hpp"

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
}  // namespace

TEST(ModelEngineMixed, LearnedIslandsGiveCeilLog2SPlusOneRounds) {
  for (auto [count, per] : std::vector<std::pair<std::uint32_t, std::uint32_t>>{{1, 16}, {2, 8}, {4, 16}, {8, 8}}) {
    auto r = run_model(subnets(count, per, Mode::mixed));
    EXPECT_EQ(r.islands, count);
    std::uint32_t max_round = 0;
    std::size_t measured = 0;
    for (const auto& d : r.deliveries)
      if (!r.broadcasts[d.broadcast].warmup) {
        max_round = std::max(max_round, d.round);
        ++measured;
      }
    EXPECT_EQ(measured, 6u * count * per) << count << " subnets";
    EXPECT_EQ(r.duplicates, 0u);
    EXPECT_EQ(max_round, ceil_log2(count) + 1) << count << " subnets";
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
