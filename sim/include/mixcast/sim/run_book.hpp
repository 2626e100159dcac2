// The engine-independent part of a run: the nodes' configuration and view, which nodes crash
// when, when each broadcast starts and from which origin, and the record of what was delivered
// and sent. Every engine (model, ns3) drives the same RunBook, so for one scenario and seed they
// crash the same nodes, pick the same origins and count traffic and deliveries the same way.
#pragma once
#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "mixcast/core/node.hpp"
#include "mixcast/core/rng.hpp"
#include "mixcast/sim/result.hpp"
#include "mixcast/sim/scenario.hpp"

namespace mixcast::sim {

// The core's configuration for a scenario's protocol section (self and seed still to be set).
NodeConfig node_config(const Scenario& s);

class RunBook {
 public:
  // Mixed mode measures steady state: measured broadcasts wait until every live node plans with
  // the same islands, checked this often, but no longer than kMaxLearning_s after the warm-up.
  static constexpr double kLearnedCheck_s = 0.05;
  static constexpr double kMaxLearning_s = 10.0;

  RunBook(const Scenario& s, std::string engine);

  const Scenario& scenario() const { return s_; }
  std::uint32_t node_count() const { return n_; }

  // One core node per scenario node, all sharing one view (NAT subnets are NAT domains).
  std::vector<std::unique_ptr<Node>> make_nodes();

  struct Crash {
    double at_s;
    NodeId node;
    std::optional<double> restart_after_s;  // the entry's restart_after: back this long after at_s
  };
  // The scenario's crashes resolved to nodes (random picks never take an origin). Call once.
  std::vector<Crash> plan_crashes();

  // Warm-up broadcasts start at these times (broadcast index = position).
  std::vector<double> warmup_starts() const;
  // When measured broadcasts may start: after the warm-up and the core's learning time.
  double measured_earliest_s() const;
  bool waits_for_islands() const { return s_.protocol.mode == Mode::mixed; }
  // Mixed mode: call at measured_earliest_s() and then every kLearnedCheck_s until it returns true.
  // True once every live node has the same island hash, or the learning deadline passed.
  bool islands_settled(const std::vector<std::unique_ptr<Node>>& nodes, double now_s);
  // The measured broadcasts' start times, given when measurement begins (records it).
  std::vector<std::pair<std::uint32_t, double>> measured_starts(double from_s);

  // Starts broadcast `index` at a live origin (the planned one, or the next live node) and returns
  // it; nullopt if every node crashed. The caller then lets the engine send what the origin queued.
  std::optional<NodeId> start_broadcast(std::uint32_t index, std::vector<std::unique_ptr<Node>>& nodes,
                                        double now_s);
  // Node n went down (a crash) at now_s. A node that is down is never an origin.
  void crashed(NodeId n, double now_s);
  // Node n comes back at now_s as a new life: nodes[n] becomes a fresh core node with the next
  // incarnation (its message ids and multicast stream are new). Returns the old core node, which the
  // engine keeps until nothing refers to it. From now on it owes every broadcast that starts.
  std::unique_ptr<Node> restarted(NodeId n, std::vector<std::unique_ptr<Node>>& nodes, double now_s);
  void bad_frame() { ++result_.bad_frames; }
  bool is_down(NodeId n) const { return down_[n]; }
  std::uint32_t life(NodeId n) const { return life_[n]; }  // 0 until the first restart

  // Takes node n's deliveries and records first deliveries (duplicates are counted).
  void take_deliveries(NodeId n, Node& node, double now_s);
  // Attributes one transmit's messages to the broadcasts they are about (or to control traffic).
  void account(const Transmit& t, double now_s);
  // Index of the broadcast a message id belongs to, if it is one of the run's broadcasts.
  std::optional<std::uint32_t> broadcast_index(const MessageId& id) const;

  // Every broadcast started (or skipped) and every live node delivered every started one.
  bool complete() const;
  // Every broadcast started, for quiet_window_s() nothing about them was sent or delivered, no copy
  // is in flight (as far as the engine counts), and no live node waits on a delegation (an ack may
  // still fail and its targets go elsewhere): nothing more will be delivered. Engines stop then
  // rather than at time_limit.
  bool quiet(double now_s, const std::vector<std::unique_ptr<Node>>& nodes) const;
  double quiet_window_s() const;
  double last_progress_s() const { return last_progress_s_; }
  // Engines that see frames in flight count the ones carrying broadcasts (model engine).
  void in_flight(int delta) { in_flight_ += delta; }
  void ended(EndReason why) { result_.end = why; }
  double done_fraction() const;  // share of expected deliveries done so far (0..1)

  // Final tally: counters from the nodes, deliveries sorted by broadcast then time.
  RunResult finish(const std::vector<std::unique_ptr<Node>>& nodes, std::uint64_t events, double simulated_s,
                   double wall_s);

 private:
  wire::Bytes payload_for(std::uint32_t index) const;  // what broadcast `index` carries

  const Scenario& s_;
  std::uint32_t n_ = 0;
  NodeConfig node_config_for(NodeId n) const;  // the core's configuration of node n's current life
  // Whether node n was up without a break from `from_s` to `to_s` (one life all along).
  bool up_throughout(NodeId n, double from_s, double to_s) const;

  std::shared_ptr<const View> view_;  // of make_nodes()
  std::shared_ptr<IslandCache> island_cache_;
  Rng rng_;
  RunResult result_;
  std::map<MessageId, std::uint32_t> index_of_;
  // Per broadcast, per node: whether any life delivered it (deliveries.csv keeps the first), which
  // life (+1) delivered it last, and which life (+1) was up when it started (0: down, owes nothing).
  std::vector<std::vector<bool>> delivered_;
  std::vector<std::vector<std::uint32_t>> delivered_by_life_, owed_by_life_;
  std::vector<bool> down_;
  std::vector<std::uint32_t> life_;
  struct Outage {
    NodeId node;
    double from_s, to_s;  // to_s: when it came back (infinity: never)
  };
  std::vector<Outage> outages_;
  std::uint64_t retired_redelegations_ = 0, retired_repairs_ = 0, retired_forced_ = 0;  // earlier lives
  std::vector<double> start_s_;               // per broadcast
  std::uint64_t expected_total_ = 0, delivered_total_ = 0;
  std::uint32_t total_ = 0;    // broadcasts planned, warm-up included
  std::uint32_t skipped_ = 0;  // broadcasts not started: every node crashed
  std::uint32_t started_ = 0;
  double learning_deadline_s_ = 0;
  double last_progress_s_ = 0;
  double last_start_s_ = 0;  // a broadcast's message sent or first delivered
  std::int64_t in_flight_ = 0;
};

}  // namespace mixcast::sim
