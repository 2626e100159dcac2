// Where mixcastd's incarnation comes from (docs/real-backend.md, "Incarnation").
//
// A message id is (origin, incarnation, seq) and a restarted daemon numbers its broadcasts from 1
// again, so every start must use an incarnation higher than any earlier start of the same node:
// peers keep dedup windows per incarnation and refuse an older one as too old.
//
// The daemon reads STATE_DIR/node-<id>.incarnation, takes
//     incarnation = max(stored + 1, CLOCK_REALTIME in milliseconds)
// and writes it back atomically (temporary file, fsync, rename, fsync of the directory) before it
// sends anything. The stored value keeps the sequence increasing when the clock goes back (boards
// without a real-time clock, NTP steps); the clock floor keeps it increasing when the state file is
// lost or the node ran without one before. With no usable state directory the clock alone decides.
#pragma once
#include <cstdint>
#include <optional>
#include <stdexcept>
#include <string>

#include "mixcast/core/types.hpp"

namespace mixcast::real {

// The state file exists but cannot be trusted (garbage, out of range, unreadable): the daemon must
// not guess, since a guess may repeat an earlier incarnation. what() names the file.
struct StateFileError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

struct IncarnationChoice {
  std::uint64_t incarnation = 0;
  enum class Source { state_file, clock } source = Source::clock;
  std::string state_file;             // the file read and written (empty: none)
  std::optional<std::uint64_t> previous;  // stored in it before this start
  std::string note;                   // why the clock alone decided, or a warning; empty if none
  // One line for the log: "incarnation 1700000000123 (state file /var/lib/mixcast/node-3.incarnation, previous ...)".
  std::string describe() const;
};

// Stored values above this are refused as garbage (the clock in ms reaches it in ~146 million years).
inline constexpr std::uint64_t kMaxIncarnation = std::uint64_t{1} << 62;

// CLOCK_REALTIME in milliseconds (at least 1).
std::uint64_t realtime_ms();

// The state file of node `self` in `state_dir`.
std::string incarnation_file(const std::string& state_dir, NodeId self);

// The default state directory: the first entry of $STATE_DIRECTORY (set by systemd's
// StateDirectory=, /var/lib/mixcast under the packaged unit), or empty.
std::string default_state_dir();

// Chooses this start's incarnation as described above and persists it. `state_dir` empty, missing,
// not a directory or not writable: the clock decides (`note` says why). Throws StateFileError when
// the state file exists but holds anything but one decimal number in [1, kMaxIncarnation].
IncarnationChoice next_incarnation(const std::string& state_dir, NodeId self, std::uint64_t now_ms = realtime_ms());

}  // namespace mixcast::real
