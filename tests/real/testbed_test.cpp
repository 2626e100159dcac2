// mixcast-testbed end to end: a 16-daemon run of scenarios/multi-subnet.yaml writes the
// mixcast-sim outputs with delivery ratio 1, and no mixcastd outlives the testbed, whether the run
// ends normally, by SIGINT mid-run or by SIGKILL of the testbed. Bad input exits 2, failing
// daemons exit 1.
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>

#include <filesystem>
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
  // 16 nodes: at least ceil(log2 16) = 4 rounds in TCP mode, 4 islands + 1 in mixed mode.
  EXPECT_GE(s.at("rounds").at("max").get<int>(), s.at("rounds").at("lower_bound").get<int>());
  if (std::string(GetParam()) == "mixed") {
    EXPECT_EQ(s.at("islands"), 4);
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
