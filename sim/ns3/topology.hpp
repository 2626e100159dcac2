// A scenario as an ns-3 network:
//   - each subnet is a switched LAN: CSMA cables (the subnet's bandwidth and latency) from its hosts
//     and the router of its datacenter to a learning bridge; a NAT subnet holds a NAT gateway
//     instead of the router, linked to it;
//   - datacenter routers are joined by point-to-point WAN links (bandwidth, delay, loss);
//   - static routes along the lowest-latency WAN paths (global routing does not scale);
//   - multicast stays inside a subnet: hosts have a default multicast route, routers forward none;
//   - loss: error models in packet units on the receiving devices, seeded.
// Addresses: subnet k is 10.k.0.0/16 (router or gateway .0.1, hosts from .0.2); NAT subnet k's
// public address is 100.64.k.1, its transit link 172.16.k.0/30; WAN link w is 192.168.x.y/30.
#pragma once
#include <cstdint>
#include <memory>
#include <vector>

#include "ns3/ipv4-address.h"
#include "ns3/node-container.h"

#include "link_bytes.hpp"
#include "mixcast/sim/scenario.hpp"
#include "nat_gateway.hpp"

namespace mixcast::ns3sim {

struct Topology {
  ns3::NodeContainer hosts;                 // index = scenario node id
  std::vector<ns3::Ipv4Address> addresses;  // each host's own (private, for NAT subnets) address
  ns3::NodeContainer routers;               // one per datacenter
  ns3::NodeContainer switches;              // one per subnet
  std::vector<ns3::Ptr<NatGateway>> nats;   // one per NAT subnet
  std::vector<ns3::Ipv4Address> nat_public; // the public address of each NAT, same order
};

// Throws sim::ScenarioError when the scenario does not fit the address plan (over 255 subnets or
// 65,533 hosts in one subnet). Error models draw from ns-3's seeded streams, assigned in build order.
Topology build_topology(const sim::Scenario& s, LinkBytes& link_bytes);

}  // namespace mixcast::ns3sim
