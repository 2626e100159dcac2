// One core node on a Boost.Asio io_context: TCP links to peers, UDP multicast, timers. An adapter
// only: every protocol decision is the core's (core/node.hpp).
//
// Threading: every member function must be called on the io_context's thread (post() to it from
// elsewhere). Callbacks run on that thread.
#pragma once
#include <boost/asio/io_context.hpp>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>

#include <nlohmann/json_fwd.hpp>

#include "mixcast/core/node.hpp"
#include "mixcast/real/config.hpp"

namespace mixcast::real {

struct DeliveryEvent {
  MessageId id;
  std::uint32_t round = 0;
  Channel channel = Channel::local;
  std::int64_t realtime_us = 0;  // CLOCK_REALTIME when delivered
  const wire::Bytes& payload;
};

// Transport counters (the core keeps its own: Node::counters()).
struct TransportCounters {
  std::uint64_t tcp_bad_frames = 0;        // undecodable frames or streams on TCP (connection closed)
  std::uint64_t multicast_bad_frames = 0;  // undecodable or foreign datagrams
  std::uint64_t oversized_frames = 0;      // stream lengths above the frame limit
  std::uint64_t connects_failed = 0;
  std::uint64_t connections_accepted = 0;
  std::uint64_t connections_closed = 0;
  std::uint64_t backpressure_refusals = 0;  // try_broadcast refused: queues full
  std::uint64_t read_pauses = 0;            // times reading paused because send queues were full
  std::uint64_t tcp_bytes_out = 0, tcp_bytes_in = 0, multicast_bytes_out = 0, multicast_bytes_in = 0;
  std::uint64_t writes = 0;                 // async_write calls (frames per write = coalescing)
  std::uint64_t frames_out = 0;
};

class Runtime {
 public:
  // Binds the listening socket and the multicast sockets; throws std::system_error (with the
  // address in what()) if they cannot be bound.
  Runtime(boost::asio::io_context& io, DaemonConfig config);
  ~Runtime();
  Runtime(const Runtime&) = delete;
  Runtime& operator=(const Runtime&) = delete;

  void start();  // accept, read multicast, arm timers; NATed nodes open their gateway links
  void stop();   // closes every socket and cancels timers; the io_context then runs out of work

  // Broadcasts `payload` to every member. nullopt when refused: send queues above their bound
  // (wait for on_ready) or payload over wire::kMaxPayloadBytes.
  std::optional<MessageId> try_broadcast(wire::Bytes payload);
  void on_delivery(std::function<void(const DeliveryEvent&)> cb);
  void on_ready(std::function<void()> cb);  // queues drained after a refusal

  NodeId id() const;
  const Node& node() const;
  const TransportCounters& transport() const;
  nlohmann::json status() const;  // docs/real-backend.md, "status"
  std::uint16_t tcp_port() const;  // the bound port (config port 0 picks one)

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace mixcast::real
