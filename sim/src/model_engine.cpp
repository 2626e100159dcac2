// The model engine: a deterministic discrete-event network. It knows links, latencies, bandwidth,
// loss, crashes and NAT reachability; it knows nothing of the protocol beyond the core's API.
#include "mixcast/sim/model_engine.hpp"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <limits>
#include <map>
#include <memory>
#include <optional>
#include <queue>
#include <unordered_map>

#include "mixcast/core/node.hpp"
#include "mixcast/core/rng.hpp"
#include "mixcast/sim/network_model.hpp"

namespace mixcast::sim {
namespace {

using Nanos = std::int64_t;
constexpr Nanos kNanosPerMicro = 1000;
Nanos to_nanos(double s) { return static_cast<Nanos>(std::llround(s * 1e9)); }
double to_seconds(Nanos t) { return static_cast<double>(t) / 1e9; }

enum class EventType : std::uint8_t { crash = 0, start_broadcast = 1, frame = 2, link = 3, timer = 4, learned = 5 };

// Mixed mode measures steady state: measured broadcasts wait until every live node plans with the
// same islands, checked this often, but no longer than kMaxLearning after the warm-up.
constexpr double kLearnedCheck_s = 0.05;
constexpr double kMaxLearning_s = 10.0;

struct Event {
  Nanos at;
  std::uint64_t order;  // insertion order breaks ties: deterministic
  EventType type;
  NodeId node;   // receiver / crashing node / timer owner
  NodeId peer;   // frame sender / link peer
  Channel channel;
  LinkEvent link;
  std::uint32_t index;  // broadcast index
  std::shared_ptr<const wire::Bytes> bytes;
  bool operator>(const Event& o) const { return at != o.at ? at > o.at : order > o.order; }
};

NodeConfig node_config(const Scenario& s);

class ModelRun {
 public:
  ModelRun(const Scenario& s, const RunOptions& opt) : s_(s), opt_(opt), net_(s), rng_(s.seed ^ 0x6d6f64656cULL) {}

  RunResult run();

 private:
  void push(Event e) {
    e.order = order_++;
    queue_.push(std::move(e));
  }
  void drain(NodeId n);
  void send(NodeId from, Transmit&& t);
  void account(const Transmit& t);
  void schedule_timer(NodeId n);
  void start_broadcast(std::uint32_t index);
  void check_learned();
  void schedule_measured();
  void crash(NodeId n);
  Micros micros(Nanos t) const { return t / kNanosPerMicro; }

  const Scenario& s_;
  const RunOptions& opt_;
  NetworkModel net_;
  Rng rng_;
  std::vector<std::unique_ptr<Node>> nodes_;
  std::vector<Nanos> timer_at_;
  std::priority_queue<Event, std::vector<Event>, std::greater<>> queue_;
  std::uint64_t order_ = 0;
  Nanos now_ = 0;

  RunResult result_;
  std::map<MessageId, std::uint32_t> broadcast_index_;
  std::vector<std::vector<bool>> delivered_;  // per broadcast, per node
  std::uint64_t expected_total_ = 0, delivered_total_ = 0;
  std::uint32_t skipped_ = 0;  // broadcasts not started: every node crashed
  Nanos learning_deadline_ = 0;
};

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

RunResult ModelRun::run() {
  const auto wall_start = std::chrono::steady_clock::now();
  const std::uint32_t n = s_.total_nodes();
  result_.engine = "model";
  result_.scenario = s_;
  result_.crashed_at_s.assign(n, -1.0);

  std::vector<NodeId> ids(n), natted;
  std::vector<std::uint32_t> nat_domains;  // a NAT subnet is one NAT
  for (NodeId i = 0; i < n; ++i) {
    ids[i] = i;
    if (net_.behind_nat(i)) {
      natted.push_back(i);
      nat_domains.push_back(net_.subnet_of(i));
    }
  }
  auto view = std::make_shared<const View>(ids, natted, nat_domains);
  const NodeConfig base = node_config(s_);
  nodes_.reserve(n);
  for (NodeId i = 0; i < n; ++i) {
    NodeConfig cfg = base;
    cfg.self = i;
    cfg.seed = s_.seed * 0x9E3779B97F4A7C15ULL + i;
    nodes_.push_back(std::make_unique<Node>(cfg, view));
  }
  timer_at_.assign(n, std::numeric_limits<Nanos>::max());
  for (NodeId i = 0; i < n; ++i) drain(i);  // links NATed nodes open at start, first timers

  // Crashes: resolved to concrete nodes now, from the seeded generator.
  std::vector<bool> protected_origin(n, false);
  for (auto o : s_.workload.origins) protected_origin[o] = true;
  for (const auto& c : s_.crashes) {
    std::vector<NodeId> victims(c.nodes.begin(), c.nodes.end());
    std::uint32_t want = c.count;
    if (c.fraction > 0) want = static_cast<std::uint32_t>(std::llround(c.fraction * n));
    if (want > 0) {
      std::vector<NodeId> pool;
      for (NodeId i = 0; i < n; ++i)
        if (!protected_origin[i]) pool.push_back(i);
      for (std::uint32_t k = 0; k < want && !pool.empty(); ++k) {
        auto pick = static_cast<std::size_t>(rng_.below(pool.size()));
        victims.push_back(pool[pick]);
        pool[pick] = pool.back();
        pool.pop_back();
      }
    }
    for (auto v : victims) push(Event{to_nanos(c.at_s), 0, EventType::crash, v, 0, Channel::tcp, LinkEvent::up, 0, {}});
  }

  const std::uint32_t total = s_.workload.warmup_broadcasts + s_.workload.broadcasts;
  delivered_.assign(total, {});
  result_.traffic.assign(total, Traffic{});
  // Measured broadcasts start once the warm-up broadcasts are done and, in mixed mode, once the
  // core says reachability can have been learned.
  const std::uint32_t warm = s_.workload.warmup_broadcasts;
  const double learn_s = static_cast<double>(learning_time(base)) / 1e6;
  const double measured_from = s_.workload.start_s + std::max(warm / s_.workload.rate_per_s, learn_s);
  for (std::uint32_t k = 0; k < warm; ++k)
    push(Event{to_nanos(s_.workload.start_s + k / s_.workload.rate_per_s), 0, EventType::start_broadcast, 0, 0,
               Channel::tcp, LinkEvent::up, k, {}});
  result_.islands_agreed = s_.protocol.mode != Mode::mixed;
  if (s_.protocol.mode == Mode::mixed) {
    push(Event{to_nanos(measured_from), 0, EventType::learned, 0, 0, Channel::tcp, LinkEvent::up, 0, {}});
    learning_deadline_ = to_nanos(measured_from + kMaxLearning_s);
  } else {
    now_ = to_nanos(measured_from);
    schedule_measured();
    now_ = 0;
  }

  const Nanos limit = to_nanos(s_.time_limit_s);
  // Once every broadcast has started and every live node delivered it, run a little longer so
  // trailing acks and repairs are counted, then stop (mixed mode's periodic traffic never ends).
  const Nanos settle = 2 * to_nanos(s_.protocol.ack_timeout_s);
  Nanos stop_at = limit;
  std::uint64_t events = 0;
  while (!queue_.empty()) {
    Event e = queue_.top();
    queue_.pop();
    if (e.at > std::min(limit, stop_at)) break;
    if (stop_at == limit && result_.broadcasts.size() + skipped_ == total && delivered_total_ == expected_total_)
      stop_at = now_ + settle;
    now_ = e.at;
    ++events;
    switch (e.type) {
      case EventType::crash: crash(e.node); break;
      case EventType::start_broadcast: start_broadcast(e.index); break;
      case EventType::learned: check_learned(); break;
      case EventType::frame:
        if (net_.crashed(e.node)) {
          // The peer's kernel answers with a reset: the sender learns the link failed.
          if (e.channel == Channel::tcp && !net_.crashed(e.peer))
            push(Event{now_ + net_.latency(e.node, e.peer), 0, EventType::link, e.peer, e.node, Channel::tcp,
                       LinkEvent::failed, 0, {}});
          break;
        }
        if (e.channel == Channel::multicast && !net_.hears_multicast(e.peer, e.node, now_)) break;  // broke in flight
        if (auto err = nodes_[e.node]->on_frame(e.peer, e.channel, e.bytes->data(), e.bytes->size(), micros(now_));
            err != wire::DecodeError::none)
          ++result_.bad_frames;
        drain(e.node);
        break;
      case EventType::link:
        if (net_.crashed(e.node)) break;
        nodes_[e.node]->on_link_event(e.peer, e.link, micros(now_));
        drain(e.node);
        break;
      case EventType::timer:
        if (net_.crashed(e.node) || timer_at_[e.node] != e.at) break;  // superseded
        timer_at_[e.node] = std::numeric_limits<Nanos>::max();
        nodes_[e.node]->on_timeout(micros(now_));
        drain(e.node);
        break;
    }
    if (opt_.progress && (events & 0xFFFF) == 0)
      opt_.progress(to_seconds(now_), expected_total_ ? double(delivered_total_) / double(expected_total_) : 0.0);
  }

  for (const auto& node : nodes_) {
    const auto& c = node->counters();
    result_.redelegations += c.redelegations;
    result_.repairs += c.repairs_sent;
    result_.forced_tcp += c.forced_tcp;
  }
  result_.events = events;
  result_.simulated_s = to_seconds(now_);
  std::stable_sort(result_.deliveries.begin(), result_.deliveries.end(),
                   [](const DeliveryRecord& a, const DeliveryRecord& b) {
                     return a.broadcast != b.broadcast ? a.broadcast < b.broadcast : a.time_s < b.time_s;
                   });
  result_.wall_s = std::chrono::duration<double>(std::chrono::steady_clock::now() - wall_start).count();
  if (opt_.progress) opt_.progress(to_seconds(now_), expected_total_ ? double(delivered_total_) / double(expected_total_) : 1.0);
  return std::move(result_);
}

void ModelRun::check_learned() {
  std::optional<std::uint64_t> hash;
  bool agreed = true;
  for (NodeId i = 0; i < nodes_.size() && agreed; ++i) {
    if (net_.crashed(i)) continue;
    const std::uint64_t h = nodes_[i]->island_hash();
    agreed = !hash || *hash == h;
    hash = h;
  }
  if (agreed || now_ >= learning_deadline_) {
    result_.islands_agreed = agreed;
    schedule_measured();
    return;
  }
  push(Event{now_ + to_nanos(kLearnedCheck_s), 0, EventType::learned, 0, 0, Channel::tcp, LinkEvent::up, 0, {}});
}

void ModelRun::schedule_measured() {
  const std::uint32_t warm = s_.workload.warmup_broadcasts;
  result_.measured_from_s = to_seconds(now_);
  for (std::uint32_t k = warm; k < warm + s_.workload.broadcasts; ++k)
    push(Event{now_ + to_nanos((k - warm) / s_.workload.rate_per_s), 0, EventType::start_broadcast, 0, 0,
               Channel::tcp, LinkEvent::up, k, {}});
}

void ModelRun::start_broadcast(std::uint32_t index) {
  const std::uint32_t n = s_.total_nodes();
  NodeId origin;
  const auto& origins = s_.workload.origins;
  if (!origins.empty()) {
    origin = origins[index % origins.size()];
  } else {
    origin = static_cast<NodeId>(rng_.below(n));
  }
  // A crashed origin cannot broadcast: the next live node takes its turn.
  for (std::uint32_t k = 0; k < n && net_.crashed(origin); ++k) origin = (origin + 1) % n;
  if (net_.crashed(origin)) {
    ++skipped_;
    return;
  }
  // The islands the origin plans with when measurement begins.
  if (index == s_.workload.warmup_broadcasts) result_.islands = static_cast<std::uint32_t>(nodes_[origin]->island_count());

  wire::Bytes payload(s_.workload.payload_bytes);
  for (std::size_t i = 0; i < payload.size(); ++i) payload[i] = static_cast<std::uint8_t>(index * 31u + i);
  const MessageId id = nodes_[origin]->broadcast(std::move(payload), micros(now_));
  broadcast_index_[id] = index;
  result_.broadcasts.push_back(BroadcastRecord{index, origin, id.seq, to_seconds(now_),
                                               index < s_.workload.warmup_broadcasts});
  delivered_[index].assign(n, false);
  for (NodeId i = 0; i < n; ++i) expected_total_ += net_.crashed(i) ? 0 : 1;
  drain(origin);
}

void ModelRun::crash(NodeId n) {
  if (net_.crashed(n)) return;
  net_.crash(n);
  result_.crashed_at_s[n] = to_seconds(now_);
}

void ModelRun::drain(NodeId n) {
  Node& node = *nodes_[n];
  while (auto d = node.poll_delivery()) {
    auto it = broadcast_index_.find(d->id);
    if (it == broadcast_index_.end()) continue;
    const std::uint32_t b = it->second;
    auto& seen = delivered_[b];
    if (seen[n]) {
      ++result_.duplicates;
      continue;
    }
    seen[n] = true;
    ++delivered_total_;
    if (d->flags & wire::Broadcast::kRepair) ++result_.traffic[b].delivered_by_repair;
    else if (d->flags & wire::Broadcast::kForced) ++result_.traffic[b].delivered_by_forced;
    result_.deliveries.push_back(
        DeliveryRecord{b, n, d->round, to_seconds(now_) - result_.broadcasts[b].start_s, d->channel});
  }
  while (auto t = node.poll_transmit()) send(n, std::move(*t));
  schedule_timer(n);
}

void ModelRun::schedule_timer(NodeId n) {
  const Micros next = nodes_[n]->next_timeout();
  if (next == kNever) return;
  const Nanos at = std::max(now_, next * kNanosPerMicro);
  if (at >= timer_at_[n]) return;  // an earlier (or equal) wake-up is already queued
  timer_at_[n] = at;
  push(Event{at, 0, EventType::timer, n, 0, Channel::tcp, LinkEvent::up, 0, {}});
}

void ModelRun::account(const Transmit& t) {
  // Each message counts for the broadcast it is about (or for control traffic); the frame's own
  // overhead goes with its first message.
  std::size_t overhead = t.wire_size();
  for (const auto& p : t.parts) overhead -= p.bytes;
  for (std::size_t i = 0; i < t.parts.size(); ++i) {
    const TransmitPart& p = t.parts[i];
    Traffic* bucket = &result_.control;
    if (p.subject) {
      auto it = broadcast_index_.find(*p.subject);
      if (it != broadcast_index_.end()) bucket = &result_.traffic[it->second];
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

void ModelRun::send(NodeId from, Transmit&& t) {
  account(t);
  const std::size_t size = t.wire_size();
  auto bytes = std::make_shared<const wire::Bytes>(std::move(t.bytes));
  if (t.channel == Channel::multicast) {
    for (const auto& arrival : net_.multicast(from, size, now_, rng_))
      push(Event{arrival.at, 0, EventType::frame, arrival.to, from, Channel::multicast, LinkEvent::up, 0, bytes});
    return;
  }
  const auto outcome = net_.unicast(from, t.to, size, now_, rng_);
  if (outcome.failed_at) {
    push(Event{*outcome.failed_at, 0, EventType::link, from, t.to, Channel::tcp, LinkEvent::failed, 0, {}});
    return;
  }
  push(Event{outcome.arrival, 0, EventType::frame, t.to, from, Channel::tcp, LinkEvent::up, 0, bytes});
}

}  // namespace

RunResult run_model(const Scenario& scenario, const RunOptions& options) {
  ModelRun run(scenario, options);
  return run.run();
}

}  // namespace mixcast::sim
