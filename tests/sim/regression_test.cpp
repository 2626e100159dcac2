// Every scenario under tests/scenarios/regressions is a shrunk case `mixcast-sim explore` found
// failing (its header says which bug). Each must now hold every invariant on the model engine.
#include <gtest/gtest.h>

#include <algorithm>
#include <cctype>
#include <filesystem>
#include <string>
#include <vector>

#include "mixcast/sim/invariants.hpp"
#include "mixcast/sim/model_engine.hpp"
#include "mixcast/sim/scenario.hpp"

using namespace mixcast::sim;
namespace fs = std::filesystem;

namespace {

std::vector<std::string> regression_files() {
  std::vector<std::string> out;
  for (const auto& e : fs::directory_iterator(MIXCAST_SOURCE_DIR "/tests/scenarios/regressions"))
    if (e.path().extension() == ".yaml") out.push_back(e.path().filename().string());
  std::sort(out.begin(), out.end());
  return out;
}

class Regression : public ::testing::TestWithParam<std::string> {};

TEST_P(Regression, HoldsEveryInvariantOnTheModelEngine) {
  const Scenario s = load_scenario(MIXCAST_SOURCE_DIR "/tests/scenarios/regressions/" + GetParam());
  const RunResult r = run_model(s, {});
  EXPECT_FALSE(r.broadcasts.empty());
  EXPECT_TRUE(r.missing.empty()) << r.missing.size() << " deliveries missing";
  for (const auto& v : check_invariants(r)) ADD_FAILURE() << v.invariant << ": " << v.detail;
  // Determinism: the same file and seed give the same tables.
  for (const auto& v : compare_tables(r, run_model(s, {}))) ADD_FAILURE() << v.invariant << ": " << v.detail;
}

std::string test_name(const ::testing::TestParamInfo<std::string>& info) {
  std::string n = info.param.substr(0, info.param.size() - 5);
  std::replace_if(n.begin(), n.end(), [](char c) { return !std::isalnum(static_cast<unsigned char>(c)); }, '_');
  return n;
}

}  // namespace

INSTANTIATE_TEST_SUITE_P(Files, Regression, ::testing::ValuesIn(regression_files()), test_name);

TEST(Regression, DirectoryHoldsCases) { EXPECT_GE(regression_files().size(), 4u); }
