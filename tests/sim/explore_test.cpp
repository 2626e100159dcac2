// The pieces of `mixcast-sim explore`: random cases, scenario files written back, shrinking, and the
// invariant checker every engine test and explore share.
#include <gtest/gtest.h>

#include <set>

#include "mixcast/sim/explore.hpp"
#include "mixcast/sim/invariants.hpp"
#include "mixcast/sim/metrics.hpp"
#include "mixcast/sim/model_engine.hpp"
#include "mixcast/sim/scenario.hpp"

using namespace mixcast;
using namespace mixcast::sim;

TEST(Explore, CasesAreValidRepeatableAndCoverWhatUsersWrite) {
  std::set<std::string> seen;
  std::uint32_t mixed = 0, nat = 0, crashes = 0, multi_dc = 0, no_multicast = 0, lossy = 0, big_payload = 0;
  for (std::uint64_t i = 0; i < 300; ++i) {
    const Scenario s = random_case(7, i);  // validate() runs inside: throws if invalid
    EXPECT_EQ(to_yaml(s), to_yaml(random_case(7, i))) << i;
    EXPECT_LE(s.total_nodes(), 500u);
    seen.insert(to_yaml(s));
    mixed += s.protocol.mode == Mode::mixed;
    crashes += !s.crashes.empty();
    multi_dc += s.datacenters.size() > 1;
    big_payload += s.workload.payload_bytes > 1000;
    bool n = false, m = false, l = false;
    for (const auto& dc : s.datacenters)
      for (const auto& sub : dc.subnets) {
        n = n || sub.nat;
        m = m || !sub.multicast;
        l = l || sub.multicast_loss > 0 || sub.lan.loss > 0;
      }
    nat += n;
    no_multicast += m;
    lossy += l;
  }
  EXPECT_EQ(seen.size(), 300u);
  for (auto count : {mixed, nat, crashes, multi_dc, no_multicast, lossy, big_payload}) {
    EXPECT_GT(count, 10u);
    EXPECT_LT(count, 290u);
  }
  EXPECT_NE(to_yaml(random_case(7, 0)), to_yaml(random_case(8, 0)));
}

TEST(Explore, EveryGeneratedCaseIsValid) {
  // Small cases with many origins once made the generator crash more nodes than may crash
  // (an unsigned subtraction wrapped), which aborted a whole exploration.
  for (std::uint64_t seed = 0; seed < 50; ++seed)
    for (std::uint64_t i = 0; i < 200; ++i) EXPECT_NO_THROW(random_case(seed, i)) << "seed " << seed << " case " << i;
}

TEST(Explore, ScenarioFilesReadBackToTheSameScenario) {
  for (std::uint64_t i = 0; i < 100; ++i) {
    const Scenario s = random_case(3, i);
    const std::string text = to_yaml(s);
    const Scenario back = load_scenario_text(text, "case.yaml");
    EXPECT_EQ(to_yaml(back), text) << i;
    EXPECT_EQ(back.total_nodes(), s.total_nodes());
    EXPECT_EQ(back.seed, s.seed);
    EXPECT_EQ(back.crashes.size(), s.crashes.size());
    EXPECT_EQ(back.workload.rate_per_s, s.workload.rate_per_s);
  }
  // A shipped scenario survives too.
  const Scenario nat = load_scenario(MIXCAST_SOURCE_DIR "/scenarios/nat.yaml");
  EXPECT_EQ(to_yaml(load_scenario_text(to_yaml(nat), "nat.yaml")), to_yaml(nat));
}

TEST(Explore, ShrinkKeepsTheFailureAndMakesTheCaseSmaller) {
  Scenario big = random_case(11, 0);
  std::uint64_t i = 0;
  while (big.total_nodes() < 100 || big.datacenters.size() < 2 || big.crashes.empty()) big = random_case(11, ++i);
  // "Fails" while at least 5 nodes remain and some crash is planned.
  auto fails = [](const Scenario& s) { return s.total_nodes() >= 5 && !s.crashes.empty(); };
  const Scenario small = shrink(big, fails, 200);
  EXPECT_TRUE(fails(small));
  EXPECT_LT(small.total_nodes(), 10u);
  EXPECT_EQ(small.datacenters.size(), 1u);
  EXPECT_EQ(small.crashes.size(), 1u);
  EXPECT_EQ(small.workload.broadcasts, 1u);
  EXPECT_NO_THROW(validate(small));
}

TEST(Invariants, TheCheckerNamesEachBrokenInvariant) {
  Scenario s = single_subnet_scenario(8, "checked");
  s.workload.broadcasts = 2;
  RunResult ok = run_model(s, {});
  EXPECT_TRUE(check_invariants(ok).empty());
  EXPECT_EQ(ok.end, EndReason::complete);
  EXPECT_TRUE(compare_tables(ok, run_model(s, {})).empty());

  auto names = [](const std::vector<Violation>& v) {
    std::set<std::string> out;
    for (const auto& x : v) out.insert(x.invariant);
    return out;
  };
  RunResult bad = ok;
  bad.missing.push_back(MissingDelivery{1, 3, "never_reached"});
  EXPECT_EQ(names(check_invariants(bad)), (std::set<std::string>{"delivery"}));
  bad = ok;
  bad.duplicates = 1;
  EXPECT_EQ(names(check_invariants(bad)), (std::set<std::string>{"delivery"}));
  bad = ok;
  bad.invented = 1;
  bad.corrupted = 2;
  EXPECT_EQ(names(check_invariants(bad)), (std::set<std::string>{"integrity"}));
  bad = ok;
  bad.end = EndReason::time_limit;
  EXPECT_EQ(names(check_invariants(bad)), (std::set<std::string>{"termination"}));
  bad = ok;
  for (auto& d : bad.deliveries) d.round += 1;  // one round above ceil(log2 8) = 3
  EXPECT_EQ(names(check_invariants(bad)), (std::set<std::string>{"rounds"}));
  bad = ok;
  bad.deliveries.front().time_s += 1e-9;
  EXPECT_EQ(names(compare_tables(ok, bad)), (std::set<std::string>{"determinism"}));
}

// A run whose missing deliveries can never happen (a NATed node whose gateways all crashed) ends
// soon after its last broadcast instead of waiting for the 600 s time limit, and says what is
// missing and why.
TEST(Invariants, ARunThatCannotFinishStopsWhenNothingMoreCanHappen) {
  Scenario s = load_scenario_text(R"(
datacenters:
  - name: dc
    subnets:
      - {name: open, nodes: 6}
      - {name: office, nodes: 4, nat: true}
protocol: {nat_links: 1}
workload: {broadcasts: 3, rate: 10, origins: [5], start: 0.5s}
crashes: [{at: 0.1s, nodes: [0, 1, 2, 3, 4]}]
)", "stuck.yaml");
  const RunResult r = run_model(s, {});
  EXPECT_NE(r.end, EndReason::time_limit);
  EXPECT_LT(r.simulated_s, r.last_start_s + 10.0);
  ASSERT_FALSE(r.missing.empty());
  for (const auto& m : r.missing) {
    EXPECT_GE(m.node, 6u);
    EXPECT_EQ(m.cause, "no_gateway");
  }
  std::set<std::string> kinds;
  for (const auto& v : check_invariants(r)) kinds.insert(v.invariant);
  EXPECT_TRUE(kinds.empty());  // no path leads there: reported, not a violation
  const nlohmann::json summary = summarize(r);
  EXPECT_EQ(summary["missing"]["deliveries"].get<std::size_t>(), r.missing.size());
  EXPECT_EQ(summary["missing"]["causes"]["no_gateway"].get<std::size_t>(), r.missing.size());
  EXPECT_NE(summary["end"], "time_limit");  // TCP mode: the event queue runs dry ("idle")
  const std::string text = human_summary(summary);
  EXPECT_NE(text.find("MISSING: " + std::to_string(r.missing.size()) + " expected deliveries"), std::string::npos) << text;
  EXPECT_NE(text.find("causes: no_gateway"), std::string::npos) << text;
  EXPECT_EQ(text.find("warm-up"), std::string::npos) << "no warm-up here: " << text;
  nlohmann::json warm_up = summary;  // the same misses, as if every broadcast were a warm-up one
  warm_up["warmup"]["broadcasts"] = 100;
  EXPECT_NE(human_summary(warm_up).find("of them warm-up, not in the delivered line"), std::string::npos)
      << human_summary(warm_up);
}

TEST(Invariants, ANatedNodeCutOffFromEveryGatewayIsNotAViolation) {
  // One open node (the only gateway) and two NATed subnets: once node 0 is down, neither NATed node
  // can reach the other. Broadcasts after the crash cannot cross; they are listed as no_gateway.
  Scenario s = load_scenario_text(R"(
name: cut-off
seed: 3
datacenters:
  - name: dc
    subnets:
      - {name: open, nodes: 1}
      - {name: nat-a, nodes: 1, nat: true}
      - {name: nat-b, nodes: 1, nat: true}
workload: {broadcasts: 6, rate: 2, origins: [1], start: 0.5s}
crashes:
  - {at: 1.2s, nodes: [0]}
)", "cut-off.yaml");
  const RunResult r = run_model(s, {});
  ASSERT_FALSE(r.missing.empty());
  for (const auto& m : r.missing) {
    EXPECT_EQ(m.cause, "no_gateway") << "broadcast " << m.broadcast << " at node " << m.node;
    EXPECT_EQ(m.node, 2u);
  }
  EXPECT_TRUE(check_invariants(r).empty());
  // The same miss with a gateway still up is a violation.
  RunResult bad = r;
  for (auto& m : bad.missing) m.cause = "never_reached";
  EXPECT_FALSE(check_invariants(bad).empty());
}
