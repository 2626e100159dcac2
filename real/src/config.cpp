#include "mixcast/real/config.hpp"

#include <yaml-cpp/yaml.h>

#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>

namespace mixcast::real {
namespace {

// Reads one YAML map strictly: every key must be known, every value of the right type and range.
class Map {
 public:
  Map(const YAML::Node& node, std::string path) : node_(node), path_(std::move(path)) {
    if (!node_.IsMap()) throw ConfigError(path_.empty() ? "(top level)" : path_, "must be a map");
  }
  std::string key(const std::string& k) const { return path_.empty() ? k : path_ + "." + k; }
  bool has(const std::string& k) const { return node_[k].IsDefined() && !node_[k].IsNull(); }
  YAML::Node get(const std::string& k) const { return node_[k]; }

  template <typename T>
  T required(const std::string& k, T lo, T hi) const {
    if (!has(k)) throw ConfigError(key(k), "missing (required)");
    return number(k, lo, hi);
  }
  template <typename T>
  void optional(const std::string& k, T& out, T lo, T hi) const {
    if (has(k)) out = number(k, lo, hi);
  }
  void optional_string(const std::string& k, std::string& out) const {
    if (!has(k)) return;
    if (!node_[k].IsScalar()) throw ConfigError(key(k), "must be a string");
    out = node_[k].as<std::string>();
    if (out.empty()) throw ConfigError(key(k), "must not be empty");
  }
  void only(std::initializer_list<const char*> known) const {
    std::set<std::string> ok(known.begin(), known.end());
    for (const auto& kv : node_) {
      const auto k = kv.first.as<std::string>();
      if (!ok.count(k)) throw ConfigError(key(k), "unknown key");
    }
  }

 private:
  template <typename T>
  T number(const std::string& k, T lo, T hi) const {
    const YAML::Node v = node_[k];
    T out{};
    try {
      if (!v.IsScalar()) throw YAML::Exception(YAML::Mark::null_mark(), "");
      if constexpr (std::is_floating_point_v<T>) {
        out = v.as<T>();
      } else {
        const auto s = v.as<std::string>();
        if (s.empty() || s.find_first_not_of("0123456789") != std::string::npos) throw YAML::Exception(YAML::Mark::null_mark(), "");
        const auto x = std::stoull(s);
        if (x > static_cast<unsigned long long>(hi)) throw ConfigError(key(k), "must be at most " + std::to_string(hi));
        out = static_cast<T>(x);
      }
    } catch (const ConfigError&) {
      throw;
    } catch (const std::exception&) {
      throw ConfigError(key(k), std::string("must be a ") + (std::is_floating_point_v<T> ? "number" : "non-negative integer"));
    }
    if (out < lo || out > hi) {
      std::ostringstream m;
      m << "must be between " << lo << " and " << hi;
      throw ConfigError(key(k), m.str());
    }
    return out;
  }
  YAML::Node node_;
  std::string path_;
};

Endpoint endpoint(const Map& m, std::uint16_t min_port) {
  Endpoint e;
  if (!m.has("address")) throw ConfigError(m.key("address"), "missing (required)");
  m.optional_string("address", e.address);
  e.port = m.required<std::uint16_t>("port", min_port, 65535);
  return e;
}

Micros ms(std::uint64_t v) { return static_cast<Micros>(v) * 1000; }

}  // namespace

DaemonConfig parse_daemon_config(const std::string& text) {
  YAML::Node root;
  try {
    root = YAML::Load(text);
  } catch (const YAML::Exception& e) {
    throw ConfigError("(yaml)", "line " + std::to_string(e.mark.line + 1) + ": " + e.msg);
  }
  if (!root.IsDefined() || root.IsNull()) throw ConfigError("(top level)", "the file is empty");
  Map top(root, "");
  top.only({"node_id", "listen", "nat_domain", "control_socket", "log_level", "delivery_log", "state_dir", "multicast", "peers",
            "protocol", "limits"});
  DaemonConfig c;
  c.node.self = top.required<NodeId>("node_id", 0, UINT32_MAX);
  if (!top.has("listen")) throw ConfigError("listen", "missing (required)");
  {
    Map l(top.get("listen"), "listen");
    l.only({"address", "port"});
    c.listen = endpoint(l, 0);  // port 0: the kernel picks one
  }
  if (top.has("nat_domain")) c.nat_domain = top.required<std::uint32_t>("nat_domain", 0, UINT32_MAX);
  top.optional_string("control_socket", c.control_socket);
  top.optional_string("log_level", c.log_level);
  static const std::set<std::string> levels{"trace", "debug", "info", "warn", "error", "off"};
  if (!levels.count(c.log_level)) throw ConfigError("log_level", "must be one of trace, debug, info, warn, error, off");
  top.optional_string("delivery_log", c.delivery_log);
  top.optional_string("state_dir", c.state_dir);

  if (top.has("multicast")) {
    Map m(top.get("multicast"), "multicast");
    m.only({"group", "port", "interface", "ttl"});
    MulticastConfig mc;
    m.optional_string("group", mc.group);
    m.optional<std::uint16_t>("port", mc.port, 1, 65535);
    m.optional_string("interface", mc.interface);
    m.optional<int>("ttl", mc.ttl, 0, 255);
    c.multicast = mc;
  }

  if (!top.has("peers")) throw ConfigError("peers", "missing (required; list every other member)");
  const YAML::Node peers = top.get("peers");
  if (!peers.IsSequence()) throw ConfigError("peers", "must be a list");
  std::set<NodeId> seen{c.node.self};
  for (std::size_t i = 0; i < peers.size(); ++i) {
    Map p(peers[i], "peers[" + std::to_string(i) + "]");
    p.only({"id", "address", "port", "nat_domain"});
    PeerConfig pc;
    pc.id = p.required<NodeId>("id", 0, UINT32_MAX);
    if (!seen.insert(pc.id).second)
      throw ConfigError(p.key("id"), pc.id == c.node.self ? "is this node's own node_id" : "duplicate peer id " + std::to_string(pc.id));
    pc.endpoint = endpoint(p, 1);
    if (p.has("nat_domain")) pc.nat_domain = p.required<std::uint32_t>("nat_domain", 0, UINT32_MAX);
    c.peers.push_back(pc);
  }

  if (top.has("protocol")) {
    Map p(top.get("protocol"), "protocol");
    p.only({"mode", "ack_timeout_ms", "confirm_interval_ms", "beacon_interval_ms", "reach_expiry_ms", "forced_tcp_share",
            "retention", "dedup_window", "nat_links", "max_frame_bytes"});
    if (p.has("mode")) {
      std::string mode;
      p.optional_string("mode", mode);
      if (mode == "tcp") c.node.mode = Mode::tcp;
      else if (mode == "mixed") c.node.mode = Mode::mixed;
      else throw ConfigError("protocol.mode", "must be tcp or mixed");
    }
    std::uint64_t v;
    if (p.has("ack_timeout_ms")) c.node.ack_timeout = ms(v = p.required<std::uint64_t>("ack_timeout_ms", 1, 600'000));
    if (p.has("confirm_interval_ms")) c.node.confirm_interval = ms(p.required<std::uint64_t>("confirm_interval_ms", 1, 60'000));
    if (p.has("beacon_interval_ms")) c.node.beacon_interval = ms(p.required<std::uint64_t>("beacon_interval_ms", 1, 60'000));
    if (p.has("reach_expiry_ms")) c.node.reach_expiry = ms(p.required<std::uint64_t>("reach_expiry_ms", 1, 600'000));
    p.optional<double>("forced_tcp_share", c.node.forced_tcp_share, 0.0, 1.0);
    p.optional<std::size_t>("retention", c.node.retention, 1, 1u << 20);
    p.optional<std::size_t>("dedup_window", c.node.dedup_window, 1, 1u << 24);
    p.optional<std::uint32_t>("nat_links", c.node.nat_links, 1, 64);
    p.optional<std::size_t>("max_frame_bytes", c.node.max_frame_bytes, 256, wire::kMaxFrameBytes);
  }
  if (top.has("limits")) {
    Map l(top.get("limits"), "limits");
    l.only({"send_queue_bytes", "socket_buffer_bytes", "multicast_budget", "connect_timeout_ms"});
    l.optional<std::size_t>("send_queue_bytes", c.limits.send_queue_bytes, 64u << 10, std::size_t{1} << 30);
    l.optional<std::size_t>("socket_buffer_bytes", c.limits.socket_buffer_bytes, 4u << 10, std::size_t{1} << 30);
    l.optional<std::size_t>("multicast_budget", c.limits.multicast_budget, 1, 1u << 16);
    if (l.has("connect_timeout_ms")) c.limits.connect_timeout = ms(l.required<std::uint64_t>("connect_timeout_ms", 1, 600'000));
  }
  if (c.node.mode == Mode::mixed && !c.multicast) throw ConfigError("multicast", "missing (protocol.mode mixed needs it)");
  return c;
}

DaemonConfig load_daemon_config(const std::string& path) {
  std::error_code ec;
  if (!std::filesystem::exists(path, ec)) throw ConfigError("file", "cannot read " + path + ": no such file");
  if (!std::filesystem::is_regular_file(path, ec)) throw ConfigError("file", "cannot read " + path + ": not a regular file");
  std::ifstream in(path);
  if (!in) throw ConfigError("file", "cannot read " + path + ": permission denied or unreadable");
  std::stringstream ss;
  ss << in.rdbuf();
  return parse_daemon_config(ss.str());
}

std::shared_ptr<const View> DaemonConfig::view() const {
  std::vector<NodeId> members{node.self}, natted;
  std::vector<std::uint32_t> domains;
  if (nat_domain) natted.push_back(node.self), domains.push_back(*nat_domain);
  for (const auto& p : peers) {
    members.push_back(p.id);
    if (p.nat_domain) natted.push_back(p.id), domains.push_back(*p.nat_domain);
  }
  return std::make_shared<const View>(members, natted, domains);
}

const PeerConfig* DaemonConfig::peer(NodeId id) const {
  for (const auto& p : peers)
    if (p.id == id) return &p;
  return nullptr;
}

}  // namespace mixcast::real
