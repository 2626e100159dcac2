// The daemon's control socket (docs/real-backend.md, "Control socket"): one JSON object per line
// over a Unix stream socket. Shared by mixcastd (server) and mixcast (client).
#pragma once
#include <boost/asio/io_context.hpp>
#include <memory>
#include <optional>
#include <string>

#include "mixcast/core/wire.hpp"
#include "mixcast/real/runtime.hpp"

namespace mixcast::real {

std::string to_hex(const wire::Bytes& b);
std::optional<wire::Bytes> from_hex(const std::string& s);  // nullopt: odd length or not hex
bool printable_utf8(const wire::Bytes& b);                  // safe to show as text
// One delivery as the tail stream and the delivery log show it.
std::string delivery_json(const DeliveryEvent& d);
std::string delivery_csv(const DeliveryEvent& d);  // origin,incarnation,seq,round,channel,time_us,payload_hex
inline constexpr const char* kDeliveryCsvHeader = "origin,incarnation,seq,round,channel,time_us,payload_hex";
// The header of delivery logs written before incarnations (6 columns): such a file is moved aside.
inline constexpr const char* kDeliveryCsvHeaderV1 = "origin,seq,round,channel,time_us,payload_hex";

class ControlServer {
 public:
  // Listens at `path` (a stale socket file there is replaced). Throws std::system_error.
  // `on_stop` runs when a client asks the daemon to stop.
  ControlServer(boost::asio::io_context& io, const std::string& path, Runtime& runtime, std::function<void()> on_stop);
  ~ControlServer();
  void publish(const DeliveryEvent& d);  // to every tail client
  void close();

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace mixcast::real
