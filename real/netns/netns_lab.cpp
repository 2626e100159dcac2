#include "netns_lab.hpp"

#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <map>
#include <queue>
#include <sstream>

extern char** environ;

namespace mixcast::real {
namespace {

std::string join(const std::vector<std::string>& argv) {
  std::string s;
  for (const auto& a : argv) s += (s.empty() ? "" : " ") + a;
  return s;
}

// Runs argv; returns exit status, stdout and stderr.
int spawn(const std::vector<std::string>& argv, std::string& out, std::string& err) {
  int out_pipe[2], err_pipe[2];
  if (pipe(out_pipe) != 0 || pipe(err_pipe) != 0) throw NetnsError("pipe: " + std::string(strerror(errno)));
  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  posix_spawn_file_actions_adddup2(&fa, out_pipe[1], 1);
  posix_spawn_file_actions_adddup2(&fa, err_pipe[1], 2);
  posix_spawn_file_actions_addclose(&fa, out_pipe[0]);
  posix_spawn_file_actions_addclose(&fa, err_pipe[0]);
  std::vector<char*> args;
  for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
  args.push_back(nullptr);
  pid_t pid;
  const int rc = posix_spawnp(&pid, args[0], &fa, nullptr, args.data(), environ);
  posix_spawn_file_actions_destroy(&fa);
  close(out_pipe[1]);
  close(err_pipe[1]);
  auto drain = [](int fd, std::string& into) {
    std::array<char, 4096> buf;
    ssize_t n;
    while ((n = read(fd, buf.data(), buf.size())) > 0) into.append(buf.data(), static_cast<std::size_t>(n));
    close(fd);
  };
  drain(out_pipe[0], out);
  drain(err_pipe[0], err);
  if (rc != 0) {
    err = std::string("cannot start ") + argv[0] + ": " + strerror(rc);
    return 127;
  }
  int status = 0;
  while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

std::string subnet_prefix(std::uint32_t s) { return "10." + std::to_string(s + 1) + "."; }
std::string node_address(std::uint32_t s, std::uint32_t k) {
  const std::uint32_t host = k + 2;  // .0.1 is the gateway
  return subnet_prefix(s) + std::to_string(host >> 8) + "." + std::to_string(host & 255);
}
std::string gateway(std::uint32_t s) { return subnet_prefix(s) + "0.1"; }
std::string prob(double p) {
  std::ostringstream o;
  o.precision(6);
  o << std::fixed << p;
  return o.str();
}

}  // namespace

std::string run_command(const std::vector<std::string>& argv) {
  std::string out, err;
  const int rc = spawn(argv, out, err);
  if (rc != 0) {
    while (!err.empty() && (err.back() == '\n' || err.back() == ' ')) err.pop_back();
    throw NetnsError("`" + join(argv) + "` failed (exit " + std::to_string(rc) + "): " + err);
  }
  return out;
}

bool NetnsLab::have_root() { return geteuid() == 0; }

const std::string& NetnsLab::ip_binary() {
  static const std::string path = [] {
    for (const char* p : {"/usr/sbin/ip", "/sbin/ip", "/usr/bin/ip", "/bin/ip"})
      if (::access(p, X_OK) == 0) return std::string(p);
    return std::string("ip");  // let the PATH search report it missing
  }();
  return path;
}

std::vector<std::string> NetnsLab::existing_namespaces() {
  std::vector<std::string> out;
  std::error_code ec;
  for (const auto& e : std::filesystem::directory_iterator("/run/netns", ec)) {
    const auto name = e.path().filename().string();
    if (name.rfind(kPrefix, 0) == 0) out.push_back(name);
  }
  std::sort(out.begin(), out.end());
  return out;
}

namespace {
void kill_and_delete(const std::string& ns) noexcept {
  try {
    std::string out, err;
    spawn({"ip", "netns", "pids", ns}, out, err);
    std::istringstream pids(out);
    for (pid_t pid; pids >> pid;) ::kill(pid, SIGKILL);
    spawn({"ip", "netns", "del", ns}, out, err);
  } catch (...) {
  }
}
}  // namespace

void NetnsLab::remove_namespace(const std::string& ns) noexcept { kill_and_delete(ns); }

void NetnsLab::remove_all_namespaces() noexcept {
  for (const auto& ns : existing_namespaces()) kill_and_delete(ns);
}

NetnsLab::NetnsLab(const sim::Scenario& scenario, std::string tag) : tag_(std::move(tag)) {
  if (!have_root())
    throw NetnsError("the netns testbed needs root: it creates network namespaces, bridges and iptables rules "
                     "(run it as root, or use --net loopback)");
  try {
    build(scenario);
  } catch (...) {
    teardown();
    throw;
  }
}

NetnsLab::~NetnsLab() { teardown(); }

void NetnsLab::teardown() noexcept {
  // Nodes first (their processes), routers last; a deleted namespace takes its veths, bridges and
  // iptables rules with it.
  for (auto it = namespaces_.rbegin(); it != namespaces_.rend(); ++it) kill_and_delete(*it);
  namespaces_.clear();
  for (const auto& [path, value] : saved_sysctls_) {
    std::FILE* f = std::fopen(path.c_str(), "w");
    if (f) {
      std::fputs(value.c_str(), f);
      std::fclose(f);
    }
  }
  saved_sysctls_.clear();
}

void NetnsLab::raise_neighbour_limits(std::uint64_t entries) {
  const std::string dir = "/proc/sys/net/ipv4/neigh/default/";
  // gc_thresh2: soft limit, gc_thresh3: hard limit. Entries age out, so twice the need is plenty.
  for (const auto& [name, want] : {std::pair<const char*, std::uint64_t>{"gc_thresh2", entries},
                                   std::pair<const char*, std::uint64_t>{"gc_thresh3", 2 * entries}}) {
    const std::string path = dir + name;
    std::FILE* f = std::fopen(path.c_str(), "r");
    if (!f) continue;  // no such knob here: nothing to raise
    unsigned long long current = 0;
    const bool read_ok = std::fscanf(f, "%llu", &current) == 1;
    std::fclose(f);
    if (!read_ok || current >= want) continue;
    f = std::fopen(path.c_str(), "w");
    if (!f) throw NetnsError("cannot raise " + path + " to " + std::to_string(want) + ": " + strerror(errno));
    std::fprintf(f, "%llu", static_cast<unsigned long long>(want));
    std::fclose(f);
    saved_sysctls_.emplace_back(path, std::to_string(current));
  }
}

void NetnsLab::add_namespace(const std::string& ns) {
  run_command({"ip", "netns", "add", ns});
  namespaces_.push_back(ns);
  run_command({"ip", "-n", ns, "link", "set", "lo", "up"});
}

void NetnsLab::fail_multicast(std::uint32_t global_subnet) {
  for (const auto& n : nodes_)
    if (n.subnet == global_subnet)
      run_command({"ip", "netns", "exec", n.ns, "iptables", "-A", "OUTPUT", "-d", "224.0.0.0/4", "-j", "DROP"});
}

void NetnsLab::restore_multicast(std::uint32_t global_subnet) {
  for (const auto& n : nodes_)
    if (n.subnet == global_subnet)
      run_command({"ip", "netns", "exec", n.ns, "iptables", "-D", "OUTPUT", "-d", "224.0.0.0/4", "-j", "DROP"});
}

void NetnsLab::build(const sim::Scenario& s) {
  const auto placement = sim::place_nodes(s);
  if (s.total_subnets() > 250) throw NetnsError("the netns testbed supports at most 250 subnets");
  for (std::uint32_t g = 0; g < s.total_subnets(); ++g)
    if (sim::subnet_at(s, g).nodes > 65000)
      throw NetnsError("subnet " + sim::subnet_at(s, g).name + ": the netns testbed supports at most 65,000 nodes per subnet");
  // Each host may learn the address of every other host of its subnet and of its gateway; routers
  // learn their subnets' hosts.
  std::uint64_t neighbours = 0;
  for (std::uint32_t g = 0; g < s.total_subnets(); ++g) {
    const std::uint64_t n = sim::subnet_at(s, g).nodes + 1;
    neighbours += n * n;
  }
  raise_neighbour_limits(neighbours + 64 * s.datacenters.size());
  auto ipt = [](const std::string& ns, std::vector<std::string> rule) {
    std::vector<std::string> argv{"ip", "netns", "exec", ns, "iptables"};
    argv.insert(argv.end(), rule.begin(), rule.end());
    run_command(argv);
  };
  auto forward_on = [](const std::string& ns) {
    run_command({"ip", "netns", "exec", ns, "sysctl", "-q", "-w", "net.ipv4.ip_forward=1"});
  };

  // Routers, one per datacenter.
  std::vector<std::string> router(s.datacenters.size());
  for (std::size_t d = 0; d < s.datacenters.size(); ++d) {
    router[d] = ns_name("r" + std::to_string(d));
    add_namespace(router[d]);
    forward_on(router[d]);
  }

  // Subnets: a bridge in the datacenter router, or behind a NAT namespace.
  std::vector<std::string> subnet_ns;  // where each subnet's bridge lives
  std::vector<std::uint32_t> subnet_dc;
  std::uint32_t g = 0;
  for (std::size_t d = 0; d < s.datacenters.size(); ++d) {
    for (const auto& sub : s.datacenters[d].subnets) {
      std::string home = router[d];
      if (sub.nat) {
        home = ns_name("nat" + std::to_string(g));
        add_namespace(home);
        forward_on(home);
        // Uplink: NAT public address 100.64.g.1 <-> router 100.64.g.2.
        run_command({"ip", "-n", home, "link", "add", "uplink", "type", "veth", "peer", "name", "n" + std::to_string(g), "netns", router[d]});
        run_command({"ip", "-n", home, "addr", "add", "100.64." + std::to_string(g) + ".1/30", "dev", "uplink"});
        run_command({"ip", "-n", home, "link", "set", "uplink", "up"});
        run_command({"ip", "-n", router[d], "addr", "add", "100.64." + std::to_string(g) + ".2/30", "dev", "n" + std::to_string(g)});
        run_command({"ip", "-n", router[d], "link", "set", "n" + std::to_string(g), "up"});
        run_command({"ip", "-n", home, "route", "add", "default", "via", "100.64." + std::to_string(g) + ".2"});
        ipt(home, {"-t", "nat", "-A", "POSTROUTING", "-o", "uplink", "-j", "MASQUERADE"});
        // Only replies come in: anything else addressed inside is dropped.
        ipt(home, {"-A", "FORWARD", "-i", "uplink", "-m", "conntrack", "--ctstate", "ESTABLISHED,RELATED", "-j", "ACCEPT"});
        ipt(home, {"-A", "FORWARD", "-i", "uplink", "-j", "DROP"});
      }
      const std::string br = "br" + std::to_string(g);
      run_command({"ip", "-n", home, "link", "add", br, "type", "bridge"});
      // Multicast floods the bridge: no IGMP snooping state to learn first.
      run_command({"ip", "-n", home, "link", "set", br, "type", "bridge", "mcast_snooping", "0"});
      run_command({"ip", "-n", home, "addr", "add", gateway(g) + "/16", "dev", br});
      run_command({"ip", "-n", home, "link", "set", br, "up"});
      subnet_ns.push_back(home);
      subnet_dc.push_back(static_cast<std::uint32_t>(d));
      ++g;
    }
  }

  // Nodes.
  nodes_.resize(placement.size());
  for (std::size_t i = 0; i < placement.size(); ++i) {
    const auto& p = placement[i];
    const auto& sub = sim::subnet_at(s, p.subnet);
    NodeNet& n = nodes_[i];
    n.ns = ns_name("n" + std::to_string(i));
    n.address = node_address(p.subnet, p.index_in_subnet);
    n.subnet = p.subnet;
    add_namespace(n.ns);
    const std::string port = "p" + std::to_string(i);
    run_command({"ip", "-n", n.ns, "link", "add", "eth0", "type", "veth", "peer", "name", port, "netns", subnet_ns[p.subnet]});
    run_command({"ip", "-n", n.ns, "addr", "add", n.address + "/16", "dev", "eth0"});
    run_command({"ip", "-n", n.ns, "link", "set", "eth0", "up"});
    run_command({"ip", "-n", n.ns, "route", "add", "default", "via", gateway(p.subnet)});
    run_command({"ip", "-n", subnet_ns[p.subnet], "link", "set", port, "master", "br" + std::to_string(p.subnet)});
    run_command({"ip", "-n", subnet_ns[p.subnet], "link", "set", port, "up"});
    const bool send_broken = std::count(sub.multicast_send_broken.begin(), sub.multicast_send_broken.end(), p.index_in_subnet);
    const bool recv_broken = std::count(sub.multicast_recv_broken.begin(), sub.multicast_recv_broken.end(), p.index_in_subnet);
    if (!sub.multicast || send_broken) ipt(n.ns, {"-A", "OUTPUT", "-d", "224.0.0.0/4", "-j", "DROP"});
    if (!sub.multicast || recv_broken) ipt(n.ns, {"-A", "INPUT", "-d", "224.0.0.0/4", "-j", "DROP"});
    if (sub.multicast_loss > 0)
      ipt(n.ns, {"-A", "INPUT", "-d", "224.0.0.0/4", "-m", "statistic", "--mode", "random", "--probability", prob(sub.multicast_loss), "-j", "DROP"});
    if (sub.lan.loss > 0)
      ipt(n.ns, {"-A", "INPUT", "-m", "statistic", "--mode", "random", "--probability", prob(sub.lan.loss), "-j", "DROP"});
  }

  // WAN: a veth per scenario link between routers, 172.31.x.y/30, then static routes along the
  // fewest-hops path (datacenter graphs are small).
  std::map<std::string, std::size_t> dc_index;
  for (std::size_t d = 0; d < s.datacenters.size(); ++d) dc_index[s.datacenters[d].name] = d;
  struct Edge { std::size_t to; std::string via; };  // next-hop address on the far side
  std::vector<std::vector<Edge>> adj(s.datacenters.size());
  for (std::size_t e = 0; e < s.wan.size(); ++e) {
    const std::size_t a = dc_index.at(s.wan[e].a), b = dc_index.at(s.wan[e].b);
    const std::string base = "172.31." + std::to_string(e / 64) + ".";
    const std::string ip_a = base + std::to_string((e % 64) * 4 + 1), ip_b = base + std::to_string((e % 64) * 4 + 2);
    const std::string if_a = "w" + std::to_string(e) + "a", if_b = "w" + std::to_string(e) + "b";
    run_command({"ip", "-n", router[a], "link", "add", if_a, "type", "veth", "peer", "name", if_b, "netns", router[b]});
    run_command({"ip", "-n", router[a], "addr", "add", ip_a + "/30", "dev", if_a});
    run_command({"ip", "-n", router[b], "addr", "add", ip_b + "/30", "dev", if_b});
    run_command({"ip", "-n", router[a], "link", "set", if_a, "up"});
    run_command({"ip", "-n", router[b], "link", "set", if_b, "up"});
    if (s.wan[e].link.loss > 0) {
      ipt(router[a], {"-A", "FORWARD", "-o", if_a, "-m", "statistic", "--mode", "random", "--probability", prob(s.wan[e].link.loss), "-j", "DROP"});
      ipt(router[b], {"-A", "FORWARD", "-o", if_b, "-m", "statistic", "--mode", "random", "--probability", prob(s.wan[e].link.loss), "-j", "DROP"});
    }
    adj[a].push_back({b, ip_b});
    adj[b].push_back({a, ip_a});
  }
  for (std::size_t from = 0; from < s.datacenters.size(); ++from) {
    // BFS: the first hop towards every other datacenter.
    std::vector<std::string> first_hop(s.datacenters.size());
    std::vector<bool> seen(s.datacenters.size());
    std::queue<std::size_t> q;
    seen[from] = true;
    q.push(from);
    while (!q.empty()) {
      const auto at = q.front();
      q.pop();
      for (const auto& e : adj[at])
        if (!seen[e.to]) {
          seen[e.to] = true;
          first_hop[e.to] = at == from ? e.via : first_hop[at];
          q.push(e.to);
        }
    }
    for (std::uint32_t sub = 0; sub < subnet_ns.size(); ++sub) {
      const std::size_t d = subnet_dc[sub];
      if (d == from || first_hop[d].empty()) continue;
      // A NAT subnet is reachable only at its public address; its private range is never routed.
      const bool nat = subnet_ns[sub] != router[d];
      const std::string dest = nat ? "100.64." + std::to_string(sub) + ".0/30" : subnet_prefix(sub) + "0.0/16";
      run_command({"ip", "-n", router[from], "route", "add", dest, "via", first_hop[d]});
    }
  }
}

}  // namespace mixcast::real
