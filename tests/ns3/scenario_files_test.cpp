// Regression scenario files (tests/scenarios/*.yaml) run on the ns-3 engine: cases where ns-3's TCP
// mode lost deliveries that the model engine makes (lost SYNs taken for failed links, frames for
// NATed peers dialled through a NAT, frames left on a connection that was given up, congested
// streams taken for dead delegates). Each must hold every invariant (every live node delivers
// every broadcast, nothing invented, ...), end by itself (complete or quiet, never the time
// limit), and give the same tables when run again.
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "mixcast/sim/invariants.hpp"
#include "mixcast/sim/model_engine.hpp"
#include "mixcast/sim/ns3_engine.hpp"
#include "mixcast/sim/scenario.hpp"

namespace {

using namespace mixcast;
using namespace mixcast::sim;

Scenario load_file(const std::string& name) {
  Scenario s = load_scenario(std::string(MIXCAST_SOURCE_DIR) + "/tests/scenarios/" + name + ".yaml");
  validate(s);
  return s;
}

std::string describe(const std::vector<Violation>& violations) {
  std::string out;
  for (const auto& v : violations) out += v.invariant + ": " + v.detail + "\n";
  return out;
}

std::size_t expected_deliveries(const RunResult& r) { return r.deliveries.size() + r.missing.size(); }

class ScenarioFile : public ::testing::TestWithParam<std::string> {};

TEST_P(ScenarioFile, Ns3DeliversEverythingAndEndsByItself) {
  const Scenario s = load_file(GetParam());
  ASSERT_EQ(s.protocol.mode, Mode::tcp);
  ASSERT_LE(s.total_nodes(), 40u) << "keep regression files small";

  const RunResult model = run_model(s);
  EXPECT_TRUE(check_invariants(model).empty()) << "model engine:\n" << describe(check_invariants(model));

  const RunResult r = run_ns3(s);
  const auto violations = check_invariants(r);
  EXPECT_TRUE(violations.empty()) << describe(violations);
  EXPECT_TRUE(r.missing.empty()) << r.missing.size() << " deliveries missing, first: broadcast "
                                 << r.missing.front().broadcast << " at node " << r.missing.front().node << " ("
                                 << r.missing.front().cause << ")";
  EXPECT_EQ(r.duplicates, 0u);
  EXPECT_TRUE(r.end == EndReason::complete || r.end == EndReason::quiet)
      << "ended by " << to_string(r.end) << " at " << r.simulated_s << " s";
  EXPECT_LT(r.simulated_s, s.time_limit_s);
  // Everything the model engine delivers, ns-3 delivers too.
  EXPECT_EQ(r.deliveries.size(), model.deliveries.size());
  EXPECT_EQ(expected_deliveries(r), expected_deliveries(model));

  // The same scenario and seed again, in the same process: byte-identical tables.
  const RunResult again = run_ns3(s);
  const auto differences = compare_tables(r, again);
  EXPECT_TRUE(differences.empty()) << describe(differences);
}

INSTANTIATE_TEST_SUITE_P(Regressions, ScenarioFile,
                         ::testing::Values("tcp-lan-loss", "tcp-nat-first-frames", "tcp-nat-lan-loss", "tcp-congested-lan",
                                           "tcp-last-leaf-resent-late"),
                         [](const auto& param_info) {
                           std::string n = param_info.param;
                           for (char& c : n)
                             if (c == '-') c = '_';
                           return n;
                         });

}  // namespace
