// mixcast-testbed --net netns end to end: real daemons in namespaces with real multicast, NAT and
// loss. Rounds must equal the model engine's for the same scenario and seed. Root only (CI is root).
#include <gtest/gtest.h>

#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>
#include <vector>
#include <thread>

#include "mixcast/sim/model_engine.hpp"
#include "mixcast/sim/scenario.hpp"
#include "netns_lab.hpp"

using namespace mixcast;
namespace fs = std::filesystem;

namespace {

#define REQUIRE_ROOT() \
  if (!real::NetnsLab::have_root()) GTEST_SKIP() << "needs root: creates network namespaces (CI runs as root)"

std::string scenario_path(const std::string& name) { return std::string(MIXCAST_SOURCE_DIR) + "/scenarios/" + name + ".yaml"; }

struct TestbedRun {
  int exit_code = -1;
  nlohmann::json summary;
  std::string log;                       // the testbed's progress notes and summary, for failures
  std::vector<std::string> deliveries;   // deliveries.csv rows (header first)
  // The deliveries.csv rows whose round is above `round`, to show where a run took longer.
  std::string rows_above(std::uint32_t round) const {
    std::string out;
    for (std::size_t i = 1; i < deliveries.size(); ++i) {
      std::stringstream row(deliveries[i]);
      std::string broadcast, node, r;
      if (std::getline(row, broadcast, ',') && std::getline(row, node, ',') && std::getline(row, r, ',') &&
          std::stoul(r) > round)
        out += deliveries[i] + "\n";
    }
    return deliveries.empty() ? "" : deliveries.front() + "\n" + out;
  }
};

// Runs the testbed and reads the summary.json it wrote.
TestbedRun testbed(const std::string& scenario, const std::vector<std::string>& args) {
  const fs::path out = fs::temp_directory_path() / ("mixcast-netns-test-" + std::to_string(getpid()));
  fs::remove_all(out);
  // Not quiet: the progress notes (island gate, crashes) explain a failure.
  std::string cmd = std::string(MIXCAST_TESTBED_BINARY) + " run " + scenario_path(scenario) + " --net netns --out " +
                    out.string();
  for (const auto& a : args) cmd += " " + a;
  cmd += " > " + (out.string() + ".log") + " 2>&1";
  TestbedRun r;
  const int status = std::system(cmd.c_str());
  r.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  {
    std::ifstream log(out.string() + ".log");
    r.log.assign(std::istreambuf_iterator<char>(log), {});
  }
  std::ifstream in(out / "summary.json");
  if (in) in >> r.summary;
  else std::cerr << "testbed output:\n" << r.log;
  std::ifstream rows(out / "deliveries.csv");
  for (std::string line; std::getline(rows, line);) r.deliveries.push_back(line);
  fs::remove_all(out);
  fs::remove(out.string() + ".log");
  return r;
}

std::uint32_t model_rounds(const std::string& scenario, std::uint32_t nodes, const std::string& mode) {
  sim::Scenario s = sim::load_scenario(scenario_path(scenario), {"protocol.mode=" + mode});
  sim::rescale(s, nodes);
  sim::validate(s);
  const auto r = sim::run_model(s);
  std::uint32_t max = 0;
  for (const auto& d : r.deliveries)
    if (!r.broadcasts[d.broadcast].warmup) max = std::max(max, d.round);
  return max;
}

std::size_t mixcastd_processes() {
  std::size_t n = 0;
  for (const auto& e : fs::directory_iterator("/proc")) {
    std::ifstream comm(e.path() / "comm");
    std::string name;
    if (comm >> name && name == "mixcastd") ++n;
  }
  return n;
}

}  // namespace

class NetnsTestbed : public ::testing::TestWithParam<std::tuple<const char*, std::uint32_t, const char*>> {};

TEST_P(NetnsTestbed, DeliversEverythingInTheModelsRounds) {
  REQUIRE_ROOT();
  const auto [scenario, nodes, mode] = GetParam();
  const TestbedRun r = testbed(scenario, {"--nodes", std::to_string(nodes), "--mode", mode});
  ASSERT_EQ(r.exit_code, 0) << r.log;
  EXPECT_EQ(r.summary["engine"], "real");
  EXPECT_EQ(r.summary["delivery_ratio"], 1.0) << r.log;
  EXPECT_EQ(r.summary["duplicates"], 0);
  const std::uint32_t model = model_rounds(scenario, nodes, mode);
  EXPECT_EQ(r.summary["rounds"]["max"], model) << r.summary["rounds"].dump() << "\n"
                                               << r.log << "deliveries above round " << model << ":\n"
                                               << r.rows_above(model);
  EXPECT_TRUE(real::NetnsLab::existing_namespaces().empty());
}

INSTANTIATE_TEST_SUITE_P(Scenarios, NetnsTestbed,
                         ::testing::Values(std::make_tuple("multi-subnet", 32u, "tcp"),
                                           std::make_tuple("multi-subnet", 32u, "mixed"),
                                           std::make_tuple("nat", 40u, "tcp"),
                                           std::make_tuple("nat", 40u, "mixed")),
                         [](const auto& p) {
                           std::string n = std::string(std::get<0>(p.param)) + "_" + std::get<2>(p.param);
                           for (auto& c : n) c = c == '-' ? '_' : c;
                           return n;
                         });

TEST(NetnsTestbedLoss, LossyScenarioDeliversEverythingWithRepairs) {
  REQUIRE_ROOT();
  // 5% multicast loss (iptables statistic match) in every subnet, forced TCP copies 5%.
  const TestbedRun r = testbed("lossy", {"--nodes", "48"});
  ASSERT_EQ(r.exit_code, 0);
  EXPECT_EQ(r.summary["delivery_ratio"], 1.0);
  EXPECT_EQ(r.summary["duplicates"], 0);
  EXPECT_GT(r.summary["transport"]["counters"]["repair_requests"].get<std::uint64_t>(), 0u) << "no multicast was lost";
  EXPECT_GT(r.summary["repairs"]["whole_run"].get<std::uint64_t>() + r.summary["forced_tcp"]["whole_run"].get<std::uint64_t>(), 0u);
}

TEST(NetnsTestbedCleanup, InterruptedRunLeavesNoNamespaceNorDaemon) {
  REQUIRE_ROOT();
  const std::size_t daemons_before = mixcastd_processes();
  const pid_t pid = fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    // Long enough to be interrupted mid-stream.
    execl(MIXCAST_TESTBED_BINARY, MIXCAST_TESTBED_BINARY, "run", scenario_path("lossy").c_str(), "--net", "netns",
          "--nodes", "32", "-q", "--set", "workload.broadcasts=100000", "--set", "workload.rate=20", "--out",
          (fs::temp_directory_path() / ("mixcast-netns-int-" + std::to_string(getpid()))).c_str(), nullptr);
    _exit(127);
  }
  const std::string tag = std::string(real::NetnsLab::kPrefix) + std::to_string(pid) + "-";
  auto mine = [&] {
    std::size_t n = 0;
    for (const auto& ns : real::NetnsLab::existing_namespaces()) n += ns.rfind(tag, 0) == 0;
    return n;
  };
  // Wait until its network and daemons are up, then interrupt it.
  for (int i = 0; i < 200 && mixcastd_processes() < daemons_before + 32; ++i)
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  EXPECT_GT(mine(), 32u);
  std::this_thread::sleep_for(std::chrono::seconds(1));
  kill(pid, SIGINT);
  int status = 0;
  waitpid(pid, &status, 0);
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 130) << "status " << status;
  EXPECT_EQ(mine(), 0u);
  EXPECT_EQ(mixcastd_processes(), daemons_before);
}
