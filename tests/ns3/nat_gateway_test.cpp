// NatGateway on a hand-built topology:
//   H 10.1.0.2 --CSMA 10.1/16-- 10.1.0.1 G 172.16.1.2 --p2p /30-- 172.16.1.1 R 10.2.0.1 --CSMA 10.2/16-- S 10.2.0.2, S2 10.2.0.3
// G translates 10.1/16 to 100.64.1.1, which R routes to 172.16.1.2. Static routes only.
#include <gtest/gtest.h>

#include <cstdint>
#include <functional>
#include <vector>

#include <ns3/boolean.h>
#include <ns3/config.h>
#include <ns3/csma-helper.h>
#include <ns3/global-value.h>
#include <ns3/inet-socket-address.h>
#include <ns3/internet-stack-helper.h>
#include <ns3/ipv4-address-generator.h>
#include <ns3/ipv4-address-helper.h>
#include <ns3/ipv4-l3-protocol.h>
#include <ns3/ipv4-list-routing-helper.h>
#include <ns3/ipv4-raw-socket-factory.h>
#include <ns3/ipv4-static-routing-helper.h>
#include <ns3/ipv4-static-routing.h>
#include <ns3/node.h>
#include <ns3/packet.h>
#include <ns3/point-to-point-helper.h>
#include <ns3/simulator.h>
#include <ns3/socket.h>
#include <ns3/string.h>
#include <ns3/tag.h>
#include <ns3/tcp-socket-factory.h>
#include <ns3/udp-socket-factory.h>
#include <ns3/uinteger.h>

#include "nat_gateway.hpp"

namespace {

using namespace ns3;
using mixcast::ns3sim::NatGateway;

const Ipv4Address kH("10.1.0.2");
const Ipv4Address kGInside("10.1.0.1");
const Ipv4Address kGOutside("172.16.1.2");
const Ipv4Address kROutside("172.16.1.1");
const Ipv4Address kS("10.2.0.2");
const Ipv4Address kS2("10.2.0.3");
const Ipv4Address kPublic("100.64.1.1");

class NatTestTag : public Tag {
 public:
  static TypeId GetTypeId() {
    static TypeId tid =
        TypeId("mixcast::test::NatTestTag").SetParent<Tag>().SetGroupName("Mixcast").AddConstructor<NatTestTag>();
    return tid;
  }
  TypeId GetInstanceTypeId() const override { return GetTypeId(); }
  uint32_t GetSerializedSize() const override { return 4; }
  void Serialize(TagBuffer i) const override { i.WriteU32(value); }
  void Deserialize(TagBuffer i) override { value = i.ReadU32(); }
  void Print(std::ostream& os) const override { os << "value=" << value; }
  uint32_t value = 0;
};

std::vector<uint8_t> Pattern(std::size_t n) {
  std::vector<uint8_t> v(n);
  for (std::size_t i = 0; i < n; ++i) v[i] = static_cast<uint8_t>((i * 7 + 3) % 251);
  return v;
}

// Source and destination port of a TCP/UDP segment (the packet starts at the L4 header).
std::pair<uint16_t, uint16_t> Ports(Ptr<const Packet> p) {
  uint8_t b[4] = {};
  p->CopyData(b, 4);
  return {static_cast<uint16_t>((b[0] << 8) | b[1]), static_cast<uint16_t>((b[2] << 8) | b[3])};
}

struct DeliveredPacket {
  Ipv4Address src;
  uint16_t sport;
  uint8_t protocol;
  uint8_t ttl;
};

// Every packet a node's IP layer delivers locally.
void RecordLocalDelivery(Ptr<Node> node, std::vector<DeliveredPacket>& out) {
  node->GetObject<Ipv4L3Protocol>()->TraceConnectWithoutContext(
      "LocalDeliver", Callback<void, const Ipv4Header&, Ptr<const Packet>, uint32_t>(
                          [&out](const Ipv4Header& h, Ptr<const Packet> p, uint32_t) {
                            out.push_back({h.GetSource(), Ports(p).first, h.GetProtocol(), h.GetTtl()});
                          }));
}

struct TcpEchoServer {
  Ptr<Socket> listener;
  std::vector<InetSocketAddress> peers;
  uint64_t bytes = 0;

  void Start(Ptr<Node> node, uint16_t port) {
    listener = Socket::CreateSocket(node, TcpSocketFactory::GetTypeId());
    ASSERT_EQ(listener->Bind(InetSocketAddress(Ipv4Address::GetAny(), port)), 0);
    ASSERT_EQ(listener->Listen(), 0);
    listener->SetAcceptCallback(MakeNullCallback<bool, Ptr<Socket>, const Address&>(),
                                Callback<void, Ptr<Socket>, const Address&>([this](Ptr<Socket> s, const Address& from) {
                                  peers.push_back(InetSocketAddress::ConvertFrom(from));
                                  s->SetRecvCallback(Callback<void, Ptr<Socket>>([this](Ptr<Socket> sock) {
                                    while (Ptr<Packet> p = sock->Recv()) {
                                      bytes += p->GetSize();
                                      EXPECT_GE(sock->Send(p), 0);
                                    }
                                  }));
                                }));
  }
};

struct TcpClient {
  Ptr<Socket> sock;
  bool connected = false;
  bool failed = false;
  std::vector<uint8_t> received;

  void Start(Ptr<Node> node, InetSocketAddress remote, std::vector<uint8_t> payload, uint16_t local_port = 0) {
    sock = Socket::CreateSocket(node, TcpSocketFactory::GetTypeId());
    if (local_port != 0) {
      ASSERT_EQ(sock->Bind(InetSocketAddress(Ipv4Address::GetAny(), local_port)), 0);
    }
    sock->SetConnectCallback(Callback<void, Ptr<Socket>>([this, payload](Ptr<Socket> s) {
                               connected = true;
                               if (!payload.empty()) {
                                 EXPECT_GE(s->Send(Create<Packet>(payload.data(), payload.size())), 0);
                               }
                             }),
                             Callback<void, Ptr<Socket>>([this](Ptr<Socket>) { failed = true; }));
    sock->SetRecvCallback(Callback<void, Ptr<Socket>>([this](Ptr<Socket> s) {
      while (Ptr<Packet> p = s->Recv()) {
        std::vector<uint8_t> buf(p->GetSize());
        p->CopyData(buf.data(), buf.size());
        received.insert(received.end(), buf.begin(), buf.end());
      }
    }));
    ASSERT_EQ(sock->Connect(remote), 0);
  }
};

class NatGatewayTest : public ::testing::Test {
 protected:
  Ptr<Node> h, g, r, s, s2;
  Ptr<NatGateway> nat;

  void SetUp() override {
    Config::Reset();
    Ipv4AddressGenerator::Reset();  // the helper's allocation record is global

    h = CreateObject<Node>();
    g = CreateObject<Node>();
    r = CreateObject<Node>();
    s = CreateObject<Node>();
    s2 = CreateObject<Node>();

    Ipv4StaticRoutingHelper static_routing;
    Ipv4ListRoutingHelper list;
    list.Add(static_routing, 0);
    InternetStackHelper stack;
    stack.SetIpv6StackInstall(false);
    stack.SetRoutingHelper(list);
    stack.Install(NodeContainer(h, g, r, s, s2));

    CsmaHelper csma;
    csma.SetChannelAttribute("DataRate", StringValue("100Mbps"));
    csma.SetChannelAttribute("Delay", StringValue("500us"));
    PointToPointHelper p2p;
    p2p.SetDeviceAttribute("DataRate", StringValue("100Mbps"));
    p2p.SetChannelAttribute("Delay", StringValue("2ms"));

    NetDeviceContainer lan = csma.Install(NodeContainer(g, h));
    NetDeviceContainer uplink = p2p.Install(NodeContainer(r, g));
    NetDeviceContainer outside = csma.Install(NodeContainer(r, s, s2));

    Ipv4AddressHelper addr;
    addr.SetBase("10.1.0.0", "255.255.0.0");
    addr.Assign(lan);
    addr.SetBase("172.16.1.0", "255.255.255.252");
    addr.Assign(uplink);
    addr.SetBase("10.2.0.0", "255.255.0.0");
    addr.Assign(outside);

    auto ifOf = [](Ptr<NetDevice> dev) {
      return static_cast<uint32_t>(dev->GetNode()->GetObject<Ipv4>()->GetInterfaceForDevice(dev));
    };
    auto routes = [&](Ptr<Node> n) { return static_routing.GetStaticRouting(n->GetObject<Ipv4>()); };
    ASSERT_EQ(g->GetObject<Ipv4>()->GetAddress(ifOf(lan.Get(0)), 0).GetLocal(), kGInside);
    ASSERT_EQ(h->GetObject<Ipv4>()->GetAddress(ifOf(lan.Get(1)), 0).GetLocal(), kH);
    ASSERT_EQ(g->GetObject<Ipv4>()->GetAddress(ifOf(uplink.Get(1)), 0).GetLocal(), kGOutside);
    ASSERT_EQ(s2->GetObject<Ipv4>()->GetAddress(ifOf(outside.Get(2)), 0).GetLocal(), kS2);

    routes(h)->SetDefaultRoute(kGInside, ifOf(lan.Get(1)));
    routes(g)->SetDefaultRoute(kROutside, ifOf(uplink.Get(1)));
    routes(r)->AddHostRouteTo(kPublic, kGOutside, ifOf(uplink.Get(0)));  // no route to 10.1/16
    routes(s)->SetDefaultRoute(Ipv4Address("10.2.0.1"), ifOf(outside.Get(1)));
    routes(s2)->SetDefaultRoute(Ipv4Address("10.2.0.1"), ifOf(outside.Get(2)));

    nat = mixcast::ns3sim::InstallNatGateway(g, ifOf(lan.Get(0)), ifOf(uplink.Get(1)), kPublic, kROutside,
                                             Ipv4Address("10.1.0.0"), Ipv4Mask("255.255.0.0"));
  }

  void TearDown() override {
    Simulator::Destroy();
    GlobalValue::Bind("ChecksumEnabled", BooleanValue(false));
    Config::Reset();
  }

  void RunTcpEcho(std::size_t n, uint64_t expected_mappings = 1) {
    TcpEchoServer server;
    server.Start(s, 9000);
    TcpClient client;
    const auto payload = Pattern(n);
    Simulator::Schedule(MilliSeconds(10), [&] { client.Start(h, InetSocketAddress(kS, 9000), payload); });
    Simulator::Stop(Seconds(2));
    Simulator::Run();

    EXPECT_TRUE(client.connected);
    EXPECT_EQ(server.bytes, n);
    EXPECT_EQ(client.received.size(), payload.size());
    EXPECT_TRUE(client.received == payload) << "echoed bytes differ";
    ASSERT_EQ(server.peers.size(), 1u);
    EXPECT_EQ(server.peers[0].GetIpv4(), kPublic);
    EXPECT_GE(server.peers[0].GetPort(), 1024);
    EXPECT_GT(nat->counters().outbound, 0u);
    EXPECT_GT(nat->counters().inbound, 0u);
    EXPECT_EQ(nat->counters().mappings, expected_mappings);
    EXPECT_EQ(nat->counters().unsolicited, 0u);
    EXPECT_EQ(nat->counters().unsupported, 0u);
  }

  struct UdpRoundTrip {
    std::vector<InetSocketAddress> seen_by_s;
    std::vector<InetSocketAddress> seen_by_h;
    std::vector<uint32_t> tags_at_s, tags_at_h;
  };

  // H sends one tagged datagram to S:7000, S answers to the source it saw with a tagged reply.
  void StartUdpRoundTrip(UdpRoundTrip& rt, uint32_t size) {
    Ptr<Socket> server = Socket::CreateSocket(s, UdpSocketFactory::GetTypeId());
    ASSERT_EQ(server->Bind(InetSocketAddress(Ipv4Address::GetAny(), 7000)), 0);
    server->SetRecvCallback(Callback<void, Ptr<Socket>>([&rt](Ptr<Socket> sock) {
      Address from;
      while (Ptr<Packet> p = sock->RecvFrom(from)) {
        rt.seen_by_s.push_back(InetSocketAddress::ConvertFrom(from));
        NatTestTag tag;
        if (p->FindFirstMatchingByteTag(tag)) rt.tags_at_s.push_back(tag.value);
        Ptr<Packet> reply = Create<Packet>(100);
        tag.value = 2;
        reply->AddByteTag(tag);
        EXPECT_GE(sock->SendTo(reply, 0, from), 0);
      }
    }));
    Ptr<Socket> client = Socket::CreateSocket(h, UdpSocketFactory::GetTypeId());
    ASSERT_EQ(client->Bind(), 0);
    client->SetRecvCallback(Callback<void, Ptr<Socket>>([&rt](Ptr<Socket> sock) {
      Address from;
      while (Ptr<Packet> p = sock->RecvFrom(from)) {
        rt.seen_by_h.push_back(InetSocketAddress::ConvertFrom(from));
        NatTestTag tag;
        if (p->FindFirstMatchingByteTag(tag)) rt.tags_at_h.push_back(tag.value);
      }
    }));
    Simulator::Schedule(MilliSeconds(10), [client, size] {
      Ptr<Packet> p = Create<Packet>(size);
      NatTestTag tag;
      tag.value = 1;
      p->AddByteTag(tag);
      EXPECT_GE(client->SendTo(p, 0, InetSocketAddress(kS, 7000)), 0);
    });
  }
};

TEST_F(NatGatewayTest, OutboundTcpEchoIsTranslated) { RunTcpEcho(20000); }

TEST_F(NatGatewayTest, OutsideCannotConnectIn) {
  TcpEchoServer h_server;
  h_server.Start(h, 8080);
  std::vector<DeliveredPacket> at_h;
  RecordLocalDelivery(h, at_h);
  uint32_t r_no_route_to_h = 0;
  r->GetObject<Ipv4L3Protocol>()->TraceConnectWithoutContext(
      "Drop", Callback<void, const Ipv4Header&, Ptr<const Packet>, Ipv4L3Protocol::DropReason, Ptr<Ipv4>, uint32_t>(
                  [&](const Ipv4Header& hdr, Ptr<const Packet>, Ipv4L3Protocol::DropReason why, Ptr<Ipv4>, uint32_t) {
                    if (why == Ipv4L3Protocol::DROP_NO_ROUTE && hdr.GetDestination() == kH) ++r_no_route_to_h;
                  }));

  TcpClient via_public;
  TcpClient via_private;
  Simulator::Schedule(MilliSeconds(10), [&] {
    via_public.Start(s, InetSocketAddress(kPublic, 8080), {});
    via_private.Start(s, InetSocketAddress(kH, 8080), {});
  });
  Simulator::Stop(Seconds(10));
  Simulator::Run();

  EXPECT_FALSE(via_public.connected);
  EXPECT_FALSE(via_private.connected);
  EXPECT_TRUE(h_server.peers.empty());
  EXPECT_TRUE(at_h.empty());
  EXPECT_GT(nat->counters().unsolicited, 0u);
  EXPECT_GT(r_no_route_to_h, 0u);
  EXPECT_EQ(nat->counters().inbound, 0u);
  EXPECT_EQ(nat->counters().mappings, 0u);
}

TEST_F(NatGatewayTest, OnlyTheContactedEndpointGetsThrough) {
  TcpEchoServer server;
  server.Start(s, 9000);
  TcpClient client;
  std::vector<DeliveredPacket> at_h;
  RecordLocalDelivery(h, at_h);
  Simulator::Schedule(MilliSeconds(10), [&] { client.Start(h, InetSocketAddress(kS, 9000), Pattern(1000)); });

  // Once the mapping exists, S from another port and S2 from the contacted port try the public port.
  TcpClient other_port;
  TcpClient other_host;
  uint64_t unsolicited_before = 0, after_other_port = 0, after_other_host = 0;
  uint16_t public_port = 0;
  Simulator::Schedule(MilliSeconds(500), [&] {
    ASSERT_EQ(server.peers.size(), 1u);
    public_port = server.peers[0].GetPort();
    unsolicited_before = nat->counters().unsolicited;
    other_port.Start(s, InetSocketAddress(kPublic, public_port), {}, 9001);
  });
  Simulator::Schedule(MilliSeconds(800), [&] { after_other_port = nat->counters().unsolicited; });
  Simulator::Schedule(MilliSeconds(900), [&] {
    if (public_port != 0) other_host.Start(s2, InetSocketAddress(kPublic, public_port), {}, 9000);
  });
  Simulator::Schedule(MilliSeconds(1200), [&] { after_other_host = nat->counters().unsolicited; });
  Simulator::Stop(Seconds(3));
  Simulator::Run();

  EXPECT_TRUE(client.connected);
  EXPECT_TRUE(client.received == Pattern(1000)) << "received " << client.received.size() << " bytes";
  EXPECT_EQ(unsolicited_before, 0u);
  EXPECT_GT(after_other_port, unsolicited_before);
  EXPECT_GT(after_other_host, after_other_port);
  EXPECT_FALSE(other_port.connected);
  EXPECT_FALSE(other_host.connected);
  std::size_t from_contacted = 0;
  for (const auto& d : at_h) {
    EXPECT_FALSE(d.src == kS2) << "H received a packet from S2";
    EXPECT_FALSE(d.src == kS && d.sport == 9001) << "H received a packet from S:9001";
    if (d.src == kS && d.sport == 9000) ++from_contacted;
  }
  EXPECT_GT(from_contacted, 0u);
  EXPECT_EQ(nat->counters().mappings, 1u);
}

TEST_F(NatGatewayTest, UdpReplyComesBackAndStrangersAreFiltered) {
  UdpRoundTrip rt;
  StartUdpRoundTrip(rt, 200);
  std::vector<DeliveredPacket> at_s, at_h;
  RecordLocalDelivery(s, at_s);
  RecordLocalDelivery(h, at_h);
  // S2 sends to the mapped public port from the port S answered from: address-dependent filtering.
  Ptr<Socket> stranger = Socket::CreateSocket(s2, UdpSocketFactory::GetTypeId());
  ASSERT_EQ(stranger->Bind(InetSocketAddress(Ipv4Address::GetAny(), 7000)), 0);
  Simulator::Schedule(MilliSeconds(300), [&] {
    ASSERT_EQ(rt.seen_by_s.size(), 1u);
    EXPECT_GE(stranger->SendTo(Create<Packet>(50), 0, InetSocketAddress(kPublic, rt.seen_by_s[0].GetPort())), 0);
  });
  Simulator::Stop(Seconds(1));
  Simulator::Run();

  ASSERT_EQ(rt.seen_by_s.size(), 1u);
  EXPECT_EQ(rt.seen_by_s[0].GetIpv4(), kPublic);
  ASSERT_EQ(rt.seen_by_h.size(), 1u);
  EXPECT_EQ(rt.seen_by_h[0].GetIpv4(), kS);
  EXPECT_EQ(rt.seen_by_h[0].GetPort(), 7000);
  // Byte tags survive the rewrite in both directions.
  EXPECT_EQ(rt.tags_at_s, std::vector<uint32_t>{1});
  EXPECT_EQ(rt.tags_at_h, std::vector<uint32_t>{2});
  // Both G and R decrement the TTL (64 -> 62).
  ASSERT_EQ(at_s.size(), 1u);
  EXPECT_EQ(at_s[0].ttl, 62);
  ASSERT_EQ(at_h.size(), 1u);
  EXPECT_EQ(at_h[0].ttl, 62);
  EXPECT_EQ(nat->counters().outbound, 1u);
  EXPECT_EQ(nat->counters().inbound, 1u);
  EXPECT_EQ(nat->counters().mappings, 1u);
  EXPECT_EQ(nat->counters().unsolicited, 1u);
}

TEST_F(NatGatewayTest, ChecksumsAreRecomputedWhenEnabled) {
  GlobalValue::Bind("ChecksumEnabled", BooleanValue(true));
  ASSERT_TRUE(Node::ChecksumEnabled());
  UdpRoundTrip rt;
  StartUdpRoundTrip(rt, 300);
  RunTcpEcho(5000, 2);  // the UDP and the TCP mapping
  EXPECT_EQ(rt.seen_by_s.size(), 1u);
  EXPECT_EQ(rt.seen_by_h.size(), 1u);
}

TEST_F(NatGatewayTest, FragmentsAndOtherProtocolsAreDropped) {
  std::vector<DeliveredPacket> at_s;
  RecordLocalDelivery(s, at_s);
  Ptr<Socket> udp = Socket::CreateSocket(h, UdpSocketFactory::GetTypeId());
  ASSERT_EQ(udp->Bind(), 0);
  Ptr<Socket> raw = Socket::CreateSocket(h, Ipv4RawSocketFactory::GetTypeId());
  raw->SetAttribute("Protocol", UintegerValue(1));  // ICMP
  Simulator::Schedule(MilliSeconds(10), [&] {
    EXPECT_GE(udp->SendTo(Create<Packet>(3000), 0, InetSocketAddress(kS, 7000)), 0);  // 3 fragments on a 1500 MTU
  });
  // Later: ARP's pending queue holds only 3 packets while G's address is being resolved.
  Simulator::Schedule(MilliSeconds(50),
                      [&] { EXPECT_GE(raw->SendTo(Create<Packet>(64), 0, InetSocketAddress(kS, 0)), 0); });
  Simulator::Stop(Seconds(1));
  Simulator::Run();

  EXPECT_TRUE(at_s.empty());
  EXPECT_EQ(nat->counters().unsupported, 4u);
  EXPECT_EQ(nat->counters().outbound, 0u);
  EXPECT_EQ(nat->counters().mappings, 0u);
}

TEST_F(NatGatewayTest, GatewayOwnTrafficIsNotTranslated) {
  std::vector<DeliveredPacket> at_s;
  RecordLocalDelivery(s, at_s);
  Ptr<Socket> udp = Socket::CreateSocket(g, UdpSocketFactory::GetTypeId());
  ASSERT_EQ(udp->Bind(), 0);
  Simulator::Schedule(MilliSeconds(10),
                      [&] { EXPECT_GE(udp->SendTo(Create<Packet>(100), 0, InetSocketAddress(kS, 7000)), 0); });
  Simulator::Stop(Seconds(1));
  Simulator::Run();

  ASSERT_EQ(at_s.size(), 1u);
  EXPECT_EQ(at_s[0].src, kGOutside);
  EXPECT_EQ(nat->counters().outbound, 0u);
}

TEST_F(NatGatewayTest, ExpiringTtlIsAnsweredToTheInsideHost) {
  std::vector<DeliveredPacket> at_h;
  RecordLocalDelivery(h, at_h);
  Ptr<Socket> udp = Socket::CreateSocket(h, UdpSocketFactory::GetTypeId());
  ASSERT_EQ(udp->Bind(), 0);
  udp->SetIpTtl(1);
  Simulator::Schedule(MilliSeconds(10),
                      [&] { EXPECT_GE(udp->SendTo(Create<Packet>(100), 0, InetSocketAddress(kS, 7000)), 0); });
  Simulator::Stop(Seconds(1));
  Simulator::Run();

  // G's static routing answers with ICMP time exceeded to H's own address, untranslated.
  ASSERT_EQ(at_h.size(), 1u);
  EXPECT_EQ(at_h[0].protocol, 1);
  EXPECT_EQ(nat->counters().outbound, 0u);
  EXPECT_EQ(nat->counters().mappings, 0u);
}

}  // namespace
