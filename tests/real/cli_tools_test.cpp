// The user-facing tools themselves: the `mixcast` control CLI (help, bad flags, no daemon, and
// send/status/tail/stop against a running 3-daemon loopback cluster) and `mixcast-bench` (a tiny
// run whose figures parse, bad flags).
#include <gtest/gtest.h>
#include <sys/wait.h>

#include <cmath>
#include <filesystem>
#include <sstream>
#include <string>
#include <thread>

#include <nlohmann/json.hpp>

#include "real_test_support.hpp"

namespace mixcast::testbed::test {
namespace {

using namespace std::chrono_literals;
namespace fs = std::filesystem;

struct Outcome {
  int code = -1;  // exit code; -1 if it did not exit normally in time
  std::string out;  // stdout and stderr together
};

class Tools : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/mixcast-cli-XXXXXX";
    ASSERT_NE(::mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
    tag_ = "MIXCAST_TEST_TAG=" + random_tag();
  }
  void TearDown() override {
    for (pid_t p : processes_with_env(tag_)) ::kill(p, SIGKILL);
    std::error_code ec;
    fs::remove_all(dir_, ec);
  }
  // Runs a tool to its end (killed after `timeout`) and returns its exit code and output.
  Outcome run(const std::string& binary, const std::vector<std::string>& args, std::chrono::seconds timeout = 20s) {
    const std::string out = dir_ + "/out" + std::to_string(++runs_) + ".txt";
    std::vector<std::string> argv{binary};
    argv.insert(argv.end(), args.begin(), args.end());
    ChildProcess p(argv, out, {tag_});
    Outcome o;
    if (p.wait_for(timeout)) {
      const int st = *p.exit_status();
      o.code = WIFEXITED(st) ? WEXITSTATUS(st) : -1;
    }
    o.out = slurp(out);
    return o;
  }
  std::string dir_, tag_;
  int runs_ = 0;
};

std::string ctl() { return MIXCAST_CTL_BINARY; }

// ---------------------------------------------------------------------------------------------
// mixcast

TEST_F(Tools, CtlHelpNamesEverySubcommandAndTheSocket) {
  const Outcome o = run(ctl(), {"--help"});
  EXPECT_EQ(o.code, 0) << o.out;
  for (const char* word : {"send", "tail", "status", "stop", "--socket", "/run/mixcast/mixcastd.sock"})
    EXPECT_NE(o.out.find(word), std::string::npos) << "--help lacks '" << word << "':\n" << o.out;
  const Outcome s = run(ctl(), {"send", "--help"});
  EXPECT_EQ(s.code, 0) << s.out;
  EXPECT_NE(s.out.find("--file"), std::string::npos) << s.out;
}

TEST_F(Tools, CtlBadUsageExitsTwoNamingTheProblem) {
  struct Case {
    std::vector<std::string> args;
    std::string names;
  };
  const std::vector<Case> cases = {
      {{}, "a subcommand is required"},
      {{"-s", dir_ + "/x.sock"}, "a subcommand is required"},
      {{"--bogus"}, "--bogus"},
      {{"frobnicate"}, "frobnicate"},
      {{"status", "--bogus"}, "--bogus"},
      {{"send"}, "TEXT or --file"},
      {{"send", "one", "two"}, "two"},
      {{"send", "-f", dir_ + "/no-such-file"}, "no-such-file"},
      {{"send", "text", "-f", dir_ + "/no-such-file"}, "--file"},
      {{"--socket"}, "--socket"},
  };
  for (const auto& c : cases) {
    const Outcome o = run(ctl(), c.args);
    std::string shown;
    for (const auto& a : c.args) shown += " " + a;
    EXPECT_EQ(o.code, 2) << "mixcast" << shown << ":\n" << o.out;
    EXPECT_EQ(o.out.rfind("mixcast: error: ", 0), 0u) << "mixcast" << shown << ":\n" << o.out;
    EXPECT_NE(o.out.find(c.names), std::string::npos) << "mixcast" << shown << ": expected '" << c.names << "' in:\n"
                                                      << o.out;
    EXPECT_NE(o.out.find("--help"), std::string::npos) << o.out;
  }
}

TEST_F(Tools, CtlWithoutADaemonExitsOneNamingTheSocket) {
  const std::string sock = dir_ + "/nobody.sock";
  for (const std::vector<std::string>& args : {std::vector<std::string>{"-s", sock, "status"},
                                               std::vector<std::string>{"-s", sock, "send", "hi"}}) {
    const Outcome o = run(ctl(), args);
    EXPECT_EQ(o.code, 1) << o.out;
    EXPECT_NE(o.out.find(sock), std::string::npos) << o.out;
    EXPECT_NE(o.out.find("No such file"), std::string::npos) << o.out;
  }
}

TEST_F(Tools, CtlTalksToRunningDaemons) {
  ClusterOptions opt;
  opt.daemon = daemon_binary();
  opt.layout = ClusterLayout::even(3, 1);
  opt.env = {tag_};
  opt.dir = dir_ + "/cluster";
  LocalCluster c(opt);
  c.start_all(20s);

  // status: the daemon's JSON, pretty-printed.
  const Outcome st = run(ctl(), {"-s", c.control_socket(1), "status"});
  ASSERT_EQ(st.code, 0) << st.out;
  const auto status = nlohmann::json::parse(st.out);
  EXPECT_EQ(status.at("node"), 1);
  EXPECT_TRUE(status.contains("counters")) << st.out;

  // tail on node 2 prints each delivery as one JSON line.
  const std::string tail_out = dir_ + "/tail.txt";
  ChildProcess tail({ctl(), "-s", c.control_socket(2), "tail"}, tail_out, {tag_});
  std::this_thread::sleep_for(300ms);  // subscribed before the sends

  // send TEXT from node 0: the reply names the message; every daemon delivers it.
  const std::string text = "hello from the cli " + random_tag();
  const Outcome s = run(ctl(), {"--socket", c.control_socket(0), "send", text});
  ASSERT_EQ(s.code, 0) << s.out;
  const auto reply = nlohmann::json::parse(s.out);
  EXPECT_EQ(reply.at("ok"), true) << s.out;
  EXPECT_EQ(reply.at("origin"), 0) << s.out;
  const auto seq = reply.at("seq").get<std::uint64_t>();

  // send --file: arbitrary bytes, delivered intact.
  wire::Bytes bytes;
  for (int i = 0; i < 256; ++i) bytes.push_back(static_cast<std::uint8_t>(i));
  const std::string file = dir_ + "/payload.bin";
  {
    std::ofstream f(file, std::ios::binary);
    f.write(reinterpret_cast<const char*>(bytes.data()), static_cast<std::streamsize>(bytes.size()));
  }
  const Outcome sf = run(ctl(), {"-s", c.control_socket(1), "send", "-f", file});
  ASSERT_EQ(sf.code, 0) << sf.out;
  EXPECT_EQ(nlohmann::json::parse(sf.out).at("origin"), 1) << sf.out;

  Ledger ledger(c.size());
  ASSERT_TRUE(wait_for_deliveries(c, ledger, {0, 1, 2}, {text, bytes_text(bytes)}, 10s)) << logs_of(c);
  for (NodeId n = 0; n < c.size(); ++n) EXPECT_EQ(ledger.rows[n].size(), 2u) << "node " << n;

  // tail saw both, as the control protocol's JSON lines.
  std::vector<nlohmann::json> lines;
  const auto deadline = Clock::now() + 5s;
  while (Clock::now() < deadline) {
    lines.clear();
    std::istringstream in(slurp(tail_out));
    for (std::string line; std::getline(in, line);)
      if (!line.empty()) lines.push_back(nlohmann::json::parse(line));
    if (lines.size() >= 2) break;
    std::this_thread::sleep_for(20ms);
  }
  ASSERT_EQ(lines.size(), 2u) << slurp(tail_out);
  EXPECT_EQ(lines[0].at("origin"), 0);
  EXPECT_EQ(lines[0].at("seq"), seq);
  EXPECT_EQ(lines[0].at("payload"), text);
  EXPECT_EQ(lines[1].at("origin"), 1);
  EXPECT_EQ(lines[1].at("payload_hex"), to_hex(bytes));
  EXPECT_FALSE(lines[1].contains("payload")) << "not printable UTF-8: payload_hex only";

  // stop: the daemon exits; tail on it ends with exit 0 when its daemon stops.
  const Outcome stop = run(ctl(), {"-s", c.control_socket(2), "stop"});
  EXPECT_EQ(stop.code, 0) << stop.out;
  EXPECT_TRUE(tail.wait_for(10s)) << "tail did not end when its daemon stopped";
  if (tail.exit_status()) {
    EXPECT_TRUE(WIFEXITED(*tail.exit_status()) && WEXITSTATUS(*tail.exit_status()) == 0);
  }
  const auto gone = Clock::now() + 10s;
  while (c.alive(2) && Clock::now() < gone) std::this_thread::sleep_for(20ms);
  EXPECT_FALSE(c.alive(2)) << "the daemon did not stop";
  // A daemon that is gone: exit 1, the socket named.
  const Outcome after = run(ctl(), {"-s", c.control_socket(2), "status"});
  EXPECT_EQ(after.code, 1) << after.out;
  EXPECT_NE(after.out.find(c.control_socket(2)), std::string::npos) << after.out;
}

// ---------------------------------------------------------------------------------------------
// mixcast-bench

#ifdef MIXCAST_BENCH_BINARY
std::string bench() { return MIXCAST_BENCH_BINARY; }
#define REQUIRE_BENCH() (void)0
#else
std::string bench() { return ""; }
#define REQUIRE_BENCH() GTEST_SKIP() << "mixcast-bench is not built here (MIXCAST_BUILD_BENCHMARKS=OFF)"
#endif

TEST_F(Tools, BenchTinyRunPrintsParseableFigures) {
  REQUIRE_BENCH();
  const Outcome o = run(bench(), {"--reps", "1", "--seconds", "0.1", "--warmup", "0", "--nodes", "3", "--json"}, 60s);
  ASSERT_EQ(o.code, 0) << o.out;
  const auto j = nlohmann::json::parse(o.out);
  for (const char* test : {"p2p", "broadcast"}) {
    ASSERT_TRUE(j.contains(test)) << o.out;
    const auto& t = j.at(test);
    const double rate = t.at(std::string(test) == "p2p" ? "msgs_per_s" : "msgs_per_s_per_node").get<double>();
    EXPECT_GT(rate, 0.0) << test;
    EXPECT_TRUE(std::isfinite(rate)) << test;
    const double p50 = t.at("p50_us").get<double>(), p99 = t.at("p99_us").get<double>();
    EXPECT_GT(p50, 0.0) << test;
    EXPECT_LE(p50, p99) << test;
    EXPECT_EQ(t.at("payload_bytes"), 64) << test;
  }
  EXPECT_EQ(j.at("broadcast").at("nodes"), 3);

  // The table: a title, a header, one row per test whose five figures are numbers.
  const Outcome t = run(bench(), {"--reps", "1", "--seconds", "0.1", "--warmup", "0.1", "--nodes", "4", "--mode",
                                  "mixed", "--only", "broadcast", "--payload", "100"}, 60s);
  ASSERT_EQ(t.code, 0) << t.out;
  std::istringstream in(t.out);
  std::vector<std::string> lines;
  for (std::string line; std::getline(in, line);) lines.push_back(line);
  ASSERT_EQ(lines.size(), 4u) << t.out;
  EXPECT_EQ(lines[0].rfind("mixcast-bench: 100-byte payloads on loopback, median of 1 reps", 0), 0u) << t.out;
  EXPECT_NE(lines[1].find("msgs/s per node"), std::string::npos) << t.out;
  std::istringstream row(lines[2]);
  std::string name, kind;
  unsigned nodes = 0;
  double rate = -1, slowest = -1, p50 = -1, p99 = -1;
  row >> name >> kind >> nodes >> rate >> slowest >> p50 >> p99;
  ASSERT_FALSE(row.fail()) << "unparseable row: " << lines[2];
  EXPECT_EQ(name + " " + kind, "broadcast (mixed)");
  EXPECT_EQ(nodes, 4u);
  EXPECT_GT(rate, 0.0);
  EXPECT_GT(slowest, 0.0);
  EXPECT_LE(slowest, rate);
  EXPECT_LE(p50, p99);
}

TEST_F(Tools, BenchBadFlagsExitTwoNamingTheFlag) {
  REQUIRE_BENCH();
  const std::vector<std::pair<std::vector<std::string>, std::string>> cases = {
      {{"--nodes", "1"}, "--nodes"},     {{"--nodes", "65"}, "--nodes"},   {{"--mode", "udp"}, "--mode"},
      {{"--payload", "10"}, "--payload"}, {{"--seconds", "0"}, "--seconds"}, {{"--reps", "0"}, "--reps"},
      {{"--only", "p3p"}, "--only"},     {{"--bogus"}, "--bogus"},         {{"--nodes", "many"}, "--nodes"},
  };
  for (const auto& [args, names] : cases) {
    const Outcome o = run(bench(), args);
    EXPECT_EQ(o.code, 2) << args[0] << ":\n" << o.out;
    EXPECT_EQ(o.out.rfind("mixcast-bench: error: ", 0), 0u) << o.out;
    EXPECT_NE(o.out.find(names), std::string::npos) << "expected '" << names << "' in:\n" << o.out;
  }
  const Outcome h = run(bench(), {"--help"});
  EXPECT_EQ(h.code, 0) << h.out;
  EXPECT_NE(h.out.find("--json"), std::string::npos) << h.out;
}

}  // namespace
}  // namespace mixcast::testbed::test
