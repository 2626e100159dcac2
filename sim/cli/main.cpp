// mixcast-sim: runs scenarios on a simulation engine and writes summary.json + CSV tables.
//   mixcast-sim run SCENARIO ...     one run, outputs in a directory
//   mixcast-sim sweep SCENARIO ...   a grid of runs (node counts x modes x seeds) -> sweep.csv
//   mixcast-sim check SCENARIO ...   validate a scenario and explain it
// Exit codes: 0 ok, 2 bad input (scenario, flags, output directory), 1 internal error.
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <exception>
#include <functional>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <map>
#include <mutex>
#include <optional>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>

#include "mixcast/sim/explore.hpp"
#include "mixcast/sim/invariants.hpp"
#include "mixcast/sim/metrics.hpp"
#include "mixcast/sim/model_engine.hpp"
#ifdef MIXCAST_HAVE_NS3
#include "mixcast/sim/ns3_engine.hpp"
#endif
#include "mixcast/sim/result.hpp"
#include "mixcast/sim/scenario.hpp"

#ifndef MIXCAST_VERSION
#define MIXCAST_VERSION "0.1.0"
#endif

namespace {

using mixcast::sim::OutputError;
using mixcast::sim::RunResult;
using mixcast::sim::Scenario;
using mixcast::sim::ScenarioError;
using Clock = std::chrono::steady_clock;

constexpr const char* kProg = "mixcast-sim";

// A bad flag value or combination; reported like a ScenarioError (exit 2).
class UsageError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

std::vector<std::string> split(const std::string& text, char sep) {
  std::vector<std::string> parts;
  std::string cur;
  for (char c : text) {
    if (c == sep) {
      parts.push_back(cur);
      cur.clear();
    } else {
      cur += c;
    }
  }
  parts.push_back(cur);
  return parts;
}

std::uint64_t parse_uint(const std::string& flag, const std::string& text, std::uint64_t min, std::uint64_t max) {
  bool ok = !text.empty() && text.size() <= 20 &&
            std::all_of(text.begin(), text.end(), [](char c) { return c >= '0' && c <= '9'; });
  std::uint64_t v = 0;
  if (ok) {
    try {
      v = std::stoull(text);
    } catch (const std::exception&) {
      ok = false;
    }
  }
  if (!ok || v < min || v > max) {
    throw UsageError(flag + " must be an integer in [" + std::to_string(min) + ", " + std::to_string(max) +
                     "], got '" + text + "'");
  }
  return v;
}

std::string check_mode(const std::string& flag, const std::string& mode) {
  if (mode != "tcp" && mode != "mixed") {
    throw UsageError(flag + " must be 'tcp' or 'mixed', got '" + mode + "'");
  }
  return mode;
}

#ifdef MIXCAST_HAVE_NS3
constexpr const char* kDefaultEngine = "ns3";
constexpr const char* kEngines = "ns3, model";
#else
constexpr const char* kDefaultEngine = "model";
constexpr const char* kEngines = "model";
#endif

void check_engine(const std::string& engine) {
  if (engine == "model") return;
#ifdef MIXCAST_HAVE_NS3
  if (engine == "ns3") return;
#else
  if (engine == "ns3")
    throw UsageError("engine ns3 is not built into this mixcast-sim (ns-3 3.37 was not found at build time; "
                     "scripts/install-deps.sh installs it)");
#endif
  throw UsageError("unknown engine '" + engine + "' (available: " + kEngines + ")");
}

void check_sets(const std::vector<std::string>& sets) {
  for (const std::string& s : sets) {
    const auto eq = s.find('=');
    if (eq == std::string::npos || eq == 0) throw UsageError("--set expects KEY=VALUE, got '" + s + "'");
  }
}

// Loads the scenario with --set overrides (and the given extra overrides after them, so
// dedicated flags such as --mode win), rescales to `nodes` if given and validates.
Scenario load(const std::string& path, const std::vector<std::string>& sets, const std::vector<std::string>& extra,
              std::optional<std::uint32_t> nodes) {
  std::error_code ec;
  if (!std::filesystem::is_regular_file(path, ec)) {
    throw UsageError("scenario file '" + path + "' does not exist or is not a file");
  }
  check_sets(sets);
  std::vector<std::string> overrides = sets;
  overrides.insert(overrides.end(), extra.begin(), extra.end());
  Scenario s = mixcast::sim::load_scenario(path, overrides);
  if (nodes) {
    mixcast::sim::rescale(s, *nodes);
    mixcast::sim::validate(s);
  }
  return s;
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

std::string scenario_name(const Scenario& s, const std::string& path) {
  return safe_name(s.name.empty() ? std::filesystem::path(path).stem().string() : s.name);
}

double seconds_since(Clock::time_point t0) {
  return std::chrono::duration<double>(Clock::now() - t0).count();
}

bool stderr_is_tty() { return ::isatty(STDERR_FILENO) == 1; }

// The live "\r[model] ..." line on stderr: only on a terminal, and only once a run has lasted
// more than a second (short runs print nothing).
class ProgressLine {
 public:
  // On a terminal: one line rewritten in place. Elsewhere (a log, CI): a plain line every 10 s of
  // wall time, so a long run still shows it is alive.
  ProgressLine(std::string engine, double time_limit_s, bool enabled, bool tty)
      : engine_(std::move(engine)), time_limit_s_(time_limit_s), enabled_(enabled), tty_(tty) {}

  void update(double simulated_s, double done, std::uint64_t events) {
    if (!enabled_) return;
    const auto now = Clock::now();
    if (now - start_ < std::chrono::seconds(1)) return;
    if (printed_ && now - last_ < (tty_ ? std::chrono::milliseconds(200) : std::chrono::milliseconds(10000))) return;
    // Events per second over the last update interval: how fast the engine runs right now.
    const double rate = static_cast<double>(events - last_events_) / std::max(1e-9, seconds_since(last_));
    last_ = now;
    last_events_ = events;
    printed_ = true;
    std::fprintf(stderr, "%s[%s] sim %.3f of %.0f s  %5.1f%% delivered  %.2fM events/s  elapsed %.1f s%s",
                 tty_ ? "\r" : "", engine_.c_str(), simulated_s, time_limit_s_, std::clamp(done, 0.0, 1.0) * 100.0,
                 rate / 1e6, seconds_since(start_), tty_ ? "   " : "\n");
    std::fflush(stderr);
  }

  void finish() {
    if (printed_ && tty_) {
      std::fputc('\n', stderr);
      std::fflush(stderr);
    }
    printed_ = false;
  }

 private:
  std::string engine_;
  double time_limit_s_;
  bool enabled_;
  bool tty_;
  bool printed_ = false;
  Clock::time_point start_ = Clock::now();
  Clock::time_point last_ = start_;
  std::uint64_t last_events_ = 0;
};

// Runs `work` in a forked child and returns the string it produced. ns-3 keeps global state (random
// streams, ids) that a second simulation in the same process would inherit, so every ns-3 run of a
// sweep gets a fresh process; its result comes back through a pipe.
std::string in_child_process(const std::function<std::string()>& work) {
  int fds[2];
  if (::pipe(fds) != 0) throw std::runtime_error("pipe failed");
  std::fflush(nullptr);
  const pid_t pid = ::fork();
  if (pid < 0) throw std::runtime_error("fork failed");
  if (pid == 0) {
    ::close(fds[0]);
    std::string out;
    int code = 0;
    try {
      out = work();
    } catch (const std::exception& e) {
      out = e.what();
      code = 1;
    }
    for (std::size_t done = 0; done < out.size();) {
      const ssize_t n = ::write(fds[1], out.data() + done, out.size() - done);
      if (n <= 0) break;
      done += static_cast<std::size_t>(n);
    }
    ::_exit(code);
  }
  ::close(fds[1]);
  std::string out;
  char buf[4096];
  for (ssize_t n; (n = ::read(fds[0], buf, sizeof buf)) > 0 || (n < 0 && errno == EINTR);)
    if (n > 0) out.append(buf, static_cast<std::size_t>(n));
  ::close(fds[0]);
  int status = 0;
  while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  if (!WIFEXITED(status)) throw std::runtime_error("the ns-3 run's process died (signal " + std::to_string(WTERMSIG(status)) + ")");
  if (WEXITSTATUS(status) != 0) throw std::runtime_error(out);
  return out;
}

RunResult run_engine(const std::string& engine, const Scenario& s, const mixcast::sim::RunOptions& options) {
  check_engine(engine);
#ifdef MIXCAST_HAVE_NS3
  if (engine == "ns3") return mixcast::sim::run_ns3(s, options);
#endif
  return mixcast::sim::run_model(s, options);
}

// ---------------------------------------------------------------------------------------------
// run

struct RunArgs {
  std::string scenario;
  std::string engine = kDefaultEngine;
  std::string mode;
  std::string nodes;
  std::string seed;
  std::vector<std::string> sets;
  std::string out;
  bool quiet = false;
  bool json = false;
  std::string trace;
};

int cmd_run(const RunArgs& a) {
  if (!a.trace.empty() && a.engine != "model")
    throw UsageError("--trace: only the model engine writes traces so far (add --engine model)");
  check_engine(a.engine);
  std::vector<std::string> extra;
  if (!a.mode.empty()) extra.push_back("protocol.mode=" + check_mode("--mode", a.mode));
  if (!a.seed.empty()) {
    extra.push_back("seed=" + std::to_string(parse_uint("--seed", a.seed, 0, UINT64_MAX)));
  }
  std::optional<std::uint32_t> nodes;
  if (!a.nodes.empty()) nodes = static_cast<std::uint32_t>(parse_uint("--nodes", a.nodes, 1, UINT32_MAX));

  const Scenario s = load(a.scenario, a.sets, extra, nodes);

  std::string out = a.out;
  if (out.empty()) {
    out = "results/" + scenario_name(s, a.scenario) + "-" + a.engine + "-" +
          std::string(mixcast::to_string(s.protocol.mode)) + "-n" + std::to_string(s.total_nodes()) + "-s" +
          std::to_string(s.seed);
  }
  mixcast::sim::ensure_writable_dir(out);  // fail before the run, not after it
  std::ofstream trace;
  if (!a.trace.empty()) {
    trace.open(a.trace, std::ios::trunc);
    if (!trace) throw UsageError("--trace " + a.trace + ": cannot write there: " + std::strerror(errno));
  }

  ProgressLine progress(a.engine, s.time_limit_s, !a.quiet, stderr_is_tty());
  mixcast::sim::RunOptions options;
  options.progress = [&progress](double sim_s, double done, std::uint64_t events) {
    progress.update(sim_s, done, events);
  };
  if (trace.is_open()) options.trace = &trace;
  RunResult result;
  try {
    result = run_engine(a.engine, s, options);
  } catch (...) {
    progress.finish();
    throw;
  }
  progress.finish();

  const nlohmann::json summary = mixcast::sim::summarize(result);
  mixcast::sim::write_outputs(result, summary, out);

  if (a.json) {
    std::cout << summary.dump(2) << "\n";
  } else {
    if (!a.quiet) std::cout << mixcast::sim::human_summary(summary);
    std::cout << "results: " << out << "\n";
  }
  std::cout.flush();
  return 0;
}

// ---------------------------------------------------------------------------------------------
// sweep

struct SweepArgs {
  std::string scenario;
  std::string engine = kDefaultEngine;
  std::string nodes;
  std::string modes;
  std::string seeds = "1";
  std::string jobs = "1";
  std::vector<std::string> sets;
  std::string out;
  bool quiet = false;
};

constexpr const char* kSweepHeader =
    "scenario,engine,mode,nodes,seed,broadcasts,expected,delivered,delivery_ratio,duplicates,rounds_max,"
    "rounds_p50,rounds_p99,lower_bound,ttld_p50_s,ttld_p99_s,ttld_max_s,tcp_messages,multicast_messages,"
    "tcp_bytes,multicast_bytes,islands,repairs,forced_tcp,wall_s\n";

std::string csv_field(const std::string& text) {
  if (text.find_first_of(",\"\n\r") == std::string::npos) return text;
  std::string out = "\"";
  for (char c : text) {
    if (c == '"') out += '"';
    out += c;
  }
  return out + "\"";
}

std::string sweep_row(const nlohmann::json& s) {
  auto v = [](const nlohmann::json& x) { return x.dump(); };  // integers; the ratio in its shortest exact form
  auto fixed = [](const nlohmann::json& x, int decimals) {
    char buf[64];
    std::snprintf(buf, sizeof buf, "%.*f", decimals, x.get<double>());
    return std::string(buf);
  };
  const nlohmann::json& r = s.at("rounds");
  const nlohmann::json& t = s.at("time_to_last_delivery_s");
  std::string row = csv_field(s.at("scenario").get<std::string>());
  for (const std::string& f :
       {csv_field(s.at("engine").get<std::string>()), s.at("mode").get<std::string>(), v(s.at("nodes")),
        v(s.at("seed")), v(s.at("broadcasts")), v(s.at("expected")), v(s.at("delivered")), v(s.at("delivery_ratio")),
        v(s.at("duplicates")), v(r.at("max")), v(r.at("p50")), v(r.at("p99")), v(r.at("lower_bound")),
        fixed(t.at("p50"), 9), fixed(t.at("p99"), 9), fixed(t.at("max"), 9), v(s.at("messages").at("tcp")), v(s.at("messages").at("multicast")),
        v(s.at("bytes").at("tcp")), v(s.at("bytes").at("multicast")), v(s.at("islands")), v(s.at("repairs").at("messages")),
        v(s.at("forced_tcp").at("messages")), fixed(s.at("wall_s"), 3)}) {
    row += ',';
    row += f;
  }
  return row + "\n";
}

int cmd_sweep(const SweepArgs& a) {
  check_engine(a.engine);
  std::vector<std::uint32_t> node_counts;
  for (const std::string& n : split(a.nodes, ',')) {
    node_counts.push_back(static_cast<std::uint32_t>(parse_uint("--nodes", n, 1, UINT32_MAX)));
  }
  const std::uint64_t seeds = parse_uint("--seeds", a.seeds, 1, 1000000);
  const std::uint64_t jobs_wanted = parse_uint("--jobs", a.jobs, 1, 1024);
  if (a.engine == "ns3" && jobs_wanted > 1)
    throw UsageError("--jobs " + a.jobs + ": ns-3 keeps global state, so the ns3 engine runs one simulation per "
                     "process; use --jobs 1, or run several mixcast-sim processes side by side");
  check_sets(a.sets);

  // The base scenario gives the default mode and the first seed.
  const Scenario base = load(a.scenario, a.sets, {}, std::nullopt);
  std::vector<std::string> modes;
  if (a.modes.empty()) {
    modes.emplace_back(mixcast::to_string(base.protocol.mode));
  } else {
    for (const std::string& m : split(a.modes, ',')) modes.push_back(check_mode("--modes", m));
  }

  // Load every grid point first, so a bad combination fails before any time is spent.
  std::vector<Scenario> grid;
  for (std::uint32_t n : node_counts) {
    for (const std::string& m : modes) {
      for (std::uint64_t i = 0; i < seeds; ++i) {
        const std::vector<std::string> extra = {"protocol.mode=" + m, "seed=" + std::to_string(base.seed + i)};
        grid.push_back(load(a.scenario, a.sets, extra, n));
      }
    }
  }

  mixcast::sim::ensure_writable_dir(a.out);
  const std::filesystem::path csv_path = std::filesystem::path(a.out) / "sweep.csv";
  std::FILE* csv = std::fopen(csv_path.string().c_str(), "wb");
  if (csv == nullptr) throw OutputError("cannot write '" + csv_path.string() + "'");
  std::fputs(kSweepHeader, csv);
  std::fflush(csv);

  const std::size_t total = grid.size();
  const bool show = stderr_is_tty() && !a.quiet;
  std::mutex mu;
  std::vector<std::optional<std::string>> rows(total);
  std::size_t written = 0, done = 0;
  std::atomic<std::size_t> next{0};
  std::atomic<bool> stop{false};
  std::exception_ptr error;
  bool write_failed = false;

  if (show) {
    std::fprintf(stderr, "\r[sweep] 0/%zu runs", total);
    std::fflush(stderr);
  }

  auto worker = [&]() {
    while (!stop.load()) {
      const std::size_t i = next.fetch_add(1);
      if (i >= total) return;
      try {
        auto one_row = [&] { return sweep_row(mixcast::sim::summarize(run_engine(a.engine, grid[i], {}))); };
        std::string row = a.engine == "ns3" ? in_child_process(one_row) : one_row();
        std::lock_guard<std::mutex> lock(mu);
        rows[i] = std::move(row);
        ++done;
        // Rows go out in grid order: write every finished row that has no unfinished one before it.
        while (written < total && rows[written]) {
          if (std::fputs(rows[written]->c_str(), csv) < 0) write_failed = true;
          rows[written].reset();
          ++written;
        }
        if (std::fflush(csv) != 0) write_failed = true;
        if (show) {
          std::fprintf(stderr, "\r[sweep] %zu/%zu runs", done, total);
          std::fflush(stderr);
        }
      } catch (...) {
        std::lock_guard<std::mutex> lock(mu);
        if (!error) error = std::current_exception();
        stop.store(true);
      }
    }
  };

  const std::size_t jobs = std::min<std::size_t>(static_cast<std::size_t>(jobs_wanted), total);
  if (jobs <= 1) {
    worker();
  } else {
    std::vector<std::thread> threads;
    for (std::size_t j = 0; j < jobs; ++j) threads.emplace_back(worker);
    for (std::thread& t : threads) t.join();
  }
  if (show) std::fputc('\n', stderr);
  const bool closed = std::fclose(csv) == 0;
  if (error) std::rethrow_exception(error);
  if (write_failed || !closed) throw OutputError("cannot write '" + csv_path.string() + "': write failed");

  std::cout << "sweep: " << total << " runs (" << node_counts.size() << " node counts x " << modes.size()
            << " modes x " << seeds << " seeds)\n";
  std::cout << "results: " << a.out << "\n";
  std::cout.flush();
  return 0;
}

// ---------------------------------------------------------------------------------------------
// explore

struct ExploreArgs {
  std::string runs = "100";
  std::string seed = "1";
  std::string engine = "model";
  std::string jobs = "1";
  std::string out = "results/explore";
  std::string max_nodes = "500";
  bool quiet = false;
  bool no_shrink = false;
};

// One case on one engine: its violations and a digest of its CSV tables, as JSON (ns-3 cases run
// in a child process and send this back through a pipe).
nlohmann::json check_case(const std::string& engine, const Scenario& s) {
  const RunResult r = run_engine(engine, s, {});
  nlohmann::json j;
  j["violations"] = nlohmann::json::array();
  for (const auto& v : mixcast::sim::check_invariants(r)) j["violations"].push_back({{"invariant", v.invariant}, {"detail", v.detail}});
  for (const auto& [name, text] : mixcast::sim::csv_tables(r)) j["tables"][name] = std::hash<std::string>{}(text);
  j["nodes"] = s.total_nodes();
  j["events"] = r.events;
  j["simulated_s"] = r.simulated_s;
  return j;
}

nlohmann::json run_case(const std::string& engine, const Scenario& s) {
  if (engine == "ns3") return nlohmann::json::parse(in_child_process([&] { return check_case(engine, s).dump(); }));
  return check_case(engine, s);
}

int cmd_explore(const ExploreArgs& a) {
  check_engine(a.engine);
  const std::uint64_t runs = parse_uint("--runs", a.runs, 1, 100000000);
  const std::uint64_t seed = parse_uint("--seed", a.seed, 0, UINT64_MAX);
  const std::uint64_t jobs_wanted = parse_uint("--jobs", a.jobs, 1, 1024);
  mixcast::sim::ExploreLimits limits;
  limits.max_nodes = static_cast<std::uint32_t>(parse_uint("--max-nodes", a.max_nodes, 1, 100000));
  limits.restarts = a.engine != "ns3";  // the ns-3 engine does not restart nodes yet
  mixcast::sim::ensure_writable_dir(a.out);
  const std::filesystem::path out(a.out);
  std::filesystem::create_directories(out / "failures");

  const bool show = stderr_is_tty() && !a.quiet;
  const auto t0 = Clock::now();
  std::mutex mu;
  std::atomic<std::uint64_t> next{0};
  std::uint64_t done = 0, checked_determinism = 0;
  std::map<std::string, std::uint64_t> by_invariant;
  nlohmann::json failures = nlohmann::json::array();
  std::exception_ptr error;

  auto record_failure = [&](std::uint64_t i, const Scenario& s, const nlohmann::json& violations) {
    const std::string invariant = violations.front().at("invariant").get<std::string>();
    const std::string detail = violations.front().at("detail").get<std::string>();
    // Shrink to a small case that still breaks the same invariant; both files replay with `run`.
    Scenario small = s;
    if (!a.no_shrink && invariant != "determinism") {
      small = mixcast::sim::shrink(s, [&](const Scenario& c) {
        try {
          for (const auto& v : run_case(a.engine, c).at("violations"))
            if (v.at("invariant") == invariant) return true;
        } catch (const std::exception&) {
        }
        return false;
      });
      small.name = s.name + "-shrunk";
    }
    const std::string base = "case-" + std::to_string(i);
    const auto write = [&](const std::string& file, const Scenario& sc) {
      std::FILE* f = std::fopen((out / "failures" / file).string().c_str(), "wb");
      if (!f) throw OutputError("cannot write '" + (out / "failures" / file).string() + "'");
      const std::string text = "# mixcast-sim explore --seed " + std::to_string(seed) + " --engine " + a.engine +
                               ": case " + std::to_string(i) + " broke '" + invariant + "': " + detail + "\n" +
                               mixcast::sim::to_yaml(sc);
      std::fwrite(text.data(), 1, text.size(), f);
      std::fclose(f);
    };
    write(base + ".yaml", s);
    write(base + "-shrunk.yaml", small);
    std::lock_guard<std::mutex> lock(mu);
    for (const auto& v : violations) ++by_invariant[v.at("invariant").get<std::string>()];
    failures.push_back({{"case", i},
                        {"invariant", invariant},
                        {"detail", detail},
                        {"violations", violations},
                        {"nodes", s.total_nodes()},
                        {"shrunk_nodes", small.total_nodes()},
                        {"scenario", (out / "failures" / (base + ".yaml")).string()},
                        {"shrunk", (out / "failures" / (base + "-shrunk.yaml")).string()}});
    if (show) std::fputc('\n', stderr);
    std::cout << "FAIL case " << i << " [" << invariant << "] " << detail << " -> " << (out / "failures" / (base + "-shrunk.yaml")).string()
              << " (" << small.total_nodes() << " nodes)\n";
    std::cout.flush();
  };

  auto worker = [&] {
    for (;;) {
      const std::uint64_t i = next.fetch_add(1);
      if (i >= runs) return;
      try {
        const Scenario s = mixcast::sim::random_case(seed, i, limits);
        nlohmann::json result = run_case(a.engine, s);
        nlohmann::json violations = result.at("violations");
        // Every fifth case runs twice: the same scenario and seed must give the same tables.
        if (i % 5 == 0) {
          const nlohmann::json again = run_case(a.engine, s);
          if (again.at("tables") != result.at("tables"))
            violations.push_back({{"invariant", "determinism"}, {"detail", "the CSV tables of two runs of the same case differ"}});
          std::lock_guard<std::mutex> lock(mu);
          ++checked_determinism;
        }
        if (!violations.empty()) record_failure(i, s, violations);
        std::lock_guard<std::mutex> lock(mu);
        ++done;
        if (show) {
          std::fprintf(stderr, "\r[explore %s] %llu/%llu cases, %zu failed, %.0f s", a.engine.c_str(),
                       static_cast<unsigned long long>(done), static_cast<unsigned long long>(runs), failures.size(),
                       seconds_since(t0));
          std::fflush(stderr);
        }
      } catch (...) {
        std::lock_guard<std::mutex> lock(mu);
        if (!error) error = std::current_exception();
        next.store(runs);
        return;
      }
    }
  };
  const std::size_t jobs = std::min<std::size_t>(static_cast<std::size_t>(jobs_wanted), static_cast<std::size_t>(runs));
  if (jobs <= 1) {
    worker();
  } else {
    std::vector<std::thread> threads;
    for (std::size_t j = 0; j < jobs; ++j) threads.emplace_back(worker);
    for (std::thread& t : threads) t.join();
  }
  if (show) std::fputc('\n', stderr);
  if (error) std::rethrow_exception(error);

  std::sort(failures.begin(), failures.end(), [](const nlohmann::json& x, const nlohmann::json& y) { return x["case"] < y["case"]; });
  nlohmann::json report = {{"engine", a.engine}, {"seed", seed}, {"runs", runs}, {"failed", failures.size()},
                           {"passed", runs - failures.size()}, {"determinism_checked", checked_determinism},
                           {"violations", by_invariant}, {"wall_s", seconds_since(t0)}, {"failures", failures}};
  const std::filesystem::path report_path = out / "report.json";
  std::FILE* f = std::fopen(report_path.string().c_str(), "wb");
  if (!f) throw OutputError("cannot write '" + report_path.string() + "'");
  const std::string text = report.dump(2) + "\n";
  const bool ok = std::fwrite(text.data(), 1, text.size(), f) == text.size();
  if (std::fclose(f) != 0 || !ok) throw OutputError("cannot write '" + report_path.string() + "'");
  std::cout << "explore: " << runs << " cases on the " << a.engine << " engine (seed " << seed << "), "
            << failures.size() << " failed, " << checked_determinism << " checked for determinism, "
            << static_cast<long long>(seconds_since(t0)) << " s\n"
            << "results: " << a.out << "\n";
  std::cout.flush();
  return failures.empty() ? 0 : 1;
}

// ---------------------------------------------------------------------------------------------
// check

struct CheckArgs {
  std::string scenario;
  std::string mode;
  std::string nodes;
  std::vector<std::string> sets;
};

int cmd_check(const CheckArgs& a) {
  std::vector<std::string> extra;
  if (!a.mode.empty()) extra.push_back("protocol.mode=" + check_mode("--mode", a.mode));
  std::optional<std::uint32_t> nodes;
  if (!a.nodes.empty()) nodes = static_cast<std::uint32_t>(parse_uint("--nodes", a.nodes, 1, UINT32_MAX));
  const Scenario s = load(a.scenario, a.sets, extra, nodes);
  mixcast::sim::validate(s);
  std::string text = mixcast::sim::explain(s);
  if (!text.empty() && text.back() != '\n') text += '\n';
  std::cout << text << "scenario OK: " << a.scenario << "\n";
  return 0;
}

int fail(const std::string& message, int code) {
  std::cout.flush();
  std::cerr << kProg << ": " << (code == 2 ? "error: " : "internal error: ") << message << "\n";
  return code;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"mixcast-sim: runs mixcast broadcast scenarios on a simulation engine and writes\n"
               "summary.json plus CSV tables (see README.md and scenarios/README.md).",
               kProg};
  app.set_version_flag("--version", std::string(kProg) + " " + MIXCAST_VERSION);
  app.require_subcommand(1);
  app.footer(
      "Examples:\n"
      "  mixcast-sim run scenarios/multi-subnet.yaml --mode mixed --nodes 64\n"
      "  mixcast-sim sweep scenarios/lan.yaml --nodes 8,16,32 --modes tcp,mixed --seeds 3 --jobs 2 --out results/sweep\n"
      "  mixcast-sim check scenarios/lan.yaml\n"
      "Exit codes: 0 ok, 2 bad input (scenario, flags, output directory), 1 internal error.");

  const std::string set_help =
      "Override a scenario key before validation, e.g. --set protocol.ack_timeout_s=0.2 or "
      "--set datacenters.0.subnets.1.nodes=12 (repeatable)";

  // run
  RunArgs ra;
  CLI::App* run = app.add_subcommand("run", "Run one scenario and write summary.json, deliveries.csv, broadcasts.csv");
  run->add_option("scenario", ra.scenario, "Scenario YAML file")->type_name("SCENARIO")->required();
  run->add_option("--engine", ra.engine, std::string("Simulation engine: ") + kEngines)
      ->type_name("ENGINE")
      ->capture_default_str();
  run->add_option("--mode", ra.mode, "Protocol mode: tcp or mixed (default: the scenario's protocol.mode)")
      ->type_name("MODE");
  run->add_option("--nodes", ra.nodes, "Rescale the topology to N nodes, keeping each subnet's share")->type_name("N");
  run->add_option("--seed", ra.seed, "Random seed (default: the scenario's seed)")->type_name("SEED");
  run->add_option("--set", ra.sets, set_help)->allow_extra_args(false)->type_name("KEY=VALUE");
  run->add_option("--out", ra.out,
                  "Output directory (default: results/<scenario>-<engine>-<mode>-n<nodes>-s<seed>)")
      ->type_name("DIR");
  run->add_flag("--quiet,-q", ra.quiet, "No progress line and no human summary (still prints 'results: DIR')");
  run->add_flag("--json", ra.json, "Print summary.json to stdout instead of the human summary");
  run->add_option("--trace", ra.trace,
                  "Write every frame sent and received (decoded), link event, crash and restart to FILE, "
                  "one line each (model engine)")
      ->type_name("FILE");
  run->footer(
      "Outputs in DIR: summary.json (delivery ratio, rounds vs lower bound, time to last delivery,\n"
      "messages and bytes by channel, warm-up figures apart), deliveries.csv\n"
      "(broadcast,node,round,time_s,channel) and broadcasts.csv (broadcast,origin,seq,start_s,warmup).\n"
      "Example:\n"
      "  mixcast-sim run scenarios/lan.yaml --mode mixed --nodes 100 --seed 7 --out results/lan-mixed");

  // sweep
  SweepArgs sa;
  CLI::App* sweep = app.add_subcommand("sweep", "Run a grid of node counts x modes x seeds and write DIR/sweep.csv");
  sweep->add_option("scenario", sa.scenario, "Scenario YAML file")->type_name("SCENARIO")->required();
  sweep->add_option("--nodes", sa.nodes, "Comma-separated node counts, e.g. 8,16,32")->type_name("N,N,...")->required();
  sweep->add_option("--modes", sa.modes, "Comma-separated modes: tcp,mixed (default: the scenario's mode)")->type_name("MODE,...");
  sweep->add_option("--seeds", sa.seeds, "Seeds per point: the scenario's seed, seed+1, ..., seed+K-1")
      ->type_name("K")
      ->capture_default_str();
  sweep->add_option("--jobs,-j", sa.jobs, "Runs in parallel (independent runs on separate threads)")
      ->type_name("J")
      ->capture_default_str();
  sweep->add_option("--engine", sa.engine,
                    std::string("Simulation engine: ") + kEngines + " (ns3 runs one simulation at a time)")
      ->type_name("ENGINE")
      ->capture_default_str();
  sweep->add_option("--set", sa.sets, set_help)->allow_extra_args(false)->type_name("KEY=VALUE");
  sweep->add_option("--out", sa.out, "Output directory for sweep.csv")->type_name("DIR")->required();
  sweep->add_flag("--quiet,-q", sa.quiet, "No progress line");
  sweep->footer(
      "sweep.csv has one row per run, in grid order (node counts, then modes, then seeds), whatever\n"
      "order the runs finish in.\n"
      "Example:\n"
      "  mixcast-sim sweep scenarios/lan.yaml --nodes 8,16,32,64 --modes tcp,mixed --seeds 3 -j 2 --out results/sweep");

  // check
  CheckArgs ca;
  CLI::App* check = app.add_subcommand("check", "Validate a scenario and explain it (topology, parameters, bounds)");
  check->add_option("scenario", ca.scenario, "Scenario YAML file")->type_name("SCENARIO")->required();
  check->add_option("--mode", ca.mode, "Protocol mode: tcp or mixed (default: the scenario's protocol.mode)")
      ->type_name("MODE");
  check->add_option("--nodes", ca.nodes, "Rescale the topology to N nodes first")->type_name("N");
  check->add_option("--set", ca.sets, set_help)->allow_extra_args(false)->type_name("KEY=VALUE");
  check->footer("Example:\n  mixcast-sim check scenarios/multi-subnet.yaml --nodes 1000 --set protocol.mode=mixed");

  // explore
  ExploreArgs ea;
  CLI::App* explore = app.add_subcommand(
      "explore", "Run random scenarios and check every invariant after each run (exit 1 if one failed)");
  explore->add_option("--runs", ea.runs, "Number of random cases")->type_name("N")->capture_default_str();
  explore->add_option("--seed", ea.seed, "Seed of the exploration: the same seed gives the same cases")
      ->type_name("S")
      ->capture_default_str();
  explore->add_option("--engine", ea.engine, std::string("Simulation engine: ") + kEngines)
      ->type_name("ENGINE")
      ->capture_default_str();
  explore->add_option("--jobs,-j", ea.jobs, "Cases in parallel")->type_name("J")->capture_default_str();
  explore->add_option("--out", ea.out, "Output directory: report.json and failures/*.yaml")
      ->type_name("DIR")
      ->capture_default_str();
  explore->add_option("--max-nodes", ea.max_nodes, "Largest case")->type_name("N")->capture_default_str();
  explore->add_flag("--no-shrink", ea.no_shrink, "Write failing cases as they are, without shrinking them");
  explore->add_flag("--quiet,-q", ea.quiet, "No progress line");
  explore->footer(
      "Invariants (docs/invariants.md): delivery (every node up through a broadcast delivers it once),\n"
      "integrity (nothing invented or corrupted), determinism (every fifth case runs twice and must give\n"
      "the same CSV tables), termination (no run waits for its time limit), rounds (TCP mode without loss\n"
      "or faults: ceil(log2 n), plus at most one per NAT subnet).\n"
      "A failing case is written to DIR/failures/case-N.yaml and shrunk to case-N-shrunk.yaml; both\n"
      "replay with 'mixcast-sim run'. One line per failure on stdout; report.json sums up.\n"
      "Exit codes: 0 every case held every invariant, 1 a case failed, 2 bad input.\n"
      "Example:\n  mixcast-sim explore --runs 1000 --seed 42 --jobs 2 --out results/explore");

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    if (e.get_exit_code() == static_cast<int>(CLI::ExitCodes::Success)) return app.exit(e);
    return fail(std::string(e.what()) + " (see '" + kProg + " --help')", 2);
  }

  try {
    if (run->parsed()) return cmd_run(ra);
    if (sweep->parsed()) return cmd_sweep(sa);
    if (check->parsed()) return cmd_check(ca);
    if (explore->parsed()) return cmd_explore(ea);
    return fail("no subcommand given", 2);
  } catch (const ScenarioError& e) {
    return fail(e.what(), 2);
  } catch (const UsageError& e) {
    return fail(e.what(), 2);
  } catch (const OutputError& e) {
    return fail(e.what(), 2);
  } catch (const std::exception& e) {
    return fail(e.what(), 1);
  } catch (...) {
    return fail("unknown exception", 1);
  }
}
