// mixcast-testbed end to end: a 16-daemon run of scenarios/multi-subnet.yaml writes the
// mixcast-sim outputs with delivery ratio 1, and no mixcastd outlives the testbed, whether the run
// ends normally, by SIGINT mid-run or by SIGKILL of the testbed. Bad input exits 2, failing
// daemons exit 1.
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>

#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>
#include <string>
#include <thread>

#include <nlohmann/json.hpp>

#include "real_test_support.hpp"

namespace mixcast::testbed::test {
namespace {

using namespace std::chrono_literals;
namespace fs = std::filesystem;

class RealTestbed : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/mixcast-tbt-XXXXXX";
    ASSERT_NE(::mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
    tag_ = "MIXCAST_TEST_TAG=" + random_tag();
  }
  void TearDown() override {
    // Whatever happened, nothing tagged by this test may survive it.
    for (pid_t p : processes_with_env(tag_)) ::kill(p, SIGKILL);
    std::error_code ec;
    fs::remove_all(dir_, ec);
  }
  std::unique_ptr<ChildProcess> start(std::vector<std::string> args) {
    args.insert(args.begin(), testbed_binary());
    // TMPDIR: the testbed's work directory lands in ours, removed even after a SIGKILLed run.
    return std::make_unique<ChildProcess>(args, dir_ + "/testbed.txt", std::vector<std::string>{tag_, "TMPDIR=" + dir_});
  }
  int exit_code(ChildProcess& p, std::chrono::seconds timeout) {
    EXPECT_TRUE(p.wait_for(timeout)) << "mixcast-testbed did not finish; its output:\n" << output();
    const int st = p.exit_status().value_or(-1);
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
  }
  std::string output() const { return slurp(dir_ + "/testbed.txt"); }
  std::string scenario() const { return source_dir() + "/scenarios/multi-subnet.yaml"; }
  // The daemons are the tagged processes other than the testbed itself.
  std::size_t tagged() const { return processes_with_env(tag_).size(); }
  bool wait_tagged_at_least(std::size_t n, std::chrono::seconds timeout) const {
    const auto deadline = Clock::now() + timeout;
    while (tagged() < n) {
      if (Clock::now() >= deadline) return false;
      std::this_thread::sleep_for(20ms);
    }
    return true;
  }

  std::string dir_, tag_;
};

class RealTestbedModes : public RealTestbed, public ::testing::WithParamInterface<const char*> {};

TEST_P(RealTestbedModes, MultiSubnetSixteenDaemonsDeliversEverything) {
  const std::string out = dir_ + "/out";
  auto p = start({"run", scenario(), "--net", "loopback", "--nodes", "16", "--mode", GetParam(), "--out", out});
  ASSERT_EQ(exit_code(*p, 60s), 0) << output();
  EXPECT_EQ(tagged(), 0u) << "mixcastd processes outlived the testbed";

  const auto s = nlohmann::json::parse(slurp(out + "/summary.json"));
  EXPECT_EQ(s.at("engine"), "real");
  EXPECT_EQ(s.at("mode"), GetParam());
  EXPECT_EQ(s.at("nodes"), 16);
  EXPECT_EQ(s.at("broadcasts"), 10);
  EXPECT_EQ(s.at("expected"), 160);
  EXPECT_EQ(s.at("delivered"), 160);
  EXPECT_EQ(s.at("delivery_ratio").get<double>(), 1.0);
  EXPECT_EQ(s.at("duplicates"), 0);
  EXPECT_EQ(s.at("testbed").at("payload_mismatches"), 0);
  EXPECT_EQ(s.at("testbed").at("unexpected_deliveries"), 0);
  // No loss, no faults: exactly the bound. 16 nodes: ceil(log2 16) = 4 rounds in TCP mode;
  // 4 islands in mixed mode: ceil(log2 4) + 1 = 3 once the islands are agreed.
  const bool mixed = std::string(GetParam()) == "mixed";
  EXPECT_EQ(s.at("rounds").at("lower_bound"), mixed ? 3 : 4);
  EXPECT_EQ(s.at("rounds").at("max"), s.at("rounds").at("lower_bound")) << s.at("rounds").dump();
  if (mixed) {
    EXPECT_EQ(s.at("islands"), 4);
    EXPECT_EQ(s.at("warmup").at("islands_agreed"), true) << s.dump(2);
  }
  // The CSVs have mixcast-sim's shape: one row per first delivery, one per broadcast.
  const std::string deliveries = slurp(out + "/deliveries.csv");
  EXPECT_EQ(deliveries.rfind("broadcast,node,round,time_s,channel\n", 0), 0u);
  EXPECT_EQ(std::count(deliveries.begin(), deliveries.end(), '\n'), 161);
  const std::string broadcasts = slurp(out + "/broadcasts.csv");
  EXPECT_EQ(broadcasts.rfind("broadcast,origin,seq,start_s,warmup\n", 0), 0u);
  EXPECT_EQ(std::count(broadcasts.begin(), broadcasts.end(), '\n'), 11);
}

INSTANTIATE_TEST_SUITE_P(Modes, RealTestbedModes, ::testing::Values("tcp", "mixed"),
                         [](const ::testing::TestParamInfo<const char*>& p) { return std::string(p.param); });

// The crash plan: `crashes[]` kill -9 the daemons the RunBook picks, at their time. The killed
// daemons deliver nothing started after their kill, every other daemon delivers everything, and
// random picks are the same nodes the model engine crashes for the same scenario and seed.
namespace {
std::vector<std::vector<std::string>> csv_rows(const std::string& text) {
  std::vector<std::vector<std::string>> rows;
  std::istringstream in(text);
  std::string line;
  std::getline(in, line);  // header
  while (std::getline(in, line)) {
    std::vector<std::string> f;
    std::istringstream l(line);
    for (std::string x; std::getline(l, x, ',');) f.push_back(x);
    rows.push_back(f);
  }
  return rows;
}

// Nodes that delivered none of the broadcasts started at or after `from_s` (per broadcasts.csv),
// out of `nodes`.
std::set<NodeId> silent_after(const std::string& out, double from_s, std::uint32_t nodes) {
  std::set<std::uint32_t> late;
  for (const auto& r : csv_rows(slurp(out + "/broadcasts.csv")))
    if (std::stod(r.at(3)) >= from_s) late.insert(static_cast<std::uint32_t>(std::stoul(r.at(0))));
  std::set<NodeId> heard;
  for (const auto& r : csv_rows(slurp(out + "/deliveries.csv")))
    if (late.count(static_cast<std::uint32_t>(std::stoul(r.at(0))))) heard.insert(static_cast<NodeId>(std::stoul(r.at(1))));
  std::set<NodeId> silent;
  for (NodeId i = 0; i < nodes; ++i)
    if (!heard.count(i)) silent.insert(i);
  return silent;
}
}  // namespace

TEST_F(RealTestbed, CrashPlanKillsThePlannedDaemonsAtTheirTime) {
  const std::string out = dir_ + "/out";
  auto p = start({"run", scenario(), "--net", "loopback", "--nodes", "16", "--out", out, "--keep-logs", "--set",
                  "workload.broadcasts=20", "--set", "crashes=[{at: 0.4s, nodes: [3, 9]}]"});
  ASSERT_EQ(exit_code(*p, 60s), 0) << output();
  EXPECT_EQ(tagged(), 0u);
  const auto s = nlohmann::json::parse(slurp(out + "/summary.json"));
  EXPECT_EQ(s.at("crashed"), 2);
  EXPECT_EQ(s.at("expected"), 20 * 14);
  EXPECT_EQ(s.at("delivered"), 20 * 14);
  EXPECT_EQ(s.at("duplicates"), 0);
  EXPECT_EQ(s.at("testbed").at("missing_deliveries"), 0);
  // Exactly nodes 3 and 9 went quiet at 0.4 s; the others heard every later broadcast.
  EXPECT_EQ(silent_after(out, 0.4, 16), (std::set<NodeId>{3, 9}));
  EXPECT_TRUE(silent_after(out, 0.0, 16).empty()) << "every node delivered the first broadcasts";
  // Their own delivery logs stop there too (a crashed origin's turn went to a live node).
  for (const char* n : {"n3", "n9"}) {
    const auto rows = csv_rows(slurp(out + "/daemons/" + n + ".deliveries.csv"));
    EXPECT_GT(rows.size(), 0u) << n;
    EXPECT_LE(rows.size(), 9u) << n << ": delivered more than the broadcasts started before 0.4 s";
  }
  for (const auto& r : csv_rows(slurp(out + "/broadcasts.csv")))
    if (std::stod(r.at(3)) >= 0.4) {
      EXPECT_TRUE(r.at(1) != "3" && r.at(1) != "9") << "a killed daemon broadcast";
    }
}

#ifdef MIXCAST_SIM_BINARY
TEST_F(RealTestbed, RandomCrashesHitTheNodesTheModelEngineCrashes) {
  const std::vector<std::string> set = {"--set", "workload.broadcasts=20", "--set", "crashes=[{at: 0.3s, count: 3}]"};
  const std::string out = dir_ + "/real", model = dir_ + "/model";
  std::vector<std::string> args = {"run", scenario(), "--net", "loopback", "--nodes", "16", "--out", out};
  args.insert(args.end(), set.begin(), set.end());
  auto p = start(args);
  ASSERT_EQ(exit_code(*p, 60s), 0) << output();
  std::string cmd = std::string(MIXCAST_SIM_BINARY) + " run '" + scenario() + "' --engine model --nodes 16 -q --out '" +
                    model + "'";
  for (const auto& a : set) cmd += " '" + a + "'";
  ASSERT_EQ(std::system((cmd + " > /dev/null").c_str()), 0) << cmd;
  const auto s = nlohmann::json::parse(slurp(out + "/summary.json"));
  EXPECT_EQ(s.at("crashed"), 3);
  EXPECT_EQ(s.at("delivery_ratio").get<double>(), 1.0);
  EXPECT_EQ(s.at("expected"), 20 * 13);
  const auto victims = silent_after(model, 0.3, 16);
  EXPECT_EQ(victims.size(), 3u);
  EXPECT_EQ(silent_after(out, 0.3, 16), victims);
  // Same origins too: the RunBook is shared.
  EXPECT_EQ(slurp(out + "/broadcasts.csv").size() > 0, true);
  const auto real_b = csv_rows(slurp(out + "/broadcasts.csv")), model_b = csv_rows(slurp(model + "/broadcasts.csv"));
  ASSERT_EQ(real_b.size(), model_b.size());
  for (std::size_t i = 0; i < real_b.size(); ++i) EXPECT_EQ(real_b[i].at(1), model_b[i].at(1)) << "broadcast " << i;
}
#endif

// crashes[].restart_after (and --restart-after for entries without it): the testbed kills the
// daemon, starts it again, and the restarted daemon delivers every broadcast started once it is back.
TEST_P(RealTestbedModes, CrashWithRestartAfterRestartsTheDaemon) {
  const std::string scen = dir_ + "/restart.yaml";
  {
    std::ofstream(scen) << "name: restart\nseed: 3\ntime_limit: 30s\n"
                           "datacenters:\n  - name: dc\n    subnets:\n"
                           "      - {name: a, nodes: 2, multicast: true}\n      - {name: b, nodes: 2, multicast: true}\n"
                           "workload: {broadcasts: 30, rate: 10, origins: [0, 2]}\n"
                           "crashes:\n  - {at: 0.2s, nodes: [1], restart_after: 0.5s}\n  - {at: 0.4s, nodes: [3]}\n";
  }
  const std::string out = dir_ + "/out";
  auto p = start({"run", scen, "--net", "loopback", "--mode", GetParam(), "--restart-after", "300ms", "--out", out});
  ASSERT_EQ(exit_code(*p, 60s), 0) << output();
  EXPECT_EQ(tagged(), 0u);
  const auto s = nlohmann::json::parse(slurp(out + "/summary.json"));
  const auto& tb = s.at("testbed");
  ASSERT_EQ(tb.at("restarts").size(), 2u) << tb.dump(2);
  std::set<std::uint64_t> nodes;
  for (const auto& r : tb.at("restarts")) {
    nodes.insert(r.at("node").get<std::uint64_t>());
    EXPECT_GT(r.at("incarnation").get<std::uint64_t>(), 1u);
  }
  EXPECT_EQ(nodes, (std::set<std::uint64_t>{1, 3}));
  EXPECT_EQ(tb.at("missing_deliveries"), 0) << tb.dump(2);
  EXPECT_EQ(tb.at("timed_out"), false);
  EXPECT_EQ(tb.at("unexpected_deliveries"), 0);
  EXPECT_EQ(s.at("duplicates"), 0);
}

TEST_F(RealTestbed, RestartAfterFlagIsChecked) {
  auto p = start({"run", scenario(), "--net", "loopback", "--nodes", "4", "--restart-after", "soon", "--out", dir_ + "/o"});
  EXPECT_EQ(exit_code(*p, 30s), 2);
  EXPECT_NE(output().find("--restart-after must be a duration"), std::string::npos) << output();
}

TEST_F(RealTestbed, SigintMidRunStopsEveryDaemon) {
  const std::string out = dir_ + "/out";
  auto p = start({"run", scenario(), "--net", "loopback", "--nodes", "16", "--out", out, "--set",
                  "workload.broadcasts=100000", "--set", "workload.rate=200"});
  ASSERT_TRUE(wait_tagged_at_least(17, 20s)) << "the daemons did not start\n" << output();
  std::this_thread::sleep_for(700ms);  // broadcasts are flowing now
  ASSERT_TRUE(p->running()) << output();
  ::kill(p->pid(), SIGINT);  // like Ctrl-C: the testbed only (its daemons are in groups of their own)
  EXPECT_EQ(exit_code(*p, 15s), 130) << output();
  EXPECT_EQ(tagged(), 0u) << "mixcastd processes outlived the interrupted testbed";
  EXPECT_NE(output().find("interrupted"), std::string::npos) << output();
  EXPECT_FALSE(fs::exists(out + "/summary.json"));
}

TEST_F(RealTestbed, SigkillOfTheTestbedTakesItsDaemonsAlong) {
  auto p = start({"run", scenario(), "--net", "loopback", "--nodes", "16", "--out", dir_ + "/out", "--set",
                  "workload.broadcasts=100000", "--set", "workload.rate=200"});
  ASSERT_TRUE(wait_tagged_at_least(17, 20s)) << output();
  p->signal_group(SIGKILL);  // no handler runs: the kernel's parent-death signal must do it
  ASSERT_TRUE(p->wait_for(5s));
  const auto deadline = Clock::now() + 5s;
  while (tagged() > 0 && Clock::now() < deadline) std::this_thread::sleep_for(20ms);
  EXPECT_EQ(tagged(), 0u) << "daemons survived a SIGKILLed testbed";
}

TEST_F(RealTestbed, BadInputExitsTwoNamingTheProblem) {
  struct Case {
    std::vector<std::string> args;
    std::string names;
  };
  const std::vector<Case> cases = {
      {{"run", dir_ + "/missing.yaml", "--net", "loopback"}, "missing.yaml"},
      {{"run", scenario(), "--net", "carrier-pigeon"}, "--net"},
      {{"run", scenario()}, "--net"},
      {{"run", scenario(), "--net", "loopback", "--mode", "udp"}, "--mode"},
      {{"run", scenario(), "--net", "loopback", "--nodes", "0"}, "--nodes"},
      {{"run", scenario(), "--net", "loopback", "--nodes", "100000"}, "--nodes"},
      {{"run", scenario(), "--net", "loopback", "--set", "workload.rate=-3"}, "workload.rate"},
      {{"run", scenario(), "--net", "loopback", "--set", "nonsense"}, "--set"},
      {{"run", scenario(), "--net", "loopback", "--daemon", dir_ + "/no-such-mixcastd"}, "--daemon"},
  };
  for (const auto& c : cases) {
    fs::remove(dir_ + "/testbed.txt");
    auto p = start(c.args);
    EXPECT_EQ(exit_code(*p, 20s), 2) << output();
    EXPECT_NE(output().find(c.names), std::string::npos) << "expected '" << c.names << "' in: " << output();
  }
  EXPECT_EQ(tagged(), 0u);
}

TEST_F(RealTestbed, FailingDaemonsExitOne) {
  // A "daemon" that exits at once: the testbed reports it and stops the rest.
  auto p = start({"run", scenario(), "--net", "loopback", "--nodes", "4", "--out", dir_ + "/out", "--daemon",
                  "/bin/false"});
  EXPECT_EQ(exit_code(*p, 30s), 1) << output();
  EXPECT_NE(output().find("exited with code 1"), std::string::npos) << output();
  EXPECT_EQ(tagged(), 0u);
}

}  // namespace
}  // namespace mixcast::testbed::test
