// mixcast-testbed: runs a scenario's nodes as real mixcastd processes and writes the same
// summary.json / deliveries.csv / broadcasts.csv as mixcast-sim (engine "real").
//   mixcast-testbed run SCENARIO --net loopback [--nodes N] [--out DIR] [--mode M] [--seed S] ...
// Exit codes: 0 ok, 2 bad input (scenario, flags, output directory), 1 daemons failed or internal
// error, 130 interrupted (SIGINT/SIGTERM/SIGHUP; every daemon is stopped first).
#include <signal.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <csignal>
#include <cstdio>
#include <filesystem>
#include <iostream>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>

#include "local_cluster.hpp"
#include "netns_lab.hpp"
#include "mixcast/sim/metrics.hpp"
#include "mixcast/sim/result.hpp"
#include "mixcast/sim/run_book.hpp"
#include "mixcast/sim/scenario.hpp"

#ifndef MIXCAST_VERSION
#define MIXCAST_VERSION "0.1.0"
#endif

namespace {

using mixcast::MessageId;
using mixcast::NodeId;
using mixcast::sim::OutputError;
using mixcast::sim::RunResult;
using mixcast::sim::Scenario;
using mixcast::sim::ScenarioError;
using mixcast::testbed::Clock;
using mixcast::testbed::ClusterError;
using mixcast::testbed::LocalCluster;
namespace fs = std::filesystem;

constexpr const char* kProg = "mixcast-testbed";
// One process per node: beyond this a 2-core machine spends its time scheduling daemons.
constexpr std::uint32_t kMaxNodes = 512;

class UsageError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};
// The run failed because of the daemons (or the machine), not the input: exit 1.
class RunFailure : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};
struct Interrupted {
  int signal;
};

volatile std::sig_atomic_t g_signal = 0;
extern "C" void on_signal(int sig) { g_signal = sig; }

void check_interrupt() {
  if (g_signal != 0) throw Interrupted{g_signal};
}

// Namespaces of netns runs whose testbed no longer exists (killed with SIGKILL, or a crash): their
// tag is the testbed's pid.
void remove_stale_namespaces() {
  for (const auto& ns : mixcast::real::NetnsLab::existing_namespaces()) {
    const auto rest = ns.substr(std::string(mixcast::real::NetnsLab::kPrefix).size());
    const auto pid = std::atoll(rest.substr(0, rest.find('-')).c_str());
    if (pid > 0 && (::kill(static_cast<pid_t>(pid), 0) == 0 || errno != ESRCH)) continue;  // its testbed still runs
    mixcast::real::NetnsLab::remove_namespace(ns);
  }
}

// SIGINT/SIGTERM/SIGHUP only set a flag: the run loop notices it within a few milliseconds and
// stops every daemon before exiting.
void install_signal_handlers() {
  struct sigaction sa {};
  sa.sa_handler = on_signal;
  sigemptyset(&sa.sa_mask);
  sa.sa_flags = 0;
  for (int sig : {SIGINT, SIGTERM, SIGHUP}) ::sigaction(sig, &sa, nullptr);
  ::signal(SIGPIPE, SIG_IGN);
}

std::uint64_t parse_uint(const std::string& flag, const std::string& text, std::uint64_t min, std::uint64_t max) {
  bool ok = !text.empty() && text.size() <= 20 && text.find_first_not_of("0123456789") == std::string::npos;
  std::uint64_t v = 0;
  if (ok) {
    try {
      v = std::stoull(text);
    } catch (const std::exception&) {
      ok = false;
    }
  }
  if (!ok || v < min || v > max)
    throw UsageError(flag + " must be an integer in [" + std::to_string(min) + ", " + std::to_string(max) + "], got '" +
                     text + "'");
  return v;
}

std::string safe_name(const std::string& name) {
  std::string out;
  for (char c : name) {
    const bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' ||
                    c == '_' || c == '.';
    out += ok ? c : '_';
  }
  return out.empty() ? std::string("scenario") : out;
}

double since(Clock::time_point t0) { return std::chrono::duration<double>(Clock::now() - t0).count(); }

std::int64_t realtime_us() {
  timespec ts{};
  ::clock_gettime(CLOCK_REALTIME, &ts);
  return static_cast<std::int64_t>(ts.tv_sec) * 1'000'000 + ts.tv_nsec / 1000;
}

// mixcastd: --daemon, else next to this binary in the same build tree, else where the build put it.
std::string find_daemon(const std::string& flag) {
  std::error_code ec;
  auto usable = [&](const fs::path& p) { return fs::is_regular_file(p, ec) && ::access(p.c_str(), X_OK) == 0; };
  if (!flag.empty()) {
    if (!usable(flag)) throw UsageError("--daemon '" + flag + "' is not an executable file");
    return fs::absolute(flag).string();
  }
  std::vector<fs::path> candidates;
  const fs::path self = fs::read_symlink("/proc/self/exe", ec);
  if (!ec) {
    const fs::path dir = self.parent_path();
    for (const fs::path& p : {dir / "mixcastd", dir.parent_path() / "mixcastd", dir / "daemon" / "mixcastd",
                              dir.parent_path() / "daemon" / "mixcastd"})
      candidates.push_back(p);
  }
#ifdef MIXCAST_DAEMON_PATH
  candidates.emplace_back(MIXCAST_DAEMON_PATH);
#endif
  for (const auto& p : candidates)
    if (usable(p)) return p.string();
  std::string tried;
  for (const auto& p : candidates) tried += "\n  " + p.string();
  throw UsageError("cannot find the mixcastd binary; pass --daemon PATH (looked at:" + tried + ")");
}

// Scenario features the chosen network cannot reproduce: named so nobody mistakes the figures.
// The netns network reproduces loss, asymmetric and failing multicast and NAT; neither reproduces
// latency or bandwidth.
std::vector<std::string> unemulated(const Scenario& s, bool netns) {
  std::set<std::string> out;
  if (netns) {
    out.insert("link latency and bandwidth (veths and bridges: ~10 us, many Gbit/s; tc netem is not available)");
    return {out.begin(), out.end()};
  }
  for (const auto& dc : s.datacenters)
    for (const auto& sn : dc.subnets) {
      if (sn.lan.loss > 0 || sn.multicast_loss > 0) out.insert("packet loss (lan.loss, multicast_loss)");
      if (!sn.multicast_send_broken.empty() || !sn.multicast_recv_broken.empty())
        out.insert("asymmetric multicast (multicast_send_broken, multicast_recv_broken)");
      if (sn.multicast_fails_at_s >= 0) out.insert("multicast_fails_at, multicast_recovers_at");
    }
  for (const auto& w : s.wan)
    if (w.link.loss > 0) out.insert("WAN loss");
  out.insert("link latency and bandwidth (loopback is ~10 us, many Gbit/s)");
  return {out.begin(), out.end()};
}

std::string ms_value(double seconds) {
  return std::to_string(std::max<long long>(1, std::llround(seconds * 1e3)));
}

// Exactly `size` bytes, unique per broadcast when size >= 4: the index (4 bytes, little endian),
// this run's tag (4 bytes), then filler derived from the index. The daemons' delivery logs are
// checked against it byte for byte.
mixcast::wire::Bytes make_payload(std::uint32_t index, std::uint32_t size, std::uint64_t run_tag) {
  mixcast::wire::Bytes p(size);
  for (std::size_t i = 0; i < p.size(); ++i) {
    if (i < 4) p[i] = static_cast<std::uint8_t>(index >> (8 * i));
    else if (i < 8) p[i] = static_cast<std::uint8_t>(run_tag >> (8 * (i - 4)));
    else p[i] = static_cast<std::uint8_t>('a' + (index * 7 + i) % 26);
  }
  return p;
}

// A duration as the scenario files write it: seconds, or a number with s, ms, us or ns ("1.5s", "500ms").
double parse_duration_flag(const std::string& flag, const std::string& text) {
  std::size_t used = 0;
  double v = -1;
  try {
    v = std::stod(text, &used);
  } catch (const std::exception&) {
    used = 0;
  }
  std::string unit = text.substr(used);
  while (!unit.empty() && unit.front() == ' ') unit.erase(0, 1);
  const double scale = unit.empty() || unit == "s" ? 1 : unit == "ms" ? 1e-3 : unit == "us" ? 1e-6 : unit == "ns" ? 1e-9 : -1;
  if (used == 0 || scale < 0 || !std::isfinite(v) || v < 0)
    throw UsageError(flag + " must be a duration such as 2s or 500ms (never negative), got '" + text + "'");
  return v * scale;
}

// The testbed's crash plan: the RunBook's victims (the same nodes the simulators crash), each with
// the restart delay of the scenario entry it came from, or `default_restart` (--restart-after).
struct PlannedCrash {
  double at_s = 0;
  NodeId node = 0;
  std::optional<double> restart_after_s;  // absent: stays down
};

std::vector<PlannedCrash> plan_crashes(const std::vector<mixcast::sim::RunBook::Crash>& victims,
                                       std::optional<double> default_restart) {
  std::vector<PlannedCrash> out;
  for (const auto& v : victims)
    out.push_back(PlannedCrash{v.at_s, v.node, v.restart_after_s ? v.restart_after_s : default_restart});
  return out;
}

struct RunArgs {
  std::string scenario, net, nodes, out, mode, seed, daemon, log_level = "warn", restart_after;
  std::vector<std::string> sets;
  bool keep_logs = false, quiet = false, json = false;
};

Scenario load(const RunArgs& a) {
  std::error_code ec;
  if (!fs::is_regular_file(a.scenario, ec))
    throw UsageError("scenario file '" + a.scenario + "' does not exist or is not a file");
  std::vector<std::string> overrides;
  for (const auto& s : a.sets) {
    if (s.find('=') == std::string::npos || s.front() == '=') throw UsageError("--set expects KEY=VALUE, got '" + s + "'");
    overrides.push_back(s);
  }
  if (!a.mode.empty()) {
    if (a.mode != "tcp" && a.mode != "mixed") throw UsageError("--mode must be 'tcp' or 'mixed', got '" + a.mode + "'");
    overrides.push_back("protocol.mode=" + a.mode);
  }
  if (!a.seed.empty()) overrides.push_back("seed=" + std::to_string(parse_uint("--seed", a.seed, 0, UINT64_MAX)));
  Scenario s = mixcast::sim::load_scenario(a.scenario, overrides);
  if (!a.nodes.empty()) {
    mixcast::sim::rescale(s, static_cast<std::uint32_t>(parse_uint("--nodes", a.nodes, 1, kMaxNodes)));
    mixcast::sim::validate(s);
  }
  if (s.total_nodes() > kMaxNodes)
    throw UsageError("the scenario has " + std::to_string(s.total_nodes()) + " nodes; the loopback testbed runs one "
                     "mixcastd per node, at most " + std::to_string(kMaxNodes) + " (use --nodes N)");
  return s;
}

// The live "\r[real] ..." line on stderr, only on a terminal.
class Progress {
 public:
  explicit Progress(bool enabled) : enabled_(enabled) {}
  void update(double t, std::uint32_t started, std::uint32_t total, double done, std::uint32_t live, std::uint32_t n) {
    if (!enabled_) return;
    const auto now = Clock::now();
    if (printed_ && now - last_ < std::chrono::milliseconds(200)) return;
    last_ = now;
    printed_ = true;
    std::fprintf(stderr, "\r[real] t %.1f s  broadcasts %u/%u  %5.1f%% delivered  daemons %u/%u live   ", t, started,
                 total, done * 100.0, live, n);
    std::fflush(stderr);
  }
  void note(const std::string& text) {
    if (!enabled_) return;
    finish();
    std::fprintf(stderr, "[real] %s\n", text.c_str());
  }
  void finish() {
    if (printed_) std::fputc('\n', stderr);
    printed_ = false;
  }

 private:
  bool enabled_;
  bool printed_ = false;
  Clock::time_point last_ = Clock::now();
};

int cmd_run(const RunArgs& a) {
  const auto wall_start = Clock::now();
  if (a.net != "loopback" && a.net != "netns")
    throw UsageError("--net must be 'loopback' (every daemon on 127.0.0.1) or 'netns' (a real network in "
                     "Linux namespaces, root only), got '" + a.net + "'");
  const bool netns = a.net == "netns";
  if (netns && !mixcast::real::NetnsLab::have_root())
    throw UsageError("--net netns needs root: it creates network namespaces, bridges and iptables rules "
                     "(run it as root, or use --net loopback)");
  static const std::set<std::string> levels{"trace", "debug", "info", "warn", "error", "off"};
  if (!levels.count(a.log_level)) throw UsageError("--log-level must be one of trace, debug, info, warn, error, off");
  const Scenario s = load(a);
  const std::uint32_t n = s.total_nodes();
  const std::string daemon = find_daemon(a.daemon);
  const std::string out = a.out.empty() ? "results/" + safe_name(s.name) + "-real-" +
                                              std::string(mixcast::to_string(s.protocol.mode)) + "-n" +
                                              std::to_string(n) + "-s" + std::to_string(s.seed)
                                        : a.out;
  mixcast::sim::ensure_writable_dir(out);  // fail before starting daemons, not after the run

  const bool tty = ::isatty(STDERR_FILENO) == 1 && !a.quiet;
  Progress progress(tty);
  if (!a.quiet)
    for (const auto& w : unemulated(s, netns))
      std::fprintf(stderr, "%s: note: not emulated on %s: %s\n", kProg, a.net.c_str(), w.c_str());

  // The RunBook picks crash victims and origins exactly as the simulators do. It starts
  // broadcasts on core nodes of its own, so it gets shadow nodes whose output is discarded.
  mixcast::sim::RunBook book(s, "real");
  auto shadow = book.make_nodes();
  const auto crashes = plan_crashes(
      book.plan_crashes(),
      a.restart_after.empty() ? std::nullopt : std::optional<double>(parse_duration_flag("--restart-after", a.restart_after)));

  mixcast::testbed::ClusterOptions opt;
  opt.daemon = daemon;
  opt.mode = s.protocol.mode;
  opt.log_level = a.log_level;
  const auto placement = mixcast::sim::place_nodes(s);
  for (const auto& p : placement) opt.layout.subnet_of.push_back(p.subnet);
  for (std::uint32_t k = 0; k < s.total_subnets(); ++k) {
    const auto& sn = mixcast::sim::subnet_at(s, k);
    opt.layout.subnet_multicast.push_back(sn.multicast);
    opt.layout.subnet_nat.push_back(sn.nat);
  }
  const auto& pr = s.protocol;
  opt.protocol = {{"ack_timeout_ms", ms_value(pr.ack_timeout_s)},
                  {"confirm_interval_ms", ms_value(pr.confirm_interval_s)},
                  {"beacon_interval_ms", ms_value(pr.beacon_interval_s)},
                  {"reach_expiry_ms", ms_value(pr.reach_expiry_s)},
                  {"forced_tcp_share", std::to_string(pr.forced_tcp_share)},
                  {"retention", std::to_string(pr.retention)},
                  {"dedup_window", std::to_string(pr.dedup_window)},
                  {"nat_links", std::to_string(pr.nat_links)}};

  opt.cancelled = [] { return g_signal != 0; };
  install_signal_handlers();
  // The netns network outlives the cluster (declared first, destroyed last): daemons are stopped
  // before their namespaces go. Namespaces left by a testbed that was killed are removed first.
  std::unique_ptr<mixcast::real::NetnsLab> lab;
  if (netns) {
    remove_stale_namespaces();
    progress.note("building the network: " + std::to_string(n) + " node namespaces, " +
                  std::to_string(s.total_subnets()) + " bridges, " + std::to_string(s.datacenters.size()) + " routers");
    try {
      lab = std::make_unique<mixcast::real::NetnsLab>(s, std::to_string(::getpid()));
    } catch (const mixcast::real::NetnsError& e) {
      throw RunFailure(std::string("building the namespace network: ") + e.what());
    }
    for (NodeId i = 0; i < n; ++i) {
      opt.addresses.push_back(lab->address_of(i));
      opt.exec_prefix.push_back(lab->exec_prefix(i));
    }
  }
  LocalCluster cluster(opt);  // destroyed on every path out of here: kills and reaps the daemons
  progress.note("starting " + std::to_string(n) + " mixcastd " + (netns ? "in namespaces" : "on 127.0.0.1") +
                " (work dir " + cluster.dir() + ")");
  try {
    cluster.start_all(std::chrono::seconds(20));
  } catch (const ClusterError& e) {
    check_interrupt();  // wait_ready gives up early when a signal arrives
    throw RunFailure(e.what());
  }
  check_interrupt();

  const auto t0 = Clock::now();
  const std::uint64_t run_tag = static_cast<std::uint64_t>(realtime_us());
  const std::uint32_t warm = s.workload.warmup_broadcasts;
  const std::uint32_t total = warm + s.workload.broadcasts;

  RunResult result;
  result.engine = "real";
  result.scenario = s;
  result.crashed_at_s.assign(n, -1.0);
  result.traffic.assign(total, mixcast::sim::Traffic{});
  result.islands_agreed = s.protocol.mode != mixcast::Mode::mixed;

  // Schedule: (time, index) of broadcasts still to start; crashes by time.
  std::vector<std::pair<double, std::uint32_t>> due;
  const auto warm_starts = book.warmup_starts();
  for (std::uint32_t k = 0; k < warm_starts.size(); ++k) due.emplace_back(warm_starts[k], k);
  const double earliest = book.measured_earliest_s();
  bool measured_scheduled = false;
  auto schedule_measured = [&](double from_s) {
    result.measured_from_s = from_s;
    for (const auto& [index, at] : book.measured_starts(from_s)) due.emplace_back(at, index);
    std::stable_sort(due.begin(), due.end());
    measured_scheduled = true;
  };
  if (s.protocol.mode != mixcast::Mode::mixed) schedule_measured(earliest);
  std::size_t next_due = 0;
  std::vector<PlannedCrash> pending_crashes = crashes;
  std::stable_sort(pending_crashes.begin(), pending_crashes.end(),
                   [](const auto& x, const auto& y) { return x.at_s < y.at_s; });
  std::size_t next_crash = 0;
  // Restarts: (due time, node), kept sorted. A restarted daemon must deliver every broadcast
  // started once it answers again (back_s), within its new life: nothing twice in one incarnation.
  std::vector<std::pair<double, NodeId>> pending_restarts;
  std::vector<bool> down(n, false);
  std::vector<double> back_s(n, -1.0);
  nlohmann::json restarts_json = nlohmann::json::array();
  // multicast_fails_at: on the netns network, multicast in that subnet is cut at that time.
  // multicast_recovers_at: and restored then (second = true).
  std::vector<std::pair<double, std::pair<std::uint32_t, bool>>> multicast_failures;
  if (netns)
    for (std::uint32_t k = 0; k < s.total_subnets(); ++k) {
      const auto& sub = mixcast::sim::subnet_at(s, k);
      if (sub.multicast_fails_at_s < 0) continue;
      multicast_failures.push_back({sub.multicast_fails_at_s, {k, false}});
      if (sub.multicast_recovers_at_s >= 0) multicast_failures.push_back({sub.multicast_recovers_at_s, {k, true}});
    }
  std::sort(multicast_failures.begin(), multicast_failures.end());
  std::size_t next_failure = 0;
  const double learning_deadline = earliest + mixcast::sim::RunBook::kMaxLearning_s;
  double next_island_check = earliest;
  // The islands gate (mixed mode): the hash every live daemon reported in the latest polls.
  struct IslandGate {
    std::optional<std::uint64_t> hash;
    double since_s = 0;  // start of the first of these polls
    std::uint32_t polls = 0;
    void reset() { *this = IslandGate{}; }
  };
  IslandGate gate;
  constexpr std::uint32_t kStablePolls = 3;
  // How long an island can keep changing after every daemon agreed on it: a member's beacon is
  // heard and confirmed, the leader's candidate island holds for a confirm interval, then it is
  // announced. Claims unchanged for this long are not about to change.
  const double claim_interval_s = 2 * pr.beacon_interval_s + 2 * pr.confirm_interval_s;

  std::map<MessageId, std::uint32_t> index_of;
  std::vector<mixcast::wire::Bytes> payload_of(total);
  std::vector<std::int64_t> start_us(total, 0);
  std::vector<bool> started(total, false);
  std::vector<std::vector<bool>> delivered(total);  // ever, for the delivery records
  std::vector<std::set<std::uint32_t>> life_seen(n);  // broadcasts delivered in the daemon's current life
  std::vector<double> start_s(total, 0.0);
  std::uint32_t started_count = 0, skipped = 0;
  std::uint64_t rows_read = 0, unexpected = 0, mismatched = 0;
  std::string first_anomaly;

  auto live_count = [&] {
    std::uint32_t live = 0;
    for (NodeId i = 0; i < n; ++i) live += down[i] ? 0 : 1;
    return live;
  };
  auto take_deliveries = [&](NodeId node) {
    for (auto& row : cluster.read_deliveries(node)) {
      ++rows_read;
      const auto it = index_of.find(row.id);
      if (it == index_of.end()) {
        ++unexpected;
        if (first_anomaly.empty())
          first_anomaly = "node " + std::to_string(node) + " delivered (" + std::to_string(row.id.origin) + ", " +
                          std::to_string(row.id.seq) + "), which the testbed never sent";
        continue;
      }
      const std::uint32_t b = it->second;
      if (row.payload != payload_of[b]) {
        ++mismatched;
        if (first_anomaly.empty())
          first_anomaly = "node " + std::to_string(node) + " delivered broadcast " + std::to_string(b) +
                          " with a payload that differs from the one sent";
      }
      if (!life_seen[node].insert(b).second) {
        ++result.duplicates;
        continue;
      }
      if (delivered[b][node]) continue;  // again after a restart: a new life, not a duplicate
      delivered[b][node] = true;
      result.deliveries.push_back(mixcast::sim::DeliveryRecord{
          b, node, row.round, static_cast<double>(row.time_us - start_us[b]) / 1e6, row.channel});
    }
  };
  // Node i owes broadcast b: it is up, and never crashed or was back before b started.
  auto owes = [&](std::uint32_t b, NodeId i) { return !down[i] && (back_s[i] < 0 || start_s[b] >= back_s[i]); };
  auto missing = [&] {
    std::uint64_t miss = 0;
    for (std::uint32_t b = 0; b < total; ++b) {
      if (!started[b]) continue;
      for (NodeId i = 0; i < n; ++i) miss += (owes(b, i) && !life_seen[i].count(b)) ? 1 : 0;
    }
    return miss;
  };
  auto expected_now = [&] {
    std::uint64_t e = 0;
    for (std::uint32_t b = 0; b < total; ++b)
      for (NodeId i = 0; i < n && started[b]; ++i) e += owes(b, i) ? 1 : 0;
    return e;
  };

  bool timed_out = false;
  std::optional<double> complete_at;
  std::optional<std::string> daemon_failure;
  for (;;) {
    check_interrupt();
    const double now_s = since(t0);
    if (auto failed = cluster.unexpected_exit()) {
      daemon_failure = *failed;
      break;
    }
    while (next_failure < multicast_failures.size() && multicast_failures[next_failure].first <= now_s) {
      const auto [subnet, recovers] = multicast_failures[next_failure++].second;
      if (recovers) lab->restore_multicast(subnet);
      else lab->fail_multicast(subnet);
      progress.note(std::string(recovers ? "multicast recovers" : "multicast fails") + " in subnet " +
                    mixcast::sim::subnet_at(s, subnet).name);
    }
    while (next_crash < pending_crashes.size() && pending_crashes[next_crash].at_s <= now_s) {
      const PlannedCrash crash = pending_crashes[next_crash++];
      const NodeId victim = crash.node;
      if (down[victim]) continue;
      cluster.kill9(victim);
      take_deliveries(victim);  // what it logged before dying still counts
      book.crashed(victim, now_s);  // not an origin while it is down
      // The summary counts a node that ever crashed as not live; the testbed checks restarted ones itself.
      if (result.crashed_at_s[victim] < 0) result.crashed_at_s[victim] = now_s;
      down[victim] = true;
      char text[128];
      std::snprintf(text, sizeof text, "kill -9 node %u at %.3f s", static_cast<unsigned>(victim), now_s);
      if (crash.restart_after_s) {
        pending_restarts.emplace_back(crash.at_s + *crash.restart_after_s, victim);
        std::sort(pending_restarts.begin(), pending_restarts.end());
        std::snprintf(text, sizeof text, "kill -9 node %u at %.3f s (restart after %.3f s)",
                      static_cast<unsigned>(victim), now_s, *crash.restart_after_s);
      }
      progress.note(text);
    }
    while (!pending_restarts.empty() && pending_restarts.front().first <= since(t0)) {
      const NodeId node = pending_restarts.front().second;
      pending_restarts.erase(pending_restarts.begin());
      if (!down[node]) continue;
      const double restart_s = since(t0);
      std::uint64_t incarnation = 0;
      try {
        take_deliveries(node);  // anything of its old life not read yet (normally read at the kill)
        cluster.restart(node);
        cluster.wait_ready(std::chrono::seconds(20));
        incarnation = cluster.status(node).at("incarnation").get<std::uint64_t>();
      } catch (const ClusterError& e) {
        check_interrupt();
        throw RunFailure("restarting node " + std::to_string(node) + ": " + e.what());
      }
      down[node] = false;
      back_s[node] = since(t0);
      life_seen[node].clear();
      book.restarted(node, shadow, back_s[node]);  // an origin again, as in the simulators
      restarts_json.push_back({{"node", node}, {"restarted_at_s", restart_s}, {"back_at_s", back_s[node]},
                               {"incarnation", incarnation}});
      char text[128];
      std::snprintf(text, sizeof text, "node %u restarted at %.3f s, back at %.3f s (incarnation %llu)",
                    static_cast<unsigned>(node), restart_s, back_s[node], static_cast<unsigned long long>(incarnation));
      progress.note(text);
    }
    if (!measured_scheduled && now_s >= next_island_check) {
      // Mixed mode measures steady state: wait until every live daemon plans with the same islands
      // and keeps doing so. One poll cannot tell: the daemons answer one after the other, not at
      // one instant, and they can all hold the same claims while a leader is still about to
      // announce a larger island (its candidate waits a confirm interval, members are learned
      // from beacons). So the same hash must come from every live daemon in kStablePolls
      // consecutive polls that span at least the claim interval.
      const double poll_start = since(t0);
      std::optional<std::uint64_t> hash;
      bool agreed = true;
      for (NodeId i = 0; i < n && agreed; ++i) {
        if (down[i]) continue;
        const auto h = cluster.status(i).at("islands").at("hash").get<std::uint64_t>();
        agreed = !hash || *hash == h;
        hash = h;
      }
      if (!agreed) {
        gate.reset();
      } else if (!gate.hash || *gate.hash != *hash) {
        gate = IslandGate{hash, poll_start, 1};
      } else {
        ++gate.polls;
      }
      const double now_after = since(t0);
      const bool stable = gate.hash && gate.polls >= kStablePolls && now_after - gate.since_s >= claim_interval_s;
      if (stable || now_after >= learning_deadline) {
        result.islands_agreed = stable;
        schedule_measured(now_after);
        char text[160];
        std::snprintf(text, sizeof text, "%s at %.3f s; measured broadcasts start",
                      stable ? "every daemon has planned with the same islands for the claim interval"
                             : "islands still differ or change after the learning time",
                      now_after);
        progress.note(text);
      } else {
        next_island_check = now_after + mixcast::sim::RunBook::kLearnedCheck_s;
      }
    }
    while (next_due < due.size() && due[next_due].first <= since(t0)) {
      const std::uint32_t index = due[next_due++].second;
      const double at_s = since(t0);
      const auto origin = book.start_broadcast(index, shadow, at_s);
      if (!origin) {
        ++skipped;
        continue;
      }
      if (index == warm) result.islands = cluster.status(*origin).at("islands").at("count").get<std::uint32_t>();
      payload_of[index] = make_payload(index, s.workload.payload_bytes, run_tag);
      delivered[index].assign(n, false);
      start_us[index] = realtime_us();
      start_s[index] = since(t0);
      MessageId id;
      try {
        id = cluster.send(*origin, payload_of[index]);
      } catch (const ClusterError& e) {
        check_interrupt();
        if (auto failed = cluster.unexpected_exit()) throw RunFailure(*failed);
        throw RunFailure(e.what());
      }
      index_of[id] = index;
      started[index] = true;
      ++started_count;
      result.broadcasts.push_back(mixcast::sim::BroadcastRecord{index, *origin, id.seq, at_s, index < warm});
    }
    for (NodeId i = 0; i < n; ++i)
      if (!down[i]) take_deliveries(i);
    const std::uint64_t miss = missing();
    const bool all_started = measured_scheduled && next_due == due.size() && started_count + skipped == total;
    const double done =
        expected_now() == 0 ? 0.0 : 1.0 - static_cast<double>(miss) / static_cast<double>(expected_now());
    progress.update(since(t0), started_count, total, done, live_count(), n);
    if (all_started && miss == 0) {
      // Like the simulators, keep running for a settle time after completion so crashes planned
      // in that window still happen; without such crashes there is nothing to wait for.
      if (!complete_at) complete_at = since(t0);
      const double stop_at = *complete_at + 2 * s.protocol.ack_timeout_s;
      const bool crash_due = next_crash < pending_crashes.size() && pending_crashes[next_crash].at_s <= stop_at;
      const bool restart_due = !pending_restarts.empty() && pending_restarts.front().first <= stop_at;
      if ((!crash_due && !restart_due) || since(t0) >= stop_at) break;
    }
    if (since(t0) >= s.time_limit_s) {
      timed_out = true;
      break;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  const double run_s = since(t0);
  progress.finish();

  // Counters of the daemons still running, then a graceful stop.
  nlohmann::json transport = nlohmann::json::object();
  std::uint32_t reporting = 0;
  std::vector<std::string> problems;
  if (daemon_failure) problems.push_back(*daemon_failure);
  for (NodeId i = 0; i < n && !daemon_failure; ++i) {
    if (down[i]) continue;
    take_deliveries(i);
    try {
      const auto st = cluster.status(i);
      const auto& c = st.at("counters");
      ++reporting;
      for (auto it = c.begin(); it != c.end(); ++it)
        if (it->is_number_unsigned()) transport[it.key()] = transport.value(it.key(), std::uint64_t{0}) + it->get<std::uint64_t>();
    } catch (const std::exception& e) {
      problems.push_back("node " + std::to_string(i) + ": status failed: " + e.what());
    }
  }
  for (const auto& p : cluster.stop_all(std::chrono::seconds(5))) problems.push_back(p);
  check_interrupt();

  auto counter = [&](const char* key) { return transport.value(key, std::uint64_t{0}); };
  result.repairs = counter("repairs_sent");
  result.forced_tcp = counter("forced_tcp");
  result.redelegations = counter("redelegations");
  // The transport counts every undecodable frame or stream (the core's bad_frames are a subset).
  result.bad_frames = counter("tcp_bad_frames") + counter("multicast_bad_frames") + counter("oversized_frames");
  result.simulated_s = run_s;
  result.events = rows_read;
  std::stable_sort(result.deliveries.begin(), result.deliveries.end(), [](const auto& x, const auto& y) {
    return x.broadcast != y.broadcast ? x.broadcast < y.broadcast : x.time_s < y.time_s;
  });
  std::sort(result.broadcasts.begin(), result.broadcasts.end(),
            [](const auto& x, const auto& y) { return x.index < y.index; });
  result.wall_s = since(wall_start);

  nlohmann::json summary = mixcast::sim::summarize(result);
  summary["testbed"] = {{"net", a.net},
                        {"daemon", daemon},
                        {"timed_out", timed_out},
                        {"missing_deliveries", missing()},
                        {"unexpected_deliveries", unexpected},
                        {"payload_mismatches", mismatched},
                        {"daemon_problems", problems},
                        {"restarts", restarts_json},
                        {"not_emulated", unemulated(s, netns)}};
  // Traffic is not attributed to broadcasts on real sockets: whole-run counters of the daemons
  // that were still running at the end (killed daemons' counters died with them).
  summary["transport"] = {{"daemons", reporting}, {"counters", transport}};
  mixcast::sim::write_outputs(result, summary, out);
  if (a.keep_logs) {
    const fs::path logs = fs::path(out) / "daemons";
    std::error_code ec;
    fs::create_directories(logs, ec);
    for (const auto& entry : fs::directory_iterator(cluster.dir(), ec))
      if (entry.is_regular_file()) fs::copy_file(entry.path(), logs / entry.path().filename(), fs::copy_options::overwrite_existing, ec);
    if (ec) throw OutputError("cannot copy daemon logs to " + logs.string() + ": " + ec.message());
  }

  if (a.json) {
    std::cout << summary.dump(2) << "\n";
  } else {
    if (!a.quiet) std::cout << mixcast::sim::human_summary(summary);
    std::cout << "results: " << out << "\n";
  }
  std::cout.flush();
  if (timed_out)
    std::fprintf(stderr, "%s: warning: time limit %.1f s reached with %llu deliveries missing\n", kProg,
                 s.time_limit_s, static_cast<unsigned long long>(missing()));
  if (!problems.empty() || unexpected > 0 || mismatched > 0) {
    std::string text = "the daemons failed:";
    for (const auto& p : problems) text += "\n  " + p;
    if (!first_anomaly.empty()) text += "\n  " + first_anomaly;
    if (unexpected > 0) text += "\n  " + std::to_string(unexpected) + " deliveries of messages never sent";
    if (mismatched > 0) text += "\n  " + std::to_string(mismatched) + " deliveries with a wrong payload";
    throw RunFailure(text);
  }
  return 0;
}

int fail(const std::string& message, int code) {
  std::cout.flush();
  std::cerr << kProg << ": " << (code == 2 ? "error: " : "") << message << "\n";
  return code;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"mixcast-testbed: runs a scenario's nodes as real mixcastd daemons and writes the same\n"
               "summary.json plus CSV tables as mixcast-sim (engine \"real\"; see README.md).",
               kProg};
  app.set_version_flag("--version", std::string(kProg) + " " + MIXCAST_VERSION);
  app.require_subcommand(1);
  app.footer("Example:\n  mixcast-testbed run scenarios/multi-subnet.yaml --net loopback --nodes 16 --mode mixed\n"
             "Exit codes: 0 ok, 2 bad input (scenario, flags, output directory), 1 daemons failed,\n"
             "130 interrupted (every daemon is stopped first).");
  RunArgs ra;
  CLI::App* run = app.add_subcommand("run", "Run one scenario on real daemons and write summary.json, deliveries.csv, broadcasts.csv");
  run->add_option("scenario", ra.scenario, "Scenario YAML file")->type_name("SCENARIO")->required();
  run->add_option("--net", ra.net,
                  "Network: loopback (every daemon on 127.0.0.1; one multicast group per subnet) or netns (a real\n"
                  "network in Linux namespaces: bridges, routers, NAT, iptables loss; root only)")
      ->type_name("NET")
      ->required();
  run->add_option("--nodes", ra.nodes, "Rescale the topology to N nodes (one mixcastd each), keeping each subnet's share")
      ->type_name("N");
  run->add_option("--mode", ra.mode, "Protocol mode: tcp or mixed (default: the scenario's protocol.mode)")->type_name("MODE");
  run->add_option("--seed", ra.seed, "Random seed: origins and crashed nodes (default: the scenario's seed)")
      ->type_name("SEED");
  run->add_option("--set", ra.sets, "Override a scenario key before validation, e.g. --set workload.broadcasts=100 (repeatable)")
      ->allow_extra_args(false)
      ->type_name("KEY=VALUE");
  run->add_option("--out", ra.out, "Output directory (default: results/<scenario>-real-<mode>-n<nodes>-s<seed>)")
      ->type_name("DIR");
  run->add_option("--restart-after", ra.restart_after,
                  "Restart every crashed daemon this long after its crash (e.g. 1s, 500ms), unless its\n"
                  "crashes[] entry gives restart_after itself; it comes back with a higher incarnation")
      ->type_name("DURATION");
  run->add_flag("--keep-logs", ra.keep_logs, "Copy every daemon's config, log and delivery log to DIR/daemons/");
  run->add_option("--daemon", ra.daemon, "mixcastd binary (default: the one built next to mixcast-testbed)")
      ->type_name("PATH");
  run->add_option("--log-level", ra.log_level, "Daemons' log_level: trace, debug, info, warn, error, off")
      ->type_name("LEVEL")
      ->capture_default_str();
  run->add_flag("--quiet,-q", ra.quiet, "No progress and no human summary (still prints 'results: DIR')");
  run->add_flag("--json", ra.json, "Print summary.json to stdout instead of the human summary");
  run->footer(
      "The daemons run on 127.0.0.1 with ports the testbed picks; each subnet is a multicast group\n"
      "(239.x.y.z, a port of its own), NAT subnets set nat_domain, crash plans kill -9 daemons (and\n"
      "restart them after crashes[].restart_after or --restart-after, with a higher incarnation). The\n"
      "run ends when every live daemon delivered every broadcast or at the scenario's time_limit.\n"
      "On loopback, link latency, bandwidth and loss are not emulated. With --net netns every node has a\n"
      "namespace of its own, each subnet a Linux bridge, each datacenter a router namespace, NAT subnets\n"
      "sit behind iptables MASQUERADE and loss uses iptables' statistic match; latency and bandwidth\n"
      "are not emulated. Every namespace is removed at the end, also on failure or Ctrl-C.");
  CLI::App* cleanup = app.add_subcommand("cleanup", "Remove every network namespace a netns run left behind (root)");

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    if (e.get_exit_code() == static_cast<int>(CLI::ExitCodes::Success)) return app.exit(e);
    return fail(std::string(e.what()) + " (see '" + kProg + " --help')", 2);
  }
  if (cleanup->parsed()) {
    if (!mixcast::real::NetnsLab::have_root()) return fail("cleanup needs root (it deletes network namespaces)", 2);
    const auto left = mixcast::real::NetnsLab::existing_namespaces();
    mixcast::real::NetnsLab::remove_all_namespaces();
    std::cout << "removed " << left.size() << " namespaces\n";
    return 0;
  }
  try {
    return cmd_run(ra);
  } catch (const Interrupted& i) {
    // The cluster's destructor already killed and reaped every daemon on the way out.
    std::cerr << "\n" << kProg << ": interrupted by signal " << i.signal << "; every daemon stopped\n";
    return 130;
  } catch (const ScenarioError& e) {
    return fail(e.what(), 2);
  } catch (const UsageError& e) {
    return fail(e.what(), 2);
  } catch (const OutputError& e) {
    return fail(e.what(), 2);
  } catch (const RunFailure& e) {
    return fail(e.what(), 1);
  } catch (const ClusterError& e) {
    return fail(e.what(), 1);
  } catch (const std::exception& e) {
    return fail(std::string("internal error: ") + e.what(), 1);
  }
}
