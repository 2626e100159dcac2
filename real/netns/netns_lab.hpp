// A scenario built as a real network on this host, in Linux network namespaces (root only):
//   - a namespace per node (its daemon runs there), with one veth to its subnet;
//   - a router namespace per datacenter holding one Linux bridge per subnet (real UDP multicast
//     inside the subnet, never routed beyond it), and veth links to the other datacenters' routers
//     along the scenario's WAN links, with static routes;
//   - a NAT subnet's bridge sits in a NAT namespace behind its datacenter router, which does
//     iptables MASQUERADE: outbound connections work, nothing outside can connect in;
//   - loss with iptables' statistic match (LAN loss on the nodes' input, multicast loss, broken
//     multicast senders/receivers, WAN loss on router forwarding). Latency and bandwidth are not
//     emulated (tc netem is not available here).
// Every interface, bridge and rule lives inside a namespace the lab created, so deleting the
// namespaces removes everything. The one host setting it changes, the size of the kernel's shared
// ARP table, it raises only when the lab needs more and restores at teardown.
#pragma once
#include <cstdint>
#include <stdexcept>
#include <string>
#include <vector>

#include "mixcast/core/types.hpp"
#include "mixcast/sim/scenario.hpp"

namespace mixcast::real {

struct NetnsError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

class NetnsLab {
 public:
  static constexpr const char* kPrefix = "mxc-";  // every namespace the lab makes starts with this

  // Builds the network; throws NetnsError (naming the failed command and its message) and removes
  // what it had built. Refuses without root.
  NetnsLab(const sim::Scenario& scenario, std::string tag);
  ~NetnsLab();
  NetnsLab(const NetnsLab&) = delete;
  NetnsLab& operator=(const NetnsLab&) = delete;

  // Kills every process left in the lab's namespaces and deletes them. Idempotent, never throws.
  void teardown() noexcept;

  const std::string& namespace_of(NodeId node) const { return nodes_.at(node).ns; }
  const std::string& address_of(NodeId node) const { return nodes_.at(node).address; }
  // The command that runs a program in the node's namespace (an absolute path: callers may exec it
  // without a PATH search).
  std::vector<std::string> exec_prefix(NodeId node) const { return {ip_binary(), "netns", "exec", namespace_of(node)}; }
  static const std::string& ip_binary();  // iproute2's ip
  const std::vector<std::string>& namespaces() const { return namespaces_; }
  // Multicast stops working in a subnet (scenario multicast_fails_at_s): drop its multicast.
  void fail_multicast(std::uint32_t global_subnet);
  // And works again (multicast_recovers_at_s): the drop rule goes.
  void restore_multicast(std::uint32_t global_subnet);

  // Namespaces whose name starts with kPrefix (left behind by any lab), and their removal.
  static std::vector<std::string> existing_namespaces();
  static void remove_all_namespaces() noexcept;
  static void remove_namespace(const std::string& ns) noexcept;  // its processes are killed first
  static bool have_root();

 private:
  struct NodeNet {
    std::string ns, address;
    std::uint32_t subnet = 0;
  };
  void build(const sim::Scenario& s);
  void add_namespace(const std::string& ns);
  std::string ns_name(const std::string& what) const { return std::string(kPrefix) + tag_ + "-" + what; }

  void raise_neighbour_limits(std::uint64_t entries);

  std::string tag_;
  // The kernel's ARP table is shared by every namespace and holds 1,024 entries by default: a big
  // lab overflows it (connects time out). The lab raises the limits for its lifetime and restores
  // the values it found.
  std::vector<std::pair<std::string, std::string>> saved_sysctls_;
  std::vector<std::string> namespaces_;  // in creation order
  std::vector<NodeNet> nodes_;
};

// Runs a command (no shell); throws NetnsError with the command line and its stderr if it fails.
std::string run_command(const std::vector<std::string>& argv);

}  // namespace mixcast::real
