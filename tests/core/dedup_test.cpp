#include <gtest/gtest.h>

#include "mixcast/core/dedup.hpp"
#include "mixcast/core/rng.hpp"

using namespace mixcast;

TEST(Dedup, InOrderAndOutOfOrderAreDeliveredOnce) {
  SeqWindow w;
  std::vector<std::uint64_t> order = {3, 1, 2, 2, 5, 4, 1, 6};
  std::vector<SeenResult> want = {SeenResult::fresh, SeenResult::fresh, SeenResult::fresh, SeenResult::duplicate,
                                  SeenResult::fresh, SeenResult::fresh, SeenResult::duplicate, SeenResult::fresh};
  for (std::size_t i = 0; i < order.size(); ++i) EXPECT_EQ(w.insert(order[i], 16), want[i]) << i;
  EXPECT_EQ(w.floor(), 6u);
  EXPECT_EQ(w.pending(), 0u);
}

TEST(Dedup, MemoryStaysBoundedWithPermanentHoles) {
  SeqWindow w;
  // seq 1 never arrives: without a bound every later seq would be remembered forever.
  for (std::uint64_t s = 2; s < 100000; ++s) ASSERT_EQ(w.insert(s, 64), SeenResult::fresh);
  EXPECT_LE(w.pending(), 64u);
  EXPECT_EQ(w.insert(1, 64), SeenResult::too_old);  // refused, never delivered late
  for (std::uint64_t s = 2; s < 100000; ++s) ASSERT_NE(w.insert(s, 64), SeenResult::fresh) << s;
}

TEST(Dedup, RandomPermutationsNeverDeliverTwice) {
  Rng rng(7);
  for (int trial = 0; trial < 50; ++trial) {
    std::vector<std::uint64_t> seqs;
    for (std::uint64_t s = 1; s <= 500; ++s) {
      seqs.push_back(s);
      if (rng.chance(0.3)) seqs.push_back(s);  // duplicates
    }
    for (std::size_t i = seqs.size(); i > 1; --i) std::swap(seqs[i - 1], seqs[rng.below(i)]);
    DedupTable t(1024);
    std::vector<int> fresh(501, 0);
    for (auto s : seqs)
      if (t.insert(MessageId{1, s}) == SeenResult::fresh) ++fresh[s];
    for (std::uint64_t s = 1; s <= 500; ++s) EXPECT_EQ(fresh[s], 1) << s;
  }
}

// Seeded draws must be identical on every platform: the 32-bit (armhf) path of the bounded draw
// gives the same numbers as the 128-bit one.
TEST(Rng, PortableMultiplyMatchesTheNativeOne) {
  mixcast::Rng r(42);
  for (int i = 0; i < 100000; ++i) {
    const std::uint64_t a = r.next(), b = i % 3 ? r.next() : ~std::uint64_t{0};
    ASSERT_EQ(mixcast::mul_high64_portable(a, b), mixcast::mul_high64(a, b)) << a << " * " << b;
  }
}

// A restarted origin numbers from 1 again under a higher incarnation: its new messages are fresh,
// the old incarnation's stragglers still deliver once, and incarnations older than the kept ones
// are refused rather than delivered twice.
TEST(Dedup, EachIncarnationHasItsOwnWindow) {
  using mixcast::DedupTable;
  using mixcast::MessageId;
  using mixcast::SeenResult;
  DedupTable t(64);
  EXPECT_EQ(t.insert(MessageId{7, 1, 1}), SeenResult::fresh);
  EXPECT_EQ(t.insert(MessageId{7, 2, 1}), SeenResult::fresh);
  EXPECT_EQ(t.insert(MessageId{7, 1, 2}), SeenResult::fresh);      // restarted: seq 1 again
  EXPECT_EQ(t.insert(MessageId{7, 1, 2}), SeenResult::duplicate);
  EXPECT_EQ(t.insert(MessageId{7, 3, 1}), SeenResult::fresh);      // a straggler of the old life
  EXPECT_EQ(t.insert(MessageId{7, 3, 1}), SeenResult::duplicate);
  for (std::uint64_t inc = 3; inc < 3 + DedupTable::kIncarnationsKept; ++inc)
    EXPECT_EQ(t.insert(MessageId{7, 1, inc}), SeenResult::fresh) << inc;
  EXPECT_EQ(t.insert(MessageId{7, 1, 1}), SeenResult::too_old);    // forgotten: never delivered twice
  EXPECT_EQ(t.insert(MessageId{8, 1, 1}), SeenResult::fresh);      // other origins are apart
}
