// Helpers for the real-process tests: binaries from CMake, unique tags and payloads, and waiting
// for delivery logs. Every process a test starts lives in a LocalCluster or a ChildProcess, whose
// destructors kill and reap it (and the kernel kills daemons whose parent died), also on failure.
#pragma once
#include <gtest/gtest.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <map>
#include <random>
#include <set>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "local_cluster.hpp"

namespace mixcast::testbed::test {

inline std::string daemon_binary() { return MIXCASTD_BINARY; }
inline std::string testbed_binary() { return MIXCAST_TESTBED_BINARY; }
inline std::string source_dir() { return MIXCAST_SOURCE_DIR; }

inline std::string random_tag() {
  std::random_device rd;
  std::ostringstream s;
  s << std::hex << rd() << rd();
  return s.str();
}

inline std::string slurp(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

inline wire::Bytes text_bytes(const std::string& s) { return wire::Bytes(s.begin(), s.end()); }
inline std::string bytes_text(const wire::Bytes& b) { return std::string(b.begin(), b.end()); }

// Everything the daemons delivered, read from their delivery logs, per node.
struct Ledger {
  explicit Ledger(std::uint32_t nodes) : rows(nodes) {}
  std::vector<std::vector<DeliveryRow>> rows;

  void pull(LocalCluster& c) {
    for (NodeId n = 0; n < c.size(); ++n)
      for (auto& r : c.read_deliveries(n)) rows[n].push_back(std::move(r));
  }
  // Payloads node n delivered, as text (duplicates kept: the caller compares sizes).
  std::multiset<std::string> payloads(NodeId n) const {
    std::multiset<std::string> out;
    for (const auto& r : rows[n]) out.insert(bytes_text(r.payload));
    return out;
  }
  bool has_all(NodeId n, const std::set<std::string>& want) const {
    const auto got = payloads(n);
    for (const auto& w : want)
      if (!got.count(w)) return false;
    return true;
  }
};

// Polls the delivery logs until every node in `nodes` delivered every payload of `want`, or the
// timeout passes. Returns whether they did.
inline bool wait_for_deliveries(LocalCluster& c, Ledger& ledger, const std::vector<NodeId>& nodes,
                                const std::set<std::string>& want, std::chrono::milliseconds timeout) {
  const auto deadline = Clock::now() + timeout;
  for (;;) {
    ledger.pull(c);
    bool all = true;
    for (NodeId n : nodes) all = all && ledger.has_all(n, want);
    if (all) return true;
    if (Clock::now() >= deadline) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
}

// The ends of every daemon's log, for failure messages.
inline std::string logs_of(const LocalCluster& c) {
  std::string out;
  for (NodeId n = 0; n < c.size(); ++n) out += "--- node " + std::to_string(n) + ":\n" + c.log_tail(n, 600) + "\n";
  return out;
}

}  // namespace mixcast::testbed::test
