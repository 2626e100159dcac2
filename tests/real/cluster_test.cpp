// 16 mixcastd processes on loopback in 4 subnets (one multicast group each): every daemon
// delivers every broadcast exactly once, checked by content from the delivery logs; and after
// kill -9 of two daemons mid-stream every survivor still delivers every live origin's messages.
#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <functional>
#include <map>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "real_test_support.hpp"

namespace mixcast::testbed::test {
namespace {

using namespace std::chrono_literals;

constexpr std::uint32_t kNodes = 16;
constexpr std::uint32_t kSubnets = 4;
constexpr std::uint32_t kBroadcasts = 1000;
const std::vector<NodeId> kOrigins = {0, 5, 10, 15};  // one per subnet

struct Sent {
  NodeId origin;
  MessageId id;
  std::string payload;
};

ClusterOptions options(Mode mode, const std::string& tag) {
  ClusterOptions o;
  o.daemon = daemon_binary();
  o.mode = mode;
  o.layout = ClusterLayout::even(kNodes, kSubnets);
  o.layout.subnet_nat[2] = true;  // nodes 8-11 are behind NAT: they reach out through gateways
  o.env = {"MIXCAST_TEST_TAG=" + tag};
  o.protocol = {{"ack_timeout_ms", "300"}};
  return o;
}

// Mixed mode: wait until every daemon plans with the same 4 islands, so multicast is used.
void wait_for_islands(LocalCluster& c, std::uint32_t expected) {
  const auto deadline = Clock::now() + 15s;
  for (;;) {
    std::set<std::uint64_t> hashes;
    bool counts = true;
    for (NodeId n = 0; n < c.size(); ++n) {
      if (!c.alive(n)) continue;
      const auto st = c.status(n);
      hashes.insert(st.at("islands").at("hash").get<std::uint64_t>());
      counts = counts && st.at("islands").at("count").get<std::uint32_t>() == expected;
    }
    if (hashes.size() == 1 && counts) return;
    ASSERT_LT(Clock::now(), deadline) << "islands not agreed within 15 s\n" << logs_of(c);
    std::this_thread::sleep_for(50ms);
  }
}

// Sends `count` broadcasts round-robin over `origins`, about `rate` per second; calls
// `during(i)` before broadcast i (the kill test uses it). Payloads are unique per broadcast.
std::vector<Sent> stream(LocalCluster& c, const std::string& tag, std::uint32_t count, double rate,
                         const std::function<void(std::uint32_t)>& during = {}) {
  std::vector<Sent> sent;
  const auto t0 = Clock::now();
  for (std::uint32_t i = 0; i < count; ++i) {
    if (during) during(i);
    const NodeId origin = kOrigins[i % kOrigins.size()];
    if (!c.alive(origin)) continue;
    const std::string payload = "bcast " + std::to_string(i) + " from " + std::to_string(origin) + " run " + tag;
    const MessageId id = c.send(origin, text_bytes(payload));
    EXPECT_EQ(id.origin, origin);
    sent.push_back({origin, id, payload});
    std::this_thread::sleep_until(t0 + std::chrono::microseconds(static_cast<std::int64_t>((i + 1) * 1e6 / rate)));
  }
  return sent;
}

// Every node of `nodes` delivered exactly the payloads of `sent` (from live origins), once each,
// under the (origin, seq) the sending daemon reported.
void expect_exactly_once(const Ledger& ledger, const std::vector<NodeId>& nodes, const std::vector<Sent>& sent,
                         const std::set<NodeId>& origins_checked) {
  std::map<std::pair<NodeId, std::uint64_t>, std::string> by_id;
  std::set<std::string> want;
  for (const auto& s : sent) {
    if (!origins_checked.count(s.origin)) continue;
    by_id[{s.id.origin, s.id.seq}] = s.payload;
    want.insert(s.payload);
  }
  for (NodeId n : nodes) {
    std::map<std::string, int> seen;
    for (const auto& r : ledger.rows[n]) {
      if (!origins_checked.count(r.id.origin)) continue;
      const std::string p = bytes_text(r.payload);
      ++seen[p];
      auto it = by_id.find({r.id.origin, r.id.seq});
      ASSERT_NE(it, by_id.end()) << "node " << n << " delivered an id nobody sent: (" << r.id.origin << ", "
                                 << r.id.seq << ")";
      EXPECT_EQ(it->second, p) << "node " << n << ": payload of (" << r.id.origin << ", " << r.id.seq << ")";
    }
    std::set<std::string> got;
    for (const auto& [p, times] : seen) {
      got.insert(p);
      EXPECT_EQ(times, 1) << "node " << n << " delivered '" << p << "' " << times << " times";
    }
    EXPECT_EQ(got, want) << "node " << n << " delivered " << got.size() << " of " << want.size() << " payloads";
  }
}

class RealCluster : public ::testing::TestWithParam<Mode> {};

TEST_P(RealCluster, SixteenDaemonsDeliverEveryBroadcastExactlyOnce) {
  const std::string tag = random_tag();
  LocalCluster c(options(GetParam(), tag));
  c.start_all(20s);
  if (GetParam() == Mode::mixed) wait_for_islands(c, kSubnets);

  const auto sent = stream(c, tag, kBroadcasts, 2000);
  ASSERT_EQ(sent.size(), kBroadcasts);
  std::set<std::string> want;
  for (const auto& s : sent) want.insert(s.payload);
  Ledger ledger(kNodes);
  std::vector<NodeId> all;
  for (NodeId n = 0; n < kNodes; ++n) all.push_back(n);
  const bool done = wait_for_deliveries(c, ledger, all, want, 30s);
  std::this_thread::sleep_for(300ms);  // late duplicates, if any, would land now
  ledger.pull(c);
  EXPECT_TRUE(done) << logs_of(c);
  expect_exactly_once(ledger, all, sent, {kOrigins.begin(), kOrigins.end()});

  // The channels match the mode: mixed mode uses the subnets' multicast groups, tcp never does.
  std::uint64_t multicast = 0, tcp = 0;
  for (const auto& rows : ledger.rows)
    for (const auto& r : rows) {
      if (r.channel == Channel::multicast) ++multicast;
      if (r.channel == Channel::tcp) ++tcp;
    }
  if (GetParam() == Mode::mixed) {
    EXPECT_GT(multicast, 0u);
  } else {
    EXPECT_EQ(multicast, 0u);
  }
  EXPECT_GT(tcp, 0u);  // 4 islands: TCP crosses the subnet boundaries in both modes
  for (NodeId n = 0; n < kNodes; ++n) {
    const auto st = c.status(n);
    EXPECT_EQ(st.at("counters").at("delivered").get<std::uint64_t>(), kBroadcasts) << "node " << n;
  }
  EXPECT_TRUE(c.stop_all(5s).empty());
  EXPECT_FALSE(c.unexpected_exit());
}

TEST_P(RealCluster, SurvivorsDeliverEveryLiveOriginsMessagesAfterKillNine) {
  const std::string tag = random_tag();
  LocalCluster c(options(GetParam(), tag));
  c.start_all(20s);
  if (GetParam() == Mode::mixed) wait_for_islands(c, kSubnets);

  // Two daemons die mid-stream: origin 10 and node 6, a plain member.
  const std::vector<NodeId> victims = {10, 6};
  const auto sent = stream(c, tag, kBroadcasts, 2000, [&](std::uint32_t i) {
    if (i == 300) c.kill9(victims[0]);
    if (i == 500) c.kill9(victims[1]);
  });
  for (NodeId v : victims) EXPECT_FALSE(c.alive(v));
  std::vector<NodeId> survivors;
  for (NodeId n = 0; n < kNodes; ++n)
    if (std::find(victims.begin(), victims.end(), n) == victims.end()) survivors.push_back(n);
  std::set<NodeId> live_origins;
  for (NodeId o : kOrigins)
    if (c.alive(o)) live_origins.insert(o);
  ASSERT_EQ(live_origins.size(), kOrigins.size() - 1);

  std::set<std::string> want;
  for (const auto& s : sent)
    if (live_origins.count(s.origin)) want.insert(s.payload);
  EXPECT_GE(want.size(), 740u);  // 3 of 4 origins kept sending
  Ledger ledger(kNodes);
  const bool done = wait_for_deliveries(c, ledger, survivors, want, 30s);
  std::this_thread::sleep_for(300ms);
  ledger.pull(c);
  EXPECT_TRUE(done) << logs_of(c);
  expect_exactly_once(ledger, survivors, sent, live_origins);

  // The dead were noticed: some survivor saw a link fail and handed delegations on.
  std::uint64_t failures = 0;
  for (NodeId n : survivors) {
    const auto k = c.status(n).at("counters");
    failures += k.at("link_failures").get<std::uint64_t>() + k.at("ack_timeouts").get<std::uint64_t>();
  }
  EXPECT_GT(failures, 0u);
  EXPECT_TRUE(c.stop_all(5s).empty());
}

// Daemons of a real cluster start in any order. NATed nodes connect to their gateways at start;
// if a gateway is not up yet the connection is refused, and the NATed node must still reach it
// (and everyone else) once it is.
TEST(RealClusterStart, StartOrderDoesNotMatter) {
  ClusterOptions o;
  o.daemon = daemon_binary();
  o.mode = Mode::tcp;
  o.layout = ClusterLayout::even(8, 2);
  o.layout.subnet_nat[1] = true;  // nodes 4-7
  o.env = {"MIXCAST_TEST_TAG=" + random_tag()};
  LocalCluster c(o);
  c.start({4, 5, 6, 7});  // the NATed nodes first: their gateways are not listening yet
  c.wait_ready(20s);
  std::this_thread::sleep_for(200ms);
  c.start({0, 1, 2, 3});
  c.wait_ready(20s);

  std::set<std::string> want;
  const std::string tag = random_tag();
  for (int i = 0; i < 40; ++i) {
    const NodeId origin = i % 2 == 0 ? 0 : 5;
    const std::string p = "late start " + std::to_string(i) + " " + tag;
    c.send(origin, text_bytes(p));
    want.insert(p);
  }
  Ledger ledger(c.size());
  EXPECT_TRUE(wait_for_deliveries(c, ledger, {0, 1, 2, 3, 4, 5, 6, 7}, want, 10s));
  for (NodeId n = 0; n < c.size(); ++n) {
    std::size_t have = 0;
    for (const auto& w : want) have += ledger.has_all(n, {w}) ? 1 : 0;
    EXPECT_EQ(have, want.size()) << "node " << n << " delivered " << have << " of " << want.size();
  }
}

INSTANTIATE_TEST_SUITE_P(Modes, RealCluster, ::testing::Values(Mode::tcp, Mode::mixed),
                         [](const ::testing::TestParamInfo<Mode>& p) { return std::string(to_string(p.param)); });

}  // namespace
}  // namespace mixcast::testbed::test
