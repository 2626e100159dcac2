// mixcast: talk to a running mixcastd over its control socket (docs/real-backend.md).
#include <boost/asio.hpp>

#include <CLI/CLI.hpp>
#include <fstream>
#include <iostream>
#include <iterator>
#include <nlohmann/json.hpp>

#include "mixcast/real/control.hpp"

namespace asio = boost::asio;
using local = asio::local::stream_protocol;
using nlohmann::json;

namespace {
struct Session {
  asio::io_context io;
  local::socket socket{io};
  asio::streambuf in;
  explicit Session(const std::string& path) { socket.connect(local::endpoint(path)); }
  void request(const json& j) { asio::write(socket, asio::buffer(j.dump() + "\n")); }
  std::string line() {
    const std::size_t n = asio::read_until(socket, in, '\n');
    std::string s(asio::buffers_begin(in.data()), asio::buffers_begin(in.data()) + static_cast<std::ptrdiff_t>(n - 1));
    in.consume(n);
    return s;
  }
};
}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"mixcast: control a running mixcastd", "mixcast"};
  // At most one; none is reported below. (require_subcommand(1) would answer an unknown flag or
  // subcommand with "A subcommand is required" instead of naming it.)
  app.require_subcommand(0, 1);
  std::string socket_path = "/run/mixcast/mixcastd.sock";
  app.add_option("-s,--socket", socket_path, "the daemon's control socket")->capture_default_str();

  auto* send = app.add_subcommand("send", "broadcast a message to every member");
  std::string text, file;
  auto* text_opt = send->add_option("text", text, "message text");
  auto* file_opt = send->add_option("-f,--file", file, "send the bytes of this file instead")->check(CLI::ExistingFile);
  text_opt->excludes(file_opt);
  auto* tail = app.add_subcommand("tail", "print deliveries as they happen, one JSON object per line");
  auto* status = app.add_subcommand("status", "print the daemon's status as JSON");
  auto* stop = app.add_subcommand("stop", "ask the daemon to stop");
  try {
    app.parse(argc, argv);
    if (send->parsed() && text_opt->count() == 0 && file_opt->count() == 0)
      throw CLI::ValidationError("send needs TEXT or --file FILE");
  } catch (const CLI::ParseError& e) {
    if (e.get_exit_code() == static_cast<int>(CLI::ExitCodes::Success)) return app.exit(e);  // --help
    std::cerr << "mixcast: error: " << e.what() << " (see 'mixcast --help')\n";
    return 2;
  }
  if (app.get_subcommands().empty()) {
    std::cerr << "mixcast: error: a subcommand is required: send, tail, status or stop (see 'mixcast --help')\n";
    return 2;
  }

  try {
    Session s(socket_path);
    if (send->parsed()) {
      json req = {{"cmd", "send"}};
      if (file_opt->count()) {
        std::ifstream in(file, std::ios::binary);
        mixcast::wire::Bytes b((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
        req["payload_hex"] = mixcast::real::to_hex(b);
      } else {
        req["payload"] = text;
      }
      s.request(req);
      const auto reply = json::parse(s.line());
      std::cout << reply.dump() << "\n";
      return reply.value("ok", false) ? 0 : 1;
    }
    if (status->parsed()) {
      s.request({{"cmd", "status"}});
      std::cout << json::parse(s.line()).dump(2) << "\n";
      return 0;
    }
    if (stop->parsed()) {
      s.request({{"cmd", "stop"}});
      std::cout << s.line() << "\n";
      return 0;
    }
    if (tail->parsed()) {
      s.request({{"cmd", "tail"}});
      s.line();  // {"ok":true}
      for (;;) std::cout << s.line() << std::endl;
    }
  } catch (const boost::system::system_error& e) {
    if (e.code() == asio::error::eof) return 0;  // the daemon stopped
    std::cerr << "mixcast: " << socket_path << ": " << e.code().message() << "\n";
    return 1;
  } catch (const json::exception& e) {
    std::cerr << "mixcast: bad reply from the daemon: " << e.what() << "\n";
    return 1;
  }
  return 0;
}
