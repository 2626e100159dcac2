// The protocol state machine of one node. Sans-I/O: the engine feeds inputs with the current time
// and pulls outputs; the node never touches a socket, a thread or a clock.
//
//   inputs : broadcast(), on_frame(), on_link_event(), on_timeout()
//   outputs: poll_transmit(), poll_delivery(), next_timeout()
#pragma once
#include <cstdint>
#include <deque>
#include <memory>
#include <optional>
#include <map>
#include <queue>
#include <tuple>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include "mixcast/core/dedup.hpp"
#include "mixcast/core/islands.hpp"
#include "mixcast/core/rng.hpp"
#include "mixcast/core/targets.hpp"
#include "mixcast/core/types.hpp"
#include "mixcast/core/view.hpp"
#include "mixcast/core/wire.hpp"

namespace mixcast {

struct NodeConfig {
  NodeId self = 0;
  Mode mode = Mode::tcp;
  Micros ack_timeout = 500'000;         // re-delegate when a delegate has not acked within this
  std::size_t dedup_window = 4096;      // per origin, see dedup.hpp
  std::size_t max_frame_bytes = 16384;  // small messages to one peer are batched up to this
  std::size_t max_datagram_bytes = 1400;  // multicast heard lists are split to fit a 1500-byte MTU
  std::uint64_t seed = 1;
  // Which life of this node: higher after every restart (the sim counts restarts; mixcastd keeps it
  // in its state file). Part of every message id and multicast header.
  std::uint64_t incarnation = 1;

  // Mixed mode (multicast inside islands, logarithmic TCP across them).
  Micros confirm_interval = 50'000;     // receivers multicast what they heard this often
  Micros beacon_interval = 100'000;     // a multicast beacon when idle, so reachability is learned
  Micros reach_expiry = 1'000'000;      // confirmations older than this no longer count
  double forced_tcp_share = 0.0;        // share of multicast-reachable island members also sent over TCP
  std::size_t retention = 1024;         // multicasts kept for repair
  std::uint32_t nat_links = 2;          // a NATed node keeps outbound links to this many gateways
};

// How long mixed mode needs, from a cold start, before islands are learned and announced
// cluster-wide: beacons heard, confirmations back, an announcement disseminated. Engines wait this
// long before measuring; traffic before it is correct but uses more TCP.
inline Micros learning_time(const NodeConfig& c) {
  return c.mode == Mode::mixed ? 3 * c.beacon_interval + 4 * c.confirm_interval + 4 * c.ack_timeout / 10 : 0;
}

// How often a NATed node says hello to its gateways (keeping the links only it can open alive).
// Engines that hold frames for a NATed peer until it connects wait at least twice this long.
inline Micros nat_keepalive_interval(const NodeConfig& c) { return 2 * c.ack_timeout; }

inline constexpr NodeId kMulticastGroup = UINT32_MAX;  // Transmit::to of a multicast

// What a message is for. A frame may batch messages of several kinds; Transmit tallies them.
//   data: a broadcast sent by the plan (delegations, leaves, multicasts, relays)
//   forced: a TCP copy to a member that should have heard the multicast (forced_tcp_share)
//   repair: a broadcast resent because a multicast was missed
enum class TrafficKind : std::uint8_t { data, ack, control, repair, forced };

// One message of a frame, for accounting: which broadcast it is about, what for, its encoded size.
struct TransmitPart {
  std::optional<MessageId> subject;
  TrafficKind kind = TrafficKind::data;
  std::uint32_t bytes = 0;
};

struct Transmit {
  NodeId to = 0;                     // a peer, or kMulticastGroup
  Channel channel = Channel::tcp;    // tcp or multicast
  wire::Bytes bytes;                 // one frame body; stream engines add wire::append_stream_frame
  std::uint32_t round = 0;           // round of the first broadcast message carried (0 if none)
  std::optional<MessageId> subject;  // the broadcast the first data/ack message is about
  TrafficKind kind = TrafficKind::data;  // of the first message
  std::uint32_t messages = 0;
  std::vector<TransmitPart> parts;  // one per message; frame overhead is not in their bytes
  std::size_t wire_size() const {
    return channel == Channel::tcp ? wire::stream_frame_size(bytes.size()) : bytes.size();
  }
};

struct Delivery {
  MessageId id;
  std::uint32_t round = 0;
  Channel channel = Channel::local;
  std::uint8_t flags = 0;  // wire::Broadcast flags of the copy that delivered (forced, repair)
  wire::Bytes payload;
};

struct NodeCounters {
  std::uint64_t broadcasts = 0;       // originated here
  std::uint64_t delivered = 0;
  std::uint64_t duplicates = 0;       // copies that arrived after the first (not delivered again)
  std::uint64_t too_old = 0;          // refused: older than the dedup window
  std::uint64_t frames_in = 0;
  std::uint64_t bad_frames = 0;       // frames that failed to decode
  std::uint64_t bad_targets = 0;      // decodable but nonsensical delegations
  std::uint64_t delegations = 0;      // sends that handed over targets
  std::uint64_t acks_received = 0;
  std::uint64_t ack_timeouts = 0;
  std::uint64_t cover_timeouts = 0;   // delegates that acked but went silent before their subtree was covered
  std::uint64_t ack_waits = 0;        // ack deadlines extended: the delegate is alive, our stream to it behind
  std::uint64_t link_failures = 0;
  std::uint64_t redelegations = 0;    // failed delegations whose targets were handed on again
  std::uint64_t view_mismatches = 0;  // delegations resent as id lists
  // mixed mode
  std::uint64_t multicasts = 0;       // data multicasts sent
  std::uint64_t beacons = 0;
  std::uint64_t heard_lists = 0;      // multicast confirmations (each also serves as a beacon)
  std::uint64_t confirms_sent = 0;    // TCP confirmations, to senders that do not hear our lists
  std::uint64_t repair_requests = 0;  // gaps detected in someone's multicast sequence
  std::uint64_t repairs_sent = 0;     // messages resent over TCP (asked for, or missing confirmations)
  std::uint64_t silences_told = 0;    // multicast confirmations of a sender that fell silent
  std::uint64_t forced_tcp = 0;       // TCP copies to multicast-reachable members
  std::uint64_t unconfirmed_tcp = 0;  // TCP sends to island members that have not confirmed hearing us
  std::uint64_t announcements = 0;    // island announcements originated
  std::uint64_t relayed = 0;          // delegations forwarded to a NATed node as its gateway
  std::uint64_t rescues = 0;          // we covered everyone: the sender of a delegation we refused, or an
                                      // origin we watched, failed before its broadcast was covered
};

class Node {
 public:
  // Throws std::invalid_argument if `self` is not a member of `view`. Nodes of one process that
  // run on one thread may share `island_cache` (see IslandCache); nullptr gives the node its own.
  Node(NodeConfig config, std::shared_ptr<const View> view, std::shared_ptr<IslandCache> island_cache = nullptr);

  // ---- inputs ----
  MessageId broadcast(wire::Bytes payload, Micros now);
  // One frame body from `from` (stream framing already removed). Returns the decode error, if any;
  // bad frames are counted and otherwise ignored.
  wire::DecodeError on_frame(NodeId from, Channel channel, const std::uint8_t* data, std::size_t len, Micros now);
  void on_link_event(NodeId peer, LinkEvent event, Micros now);
  void on_timeout(Micros now);

  // ---- outputs ----
  std::optional<Transmit> poll_transmit();
  std::optional<Delivery> poll_delivery();
  Micros next_timeout();  // kNever when nothing is scheduled

  // ---- introspection ----
  NodeId id() const { return cfg_.self; }
  const View& view() const { return *view_; }
  const NodeCounters& counters() const { return counters_; }
  bool suspects(NodeId peer) const { return suspected_.count(peer) != 0; }
  // Whether this node still waits on a delegation of an application broadcast: for its ack, or
  // (one it refused) for the sender to resend it readably. Until then it may hand targets on.
  bool awaits_delegations() const;
  wire::Bytes hello_frame() const;  // what an engine sends first on a new connection
  // Whether this node may open a connection to `peer`: not to a node behind a NAT it is not in
  // (that node dials its gateways; frames for it wait for its connection).
  bool dialable(NodeId peer) const { return !view_->behind_nat(peer) || view_->same_nat(cfg_.self, peer); }
  // The island view as this node knows it (mixed mode); in TCP mode every node is its own island.
  std::size_t island_count() const;
  std::uint64_t island_hash() const;  // equal on two nodes when they plan with the same islands
  const IslandView& islands() const { return islands_; }
  const Reachability& reachability() const { return reach_; }

 private:
  void hello_gateways();  // a NATed node: a hello to each of its gateways (opens the links)
  // A healthy hearer names us in a heard list at least every beacon interval (ticks add up to a
  // confirm interval): not hearing from it for longer than this means it has gone silent.
  Micros silent_after() const { return 2 * cfg_.beacon_interval + cfg_.confirm_interval; }
  void hearer_confirmed(NodeId n, std::uint64_t highest, Micros now);  // tail repair after a silence
  // Others' multicast broadcasts are kept this long: a member that missed one from a sender that
  // then fell silent asks us (see tick). Long enough for the silence to be noticed and told.
  Micros keep_for() const { return cfg_.reach_expiry + silent_after(); }
  void keep(NodeId sender, std::uint64_t incarnation, std::uint64_t mseq, const wire::Broadcast& b, Micros now);
  void tell_silences(Micros now);  // see tick
  void silence_told(NodeId from, const wire::Confirm& c, Micros now);
  void resend_kept(NodeId to, const wire::RepairRequest& r);
  struct Active {  // a broadcast this node still works on or has delegations outstanding for
    std::shared_ptr<const wire::Bytes> payload;
    std::uint8_t flags = 0;   // kControl for island announcements
    std::uint32_t round = 0;  // round in which this node received it
    std::uint32_t sends = 0;  // sends made so far: the k-th send reaches round + k
    std::uint32_t pending = 0;
    bool relay_only = false;  // held only to relay it to a NATed node, not received for ourselves
    std::vector<NodeId> told_done;  // our own broadcast: delegates that watch us until `done`
  };
  // A delegation straight from the origin. If the origin fails before its broadcast is covered
  // (frames to other delegates may have died with it), we cover everyone: no member misses what we
  // delivered. Its `done` ends the watch; so does age (watch_for).
  struct Watch {
    Micros until = 0;
    std::uint32_t round = 0;  // in which the origin's copy reached us: its k-th send
    std::shared_ptr<const wire::Bytes> payload;
    // The origin failed: we cover everyone then, unless another watcher's rescue reaches us first.
    // Watchers go one ack timeout apart, in the order the origin sent to them, so one rescue is
    // the rule and more happen only when the earlier watchers are gone too.
    Micros rescue_at = kNever;
  };
  void rescue_due(Micros now);
  // A delegation we acked `accepted`: its sender gets `covered` once every delegation we made of its
  // targets (and those handed on again after a failure) is covered. Per delegation, not per message:
  // each one waits only on strictly smaller sets, so waits never form a cycle.
  struct Duty {
    NodeId upstream = 0;
    std::uint64_t token = 0;  // the upstream's, echoed in our acks
    MessageId id;
    std::uint32_t open = 0;  // our pending delegations made for it
  };
  struct Pending {
    NodeId peer = 0;  // who must ack: the delegate, or the gateway relaying to it
    NodeId head = 0;  // the delegate
    MessageId id;
    TargetSet set;  // the delegated set (node or island positions), the delegate's unit first
    Micros deadline = 0;
    std::uint32_t relay_tries = 0;  // through a gateway: how many gateways failed it before
    Micros sent_at = 0;
    Micros waiting_since = 0;       // start of the current wait (the send, or the last extension)
    std::uint32_t extensions = 0;   // waits extended because the peer is alive and behind (see there)
    bool accepted = false;          // acked `accepted`: now waiting for `covered` (see cover_wait)
    std::uint64_t duty = 0;         // the duty it was made for (0: our own broadcast, a rescue)
  };
  // What we know of a peer's TCP stream to us, to tell a peer that is behind from one that is gone.
  struct PeerProgress {
    Micros last_frame = kNever;       // when its last frame arrived (kNever: none yet)
    Micros link_up_at = -1;           // when our link to it last came up (-1: never seen)
    std::uint64_t latest_acked = 0;   // token of the latest delegation to it that it acked
    Micros srtt = 0, rttvar = 0;      // delegation to ack, smoothed as RFC 6298 does (0: no sample)
  };
  Micros ack_wait(NodeId peer) const;  // the first wait for an ack from `peer`
  // After `accepted`, how long a delegate may take until `covered`: a wait per level of its subtree.
  Micros cover_wait(const Pending& p) const;
  void ack_delegation(NodeId to, const MessageId& id, wire::AckStatus status, std::uint64_t token,
                      std::size_t frame_mark);
  void settle(const Pending& p);  // p is no longer pending: its duty may be done
  void close_duty(std::uint64_t duty);  // one open part of a duty is done
  // A multicast of a broadcast we cover is part of the cover: done once every member we counted on
  // as a hearer confirmed hearing past it (or asked for it), or was resent it over TCP.
  struct McastDuty {
    std::uint64_t duty = 0;  // the delegation it is for; 0: our own broadcast (we hold it instead)
    MessageId id;
    std::uint64_t mseq = 0;
    Micros sent_at = 0;
    std::vector<NodeId> counted;
  };
  void settle_multicasts(Micros now);  // see tick
  static void sample_ack_delay(PeerProgress& p, Micros sample);
  bool still_coming(const Pending& p, std::uint64_t token, Micros now) const;
  struct Outgoing {
    NodeId to;
    Channel channel;
    wire::FrameBuilder frame;
    std::uint32_t round;
    std::optional<MessageId> subject;
    TrafficKind kind;
    std::vector<TransmitPart> parts;
    void add(const wire::Message& m, std::optional<MessageId> about, TrafficKind k) {
      const std::size_t before = frame.size();
      frame.add(m);
      parts.push_back(TransmitPart{about, k, static_cast<std::uint32_t>(frame.size() - before)});
    }
  };
  struct Kept {  // another member's multicast broadcast, kept a while (see keep_for)
    NodeId sender;
    std::uint64_t incarnation, mseq;
    Micros at;
    wire::Broadcast message;
  };
  struct Retained {  // a multicast kept for repair
    std::uint64_t mseq;
    Micros at;
    std::optional<wire::Broadcast> message;  // empty for beacons
  };

  bool mixed() const { return cfg_.mode == Mode::mixed; }
  MessageId start(wire::Bytes payload, std::uint8_t flags, Micros now);
  void cover_everyone(const MessageId& id, Micros now);  // as the origin plans: every other member
  // A delegation we could not read (view mismatch) waits for its sender to resend it as a list. If
  // the sender fails first, nobody else knows its targets: we cover everyone (duplicates are
  // dropped), so that no member misses a message we delivered.
  struct Refused {
    NodeId sender = 0;
    Micros deadline = 0;
    std::uint32_t round = 0;
    std::uint8_t flags = 0;
    std::shared_ptr<const wire::Bytes> payload;
  };
  void rescue(const MessageId& id, Micros now);
  void watch(const wire::Broadcast& b, Micros now);
  void tell_done_later(const MessageId& id, Active& a, NodeId to);  // an origin's direct send: `done` at the end
  void rescue_watched(NodeId origin, Micros now);  // the origin's link failed
  Micros watch_for() const;
  void handle(NodeId from, Channel channel, wire::Message&& m, Micros now);
  void handle_broadcast(NodeId from, Channel channel, wire::Broadcast&& b, Micros now);
  void handle_ack(NodeId from, const wire::Ack& a, Micros now);
  void handle_repair_request(NodeId from, const wire::RepairRequest& r);
  void resend(NodeId to, std::uint64_t first_mseq, std::uint64_t last_mseq);  // retained multicasts over TCP
  void accept(const wire::Broadcast& b, Channel channel, Micros now);
  bool interpret_targets(const wire::Broadcast& b, TargetSet& out);
  Active& hold(const MessageId& id, std::uint32_t round, std::uint8_t flags, const wire::Bytes& payload,
               bool relay = false);
  void release(const MessageId& id);
  void cover(const MessageId& id, TargetSet rest, Micros now);
  void delegate(const MessageId& id, TargetSet set, Micros now);
  void take_own_copy(const MessageId& id, Micros now);  // see there
  void send_delegation(const MessageId& id, NodeId head, TargetSet set, Micros now, bool as_list = false,
                       std::optional<std::uint32_t> relay_round = std::nullopt);
  void cover_own_island(const MessageId& id, IdRange island, Micros now);  // one multicast, TCP where unheard
  IdRange island_members(const TargetSet& set, std::size_t i) const;  // of a set over islands
  TargetSet listed_islands(const TargetSet& set) const;  // a set of island ranks as listed islands
  void fail_pending(std::uint64_t token, Micros now);
  std::optional<NodeId> pick_island_delegate(IdRange members, const MessageId& id) const;
  std::optional<NodeId> gateway_for(NodeId natted) const;  // nullopt: connect directly
  wire::Broadcast message_for(const MessageId& id, const Active& a) const;
  // No targets and no ack, except through a NATed member's gateway (see there).
  void send_leaf(const MessageId& id, Active& a, NodeId to, std::uint8_t flags, Micros now);
  void leaf_to_suspect(const MessageId& id, NodeId suspect, Micros now);  // a copy for a peer we stopped delegating to
  void await_ack(Active& a, NodeId peer, NodeId head, const MessageId& id, TargetSet set, Micros now);
  // One datagram: our header, then `extra` (a heard list, confirmations), then the broadcast if any.
  void multicast(std::optional<wire::Broadcast> b, Micros now, std::vector<wire::Message> extra = {});
  void multicast_heard(const std::vector<NodeId>& heard, Micros now);  // sorted ids, in datagram-sized lists
  std::uint64_t mseq_sent_by(Micros t) const;  // our last multicast sent at or before t (0: none retained)
  const Retained* retained(std::uint64_t mseq) const;  // nullptr if not (or no longer) kept
  void tick(Micros now);
  void announce_island(Micros now);
  void enqueue(NodeId to, Channel channel, const wire::Message& m, std::uint32_t round,
               std::optional<MessageId> subject, TrafficKind kind);

  static constexpr std::uint64_t kControlSeqBit = 1ULL << 63;  // island announcements' own seq space

  NodeConfig cfg_;
  std::shared_ptr<const View> view_;
  std::uint32_t self_rank_ = 0;
  Rng rng_;
  NodeCounters counters_;
  std::uint64_t next_seq_ = 1;
  std::uint64_t next_control_seq_ = 1;
  DedupTable dedup_;  // application broadcasts; island announcements are deduplicated by IslandView

  std::unordered_map<MessageId, Active, MessageIdHash> active_;
  std::unordered_map<std::uint64_t, Pending> pending_;  // by token
  using Deadline = std::pair<Micros, std::uint64_t>;
  std::priority_queue<Deadline, std::vector<Deadline>, std::greater<>> deadlines_;  // lazy: stale tokens skipped
  std::uint64_t next_token_ = 1;
  std::uint32_t relay_tries_ = 0;  // while fail_pending resends through another gateway (see there)
  std::unordered_map<std::uint64_t, Duty> duties_;
  std::uint64_t next_duty_ = 1;
  std::uint64_t current_duty_ = 0;  // the duty delegations made now are for (see handle_broadcast)
  std::vector<McastDuty> mcast_duties_;  // by sending time
  std::unordered_set<NodeId> suspected_;     // peers whose delegation failed: skipped until heard from
  std::unordered_map<NodeId, PeerProgress> progress_;
  std::map<MessageId, Refused> refused_;
  std::map<std::uint64_t, Micros> given_up_;  // delegations whose ack timed out, by token: when they were sent
  std::map<MessageId, Watch> watched_;
  std::deque<std::pair<Micros, MessageId>> watch_expiry_;  // by `until`, for pruning
  Micros next_rescue_ = kNever;  // the earliest rescue_at scheduled (may be stale: a wake-up too many)
  std::unordered_set<NodeId> foreign_view_;  // peers known to hold another view: send id lists
  // A NATed node says hello to its gateways this often: a gateway that restarted lost the link and
  // cannot dial it back, and the hello on a dead link makes the link fail and open again.
  Micros next_keepalive_ = kNever;

  // mixed mode
  Reachability reach_;
  IslandView islands_;
  std::uint64_t mseq_ = 0;
  std::vector<Retained> retained_;  // ring of cfg_.retention entries
  std::deque<Kept> kept_;  // by arrival
  Micros next_tell_ = kNever;  // the earliest silence to tell (see tell_silences)
  Micros next_tick_ = 0;
  Micros last_beacon_ = 0;
  Micros last_list_ = 0;  // heard lists go out this often even while data multicasts replace beacons
  std::uint64_t list_covers_mseq_ = 0;  // what a heard list naming us confirms (see tick)
  std::vector<NodeId> announced_;   // last island this node announced as leader
  Micros announced_at_ = 0;
  std::vector<NodeId> candidate_;   // island seen at the last tick, announced once it holds
  Micros candidate_since_ = 0;

  std::vector<Outgoing> out_;
  std::size_t out_head_ = 0;
  std::unordered_map<NodeId, std::size_t> open_batch_;  // dest -> index in out_
  std::vector<Delivery> deliveries_;
  std::size_t delivery_head_ = 0;
};

}  // namespace mixcast
