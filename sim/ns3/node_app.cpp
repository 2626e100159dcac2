#include "node_app.hpp"

#include <algorithm>

#include "ns3/inet-socket-address.h"
#include "ns3/packet.h"
#include "ns3/simulator.h"
#include "ns3/tcp-socket-factory.h"
#include "ns3/udp-socket-factory.h"
#include "ns3/uinteger.h"

#include "link_bytes.hpp"

namespace mixcast::ns3sim {

ns3::TypeId NodeApp::GetTypeId() {
  static ns3::TypeId tid = ns3::TypeId("mixcast::NodeApp").SetParent<ns3::Application>();
  return tid;
}

NodeApp::NodeApp(const AppEnv& env, Node& core) : env_(env), core_(core) {}
NodeApp::~NodeApp() = default;

Micros NodeApp::now() const { return ns3::Simulator::Now().GetMicroSeconds(); }

void NodeApp::StartApplication() {
  running_ = true;
  listener_ = ns3::Socket::CreateSocket(GetNode(), ns3::TcpSocketFactory::GetTypeId());
  listener_->Bind(ns3::InetSocketAddress(ns3::Ipv4Address::GetAny(), env_.tcp_port));
  listener_->Listen();
  listener_->SetAcceptCallback(ns3::MakeNullCallback<bool, ns3::Ptr<ns3::Socket>, const ns3::Address&>(),
                               ns3::MakeCallback(&NodeApp::on_accept, this));
  // Separate sockets for sending and receiving multicast: a receiver bound to the group's port
  // gets every datagram on the LAN (ns-3 has no IGMP), a sender sends through the default
  // multicast route of its host.
  mcast_recv_ = ns3::Socket::CreateSocket(GetNode(), ns3::UdpSocketFactory::GetTypeId());
  mcast_recv_->Bind(ns3::InetSocketAddress(ns3::Ipv4Address::GetAny(), env_.multicast_port));
  mcast_recv_->SetRecvCallback(ns3::MakeCallback(&NodeApp::on_multicast_readable, this));
  mcast_send_ = ns3::Socket::CreateSocket(GetNode(), ns3::UdpSocketFactory::GetTypeId());
  mcast_send_->Bind();
  Pump();  // links NATed nodes open at start, first timers
}

void NodeApp::StopApplication() {
  running_ = false;
  timer_.Cancel();
  // Each Close() sends a FIN or RST: close in creation order so the packets do not follow heap addresses.
  const std::vector<Conn*> order = conns_in_order();
  auto conns = std::move(conns_);  // closing may call back into us: detach first
  conns_.clear();
  by_peer_.clear();
  for (auto& [peer, h] : held_) h.timer.Cancel();
  held_.clear();
  for (Conn* c : order) {
    silence(c->socket);
    c->socket->Close();
  }
  for (auto* s : {&listener_, &mcast_send_, &mcast_recv_})
    if (*s) {
      (*s)->SetRecvCallback(ns3::MakeNullCallback<void, ns3::Ptr<ns3::Socket>>());
      (*s)->Close();
      *s = nullptr;
    }
}

void NodeApp::DoDispose() {
  // At Simulator::Destroy: drop references only; sockets may already be disposed.
  running_ = false;
  timer_.Cancel();
  for (auto& [peer, h] : held_) h.timer.Cancel();
  held_.clear();
  conns_.clear();
  by_peer_.clear();
  listener_ = mcast_send_ = mcast_recv_ = nullptr;
  ns3::Application::DoDispose();
}

NodeApp::Conn& NodeApp::add_conn(ns3::Ptr<ns3::Socket> s) {
  auto conn = std::make_unique<Conn>();
  conn->serial = next_serial_++;
  conn->socket = s;
  Conn& ref = *conn;
  conns_[ns3::PeekPointer(s)] = std::move(conn);
  return ref;
}

std::vector<NodeApp::Conn*> NodeApp::conns_in_order() const {
  std::vector<Conn*> out;
  out.reserve(conns_.size());
  for (const auto& [raw, c] : conns_) out.push_back(c.get());
  std::sort(out.begin(), out.end(), [](const Conn* a, const Conn* b) { return a->serial < b->serial; });
  return out;
}

void NodeApp::silence(ns3::Ptr<ns3::Socket> s) {
  s->SetRecvCallback(ns3::MakeNullCallback<void, ns3::Ptr<ns3::Socket>>());
  s->SetSendCallback(ns3::MakeNullCallback<void, ns3::Ptr<ns3::Socket>, std::uint32_t>());
  s->SetCloseCallbacks(ns3::MakeNullCallback<void, ns3::Ptr<ns3::Socket>>(),
                       ns3::MakeNullCallback<void, ns3::Ptr<ns3::Socket>>());
  s->SetConnectCallback(ns3::MakeNullCallback<void, ns3::Ptr<ns3::Socket>>(),
                        ns3::MakeNullCallback<void, ns3::Ptr<ns3::Socket>>());
}

void NodeApp::Crash() {
  crashed_ = true;
  StopApplication();
}

void NodeApp::Pump() {
  if (!running_) return;
  env_.book->take_deliveries(core_.id(), core_, ns3::Simulator::Now().GetSeconds());
  while (auto t = core_.poll_transmit()) send(std::move(*t));
  arm_timer();
}

void NodeApp::arm_timer() {
  const Micros next = core_.next_timeout();
  if (next == kNever) return;
  const Micros at = std::max(now(), next);
  if (timer_.IsRunning() && timer_at_ <= at) return;  // an earlier (or equal) wake-up is queued
  timer_.Cancel();
  timer_at_ = at;
  timer_ = ns3::Simulator::Schedule(ns3::MicroSeconds(at - now()), &NodeApp::on_timer, this);
}

void NodeApp::on_timer() {
  timer_at_ = kNever;
  if (!running_) return;
  core_.on_timeout(now());
  Pump();
}

std::uint32_t NodeApp::tag_round(const Transmit& t) const {
  if (!t.subject) return 0;
  const auto index = env_.book->broadcast_index(*t.subject);
  return index && *index >= env_.warmup_broadcasts ? t.round : 0;
}

void NodeApp::send(Transmit&& t) {
  env_.book->account(t, ns3::Simulator::Now().GetSeconds());
  const std::uint32_t round = tag_round(t);
  if (t.channel == Channel::multicast) {
    auto p = ns3::Create<ns3::Packet>(t.bytes.data(), static_cast<std::uint32_t>(t.bytes.size()));
    p->AddByteTag(RoundTag(round, Channel::multicast));
    mcast_send_->SendTo(p, 0, ns3::InetSocketAddress(env_.group, env_.multicast_port));
    return;
  }
  Chunk chunk;
  chunk.round = round;
  wire::append_stream_frame(chunk.bytes, t.bytes);
  send_tcp(t.to, std::move(chunk));
}

void NodeApp::send_tcp(NodeId peer, Chunk&& chunk) {
  if (auto it = by_peer_.find(peer); it != by_peer_.end()) {
    it->second->tx.push_back(std::move(chunk));
    try_send(*it->second);
    return;
  }
  if (!core_.dialable(peer)) {
    // Behind a NAT we are not in: its SYNs would be dropped. It dials us (we are one of its
    // gateways, or it answers on the connection it opened); the frames wait for that connection.
    Held& h = held_[peer];
    if (!h.timer.IsRunning()) {
      ++counters_.nat_waits;
      h.timer = ns3::Simulator::Schedule(env_.nat_wait, &NodeApp::on_nat_wait_over, this, peer);
    }
    h.tx.push_back(std::move(chunk));
    return;
  }
  Conn& c = dial(peer);
  c.tx.push_back(std::move(chunk));  // goes out once connected
}

NodeApp::Conn& NodeApp::dial(NodeId peer) {
  auto socket = ns3::Socket::CreateSocket(GetNode(), ns3::TcpSocketFactory::GetTypeId());
  Conn& ref = add_conn(socket);
  ref.has_peer = true;
  ref.peer = peer;
  Chunk hello;  // every connection starts by saying who we are
  hello.hello = true;
  wire::append_stream_frame(hello.bytes, core_.hello_frame());
  ref.tx.push_back(std::move(hello));
  socket->Bind();
  socket->SetConnectCallback(ns3::MakeCallback(&NodeApp::on_connected, this),
                             ns3::MakeCallback(&NodeApp::on_connect_failed, this));
  wire_callbacks(socket);
  by_peer_[peer] = &ref;
  ++counters_.connects;
  // No timer of ours: TCP retransmits a lost SYN (ConnTimeout 1 s, doubling, ConnCount attempts)
  // and reports the failure through on_connect_failed; a peer that is down answers with a reset.
  // A connect that cannot even start fails from the event loop, not from inside this send.
  if (socket->Connect(ns3::InetSocketAddress(env_.addresses[peer], env_.tcp_port)) < 0)
    ns3::Simulator::ScheduleNow([this, socket] {
      auto it = conns_.find(ns3::PeekPointer(socket));
      if (it != conns_.end() && !it->second->connected) on_connect_failed(socket);
    });
  return ref;
}

bool NodeApp::owes_live_peer() const {
  if (crashed_) return false;
  for (const auto& [peer, held] : held_)
    if (!held.tx.empty() && !env_.book->is_down(peer)) return true;
  for (const auto& [socket, c] : conns_) {
    if (!c->has_peer || env_.book->is_down(c->peer)) continue;
    if (!c->tx.empty()) return true;
    ns3::UintegerValue buffer;
    c->socket->GetAttribute("SndBufSize", buffer);
    if (c->socket->GetTxAvailable() < buffer.Get()) return true;
  }
  return false;
}

void NodeApp::on_nat_wait_over(NodeId peer) {
  auto it = held_.find(peer);
  if (it == held_.end() || !running_) return;
  held_.erase(it);  // its frames are lost with the link; the core re-delegates what they carried
  ++counters_.nat_wait_failures;
  core_.on_link_event(peer, LinkEvent::failed, now());
  Pump();
}

void NodeApp::move_unsent(std::deque<Chunk>& from, Conn& to) {
  for (Chunk& chunk : from) {
    if (chunk.hello) continue;
    chunk.sent = 0;
    to.tx.push_back(std::move(chunk));
  }
  from.clear();
}

void NodeApp::adopt(Conn& c) {
  const NodeId peer = c.peer;
  auto bp = by_peer_.find(peer);
  if (bp == by_peer_.end()) {
    by_peer_[peer] = &c;  // reused both ways (a NATed peer's connection is the only way to it)
  } else if (!bp->second->connected) {
    // Both sides dialled, and ours is not up yet (a SYN may be in retransmission): this one is up,
    // it takes our queued frames and becomes the link; ours is abandoned.
    Conn* ours = bp->second;
    move_unsent(ours->tx, c);
    by_peer_[peer] = &c;
    auto it = conns_.find(ns3::PeekPointer(ours->socket));
    std::unique_ptr<Conn> gone = std::move(it->second);
    conns_.erase(it);
    silence(gone->socket);
    gone->socket->Close();
  }  // else our own link is up: this connection is read from (and written on if ours goes)
  if (auto h = held_.find(peer); h != held_.end()) {
    h->second.timer.Cancel();
    Conn& link = *by_peer_[peer];
    for (Chunk& chunk : h->second.tx) link.tx.push_back(std::move(chunk));
    held_.erase(h);
  }
  core_.on_link_event(peer, LinkEvent::up, now());
  try_send(*by_peer_[peer]);
}

void NodeApp::wire_callbacks(ns3::Ptr<ns3::Socket> s) {
  s->SetRecvCallback(ns3::MakeCallback(&NodeApp::on_tcp_readable, this));
  s->SetSendCallback(ns3::MakeCallback(&NodeApp::on_send_space, this));
  s->SetCloseCallbacks(ns3::MakeCallback(&NodeApp::on_closed, this), ns3::MakeCallback(&NodeApp::on_closed, this));
}

void NodeApp::try_send(Conn& c) {
  if (!c.connected) return;
  // TCP Send is all-or-nothing: never offer more than the buffer takes; the send callback resumes.
  while (!c.tx.empty()) {
    const std::uint32_t room = c.socket->GetTxAvailable();
    if (room == 0) return;
    Chunk& chunk = c.tx.front();
    const auto n = static_cast<std::uint32_t>(std::min<std::size_t>(room, chunk.bytes.size() - chunk.sent));
    auto p = ns3::Create<ns3::Packet>(chunk.bytes.data() + chunk.sent, n);
    p->AddByteTag(RoundTag(chunk.round, Channel::tcp));
    if (c.socket->Send(p) < 0) return;
    chunk.sent += n;
    if (chunk.sent == chunk.bytes.size()) c.tx.pop_front();
  }
}

void NodeApp::on_connected(ns3::Ptr<ns3::Socket> s) {
  auto it = conns_.find(ns3::PeekPointer(s));
  if (crashed_ || it == conns_.end()) return;
  Conn& c = *it->second;
  c.connected = true;
  core_.on_link_event(c.peer, LinkEvent::up, now());
  try_send(c);
  Pump();
}

void NodeApp::on_connect_failed(ns3::Ptr<ns3::Socket> s) {
  if (crashed_) return;
  ++counters_.connect_failures;
  drop(s, LinkEvent::failed);
}

void NodeApp::on_accept(ns3::Ptr<ns3::Socket> s, const ns3::Address&) {
  if (crashed_) return;
  add_conn(s).connected = true;  // the peer is learned from its hello
  wire_callbacks(s);
  ++counters_.accepted;
}

void NodeApp::on_send_space(ns3::Ptr<ns3::Socket> s, std::uint32_t) {
  auto it = conns_.find(ns3::PeekPointer(s));
  if (!crashed_ && it != conns_.end()) try_send(*it->second);
}

void NodeApp::on_closed(ns3::Ptr<ns3::Socket> s) {
  if (crashed_) return;
  ++counters_.closed_by_peer;
  drop(s, LinkEvent::down);
}

void NodeApp::drop(ns3::Ptr<ns3::Socket> s, LinkEvent event) {
  auto it = conns_.find(ns3::PeekPointer(s));
  if (it == conns_.end()) return;
  std::unique_ptr<Conn> c = std::move(it->second);
  conns_.erase(it);
  silence(s);
  s->Close();
  if (!c->has_peer) return;
  const NodeId peer = c->peer;
  auto bp = by_peer_.find(peer);
  const bool was_link = bp != by_peer_.end() && bp->second == c.get();
  if (was_link) by_peer_.erase(bp);
  // Another connection with the same peer (it connected to us too) carries on: the oldest. The
  // frames this one had not finished go out on it; the core keeps its link.
  for (Conn* other : conns_in_order())
    if (other->has_peer && other->peer == peer) {
      if (!by_peer_.count(peer)) by_peer_[peer] = other;
      Conn& link = *by_peer_[peer];
      move_unsent(c->tx, link);
      try_send(link);
      return;
    }
  core_.on_link_event(peer, event, now());
  Pump();
}

void NodeApp::on_tcp_readable(ns3::Ptr<ns3::Socket> s) {
  if (crashed_) return;
  auto it = conns_.find(ns3::PeekPointer(s));
  if (it == conns_.end()) return;
  Conn& c = *it->second;
  while (auto p = s->Recv()) {
    std::vector<std::uint8_t> buf(p->GetSize());
    p->CopyData(buf.data(), static_cast<std::uint32_t>(buf.size()));
    c.reader.feed(buf.data(), buf.size());
  }
  while (auto frame = c.reader.next()) {
    if (!c.has_peer) {
      // An accepted connection's first frame must be a hello naming a member.
      const auto decoded = wire::decode_frame(*frame);
      const wire::Hello* hello = decoded.ok() && !decoded.messages.empty()
                                     ? std::get_if<wire::Hello>(&decoded.messages.front())
                                     : nullptr;
      if (!hello || hello->node >= env_.addresses.size() || hello->node == core_.id()) {
        ++counters_.bad_streams;
        env_.book->bad_frame();
        drop(s, LinkEvent::failed);
        return;
      }
      c.has_peer = true;
      c.peer = hello->node;
      adopt(c);
    }
    if (core_.on_frame(c.peer, Channel::tcp, frame->data(), frame->size(), now()) != wire::DecodeError::none)
      env_.book->bad_frame();
  }
  if (c.reader.error() != wire::DecodeError::none) {
    ++counters_.bad_streams;
    env_.book->bad_frame();
    drop(s, LinkEvent::failed);
    return;
  }
  Pump();
}

void NodeApp::on_multicast_readable(ns3::Ptr<ns3::Socket> s) {
  if (crashed_) return;
  ns3::Address from;
  while (auto p = s->RecvFrom(from)) {
    const auto sender = env_.by_address.find(ns3::InetSocketAddress::ConvertFrom(from).GetIpv4().Get());
    if (sender == env_.by_address.end() || sender->second == core_.id()) continue;
    std::vector<std::uint8_t> buf(p->GetSize());
    p->CopyData(buf.data(), static_cast<std::uint32_t>(buf.size()));
    if (core_.on_frame(sender->second, Channel::multicast, buf.data(), buf.size(), now()) != wire::DecodeError::none)
      env_.book->bad_frame();
  }
  Pump();
}

}  // namespace mixcast::ns3sim
