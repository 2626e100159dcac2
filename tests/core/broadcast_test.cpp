#include <gtest/gtest.h>

#include <map>
#include <set>

#include "harness.hpp"

using namespace mixcast;
using mixcast::testing::Harness;

namespace {
// Checks that every live node delivered `id` exactly once, and returns the highest round.
std::uint32_t check_exactly_once(const Harness& h, const MessageId& id) {
  std::map<NodeId, int> count;
  std::uint32_t max_round = 0;
  for (const auto& r : h.received)
    if (r.id == id) {
      ++count[r.node];
      max_round = std::max(max_round, r.round);
    }
  for (NodeId i = 0; i < h.size(); ++i) {
    if (h.crashed(i)) continue;
    EXPECT_EQ(count[i], 1) << "node " << i << " of " << h.size();
  }
  return max_round;
}
}  // namespace

TEST(LogBroadcast, ReachesEveryNodeInExactlyCeilLog2Rounds) {
  std::set<NodeId> origins;
  for (std::size_t n = 1; n <= 1100; ++n) {
    Harness h(n);
    // Origins all over the view, not only rank 0: the plan wraps around the view's end.
    Rng rng(n);
    const NodeId origin = n == 2 ? 1 : static_cast<NodeId>(n % 3 == 0 ? n - 1 : rng.below(n));
    origins.insert(origin);
    auto id = h.broadcast(origin);
    ASSERT_TRUE(h.run());
    const auto rounds = check_exactly_once(h, id);
    ASSERT_EQ(rounds, ceil_log2(n)) << "n = " << n;
    ASSERT_EQ(h.sent.size(), n - 1) << "one message per target, n = " << n;
  }
  EXPECT_GT(origins.size(), 500u) << "the sweep should broadcast from many different origins";
}

TEST(LogBroadcast, LargeClustersToo) {
  for (std::size_t n : {4097u, 20000u}) {
    Harness h(n);
    auto id = h.broadcast(static_cast<NodeId>(n / 3));
    ASSERT_TRUE(h.run());
    EXPECT_EQ(check_exactly_once(h, id), ceil_log2(n)) << n;
  }
}

TEST(LogBroadcast, SharedViewUsesConstantSizeRanges) {
  Harness h(1024);
  h.broadcast(5, wire::Bytes(64, 0xAB));
  ASSERT_TRUE(h.run());
  for (const auto& b : h.sent) {
    EXPECT_NE(b.targets.kind, wire::Targets::Kind::id_list);
    EXPECT_EQ(wire::encode_frame({b}).size() < 64 + 30, true);
  }
}

TEST(LogBroadcast, DifferentViewFallsBackToExplicitIdLists) {
  const std::size_t n = 64;
  std::vector<NodeId> ids;
  for (NodeId i = 0; i < n; ++i) ids.push_back(i);
  auto shared = std::make_shared<const View>(ids);
  auto other_ids = ids;
  other_ids.push_back(999);  // these nodes believe in one more member
  auto other = std::make_shared<const View>(other_ids);
  std::vector<std::shared_ptr<const View>> views(n, shared);
  for (NodeId i : {32u, 16u, 48u, 8u}) views[i] = other;
  Harness h(views);
  auto id = h.broadcast(0);
  ASSERT_TRUE(h.run());
  check_exactly_once(h, id);
  EXPECT_GT(h.node(0).counters().view_mismatches, 0u);
  bool saw_list = false;
  for (const auto& b : h.sent) saw_list |= b.targets.kind == wire::Targets::Kind::id_list;
  EXPECT_TRUE(saw_list);
  // Once known, the peer gets id lists straight away: the next broadcast needs no new mismatch.
  const auto mismatches = h.node(0).counters().view_mismatches;
  auto id2 = h.broadcast(0);
  ASSERT_TRUE(h.run());
  check_exactly_once(h, id2);
  EXPECT_EQ(h.node(0).counters().view_mismatches, mismatches);
}

TEST(LogBroadcast, TenPercentCrashedStillReachesEveryLiveNodeOnce) {
  for (std::size_t n : {10u, 100u, 1000u}) {
    Harness h(n);
    Rng rng(n);
    std::size_t crashed = 0;
    while (crashed < n / 10) {
      NodeId v = static_cast<NodeId>(1 + rng.below(n - 1));
      if (!h.crashed(v)) h.crash(v), ++crashed;
    }
    auto id = h.broadcast(0);
    ASSERT_TRUE(h.run());
    check_exactly_once(h, id);
    std::uint64_t redelegated = 0;
    for (NodeId i = 0; i < n; ++i) redelegated += h.node(i).counters().redelegations;
    if (n >= 100) {  // with 1 of 10 crashed it may be a leaf
      EXPECT_GT(redelegated, 0u) << n;
    }
  }
}

TEST(LogBroadcast, SilentDelegateIsReplacedAfterAckTimeout) {
  // A delegate that swallows frames (no reset, no link failure) is only detected by the missing ack.
  NodeConfig cfg;
  cfg.ack_timeout = 1000;
  Harness h(16, cfg);
  // Node 8 is the origin's first delegate for n = 16: it never receives nor answers.
  h.silence(8);
  auto id = h.broadcast(0);
  ASSERT_TRUE(h.run());
  check_exactly_once(h, id);
  EXPECT_GT(h.dropped_silently(), 0u) << "nothing was sent to the silent delegate";
  const auto& c = h.node(0).counters();
  EXPECT_EQ(c.link_failures, 0u) << "the harness reported a link failure: the ack timeout was not exercised";
  EXPECT_EQ(c.ack_timeouts, 1u);
  EXPECT_EQ(c.redelegations, 1u);
  // Only the timeout could take over node 8's share: nobody learned of it any other way.
  for (NodeId i = 0; i < h.size(); ++i) EXPECT_EQ(h.node(i).counters().link_failures, 0u) << i;
  // Its share (nodes 9..15) was delivered only after the ack timeout, the rest before it.
  for (const auto& r : h.received)
    if (r.id == id) {
      if (r.node > 8) EXPECT_GE(r.at, cfg.ack_timeout) << r.node;
      else EXPECT_LT(r.at, cfg.ack_timeout) << r.node;
    }
}

TEST(LogBroadcast, ManyBroadcastsAreBatchedAndDeliveredInFull) {
  Harness h(50);
  std::vector<MessageId> ids;
  // Queued before the engine pulls outputs: messages to the same peer share frames.
  for (int i = 0; i < 20; ++i) ids.push_back(h.node(0).broadcast({static_cast<std::uint8_t>(i)}, 0));
  h.flush(0);
  ASSERT_TRUE(h.run());
  for (auto id : ids) check_exactly_once(h, id);
  EXPECT_LT(h.frames, h.sent.size());  // several messages share frames
}

TEST(Node, SurvivesGarbageFrames) {
  Harness h(4);
  Rng rng(3);
  for (int i = 0; i < 1000; ++i) {
    wire::Bytes junk(rng.below(64));
    for (auto& b : junk) b = static_cast<std::uint8_t>(rng.next());
    h.node(1).on_frame(2, Channel::tcp, junk.data(), junk.size(), 0);
  }
  EXPECT_GT(h.node(1).counters().bad_frames, 900u);
  auto id = h.broadcast(0);
  ASSERT_TRUE(h.run());
  check_exactly_once(h, id);
}

TEST(Node, RejectsConfigWhereSelfIsNotInView) {
  NodeConfig cfg;
  cfg.self = 7;
  EXPECT_THROW(Node(cfg, std::make_shared<const View>(std::vector<NodeId>{1, 2})), std::invalid_argument);
}

TEST(View, NatDomainsDecideWhoConnectsDirectly) {
  const View v({1, 2, 3, 4, 5}, {2, 3, 4}, {7, 7, 8});
  EXPECT_TRUE(v.same_nat(2, 3));   // one NAT
  EXPECT_FALSE(v.same_nat(3, 4));  // two NATs
  EXPECT_FALSE(v.same_nat(1, 5));  // nobody behind a NAT
  EXPECT_EQ(v.gateways(2, 2), (std::vector<NodeId>{5, 1}));
  // Without domains each NATed member is behind its own NAT; the hash tells the views apart.
  const View alone({1, 2, 3, 4, 5}, {2, 3, 4});
  EXPECT_FALSE(alone.same_nat(2, 3));
  EXPECT_NE(alone.hash(), v.hash());
}
