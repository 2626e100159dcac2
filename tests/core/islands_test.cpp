// The island view: the partition claims make, its order-independent hash, expiry, and the sharing
// of claim lists and partitions between the nodes of one process (IslandCache).
#include <gtest/gtest.h>

#include <algorithm>
#include <memory>
#include <numeric>
#include <vector>

#include "mixcast/core/islands.hpp"
#include "mixcast/core/node.hpp"
#include "mixcast/core/rng.hpp"

namespace mixcast {
namespace {

std::shared_ptr<const View> view_of(NodeId n) {
  std::vector<NodeId> ids(n);
  std::iota(ids.begin(), ids.end(), 0);
  return std::make_shared<const View>(ids);
}

std::vector<std::vector<NodeId>> islands_of(const IslandView& v) {
  std::vector<std::vector<NodeId>> out;
  for (std::size_t r = 0; r < v.size(); ++r) out.push_back(v.island(r).to_vector());
  return out;
}

TEST(IslandView, LowestLeaderWinsAndUnclaimedNodesAreIslandsOfOne) {
  IslandView v(view_of(8));
  EXPECT_EQ(v.claim(4, 1, 1, {6, 4, 5, 5}, 0), IslandView::Claimed::changed);  // unsorted, duplicate
  EXPECT_EQ(v.claim(1, 1, 1, {1, 2, 5}, 0), IslandView::Claimed::changed);     // 5 goes to the lower leader
  v.rebuild();
  const std::vector<std::vector<NodeId>> want{{0}, {1, 2, 5}, {3}, {4, 6}, {7}};
  EXPECT_EQ(islands_of(v), want);
  EXPECT_EQ(v.island_of(5), 1u);
  EXPECT_EQ(v.island_of(6), 3u);
  EXPECT_EQ(v.island_of(7), 4u);
}

TEST(IslandView, VersionsOrderAnnouncements) {
  IslandView v(view_of(8));
  EXPECT_EQ(v.claim(2, 1, 5, {2, 3}, 0), IslandView::Claimed::changed);
  EXPECT_EQ(v.claim(2, 1, 5, {2, 3}, 1), IslandView::Claimed::duplicate);
  EXPECT_EQ(v.claim(2, 1, 4, {2, 3, 4}, 2), IslandView::Claimed::older);  // a late repair of an old one
  EXPECT_EQ(v.claim(2, 1, 6, {3, 2}, 3), IslandView::Claimed::refreshed);
  const std::uint64_t before = v.hash();
  EXPECT_EQ(v.claim(2, 1, 7, {2, 3, 4}, 4), IslandView::Claimed::changed);
  EXPECT_NE(v.hash(), before);
  v.rebuild();
  EXPECT_EQ(v.island(v.island_of(4)).to_vector(), (std::vector<NodeId>{2, 3, 4}));
}

TEST(IslandView, HashDependsOnTheClaimsNotTheirOrderNorTheirVersions) {
  Rng rng(7);
  std::vector<std::pair<NodeId, std::vector<NodeId>>> claims;
  for (NodeId leader = 0; leader < 400; leader += 8) claims.push_back({leader, {leader, leader + 1, leader + 7}});
  auto view = view_of(400);
  IslandView a(view), b(view);
  for (const auto& [l, m] : claims) a.claim(l, 1, 1, m, 0);
  auto shuffled = claims;
  for (std::size_t i = shuffled.size(); i > 1; --i) std::swap(shuffled[i - 1], shuffled[rng.below(i)]);
  for (const auto& [l, m] : shuffled) b.claim(l, 1, 9, m, 0);
  EXPECT_EQ(a.hash(), b.hash());
  a.rebuild();
  b.rebuild();
  EXPECT_EQ(islands_of(a), islands_of(b));
  // One member more on one side, or one claim less: another hash.
  b.claim(8, 1, 10, {8, 9, 15, 16}, 0);
  EXPECT_NE(a.hash(), b.hash());
  IslandView c(view);
  for (std::size_t i = 1; i < claims.size(); ++i) c.claim(claims[i].first, 1, 1, claims[i].second, 0);
  EXPECT_NE(a.hash(), c.hash());
  // The island hash never reads as the membership view's hash (delegations tell them apart by it).
  EXPECT_NE(IslandView(view).hash(), view->hash());
}

TEST(IslandView, StaleClaimsExpireOthersStay) {
  IslandView v(view_of(10));
  v.claim(0, 1, 1, {0, 1, 2}, 0);
  v.claim(5, 1, 1, {5, 6}, 500);
  EXPECT_FALSE(v.expire(1000, 1000));  // nothing older than 1000 yet
  v.claim(0, 1, 2, {0, 1, 2}, 1200);      // refreshed: stays
  EXPECT_TRUE(v.expire(1600, 1000));   // 5's claim (at 500) is gone
  EXPECT_EQ(v.claims(), 1u);
  v.rebuild();
  EXPECT_EQ(islands_of(v).size(), 8u);  // {0,1,2} and seven islands of one
  EXPECT_EQ(v.island(v.island_of(6)).size(), 1u);
  EXPECT_FALSE(v.expire(2100, 1000));
  EXPECT_TRUE(v.expire(2300, 1000));
  EXPECT_EQ(v.claims(), 0u);
}

TEST(IslandView, ManyLeadersKeepEveryClaim) {
  // Enough leaders to grow the claim table several times; every claim is found again afterwards.
  auto view = view_of(5000);
  IslandView v(view);
  for (NodeId l = 0; l < 5000; l += 5) v.claim(l, 1, 1, {l, l + 1, l + 2, l + 3, l + 4}, 0);
  EXPECT_EQ(v.claims(), 1000u);
  for (NodeId l = 0; l < 5000; l += 5) EXPECT_EQ(v.claim(l, 1, 1, {l}, 0), IslandView::Claimed::duplicate) << l;
  v.rebuild();
  EXPECT_EQ(v.size(), 1000u);
  EXPECT_EQ(v.island(v.island_of(4999)).to_vector(), (std::vector<NodeId>{4995, 4996, 4997, 4998, 4999}));
}

TEST(IslandCache, NodesWithTheSameClaimsShareOnePartitionAndOneCopyOfEachClaim) {
  auto view = view_of(256);
  auto cache = std::make_shared<IslandCache>();
  std::vector<std::unique_ptr<IslandView>> nodes;
  for (int i = 0; i < 20; ++i) nodes.push_back(std::make_unique<IslandView>(view, cache));
  for (auto& v : nodes)
    for (NodeId l = 0; l < 256; l += 64) {
      std::vector<NodeId> m(64);
      std::iota(m.begin(), m.end(), l);
      v->claim(l, 1, 1, m, 0);
    }
  for (auto& v : nodes) v->rebuild();
  EXPECT_EQ(cache->member_lists(), 4u);
  EXPECT_EQ(cache->partitions(), 1u);
  for (auto& v : nodes) EXPECT_EQ(&v->partition(), &nodes.front()->partition());
  // A node that learns something new gets its own partition; the others keep theirs.
  nodes[3]->claim(0, 1, 2, {0, 1}, 0);
  nodes[3]->rebuild();
  EXPECT_NE(&nodes[3]->partition(), &nodes[0]->partition());
  EXPECT_EQ(nodes[3]->size(), 4u + 62u);
  EXPECT_EQ(nodes[0]->size(), 4u);
  // A private cache gives the same islands.
  IslandView alone(view);
  for (NodeId l = 0; l < 256; l += 64) {
    std::vector<NodeId> m(64);
    std::iota(m.begin(), m.end(), l);
    alone.claim(l, 1, 1, m, 0);
  }
  alone.rebuild();
  EXPECT_EQ(alone.hash(), nodes[0]->hash());
  EXPECT_EQ(islands_of(alone), islands_of(*nodes[0]));
}

TEST(IslandCache, EntriesNobodyHoldsAreDropped) {
  auto view = view_of(4100);
  auto cache = std::make_shared<IslandCache>();
  {
    IslandView v(view, cache);
    for (NodeId l = 0; l < 4096; l += 2) v.claim(l, 1, 1, {l, l + 1}, 0);
    EXPECT_EQ(cache->member_lists(), 2048u);
  }
  // Nobody holds those lists now: when the table has doubled, a sweep forgets them.
  IslandView w(view, cache);
  for (NodeId l = 0; l < 4100; l += 2) w.claim(l, 1, 1, {l, l + 1, l + 2}, 0);
  EXPECT_EQ(w.claims(), 2050u);
  EXPECT_EQ(cache->member_lists(), 2050u);
}

// ---- Listed islands: the delegation fallback when only the island view differs ----

NodeConfig mixed_node(NodeId self) {
  NodeConfig c;
  c.self = self;
  c.mode = Mode::mixed;
  return c;
}

void feed(Node& n, NodeId from, const wire::Message& m, Micros now) {
  const wire::Bytes f = wire::encode_frame({m});
  ASSERT_EQ(n.on_frame(from, Channel::tcp, f.data(), f.size(), now), wire::DecodeError::none);
}

std::vector<std::pair<Transmit, wire::Message>> sent(Node& n) {
  std::vector<std::pair<Transmit, wire::Message>> out;
  while (auto t = n.poll_transmit())
    for (auto& m : wire::decode_frame(t->bytes).messages) out.emplace_back(*t, std::move(m));
  return out;
}

wire::Broadcast listed_islands_delegation(NodeId origin, std::vector<std::vector<NodeId>> islands) {
  wire::Broadcast b;
  b.origin = origin;
  b.seq = 1;
  b.round = 1;
  b.payload = {42};
  b.targets.kind = wire::Targets::Kind::island_list;
  for (auto& island : islands) {
    b.targets.ids.insert(b.targets.ids.end(), island.begin(), island.end());
    b.targets.island_sizes.push_back(static_cast<std::uint32_t>(island.size()));
  }
  return b;
}

TEST(ListedIslands, DelegateMulticastsIntoItsListedIslandAndHandsOnTheOthersAsIslands) {
  // Node 0 knows no islands at all, yet is handed islands {0,1,2}, {4,5} and {6}.
  Node n(mixed_node(0), view_of(8));
  feed(n, 7, listed_islands_delegation(7, {{0, 1, 2}, {4, 5}, {6}}), 0);
  ASSERT_TRUE(n.poll_delivery().has_value());
  bool acked = false, multicast = false;
  std::vector<NodeId> tcp_leaves;
  std::vector<wire::Targets> delegations;
  for (auto& [t, m] : sent(n)) {
    if (auto* a = std::get_if<wire::Ack>(&m)) acked = t.to == 7 && a->status == wire::AckStatus::accepted;
    auto* b = std::get_if<wire::Broadcast>(&m);
    if (!b || b->seq != 1) continue;
    if (t.channel == Channel::multicast) multicast = true;
    else if (b->targets.kind == wire::Targets::Kind::none) tcp_leaves.push_back(t.to);
    else delegations.push_back(b->targets);
  }
  EXPECT_TRUE(acked);
  EXPECT_TRUE(multicast) << "one multicast into its own listed island";
  std::sort(tcp_leaves.begin(), tcp_leaves.end());
  // 1 and 2 have not confirmed hearing node 0 yet: TCP copies; 6 is an island of one: a leaf.
  EXPECT_EQ(tcp_leaves, (std::vector<NodeId>{1, 2, 6}));
  ASSERT_EQ(delegations.size(), 1u);
  EXPECT_EQ(delegations[0].kind, wire::Targets::Kind::island_list);
  EXPECT_EQ(delegations[0].ids, (std::vector<NodeId>{4, 5}));
}

TEST(ListedIslands, ADelegateOutsideTheFirstIslandRefusesATcpModeNodeTakesEveryoneOverTcp) {
  Node wrong(mixed_node(3), view_of(8));
  feed(wrong, 7, listed_islands_delegation(7, {{0, 1, 2}, {4, 5}}), 0);
  bool refused = false;
  for (auto& [t, m] : sent(wrong))
    if (auto* a = std::get_if<wire::Ack>(&m)) refused = a->status == wire::AckStatus::view_mismatch;
  EXPECT_TRUE(refused);

  NodeConfig tcp;
  tcp.self = 0;
  Node n(tcp, view_of(8));
  feed(n, 7, listed_islands_delegation(7, {{0, 1, 2}, {4, 5}}), 0);
  std::vector<NodeId> reached;
  for (auto& [t, m] : sent(n)) {
    auto* b = std::get_if<wire::Broadcast>(&m);
    if (!b) continue;
    EXPECT_EQ(t.channel, Channel::tcp);
    reached.push_back(t.to);
    if (b->targets.kind == wire::Targets::Kind::id_list)
      reached.insert(reached.end(), b->targets.ids.begin() + 1, b->targets.ids.end());
  }
  std::sort(reached.begin(), reached.end());
  EXPECT_EQ(reached, (std::vector<NodeId>{1, 2, 4, 5}));
}

TEST(ListedIslands, AnIslandViewMismatchIsResentAsListedIslandsNotAsEveryNode) {
  // Node 0 holds claims {0..3} and {4..7}; its delegate (a member of {4..7}) holds none and refuses
  // the island range. The resend names the islands' members, so the delegate still multicasts.
  Node n(mixed_node(0), view_of(8));
  for (NodeId leader : {0u, 4u}) {  // both announcements reach node 0 as control broadcasts
    wire::Broadcast a;
    a.origin = leader;
    a.seq = (1ULL << 63) | 1;
    a.flags = wire::Broadcast::kControl;
    a.payload = wire::encode_frame({wire::IslandDigest{0, {{leader, leader + 1, leader + 2, leader + 3}}}});
    feed(n, leader == 0 ? 1 : leader, a, 0);
  }
  ASSERT_EQ(n.island_count(), 2u);
  sent(n);
  const MessageId id = n.broadcast({9}, 1000);
  NodeId delegate = 0;
  std::uint64_t token = 0;
  for (auto& [t, m] : sent(n))
    if (auto* b = std::get_if<wire::Broadcast>(&m); b && b->seq == id.seq && t.channel == Channel::tcp &&
                                                    b->targets.kind == wire::Targets::Kind::view_range) {
      EXPECT_EQ(b->targets.view_hash, n.island_hash());
      delegate = t.to;
      token = b->token;
    }
  ASSERT_GE(delegate, 4u);
  feed(n, delegate, wire::Ack{0, id.seq, wire::AckStatus::view_mismatch, n.view().hash(), id.incarnation, token}, 2000);
  std::optional<wire::Targets> resent;
  for (auto& [t, m] : sent(n))
    if (auto* b = std::get_if<wire::Broadcast>(&m); b && b->seq == id.seq && t.to == delegate) resent = b->targets;
  ASSERT_TRUE(resent.has_value());
  EXPECT_EQ(resent->kind, wire::Targets::Kind::island_list);
  EXPECT_EQ(resent->ids, (std::vector<NodeId>{4, 5, 6, 7}));
  EXPECT_EQ(resent->island_sizes, (std::vector<std::uint32_t>{4}));
  EXPECT_EQ(n.counters().view_mismatches, 1u);
}

}  // namespace
}  // namespace mixcast

namespace mixcast {
namespace {

// A restarted leader numbers its claims from 1 again: its new incarnation still supersedes the old
// claim, and a late copy of the old one does not come back.
TEST(IslandView, RestartedLeaderSupersedesItsOldClaims) {
  IslandView v(view_of(8));
  EXPECT_EQ(v.claim(2, 1, 40, {2, 3}, 0), IslandView::Claimed::changed);
  EXPECT_EQ(v.claim(2, 2, 1, {2, 3, 4}, 10), IslandView::Claimed::changed);
  EXPECT_EQ(v.claim(2, 1, 41, {2, 3}, 20), IslandView::Claimed::older);
  EXPECT_EQ(v.claim(2, 2, 1, {2, 3, 4}, 30), IslandView::Claimed::duplicate);
}

}  // namespace
}  // namespace mixcast
