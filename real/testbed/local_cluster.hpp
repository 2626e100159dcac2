// Runs mixcastd daemons as child processes on 127.0.0.1: picks free ports, writes their configs,
// starts them in process groups of their own, talks to their control sockets and reads their
// delivery logs. Shared by mixcast-testbed and the real-process tests (tests/real).
//
// Every child is killed (SIGKILL to its process group) and reaped when its LocalCluster is
// destroyed, and gets SIGKILL from the kernel if the process that started it dies first
// (PR_SET_PDEATHSIG), so no daemon outlives its owner.
#pragma once
#include <sys/types.h>

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "mixcast/core/types.hpp"
#include "mixcast/core/wire.hpp"
#include "mixcast/real/control.hpp"

namespace mixcast::testbed {

using Clock = std::chrono::steady_clock;

// A daemon, the control protocol or the local system misbehaved (not a user input error).
class ClusterError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// Payloads travel as hex over the control socket and in delivery logs (the daemon's own helpers).
using real::from_hex;
using real::to_hex;

// `count` distinct ports that were free on 127.0.0.1 a moment ago (held open together while
// picking, so they differ; another program could still take one before the daemon binds it).
std::vector<std::uint16_t> pick_free_ports(std::size_t count, bool udp);

// "exited with code 2", "killed by signal 9".
std::string describe_wait_status(int status);

// One child process in a process group of its own (pgid = pid).
class ChildProcess {
 public:
  // Starts argv[0] with stdout and stderr appended to `output_path`. `env` entries ("K=V") are
  // added to the inherited environment, replacing inherited values of the same keys. Throws ClusterError if fork or exec fails.
  ChildProcess(const std::vector<std::string>& argv, const std::string& output_path,
               const std::vector<std::string>& env = {});
  ~ChildProcess();  // SIGKILL to the group and reap, if still running
  ChildProcess(const ChildProcess&) = delete;
  ChildProcess& operator=(const ChildProcess&) = delete;

  pid_t pid() const { return pid_; }
  bool running();                      // reaps (non-blocking) if it exited
  std::optional<int> exit_status() const { return status_; }  // raw wait status, once reaped
  void signal_group(int sig);          // to the whole process group; no-op once reaped
  // Waits until it exits (reaping it) or `timeout` passes. True if it exited.
  bool wait_for(std::chrono::milliseconds timeout);
  // SIGTERM, then SIGKILL after `grace`; always reaps. Returns the wait status.
  int stop(std::chrono::milliseconds grace);

 private:
  pid_t pid_ = -1;
  std::optional<int> status_;
};

// One JSON-lines connection to a daemon's control socket. Blocking, with timeouts.
class ControlClient {
 public:
  // Throws ClusterError if the socket cannot be connected.
  explicit ControlClient(const std::string& socket_path);
  ~ControlClient();
  ControlClient(const ControlClient&) = delete;
  ControlClient& operator=(const ControlClient&) = delete;

  // Sends one request and returns the reply line as JSON. Throws ClusterError on timeout,
  // a closed connection or a reply that is not JSON.
  nlohmann::json request(const nlohmann::json& req, std::chrono::milliseconds timeout = std::chrono::seconds(5));

 private:
  int fd_ = -1;
  std::string path_;
  std::string buffer_;
};

// One line of a daemon's delivery log (docs/real-backend.md, "Delivery log").
struct DeliveryRow {
  MessageId id;
  std::uint32_t round = 0;
  Channel channel = Channel::local;
  std::int64_t time_us = 0;  // CLOCK_REALTIME
  wire::Bytes payload;
};

// Reads a delivery log as it grows; a line still being written is kept for the next call.
class DeliveryLogReader {
 public:
  explicit DeliveryLogReader(std::string path) : path_(std::move(path)) {}
  // Rows appended since the last call (none if the file does not exist yet). Throws
  // ClusterError naming the file and line if a complete line is malformed.
  std::vector<DeliveryRow> read_new();
  const std::string& path() const { return path_; }

 private:
  std::string path_;
  std::uint64_t offset_ = 0;
  std::uint64_t line_ = 0;
  std::string partial_;
};

// How the cluster's members are laid out: per node its subnet; per subnet whether multicast
// works in it and whether it is behind NAT.
struct ClusterLayout {
  std::vector<std::uint32_t> subnet_of;  // node id -> subnet index
  std::vector<bool> subnet_multicast;
  std::vector<bool> subnet_nat;
  static ClusterLayout even(std::uint32_t nodes, std::uint32_t subnets);  // contiguous blocks, multicast, no NAT
};

struct ClusterOptions {
  std::string daemon;  // path of mixcastd
  Mode mode = Mode::tcp;
  ClusterLayout layout;
  // Extra `protocol:` keys, written as given ("ack_timeout_ms", "200").
  std::vector<std::pair<std::string, std::string>> protocol;
  std::string log_level = "warn";
  std::vector<std::string> env;  // extra environment for the daemons ("K=V")
  std::string dir;               // work directory; empty: a new one in $TMPDIR (or /tmp), removed at the end
  // Per node (indexed by id), for daemons that run elsewhere than 127.0.0.1 (the netns testbed):
  // the address it listens and multicasts on, and the command that runs it there
  // ("ip netns exec NS"). Empty: 127.0.0.1, run directly.
  std::vector<std::string> addresses;
  std::vector<std::vector<std::string>> exec_prefix;
  // Polled by the waiting loops (wait_ready, send retries): true makes them give up at once
  // with a ClusterError, so a signal handler's flag can end a run promptly.
  std::function<bool()> cancelled;
};

class LocalCluster {
 public:
  // Picks ports and writes every node's config (nothing runs yet). Throws ClusterError.
  explicit LocalCluster(ClusterOptions options);
  ~LocalCluster();  // kills and reaps every daemon; removes a work directory it created
  LocalCluster(const LocalCluster&) = delete;
  LocalCluster& operator=(const LocalCluster&) = delete;

  std::uint32_t size() const { return static_cast<std::uint32_t>(nodes_.size()); }
  const std::string& dir() const { return dir_; }
  const std::string& config_path(NodeId n) const { return nodes_.at(n).config_path; }
  const std::string& delivery_log_path(NodeId n) const { return nodes_.at(n).delivery_log; }
  const std::string& log_path(NodeId n) const { return nodes_.at(n).log_path; }
  const std::string& control_socket(NodeId n) const { return nodes_.at(n).control_socket; }
  std::uint16_t tcp_port(NodeId n) const { return nodes_.at(n).port; }
  // The multicast group and port node n joins (mixed mode), if any.
  std::optional<std::pair<std::string, std::uint16_t>> multicast_of(NodeId n) const;

  void start();                              // spawns every daemon not started yet
  void start(const std::vector<NodeId>& nodes);  // spawns these
  // Waits until every started daemon (except those killed on purpose) answers `status` on its control socket. Throws ClusterError
  // naming the daemon (and the end of its log) if one exits or does not answer in time.
  void wait_ready(std::chrono::milliseconds timeout);
  // Starts the cluster so that every daemon listens before any other connects to it: first the
  // nodes not behind NAT, then (once those answer) the NATed ones, which open their gateway links
  // at start. A refused connection makes a node suspect the peer until it hears from it, so a
  // peer that merely started later would otherwise miss that node's broadcasts.
  void start_all(std::chrono::milliseconds timeout);

  bool alive(NodeId n);  // started, not killed, still running
  // A daemon that exited although nobody stopped it: "node 3 exited with code 1". Empty if none.
  std::optional<std::string> unexpected_exit();
  void kill9(NodeId n);  // kill -9 its process group (and reap it)
  // Starts node n's daemon again with the same config, ports and delivery log (which it appends
  // to), after kill9 or an exit; a daemon still running is killed first. It comes back with a
  // higher incarnation (its state file in dir()). Returns at once: wait_ready() waits for it.
  void restart(NodeId n);
  std::uint32_t restarts(NodeId n) const { return nodes_.at(n).restarts; }
  // Graceful stop of every live daemon (SIGTERM, SIGKILL after `grace`). Returns the nodes that
  // did not exit with status 0 on SIGTERM, described.
  std::vector<std::string> stop_all(std::chrono::milliseconds grace);

  nlohmann::json request(NodeId n, const nlohmann::json& req,
                         std::chrono::milliseconds timeout = std::chrono::seconds(5));
  nlohmann::json status(NodeId n) { return request(n, {{"cmd", "status"}}); }
  // Sends a broadcast from node n; retries while the daemon refuses because its send queues are
  // full, until `patience` passes. Throws ClusterError on any other refusal.
  MessageId send(NodeId n, const wire::Bytes& payload, std::chrono::milliseconds patience = std::chrono::seconds(10));

  std::vector<DeliveryRow> read_deliveries(NodeId n) { return nodes_.at(n).reader->read_new(); }
  std::string log_tail(NodeId n, std::size_t max_bytes = 2000) const;

 private:
  struct Member {
    NodeId id = 0;
    std::uint16_t port = 0;
    std::optional<std::uint32_t> nat_domain;
    std::optional<std::pair<std::string, std::uint16_t>> multicast;
    std::string config_path, control_socket, delivery_log, log_path;
    std::unique_ptr<ChildProcess> process;
    std::unique_ptr<ControlClient> control;
    std::unique_ptr<DeliveryLogReader> reader;
    bool killed = false;  // stopped on purpose (kill9 or stop_all)
    std::uint32_t restarts = 0;
  };
  std::string config_yaml(const Member& self) const;
  const std::string& address_of(NodeId n) const;

  ClusterOptions opt_;
  std::string dir_;
  bool own_dir_ = false;
  std::vector<Member> nodes_;
};

// PIDs of processes (other than this one) whose environment holds `entry` ("K=V"). Finds
// leftovers of a run whose children inherited a tag, wherever they were reparented.
std::vector<pid_t> processes_with_env(const std::string& entry);

}  // namespace mixcast::testbed
