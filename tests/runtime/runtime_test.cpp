// Runtimes in one process on loopback, one io_context: real sockets, real multicast.
#include <gtest/gtest.h>

#include <boost/asio.hpp>
#include <map>
#include <nlohmann/json.hpp>
#include <set>

#include "mixcast/real/runtime.hpp"

using namespace mixcast;
using namespace mixcast::real;
namespace asio = boost::asio;

namespace {

std::uint16_t free_port() {
  asio::io_context io;
  asio::ip::tcp::acceptor a(io, {asio::ip::make_address("127.0.0.1"), 0});
  return a.local_endpoint().port();
}

// A multicast group per test run, so parallel tests do not hear each other.
std::string unique_group() {
  return "239.255." + std::to_string(1 + free_port() % 250) + "." + std::to_string(1 + free_port() % 250);
}

struct Cluster {
  asio::io_context io;
  std::vector<std::unique_ptr<Runtime>> nodes;
  std::map<NodeId, std::multiset<std::string>> delivered;  // node -> payloads

  std::vector<std::uint16_t> ports;
  MulticastConfig mc;
  std::uint16_t port_of(NodeId i) const { return ports[i]; }
  asio::ip::udp::endpoint group_endpoint() const { return {asio::ip::make_address(mc.group), mc.port}; }

  Cluster(std::size_t n, Mode mode, Limits limits = {}) {
    for (std::size_t i = 0; i < n; ++i) ports.push_back(free_port());
    mc.group = unique_group();
    mc.port = free_port();
    for (NodeId i = 0; i < n; ++i) {
      DaemonConfig c;
      c.node.self = i;
      c.node.mode = mode;
      c.listen = {"127.0.0.1", ports[i]};
      c.limits = limits;
      if (mode == Mode::mixed) c.multicast = mc;
      for (NodeId j = 0; j < n; ++j)
        if (j != i) c.peers.push_back({j, {"127.0.0.1", ports[j]}, std::nullopt});
      nodes.push_back(std::make_unique<Runtime>(io, c));
      nodes.back()->on_delivery([this, i](const DeliveryEvent& d) {
        delivered[i].insert(std::string(d.payload.begin(), d.payload.end()));
      });
      nodes.back()->start();
    }
  }
  ~Cluster() {
    for (auto& r : nodes) r->stop();
  }
  // Runs the loop until `done` holds or `seconds` pass; returns done().
  template <typename F>
  bool run_until(F done, double seconds) {
    const auto end = std::chrono::steady_clock::now() + std::chrono::duration<double>(seconds);
    while (!done() && std::chrono::steady_clock::now() < end) io.run_for(std::chrono::milliseconds(10));
    return done();
  }
  bool all_delivered(std::size_t count) {
    for (NodeId i = 0; i < nodes.size(); ++i)
      if (delivered[i].size() < count) return false;
    return true;
  }
};

wire::Bytes bytes(const std::string& s) { return wire::Bytes(s.begin(), s.end()); }

void expect_everyone_got_exactly(Cluster& c, const std::multiset<std::string>& sent) {
  for (NodeId i = 0; i < c.nodes.size(); ++i) EXPECT_EQ(c.delivered[i], sent) << "node " << i;
}

}  // namespace

TEST(Runtime, TcpModeDeliversEveryMessageOnceToEveryNode) {
  Cluster c(6, Mode::tcp);
  std::multiset<std::string> sent;
  for (int k = 0; k < 60; ++k) {
    const std::string p = "tcp-" + std::to_string(k);
    ASSERT_TRUE(c.nodes[k % 6]->try_broadcast(bytes(p)));
    sent.insert(p);
  }
  ASSERT_TRUE(c.run_until([&] { return c.all_delivered(60); }, 10));
  c.run_until([] { return false; }, 0.2);  // late duplicates would show now
  expect_everyone_got_exactly(c, sent);
  for (auto& n : c.nodes) EXPECT_EQ(n->node().counters().duplicates, 0u);
}

TEST(Runtime, MixedModeLearnsOneIslandAndMulticasts) {
  Cluster c(4, Mode::mixed);
  ASSERT_TRUE(c.run_until([&] {
    for (auto& n : c.nodes)
      if (n->status()["islands"]["count"] != 1) return false;
    return true;
  }, 10)) << c.nodes[0]->status().dump();
  std::multiset<std::string> sent;
  for (int k = 0; k < 20; ++k) {
    const std::string p = "mixed-" + std::to_string(k);
    ASSERT_TRUE(c.nodes[k % 4]->try_broadcast(bytes(p)));
    sent.insert(p);
  }
  ASSERT_TRUE(c.run_until([&] { return c.all_delivered(20); }, 10));
  c.run_until([] { return false; }, 0.2);
  expect_everyone_got_exactly(c, sent);
  std::uint64_t multicasts = 0, announcements = 0;
  for (auto& n : c.nodes) {
    multicasts += n->node().counters().multicasts;
    announcements += n->node().counters().announcements;
  }
  // Every broadcast went out as one multicast into the island; the only others carry the leader's
  // island announcements.
  EXPECT_GE(multicasts, 20u);
  EXPECT_LE(multicasts, 20u + announcements);
  const auto s = c.nodes[1]->status();
  EXPECT_EQ(s["reachability"]["hears_me"].size(), 3u);
  EXPECT_EQ(s["reachability"]["i_hear"].size(), 3u);
}

TEST(Runtime, GarbageIsCountedAndSurvived) {
  Cluster c(3, Mode::mixed);
  c.run_until([] { return false; }, 0.5);
  const auto port0 = c.nodes[0]->tcp_port();
  // TCP: a stranger's junk, an oversized length, a frame cut off by the close.
  auto send_tcp = [&](const std::string& junk) {
    asio::ip::tcp::socket s(c.io);
    s.connect({asio::ip::make_address("127.0.0.1"), port0});
    asio::write(s, asio::buffer(junk));
    c.run_until([] { return false; }, 0.1);
  };
  send_tcp(std::string("\x05garbage-not-a-hello", 20));
  send_tcp(std::string("\xff\xff\xff\xff\x7f", 5));  // a 34 GB frame
  send_tcp(std::string("\x40\x01", 2));                // 64 bytes announced, 1 sent
  // Multicast: junk into the group.
  const auto before = c.nodes[1]->transport().multicast_bad_frames;
  {
    asio::ip::udp::socket u(c.io, asio::ip::udp::v4());
    u.set_option(asio::ip::multicast::outbound_interface(asio::ip::make_address_v4("127.0.0.1")));
    u.send_to(asio::buffer(std::string("\x01\x04\x02junk", 7)), c.group_endpoint());
  }
  c.run_until([] { return false; }, 0.2);
  const auto& t0 = c.nodes[0]->transport();
  EXPECT_GE(t0.tcp_bad_frames, 2u);
  EXPECT_EQ(t0.oversized_frames, 1u);
  EXPECT_GT(c.nodes[1]->transport().multicast_bad_frames, before);
  const auto s = c.nodes[0]->status();
  EXPECT_EQ(s["counters"]["oversized_frames"], 1);
  // And the cluster still works.
  ASSERT_TRUE(c.nodes[2]->try_broadcast(bytes("after-garbage")));
  ASSERT_TRUE(c.run_until([&] { return c.all_delivered(1); }, 5));
}

TEST(Runtime, FullSendQueuesPushBackAndRecover) {
  // Node 1 is a listener that accepts but does not read: node 0's queue to it fills.
  Limits small;
  small.send_queue_bytes = 64 << 10;
  Cluster c(2, Mode::tcp, small);
  c.nodes[1]->stop();  // frees its port for the sink
  asio::ip::tcp::acceptor sink(c.io, {asio::ip::make_address("127.0.0.1"), c.port_of(1)});
  asio::ip::tcp::socket held(c.io);
  sink.async_accept(held, [](boost::system::error_code) {});
  bool ready = false;
  c.nodes[0]->on_ready([&] { ready = true; });
  std::size_t accepted = 0;
  const wire::Bytes payload(1000, 'x');
  // poll() after every message runs the runtime's deferred pump, so the queue is checked against
  // its bound once per message whatever the machine's speed (no timing in this test).
  for (int k = 0; k < 100000 && c.nodes[0]->try_broadcast(payload); ++k) {
    ++accepted;
    c.io.poll();
  }
  ASSERT_LT(accepted, 100000u) << "the runtime never pushed back";
  const auto queued = c.nodes[0]->status()["links"][0]["queued_bytes"].get<std::size_t>();
  // At most one message's frame beyond the bound.
  EXPECT_LE(queued, small.send_queue_bytes + 2 * payload.size()) << "queue grew past its bound";
  EXPECT_GT(c.nodes[0]->transport().backpressure_refusals, 0u);
  ready = false;  // the kernel's socket buffers absorbed some rounds before: wait for this one
  c.io.run_for(std::chrono::milliseconds(50));
  EXPECT_FALSE(ready) << "nobody reads the sink, so the queue cannot drain";
  EXPECT_FALSE(c.nodes[0]->try_broadcast(payload));
  // Drain the sink: the queue empties and the runtime says it is ready again.
  std::array<char, 65536> buf;
  std::function<void()> drain = [&] {
    held.async_read_some(asio::buffer(buf), [&](boost::system::error_code ec, std::size_t) {
      if (!ec) drain();
    });
  };
  drain();
  ASSERT_TRUE(c.run_until([&] { return ready; }, 10));
  EXPECT_TRUE(c.nodes[0]->try_broadcast(payload));
}
