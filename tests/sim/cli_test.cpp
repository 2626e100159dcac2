// End-to-end tests of the mixcast-sim binary: outputs, exit codes, error messages,
// reproducibility and sweeps. MIXCAST_SIM_BINARY and MIXCAST_SOURCE_DIR come from CMake.
#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "mixcast/core/types.hpp"

namespace {

namespace fs = std::filesystem;

std::string slurp(const fs::path& p) {
  std::ifstream f(p, std::ios::binary);
  std::stringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

std::string quote(const std::string& s) {
  std::string out = "'";
  for (char c : s) {
    if (c == '\'') {
      out += "'\\''";
    } else {
      out += c;
    }
  }
  return out + "'";
}

std::vector<std::string> lines_of(const std::string& text) {
  std::vector<std::string> lines;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) lines.push_back(line);
  return lines;
}

struct Outcome {
  int code = -1;
  std::string out, err;
};

// A tiny scenario in case scenarios/lan.yaml is not there.
constexpr const char* kTinyScenario = R"(name: cli-test-tiny
seed: 3
datacenters:
  - name: dc1
    subnets:
      - name: lan
        nodes: 8
protocol:
  mode: tcp
workload:
  broadcasts: 3
)";

class Cli : public ::testing::Test {
 protected:
  void SetUp() override {
    const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
    dir_ = fs::temp_directory_path() /
           ("mixcast-cli-test-" + std::to_string(::getpid()) + "-" + info->name());
    fs::remove_all(dir_);
    fs::create_directories(dir_);
    const fs::path lan = fs::path(MIXCAST_SOURCE_DIR) / "scenarios" / "lan.yaml";
    if (fs::exists(lan)) {
      scenario_ = lan;
    } else {
      scenario_ = dir_ / "tiny.yaml";
      std::ofstream(scenario_) << kTinyScenario;
    }
  }
  void TearDown() override {
    std::error_code ec;
    fs::remove_all(dir_, ec);
  }

  // Runs mixcast-sim with `args` (already shell-quoted where needed) in `cwd` (default: dir_).
  Outcome run(const std::string& args, const fs::path& cwd = {}) const {
    const fs::path out = dir_ / "stdout.txt", err = dir_ / "stderr.txt";
    const std::string cmd = "cd " + quote((cwd.empty() ? dir_ : cwd).string()) + " && " +
                            quote(MIXCAST_SIM_BINARY) + " " + args + " >" + quote(out.string()) + " 2>" +
                            quote(err.string()) + " </dev/null";
    const int status = std::system(cmd.c_str());
    Outcome o;
    o.code = (status != -1 && WIFEXITED(status)) ? WEXITSTATUS(status) : -1;
    o.out = slurp(out);
    o.err = slurp(err);
    return o;
  }

  std::string scenario() const { return quote(scenario_.string()); }
  std::string small() const { return scenario() + " --set workload.broadcasts=3"; }

  fs::path dir_;
  fs::path scenario_;
};

void expect_summary_keys(const nlohmann::json& j) {
  for (const char* key :
       {"engine", "mode", "scenario", "nodes", "broadcasts", "seed", "expected", "delivered", "delivery_ratio",
        "duplicates", "rounds", "time_to_last_delivery_s", "messages", "bytes", "bytes_per_broadcast", "islands",
        "repairs", "forced_tcp", "redelegations", "bad_frames", "crashed", "simulated_s", "wall_s", "events",
        "warmup"}) {
    EXPECT_TRUE(j.contains(key)) << "summary.json lacks " << key;
  }
  for (const char* key : {"max", "p50", "p99", "lower_bound"}) EXPECT_TRUE(j["rounds"].contains(key)) << key;
  for (const char* key : {"p50", "p99", "max"}) EXPECT_TRUE(j["time_to_last_delivery_s"].contains(key)) << key;
  for (const char* key : {"tcp", "multicast"}) {
    EXPECT_TRUE(j["messages"].contains(key)) << key;
    EXPECT_TRUE(j["bytes"].contains(key)) << key;
  }
  for (const char* key : {"tcp", "multicast", "total"}) EXPECT_TRUE(j["bytes_per_broadcast"].contains(key)) << key;
  for (const char* key : {"broadcasts", "expected", "delivered", "delivery_ratio", "rounds", "bytes"}) {
    EXPECT_TRUE(j["warmup"].contains(key)) << "warmup lacks " << key;
  }
}

TEST_F(Cli, RunWritesSummaryAndTables) {
  const fs::path out = dir_ / "run";
  const Outcome o = run("run " + small() + " --engine model --out " + quote(out.string()));
  ASSERT_EQ(o.code, 0) << o.err;
  const auto lines = lines_of(o.out);
  ASSERT_FALSE(lines.empty());
  EXPECT_EQ(lines.back(), "results: " + out.string());
  EXPECT_GE(lines.size(), 5u) << o.out;  // the human summary comes first

  const nlohmann::json j = nlohmann::json::parse(slurp(out / "summary.json"));
  expect_summary_keys(j);
  EXPECT_EQ(j["engine"], "model");
  EXPECT_EQ(j["broadcasts"], 3u);
  // TCP mode, no loss, no faults: everyone delivers everything, in exactly ceil(log2 n) rounds.
  const auto nodes = j["nodes"].get<std::uint64_t>();
  EXPECT_EQ(j["mode"], "tcp");
  EXPECT_EQ(j["expected"], 3 * nodes);
  EXPECT_EQ(j["delivered"], 3 * nodes);
  EXPECT_EQ(j["delivery_ratio"], 1.0);
  EXPECT_EQ(j["duplicates"], 0u);
  EXPECT_EQ(j["rounds"]["lower_bound"], mixcast::ceil_log2(nodes));
  EXPECT_EQ(j["rounds"]["max"], j["rounds"]["lower_bound"]);

  const auto deliveries = lines_of(slurp(out / "deliveries.csv"));
  ASSERT_FALSE(deliveries.empty());
  EXPECT_EQ(deliveries[0], "broadcast,node,round,time_s,channel");
  EXPECT_EQ(deliveries.size(), 1 + 3 * nodes);  // one row per first delivery
  const auto broadcasts = lines_of(slurp(out / "broadcasts.csv"));
  ASSERT_FALSE(broadcasts.empty());
  EXPECT_EQ(broadcasts[0], "broadcast,origin,seq,start_s,warmup");
}

TEST_F(Cli, DefaultOutputDirectoryIsUnderResults) {
  const Outcome o = run("run " + small() + " --engine model --quiet --mode tcp --seed 11");
  ASSERT_EQ(o.code, 0) << o.err;
  const auto lines = lines_of(o.out);
  ASSERT_EQ(lines.size(), 1u) << o.out;  // --quiet: only the results line
  const std::string prefix = "results: results/";
  ASSERT_EQ(lines.back().rfind(prefix, 0), 0u) << lines.back();
  const std::string rel = lines.back().substr(std::string("results: ").size());
  EXPECT_NE(rel.find("-model-tcp-n"), std::string::npos) << rel;
  EXPECT_NE(rel.find("-s11"), std::string::npos) << rel;
  EXPECT_TRUE(fs::exists(dir_ / rel / "summary.json")) << rel;
}

TEST_F(Cli, JsonFlagPrintsTheSummary) {
  const fs::path out = dir_ / "json";
  const Outcome o = run("run " + small() + " --engine model --json --out " + quote(out.string()));
  ASSERT_EQ(o.code, 0) << o.err;
  const nlohmann::json printed = nlohmann::json::parse(o.out);
  expect_summary_keys(printed);
  EXPECT_EQ(printed, nlohmann::json::parse(slurp(out / "summary.json")));
}

TEST_F(Cli, SameSeedGivesIdenticalOutputs) {
  const fs::path a = dir_ / "a", b = dir_ / "b";
  ASSERT_EQ(run("run " + small() + " --engine model --seed 5 --quiet --out " + quote(a.string())).code, 0);
  ASSERT_EQ(run("run " + small() + " --engine model --seed 5 --quiet --out " + quote(b.string())).code, 0);
  nlohmann::json ja = nlohmann::json::parse(slurp(a / "summary.json"));
  nlohmann::json jb = nlohmann::json::parse(slurp(b / "summary.json"));
  EXPECT_EQ(ja["seed"], 5u);
  ja.erase("wall_s");
  jb.erase("wall_s");
  EXPECT_EQ(ja, jb);
  const std::string da = slurp(a / "deliveries.csv");
  EXPECT_FALSE(da.empty());
  EXPECT_TRUE(da == slurp(b / "deliveries.csv")) << "deliveries.csv differs between identical runs";
  EXPECT_TRUE(slurp(a / "broadcasts.csv") == slurp(b / "broadcasts.csv"));
}

TEST_F(Cli, TraceListsEveryFrameAndLeavesTheRunAsItIs) {
  const fs::path plain = dir_ / "plain", traced = dir_ / "traced", trace = dir_ / "run.trace";
  ASSERT_EQ(run("run " + small() + " --engine model --seed 5 --quiet --out " + quote(plain.string())).code, 0);
  const Outcome o = run("run " + small() + " --engine model --seed 5 --quiet --out " + quote(traced.string()) +
                        " --trace " + quote(trace.string()));
  ASSERT_EQ(o.code, 0) << o.err;
  EXPECT_TRUE(slurp(plain / "deliveries.csv") == slurp(traced / "deliveries.csv")) << "tracing changed the run";
  const auto lines = lines_of(slurp(trace));
  std::size_t starts = 0, sends = 0, recvs = 0;
  for (const auto& l : lines) {
    starts += l.find(" start broadcast ") != std::string::npos;
    sends += l.find(" send ") != std::string::npos && l.find("bcast ") != std::string::npos;
    recvs += l.find(" recv ") != std::string::npos && l.find("bcast ") != std::string::npos;
  }
  EXPECT_EQ(starts, 3u);
  EXPECT_GT(sends, 0u);
  EXPECT_EQ(sends, recvs) << "no loss, no crash: every copy sent arrives";
  ASSERT_FALSE(lines.empty());
  EXPECT_EQ(lines.front().rfind("0.000000 ", 0), 0u) << lines.front();

  const Outcome ns3 = run("run " + small() + " --engine ns3 --trace " + quote(trace.string()));
  EXPECT_EQ(ns3.code, 2);
  EXPECT_NE(ns3.err.find("--trace"), std::string::npos) << ns3.err;
}

TEST_F(Cli, CheckExplainsTheScenario) {
  const Outcome o = run("check " + scenario());
  ASSERT_EQ(o.code, 0) << o.err;
  EXPECT_FALSE(o.out.empty());
  EXPECT_NE(o.out.find("scenario OK"), std::string::npos) << o.out;
}

TEST_F(Cli, BadInputExitsWithCode2AndNamesTheProblem) {
  // A scenario file with a key the loader does not know.
  const fs::path bad_key = dir_ / "bad-key.yaml";
  std::ofstream(bad_key) << slurp(scenario_) << "\nno_such_top_key: 3\n";
  // A regular file where the output directory should go.
  const fs::path blocker = dir_ / "blocker";
  std::ofstream(blocker) << "x";

  struct Case {
    std::string args, needle;
  };
  const std::vector<Case> cases = {
      {"run " + scenario() + " --nodes 0", "--nodes"},
      {"run " + scenario() + " --nodes many", "many"},
      {"run " + scenario() + " --mode foo", "foo"},
      {"run " + scenario() + " --seed -1", "--seed"},
#ifndef MIXCAST_HAVE_NS3
      {"run " + scenario() + " --engine ns3", "ns3"},
#else
      {"sweep " + scenario() + " --engine ns3 --jobs 2 --nodes 8 --out " + quote((dir_ / "sw").string()), "--jobs"},
#endif
      {"run " + scenario() + " --engine warp", "warp"},
      {"run " + scenario() + " --frobnicate", "frobnicate"},
      {"run " + scenario() + " --set no_such_key_xyz=1", "no_such_key_xyz"},
      {"run " + scenario() + " --set protocol.no_such_param=1", "no_such_param"},
      {"run " + scenario() + " --set novalue", "novalue"},
      {"run " + quote((dir_ / "missing.yaml").string()), "missing.yaml"},
      {"run " + quote(bad_key.string()), "no_such_top_key"},
      {"run " + scenario() + " --out " + quote((blocker / "sub").string()), "blocker"},
      {"run", "scenario"},
      {"check " + quote(bad_key.string()), "no_such_top_key"},
      {"sweep " + scenario() + " --nodes 8,0 --out " + quote((dir_ / "sw").string()), "--nodes"},
      {"sweep " + scenario() + " --nodes 8 --modes tcp,udp --out " + quote((dir_ / "sw").string()), "udp"},
      {"sweep " + scenario() + " --nodes 8", "--out"},
      {"", "subcommand"},
  };
  for (const Case& c : cases) {
    const Outcome o = run(c.args);
    EXPECT_EQ(o.code, 2) << c.args << "\nstderr: " << o.err;
    EXPECT_EQ(o.err.rfind("mixcast-sim: error: ", 0), 0u) << c.args << "\nstderr: " << o.err;
    EXPECT_NE(o.err.find(c.needle), std::string::npos) << c.args << "\nstderr: " << o.err;
  }
}

#ifdef MIXCAST_HAVE_NS3
// In a build with ns-3 the default engine is ns3, and it writes links.csv besides the common files.
TEST_F(Cli, DefaultEngineIsNs3AndWritesLinkTable) {
  const fs::path out = dir_ / "ns3run";
  const Outcome o = run("run " + small() + " --quiet --out " + quote(out.string()));
  ASSERT_EQ(o.code, 0) << o.err;
  const nlohmann::json j = nlohmann::json::parse(slurp(out / "summary.json"));
  expect_summary_keys(j);
  EXPECT_EQ(j["engine"], "ns3");
  EXPECT_EQ(j["delivery_ratio"], 1.0);
  ASSERT_TRUE(j.contains("links")) << j.dump(2);
  EXPECT_GT(j["links"]["lan"]["bytes_per_broadcast"].get<double>(), 0.0);
  const auto links = lines_of(slurp(out / "links.csv"));
  ASSERT_GT(links.size(), 1u);
  EXPECT_EQ(links[0], "link,kind,round,channel,bytes,packets,bytes_per_broadcast");
}

// ns-3 keeps global state: a sweep's second ns-3 run must not inherit the first one's. Every row
// equals the same run made on its own.
TEST_F(Cli, Ns3SweepRowsEqualSeparateRuns) {
  const fs::path out = dir_ / "ns3sweep";
  // multi-subnet at 32 nodes: seed 3 came out different when it followed seed 2 in one process.
  const std::string sc = quote(std::string(MIXCAST_SOURCE_DIR) + "/scenarios/multi-subnet.yaml");
  const Outcome o = run("sweep " + sc + " --engine ns3 --nodes 32 --seeds 3 --quiet --out " + quote(out.string()));
  ASSERT_EQ(o.code, 0) << o.err;
  const auto rows = lines_of(slurp(out / "sweep.csv"));
  ASSERT_EQ(rows.size(), 4u);
  const auto header = rows[0];
  const std::size_t ttld = std::count(header.begin(), header.begin() + header.find("ttld_max_s"), ',');
  auto field = [](const std::string& row, std::size_t k) {
    std::size_t start = 0;
    for (std::size_t i = 0; i < k; ++i) start = row.find(',', start) + 1;
    return row.substr(start, row.find(',', start) - start);
  };
  for (std::size_t r = 1; r < rows.size(); ++r) {
    const std::string seed = field(rows[r], 4);
    const Outcome single = run("run " + sc + " --engine ns3 --nodes 32 --seed " + seed + " --json --quiet");
    ASSERT_EQ(single.code, 0) << single.err;
    const auto j = nlohmann::json::parse(single.out.substr(0, single.out.rfind('}') + 1));
    EXPECT_NEAR(std::stod(field(rows[r], ttld)), j["time_to_last_delivery_s"]["max"].get<double>(), 1e-9)
        << "seed " << seed;
  }
}
#endif

TEST_F(Cli, HelpAndVersion) {
  Outcome o = run("--help");
  EXPECT_EQ(o.code, 0);
  for (const char* sub : {"run", "sweep", "check"}) EXPECT_NE(o.out.find(sub), std::string::npos) << o.out;
  for (const char* sub : {"run", "sweep", "check"}) {
    o = run(std::string(sub) + " --help");
    EXPECT_EQ(o.code, 0) << sub;
    EXPECT_NE(o.out.find("Example"), std::string::npos) << sub << ": " << o.out;
  }
  o = run("--version");
  EXPECT_EQ(o.code, 0);
  EXPECT_EQ(o.out.rfind("mixcast-sim ", 0), 0u) << o.out;
}

TEST_F(Cli, SweepWritesOneRowPerRunInGridOrder) {
  const fs::path out = dir_ / "sweep";
  const Outcome o = run("sweep " + small() + " --engine model --nodes 8,12 --modes tcp,mixed --seeds 2 --jobs 2 --quiet --out " +
                        quote(out.string()));
  ASSERT_EQ(o.code, 0) << o.err;
  const auto rows = lines_of(slurp(out / "sweep.csv"));
  ASSERT_EQ(rows.size(), 1u + 2 * 2 * 2);
  EXPECT_EQ(rows[0],
            "scenario,engine,mode,nodes,seed,broadcasts,expected,delivered,delivery_ratio,duplicates,rounds_max,"
            "rounds_p50,rounds_p99,lower_bound,ttld_p50_s,ttld_p99_s,ttld_max_s,tcp_messages,multicast_messages,"
            "tcp_bytes,multicast_bytes,islands,repairs,forced_tcp,wall_s");
  std::vector<std::vector<std::string>> cells;
  for (std::size_t i = 1; i < rows.size(); ++i) {
    std::vector<std::string> f;
    std::istringstream in(rows[i]);
    for (std::string cell; std::getline(in, cell, ',');) f.push_back(cell);
    ASSERT_EQ(f.size(), 25u) << rows[i];
    cells.push_back(f);
  }
  // Grid order: node counts, then modes, then seeds.
  const char* modes[] = {"tcp", "tcp", "mixed", "mixed", "tcp", "tcp", "mixed", "mixed"};
  const char* nodes[] = {"8", "8", "8", "8", "12", "12", "12", "12"};
  for (std::size_t i = 0; i < cells.size(); ++i) {
    EXPECT_EQ(cells[i][1], "model") << i;
    EXPECT_EQ(cells[i][2], modes[i]) << i;
    EXPECT_EQ(cells[i][3], nodes[i]) << i;
    EXPECT_EQ(cells[i][5], "3") << i;  // broadcasts
  }
  const auto seed0 = std::stoull(cells[0][4]);
  EXPECT_EQ(std::stoull(cells[1][4]), seed0 + 1);
  EXPECT_EQ(std::stoull(cells[2][4]), seed0);
}

}  // namespace
