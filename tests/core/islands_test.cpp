// The island view: the partition claims make, its order-independent hash, expiry, and the sharing
// of claim lists and partitions between the nodes of one process (IslandCache).
#include <gtest/gtest.h>

#include <algorithm>
#include <memory>
#include <numeric>
#include <vector>

#include "mixcast/core/islands.hpp"
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
  EXPECT_EQ(v.claim(4, 1, {6, 4, 5, 5}, 0), IslandView::Claimed::changed);  // unsorted, duplicate
  EXPECT_EQ(v.claim(1, 1, {1, 2, 5}, 0), IslandView::Claimed::changed);     // 5 goes to the lower leader
  v.rebuild();
  const std::vector<std::vector<NodeId>> want{{0}, {1, 2, 5}, {3}, {4, 6}, {7}};
  EXPECT_EQ(islands_of(v), want);
  EXPECT_EQ(v.island_of(5), 1u);
  EXPECT_EQ(v.island_of(6), 3u);
  EXPECT_EQ(v.island_of(7), 4u);
}

TEST(IslandView, VersionsOrderAnnouncements) {
  IslandView v(view_of(8));
  EXPECT_EQ(v.claim(2, 5, {2, 3}, 0), IslandView::Claimed::changed);
  EXPECT_EQ(v.claim(2, 5, {2, 3}, 1), IslandView::Claimed::duplicate);
  EXPECT_EQ(v.claim(2, 4, {2, 3, 4}, 2), IslandView::Claimed::older);  // a late repair of an old one
  EXPECT_EQ(v.claim(2, 6, {3, 2}, 3), IslandView::Claimed::refreshed);
  const std::uint64_t before = v.hash();
  EXPECT_EQ(v.claim(2, 7, {2, 3, 4}, 4), IslandView::Claimed::changed);
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
  for (const auto& [l, m] : claims) a.claim(l, 1, m, 0);
  auto shuffled = claims;
  for (std::size_t i = shuffled.size(); i > 1; --i) std::swap(shuffled[i - 1], shuffled[rng.below(i)]);
  for (const auto& [l, m] : shuffled) b.claim(l, 9, m, 0);
  EXPECT_EQ(a.hash(), b.hash());
  a.rebuild();
  b.rebuild();
  EXPECT_EQ(islands_of(a), islands_of(b));
  // One member more on one side, or one claim less: another hash.
  b.claim(8, 10, {8, 9, 15, 16}, 0);
  EXPECT_NE(a.hash(), b.hash());
  IslandView c(view);
  for (std::size_t i = 1; i < claims.size(); ++i) c.claim(claims[i].first, 1, claims[i].second, 0);
  EXPECT_NE(a.hash(), c.hash());
  // The island hash never reads as the membership view's hash (delegations tell them apart by it).
  EXPECT_NE(IslandView(view).hash(), view->hash());
}

TEST(IslandView, StaleClaimsExpireOthersStay) {
  IslandView v(view_of(10));
  v.claim(0, 1, {0, 1, 2}, 0);
  v.claim(5, 1, {5, 6}, 500);
  EXPECT_FALSE(v.expire(1000, 1000));  // nothing older than 1000 yet
  v.claim(0, 2, {0, 1, 2}, 1200);      // refreshed: stays
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
  for (NodeId l = 0; l < 5000; l += 5) v.claim(l, 1, {l, l + 1, l + 2, l + 3, l + 4}, 0);
  EXPECT_EQ(v.claims(), 1000u);
  for (NodeId l = 0; l < 5000; l += 5) EXPECT_EQ(v.claim(l, 1, {l}, 0), IslandView::Claimed::duplicate) << l;
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
      v->claim(l, 1, m, 0);
    }
  for (auto& v : nodes) v->rebuild();
  EXPECT_EQ(cache->member_lists(), 4u);
  EXPECT_EQ(cache->partitions(), 1u);
  for (auto& v : nodes) EXPECT_EQ(&v->partition(), &nodes.front()->partition());
  // A node that learns something new gets its own partition; the others keep theirs.
  nodes[3]->claim(0, 2, {0, 1}, 0);
  nodes[3]->rebuild();
  EXPECT_NE(&nodes[3]->partition(), &nodes[0]->partition());
  EXPECT_EQ(nodes[3]->size(), 4u + 62u);
  EXPECT_EQ(nodes[0]->size(), 4u);
  // A private cache gives the same islands.
  IslandView alone(view);
  for (NodeId l = 0; l < 256; l += 64) {
    std::vector<NodeId> m(64);
    std::iota(m.begin(), m.end(), l);
    alone.claim(l, 1, m, 0);
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
    for (NodeId l = 0; l < 4096; l += 2) v.claim(l, 1, {l, l + 1}, 0);
    EXPECT_EQ(cache->member_lists(), 2048u);
  }
  // Nobody holds those lists now: when the table has doubled, a sweep forgets them.
  IslandView w(view, cache);
  for (NodeId l = 0; l < 4100; l += 2) w.claim(l, 1, {l, l + 1, l + 2}, 0);
  EXPECT_EQ(w.claims(), 2050u);
  EXPECT_EQ(cache->member_lists(), 2050u);
}

}  // namespace
}  // namespace mixcast
