#include "nat_gateway.hpp"

#include <ns3/abort.h>
#include <ns3/ipv4-list-routing.h>
#include <ns3/ipv4-route.h>
#include <ns3/net-device.h>
#include <ns3/output-stream-wrapper.h>
#include <ns3/packet.h>
#include <ns3/tcp-header.h>
#include <ns3/udp-header.h>

#include <ostream>

namespace mixcast::ns3sim {

namespace {

constexpr std::uint8_t kTcp = 6;
constexpr std::uint8_t kUdp = 17;

// Both TCP and UDP start with source port, destination port; reading the raw bytes avoids
// deserializing TCP options just to look up a mapping.
bool PeekPorts(const ns3::Ptr<const ns3::Packet>& p, std::uint8_t protocol, std::uint16_t& src, std::uint16_t& dst) {
  std::uint8_t b[13] = {};
  const std::uint32_t min_size = protocol == kTcp ? 20 : 8;
  if (p->GetSize() < min_size) return false;
  p->CopyData(b, protocol == kTcp ? 13 : 4);
  if (protocol == kTcp) {
    // RemoveHeader on a truncated TCP header would read past the buffer.
    const std::uint32_t data_offset = (b[12] >> 4) * 4u;
    if (data_offset < 20 || data_offset > p->GetSize()) return false;
  }
  src = static_cast<std::uint16_t>((b[0] << 8) | b[1]);
  dst = static_cast<std::uint16_t>((b[2] << 8) | b[3]);
  return true;
}

// Rewrites addresses/ports in a copy of the L4 segment. Returns nullptr if checksums are enabled
// and the incoming one is wrong: recomputing it would launder a corrupted packet.
ns3::Ptr<ns3::Packet> RewriteL4(const ns3::Ptr<const ns3::Packet>& p, std::uint8_t protocol,
                                const ns3::Ipv4Header& old_ip, ns3::Ipv4Address new_src, std::uint16_t new_sport,
                                ns3::Ipv4Address new_dst, std::uint16_t new_dport) {
  const bool checksums = ns3::Node::ChecksumEnabled();
  ns3::Ptr<ns3::Packet> q = p->Copy();  // keeps byte and packet tags
  if (protocol == kTcp) {
    ns3::TcpHeader tcp;
    if (checksums) {
      tcp.EnableChecksums();
      tcp.InitializeChecksum(old_ip.GetSource(), old_ip.GetDestination(), kTcp);
    }
    q->RemoveHeader(tcp);
    if (checksums && !tcp.IsChecksumOk()) return nullptr;
    tcp.SetSourcePort(new_sport);
    tcp.SetDestinationPort(new_dport);
    // TcpHeader::Serialize always recomputes the checksum when enabled (covering the payload).
    if (checksums) tcp.InitializeChecksum(new_src, new_dst, kTcp);
    q->AddHeader(tcp);
  } else {
    ns3::UdpHeader in;
    if (checksums) {
      in.EnableChecksums();
      in.InitializeChecksum(old_ip.GetSource(), old_ip.GetDestination(), kUdp);
    }
    q->RemoveHeader(in);
    // A zero UDP checksum means "none sent" in IPv4.
    if (checksums && in.GetChecksum() != 0 && !in.IsChecksumOk()) return nullptr;
    // A fresh header: a deserialized UdpHeader re-serializes the stale checksum it read.
    ns3::UdpHeader out;
    out.SetSourcePort(new_sport);
    out.SetDestinationPort(new_dport);
    if (checksums) {
      out.EnableChecksums();
      out.InitializeChecksum(new_src, new_dst, kUdp);
    }
    q->AddHeader(out);
  }
  return q;
}

ns3::Ipv4Header RewriteIp(const ns3::Ipv4Header& old_ip, ns3::Ipv4Address src, ns3::Ipv4Address dst,
                          std::uint32_t payload_size) {
  ns3::Ipv4Header ip = old_ip;
  ip.SetSource(src);
  ip.SetDestination(dst);
  ip.SetPayloadSize(payload_size);
  if (ns3::Node::ChecksumEnabled()) ip.EnableChecksum();
  return ip;
}

}  // namespace

ns3::TypeId NatGateway::GetTypeId() {
  static ns3::TypeId tid = ns3::TypeId("mixcast::ns3sim::NatGateway")
                               .SetParent<ns3::Ipv4RoutingProtocol>()
                               .SetGroupName("Internet")
                               .AddConstructor<NatGateway>();
  return tid;
}

void NatGateway::Configure(std::uint32_t inside_if, std::uint32_t outside_if, ns3::Ipv4Address public_address,
                           ns3::Ipv4Address outside_next_hop, ns3::Ipv4Address inside_network,
                           ns3::Ipv4Mask inside_mask) {
  NS_ABORT_MSG_IF(inside_if == outside_if, "NatGateway: inside and outside interface are the same");
  if (ipv4_) {
    NS_ABORT_MSG_IF(inside_if >= ipv4_->GetNInterfaces() || outside_if >= ipv4_->GetNInterfaces(),
                    "NatGateway: interface index out of range");
    NS_ABORT_MSG_IF(ipv4_->GetInterfaceForAddress(public_address) >= 0,
                    "NatGateway: the public address must not be an interface address of the gateway");
  }
  inside_if_ = inside_if;
  outside_if_ = outside_if;
  public_address_ = public_address;
  outside_next_hop_ = outside_next_hop;
  inside_network_ = inside_network.CombineMask(inside_mask);
  inside_mask_ = inside_mask;
  configured_ = true;
}

ns3::Ptr<ns3::Ipv4Route> NatGateway::RouteOutput(ns3::Ptr<ns3::Packet>, const ns3::Ipv4Header&,
                                                 ns3::Ptr<ns3::NetDevice>, ns3::Socket::SocketErrno& sockerr) {
  // The gateway's own traffic is not translated; list routing falls through to static routing.
  sockerr = ns3::Socket::ERROR_NOROUTETOHOST;
  return nullptr;
}

bool NatGateway::RouteInput(ns3::Ptr<const ns3::Packet> p, const ns3::Ipv4Header& header,
                            ns3::Ptr<const ns3::NetDevice> idev, UnicastForwardCallback ucb,
                            MulticastForwardCallback, LocalDeliverCallback, ErrorCallback) {
  if (!configured_ || !ipv4_ || ucb.IsNull()) return false;
  const std::int32_t iif = ipv4_->GetInterfaceForDevice(idev);
  if (iif < 0) return false;
  const ns3::Ipv4Address dst = header.GetDestination();
  if (dst.IsMulticast() || dst.IsBroadcast()) return false;
  // An expiring packet is left to static routing, whose IpForward drops it and sends the ICMP
  // time-exceeded to the untranslated source.
  if (header.GetTtl() <= 1) return false;

  if (static_cast<std::uint32_t>(iif) == inside_if_) {
    if (inside_mask_.IsMatch(dst, inside_network_) || dst.IsSubnetDirectedBroadcast(inside_mask_)) return false;
    if (!inside_mask_.IsMatch(header.GetSource(), inside_network_)) return false;
    return TranslateOutbound(p, header, ucb);
  }
  if (static_cast<std::uint32_t>(iif) == outside_if_ && dst == public_address_) {
    return TranslateInbound(p, header, ucb);
  }
  return false;
}

NatGateway::Mapping* NatGateway::FindOrCreateMapping(std::uint8_t protocol, ns3::Ipv4Address inside_address,
                                                     std::uint16_t inside_port) {
  const auto key = std::make_tuple(protocol, inside_address.Get(), inside_port);
  if (auto it = by_inside_.find(key); it != by_inside_.end()) {
    return &by_public_.at({protocol, it->second});
  }
  while (next_port_ <= 65535 && by_public_.count({protocol, static_cast<std::uint16_t>(next_port_)}) != 0) {
    ++next_port_;
  }
  if (next_port_ > 65535) return nullptr;
  const auto public_port = static_cast<std::uint16_t>(next_port_++);
  Mapping m;
  m.protocol = protocol;
  m.inside_address = inside_address;
  m.inside_port = inside_port;
  m.public_port = public_port;
  by_inside_.emplace(key, public_port);
  ++counters_.mappings;
  return &by_public_.emplace(std::make_pair(protocol, public_port), std::move(m)).first->second;
}

bool NatGateway::Translatable(ns3::Ptr<const ns3::Packet> p, const ns3::Ipv4Header& header, std::uint16_t& sport,
                              std::uint16_t& dport) {
  // Whole (unfragmented) TCP or UDP packets only: the ports are in the first fragment alone.
  const std::uint8_t protocol = header.GetProtocol();
  if (!header.IsLastFragment() || header.GetFragmentOffset() != 0 || (protocol != kTcp && protocol != kUdp) ||
      !PeekPorts(p, protocol, sport, dport)) {
    ++counters_.unsupported;
    return false;
  }
  return true;
}

bool NatGateway::TranslateOutbound(ns3::Ptr<const ns3::Packet> p, const ns3::Ipv4Header& header,
                                   const UnicastForwardCallback& ucb) {
  const std::uint8_t protocol = header.GetProtocol();
  std::uint16_t sport = 0;
  std::uint16_t dport = 0;
  if (!Translatable(p, header, sport, dport)) return true;
  Mapping* m = FindOrCreateMapping(protocol, header.GetSource(), sport);
  if (m == nullptr) {
    ++counters_.unsupported;  // public ports exhausted
    return true;
  }
  ns3::Ptr<ns3::Packet> q = RewriteL4(p, protocol, header, public_address_, m->public_port, header.GetDestination(), dport);
  if (!q) return true;
  m->remotes.emplace(header.GetDestination().Get(), dport);

  auto route = ns3::Create<ns3::Ipv4Route>();
  route->SetDestination(header.GetDestination());
  route->SetSource(public_address_);
  route->SetGateway(outside_next_hop_);
  route->SetOutputDevice(ipv4_->GetNetDevice(outside_if_));
  ++counters_.outbound;
  ucb(route, q, RewriteIp(header, public_address_, header.GetDestination(), q->GetSize()));
  return true;
}

bool NatGateway::TranslateInbound(ns3::Ptr<const ns3::Packet> p, const ns3::Ipv4Header& header,
                                  const UnicastForwardCallback& ucb) {
  const std::uint8_t protocol = header.GetProtocol();
  std::uint16_t sport = 0;
  std::uint16_t dport = 0;
  if (!Translatable(p, header, sport, dport)) return true;
  auto it = by_public_.find({protocol, dport});
  if (it == by_public_.end() || it->second.remotes.count({header.GetSource().Get(), sport}) == 0) {
    ++counters_.unsolicited;
    return true;
  }
  const Mapping& m = it->second;
  ns3::Ptr<ns3::Packet> q = RewriteL4(p, protocol, header, header.GetSource(), sport, m.inside_address, m.inside_port);
  if (!q) return true;

  auto route = ns3::Create<ns3::Ipv4Route>();
  route->SetDestination(m.inside_address);
  route->SetSource(ipv4_->GetAddress(inside_if_, 0).GetLocal());
  route->SetGateway(m.inside_address);  // the host is on the LAN
  route->SetOutputDevice(ipv4_->GetNetDevice(inside_if_));
  ++counters_.inbound;
  ucb(route, q, RewriteIp(header, header.GetSource(), m.inside_address, q->GetSize()));
  return true;
}

void NatGateway::NotifyInterfaceUp(std::uint32_t) {}
void NatGateway::NotifyInterfaceDown(std::uint32_t) {}
void NatGateway::NotifyAddAddress(std::uint32_t, ns3::Ipv4InterfaceAddress) {}
void NatGateway::NotifyRemoveAddress(std::uint32_t, ns3::Ipv4InterfaceAddress) {}

void NatGateway::SetIpv4(ns3::Ptr<ns3::Ipv4> ipv4) { ipv4_ = ipv4; }

void NatGateway::PrintRoutingTable(ns3::Ptr<ns3::OutputStreamWrapper> stream, ns3::Time::Unit) const {
  std::ostream& os = *stream->GetStream();
  os << "NatGateway public " << public_address_ << " inside " << inside_network_ << "/" << inside_mask_.GetPrefixLength()
     << ", " << by_public_.size() << " mappings\n";
  for (const auto& [key, m] : by_public_) {
    os << "  " << (m.protocol == kTcp ? "tcp " : "udp ") << m.inside_address << ":" << m.inside_port << " <-> "
       << public_address_ << ":" << m.public_port << " (" << m.remotes.size() << " remote endpoints)\n";
  }
}

void NatGateway::DoDispose() {
  ipv4_ = nullptr;
  by_inside_.clear();
  by_public_.clear();
  ns3::Ipv4RoutingProtocol::DoDispose();
}

ns3::Ptr<NatGateway> InstallNatGateway(ns3::Ptr<ns3::Node> gateway, std::uint32_t inside_if, std::uint32_t outside_if,
                                       ns3::Ipv4Address public_address, ns3::Ipv4Address outside_next_hop,
                                       ns3::Ipv4Address inside_network, ns3::Ipv4Mask inside_mask) {
  ns3::Ptr<ns3::Ipv4> ipv4 = gateway->GetObject<ns3::Ipv4>();
  NS_ABORT_MSG_IF(!ipv4, "InstallNatGateway: the node has no Ipv4 stack");
  auto list = ns3::DynamicCast<ns3::Ipv4ListRouting>(ipv4->GetRoutingProtocol());
  NS_ABORT_MSG_IF(!list, "InstallNatGateway: the node's routing protocol is not an Ipv4ListRouting");
  auto nat = ns3::CreateObject<NatGateway>();
  list->AddRoutingProtocol(nat, 10);  // calls SetIpv4
  nat->SetIpv4(ipv4);                  // in case list routing had no Ipv4 yet
  nat->Configure(inside_if, outside_if, public_address, outside_next_hop, inside_network, inside_mask);
  return nat;
}

}  // namespace mixcast::ns3sim
