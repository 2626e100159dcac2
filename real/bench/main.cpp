// mixcast-bench: throughput and latency of mixcast::real::Runtime on loopback, 64-byte payloads.
//   p2p        one sending node, one receiving node (two processes)
//   broadcast  one sender and N-1 receivers (N processes, one node each)
// Each node is a forked child running one Runtime on its own io_context. The sender keeps the
// runtime saturated (try_broadcast until it refuses, then waits for on_ready; --rate paces it); every payload
// carries its CLOCK_MONOTONIC send time, so receivers measure one-way latency under that load.
// Figures are medians over --reps repetitions; --json prints them as one object.
#include <poll.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <boost/asio.hpp>
#include <boost/asio/posix/stream_descriptor.hpp>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <iostream>
#include <map>
#include <optional>
#include <random>
#include <stdexcept>
#include <string>
#include <vector>

#include <CLI/CLI.hpp>
#include <spdlog/spdlog.h>
#include <nlohmann/json.hpp>

#include "local_cluster.hpp"
#include "mixcast/real/config.hpp"
#include "mixcast/real/runtime.hpp"

namespace {

namespace asio = boost::asio;
using mixcast::Mode;
using mixcast::NodeId;
using mixcast::real::DaemonConfig;
using mixcast::real::Runtime;
using nlohmann::json;

constexpr const char* kProg = "mixcast-bench";

class BenchError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

std::int64_t mono_ns() {
  timespec ts{};
  ::clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<std::int64_t>(ts.tv_sec) * 1'000'000'000 + ts.tv_nsec;
}

double cpu_seconds(bool user) {
  rusage r{};
  ::getrusage(RUSAGE_SELF, &r);
  const timeval& t = user ? r.ru_utime : r.ru_stime;
  return static_cast<double>(t.tv_sec) + static_cast<double>(t.tv_usec) / 1e6;
}

// ---- payload: send time, index, kind; the end marker also names the measured range ----------
enum Kind : std::uint8_t { kWarm = 0, kMeasured = 1, kEnd = 2 };
constexpr std::size_t kHeader = 25;

void put64(std::uint8_t* p, std::uint64_t v) {
  for (int i = 0; i < 8; ++i) p[i] = static_cast<std::uint8_t>(v >> (8 * i));
}
std::uint64_t get64(const std::uint8_t* p) {
  std::uint64_t v = 0;
  for (int i = 0; i < 8; ++i) v |= std::uint64_t{p[i]} << (8 * i);
  return v;
}

mixcast::wire::Bytes make_payload(std::size_t size, Kind kind, std::uint64_t index, std::uint64_t extra) {
  mixcast::wire::Bytes p(std::max(size, kHeader), 0x5a);
  put64(p.data(), static_cast<std::uint64_t>(mono_ns()));
  put64(p.data() + 8, index);
  p[16] = kind;
  put64(p.data() + 17, extra);
  return p;
}

// ---- latency histogram: 1 us buckets below 1 ms, then 1% wide (percentiles within 1%) ---------
class Histogram {
 public:
  Histogram() : buckets_(kBuckets, 0) {}
  void add(std::int64_t us) { ++buckets_[bucket(std::max<std::int64_t>(0, us))]; }
  void merge(const json& j) {
    for (const auto& pair : j) buckets_.at(pair.at(0).get<std::uint32_t>()) += pair.at(1).get<std::uint64_t>();
  }
  json to_json() const {
    json j = json::array();
    for (std::uint32_t b = 0; b < kBuckets; ++b)
      if (buckets_[b] != 0) j.push_back({b, buckets_[b]});
    return j;
  }
  // Nearest rank: the smallest bucket value with at least p% of the samples at or below it.
  double percentile(double p) const {
    std::uint64_t total = 0;
    for (auto c : buckets_) total += c;
    if (total == 0) return 0;
    const auto rank = std::max<std::uint64_t>(1, static_cast<std::uint64_t>(std::ceil(p / 100.0 * static_cast<double>(total))));
    std::uint64_t seen = 0;
    for (std::uint32_t b = 0; b < kBuckets; ++b) {
      seen += buckets_[b];
      if (seen >= rank) return value(b);
    }
    return value(kBuckets - 1);
  }

 private:
  static constexpr std::int64_t kLinear = 1024;
  static constexpr std::uint32_t kBuckets = 4096;  // the last one holds everything above ~16 minutes
  static std::uint32_t bucket(std::int64_t us) {
    if (us < kLinear) return static_cast<std::uint32_t>(us);
    const double b = kLinear + std::floor(std::log(static_cast<double>(us) / kLinear) / std::log(1.01));
    return static_cast<std::uint32_t>(std::min<double>(b, kBuckets - 1));
  }
  static double value(std::uint32_t b) {
    if (b < kLinear) return b;
    return kLinear * std::pow(1.01, b - kLinear + 1);  // upper edge of the bucket
  }
  std::vector<std::uint64_t> buckets_;
};

// ---- the children --------------------------------------------------------------------------
struct Params {
  double warmup_s = 1.0;
  double seconds = 2.0;
  std::size_t payload = 64;
  double drain_timeout_s = 20.0;
  std::size_t queue_bytes = 0;  // limits.send_queue_bytes; 0: the runtime's default
  std::int64_t ack_timeout_ms = 0;  // protocol ack timeout; 0: the core's default
  double rate = 0;  // messages per second offered by the sender; 0: as fast as the runtime accepts
};

// Commands come on `cmd_fd` one per line ("go", "quit"); results go to `out_fd` as one line.
void write_line(int fd, const std::string& line) {
  const std::string text = line + "\n";
  std::size_t done = 0;
  while (done < text.size()) {
    const ssize_t n = ::write(fd, text.data() + done, text.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return;
    done += static_cast<std::size_t>(n);
  }
}

class Commands {
 public:
  Commands(asio::io_context& io, int fd, std::function<void(const std::string&)> on_line)
      : stream_(io, fd), on_line_(std::move(on_line)) {
    read();
  }
  void close() {
    boost::system::error_code ec;
    stream_.cancel(ec);
    stream_.close(ec);
  }

 private:
  void read() {
    asio::async_read_until(stream_, buf_, '\n', [this](boost::system::error_code ec, std::size_t) {
      if (ec) {
        if (ec != asio::error::operation_aborted) on_line_("quit");  // the parent is gone
        return;
      }
      std::istream in(&buf_);
      std::string line;
      std::getline(in, line);
      on_line_(line);
      read();
    });
  }
  asio::posix::stream_descriptor stream_;
  asio::streambuf buf_;
  std::function<void(const std::string&)> on_line_;
};

int run_sender(const DaemonConfig& cfg, int cmd_fd, int out_fd, const Params& p) {
  spdlog::set_level(spdlog::level::warn);  // link-lost notices at the end are expected
  asio::io_context io(1);
  Runtime rt(io, cfg);
  rt.start();
  enum class Phase { idle, warm, measured, ending, done } phase = Phase::idle;
  std::uint64_t index = 0, m0 = 0, m1 = 0, refusals = 0, pumps = 0;
  std::int64_t warm_end = 0, measure_end = 0, measure_start = 0, broadcast_ns = 0;
  double cpu_user0 = 0, cpu_sys0 = 0;
  bool waiting = false;
  std::int64_t go_at = 0;
  asio::steady_timer pace(io);

  std::function<void()> pump = [&] {
    if (phase == Phase::done || phase == Phase::idle) return;
    ++pumps;
    const std::int64_t now = mono_ns();
    if (phase == Phase::warm && now >= warm_end) {
      phase = Phase::measured;
      m0 = index;
      measure_start = now;
      cpu_user0 = cpu_seconds(true);
      cpu_sys0 = cpu_seconds(false);
    }
    if (phase == Phase::measured && now >= measure_end) {
      phase = Phase::ending;
      m1 = index;
    }
    if (phase == Phase::ending) {
      if (rt.try_broadcast(make_payload(p.payload, kEnd, m0, m1))) {
        phase = Phase::done;
      } else {
        waiting = true;
      }
      return;
    }
    const Kind kind = phase == Phase::warm ? kWarm : kMeasured;
    // A batch per turn, then yield so the runtime's pump and socket handlers run. Paced (--rate):
    // only what the schedule allows by now; if nothing, look again in 100 us.
    int batch = 256;
    if (p.rate > 0) {
      const auto due = static_cast<std::uint64_t>(static_cast<double>(now - go_at) * 1e-9 * p.rate);
      batch = static_cast<int>(std::min<std::uint64_t>(256, due > index ? due - index : 0));
      if (batch == 0) {
        pace.expires_after(std::chrono::microseconds(100));
        pace.async_wait([&](boost::system::error_code ec) {
          if (!ec) pump();
        });
        return;
      }
    }
    const std::int64_t t0 = mono_ns();
    for (int i = 0; i < batch; ++i) {
      if (!rt.try_broadcast(make_payload(p.payload, kind, index, 0))) {
        ++refusals;
        waiting = true;  // on_ready resumes us
        break;
      }
      ++index;
    }
    if (phase == Phase::measured) broadcast_ns += mono_ns() - t0;
    if (!waiting) asio::post(io, pump);
  };
  rt.on_ready([&] {
    if (!waiting) return;
    waiting = false;
    asio::post(io, pump);
  });

  Commands commands(io, cmd_fd, [&](const std::string& line) {
    if (line == "go" && phase == Phase::idle) {
      phase = Phase::warm;
      const std::int64_t now = mono_ns();
      go_at = now;
      warm_end = now + static_cast<std::int64_t>(p.warmup_s * 1e9);
      measure_end = warm_end + static_cast<std::int64_t>(p.seconds * 1e9);
      asio::post(io, pump);
    } else if (line == "quit") {
      const double window = static_cast<double>(measure_end - measure_start) / 1e9;
      const auto& tr = rt.transport();
      json r = {{"sent", m1 - m0},
                {"offered_per_s", window > 0 ? static_cast<double>(m1 - m0) / window : 0.0},
                {"refusals", refusals},
                {"pumps", pumps},
                {"backpressure_refusals", tr.backpressure_refusals},
                {"read_pauses", tr.read_pauses},
                {"writes", tr.writes},
                {"frames_out", tr.frames_out},
                {"tcp_bytes_out", tr.tcp_bytes_out},
                {"multicast_bytes_out", tr.multicast_bytes_out},
                {"try_broadcast_s", static_cast<double>(broadcast_ns) / 1e9},
                {"window_s", window},
                {"cpu_user_s", cpu_seconds(true) - cpu_user0},
                {"cpu_sys_s", cpu_seconds(false) - cpu_sys0},
                {"counters", rt.status().at("counters")}};
      write_line(out_fd, "result " + r.dump());
      phase = Phase::done;
      pace.cancel();
      commands.close();
      rt.stop();
      io.stop();
    }
  });
  write_line(out_fd, "ready");
  io.run();
  return 0;
}

int run_receiver(const DaemonConfig& cfg, int cmd_fd, int out_fd, const Params& p) {
  spdlog::set_level(spdlog::level::warn);
  asio::io_context io(1);
  Runtime rt(io, cfg);
  rt.start();
  Histogram hist;
  std::vector<bool> seen;
  std::uint64_t count = 0, duplicates = 0, foreign = 0;
  std::int64_t first = 0, last = 0;
  std::optional<std::pair<std::uint64_t, std::uint64_t>> range;  // measured [m0, m1), from the end marker
  bool reported = false;
  double cpu_user0 = 0, cpu_sys0 = 0;
  asio::steady_timer grace(io);

  auto report = [&] {
    if (reported) return;
    reported = true;
    grace.cancel();
    const double span = static_cast<double>(last - first) / 1e9;
    const std::uint64_t expected = range ? range->second - range->first : 0;
    const auto& tr = rt.transport();
    json r = {{"received", count},
              {"expected", expected},
              {"duplicates", duplicates},
              {"foreign", foreign},
              {"msgs_per_s", span > 0 ? static_cast<double>(count) / span : 0.0},
              {"span_s", span},
              {"hist", hist.to_json()},
              {"cpu_user_s", cpu_seconds(true) - cpu_user0},
              {"cpu_sys_s", cpu_seconds(false) - cpu_sys0},
              {"tcp_bytes_in", tr.tcp_bytes_in},
              {"multicast_bytes_in", tr.multicast_bytes_in},
              {"counters", rt.status().at("counters")}};
    write_line(out_fd, "result " + r.dump());
  };
  auto maybe_done = [&] {
    if (range && count >= range->second - range->first) report();
  };

  rt.on_delivery([&](const mixcast::real::DeliveryEvent& d) {
    const auto now = mono_ns();
    if (d.payload.size() < kHeader || d.id.origin != 0) {
      ++foreign;
      return;
    }
    const auto sent = static_cast<std::int64_t>(get64(d.payload.data()));
    const std::uint64_t index = get64(d.payload.data() + 8);
    const std::uint8_t kind = d.payload[16];
    if (kind == kEnd) {
      range = std::make_pair(index, get64(d.payload.data() + 17));
      // Messages still in flight on other paths get a grace period, then we report what came.
      grace.expires_after(std::chrono::milliseconds(static_cast<int>(p.drain_timeout_s * 1000)));
      grace.async_wait([&](boost::system::error_code ec) {
        if (!ec) report();
      });
      maybe_done();
      return;
    }
    if (kind != kMeasured) return;
    if (index >= seen.size()) seen.resize(std::max<std::size_t>(index + 1, seen.size() * 2), false);
    if (seen[index]) {
      ++duplicates;
      return;
    }
    seen[index] = true;
    if (count == 0) {
      first = now;
      cpu_user0 = cpu_seconds(true);
      cpu_sys0 = cpu_seconds(false);
    }
    last = now;
    ++count;
    hist.add((now - sent) / 1000);
    maybe_done();
  });
  Commands commands(io, cmd_fd, [&](const std::string& line) {
    if (line != "quit") return;
    report();
    commands.close();
    rt.stop();
    io.stop();
  });
  write_line(out_fd, "ready");
  io.run();
  return 0;
}

// ---- the parent ----------------------------------------------------------------------------
struct Child {
  pid_t pid = -1;
  int to = -1, from = -1;
  std::string buf;
  bool reaped = false;
};

// Forks a node; the child never returns. The parent has no threads, so the child may do anything.
Child spawn(const std::function<int(int, int)>& body) {
  int down[2], up[2];
  if (::pipe2(down, O_CLOEXEC) != 0 || ::pipe2(up, O_CLOEXEC) != 0) throw BenchError("pipe: " + std::string(std::strerror(errno)));
  const pid_t parent = ::getpid();
  const pid_t pid = ::fork();
  if (pid < 0) throw BenchError("fork: " + std::string(std::strerror(errno)));
  if (pid == 0) {
    ::setpgid(0, 0);
    ::prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (::getppid() != parent) ::_exit(127);
    ::signal(SIGINT, SIG_IGN);  // the parent handles Ctrl-C and kills us
    ::close(down[1]);
    ::close(up[0]);
    int code = 1;
    try {
      code = body(down[0], up[1]);
    } catch (const std::exception& e) {
      write_line(up[1], std::string("error ") + e.what());
    }
    ::_exit(code);
  }
  ::setpgid(pid, pid);
  ::close(down[0]);
  ::close(up[1]);
  return Child{pid, down[1], up[0], {}, false};
}

void kill_child(Child& c) {
  if (c.reaped) return;
  ::kill(-c.pid, SIGKILL);
  int st = 0;
  ::waitpid(c.pid, &st, 0);
  c.reaped = true;
  ::close(c.to);
  ::close(c.from);
}

// The next line from a child ("ready", "result {...}", "error ..."), or an error on timeout/exit.
std::string read_line(Child& c, double timeout_s, const std::string& role) {
  const std::int64_t deadline = mono_ns() + static_cast<std::int64_t>(timeout_s * 1e9);
  for (;;) {
    const auto nl = c.buf.find('\n');
    if (nl != std::string::npos) {
      std::string line = c.buf.substr(0, nl);
      c.buf.erase(0, nl + 1);
      if (line.rfind("error ", 0) == 0) throw BenchError(role + ": " + line.substr(6));
      return line;
    }
    const std::int64_t left_ms = (deadline - mono_ns()) / 1'000'000;
    if (left_ms <= 0) throw BenchError(role + ": no answer within " + std::to_string(timeout_s) + " s");
    pollfd pfd{c.from, POLLIN, 0};
    const int r = ::poll(&pfd, 1, static_cast<int>(std::min<std::int64_t>(left_ms, 200)));
    if (r < 0 && errno != EINTR) throw BenchError("poll: " + std::string(std::strerror(errno)));
    if (r <= 0) continue;
    char tmp[65536];
    const ssize_t n = ::read(c.from, tmp, sizeof tmp);
    if (n == 0) throw BenchError(role + " exited unexpectedly");
    if (n > 0) c.buf.append(tmp, static_cast<std::size_t>(n));
  }
}

json parse_result(const std::string& line, const std::string& role) {
  if (line.rfind("result ", 0) != 0) throw BenchError(role + ": unexpected line '" + line + "'");
  return json::parse(line.substr(7));
}

std::vector<DaemonConfig> make_configs(std::uint32_t nodes, Mode mode, const Params& p) {
  const auto ports = mixcast::testbed::pick_free_ports(nodes, false);
  const auto mports = mixcast::testbed::pick_free_ports(1, true);
  std::random_device rd;
  const std::string group = "239.255." + std::to_string(100 + rd() % 100) + "." + std::to_string(1 + rd() % 250);
  std::vector<DaemonConfig> out(nodes);
  for (NodeId i = 0; i < nodes; ++i) {
    DaemonConfig& c = out[i];
    c.node.self = i;
    c.node.mode = mode;
    c.node.seed = 1000 + i;
    c.listen = {"127.0.0.1", ports[i]};
    c.log_level = "warn";
    if (p.queue_bytes > 0) c.limits.send_queue_bytes = p.queue_bytes;
    if (p.ack_timeout_ms > 0) c.node.ack_timeout = p.ack_timeout_ms * 1000;
    if (mode == Mode::mixed) c.multicast = mixcast::real::MulticastConfig{group, mports[0], "127.0.0.1", 1};
    for (NodeId j = 0; j < nodes; ++j)
      if (j != i) c.peers.push_back(mixcast::real::PeerConfig{j, {"127.0.0.1", ports[j]}, std::nullopt});
  }
  return out;
}

volatile std::sig_atomic_t g_interrupted = 0;
extern "C" void on_sigint(int) { g_interrupted = 1; }

struct RepResult {
  double msgs_per_s = 0;  // per receiving node: median over receivers
  double min_msgs_per_s = 0;
  double p50_us = 0, p99_us = 0;
  std::uint64_t missing = 0, duplicates = 0;
  json sender, receivers = json::array();
};

// One repetition: node 0 sends, nodes 1..n-1 receive.
RepResult run_rep(std::uint32_t nodes, Mode mode, const Params& p) {
  const auto cfgs = make_configs(nodes, mode, p);
  std::vector<Child> kids;
  struct Reaper {  // every child dies with this scope, whatever happens
    std::vector<Child>& k;
    ~Reaper() {
      for (auto& c : k) kill_child(c);
    }
  } reaper{kids};
  for (NodeId i = 1; i < nodes; ++i)
    kids.push_back(spawn([&, i](int in, int out) { return run_receiver(cfgs[i], in, out, p); }));
  kids.insert(kids.begin(), spawn([&](int in, int out) { return run_sender(cfgs[0], in, out, p); }));
  auto role = [](NodeId i) { return i == 0 ? std::string("sender (node 0)") : "receiver node " + std::to_string(i); };
  for (NodeId i = 0; i < nodes; ++i)
    if (read_line(kids[i], 10, role(i)) != "ready") throw BenchError(role(i) + ": did not start");
  write_line(kids[0].to, "go");

  RepResult r;
  std::vector<double> rates;
  Histogram all;
  // Receivers report once they have every measured message (or drain_timeout after the end
  // marker). One that has not reported by the deadline is told to quit, which makes it report
  // what it has: missing messages are counted, not waited for forever.
  const std::int64_t deadline = mono_ns() + static_cast<std::int64_t>((p.warmup_s + p.seconds + p.drain_timeout_s + 15) * 1e9);
  std::vector<std::optional<json>> results(nodes);
  for (NodeId i = 1; i < nodes; ++i) {
    if (g_interrupted) throw BenchError("interrupted");
    const double left = std::max(0.0, static_cast<double>(deadline - mono_ns()) / 1e9);
    try {
      results[i] = parse_result(read_line(kids[i], left, role(i)), role(i));
    } catch (const BenchError& e) {
      if (std::string(e.what()).find("no answer") == std::string::npos) throw;
    }
  }
  for (auto& k : kids) write_line(k.to, "quit");
  for (NodeId i = 1; i < nodes; ++i)
    if (!results[i]) results[i] = parse_result(read_line(kids[i], 10, role(i)), role(i));
  for (NodeId i = 1; i < nodes; ++i) {
    const json& res = *results[i];
    rates.push_back(res.at("msgs_per_s").get<double>());
    all.merge(res.at("hist"));
    const auto expected = res.at("expected").get<std::uint64_t>();
    const auto received = res.at("received").get<std::uint64_t>();
    // No end marker at all: everything the sender sent is missing there.
    const auto want = expected > 0 ? expected : std::uint64_t{0};
    r.missing += want - std::min(want, received);
    if (expected == 0) r.missing += 1;
    r.duplicates += res.at("duplicates").get<std::uint64_t>();
    json brief = res;
    brief.erase("hist");
    r.receivers.push_back(brief);
  }
  r.sender = parse_result(read_line(kids[0], 10, role(0)), role(0));
  for (NodeId i = 0; i < nodes; ++i) {
    int st = 0;
    const std::int64_t until = mono_ns() + 5'000'000'000;
    while (::waitpid(kids[i].pid, &st, WNOHANG) == 0 && mono_ns() < until) ::usleep(2000);
  }
  std::sort(rates.begin(), rates.end());
  r.msgs_per_s = rates[(rates.size() - 1) / 2];
  r.min_msgs_per_s = rates.front();
  r.p50_us = all.percentile(50);
  r.p99_us = all.percentile(99);
  return r;
}

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v.empty() ? 0 : v.size() % 2 ? v[v.size() / 2] : (v[v.size() / 2 - 1] + v[v.size() / 2]) / 2;
}

struct Summary {
  double rate = 0, min_rate = 0, p50 = 0, p99 = 0;
  std::uint64_t missing = 0, duplicates = 0;
  std::vector<RepResult> reps;
};

Summary run_series(const char* name, std::uint32_t nodes, Mode mode, const Params& p, int reps, bool verbose) {
  Summary s;
  std::vector<double> rate, min_rate, p50, p99;
  for (int k = 0; k < reps; ++k) {
    RepResult r = run_rep(nodes, mode, p);
    if (verbose) {
      const auto& snd = r.sender;
      const double frames = snd.value("frames_out", 0.0), writes = snd.value("writes", 0.0);
      std::fprintf(stderr,
                   "[%s rep %d] %.0f msgs/s/node (min %.0f), p50 %.0f us, p99 %.0f us | sender: offered %.0f/s, "
                   "cpu user %.2f s sys %.2f s of %.2f s, in try_broadcast %.2f s, %.1f frames/write, %llu refusals | "
                   "receiver 1 cpu user %.2f s sys %.2f s\n",
                   name, k + 1, r.msgs_per_s, r.min_msgs_per_s, r.p50_us, r.p99_us, snd.value("offered_per_s", 0.0),
                   snd.value("cpu_user_s", 0.0), snd.value("cpu_sys_s", 0.0), snd.value("window_s", 0.0),
                   snd.value("try_broadcast_s", 0.0), writes > 0 ? frames / writes : 0.0,
                   static_cast<unsigned long long>(snd.value("refusals", 0ULL)),
                   r.receivers.empty() ? 0.0 : r.receivers[0].value("cpu_user_s", 0.0),
                   r.receivers.empty() ? 0.0 : r.receivers[0].value("cpu_sys_s", 0.0));
      const json& c = snd.at("counters");
      std::fprintf(stderr, "[%s rep %d] sender loop: %llu turns for %llu messages\n", name, k + 1,
                   static_cast<unsigned long long>(snd.value("pumps", 0ULL)),
                   static_cast<unsigned long long>(c.value("broadcasts", 0ULL)));
      std::fprintf(stderr, "[%s rep %d] sender: ack_timeouts %llu, redelegations %llu, link_failures %llu, read_pauses %llu\n",
                   name, k + 1, c.value("ack_timeouts", 0ULL), c.value("redelegations", 0ULL),
                   c.value("link_failures", 0ULL), c.value("read_pauses", 0ULL));
      for (std::size_t i = 0; i < r.receivers.size(); ++i)
        if (r.receivers[i].value("received", 0ULL) != r.receivers[i].value("expected", 0ULL))
          std::fprintf(stderr, "[%s rep %d] receiver node %zu: %s\n", name, k + 1, i + 1, r.receivers[i].dump().c_str());
    }
    rate.push_back(r.msgs_per_s);
    min_rate.push_back(r.min_msgs_per_s);
    p50.push_back(r.p50_us);
    p99.push_back(r.p99_us);
    s.missing += r.missing;
    s.duplicates += r.duplicates;
    s.reps.push_back(std::move(r));
  }
  s.rate = median(rate);
  s.min_rate = median(min_rate);
  s.p50 = median(p50);
  s.p99 = median(p99);
  return s;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"mixcast-bench: throughput and latency of the mixcast runtime on loopback (one process per node)", kProg};
  bool as_json = false, verbose = false;
  int reps = 5;
  Params p;
  std::uint32_t nodes = 8;
  std::string mode_text = "tcp";
  std::string only;
  app.add_flag("--json", as_json,
               "Print {\"p2p\": {...}, \"broadcast\": {...}} (medians over the repetitions) instead of a table");
  app.add_option("--reps", reps, "Repetitions of each measurement; figures are their median")->check(CLI::Range(1, 100))->capture_default_str();
  app.add_option("--seconds", p.seconds, "Measured seconds per repetition (after --warmup)")->check(CLI::Range(0.1, 600.0))->capture_default_str();
  app.add_option("--warmup", p.warmup_s, "Seconds of unmeasured sending first (mixed mode learns islands meanwhile)")
      ->check(CLI::Range(0.0, 60.0))
      ->capture_default_str();
  app.add_option("--nodes", nodes, "Nodes of the broadcast test (one sender, the rest receive)")->check(CLI::Range(2, 64))->capture_default_str();
  app.add_option("--payload", p.payload, "Payload bytes (at least 25: send time, index, kind)")->check(CLI::Range(25, 65536))->capture_default_str();
  app.add_option("--mode", mode_text, "Protocol mode of the broadcast test: tcp or mixed (multicast on lo)")
      ->check(CLI::IsMember({"tcp", "mixed"}))
      ->capture_default_str();
  app.add_option("--queue-bytes", p.queue_bytes, "limits.send_queue_bytes of every node (default: the runtime's, 4 MiB)")
      ->check(CLI::Range(std::size_t{4096}, std::size_t{1} << 32));
  app.add_option("--ack-timeout-ms", p.ack_timeout_ms, "protocol.ack_timeout_ms of every node (default: the core's, 500)")
      ->check(CLI::Range(1, 600000));
  app.add_option("--rate", p.rate, "Pace the sender at this many messages/s (default 0: saturate, wait only on backpressure)")
      ->check(CLI::Range(0.0, 1e8));
  app.add_option("--only", only, "Run only p2p or broadcast")->check(CLI::IsMember({"p2p", "broadcast"}));
  app.add_flag("--verbose,-v", verbose, "Per repetition: sender and receiver CPU time, coalescing, refusals (stderr)");
  app.footer("Latency is one-way, send to delivery, under the offered load (saturating unless --rate;\n"
             "queueing included).\n"
             "msgs/s is per receiving node: the median over receivers of delivered messages per second.");
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    if (e.get_exit_code() == static_cast<int>(CLI::ExitCodes::Success)) return app.exit(e);
    std::cerr << kProg << ": error: " << e.what() << " (see '" << kProg << " --help')\n";
    return 2;
  }
  struct sigaction sa {};
  sa.sa_handler = on_sigint;
  sigemptyset(&sa.sa_mask);
  ::sigaction(SIGINT, &sa, nullptr);
  ::sigaction(SIGTERM, &sa, nullptr);
  ::signal(SIGPIPE, SIG_IGN);
  const Mode mode = mode_text == "mixed" ? Mode::mixed : Mode::tcp;

  try {
    std::optional<Summary> p2p, bc;
    if (only.empty() || only == "p2p") p2p = run_series("p2p", 2, Mode::tcp, p, reps, verbose);
    if (only.empty() || only == "broadcast") bc = run_series("broadcast", nodes, mode, p, reps, verbose);
    std::uint64_t missing = 0, duplicates = 0;
    for (const auto* s : {p2p ? &*p2p : nullptr, bc ? &*bc : nullptr})
      if (s) missing += s->missing, duplicates += s->duplicates;

    if (as_json) {
      json j = json::object();
      if (p2p)
        j["p2p"] = {{"payload_bytes", p.payload}, {"msgs_per_s", p2p->rate}, {"p50_us", p2p->p50}, {"p99_us", p2p->p99}};
      if (bc)
        j["broadcast"] = {{"nodes", nodes},           {"payload_bytes", p.payload}, {"msgs_per_s_per_node", bc->rate},
                          {"p50_us", bc->p50},        {"p99_us", bc->p99}};
      std::cout << j.dump() << "\n";
    } else {
      std::printf("mixcast-bench: %zu-byte payloads on loopback, median of %d reps (%.1f s measured each)\n", p.payload,
                  reps, p.seconds);
      std::printf("%-22s %6s %16s %14s %10s %10s\n", "test", "nodes", "msgs/s per node", "(slowest node)", "p50 us",
                  "p99 us");
      if (p2p)
        std::printf("%-22s %6u %16.0f %14.0f %10.0f %10.0f\n", "p2p (tcp)", 2u, p2p->rate, p2p->min_rate, p2p->p50,
                    p2p->p99);
      if (bc)
        std::printf("%-22s %6u %16.0f %14.0f %10.0f %10.0f\n", ("broadcast (" + mode_text + ")").c_str(), nodes,
                    bc->rate, bc->min_rate, bc->p50, bc->p99);
      if (p.rate > 0) std::printf("sender paced at %.0f msgs/s; ", p.rate);
      std::printf("latency: one-way send-to-delivery under that load (includes queueing)\n");
    }
    if (missing > 0 || duplicates > 0) {
      std::cerr << kProg << ": error: " << missing << " messages not delivered and " << duplicates
                << " delivered twice (the runtime must deliver each message exactly once)\n";
      return 1;
    }
    return 0;
  } catch (const std::exception& e) {
    std::cerr << kProg << ": error: " << e.what() << "\n";
    return 1;
  }
}
