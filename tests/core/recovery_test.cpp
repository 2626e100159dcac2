// Recovery rules driven frame by frame through the sans-I/O API: how long a sender waits for an
// ack from a delegate that is alive but behind, and how island members repair each other when a
// sender falls silent right after a multicast.
#include <gtest/gtest.h>

#include <map>
#include <memory>
#include <set>
#include <vector>

#include "mixcast/core/node.hpp"

using namespace mixcast;

namespace {

std::shared_ptr<const View> view_of(std::size_t n) {
  std::vector<NodeId> ids;
  for (NodeId i = 0; i < n; ++i) ids.push_back(i);
  return std::make_shared<const View>(ids);
}

std::vector<Transmit> drain(Node& node) {
  std::vector<Transmit> out;
  while (auto t = node.poll_transmit()) out.push_back(std::move(*t));
  return out;
}

// Delegation tokens seen by delegations(), by (peer, seq): the fake delegates' acks echo them.
std::map<std::pair<NodeId, std::uint64_t>, std::uint64_t>& tokens_seen() {
  static std::map<std::pair<NodeId, std::uint64_t>, std::uint64_t> tokens;
  return tokens;
}

// The peers a transmit batch hands targets to (those that must ack), by broadcast seq.
std::map<NodeId, std::vector<std::uint64_t>> delegations(const std::vector<Transmit>& sent) {
  std::map<NodeId, std::vector<std::uint64_t>> out;
  for (const auto& t : sent) {
    const auto d = wire::decode_frame(t.bytes);
    for (const auto& m : d.messages)
      if (const auto* b = std::get_if<wire::Broadcast>(&m); b && b->targets.kind != wire::Targets::Kind::none) {
        out[t.to].push_back(b->seq);
        tokens_seen()[{t.to, b->seq}] = b->token;
      }
  }
  return out;
}

wire::Bytes hello_from(NodeId peer, const View& view) { return wire::encode_frame({wire::Hello{peer, view.hash(), 1}}); }
// A fake delegate with nothing to hand on: it answers `covered` at once.
wire::Bytes ack_from(NodeId peer, const View& view, NodeId origin, std::uint64_t seq,
                     wire::AckStatus status = wire::AckStatus::covered) {
  return wire::encode_frame({wire::Ack{origin, seq, status, view.hash(), 1, tokens_seen()[{peer, seq}]}});
}

struct AckFixture {
  NodeConfig cfg;
  std::shared_ptr<const View> view = view_of(16);
  std::unique_ptr<Node> origin;
  AckFixture() {
    cfg.self = 0;
    cfg.ack_timeout = 500'000;
    origin = std::make_unique<Node>(cfg, view);
  }
  // Steps time to `until` in 100 ms ticks; `talk` says whether the delegate sends us a frame in a tick.
  template <typename Talk>
  void run(Micros from, Micros until, NodeId delegate, Talk talk) {
    for (Micros t = from; t <= until; t += 100'000) {
      if (talk(t)) {
        const auto f = hello_from(delegate, *view);
        origin->on_frame(delegate, Channel::tcp, f.data(), f.size(), t);
      }
      if (origin->next_timeout() <= t) origin->on_timeout(t);
      drain(*origin);
    }
  }
};

}  // namespace

TEST(AckWait, ADelegateThatKeepsTalkingIsWaitedForNotReplaced) {
  // Its ack is late because our stream to it is congested, not because it is gone: handing its
  // targets to someone else would only add load.
  AckFixture f;
  const MessageId id = f.origin->broadcast({1, 2, 3}, 0);
  auto firsts = delegations(drain(*f.origin));
  ASSERT_GE(firsts.size(), 2u);
  const NodeId slow = firsts.begin()->first;
  for (const auto& [peer, seqs] : firsts) {  // everyone else acks at once
    if (peer == slow) continue;
    const auto a = ack_from(peer, *f.view, 0, id.seq);
    f.origin->on_frame(peer, Channel::tcp, a.data(), a.size(), 1000);
  }
  f.run(100'000, 3'000'000, slow, [](Micros) { return true; });
  EXPECT_EQ(f.origin->counters().ack_timeouts, 0u);
  EXPECT_EQ(f.origin->counters().redelegations, 0u);
  EXPECT_GE(f.origin->counters().ack_waits, 2u);
  const auto a = ack_from(slow, *f.view, 0, id.seq);
  f.origin->on_frame(slow, Channel::tcp, a.data(), a.size(), 3'050'000);
  f.run(3'100'000, 60'000'000, slow, [](Micros) { return false; });
  EXPECT_EQ(f.origin->counters().redelegations, 0u) << "the late ack still counted";
}

TEST(AckWait, APeerNotYetMeasuredGetsTwoAckTimeouts) {
  AckFixture f;
  f.origin->broadcast({1}, 0);
  const auto sent = delegations(drain(*f.origin));
  const NodeId d = sent.begin()->first;
  f.run(100'000, 900'000, d, [](Micros) { return false; });
  EXPECT_EQ(f.origin->counters().ack_timeouts, 0u) << "timed out before 2 ack timeouts";
  f.run(1'000'000, 1'100'000, d, [](Micros) { return false; });
  EXPECT_EQ(f.origin->counters().ack_timeouts, sent.size()) << "every delegation, at 1 s";
}

TEST(AckWait, ADelegateThatFallsSilentIsReplacedAtTheNextDeadline) {
  AckFixture f;
  f.origin->broadcast({1, 2, 3}, 0);
  const NodeId slow = delegations(drain(*f.origin)).begin()->first;
  // It talks through the first wait, then goes quiet: replaced once the extended wait runs out.
  f.run(100'000, 30'000'000, slow, [](Micros t) { return t <= 400'000; });
  EXPECT_EQ(f.origin->counters().ack_waits, 1u);
  EXPECT_GE(f.origin->counters().ack_timeouts, 1u);
  EXPECT_GE(f.origin->counters().redelegations, 1u);
}

TEST(AckWait, ADelegationThatWaitedForItsLinkIsWaitedForLonger) {
  // A long path: the handshake alone takes most of an ack timeout, and the delegate says nothing
  // before it acks.
  AckFixture f;
  const MessageId id = f.origin->broadcast({1, 2, 3}, 0);
  auto firsts = delegations(drain(*f.origin));
  const NodeId far = firsts.begin()->first;
  for (const auto& [peer, seqs] : firsts)
    if (peer != far) {
      const auto a = ack_from(peer, *f.view, 0, id.seq);
      f.origin->on_frame(peer, Channel::tcp, a.data(), a.size(), 1000);
    }
  // The first wait for a peer not yet measured is 2 ack timeouts (1 s); the handshake takes 0.9 s.
  f.origin->on_link_event(far, LinkEvent::up, 900'000);
  f.run(100'000, 1'200'000, far, [](Micros) { return false; });
  const auto a = ack_from(far, *f.view, 0, id.seq);
  f.origin->on_frame(far, Channel::tcp, a.data(), a.size(), 1'250'000);
  f.run(1'300'000, 30'000'000, far, [](Micros) { return false; });
  EXPECT_EQ(f.origin->counters().ack_waits, 1u);
  EXPECT_EQ(f.origin->counters().redelegations, 0u);
}

TEST(AckWait, ALaterAckMeansTheEarlierDelegationWasLost) {
  // Acks come in order on one connection: a delegate that acked our second delegation and not the
  // first lost the first (it talks, but that proves nothing).
  AckFixture f;
  const MessageId first = f.origin->broadcast({1}, 0);
  auto sent = delegations(drain(*f.origin));
  const NodeId slow = sent.begin()->first;
  f.origin->broadcast({2}, 10);
  for (const auto& [peer, seqs] : delegations(drain(*f.origin))) sent[peer].insert(sent[peer].end(), seqs.begin(), seqs.end());
  ASSERT_EQ(sent[slow].size(), 2u);
  for (const auto& [peer, seqs] : sent)  // every ack but the slow delegate's first
    for (std::uint64_t seq : seqs) {
      if (peer == slow && seq == first.seq) continue;
      const auto a = ack_from(peer, *f.view, 0, seq);
      f.origin->on_frame(peer, Channel::tcp, a.data(), a.size(), 20'000);
    }
  f.run(100'000, 2'000'000, slow, [](Micros) { return true; });
  EXPECT_EQ(f.origin->counters().ack_waits, 0u);
  EXPECT_EQ(f.origin->counters().redelegations, 1u) << "broadcast " << first.seq << " was not handed on";
}

// After `accepted` the sender keeps the delegation until `covered`: the delegate may die with its
// own sends unsent, and only the sender knows the targets.
namespace {
// The origin broadcasts; its first delegate acks `accepted` (it hands on), the others `covered`.
NodeId accepted_by_one(AckFixture& f) {
  const MessageId id = f.origin->broadcast({1, 2, 3}, 0);
  const auto firsts = delegations(drain(*f.origin));
  const NodeId big = firsts.begin()->first;
  for (const auto& [peer, seqs] : firsts) {
    const auto a = ack_from(peer, *f.view, 0, id.seq, peer == big ? wire::AckStatus::accepted : wire::AckStatus::covered);
    f.origin->on_frame(peer, Channel::tcp, a.data(), a.size(), 1000);
  }
  return big;
}
}  // namespace

TEST(CoveredAck, ADelegateThatAcceptedAndThenFailsIsReplaced) {
  AckFixture f;
  const NodeId big = accepted_by_one(f);
  EXPECT_TRUE(f.origin->awaits_delegations());
  f.origin->on_link_event(big, LinkEvent::failed, 50'000);
  std::set<NodeId> again;
  for (const auto& t : drain(*f.origin))
    for (const auto& m : wire::decode_frame(t.bytes).messages)
      if (std::holds_alternative<wire::Broadcast>(m)) again.insert(t.to);
  EXPECT_EQ(f.origin->counters().redelegations, 1u);
  EXPECT_GE(again.size(), 2u) << "its targets were not handed on";
  EXPECT_EQ(again.count(big), 1u) << "its own copy, as a leaf";
}

TEST(CoveredAck, ACoveredDelegationIsDoneAndAnAcceptedOneThatGoesSilentIsHandedOn) {
  AckFixture f;
  const NodeId big = accepted_by_one(f);
  f.run(100'000, 60'000'000, big, [](Micros) { return false; });
  EXPECT_EQ(f.origin->counters().cover_timeouts, 1u);
  EXPECT_EQ(f.origin->counters().ack_timeouts, 0u);
  EXPECT_EQ(f.origin->counters().redelegations, 1u);
  EXPECT_FALSE(f.origin->awaits_delegations());
}

TEST(CoveredAck, ADelegateAnswersCoveredOnceItsOwnDelegationIsCovered) {
  // Node 1 of 16 gets positions 1..8 (itself and 7 more) from node 0 and delegates part of them on.
  auto view = view_of(16);
  NodeConfig cfg;
  cfg.self = 1;
  Node node(cfg, view);
  wire::Broadcast b;
  b.origin = 0;
  b.seq = 1;
  b.round = 1;
  b.incarnation = 1;
  b.payload = {5};
  b.targets.kind = wire::Targets::Kind::view_range;
  b.targets.view_hash = view->hash();
  b.targets.lo = 1;
  b.targets.count = 8;
  const auto f = wire::encode_frame({b});
  node.on_frame(0, Channel::tcp, f.data(), f.size(), 0);
  auto acks_to_0 = [](const std::vector<Transmit>& sent) {
    std::vector<wire::AckStatus> out;
    for (const auto& t : sent)
      for (const auto& m : wire::decode_frame(t.bytes).messages)
        if (const auto* a = std::get_if<wire::Ack>(&m); a && t.to == 0) out.push_back(a->status);
    return out;
  };
  const auto first = drain(node);
  ASSERT_FALSE(first.empty());
  EXPECT_EQ(first.front().to, 0u) << "the ack goes out before the forwarded copies";
  EXPECT_EQ(acks_to_0(first), std::vector<wire::AckStatus>{wire::AckStatus::accepted});
  const auto sub = delegations(first);
  ASSERT_FALSE(sub.empty());
  std::size_t left = sub.size();
  for (const auto& [peer, seqs] : sub) {
    const auto a = ack_from(peer, *view, 0, 1);
    node.on_frame(peer, Channel::tcp, a.data(), a.size(), 2000);
    const auto after = acks_to_0(drain(node));
    if (--left > 0) EXPECT_TRUE(after.empty()) << "covered before its subtree was";
    else EXPECT_EQ(after, std::vector<wire::AckStatus>{wire::AckStatus::covered});
  }
}

namespace {
// An island of members 0, 2, 3, ... (n in all with the sender 1) that hear each other's multicasts
// and reach each other over TCP, 1 ms apart. Sender 1 multicast a beacon that everyone heard, then
// a broadcast that everyone but node 2 heard, then fell silent (it crashed).
struct SilentSender {
  std::shared_ptr<const View> view;
  std::map<NodeId, std::unique_ptr<Node>> nodes;
  std::map<NodeId, std::vector<Delivery>> delivered;
  wire::Broadcast b;
  explicit SilentSender(std::size_t n) : view(view_of(n)) {
    NodeConfig cfg;
    cfg.mode = Mode::mixed;
    for (NodeId i = 0; i < n; ++i) {
      if (i == 1) continue;
      cfg.self = i;
      cfg.seed = 100 + i;
      nodes[i] = std::make_unique<Node>(cfg, view);
    }
    b.origin = 1;
    b.seq = 1;
    b.round = 1;
    b.incarnation = 1;
    b.payload = {7, 7, 7};
    const auto beacon = wire::encode_frame({wire::McastHeader{1, 1, 1}});
    const auto data = wire::encode_frame({wire::McastHeader{1, 2, 1}, b});
    for (auto& [i, node] : nodes) {
      node->on_frame(1, Channel::multicast, beacon.data(), beacon.size(), 0);
      if (i != 2) node->on_frame(1, Channel::multicast, data.data(), data.size(), 10'000);
    }
  }
  void run(Micros until) {
    for (Micros t = 10'000; t <= until; t += 1'000) {
      std::vector<std::pair<NodeId, Transmit>> sent;
      for (auto& [i, n] : nodes) {
        if (n->next_timeout() <= t) n->on_timeout(t);
        for (auto& tx : drain(*n)) sent.emplace_back(i, std::move(tx));
        while (auto d = n->poll_delivery()) delivered[i].push_back(std::move(*d));
      }
      for (auto& [from, tx] : sent)
        for (auto& [i, n] : nodes)
          if (i != from && (tx.channel == Channel::multicast ? true : tx.to == i))
            n->on_frame(from, tx.channel, tx.bytes.data(), tx.bytes.size(), t + 1'000);
    }
  }
  std::uint64_t total(std::uint64_t NodeCounters::*counter) const {
    std::uint64_t sum = 0;
    for (const auto& [i, n] : nodes) sum += n->counters().*counter;
    return sum;
  }
};
}  // namespace

TEST(PeerRepair, AMemberThatHeardASilentSendersLastMulticastRepairsOneThatMissedIt) {
  // No later mseq shows node 2 the gap, and sender 1 repairs nothing any more.
  SilentSender island(3);
  island.run(2'000'000);
  auto& got = island.delivered[2];
  ASSERT_EQ(got.size(), 1u) << "node 2 never got the broadcast it lost";
  EXPECT_EQ(got[0].id, island.b.id());
  EXPECT_EQ(got[0].payload, island.b.payload);
  EXPECT_TRUE(got[0].flags & wire::Broadcast::kRepair);
  EXPECT_EQ(island.nodes[0]->counters().silences_told, 1u);
  EXPECT_EQ(island.nodes[2]->counters().repair_requests, 1u) << "one ask per silence";
  EXPECT_EQ(island.nodes[0]->counters().repairs_sent, 1u);
  EXPECT_EQ(island.nodes[2]->counters().duplicates, 0u);
}

TEST(PeerRepair, ABigIslandTellsASilenceAFewTimesNotOncePerMember) {
  SilentSender island(40);
  island.run(2'000'000);
  ASSERT_EQ(island.delivered[2].size(), 1u);
  EXPECT_GE(island.total(&NodeCounters::silences_told), 1u);
  EXPECT_LE(island.total(&NodeCounters::silences_told), 8u) << "38 members could tell";
  EXPECT_EQ(island.nodes[2]->counters().repair_requests, 1u);
}

namespace {
// Node 1 of 8 gets a delegation from node 0 that it cannot read (ranges of a view it does not hold).
struct Refusal {
  std::shared_ptr<const View> view = view_of(8);
  std::unique_ptr<Node> node;
  wire::Broadcast b;
  Refusal() {
    NodeConfig cfg;
    cfg.self = 1;
    node = std::make_unique<Node>(cfg, view);
    b.origin = 0;
    b.seq = 1;
    b.round = 1;
    b.incarnation = 1;
    b.payload = {9};
    b.targets.kind = wire::Targets::Kind::view_range;
    b.targets.view_hash = view->hash() ^ 1;  // another view
    b.targets.lo = 1;
    b.targets.count = 4;
    const auto f = wire::encode_frame({b});
    node->on_frame(0, Channel::tcp, f.data(), f.size(), 0);
  }
  std::set<NodeId> sent_to(const std::vector<Transmit>& sent) const {
    std::set<NodeId> to;
    for (const auto& t : sent)
      for (const auto& m : wire::decode_frame(t.bytes).messages)
        if (std::holds_alternative<wire::Broadcast>(m)) to.insert(t.to);
    return to;
  }
};
}  // namespace

TEST(Rescue, ARefusedDelegationWhoseSenderFailsIsCoveredByTheRefuser) {
  // It delivered the message, and nobody but the dead sender knew whom it was meant for.
  Refusal r;
  const auto refused = drain(*r.node);
  ASSERT_EQ(refused.size(), 1u);
  const auto ack = wire::decode_frame(refused[0].bytes);
  ASSERT_TRUE(std::holds_alternative<wire::Ack>(ack.messages.front()));
  EXPECT_EQ(std::get<wire::Ack>(ack.messages.front()).status, wire::AckStatus::view_mismatch);
  r.node->on_link_event(0, LinkEvent::failed, 5'000);
  const auto to = r.sent_to(drain(*r.node));
  EXPECT_EQ(r.node->counters().rescues, 1u);
  EXPECT_FALSE(to.empty());
  EXPECT_EQ(to.count(1), 0u);
  // Covering everyone: the sends reach, through delegations, every member but us.
  EXPECT_GE(to.size(), 3u) << "log2 of 8 delegations expected";
}

TEST(Rescue, ARefusedDelegationResentAsAListIsNotRescued) {
  Refusal r;
  drain(*r.node);
  wire::Broadcast list = r.b;
  list.targets = wire::Targets{};
  list.targets.kind = wire::Targets::Kind::id_list;
  list.targets.ids = {1, 2, 3, 4};
  const auto f = wire::encode_frame({list});
  r.node->on_frame(0, Channel::tcp, f.data(), f.size(), 2'000);
  drain(*r.node);
  // The origin's broadcast is covered (done): its failure afterwards leaves nothing to rescue.
  const auto done = wire::encode_frame({wire::Ack{0, 1, wire::AckStatus::done, r.view->hash(), 1}});
  r.node->on_frame(0, Channel::tcp, done.data(), done.size(), 3'000);
  r.node->on_link_event(0, LinkEvent::failed, 5'000);
  r.node->on_timeout(60'000'000);
  EXPECT_EQ(r.node->counters().rescues, 0u);
}

// A delegate that got its copy straight from the origin covers everyone when the origin fails
// before saying its broadcast is done: the origin's sends to others may have died with it.
TEST(Rescue, AnOriginThatFailsBeforeItsBroadcastIsDoneIsCoveredForByItsDelegate) {
  Refusal r;
  wire::Broadcast list = r.b;
  list.seq = 2;
  list.targets = wire::Targets{};
  list.targets.kind = wire::Targets::Kind::id_list;
  list.targets.ids = {1, 2};
  const auto f = wire::encode_frame({list});
  r.node->on_frame(0, Channel::tcp, f.data(), f.size(), 2'000);
  drain(*r.node);
  r.node->on_link_event(0, LinkEvent::failed, 5'000);
  const auto to = r.sent_to(drain(*r.node));
  EXPECT_EQ(r.node->counters().rescues, 2u) << "seq 1 (refused) and seq 2 (taken on)";
  EXPECT_GE(to.size(), 3u) << "covering everyone takes log2 of 8 sends";
}

TEST(Rescue, ALaterWatcherWaitsAndLeavesTheRescueToAnEarlierOne) {
  // The origin's third send reached us: the watchers its first two sends reached rescue first.
  Refusal r;
  wire::Broadcast leaf = r.b;
  leaf.seq = 2;
  leaf.round = 3;
  leaf.targets = wire::Targets{};
  const auto f = wire::encode_frame({leaf});
  r.node->on_frame(0, Channel::tcp, f.data(), f.size(), 2'000);
  drain(*r.node);
  r.node->on_link_event(0, LinkEvent::failed, 5'000);
  drain(*r.node);
  EXPECT_EQ(r.node->counters().rescues, 1u) << "only seq 1 (refused, round 1) at once";
  EXPECT_EQ(r.node->next_timeout(), 5'000 + 2 * 500'000) << "two ack timeouts later";
  // Another watcher's rescue reaches us first: ours is not needed.
  wire::Broadcast rescue = leaf;
  rescue.flags |= wire::Broadcast::kRescue;
  rescue.round = 5;
  const auto g = wire::encode_frame({rescue});
  r.node->on_frame(3, Channel::tcp, g.data(), g.size(), 600'000);
  r.node->on_timeout(2'000'000);
  drain(*r.node);
  EXPECT_EQ(r.node->counters().rescues, 1u);
}

TEST(Rescue, TheOriginSaysDoneToTheDelegatesItSentToDirectly) {
  auto view = view_of(8);
  NodeConfig cfg;
  cfg.self = 0;
  Node origin(cfg, view);
  const MessageId id = origin.broadcast({4, 2}, 0);
  std::set<NodeId> direct;
  const auto first_sends = drain(origin);
  for (const auto& t : first_sends) direct.insert(t.to);
  ASSERT_EQ(direct.size(), 3u);
  std::set<NodeId> told;
  delegations(first_sends);
  for (NodeId d : direct) {
    const auto a = ack_from(d, *view, 0, id.seq);
    origin.on_frame(d, Channel::tcp, a.data(), a.size(), 1'000);
    for (const auto& t : drain(origin))
      for (const auto& m : wire::decode_frame(t.bytes).messages)
        if (const auto* ack = std::get_if<wire::Ack>(&m); ack && ack->status == wire::AckStatus::done) told.insert(t.to);
  }
  EXPECT_EQ(told, direct) << "done goes to every direct delegate and leaf, once the last delegation is covered";
}

TEST(Rescue, ARefusedDelegationIsRescuedWhenItsSenderStaysSilent) {
  Refusal r;
  drain(*r.node);
  ASSERT_LT(r.node->next_timeout(), Micros{60'000'000});
  for (int i = 0; i < 100 && r.node->counters().rescues == 0; ++i) r.node->on_timeout(r.node->next_timeout());
  EXPECT_EQ(r.node->counters().rescues, 1u);
}
