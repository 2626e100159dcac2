// mixcastd refuses bad config files with exit code 2 and "mixcastd: config FILE: KEY: problem".
#include <gtest/gtest.h>
#include <sys/wait.h>

#include <filesystem>
#include <fstream>
#include <string>

#include "real_test_support.hpp"

namespace mixcast::testbed::test {
namespace {

using namespace std::chrono_literals;
namespace fs = std::filesystem;

struct Outcome {
  int code = -1;
  std::string err;
};

class RealConfig : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/mixcast-cfg-XXXXXX";
    ASSERT_NE(::mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
  }
  void TearDown() override {
    std::error_code ec;
    fs::remove_all(dir_, ec);
  }
  std::string write(const std::string& name, const std::string& text) {
    const std::string path = dir_ + "/" + name;
    std::ofstream(path) << text;
    return path;
  }
  // Runs mixcastd --check --config PATH (--check: validate and exit, so a config that is wrongly
  // accepted cannot leave a daemon behind) and returns its exit code and stderr.
  Outcome run(const std::string& path) {
    const std::string out = dir_ + "/out.txt";
    fs::remove(out);
    ChildProcess p({daemon_binary(), "--check", "--config", path}, out);
    EXPECT_TRUE(p.wait_for(10s)) << "mixcastd did not exit on a config check";
    const int st = p.exit_status().value_or(-1);
    return {WIFEXITED(st) ? WEXITSTATUS(st) : -1, slurp(out)};
  }
  // The config is refused naming `key`, in the documented format.
  void expect_refused(const std::string& path, const std::string& key, const std::string& problem_part = "") {
    const Outcome o = run(path);
    EXPECT_EQ(o.code, 2) << o.err;
    const std::string prefix = "mixcastd: config " + path + ": " + key + ": ";
    EXPECT_NE(o.err.find(prefix), std::string::npos) << "expected '" << prefix << "' in: " << o.err;
    if (!problem_part.empty()) {
      EXPECT_NE(o.err.find(problem_part), std::string::npos) << o.err;
    }
  }
  std::string dir_;
};

const std::string kPeers = "peers:\n  - {id: 1, address: 127.0.0.1, port: 7401}\n";
const std::string kListen = "listen: {address: 127.0.0.1, port: 7400}\n";

TEST_F(RealConfig, AValidConfigPassesTheCheck) {
  // The harness itself tells good from bad: the same shape as the cases below, without the fault.
  const Outcome o = run(write("ok.yaml", "node_id: 0\n" + kListen + kPeers +
                                             "multicast: {group: 239.255.9.1, port: 7400}\nprotocol: {mode: mixed}\n"));
  EXPECT_EQ(o.code, 0) << o.err;
}

TEST_F(RealConfig, UnknownKey) {
  expect_refused(write("a.yaml", "node_id: 0\n" + kListen + kPeers + "colour: blue\n"), "colour", "unknown key");
  expect_refused(write("b.yaml", "node_id: 0\n" + kListen + kPeers + "protocol: {mode: tcp, fanout: 3}\n"),
                 "protocol.fanout", "unknown key");
}

TEST_F(RealConfig, WrongType) {
  expect_refused(write("a.yaml", "node_id: zero\n" + kListen + kPeers), "node_id");
  expect_refused(write("b.yaml", "node_id: 0\nlisten: {address: 127.0.0.1, port: seventy}\n" + kPeers), "listen.port");
  expect_refused(write("c.yaml", "node_id: 0\n" + kListen + "peers: {id: 1}\n"), "peers", "list");
  expect_refused(write("d.yaml", "node_id: 0\n" + kListen + kPeers + "protocol: {forced_tcp_share: lots}\n"),
                 "protocol.forced_tcp_share");
}

TEST_F(RealConfig, MissingNodeId) {
  expect_refused(write("a.yaml", kListen + kPeers), "node_id", "missing");
}

TEST_F(RealConfig, DuplicatePeer) {
  expect_refused(write("a.yaml", "node_id: 0\n" + kListen + kPeers + "  - {id: 1, address: 127.0.0.1, port: 7402}\n"),
                 "peers[1].id", "duplicate");
  expect_refused(write("b.yaml", "node_id: 1\n" + kListen + kPeers), "peers[0].id");  // its own id
}

TEST_F(RealConfig, BadPort) {
  expect_refused(write("a.yaml", "node_id: 0\nlisten: {address: 127.0.0.1, port: 70000}\n" + kPeers), "listen.port");
  expect_refused(write("b.yaml", "node_id: 0\n" + kListen + "peers:\n  - {id: 1, address: 127.0.0.1, port: 0}\n"),
                 "peers[0].port");
  expect_refused(write("c.yaml", "node_id: 0\n" + kListen + kPeers + "multicast: {port: -5}\n"), "multicast.port");
}

TEST_F(RealConfig, MixedWithoutMulticast) {
  expect_refused(write("a.yaml", "node_id: 0\n" + kListen + kPeers + "protocol: {mode: mixed}\n"), "multicast");
}

TEST_F(RealConfig, OutOfRangeAndBadEnum) {
  expect_refused(write("a.yaml", "node_id: 0\n" + kListen + kPeers + "protocol: {ack_timeout_ms: 0}\n"),
                 "protocol.ack_timeout_ms");
  expect_refused(write("b.yaml", "node_id: 0\n" + kListen + kPeers + "log_level: loud\n"), "log_level");
  expect_refused(write("c.yaml", "node_id: 0\n" + kListen + kPeers + "protocol: {mode: gossip}\n"), "protocol.mode");
}

TEST_F(RealConfig, UnreadableOrMalformedFile) {
  expect_refused(dir_ + "/does-not-exist.yaml", "file");
  const std::string sub = dir_ + "/a-directory.yaml";
  fs::create_directory(sub);
  expect_refused(sub, "file");
  expect_refused(write("bad.yaml", "node_id: [1\n"), "(yaml)");
}

}  // namespace
}  // namespace mixcast::testbed::test
