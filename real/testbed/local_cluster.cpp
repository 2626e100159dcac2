#include "local_cluster.hpp"

#include <dirent.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>
#include <netinet/in.h>
#include <arpa/inet.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <random>
#include <sstream>
#include <thread>

extern char** environ;

namespace mixcast::testbed {
namespace {

std::string errno_text(int err) { return std::strerror(err); }

void sleep_ms(int ms) { std::this_thread::sleep_for(std::chrono::milliseconds(ms)); }

// Splits one CSV line of the delivery log (no quoting: every field is a number or hex).
std::vector<std::string> split_csv(const std::string& line) {
  std::vector<std::string> out;
  std::string cur;
  for (char c : line) {
    if (c == ',') {
      out.push_back(cur);
      cur.clear();
    } else {
      cur += c;
    }
  }
  out.push_back(cur);
  return out;
}

bool parse_u64(const std::string& s, std::uint64_t& out) {
  if (s.empty() || s.size() > 20 || s.find_first_not_of("0123456789") != std::string::npos) return false;
  errno = 0;
  char* end = nullptr;
  out = std::strtoull(s.c_str(), &end, 10);
  return errno == 0 && end == s.c_str() + s.size();
}

bool parse_i64(const std::string& s, std::int64_t& out) {
  if (s.empty()) return false;
  std::uint64_t v = 0;
  if (s[0] == '-') {
    if (!parse_u64(s.substr(1), v) || v > static_cast<std::uint64_t>(INT64_MAX)) return false;
    out = -static_cast<std::int64_t>(v);
    return true;
  }
  if (!parse_u64(s, v) || v > static_cast<std::uint64_t>(INT64_MAX)) return false;
  out = static_cast<std::int64_t>(v);
  return true;
}

std::string read_tail(const std::string& path, std::size_t max_bytes) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return "(no log at " + path + ")";
  in.seekg(0, std::ios::end);
  const auto size = static_cast<std::size_t>(in.tellg());
  const std::size_t from = size > max_bytes ? size - max_bytes : 0;
  in.seekg(static_cast<std::streamoff>(from));
  std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  return text.empty() ? "(empty log " + path + ")" : text;
}

}  // namespace

std::vector<std::uint16_t> pick_free_ports(std::size_t count, bool udp) {
  std::vector<int> fds;
  std::vector<std::uint16_t> ports;
  auto close_all = [&] {
    for (int fd : fds) ::close(fd);
  };
  for (std::size_t i = 0; i < count; ++i) {
    const int fd = ::socket(AF_INET, (udp ? SOCK_DGRAM : SOCK_STREAM) | SOCK_CLOEXEC, 0);
    if (fd < 0) {
      close_all();
      throw ClusterError("cannot open a socket to pick a free port: " + errno_text(errno));
    }
    fds.push_back(fd);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    a.sin_port = 0;
    socklen_t len = sizeof a;
    if (::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0 ||
        ::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len) != 0) {
      const int err = errno;
      close_all();
      throw ClusterError("cannot bind 127.0.0.1:0 to pick a free port: " + errno_text(err));
    }
    ports.push_back(ntohs(a.sin_port));
  }
  close_all();
  return ports;
}

std::string describe_wait_status(int status) {
  if (WIFEXITED(status)) return "exited with code " + std::to_string(WEXITSTATUS(status));
  if (WIFSIGNALED(status)) {
    const int sig = WTERMSIG(status);
    const char* name = ::strsignal(sig);
    return "killed by signal " + std::to_string(sig) + (name ? std::string(" (") + name + ")" : std::string());
  }
  return "stopped (wait status " + std::to_string(status) + ")";
}

// ---------------------------------------------------------------------------------------------
// ChildProcess

ChildProcess::ChildProcess(const std::vector<std::string>& argv, const std::string& output_path,
                           const std::vector<std::string>& env) {
  if (argv.empty()) throw ClusterError("no program to run");
  // Everything the child needs is prepared before fork: after it, only async-signal-safe calls.
  std::vector<char*> args;
  for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
  args.push_back(nullptr);
  std::vector<char*> envp;
  auto overridden = [&](const char* inherited) {  // `env` wins over an inherited K=...
    for (const auto& e : env) {
      const auto eq = e.find('=');
      if (eq != std::string::npos && std::strncmp(inherited, e.c_str(), eq + 1) == 0) return true;
    }
    return false;
  };
  for (char** e = environ; *e != nullptr; ++e)
    if (!overridden(*e)) envp.push_back(*e);
  for (const auto& e : env) envp.push_back(const_cast<char*>(e.c_str()));
  envp.push_back(nullptr);

  const int out = ::open(output_path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
  if (out < 0) throw ClusterError("cannot open '" + output_path + "' for a child's output: " + errno_text(errno));
  const int devnull = ::open("/dev/null", O_RDONLY | O_CLOEXEC);
  int report[2];  // exec failures come back through this pipe; exec closes it (O_CLOEXEC)
  if (devnull < 0 || ::pipe2(report, O_CLOEXEC) != 0) {
    const int err = errno;
    ::close(out);
    if (devnull >= 0) ::close(devnull);
    throw ClusterError("cannot prepare a child process: " + errno_text(err));
  }
  const pid_t parent = ::getpid();
  const pid_t pid = ::fork();
  if (pid < 0) {
    const int err = errno;
    ::close(out), ::close(devnull), ::close(report[0]), ::close(report[1]);
    throw ClusterError("fork failed: " + errno_text(err));
  }
  if (pid == 0) {
    ::setpgid(0, 0);  // own group: a terminal's Ctrl-C reaches the parent only, and kill(-pid) gets all of it
    ::prctl(PR_SET_PDEATHSIG, SIGKILL);  // the parent died: so do we
    if (::getppid() != parent) ::_exit(127);  // it died before prctl
    sigset_t none;
    sigemptyset(&none);
    ::sigprocmask(SIG_SETMASK, &none, nullptr);
    for (int sig : {SIGINT, SIGTERM, SIGHUP, SIGPIPE, SIGCHLD, SIGQUIT}) ::signal(sig, SIG_DFL);
    ::dup2(devnull, 0);
    ::dup2(out, 1);
    ::dup2(out, 2);
    ::execve(args[0], args.data(), envp.data());
    const int err = errno;
    ssize_t ignored = ::write(report[1], &err, sizeof err);
    (void)ignored;
    ::_exit(127);
  }
  ::setpgid(pid, pid);  // also from this side, so the group exists before we ever signal it
  ::close(out), ::close(devnull), ::close(report[1]);
  int err = 0;
  ssize_t n;
  do {
    n = ::read(report[0], &err, sizeof err);
  } while (n < 0 && errno == EINTR);
  ::close(report[0]);
  pid_ = pid;
  if (n == static_cast<ssize_t>(sizeof err)) {
    int st = 0;
    ::waitpid(pid, &st, 0);
    status_ = st;
    throw ClusterError("cannot run '" + argv[0] + "': " + errno_text(err));
  }
}

ChildProcess::~ChildProcess() {
  if (pid_ > 0 && !status_) {
    ::kill(-pid_, SIGKILL);
    int st = 0;
    while (::waitpid(pid_, &st, 0) < 0 && errno == EINTR) {
    }
  }
}

bool ChildProcess::running() {
  if (status_) return false;
  int st = 0;
  const pid_t r = ::waitpid(pid_, &st, WNOHANG);
  if (r == pid_) {
    status_ = st;
    return false;
  }
  if (r < 0 && errno == ECHILD) {  // reaped elsewhere (should not happen): treat as gone
    status_ = 0;
    return false;
  }
  return true;
}

void ChildProcess::signal_group(int sig) {
  if (!status_) ::kill(-pid_, sig);
}

bool ChildProcess::wait_for(std::chrono::milliseconds timeout) {
  const auto deadline = Clock::now() + timeout;
  while (running()) {
    if (Clock::now() >= deadline) return false;
    sleep_ms(2);
  }
  return true;
}

int ChildProcess::stop(std::chrono::milliseconds grace) {
  signal_group(SIGTERM);
  if (!wait_for(grace)) {
    signal_group(SIGKILL);
    wait_for(std::chrono::hours(1));
  }
  return *status_;
}

// ---------------------------------------------------------------------------------------------
// ControlClient

ControlClient::ControlClient(const std::string& socket_path) : path_(socket_path) {
  sockaddr_un a{};
  a.sun_family = AF_UNIX;
  if (socket_path.size() >= sizeof a.sun_path)
    throw ClusterError("control socket path too long for a Unix socket: " + socket_path);
  std::memcpy(a.sun_path, socket_path.c_str(), socket_path.size() + 1);
  fd_ = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd_ < 0) throw ClusterError("socket(AF_UNIX): " + errno_text(errno));
  if (::connect(fd_, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) {
    const int err = errno;
    ::close(fd_);
    fd_ = -1;
    throw ClusterError("cannot connect to control socket " + socket_path + ": " + errno_text(err));
  }
}

ControlClient::~ControlClient() {
  if (fd_ >= 0) ::close(fd_);
}

nlohmann::json ControlClient::request(const nlohmann::json& req, std::chrono::milliseconds timeout) {
  const std::string line = req.dump() + "\n";
  const auto deadline = Clock::now() + timeout;
  auto wait = [&](short events) {
    for (;;) {
      const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now()).count();
      if (left <= 0) throw ClusterError("control socket " + path_ + ": no reply within " +
                                        std::to_string(timeout.count()) + " ms to " + req.dump());
      pollfd p{fd_, events, 0};
      const int r = ::poll(&p, 1, static_cast<int>(std::min<long long>(left, 100)));
      if (r > 0) return;
      if (r < 0 && errno != EINTR) throw ClusterError("poll: " + errno_text(errno));
    }
  };
  std::size_t sent = 0;
  while (sent < line.size()) {
    wait(POLLOUT);
    const ssize_t n = ::send(fd_, line.data() + sent, line.size() - sent, MSG_NOSIGNAL);
    if (n < 0) {
      if (errno == EINTR || errno == EAGAIN) continue;
      throw ClusterError("control socket " + path_ + ": send failed: " + errno_text(errno));
    }
    sent += static_cast<std::size_t>(n);
  }
  for (;;) {
    const auto nl = buffer_.find('\n');
    if (nl != std::string::npos) {
      std::string reply = buffer_.substr(0, nl);
      buffer_.erase(0, nl + 1);
      try {
        return nlohmann::json::parse(reply);
      } catch (const nlohmann::json::exception&) {
        throw ClusterError("control socket " + path_ + ": reply is not JSON: " + reply.substr(0, 200));
      }
    }
    wait(POLLIN);
    char buf[65536];
    const ssize_t n = ::recv(fd_, buf, sizeof buf, 0);
    if (n == 0) throw ClusterError("control socket " + path_ + ": the daemon closed the connection");
    if (n < 0) {
      if (errno == EINTR || errno == EAGAIN) continue;
      throw ClusterError("control socket " + path_ + ": recv failed: " + errno_text(errno));
    }
    buffer_.append(buf, static_cast<std::size_t>(n));
  }
}

// ---------------------------------------------------------------------------------------------
// DeliveryLogReader

std::vector<DeliveryRow> DeliveryLogReader::read_new() {
  std::vector<DeliveryRow> rows;
  std::FILE* f = std::fopen(path_.c_str(), "rb");
  if (f == nullptr) return rows;
  std::string data;
  if (::fseeko(f, static_cast<off_t>(offset_), SEEK_SET) == 0) {
    char buf[1 << 16];
    std::size_t n;
    while ((n = std::fread(buf, 1, sizeof buf, f)) > 0) data.append(buf, n);
  }
  std::fclose(f);
  offset_ += data.size();
  partial_ += data;
  std::size_t start = 0;
  for (std::size_t nl; (nl = partial_.find('\n', start)) != std::string::npos; start = nl + 1) {
    const std::string line = partial_.substr(start, nl - start);
    ++line_;
    auto bad = [&](const std::string& why) {
      return ClusterError("delivery log " + path_ + " line " + std::to_string(line_) + ": " + why + ": '" +
                          line.substr(0, 160) + "'");
    };
    if (line_ == 1) {
      if (line != real::kDeliveryCsvHeader) throw bad(std::string("expected the header ") + real::kDeliveryCsvHeader);
      continue;
    }
    const auto f7 = split_csv(line);
    if (f7.size() != 7) throw bad("expected 7 fields");
    DeliveryRow r;
    std::uint64_t origin = 0, round = 0;
    if (!parse_u64(f7[0], origin) || origin > UINT32_MAX) throw bad("bad origin");
    if (!parse_u64(f7[1], r.id.incarnation) || r.id.incarnation == 0) throw bad("bad incarnation");
    if (!parse_u64(f7[2], r.id.seq)) throw bad("bad seq");
    if (!parse_u64(f7[3], round) || round > UINT32_MAX) throw bad("bad round");
    r.id.origin = static_cast<NodeId>(origin);
    r.round = static_cast<std::uint32_t>(round);
    if (f7[4] == "local") r.channel = Channel::local;
    else if (f7[4] == "tcp") r.channel = Channel::tcp;
    else if (f7[4] == "multicast") r.channel = Channel::multicast;
    else throw bad("bad channel");
    if (!parse_i64(f7[5], r.time_us)) throw bad("bad time_us");
    auto payload = from_hex(f7[6]);
    if (!payload) throw bad("bad payload_hex");
    r.payload = std::move(*payload);
    rows.push_back(std::move(r));
  }
  partial_.erase(0, start);
  return rows;
}

// ---------------------------------------------------------------------------------------------
// LocalCluster

ClusterLayout ClusterLayout::even(std::uint32_t nodes, std::uint32_t subnets) {
  ClusterLayout l;
  for (std::uint32_t i = 0; i < nodes; ++i) l.subnet_of.push_back(static_cast<std::uint32_t>(std::uint64_t{i} * subnets / nodes));
  l.subnet_multicast.assign(subnets, true);
  l.subnet_nat.assign(subnets, false);
  return l;
}

LocalCluster::LocalCluster(ClusterOptions options) : opt_(std::move(options)) {
  const auto& layout = opt_.layout;
  const std::size_t n = layout.subnet_of.size();
  if (n == 0) throw ClusterError("a cluster needs at least one node");
  for (auto s : layout.subnet_of)
    if (s >= layout.subnet_multicast.size() || s >= layout.subnet_nat.size())
      throw ClusterError("node placed in subnet " + std::to_string(s) + ", which the layout does not describe");

  if (opt_.dir.empty()) {
    // $TMPDIR if it is short, else /tmp: control sockets must fit sun_path (108 bytes).
    const char* tmp = std::getenv("TMPDIR");
    std::string base = tmp != nullptr && tmp[0] == '/' && std::strlen(tmp) <= 60 ? tmp : "/tmp";
    std::string tmpl = base + "/mixcast-XXXXXX";
    if (::mkdtemp(tmpl.data()) == nullptr) throw ClusterError("mkdtemp " + tmpl + ": " + errno_text(errno));
    dir_ = tmpl;
    own_dir_ = true;
  } else {
    dir_ = opt_.dir;
    std::error_code ec;
    std::filesystem::create_directories(dir_, ec);
    if (ec) throw ClusterError("cannot create work directory " + dir_ + ": " + ec.message());
  }

  const auto ports = pick_free_ports(n, false);
  // Mixed mode: one multicast group per subnet (its island); a node of a subnet without
  // multicast gets a group of its own, so its multicasts reach nobody. A random last octet
  // keeps concurrent clusters on this host apart.
  std::vector<std::optional<std::uint32_t>> group_of(n);
  std::uint32_t groups = 0;
  if (opt_.mode == Mode::mixed) {
    std::vector<std::optional<std::uint32_t>> subnet_group(layout.subnet_multicast.size());
    for (std::size_t i = 0; i < n; ++i) {
      const auto s = layout.subnet_of[i];
      if (!layout.subnet_multicast[s]) {
        group_of[i] = groups++;
      } else {
        if (!subnet_group[s]) subnet_group[s] = groups++;
        group_of[i] = subnet_group[s];
      }
    }
    if (groups > 16 * 256) throw ClusterError("too many multicast groups for the loopback testbed (at most 4096)");
  }
  const auto udp_ports = pick_free_ports(groups, true);
  std::random_device rd;
  const unsigned last_octet = 1 + rd() % 254;

  nodes_.resize(n);
  for (std::size_t i = 0; i < n; ++i) {
    Member& m = nodes_[i];
    m.id = static_cast<NodeId>(i);
    m.port = ports[i];
    if (layout.subnet_nat[layout.subnet_of[i]]) m.nat_domain = layout.subnet_of[i];
    if (group_of[i]) {
      const std::uint32_t g = *group_of[i];
      m.multicast = std::make_pair("239." + std::to_string(255 - g / 256) + "." + std::to_string(g % 256) + "." +
                                       std::to_string(last_octet),
                                   udp_ports[g]);
    }
    const std::string base = dir_ + "/n" + std::to_string(i);
    m.config_path = base + ".yaml";
    m.control_socket = base + ".sock";
    m.delivery_log = base + ".deliveries.csv";
    m.log_path = base + ".log";
    m.reader = std::make_unique<DeliveryLogReader>(m.delivery_log);
  }
  for (const Member& m : nodes_) {
    std::ofstream out(m.config_path);
    out << config_yaml(m);
    if (!out.flush()) throw ClusterError("cannot write " + m.config_path);
  }
}

LocalCluster::~LocalCluster() {
  for (Member& m : nodes_) {
    m.control.reset();
    m.process.reset();  // SIGKILL to the group, reap
  }
  if (own_dir_) {
    std::error_code ec;
    std::filesystem::remove_all(dir_, ec);
  }
}

const std::string& LocalCluster::address_of(NodeId n) const {
  static const std::string loopback = "127.0.0.1";
  return n < opt_.addresses.size() ? opt_.addresses[n] : loopback;
}

std::string LocalCluster::config_yaml(const Member& self) const {
  std::ostringstream y;
  y << "node_id: " << self.id << "\n"
    << "listen: {address: " << address_of(self.id) << ", port: " << self.port << "}\n";
  if (self.nat_domain) y << "nat_domain: " << *self.nat_domain << "\n";
  y << "control_socket: " << self.control_socket << "\n"
    << "log_level: " << opt_.log_level << "\n"
    << "delivery_log: " << self.delivery_log << "\n"
    << "state_dir: " << dir_ << "\n";  // node-<id>.incarnation: a restarted daemon gets a higher one
  if (self.multicast)
    y << "multicast: {group: " << self.multicast->first << ", port: " << self.multicast->second
      << ", interface: " << address_of(self.id) << ", ttl: 1}\n";
  y << "peers:\n";
  for (const Member& p : nodes_) {
    if (p.id == self.id) continue;
    y << "  - {id: " << p.id << ", address: " << address_of(p.id) << ", port: " << p.port;
    if (p.nat_domain) y << ", nat_domain: " << *p.nat_domain;
    y << "}\n";
  }
  y << "protocol:\n  mode: " << (opt_.mode == Mode::mixed ? "mixed" : "tcp") << "\n";
  for (const auto& [key, value] : opt_.protocol) y << "  " << key << ": " << value << "\n";
  return y.str();
}

std::optional<std::pair<std::string, std::uint16_t>> LocalCluster::multicast_of(NodeId n) const {
  return nodes_.at(n).multicast;
}

void LocalCluster::start() {
  std::vector<NodeId> all;
  for (const Member& m : nodes_) all.push_back(m.id);
  start(all);
}

void LocalCluster::start(const std::vector<NodeId>& which) {
  for (NodeId n : which) {
    Member& m = nodes_.at(n);
    if (m.process) continue;
    std::vector<std::string> argv = n < opt_.exec_prefix.size() ? opt_.exec_prefix[n] : std::vector<std::string>{};
    argv.insert(argv.end(), {opt_.daemon, "--config", m.config_path});
    m.process = std::make_unique<ChildProcess>(argv, m.log_path, opt_.env);
  }
}

void LocalCluster::start_all(std::chrono::milliseconds timeout) {
  const auto deadline = Clock::now() + timeout;
  auto left = [&] {
    return std::chrono::duration_cast<std::chrono::milliseconds>(std::max(Clock::duration::zero(), deadline - Clock::now()));
  };
  std::vector<NodeId> open, natted;
  for (const Member& m : nodes_) (m.nat_domain ? natted : open).push_back(m.id);
  start(open);
  wait_ready(left());
  start(natted);
  wait_ready(left());
}

void LocalCluster::wait_ready(std::chrono::milliseconds timeout) {
  const auto deadline = Clock::now() + timeout;
  for (Member& m : nodes_) {
    if (!m.process || m.killed) continue;  // killed on purpose: nothing to wait for
    for (;;) {
      if (!m.process->running())
        throw ClusterError("mixcastd of node " + std::to_string(m.id) + " " +
                           describe_wait_status(*m.process->exit_status()) + " during start-up; its log:\n" +
                           log_tail(m.id));
      try {
        if (!m.control) m.control = std::make_unique<ControlClient>(m.control_socket);
        const auto reply = m.control->request({{"cmd", "status"}}, std::chrono::seconds(2));
        if (reply.contains("node")) break;
        throw ClusterError("node " + std::to_string(m.id) + ": unexpected status reply " + reply.dump());
      } catch (const ClusterError&) {
        m.control.reset();
        if (opt_.cancelled && opt_.cancelled()) throw ClusterError("cancelled while waiting for the daemons");
        if (Clock::now() >= deadline)
          throw ClusterError("mixcastd of node " + std::to_string(m.id) + " did not answer on " + m.control_socket +
                             " within " + std::to_string(timeout.count()) + " ms; its log:\n" + log_tail(m.id));
        sleep_ms(10);
      }
    }
  }
}

bool LocalCluster::alive(NodeId n) {
  Member& m = nodes_.at(n);
  return m.process && !m.killed && m.process->running();
}

std::optional<std::string> LocalCluster::unexpected_exit() {
  for (Member& m : nodes_) {
    if (m.process && !m.killed && !m.process->running())
      return "mixcastd of node " + std::to_string(m.id) + " " + describe_wait_status(*m.process->exit_status());
  }
  return std::nullopt;
}

void LocalCluster::kill9(NodeId n) {
  Member& m = nodes_.at(n);
  m.killed = true;
  m.control.reset();
  if (!m.process) return;
  m.process->signal_group(SIGKILL);
  m.process->wait_for(std::chrono::seconds(10));
}

void LocalCluster::restart(NodeId n) {
  Member& m = nodes_.at(n);
  if (!m.process) throw ClusterError("node " + std::to_string(n) + " was never started, so it cannot be restarted");
  m.control.reset();
  if (m.process->running()) {
    m.process->signal_group(SIGKILL);
    m.process->wait_for(std::chrono::seconds(10));
  }
  m.process.reset();
  m.killed = false;
  ++m.restarts;
  start({n});
}

std::vector<std::string> LocalCluster::stop_all(std::chrono::milliseconds grace) {
  std::vector<Member*> stopping;
  for (Member& m : nodes_) {
    m.control.reset();
    if (m.process && !m.killed && m.process->running()) {
      m.process->signal_group(SIGTERM);  // all at once: they stop in parallel
      stopping.push_back(&m);
    }
    m.killed = true;
  }
  std::vector<std::string> problems;
  const auto deadline = Clock::now() + grace;
  for (Member* m : stopping) {
    const auto left = std::max(Clock::duration::zero(), deadline - Clock::now());
    if (!m->process->wait_for(std::chrono::duration_cast<std::chrono::milliseconds>(left))) {
      m->process->signal_group(SIGKILL);
      m->process->wait_for(std::chrono::seconds(10));
      problems.push_back("node " + std::to_string(m->id) + " did not stop within " + std::to_string(grace.count()) +
                         " ms of SIGTERM (killed)");
      continue;
    }
    const int st = *m->process->exit_status();
    if (!WIFEXITED(st) || WEXITSTATUS(st) != 0)
      problems.push_back("node " + std::to_string(m->id) + " " + describe_wait_status(st) + " on SIGTERM");
  }
  return problems;
}

nlohmann::json LocalCluster::request(NodeId n, const nlohmann::json& req, std::chrono::milliseconds timeout) {
  Member& m = nodes_.at(n);
  try {
    if (!m.control) m.control = std::make_unique<ControlClient>(m.control_socket);
    return m.control->request(req, timeout);
  } catch (...) {
    m.control.reset();  // the stream may hold half a reply: start over next time
    throw;
  }
}

MessageId LocalCluster::send(NodeId n, const wire::Bytes& payload, std::chrono::milliseconds patience) {
  const nlohmann::json req = {{"cmd", "send"}, {"payload_hex", to_hex(payload)}};
  const auto deadline = Clock::now() + patience;
  for (;;) {
    const auto reply = request(n, req);
    if (reply.value("ok", false)) {
      if (!reply.contains("incarnation") || !reply.at("incarnation").is_number_unsigned())
        throw ClusterError("node " + std::to_string(n) + ": send reply without an incarnation: " + reply.dump());
      return MessageId{reply.at("origin").get<NodeId>(), reply.at("seq").get<std::uint64_t>(),
                       reply.at("incarnation").get<std::uint64_t>()};
    }
    const std::string error = reply.value("error", std::string("(no error given)"));
    // Backpressure is the daemon's normal answer under load: wait for its queues to drain.
    if (error.find("full") == std::string::npos)
      throw ClusterError("node " + std::to_string(n) + " refused a send: " + error);
    if (opt_.cancelled && opt_.cancelled()) throw ClusterError("cancelled while node " + std::to_string(n) + " refused sends");
    if (Clock::now() >= deadline)
      throw ClusterError("node " + std::to_string(n) + " refused sends for " + std::to_string(patience.count()) +
                         " ms: " + error);
    sleep_ms(1);
  }
}

std::string LocalCluster::log_tail(NodeId n, std::size_t max_bytes) const {
  return read_tail(nodes_.at(n).log_path, max_bytes);
}

std::vector<pid_t> processes_with_env(const std::string& entry) {
  std::vector<pid_t> out;
  DIR* d = ::opendir("/proc");
  if (d == nullptr) return out;
  const pid_t self = ::getpid();
  while (dirent* e = ::readdir(d)) {
    std::uint64_t pid = 0;
    if (!parse_u64(e->d_name, pid) || static_cast<pid_t>(pid) == self) continue;
    std::ifstream in(std::string("/proc/") + e->d_name + "/environ", std::ios::binary);
    if (!in) continue;
    std::string env((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    std::size_t start = 0;
    while (start < env.size()) {
      std::size_t end = env.find('\0', start);
      if (end == std::string::npos) end = env.size();
      if (env.compare(start, end - start, entry) == 0) {
        out.push_back(static_cast<pid_t>(pid));
        break;
      }
      start = end + 1;
    }
  }
  ::closedir(d);
  return out;
}

}  // namespace mixcast::testbed
