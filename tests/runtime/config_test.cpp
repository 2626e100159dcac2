#include <gtest/gtest.h>

#include "mixcast/real/config.hpp"

using namespace mixcast;
using namespace mixcast::real;

namespace {
const char* kValid = R"(
node_id: 2
listen: {address: 127.0.0.1, port: 7402}
multicast: {group: 239.255.1.1, port: 7500, interface: 127.0.0.1, ttl: 2}
peers:
  - {id: 0, address: 127.0.0.1, port: 7400}
  - {id: 1, address: 127.0.0.1, port: 7401, nat_domain: 4}
protocol: {mode: mixed, ack_timeout_ms: 300, forced_tcp_share: 0.5}
limits: {send_queue_bytes: 100000}
)";

// The key a config error names, with the text after it.
std::string error_of(const std::string& yaml) {
  try {
    parse_daemon_config(yaml);
  } catch (const ConfigError& e) {
    return e.what();
  }
  return "(no error)";
}
}  // namespace

TEST(DaemonConfig, ParsesEveryKey) {
  const auto c = parse_daemon_config(kValid);
  EXPECT_EQ(c.node.self, 2u);
  EXPECT_EQ(c.node.mode, Mode::mixed);
  EXPECT_EQ(c.node.ack_timeout, 300'000);
  EXPECT_DOUBLE_EQ(c.node.forced_tcp_share, 0.5);
  ASSERT_TRUE(c.multicast);
  EXPECT_EQ(c.multicast->ttl, 2);
  EXPECT_EQ(c.limits.send_queue_bytes, 100000u);
  ASSERT_EQ(c.peers.size(), 2u);
  EXPECT_EQ(c.peers[1].nat_domain, 4u);
  const auto v = c.view();
  EXPECT_EQ(v->size(), 3u);
  EXPECT_TRUE(v->behind_nat(1));
  EXPECT_FALSE(v->behind_nat(2));
}

TEST(DaemonConfig, EveryMemberBuildsTheSameView) {
  auto a = parse_daemon_config("node_id: 0\nlisten: {address: 127.0.0.1, port: 1}\npeers: [{id: 1, address: h, port: 2}, {id: 2, address: h, port: 3}]");
  auto b = parse_daemon_config("node_id: 2\nlisten: {address: 127.0.0.1, port: 3}\npeers: [{id: 1, address: h, port: 2}, {id: 0, address: h, port: 1}]");
  EXPECT_EQ(a.view()->hash(), b.view()->hash());
}

TEST(DaemonConfig, ExampleFileIsValid) {
  const auto c = load_daemon_config(std::string(MIXCAST_SOURCE_DIR) + "/real/mixcastd.example.yaml");
  EXPECT_EQ(c.peers.size(), 3u);
}

TEST(DaemonConfig, ErrorsNameTheKey) {
  const std::string base = "node_id: 1\nlisten: {address: 127.0.0.1, port: 7401}\n";
  EXPECT_EQ(error_of(""), "(top level): the file is empty");
  EXPECT_EQ(error_of("node_id: [1"), error_of("node_id: [1"));  // stable
  EXPECT_NE(error_of("node_id: [1").find("(yaml): line"), std::string::npos);
  EXPECT_EQ(error_of("listen: {address: a, port: 1}\npeers: []"), "node_id: missing (required)");
  EXPECT_EQ(error_of(base), "peers: missing (required; list every other member)");
  EXPECT_EQ(error_of(base + "peers: []\nbogus: 1"), "bogus: unknown key");
  EXPECT_EQ(error_of("node_id: -3\nlisten: {address: a, port: 1}\npeers: []"), "node_id: must be a non-negative integer");
  EXPECT_EQ(error_of("node_id: 1\nlisten: {address: a, port: 70000}\npeers: []"), "listen.port: must be at most 65535");
  EXPECT_EQ(error_of(base + "peers: [{id: 2, address: a, port: 0}]"), "peers[0].port: must be between 1 and 65535");
  EXPECT_EQ(error_of(base + "peers: [{id: 2, address: a, port: 5}, {id: 2, address: b, port: 6}]"),
            "peers[1].id: duplicate peer id 2");
  EXPECT_EQ(error_of(base + "peers: [{id: 1, address: a, port: 5}]"), "peers[0].id: is this node's own node_id");
  EXPECT_EQ(error_of(base + "peers: [{id: 2, port: 5}]"), "peers[0].address: missing (required)");
  EXPECT_EQ(error_of(base + "peers: [{id: 2, address: a, port: 5, colour: red}]"), "peers[0].colour: unknown key");
  EXPECT_EQ(error_of(base + "peers: []\nprotocol: {mode: mixed}"), "multicast: missing (protocol.mode mixed needs it)");
  EXPECT_EQ(error_of(base + "peers: []\nprotocol: {mode: fast}"), "protocol.mode: must be tcp or mixed");
  EXPECT_EQ(error_of(base + "peers: []\nprotocol: {forced_tcp_share: 2}"), "protocol.forced_tcp_share: must be between 0 and 1");
  EXPECT_EQ(error_of(base + "peers: []\nlog_level: loud"), "log_level: must be one of trace, debug, info, warn, error, off");
  EXPECT_EQ(error_of(base + "peers: {a: 1}"), "peers: must be a list");
  EXPECT_EQ(error_of(base + "peers: []\nmulticast: {ttl: 300}"), "multicast.ttl: must be at most 255");
}

TEST(DaemonConfig, UnreadableFileNamesIt) {
  try {
    load_daemon_config("/nonexistent/mixcastd.yaml");
    FAIL() << "no error";
  } catch (const ConfigError& e) {
    EXPECT_EQ(e.key, "file");
    EXPECT_NE(std::string(e.what()).find("/nonexistent/mixcastd.yaml"), std::string::npos);
  }
}
