// Wire format v1 (docs/wire-format.md). Encoding appends to byte vectors; decoding never trusts
// a length and reports problems as a DecodeError value, never by throwing or by undefined behaviour.
#pragma once
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string_view>
#include <string>
#include <variant>
#include <vector>

#include "mixcast/core/types.hpp"

namespace mixcast::wire {

using Bytes = std::vector<std::uint8_t>;

inline constexpr std::uint8_t kVersion = 2;  // 2: incarnations in ids, headers and hellos
inline constexpr std::size_t kMaxFrameBytes = 1u << 20;    // one frame body, any channel
inline constexpr std::size_t kMaxPayloadBytes = 64u << 10;  // one broadcast payload
inline constexpr std::size_t kMaxVarintBytes = 10;

enum class MsgType : std::uint8_t {
  hello = 1,
  broadcast = 2,
  ack = 3,
  mcast_header = 4,
  confirm = 5,
  repair_request = 6,
  island_digest = 7,
  heard_list = 8,
};

// The set of targets a broadcast's receiver becomes responsible for (receiver first).
struct Targets {
  enum class Kind : std::uint8_t {
    none = 0,        // a leaf send: deliver only
    view_range = 1,  // positions [lo, lo+count) of a shared view, rotated to start at the origin
    id_list = 2,     // explicit ids: the fallback when the receiver's view differs
    island_list = 3,  // explicit islands: the fallback when only the receiver's island view differs
  };
  Kind kind = Kind::none;
  std::uint64_t view_hash = 0;  // view_range: which view the positions index
  std::uint32_t lo = 0;
  std::uint32_t count = 0;
  std::vector<NodeId> ids;  // id_list; island_list: the islands' members, island after island
  // island_list: island i is the next island_sizes[i] ids, ascending; the receiver is in island 0.
  // Encoded as ascending deltas: a 64-node subnet with consecutive ids takes about 66 bytes.
  std::vector<std::uint32_t> island_sizes;

  std::size_t size() const {
    return kind == Kind::view_range    ? count
           : kind == Kind::id_list     ? ids.size()
           : kind == Kind::island_list ? island_sizes.size()
                                       : 0;
  }
  friend bool operator==(const Targets& a, const Targets& b) {
    return a.kind == b.kind && a.view_hash == b.view_hash && a.lo == b.lo && a.count == b.count && a.ids == b.ids &&
           a.island_sizes == b.island_sizes;
  }
};

struct Hello {
  NodeId node = 0;
  std::uint64_t view_hash = 0;
  std::uint64_t incarnation = 0;  // the sender's: a higher one than before means it restarted
  friend bool operator==(const Hello& a, const Hello& b) {
    return a.node == b.node && a.view_hash == b.view_hash && a.incarnation == b.incarnation;
  }
};

struct Broadcast {
  // flags
  static constexpr std::uint8_t kControl = 1;  // an island announcement, not application data
  static constexpr std::uint8_t kForced = 2;   // a TCP copy to a multicast-reachable node
  static constexpr std::uint8_t kRepair = 4;   // resent because a multicast was missed
  static constexpr std::uint8_t kRelay = 8;    // receiver forwards it to relay_to (NAT gateway)
  static constexpr std::uint8_t kRescue = 16;  // sent by a member covering everyone for a failed origin
  static constexpr std::uint8_t kKnownFlags = 31;

  NodeId origin = 0;
  std::uint64_t seq = 0;
  std::uint32_t round = 0;  // the round in which the receiver receives this message
  std::uint8_t flags = 0;
  NodeId relay_to = 0;      // only with kRelay
  Targets targets;
  Bytes payload;
  std::uint64_t incarnation = 0;  // the origin's (part of the message id)
  // A delegation (targets not none): the sender's name for it, echoed in its acks. One message may
  // go to one peer in several delegations (relays for two NATed heads, a re-delegation), and
  // `covered` comes in the order subtrees finish, not the order they came.
  std::uint64_t token = 0;
  MessageId id() const { return MessageId{origin, seq, incarnation}; }
  friend bool operator==(const Broadcast& a, const Broadcast& b) {
    return a.origin == b.origin && a.seq == b.seq && a.round == b.round && a.flags == b.flags &&
           a.relay_to == b.relay_to && a.targets == b.targets && a.payload == b.payload &&
           a.incarnation == b.incarnation && a.token == b.token;
  }
};

// accepted: the delegate holds the message and works on its targets; covered: and every delegation
// it made of them has been acked covered in turn (the whole subtree has it). A delegate with nothing
// to hand on answers covered at once; otherwise accepted now, covered later. Its sender keeps the
// delegation until covered, and re-delegates it if the delegate's link fails before.
// done: sent by the origin, once its whole broadcast is covered, to the delegates it handed targets
// to directly; until then they watch the origin, and cover everyone if it fails (Node::watch).
enum class AckStatus : std::uint8_t { accepted = 0, view_mismatch = 1, covered = 2, done = 3 };

struct Ack {
  NodeId origin = 0;
  std::uint64_t seq = 0;
  AckStatus status = AckStatus::accepted;
  std::uint64_t view_hash = 0;  // the acker's view, so a sender can fall back to id lists
  std::uint64_t incarnation = 0;  // of the acknowledged message's origin
  std::uint64_t token = 0;        // the delegation's (Broadcast::token); 0 in `done`
  friend bool operator==(const Ack& a, const Ack& b) {
    return a.origin == b.origin && a.seq == b.seq && a.status == b.status && a.view_hash == b.view_hash &&
           a.incarnation == b.incarnation && a.token == b.token;
  }
};

// First message of every multicast datagram: who sent it and that sender's multicast sequence number.
// Each incarnation of a sender numbers its multicasts from 1.
struct McastHeader {
  NodeId sender = 0;
  std::uint64_t mseq = 0;
  std::uint64_t incarnation = 0;
  friend bool operator==(const McastHeader& a, const McastHeader& b) {
    return a.sender == b.sender && a.mseq == b.mseq && a.incarnation == b.incarnation;
  }
};

// A receiver tells a multicast sender what it heard: highest mseq seen, and how many of the last
// `window` datagrams arrived. Sent now and then, not per message (amortised, O(1) bytes).
// Over TCP to the sender itself; multicast to the island when the sender fell silent (a member
// that heard less asks the confirmer for the rest, see Node::tick).
struct Confirm {
  NodeId sender = 0;  // whose multicasts were heard
  std::uint64_t highest_mseq = 0;
  std::uint32_t received = 0;
  std::uint64_t incarnation = 0;  // the sender's incarnation whose mseqs these are
  friend bool operator==(const Confirm& a, const Confirm& b) {
    return a.sender == b.sender && a.highest_mseq == b.highest_mseq && a.received == b.received &&
           a.incarnation == b.incarnation;
  }
};

// Ask a multicast sender to resend, over TCP, what it multicast in [from_mseq, to_mseq]; or ask an
// island member that confirmed more of a silent sender's stream than we heard (sender is not the
// one asked) to resend what it kept of it.
struct RepairRequest {
  NodeId sender = 0;
  std::uint64_t from_mseq = 0;
  std::uint64_t to_mseq = 0;
  std::uint64_t incarnation = 0;  // the sender's incarnation whose mseqs these are
  friend bool operator==(const RepairRequest& a, const RepairRequest& b) {
    return a.sender == b.sender && a.from_mseq == b.from_mseq && a.to_mseq == b.to_mseq &&
           a.incarnation == b.incarnation;
  }
};

// Islands as the sender sees them: for each island, its member ids. Carries a hash so receivers can
// tell whether they share the sender's island view.
struct IslandDigest {
  std::uint64_t epoch = 0;
  std::vector<std::vector<NodeId>> islands;
  friend bool operator==(const IslandDigest& a, const IslandDigest& b) {
    return a.epoch == b.epoch && a.islands == b.islands;
  }
};

// The senders a receiver heard since its last list, multicast to its island about once per beacon
// interval: one datagram confirms to every sender at once, where a Confirm per sender over TCP costs
// n^2 messages per island. Sorted runs of consecutive ids, so a subnet of consecutively numbered
// nodes costs a few bytes whatever its size. Runs are disjoint and not adjacent.
struct HeardList {
  struct Run {
    NodeId first = 0;
    std::uint32_t count = 0;  // ids [first, first + count), count >= 1
    friend bool operator==(const Run& a, const Run& b) { return a.first == b.first && a.count == b.count; }
  };
  std::vector<Run> runs;
  bool contains(NodeId id) const;
  friend bool operator==(const HeardList& a, const HeardList& b) { return a.runs == b.runs; }
};

using Message = std::variant<Hello, Broadcast, Ack, McastHeader, Confirm, RepairRequest, IslandDigest, HeardList>;

enum class DecodeError : std::uint8_t {
  none = 0,
  truncated,
  bad_varint,
  bad_version,
  unknown_type,
  oversized,
  bad_value,
  trailing_bytes,
  empty,
};
std::string_view to_string(DecodeError e);

// ---- primitives ----
void put_varint(Bytes& out, std::uint64_t v);
// Encoded size of a HeardList run after a run that ended at `previous_end` (none for the first), so
// a sender can fill datagrams up to a size without encoding twice.
std::size_t heard_run_size(const HeardList::Run& run, std::optional<std::uint64_t> previous_end);
void put_u64(Bytes& out, std::uint64_t v);  // fixed 8 bytes, little endian (hashes)
std::size_t varint_size(std::uint64_t v);

// ---- frames ----
// A frame body is: version byte, then one or more messages, each `type, varint body_len, body`.
class FrameBuilder {
 public:
  FrameBuilder();
  void add(const Message& m);
  std::size_t size() const { return bytes_.size(); }
  std::size_t message_count() const { return count_; }
  bool empty() const { return count_ == 0; }
  Bytes take();
 private:
  Bytes bytes_;
  std::size_t count_ = 0;
};

Bytes encode_frame(const std::vector<Message>& messages);

struct Decoded {
  std::vector<Message> messages;
  DecodeError error = DecodeError::none;
  std::size_t error_offset = 0;
  bool ok() const { return error == DecodeError::none; }
};
Decoded decode_frame(const std::uint8_t* data, std::size_t len);
inline Decoded decode_frame(const Bytes& b) { return decode_frame(b.data(), b.size()); }

// One line for people reading traces: the message's type and fields, payloads by size only.
std::string describe(const Message& m);
// Every message of a frame body, separated by "; ", or the decode error.
std::string describe_frame(const std::uint8_t* data, std::size_t len);

// ---- stream framing (TCP): varint body length, then the body ----
void append_stream_frame(Bytes& out, const Bytes& body);
inline std::size_t stream_frame_size(std::size_t body) { return varint_size(body) + body; }

// Splits a byte stream into frame bodies. Feed what arrived; pop complete bodies.
// A length above kMaxFrameBytes or a bad length varint poisons the stream (error() says why):
// the engine should drop that connection.
class StreamReader {
 public:
  explicit StreamReader(std::size_t max_frame = kMaxFrameBytes) : max_frame_(max_frame) {}
  void feed(const std::uint8_t* data, std::size_t len);
  std::optional<Bytes> next();
  DecodeError error() const { return error_; }
  std::size_t buffered() const { return buf_.size() - pos_; }
 private:
  Bytes buf_;
  std::size_t pos_ = 0;
  std::size_t max_frame_;
  DecodeError error_ = DecodeError::none;
};

}  // namespace mixcast::wire
