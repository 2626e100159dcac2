#include "mixcast/real/control.hpp"

#include <boost/asio.hpp>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <cstdio>
#include <deque>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <sys/stat.h>

namespace mixcast::real {
namespace asio = boost::asio;
using local = asio::local::stream_protocol;
using boost::system::error_code;
using nlohmann::json;

std::string to_hex(const wire::Bytes& b) {
  static const char* digits = "0123456789abcdef";
  std::string s;
  s.reserve(b.size() * 2);
  for (auto c : b) {
    s.push_back(digits[c >> 4]);
    s.push_back(digits[c & 15]);
  }
  return s;
}

std::optional<wire::Bytes> from_hex(const std::string& s) {
  if (s.size() % 2) return std::nullopt;
  auto nibble = [](char c) -> int {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
  };
  wire::Bytes out(s.size() / 2);
  for (std::size_t i = 0; i < out.size(); ++i) {
    const int hi = nibble(s[2 * i]), lo = nibble(s[2 * i + 1]);
    if (hi < 0 || lo < 0) return std::nullopt;
    out[i] = static_cast<std::uint8_t>(hi * 16 + lo);
  }
  return out;
}

bool printable_utf8(const wire::Bytes& b) {
  for (std::size_t i = 0; i < b.size();) {
    const auto c = b[i];
    std::size_t n = c < 0x80 ? 1 : (c >> 5) == 6 ? 2 : (c >> 4) == 14 ? 3 : (c >> 3) == 30 ? 4 : 0;
    if (n == 0 || i + n > b.size()) return false;
    if (n == 1 && c < 0x20 && c != '\t') return false;  // control characters
    for (std::size_t k = 1; k < n; ++k)
      if ((b[i + k] >> 6) != 2) return false;
    i += n;
  }
  return true;
}

std::string delivery_json(const DeliveryEvent& d) {
  json j = {{"origin", d.id.origin}, {"incarnation", d.id.incarnation}, {"seq", d.id.seq}, {"round", d.round},
            {"channel", std::string(to_string(d.channel))}, {"time_us", d.realtime_us},
            {"payload_hex", to_hex(d.payload)}};
  if (printable_utf8(d.payload)) j["payload"] = std::string(d.payload.begin(), d.payload.end());
  return j.dump();
}

std::string delivery_csv(const DeliveryEvent& d) {
  return std::to_string(d.id.origin) + "," + std::to_string(d.id.incarnation) + "," + std::to_string(d.id.seq) + "," + std::to_string(d.round) + "," +
         std::string(to_string(d.channel)) + "," + std::to_string(d.realtime_us) + "," + to_hex(d.payload);
}

namespace {
constexpr std::size_t kMaxRequestBytes = 1u << 20;  // a 64 KiB payload in hex, with room to spare
constexpr std::size_t kMaxTailBacklog = 16u << 20;  // a tail client this far behind is dropped
}  // namespace

struct Client : std::enable_shared_from_this<Client> {
  explicit Client(local::socket s) : socket(std::move(s)) {}
  local::socket socket;
  asio::streambuf in{kMaxRequestBytes};
  std::deque<std::string> out;
  std::size_t out_bytes = 0;
  bool writing = false, tail = false, closed = false;
};

struct ControlServer::Impl {
  Impl(asio::io_context& io_, const std::string& path_, Runtime& rt, std::function<void()> stop)
      : io(io_), path(path_), acceptor(io_), runtime(rt), on_stop(std::move(stop)) {
    std::error_code fs_ec;
    const auto parent = std::filesystem::path(path).parent_path();
    if (!parent.empty()) std::filesystem::create_directories(parent, fs_ec);
    struct stat st {};
    if (::lstat(path.c_str(), &st) == 0) {
      if (!S_ISSOCK(st.st_mode))
        throw std::system_error(std::make_error_code(std::errc::file_exists), "control socket " + path + " exists and is not a socket");
      std::filesystem::remove(path, fs_ec);  // stale, from a daemon that did not stop cleanly
    }
    error_code ec;
    acceptor.open(local(), ec);
    if (!ec) acceptor.bind(local::endpoint(path), ec);
    if (!ec) acceptor.listen(asio::socket_base::max_listen_connections, ec);
    if (ec) throw std::system_error(ec, "control socket " + path);
    ::chmod(path.c_str(), 0660);
    accept();
  }

  void accept() {
    acceptor.async_accept([this](error_code ec, local::socket s) {
      if (closed) return;
      if (!ec) {
        auto c = std::make_shared<Client>(std::move(s));
        clients.push_back(c);
        read(c);
      }
      accept();
    });
  }

  void read(const std::shared_ptr<Client>& c) {
    asio::async_read_until(c->socket, c->in, '\n', [this, c](error_code ec, std::size_t n) {
      if (c->closed || closed) return;
      if (ec) {
        if (ec == asio::error::not_found) reply(c, {{"ok", false}, {"error", "request line too long"}});
        return drop(c);
      }
      std::string line(asio::buffers_begin(c->in.data()), asio::buffers_begin(c->in.data()) + static_cast<std::ptrdiff_t>(n));
      c->in.consume(n);
      handle(c, line);
      read(c);
    });
  }

  void handle(const std::shared_ptr<Client>& c, const std::string& line) {
    json req = json::parse(line, nullptr, false);
    if (req.is_discarded() || !req.is_object() || !req.contains("cmd") || !req["cmd"].is_string())
      return reply(c, {{"ok", false}, {"error", "expected one JSON object with a string \"cmd\" per line"}});
    const std::string cmd = req["cmd"];
    if (cmd == "status") return reply(c, runtime.status());
    if (cmd == "tail") {
      c->tail = true;
      return reply(c, {{"ok", true}});
    }
    if (cmd == "stop") {
      reply(c, {{"ok", true}});
      asio::post(io, [this] { if (on_stop) on_stop(); });
      return;
    }
    if (cmd == "send") {
      wire::Bytes payload;
      if (req.contains("payload") && req["payload"].is_string()) {
        const std::string text = req["payload"];
        payload.assign(text.begin(), text.end());
      } else if (req.contains("payload_hex") && req["payload_hex"].is_string()) {
        auto b = from_hex(req["payload_hex"]);
        if (!b) return reply(c, {{"ok", false}, {"error", "payload_hex is not an even number of hex digits"}});
        payload = std::move(*b);
      } else {
        return reply(c, {{"ok", false}, {"error", "send needs a string \"payload\" or \"payload_hex\""}});
      }
      if (payload.size() > wire::kMaxPayloadBytes)
        return reply(c, {{"ok", false}, {"error", "payload is " + std::to_string(payload.size()) + " bytes, the limit is " + std::to_string(wire::kMaxPayloadBytes)}});
      auto id = runtime.try_broadcast(std::move(payload));
      if (!id) return reply(c, {{"ok", false}, {"error", "send queues are full; retry later"}});
      return reply(c, {{"ok", true}, {"origin", id->origin}, {"incarnation", id->incarnation}, {"seq", id->seq}});
    }
    reply(c, {{"ok", false}, {"error", "unknown cmd '" + cmd + "' (send, tail, status, stop)"}});
  }

  void reply(const std::shared_ptr<Client>& c, const json& j) { push(c, j.dump() + "\n"); }

  void push(const std::shared_ptr<Client>& c, std::string line) {
    if (c->closed) return;
    c->out_bytes += line.size();
    c->out.push_back(std::move(line));
    if (c->out_bytes > kMaxTailBacklog) {
      spdlog::warn("control client fell {} bytes behind; disconnecting it", c->out_bytes);
      return drop(c);
    }
    write(c);
  }

  void write(const std::shared_ptr<Client>& c) {
    if (c->writing || c->out.empty() || c->closed) return;
    c->writing = true;
    asio::async_write(c->socket, asio::buffer(c->out.front()), [this, c](error_code ec, std::size_t) {
      c->writing = false;
      if (c->closed) return;
      if (ec) return drop(c);
      c->out_bytes -= c->out.front().size();
      c->out.pop_front();
      write(c);
    });
  }

  void drop(const std::shared_ptr<Client>& c) {
    if (c->closed) return;
    c->closed = true;
    error_code ignore;
    c->socket.close(ignore);
    clients.erase(std::remove(clients.begin(), clients.end(), c), clients.end());
  }

  asio::io_context& io;
  std::string path;
  local::acceptor acceptor;
  Runtime& runtime;
  std::function<void()> on_stop;
  std::vector<std::shared_ptr<Client>> clients;
  bool closed = false;
};

ControlServer::ControlServer(asio::io_context& io, const std::string& path, Runtime& runtime,
                             std::function<void()> on_stop)
    : impl_(std::make_unique<Impl>(io, path, runtime, std::move(on_stop))) {}

ControlServer::~ControlServer() { close(); }

void ControlServer::publish(const DeliveryEvent& d) {
  bool any = false;
  for (const auto& c : impl_->clients) any = any || c->tail;
  if (!any) return;
  const std::string line = delivery_json(d) + "\n";
  for (auto c : impl_->clients)  // a copy: push may drop a client
    if (c->tail) impl_->push(c, line);
}

void ControlServer::close() {
  auto& m = *impl_;
  if (m.closed) return;
  m.closed = true;
  error_code ignore;
  m.acceptor.close(ignore);
  for (auto c : std::vector<std::shared_ptr<Client>>(m.clients)) m.drop(c);
  std::error_code fs_ec;
  std::filesystem::remove(m.path, fs_ec);
}

}  // namespace mixcast::real
