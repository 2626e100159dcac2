// A scenario: topology, protocol parameters, workload, crashes and seed. Loaded from YAML
// (scenarios/README.md documents every key); every engine consumes the same struct.
#pragma once
#include <cstdint>
#include <stdexcept>
#include <optional>
#include <string>
#include <vector>

#include "mixcast/core/types.hpp"

namespace mixcast::sim {

struct LinkSpec {
  double bandwidth_bps = 1e9;
  double latency_s = 100e-6;  // one way
  double loss = 0.0;          // probability a packet is lost (TCP: retransmitted; multicast: gone)
};

struct SubnetSpec {
  std::string name;
  std::uint32_t nodes = 1;
  LinkSpec lan;
  bool multicast = true;  // multicast works inside this subnet
  double multicast_loss = 0.0;  // extra loss of multicast datagrams only, per receiver (switches, UDP buffers)
  bool nat = false;       // nodes accept no connections from outside this subnet
  // Asymmetric reachability, by index inside the subnet (0-based).
  std::vector<std::uint32_t> multicast_send_broken;  // their multicasts reach nobody
  std::vector<std::uint32_t> multicast_recv_broken;  // they hear no multicast
  double multicast_fails_at_s = -1;                  // >= 0: multicast stops working at this time
  double multicast_recovers_at_s = -1;               // >= 0: and works again from this time on
};

struct DatacenterSpec {
  std::string name;
  std::vector<SubnetSpec> subnets;
};

struct WanLinkSpec {
  std::string a, b;  // datacenter names
  LinkSpec link{100e6, 20e-3, 0.0};
};

struct ProtocolSpec {
  Mode mode = Mode::tcp;
  double ack_timeout_s = 0.5;        // a delegate that does not ack within this is re-delegated
  double forced_tcp_share = 0.0;     // mixed: share of multicast-reachable targets also sent over TCP
  double confirm_interval_s = 0.05;  // mixed: how often receivers confirm what they heard
  double reach_expiry_s = 1.0;       // mixed: a node that stops confirming falls back to TCP after this
  double beacon_interval_s = 0.1;    // mixed: multicast beacons so reachability is learned without traffic
  std::uint32_t nat_links = 2;       // NAT nodes keep this many outbound links to nodes outside
  std::uint32_t retention = 1024;    // mixed: multicasts kept for repair
  std::uint32_t dedup_window = 4096;
};

struct WorkloadSpec {
  std::uint32_t broadcasts = 1;
  std::uint32_t payload_bytes = 64;
  double rate_per_s = 10;  // broadcasts started per second
  std::vector<std::uint32_t> origins;  // global node indexes; empty = chosen at random (seeded)
  std::uint32_t warmup_broadcasts = 0; // extra broadcasts before the measured ones (not in statistics)
  double start_s = 0.0;                // first broadcast (after warm-up) starts at this time
};

struct CrashSpec {
  double at_s = 0.0;
  std::uint32_t count = 0;             // this many random nodes (never an origin)...
  double fraction = 0.0;               // ...or this share of all nodes...
  std::vector<std::uint32_t> nodes;    // ...or exactly these global node indexes
  std::optional<double> restart_after_s;  // restarted (new incarnation) this long after the crash
};

struct Scenario {
  std::string name;
  std::string source;  // file path it was loaded from (for messages)
  std::uint64_t seed = 1;
  std::vector<DatacenterSpec> datacenters;
  std::vector<WanLinkSpec> wan;
  ProtocolSpec protocol;
  WorkloadSpec workload;
  std::vector<CrashSpec> crashes;
  double time_limit_s = 600;  // the simulation stops here even if messages are still in flight

  std::uint32_t total_nodes() const;
  std::uint32_t total_subnets() const;
};

// The smallest valid scenario: one datacenter "dc" with one subnet "lan" of `nodes` nodes and
// default links, protocol and workload. For benchmarks, tests and programs that build scenarios in code.
Scenario single_subnet_scenario(std::uint32_t nodes, const std::string& name = "single-subnet");

// Where a global node index lives. Nodes are numbered datacenter by datacenter, subnet by subnet.
struct Placement {
  std::uint32_t datacenter = 0;
  std::uint32_t subnet = 0;  // global subnet index
  std::uint32_t index_in_subnet = 0;
};
std::vector<Placement> place_nodes(const Scenario& s);
const SubnetSpec& subnet_at(const Scenario& s, std::uint32_t global_subnet);

// User errors in a scenario. what() names the file, line and key path.
class ScenarioError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// Loads and validates a scenario file, applying `overrides` ("key.path=value", e.g.
// "protocol.mode=mixed", "datacenters.0.subnets.1.nodes=12") before validation.
Scenario load_scenario(const std::string& path, const std::vector<std::string>& overrides = {});
Scenario load_scenario_text(const std::string& yaml, const std::string& source_name,
                            const std::vector<std::string>& overrides = {});

// Rescales to n nodes keeping each subnet's share (largest remainder, every subnet keeps >= 1 node).
// Throws ScenarioError if n is smaller than the number of subnets.
void rescale(Scenario& s, std::uint32_t n);

// Cross-field checks (topology connected, origins and crash nodes exist, ...). Throws ScenarioError.
void validate(const Scenario& s);

// The scenario as a YAML scenario file that load_scenario_text() reads back to the same values.
std::string to_yaml(const Scenario& s);

// A human explanation of the scenario: topology, parameters, workload, lower bounds.
std::string explain(const Scenario& s);

}  // namespace mixcast::sim
