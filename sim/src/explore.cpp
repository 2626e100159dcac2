#include "mixcast/sim/explore.hpp"

#include <algorithm>
#include <cmath>
#include <set>
#include <string>

#include "mixcast/core/rng.hpp"
#include "mixcast/core/view.hpp"

namespace mixcast::sim {
namespace {

// A value spread evenly over orders of magnitude between lo and hi, to 3 significant digits (cases
// are read by people).
double round3(double v) {
  if (v <= 0) return v;
  const double scale = std::pow(10.0, 2 - std::floor(std::log10(v)));
  return std::round(v * scale) / scale;
}
double log_uniform(Rng& r, double lo, double hi) { return std::clamp(round3(lo * std::pow(hi / lo, r.unit())), lo, hi); }
double unit3(Rng& r) { return round3(r.unit()); }
std::uint32_t pick(Rng& r, std::uint32_t lo, std::uint32_t hi) {  // inclusive
  return lo + static_cast<std::uint32_t>(r.below(std::uint64_t{hi} - lo + 1));
}

// Splits n nodes over k subnets, every subnet at least one node, uneven shares.
std::vector<std::uint32_t> split_nodes(Rng& r, std::uint32_t n, std::uint32_t k) {
  std::vector<double> w(k);
  for (auto& x : w) x = 0.2 + r.unit();
  double sum = 0;
  for (double x : w) sum += x;
  std::vector<std::uint32_t> out(k, 1);
  std::uint32_t left = n - k;
  for (std::uint32_t i = 0; i < k && left > 0; ++i) {
    const auto share = std::min(left, static_cast<std::uint32_t>(std::floor(w[i] / sum * (n - k))));
    out[i] += share;
    left -= share;
  }
  out[r.below(k)] += left;
  return out;
}

std::vector<std::uint32_t> some_indexes(Rng& r, std::uint32_t n, std::uint32_t want) {
  std::set<std::uint32_t> s;
  for (std::uint32_t i = 0; i < want; ++i) s.insert(static_cast<std::uint32_t>(r.below(n)));
  return {s.begin(), s.end()};
}

}  // namespace

Scenario random_case(std::uint64_t seed, std::uint64_t index, const ExploreLimits& limits) {
  Rng r(seed * 0x9E3779B97F4A7C15ULL ^ (index + 1) * 0xD1B54A32D192ED03ULL);
  Scenario s;
  s.name = "explore-" + std::to_string(seed) + "-" + std::to_string(index);
  s.seed = r.next() >> 16;

  // Topology: mostly small, sometimes wide. Nodes log-uniform in 1..max_nodes.
  const std::uint32_t dcs = r.chance(0.5) ? 1 : pick(r, 2, r.chance(0.8) ? 3 : 6);
  std::vector<std::uint32_t> subnets(dcs);
  for (auto& k : subnets) k = r.chance(0.4) ? 1 : pick(r, 2, r.chance(0.8) ? 4 : 8);
  std::uint32_t total_subnets = 0;
  for (auto k : subnets) total_subnets += k;
  std::uint32_t n = static_cast<std::uint32_t>(std::llround(log_uniform(r, 1, limits.max_nodes)));
  n = std::clamp(n, total_subnets, std::max(total_subnets, limits.max_nodes));
  const auto sizes = split_nodes(r, n, total_subnets);
  std::uint32_t next = 0;
  bool any_open = false;
  for (std::uint32_t d = 0; d < dcs; ++d) {
    DatacenterSpec dc;
    dc.name = "dc" + std::to_string(d);
    for (std::uint32_t k = 0; k < subnets[d]; ++k) {
      SubnetSpec sub;
      sub.name = dc.name + "-s" + std::to_string(k);
      sub.nodes = sizes[next++];
      sub.lan.bandwidth_bps = log_uniform(r, 1e6, 1e10);
      sub.lan.latency_s = log_uniform(r, 10e-6, 2e-3);
      if (r.chance(0.2)) sub.lan.loss = unit3(r) * 0.05;
      sub.multicast = !r.chance(0.15);
      sub.nat = r.chance(0.15);
      if (sub.multicast && r.chance(0.3)) sub.multicast_loss = unit3(r) * 0.4;
      if (sub.multicast && sub.nodes > 2 && r.chance(0.15))
        sub.multicast_send_broken = some_indexes(r, sub.nodes, pick(r, 1, std::min(3u, sub.nodes - 1)));
      if (sub.multicast && sub.nodes > 2 && r.chance(0.15))
        sub.multicast_recv_broken = some_indexes(r, sub.nodes, pick(r, 1, std::min(3u, sub.nodes - 1)));
      any_open = any_open || !sub.nat;
      dc.subnets.push_back(std::move(sub));
    }
    s.datacenters.push_back(std::move(dc));
  }
  if (!any_open) s.datacenters.front().subnets.front().nat = false;  // NATed nodes need gateways outside
  // WAN: a random spanning tree, plus a few extra links.
  auto wan_link = [&](std::uint32_t a, std::uint32_t b) {
    WanLinkSpec w;
    w.a = s.datacenters[a].name;
    w.b = s.datacenters[b].name;
    w.link.latency_s = log_uniform(r, 1e-4, 0.3);
    w.link.bandwidth_bps = log_uniform(r, 1e6, 1e10);
    s.wan.push_back(w);
  };
  std::set<std::pair<std::uint32_t, std::uint32_t>> linked;
  for (std::uint32_t d = 1; d < dcs; ++d) {
    const auto to = static_cast<std::uint32_t>(r.below(d));
    linked.insert({to, d});
    wan_link(to, d);
  }
  for (std::uint32_t extra = dcs > 2 ? pick(r, 0, 2) : 0; extra > 0; --extra) {
    auto a = static_cast<std::uint32_t>(r.below(dcs)), b = static_cast<std::uint32_t>(r.below(dcs));
    if (a == b) continue;
    if (a > b) std::swap(a, b);
    if (linked.insert({a, b}).second) wan_link(a, b);
  }

  // Protocol: both modes, default timings mostly.
  s.protocol.mode = r.chance(0.5) ? Mode::mixed : Mode::tcp;
  if (r.chance(0.3)) s.protocol.ack_timeout_s = log_uniform(r, 0.05, 2.0);
  if (r.chance(0.2)) s.protocol.forced_tcp_share = unit3(r) * 0.3;
  if (r.chance(0.2)) s.protocol.nat_links = pick(r, 1, 3);

  // Workload: 1 to thousands of broadcasts at up to 1,000/s; payloads mostly small.
  WorkloadSpec& w = s.workload;
  const std::uint64_t max_b = std::max<std::uint64_t>(1, std::min<std::uint64_t>(3000, limits.max_deliveries / n));
  w.broadcasts = static_cast<std::uint32_t>(std::llround(log_uniform(r, 1, static_cast<double>(max_b) + 0.5)));
  w.broadcasts = std::clamp<std::uint32_t>(w.broadcasts, 1, static_cast<std::uint32_t>(max_b));
  // At most about 20 s of broadcasting: cases stay fast, and a run's length is the workload's.
  w.rate_per_s = std::max(log_uniform(r, 1, 1000), std::ceil(w.broadcasts / 20.0));
  w.payload_bytes = r.chance(0.1) ? 0 : static_cast<std::uint32_t>(log_uniform(r, 1, 300));
  if (w.broadcasts * std::uint64_t{n} <= 2000 && r.chance(0.2)) w.payload_bytes = pick(r, 1000, 65536);
  w.warmup_broadcasts = r.chance(0.5) ? 0 : pick(r, 1, 10);
  if (r.chance(0.3)) w.start_s = unit3(r) * 0.5;
  if (r.chance(0.4)) w.origins = some_indexes(r, n, pick(r, 1, std::min(4u, n)));

  // Crashes at any time (warm-up and learning included), aimed at the nodes that matter.
  const double duration = w.start_s + (w.warmup_broadcasts + w.broadcasts) / w.rate_per_s +
                          (s.protocol.mode == Mode::mixed ? 0.5 : 0.0);
  if (n > 2 && r.chance(0.3)) {
    std::vector<NodeId> ids(n), natted;
    std::vector<std::uint32_t> domains;
    std::uint32_t id = 0, subnet_index = 0;
    std::vector<NodeId> leaders;  // lowest id of each subnet: the island leader in mixed mode
    for (const auto& dc : s.datacenters)
      for (const auto& sub : dc.subnets) {
        leaders.push_back(id);
        for (std::uint32_t k = 0; k < sub.nodes; ++k, ++id) {
          ids[id] = id;
          if (sub.nat) {
            natted.push_back(id);
            domains.push_back(subnet_index);
          }
        }
        ++subnet_index;
      }
    const View view(ids, natted, domains);
    std::set<std::uint32_t> victims;
    for (std::uint32_t c = pick(r, 1, 3); c > 0; --c) {
      CrashSpec crash;
      crash.at_s = round3(r.unit() * duration);
      const auto role = r.below(5);
      NodeId v;
      if (role == 0 && !w.origins.empty()) v = w.origins[r.below(w.origins.size())];
      else if (role == 1 && !natted.empty()) v = view.gateways(natted[r.below(natted.size())], s.protocol.nat_links).front();
      else if (role == 2) v = leaders[r.below(leaders.size())];
      else v = static_cast<NodeId>(r.below(n));
      if (victims.size() + 1 >= n || !victims.insert(v).second) continue;  // keep someone alive
      crash.nodes = {v};
      if (limits.restarts && r.chance(0.4)) crash.restart_after_s = log_uniform(r, 0.01, 2.0);
      s.crashes.push_back(crash);
    }
    if (r.chance(0.2) && n > victims.size() + w.origins.size() + 4) {  // (unsigned: no subtraction)
      CrashSpec crash;
      crash.at_s = round3(r.unit() * duration);
      crash.count = pick(r, 1, 2);
      if (limits.restarts && r.chance(0.3)) crash.restart_after_s = log_uniform(r, 0.01, 2.0);
      s.crashes.push_back(crash);
    }
  }
  if (r.chance(0.1)) {  // a subnet's multicast fails, and may recover
    auto& dc = s.datacenters[r.below(dcs)];
    auto& sub = dc.subnets[r.below(dc.subnets.size())];
    sub.multicast_fails_at_s = round3(r.unit() * duration);
    if (r.chance(0.5)) sub.multicast_recovers_at_s = round3(sub.multicast_fails_at_s + log_uniform(r, 0.05, 3.0));
  }
  validate(s);
  return s;
}

Scenario shrink(const Scenario& failing, const std::function<bool(const Scenario&)>& still_fails,
                std::uint32_t budget) {
  Scenario best = failing;
  auto attempt = [&](Scenario candidate) {
    if (budget == 0) return false;
    try {
      validate(candidate);
    } catch (const ScenarioError&) {
      return false;
    }
    --budget;
    if (!still_fails(candidate)) return false;
    best = std::move(candidate);
    return true;
  };
  for (bool progress = true; progress && budget > 0;) {
    progress = false;
    if (best.workload.broadcasts > 1) {
      Scenario c = best;
      c.workload.broadcasts = std::max(1u, c.workload.broadcasts / 2);
      progress |= attempt(std::move(c));
    }
    if (best.workload.warmup_broadcasts > 0) {
      Scenario c = best;
      c.workload.warmup_broadcasts = 0;
      progress |= attempt(std::move(c));
    }
    for (std::size_t i = 0; i < best.crashes.size(); ++i) {
      Scenario c = best;
      c.crashes.erase(c.crashes.begin() + static_cast<std::ptrdiff_t>(i));
      if (attempt(std::move(c))) {
        progress = true;
        break;
      }
    }
    for (std::size_t d = 0; d < best.datacenters.size() && best.datacenters.size() > 1; ++d) {
      Scenario c = best;
      const std::string name = c.datacenters[d].name;
      c.datacenters.erase(c.datacenters.begin() + static_cast<std::ptrdiff_t>(d));
      c.wan.erase(std::remove_if(c.wan.begin(), c.wan.end(), [&](const WanLinkSpec& w) { return w.a == name || w.b == name; }),
                  c.wan.end());
      c.workload.origins.clear();
      for (auto& crash : c.crashes) crash.nodes.clear(), crash.count = crash.count ? crash.count : 1;
      if (attempt(std::move(c))) {
        progress = true;
        break;
      }
    }
    for (std::size_t d = 0; d < best.datacenters.size(); ++d)
      for (std::size_t k = 0; k < best.datacenters[d].subnets.size() && best.datacenters[d].subnets.size() > 1; ++k) {
        Scenario c = best;
        auto& subs = c.datacenters[d].subnets;
        subs.erase(subs.begin() + static_cast<std::ptrdiff_t>(k));
        c.workload.origins.clear();
        for (auto& crash : c.crashes) crash.nodes.clear(), crash.count = crash.count ? crash.count : 1;
        if (attempt(std::move(c))) {
          progress = true;
          d = best.datacenters.size();
          break;
        }
      }
    if (best.total_nodes() > best.total_subnets()) {
      Scenario c = best;
      try {
        rescale(c, std::max(best.total_subnets(), best.total_nodes() / 2));
        progress |= attempt(std::move(c));
      } catch (const ScenarioError&) {
      }
    }
  }
  return best;
}

}  // namespace mixcast::sim
