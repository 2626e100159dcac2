#include "mixcast/real/incarnation.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <cstring>

namespace mixcast::real {
namespace {

std::string errno_text(int err) { return std::strerror(err); }

// Reads a small file whole. Returns the errno of the failure, 0 on success.
int read_small(const std::string& path, std::string& out, std::size_t limit) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return errno;
  char buf[128];
  out.clear();
  for (;;) {
    const ssize_t n = ::read(fd, buf, sizeof buf);
    if (n < 0) {
      if (errno == EINTR) continue;
      const int err = errno;
      ::close(fd);
      return err;
    }
    if (n == 0) break;
    out.append(buf, static_cast<std::size_t>(n));
    if (out.size() > limit) break;  // garbage; the caller says so
  }
  ::close(fd);
  return 0;
}

std::uint64_t parse_stored(const std::string& path, const std::string& text) {
  std::string digits = text;
  if (!digits.empty() && digits.back() == '\n') digits.pop_back();
  auto garbage = [&](const std::string& why) {
    std::string shown;
    for (char c : text.substr(0, 40)) shown += (c >= 0x20 && c < 0x7f) ? c : '?';
    return StateFileError("state file " + path + ": " + why + " (it holds '" + shown + "'" +
                          (text.size() > 40 ? "..." : "") + "); it must hold the last incarnation, one decimal "
                          "number. Remove the file only if this node's peers have all restarted since, or the clock "
                          "is right");
  };
  if (digits.empty()) throw garbage("empty");
  if (digits.size() > 20 || digits.find_first_not_of("0123456789") != std::string::npos)
    throw garbage("not a decimal number");
  errno = 0;
  const unsigned long long v = std::strtoull(digits.c_str(), nullptr, 10);
  if (errno != 0 || v == 0 || v > kMaxIncarnation)
    throw garbage("out of range (1 to " + std::to_string(kMaxIncarnation) + ")");
  return v;
}

// Writes `value` to `path` atomically: a temporary file in the same directory, fsync, rename over
// `path`, fsync of the directory. Returns an error text, empty on success.
std::string write_atomically(const std::string& dir, const std::string& path, std::uint64_t value) {
  const std::string tmp = path + ".tmp";
  const int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0640);
  if (fd < 0) return "cannot create " + tmp + ": " + errno_text(errno);
  const std::string text = std::to_string(value) + "\n";
  std::size_t done = 0;
  while (done < text.size()) {
    const ssize_t n = ::write(fd, text.data() + done, text.size() - done);
    if (n < 0) {
      if (errno == EINTR) continue;
      const int err = errno;
      ::close(fd);
      ::unlink(tmp.c_str());
      return "cannot write " + tmp + ": " + errno_text(err);
    }
    done += static_cast<std::size_t>(n);
  }
  if (::fsync(fd) != 0) {
    const int err = errno;
    ::close(fd);
    ::unlink(tmp.c_str());
    return "cannot fsync " + tmp + ": " + errno_text(err);
  }
  if (::close(fd) != 0) {
    const int err = errno;
    ::unlink(tmp.c_str());
    return "cannot close " + tmp + ": " + errno_text(err);
  }
  if (::rename(tmp.c_str(), path.c_str()) != 0) {
    const int err = errno;
    ::unlink(tmp.c_str());
    return "cannot rename " + tmp + " to " + path + ": " + errno_text(err);
  }
  const int dfd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dfd >= 0) {  // the rename itself must survive a power cut
    const int rc = ::fsync(dfd);
    const int err = errno;
    ::close(dfd);
    if (rc != 0 && err != EINVAL) return "cannot fsync directory " + dir + ": " + errno_text(err);
  }
  return {};
}

}  // namespace

std::uint64_t realtime_ms() {
  timespec ts{};
  ::clock_gettime(CLOCK_REALTIME, &ts);
  const auto ms = static_cast<std::int64_t>(ts.tv_sec) * 1000 + ts.tv_nsec / 1'000'000;
  return ms > 0 ? static_cast<std::uint64_t>(ms) : 1;
}

std::string incarnation_file(const std::string& state_dir, NodeId self) {
  std::string dir = state_dir;
  while (dir.size() > 1 && dir.back() == '/') dir.pop_back();
  return dir + "/node-" + std::to_string(self) + ".incarnation";
}

std::string default_state_dir() {
  const char* env = std::getenv("STATE_DIRECTORY");
  if (env == nullptr) return {};
  std::string s = env;
  return s.substr(0, s.find(':'));  // systemd lists several when StateDirectory= names several
}

std::string IncarnationChoice::describe() const {
  std::string out = "incarnation " + std::to_string(incarnation);
  if (source == IncarnationChoice::Source::state_file) {
    out += " (state file " + state_file + ", previous " + (previous ? std::to_string(*previous) : std::string("none")) + ")";
  } else {
    out += " (clock: CLOCK_REALTIME in ms" + std::string(note.empty() ? "" : "; " + note) + ")";
  }
  return out;
}

IncarnationChoice next_incarnation(const std::string& state_dir, NodeId self, std::uint64_t now_ms) {
  IncarnationChoice c;
  c.incarnation = std::clamp<std::uint64_t>(now_ms, 1, kMaxIncarnation);
  if (state_dir.empty()) {
    c.note = "no state_dir configured and $STATE_DIRECTORY unset; a restart is safe unless the clock goes back";
    return c;
  }
  struct stat st {};
  if (::stat(state_dir.c_str(), &st) != 0) {
    c.note = "state_dir " + state_dir + " is unusable: " + errno_text(errno);
    return c;
  }
  if (!S_ISDIR(st.st_mode)) {
    c.note = "state_dir " + state_dir + " is not a directory";
    return c;
  }
  const std::string path = incarnation_file(state_dir, self);
  std::string text;
  const int err = read_small(path, text, 64);
  if (err == 0) {
    c.previous = parse_stored(path, text);
  } else if (err != ENOENT) {
    throw StateFileError("state file " + path + ": cannot read it: " + errno_text(err));
  }
  if (c.previous) {
    if (*c.previous >= kMaxIncarnation)
      throw StateFileError("state file " + path + ": incarnation " + std::to_string(*c.previous) + " cannot be increased");
    c.incarnation = std::max(*c.previous + 1, c.incarnation);
  }
  const std::string problem = write_atomically(state_dir, path, c.incarnation);
  if (!problem.empty()) {
    // Not persisted: the next start falls back on the clock (and this value, if it was read).
    c.source = IncarnationChoice::Source::clock;
    c.note = problem + (c.previous ? "; at least previous + 1" : "");
    return c;
  }
  c.source = IncarnationChoice::Source::state_file;
  c.state_file = path;
  return c;
}

}  // namespace mixcast::real
