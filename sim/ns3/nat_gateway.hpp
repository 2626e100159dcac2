// A packet-level NAPT gateway for ns-3 (which has no NAT): an Ipv4RoutingProtocol placed in the
// gateway's Ipv4ListRouting above static routing. It rewrites TCP/UDP packets in RouteInput with
// endpoint-independent mapping and address- and port-dependent filtering. Mappings never expire.
//
// L4 checksums: when ns-3's global "ChecksumEnabled" is true, incoming TCP/UDP checksums are
// verified (bad packets are dropped silently, as the end host would) and recomputed after the
// rewrite; otherwise they stay zero like everything else ns-3 sends.
#pragma once

#include <cstdint>
#include <map>
#include <set>
#include <tuple>
#include <utility>

#include <ns3/ipv4-address.h>
#include <ns3/ipv4-routing-protocol.h>
#include <ns3/ipv4.h>
#include <ns3/node.h>
#include <ns3/ptr.h>

namespace mixcast::ns3sim {

class NatGateway : public ns3::Ipv4RoutingProtocol {
 public:
  static ns3::TypeId GetTypeId();

  struct Counters {
    std::uint64_t outbound = 0;     // packets translated inside -> outside
    std::uint64_t inbound = 0;      // packets translated outside -> inside (replies on existing mappings)
    std::uint64_t unsolicited = 0;  // inbound packets dropped: no mapping / not from the mapped remote endpoint
    std::uint64_t unsupported = 0;  // dropped: fragments, protocols other than TCP/UDP, malformed, ports exhausted
    std::uint64_t mappings = 0;     // mappings created
  };

  NatGateway() = default;
  ~NatGateway() override = default;

  // inside_if / outside_if: the gateway's Ipv4 interface indexes of the private LAN and of the link
  // toward the router. public_address: the source of translated packets; it must not be an
  // interface address of the gateway (Ipv4ListRouting delivers those locally before asking
  // protocols); the router routes it to the gateway's outside address. outside_next_hop: the
  // router's address on the outside link. inside_network/inside_mask: the private subnet.
  void Configure(std::uint32_t inside_if, std::uint32_t outside_if, ns3::Ipv4Address public_address,
                 ns3::Ipv4Address outside_next_hop, ns3::Ipv4Address inside_network, ns3::Ipv4Mask inside_mask);

  const Counters& counters() const { return counters_; }

  // Ipv4RoutingProtocol
  ns3::Ptr<ns3::Ipv4Route> RouteOutput(ns3::Ptr<ns3::Packet> p, const ns3::Ipv4Header& header,
                                       ns3::Ptr<ns3::NetDevice> oif, ns3::Socket::SocketErrno& sockerr) override;
  bool RouteInput(ns3::Ptr<const ns3::Packet> p, const ns3::Ipv4Header& header, ns3::Ptr<const ns3::NetDevice> idev,
                  UnicastForwardCallback ucb, MulticastForwardCallback mcb, LocalDeliverCallback lcb,
                  ErrorCallback ecb) override;
  void NotifyInterfaceUp(std::uint32_t interface) override;
  void NotifyInterfaceDown(std::uint32_t interface) override;
  void NotifyAddAddress(std::uint32_t interface, ns3::Ipv4InterfaceAddress address) override;
  void NotifyRemoveAddress(std::uint32_t interface, ns3::Ipv4InterfaceAddress address) override;
  void SetIpv4(ns3::Ptr<ns3::Ipv4> ipv4) override;
  void PrintRoutingTable(ns3::Ptr<ns3::OutputStreamWrapper> stream, ns3::Time::Unit unit = ns3::Time::S) const override;

 protected:
  void DoDispose() override;

 private:
  struct Mapping {
    std::uint8_t protocol = 0;
    ns3::Ipv4Address inside_address;
    std::uint16_t inside_port = 0;
    std::uint16_t public_port = 0;
    std::set<std::pair<std::uint32_t, std::uint16_t>> remotes;  // (address, port) the inside host sent to
  };

  // Counts and refuses what the NAT cannot translate; otherwise reads the L4 ports.
  bool Translatable(ns3::Ptr<const ns3::Packet> p, const ns3::Ipv4Header& header, std::uint16_t& sport,
                    std::uint16_t& dport);
  bool TranslateOutbound(ns3::Ptr<const ns3::Packet> p, const ns3::Ipv4Header& header,
                         const UnicastForwardCallback& ucb);
  bool TranslateInbound(ns3::Ptr<const ns3::Packet> p, const ns3::Ipv4Header& header,
                        const UnicastForwardCallback& ucb);
  Mapping* FindOrCreateMapping(std::uint8_t protocol, ns3::Ipv4Address inside_address, std::uint16_t inside_port);

  ns3::Ptr<ns3::Ipv4> ipv4_;
  bool configured_ = false;
  std::uint32_t inside_if_ = 0;
  std::uint32_t outside_if_ = 0;
  ns3::Ipv4Address public_address_;
  ns3::Ipv4Address outside_next_hop_;
  ns3::Ipv4Address inside_network_;
  ns3::Ipv4Mask inside_mask_;

  std::uint32_t next_port_ = 1024;
  std::map<std::tuple<std::uint8_t, std::uint32_t, std::uint16_t>, std::uint16_t> by_inside_;  // -> public port
  std::map<std::pair<std::uint8_t, std::uint16_t>, Mapping> by_public_;
  Counters counters_;
};

// Adds a NatGateway to `gateway`'s Ipv4ListRouting (which must exist: InternetStackHelper with an
// Ipv4ListRoutingHelper holding Ipv4StaticRoutingHelper) with priority 10, configures it, returns it.
ns3::Ptr<NatGateway> InstallNatGateway(ns3::Ptr<ns3::Node> gateway, std::uint32_t inside_if, std::uint32_t outside_if,
                                       ns3::Ipv4Address public_address, ns3::Ipv4Address outside_next_hop,
                                       ns3::Ipv4Address inside_network, ns3::Ipv4Mask inside_mask);

}  // namespace mixcast::ns3sim
