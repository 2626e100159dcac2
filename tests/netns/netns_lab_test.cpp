// The namespace network built from a scenario: routing across datacenters, NAT, multicast kept
// inside its subnet, and complete teardown. Needs root (CI is root); skips with the reason otherwise.
#include <gtest/gtest.h>

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <sched.h>
#include <sys/socket.h>
#include <unistd.h>

#include <thread>

#include "netns_lab.hpp"

using namespace mixcast;
using namespace mixcast::real;

namespace {

#define REQUIRE_ROOT() \
  if (!NetnsLab::have_root()) GTEST_SKIP() << "needs root: creates network namespaces (CI runs as root)"

// Runs f() on a thread that has entered namespace `ns`; sockets it makes live in that namespace.
template <typename F>
auto in_ns(const std::string& ns, F f) {
  decltype(f()) result{};
  std::thread t([&] {
    const int fd = open(("/run/netns/" + ns).c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0 || setns(fd, CLONE_NEWNET) != 0) throw std::runtime_error("setns " + ns);
    close(fd);
    result = f();
  });
  t.join();
  return result;
}

sockaddr_in addr(const std::string& ip, std::uint16_t port) {
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(port);
  inet_pton(AF_INET, ip.c_str(), &a.sin_addr);
  return a;
}

int tcp_listener(std::uint16_t port) {
  const int s = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  int one = 1;
  setsockopt(s, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  auto a = addr("0.0.0.0", port);
  if (bind(s, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0 || listen(s, 16) != 0) return -1;
  return s;
}

// true if a TCP connection to ip:port completes within 1 s.
bool tcp_connects(const std::string& ip, std::uint16_t port) {
  const int s = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  auto a = addr(ip, port);
  connect(s, reinterpret_cast<sockaddr*>(&a), sizeof a);
  pollfd p{s, POLLOUT, 0};
  bool ok = false;
  if (poll(&p, 1, 1000) == 1) {
    int err = 0;
    socklen_t len = sizeof err;
    getsockopt(s, SOL_SOCKET, SO_ERROR, &err, &len);
    ok = err == 0;
  }
  close(s);
  return ok;
}

int multicast_receiver(const std::string& group, std::uint16_t port, const std::string& iface) {
  const int s = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  int one = 1;
  setsockopt(s, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  auto a = addr(group, port);
  bind(s, reinterpret_cast<sockaddr*>(&a), sizeof a);
  ip_mreq m{};
  inet_pton(AF_INET, group.c_str(), &m.imr_multiaddr);
  inet_pton(AF_INET, iface.c_str(), &m.imr_interface);
  setsockopt(s, IPPROTO_IP, IP_ADD_MEMBERSHIP, &m, sizeof m);
  return s;
}

bool multicast_sent(const std::string& group, std::uint16_t port, const std::string& iface) {
  const int s = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  in_addr i{};
  inet_pton(AF_INET, iface.c_str(), &i);
  setsockopt(s, IPPROTO_IP, IP_MULTICAST_IF, &i, sizeof i);
  auto a = addr(group, port);
  const bool ok = sendto(s, "hi", 2, 0, reinterpret_cast<sockaddr*>(&a), sizeof a) == 2;
  close(s);
  return ok;
}

bool readable(int s, int ms) {
  pollfd p{s, POLLIN, 0};
  return poll(&p, 1, ms) == 1;
}

sim::Scenario nat_scenario() {
  // cloud: cloud-a, cloud-b; branch: office (behind NAT), branch-servers.
  sim::Scenario s = sim::load_scenario(std::string(MIXCAST_SOURCE_DIR) + "/scenarios/nat.yaml");
  sim::rescale(s, 8);
  return s;
}

// The k-th node of a subnet (by name).
NodeId node_in(const sim::Scenario& s, const std::string& subnet, std::uint32_t k) {
  const auto placement = sim::place_nodes(s);
  for (NodeId i = 0; i < placement.size(); ++i)
    if (sim::subnet_at(s, placement[i].subnet).name == subnet && placement[i].index_in_subnet == k) return i;
  throw std::runtime_error("no node " + std::to_string(k) + " in " + subnet);
}

}  // namespace

TEST(NetnsLab, RoutesAcrossDatacentersAndNatBlocksInbound) {
  REQUIRE_ROOT();
  const auto s = nat_scenario();
  NetnsLab lab(s, "t" + std::to_string(getpid()));
  const std::uint16_t port = 7777;
  const NodeId cloud = node_in(s, "cloud-a", 0), cloud_b = node_in(s, "cloud-b", 0);
  const NodeId office = node_in(s, "office", 0), office2 = node_in(s, "office", 1);
  const NodeId branch = node_in(s, "branch-servers", 0);
  const int l0 = in_ns(lab.namespace_of(cloud), [] { return tcp_listener(7777); });
  const int l4 = in_ns(lab.namespace_of(office), [] { return tcp_listener(7777); });
  ASSERT_GE(l0, 0);
  ASSERT_GE(l4, 0);
  // Across the WAN, and between subnets of one datacenter.
  EXPECT_TRUE(in_ns(lab.namespace_of(branch), [&] { return tcp_connects(lab.address_of(cloud), port); }));
  EXPECT_TRUE(in_ns(lab.namespace_of(cloud_b), [&] { return tcp_connects(lab.address_of(cloud), port); }));
  // The NATed node connects out...
  EXPECT_TRUE(in_ns(lab.namespace_of(office), [&] { return tcp_connects(lab.address_of(cloud), port); }));
  // ...but nobody outside its subnet connects in: not to its address, not to the NAT's public one.
  EXPECT_FALSE(in_ns(lab.namespace_of(cloud), [&] { return tcp_connects(lab.address_of(office), port); }));
  EXPECT_FALSE(in_ns(lab.namespace_of(branch), [&] { return tcp_connects(lab.address_of(office), port); }));
  EXPECT_FALSE(in_ns(lab.namespace_of(cloud), [&] { return tcp_connects("100.64.2.1", port); }));
  // Inside the office subnet, directly.
  EXPECT_TRUE(in_ns(lab.namespace_of(office2), [&] { return tcp_connects(lab.address_of(office), port); }));
  close(l0);
  close(l4);
}

TEST(NetnsLab, MulticastStaysInsideItsSubnet) {
  REQUIRE_ROOT();
  const auto s = nat_scenario();
  NetnsLab lab(s, "m" + std::to_string(getpid()));
  const std::string group = "239.255.77.1";
  const NodeId a0 = node_in(s, "cloud-a", 0), a1 = node_in(s, "cloud-a", 1), b0 = node_in(s, "cloud-b", 0);
  const int same = in_ns(lab.namespace_of(a1), [&] { return multicast_receiver(group, 7400, lab.address_of(a1)); });
  const int other = in_ns(lab.namespace_of(b0), [&] { return multicast_receiver(group, 7400, lab.address_of(b0)); });
  ASSERT_TRUE(in_ns(lab.namespace_of(a0), [&] { return multicast_sent(group, 7400, lab.address_of(a0)); }));
  EXPECT_TRUE(readable(same, 1000)) << "shares the sender's subnet";
  EXPECT_FALSE(readable(other, 300)) << "another subnet of the same datacenter";
  // Multicast failing in the subnet (multicast_fails_at_s): nothing more arrives.
  char buf[16];
  recv(same, buf, sizeof buf, 0);
  lab.fail_multicast(0);
  in_ns(lab.namespace_of(a0), [&] { return multicast_sent(group, 7400, lab.address_of(a0)); });
  EXPECT_FALSE(readable(same, 300));
  close(same);
  close(other);
}

TEST(NetnsLab, TeardownRemovesEverythingAlsoAfterAFailedBuild) {
  REQUIRE_ROOT();
  const std::string tag = "d" + std::to_string(getpid());
  auto mine = [&] {
    std::size_t n = 0;
    for (const auto& ns : NetnsLab::existing_namespaces()) n += ns.find(tag) != std::string::npos;
    return n;
  };
  {
    NetnsLab lab(nat_scenario(), tag);
    EXPECT_EQ(mine(), lab.namespaces().size());
    EXPECT_EQ(lab.namespaces().size(), 8u + 2 + 1);  // nodes, routers, the NAT
  }
  EXPECT_EQ(mine(), 0u);
  // A build that fails half way (a namespace of that name already exists) removes what it made.
  run_command({"ip", "netns", "add", std::string(NetnsLab::kPrefix) + tag + "-n3"});
  EXPECT_THROW(NetnsLab(nat_scenario(), tag), NetnsError);
  EXPECT_EQ(mine(), 1u);
  run_command({"ip", "netns", "del", std::string(NetnsLab::kPrefix) + tag + "-n3"});
  EXPECT_EQ(mine(), 0u);
}
