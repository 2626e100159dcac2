#include "mixcast/core/node.hpp"

#include <algorithm>
#include <stdexcept>
#include <string>

namespace mixcast {

Node::Node(NodeConfig config, std::shared_ptr<const View> view)
    : cfg_(config), view_(std::move(view)), rng_(config.seed), dedup_(config.dedup_window) {
  if (!view_) throw std::invalid_argument("mixcast::Node: no membership view");
  auto rank = view_->rank_of(cfg_.self);
  if (!rank) throw std::invalid_argument("mixcast::Node: node " + std::to_string(cfg_.self) + " is not in its view");
  self_rank_ = *rank;
}

wire::Bytes Node::hello_frame() const { return wire::encode_frame({wire::Hello{cfg_.self, view_->hash()}}); }

// ---------------------------------------------------------------- inputs

MessageId Node::broadcast(wire::Bytes payload, Micros now) {
  const MessageId id{cfg_.self, next_seq_++};
  ++counters_.broadcasts;
  dedup_.insert(id);
  ++counters_.delivered;
  // The origin is responsible for every other member: positions 1..n-1 of the view rotated at itself.
  TargetSet rest = TargetSet::range(self_rank_, 1, static_cast<std::uint32_t>(view_->size() - 1));
  if (!rest.empty()) {
    active_for(id, 0, payload);
    cover(id, std::move(rest), now);
    release(id);
  }
  deliveries_.push_back(Delivery{id, 0, Channel::local, std::move(payload)});
  return id;
}

wire::DecodeError Node::on_frame(NodeId from, Channel channel, const std::uint8_t* data, std::size_t len,
                                 Micros now) {
  ++counters_.frames_in;
  wire::Decoded d = wire::decode_frame(data, len);
  if (!d.ok()) {
    ++counters_.bad_frames;
    return d.error;
  }
  if (channel == Channel::tcp && from != cfg_.self) suspected_.erase(from);  // it is alive after all
  for (auto& m : d.messages) handle(from, channel, std::move(m), now);
  return wire::DecodeError::none;
}

void Node::on_link_event(NodeId peer, LinkEvent event, Micros now) {
  if (event == LinkEvent::up) {
    suspected_.erase(peer);
    return;
  }
  ++counters_.link_failures;
  suspected_.insert(peer);
  std::vector<std::uint64_t> tokens;
  for (const auto& [token, p] : pending_)
    if (p.peer == peer) tokens.push_back(token);
  std::sort(tokens.begin(), tokens.end());  // deterministic order
  for (auto token : tokens) fail_pending(token, now);
}

void Node::on_timeout(Micros now) {
  while (!deadlines_.empty() && deadlines_.top().first <= now) {
    const auto token = deadlines_.top().second;
    deadlines_.pop();
    auto it = pending_.find(token);
    if (it == pending_.end() || it->second.deadline > now) continue;  // acked, or re-armed later
    ++counters_.ack_timeouts;
    suspected_.insert(it->second.peer);
    fail_pending(token, now);
  }
}

// ---------------------------------------------------------------- outputs

std::optional<Transmit> Node::poll_transmit() {
  if (out_head_ == out_.size()) return std::nullopt;
  Outgoing& o = out_[out_head_];
  auto open = open_batch_.find(o.to);
  if (open != open_batch_.end() && open->second == out_head_) open_batch_.erase(open);
  Transmit t;
  t.to = o.to;
  t.channel = o.channel;
  t.messages = static_cast<std::uint32_t>(o.frame.message_count());
  t.bytes = o.frame.take();
  t.round = o.round;
  t.subject = o.subject;
  t.kind = o.kind;
  if (++out_head_ == out_.size()) {
    out_.clear();
    out_head_ = 0;
  }
  return t;
}

std::optional<Delivery> Node::poll_delivery() {
  if (delivery_head_ == deliveries_.size()) return std::nullopt;
  Delivery d = std::move(deliveries_[delivery_head_]);
  if (++delivery_head_ == deliveries_.size()) {
    deliveries_.clear();
    delivery_head_ = 0;
  }
  return d;
}

Micros Node::next_timeout() {
  while (!deadlines_.empty()) {
    auto it = pending_.find(deadlines_.top().second);
    if (it != pending_.end() && it->second.deadline == deadlines_.top().first) return deadlines_.top().first;
    deadlines_.pop();  // stale: acked or re-armed
  }
  return kNever;
}

// ---------------------------------------------------------------- protocol

void Node::handle(NodeId from, Channel channel, wire::Message&& m, Micros now) {
  if (auto* b = std::get_if<wire::Broadcast>(&m)) return handle_broadcast(from, channel, std::move(*b), now);
  if (auto* a = std::get_if<wire::Ack>(&m)) return handle_ack(from, *a, now);
  if (auto* h = std::get_if<wire::Hello>(&m)) {
    if (h->view_hash != view_->hash()) foreign_view_.insert(from);
    else foreign_view_.erase(from);
  }
  // Multicast-related messages are ignored in TCP mode.
}

void Node::handle_broadcast(NodeId from, Channel channel, wire::Broadcast&& b, Micros now) {
  const MessageId id{b.origin, b.seq};
  switch (dedup_.insert(id)) {
    case SeenResult::fresh:
      ++counters_.delivered;
      deliveries_.push_back(Delivery{id, b.round, channel, b.payload});
      break;
    case SeenResult::duplicate: ++counters_.duplicates; break;
    case SeenResult::too_old: ++counters_.too_old; break;
  }
  const bool delegated = b.targets.kind != wire::Targets::Kind::none;
  if (channel == Channel::tcp && delegated) {
    // Responsibility is honoured even for a duplicate: the sender may be re-delegating a failed branch.
    TargetSet set;
    const bool understood = interpret_targets(b, set);
    enqueue(from, Channel::tcp,
            wire::Ack{b.origin, b.seq, understood ? wire::AckStatus::accepted : wire::AckStatus::view_mismatch,
                      view_->hash()},
            0, id, TrafficKind::ack);
    if (understood && set.size() > 1) {
      active_for(id, b.round, b.payload);
      cover(id, set.slice(1, set.size()), now);
      release(id);
    }
  }
}

bool Node::interpret_targets(const wire::Broadcast& b, TargetSet& out) const {
  const auto& t = b.targets;
  if (t.kind == wire::Targets::Kind::id_list) {
    std::vector<NodeId> ids = t.ids;
    if (ids.front() != cfg_.self) ids.insert(ids.begin(), cfg_.self);  // tolerate a sender that left us out
    out = TargetSet::list(std::move(ids));
    return true;
  }
  if (t.view_hash != view_->hash()) return false;
  auto origin_rank = view_->rank_of(b.origin);
  if (!origin_rank || std::uint64_t{t.lo} + t.count > view_->size()) return false;
  out = TargetSet::range(*origin_rank, t.lo, t.count);
  return out.at(*view_, 0) == cfg_.self;
}

Node::Active& Node::active_for(const MessageId& id, std::uint32_t round, const wire::Bytes& payload) {
  auto [it, inserted] = active_.try_emplace(id);
  if (inserted) {
    it->second.payload = std::make_shared<const wire::Bytes>(payload);
    it->second.round = round;
  }
  ++it->second.pending;  // held while the caller works on it; release() drops it
  return it->second;
}

void Node::release(const MessageId& id) {
  auto it = active_.find(id);
  if (it != active_.end() && --it->second.pending == 0) active_.erase(it);
}

void Node::cover(const MessageId& id, TargetSet rest, Micros now) {
  while (!rest.empty()) {
    const std::size_t share = delegate_share(rest.size());
    TargetSet handed = rest.slice(rest.size() - share, rest.size());
    rest = rest.slice(0, rest.size() - share);
    delegate(id, std::move(handed), now);
  }
}

void Node::delegate(const MessageId& id, TargetSet set, Micros now) {
  const NodeId head = set.at(*view_, 0);
  if (head == cfg_.self || suspected_.count(head)) {
    // Known dead (or ourselves): take its share over directly.
    if (head != cfg_.self) ++counters_.redelegations;
    cover(id, set.slice(1, set.size()), now);
    return;
  }
  Active& a = active_.at(id);
  ++a.sends;
  wire::Broadcast b;
  b.origin = id.origin;
  b.seq = id.seq;
  b.round = a.round + a.sends;
  b.targets = set.to_wire(*view_, !foreign_view_.count(head));
  b.payload = *a.payload;
  enqueue(head, Channel::tcp, b, b.round, id, TrafficKind::data);
  if (set.size() > 1) {
    ++counters_.delegations;
    ++a.pending;
    const std::uint64_t token = next_token_++;
    const Micros deadline = now + cfg_.ack_timeout;
    pending_.emplace(token, Pending{head, id, std::move(set), deadline});
    awaiting_ack_[AckKey{head, id.origin, id.seq}].push_back(token);
    deadlines_.emplace(deadline, token);
  }
}

void Node::handle_ack(NodeId from, const wire::Ack& ack, Micros now) {
  ++counters_.acks_received;
  auto it = awaiting_ack_.find(AckKey{from, ack.origin, ack.seq});
  if (it == awaiting_ack_.end()) return;  // late ack of a delegation already handed elsewhere
  const std::uint64_t token = it->second.front();
  it->second.erase(it->second.begin());
  if (it->second.empty()) awaiting_ack_.erase(it);
  auto p = pending_.find(token);
  if (p == pending_.end()) return;
  if (ack.status == wire::AckStatus::view_mismatch && !foreign_view_.count(from)) {
    // The peer holds another view: resend the same delegation as an explicit id list.
    ++counters_.view_mismatches;
    foreign_view_.insert(from);
    Pending pend = std::move(p->second);
    pending_.erase(p);
    delegate(pend.id, std::move(pend.set), now);  // takes a new hold before ours is released
    release(pend.id);
    return;
  }
  const MessageId id = p->second.id;
  pending_.erase(p);
  release(id);
}

void Node::fail_pending(std::uint64_t token, Micros now) {
  auto p = pending_.find(token);
  if (p == pending_.end()) return;
  Pending pend = std::move(p->second);
  pending_.erase(p);
  auto key = AckKey{pend.peer, pend.id.origin, pend.id.seq};
  auto w = awaiting_ack_.find(key);
  if (w != awaiting_ack_.end()) {
    auto& v = w->second;
    v.erase(std::remove(v.begin(), v.end(), token), v.end());
    if (v.empty()) awaiting_ack_.erase(w);
  }
  ++counters_.redelegations;
  // The failed delegate's share, minus itself, becomes ours again. Our hold keeps Active alive.
  cover(pend.id, pend.set.slice(1, pend.set.size()), now);
  release(pend.id);
}

void Node::enqueue(NodeId to, Channel channel, const wire::Message& m, std::uint32_t round,
                   std::optional<MessageId> subject, TrafficKind kind) {
  auto open = open_batch_.find(to);
  if (open != open_batch_.end()) {
    Outgoing& o = out_[open->second];
    if (o.channel == channel && o.frame.size() < cfg_.max_frame_bytes) {
      o.frame.add(m);
      return;
    }
    open_batch_.erase(open);
  }
  out_.push_back(Outgoing{to, channel, wire::FrameBuilder{}, round, subject, kind});
  out_.back().frame.add(m);
  if (channel == Channel::tcp) open_batch_[to] = out_.size() - 1;
}

}  // namespace mixcast
