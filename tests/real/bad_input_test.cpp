// Garbage, truncated and oversized frames on a daemon's TCP port and on the multicast group:
// the daemons keep running and delivering, close the malformed streams, and count every piece
// of bad input in `status`.
#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "real_test_support.hpp"

namespace mixcast::testbed::test {
namespace {

using namespace std::chrono_literals;

// A TCP connection to 127.0.0.1:port, closed when it goes out of scope.
class Tcp {
 public:
  explicit Tcp(std::uint16_t port) {
    fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    a.sin_port = htons(port);
    connected_ = fd_ >= 0 && ::connect(fd_, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0;
  }
  ~Tcp() {
    if (fd_ >= 0) ::close(fd_);
  }
  bool connected() const { return connected_; }
  void send(const wire::Bytes& b) {
    std::size_t done = 0;
    while (done < b.size()) {
      const ssize_t n = ::send(fd_, b.data() + done, b.size() - done, MSG_NOSIGNAL);
      if (n <= 0) return;  // the daemon may already have closed it: that is allowed
      done += static_cast<std::size_t>(n);
    }
  }
  void shutdown_write() { ::shutdown(fd_, SHUT_WR); }
  // True once the daemon closed the connection (EOF or reset) within `timeout`.
  bool closed_by_peer(std::chrono::milliseconds timeout) {
    const auto deadline = Clock::now() + timeout;
    char buf[4096];
    while (Clock::now() < deadline) {
      pollfd p{fd_, POLLIN, 0};
      if (::poll(&p, 1, 50) > 0) {
        const ssize_t n = ::recv(fd_, buf, sizeof buf, 0);
        if (n <= 0) return true;
      }
    }
    return false;
  }

 private:
  int fd_ = -1;
  bool connected_ = false;
};

void send_datagram(const std::string& group, std::uint16_t port, const wire::Bytes& b) {
  const int fd = ::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  ASSERT_GE(fd, 0);
  in_addr iface{};
  iface.s_addr = htonl(INADDR_LOOPBACK);
  ::setsockopt(fd, IPPROTO_IP, IP_MULTICAST_IF, &iface, sizeof iface);
  unsigned char ttl = 1;
  ::setsockopt(fd, IPPROTO_IP, IP_MULTICAST_TTL, &ttl, sizeof ttl);
  sockaddr_in to{};
  to.sin_family = AF_INET;
  to.sin_port = htons(port);
  ASSERT_EQ(::inet_pton(AF_INET, group.c_str(), &to.sin_addr), 1);
  const ssize_t n = ::sendto(fd, b.data(), b.size(), 0, reinterpret_cast<sockaddr*>(&to), sizeof to);
  ::close(fd);
  ASSERT_EQ(n, static_cast<ssize_t>(b.size()));
}

wire::Bytes junk(std::size_t n, std::uint8_t seed) {
  wire::Bytes b(n);
  std::uint32_t x = seed * 2654435761u + 1;
  for (auto& c : b) {
    x = x * 1103515245u + 12345u;
    c = static_cast<std::uint8_t>(x >> 16);
  }
  return b;
}

std::uint64_t counter(LocalCluster& c, NodeId n, const char* key) {
  return c.status(n).at("counters").at(key).get<std::uint64_t>();
}

// Polls until counter(n, key) reaches `want` or 3 s pass; returns the last value.
std::uint64_t await_counter(LocalCluster& c, NodeId n, const char* key, std::uint64_t want) {
  const auto deadline = Clock::now() + 3s;
  std::uint64_t v = counter(c, n, key);
  while (v < want && Clock::now() < deadline) {
    std::this_thread::sleep_for(20ms);
    v = counter(c, n, key);
  }
  return v;
}

TEST(RealBadInput, DaemonsSurviveAndCountGarbageTruncatedAndOversizedFrames) {
  ClusterOptions o;
  o.daemon = daemon_binary();
  o.mode = Mode::mixed;  // one subnet: every daemon joins the same multicast group
  o.layout = ClusterLayout::even(4, 1);
  o.env = {"MIXCAST_TEST_TAG=" + random_tag()};
  LocalCluster c(o);
  c.start_all(20s);
  const NodeId target = 1;
  const std::uint16_t port = c.tcp_port(target);
  const auto tcp0 = counter(c, target, "tcp_bad_frames");
  const auto over0 = counter(c, target, "oversized_frames");

  {  // garbage: a length prefix of 64, then 64 bytes that are no frame (not even version 1)
    Tcp t(port);
    ASSERT_TRUE(t.connected());
    wire::Bytes b{64};
    auto j = junk(64, 1);
    j[0] = 0xEE;
    b.insert(b.end(), j.begin(), j.end());
    t.send(b);
    EXPECT_TRUE(t.closed_by_peer(3s)) << "a malformed stream must be closed";
  }
  {  // truncated message inside a complete frame: a hello cut after 3 of its 9 body bytes
    Tcp t(port);
    ASSERT_TRUE(t.connected());
    t.send({6, 1, 1, 9, 3, 0, 0});
    EXPECT_TRUE(t.closed_by_peer(3s));
  }
  {  // stream cut inside a frame: the prefix promises 100 bytes, 10 arrive, then EOF
    Tcp t(port);
    ASSERT_TRUE(t.connected());
    wire::Bytes b{100};
    auto j = junk(10, 2);
    b.insert(b.end(), j.begin(), j.end());
    t.send(b);
    t.shutdown_write();
    EXPECT_TRUE(t.closed_by_peer(3s));
  }
  {  // oversized: a length of 2 MiB (the limit is 1 MiB), with some of the body
    Tcp t(port);
    ASSERT_TRUE(t.connected());
    wire::Bytes b;
    wire::put_varint(b, 2u << 20);
    auto j = junk(4000, 3);
    b.insert(b.end(), j.begin(), j.end());
    t.send(b);
    EXPECT_TRUE(t.closed_by_peer(3s));
  }
  {  // a length varint that never ends (11 bytes with the continuation bit)
    Tcp t(port);
    ASSERT_TRUE(t.connected());
    t.send(wire::Bytes(11, 0xFF));
    EXPECT_TRUE(t.closed_by_peer(3s));
  }
  EXPECT_EQ(await_counter(c, target, "tcp_bad_frames", tcp0 + 4), tcp0 + 4);
  EXPECT_EQ(await_counter(c, target, "oversized_frames", over0 + 1), over0 + 1);

  // The multicast group: every daemon hears every datagram.
  const auto group = c.multicast_of(0);
  ASSERT_TRUE(group.has_value());
  std::vector<std::uint64_t> mc0;
  for (NodeId n = 0; n < c.size(); ++n) mc0.push_back(counter(c, n, "multicast_bad_frames"));
  std::vector<wire::Bytes> datagrams = {
      junk(100, 4),                    // garbage
      {1, 4, 5, 1},                    // mcast_header cut short
      {1},                             // a version byte and no message
      junk(60000, 5),                  // large garbage
  };
  {
    wire::Bytes foreign{1, 4};  // a well-formed header from a sender that is no member
    wire::Bytes body;
    wire::put_varint(body, 999);
    wire::put_varint(body, 1);
    wire::put_varint(foreign, body.size());
    foreign.insert(foreign.end(), body.begin(), body.end());
    datagrams.push_back(foreign);
  }
  datagrams[0][0] = 0x07;  // not version 1
  datagrams[3][0] = 0x01;  // version 1, then junk
  for (const auto& d : datagrams) send_datagram(group->first, group->second, d);
  for (NodeId n = 0; n < c.size(); ++n)
    EXPECT_EQ(await_counter(c, n, "multicast_bad_frames", mc0[n] + datagrams.size()), mc0[n] + datagrams.size())
        << "node " << n;

  // Still running and delivering, exactly once.
  for (NodeId n = 0; n < c.size(); ++n) ASSERT_TRUE(c.alive(n)) << "node " << n << "\n" << logs_of(c);
  std::set<std::string> want;
  const std::string tag = random_tag();
  for (int i = 0; i < 50; ++i) {
    const std::string p = "after the garbage " + std::to_string(i) + " " + tag;
    c.send(static_cast<NodeId>(i % 2), text_bytes(p));
    want.insert(p);
  }
  Ledger ledger(c.size());
  EXPECT_TRUE(wait_for_deliveries(c, ledger, {0, 1, 2, 3}, want, 20s)) << logs_of(c);
  std::this_thread::sleep_for(200ms);
  ledger.pull(c);
  for (NodeId n = 0; n < c.size(); ++n) {
    const auto got = ledger.payloads(n);
    EXPECT_EQ(got.size(), want.size()) << "node " << n << " delivered something twice or missed something";
    EXPECT_EQ(std::set<std::string>(got.begin(), got.end()), want) << "node " << n;
  }
  EXPECT_FALSE(c.unexpected_exit());
  EXPECT_TRUE(c.stop_all(5s).empty());
}

}  // namespace
}  // namespace mixcast::testbed::test
