// The model engine: a deterministic discrete-event network. It knows links, latencies, bandwidth,
// loss, crashes and NAT reachability; it knows nothing of the protocol beyond the core's API.
#include "mixcast/sim/model_engine.hpp"

#include <algorithm>
#include <chrono>
#include <cinttypes>
#include <cmath>
#include <cstdio>
#include <limits>
#include <map>
#include <memory>
#include <optional>
#include <queue>
#include <unordered_map>

#include "mixcast/core/node.hpp"
#include "mixcast/core/rng.hpp"
#include "mixcast/sim/network_model.hpp"
#include "mixcast/sim/run_book.hpp"

namespace mixcast::sim {
namespace {

using Nanos = std::int64_t;
constexpr Nanos kNanosPerMicro = 1000;
Nanos to_nanos(double s) { return static_cast<Nanos>(std::llround(s * 1e9)); }
double to_seconds(Nanos t) { return static_cast<double>(t) / 1e9; }

enum class EventType : std::uint8_t { crash = 0, start_broadcast = 1, frame = 2, link = 3, timer = 4, learned = 5, restart = 6,
                                      held_expired = 7, release_held = 8 };

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
  bool carries_broadcast = false;  // counted in the run book's frames in flight
  std::uint32_t life = 0;  // frames and link events: the receiving node's life they were meant for
  bool operator>(const Event& o) const { return at != o.at ? at > o.at : order > o.order; }
};

class ModelRun {
 public:
  ModelRun(const Scenario& s, const RunOptions& opt)
      : s_(s), opt_(opt), book_(s, "model"), net_(s), rng_(s.seed ^ 0x6e6574776f726bULL) {}

  RunResult run();

 private:
  void push(EventType type, Nanos at, NodeId node = 0, std::uint32_t index = 0) {
    push(Event{at, 0, type, node, 0, Channel::tcp, LinkEvent::up, index, {}});
  }
  void push(Event e) {
    e.order = order_++;
    queue_.push(std::move(e));
  }
  void drain(NodeId n);
  void send(NodeId from, Transmit&& t);
  void schedule_timer(NodeId n);
  void check_learned();
  void schedule_measured();
  Micros micros(Nanos t) const { return t / kNanosPerMicro; }
  // --trace: one line per thing that happened, prefixed with the simulated time.
  void trace(const std::string& line) const {
    if (!opt_.trace) return;
    char at[32];
    std::snprintf(at, sizeof at, "%.6f ", to_seconds(now_));
    *opt_.trace << at << line << '\n';
  }
  void trace_frame(const char* what, NodeId a, const char* arrow, NodeId b, Channel c, const wire::Bytes& bytes) const {
    if (!opt_.trace) return;
    trace(std::string(what) + " " + std::to_string(a) + arrow + (b == kMulticastGroup ? "group" : std::to_string(b)) +
          " " + std::string(to_string(c)) + " " + std::to_string(bytes.size()) + "B: " +
          wire::describe_frame(bytes.data(), bytes.size()));
  }

  const Scenario& s_;
  const RunOptions& opt_;
  RunBook book_;
  NetworkModel net_;
  Rng rng_;  // the network's losses
  std::vector<std::unique_ptr<Node>> nodes_;
  std::vector<std::unique_ptr<Node>> retired_;  // earlier lives of restarted nodes
  // Frames for a NATed peer that has no connection to the sender yet, by (sender, receiver): they
  // leave once the peer connects, or fail the sender's link after nat_wait_ (as the other engines).
  struct Held {
    Nanos deadline;
    std::shared_ptr<const wire::Bytes> bytes;
    bool data;
    std::uint32_t life;  // the receiver's
  };
  std::map<std::pair<NodeId, NodeId>, std::vector<Held>> held_;
  Nanos nat_wait_ = 0;
  void release_held(NodeId from, NodeId to);
  void expire_held(NodeId from, NodeId to);
  std::vector<Nanos> timer_at_;
  std::priority_queue<Event, std::vector<Event>, std::greater<>> queue_;
  std::uint64_t order_ = 0;
  Nanos now_ = 0;
};

RunResult ModelRun::run() {
  const auto wall_start = std::chrono::steady_clock::now();
  const std::uint32_t n = s_.total_nodes();
  nodes_ = book_.make_nodes();
  nat_wait_ = std::max<Nanos>(2'000'000'000, 2 * nat_keepalive_interval(node_config(s_)) * kNanosPerMicro);
  timer_at_.assign(n, std::numeric_limits<Nanos>::max());
  for (NodeId i = 0; i < n; ++i) drain(i);  // links NATed nodes open at start, first timers

  for (const auto& c : book_.plan_crashes()) {
    push(EventType::crash, to_nanos(c.at_s), c.node);
    if (c.restart_after_s) push(EventType::restart, to_nanos(c.at_s + *c.restart_after_s), c.node);
  }
  const auto warm = book_.warmup_starts();
  for (std::uint32_t k = 0; k < warm.size(); ++k) push(EventType::start_broadcast, to_nanos(warm[k]), 0, k);
  if (book_.waits_for_islands()) {
    push(EventType::learned, to_nanos(book_.measured_earliest_s()));
  } else {
    now_ = to_nanos(book_.measured_earliest_s());
    schedule_measured();
    now_ = 0;
  }

  const Nanos limit = to_nanos(s_.time_limit_s);
  // Once every broadcast has started and every live node delivered it, run a little longer so
  // trailing acks and repairs are counted, then stop (mixed mode's periodic traffic never ends).
  const Nanos settle = 2 * to_nanos(s_.protocol.ack_timeout_s);
  Nanos stop_at = limit;
  std::uint64_t events = 0;
  book_.ended(EndReason::idle);  // the queue ran dry
  while (!queue_.empty()) {
    Event e = queue_.top();
    if (e.at > std::min(limit, stop_at)) {
      book_.ended(stop_at < limit ? EndReason::complete : EndReason::time_limit);
      break;
    }
    if (stop_at == limit && book_.complete()) stop_at = now_ + settle;
    if (stop_at == limit && book_.quiet(to_seconds(e.at), nodes_)) {
      book_.ended(EndReason::quiet);  // nothing more can be delivered: do not wait for the time limit
      break;
    }
    queue_.pop();
    now_ = e.at;
    ++events;
    if (e.carries_broadcast) book_.in_flight(-1);
    switch (e.type) {
      case EventType::crash:
        if (!net_.crashed(e.node)) {
          trace("crash " + std::to_string(e.node));
          for (const auto& closed : net_.crash(e.node, now_))
            if (!net_.crashed(closed.peer))
              push(Event{closed.at, 0, EventType::link, closed.peer, e.node, Channel::tcp, LinkEvent::failed, 0, {},
                         false, book_.life(closed.peer)});
          book_.crashed(e.node, to_seconds(now_));
          for (auto it = held_.begin(); it != held_.end();) {  // what it had not sent yet dies with it
            if (it->first.first != e.node) {
              ++it;
              continue;
            }
            for (const auto& h : it->second)
              if (h.data) book_.in_flight(-1);
            it = held_.erase(it);
          }
        }
        break;
      case EventType::restart:
        // A node still down comes back (crash entries may name one node more than once).
        if (net_.crashed(e.node)) {
          trace("restart " + std::to_string(e.node));
          net_.restart(e.node);
          retired_.push_back(book_.restarted(e.node, nodes_, to_seconds(now_)));
          timer_at_[e.node] = std::numeric_limits<Nanos>::max();
          drain(e.node);  // a NATed node opens its links to its gateways again
        }
        break;
      case EventType::start_broadcast:
        if (auto origin = book_.start_broadcast(e.index, nodes_, to_seconds(now_))) {
          trace("start broadcast " + std::to_string(e.index) + " at " + std::to_string(*origin));
          drain(*origin);
        }
        break;
      case EventType::learned: check_learned(); break;
      case EventType::held_expired: expire_held(e.node, e.peer); break;
      case EventType::release_held: release_held(e.node, e.peer); break;
      case EventType::frame:
        if (net_.crashed(e.node) || e.life != book_.life(e.node)) {
          trace("refused " + std::to_string(e.node) + "<-" + std::to_string(e.peer) + " (down or restarted)");
          // The peer's kernel answers with a reset: the sender learns the link failed.
          if (e.channel == Channel::tcp && !net_.crashed(e.peer))
            push(Event{now_ + net_.latency(e.node, e.peer), 0, EventType::link, e.peer, e.node, Channel::tcp,
                       LinkEvent::failed, 0, {}, false, book_.life(e.peer)});
          break;
        }
        if (e.channel == Channel::multicast && !net_.hears_multicast(e.peer, e.node, now_)) break;  // broke in flight
        trace_frame("recv", e.node, "<-", e.peer, e.channel, *e.bytes);
        if (auto err = nodes_[e.node]->on_frame(e.peer, e.channel, e.bytes->data(), e.bytes->size(), micros(now_));
            err != wire::DecodeError::none)
          book_.bad_frame();
        drain(e.node);
        break;
      case EventType::link:
        if (net_.crashed(e.node) || e.life != book_.life(e.node)) break;  // about a connection of an earlier life
        trace("link " + std::to_string(e.node) + "-" + std::to_string(e.peer) +
              (e.link == LinkEvent::up ? " up" : e.link == LinkEvent::down ? " down" : " failed"));
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
    if (opt_.progress && (events & 0xFFFF) == 0) opt_.progress(to_seconds(now_), book_.done_fraction(), events);
  }

  if (queue_.empty() && book_.complete()) book_.ended(EndReason::complete);
  const double wall_s = std::chrono::duration<double>(std::chrono::steady_clock::now() - wall_start).count();
  if (opt_.progress) opt_.progress(to_seconds(now_), book_.complete() ? 1.0 : book_.done_fraction(), events);
  return book_.finish(nodes_, events, to_seconds(now_), wall_s);
}

void ModelRun::check_learned() {
  if (book_.islands_settled(nodes_, to_seconds(now_))) {
    schedule_measured();
    return;
  }
  push(EventType::learned, now_ + to_nanos(RunBook::kLearnedCheck_s));
}

void ModelRun::schedule_measured() {
  for (const auto& [index, at_s] : book_.measured_starts(to_seconds(now_)))
    push(EventType::start_broadcast, to_nanos(at_s), 0, index);
}

void ModelRun::drain(NodeId n) {
  book_.take_deliveries(n, *nodes_[n], to_seconds(now_));
  while (auto t = nodes_[n]->poll_transmit()) send(n, std::move(*t));
  schedule_timer(n);
}

void ModelRun::schedule_timer(NodeId n) {
  const Micros next = nodes_[n]->next_timeout();
  if (next == kNever) return;
  const Nanos at = std::max(now_, next * kNanosPerMicro);
  if (at >= timer_at_[n]) return;  // an earlier (or equal) wake-up is already queued
  timer_at_[n] = at;
  push(EventType::timer, at, n);
}

void ModelRun::send(NodeId from, Transmit&& t) {
  book_.account(t, to_seconds(now_));
  trace_frame("send", from, "->", t.to, t.channel, t.bytes);
  const std::size_t size = t.wire_size();
  bool data = false;
  for (const auto& p : t.parts)
    data = data || (p.subject && p.kind != TrafficKind::ack && book_.broadcast_index(*p.subject));
  auto bytes = std::make_shared<const wire::Bytes>(std::move(t.bytes));
  auto frame = [&](Nanos at, NodeId to, Channel channel) {
    if (data) book_.in_flight(+1);
    push(Event{at, 0, EventType::frame, to, from, channel, LinkEvent::up, 0, bytes, data, book_.life(to)});
  };
  if (t.channel == Channel::multicast) {
    for (const auto& arrival : net_.multicast(from, size, now_, rng_)) frame(arrival.at, arrival.to, Channel::multicast);
    return;
  }
  const auto outcome = net_.unicast(from, t.to, size, now_, rng_);
  if (outcome.held) {
    trace("held " + std::to_string(from) + "->" + std::to_string(t.to) + " (waits for the NATed peer to connect)");
    auto& waiting = held_[{from, t.to}];
    if (data) book_.in_flight(+1);  // on its way, as far as the run's end is concerned
    waiting.push_back(Held{now_ + nat_wait_, bytes, data, book_.life(t.to)});
    push(Event{now_ + nat_wait_, 0, EventType::held_expired, from, t.to, Channel::tcp, LinkEvent::failed, 0, {}});
    return;
  }
  if (outcome.failed_at) {
    trace("unreachable " + std::to_string(from) + "->" + std::to_string(t.to));
    push(Event{*outcome.failed_at, 0, EventType::link, from, t.to, Channel::tcp, LinkEvent::failed, 0, {}, false,
               book_.life(from)});
    return;
  }
  if (outcome.connected_at)  // as the other engines, the sender hears its new link is up
    push(Event{*outcome.connected_at, 0, EventType::link, from, t.to, Channel::tcp, LinkEvent::up, 0, {}, false,
               book_.life(from)});
  frame(outcome.arrival, t.to, Channel::tcp);
  // A NATed node's connection carries what waited for it, once the connection is there.
  if (held_.count({t.to, from}))
    push(Event{outcome.arrival, 0, EventType::release_held, t.to, from, Channel::tcp, LinkEvent::up, 0, {}});
}

void ModelRun::release_held(NodeId from, NodeId to) {
  auto it = held_.find({from, to});
  if (it == held_.end()) return;
  std::vector<Held> waiting = std::move(it->second);
  held_.erase(it);
  for (auto& h : waiting) {
    if (h.data) book_.in_flight(-1);
    const auto outcome = net_.unicast(from, to, h.bytes->size(), now_, rng_);
    if (h.data) book_.in_flight(+1);
    push(Event{outcome.arrival, 0, EventType::frame, to, from, Channel::tcp, LinkEvent::up, 0, std::move(h.bytes), h.data,
               h.life});
  }
}

void ModelRun::expire_held(NodeId from, NodeId to) {
  auto it = held_.find({from, to});
  if (it == held_.end()) return;
  auto& waiting = it->second;
  const auto kept = std::stable_partition(waiting.begin(), waiting.end(), [&](const Held& h) { return h.deadline > now_; });
  if (kept == waiting.end()) return;
  for (auto h = kept; h != waiting.end(); ++h)
    if (h->data) book_.in_flight(-1);
  waiting.erase(kept, waiting.end());
  if (waiting.empty()) held_.erase(it);
  // The peer never connected: the sender learns its link failed.
  trace("held frames expired " + std::to_string(from) + "->" + std::to_string(to));
  nodes_[from]->on_link_event(to, LinkEvent::failed, micros(now_));
  drain(from);
}

}  // namespace

RunResult run_model(const Scenario& scenario, const RunOptions& options) {
  ModelRun run(scenario, options);
  return run.run();
}

}  // namespace mixcast::sim
