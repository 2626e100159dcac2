// Scenario loading (YAML via yaml-cpp), overrides, validation, rescaling and explanation.
// The format is documented key by key in scenarios/README.md; keep the two in step.
#include "mixcast/sim/scenario.hpp"

#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <cctype>
#include <charconv>
#include <cstdio>
#include <cstdlib>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <limits>
#include <map>
#include <optional>
#include <set>
#include <sstream>
#include <utility>

namespace mixcast::sim {

namespace {

// Largest scenario accepted (every engine allocates per-node state up front).
constexpr std::uint64_t kMaxTotalNodes = 10'000'000;
constexpr std::uint32_t kMaxPayloadBytes = 65536;
constexpr std::uint32_t kMinDedupWindow = 16;

// ---------------------------------------------------------------------------------------------
// Key paths and internal errors

struct Seg {
  bool is_index = false;
  std::string key;
  std::size_t index = 0;
};
using Path = std::vector<Seg>;

Path operator/(Path p, const std::string& key) {
  p.push_back(Seg{false, key, 0});
  return p;
}
Path operator/(Path p, std::size_t index) {
  p.push_back(Seg{true, {}, index});
  return p;
}

std::string format_path(const Path& p) {
  std::string out;
  for (const Seg& s : p) {
    if (s.is_index) {
      out += '[' + std::to_string(s.index) + ']';
    } else {
      if (!out.empty()) out += '.';
      out += s.key;
    }
  }
  return out;
}

bool is_prefix(const Path& prefix, const Path& p) {
  if (prefix.size() > p.size()) return false;
  for (std::size_t i = 0; i < prefix.size(); ++i) {
    const Seg& a = prefix[i];
    const Seg& b = p[i];
    if (a.is_index != b.is_index) return false;
    if (a.is_index ? a.index != b.index : a.key != b.key) return false;
  }
  return true;
}

// An error found while converting or validating; turned into a ScenarioError with a location
// ("FILE:LINE" or "--set OVERRIDE") at the public boundary.
struct Issue {
  Path path;
  std::string message;
  int line = 0;  // 1-based when known up front (else 0: looked up from the path)
};

[[noreturn]] void fail(const Path& path, std::string message, int line = 0) {
  throw Issue{path, std::move(message), line};
}

std::string quote(const std::string& s) {
  std::string out = "\"";
  for (char c : s) {
    if (c == '"' || c == '\\') out += '\\';
    if (c == '\n') {
      out += "\\n";
      continue;
    }
    out += c;
  }
  return out + '"';
}

std::string join(const std::vector<std::string>& items, const char* sep = ", ") {
  std::string out;
  for (const auto& i : items) {
    if (!out.empty()) out += sep;
    out += i;
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
// Schema: which keys exist where. Shared by the converter (unknown-key errors) and by overrides
// (unknown path segments), so the two can never disagree.

struct Schema {
  enum Kind { leaf, map, list } kind = leaf;
  std::vector<std::pair<std::string, const Schema*>> fields;  // map
  const Schema* element = nullptr;                            // list

  const Schema* field(const std::string& key) const {
    for (const auto& f : fields)
      if (f.first == key) return f.second;
    return nullptr;
  }
  std::vector<std::string> keys() const {
    std::vector<std::string> out;
    for (const auto& f : fields) out.push_back(f.first);
    return out;
  }
  bool has_name_field() const { return field("name") != nullptr; }
};

struct Schemas {
  Schema leaf{Schema::leaf, {}, nullptr};
  Schema link, subnet, subnet_list, datacenter, datacenter_list, wan, wan_list, protocol, workload,
      crash, crash_list, root;
  Schemas() {
    link = {Schema::map, {{"bandwidth", &leaf}, {"latency", &leaf}, {"loss", &leaf}}, nullptr};
    subnet = {Schema::map,
              {{"name", &leaf},
               {"nodes", &leaf},
               {"lan", &link},
               {"multicast", &leaf},
               {"multicast_loss", &leaf},
               {"nat", &leaf},
               {"multicast_send_broken", &leaf},
               {"multicast_recv_broken", &leaf},
               {"multicast_fails_at", &leaf},
               {"multicast_recovers_at", &leaf}},
              nullptr};
    subnet_list = {Schema::list, {}, &subnet};
    datacenter = {Schema::map, {{"name", &leaf}, {"subnets", &subnet_list}}, nullptr};
    datacenter_list = {Schema::list, {}, &datacenter};
    wan = {Schema::map,
           {{"between", &leaf}, {"bandwidth", &leaf}, {"latency", &leaf}, {"loss", &leaf}},
           nullptr};
    wan_list = {Schema::list, {}, &wan};
    protocol = {Schema::map,
                {{"mode", &leaf},
                 {"ack_timeout", &leaf},
                 {"forced_tcp_share", &leaf},
                 {"confirm_interval", &leaf},
                 {"reach_expiry", &leaf},
                 {"beacon_interval", &leaf},
                 {"nat_links", &leaf},
                 {"retention", &leaf},
                 {"dedup_window", &leaf}},
                nullptr};
    workload = {Schema::map,
                {{"broadcasts", &leaf},
                 {"payload_bytes", &leaf},
                 {"rate", &leaf},
                 {"origins", &leaf},
                 {"warmup_broadcasts", &leaf},
                 {"start", &leaf}},
                nullptr};
    crash = {Schema::map, {{"at", &leaf}, {"count", &leaf}, {"fraction", &leaf}, {"nodes", &leaf}, {"restart_after", &leaf}},
             nullptr};
    crash_list = {Schema::list, {}, &crash};
    root = {Schema::map,
            {{"name", &leaf},
             {"seed", &leaf},
             {"time_limit", &leaf},
             {"datacenters", &datacenter_list},
             {"wan", &wan_list},
             {"protocol", &protocol},
             {"workload", &workload},
             {"crashes", &crash_list}},
            nullptr};
  }
  Schemas(const Schemas&) = delete;
  Schemas& operator=(const Schemas&) = delete;
};

const Schemas& schemas() {
  static const Schemas s;
  return s;
}

std::size_t edit_distance(const std::string& a, const std::string& b) {
  std::vector<std::size_t> prev(b.size() + 1), cur(b.size() + 1);
  for (std::size_t j = 0; j <= b.size(); ++j) prev[j] = j;
  for (std::size_t i = 1; i <= a.size(); ++i) {
    cur[0] = i;
    for (std::size_t j = 1; j <= b.size(); ++j)
      cur[j] = std::min({prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (a[i - 1] == b[j - 1] ? 0 : 1)});
    std::swap(prev, cur);
  }
  return prev[b.size()];
}

std::string unknown_key_hint(const std::string& key, const Schema& schema) {
  std::string best;
  std::size_t best_d = 3;  // suggest only close matches
  for (const auto& k : schema.keys()) {
    const std::size_t d = edit_distance(key, k);
    if (d < best_d && d * 2 <= key.size()) {
      best_d = d;
      best = k;
    }
  }
  std::string out = "(allowed: " + join(schema.keys()) + ")";
  if (!best.empty()) out = "(did you mean \"" + best + "\"? allowed: " + join(schema.keys()) + ")";
  return out;
}

// ---------------------------------------------------------------------------------------------
// Scalar parsing

std::string describe(const YAML::Node& n) {
  switch (n.Type()) {
    case YAML::NodeType::Scalar: return quote(n.Scalar());
    case YAML::NodeType::Sequence: return "a list";
    case YAML::NodeType::Map: return "a map";
    case YAML::NodeType::Null:
    case YAML::NodeType::Undefined: break;
  }
  return "nothing (empty value)";
}

const std::string& scalar_of(const YAML::Node& n, const Path& path, const std::string& expected) {
  if (!n.IsScalar()) fail(path, "expected " + expected + ", got " + describe(n));
  return n.Scalar();
}

std::string trim(const std::string& s) {
  std::size_t b = s.find_first_not_of(" \t");
  if (b == std::string::npos) return {};
  std::size_t e = s.find_last_not_of(" \t");
  return s.substr(b, e - b + 1);
}

std::string lower(std::string s) {
  for (char& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

// Parses a leading decimal number; returns the rest (trimmed) in `rest`. False if no number.
bool parse_leading_number(const std::string& text, double& value, std::string& rest) {
  std::string t = trim(text);
  const char* begin = t.data();
  const char* end = t.data() + t.size();
  bool negative = false;
  if (begin != end && (*begin == '+' || *begin == '-')) {
    negative = *begin == '-';
    ++begin;
  }
  if (begin == end || !(std::isdigit(static_cast<unsigned char>(*begin)) || *begin == '.')) return false;
  auto [ptr, ec] = std::from_chars(begin, end, value, std::chars_format::general);
  if (ec != std::errc() || !std::isfinite(value)) return false;
  if (negative) value = -value;
  rest = trim(std::string(ptr, end));
  return true;
}

std::uint64_t parse_uint(const YAML::Node& n, const Path& path,
                         std::uint64_t max = std::numeric_limits<std::uint32_t>::max()) {
  const std::string what = "an unsigned integer";
  const std::string t = trim(scalar_of(n, path, what));
  if (t.empty() || !std::all_of(t.begin(), t.end(), [](char c) { return c >= '0' && c <= '9'; }))
    fail(path, "expected " + what + ", got " + quote(n.Scalar()));
  std::uint64_t v = 0;
  auto [ptr, ec] = std::from_chars(t.data(), t.data() + t.size(), v);
  if (ec != std::errc() || ptr != t.data() + t.size() || v > max)
    fail(path, "value " + t + " is too large (maximum " + std::to_string(max) + ")");
  return v;
}

std::uint32_t parse_u32(const YAML::Node& n, const Path& path) {
  return static_cast<std::uint32_t>(parse_uint(n, path));
}

double parse_number(const YAML::Node& n, const Path& path) {
  const std::string what = "a number";
  const std::string& t = scalar_of(n, path, what);
  double v = 0;
  std::string rest;
  if (!parse_leading_number(t, v, rest) || !rest.empty())
    fail(path, "expected " + what + ", got " + quote(t));
  return v;
}

bool parse_bool(const YAML::Node& n, const Path& path) {
  const std::string what = "a boolean (true or false)";
  const std::string t = lower(trim(scalar_of(n, path, what)));
  if (t == "true" || t == "yes" || t == "on") return true;
  if (t == "false" || t == "no" || t == "off") return false;
  fail(path, "expected " + what + ", got " + quote(n.Scalar()));
}

std::string parse_string(const YAML::Node& n, const Path& path) {
  return scalar_of(n, path, "a string");
}

}  // namespace

namespace {

// Throws std::invalid_argument with a message (no location); wrapped by the node parsers.
double duration_from_text(const std::string& text) {
  const std::string expected =
      "expected a duration (seconds, or a number with unit s, ms, us or ns, e.g. \"40ms\"), got " +
      quote(text);
  double v = 0;
  std::string unit;
  if (!parse_leading_number(text, v, unit)) throw std::invalid_argument(expected);
  double scale = 0;
  if (unit.empty() || unit == "s")
    scale = 1;
  else if (unit == "ms")
    scale = 1e-3;
  else if (unit == "us" || unit == "\xC2\xB5s" /* µs */)
    scale = 1e-6;
  else if (unit == "ns")
    scale = 1e-9;
  else
    throw std::invalid_argument("unknown duration unit " + quote(unit) + " in " + quote(text) +
                                " (allowed: s, ms, us, ns)");
  if (v < 0) throw std::invalid_argument("a duration must not be negative, got " + quote(text));
  return v * scale;
}

double bandwidth_from_text(const std::string& text) {
  const std::string expected =
      "expected a bandwidth (bits per second, or a number with unit bps, Kbps, Mbps or Gbps, e.g. "
      "\"100Mbps\"), got " +
      quote(text);
  double v = 0;
  std::string unit;
  if (!parse_leading_number(text, v, unit)) throw std::invalid_argument(expected);
  double scale = 0;
  std::string rest = unit;
  if (unit.size() == 4) {
    switch (unit[0]) {
      case 'k': case 'K': scale = 1e3; break;
      case 'm': case 'M': scale = 1e6; break;
      case 'g': case 'G': scale = 1e9; break;
      default: break;
    }
    rest = unit.substr(1);
  } else if (unit.empty() || unit == "bps") {
    scale = 1;
    rest = "bps";
  }
  if (scale == 0 || rest != "bps") {
    std::string msg = "unknown bandwidth unit " + quote(unit) + " in " + quote(text) +
                      " (allowed: bps, Kbps, Mbps, Gbps";
    if (lower(unit).find("bps") != std::string::npos && unit.find('B') != std::string::npos)
      msg += "; units are bits per second, write a lowercase b";
    throw std::invalid_argument(msg + ")");
  }
  if (v <= 0) throw std::invalid_argument("a bandwidth must be > 0, got " + quote(text));
  return v * scale;
}

double loss_from_text(const std::string& text) {
  const std::string expected =
      "expected a loss probability (a number from 0 to 1, or a percentage like \"5%\"), got " +
      quote(text);
  double v = 0;
  std::string rest;
  if (!parse_leading_number(text, v, rest)) throw std::invalid_argument(expected);
  if (rest == "%")
    v /= 100;
  else if (!rest.empty())
    throw std::invalid_argument(expected);
  if (v < 0 || v > 1)
    throw std::invalid_argument("a loss probability must be from 0 to 1 (0% to 100%), got " +
                                quote(text));
  return v;
}

template <typename F>
double parse_with(const YAML::Node& n, const Path& path, const std::string& what, F f) {
  const std::string& t = scalar_of(n, path, what);
  try {
    return f(t);
  } catch (const std::invalid_argument& e) {
    fail(path, e.what());
  }
}

double parse_duration(const YAML::Node& n, const Path& path) {
  return parse_with(n, path, "a duration (e.g. \"40ms\")", duration_from_text);
}
double parse_bandwidth(const YAML::Node& n, const Path& path) {
  return parse_with(n, path, "a bandwidth (e.g. \"100Mbps\")", bandwidth_from_text);
}
double parse_loss(const YAML::Node& n, const Path& path) {
  return parse_with(n, path, "a loss probability (e.g. 0.01 or \"1%\")", loss_from_text);
}

// ---------------------------------------------------------------------------------------------
// Maps and lists

// The entries of a YAML map, checked against a schema: no unknown keys, no duplicate keys, all
// required keys present. A null value where a map is expected counts as an empty map.
class Fields {
 public:
  Fields(const YAML::Node& node, const Path& path, const Schema& schema,
         std::initializer_list<const char*> required = {})
      : path_(path) {
    if (!node.IsMap() && !node.IsNull()) {
      std::string expected = path.empty() ? "a map of keys at the top level" : "a map";
      fail(path, "expected " + expected + " (keys: " + join(schema.keys()) + "), got " + describe(node));
    }
    if (node.IsMap()) {
      std::map<std::string, int> seen;  // key -> line
      for (const auto& kv : node) {
        const int line = kv.first.Mark().line + 1;
        if (!kv.first.IsScalar())
          fail(path, "keys must be plain words, got " + describe(kv.first), line);
        const std::string& key = kv.first.Scalar();
        if (!schema.field(key)) {
          std::string where = path.empty() ? "at the top level" : "in " + format_path(path);
          fail(path / key, "unknown key " + where + " " + unknown_key_hint(key, schema), line);
        }
        auto [it, fresh] = seen.emplace(key, line);
        if (!fresh)
          fail(path / key, "duplicate key (first given on line " + std::to_string(it->second) + ")", line);
        entries_.emplace_back(key, kv.second);
      }
    }
    for (const char* r : required)
      if (!has(r)) fail(path / r, "missing required key");
  }

  bool has(const std::string& key) const {
    return std::any_of(entries_.begin(), entries_.end(), [&](const auto& e) { return e.first == key; });
  }
  YAML::Node get(const std::string& key) const {
    for (const auto& e : entries_)
      if (e.first == key) return e.second;
    return YAML::Node();
  }
  Path at(const std::string& key) const { return path_ / key; }

  template <typename T, typename F>
  void read(const std::string& key, T& out, F parse) const {
    if (has(key)) out = static_cast<T>(parse(get(key), at(key)));
  }

 private:
  Path path_;
  std::vector<std::pair<std::string, YAML::Node>> entries_;
};

// A list value; null counts as empty.
std::vector<YAML::Node> list_of(const YAML::Node& n, const Path& path, const std::string& what) {
  std::vector<YAML::Node> out;
  if (n.IsNull()) return out;
  if (!n.IsSequence()) fail(path, "expected a list of " + what + ", got " + describe(n));
  for (const auto& e : n) out.push_back(e);
  return out;
}

std::vector<std::uint32_t> parse_index_list(const YAML::Node& n, const Path& path) {
  std::vector<std::uint32_t> out;
  const auto items = list_of(n, path, "node indexes (unsigned integers)");
  for (std::size_t i = 0; i < items.size(); ++i) out.push_back(parse_u32(items[i], path / i));
  return out;
}

// ---------------------------------------------------------------------------------------------
// Conversion YAML -> Scenario (types and units; ranges and cross-field rules are in check())

void read_link(const Fields& f, LinkSpec& link) {
  f.read("bandwidth", link.bandwidth_bps, parse_bandwidth);
  f.read("latency", link.latency_s, parse_duration);
  f.read("loss", link.loss, parse_loss);
}

SubnetSpec convert_subnet(const YAML::Node& n, const Path& path) {
  const Fields f(n, path, schemas().subnet, {"name", "nodes"});
  SubnetSpec s;
  s.name = parse_string(f.get("name"), f.at("name"));
  s.nodes = parse_u32(f.get("nodes"), f.at("nodes"));
  if (f.has("lan")) read_link(Fields(f.get("lan"), f.at("lan"), schemas().link), s.lan);
  f.read("multicast", s.multicast, parse_bool);
  f.read("multicast_loss", s.multicast_loss, parse_loss);
  f.read("nat", s.nat, parse_bool);
  if (f.has("multicast_send_broken"))
    s.multicast_send_broken = parse_index_list(f.get("multicast_send_broken"), f.at("multicast_send_broken"));
  if (f.has("multicast_recv_broken"))
    s.multicast_recv_broken = parse_index_list(f.get("multicast_recv_broken"), f.at("multicast_recv_broken"));
  f.read("multicast_fails_at", s.multicast_fails_at_s, parse_duration);
  f.read("multicast_recovers_at", s.multicast_recovers_at_s, parse_duration);
  return s;
}

DatacenterSpec convert_datacenter(const YAML::Node& n, const Path& path) {
  const Fields f(n, path, schemas().datacenter, {"name", "subnets"});
  DatacenterSpec d;
  d.name = parse_string(f.get("name"), f.at("name"));
  const auto subnets = list_of(f.get("subnets"), f.at("subnets"), "subnets");
  for (std::size_t i = 0; i < subnets.size(); ++i)
    d.subnets.push_back(convert_subnet(subnets[i], f.at("subnets") / i));
  return d;
}

WanLinkSpec convert_wan(const YAML::Node& n, const Path& path) {
  const Fields f(n, path, schemas().wan, {"between"});
  WanLinkSpec w;
  const Path bp = f.at("between");
  const auto ends = list_of(f.get("between"), bp, "two datacenter names");
  if (ends.size() != 2)
    fail(bp, "expected exactly two datacenter names, got " + std::to_string(ends.size()));
  w.a = parse_string(ends[0], bp / 0);
  w.b = parse_string(ends[1], bp / 1);
  read_link(f, w.link);
  return w;
}

Mode parse_mode(const YAML::Node& n, const Path& path) {
  const std::string what = "\"tcp\" or \"mixed\"";
  const std::string& t = scalar_of(n, path, what);
  if (t == "tcp") return Mode::tcp;
  if (t == "mixed") return Mode::mixed;
  fail(path, "expected " + what + ", got " + quote(t));
}

ProtocolSpec convert_protocol(const YAML::Node& n, const Path& path) {
  const Fields f(n, path, schemas().protocol);
  ProtocolSpec p;
  f.read("mode", p.mode, parse_mode);
  f.read("ack_timeout", p.ack_timeout_s, parse_duration);
  f.read("forced_tcp_share", p.forced_tcp_share, parse_number);
  f.read("confirm_interval", p.confirm_interval_s, parse_duration);
  f.read("reach_expiry", p.reach_expiry_s, parse_duration);
  f.read("beacon_interval", p.beacon_interval_s, parse_duration);
  f.read("nat_links", p.nat_links, parse_u32);
  f.read("retention", p.retention, parse_u32);
  f.read("dedup_window", p.dedup_window, parse_u32);
  return p;
}

WorkloadSpec convert_workload(const YAML::Node& n, const Path& path) {
  const Fields f(n, path, schemas().workload);
  WorkloadSpec w;
  f.read("broadcasts", w.broadcasts, parse_u32);
  f.read("payload_bytes", w.payload_bytes, parse_u32);
  f.read("rate", w.rate_per_s, parse_number);
  if (f.has("origins")) {
    const YAML::Node o = f.get("origins");
    const Path op = f.at("origins");
    if (o.IsScalar() && o.Scalar() == "random") {
      w.origins.clear();
    } else if (o.IsSequence()) {
      w.origins = parse_index_list(o, op);
      if (w.origins.empty()) fail(op, "the list of origins is empty (write \"random\" for random origins)");
    } else {
      fail(op, "expected \"random\" or a list of global node indexes, got " + describe(o));
    }
  }
  f.read("warmup_broadcasts", w.warmup_broadcasts, parse_u32);
  f.read("start", w.start_s, parse_duration);
  return w;
}

CrashSpec convert_crash(const YAML::Node& n, const Path& path) {
  const Fields f(n, path, schemas().crash, {"at"});
  std::vector<std::string> given;
  for (const char* k : {"count", "fraction", "nodes"})
    if (f.has(k)) given.emplace_back(k);
  if (given.size() != 1)
    fail(path, "give exactly one of count, fraction or nodes (got " +
                   (given.empty() ? std::string("none") : join(given, " and ")) + ")");
  CrashSpec c;
  c.at_s = parse_duration(f.get("at"), f.at("at"));
  f.read("count", c.count, parse_u32);
  f.read("fraction", c.fraction, parse_number);
  if (f.has("nodes")) {
    c.nodes = parse_index_list(f.get("nodes"), f.at("nodes"));
    if (c.nodes.empty()) fail(f.at("nodes"), "the list of nodes to crash is empty");
  }
  if (f.has("restart_after")) c.restart_after_s = parse_duration(f.get("restart_after"), f.at("restart_after"));
  return c;
}

Scenario convert(const YAML::Node& root, const std::string& default_name) {
  const Fields f(root, {}, schemas().root, {"datacenters"});
  Scenario s;
  s.name = default_name;
  f.read("name", s.name, parse_string);
  f.read("seed", s.seed, [](const YAML::Node& n, const Path& p) {
    return parse_uint(n, p, std::numeric_limits<std::uint64_t>::max());
  });
  f.read("time_limit", s.time_limit_s, parse_duration);
  const auto dcs = list_of(f.get("datacenters"), f.at("datacenters"), "datacenters");
  for (std::size_t i = 0; i < dcs.size(); ++i)
    s.datacenters.push_back(convert_datacenter(dcs[i], f.at("datacenters") / i));
  if (f.has("wan")) {
    const auto links = list_of(f.get("wan"), f.at("wan"), "WAN links");
    for (std::size_t i = 0; i < links.size(); ++i) s.wan.push_back(convert_wan(links[i], f.at("wan") / i));
  }
  if (f.has("protocol")) s.protocol = convert_protocol(f.get("protocol"), f.at("protocol"));
  if (f.has("workload")) s.workload = convert_workload(f.get("workload"), f.at("workload"));
  if (f.has("crashes")) {
    const auto crashes = list_of(f.get("crashes"), f.at("crashes"), "crashes");
    for (std::size_t i = 0; i < crashes.size(); ++i)
      s.crashes.push_back(convert_crash(crashes[i], f.at("crashes") / i));
  }
  return s;
}

// ---------------------------------------------------------------------------------------------
// Cross-field and range checks on the struct

void check_finite(double v, const Path& p) {
  if (!std::isfinite(v)) fail(p, "must be a finite number");
}
void check_positive(double v, const Path& p, const std::string& what = "must be > 0") {
  check_finite(v, p);
  if (!(v > 0)) fail(p, what);
}
void check_nonnegative(double v, const Path& p) {
  check_finite(v, p);
  if (v < 0) fail(p, "must not be negative");
}
void check_probability(double v, const Path& p) {
  check_finite(v, p);
  if (v < 0 || v > 1) fail(p, "must be from 0 to 1");
}

void check_link(const LinkSpec& l, const Path& p) {
  check_positive(l.bandwidth_bps, p / "bandwidth", "must be > 0 bits per second");
  check_nonnegative(l.latency_s, p / "latency");
  check_probability(l.loss, p / "loss");
}

bool valid_name(const std::string& n) {
  return !n.empty() && std::all_of(n.begin(), n.end(), [](char c) {
    return std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '_' || c == '.';
  });
}

void check_name(const std::string& n, const Path& p) {
  if (n.empty()) fail(p, "must not be empty");
  if (!valid_name(n))
    fail(p, "invalid name " + quote(n) + " (use letters, digits, '-', '_' and '.')");
}

void check_indexes(const std::vector<std::uint32_t>& idx, std::uint64_t limit, const Path& p,
                   const std::string& what, bool allow_duplicates) {
  std::set<std::uint32_t> seen;
  for (std::size_t i = 0; i < idx.size(); ++i) {
    if (idx[i] >= limit)
      fail(p / i, "node index " + std::to_string(idx[i]) + " is out of range: " + what + " has " +
                      std::to_string(limit) + " node" + (limit == 1 ? "" : "s") + " (indexes 0.." +
                      std::to_string(limit == 0 ? 0 : limit - 1) + ")");
    if (!allow_duplicates && !seen.insert(idx[i]).second)
      fail(p / i, "node index " + std::to_string(idx[i]) + " is listed twice");
  }
}

void check(const Scenario& s) {
  const Path root;
  if (s.name.empty()) fail(root / "name", "must not be empty");
  check_positive(s.time_limit_s, root / "time_limit");

  if (s.datacenters.empty()) fail(root / "datacenters", "at least one datacenter is needed");
  std::map<std::string, std::size_t> dc_index;
  std::map<std::string, Path> subnet_names;
  std::uint64_t total = 0;
  for (std::size_t d = 0; d < s.datacenters.size(); ++d) {
    const DatacenterSpec& dc = s.datacenters[d];
    const Path dp = root / "datacenters" / d;
    check_name(dc.name, dp / "name");
    if (!dc_index.emplace(dc.name, d).second)
      fail(dp / "name", "duplicate datacenter name " + quote(dc.name) + " (also datacenters[" +
                            std::to_string(dc_index[dc.name]) + "])");
    if (dc.subnets.empty()) fail(dp / "subnets", "at least one subnet is needed");
    for (std::size_t i = 0; i < dc.subnets.size(); ++i) {
      const SubnetSpec& sn = dc.subnets[i];
      const Path sp = dp / "subnets" / i;
      check_name(sn.name, sp / "name");
      auto [it, fresh] = subnet_names.emplace(sn.name, sp);
      if (!fresh)
        fail(sp / "name", "duplicate subnet name " + quote(sn.name) + " (also " + format_path(it->second) +
                              "; subnet names are unique across the scenario)");
      if (sn.nodes < 1) fail(sp / "nodes", "must be >= 1");
      total += sn.nodes;
      check_link(sn.lan, sp / "lan");
      check_probability(sn.multicast_loss, sp / "multicast_loss");
      check_indexes(sn.multicast_send_broken, sn.nodes, sp / "multicast_send_broken", "the subnet", false);
      check_indexes(sn.multicast_recv_broken, sn.nodes, sp / "multicast_recv_broken", "the subnet", false);
      if (std::isnan(sn.multicast_fails_at_s) || std::isinf(sn.multicast_fails_at_s))
        fail(sp / "multicast_fails_at", "must be a finite number");
      if (sn.multicast_recovers_at_s >= 0) {
        if (std::isinf(sn.multicast_recovers_at_s)) fail(sp / "multicast_recovers_at", "must be a finite number");
        if (sn.multicast_fails_at_s < 0) fail(sp / "multicast_recovers_at", "needs multicast_fails_at (multicast must fail first)");
        if (sn.multicast_recovers_at_s <= sn.multicast_fails_at_s)
          fail(sp / "multicast_recovers_at", "must come after multicast_fails_at (" +
                                                 std::to_string(sn.multicast_fails_at_s) + " s)");
      }
    }
  }
  if (total > kMaxTotalNodes)
    fail(root / "datacenters", "too many nodes: " + std::to_string(total) + " (at most " +
                                   std::to_string(kMaxTotalNodes) + ")");

  // WAN: known, distinct endpoints; no duplicate pair; all datacenters connected.
  std::vector<std::size_t> parent(s.datacenters.size());
  for (std::size_t i = 0; i < parent.size(); ++i) parent[i] = i;
  auto find = [&](std::size_t x) {
    while (parent[x] != x) x = parent[x] = parent[parent[x]];
    return x;
  };
  std::map<std::pair<std::string, std::string>, std::size_t> pairs;
  for (std::size_t w = 0; w < s.wan.size(); ++w) {
    const WanLinkSpec& l = s.wan[w];
    const Path wp = root / "wan" / w;
    const std::string* ends[2] = {&l.a, &l.b};
    for (std::size_t e = 0; e < 2; ++e)
      if (!dc_index.count(*ends[e])) {
        std::vector<std::string> names;
        for (const auto& dc : s.datacenters) names.push_back(dc.name);
        fail(wp / "between" / e, "impossible topology: unknown datacenter " + quote(*ends[e]) +
                                     " (datacenters: " + join(names) + ")");
      }
    if (l.a == l.b) fail(wp / "between", "a WAN link must join two different datacenters, got " + quote(l.a) + " twice");
    auto key = std::minmax(l.a, l.b);
    auto [it, fresh] = pairs.emplace(std::make_pair(key.first, key.second), w);
    if (!fresh)
      fail(wp / "between", "duplicate WAN link between " + quote(l.a) + " and " + quote(l.b) + " (also wan[" +
                               std::to_string(it->second) + "])");
    check_link(l.link, wp);
    parent[find(dc_index[l.a])] = find(dc_index[l.b]);
  }
  // Connected groups, in the order of their first datacenter.
  std::map<std::size_t, std::size_t> group_of_root;
  std::vector<std::vector<std::string>> components;
  for (std::size_t d = 0; d < s.datacenters.size(); ++d) {
    auto [it, fresh] = group_of_root.emplace(find(d), components.size());
    if (fresh) components.emplace_back();
    components[it->second].push_back(s.datacenters[d].name);
  }
  if (components.size() > 1) {
    std::vector<std::string> groups;
    for (const auto& c : components) groups.push_back("{" + join(c) + "}");
    fail(root / "wan", "impossible topology: the WAN links do not connect all datacenters; separate groups: " +
                           join(groups, ", "));
  }

  const ProtocolSpec& p = s.protocol;
  const Path pp = root / "protocol";
  if (p.mode != Mode::tcp && p.mode != Mode::mixed) fail(pp / "mode", "must be tcp or mixed");
  check_positive(p.ack_timeout_s, pp / "ack_timeout");
  check_probability(p.forced_tcp_share, pp / "forced_tcp_share");
  check_positive(p.confirm_interval_s, pp / "confirm_interval");
  check_positive(p.reach_expiry_s, pp / "reach_expiry");
  check_positive(p.beacon_interval_s, pp / "beacon_interval");
  if (p.nat_links < 1) fail(pp / "nat_links", "must be >= 1");
  if (p.retention < 1) fail(pp / "retention", "must be >= 1");
  if (p.dedup_window < kMinDedupWindow)
    fail(pp / "dedup_window", "must be >= " + std::to_string(kMinDedupWindow));

  const WorkloadSpec& w = s.workload;
  const Path wp = root / "workload";
  if (w.broadcasts < 1) fail(wp / "broadcasts", "must be >= 1");
  if (w.payload_bytes > kMaxPayloadBytes)
    fail(wp / "payload_bytes", "must be at most " + std::to_string(kMaxPayloadBytes) + " bytes");
  check_positive(w.rate_per_s, wp / "rate", "must be > 0 broadcasts per second");
  check_nonnegative(w.start_s, wp / "start");
  check_indexes(w.origins, total, wp / "origins", "the scenario", true);

  std::set<std::uint32_t> origins(w.origins.begin(), w.origins.end());
  const std::uint64_t max_count = total - std::min<std::uint64_t>(total, std::max<std::size_t>(1, origins.size()));
  for (std::size_t i = 0; i < s.crashes.size(); ++i) {
    const CrashSpec& c = s.crashes[i];
    const Path cp = root / "crashes" / i;
    check_nonnegative(c.at_s, cp / "at");
    check_probability(c.fraction, cp / "fraction");
    const int kinds = (c.count > 0) + (c.fraction > 0) + (!c.nodes.empty());
    if (kinds > 1) fail(cp, "give exactly one of count, fraction or nodes");
    if (c.count > max_count)
      fail(cp / "count", "cannot crash " + std::to_string(c.count) + " nodes: origins never crash, so at most " +
                             std::to_string(max_count) + " of the " + std::to_string(total) + " nodes can");
    check_indexes(c.nodes, total, cp / "nodes", "the scenario", false);
  }
}

// ---------------------------------------------------------------------------------------------
// Overrides

struct OverrideOrigin {
  Path path;  // canonical (indexes resolved)
  std::string text;
};

[[noreturn]] void override_fail(const std::string& text, const std::string& message) {
  throw ScenarioError("--set " + text + ": " + message);
}

bool all_digits(const std::string& s) {
  return !s.empty() && std::all_of(s.begin(), s.end(), [](char c) { return c >= '0' && c <= '9'; });
}

std::string node_kind(const YAML::Node& n) {
  if (n.IsMap()) return "a map";
  if (n.IsSequence()) return "a list";
  if (n.IsScalar()) return "a single value";
  return "empty";
}

OverrideOrigin apply_override(YAML::Node& root, const std::string& text);

// The entry of `list` selected by `seg`: an index, or the value of the entry's `name` key.
std::optional<std::size_t> select_entry(const YAML::Node& list, const std::string& seg) {
  if (all_digits(seg) && seg.size() < 10) return static_cast<std::size_t>(std::stoul(seg));
  for (std::size_t k = 0; k < list.size(); ++k) {
    const YAML::Node e = list[k];
    if (e.IsMap() && e["name"] && e["name"].IsScalar() && e["name"].Scalar() == seg) return k;
  }
  return std::nullopt;
}

// `*` in a list position sets the key in every entry: datacenters.*.subnets.*.multicast_loss=0.2
void apply_overrides(YAML::Node& root, const std::string& text, std::vector<OverrideOrigin>& out) {
  const std::size_t eq = text.find('=');
  const std::size_t star = text.find('*');
  if (star == std::string::npos || (eq != std::string::npos && star > eq)) {
    out.push_back(apply_override(root, text));
    return;
  }
  // Count the entries of the list the star selects by resolving the prefix with index 0.
  const std::string prefix = text.substr(0, star);
  if (!prefix.empty() && prefix.back() != '.') override_fail(text, "`*` must stand for a whole list index");
  const YAML::Node& const_root = root;
  YAML::Node cur = YAML::Clone(const_root);
  std::istringstream in(prefix);
  for (std::string seg; std::getline(in, seg, '.') && cur.IsDefined();) {
    seg = trim(seg);
    if (seg.empty()) continue;
    YAML::Node next;
    if (cur.IsSequence()) {
      if (auto k = select_entry(cur, seg); k && *k < cur.size()) next.reset(cur[*k]);
    } else if (cur.IsMap() && cur[seg]) {
      next.reset(cur[seg]);
    }
    cur.reset(next);
  }
  if (!cur.IsSequence() || cur.size() == 0)
    override_fail(text, "`*` must select the entries of a list that has some (" +
                            (prefix.empty() ? std::string("the top level") : prefix.substr(0, prefix.size() - 1)) +
                            " is not)");
  for (std::size_t k = 0; k < cur.size(); ++k)
    apply_overrides(root, prefix + std::to_string(k) + text.substr(star + 1), out);
}

OverrideOrigin apply_override(YAML::Node& root, const std::string& text) {
  const std::size_t eq = text.find('=');
  if (eq == std::string::npos) override_fail(text, "expected key.path=value");
  const std::string key_path = trim(text.substr(0, eq));
  const std::string value_text = text.substr(eq + 1);
  std::vector<std::string> segs;
  {
    std::string cur;
    std::istringstream in(key_path);
    while (std::getline(in, cur, '.')) segs.push_back(trim(cur));
    if (!key_path.empty() && key_path.back() == '.') segs.emplace_back();
  }
  if (segs.empty() || std::any_of(segs.begin(), segs.end(), [](const std::string& x) { return x.empty(); }))
    override_fail(text, "empty key in path " + quote(key_path));
  YAML::Node value;
  try {
    value = YAML::Load(value_text);
  } catch (const YAML::Exception& e) {
    override_fail(text, "the value is not valid YAML: " + e.msg);
  }

  YAML::Node cur;
  cur.reset(root);
  const Schema* sch = &schemas().root;
  Path canon;
  for (std::size_t i = 0; i < segs.size(); ++i) {
    const std::string& seg = segs[i];
    const bool last = i + 1 == segs.size();
    const std::string where = canon.empty() ? "the top level" : format_path(canon);
    if (sch->kind == Schema::map) {
      const Schema* child = sch->field(seg);
      if (!child)
        override_fail(text, "unknown key " + quote(seg) + " in " + where + " " + unknown_key_hint(seg, *sch));
      if (!cur.IsMap() && !cur.IsNull())
        override_fail(text, "cannot set " + quote(seg) + ": " + where + " is " + node_kind(cur) +
                                " in the scenario, not a map");
      canon = canon / seg;
      if (last) {
        cur[seg] = value;
        break;
      }
      YAML::Node next = cur[seg];
      if ((!next.IsDefined() || next.IsNull()) && child->kind == Schema::map)
        next = YAML::Node(YAML::NodeType::Map);
      cur.reset(next);
      sch = child;
    } else {
      // A list, or a leaf value that happens to be a list (e.g. workload.origins.0).
      if (sch->kind == Schema::list && (!cur.IsDefined() || cur.IsNull()))
        override_fail(text, "cannot select " + quote(seg) + ": " + where + " has no entries");
      if (!cur.IsSequence()) {
        if (sch->kind == Schema::list)
          override_fail(text, "cannot select " + quote(seg) + ": " + where + " is " + node_kind(cur) +
                                  " in the scenario, not a list");
        override_fail(text, where + " takes a single value; there is no " + quote(seg) + " inside it");
      }
      std::size_t idx = 0;
      if (all_digits(seg) && seg.size() < 10) {
        idx = static_cast<std::size_t>(std::stoul(seg));
      } else if (sch->kind == Schema::list && sch->element->has_name_field()) {
        // Entries with a name can be selected by it: datacenters.eu.subnets.eu-a.nodes=12
        const auto named = select_entry(cur, seg);
        if (named) idx = *named;
        else
          override_fail(text, where + " has no entry named " + quote(seg) + " (use a name or an index 0.." +
                                  std::to_string(cur.size() == 0 ? 0 : cur.size() - 1) + ")");
      } else {
        override_fail(text, quote(seg) + " is not a list index (" + where + " is a list)");
      }
      if (idx >= cur.size())
        override_fail(text, "index " + std::to_string(idx) + " is out of range (" + where + " has " +
                                std::to_string(cur.size()) + " entr" + (cur.size() == 1 ? "y" : "ies") + ")");
      canon = canon / idx;
      if (last) {
        cur[idx] = value;
        break;
      }
      YAML::Node next = cur[idx];
      cur.reset(next);
      if (sch->kind == Schema::list) sch = sch->element;
    }
  }
  return OverrideOrigin{canon, text};
}

// ---------------------------------------------------------------------------------------------
// Locating an issue in the YAML tree

// The line (1-based) of the deepest node along `path` (the key's line for map entries); 0 if none.
int line_of(const YAML::Node& root, const Path& path) {
  YAML::Node cur;
  cur.reset(root);
  int line = root.Mark().line + 1;
  for (const Seg& s : path) {
    YAML::Node next;
    bool found = false;
    int next_line = 0;
    if (s.is_index) {
      if (cur.IsSequence() && s.index < cur.size()) {
        next.reset(static_cast<const YAML::Node&>(cur)[s.index]);
        next_line = next.Mark().line + 1;
        found = true;
      }
    } else if (cur.IsMap()) {
      for (const auto& kv : cur) {
        if (kv.first.IsScalar() && kv.first.Scalar() == s.key) {
          next.reset(kv.second);
          next_line = kv.first.Mark().line + 1;
          found = true;
          break;
        }
      }
    }
    if (!found) break;
    cur.reset(next);
    if (next_line > 0) line = next_line;
  }
  return line;
}

std::string locate(const Issue& issue, const YAML::Node* root, const std::vector<OverrideOrigin>& overrides,
                   const std::string& source) {
  for (auto it = overrides.rbegin(); it != overrides.rend(); ++it)
    if (is_prefix(it->path, issue.path)) return "--set " + it->text;
  int line = issue.line;
  if (line <= 0 && root) line = line_of(*root, issue.path);
  std::string loc = source.empty() ? std::string("scenario") : source;
  if (line > 0) loc += ":" + std::to_string(line);
  return loc;
}

std::string format_issue(const std::string& location, const Issue& issue) {
  std::string out = location + ": ";
  if (!issue.path.empty()) out += format_path(issue.path) + ": ";
  return out + issue.message;
}

std::string default_name_for(const std::string& source) {
  std::string stem = std::filesystem::path(source).stem().string();
  return stem.empty() ? std::string("scenario") : stem;
}

// ---------------------------------------------------------------------------------------------
// Human-readable numbers

std::string num(double v) {
  std::ostringstream o;
  o.precision(6);
  o << v;
  return o.str();
}

std::string fmt_duration(double s) {
  if (s == 0) return "0 s";
  const double a = std::fabs(s);
  if (a >= 1) return num(s) + " s";
  if (a >= 1e-3) return num(s * 1e3) + " ms";
  if (a >= 1e-6) return num(s * 1e6) + " us";
  return num(s * 1e9) + " ns";
}

std::string fmt_bandwidth(double bps) {
  if (bps >= 1e9) return num(bps / 1e9) + " Gbps";
  if (bps >= 1e6) return num(bps / 1e6) + " Mbps";
  if (bps >= 1e3) return num(bps / 1e3) + " Kbps";
  return num(bps) + " bps";
}

std::string fmt_link(const LinkSpec& l) {
  return fmt_bandwidth(l.bandwidth_bps) + ", latency " + fmt_duration(l.latency_s) + ", loss " +
         num(l.loss * 100) + "%";
}

std::string fmt_indexes(const std::vector<std::uint32_t>& v) {
  std::vector<std::string> parts;
  for (auto i : v) parts.push_back(std::to_string(i));
  return "[" + join(parts) + "]";
}

}  // namespace


// ---------------------------------------------------------------------------------------------
// Public API

Scenario single_subnet_scenario(std::uint32_t nodes, const std::string& name) {
  Scenario s;
  s.name = name;
  SubnetSpec lan;
  lan.name = "lan";
  lan.nodes = nodes;
  s.datacenters.push_back(DatacenterSpec{"dc", {lan}});
  return s;
}

std::uint32_t Scenario::total_nodes() const {
  std::uint64_t n = 0;
  for (const auto& dc : datacenters)
    for (const auto& sn : dc.subnets) n += sn.nodes;
  return static_cast<std::uint32_t>(std::min<std::uint64_t>(n, std::numeric_limits<std::uint32_t>::max()));
}

std::uint32_t Scenario::total_subnets() const {
  std::size_t n = 0;
  for (const auto& dc : datacenters) n += dc.subnets.size();
  return static_cast<std::uint32_t>(n);
}

std::vector<Placement> place_nodes(const Scenario& s) {
  std::vector<Placement> out;
  out.reserve(s.total_nodes());
  std::uint32_t global_subnet = 0;
  for (std::uint32_t d = 0; d < s.datacenters.size(); ++d)
    for (const auto& sn : s.datacenters[d].subnets) {
      for (std::uint32_t i = 0; i < sn.nodes; ++i) out.push_back(Placement{d, global_subnet, i});
      ++global_subnet;
    }
  return out;
}

const SubnetSpec& subnet_at(const Scenario& s, std::uint32_t global_subnet) {
  std::uint32_t g = global_subnet;
  for (const auto& dc : s.datacenters) {
    if (g < dc.subnets.size()) return dc.subnets[g];
    g -= static_cast<std::uint32_t>(dc.subnets.size());
  }
  throw std::out_of_range("subnet_at: global subnet index " + std::to_string(global_subnet) +
                          " is out of range (the scenario has " + std::to_string(s.total_subnets()) +
                          " subnets)");
}

Scenario load_scenario_text(const std::string& yaml, const std::string& source_name,
                            const std::vector<std::string>& overrides) {
  const std::string source = source_name.empty() ? std::string("scenario") : source_name;
  YAML::Node root;
  try {
    root = YAML::Load(yaml);
  } catch (const YAML::ParserException& e) {
    std::string loc = source;
    if (e.mark.line >= 0) loc += ":" + std::to_string(e.mark.line + 1);
    throw ScenarioError(loc + ": YAML syntax error: " + e.msg);
  } catch (const YAML::Exception& e) {
    throw ScenarioError(source + ": YAML error: " + e.msg);
  }
  if (!root.IsMap()) {
    if (root.IsNull()) throw ScenarioError(source + ": the scenario is empty (at least \"datacenters\" is needed)");
    Issue issue{{}, "expected a map of keys at the top level, got " + describe(root), 0};
    throw ScenarioError(format_issue(locate(issue, &root, {}, source), issue));
  }

  std::vector<OverrideOrigin> origins;
  for (const auto& o : overrides) {
    try {
      apply_overrides(root, o, origins);
    } catch (const YAML::Exception& e) {
      throw ScenarioError("--set " + o + ": " + e.msg);
    }
  }

  try {
    Scenario s = convert(root, default_name_for(source));
    s.source = source;
    check(s);
    return s;
  } catch (const Issue& issue) {
    throw ScenarioError(format_issue(locate(issue, &root, origins, source), issue));
  } catch (const YAML::Exception& e) {
    // Not expected (all access is checked); still a user input problem, never a crash.
    throw ScenarioError(source + ": YAML error: " + e.msg);
  }
}

Scenario load_scenario(const std::string& path, const std::vector<std::string>& overrides) {
  std::error_code ec;
  if (std::filesystem::is_directory(path, ec)) throw ScenarioError(path + ": is a directory, not a scenario file");
  std::ifstream in(path, std::ios::binary);
  if (!in) throw ScenarioError(path + ": cannot open the scenario file (does it exist?)");
  std::ostringstream text;
  text << in.rdbuf();
  if (in.bad()) throw ScenarioError(path + ": cannot read the scenario file");
  return load_scenario_text(text.str(), path, overrides);
}

void validate(const Scenario& s) {
  try {
    check(s);
  } catch (const Issue& issue) {
    throw ScenarioError(format_issue(locate(issue, nullptr, {}, s.source), issue));
  }
}

void rescale(Scenario& s, std::uint32_t n) {
  const std::string who = s.source.empty() ? std::string("scenario") : s.source;
  std::vector<SubnetSpec*> subnets;
  for (auto& dc : s.datacenters)
    for (auto& sn : dc.subnets) subnets.push_back(&sn);
  const std::size_t count = subnets.size();
  if (count == 0) throw ScenarioError(who + ": cannot rescale: the scenario has no subnets");
  if (n < count)
    throw ScenarioError(who + ": cannot rescale to " + std::to_string(n) + " node" + (n == 1 ? "" : "s") +
                        ": the scenario has " + std::to_string(count) +
                        " subnets and every subnet keeps at least one node");
  if (n > kMaxTotalNodes)
    throw ScenarioError(who + ": cannot rescale to " + std::to_string(n) + " nodes (at most " +
                        std::to_string(kMaxTotalNodes) + ")");

  std::uint64_t old_total = 0;
  for (auto* sn : subnets) old_total += sn->nodes;
  std::vector<std::uint64_t> weight(count);
  for (std::size_t i = 0; i < count; ++i) weight[i] = old_total == 0 ? 1 : subnets[i]->nodes;
  const std::uint64_t wsum = old_total == 0 ? count : old_total;

  // Largest remainder: floor of each exact share, then the leftover nodes to the largest
  // remainders (ties: earlier subnet first).
  std::vector<std::uint64_t> share(count), rem(count);
  std::uint64_t assigned = 0;
  for (std::size_t i = 0; i < count; ++i) {
    share[i] = std::uint64_t{n} * weight[i] / wsum;
    rem[i] = std::uint64_t{n} * weight[i] % wsum;
    assigned += share[i];
  }
  std::vector<std::size_t> order(count);
  for (std::size_t i = 0; i < count; ++i) order[i] = i;
  std::stable_sort(order.begin(), order.end(), [&](std::size_t a, std::size_t b) { return rem[a] > rem[b]; });
  for (std::size_t k = 0; assigned < n; ++k, ++assigned) ++share[order[k % count]];

  // Every subnet keeps >= 1 node: take from the subnet furthest above its exact share
  // (share*wsum - n*weight largest; ties: earlier subnet first).
  for (std::size_t i = 0; i < count; ++i) {
    if (share[i] > 0) continue;
    std::size_t best = count;
    long double best_excess = 0;
    for (std::size_t j = 0; j < count; ++j) {
      if (share[j] <= 1) continue;
      const long double excess = static_cast<long double>(share[j]) * wsum -
                                 static_cast<long double>(n) * weight[j];
      if (best == count || excess > best_excess) {
        best = j;
        best_excess = excess;
      }
    }
    --share[best];  // exists: n >= count, so some subnet has more than one node
    share[i] = 1;
  }

  for (std::size_t i = 0; i < count; ++i) {
    SubnetSpec& sn = *subnets[i];
    sn.nodes = static_cast<std::uint32_t>(share[i]);
    for (auto* list : {&sn.multicast_send_broken, &sn.multicast_recv_broken})
      list->erase(std::remove_if(list->begin(), list->end(), [&](std::uint32_t x) { return x >= sn.nodes; }),
                  list->end());
  }

  // Global indexes that no longer exist are mapped proportionally: index * n / old_total.
  auto map_index = [&](std::uint32_t x) {
    if (x < n || old_total == 0) return std::min<std::uint32_t>(x, n - 1);
    return static_cast<std::uint32_t>(std::uint64_t{x} * n / old_total);
  };
  for (auto& o : s.workload.origins) o = map_index(o);
  std::set<std::uint32_t> origins(s.workload.origins.begin(), s.workload.origins.end());
  const std::uint32_t max_count = n - std::min<std::uint32_t>(n, static_cast<std::uint32_t>(std::max<std::size_t>(1, origins.size())));
  for (auto& c : s.crashes) {
    std::vector<std::uint32_t> mapped;
    std::set<std::uint32_t> seen;
    for (auto x : c.nodes) {
      const std::uint32_t m = map_index(x);
      if (seen.insert(m).second) mapped.push_back(m);
    }
    c.nodes = std::move(mapped);
    c.count = std::min(c.count, max_count);
  }
}

std::string explain(const Scenario& s) {
  std::ostringstream o;
  const std::uint32_t total = s.total_nodes();
  o << "scenario " << s.name;
  if (!s.source.empty()) o << " (" << s.source << ")";
  o << ", seed " << s.seed << "\n";
  o << "topology: " << s.datacenters.size() << " datacenter" << (s.datacenters.size() == 1 ? "" : "s") << ", "
    << s.total_subnets() << " subnet" << (s.total_subnets() == 1 ? "" : "s") << ", " << total << " node"
    << (total == 1 ? "" : "s") << "\n";
  std::uint64_t first = 0;
  std::uint64_t islands = 0;
  for (const auto& dc : s.datacenters) {
    o << "  datacenter " << dc.name << "\n";
    for (const auto& sn : dc.subnets) {
      o << "    subnet " << sn.name << ": " << sn.nodes << " node" << (sn.nodes == 1 ? "" : "s") << " (global "
        << first << ".." << (first + sn.nodes == 0 ? 0 : first + sn.nodes - 1) << "), LAN " << fmt_link(sn.lan)
        << ", multicast " << (sn.multicast ? "on" : "off") << ", NAT " << (sn.nat ? "yes" : "no") << "\n";
      if (!sn.multicast_send_broken.empty())
        o << "      multicast send broken at " << fmt_indexes(sn.multicast_send_broken) << "\n";
      if (!sn.multicast_recv_broken.empty())
        o << "      multicast receive broken at " << fmt_indexes(sn.multicast_recv_broken) << "\n";
      if (sn.multicast_loss > 0) o << "      multicast loss " << num(sn.multicast_loss * 100) << "% on top of the LAN's\n";
      if (sn.multicast_fails_at_s >= 0) {
        o << "      multicast fails at " << fmt_duration(sn.multicast_fails_at_s);
        if (sn.multicast_recovers_at_s >= 0) o << ", recovers at " << fmt_duration(sn.multicast_recovers_at_s);
        o << "\n";
      }
      first += sn.nodes;
      islands += sn.multicast ? 1 : sn.nodes;
    }
  }
  if (s.wan.empty()) {
    o << "wan: none\n";
  } else {
    o << "wan:\n";
    for (const auto& w : s.wan) o << "  " << w.a << " <-> " << w.b << ": " << fmt_link(w.link) << "\n";
  }
  const ProtocolSpec& p = s.protocol;
  o << "protocol: mode " << to_string(p.mode) << ", ack_timeout " << fmt_duration(p.ack_timeout_s)
    << ", nat_links " << p.nat_links << ", dedup_window " << p.dedup_window << "\n";
  o << "  mixed-mode parameters: forced_tcp_share " << num(p.forced_tcp_share) << ", confirm_interval "
    << fmt_duration(p.confirm_interval_s) << ", reach_expiry " << fmt_duration(p.reach_expiry_s)
    << ", beacon_interval " << fmt_duration(p.beacon_interval_s) << ", retention " << p.retention << "\n";
  const WorkloadSpec& w = s.workload;
  o << "workload: " << w.broadcasts << " broadcast" << (w.broadcasts == 1 ? "" : "s") << " of " << w.payload_bytes
    << " bytes at " << num(w.rate_per_s) << "/s, starting at " << fmt_duration(w.start_s) << " after "
    << w.warmup_broadcasts << " warm-up broadcast" << (w.warmup_broadcasts == 1 ? "" : "s") << ", origins "
    << (w.origins.empty() ? std::string("random (seeded)") : fmt_indexes(w.origins)) << "\n";
  if (s.crashes.empty()) {
    o << "crashes: none\n";
  } else {
    o << "crashes:\n";
    for (const auto& c : s.crashes) {
      o << "  at " << fmt_duration(c.at_s) << ": ";
      if (!c.nodes.empty())
        o << "nodes " << fmt_indexes(c.nodes);
      else if (c.count > 0)
        o << c.count << " random node" << (c.count == 1 ? "" : "s");
      else
        o << num(c.fraction * 100) << "% of the nodes";
      o << "\n";
    }
  }
  o << "time limit: " << fmt_duration(s.time_limit_s) << "\n";
  o << "total nodes: " << total << "\n";
  const std::uint32_t tcp_bound = ceil_log2(total);
  const std::uint32_t mixed_bound = ceil_log2(islands) + 1;
  o << "lower bounds (rounds): tcp mode ceil(log2 " << total << ") = " << tcp_bound << "; mixed mode "
    << islands << " multicast island" << (islands == 1 ? "" : "s") << " -> ceil(log2 " << islands << ")+1 = "
    << mixed_bound << "; this scenario runs in " << to_string(p.mode) << " mode: at least "
    << (p.mode == Mode::tcp ? tcp_bound : mixed_bound) << " rounds\n";
  return o.str();
}

// ------------------------------------------------------------------------------------------
// Writing a scenario back as YAML (explore writes its cases this way). Numbers are written with as
// few digits as read back to the same values.
namespace {

std::string exact(double v) {  // the shortest text that reads back as the same double
  char buf[40];
  for (int digits = 6; digits <= 17; ++digits) {
    std::snprintf(buf, sizeof buf, "%.*g", digits, v);
    if (std::strtod(buf, nullptr) == v) break;
  }
  return buf;
}
std::string secs(double v) { return exact(v) + "s"; }

void emit_link(YAML::Emitter& y, const LinkSpec& l) {
  y << YAML::Key << "bandwidth" << YAML::Value << exact(l.bandwidth_bps);
  y << YAML::Key << "latency" << YAML::Value << secs(l.latency_s);
  y << YAML::Key << "loss" << YAML::Value << exact(l.loss);
}

void emit_indexes(YAML::Emitter& y, const char* key, const std::vector<std::uint32_t>& v) {
  if (v.empty()) return;
  y << YAML::Key << key << YAML::Value << YAML::Flow << v;
}

}  // namespace

std::string to_yaml(const Scenario& s) {
  YAML::Emitter y;
  y << YAML::BeginMap;
  y << YAML::Key << "name" << YAML::Value << s.name;
  y << YAML::Key << "seed" << YAML::Value << s.seed;
  y << YAML::Key << "time_limit" << YAML::Value << secs(s.time_limit_s);
  y << YAML::Key << "datacenters" << YAML::Value << YAML::BeginSeq;
  for (const auto& dc : s.datacenters) {
    y << YAML::BeginMap << YAML::Key << "name" << YAML::Value << dc.name;
    y << YAML::Key << "subnets" << YAML::Value << YAML::BeginSeq;
    for (const auto& sub : dc.subnets) {
      y << YAML::BeginMap;
      y << YAML::Key << "name" << YAML::Value << sub.name;
      y << YAML::Key << "nodes" << YAML::Value << sub.nodes;
      y << YAML::Key << "lan" << YAML::Value << YAML::Flow << YAML::BeginMap;
      emit_link(y, sub.lan);
      y << YAML::EndMap;
      y << YAML::Key << "multicast" << YAML::Value << sub.multicast;
      y << YAML::Key << "nat" << YAML::Value << sub.nat;
      y << YAML::Key << "multicast_loss" << YAML::Value << exact(sub.multicast_loss);
      emit_indexes(y, "multicast_send_broken", sub.multicast_send_broken);
      emit_indexes(y, "multicast_recv_broken", sub.multicast_recv_broken);
      if (sub.multicast_fails_at_s >= 0) y << YAML::Key << "multicast_fails_at" << YAML::Value << secs(sub.multicast_fails_at_s);
      if (sub.multicast_recovers_at_s >= 0)
        y << YAML::Key << "multicast_recovers_at" << YAML::Value << secs(sub.multicast_recovers_at_s);
      y << YAML::EndMap;
    }
    y << YAML::EndSeq << YAML::EndMap;
  }
  y << YAML::EndSeq;
  if (!s.wan.empty()) {
    y << YAML::Key << "wan" << YAML::Value << YAML::BeginSeq;
    for (const auto& w : s.wan) {
      y << YAML::Flow << YAML::BeginMap;
      y << YAML::Key << "between" << YAML::Value << YAML::Flow << std::vector<std::string>{w.a, w.b};
      emit_link(y, w.link);
      y << YAML::EndMap;
    }
    y << YAML::EndSeq;
  }
  const ProtocolSpec& p = s.protocol;
  y << YAML::Key << "protocol" << YAML::Value << YAML::BeginMap;
  y << YAML::Key << "mode" << YAML::Value << std::string(to_string(p.mode));
  y << YAML::Key << "ack_timeout" << YAML::Value << secs(p.ack_timeout_s);
  y << YAML::Key << "forced_tcp_share" << YAML::Value << exact(p.forced_tcp_share);
  y << YAML::Key << "confirm_interval" << YAML::Value << secs(p.confirm_interval_s);
  y << YAML::Key << "reach_expiry" << YAML::Value << secs(p.reach_expiry_s);
  y << YAML::Key << "beacon_interval" << YAML::Value << secs(p.beacon_interval_s);
  y << YAML::Key << "nat_links" << YAML::Value << p.nat_links;
  y << YAML::Key << "retention" << YAML::Value << p.retention;
  y << YAML::Key << "dedup_window" << YAML::Value << p.dedup_window;
  y << YAML::EndMap;
  const WorkloadSpec& w = s.workload;
  y << YAML::Key << "workload" << YAML::Value << YAML::BeginMap;
  y << YAML::Key << "broadcasts" << YAML::Value << w.broadcasts;
  y << YAML::Key << "payload_bytes" << YAML::Value << w.payload_bytes;
  y << YAML::Key << "rate" << YAML::Value << exact(w.rate_per_s);
  if (w.origins.empty()) y << YAML::Key << "origins" << YAML::Value << "random";
  else y << YAML::Key << "origins" << YAML::Value << YAML::Flow << w.origins;
  y << YAML::Key << "warmup_broadcasts" << YAML::Value << w.warmup_broadcasts;
  y << YAML::Key << "start" << YAML::Value << secs(w.start_s);
  y << YAML::EndMap;
  if (!s.crashes.empty()) {
    y << YAML::Key << "crashes" << YAML::Value << YAML::BeginSeq;
    for (const auto& c : s.crashes) {
      y << YAML::Flow << YAML::BeginMap << YAML::Key << "at" << YAML::Value << secs(c.at_s);
      if (!c.nodes.empty()) y << YAML::Key << "nodes" << YAML::Value << YAML::Flow << c.nodes;
      else if (c.fraction > 0) y << YAML::Key << "fraction" << YAML::Value << exact(c.fraction);
      else y << YAML::Key << "count" << YAML::Value << c.count;
      if (c.restart_after_s) y << YAML::Key << "restart_after" << YAML::Value << secs(*c.restart_after_s);
      y << YAML::EndMap;
    }
    y << YAML::EndSeq;
  }
  y << YAML::EndMap;
  return std::string(y.c_str()) + "\n";
}

}  // namespace mixcast::sim
