// A minimal deterministic network for core tests: unit latency, FIFO. A crashed node answers frames
// with a link failure (its host resets the connection); a silent node swallows them and answers
// nothing (a hung process, a black-holed route): only the missing ack reveals it. Just enough to
// drive Nodes through the public sans-I/O API.
#pragma once
#include <map>
#include <memory>
#include <queue>
#include <set>
#include <vector>

#include "mixcast/core/node.hpp"

namespace mixcast::testing {

struct Received {
  NodeId node;
  MessageId id;
  std::uint32_t round;
  Channel channel;
  wire::Bytes payload;
  Micros at = 0;  // when it was delivered
};

class Harness {
 public:
  explicit Harness(std::size_t n, NodeConfig base = {}) {
    std::vector<NodeId> ids;
    for (NodeId i = 0; i < n; ++i) ids.push_back(i);
    auto view = std::make_shared<const View>(ids);
    for (NodeId i = 0; i < n; ++i) add(i, view, base);
  }
  Harness(std::vector<std::shared_ptr<const View>> views, NodeConfig base = {}) {
    for (NodeId i = 0; i < views.size(); ++i) add(i, views[i], base);
  }

  Node& node(NodeId i) { return *nodes_[i]; }
  std::size_t size() const { return nodes_.size(); }
  void crash(NodeId i) { crashed_.insert(i); }
  // Like crash(), but frames to the node vanish without a link failure.
  void silence(NodeId i) { crashed_.insert(i), silent_.insert(i); }
  bool crashed(NodeId i) const { return crashed_.count(i) != 0; }
  std::size_t dropped_silently() const { return dropped_silently_; }
  Micros now() const { return now_; }

  MessageId broadcast(NodeId origin, wire::Bytes payload = {1, 2, 3}) {
    auto id = nodes_[origin]->broadcast(std::move(payload), now_);
    drain(origin);
    return id;
  }

  // Lets a test queue several inputs at one node before its outputs are pulled.
  void flush(NodeId i) { drain(i); }

  // Runs until nothing is in flight and no timer is due; returns false if it did not settle.
  bool run(std::size_t max_steps = 50'000'000) {
    for (std::size_t step = 0; step < max_steps; ++step) {
      if (!queue_.empty()) {
        auto f = queue_.top();
        queue_.pop();
        now_ = std::max(now_, f.at);
        deliver(f);
        continue;
      }
      Micros next = kNever;
      NodeId who = 0;
      for (NodeId i = 0; i < nodes_.size(); ++i) {
        if (crashed(i)) continue;
        Micros t = nodes_[i]->next_timeout();
        if (t < next) next = t, who = i;
      }
      if (next == kNever) return true;
      now_ = std::max(now_, next);
      nodes_[who]->on_timeout(now_);
      drain(who);
    }
    return false;
  }

  std::vector<Received> received;      // every delivery, in order
  std::vector<wire::Broadcast> sent;   // every broadcast message put on the wire
  std::size_t frames = 0;

 private:
  struct Frame {
    Micros at;
    std::uint64_t order;
    NodeId from, to;
    Channel channel;
    std::shared_ptr<wire::Bytes> bytes;
    bool failure;  // a link-failure notice for `to` about `from`
    bool operator>(const Frame& o) const { return at != o.at ? at > o.at : order > o.order; }
  };

  void add(NodeId i, std::shared_ptr<const View> view, NodeConfig base) {
    base.self = i;
    base.seed = 1000 + i;
    nodes_.push_back(std::make_unique<Node>(base, std::move(view)));
  }

  void deliver(const Frame& f) {
    if (crashed(f.to)) {
      if (silent_.count(f.to)) {
        if (!f.failure) ++dropped_silently_;
        return;
      }
      if (!f.failure) queue_.push(Frame{now_ + 1, order_++, f.to, f.from, Channel::tcp, nullptr, true});
      return;
    }
    if (f.failure) {
      nodes_[f.to]->on_link_event(f.from, LinkEvent::failed, now_);
    } else {
      nodes_[f.to]->on_frame(f.from, f.channel, f.bytes->data(), f.bytes->size(), now_);
    }
    drain(f.to);
  }

  void drain(NodeId i) {
    while (auto d = nodes_[i]->poll_delivery()) received.push_back({i, d->id, d->round, d->channel, d->payload, now_});
    while (auto t = nodes_[i]->poll_transmit()) {
      ++frames;
      auto decoded = wire::decode_frame(t->bytes);
      for (auto& m : decoded.messages)
        if (auto* b = std::get_if<wire::Broadcast>(&m)) sent.push_back(*b);
      queue_.push(Frame{now_ + 1, order_++, i, t->to, t->channel,
                        std::make_shared<wire::Bytes>(std::move(t->bytes)), false});
    }
  }

  std::vector<std::unique_ptr<Node>> nodes_;
  std::set<NodeId> crashed_;
  std::set<NodeId> silent_;  // crashed without link failures
  std::size_t dropped_silently_ = 0;
  std::priority_queue<Frame, std::vector<Frame>, std::greater<>> queue_;
  std::uint64_t order_ = 0;
  Micros now_ = 0;
};

}  // namespace mixcast::testing
