// The ns-3 engine against the model engine and at packet level. Every run here is a full ns-3
// simulation; they run one after another (ns-3 keeps global state).
#include <gtest/gtest.h>

#include <map>
#include <stdexcept>
#include <string>
#include <tuple>

#include "ns3/inet-socket-address.h"
#include "ns3/simulator.h"
#include "ns3/socket.h"
#include "ns3/tcp-socket-factory.h"

#include "mixcast/sim/metrics.hpp"
#include "mixcast/sim/model_engine.hpp"
#include "mixcast/sim/ns3_engine.hpp"
#include "topology.hpp"

namespace {

using namespace mixcast;
using namespace mixcast::sim;

Scenario load(const std::string& name, std::uint32_t nodes, const std::string& mode,
              std::vector<std::string> sets = {}) {
  sets.push_back("protocol.mode=" + mode);
  Scenario s = load_scenario(std::string(MIXCAST_SOURCE_DIR) + "/scenarios/" + name + ".yaml", sets);
  rescale(s, nodes);
  validate(s);
  return s;
}

std::map<std::pair<std::uint32_t, NodeId>, std::uint32_t> rounds_of(const RunResult& r) {
  std::map<std::pair<std::uint32_t, NodeId>, std::uint32_t> out;
  for (const auto& d : r.deliveries) out[{d.broadcast, d.node}] = d.round;
  return out;
}

// With no loss, the core makes the same decisions on both engines: every node delivers every
// broadcast in the same logical round, whatever the packet-level timing.
class Conformance : public ::testing::TestWithParam<std::tuple<std::string, std::string>> {};

TEST_P(Conformance, RoundsPerDeliveryEqualTheModelEngines) {
  const auto& [name, mode] = GetParam();
  const Scenario s = load(name, 32, mode, {"workload.broadcasts=6"});
  const RunResult model = run_model(s);
  const RunResult ns3 = run_ns3(s);
  const auto sm = summarize(model), sn = summarize(ns3);
  EXPECT_EQ(sn["engine"], "ns3");
  EXPECT_EQ(sn["delivery_ratio"], 1.0) << sn.dump(2);
  EXPECT_EQ(sm["delivery_ratio"], 1.0) << sm.dump(2);
  EXPECT_EQ(ns3.duplicates, 0u);
  EXPECT_EQ(sn["islands"], sm["islands"]);
  EXPECT_EQ(sn["rounds"], sm["rounds"]);
  const auto a = rounds_of(model), b = rounds_of(ns3);
  ASSERT_EQ(a.size(), b.size());
  std::size_t differing = 0;
  for (const auto& [key, round] : a) {
    auto it = b.find(key);
    ASSERT_NE(it, b.end()) << "broadcast " << key.first << " node " << key.second << " missing on ns3";
    if (it->second != round) {
      ++differing;
      ADD_FAILURE() << "broadcast " << key.first << " node " << key.second << ": model round " << round
                    << ", ns3 round " << it->second;
      if (differing > 5) break;
    }
  }
}

INSTANTIATE_TEST_SUITE_P(Scenarios, Conformance,
                         ::testing::Combine(::testing::Values("lan", "multi-subnet", "multi-dc", "nat"),
                                            ::testing::Values("tcp", "mixed")),
                         [](const auto& param_info) {
                           std::string n = std::get<0>(param_info.param) + "_" + std::get<1>(param_info.param);
                           for (char& c : n)
                             if (c == '-') c = '_';
                           return n;
                         });

// The NAT subnet at packet level, in the engine's own topology: a node outside cannot open a
// connection into it (neither to a member's private address nor to the NAT's public one), while
// a member's outbound connection works.
TEST(Ns3Nat, OutsideCannotConnectInsideCanConnectOut) {
  const Scenario s = load("nat", 104, "tcp");
  const auto placement = place_nodes(s);
  NodeId inside = 0, outside = 0;
  bool found_in = false, found_out = false;
  for (NodeId i = 0; i < placement.size(); ++i) {
    const bool nat = subnet_at(s, placement[i].subnet).nat;
    if (nat && !found_in) inside = i, found_in = true;
    if (!nat && !found_out) outside = i, found_out = true;
  }
  ASSERT_TRUE(found_in && found_out);

  ns3sim::LinkBytes links;
  const ns3sim::Topology topo = ns3sim::build_topology(s, links);
  ASSERT_EQ(topo.nats.size(), 1u);
  int accepted_inside = 0, accepted_outside = 0, connected_in = 0, connected_out = 0, failed_in = 0;
  auto listen = [](ns3::Ptr<ns3::Node> node, int& accepted) {
    auto l = ns3::Socket::CreateSocket(node, ns3::TcpSocketFactory::GetTypeId());
    l->Bind(ns3::InetSocketAddress(ns3::Ipv4Address::GetAny(), 9000));
    l->Listen();
    l->SetAcceptCallback(ns3::MakeNullCallback<bool, ns3::Ptr<ns3::Socket>, const ns3::Address&>(),
                         ns3::MakeBoundCallback(+[](int* n, ns3::Ptr<ns3::Socket>, const ns3::Address&) { ++*n; },
                                                &accepted));
    return l;
  };
  auto in_listener = listen(topo.hosts.Get(inside), accepted_inside);
  auto out_listener = listen(topo.hosts.Get(outside), accepted_outside);
  auto connect = [](ns3::Ptr<ns3::Node> from, ns3::Ipv4Address to, int& ok, int* failed) {
    auto c = ns3::Socket::CreateSocket(from, ns3::TcpSocketFactory::GetTypeId());
    c->Bind();
    c->SetConnectCallback(
        ns3::MakeBoundCallback(+[](int* n, ns3::Ptr<ns3::Socket>) { ++*n; }, &ok),
        ns3::MakeBoundCallback(+[](int* n, ns3::Ptr<ns3::Socket>) { if (n) ++*n; }, failed));
    c->Connect(ns3::InetSocketAddress(to, 9000));
    return c;
  };
  auto c1 = connect(topo.hosts.Get(outside), topo.addresses[inside], connected_in, &failed_in);
  auto c2 = connect(topo.hosts.Get(outside), topo.nat_public[0], connected_in, &failed_in);
  auto c3 = connect(topo.hosts.Get(inside), topo.addresses[outside], connected_out, nullptr);
  ns3::Simulator::Stop(ns3::Seconds(5));
  ns3::Simulator::Run();
  EXPECT_EQ(connected_in, 0);
  EXPECT_EQ(accepted_inside, 0);
  EXPECT_EQ(connected_out, 1);
  EXPECT_EQ(accepted_outside, 1);
  EXPECT_GT(topo.nats[0]->counters().unsolicited, 0u);  // the SYNs to the public address
  EXPECT_GT(topo.nats[0]->counters().outbound, 0u);
  ns3::Simulator::Destroy();
}

// ...and the NAT subnet still receives every broadcast, in both modes, through the links its
// members open themselves.
TEST(Ns3Nat, NatSubnetReceivesEveryBroadcast) {
  for (const std::string mode : {"tcp", "mixed"}) {
    const Scenario s = load("nat", 104, mode);
    const RunResult r = run_ns3(s);
    const auto j = summarize(r);
    EXPECT_EQ(j["delivery_ratio"], 1.0) << mode << "\n" << j.dump(2);
    EXPECT_EQ(j["duplicates"], 0u) << mode;
    ASSERT_TRUE(j["links"].contains("nat")) << j["links"].dump(2);
    EXPECT_GT(j["links"]["nat"]["bytes_per_broadcast"].get<double>(), 0.0) << mode;
    // every member of the NAT subnet delivered every measured broadcast
    const auto placement = place_nodes(s);
    std::map<NodeId, int> per_node;
    for (const auto& d : r.deliveries)
      if (!r.broadcasts[d.broadcast].warmup && subnet_at(s, placement[d.node].subnet).nat) ++per_node[d.node];
    std::size_t natted = 0;
    for (NodeId i = 0; i < placement.size(); ++i) natted += subnet_at(s, placement[i].subnet).nat ? 1 : 0;
    EXPECT_EQ(per_node.size(), natted) << mode;
    for (const auto& [node, count] : per_node) EXPECT_EQ(count, static_cast<int>(s.workload.broadcasts)) << node;
  }
}

// Crashed nodes stop at packet level; the survivors still get everything.
TEST(Ns3Engine, CrashedNodesAreRoutedAround) {
  const Scenario s = load("multi-subnet", 64, "tcp", {"crashes=[{at: 0.2s, count: 4}]", "workload.broadcasts=10"});
  const RunResult r = run_ns3(s);
  const auto j = summarize(r);
  EXPECT_EQ(j["crashed"], 4u);
  EXPECT_EQ(j["delivery_ratio"], 1.0) << j.dump(2);
  EXPECT_EQ(j["duplicates"], 0u);
}

// The seed's worry, measured: in TCP mode later rounds carry more bytes on the LANs; mixed mode
// carries a broadcast in far fewer LAN bytes.
TEST(Ns3Engine, LinkBytesPerRoundShowTcpGrowthAndMixedSavings) {
  const RunResult tcp = run_ns3(load("multi-subnet", 128, "tcp"));
  const RunResult mixed = run_ns3(load("multi-subnet", 128, "mixed"));
  const auto jt = summarize(tcp), jm = summarize(mixed);
  std::map<std::uint32_t, std::uint64_t> lan_by_round;
  for (const auto& r : tcp.link_rounds)
    if (tcp.links[r.link].kind == LinkKind::lan && r.round > 0) lan_by_round[r.round] += r.bytes;
  ASSERT_GE(lan_by_round.size(), 3u);
  EXPECT_GT(lan_by_round.rbegin()->second, lan_by_round.begin()->second);
  EXPECT_LT(jm["links"]["lan"]["bytes_per_broadcast"].get<double>(),
            jt["links"]["lan"]["bytes_per_broadcast"].get<double>());
}

// ns-3 keeps global state: a second run while one is going is refused with a clear error.
TEST(Ns3Engine, OneRunPerProcessAtATime) {
  const Scenario s = load("lan", 8, "tcp");
  bool refused = false;
  RunOptions opt;
  opt.progress = [&](double, double, std::uint64_t) {
    if (refused) return;
    try {
      (void)run_ns3(s);
    } catch (const std::logic_error& e) {
      refused = std::string(e.what()).find("one ns-3 run per process") != std::string::npos;
    }
  };
  const RunResult r = run_ns3(s, opt);
  EXPECT_TRUE(refused);
  EXPECT_EQ(summarize(r)["delivery_ratio"], 1.0);
  // and once it is over, the next run works
  EXPECT_EQ(summarize(run_ns3(s))["delivery_ratio"], 1.0);
}

}  // namespace
