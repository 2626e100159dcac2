#include "mixcast/sim/run_book.hpp"

#include <algorithm>
#include <cmath>
#include <limits>

namespace mixcast::sim {

NodeConfig node_config(const Scenario& s) {
  const auto us = [](double seconds) { return static_cast<Micros>(std::llround(seconds * 1e6)); };
  NodeConfig c;
  c.mode = s.protocol.mode;
  c.ack_timeout = us(s.protocol.ack_timeout_s);
  c.dedup_window = s.protocol.dedup_window;
  c.confirm_interval = us(s.protocol.confirm_interval_s);
  c.beacon_interval = us(s.protocol.beacon_interval_s);
  c.reach_expiry = us(s.protocol.reach_expiry_s);
  c.forced_tcp_share = s.protocol.forced_tcp_share;
  c.retention = s.protocol.retention;
  c.nat_links = s.protocol.nat_links;
  return c;
}

RunBook::RunBook(const Scenario& s, std::string engine)
    : s_(s), n_(s.total_nodes()), rng_(s.seed ^ 0x6d6f64656cULL) {
  // The ns-3 engine does not restart nodes yet; a simulation must not quietly run without them.
  if (engine == "ns3")
    for (std::size_t i = 0; i < s.crashes.size(); ++i)
      if (s.crashes[i].restart_after_s)
        throw ScenarioError(s.source + ": crashes[" + std::to_string(i) + "].restart_after: the " + engine +
                            " engine does not restart nodes yet (the model engine and mixcast-testbed do); remove "
                            "the key to simulate the crash alone");
  result_.engine = std::move(engine);
  result_.scenario = s;
  result_.crashed_at_s.assign(n_, -1.0);
  down_.assign(n_, false);
  life_.assign(n_, 0);
  total_ = s.workload.warmup_broadcasts + s.workload.broadcasts;
  delivered_.assign(total_, {});
  delivered_by_life_.assign(total_, {});
  owed_by_life_.assign(total_, {});
  start_s_.assign(total_, 0.0);
  result_.traffic.assign(total_, Traffic{});
  result_.islands_agreed = !waits_for_islands();
}

NodeConfig RunBook::node_config_for(NodeId n) const {
  NodeConfig cfg = node_config(s_);
  cfg.self = n;
  // A new life draws new random numbers and names its messages with the next incarnation.
  cfg.seed = s_.seed * 0x9E3779B97F4A7C15ULL + n + std::uint64_t{life_[n]} * 0xD1B54A32D192ED03ULL;
  cfg.incarnation = 1 + life_[n];
  return cfg;
}

std::vector<std::unique_ptr<Node>> RunBook::make_nodes() {
  std::vector<NodeId> ids(n_), natted;
  std::vector<std::uint32_t> nat_domains;  // a NAT subnet is one NAT
  const auto placement = place_nodes(s_);
  for (NodeId i = 0; i < n_; ++i) {
    ids[i] = i;
    if (subnet_at(s_, placement[i].subnet).nat) {
      natted.push_back(i);
      nat_domains.push_back(placement[i].subnet);
    }
  }
  auto view = std::make_shared<const View>(ids, natted, nat_domains);
  view_ = view;
  // One thread runs every node of an engine: they share claim lists and island partitions.
  island_cache_ = std::make_shared<IslandCache>();
  std::vector<std::unique_ptr<Node>> nodes;
  nodes.reserve(n_);
  for (NodeId i = 0; i < n_; ++i) nodes.push_back(std::make_unique<Node>(node_config_for(i), view, island_cache_));
  return nodes;
}

std::vector<RunBook::Crash> RunBook::plan_crashes() {
  std::vector<bool> origin(n_, false);
  for (auto o : s_.workload.origins) origin[o] = true;
  std::vector<Crash> out;
  for (const auto& c : s_.crashes) {
    std::vector<NodeId> victims(c.nodes.begin(), c.nodes.end());
    std::uint32_t want = c.count;
    if (c.fraction > 0) want = static_cast<std::uint32_t>(std::llround(c.fraction * n_));
    if (want > 0) {
      std::vector<NodeId> pool;
      for (NodeId i = 0; i < n_; ++i)
        if (!origin[i]) pool.push_back(i);
      for (std::uint32_t k = 0; k < want && !pool.empty(); ++k) {
        auto pick = static_cast<std::size_t>(rng_.below(pool.size()));
        victims.push_back(pool[pick]);
        pool[pick] = pool.back();
        pool.pop_back();
      }
    }
    for (auto v : victims) out.push_back(Crash{c.at_s, v, c.restart_after_s});
  }
  return out;
}

std::vector<double> RunBook::warmup_starts() const {
  std::vector<double> out;
  for (std::uint32_t k = 0; k < s_.workload.warmup_broadcasts; ++k)
    out.push_back(s_.workload.start_s + k / s_.workload.rate_per_s);
  return out;
}

double RunBook::measured_earliest_s() const {
  const double learn_s = static_cast<double>(learning_time(node_config(s_))) / 1e6;
  return s_.workload.start_s + std::max(s_.workload.warmup_broadcasts / s_.workload.rate_per_s, learn_s);
}

bool RunBook::islands_settled(const std::vector<std::unique_ptr<Node>>& nodes, double now_s) {
  if (learning_deadline_s_ == 0) learning_deadline_s_ = measured_earliest_s() + kMaxLearning_s;
  std::optional<std::uint64_t> hash;
  bool agreed = true;
  for (NodeId i = 0; i < nodes.size() && agreed; ++i) {
    if (is_down(i)) continue;
    const std::uint64_t h = nodes[i]->island_hash();
    agreed = !hash || *hash == h;
    hash = h;
  }
  if (!agreed && now_s < learning_deadline_s_) return false;
  result_.islands_agreed = agreed;
  return true;
}

std::vector<std::pair<std::uint32_t, double>> RunBook::measured_starts(double from_s) {
  result_.measured_from_s = from_s;
  std::vector<std::pair<std::uint32_t, double>> out;
  const std::uint32_t warm = s_.workload.warmup_broadcasts;
  for (std::uint32_t k = warm; k < total_; ++k) out.emplace_back(k, from_s + (k - warm) / s_.workload.rate_per_s);
  return out;
}

std::optional<NodeId> RunBook::start_broadcast(std::uint32_t index, std::vector<std::unique_ptr<Node>>& nodes,
                                               double now_s) {
  const auto& origins = s_.workload.origins;
  NodeId origin = origins.empty() ? static_cast<NodeId>(rng_.below(n_)) : origins[index % origins.size()];
  // A crashed origin cannot broadcast: the next live node takes its turn.
  for (std::uint32_t k = 0; k < n_ && is_down(origin); ++k) origin = (origin + 1) % n_;
  if (is_down(origin)) {
    ++skipped_;
    return std::nullopt;
  }
  // The islands the origin plans with when measurement begins.
  if (index == s_.workload.warmup_broadcasts) result_.islands = static_cast<std::uint32_t>(nodes[origin]->island_count());

  wire::Bytes payload = payload_for(index);
  last_start_s_ = now_s;
  last_progress_s_ = now_s;
  const MessageId id = nodes[origin]->broadcast(std::move(payload), static_cast<Micros>(std::llround(now_s * 1e6)));
  index_of_[id] = index;
  result_.broadcasts.push_back(
      BroadcastRecord{index, origin, id.seq, now_s, index < s_.workload.warmup_broadcasts});
  delivered_[index].assign(n_, false);
  delivered_by_life_[index].assign(n_, 0);
  owed_by_life_[index].assign(n_, 0);
  for (NodeId i = 0; i < n_; ++i)
    if (!is_down(i)) {
      owed_by_life_[index][i] = life_[i] + 1;
      ++expected_total_;
    }
  start_s_[index] = now_s;
  ++started_;
  return origin;
}

wire::Bytes RunBook::payload_for(std::uint32_t index) const {
  wire::Bytes payload(s_.workload.payload_bytes);
  for (std::size_t i = 0; i < payload.size(); ++i) payload[i] = static_cast<std::uint8_t>(index * 31u + i);
  return payload;
}

void RunBook::crashed(NodeId n, double now_s) {
  if (down_[n]) return;
  down_[n] = true;
  if (result_.crashed_at_s[n] < 0) result_.crashed_at_s[n] = now_s;  // the summary's "ever crashed"
  outages_.push_back(Outage{n, now_s, std::numeric_limits<double>::infinity()});
}

std::unique_ptr<Node> RunBook::restarted(NodeId n, std::vector<std::unique_ptr<Node>>& nodes, double now_s) {
  if (!down_[n]) return nullptr;
  down_[n] = false;
  ++life_[n];
  for (auto it = outages_.rbegin(); it != outages_.rend(); ++it)
    if (it->node == n) {
      it->to_s = now_s;
      break;
    }
  ++result_.restarts;
  const auto& c = nodes[n]->counters();
  retired_redelegations_ += c.redelegations;
  retired_repairs_ += c.repairs_sent;
  retired_forced_ += c.forced_tcp;
  std::unique_ptr<Node> old = std::move(nodes[n]);
  nodes[n] = std::make_unique<Node>(node_config_for(n), view_, island_cache_);
  return old;
}

bool RunBook::up_throughout(NodeId n, double from_s, double to_s) const {
  for (const auto& o : outages_)
    if (o.node == n && o.from_s <= to_s && o.to_s > from_s) return false;
  return true;
}

std::optional<std::uint32_t> RunBook::broadcast_index(const MessageId& id) const {
  auto it = index_of_.find(id);
  if (it == index_of_.end()) return std::nullopt;
  return it->second;
}

void RunBook::take_deliveries(NodeId n, Node& node, double now_s) {
  while (auto d = node.poll_delivery()) {
    const auto b = broadcast_index(d->id);
    if (!b) {
      ++result_.invented;  // no broadcast of this run has that id
      continue;
    }
    if (d->payload != payload_for(*b)) ++result_.corrupted;
    // Exactly once per life: a restarted node may deliver again what its earlier life delivered.
    std::uint32_t& by = delivered_by_life_[*b][n];
    if (by == life_[n] + 1) {
      ++result_.duplicates;
      continue;
    }
    by = life_[n] + 1;
    if (owed_by_life_[*b][n] == by) ++delivered_total_;
    last_progress_s_ = now_s;
    if (delivered_[*b][n]) continue;  // deliveries.csv keeps each node's first delivery
    delivered_[*b][n] = true;
    if (d->flags & wire::Broadcast::kRepair) ++result_.traffic[*b].delivered_by_repair;
    else if (d->flags & wire::Broadcast::kForced) ++result_.traffic[*b].delivered_by_forced;
    result_.deliveries.push_back(DeliveryRecord{*b, n, d->round, now_s - start_s_[*b], d->channel});
  }
}

void RunBook::account(const Transmit& t, double now_s) {
  // Each message counts for the broadcast it is about (or for control traffic); the frame's own
  // overhead goes with its first message.
  std::size_t overhead = t.wire_size();
  for (const auto& p : t.parts) overhead -= p.bytes;
  for (std::size_t i = 0; i < t.parts.size(); ++i) {
    const TransmitPart& p = t.parts[i];
    Traffic* bucket = &result_.control;
    if (p.subject)
      if (auto b = broadcast_index(*p.subject)) {
        bucket = &result_.traffic[*b];
        if (p.kind != TrafficKind::ack) last_progress_s_ = now_s;
      }
    const std::uint64_t bytes = p.bytes + (i == 0 ? overhead : 0);
    if (t.channel == Channel::multicast) {
      bucket->multicast_messages += i == 0 ? 1 : 0;  // one datagram
      bucket->multicast_bytes += bytes;
      continue;
    }
    bucket->tcp_messages += 1;
    bucket->tcp_bytes += bytes;
    if (p.kind == TrafficKind::repair) {
      bucket->repair_messages += 1;
      bucket->repair_bytes += p.bytes;
    } else if (p.kind == TrafficKind::forced) {
      bucket->forced_messages += 1;
      bucket->forced_bytes += p.bytes;
    }
  }
}

bool RunBook::complete() const { return started_ + skipped_ == total_ && delivered_total_ == expected_total_; }

double RunBook::quiet_window_s() const {
  // Re-delegation after a silent delegate, plus a TCP segment lost four times at a 200 ms minimum
  // RTO; mixed mode also waits for the next beacons and heard lists, which reveal lost multicasts
  // and trigger repairs (tail repair to a silent hearer comes 2 beacons + 1 confirm interval later).
  const auto& p = s_.protocol;
  double w = 2 * p.ack_timeout_s + 3.0;
  if (s_.protocol.mode == Mode::mixed) w += 3 * p.beacon_interval_s + 3 * p.confirm_interval_s;
  return w;
}

bool RunBook::quiet(double now_s, const std::vector<std::unique_ptr<Node>>& nodes) const {
  if (started_ + skipped_ != total_ || in_flight_ > 0 || now_s - last_progress_s_ < quiet_window_s()) return false;
  for (NodeId n = 0; n < nodes.size(); ++n)
    if (!is_down(n) && nodes[n]->awaits_delegations()) return false;
  return true;
}

double RunBook::done_fraction() const {
  return expected_total_ ? double(delivered_total_) / double(expected_total_) : 0.0;
}

RunResult RunBook::finish(const std::vector<std::unique_ptr<Node>>& nodes, std::uint64_t events, double simulated_s,
                          double wall_s) {
  result_.redelegations = retired_redelegations_;
  result_.repairs = retired_repairs_;
  result_.forced_tcp = retired_forced_;
  for (const auto& node : nodes) {
    const auto& c = node->counters();
    result_.redelegations += c.redelegations;
    result_.repairs += c.repairs_sent;
    result_.forced_tcp += c.forced_tcp;
  }
  // Expected deliveries that did not happen: to nodes up (in one life) from the broadcast's start to
  // the end of the run, and what we know of why.
  std::vector<double> last_delivery_s(total_, 0.0);  // since the start: how long each broadcast was on its way
  for (const auto& d : result_.deliveries) last_delivery_s[d.broadcast] = std::max(last_delivery_s[d.broadcast], d.time_s);
  for (std::uint32_t b = 0; b < total_; ++b) {
    if (delivered_[b].empty()) continue;  // never started
    bool crash_during = false;
    for (const auto& o : outages_) crash_during = crash_during || o.from_s >= start_s_[b];
    for (NodeId n = 0; n < n_; ++n) {
      // Owed by the life that was up at the start, if that life is still up: no outage since then.
      const std::uint32_t owed = owed_by_life_[b][n];
      if (owed == 0 || owed != life_[n] + 1 || down_[n] || delivered_by_life_[b][n] == owed) continue;
      std::string cause = crash_during ? "crashed_delegate" : "never_reached";
      // Unreachable: behind a NAT the origin is not in, with no gateway up all the while the broadcast
      // was on its way (to its last delivery anywhere, and an ack timeout more for the failure to be
      // noticed). Nothing could carry it there.
      const NodeId origin = result_.broadcasts[b].origin;
      if (view_ && view_->behind_nat(n) && !view_->same_nat(n, origin)) {
        const double until_s = start_s_[b] + last_delivery_s[b] + s_.protocol.ack_timeout_s;
        bool gateway_left = false;
        for (NodeId g : view_->gateways(n, s_.protocol.nat_links))
          gateway_left = gateway_left || up_throughout(g, start_s_[b], until_s);
        if (!gateway_left) cause = "no_gateway";
      }
      result_.missing.push_back(MissingDelivery{b, n, std::move(cause)});
    }
  }
  result_.last_start_s = last_start_s_;
  result_.events = events;
  result_.simulated_s = simulated_s;
  result_.wall_s = wall_s;
  std::stable_sort(result_.deliveries.begin(), result_.deliveries.end(),
                   [](const DeliveryRecord& a, const DeliveryRecord& b) {
                     return a.broadcast != b.broadcast ? a.broadcast < b.broadcast : a.time_s < b.time_s;
                   });
  return std::move(result_);
}

}  // namespace mixcast::sim
