#include "topology.hpp"

#include <algorithm>
#include <limits>
#include <set>
#include <string>

#include "ns3/bridge-helper.h"
#include "ns3/csma-helper.h"
#include "ns3/csma-net-device.h"
#include "ns3/error-model.h"
#include "ns3/ethernet-header.h"
#include "ns3/internet-stack-helper.h"
#include "ns3/ipv4-list-routing-helper.h"
#include "ns3/ipv4-static-routing-helper.h"
#include "ns3/ipv4-static-routing.h"
#include "ns3/ipv4.h"
#include "ns3/mac48-address.h"
#include "ns3/point-to-point-helper.h"
#include "ns3/pointer.h"
#include "ns3/random-variable-stream.h"
#include "ns3/simulator.h"
#include "ns3/string.h"

namespace mixcast::ns3sim {
namespace {

// Loss on one receiving LAN device. Multicast frames also suffer the subnet's multicast-only loss
// and its reachability faults (a receiver that hears none, senders nobody hears, multicast failing
// at a time), so all of them happen at packet level.
class LanLossModel : public ns3::ErrorModel {
 public:
  struct Rules {
    double loss = 0;            // every frame
    double multicast_loss = 0;  // multicast frames, all causes combined
    bool recv_broken = false;
    bool no_multicast = false;  // drop every multicast frame (a switch port that forwards none)
    std::shared_ptr<const std::set<ns3::Mac48Address>> send_broken;
    ns3::Time fails_at = ns3::Time(-1);     // negative: never
    ns3::Time recovers_at = ns3::Time(-1);  // negative: never (once failed)
  };
  static ns3::TypeId GetTypeId() {
    static ns3::TypeId tid =
        ns3::TypeId("mixcast::LanLossModel").SetParent<ns3::ErrorModel>().AddConstructor<LanLossModel>();
    return tid;
  }
  void Configure(Rules rules, std::int64_t stream) {
    rules_ = std::move(rules);
    rng_->SetStream(stream);
  }

 private:
  bool DoCorrupt(ns3::Ptr<ns3::Packet> p) override {
    ns3::EthernetHeader eth;
    p->PeekHeader(eth);
    const bool multicast = eth.GetDestination().IsGroup() && !eth.GetDestination().IsBroadcast();
    if (!multicast) return rules_.loss > 0 && rng_->GetValue() < rules_.loss;
    if (rules_.no_multicast || rules_.recv_broken || (rules_.send_broken && rules_.send_broken->count(eth.GetSource())) ||
        failed_now())
      return true;
    return rules_.multicast_loss > 0 && rng_->GetValue() < rules_.multicast_loss;
  }
  void DoReset() override {}
  bool failed_now() const {
    const ns3::Time now = ns3::Simulator::Now();
    return !rules_.fails_at.IsNegative() && now >= rules_.fails_at &&
           (rules_.recovers_at.IsNegative() || now < rules_.recovers_at);
  }

  Rules rules_;
  ns3::Ptr<ns3::UniformRandomVariable> rng_ = ns3::CreateObject<ns3::UniformRandomVariable>();
};

ns3::Ipv4Address subnet_address(std::uint32_t k, std::uint32_t host) {  // host 1 = router/gateway
  return ns3::Ipv4Address((10u << 24) | (k << 16) | host);
}
ns3::Ipv4Address nat_public_address(std::uint32_t k) { return ns3::Ipv4Address((100u << 24) | (64u << 16) | (k << 8) | 1u); }
const ns3::Ipv4Mask kSubnetMask("255.255.0.0");
const ns3::Ipv4Mask kLinkMask("255.255.255.252");

std::string rate(double bps) { return std::to_string(static_cast<std::uint64_t>(bps)) + "bps"; }
ns3::Time seconds(double s) { return ns3::NanoSeconds(static_cast<std::int64_t>(s * 1e9 + 0.5)); }

// Adds `dev` to its node's IPv4 with `addr/mask` and brings it up; returns the interface index.
std::uint32_t add_interface(ns3::Ptr<ns3::NetDevice> dev, ns3::Ipv4Address addr, ns3::Ipv4Mask mask) {
  auto ipv4 = dev->GetNode()->GetObject<ns3::Ipv4>();
  const std::uint32_t i = ipv4->AddInterface(dev);
  ipv4->AddAddress(i, ns3::Ipv4InterfaceAddress(addr, mask));
  ipv4->SetUp(i);
  return i;
}

ns3::Ptr<ns3::Ipv4StaticRouting> static_routing(ns3::Ptr<ns3::Node> node) {
  ns3::Ipv4StaticRoutingHelper helper;
  return helper.GetStaticRouting(node->GetObject<ns3::Ipv4>());
}

}  // namespace

Topology build_topology(const sim::Scenario& s, LinkBytes& link_bytes) {
  const std::uint32_t subnets = s.total_subnets();
  if (subnets > 255)
    throw sim::ScenarioError(s.source + ": the ns3 engine's address plan holds at most 255 subnets, this scenario has " +
                             std::to_string(subnets));
  const auto placement = sim::place_nodes(s);
  const std::uint32_t dcs = static_cast<std::uint32_t>(s.datacenters.size());
  for (std::uint32_t k = 0; k < subnets; ++k)
    if (sim::subnet_at(s, k).nodes > 65533)
      throw sim::ScenarioError(s.source + ": the ns3 engine's address plan holds at most 65,533 nodes per subnet");

  Topology t;
  t.hosts.Create(static_cast<std::uint32_t>(placement.size()));
  t.routers.Create(dcs);
  ns3::NodeContainer gateways;
  for (std::uint32_t k = 0; k < subnets; ++k)
    if (sim::subnet_at(s, k).nat) gateways.Create(1);

  ns3::InternetStackHelper internet;
  internet.SetIpv6StackInstall(false);
  ns3::Ipv4ListRoutingHelper list;
  ns3::Ipv4StaticRoutingHelper static_helper;
  list.Add(static_helper, 0);
  internet.SetRoutingHelper(list);
  internet.Install(t.hosts);
  internet.Install(t.routers);
  internet.Install(gateways);

  std::int64_t stream = 1000;  // error model streams, assigned in build order: deterministic
  auto lossy_receiver = [&](ns3::Ptr<ns3::NetDevice> dev, LanLossModel::Rules rules) {
    if (rules.loss <= 0 && rules.multicast_loss <= 0 && !rules.recv_broken && !rules.send_broken &&
        rules.fails_at.IsNegative())
      return;
    auto model = ns3::CreateObject<LanLossModel>();
    model->Configure(std::move(rules), stream++);
    dev->SetAttribute("ReceiveErrorModel", ns3::PointerValue(model));
  };

  // LANs.
  std::vector<std::vector<std::uint32_t>> hosts_of(subnets);
  for (std::uint32_t i = 0; i < placement.size(); ++i) hosts_of[placement[i].subnet].push_back(i);
  t.addresses.resize(placement.size());
  std::uint32_t k = 0, nat_index = 0;
  for (std::uint32_t d = 0; d < dcs; ++d) {
    auto router = t.routers.Get(d);
    for (const auto& sub : s.datacenters[d].subnets) {
      // A switched LAN: every member has its own CSMA cable (the subnet's bandwidth, half its
      // latency each way) to the subnet's switch, a learning bridge that floods multicast. One shared
      // CSMA bus would hold the medium for a whole propagation delay per frame.
      ns3::CsmaHelper csma;
      csma.SetChannelAttribute("DataRate", ns3::StringValue(rate(sub.lan.bandwidth_bps)));
      csma.SetChannelAttribute("Delay", ns3::TimeValue(seconds(sub.lan.latency_s / 2)));
      csma.SetQueue("ns3::DropTailQueue<Packet>", "MaxSize", ns3::StringValue("10000p"));
      ns3::NodeContainer members;
      for (auto h : hosts_of[k]) members.Add(t.hosts.Get(h));
      ns3::Ptr<ns3::Node> edge = sub.nat ? gateways.Get(nat_index) : router;  // the LAN's way out
      members.Add(edge);
      auto lan_switch = ns3::CreateObject<ns3::Node>();
      t.switches.Add(lan_switch);
      ns3::NetDeviceContainer devices, ports;
      for (std::uint32_t i = 0; i < members.GetN(); ++i) {
        auto cable = csma.Install(ns3::NodeContainer(members.Get(i), lan_switch));
        devices.Add(cable.Get(0));
        ports.Add(cable.Get(1));
      }
      ns3::BridgeHelper().Install(lan_switch, ports);
      // Multicast the subnet does not carry (none at all, failed for a while, or a member that
      // cannot send it) stops at the switch: flooded to every port it would take bandwidth that the
      // real network never spends. (Members that cannot receive it drop it at their own port.)
      for (std::uint32_t j = 0; j < hosts_of[k].size(); ++j) {
        const bool cannot_send = std::find(sub.multicast_send_broken.begin(), sub.multicast_send_broken.end(), j) !=
                                 sub.multicast_send_broken.end();
        if (sub.multicast && !cannot_send && sub.multicast_fails_at_s < 0) continue;
        LanLossModel::Rules ingress;
        ingress.no_multicast = !sub.multicast || cannot_send;
        if (sub.multicast_fails_at_s >= 0) ingress.fails_at = seconds(sub.multicast_fails_at_s);
        if (sub.multicast_recovers_at_s >= 0) ingress.recovers_at = seconds(sub.multicast_recovers_at_s);
        auto model = ns3::CreateObject<LanLossModel>();
        model->Configure(std::move(ingress), 0);  // draws no random numbers
        ports.Get(j)->SetAttribute("ReceiveErrorModel", ns3::PointerValue(model));
      }
      // The LAN's bytes: every frame once, as its sender puts it on its cable.
      const std::string where = s.datacenters[d].name + "/" + sub.name;
      const std::uint32_t lan_link = link_bytes.add_link("lan:" + where, sim::LinkKind::lan);
      for (std::uint32_t i = 0; i < devices.GetN(); ++i) link_bytes.watch(devices.Get(i), lan_link);

      // Hosts: addresses, default unicast and multicast routes, loss.
      auto send_broken = std::make_shared<std::set<ns3::Mac48Address>>();
      for (auto b : sub.multicast_send_broken)
        if (b < hosts_of[k].size()) send_broken->insert(ns3::Mac48Address::ConvertFrom(devices.Get(b)->GetAddress()));
      const double multicast_loss = sub.multicast ? 1 - (1 - sub.lan.loss) * (1 - sub.multicast_loss) : 1.0;
      for (std::uint32_t j = 0; j < hosts_of[k].size(); ++j) {
        const NodeId id = hosts_of[k][j];
        t.addresses[id] = subnet_address(k, j + 2);
        const std::uint32_t iface = add_interface(devices.Get(j), t.addresses[id], kSubnetMask);
        auto routing = static_routing(t.hosts.Get(id));
        routing->SetDefaultRoute(subnet_address(k, 1), iface);
        routing->SetDefaultMulticastRoute(iface);
        LanLossModel::Rules rules;
        rules.loss = sub.lan.loss;
        rules.multicast_loss = multicast_loss;
        rules.recv_broken = std::find(sub.multicast_recv_broken.begin(), sub.multicast_recv_broken.end(), j) !=
                            sub.multicast_recv_broken.end();
        if (!send_broken->empty()) rules.send_broken = send_broken;
        if (sub.multicast_fails_at_s >= 0) rules.fails_at = seconds(sub.multicast_fails_at_s);
        if (sub.multicast_recovers_at_s >= 0) rules.recovers_at = seconds(sub.multicast_recovers_at_s);
        lossy_receiver(devices.Get(j), std::move(rules));
      }
      auto edge_dev = devices.Get(devices.GetN() - 1);
      const std::uint32_t edge_if = add_interface(edge_dev, subnet_address(k, 1), kSubnetMask);
      LanLossModel::Rules edge_rules;
      edge_rules.loss = sub.lan.loss;
      lossy_receiver(edge_dev, std::move(edge_rules));

      if (sub.nat) {
        // The gateway's transit link to the router, and the NAT itself.
        ns3::PointToPointHelper p2p;
        p2p.SetDeviceAttribute("DataRate", ns3::StringValue(rate(sub.lan.bandwidth_bps)));
        p2p.SetChannelAttribute("Delay", ns3::TimeValue(ns3::Seconds(0)));
        p2p.SetQueue("ns3::DropTailQueue<Packet>", "MaxSize", ns3::StringValue("10000p"));
        auto transit = p2p.Install(router, edge);
        const std::uint32_t nat_link = link_bytes.add_link("nat:" + where, sim::LinkKind::nat);
        link_bytes.watch(transit.Get(0), nat_link);
        link_bytes.watch(transit.Get(1), nat_link);
        const ns3::Ipv4Address router_side((172u << 24) | (16u << 16) | (k << 8) | 1u);
        const ns3::Ipv4Address gateway_side((172u << 24) | (16u << 16) | (k << 8) | 2u);
        const ns3::Ipv4Address public_address = nat_public_address(k);
        const std::uint32_t router_if = add_interface(transit.Get(0), router_side, kLinkMask);
        const std::uint32_t gateway_if = add_interface(transit.Get(1), gateway_side, kLinkMask);
        static_routing(edge)->SetDefaultRoute(router_side, gateway_if);
        static_routing(router)->AddHostRouteTo(public_address, gateway_side, router_if);
        t.nats.push_back(InstallNatGateway(edge, edge_if, gateway_if, public_address, router_side,
                                           subnet_address(k, 0), kSubnetMask));
        t.nat_public.push_back(public_address);
        ++nat_index;
      }
      ++k;
    }
  }

  // WAN links, and next hops along the lowest-latency paths (Floyd-Warshall: datacenters are few).
  const double inf = std::numeric_limits<double>::infinity();
  std::vector<double> dist(std::size_t{dcs} * dcs, inf);
  struct Hop {
    ns3::Ipv4Address address;  // the neighbour's address on the link
    std::uint32_t iface = 0;   // our interface on it
  };
  std::vector<Hop> first_hop(std::size_t{dcs} * dcs);
  auto at = [dcs](std::uint32_t a, std::uint32_t b) { return std::size_t{a} * dcs + b; };
  auto dc_index = [&](const std::string& name) {
    for (std::uint32_t d = 0; d < dcs; ++d)
      if (s.datacenters[d].name == name) return d;
    throw sim::ScenarioError(s.source + ": wan link names unknown datacenter '" + name + "'");
  };
  std::uint32_t w = 0;
  for (const auto& wan : s.wan) {
    const std::uint32_t a = dc_index(wan.a), b = dc_index(wan.b);
    ns3::PointToPointHelper p2p;
    p2p.SetDeviceAttribute("DataRate", ns3::StringValue(rate(wan.link.bandwidth_bps)));
    p2p.SetChannelAttribute("Delay", ns3::TimeValue(seconds(wan.link.latency_s)));
    p2p.SetQueue("ns3::DropTailQueue<Packet>", "MaxSize", ns3::StringValue("10000p"));
    auto devices = p2p.Install(t.routers.Get(a), t.routers.Get(b));
    link_bytes.watch(devices.Get(0), link_bytes.add_link("wan:" + wan.a + ">" + wan.b, sim::LinkKind::wan));
    link_bytes.watch(devices.Get(1), link_bytes.add_link("wan:" + wan.b + ">" + wan.a, sim::LinkKind::wan));
    const std::uint32_t base = (192u << 24) | (168u << 16) | (w * 4);
    const ns3::Ipv4Address addr_a(base + 1), addr_b(base + 2);
    const std::uint32_t if_a = add_interface(devices.Get(0), addr_a, kLinkMask);
    const std::uint32_t if_b = add_interface(devices.Get(1), addr_b, kLinkMask);
    if (wan.link.loss > 0)
      for (std::uint32_t i = 0; i < 2; ++i) {
        auto em = ns3::CreateObject<ns3::RateErrorModel>();
        em->SetUnit(ns3::RateErrorModel::ERROR_UNIT_PACKET);
        em->SetRate(wan.link.loss);
        em->AssignStreams(stream++);
        devices.Get(i)->SetAttribute("ReceiveErrorModel", ns3::PointerValue(em));
      }
    if (wan.link.latency_s < dist[at(a, b)]) {
      dist[at(a, b)] = dist[at(b, a)] = wan.link.latency_s;
      first_hop[at(a, b)] = Hop{addr_b, if_a};
      first_hop[at(b, a)] = Hop{addr_a, if_b};
    }
    ++w;
  }
  if (w > 16384) throw sim::ScenarioError(s.source + ": the ns3 engine's address plan holds at most 16,384 WAN links");
  for (std::uint32_t d = 0; d < dcs; ++d) dist[at(d, d)] = 0;
  for (std::uint32_t m = 0; m < dcs; ++m)
    for (std::uint32_t i = 0; i < dcs; ++i)
      for (std::uint32_t j = 0; j < dcs; ++j)
        if (dist[at(i, m)] + dist[at(m, j)] < dist[at(i, j)]) {
          dist[at(i, j)] = dist[at(i, m)] + dist[at(m, j)];
          first_hop[at(i, j)] = first_hop[at(i, m)];
        }

  // Each router reaches every remote subnet (a NAT subnet by its public address) via its first hop.
  for (std::uint32_t from = 0; from < dcs; ++from) {
    auto routing = static_routing(t.routers.Get(from));
    std::uint32_t sk = 0;
    for (std::uint32_t d = 0; d < dcs; ++d)
      for (const auto& sub : s.datacenters[d].subnets) {
        if (d != from && dist[at(from, d)] < inf) {
          const Hop& hop = first_hop[at(from, d)];
          if (sub.nat)
            routing->AddHostRouteTo(nat_public_address(sk), hop.address, hop.iface);
          else
            routing->AddNetworkRouteTo(subnet_address(sk, 0), kSubnetMask, hop.address, hop.iface);
        }
        ++sk;
      }
  }

  // Every other random stream the stack draws from (CSMA backoff; ARP, IP and routing jitter) gets
  // a fixed number too: ns-3 numbers the rest from a process-wide counter, so a second run in the
  // same process (the tests) would otherwise draw differently from the first.
  std::int64_t fixed = std::int64_t{1} << 32;
  ns3::NodeContainer all = ns3::NodeContainer::GetGlobal();
  for (auto it = all.Begin(); it != all.End(); ++it)
    for (std::uint32_t i = 0; i < (*it)->GetNDevices(); ++i)
      if (auto csma_dev = ns3::DynamicCast<ns3::CsmaNetDevice>((*it)->GetDevice(i)))
        fixed += csma_dev->AssignStreams(fixed);
  internet.AssignStreams(all, fixed);
  return t;
}

}  // namespace mixcast::ns3sim
