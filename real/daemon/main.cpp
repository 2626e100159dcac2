// mixcastd: one mixcast node as a daemon. Config in YAML (docs/real-backend.md); control over a
// Unix socket (the `mixcast` CLI); stops cleanly on SIGTERM/SIGINT.
#include <boost/asio.hpp>
#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>

#include <CLI/CLI.hpp>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iostream>

#include "mixcast/real/config.hpp"
#include "mixcast/real/control.hpp"
#include "mixcast/real/incarnation.hpp"
#include "mixcast/real/runtime.hpp"

namespace asio = boost::asio;
using namespace mixcast;
using namespace mixcast::real;

namespace {
// A delivery log from before incarnations has 6 columns under another header: appending 7-column
// rows to it would make it unreadable, so it is moved to FILE.old first.
void retire_old_delivery_log(const std::string& path) {
  std::ifstream in(path);
  std::string header;
  if (!in || !std::getline(in, header) || header == kDeliveryCsvHeader) return;
  in.close();
  std::error_code ec;
  std::filesystem::rename(path, path + ".old", ec);
  if (ec) throw std::system_error(ec, "delivery_log " + path + " has an older format and cannot be moved to " + path + ".old");
  spdlog::warn("delivery_log {}: older format (header '{}'); moved it to {}.old", path, header, path);
}
}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"mixcastd: a mixcast node (broadcast to every member: multicast inside subnets, logarithmic TCP across)"};
  std::string config_path;
  bool check = false;
  std::string log_level;
  app.add_option("-c,--config", config_path, "YAML config file (see docs/real-backend.md)")->required();
  app.add_flag("--check", check, "validate the config and exit");
  app.add_option("--log-level", log_level, "override log_level: trace, debug, info, warn, error, off");
  app.set_version_flag("--version", std::string(MIXCAST_VERSION));
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e) == 0 ? 0 : 2;
  }

  DaemonConfig cfg;
  try {
    cfg = load_daemon_config(config_path);
    if (!log_level.empty()) cfg.log_level = log_level;
    if (spdlog::level::from_str(cfg.log_level) == spdlog::level::off && cfg.log_level != "off")
      throw ConfigError("--log-level", "must be one of trace, debug, info, warn, error, off");
  } catch (const ConfigError& e) {
    std::cerr << "mixcastd: config " << config_path << ": " << e.what() << "\n";
    return 2;
  }
  if (check) {
    std::cout << "mixcastd: config " << config_path << " is valid (node " << cfg.node.self << ", "
              << cfg.peers.size() + 1 << " members, mode " << to_string(cfg.node.mode) << ")\n";
    return 0;
  }

  auto logger = spdlog::stderr_color_mt("mixcastd");
  spdlog::set_default_logger(logger);
  spdlog::set_level(spdlog::level::from_str(cfg.log_level));
  spdlog::set_pattern("%Y-%m-%dT%H:%M:%S.%e %^%l%$ node " + std::to_string(cfg.node.self) + ": %v");

  // The incarnation is chosen and persisted before anything is sent (docs/real-backend.md).
  if (cfg.state_dir.empty()) cfg.state_dir = default_state_dir();
  try {
    const auto choice = next_incarnation(cfg.state_dir, cfg.node.self);
    cfg.node.incarnation = choice.incarnation;
    if (choice.source == IncarnationChoice::Source::state_file) spdlog::info("{}", choice.describe());
    else spdlog::warn("{}", choice.describe());
  } catch (const StateFileError& e) {
    spdlog::error("{}", e.what());
    std::cerr << "mixcastd: " << e.what() << "\n";
    return 2;  // restarting cannot fix it (the unit's RestartPreventExitStatus=2)
  }

  asio::io_context io(1);
  try {
    FILE* log = nullptr;
    if (!cfg.delivery_log.empty()) {
      retire_old_delivery_log(cfg.delivery_log);
      log = std::fopen(cfg.delivery_log.c_str(), "a");
      if (!log) throw std::system_error(errno, std::generic_category(), "delivery_log " + cfg.delivery_log);
      if (std::ftell(log) == 0) std::fprintf(log, "%s\n", kDeliveryCsvHeader);
      std::fflush(log);
    }
    Runtime runtime(io, cfg);
    std::unique_ptr<ControlServer> control;
    asio::signal_set signals(io, SIGINT, SIGTERM);
    auto shutdown = [&] {
      spdlog::info("stopping");
      signals.cancel();
      if (control) control->close();
      runtime.stop();
      io.stop();
    };
    control = std::make_unique<ControlServer>(io, cfg.control_socket, runtime, shutdown);
    runtime.on_delivery([&](const DeliveryEvent& d) {
      if (log) {
        std::fprintf(log, "%s\n", delivery_csv(d).c_str());
        std::fflush(log);  // a daemon killed with SIGKILL loses nothing it delivered
      }
      control->publish(d);
    });
    signals.async_wait([&](boost::system::error_code ec, int sig) {
      if (ec) return;
      spdlog::info("signal {}", sig);
      shutdown();
    });
    runtime.start();
    spdlog::info("listening on {}:{}, {} members, mode {}, incarnation {}, control socket {}", cfg.listen.address,
                 runtime.tcp_port(), cfg.peers.size() + 1, to_string(cfg.node.mode), cfg.node.incarnation,
                 cfg.control_socket);
    io.run();
    if (log) std::fclose(log);
  } catch (const std::system_error& e) {
    spdlog::error("{}", e.what());
    std::cerr << "mixcastd: " << e.what() << "\n";
    return 1;
  }
  return 0;
}
