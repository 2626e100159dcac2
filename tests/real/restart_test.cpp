// A daemon killed with SIGKILL and started again (issue 14, "Restarts"): it comes back with a
// higher incarnation from its state file, numbers its broadcasts from 1 again, and every peer
// delivers what it sends after the restart — exactly once, although the seqs repeat the old ones.
#include <gtest/gtest.h>

#include <chrono>
#include <fstream>
#include <iostream>
#include <map>
#include <set>
#include <string>
#include <thread>
#include <tuple>
#include <vector>

#include "real_test_support.hpp"

namespace mixcast::testbed::test {
namespace {

using namespace std::chrono_literals;

constexpr std::uint32_t kNodes = 4;
constexpr NodeId kVictim = 1;
constexpr int kPerLife = 5;

// Mixed mode: every live daemon plans with `expected` islands and the same hash.
bool islands_agreed(LocalCluster& c, std::uint32_t expected, std::chrono::milliseconds timeout) {
  const auto deadline = Clock::now() + timeout;
  for (;;) {
    std::set<std::uint64_t> hashes;
    bool counts = true;
    for (NodeId n = 0; n < c.size(); ++n) {
      const auto st = c.status(n);
      hashes.insert(st.at("islands").at("hash").get<std::uint64_t>());
      counts = counts && st.at("islands").at("count").get<std::uint32_t>() == expected;
    }
    if (hashes.size() == 1 && counts) return true;
    if (Clock::now() >= deadline) return false;
    std::this_thread::sleep_for(50ms);
  }
}

class RealRestart : public ::testing::TestWithParam<Mode> {};

TEST_P(RealRestart, PeersDeliverEverythingARestartedDaemonSendsExactlyOnce) {
  const std::string tag = random_tag();
  ClusterOptions o;
  o.daemon = daemon_binary();
  o.mode = GetParam();
  o.layout = ClusterLayout::even(kNodes, 2);  // two subnets: multicast inside, TCP across in mixed mode
  o.env = {"MIXCAST_TEST_TAG=" + tag};
  o.protocol = {{"ack_timeout_ms", "300"}};
  LocalCluster c(o);
  c.start_all(20s);
  const bool mixed = GetParam() == Mode::mixed;
  if (mixed) {
    ASSERT_TRUE(islands_agreed(c, 2, 15s)) << logs_of(c);
  }

  const std::uint64_t first = c.status(kVictim).at("incarnation").get<std::uint64_t>();
  EXPECT_GE(first, 1u);
  std::vector<NodeId> all = {0, 1, 2, 3}, peers = {0, 2, 3};

  // Its first life: 5 broadcasts that every peer delivers (so every peer's dedup window holds seqs 1-5).
  std::set<std::string> before, after;
  std::vector<MessageId> ids;
  for (int i = 0; i < kPerLife; ++i) {
    const std::string p = "life 1 msg " + std::to_string(i) + " " + tag;
    const MessageId id = c.send(kVictim, text_bytes(p));
    EXPECT_EQ(id.incarnation, first);
    EXPECT_EQ(id.seq, static_cast<std::uint64_t>(i + 1));
    ids.push_back(id);
    before.insert(p);
  }
  Ledger ledger(kNodes);
  ASSERT_TRUE(wait_for_deliveries(c, ledger, all, before, 10s)) << logs_of(c);

  c.kill9(kVictim);
  EXPECT_FALSE(c.alive(kVictim));
  std::this_thread::sleep_for(300ms);  // the peers notice: links reset, reconnects back off
  c.restart(kVictim);
  c.wait_ready(20s);
  ASSERT_TRUE(c.alive(kVictim));
  const std::uint64_t second = c.status(kVictim).at("incarnation").get<std::uint64_t>();
  EXPECT_GT(second, first) << "a restarted daemon must come back with a higher incarnation";
  if (mixed) {
    EXPECT_TRUE(islands_agreed(c, 2, 15s)) << "islands not agreed again after the restart\n" << logs_of(c);
  }

  for (int i = 0; i < kPerLife; ++i) {
    const std::string p = "life 2 msg " + std::to_string(i) + " " + tag;
    const MessageId id = c.send(kVictim, text_bytes(p));
    EXPECT_EQ(id.incarnation, second);
    EXPECT_EQ(id.seq, static_cast<std::uint64_t>(i + 1)) << "seqs start from 1 again: only the incarnation differs";
    ids.push_back(id);
    after.insert(p);
  }
  const bool done = wait_for_deliveries(c, ledger, all, after, 15s);
  std::this_thread::sleep_for(500ms);  // late duplicates, if any, would land now
  ledger.pull(c);

  std::map<std::string, MessageId> id_of;
  {
    std::size_t k = 0;
    for (int i = 0; i < kPerLife; ++i) id_of["life 1 msg " + std::to_string(i) + " " + tag] = ids[k++];
    for (int i = 0; i < kPerLife; ++i) id_of["life 2 msg " + std::to_string(i) + " " + tag] = ids[k++];
  }
  std::size_t delivered_after = 0;
  for (NodeId n : peers) {
    std::map<std::string, int> times;
    std::set<std::tuple<NodeId, std::uint64_t, std::uint64_t>> seen_ids;
    for (const auto& r : ledger.rows[n]) {
      if (r.id.origin != kVictim) continue;
      const std::string p = bytes_text(r.payload);
      ++times[p];
      EXPECT_TRUE(seen_ids.insert({r.id.origin, r.id.incarnation, r.id.seq}).second)
          << "node " << n << " delivered id (" << r.id.origin << ", " << r.id.incarnation << ", " << r.id.seq << ") twice";
      auto it = id_of.find(p);
      ASSERT_NE(it, id_of.end()) << "node " << n << " delivered a payload nobody sent: " << p;
      EXPECT_EQ(r.id, it->second) << "node " << n << ": '" << p << "' under the wrong id";
    }
    std::size_t got = 0;
    for (const auto& p : after) {
      got += times[p] > 0 ? 1 : 0;
      EXPECT_EQ(times[p], 1) << "node " << n << " delivered '" << p << "' " << times[p] << " times";
    }
    for (const auto& p : before) EXPECT_EQ(times[p], 1) << "node " << n << " delivered '" << p << "' " << times[p] << " times";
    delivered_after += got;
    EXPECT_EQ(got, after.size()) << "node " << n << " delivered " << got << " of " << after.size()
                                 << " broadcasts sent after the restart";
  }
  std::cout << "[restart " << to_string(GetParam()) << "] incarnation " << first << " -> " << second
            << "; peers delivered " << delivered_after << "/" << peers.size() * after.size()
            << " broadcasts sent after the restart\n";
  RecordProperty("delivered_after_restart", static_cast<int>(delivered_after));
  EXPECT_TRUE(done) << logs_of(c);
  // The restarted daemon delivered its own new broadcasts once (its old ones are in its old life).
  std::size_t own = 0;
  for (const auto& r : ledger.rows[kVictim]) own += after.count(bytes_text(r.payload));
  EXPECT_EQ(own, after.size());
  for (NodeId n : peers) EXPECT_EQ(c.status(n).at("counters").at("too_old").get<std::uint64_t>(), 0u) << "node " << n;
  EXPECT_TRUE(c.stop_all(5s).empty());
  EXPECT_FALSE(c.unexpected_exit());
}

// A second restart again raises the incarnation; a state file with garbage stops the daemon with
// exit code 2 and a message naming the file, rather than guessing an incarnation.
TEST(RealRestartState, IncarnationsIncreaseAndGarbageIsRefused) {
  ClusterOptions o;
  o.daemon = daemon_binary();
  o.layout = ClusterLayout::even(2, 1);
  o.env = {"MIXCAST_TEST_TAG=" + random_tag()};
  LocalCluster c(o);
  c.start_all(20s);
  std::uint64_t last = c.status(0).at("incarnation").get<std::uint64_t>();
  for (int k = 0; k < 2; ++k) {
    c.kill9(0);
    if (k == 0) {  // a delivery log from before incarnations is moved aside, not appended to
      c.read_deliveries(0);
      std::ofstream(c.delivery_log_path(0), std::ios::trunc) << "origin,seq,round,channel,time_us,payload_hex\n0,1,0,local,5,78\n";
    }
    c.restart(0);
    c.wait_ready(20s);
    const auto now = c.status(0).at("incarnation").get<std::uint64_t>();
    EXPECT_GT(now, last);
    last = now;
  }
  EXPECT_EQ(slurp(c.delivery_log_path(0) + ".old").rfind("origin,seq,round,", 0), 0u);
  const std::string state = c.dir() + "/node-0.incarnation";
  EXPECT_EQ(slurp(state), std::to_string(last) + "\n");
  const auto reply = c.send(0, text_bytes("x"));
  EXPECT_EQ(reply.incarnation, last);
  Ledger ledger(2);
  ASSERT_TRUE(wait_for_deliveries(c, ledger, {1}, {"x"}, 10s)) << logs_of(c);
  ASSERT_EQ(ledger.rows[1].size(), 1u);
  EXPECT_EQ(ledger.rows[1][0].id, reply);
  // Node 0's log was replaced under the cluster's reader: read the new file from its start.
  EXPECT_EQ(slurp(c.delivery_log_path(0)).rfind(std::string(real::kDeliveryCsvHeader) + "\n", 0), 0u);
  const auto own = DeliveryLogReader(c.delivery_log_path(0)).read_new();
  ASSERT_EQ(own.size(), 1u);
  EXPECT_EQ(own[0].id, reply);

  c.kill9(0);
  { std::ofstream(state) << "not a number\n"; }
  c.restart(0);
  EXPECT_THROW(c.wait_ready(10s), ClusterError);
  const std::string log = c.log_tail(0, 4000);
  EXPECT_NE(log.find("state file " + state), std::string::npos) << log;
  EXPECT_NE(c.unexpected_exit().value_or("").find("exited with code 2"), std::string::npos);
}

INSTANTIATE_TEST_SUITE_P(Modes, RealRestart, ::testing::Values(Mode::tcp, Mode::mixed),
                         [](const ::testing::TestParamInfo<Mode>& p) { return std::string(to_string(p.param)); });

}  // namespace
}  // namespace mixcast::testbed::test
