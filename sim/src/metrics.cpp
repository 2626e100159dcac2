#include "mixcast/sim/metrics.hpp"

#include "mixcast/sim/invariants.hpp"

#include <algorithm>
#include <cctype>
#include <map>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <system_error>
#include <vector>

namespace mixcast::sim {
namespace {

// Nearest-rank percentile of an ascending sorted vector: the value at rank ceil(p/100 * N)
// (1-based), i.e. the smallest value such that at least p% of the values are <= it.
// p is an integer percentage in [1, 100]; an empty vector gives T{}.
template <typename T>
T percentile(const std::vector<T>& sorted, std::uint64_t p) {
  if (sorted.empty()) return T{};
  const std::uint64_t n = sorted.size();
  std::uint64_t rank = (p * n + 99) / 100;  // ceil(p * n / 100) without floating point
  rank = std::clamp<std::uint64_t>(rank, 1, n);
  return sorted[rank - 1];
}

// Figures over one set of broadcasts (measured or warm-up).
struct Group {
  std::uint64_t broadcasts = 0;
  std::uint64_t expected = 0;
  std::uint64_t delivered = 0;
  std::vector<std::uint32_t> rounds;   // one per delivery
  std::vector<double> last_delivery;   // one per broadcast that has deliveries
  Traffic traffic;

  double ratio() const {
    return expected == 0 ? 1.0 : static_cast<double>(delivered) / static_cast<double>(expected);
  }
};

double per_broadcast(std::uint64_t total, std::uint64_t broadcasts) {
  return broadcasts == 0 ? 0.0 : static_cast<double>(total) / static_cast<double>(broadcasts);
}

void write_file(const std::filesystem::path& path, const std::string& text) {
  std::FILE* f = std::fopen(path.string().c_str(), "wb");
  if (f == nullptr) {
    throw OutputError("cannot write '" + path.string() + "': " + std::strerror(errno));
  }
  const bool ok = std::fwrite(text.data(), 1, text.size(), f) == text.size();
  const bool closed = std::fclose(f) == 0;
  if (!ok || !closed) throw OutputError("cannot write '" + path.string() + "': write failed (disk full?)");
}

// Appends printf-formatted text to a string (keeps CSV writing fast and locale-free).
template <typename... Args>
void appendf(std::string& out, const char* fmt, Args... args) {
  char buf[256];
  const int n = std::snprintf(buf, sizeof buf, fmt, args...);
  if (n > 0) out.append(buf, std::min<std::size_t>(static_cast<std::size_t>(n), sizeof buf - 1));
}

std::string format_duration(double s) {
  char buf[64];
  if (s < 1.0) {
    std::snprintf(buf, sizeof buf, "%.3f ms", s * 1e3);
  } else {
    std::snprintf(buf, sizeof buf, "%.3f s", s);
  }
  return buf;
}

}  // namespace

// Packet-level bytes per link kind: all rounds of the measured broadcasts (round 0, what no
// measured broadcast rode in, is reported apart), and the busiest link in one round.
static nlohmann::json link_summary(const RunResult& result, std::uint64_t broadcasts) {
  nlohmann::json out = nlohmann::json::object();
  for (LinkKind kind : {LinkKind::lan, LinkKind::wan, LinkKind::nat}) {
    std::uint64_t measured = 0, other = 0;
    std::map<std::pair<std::uint32_t, std::uint32_t>, std::uint64_t> per_link_round;  // channels summed
    bool any = false;
    for (const LinkRound& r : result.link_rounds) {
      if (result.links[r.link].kind != kind) continue;
      any = true;
      if (r.round == 0) {
        other += r.bytes;
        continue;
      }
      measured += r.bytes;
      per_link_round[{r.link, r.round}] += r.bytes;
    }
    bool has_link = false;
    for (const LinkInfo& l : result.links) has_link = has_link || l.kind == kind;
    if (!any && !has_link) continue;
    nlohmann::json busiest = nullptr;
    std::uint64_t peak = 0;
    for (const auto& [key, bytes] : per_link_round)
      if (bytes > peak) {
        peak = bytes;
        busiest = {{"link", result.links[key.first].name},
                   {"round", key.second},
                   {"bytes_per_broadcast", per_broadcast(bytes, broadcasts)}};
      }
    std::string name = to_string(kind);
    std::transform(name.begin(), name.end(), name.begin(), [](unsigned char c) { return std::tolower(c); });
    out[name] = {{"bytes_per_broadcast", per_broadcast(measured, broadcasts)},
                 {"busiest_round", busiest},
                 {"other_bytes", other}};
  }
  return out;
}

nlohmann::json summarize(const RunResult& result) {
  const Scenario& sc = result.scenario;
  const std::uint64_t nodes = sc.total_nodes();

  auto is_live = [&](NodeId node) {
    return node >= result.crashed_at_s.size() || result.crashed_at_s[node] < 0;
  };
  std::uint64_t crashed = 0;
  for (std::uint64_t i = 0; i < nodes; ++i) {
    if (!is_live(static_cast<NodeId>(i))) ++crashed;
  }
  const std::uint64_t live = nodes - crashed;

  // Which broadcast index is a warm-up one: 0 = measured, 1 = warm-up, -1 = unknown index.
  std::vector<int> kind;
  for (const BroadcastRecord& b : result.broadcasts) {
    if (b.index >= kind.size()) kind.resize(std::size_t{b.index} + 1, -1);
    kind[b.index] = b.warmup ? 1 : 0;
  }

  Group groups[2];
  for (int k : kind) {
    if (k < 0) continue;
    groups[k].broadcasts += 1;
    groups[k].expected += live;
  }

  std::vector<double> last(kind.size(), -1.0);
  for (const DeliveryRecord& d : result.deliveries) {
    if (d.broadcast >= kind.size() || kind[d.broadcast] < 0 || !is_live(d.node)) continue;
    Group& g = groups[kind[d.broadcast]];
    g.delivered += 1;
    g.rounds.push_back(d.round);
    last[d.broadcast] = std::max(last[d.broadcast], d.time_s);
  }
  for (std::size_t b = 0; b < kind.size(); ++b) {
    if (kind[b] >= 0 && last[b] >= 0) groups[kind[b]].last_delivery.push_back(last[b]);
  }
  for (std::size_t b = 0; b < result.traffic.size() && b < kind.size(); ++b) {
    if (kind[b] >= 0) groups[kind[b]].traffic += result.traffic[b];
  }
  for (Group& g : groups) {
    std::sort(g.rounds.begin(), g.rounds.end());
    std::sort(g.last_delivery.begin(), g.last_delivery.end());
  }
  const Group& m = groups[0];
  const Group& w = groups[1];

  std::uint32_t lower_bound = 0;
  if (sc.protocol.mode == Mode::tcp) {
    lower_bound = ceil_log2(live);
  } else {
    const std::uint64_t islands = result.islands == 0 ? live : result.islands;
    lower_bound = ceil_log2(islands) + 1;
  }

  nlohmann::json j;
  j["engine"] = result.engine;
  j["mode"] = std::string(to_string(sc.protocol.mode));
  j["scenario"] = sc.name;
  j["nodes"] = nodes;
  j["seed"] = sc.seed;
  j["broadcasts"] = m.broadcasts;
  j["expected"] = m.expected;
  j["delivered"] = m.delivered;
  j["delivery_ratio"] = m.ratio();
  j["duplicates"] = result.duplicates;
  j["rounds"] = {
      {"max", m.rounds.empty() ? 0u : m.rounds.back()},
      {"p50", percentile(m.rounds, 50)},
      {"p99", percentile(m.rounds, 99)},
      {"lower_bound", lower_bound},
  };
  j["time_to_last_delivery_s"] = {
      {"p50", percentile(m.last_delivery, 50)},
      {"p99", percentile(m.last_delivery, 99)},
      {"max", m.last_delivery.empty() ? 0.0 : m.last_delivery.back()},
  };
  j["messages"] = {{"tcp", m.traffic.tcp_messages}, {"multicast", m.traffic.multicast_messages}};
  j["bytes"] = {{"tcp", m.traffic.tcp_bytes}, {"multicast", m.traffic.multicast_bytes}};
  j["bytes_per_broadcast"] = {
      {"tcp", per_broadcast(m.traffic.tcp_bytes, m.broadcasts)},
      {"multicast", per_broadcast(m.traffic.multicast_bytes, m.broadcasts)},
      {"total", per_broadcast(m.traffic.tcp_bytes + m.traffic.multicast_bytes, m.broadcasts)},
  };
  j["control"] = {
      {"messages", {{"tcp", result.control.tcp_messages}, {"multicast", result.control.multicast_messages}}},
      {"bytes", {{"tcp", result.control.tcp_bytes}, {"multicast", result.control.multicast_bytes}}},
      {"repairs", result.control.repair_messages},
  };
  j["islands"] = result.islands;
  // What repairs and forced TCP cost (messages, bytes) and what they made good (first deliveries),
  // for the measured broadcasts; `whole_run` counts every message of the run, announcements included.
  auto copies = [&](std::uint64_t messages, std::uint64_t bytes, std::uint64_t delivered, std::uint64_t whole_run) {
    return nlohmann::json{{"messages", messages},
                          {"bytes", bytes},
                          {"bytes_per_broadcast", per_broadcast(bytes, m.broadcasts)},
                          {"delivered", delivered},
                          {"whole_run", whole_run}};
  };
  j["repairs"] = copies(m.traffic.repair_messages, m.traffic.repair_bytes, m.traffic.delivered_by_repair, result.repairs);
  j["forced_tcp"] =
      copies(m.traffic.forced_messages, m.traffic.forced_bytes, m.traffic.delivered_by_forced, result.forced_tcp);
  j["redelegations"] = result.redelegations;
  j["bad_frames"] = result.bad_frames;
  j["crashed"] = crashed;
  j["restarts"] = result.restarts;
  {  // Expected deliveries that did not happen: how many, to whom, of which broadcasts, and why.
    std::map<std::string, std::uint64_t> causes;
    std::vector<std::uint32_t> who, which;
    for (const MissingDelivery& md : result.missing) {
      ++causes[md.cause];
      who.push_back(md.node);
      which.push_back(md.broadcast);
    }
    for (auto* v : {&who, &which}) {
      std::sort(v->begin(), v->end());
      v->erase(std::unique(v->begin(), v->end()), v->end());
    }
    j["missing"] = {{"deliveries", result.missing.size()},
                    {"nodes", who},
                    {"broadcasts", which},
                    {"causes", causes}};
  }
  j["invented"] = result.invented;
  j["corrupted"] = result.corrupted;
  j["end"] = to_string(result.end);
  j["simulated_s"] = result.simulated_s;
  j["wall_s"] = result.wall_s;
  j["events"] = result.events;
  if (!result.links.empty()) j["links"] = link_summary(result, m.broadcasts);
  j["warmup"] = {
      {"broadcasts", w.broadcasts},
      {"measured_from_s", result.measured_from_s},
      {"islands_agreed", result.islands_agreed},
      {"expected", w.expected},
      {"delivered", w.delivered},
      {"delivery_ratio", w.ratio()},
      {"rounds", {{"max", w.rounds.empty() ? 0u : w.rounds.back()}}},
      {"bytes", {{"tcp", w.traffic.tcp_bytes}, {"multicast", w.traffic.multicast_bytes}}},
      {"repairs", w.traffic.repair_messages},
      {"forced_tcp", w.traffic.forced_messages},
  };
  return j;
}

void ensure_writable_dir(const std::string& dir) {
  namespace fs = std::filesystem;
  if (dir.empty()) throw OutputError("the output directory name is empty");
  const fs::path p(dir);
  std::error_code ec;
  fs::create_directories(p, ec);
  if (ec) throw OutputError("cannot create output directory '" + dir + "': " + ec.message());
  if (!fs::is_directory(p, ec)) throw OutputError("output path '" + dir + "' is not a directory");
  const fs::path probe = p / ".mixcast-write-test";
  std::FILE* f = std::fopen(probe.string().c_str(), "wb");
  if (f == nullptr) {
    throw OutputError("cannot write in output directory '" + dir + "': " + std::strerror(errno));
  }
  std::fclose(f);
  fs::remove(probe, ec);
}

std::vector<std::pair<std::string, std::string>> csv_tables(const RunResult& result) {
  std::vector<std::pair<std::string, std::string>> out;
  std::string csv = "broadcast,node,round,time_s,channel\n";
  csv.reserve(csv.size() + result.deliveries.size() * 32);
  for (const DeliveryRecord& d : result.deliveries) {
    appendf(csv, "%u,%u,%u,%.9f,", static_cast<unsigned>(d.broadcast), static_cast<unsigned>(d.node),
            static_cast<unsigned>(d.round), d.time_s);
    csv += to_string(d.channel);
    csv += '\n';
  }
  out.emplace_back("deliveries.csv", std::move(csv));

  csv = "broadcast,origin,seq,start_s,warmup\n";
  for (const BroadcastRecord& b : result.broadcasts) {
    appendf(csv, "%u,%u,%llu,%.9f,%d\n", static_cast<unsigned>(b.index), static_cast<unsigned>(b.origin),
            static_cast<unsigned long long>(b.seq), b.start_s, b.warmup ? 1 : 0);
  }
  out.emplace_back("broadcasts.csv", std::move(csv));

  if (result.links.empty()) return out;
  double broadcasts = 0;  // measured ones, as summary.json counts them
  for (const BroadcastRecord& b : result.broadcasts) broadcasts += b.warmup ? 0 : 1;
  csv = "link,kind,round,channel,bytes,packets,bytes_per_broadcast\n";
  for (const LinkRound& r : result.link_rounds) {
    const LinkInfo& l = result.links[r.link];
    // Link names come from scenario names: quote them as CSV needs.
    if (l.name.find_first_of(",\"\n") == std::string::npos) {
      csv += l.name;
    } else {
      csv += '"';
      for (char c : l.name) csv += c == '"' ? std::string("\"\"") : std::string(1, c);
      csv += '"';
    }
    appendf(csv, ",%s,%u,%s,%llu,%llu,%.1f\n", to_string(l.kind), static_cast<unsigned>(r.round),
            r.channel == Channel::local ? "other" : std::string(to_string(r.channel)).c_str(),
            static_cast<unsigned long long>(r.bytes), static_cast<unsigned long long>(r.packets),
            r.round > 0 && broadcasts > 0 ? static_cast<double>(r.bytes) / broadcasts : 0.0);
  }
  out.emplace_back("links.csv", std::move(csv));
  return out;
}

void write_outputs(const RunResult& result, const nlohmann::json& summary, const std::string& dir) {
  namespace fs = std::filesystem;
  ensure_writable_dir(dir);
  const fs::path p(dir);
  write_file(p / "summary.json", summary.dump(2) + "\n");
  for (const auto& [name, text] : csv_tables(result)) write_file(p / name, text);
}

std::string human_summary(const nlohmann::json& s) {
  auto num = [&](const nlohmann::json& obj, const char* key) -> double {
    auto it = obj.find(key);
    return it != obj.end() && it->is_number() ? it->get<double>() : 0.0;
  };
  auto u64 = [&](const nlohmann::json& obj, const char* key) -> unsigned long long {
    auto it = obj.find(key);
    return it != obj.end() && it->is_number() ? it->get<unsigned long long>() : 0ULL;
  };
  auto sub = [&](const char* key) -> const nlohmann::json& {
    static const nlohmann::json empty = nlohmann::json::object();
    auto it = s.find(key);
    return it != s.end() && it->is_object() ? *it : empty;
  };
  auto str = [&](const char* key) {
    auto it = s.find(key);
    return it != s.end() && it->is_string() ? it->get<std::string>() : std::string("?");
  };

  const nlohmann::json& warm = sub("warmup");
  const nlohmann::json& rounds = sub("rounds");
  const nlohmann::json& ttld = sub("time_to_last_delivery_s");
  const nlohmann::json& bpb = sub("bytes_per_broadcast");

  std::string out;
  char line[512];
  std::snprintf(line, sizeof line, "%s engine, %s mode, scenario '%s': %llu nodes, %llu broadcasts", str("engine").c_str(),
                str("mode").c_str(), str("scenario").c_str(), u64(s, "nodes"), u64(s, "broadcasts"));
  out += line;
  if (u64(warm, "broadcasts") > 0) {
    std::snprintf(line, sizeof line, " (+%llu warm-up)", u64(warm, "broadcasts"));
    out += line;
  }
  std::snprintf(line, sizeof line, ", seed %llu\n", u64(s, "seed"));
  out += line;

  std::snprintf(line, sizeof line, "delivered %llu of %llu expected (ratio %.6f), duplicates %llu, crashed nodes %llu\n",
                u64(s, "delivered"), u64(s, "expected"), num(s, "delivery_ratio"), u64(s, "duplicates"),
                u64(s, "crashed"));
  out += line;
  if (u64(s, "restarts") > 0) {
    std::snprintf(line, sizeof line, "restarts: %llu (a restarted node owes the broadcasts started once it is back)\n",
                  u64(s, "restarts"));
    out += line;
  }

  std::snprintf(line, sizeof line, "rounds: max %llu, p50 %llu, p99 %llu (lower bound %llu)\n", u64(rounds, "max"),
                u64(rounds, "p50"), u64(rounds, "p99"), u64(rounds, "lower_bound"));
  out += line;

  out += "time to last delivery: p50 " + format_duration(num(ttld, "p50")) + ", p99 " +
         format_duration(num(ttld, "p99")) + ", max " + format_duration(num(ttld, "max")) + "\n";

  std::snprintf(line, sizeof line, "bytes per broadcast: tcp %.1f, multicast %.1f, total %.1f\n", num(bpb, "tcp"),
                num(bpb, "multicast"), num(bpb, "total"));
  out += line;

  const nlohmann::json& rep = sub("repairs");
  const nlohmann::json& forced = sub("forced_tcp");
  std::snprintf(line, sizeof line,
                "repairs %llu (first copy for %llu deliveries; %llu in the whole run), forced tcp %llu (first copy "
                "for %llu; %llu in the whole run), re-delegations %llu, bad frames %llu, islands %llu\n",
                u64(rep, "messages"), u64(rep, "delivered"), u64(rep, "whole_run"), u64(forced, "messages"),
                u64(forced, "delivered"), u64(forced, "whole_run"), u64(s, "redelegations"), u64(s, "bad_frames"),
                u64(s, "islands"));
  out += line;

  // Packet-level engines: bytes on the wire per link kind, and the busiest link in one round.
  const nlohmann::json& links = sub("links");
  for (const char* kind : {"lan", "wan", "nat"}) {
    auto it = links.find(kind);
    if (it == links.end() || !it->is_object()) continue;
    const auto busiest = it->find("busiest_round");
    std::snprintf(line, sizeof line, "%s links: %.1f bytes per broadcast on the wire", kind, num(*it, "bytes_per_broadcast"));
    out += line;
    if (busiest != it->end() && busiest->is_object() && busiest->contains("link")) {
      std::snprintf(line, sizeof line, ", busiest %s in round %llu: %.1f bytes per broadcast",
                    busiest->value("link", std::string("?")).c_str(), u64(*busiest, "round"),
                    num(*busiest, "bytes_per_broadcast"));
      out += line;
    }
    out += "\n";
  }

  const nlohmann::json& miss = sub("missing");
  if (u64(miss, "deliveries") > 0) {
    auto list = [](const nlohmann::json& ids) {
      std::string text;
      std::size_t shown = 0;
      for (const auto& id : ids) {
        if (shown++ == 12) return text + ", ... (" + std::to_string(ids.size()) + " in all)";
        text += (text.empty() ? "" : ", ") + id.dump();
      }
      return text;
    };
    std::string causes;
    const nlohmann::json by_cause = miss.value("causes", nlohmann::json::object());  // outlives the loop
    for (const auto& [cause, count] : by_cause.items())
      causes += (causes.empty() ? "" : ", ") + cause + " " + count.dump();
    // Warm-up broadcasts come first (indices below their count); the delivered line above leaves them out.
    const std::uint64_t warm_count = warm.contains("broadcasts") ? u64(warm, "broadcasts") : 0;
    std::uint64_t warm_missing = 0;
    for (const auto& b : miss.value("broadcasts", nlohmann::json::array()))
      warm_missing += b.is_number_unsigned() && b.get<std::uint64_t>() < warm_count;
    const std::string warm_note =
        warm_missing ? " (" + std::to_string(warm_missing) + " of them warm-up, not in the delivered line)" : "";
    out += "MISSING: " + std::to_string(u64(miss, "deliveries")) + " expected deliveries did not happen; nodes " +
           list(miss.value("nodes", nlohmann::json::array())) + "; broadcasts " +
           list(miss.value("broadcasts", nlohmann::json::array())) + warm_note + "; causes: " + causes + "\n";
  }
  if (u64(s, "invented") + u64(s, "corrupted") > 0) {
    std::snprintf(line, sizeof line, "INTEGRITY: %llu deliveries of messages never broadcast, %llu with a changed payload\n",
                  u64(s, "invented"), u64(s, "corrupted"));
    out += line;
  }
  if (warm.contains("islands_agreed") && warm["islands_agreed"].is_boolean() && !warm["islands_agreed"].get<bool>())
    out += "WARNING: the nodes never agreed on islands (measured after the 10 s learning limit anyway)\n";
  if (str("end") == "time_limit") out += "WARNING: the run stopped at its time limit with work still going on\n";

  std::snprintf(line, sizeof line, "simulated %.3f s in %.3f s wall time, %llu events\n", num(s, "simulated_s"),
                num(s, "wall_s"), u64(s, "events"));
  out += line;
  return out;
}

}  // namespace mixcast::sim
