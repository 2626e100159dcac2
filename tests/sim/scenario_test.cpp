// Scenario loading: shipped files, error messages (file:line + key path), overrides, rescaling,
// units, placement and the explanation text.
#include "mixcast/sim/model_engine.hpp"
#include "mixcast/sim/run_book.hpp"
#include "mixcast/sim/scenario.hpp"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <fstream>
#include <numeric>
#include <sstream>
#include <string>
#include <vector>

#ifndef MIXCAST_SOURCE_DIR
#error "MIXCAST_SOURCE_DIR must be defined (the repository root)"
#endif

namespace mixcast::sim {
namespace {

using ::testing::HasSubstr;
using ::testing::StartsWith;

const std::string kScenarioDir = std::string(MIXCAST_SOURCE_DIR) + "/scenarios/";

// Two datacenters, three subnets, 32 nodes. Line numbers matter for the error tests.
const std::string kBase =
    "name: t\n"                     // 1
    "datacenters:\n"                // 2
    "  - name: eu\n"                // 3
    "    subnets:\n"                // 4
    "      - name: eu-a\n"          // 5
    "        nodes: 4\n"            // 6
    "      - name: eu-b\n"          // 7
    "        nodes: 12\n"           // 8
    "  - name: us\n"                // 9
    "    subnets:\n"                // 10
    "      - name: us-a\n"          // 11
    "        nodes: 16\n"           // 12
    "wan:\n"                        // 13
    "  - between: [eu, us]\n";      // 14

// Replaces the first occurrence of `from` in kBase (the test fails if it is absent).
std::string base_with(const std::string& from, const std::string& to) {
  std::string s = kBase;
  const auto pos = s.find(from);
  EXPECT_NE(pos, std::string::npos) << "test bug: " << from;
  if (pos != std::string::npos) s.replace(pos, from.size(), to);
  return s;
}

// The ScenarioError message of loading `yaml`, or "<no error>".
std::string error_of(const std::string& yaml, const std::vector<std::string>& overrides = {}) {
  try {
    load_scenario_text(yaml, "t.yaml", overrides);
  } catch (const ScenarioError& e) {
    return e.what();
  }
  return "<no error>";
}

std::vector<std::uint32_t> subnet_sizes(const Scenario& s) {
  std::vector<std::uint32_t> out;
  for (const auto& dc : s.datacenters)
    for (const auto& sn : dc.subnets) out.push_back(sn.nodes);
  return out;
}

// ---------------------------------------------------------------------------------------------
// Shipped scenarios

TEST(ScenarioFiles, EveryShippedScenarioLoadsAndValidates) {
  for (const char* name : {"lan", "multi-subnet", "multi-dc", "nat", "lossy"}) {
    SCOPED_TRACE(name);
    Scenario s;
    ASSERT_NO_THROW(s = load_scenario(kScenarioDir + name + ".yaml"));
    EXPECT_EQ(s.name, name);
    EXPECT_NO_THROW(validate(s));
    EXPECT_EQ(s.workload.broadcasts, 10u);
    EXPECT_DOUBLE_EQ(s.workload.rate_per_s, 20.0);
    EXPECT_TRUE(s.workload.origins.empty());  // random
    EXPECT_EQ(s.protocol.mode, std::string(name) == "lossy" ? Mode::mixed : Mode::tcp);
    EXPECT_EQ(s.workload.warmup_broadcasts, std::string(name) == "lossy" ? 5u : 0u);
    EXPECT_THAT(explain(s), HasSubstr("scenario " + std::string(name)));
  }
}

TEST(ScenarioFiles, ShippedTopologies) {
  const Scenario lan = load_scenario(kScenarioDir + "lan.yaml");
  EXPECT_EQ(lan.datacenters.size(), 1u);
  EXPECT_EQ(lan.total_subnets(), 1u);
  EXPECT_EQ(lan.total_nodes(), 64u);
  EXPECT_TRUE(lan.datacenters[0].subnets[0].multicast);

  const Scenario ms = load_scenario(kScenarioDir + "multi-subnet.yaml");
  EXPECT_EQ(ms.datacenters.size(), 1u);
  ASSERT_EQ(ms.total_subnets(), 4u);
  for (std::uint32_t i = 0; i < 4; ++i) {
    EXPECT_GE(subnet_at(ms, i).nodes, 16u);
    EXPECT_LE(subnet_at(ms, i).nodes, 64u);
    EXPECT_TRUE(subnet_at(ms, i).multicast);
  }

  const Scenario dc = load_scenario(kScenarioDir + "multi-dc.yaml");
  ASSERT_EQ(dc.datacenters.size(), 3u);
  EXPECT_EQ(dc.datacenters[0].name, "eu");
  EXPECT_EQ(dc.datacenters[1].name, "us");
  EXPECT_EQ(dc.datacenters[2].name, "asia");
  for (const auto& d : dc.datacenters) EXPECT_EQ(d.subnets.size(), 2u);
  EXPECT_GE(dc.wan.size(), 2u);
  for (const auto& w : dc.wan) {
    EXPECT_GE(w.link.latency_s, 10e-3);
    EXPECT_LE(w.link.latency_s, 80e-3);
  }

  const Scenario nat = load_scenario(kScenarioDir + "nat.yaml");
  EXPECT_EQ(nat.datacenters.size(), 2u);
  bool nat_multicast = false, plain = false;
  for (std::uint32_t i = 0; i < nat.total_subnets(); ++i) {
    nat_multicast |= subnet_at(nat, i).nat && subnet_at(nat, i).multicast;
    plain |= !subnet_at(nat, i).nat;
  }
  EXPECT_TRUE(nat_multicast);
  EXPECT_TRUE(plain);

  const Scenario lossy = load_scenario(kScenarioDir + "lossy.yaml");
  EXPECT_EQ(lossy.datacenters.size(), 1u);
  ASSERT_EQ(lossy.total_subnets(), 4u);
  for (std::uint32_t i = 0; i < 4; ++i) EXPECT_DOUBLE_EQ(subnet_at(lossy, i).multicast_loss, 0.05);
}

TEST(ScenarioFiles, ReadmeDocumentsEveryKey) {
  std::ifstream in(kScenarioDir + "README.md");
  ASSERT_TRUE(in) << "scenarios/README.md is missing";
  std::stringstream text;
  text << in.rdbuf();
  const std::string readme = text.str();
  for (const char* key :
       {"name", "seed", "time_limit", "datacenters", "subnets", "nodes", "lan", "bandwidth", "latency", "loss",
        "multicast", "nat", "multicast_send_broken", "multicast_recv_broken", "multicast_fails_at", "wan",
        "between", "protocol", "mode", "ack_timeout", "forced_tcp_share", "confirm_interval", "reach_expiry",
        "beacon_interval", "nat_links", "retention", "dedup_window", "workload", "broadcasts", "payload_bytes",
        "rate", "origins", "warmup_broadcasts", "start", "crashes", "at", "count", "fraction"}) {
    EXPECT_THAT(readme, HasSubstr(std::string("`") + key + "`")) << key;
  }
}

// ---------------------------------------------------------------------------------------------
// Conversion of every key

TEST(ScenarioLoad, EveryKeyIsMappedToTheStruct) {
  const std::string yaml = R"(
name: full
seed: 18446744073709551615
time_limit: 90s
datacenters:
  - name: eu
    subnets:
      - name: eu-a
        nodes: 8
        lan: {bandwidth: 10Gbps, latency: 75us, loss: "5%"}
        multicast: true
        nat: true
        multicast_send_broken: [3]
        multicast_recv_broken: [4, 5]
        multicast_fails_at: 2s
      - name: eu-b
        nodes: 2
        multicast: false
  - name: us
    subnets:
      - {name: us-a, nodes: 6}
wan:
  - between: [eu, us]
    bandwidth: 250Mbps
    latency: 40ms
    loss: 0.001
protocol:
  mode: mixed
  ack_timeout: 250ms
  forced_tcp_share: 0.25
  confirm_interval: 20ms
  reach_expiry: 3s
  beacon_interval: 200ms
  nat_links: 3
  retention: 512
  dedup_window: 64
workload:
  broadcasts: 7
  payload_bytes: 100
  rate: 2.5
  origins: [0, 15]
  warmup_broadcasts: 3
  start: 1.5s
crashes:
  - {at: 0s, fraction: 0.1}
  - {at: 500ms, count: 2}
  - {at: 1s, nodes: [1, 9]}
)";
  const Scenario s = load_scenario_text(yaml, "dir/full.yaml");
  EXPECT_EQ(s.name, "full");
  EXPECT_EQ(s.source, "dir/full.yaml");
  EXPECT_EQ(s.seed, 18446744073709551615ULL);
  EXPECT_DOUBLE_EQ(s.time_limit_s, 90);
  ASSERT_EQ(s.datacenters.size(), 2u);
  const SubnetSpec& a = s.datacenters[0].subnets[0];
  EXPECT_EQ(a.name, "eu-a");
  EXPECT_EQ(a.nodes, 8u);
  EXPECT_DOUBLE_EQ(a.lan.bandwidth_bps, 10e9);
  EXPECT_DOUBLE_EQ(a.lan.latency_s, 75e-6);
  EXPECT_DOUBLE_EQ(a.lan.loss, 0.05);
  EXPECT_TRUE(a.multicast);
  EXPECT_TRUE(a.nat);
  EXPECT_EQ(a.multicast_send_broken, std::vector<std::uint32_t>({3}));
  EXPECT_EQ(a.multicast_recv_broken, std::vector<std::uint32_t>({4, 5}));
  EXPECT_DOUBLE_EQ(a.multicast_fails_at_s, 2);
  const SubnetSpec& b = s.datacenters[0].subnets[1];
  EXPECT_FALSE(b.multicast);
  EXPECT_FALSE(b.nat);
  EXPECT_LT(b.multicast_fails_at_s, 0);  // never
  EXPECT_DOUBLE_EQ(b.lan.bandwidth_bps, LinkSpec{}.bandwidth_bps);  // defaults
  EXPECT_DOUBLE_EQ(b.lan.latency_s, LinkSpec{}.latency_s);
  ASSERT_EQ(s.wan.size(), 1u);
  EXPECT_EQ(s.wan[0].a, "eu");
  EXPECT_EQ(s.wan[0].b, "us");
  EXPECT_DOUBLE_EQ(s.wan[0].link.bandwidth_bps, 250e6);
  EXPECT_DOUBLE_EQ(s.wan[0].link.latency_s, 0.04);
  EXPECT_DOUBLE_EQ(s.wan[0].link.loss, 0.001);
  EXPECT_EQ(s.protocol.mode, Mode::mixed);
  EXPECT_DOUBLE_EQ(s.protocol.ack_timeout_s, 0.25);
  EXPECT_DOUBLE_EQ(s.protocol.forced_tcp_share, 0.25);
  EXPECT_DOUBLE_EQ(s.protocol.confirm_interval_s, 0.02);
  EXPECT_DOUBLE_EQ(s.protocol.reach_expiry_s, 3);
  EXPECT_DOUBLE_EQ(s.protocol.beacon_interval_s, 0.2);
  EXPECT_EQ(s.protocol.nat_links, 3u);
  EXPECT_EQ(s.protocol.retention, 512u);
  EXPECT_EQ(s.protocol.dedup_window, 64u);
  EXPECT_EQ(s.workload.broadcasts, 7u);
  EXPECT_EQ(s.workload.payload_bytes, 100u);
  EXPECT_DOUBLE_EQ(s.workload.rate_per_s, 2.5);
  EXPECT_EQ(s.workload.origins, std::vector<std::uint32_t>({0, 15}));
  EXPECT_EQ(s.workload.warmup_broadcasts, 3u);
  EXPECT_DOUBLE_EQ(s.workload.start_s, 1.5);
  ASSERT_EQ(s.crashes.size(), 3u);
  EXPECT_DOUBLE_EQ(s.crashes[0].fraction, 0.1);
  EXPECT_EQ(s.crashes[0].count, 0u);
  EXPECT_DOUBLE_EQ(s.crashes[1].at_s, 0.5);
  EXPECT_EQ(s.crashes[1].count, 2u);
  EXPECT_EQ(s.crashes[2].nodes, std::vector<std::uint32_t>({1, 9}));
}

TEST(ScenarioLoad, DefaultsAndNameFromFileStem) {
  const Scenario s = load_scenario_text(base_with("name: t\n", ""), "some/dir/my-run.yaml");
  EXPECT_EQ(s.name, "my-run");
  const ProtocolSpec p;
  EXPECT_EQ(s.protocol.mode, p.mode);
  EXPECT_EQ(s.protocol.dedup_window, p.dedup_window);
  EXPECT_EQ(s.workload.broadcasts, WorkloadSpec{}.broadcasts);
  EXPECT_DOUBLE_EQ(s.time_limit_s, 600);
  EXPECT_EQ(s.seed, 1u);
  EXPECT_DOUBLE_EQ(s.wan[0].link.bandwidth_bps, 100e6);
  EXPECT_DOUBLE_EQ(s.wan[0].link.latency_s, 20e-3);
  EXPECT_TRUE(s.crashes.empty());
}

// ---------------------------------------------------------------------------------------------
// Units

double duration_of(const std::string& v) {
  return load_scenario_text(kBase, "t.yaml", {"time_limit=" + v}).time_limit_s;
}
double bandwidth_of(const std::string& v) {
  return load_scenario_text(kBase, "t.yaml", {"datacenters.0.subnets.0.lan.bandwidth=" + v})
      .datacenters[0].subnets[0].lan.bandwidth_bps;
}

TEST(ScenarioUnits, Durations) {
  EXPECT_DOUBLE_EQ(duration_of("100us"), 100e-6);
  EXPECT_DOUBLE_EQ(duration_of("0.5s"), 0.5);
  EXPECT_DOUBLE_EQ(duration_of("40ms"), 0.04);
  EXPECT_DOUBLE_EQ(duration_of("250ns"), 250e-9);
  EXPECT_DOUBLE_EQ(duration_of("2"), 2);
  EXPECT_DOUBLE_EQ(duration_of("1.5"), 1.5);
  EXPECT_DOUBLE_EQ(duration_of("1e-3"), 1e-3);
  EXPECT_DOUBLE_EQ(duration_of("100 ms"), 0.1);
}

TEST(ScenarioUnits, BadDurations) {
  EXPECT_EQ(error_of(base_with("name: t\n", "name: t\ntime_limit: 5min\n")),
            "t.yaml:2: time_limit: unknown duration unit \"min\" in \"5min\" (allowed: s, ms, us, ns)");
  EXPECT_THAT(error_of(kBase, {"time_limit=soon"}),
              HasSubstr("time_limit: expected a duration (seconds, or a number with unit s, ms, us or ns"));
  EXPECT_THAT(error_of(kBase, {"time_limit=-5s"}), HasSubstr("time_limit: a duration must not be negative"));
  EXPECT_THAT(error_of(kBase, {"time_limit=0"}), HasSubstr("time_limit: must be > 0"));
  EXPECT_THAT(error_of(kBase, {"time_limit=5MS"}), HasSubstr("unknown duration unit \"MS\""));
  EXPECT_THAT(error_of(kBase, {"time_limit=[1]"}), HasSubstr("time_limit: expected a duration"));
}

TEST(ScenarioUnits, Bandwidths) {
  EXPECT_DOUBLE_EQ(bandwidth_of("1Gbps"), 1e9);
  EXPECT_DOUBLE_EQ(bandwidth_of("1gbps"), 1e9);
  EXPECT_DOUBLE_EQ(bandwidth_of("100Mbps"), 100e6);
  EXPECT_DOUBLE_EQ(bandwidth_of("100mbps"), 100e6);
  EXPECT_DOUBLE_EQ(bandwidth_of("64Kbps"), 64e3);
  EXPECT_DOUBLE_EQ(bandwidth_of("64kbps"), 64e3);
  EXPECT_DOUBLE_EQ(bandwidth_of("2500bps"), 2500);
  EXPECT_DOUBLE_EQ(bandwidth_of("1e9"), 1e9);
  EXPECT_DOUBLE_EQ(bandwidth_of("2.5 Gbps"), 2.5e9);
}

TEST(ScenarioUnits, BadBandwidths) {
  EXPECT_THAT(error_of(kBase, {"datacenters.0.subnets.0.lan.bandwidth=1GBps"}),
              HasSubstr("datacenters[0].subnets[0].lan.bandwidth: unknown bandwidth unit \"GBps\""));
  EXPECT_THAT(error_of(kBase, {"datacenters.0.subnets.0.lan.bandwidth=1GBps"}), HasSubstr("bits per second"));
  EXPECT_THAT(error_of(kBase, {"datacenters.0.subnets.0.lan.bandwidth=10Tbps"}),
              HasSubstr("unknown bandwidth unit \"Tbps\""));
  EXPECT_THAT(error_of(kBase, {"datacenters.0.subnets.0.lan.bandwidth=fast"}),
              HasSubstr("expected a bandwidth (bits per second, or a number with unit bps, Kbps, Mbps or Gbps"));
  EXPECT_THAT(error_of(kBase, {"datacenters.0.subnets.0.lan.bandwidth=0"}), HasSubstr("must be > 0"));
}

TEST(ScenarioUnits, Loss) {
  auto loss_of = [](const std::string& v) {
    return load_scenario_text(kBase, "t.yaml", {"wan.0.loss=" + v}).wan[0].link.loss;
  };
  EXPECT_DOUBLE_EQ(loss_of("0"), 0);
  EXPECT_DOUBLE_EQ(loss_of("0.05"), 0.05);
  EXPECT_DOUBLE_EQ(loss_of("5%"), 0.05);
  EXPECT_DOUBLE_EQ(loss_of("1"), 1);
  EXPECT_THAT(error_of(kBase, {"wan.0.loss=1.5"}), HasSubstr("wan[0].loss: a loss probability must be from 0 to 1"));
  EXPECT_THAT(error_of(kBase, {"wan.0.loss=150%"}), HasSubstr("wan[0].loss: a loss probability must be from 0 to 1"));
  EXPECT_THAT(error_of(kBase, {"wan.0.loss=5 percent"}), HasSubstr("wan[0].loss: expected a loss probability"));
}

// ---------------------------------------------------------------------------------------------
// Errors: FILE:LINE: KEY.PATH: what

TEST(ScenarioErrors, WrongType) {
  EXPECT_EQ(error_of(base_with("nodes: 12", "nodes: many")),
            "t.yaml:8: datacenters[0].subnets[1].nodes: expected an unsigned integer, got \"many\"");
  EXPECT_EQ(error_of(base_with("nodes: 12", "nodes: -3")),
            "t.yaml:8: datacenters[0].subnets[1].nodes: expected an unsigned integer, got \"-3\"");
  EXPECT_EQ(error_of(base_with("nodes: 12", "nodes: 99999999999")),
            "t.yaml:8: datacenters[0].subnets[1].nodes: value 99999999999 is too large (maximum 4294967295)");
  EXPECT_EQ(error_of(base_with("nodes: 12", "nodes: [1, 2]")),
            "t.yaml:8: datacenters[0].subnets[1].nodes: expected an unsigned integer, got a list");
  EXPECT_EQ(error_of(kBase + "protocol:\n  mode: udp\n"),
            "t.yaml:16: protocol.mode: expected \"tcp\" or \"mixed\", got \"udp\"");
  EXPECT_EQ(error_of(base_with("nodes: 4\n", "nodes: 4\n        multicast: maybe\n")),
            "t.yaml:7: datacenters[0].subnets[0].multicast: expected a boolean (true or false), got \"maybe\"");
  EXPECT_EQ(error_of(kBase + "protocol: fast\n"),
            "t.yaml:15: protocol: expected a map (keys: mode, ack_timeout, forced_tcp_share, confirm_interval, "
            "reach_expiry, beacon_interval, nat_links, retention, dedup_window), got \"fast\"");
  EXPECT_EQ(error_of(kBase + "workload:\n  origins: some\n"),
            "t.yaml:16: workload.origins: expected \"random\" or a list of global node indexes, got \"some\"");
  EXPECT_EQ(error_of("- a\n- b\n"), "t.yaml:1: expected a map of keys at the top level, got a list");
}

TEST(ScenarioErrors, UnknownKey) {
  const std::string e = error_of(base_with("nodes: 12", "nodez: 12"));
  EXPECT_THAT(e, StartsWith("t.yaml:8: datacenters[0].subnets[1].nodez: unknown key in datacenters[0].subnets[1]"));
  EXPECT_THAT(e, HasSubstr("did you mean \"nodes\"?"));
  EXPECT_THAT(e, HasSubstr("allowed: name, nodes, lan, multicast, multicast_loss, nat, multicast_send_broken, "
                           "multicast_recv_broken, multicast_fails_at, multicast_recovers_at)"));
  EXPECT_EQ(error_of("colour: blue\n" + kBase),
            "t.yaml:1: colour: unknown key at the top level (allowed: name, seed, time_limit, datacenters, wan, "
            "protocol, workload, crashes)");
  EXPECT_THAT(error_of(kBase + "wan_links: []\n"), StartsWith("t.yaml:15: wan_links: unknown key at the top level"));
}

TEST(ScenarioErrors, DuplicateKey) {
  EXPECT_EQ(error_of(base_with("nodes: 12\n", "nodes: 12\n        nodes: 13\n")),
            "t.yaml:9: datacenters[0].subnets[1].nodes: duplicate key (first given on line 8)");
}

TEST(ScenarioErrors, MissingRequiredKey) {
  EXPECT_EQ(error_of(base_with("        nodes: 12\n", "")),
            "t.yaml:7: datacenters[0].subnets[1].nodes: missing required key");
  EXPECT_EQ(error_of("name: x\n"), "t.yaml:1: datacenters: missing required key");
  EXPECT_EQ(error_of(base_with("  - name: us\n", "  - nom: us\n")),
            "t.yaml:9: datacenters[1].nom: unknown key in datacenters[1] (allowed: name, subnets)");
  EXPECT_EQ(error_of(kBase + "crashes:\n  - count: 3\n"), "t.yaml:16: crashes[0].at: missing required key");
  EXPECT_EQ(error_of(kBase + "wan:\n"), "t.yaml:15: wan: duplicate key (first given on line 13)");
}

TEST(ScenarioErrors, OutOfRange) {
  EXPECT_EQ(error_of(kBase + "protocol:\n  forced_tcp_share: 1.5\n"),
            "t.yaml:16: protocol.forced_tcp_share: must be from 0 to 1");
  EXPECT_EQ(error_of(kBase + "protocol:\n  dedup_window: 8\n"), "t.yaml:16: protocol.dedup_window: must be >= 16");
  EXPECT_EQ(error_of(kBase + "protocol:\n  nat_links: 0\n"), "t.yaml:16: protocol.nat_links: must be >= 1");
  EXPECT_EQ(error_of(kBase + "protocol:\n  ack_timeout: 0s\n"), "t.yaml:16: protocol.ack_timeout: must be > 0");
  EXPECT_EQ(error_of(kBase + "workload:\n  broadcasts: 0\n"), "t.yaml:16: workload.broadcasts: must be >= 1");
  EXPECT_EQ(error_of(kBase + "workload:\n  payload_bytes: 70000\n"),
            "t.yaml:16: workload.payload_bytes: must be at most 65536 bytes");
  EXPECT_EQ(error_of(kBase + "workload:\n  rate: 0\n"),
            "t.yaml:16: workload.rate: must be > 0 broadcasts per second");
  EXPECT_EQ(error_of(base_with("nodes: 12", "nodes: 0")), "t.yaml:8: datacenters[0].subnets[1].nodes: must be >= 1");
  EXPECT_EQ(error_of(base_with("nodes: 4\n", "nodes: 4\n        multicast_send_broken: [1, 4]\n")),
            "t.yaml:7: datacenters[0].subnets[0].multicast_send_broken[1]: node index 4 is out of range: the "
            "subnet has 4 nodes (indexes 0..3)");
  EXPECT_EQ(error_of(base_with("nodes: 4\n", "nodes: 4\n        multicast_recv_broken: [2, 2]\n")),
            "t.yaml:7: datacenters[0].subnets[0].multicast_recv_broken[1]: node index 2 is listed twice");
  EXPECT_EQ(error_of(base_with("subnets:\n      - name: us-a\n        nodes: 16\n", "subnets: []\n")),
            "t.yaml:10: datacenters[1].subnets: at least one subnet is needed");
  EXPECT_EQ(error_of("datacenters: []\n"), "t.yaml:1: datacenters: at least one datacenter is needed");
  EXPECT_EQ(error_of(base_with("- name: eu-b", "- name: \"eu b\"")),
            "t.yaml:7: datacenters[0].subnets[1].name: invalid name \"eu b\" (use letters, digits, '-', '_' and '.')");
}

TEST(ScenarioErrors, DuplicateNames) {
  EXPECT_EQ(error_of(base_with("- name: eu-b", "- name: eu-a")),
            "t.yaml:7: datacenters[0].subnets[1].name: duplicate subnet name \"eu-a\" (also "
            "datacenters[0].subnets[0]; subnet names are unique across the scenario)");
  EXPECT_EQ(error_of(base_with("- name: us-a", "- name: eu-b")),
            "t.yaml:11: datacenters[1].subnets[0].name: duplicate subnet name \"eu-b\" (also "
            "datacenters[0].subnets[1]; subnet names are unique across the scenario)");
  EXPECT_THAT(error_of(base_with("- name: us\n", "- name: eu\n")),
              StartsWith("t.yaml:9: datacenters[1].name: duplicate datacenter name \"eu\""));
}

TEST(ScenarioErrors, ImpossibleTopology) {
  EXPECT_EQ(error_of(base_with("wan:\n  - between: [eu, us]\n", "")),
            "t.yaml:1: wan: impossible topology: the WAN links do not connect all datacenters; separate groups: "
            "{eu}, {us}");
  EXPECT_EQ(error_of(base_with("[eu, us]", "[eu, mars]")),
            "t.yaml:14: wan[0].between[1]: impossible topology: unknown datacenter \"mars\" (datacenters: eu, us)");
  EXPECT_THAT(error_of(base_with("[eu, us]", "[eu, eu]")),
              StartsWith("t.yaml:14: wan[0].between: a WAN link must join two different datacenters"));
  EXPECT_THAT(error_of(kBase + "  - between: [us, eu]\n"),
              StartsWith("t.yaml:15: wan[1].between: duplicate WAN link between \"us\" and \"eu\" (also wan[0])"));
  EXPECT_EQ(error_of(base_with("[eu, us]", "[eu]")),
            "t.yaml:14: wan[0].between: expected exactly two datacenter names, got 1");
  // Three datacenters, only two connected.
  std::string y = base_with("wan:\n", "  - name: asia\n    subnets: [{name: asia-a, nodes: 2}]\nwan:\n");
  EXPECT_THAT(error_of(y), HasSubstr("wan: impossible topology: the WAN links do not connect all datacenters; "
                                     "separate groups: {eu, us}, {asia}"));
}

TEST(ScenarioErrors, OriginsAndCrashNodesOutOfRange) {
  EXPECT_EQ(error_of(kBase + "workload:\n  origins: [0, 32]\n"),
            "t.yaml:16: workload.origins[1]: node index 32 is out of range: the scenario has 32 nodes (indexes "
            "0..31)");
  EXPECT_EQ(error_of(kBase + "workload:\n  origins: []\n"),
            "t.yaml:16: workload.origins: the list of origins is empty (write \"random\" for random origins)");
  EXPECT_EQ(error_of(kBase + "crashes:\n  - at: 1s\n    nodes: [3, 40]\n"),
            "t.yaml:17: crashes[0].nodes[1]: node index 40 is out of range: the scenario has 32 nodes (indexes "
            "0..31)");
  EXPECT_EQ(error_of(kBase + "crashes:\n  - {at: 1s, count: 2, fraction: 0.5}\n"),
            "t.yaml:16: crashes[0]: give exactly one of count, fraction or nodes (got count and fraction)");
  EXPECT_EQ(error_of(kBase + "crashes:\n  - {at: 1s}\n"),
            "t.yaml:16: crashes[0]: give exactly one of count, fraction or nodes (got none)");
  EXPECT_EQ(error_of(kBase + "crashes:\n  - {at: 1s, fraction: 2}\n"),
            "t.yaml:16: crashes[0].fraction: must be from 0 to 1");
  EXPECT_THAT(error_of(kBase + "crashes:\n  - {at: 1s, count: 32}\n"),
              StartsWith("t.yaml:16: crashes[0].count: cannot crash 32 nodes"));
}

TEST(ScenarioErrors, YamlSyntax) {
  const std::string e = error_of("name: x\ndatacenters: [\n  {name: a,\nseed: 3\n");
  EXPECT_THAT(e, StartsWith("t.yaml:"));
  EXPECT_THAT(e, HasSubstr("YAML syntax error"));
  EXPECT_EQ(error_of("name: x\n  bad: indentation\n").rfind("t.yaml:2: YAML syntax error: ", 0), 0u)
      << error_of("name: x\n  bad: indentation\n");
  EXPECT_THAT(error_of(""), HasSubstr("t.yaml: the scenario is empty"));
}

TEST(ScenarioErrors, MissingFile) {
  try {
    load_scenario("/nonexistent/dir/none.yaml");
    FAIL() << "no error";
  } catch (const ScenarioError& e) {
    EXPECT_THAT(e.what(), StartsWith("/nonexistent/dir/none.yaml: cannot open the scenario file"));
  }
}

TEST(ScenarioErrors, ValidateWithoutMarksNamesTheKeyPath) {
  Scenario s = load_scenario_text(kBase, "t.yaml");
  s.workload.origins = {5, 99};
  try {
    validate(s);
    FAIL() << "no error";
  } catch (const ScenarioError& e) {
    EXPECT_EQ(std::string(e.what()),
              "t.yaml: workload.origins[1]: node index 99 is out of range: the scenario has 32 nodes (indexes "
              "0..31)");
  }
  Scenario empty;
  empty.name = "empty";
  try {
    validate(empty);
    FAIL() << "no error";
  } catch (const ScenarioError& e) {
    EXPECT_THAT(e.what(), HasSubstr("datacenters: at least one datacenter is needed"));
  }
}

// ---------------------------------------------------------------------------------------------
// Overrides

TEST(ScenarioOverrides, SetValues) {
  const Scenario s = load_scenario_text(
      kBase, "t.yaml",
      {"protocol.mode=mixed", "datacenters.0.subnets.1.nodes=20", "workload.origins=[0,3]", "seed=99",
       "datacenters.us.subnets.us-a.lan={bandwidth: 10Gbps, latency: 1ms}", "wan.0.latency=35ms",
       "datacenters.0.subnets.0.multicast_fails_at=2s", "name=renamed"});
  EXPECT_EQ(s.protocol.mode, Mode::mixed);
  EXPECT_EQ(s.datacenters[0].subnets[1].nodes, 20u);
  EXPECT_EQ(s.total_nodes(), 40u);
  EXPECT_EQ(s.workload.origins, std::vector<std::uint32_t>({0, 3}));
  EXPECT_EQ(s.seed, 99u);
  EXPECT_DOUBLE_EQ(s.datacenters[1].subnets[0].lan.bandwidth_bps, 10e9);
  EXPECT_DOUBLE_EQ(s.datacenters[1].subnets[0].lan.latency_s, 1e-3);
  EXPECT_DOUBLE_EQ(s.wan[0].link.latency_s, 0.035);
  EXPECT_DOUBLE_EQ(s.datacenters[0].subnets[0].multicast_fails_at_s, 2);
  EXPECT_EQ(s.name, "renamed");
  // Later overrides win; origins can go back to random.
  const Scenario r = load_scenario_text(kBase, "t.yaml", {"workload.origins=[1]", "workload.origins=random"});
  EXPECT_TRUE(r.workload.origins.empty());
}

TEST(ScenarioOverrides, CreatesMissingOptionalBlocks) {
  // No protocol / workload block in the file.
  const Scenario s = load_scenario_text(kBase, "t.yaml", {"protocol.mode=mixed", "workload.rate=50"});
  EXPECT_EQ(s.protocol.mode, Mode::mixed);
  EXPECT_DOUBLE_EQ(s.workload.rate_per_s, 50);
  // An empty block in the file.
  const Scenario e = load_scenario_text(kBase + "protocol:\n", "t.yaml", {"protocol.nat_links=5"});
  EXPECT_EQ(e.protocol.nat_links, 5u);
}

TEST(ScenarioOverrides, UnknownPathsFail) {
  EXPECT_EQ(error_of(kBase, {"protocol.moed=mixed"}),
            "--set protocol.moed=mixed: unknown key \"moed\" in protocol (did you mean \"mode\"? allowed: mode, "
            "ack_timeout, forced_tcp_share, confirm_interval, reach_expiry, beacon_interval, nat_links, retention, "
            "dedup_window)");
  EXPECT_THAT(error_of(kBase, {"protocoll.mode=mixed"}),
              StartsWith("--set protocoll.mode=mixed: unknown key \"protocoll\" in the top level"));
  EXPECT_EQ(error_of(kBase, {"datacenters.5.name=x"}),
            "--set datacenters.5.name=x: index 5 is out of range (datacenters has 2 entries)");
  EXPECT_EQ(error_of(kBase, {"datacenters.mars.name=x"}),
            "--set datacenters.mars.name=x: datacenters has no entry named \"mars\" (use a name or an index 0..1)");
  EXPECT_EQ(error_of(kBase, {"crashes.0.at=1s"}), "--set crashes.0.at=1s: cannot select \"0\": crashes has no entries");
  EXPECT_EQ(error_of(kBase, {"seed.x=1"}), "--set seed.x=1: seed takes a single value; there is no \"x\" inside it");
  EXPECT_EQ(error_of(kBase, {"protocol.mode"}), "--set protocol.mode: expected key.path=value");
  EXPECT_EQ(error_of(kBase, {"protocol..mode=tcp"}), "--set protocol..mode=tcp: empty key in path \"protocol..mode\"");
  EXPECT_THAT(error_of(kBase, {"workload.origins=[0,"}),
              StartsWith("--set workload.origins=[0,: the value is not valid YAML"));
}

TEST(ScenarioOverrides, ValuesAreTypeCheckedAndValidated) {
  EXPECT_EQ(error_of(kBase, {"datacenters.0.subnets.0.nodes=many"}),
            "--set datacenters.0.subnets.0.nodes=many: datacenters[0].subnets[0].nodes: expected an unsigned "
            "integer, got \"many\"");
  EXPECT_EQ(error_of(kBase, {"workload.origins=[0, 99]"}),
            "--set workload.origins=[0, 99]: workload.origins[1]: node index 99 is out of range: the scenario has 32 "
            "nodes (indexes 0..31)");
  EXPECT_EQ(error_of(kBase, {"protocol.mode=udp"}),
            "--set protocol.mode=udp: protocol.mode: expected \"tcp\" or \"mixed\", got \"udp\"");
  // An error elsewhere still points at the file.
  EXPECT_EQ(error_of(base_with("nodes: 12", "nodes: x"), {"protocol.mode=mixed"}),
            "t.yaml:8: datacenters[0].subnets[1].nodes: expected an unsigned integer, got \"x\"");
}

TEST(ScenarioOverrides, LoadScenarioFromFileWithOverrides) {
  const Scenario s = load_scenario(kScenarioDir + "lan.yaml", {"protocol.mode=mixed", "workload.broadcasts=3"});
  EXPECT_EQ(s.protocol.mode, Mode::mixed);
  EXPECT_EQ(s.workload.broadcasts, 3u);
  EXPECT_THAT(error_of(kBase, {"datacenters.0.subnets.0.nodes=0"}),
              StartsWith("--set datacenters.0.subnets.0.nodes=0: datacenters[0].subnets[0].nodes: must be >= 1"));
}

// ---------------------------------------------------------------------------------------------
// Rescale

Scenario with_sizes(const std::vector<std::uint32_t>& sizes) {
  Scenario s;
  s.datacenters.push_back({"dc", {}});
  for (std::size_t i = 0; i < sizes.size(); ++i) {
    SubnetSpec sn;
    sn.name = "s" + std::to_string(i);
    sn.nodes = sizes[i];
    s.datacenters[0].subnets.push_back(sn);
  }
  return s;
}

TEST(ScenarioRescale, KeepsProportionsAndSums) {
  Scenario s = load_scenario(kScenarioDir + "multi-subnet.yaml");
  rescale(s, 100);
  EXPECT_EQ(subnet_sizes(s), std::vector<std::uint32_t>({25, 25, 25, 25}));
  EXPECT_EQ(s.total_nodes(), 100u);
  EXPECT_NO_THROW(validate(s));

  struct Case {
    std::vector<std::uint32_t> from;
    std::uint32_t n;
    std::vector<std::uint32_t> to;
  };
  for (const Case& c : std::vector<Case>{
           {{16, 48}, 8, {2, 6}},
           {{4, 12, 16}, 8, {1, 3, 4}},
           {{4, 12, 16}, 64, {8, 24, 32}},
           {{1, 1, 1}, 4, {2, 1, 1}},      // tie: earlier subnet first
           {{1, 1, 1}, 5, {2, 2, 1}},
           {{1, 99}, 10, {1, 9}},          // every subnet keeps one node
           {{1, 1, 98}, 3, {1, 1, 1}},
           {{10, 20, 30}, 1000, {167, 333, 500}},
           {{3, 3}, 1000000, {500000, 500000}},
       }) {
    Scenario r = with_sizes(c.from);
    rescale(r, c.n);
    EXPECT_EQ(subnet_sizes(r), c.to) << "rescale to " << c.n;
    const auto sizes = subnet_sizes(r);
    EXPECT_EQ(std::accumulate(sizes.begin(), sizes.end(), 0u), c.n);
  }
}

TEST(ScenarioRescale, ProportionsHoldOnAllShippedScenarios) {
  for (const char* name : {"lan", "multi-subnet", "multi-dc", "nat", "lossy"}) {
    for (std::uint32_t n : {6u, 7u, 100u, 1000u, 12345u}) {
      SCOPED_TRACE(std::string(name) + " -> " + std::to_string(n));
      Scenario s = load_scenario(kScenarioDir + name + ".yaml");
      const auto before = subnet_sizes(s);
      const double old_total = s.total_nodes();
      rescale(s, n);
      EXPECT_EQ(s.total_nodes(), n);
      const auto after = subnet_sizes(s);
      for (std::size_t i = 0; i < after.size(); ++i) {
        EXPECT_GE(after[i], 1u);
        EXPECT_LE(std::abs(double(after[i]) - double(before[i]) * n / old_total), 1.0 + 1e-9);
      }
      EXPECT_NO_THROW(validate(s));
    }
  }
}

TEST(ScenarioRescale, TooFewNodesFails) {
  Scenario s = load_scenario(kScenarioDir + "multi-subnet.yaml");
  try {
    rescale(s, 3);
    FAIL() << "no error";
  } catch (const ScenarioError& e) {
    EXPECT_THAT(e.what(), HasSubstr("cannot rescale to 3 nodes: the scenario has 4 subnets"));
  }
  EXPECT_NO_THROW(rescale(s, 4));
  EXPECT_EQ(subnet_sizes(s), std::vector<std::uint32_t>({1, 1, 1, 1}));
}

TEST(ScenarioRescale, IndexesStayValid) {
  Scenario s = load_scenario_text(kBase, "t.yaml",
                                  {"datacenters.0.subnets.1.multicast_send_broken=[1, 10]",
                                   "datacenters.0.subnets.1.multicast_recv_broken=[11]", "workload.origins=[2, 31]",
                                   "crashes=[{at: 1s, nodes: [30, 31, 5]}, {at: 2s, count: 30}]"});
  rescale(s, 16);  // 4/12/16 -> 2/6/8
  EXPECT_EQ(subnet_sizes(s), std::vector<std::uint32_t>({2, 6, 8}));
  EXPECT_EQ(s.datacenters[0].subnets[1].multicast_send_broken, std::vector<std::uint32_t>({1}));
  EXPECT_TRUE(s.datacenters[0].subnets[1].multicast_recv_broken.empty());
  EXPECT_EQ(s.workload.origins, std::vector<std::uint32_t>({2, 15}));  // 31 * 16 / 32
  EXPECT_EQ(s.crashes[0].nodes, std::vector<std::uint32_t>({15, 5}));   // 30, 31 -> 15 (once); 5 kept
  EXPECT_EQ(s.crashes[1].count, 14u);  // at most all nodes but the two origins
  EXPECT_NO_THROW(validate(s));
}

// ---------------------------------------------------------------------------------------------
// Placement and explanation

TEST(ScenarioPlacement, NodesAreNumberedDatacenterBySubnet) {
  const Scenario s = load_scenario_text(kBase, "t.yaml");
  EXPECT_EQ(s.total_nodes(), 32u);
  EXPECT_EQ(s.total_subnets(), 3u);
  const auto p = place_nodes(s);
  ASSERT_EQ(p.size(), 32u);
  EXPECT_EQ(p[0].datacenter, 0u);
  EXPECT_EQ(p[0].subnet, 0u);
  EXPECT_EQ(p[3].index_in_subnet, 3u);
  EXPECT_EQ(p[4].subnet, 1u);
  EXPECT_EQ(p[4].index_in_subnet, 0u);
  EXPECT_EQ(p[15].datacenter, 0u);
  EXPECT_EQ(p[15].index_in_subnet, 11u);
  EXPECT_EQ(p[16].datacenter, 1u);
  EXPECT_EQ(p[16].subnet, 2u);
  EXPECT_EQ(p[31].index_in_subnet, 15u);
  EXPECT_EQ(subnet_at(s, 0).name, "eu-a");
  EXPECT_EQ(subnet_at(s, 1).name, "eu-b");
  EXPECT_EQ(subnet_at(s, 2).name, "us-a");
  EXPECT_THROW(subnet_at(s, 3), std::out_of_range);
}

TEST(ScenarioExplain, ListsEverythingAndLowerBounds) {
  const Scenario s = load_scenario_text(kBase, "t.yaml", {"datacenters.0.subnets.0.multicast=false"});
  const std::string text = explain(s);
  for (const char* part : {"scenario t", "seed 1", "datacenter eu", "datacenter us", "subnet eu-a: 4 nodes",
                           "multicast off", "subnet us-a: 16 nodes", "eu <-> us", "100 Mbps", "20 ms",
                           "protocol: mode tcp", "workload: 1 broadcast", "crashes: none", "total nodes: 32",
                           "ceil(log2 32) = 5",
                           // islands: 4 single nodes (multicast off) + eu-b + us-a = 6 -> ceil(log2 6)+1 = 4
                           "6 multicast islands -> ceil(log2 6)+1 = 4", "at least 5 rounds"}) {
    EXPECT_THAT(text, HasSubstr(part));
  }
  const Scenario m = load_scenario_text(kBase, "t.yaml", {"protocol.mode=mixed"});
  EXPECT_THAT(explain(m), HasSubstr("3 multicast islands -> ceil(log2 3)+1 = 3"));
  EXPECT_THAT(explain(m), HasSubstr("runs in mixed mode: at least 3 rounds"));
}

}  // namespace
}  // namespace mixcast::sim

// restart_after is parsed and written back; the simulators refuse it rather than run without it.
TEST(Scenario, RestartAfterIsKeptAndTheNs3EngineSaysItDoesNotRunIt) {
  const auto s = mixcast::sim::load_scenario_text(
      "datacenters:\n  - name: dc\n    subnets:\n      - {name: a, nodes: 4}\n"
      "crashes:\n  - {at: 0.2s, nodes: [1], restart_after: 0.5s}\n",
      "restart.yaml");
  ASSERT_TRUE(s.crashes.at(0).restart_after_s);
  EXPECT_DOUBLE_EQ(*s.crashes[0].restart_after_s, 0.5);
  EXPECT_NE(mixcast::sim::to_yaml(s).find("restart_after"), std::string::npos);
  EXPECT_EQ(mixcast::sim::run_model(s, {}).restarts, 1u);  // the model engine runs it
  try {
    mixcast::sim::RunBook book(s, "ns3");
    ADD_FAILURE() << "the ns3 engine's run book took a restart it does not simulate";
  } catch (const mixcast::sim::ScenarioError& e) {
    EXPECT_NE(std::string(e.what()).find("crashes[0].restart_after"), std::string::npos) << e.what();
  }
}

TEST(Scenario, MulticastRecoversAtIsParsedCheckedAndWrittenBack) {
  const std::string base = "datacenters:\n  - name: dc\n    subnets:\n      - {name: a, nodes: 4";
  const auto s = mixcast::sim::load_scenario_text(base + ", multicast_fails_at: 1s, multicast_recovers_at: 2.5s}\n", "r.yaml");
  EXPECT_DOUBLE_EQ(s.datacenters[0].subnets[0].multicast_recovers_at_s, 2.5);
  const auto back = mixcast::sim::load_scenario_text(mixcast::sim::to_yaml(s), "back.yaml");
  EXPECT_DOUBLE_EQ(back.datacenters[0].subnets[0].multicast_recovers_at_s, 2.5);
  auto error = [&](const std::string& keys) {
    try {
      mixcast::sim::load_scenario_text(base + keys + "}\n", "r.yaml");
    } catch (const mixcast::sim::ScenarioError& e) {
      return std::string(e.what());
    }
    return std::string("no error");
  };
  EXPECT_NE(error(", multicast_recovers_at: 2s").find("needs multicast_fails_at"), std::string::npos);
  EXPECT_NE(error(", multicast_fails_at: 2s, multicast_recovers_at: 1s").find("must come after multicast_fails_at"),
            std::string::npos);
}
