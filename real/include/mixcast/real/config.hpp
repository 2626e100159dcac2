// mixcastd's configuration: YAML (docs/real-backend.md) -> DaemonConfig. Every problem is a
// ConfigError naming the key, so the daemon can say exactly what is wrong and exit 2.
#pragma once
#include <cstdint>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

#include "mixcast/core/node.hpp"

namespace mixcast::real {

struct ConfigError : std::runtime_error {
  ConfigError(std::string key_, const std::string& problem)
      : std::runtime_error(key_ + ": " + problem), key(std::move(key_)) {}
  std::string key;
};

struct Endpoint {
  std::string address;
  std::uint16_t port = 0;
};

struct PeerConfig {
  NodeId id = 0;
  Endpoint endpoint;
  std::optional<std::uint32_t> nat_domain;
};

struct MulticastConfig {
  std::string group = "239.255.77.1";
  std::uint16_t port = 7400;
  std::string interface = "127.0.0.1";  // address of the interface to join on and send from
  int ttl = 1;
};

struct Limits {
  std::size_t send_queue_bytes = 512u << 10;    // per peer, above the kernel's buffer
  std::size_t socket_buffer_bytes = 256u << 10;  // SO_SNDBUF of every TCP connection
  std::size_t multicast_budget = 64;        // datagrams read per turn
  Micros connect_timeout = 1'000'000;
};

struct DaemonConfig {
  NodeConfig node;  // node.self = node_id, protocol.* applied
  Endpoint listen{"127.0.0.1", 7400};
  std::optional<std::uint32_t> nat_domain;
  std::string control_socket = "/run/mixcast/mixcastd.sock";
  std::string log_level = "info";
  std::string delivery_log;  // empty: none
  // Holds node-<id>.incarnation (mixcast/real/incarnation.hpp). Empty: $STATE_DIRECTORY's first
  // entry if set (the daemon applies it), else none: the incarnation then comes from the clock.
  std::string state_dir;
  std::optional<MulticastConfig> multicast;
  std::vector<PeerConfig> peers;
  Limits limits;

  // The membership view every member builds identically from its config: self + peers.
  std::shared_ptr<const View> view() const;
  const PeerConfig* peer(NodeId id) const;
};

DaemonConfig parse_daemon_config(const std::string& yaml_text);  // throws ConfigError
DaemonConfig load_daemon_config(const std::string& path);        // throws ConfigError (key "file" if unreadable)

}  // namespace mixcast::real
