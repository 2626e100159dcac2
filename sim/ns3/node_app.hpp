// An ns3::Application that hosts one core node. Only an adapter: it turns the core's transmits
// into TCP streams (length-prefixed frames, one connection per peer reused both ways) and UDP
// multicast datagrams, feeds what arrives back to the core, reports connection failures, and
// wakes the core at its next_timeout(). Protocol decisions stay in the core.
#pragma once
#include <cstdint>
#include <deque>
#include <memory>
#include <unordered_map>
#include <vector>

#include "ns3/application.h"
#include "ns3/event-id.h"
#include "ns3/ipv4-address.h"
#include "ns3/nstime.h"
#include "ns3/socket.h"

#include "mixcast/core/node.hpp"
#include "mixcast/sim/run_book.hpp"

namespace mixcast::ns3sim {

// What every node's application shares in one run.
struct AppEnv {
  sim::RunBook* book = nullptr;
  std::vector<ns3::Ipv4Address> addresses;             // by node id
  std::unordered_map<std::uint32_t, NodeId> by_address;  // host address -> node id (multicast senders)
  std::uint16_t tcp_port = 7400;
  std::uint16_t multicast_port = 7401;
  ns3::Ipv4Address group{"239.255.70.1"};
  // Frames for a peer we may not dial (behind a NAT we are not in) wait this long for that peer's
  // own connection; then the core hears the link failed. Dialled connections have no timeout of
  // ours: TCP retries lost SYNs (ns3::TcpSocket ConnTimeout / ConnCount, set by the engine).
  ns3::Time nat_wait = ns3::Seconds(2);
  std::uint32_t warmup_broadcasts = 0;           // broadcasts below this index are not measured
};

struct AppCounters {
  std::uint64_t connects = 0, accepted = 0, connect_failures = 0, closed_by_peer = 0;
  std::uint64_t nat_waits = 0, nat_wait_failures = 0;  // frames held for a NATed peer; held in vain
  std::uint64_t bad_streams = 0;  // connections dropped: bad length prefix or no hello first
};

class NodeApp : public ns3::Application {
 public:
  static ns3::TypeId GetTypeId();
  NodeApp(const AppEnv& env, Node& core);
  ~NodeApp() override;

  // The process dies: sockets close (the kernel resets further connects), nothing more is sent.
  void Crash();
  // Hands what the core produced after an input from outside (a broadcast start) to the network.
  void Pump();
  const AppCounters& counters() const { return counters_; }
  // Whether frames to a peer that is up are still on their way: queued here, or handed to TCP and
  // not yet acked by the peer's TCP (a segment may be waiting for a retransmission).
  bool owes_live_peer() const;

 private:
  struct Chunk {
    wire::Bytes bytes;
    std::size_t sent = 0;
    std::uint32_t round = 0;  // for the RoundTag
    bool hello = false;       // a dialled connection's hello: never moved to another connection
  };
  struct Conn {
    std::uint64_t serial = 0;  // creation order: what iteration follows, never socket addresses
    ns3::Ptr<ns3::Socket> socket;
    bool has_peer = false;
    NodeId peer = 0;
    bool connected = false;
    wire::StreamReader reader;
    std::deque<Chunk> tx;  // a dialled connection's first chunk is its hello
  };
  // Frames for a peer we may not dial, waiting for its inbound connection.
  struct Held {
    std::deque<Chunk> tx;
    ns3::EventId timer;
  };

  void StartApplication() override;
  void StopApplication() override;
  void DoDispose() override;

  Micros now() const;
  void send(Transmit&& t);
  std::uint32_t tag_round(const Transmit& t) const;
  void send_tcp(NodeId peer, Chunk&& chunk);
  Conn& dial(NodeId peer);
  Conn& add_conn(ns3::Ptr<ns3::Socket> s);
  std::vector<Conn*> conns_in_order() const;
  void try_send(Conn& c);
  void on_connected(ns3::Ptr<ns3::Socket> s);
  void on_connect_failed(ns3::Ptr<ns3::Socket> s);
  void on_accept(ns3::Ptr<ns3::Socket> s, const ns3::Address& from);
  void on_tcp_readable(ns3::Ptr<ns3::Socket> s);
  void on_send_space(ns3::Ptr<ns3::Socket> s, std::uint32_t available);
  void on_closed(ns3::Ptr<ns3::Socket> s);
  void on_multicast_readable(ns3::Ptr<ns3::Socket> s);
  void on_timer();
  void on_nat_wait_over(NodeId peer);
  // An accepted connection has said who it is: it becomes the peer's link if we have none or ours
  // is not up yet (and takes over its queued frames), and takes the frames held for the peer.
  void adopt(Conn& c);
  // Moves `from`'s frames not yet complete onto `to`, behind what `to` has queued (a hello stays:
  // the frames' receiver never decoded a partly sent frame of a connection that is gone).
  static void move_unsent(std::deque<Chunk>& from, Conn& to);
  void arm_timer();
  // Drops a connection; `event` tells the core about its peer (nothing if the peer is unknown).
  void drop(ns3::Ptr<ns3::Socket> s, LinkEvent event);
  void wire_callbacks(ns3::Ptr<ns3::Socket> s);
  static void silence(ns3::Ptr<ns3::Socket> s);  // no more callbacks from this socket

  const AppEnv& env_;
  Node& core_;
  bool running_ = false;
  bool crashed_ = false;
  AppCounters counters_;
  ns3::Ptr<ns3::Socket> listener_, mcast_send_, mcast_recv_;
  std::unordered_map<ns3::Socket*, std::unique_ptr<Conn>> conns_;  // lookup only: see conns_in_order()
  std::uint64_t next_serial_ = 0;
  std::unordered_map<NodeId, Conn*> by_peer_;  // the connection used to send to a peer
  std::unordered_map<NodeId, Held> held_;      // frames for NATed peers not connected to us yet
  ns3::EventId timer_;
  Micros timer_at_ = kNever;
};

}  // namespace mixcast::ns3sim
