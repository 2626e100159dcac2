// The ns-3 engine's run: the topology, one NodeApp per host, and the RunBook's workload (warm-up,
// wait until islands agree, measured broadcasts, crashes) as scheduled simulator events.
#include "mixcast/sim/ns3_engine.hpp"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <stdexcept>

#include "ns3/config.h"
#include "ns3/node.h"
#include "ns3/nstime.h"
#include "ns3/rng-seed-manager.h"
#include "ns3/simulator.h"
#include "ns3/string.h"
#include "ns3/uinteger.h"

#include "link_bytes.hpp"
#include "mixcast/sim/run_book.hpp"
#include "node_app.hpp"
#include "topology.hpp"

namespace mixcast::sim {
namespace {

using namespace mixcast::ns3sim;

ns3::Time at_seconds(double s) { return ns3::NanoSeconds(static_cast<std::int64_t>(std::llround(s * 1e9))); }
double now_s() { return ns3::Simulator::Now().GetSeconds(); }

constexpr double kTcpStragglers_s = 30;  // 3 + 6 + 12 s of RTO backoff, and some

void configure_ns3(const Scenario& s) {
  // Seeds: ns-3 wants a non-zero 32-bit seed; the run number carries the rest of the scenario seed.
  ns3::RngSeedManager::SetSeed(static_cast<std::uint32_t>(s.seed % 0xFFFFFFFEULL) + 1);
  ns3::RngSeedManager::SetRun(s.seed / 0xFFFFFFFEULL + 1);
  // Linux-like TCP: full-size segments on a 1500-byte MTU, a 200 ms minimum RTO (ns-3's default is 1 s).
  ns3::Config::SetDefault("ns3::TcpSocket::SegmentSize", ns3::UintegerValue(1448));
  ns3::Config::SetDefault("ns3::TcpSocketBase::MinRto", ns3::TimeValue(ns3::MilliSeconds(200)));
  // Connects: a lost SYN (or SYN-ACK) is sent again after 1 s, then 2 s, 4 s (ns-3 doubles the
  // connect timeout per attempt, like Linux); after 3 attempts (7 s) the connect fails and the
  // core hears the link failed. NodeApp has no dial timeout of its own.
  ns3::Config::SetDefault("ns3::TcpSocket::ConnTimeout", ns3::TimeValue(ns3::Seconds(1)));
  ns3::Config::SetDefault("ns3::TcpSocket::ConnCount", ns3::UintegerValue(3));
  // Data: Linux retransmits an unacked segment 15 times (tcp_retries2, about 15 minutes with
  // backoff) before it gives up on a connection; ns-3's default of 6 (12.6 s from a 200 ms RTO)
  // drops connections that are only congested, and the frames TCP had accepted with them.
  ns3::Config::SetDefault("ns3::TcpSocket::DataRetries", ns3::UintegerValue(15));
  // A host that first talks to many neighbours queues more than ARP's default 3 packets each.
  ns3::Config::SetDefault("ns3::ArpCache::PendingQueueSize", ns3::UintegerValue(64));
  // ARP requests wait a random 0-10 ms by default (collision avoidance on radio links): not on a LAN.
  ns3::Config::SetDefault("ns3::ArpL3Protocol::RequestJitter",
                          ns3::StringValue("ns3::ConstantRandomVariable[Constant=0.0]"));
}

class Ns3Run {
 public:
  Ns3Run(const Scenario& s, const RunOptions& opt) : s_(s), opt_(opt), book_(s, "ns3") {}
  ~Ns3Run() {
    apps_.clear();
    ns3::Simulator::Destroy();  // disposes the nodes and their applications before the core nodes go
  }

  RunResult run() {
    const auto wall_start = std::chrono::steady_clock::now();
    configure_ns3(s_);
    Topology topo = build_topology(s_, links_);
    nodes_ = book_.make_nodes();
    env_.book = &book_;
    env_.addresses = topo.addresses;
    for (NodeId i = 0; i < topo.addresses.size(); ++i) env_.by_address[topo.addresses[i].Get()] = i;
    env_.warmup_broadcasts = s_.workload.warmup_broadcasts;
    for (NodeId i = 0; i < nodes_.size(); ++i) {
      auto app = ns3::CreateObject<NodeApp>(env_, *nodes_[i]);
      topo.hosts.Get(i)->AddApplication(app);
      app->SetStartTime(ns3::Seconds(0));
      apps_.push_back(app);
    }

    for (const auto& c : book_.plan_crashes())
      ns3::Simulator::Schedule(at_seconds(c.at_s), [this, n = c.node] {
        if (book_.is_down(n)) return;
        apps_[n]->Crash();
        book_.crashed(n, now_s());
      });
    const auto warm = book_.warmup_starts();
    for (std::uint32_t k = 0; k < warm.size(); ++k) schedule_start(k, warm[k]);
    ns3::Simulator::Schedule(at_seconds(book_.measured_earliest_s()), [this] { check_learned(); });
    ns3::Simulator::Schedule(kWatch, [this] { watch(); });
    ns3::Simulator::Stop(at_seconds(s_.time_limit_s));
    book_.ended(EndReason::time_limit);  // unless watch() ends it first
    ns3::Simulator::Run();

    const double wall_s = std::chrono::duration<double>(std::chrono::steady_clock::now() - wall_start).count();
    const std::uint64_t events = ns3::Simulator::GetEventCount();
    if (opt_.progress) opt_.progress(now_s(), book_.complete() ? 1.0 : book_.done_fraction(), events);
    RunResult r = book_.finish(nodes_, events, now_s(), wall_s);
    r.links = links_.links();
    r.link_rounds = links_.rounds();
    return r;
  }

 private:
  static constexpr double kWatchSeconds = 0.01;
  const ns3::Time kWatch = at_seconds(kWatchSeconds);

  void schedule_start(std::uint32_t index, double at_s) {
    ns3::Simulator::Schedule(at_seconds(at_s) - ns3::Simulator::Now(), [this, index] {
      if (auto origin = book_.start_broadcast(index, nodes_, now_s())) apps_[*origin]->Pump();
    });
  }

  void check_learned() {
    if (book_.waits_for_islands() && !book_.islands_settled(nodes_, now_s())) {
      ns3::Simulator::Schedule(at_seconds(RunBook::kLearnedCheck_s), [this] { check_learned(); });
      return;
    }
    for (const auto& [index, at_s] : book_.measured_starts(now_s())) schedule_start(index, at_s);
  }

  // Progress, and the end: once every broadcast is everywhere, run a little longer so trailing
  // acks and repairs are counted, then stop (mixed mode's periodic traffic never ends).
  void watch() {
    if (opt_.progress) opt_.progress(now_s(), book_.done_fraction(), ns3::Simulator::GetEventCount());
    if (book_.complete()) {
      book_.ended(EndReason::complete);
      ns3::Simulator::Stop(at_seconds(2 * s_.protocol.ack_timeout_s));
      return;
    }
    // Nothing more can be delivered: do not wait for the time limit. But TCP may still resend a lost
    // segment to a live peer (after a retransmitted SYN its RTO starts at 3 s, then doubles): wait
    // for that too, up to kTcpStragglers_s more (ns-3 leaves half-open connections whose data is
    // never acked, so this wait must end).
    const bool tcp_owes = std::any_of(apps_.begin(), apps_.end(), [](const auto& a) { return a->owes_live_peer(); });
    if (book_.quiet(now_s(), nodes_) &&
        (!tcp_owes || now_s() - book_.last_progress_s() >= book_.quiet_window_s() + kTcpStragglers_s)) {
      book_.ended(EndReason::quiet);
      ns3::Simulator::Stop();
      return;
    }
    ns3::Simulator::Schedule(kWatch, [this] { watch(); });
  }

  const Scenario& s_;
  const RunOptions& opt_;
  RunBook book_;
  LinkBytes links_;
  AppEnv env_;
  std::vector<std::unique_ptr<Node>> nodes_;
  std::vector<ns3::Ptr<NodeApp>> apps_;
};

}  // namespace

RunResult run_ns3(const Scenario& scenario, const RunOptions& options) {
  static std::atomic<bool> busy{false};
  if (busy.exchange(true))
    throw std::logic_error("the ns3 engine is already running in this process: ns-3 keeps global state, so "
                           "one ns-3 run per process at a time");
  struct Release {
    ~Release() { busy = false; }
  } release;
  Ns3Run run(scenario, options);
  return run.run();
}

}  // namespace mixcast::sim
