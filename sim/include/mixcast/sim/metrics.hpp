// Turns a RunResult into the machine-readable outputs (summary.json, deliveries.csv,
// broadcasts.csv) and a short human summary. Every engine's results go through here, so
// the figures of the model, ns3 and real engines are computed the same way.
#pragma once
#include <stdexcept>
#include <string>

#include <nlohmann/json.hpp>

#include "mixcast/sim/result.hpp"

namespace mixcast::sim {

// The output directory or one of its files cannot be created or written. what() names the path.
class OutputError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// summary.json. Statistics cover the measured broadcasts only (warm-up broadcasts are
// summarised apart under "warmup"). Definitions:
// - a node is live if it never crashed (crashed_at_s[node] < 0); restarted nodes are not live here
//   (their deliveries are checked life by life through `missing`, see invariants.hpp);
// - expected = measured broadcasts x live nodes; delivered = first deliveries of measured
//   broadcasts at live nodes (the origin's local delivery counts, round 0);
//   delivery_ratio = delivered / expected (1 when nothing is expected);
// - rounds.max/p50/p99 over all those deliveries; rounds.lower_bound = ceil(log2 n) in TCP
//   mode (n = live nodes) and ceil(log2 S) + 1 in mixed mode (S = result.islands, n if 0);
// - time_to_last_delivery_s: per broadcast the latest delivery, then p50/p99/max over broadcasts;
// - messages/bytes: sums of the per-broadcast traffic; control traffic is reported apart.
// Percentiles are nearest-rank: the smallest value with at least p% of the values <= it.
// Empty sets give 0.
nlohmann::json summarize(const RunResult& result);

// Creates `dir` (and its parents) and writes summary.json, deliveries.csv and broadcasts.csv.
// The CSVs hold every broadcast including warm-up ones, and are byte-identical for identical
// results (times printed with 9 fixed decimals). Throws OutputError.
void write_outputs(const RunResult& result, const nlohmann::json& summary, const std::string& dir);

// Creates `dir` (and its parents) and checks that a file can be written in it. Throws OutputError.
// Lets a command fail on a bad --out before it spends time on a run.
void ensure_writable_dir(const std::string& dir);

// A few lines (ending with a newline) for people: what ran, delivery, rounds vs the lower
// bound, time to last delivery, bytes per broadcast by channel.
std::string human_summary(const nlohmann::json& summary);

}  // namespace mixcast::sim
