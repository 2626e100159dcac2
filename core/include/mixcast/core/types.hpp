// Basic vocabulary of the protocol core. Standard library only.
#pragma once
#include <cstdint>
#include <string_view>

namespace mixcast {

using NodeId = std::uint32_t;
// Time is injected by the engine, in microseconds since an engine-chosen epoch.
using Micros = std::int64_t;
inline constexpr Micros kNever = INT64_MAX;

enum class Channel : std::uint8_t { local = 0, tcp = 1, multicast = 2 };
enum class Mode : std::uint8_t { tcp = 0, mixed = 1 };
enum class LinkEvent : std::uint8_t { up = 0, down = 1, failed = 2 };

// A broadcast's identity: (origin, incarnation, seq). A node that restarts comes back with a higher
// incarnation and numbers its broadcasts from 1 again, so its new messages are never mistaken for
// duplicates of the old ones (dedup and repair are per incarnation).
struct MessageId {
  NodeId origin = 0;
  std::uint64_t seq = 0;
  std::uint64_t incarnation = 0;
  friend bool operator==(const MessageId& a, const MessageId& b) {
    return a.origin == b.origin && a.seq == b.seq && a.incarnation == b.incarnation;
  }
  friend bool operator!=(const MessageId& a, const MessageId& b) { return !(a == b); }
  friend bool operator<(const MessageId& a, const MessageId& b) {
    if (a.origin != b.origin) return a.origin < b.origin;
    return a.incarnation != b.incarnation ? a.incarnation < b.incarnation : a.seq < b.seq;
  }
};

struct MessageIdHash {
  std::size_t operator()(const MessageId& m) const noexcept {
    return static_cast<std::size_t>((std::uint64_t{m.origin} * 0x9E3779B97F4A7C15ULL) ^ m.seq ^
                                    (m.incarnation * 0xC2B2AE3D27D4EB4FULL));
  }
};

constexpr std::string_view to_string(Channel c) {
  switch (c) {
    case Channel::local: return "local";
    case Channel::tcp: return "tcp";
    case Channel::multicast: return "multicast";
  }
  return "?";
}
constexpr std::string_view to_string(Mode m) { return m == Mode::tcp ? "tcp" : "mixed"; }

// Rounds needed to reach n nodes when every informed node makes one send per round.
constexpr std::uint32_t ceil_log2(std::uint64_t n) {
  std::uint32_t r = 0;
  while ((std::uint64_t{1} << r) < n) ++r;
  return r;
}

}  // namespace mixcast
