// summarize(), write_outputs() and human_summary() on hand-built RunResults.
#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>

#include "mixcast/sim/metrics.hpp"

namespace mixcast::sim {
namespace {

Scenario scenario_with(std::uint32_t nodes, Mode mode) {
  Scenario s = single_subnet_scenario(nodes, "hand-built");
  s.seed = 42;
  s.protocol.mode = mode;
  return s;
}

BroadcastRecord bcast(std::uint32_t index, NodeId origin, bool warmup) {
  BroadcastRecord b;
  b.index = index;
  b.origin = origin;
  b.seq = index + 1;
  b.start_s = 0.5 * index;
  b.warmup = warmup;
  return b;
}

DeliveryRecord deliver(std::uint32_t b, NodeId node, std::uint32_t round, double t, Channel ch = Channel::tcp) {
  DeliveryRecord d;
  d.broadcast = b;
  d.node = node;
  d.round = round;
  d.time_s = t;
  d.channel = ch;
  return d;
}

Traffic traffic(std::uint64_t tcp_msgs, std::uint64_t tcp_bytes, std::uint64_t mc_msgs, std::uint64_t mc_bytes) {
  Traffic t;
  t.tcp_messages = tcp_msgs;
  t.tcp_bytes = tcp_bytes;
  t.multicast_messages = mc_msgs;
  t.multicast_bytes = mc_bytes;
  return t;
}

// 4 nodes, node 3 crashed; broadcast 0 is warm-up, 1 and 2 are measured.
RunResult sample() {
  RunResult r;
  r.engine = "model";
  r.scenario = scenario_with(4, Mode::tcp);
  r.crashed_at_s = {-1, -1, -1, 0.25};
  r.broadcasts = {bcast(0, 0, true), bcast(1, 0, false), bcast(2, 1, false)};
  r.deliveries = {
      deliver(0, 0, 0, 0.0, Channel::local), deliver(0, 1, 5, 0.100), deliver(0, 2, 7, 0.200),
      deliver(1, 0, 0, 0.0, Channel::local), deliver(1, 1, 1, 0.001), deliver(1, 3, 1, 0.005),  // node 3 crashed
      deliver(1, 2, 2, 0.002),              deliver(2, 1, 0, 0.0, Channel::local),
      deliver(2, 0, 1, 0.003, Channel::multicast),
  };
  r.traffic = {traffic(10, 1000, 0, 0), traffic(2, 200, 1, 50), traffic(1, 100, 0, 0)};
  r.control = traffic(7, 700, 3, 30);
  r.duplicates = 0;
  r.repairs = 2;
  r.forced_tcp = 3;
  r.redelegations = 4;
  r.bad_frames = 5;
  r.islands = 3;
  r.simulated_s = 1.5;
  r.wall_s = 0.01;
  r.events = 99;
  return r;
}

TEST(Metrics, HasEveryRequiredKey) {
  const nlohmann::json j = summarize(sample());
  for (const char* key :
       {"engine", "mode", "scenario", "nodes", "broadcasts", "seed", "expected", "delivered", "delivery_ratio",
        "duplicates", "rounds", "time_to_last_delivery_s", "messages", "bytes", "bytes_per_broadcast", "islands",
        "repairs", "forced_tcp", "redelegations", "bad_frames", "crashed", "simulated_s", "wall_s", "events",
        "warmup"}) {
    EXPECT_TRUE(j.contains(key)) << key;
  }
  for (const char* key : {"max", "p50", "p99", "lower_bound"}) EXPECT_TRUE(j["rounds"].contains(key)) << key;
  for (const char* key : {"p50", "p99", "max"}) EXPECT_TRUE(j["time_to_last_delivery_s"].contains(key)) << key;
  for (const char* key : {"tcp", "multicast"}) {
    EXPECT_TRUE(j["messages"].contains(key)) << key;
    EXPECT_TRUE(j["bytes"].contains(key)) << key;
  }
  for (const char* key : {"tcp", "multicast", "total"}) EXPECT_TRUE(j["bytes_per_broadcast"].contains(key)) << key;
  for (const char* key : {"broadcasts", "expected", "delivered", "delivery_ratio", "rounds", "bytes"}) {
    EXPECT_TRUE(j["warmup"].contains(key)) << key;
  }
}

TEST(Metrics, RatioExcludesCrashedNodesAndWarmup) {
  const nlohmann::json j = summarize(sample());
  EXPECT_EQ(j["engine"], "model");
  EXPECT_EQ(j["mode"], "tcp");
  EXPECT_EQ(j["scenario"], "hand-built");
  EXPECT_EQ(j["seed"], 42u);
  EXPECT_EQ(j["nodes"], 4u);
  EXPECT_EQ(j["crashed"], 1u);
  EXPECT_EQ(j["broadcasts"], 2u);
  EXPECT_EQ(j["expected"], 6u);   // 2 measured broadcasts x 3 live nodes
  EXPECT_EQ(j["delivered"], 5u);  // b1: nodes 0,1,2; b2: nodes 1,0 (node 3 crashed: not counted)
  EXPECT_DOUBLE_EQ(j["delivery_ratio"].get<double>(), 5.0 / 6.0);
  EXPECT_EQ(j["repairs"]["whole_run"], 2u);
  EXPECT_EQ(j["forced_tcp"]["whole_run"], 3u);
  EXPECT_EQ(j["redelegations"], 4u);
  EXPECT_EQ(j["bad_frames"], 5u);
  EXPECT_EQ(j["islands"], 3u);
  EXPECT_EQ(j["events"], 99u);
}

TEST(Metrics, RepairsAndForcedTcpCountMeasuredBroadcastsApartFromWarmup) {
  RunResult r = sample();
  r.traffic[0].repair_messages = 100;  // warm-up
  r.traffic[0].forced_messages = 50;
  r.traffic[1].repair_messages = 3;
  r.traffic[1].repair_bytes = 90;
  r.traffic[1].delivered_by_repair = 2;
  r.traffic[2].forced_messages = 4;
  r.traffic[2].forced_bytes = 120;
  r.traffic[2].delivered_by_forced = 1;
  r.control.repair_messages = 7;
  const nlohmann::json j = summarize(r);
  EXPECT_EQ(j["repairs"]["messages"], 3u);
  EXPECT_EQ(j["repairs"]["bytes"], 90u);
  EXPECT_DOUBLE_EQ(j["repairs"]["bytes_per_broadcast"].get<double>(), 45.0);
  EXPECT_EQ(j["repairs"]["delivered"], 2u);
  EXPECT_EQ(j["forced_tcp"]["messages"], 4u);
  EXPECT_EQ(j["forced_tcp"]["bytes"], 120u);
  EXPECT_EQ(j["forced_tcp"]["delivered"], 1u);
  EXPECT_EQ(j["warmup"]["repairs"], 100u);
  EXPECT_EQ(j["warmup"]["forced_tcp"], 50u);
  EXPECT_EQ(j["control"]["repairs"], 7u);
}

TEST(Metrics, RoundsTimesAndTrafficCoverMeasuredBroadcastsOnly) {
  const nlohmann::json j = summarize(sample());
  // Measured rounds, sorted: 0 0 1 1 2 (the warm-up's 5 and 7 are not included).
  EXPECT_EQ(j["rounds"]["max"], 2u);
  EXPECT_EQ(j["rounds"]["p50"], 1u);  // rank ceil(0.50 * 5) = 3
  EXPECT_EQ(j["rounds"]["p99"], 2u);  // rank ceil(0.99 * 5) = 5
  // Last delivery per measured broadcast: b1 0.002 (crashed node 3's 0.005 excluded), b2 0.003.
  EXPECT_DOUBLE_EQ(j["time_to_last_delivery_s"]["p50"].get<double>(), 0.002);
  EXPECT_DOUBLE_EQ(j["time_to_last_delivery_s"]["p99"].get<double>(), 0.003);
  EXPECT_DOUBLE_EQ(j["time_to_last_delivery_s"]["max"].get<double>(), 0.003);
  EXPECT_EQ(j["messages"]["tcp"], 3u);
  EXPECT_EQ(j["messages"]["multicast"], 1u);
  EXPECT_EQ(j["bytes"]["tcp"], 300u);
  EXPECT_EQ(j["bytes"]["multicast"], 50u);
  EXPECT_DOUBLE_EQ(j["bytes_per_broadcast"]["tcp"].get<double>(), 150.0);
  EXPECT_DOUBLE_EQ(j["bytes_per_broadcast"]["multicast"].get<double>(), 25.0);
  EXPECT_DOUBLE_EQ(j["bytes_per_broadcast"]["total"].get<double>(), 175.0);
}

TEST(Metrics, WarmupIsSummarisedApart) {
  const nlohmann::json w = summarize(sample())["warmup"];
  EXPECT_EQ(w["broadcasts"], 1u);
  EXPECT_EQ(w["expected"], 3u);
  EXPECT_EQ(w["delivered"], 3u);
  EXPECT_DOUBLE_EQ(w["delivery_ratio"].get<double>(), 1.0);
  EXPECT_EQ(w["rounds"]["max"], 7u);
  EXPECT_EQ(w["bytes"]["tcp"], 1000u);
  EXPECT_EQ(w["bytes"]["multicast"], 0u);
}

TEST(Metrics, NearestRankPercentiles) {
  for (std::uint32_t n : {10u, 100u, 7u}) {
    RunResult r;
    r.engine = "model";
    r.scenario = scenario_with(n, Mode::tcp);
    r.crashed_at_s.assign(n, -1);
    r.broadcasts = {bcast(0, 0, false)};
    for (std::uint32_t i = 0; i < n; ++i) r.deliveries.push_back(deliver(0, i, i + 1, 0.001 * i));
    const nlohmann::json j = summarize(r);
    // Rounds are 1..n: nearest rank p -> ceil(p * n / 100).
    const auto rank = [n](std::uint32_t p) { return (p * n + 99) / 100; };
    EXPECT_EQ(j["rounds"]["max"], n) << n;
    EXPECT_EQ(j["rounds"]["p50"], rank(50)) << n;
    EXPECT_EQ(j["rounds"]["p99"], rank(99)) << n;
  }
  // Spot values: 10 -> p50 5, p99 10; 100 -> p50 50, p99 99.
  EXPECT_EQ((50u * 10 + 99) / 100, 5u);
  EXPECT_EQ((99u * 100 + 99) / 100, 99u);
}

TEST(Metrics, LowerBounds) {
  auto bound = [](std::uint32_t nodes, Mode mode, std::uint32_t islands, std::uint32_t crashed = 0) {
    RunResult r;
    r.scenario = scenario_with(nodes, mode);
    r.crashed_at_s.assign(nodes, -1);
    for (std::uint32_t i = 0; i < crashed; ++i) r.crashed_at_s[i] = 1.0;
    r.islands = islands;
    return summarize(r)["rounds"]["lower_bound"].get<std::uint32_t>();
  };
  EXPECT_EQ(bound(1, Mode::tcp, 0), 0u);
  EXPECT_EQ(bound(2, Mode::tcp, 0), 1u);
  EXPECT_EQ(bound(8, Mode::tcp, 0), 3u);
  EXPECT_EQ(bound(9, Mode::tcp, 0), 4u);
  EXPECT_EQ(bound(1000, Mode::tcp, 0), 10u);
  EXPECT_EQ(bound(9, Mode::tcp, 0, 1), 3u);   // n counts live nodes only
  EXPECT_EQ(bound(64, Mode::mixed, 1), 1u);   // one island: one multicast
  EXPECT_EQ(bound(64, Mode::mixed, 5), 4u);   // ceil(log2 5) + 1
  EXPECT_EQ(bound(64, Mode::mixed, 8), 4u);
  EXPECT_EQ(bound(8, Mode::mixed, 0), 4u);    // islands unknown: every node an island
}

TEST(Metrics, EmptyRunIsWellDefined) {
  RunResult r;
  r.engine = "model";
  r.scenario = scenario_with(3, Mode::tcp);
  const nlohmann::json j = summarize(r);
  EXPECT_EQ(j["broadcasts"], 0u);
  EXPECT_EQ(j["expected"], 0u);
  EXPECT_DOUBLE_EQ(j["delivery_ratio"].get<double>(), 1.0);
  EXPECT_EQ(j["rounds"]["max"], 0u);
  EXPECT_DOUBLE_EQ(j["time_to_last_delivery_s"]["max"].get<double>(), 0.0);
  EXPECT_DOUBLE_EQ(j["bytes_per_broadcast"]["total"].get<double>(), 0.0);
  EXPECT_DOUBLE_EQ(j["warmup"]["delivery_ratio"].get<double>(), 1.0);
}

std::string slurp(const std::filesystem::path& p) {
  std::ifstream f(p, std::ios::binary);
  std::stringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

std::filesystem::path scratch_dir(const std::string& name) {
  auto p = std::filesystem::temp_directory_path() / ("mixcast-metrics-test-" + std::to_string(::getpid()) + "-" + name);
  std::filesystem::remove_all(p);
  return p;
}

TEST(Metrics, WriteOutputs) {
  const RunResult r = sample();
  const nlohmann::json j = summarize(r);
  const auto dir = scratch_dir("out");
  write_outputs(r, j, (dir / "nested").string());

  EXPECT_EQ(nlohmann::json::parse(slurp(dir / "nested" / "summary.json")), j);
  const std::string deliveries = slurp(dir / "nested" / "deliveries.csv");
  EXPECT_EQ(deliveries.substr(0, deliveries.find('\n')), "broadcast,node,round,time_s,channel");
  EXPECT_NE(deliveries.find("\n0,0,0,0.000000000,local\n"), std::string::npos) << deliveries;
  EXPECT_NE(deliveries.find("\n1,2,2,0.002000000,tcp\n"), std::string::npos) << deliveries;
  EXPECT_NE(deliveries.find("\n2,0,1,0.003000000,multicast\n"), std::string::npos) << deliveries;
  EXPECT_EQ(std::count(deliveries.begin(), deliveries.end(), '\n'), 1 + 9);  // warm-up rows included
  EXPECT_EQ(slurp(dir / "nested" / "broadcasts.csv"),
            "broadcast,origin,seq,start_s,warmup\n"
            "0,0,1,0.000000000,1\n"
            "1,0,2,0.500000000,0\n"
            "2,1,3,1.000000000,0\n");

  // Same result -> byte-identical files.
  write_outputs(r, j, (dir / "again").string());
  for (const char* f : {"summary.json", "deliveries.csv", "broadcasts.csv"}) {
    EXPECT_EQ(slurp(dir / "nested" / f), slurp(dir / "again" / f)) << f;
  }
  std::filesystem::remove_all(dir);
}

TEST(Metrics, UnwritableDirectoryIsAnOutputError) {
  const auto dir = scratch_dir("file");
  std::filesystem::create_directories(dir);
  { std::ofstream(dir / "plain-file") << "x"; }
  const std::string bad = (dir / "plain-file" / "sub").string();
  try {
    write_outputs(sample(), summarize(sample()), bad);
    FAIL() << "expected OutputError";
  } catch (const OutputError& e) {
    EXPECT_NE(std::string(e.what()).find(bad), std::string::npos) << e.what();
  }
  std::filesystem::remove_all(dir);
}

TEST(Metrics, HumanSummaryIsShortAndNamesTheFigures) {
  const std::string text = human_summary(summarize(sample()));
  const auto lines = std::count(text.begin(), text.end(), '\n');
  EXPECT_GE(lines, 4);
  EXPECT_LE(lines, 8);
  EXPECT_NE(text.find("model"), std::string::npos) << text;
  EXPECT_NE(text.find("4 nodes"), std::string::npos) << text;
  EXPECT_NE(text.find("delivered 5 of 6"), std::string::npos) << text;
  EXPECT_NE(text.find("lower bound 2"), std::string::npos) << text;
  EXPECT_NE(text.find("bytes per broadcast: tcp 150.0, multicast 25.0"), std::string::npos) << text;
  EXPECT_EQ(text.find("links:"), std::string::npos) << "the model engine has no links";
}

TEST(Metrics, HumanSummaryShowsLinkFiguresOfPacketLevelRuns) {
  RunResult r = sample();
  r.engine = "ns3";
  r.links = {{"lan:dc/a", LinkKind::lan}, {"wan:dc>far", LinkKind::wan}};
  r.link_rounds = {{0, 1, Channel::tcp, 400, 4}, {0, 2, Channel::tcp, 900, 9}, {1, 1, Channel::tcp, 300, 3}};
  const std::string text = human_summary(summarize(r));
  EXPECT_NE(text.find("lan links:"), std::string::npos) << text;
  EXPECT_NE(text.find("busiest lan:dc/a in round 2"), std::string::npos) << text;
  EXPECT_NE(text.find("wan links:"), std::string::npos) << text;
  EXPECT_EQ(text.find("nat links:"), std::string::npos) << text;
}

}  // namespace
}  // namespace mixcast::sim
