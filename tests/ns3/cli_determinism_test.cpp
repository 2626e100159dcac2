// The ns-3 engine through the mixcast-sim binary: same scenario and seed give byte-identical CSVs
// whatever --out, --quiet, --json, the working directory and the environment. Those change the
// process's heap layout, so anything in the engine that follows addresses shows up here.
// MIXCAST_SIM_BINARY and MIXCAST_SOURCE_DIR come from CMake.
#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace {

namespace fs = std::filesystem;

std::string slurp(const fs::path& p) {
  std::ifstream f(p, std::ios::binary);
  std::stringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

std::string quote(const std::string& s) {
  std::string out = "'";
  for (char c : s) out += c == '\'' ? std::string("'\\''") : std::string(1, c);
  return out + "'";
}

class Ns3Cli : public ::testing::Test {
 protected:
  void SetUp() override {
    const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
    dir_ = fs::temp_directory_path() / ("mixcast-ns3-cli-test-" + std::to_string(::getpid()) + "-" + info->name());
    fs::remove_all(dir_);
    fs::create_directories(dir_);
  }
  void TearDown() override {
    std::error_code ec;
    fs::remove_all(dir_, ec);
  }

  // Runs `prefix mixcast-sim args` in `cwd`; returns the exit code.
  int run(const std::string& args, const fs::path& cwd, const std::string& prefix = "") const {
    const std::string cmd = "cd " + quote(cwd.string()) + " && " + prefix + quote(MIXCAST_SIM_BINARY) + " " + args +
                            " >" + quote((dir_ / "stdout.txt").string()) + " 2>" +
                            quote((dir_ / "stderr.txt").string()) + " </dev/null";
    const int status = std::system(cmd.c_str());
    return (status != -1 && WIFEXITED(status)) ? WEXITSTATUS(status) : -1;
  }
  std::string err() const { return slurp(dir_ / "stderr.txt"); }

  fs::path dir_;
};

TEST_F(Ns3Cli, CrashyNatRunIsIdenticalWhateverTheOutputFlags) {
  const std::string common = "run " + quote(std::string(MIXCAST_SOURCE_DIR) + "/scenarios/nat.yaml") +
                             " --engine ns3 --set " + quote("crashes=[{at: 0.2s, count: 3}]");
  struct Variant {
    std::string name, flags, prefix;
    fs::path out, cwd;
  };
  const fs::path sub = dir_ / "cwd";
  fs::create_directories(sub);
  const std::string long_name(180, 'l');
  const std::vector<Variant> variants = {
      {"short --out", "--quiet", "", dir_ / "a", dir_},
      {"long --out", "--quiet", "", dir_ / long_name, dir_},
      {"nested --out, no --quiet", "", "", dir_ / "x" / "y" / "zz", dir_},
      {"--json", "--json", "", dir_ / "j", dir_},
      {"relative --out, other cwd, other environment", "--quiet",
       "env MIXCAST_TEST_PADDING=" + std::string(3000, 'p') + " ", "rel", sub},
  };
  std::vector<fs::path> outs;
  for (const auto& v : variants) {
    ASSERT_EQ(run(common + " " + v.flags + " --out " + quote(v.out.string()), v.cwd, v.prefix), 0)
        << v.name << ": " << err();
    outs.push_back(v.out.is_absolute() ? v.out : v.cwd / v.out);
  }

  nlohmann::json first = nlohmann::json::parse(slurp(outs[0] / "summary.json"));
  ASSERT_EQ(first["crashed"], 3u) << first.dump(2);
  first.erase("wall_s");
  for (std::size_t i = 1; i < outs.size(); ++i) {
    for (const char* csv : {"deliveries.csv", "broadcasts.csv", "links.csv"}) {
      const std::string a = slurp(outs[0] / csv);
      ASSERT_FALSE(a.empty()) << csv;
      EXPECT_TRUE(a == slurp(outs[i] / csv)) << csv << " differs: " << variants[i].name << " vs "
                                            << variants[0].name;
    }
    nlohmann::json j = nlohmann::json::parse(slurp(outs[i] / "summary.json"));
    j.erase("wall_s");
    EXPECT_EQ(j["events"], first["events"]) << variants[i].name;
    EXPECT_EQ(j, first) << variants[i].name;
  }
}

}  // namespace
