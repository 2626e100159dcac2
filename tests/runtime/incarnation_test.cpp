// The daemon's incarnation source (mixcast/real/incarnation.hpp): the state file is read,
// increased and written back atomically; garbage in it is an error naming the file; without a
// usable state directory the clock decides.
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "mixcast/real/config.hpp"
#include "mixcast/real/incarnation.hpp"

using namespace mixcast;
using namespace mixcast::real;
namespace fs = std::filesystem;

namespace {

struct TempDir {
  TempDir() {
    std::string tmpl = (fs::temp_directory_path() / "mixcast-inc-XXXXXX").string();
    if (::mkdtemp(tmpl.data()) == nullptr) throw std::runtime_error("mkdtemp");
    path = tmpl;
  }
  ~TempDir() {
    std::error_code ec;
    fs::permissions(path, fs::perms::owner_all, ec);
    fs::remove_all(path, ec);
  }
  std::string path;
};

std::string slurp(const std::string& p) {
  std::ifstream in(p);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

void write(const std::string& p, const std::string& text) { std::ofstream(p) << text; }

constexpr std::uint64_t kNow = 1'700'000'000'000;  // a clock reading in ms

}  // namespace

TEST(Incarnation, FirstStartTakesTheClockAndWritesTheStateFile) {
  TempDir d;
  const auto c = next_incarnation(d.path, 3, kNow);
  EXPECT_EQ(c.source, IncarnationChoice::Source::state_file);
  EXPECT_EQ(c.incarnation, kNow);
  EXPECT_FALSE(c.previous);
  EXPECT_EQ(c.state_file, d.path + "/node-3.incarnation");
  EXPECT_EQ(slurp(c.state_file), std::to_string(kNow) + "\n");
  EXPECT_FALSE(fs::exists(c.state_file + ".tmp"));  // renamed into place
}

TEST(Incarnation, EveryStartIsHigherThanTheLastEvenWhenTheClockStandsStillOrGoesBack) {
  TempDir d;
  std::uint64_t last = next_incarnation(d.path, 0, kNow).incarnation;
  for (std::uint64_t clock : {kNow, kNow, kNow - 60'000, std::uint64_t{5}, kNow + 1}) {  // restarts
    const auto c = next_incarnation(d.path, 0, clock);
    EXPECT_EQ(c.source, IncarnationChoice::Source::state_file);
    ASSERT_TRUE(c.previous);
    EXPECT_EQ(*c.previous, last);
    EXPECT_GT(c.incarnation, last) << "clock " << clock;
    EXPECT_EQ(slurp(c.state_file), std::to_string(c.incarnation) + "\n");
    last = c.incarnation;
  }
  EXPECT_EQ(last, kNow + 5);  // five restarts; the clock going back did not take the sequence with it

  // A clock far ahead of the stored value wins: a lost or old state file cannot repeat an incarnation.
  const auto ahead = next_incarnation(d.path, 0, kNow + 3'600'000);
  EXPECT_EQ(ahead.incarnation, kNow + 3'600'000);
}

TEST(Incarnation, StoredValueIsIncrementedAndNodesHaveFilesOfTheirOwn) {
  TempDir d;
  write(incarnation_file(d.path, 7), "41\n");
  const auto c = next_incarnation(d.path, 7, 1);  // the clock says 1 ms after the epoch
  EXPECT_EQ(c.incarnation, 42u);
  EXPECT_EQ(*c.previous, 41u);
  EXPECT_EQ(slurp(incarnation_file(d.path, 7)), "42\n");
  write(incarnation_file(d.path, 8), "9");  // no newline is fine too
  EXPECT_EQ(next_incarnation(d.path, 8, 1).incarnation, 10u);
  EXPECT_EQ(slurp(incarnation_file(d.path, 7)), "42\n");  // untouched
}

TEST(Incarnation, GarbageInTheStateFileIsAnErrorNamingTheFile) {
  TempDir d;
  const std::string file = incarnation_file(d.path, 1);
  for (const std::string& bad : std::vector<std::string>{"", "\n", "abc\n", "12 \n", "-5\n", "0\n", "1.5\n", "99999999999999999999999\n",
                                "4611686018427387905\n" /* 2^62 + 1 */, "12\n13\n", std::string("7\0", 2)}) {
    write(file, bad);
    try {
      next_incarnation(d.path, 1, kNow);
      ADD_FAILURE() << "accepted '" << bad << "'";
    } catch (const StateFileError& e) {
      EXPECT_NE(std::string(e.what()).find(file), std::string::npos) << e.what();
    }
    EXPECT_EQ(slurp(file), bad) << "a state file that cannot be read is left as it is";
  }
}

TEST(Incarnation, WithoutAUsableStateDirTheClockDecides) {
  TempDir d;
  for (const std::string& dir : std::vector<std::string>{std::string(), d.path + "/missing", d.path + "/a-file"}) {
    if (dir == d.path + "/a-file") write(dir, "x");
    const auto c = next_incarnation(dir, 2, kNow);
    EXPECT_EQ(c.source, IncarnationChoice::Source::clock) << dir;
    EXPECT_EQ(c.incarnation, kNow);
    EXPECT_TRUE(c.state_file.empty());
    EXPECT_FALSE(c.note.empty());
    EXPECT_NE(c.describe().find("clock"), std::string::npos) << c.describe();
  }
  EXPECT_FALSE(fs::exists(d.path + "/missing"));  // not created behind the operator's back
  // A real clock reading: milliseconds since the epoch, after 2020.
  EXPECT_GT(next_incarnation("", 2).incarnation, 1'577'836'800'000u);
}

TEST(Incarnation, AStateDirThatCannotBeWrittenFallsBackOnTheClock) {
  TempDir d;
  ::chmod(d.path.c_str(), 0500);
  // root writes into read-only directories; nobody creates files in /proc.
  const std::string dir = ::geteuid() == 0 ? "/proc" : d.path;
  const auto c = next_incarnation(dir, 2, kNow);
  EXPECT_EQ(c.source, IncarnationChoice::Source::clock);
  EXPECT_EQ(c.incarnation, kNow);
  EXPECT_NE(c.note.find("cannot create"), std::string::npos) << c.note;
}

TEST(Incarnation, DefaultStateDirIsSystemdsFirstStateDirectory) {
  const char* saved = std::getenv("STATE_DIRECTORY");
  const std::string old = saved ? saved : "";
  ::setenv("STATE_DIRECTORY", "/var/lib/mixcast:/var/lib/other", 1);
  EXPECT_EQ(default_state_dir(), "/var/lib/mixcast");
  ::unsetenv("STATE_DIRECTORY");
  EXPECT_EQ(default_state_dir(), "");
  if (saved) ::setenv("STATE_DIRECTORY", old.c_str(), 1);
}

TEST(Incarnation, ConfigKeyStateDir) {
  const auto c = parse_daemon_config("node_id: 1\nlisten: {address: 127.0.0.1, port: 1}\nstate_dir: /var/lib/x\npeers: []\n");
  EXPECT_EQ(c.state_dir, "/var/lib/x");
  EXPECT_EQ(parse_daemon_config("node_id: 1\nlisten: {address: 127.0.0.1, port: 1}\npeers: []\n").state_dir, "");
}
