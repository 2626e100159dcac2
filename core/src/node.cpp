#include "mixcast/core/node.hpp"

#include <algorithm>
#include <cmath>
#include <stdexcept>
#include <string>

namespace mixcast {
namespace {

// Targets naming one node: a delegation with nothing to hand on, sent where an ack is wanted.
wire::Targets just(NodeId node) {
  wire::Targets t;
  t.kind = wire::Targets::Kind::id_list;
  t.ids = {node};
  return t;
}

}  // namespace

Node::Node(NodeConfig config, std::shared_ptr<const View> view, std::shared_ptr<IslandCache> island_cache)
    : cfg_(config),
      view_(view ? std::move(view) : throw std::invalid_argument("mixcast::Node: no membership view")),
      rng_(config.seed),
      dedup_(config.dedup_window),
      reach_(config.reach_expiry),
      islands_(view_, std::move(island_cache)) {
  auto rank = view_->rank_of(cfg_.self);
  if (!rank) throw std::invalid_argument("mixcast::Node: node " + std::to_string(cfg_.self) + " is not in its view");
  self_rank_ = *rank;
  if (cfg_.confirm_interval <= 0 || cfg_.beacon_interval <= 0 || cfg_.reach_expiry <= 0 || cfg_.ack_timeout <= 0)
    throw std::invalid_argument("mixcast::Node: intervals and timeouts must be positive");
  // A NATed node opens its links to the gateways now: nobody outside can open them.
  if (view_->behind_nat(cfg_.self)) {
    hello_gateways();
    next_keepalive_ = nat_keepalive_interval(cfg_);
  }
  // Spread the nodes' maintenance ticks so they do not all fire together.
  if (mixed()) next_tick_ = static_cast<Micros>(rng_.below(static_cast<std::uint64_t>(cfg_.confirm_interval)));
}

std::uint64_t Node::island_hash() const { return mixed() ? islands_.hash() : view_->hash(); }

void Node::hello_gateways() {
  for (NodeId g : view_->gateways(cfg_.self, cfg_.nat_links))
    enqueue(g, Channel::tcp, wire::Hello{cfg_.self, view_->hash(), cfg_.incarnation}, 0, std::nullopt, TrafficKind::control);
}

wire::Bytes Node::hello_frame() const { return wire::encode_frame({wire::Hello{cfg_.self, view_->hash(), cfg_.incarnation}}); }

std::size_t Node::island_count() const {
  if (!mixed()) return view_->size();
  islands_.rebuild();
  return islands_.size();
}

// ---------------------------------------------------------------- inputs

MessageId Node::broadcast(wire::Bytes payload, Micros now) {
  ++counters_.broadcasts;
  return start(std::move(payload), 0, now);
}

MessageId Node::start(wire::Bytes payload, std::uint8_t flags, Micros now) {
  const bool control = flags & wire::Broadcast::kControl;
  const MessageId id{cfg_.self, control ? (kControlSeqBit | next_control_seq_++) : next_seq_++, cfg_.incarnation};
  if (!control) dedup_.insert(id);  // our own announcement is already claimed (announce_island)
  hold(id, 0, flags, payload);
  cover_everyone(id, now);
  release(id);
  if (!control) {
    ++counters_.delivered;
    deliveries_.push_back(Delivery{id, 0, Channel::local, 0, std::move(payload)});
  }
  return id;
}

void Node::cover_everyone(const MessageId& id, Micros now) {
  if (id.origin != cfg_.self) {
    // A rescue: every member but us, in ranges of the origin's rotation (receivers read ranges
    // rotated at the message's origin; ours would look like another view to them).
    if (mixed()) {
      islands_.rebuild();
      const auto k = static_cast<std::uint32_t>(islands_.size());
      const std::uint32_t io = islands_.island_of(id.origin);
      const std::uint32_t q = (islands_.island_of(cfg_.self) + k - io) % k;  // our island's position
      if (q + 1 < k) cover(id, TargetSet::island_range(io, q + 1, k - q - 1, k), now);
      if (q > 0) cover(id, TargetSet::island_range(io, 0, q, k), now);
      cover_own_island(id, islands_.island(islands_.island_of(cfg_.self)), now);
    } else if (auto origin_rank = view_->rank_of(id.origin)) {
      const auto n = static_cast<std::uint32_t>(view_->size());
      const std::uint32_t p = (self_rank_ + n - *origin_rank) % n;  // our position; 0 is the origin
      if (p + 1 < n) cover(id, TargetSet::range(*origin_rank, p + 1, n - p - 1), now);
      if (p > 1) cover(id, TargetSet::range(*origin_rank, 1, p - 1), now);
    }
    return;
  }
  if (mixed()) {
    // TCP tree over the other islands first, then one multicast into our own island.
    islands_.rebuild();
    const auto islands = static_cast<std::uint32_t>(islands_.size());
    cover(id, TargetSet::island_range(islands_.island_of(cfg_.self), 1, islands - 1, islands), now);
    cover_own_island(id, islands_.island(islands_.island_of(cfg_.self)), now);
  } else {
    // Every other member: positions 1..n-1 of the view rotated at ourselves. Members of our own NAT
    // ranked just below us sit at the end, in the first delegate's share: an outsider that could
    // reach them only through a gateway. They get their own delegation, first, inside the NAT.
    const auto others = static_cast<std::uint32_t>(view_->size() - 1);
    std::uint32_t mates_below = 0;
    while (mates_below < others && view_->same_nat(cfg_.self, view_->at_position(self_rank_, others - mates_below)))
      ++mates_below;
    if (mates_below > 0 && mates_below < others)
      delegate(id, TargetSet::range(self_rank_, others - mates_below + 1, mates_below), now);
    else
      mates_below = 0;
    cover(id, TargetSet::range(self_rank_, 1, others - mates_below), now);
  }
}

void Node::rescue(const MessageId& id, Micros now) {
  auto it = refused_.find(id);
  if (it == refused_.end()) return;
  const Refused r = std::move(it->second);
  refused_.erase(it);
  ++counters_.rescues;
  hold(id, r.round, r.flags, *r.payload);
  cover_everyone(id, now);
  release(id);
}

wire::DecodeError Node::on_frame(NodeId from, Channel channel, const std::uint8_t* data, std::size_t len,
                                 Micros now) {
  ++counters_.frames_in;
  wire::Decoded d = wire::decode_frame(data, len);
  if (!d.ok()) {
    ++counters_.bad_frames;
    return d.error;
  }
  if (channel == Channel::multicast) {
    // A multicast datagram must start with its header; the header, not the engine, names the sender.
    const auto* h = std::get_if<wire::McastHeader>(&d.messages.front());
    if (!h || h->sender == cfg_.self || !view_->contains(h->sender)) {
      ++counters_.bad_frames;
      return wire::DecodeError::bad_value;
    }
    from = h->sender;
    if (mixed()) {
      const auto heard = reach_.heard(from, h->incarnation, h->mseq, now);
      if (!heard.current) {
        // A late datagram of the sender's previous life: its broadcasts are still news, its stream is not.
        for (auto& m : d.messages)
          if (std::holds_alternative<wire::Broadcast>(m)) handle(from, channel, std::move(m), now);
        return wire::DecodeError::none;
      }
      if (auto gap = heard.gap) {
        ++counters_.repair_requests;
        enqueue(from, Channel::tcp, wire::RepairRequest{from, gap->first, gap->last, h->incarnation}, 0,
                std::nullopt, TrafficKind::control);
        auto& s = reach_.heard_from()[from];
        if (s.asked_at == 0 || now - s.asked_at > keep_for()) s.asked_from = gap->first;
        else s.asked_from = std::min(s.asked_from, gap->first);
        s.asked_at = now;
      }
      for (const auto& m : d.messages)
        if (const auto* b = std::get_if<wire::Broadcast>(&m)) keep(from, h->incarnation, h->mseq, *b, now);
    }
  } else if (from != cfg_.self) {
    suspected_.erase(from);  // it is alive after all
    progress_[from].last_frame = now;
  }
  for (auto& m : d.messages) handle(from, channel, std::move(m), now);
  return wire::DecodeError::none;
}

void Node::on_link_event(NodeId peer, LinkEvent event, Micros now) {
  if (event == LinkEvent::up) {
    suspected_.erase(peer);
    progress_[peer].link_up_at = now;
    return;
  }
  ++counters_.link_failures;
  suspected_.insert(peer);
  std::vector<std::uint64_t> tokens;
  for (const auto& [token, p] : pending_)
    if (p.peer == peer) tokens.push_back(token);
  std::sort(tokens.begin(), tokens.end());  // deterministic order
  for (auto token : tokens) fail_pending(token, now);
  std::vector<MessageId> orphans;
  for (const auto& [id, r] : refused_)
    if (r.sender == peer) orphans.push_back(id);
  for (const auto& id : orphans) rescue(id, now);
  rescue_watched(peer, now);
}

void Node::on_timeout(Micros now) {
  while (!deadlines_.empty() && deadlines_.top().first <= now) {
    const auto token = deadlines_.top().second;
    deadlines_.pop();
    auto it = pending_.find(token);
    if (it == pending_.end() || it->second.deadline > now) continue;  // acked, or re-armed later
    if (still_coming(it->second, token, now)) {
      Pending& p = it->second;
      ++p.extensions;
      ++counters_.ack_waits;
      p.waiting_since = now;
      const Micros wait = p.accepted ? cover_wait(p) : ack_wait(p.peer);
      p.deadline = now + wait * (Micros{1} << std::min<std::uint32_t>(p.extensions, 3));
      deadlines_.emplace(p.deadline, token);
      continue;
    }
    if (it->second.accepted) {
      // It took the delegation, then fell silent before its subtree was covered: it may have died
      // with frames unsent. Hand the set on again (copies that did arrive are duplicates).
      ++counters_.cover_timeouts;
      suspected_.insert(it->second.peer);
      fail_pending(token, now);
      continue;
    }
    ++counters_.ack_timeouts;
    // Its ack may still come: remember when we sent it (at most 64 such), to learn the delay.
    if (given_up_.size() >= 64) given_up_.erase(given_up_.begin());
    given_up_[token] = it->second.sent_at;
    suspected_.insert(it->second.peer);
    fail_pending(token, now);
  }
  std::vector<MessageId> overdue;
  for (const auto& [id, r] : refused_)
    if (r.deadline <= now) overdue.push_back(id);
  for (const auto& id : overdue) rescue(id, now);
  rescue_due(now);
  if (mixed() && now >= next_tick_) tick(now);
  else if (mixed() && now >= next_tell_) tell_silences(now);
  if (now >= next_keepalive_) {
    hello_gateways();
    next_keepalive_ = now + nat_keepalive_interval(cfg_);
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
  t.parts = std::move(o.parts);
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
  Micros next = std::min(mixed() ? std::min(next_tick_, next_tell_) : kNever, next_keepalive_);
  for (const auto& [id, r] : refused_) next = std::min(next, r.deadline);
  next = std::min(next, next_rescue_);
  while (!deadlines_.empty()) {
    auto it = pending_.find(deadlines_.top().second);
    if (it != pending_.end() && it->second.deadline == deadlines_.top().first)
      return std::min(next, deadlines_.top().first);
    deadlines_.pop();  // stale: acked or re-armed
  }
  return next;
}

// ---------------------------------------------------------------- receiving

void Node::handle(NodeId from, Channel channel, wire::Message&& m, Micros now) {
  if (auto* b = std::get_if<wire::Broadcast>(&m)) return handle_broadcast(from, channel, std::move(*b), now);
  if (channel == Channel::multicast) {  // after the header: broadcasts and heard lists only
    // Named in a heard list: the hearer heard us since its previous list, so it heard, or asked to
    // repair, everything we sent before that (tick() keeps list_covers_mseq_).
    if (auto* l = std::get_if<wire::HeardList>(&m); l && mixed() && l->contains(cfg_.self))
      hearer_confirmed(from, list_covers_mseq_, now);
    if (auto* c = std::get_if<wire::Confirm>(&m); c && mixed() && c->sender != cfg_.self) silence_told(from, *c, now);
    return;
  }
  if (auto* a = std::get_if<wire::Ack>(&m)) return handle_ack(from, *a, now);
  if (auto* h = std::get_if<wire::Hello>(&m)) {
    if (h->view_hash != view_->hash()) foreign_view_.insert(from);
    else foreign_view_.erase(from);
    return;
  }
  if (!mixed()) return;
  if (auto* c = std::get_if<wire::Confirm>(&m)) {
    if (c->sender == cfg_.self && c->incarnation == cfg_.incarnation) hearer_confirmed(from, c->highest_mseq, now);
    return;
  }
  if (auto* r = std::get_if<wire::RepairRequest>(&m)) return handle_repair_request(from, *r);
}

void Node::accept(const wire::Broadcast& b, Channel channel, Micros now) {
  const MessageId id = b.id();
  const bool control = b.flags & wire::Broadcast::kControl;
  if (control != bool(b.seq & kControlSeqBit)) {
    ++counters_.bad_targets;  // a control flag on an application seq, or the reverse
    return;
  }
  if (control) {
    // Announcements are deduplicated by the leader's claim version: a newer one supersedes the rest,
    // so per-leader state stays one claim (the model engine holds 10^5 nodes x 10^3 leaders).
    wire::Decoded d = wire::decode_frame(b.payload);
    auto* digest = d.ok() ? std::get_if<wire::IslandDigest>(&d.messages.front()) : nullptr;
    if (!digest || digest->islands.size() != 1) {
      ++counters_.bad_targets;
      return;
    }
    if (islands_.claim(b.origin, b.incarnation, b.seq, std::move(digest->islands.front()), now) ==
        IslandView::Claimed::duplicate)
      ++counters_.duplicates;
    return;
  }
  switch (dedup_.insert(id)) {
    case SeenResult::fresh:
      ++counters_.delivered;
      deliveries_.push_back(Delivery{id, b.round, channel, b.flags, b.payload});
      return;
    case SeenResult::duplicate: ++counters_.duplicates; return;
    case SeenResult::too_old: ++counters_.too_old; return;
  }
}

void Node::handle_broadcast(NodeId from, Channel channel, wire::Broadcast&& b, Micros now) {
  const bool relay = channel == Channel::tcp && (b.flags & wire::Broadcast::kRelay) && b.relay_to != cfg_.self;
  // A relay is not our copy: we only pass it on. Our own copy comes through the plan; delivering
  // whichever arrives first would make our round depend on timing.
  if (!relay) accept(b, channel, now);
  if (b.flags & wire::Broadcast::kRescue) watched_.erase(b.id());  // another watcher covers everyone
  if (channel == Channel::tcp && from == b.origin && !relay && b.targets.kind == wire::Targets::Kind::none &&
      !(b.flags & (wire::Broadcast::kControl | wire::Broadcast::kRepair)))
    watch(b, now);  // a leaf straight from the origin: we may be the only one it reached
  if (channel != Channel::tcp || b.targets.kind == wire::Targets::Kind::none) {
    if (relay) {
      // A leaf for a NATed node behind us: pass it on over the link it opened.
      ++counters_.relayed;
      const MessageId id = b.id();
      b.flags &= static_cast<std::uint8_t>(~wire::Broadcast::kRelay);
      b.round += 1;
      const TrafficKind kind = (b.flags & wire::Broadcast::kRepair)   ? TrafficKind::repair
                               : (b.flags & wire::Broadcast::kForced) ? TrafficKind::forced
                                                                      : TrafficKind::data;
      enqueue(b.relay_to, Channel::tcp, b, b.round, id, kind);
    }
    return;
  }
  // Responsibility is honoured even for a duplicate: the sender may be re-delegating a failed branch.
  const MessageId id = b.id();
  TargetSet set;
  const bool understood = interpret_targets(b, set);
  const std::size_t frame_mark = out_.size();  // the ack goes out before what we send on
  if (!understood) {
    ack_delegation(from, id, wire::AckStatus::view_mismatch, b.token, frame_mark);
    if (!relay && !refused_.count(id))
      refused_.emplace(id, Refused{from, now + 4 * ack_wait(from), b.round,
                                   static_cast<std::uint8_t>(b.flags & wire::Broadcast::kControl),
                                   std::make_shared<const wire::Bytes>(b.payload)});
    return;
  }
  // Resent so that we could read it (a relay of the same message through us is not that resend).
  if (auto r = refused_.find(id); r != refused_.end() && !relay && r->second.sender == from) refused_.erase(r);
  hold(id, b.round, b.flags & wire::Broadcast::kControl, b.payload, relay);
  if (from == b.origin && !relay && !(b.flags & (wire::Broadcast::kControl | wire::Broadcast::kRepair))) watch(b, now);
  const std::uint64_t duty = next_duty_++;
  duties_.emplace(duty, Duty{from, b.token, id, 0});
  current_duty_ = duty;
  if (relay) {
    // We are the gateway of the delegate: hand it the whole delegation over its link.
    ++counters_.relayed;
    // One hop more than it reached us, whatever this node has sent of the message itself: the
    // relay's round must not depend on when our own copy arrived.
    send_delegation(id, b.relay_to, std::move(set), now, false, b.round + 1);
  } else if (set.over_islands()) {
    cover(id, set.slice(1, set.size()), now);
    cover_own_island(id, island_members(set, 0), now);
  } else {
    cover(id, set.slice(1, set.size()), now);
  }
  current_duty_ = 0;
  // Covered at once unless we delegated on and wait for acks: then covered comes later (settle).
  auto d = duties_.find(duty);
  if (d->second.open > 0) {
    ack_delegation(from, id, wire::AckStatus::accepted, b.token, frame_mark);
  } else {
    duties_.erase(d);
    ack_delegation(from, id, wire::AckStatus::covered, b.token, frame_mark);
  }
  release(id);
}

void Node::settle(const Pending& p) { close_duty(p.duty); }

void Node::close_duty(std::uint64_t duty) {
  auto d = duty ? duties_.find(duty) : duties_.end();
  if (d == duties_.end() || --d->second.open > 0) return;
  const Duty done = d->second;
  duties_.erase(d);
  ack_delegation(done.upstream, done.id, wire::AckStatus::covered, done.token, out_.size());
}

void Node::settle_multicasts(Micros now) {
  // Past this, every repair of the multicast that could be made is made (tick's tail repair runs up
  // to 2 reach expiries after a hearer's last confirmation).
  const Micros give_up = 2 * cfg_.reach_expiry + silent_after();
  std::vector<McastDuty> done;
  auto settled = [&](const McastDuty& d) {
    if (now - d.sent_at > give_up) return true;
    for (NodeId m : d.counted) {
      auto h = reach_.hearers().find(m);
      if (h == reach_.hearers().end() || (h->second.highest < d.mseq && h->second.repaired_to < d.mseq)) return false;
    }
    return true;
  };
  auto keep = std::stable_partition(mcast_duties_.begin(), mcast_duties_.end(),
                                    [&](const McastDuty& d) { return !settled(d); });
  done.assign(std::make_move_iterator(keep), std::make_move_iterator(mcast_duties_.end()));
  mcast_duties_.erase(keep, mcast_duties_.end());
  for (const auto& d : done) {
    if (d.duty) close_duty(d.duty);
    else release(d.id);
  }
}

void Node::ack_delegation(NodeId to, const MessageId& id, wire::AckStatus status, std::uint64_t token,
                          std::size_t frame_mark) {
  const std::size_t before = out_.size();
  enqueue(to, Channel::tcp, wire::Ack{id.origin, id.seq, status, view_->hash(), id.incarnation, token}, 0, id,
          TrafficKind::ack);
  // A new frame for the ack goes before the frames queued since the delegation arrived: on a shared
  // uplink, an ack behind our own forwarding would look late to its sender.
  if (out_.size() == before + 1 && frame_mark < before) {
    std::rotate(out_.begin() + static_cast<std::ptrdiff_t>(frame_mark), out_.end() - 1, out_.end());
    for (auto& [peer, index] : open_batch_)
      if (index >= frame_mark) ++index;
    open_batch_[to] = frame_mark;
  }
}

bool Node::interpret_targets(const wire::Broadcast& b, TargetSet& out) {
  const auto& t = b.targets;
  const bool relay = (b.flags & wire::Broadcast::kRelay) && b.relay_to != cfg_.self;
  const NodeId head = relay ? b.relay_to : cfg_.self;
  if (t.kind == wire::Targets::Kind::id_list) {
    std::vector<NodeId> ids = t.ids;
    if (ids.front() != head) ids.insert(ids.begin(), head);  // tolerate a sender that left the head out
    out = TargetSet::list(std::move(ids));
    return true;
  }
  if (t.kind == wire::Targets::Kind::island_list) {
    // Listed islands need no shared island view. The delegate belongs to the first island.
    const auto first = t.ids.begin() + t.island_sizes.front();
    if (!std::binary_search(t.ids.begin(), first, head)) return false;
    if (mixed()) {
      out = TargetSet::island_list(t.ids, t.island_sizes);
    } else {  // no multicast here: every listed node over TCP, the delegate first
      std::vector<NodeId> ids{head};
      for (NodeId m : t.ids)
        if (m != head) ids.push_back(m);
      out = TargetSet::list(std::move(ids));
    }
    return true;
  }
  if (t.view_hash == view_->hash()) {
    auto origin_rank = view_->rank_of(b.origin);
    if (!origin_rank || std::uint64_t{t.lo} + t.count > view_->size()) return false;
    out = TargetSet::range(*origin_rank, t.lo, t.count);
    return out.at(*view_, 0) == head;
  }
  if (mixed() && t.view_hash == islands_.hash()) {
    islands_.rebuild();
    if (view_->contains(b.origin) &&
        std::uint64_t{t.lo} + t.count <= islands_.size()) {
      const auto islands = static_cast<std::uint32_t>(islands_.size());
      out = TargetSet::island_range(islands_.island_of(b.origin), t.lo, t.count, islands);
      return islands_.island_of(head) == out.island_at(0);
    }
  }
  return false;
}

void Node::handle_repair_request(NodeId from, const wire::RepairRequest& r) {
  if (r.sender != cfg_.self) return resend_kept(from, r);
  if (r.incarnation != cfg_.incarnation) return;  // another life's stream
  // What the last tail repair (tick) resent needs no second copy.
  std::uint64_t first = r.from_mseq, last = r.to_mseq;
  if (auto h = reach_.hearers().find(from); h != reach_.hearers().end() && h->second.resent_to > 0) {
    const auto& t = h->second;
    if (first >= t.resent_from && first <= t.resent_to) first = t.resent_to + 1;
    if (last >= t.resent_from && last <= t.resent_to) last = t.resent_from - 1;
  }
  if (first <= last) resend(from, first, last);
}

void Node::resend(NodeId to, std::uint64_t first, std::uint64_t last_wanted) {
  const std::uint64_t last = std::min(last_wanted, mseq_);
  const std::uint64_t oldest = mseq_ >= cfg_.retention ? mseq_ - cfg_.retention + 1 : 1;
  for (std::uint64_t m = std::max(first, oldest); m <= last; ++m) {
    const Retained* kept = retained(m);
    if (!kept || !kept->message) continue;
    wire::Broadcast b = *kept->message;
    b.flags |= wire::Broadcast::kRepair;
    ++counters_.repairs_sent;
    enqueue(to, Channel::tcp, b, b.round, b.id(), TrafficKind::repair);
  }
}

void Node::handle_ack(NodeId from, const wire::Ack& ack, Micros now) {
  ++counters_.acks_received;
  if (ack.status == wire::AckStatus::done) {
    if (from == ack.origin) watched_.erase(MessageId{ack.origin, ack.seq, ack.incarnation});
    return;
  }
  const std::uint64_t token = ack.token;
  auto p = pending_.find(token);
  if (p == pending_.end() || p->second.peer != from || p->second.id != MessageId{ack.origin, ack.seq, ack.incarnation}) {
    // A late ack of a delegation already handed elsewhere: its delay still says how slow this
    // delegate's acks are (without it, a delegate whose acks are always late would never be learned).
    auto late = given_up_.find(token);
    if (late != given_up_.end() && p == pending_.end()) {
      sample_ack_delay(progress_[from], now - late->second);
      given_up_.erase(late);
    }
    return;
  }
  auto& progress = progress_[from];
  progress.latest_acked = std::max(progress.latest_acked, token);
  if (!p->second.accepted) sample_ack_delay(progress, now - p->second.sent_at);
  if (ack.status == wire::AckStatus::accepted) {
    // It holds the message and hands it on: keep the delegation until its subtree is covered.
    Pending& pend = p->second;
    pend.accepted = true;
    pend.extensions = 0;
    pend.waiting_since = now;
    pend.deadline = now + cover_wait(pend);
    deadlines_.emplace(pend.deadline, token);
    return;
  }
  Pending pend = std::move(p->second);
  pending_.erase(p);
  if (ack.status == wire::AckStatus::view_mismatch) {
    // The delegate could not read our range: resend the same delegation as an explicit id list.
    // A different membership view is lasting (send it lists from now on); a different island view
    // is usually a moment of learning, so only this delegation goes as a list.
    ++counters_.view_mismatches;
    if (ack.view_hash != view_->hash()) foreign_view_.insert(pend.head);
    current_duty_ = pend.duty;
    send_delegation(pend.id, pend.head, std::move(pend.set), now, /*as_list=*/true);  // takes a new hold first
    current_duty_ = 0;
  }
  settle(pend);
  release(pend.id);
}

// ---------------------------------------------------------------- sending

Node::Active& Node::hold(const MessageId& id, std::uint32_t round, std::uint8_t flags, const wire::Bytes& payload,
                        bool relay) {
  auto [it, inserted] = active_.try_emplace(id);
  if (inserted) {
    it->second.payload = std::make_shared<const wire::Bytes>(payload);
    it->second.flags = flags;
  }
  if (inserted || (it->second.relay_only && !relay)) {
    it->second.round = round;  // our own copy sets the round our sends count from, not a relay
    it->second.relay_only = relay;
  }
  ++it->second.pending;  // held while the caller works on it; release() drops it
  return it->second;
}

void Node::release(const MessageId& id) {
  auto it = active_.find(id);
  if (it == active_.end() || --it->second.pending > 0) return;
  // Our own broadcast is covered everywhere: the delegates watching us may stop.
  for (NodeId d : it->second.told_done)
    enqueue(d, Channel::tcp, wire::Ack{id.origin, id.seq, wire::AckStatus::done, view_->hash(), id.incarnation}, 0, id,
            TrafficKind::control);
  active_.erase(it);
}

Micros Node::watch_for() const {
  // The longest an origin's broadcast may take to be covered: a cover wait over the whole view.
  Micros levels = 2;
  for (std::size_t n = view_->size(); n > 1; n = (n + 1) / 2) ++levels;
  return 8 * levels * cfg_.ack_timeout;
}

void Node::watch(const wire::Broadcast& b, Micros now) {
  while (!watch_expiry_.empty() && watch_expiry_.front().first <= now) {
    auto w = watched_.find(watch_expiry_.front().second);
    if (w != watched_.end() && w->second.until <= now) watched_.erase(w);
    watch_expiry_.pop_front();
  }
  const Micros until = now + watch_for();
  watched_[b.id()] = Watch{until, b.round, std::make_shared<const wire::Bytes>(b.payload)};
  watch_expiry_.emplace_back(until, b.id());
}

void Node::rescue_watched(NodeId origin, Micros now) {
  for (auto& [id, w] : watched_)
    if (id.origin == origin && w.until > now && w.rescue_at == kNever)
      next_rescue_ = std::min(next_rescue_, w.rescue_at = now + static_cast<Micros>(w.round > 0 ? w.round - 1 : 0) *
                                                                   cfg_.ack_timeout);
  rescue_due(now);
}

void Node::rescue_due(Micros now) {
  if (next_rescue_ > now) return;
  next_rescue_ = kNever;
  std::vector<MessageId> due;
  for (const auto& [id, w] : watched_) {
    if (w.rescue_at <= now) due.push_back(id);
    else next_rescue_ = std::min(next_rescue_, w.rescue_at);
  }
  for (const auto& id : due) {
    const Watch w = std::move(watched_.at(id));
    watched_.erase(id);
    ++counters_.rescues;
    hold(id, w.round, wire::Broadcast::kRescue, *w.payload);
    cover_everyone(id, now);
    release(id);
  }
}

wire::Broadcast Node::message_for(const MessageId& id, const Active& a) const {
  wire::Broadcast b;
  b.origin = id.origin;
  b.seq = id.seq;
  b.incarnation = id.incarnation;
  b.round = a.round + a.sends;
  b.flags = a.flags;
  b.payload = *a.payload;
  return b;
}

void Node::cover(const MessageId& id, TargetSet rest, Micros now) {
  while (!rest.empty()) {
    const std::size_t share = delegate_share(rest.size());
    TargetSet handed = rest.slice(rest.size() - share, rest.size());
    rest = rest.slice(0, rest.size() - share);
    delegate(id, std::move(handed), now);
  }
}

std::optional<NodeId> Node::pick_island_delegate(IdRange members, const MessageId& id) const {
  // Rotate by message so one island's load is spread over its members; skip suspects.
  const std::size_t start = static_cast<std::size_t>((id.seq + id.origin) % members.size());
  for (std::size_t i = 0; i < members.size(); ++i) {
    NodeId m = members[(start + i) % members.size()];
    if (m != cfg_.self && !suspected_.count(m)) return m;
  }
  return std::nullopt;
}

IdRange Node::island_members(const TargetSet& set, std::size_t i) const {
  return set.explicit_islands() ? set.listed_island(i) : islands_.island(set.island_at(i));
}

TargetSet Node::listed_islands(const TargetSet& set) const {
  std::vector<NodeId> ids;
  std::vector<std::uint32_t> sizes;
  for (std::size_t i = 0; i < set.size(); ++i) {
    const IdRange members = island_members(set, i);
    ids.insert(ids.end(), members.begin(), members.end());
    sizes.push_back(static_cast<std::uint32_t>(members.size()));
  }
  return TargetSet::island_list(std::move(ids), sizes);
}

void Node::take_own_copy(const MessageId& id, Micros now) {
  // A gateway holds a relayed message without delivering it (its own copy comes through the plan).
  // When the relay fails and the set comes back to it with itself inside, it is its own copy.
  auto a = active_.find(id);
  if (a == active_.end() || !a->second.relay_only) return;
  a->second.relay_only = false;
  accept(message_for(id, a->second), Channel::tcp, now);
}

void Node::delegate(const MessageId& id, TargetSet set, Micros now) {
  NodeId head;
  if (set.over_islands()) {
    const IdRange unit = island_members(set, 0);
    if (std::find(unit.begin(), unit.end(), cfg_.self) != unit.end()) take_own_copy(id, now);
    auto d = pick_island_delegate(island_members(set, 0), id);
    if (!d) {  // every member is suspected dead: nobody to delegate to, but each still gets a leaf
      ++counters_.redelegations;
      const IdRange members = island_members(set, 0);
      const std::vector<NodeId> suspects = members.to_vector();  // the set is sliced next
      cover(id, set.slice(1, set.size()), now);
      for (NodeId m : suspects)
        if (m != cfg_.self) leaf_to_suspect(id, m, now);
      return;
    }
    head = *d;
  } else {
    head = set.at(*view_, 0);
    if (head == cfg_.self) take_own_copy(id, now);
    if (head == cfg_.self || suspected_.count(head)) {  // suspected dead (or ourselves): take its share over
      cover(id, set.slice(1, set.size()), now);
      if (head != cfg_.self) {
        ++counters_.redelegations;
        leaf_to_suspect(id, head, now);
      }
      return;
    }
  }
  send_delegation(id, head, std::move(set), now);
}

std::optional<NodeId> Node::gateway_for(NodeId natted) const {
  if (!view_->behind_nat(natted) || view_->same_nat(cfg_.self, natted)) return std::nullopt;
  // Inside the same island (same subnet) we can connect directly.
  if (mixed() && islands_.size() > 0 && islands_.island_of(natted) == islands_.island_of(cfg_.self) &&
      islands_.island(islands_.island_of(cfg_.self)).size() > 1)
    return std::nullopt;
  const auto gws = view_->gateways(natted, cfg_.nat_links);
  if (std::find(gws.begin(), gws.end(), cfg_.self) != gws.end()) return std::nullopt;  // its link is ours
  for (NodeId g : gws)
    if (!suspected_.count(g)) return g;
  // Every gateway is suspected. Suspicion is a guess (a slow link looks the same) and nobody outside
  // its NAT can dial the node: go through one anyway, another one on each retry.
  if (gws.empty()) return std::nullopt;
  return gws[relay_tries_ % gws.size()];
}

void Node::send_delegation(const MessageId& id, NodeId head, TargetSet set, Micros now, bool as_list,
                           std::optional<std::uint32_t> relay_round) {
  Active& a = active_.at(id);
  if (!relay_round) ++a.sends;  // a relay is not one of this node's own sends
  wire::Broadcast b = message_for(id, a);
  if (relay_round) b.round = *relay_round;
  const bool ranges = !as_list && !foreign_view_.count(head);
  if (set.over_islands()) {
    // Island ranks need the same island view; listed islands need only the same membership view.
    // A delegate that knows neither gets every node, itself first, and covers them by TCP.
    const bool leaf = set.size() == 1 && island_members(set, 0).size() == 1;
    if (leaf) {
      // an island of one: nothing to hand on
    } else if (ranges && !set.explicit_islands()) {
      b.targets.kind = wire::Targets::Kind::view_range;
      b.targets.view_hash = islands_.hash();
      b.targets.lo = set.lo();
      b.targets.count = set.count();
    } else if (!foreign_view_.count(head)) {
      b.targets = set.explicit_islands() ? set.islands_to_wire() : listed_islands(set).islands_to_wire();
    } else {
      b.targets.kind = wire::Targets::Kind::id_list;
      b.targets.ids.push_back(head);
      for (std::size_t i = 0; i < set.size(); ++i)
        for (NodeId m : island_members(set, i))
          if (m != head) b.targets.ids.push_back(m);
    }
  } else {
    b.targets = set.to_wire(*view_, ranges);
  }
  NodeId peer = head;
  if (auto g = gateway_for(head)) {
    peer = *g;
    b.flags |= wire::Broadcast::kRelay;
    b.relay_to = head;  // the gateway's forward adds its own round
    // Even a delegate with nothing to hand on is acked then: by the gateway, which acks only once it
    // holds the message, so a gateway that dies is noticed and another one relays.
    if (b.targets.kind == wire::Targets::Kind::none) b.targets = just(head);
  }
  const bool needs_ack = b.targets.kind != wire::Targets::Kind::none;
  if (needs_ack) b.token = next_token_;  // await_ack takes this token
  enqueue(peer, Channel::tcp, b, b.round, id, TrafficKind::data);
  if (peer == head) tell_done_later(id, a, peer);
  if (needs_ack) {
    ++counters_.delegations;
    // Island ranks are only valid for the island view they were made with, which may change before
    // this delegation fails or is refused: keep the islands' members themselves.
    if (set.over_islands() && !set.explicit_islands()) set = listed_islands(set);
    await_ack(a, peer, head, id, std::move(set), now);
  }
}

void Node::await_ack(Active& a, NodeId peer, NodeId head, const MessageId& id, TargetSet set, Micros now) {
  ++a.pending;  // fail_pending or handle_ack releases it
  const std::uint64_t token = next_token_++;
  const Micros deadline = now + ack_wait(peer);
  pending_.emplace(token, Pending{peer, head, id, std::move(set), deadline, peer != head ? relay_tries_ : 0u, now, now, 0,
                                  false, current_duty_});
  if (current_duty_) ++duties_.at(current_duty_).open;
  deadlines_.emplace(deadline, token);
}

bool Node::awaits_delegations() const {
  for (const auto& [token, p] : pending_)
    if (!(p.id.seq & kControlSeqBit)) return true;
  for (const auto& [id, r] : refused_)
    if (!(id.seq & kControlSeqBit)) return true;
  return false;
}

// An ack deadline passed. TCP is reliable: a peer that is alive gets our delegation, unless its link
// breaks (the link event fails it). So a delegate that has kept talking to us through this wait,
// and acked nothing we sent it after this delegation (acks come in order), is only behind: our
// stream to it is congested, and handing its targets to someone else would add load where there is
// too much. Wait longer, with backoff, a bounded number of times; a peer that stays silent for a
// whole wait, or acked something later, has lost it.
void Node::sample_ack_delay(PeerProgress& p, Micros sample) {
  if (p.srtt == 0) {
    p.srtt = std::max<Micros>(sample, 1);
    p.rttvar = sample / 2;
  } else {
    const Micros err = p.srtt > sample ? p.srtt - sample : sample - p.srtt;
    p.rttvar = (3 * p.rttvar + err) / 4;
    p.srtt = std::max<Micros>((7 * p.srtt + sample) / 8, 1);
  }
}

// ack_timeout, or longer for a peer whose acks have been slow (a congested stream to it): as TCP
// sets its RTO, the smoothed delay plus four deviations.
Micros Node::ack_wait(NodeId peer) const {
  // Before the first sample, twice as long (TCP, too, starts at a conservative RTO): a first
  // delegation over a long or busy path is not yet known to be slow, and handing its targets on
  // after a spurious timeout costs a whole branch of copies and rounds.
  auto it = progress_.find(peer);
  if (it == progress_.end() || it->second.srtt == 0) return 2 * cfg_.ack_timeout;
  return std::max(cfg_.ack_timeout, it->second.srtt + 4 * it->second.rttvar);
}

Micros Node::cover_wait(const Pending& p) const {
  Micros levels = 1;
  for (std::size_t n = p.set.size(); n > 1; n = (n + 1) / 2) ++levels;
  return (levels + 1) * ack_wait(p.peer);
}

bool Node::still_coming(const Pending& p, std::uint64_t token, Micros now) const {
  // With the backoff, about 50 ack timeouts in all. A delegate that accepted is waited for as long
  // as it talks: it watches its own subtree (its silent children time out there), its death closes
  // the link, and handing a branch on because the delegate is slow only adds load where there is
  // too much.
  constexpr std::uint32_t kMaxExtensions = 8;
  if (!p.accepted && p.extensions >= kMaxExtensions) return false;
  auto it = progress_.find(p.peer);
  if (it == progress_.end()) return false;
  const PeerProgress& peer = it->second;
  // Heard from it during this wait, or our link to it came up only during it (the delegation
  // waited for the handshake: on a long path that alone may take most of an ack timeout).
  const bool alive = (peer.last_frame != kNever && peer.last_frame > p.waiting_since && peer.last_frame <= now) ||
                     (peer.link_up_at > p.waiting_since && peer.link_up_at <= now);
  // Once accepted, the delegate works on the subtree: alive is enough. Before, a later ack means
  // it lost this one.
  return alive && (p.accepted || peer.latest_acked < token);
}

void Node::fail_pending(std::uint64_t token, Micros now) {
  auto p = pending_.find(token);
  if (p == pending_.end()) return;
  Pending pend = std::move(p->second);
  pending_.erase(p);
  ++counters_.redelegations;
  const std::uint64_t outer_duty = current_duty_;
  current_duty_ = pend.duty;  // what we hand on again is still for the same duty
  if (pend.peer != pend.head) {
    // A failed gateway: the same set goes to the delegate through another gateway, a bounded number
    // of times (a NATed node whose gateways are all gone cannot be reached); then the rest of the set
    // is ours again.
    if (pend.relay_tries < cfg_.nat_links + 1) {
      relay_tries_ = pend.relay_tries + 1u;
      delegate(pend.id, std::move(pend.set), now);
      relay_tries_ = 0;
    } else {
      cover(pend.id, pend.set.without(pend.head), now);
    }
  } else {
    // The failed delegate's share, minus itself, becomes ours again.
    cover(pend.id, pend.set.without(pend.head), now);
    leaf_to_suspect(pend.id, pend.head, now);
  }
  current_duty_ = outer_duty;
  settle(pend);
  release(pend.id);  // our hold kept Active alive until here
}

void Node::cover_own_island(const MessageId& id, IdRange island, Micros now) {
  if (island.size() <= 1) return;
  Active& a = active_.at(id);
  // One multicast reaches every member that hears us...
  ++a.sends;
  wire::Broadcast b = message_for(id, a);
  ++counters_.multicasts;
  multicast(b, now);
  // ...and TCP reaches the members that have not confirmed hearing us, plus a forced share of the others.
  std::vector<NodeId> confirmed;
  for (NodeId m : island) {
    if (m == cfg_.self) continue;
    if (reach_.hears_me(m, now)) {
      confirmed.push_back(m);
      continue;
    }
    ++counters_.unconfirmed_tcp;
    send_leaf(id, a, m, 0, now);
  }
  // The cover is done once the members we counted on have it (settle_multicasts). Until then our
  // sender keeps its delegation (we may die before repairing a loss), or, for our own broadcast,
  // we hold it, so that `done` waits too.
  if (!confirmed.empty() && !(a.flags & wire::Broadcast::kControl)) {
    if (current_duty_) {
      ++duties_.at(current_duty_).open;
      mcast_duties_.push_back(McastDuty{current_duty_, id, mseq_, now, confirmed});
    } else if (id.origin == cfg_.self && id.incarnation == cfg_.incarnation) {
      ++a.pending;
      mcast_duties_.push_back(McastDuty{0, id, mseq_, now, confirmed});
    }
  }
  if (cfg_.forced_tcp_share > 0 && !confirmed.empty()) {
    auto k = static_cast<std::size_t>(std::ceil(cfg_.forced_tcp_share * static_cast<double>(confirmed.size())));
    k = std::min(k, confirmed.size());
    for (std::size_t i = 0; i < k; ++i) {  // partial Fisher-Yates: k distinct random members
      std::swap(confirmed[i], confirmed[i + rng_.below(confirmed.size() - i)]);
      ++counters_.forced_tcp;
      send_leaf(id, a, confirmed[i], wire::Broadcast::kForced, now);
    }
  }
}

const Node::Retained* Node::retained(std::uint64_t mseq) const {
  const std::size_t slot = mseq % cfg_.retention;
  if (slot >= retained_.size() || retained_[slot].mseq != mseq) return nullptr;
  return &retained_[slot];
}

void Node::leaf_to_suspect(const MessageId& id, NodeId suspect, Micros now) {
  // Suspicion is a guess: a peer that was only slow, or whose connection broke, is alive and must
  // still get the message. A leaf costs no ack and no waiting, and goes after every delegation so
  // it shifts nobody's round; a dead peer just fails the send again.
  // A gateway that held the message only to relay it sends the leaf too: a failed relay hands it
  // the set back, and nobody else will send this suspect its copy.
  auto a = active_.find(id);
  if (a != active_.end()) send_leaf(id, a->second, suspect, 0, now);
}

void Node::send_leaf(const MessageId& id, Active& a, NodeId to, std::uint8_t flags, Micros now) {
  ++a.sends;
  wire::Broadcast b = message_for(id, a);
  b.flags |= flags;
  const TrafficKind kind = (flags & wire::Broadcast::kForced) ? TrafficKind::forced : TrafficKind::data;
  if (auto g = gateway_for(to)) {
    // A NATed member outside our reach: through its gateway, as a delegation of the member alone,
    // so the gateway acks it and a gateway that dies with it in hand is noticed (the member gets
    // it through another gateway). The member itself acks its gateway.
    b.flags |= wire::Broadcast::kRelay;
    b.relay_to = to;
    b.targets = just(to);
    b.token = next_token_;  // await_ack takes this token
    enqueue(*g, Channel::tcp, b, b.round, id, kind);
    await_ack(a, *g, to, id, TargetSet::list({to}), now);
    return;
  }
  enqueue(to, Channel::tcp, b, b.round, id, kind);
  tell_done_later(id, a, to);
}

void Node::tell_done_later(const MessageId& id, Active& a, NodeId to) {
  if (id.origin == cfg_.self && id.incarnation == cfg_.incarnation && !(a.flags & wire::Broadcast::kControl) &&
      std::find(a.told_done.begin(), a.told_done.end(), to) == a.told_done.end())
    a.told_done.push_back(to);
}

void Node::multicast_heard(const std::vector<NodeId>& heard, Micros now) {
  std::vector<wire::HeardList::Run> runs;
  for (NodeId id : heard) {  // sorted
    if (!runs.empty() && std::uint64_t{runs.back().first} + runs.back().count == id) ++runs.back().count;
    else runs.push_back({id, 1});
  }
  // Datagrams stay under max_datagram_bytes: scattered ids may take several.
  // The fixed part, measured: frame head, multicast header (at the highest mseq these lists can
  // take) and the list's type. An empty list spends one byte each on its body length and run
  // count; a full one at most the varints of the datagram limit and of all the runs.
  wire::FrameBuilder probe;
  probe.add(wire::McastHeader{cfg_.self, mseq_ + runs.size(), cfg_.incarnation});
  probe.add(wire::HeardList{});
  const std::size_t fixed =
      probe.size() - 2 + wire::varint_size(cfg_.max_datagram_bytes) + wire::varint_size(runs.size());
  std::size_t first = 0;
  while (first < runs.size()) {
    std::size_t bytes = fixed, last = first;
    std::optional<std::uint64_t> previous_end;
    while (last < runs.size()) {
      const std::size_t e = wire::heard_run_size(runs[last], previous_end);
      if (last > first && bytes + e > cfg_.max_datagram_bytes) break;
      bytes += e;
      previous_end = std::uint64_t{runs[last].first} + runs[last].count;
      ++last;
    }
    wire::HeardList list;
    list.runs.assign(runs.begin() + static_cast<std::ptrdiff_t>(first), runs.begin() + static_cast<std::ptrdiff_t>(last));
    ++counters_.heard_lists;
    multicast(std::nullopt, now, {std::move(list)});
    first = last;
  }
}

std::uint64_t Node::mseq_sent_by(Micros t) const {
  for (std::uint64_t m = mseq_; m > 0 && mseq_ - m < cfg_.retention; --m) {
    const Retained* r = retained(m);
    if (r && r->at <= t) return m;
  }
  return 0;
}

void Node::multicast(std::optional<wire::Broadcast> b, Micros now, std::vector<wire::Message> extra) {
  const std::uint64_t m = ++mseq_;
  last_beacon_ = now;  // any multicast serves as a beacon
  std::vector<wire::Message> msgs{wire::McastHeader{cfg_.self, m, cfg_.incarnation}};
  for (auto& x : extra) msgs.push_back(std::move(x));
  std::optional<MessageId> subject;
  if (b) {
    msgs.push_back(*b);
    subject = b->id();
  }
  Retained r{m, now, std::move(b)};
  // The ring grows as it fills (most nodes multicast little), up to cfg_.retention entries.
  const std::size_t slot = m % cfg_.retention;
  if (slot >= retained_.size()) retained_.resize(std::min(cfg_.retention, std::max(slot + 1, 2 * retained_.size())));
  retained_[slot] = std::move(r);
  const TrafficKind kind = subject ? TrafficKind::data : TrafficKind::control;
  Outgoing o{kMulticastGroup, Channel::multicast, wire::FrameBuilder{},
             subject ? std::get<wire::Broadcast>(msgs.back()).round : 0, subject, kind, {}};
  for (const auto& msg : msgs) o.add(msg, subject, kind);
  out_.push_back(std::move(o));
}

// ---------------------------------------------------------------- mixed-mode maintenance

void Node::hearer_confirmed(NodeId n, std::uint64_t highest, Micros now) {
  auto it = reach_.hearers().find(n);
  if (it != reach_.hearers().end() && now - it->second.last_confirm > silent_after()) {
    // Back from a silence (its multicast reception broke and came back): what we multicast while we
    // still counted on it may be lost, and this confirmation would hide it, since a hearer reports
    // no gap after a silence. Resend that once: up to when its last confirmation expired.
    Reachability::Hearer& h = it->second;
    // (Past what this confirmation covers too: the multicasts since then may be lost as well.)
    const std::uint64_t last = mseq_sent_by(h.last_confirm + cfg_.reach_expiry);
    if (last > h.repaired_to) {
      resend(n, h.repaired_to + 1, last);
      h.resent_from = h.repaired_to + 1;
      h.repaired_to = h.resent_to = last;
    }
  }
  reach_.confirmed(n, highest, now);
}

// ---- repair by peers: a sender that fell silent right after a multicast (it crashed, say) can no
// longer repair the members that missed it, and they may not even know they did (no later mseq
// shows the gap). Those that heard it tell the island how far they heard; a member that heard
// less, or still waits for a gap it asked the sender for, asks one of them for what it kept.

void Node::keep(NodeId sender, std::uint64_t incarnation, std::uint64_t mseq, const wire::Broadcast& b, Micros now) {
  while (!kept_.empty() && now - kept_.front().at > keep_for()) kept_.pop_front();
  kept_.push_back(Kept{sender, incarnation, mseq, now, b});
}

void Node::tell_silences(Micros now) {
  while (!kept_.empty() && now - kept_.front().at > keep_for()) kept_.pop_front();
  // A silence is noticed by every member at about the same time: each waits a random part of a
  // confirm interval before telling, and one that hears another tell as much first stays quiet
  // (silence_told), so a big island sends a few of these, not one per member.
  std::vector<wire::Message> told;
  next_tell_ = kNever;
  for (auto& [sender, h] : reach_.heard_from()) {
    if (now - h.last_heard <= silent_after()) {
      h.tell_at = -1;
      continue;
    }
    if (h.silence_noticed != h.last_heard) {
      h.silence_noticed = h.last_heard;
      // Only a silence that follows data matters, and only while we still hold that data.
      // (Structured bindings cannot be captured in C++17: copy them.)
      const bool holding = std::any_of(kept_.begin(), kept_.end(), [s = sender, inc = h.incarnation](const Kept& k) {
        return k.sender == s && k.incarnation == inc;
      });
      h.tell_at = holding ? now + static_cast<Micros>(rng_.below(static_cast<std::uint64_t>(cfg_.confirm_interval) + 1))
                          : -1;
    }
    if (h.tell_at < 0) continue;
    if (h.tell_at <= now) {
      told.push_back(wire::Confirm{sender, h.highest, 0, h.incarnation});
      h.tell_at = -1;
    } else {
      next_tell_ = std::min(next_tell_, h.tell_at);
    }
  }
  if (told.empty()) return;
  counters_.silences_told += told.size();
  multicast(std::nullopt, now, std::move(told));
}

void Node::silence_told(NodeId from, const wire::Confirm& c, Micros now) {
  auto it = reach_.heard_from().find(c.sender);
  if (it == reach_.heard_from().end() || it->second.incarnation != c.incarnation) return;  // not our stream
  Reachability::Heard& h = it->second;
  if (c.highest_mseq >= h.highest) h.tell_at = -1;  // told as much as we would: no need to tell it again
  // A sender we still hear repairs us itself (our own gap detection is untouched by this). One ask
  // per silence and teller's reach: a teller that heard more than the one we asked (who may have
  // missed the same tail, or more in between) is asked again, for everything we may lack.
  if (now - h.last_heard <= silent_after()) return;
  const bool asked = h.peer_asked_for == h.last_heard;
  if (asked && c.highest_mseq <= h.peer_asked_to) return;
  std::uint64_t first = h.highest + 1;
  if (h.asked_at != 0 && now - h.asked_at <= keep_for()) first = std::min(first, h.asked_from);
  if (first > c.highest_mseq) return;  // we heard as much, and wait for nothing
  h.peer_asked_for = h.last_heard;
  h.peer_asked_to = c.highest_mseq;
  ++counters_.repair_requests;
  enqueue(from, Channel::tcp, wire::RepairRequest{c.sender, first, c.highest_mseq, c.incarnation}, 0, std::nullopt,
          TrafficKind::control);
}

void Node::resend_kept(NodeId to, const wire::RepairRequest& r) {
  for (const Kept& k : kept_) {
    if (k.sender != r.sender || k.incarnation != r.incarnation || k.mseq < r.from_mseq || k.mseq > r.to_mseq) continue;
    wire::Broadcast b = k.message;
    b.flags |= wire::Broadcast::kRepair;
    ++counters_.repairs_sent;
    enqueue(to, Channel::tcp, b, b.round, b.id(), TrafficKind::repair);
  }
}

void Node::tick(Micros now) {
  next_tick_ = now + cfg_.confirm_interval;
  const Micros silent = silent_after();
  // A list that names us arrives at most a list period plus a tick after the multicast it heard, so
  // it confirms whatever we had sent before that (a gap before it the hearer repairs itself).
  list_covers_mseq_ = mseq_sent_by(now - cfg_.beacon_interval - 2 * cfg_.confirm_interval);

  // Confirm what we heard: one multicast list names every sender heard since the last list. It goes
  // out in place of a beacon, and at once when a sender is new so islands form quickly. A sender that
  // has not confirmed hearing us for a while cannot hear our lists (its own lists would name us): it
  // gets a TCP Confirm instead.
  std::vector<NodeId> heard;
  bool fresh = false;
  for (auto& [sender, h] : reach_.heard_from())
    if (h.since_confirm > 0) {
      heard.push_back(sender);
      fresh = fresh || !h.listed;
    }
  if (!heard.empty() && (fresh || now - last_list_ >= cfg_.beacon_interval)) {
    last_list_ = now;
    std::sort(heard.begin(), heard.end());
    for (NodeId s : heard) {
      auto& h = reach_.heard_from()[s];
      const auto hearer = reach_.hearers().find(s);
      const Micros confirmed_at =
          hearer == reach_.hearers().end() ? h.streak_since : std::max(h.streak_since, hearer->second.last_confirm);
      if (now - confirmed_at > silent) {
        enqueue(s, Channel::tcp, wire::Confirm{s, h.highest, h.since_confirm, h.incarnation}, 0, std::nullopt,
                TrafficKind::control);
        ++counters_.confirms_sent;
      }
      h.since_confirm = 0;
      h.listed = true;
    }
    multicast_heard(heard, now);
  }

  // Missing confirmations. A healthy hearer reports gaps itself. One that has gone silent may have
  // lost the tail of our stream and hears nothing that would reveal the gap: resend it what it has
  // not confirmed, over TCP, once. (It stops counting as a hearer when its confirmations expire.)
  const std::uint64_t settled_mseq = mseq_sent_by(now - silent);  // a healthy hearer has confirmed it by now
  if (settled_mseq > 0) {
    std::vector<NodeId> lagging;
    for (auto& [n, h] : reach_.hearers())
      if (now - h.last_confirm > silent && now - h.last_confirm <= 2 * cfg_.reach_expiry &&
          h.repaired_to < settled_mseq)
        lagging.push_back(n);
    std::sort(lagging.begin(), lagging.end());
    for (NodeId n : lagging) {
      auto& h = reach_.hearers()[n];
      resend(n, h.repaired_to + 1, settled_mseq);
      h.resent_from = h.repaired_to + 1;
      h.repaired_to = h.resent_to = settled_mseq;
    }
  }
  settle_multicasts(now);
  tell_silences(now);
  if (now - last_beacon_ >= cfg_.beacon_interval || mseq_ == 0) {
    ++counters_.beacons;
    multicast(std::nullopt, now);
  }
  if (islands_.expire(now, 4 * cfg_.reach_expiry)) islands_.rebuild();
  announce_island(now);
}

void Node::announce_island(Micros now) {
  // Leader: no node we hear both ways has a lower id. Its island is itself plus those nodes.
  std::vector<NodeId> mutual = reach_.mutual(now);
  const bool leader = mutual.empty() || mutual.front() > cfg_.self;
  std::vector<NodeId> island{cfg_.self};
  if (leader) island.insert(island.end(), mutual.begin(), mutual.end());
  std::sort(island.begin(), island.end());
  bool changed = island != announced_ && !(island.size() == 1 && announced_.empty());
  if (changed) {
    // Every announcement makes every node rebuild its islands: while members are still being
    // learned, wait until the island has held for a whole confirm interval.
    if (island != candidate_) {
      candidate_ = island;
      candidate_since_ = now;
    }
    changed = now - candidate_since_ >= cfg_.confirm_interval;
  }
  const bool refresh = island.size() > 1 && now - announced_at_ >= cfg_.reach_expiry;
  if (!changed && !refresh) return;
  announced_ = island;
  announced_at_ = now;
  ++counters_.announcements;
  islands_.claim(cfg_.self, cfg_.incarnation, kControlSeqBit | next_control_seq_, island, now);  // the seq start() takes
  start(wire::encode_frame({wire::IslandDigest{0, {island}}}), wire::Broadcast::kControl, now);
}

void Node::enqueue(NodeId to, Channel channel, const wire::Message& m, std::uint32_t round,
                   std::optional<MessageId> subject, TrafficKind kind) {
  auto open = open_batch_.find(to);
  if (open != open_batch_.end()) {
    Outgoing& o = out_[open->second];
    if (o.channel == channel && o.frame.size() < cfg_.max_frame_bytes) {
      o.add(m, subject, kind);
      return;
    }
    open_batch_.erase(open);
  }
  out_.push_back(Outgoing{to, channel, wire::FrameBuilder{}, round, subject, kind, {}});
  out_.back().add(m, subject, kind);
  if (channel == Channel::tcp) open_batch_[to] = out_.size() - 1;
}

}  // namespace mixcast
