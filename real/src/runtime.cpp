#include "mixcast/real/runtime.hpp"

#include <boost/asio.hpp>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <array>
#include <chrono>
#include <deque>
#include <nlohmann/json.hpp>
#include <unordered_map>
#include <vector>

namespace mixcast::real {
namespace asio = boost::asio;
using asio::ip::tcp;
using asio::ip::udp;
using boost::system::error_code;

namespace {
template <typename T>
void remove_from(std::vector<T>& v, const T& x) {
  v.erase(std::remove(v.begin(), v.end(), x), v.end());
}
std::int64_t realtime_us() {
  return std::chrono::duration_cast<std::chrono::microseconds>(std::chrono::system_clock::now().time_since_epoch())
      .count();
}
asio::ip::address parse_address(const std::string& text, const std::string& what) {
  error_code ec;
  auto a = asio::ip::make_address(text, ec);
  if (ec) throw std::system_error(ec, what + " '" + text + "'");
  return a;
}
}  // namespace

// One TCP connection. Its peer is known from the start (we connected) or from its first frame,
// which must be a hello (someone connected to us).
struct Conn : std::enable_shared_from_this<Conn> {
  explicit Conn(asio::io_context& io) : socket(io), connect_timer(io) {}
  tcp::socket socket;
  asio::steady_timer connect_timer;
  std::optional<NodeId> peer;
  bool outbound = false;
  bool connected = false;
  bool closed = false;
  bool reading = false;  // an async read is outstanding
  wire::StreamReader reader;
  std::array<std::uint8_t, 64 * 1024> rx{};
  std::deque<wire::Bytes> queue;  // stream frames not yet written
  std::size_t queued_bytes = 0;
  std::vector<wire::Bytes> writing;  // frames of the outstanding write
  std::uint64_t frames_in = 0, frames_out = 0;
};

struct Runtime::Impl {
  Impl(asio::io_context& io_, DaemonConfig c)
      : io(io_), cfg(std::move(c)), view(cfg.view()), node(cfg.node, view), acceptor(io), timer(io),
        mcast_recv(io), mcast_send(io), epoch(std::chrono::steady_clock::now()) {
    const auto listen_at = tcp::endpoint(parse_address(cfg.listen.address, "listen.address"), cfg.listen.port);
    error_code ec;
    acceptor.open(listen_at.protocol(), ec);
    if (!ec) acceptor.set_option(asio::socket_base::reuse_address(true), ec);
    if (!ec) acceptor.bind(listen_at, ec);
    if (!ec) acceptor.listen(asio::socket_base::max_listen_connections, ec);
    if (ec) throw std::system_error(ec, "listen on " + cfg.listen.address + ":" + std::to_string(cfg.listen.port));
    if (cfg.multicast) open_multicast(*cfg.multicast);
  }

  void open_multicast(const MulticastConfig& m) {
    const auto group = parse_address(m.group, "multicast.group");
    const auto iface = parse_address(m.interface, "multicast.interface");
    if (!group.is_v4() || !group.is_multicast()) throw std::system_error(std::make_error_code(std::errc::invalid_argument), "multicast.group '" + m.group + "' is not an IPv4 multicast address");
    if (!iface.is_v4()) throw std::system_error(std::make_error_code(std::errc::invalid_argument), "multicast.interface '" + m.interface + "' is not an IPv4 address");
    group_endpoint = udp::endpoint(group, m.port);
    error_code ec;
    const std::string where = m.group + ":" + std::to_string(m.port) + " on " + m.interface;
    mcast_recv.open(udp::v4(), ec);
    if (!ec) mcast_recv.set_option(asio::socket_base::reuse_address(true), ec);
    if (!ec) mcast_recv.bind(udp::endpoint(group, m.port), ec);  // the group only: no unicast strays
    if (!ec) mcast_recv.set_option(asio::ip::multicast::join_group(group.to_v4(), iface.to_v4()), ec);
    if (!ec) mcast_recv.set_option(asio::socket_base::receive_buffer_size(4 << 20), ec);
    if (ec) throw std::system_error(ec, "multicast receive socket " + where);
    mcast_send.open(udp::v4(), ec);
    if (!ec) mcast_send.set_option(asio::ip::multicast::outbound_interface(iface.to_v4()), ec);
    if (!ec) mcast_send.set_option(asio::ip::multicast::hops(m.ttl), ec);
    if (!ec) mcast_send.set_option(asio::ip::multicast::enable_loopback(false), ec);
    if (!ec) mcast_send.bind(udp::endpoint(iface, 0), ec);
    if (ec) throw std::system_error(ec, "multicast send socket " + where);
    own_send_endpoint = mcast_send.local_endpoint();
  }

  Micros now() const {
    return std::chrono::duration_cast<std::chrono::microseconds>(std::chrono::steady_clock::now() - epoch).count();
  }

  // ---------------------------------------------------------------- core I/O

  // Pulls everything the core has to say. Deferred to the end of the current handler so that many
  // inputs (a burst of broadcasts, a read full of frames) batch into few frames and writes.
  void schedule_pump() {
    if (pump_scheduled || stopped) return;
    pump_scheduled = true;
    asio::post(io, [this] {
      pump_scheduled = false;
      pump();
    });
  }

  void pump() {
    if (stopped) return;
    // One clock read per batch: deliveries of one pump arrived in the same read.
    std::int64_t delivered_at = 0;
    while (auto d = node.poll_delivery()) {
      if (!delivered_at) delivered_at = realtime_us();
      if (delivery_cb) delivery_cb(DeliveryEvent{d->id, d->round, d->channel, delivered_at, d->payload});
    }
    while (auto t = node.poll_transmit()) send(std::move(*t));
    arm_timer();
    update_pressure();
  }

  void arm_timer() {
    const Micros next = node.next_timeout();
    if (next == timer_at) return;
    timer_at = next;
    if (next == kNever) {
      timer.cancel();
      return;
    }
    timer.expires_at(epoch + std::chrono::microseconds(next));
    timer.async_wait([this](error_code ec) {
      if (ec || stopped) return;
      timer_at = kNever;
      node.on_timeout(now());
      pump();
    });
  }

  void send(Transmit&& t) {
    if (t.channel == Channel::multicast) {
      if (!cfg.multicast) return;
      error_code ec;
      mcast_send.send_to(asio::buffer(t.bytes), group_endpoint, 0, ec);
      if (ec) spdlog::debug("multicast send failed: {}", ec.message());
      else transport.multicast_bytes_out += t.bytes.size();
      return;
    }
    auto c = link_to(t.to);
    if (!c) return;
    wire::Bytes frame;
    frame.reserve(t.bytes.size() + 4);
    wire::append_stream_frame(frame, t.bytes);
    enqueue(*c, std::move(frame));
  }

  void enqueue(Conn& c, wire::Bytes frame) {
    c.queued_bytes += frame.size();
    c.queue.push_back(std::move(frame));
    ++c.frames_out;
    ++transport.frames_out;
    if (c.connected) write(c.shared_from_this());
  }

  // ---------------------------------------------------------------- TCP

  std::shared_ptr<Conn> link_to(NodeId peer) {
    if (auto it = links.find(peer); it != links.end()) return it->second;
    const PeerConfig* p = cfg.peer(peer);
    if (!p) {
      spdlog::warn("core asked to send to {}, which is not in peers", peer);
      return nullptr;
    }
    auto c = std::make_shared<Conn>(io);
    c->peer = peer;
    c->outbound = true;
    links[peer] = c;
    wire::Bytes hello;
    wire::append_stream_frame(hello, node.hello_frame());
    c->queued_bytes += hello.size();
    c->queue.push_back(std::move(hello));
    if (!node.dialable(peer)) {
      // Behind a NAT we are not in: it cannot be dialled, it dials us (we are its gateway). Hold
      // the frames until its connection arrives (adopt), or report the link failed.
      c->outbound = false;
      c->connect_timer.expires_after(std::chrono::microseconds(2 * cfg.limits.connect_timeout));
      c->connect_timer.async_wait([this, c](error_code e) {
        if (!e && !c->connected && !c->closed) fail(c, LinkEvent::failed, "it is behind a NAT and has not connected to us");
      });
      return c;
    }
    error_code ec;
    const auto addr = asio::ip::make_address(p->endpoint.address, ec);
    if (ec) {
      spdlog::warn("peer {}: bad address '{}'", peer, p->endpoint.address);
      fail(c, LinkEvent::failed, "bad address");
      return nullptr;
    }
    c->connect_timer.expires_after(std::chrono::microseconds(cfg.limits.connect_timeout));
    c->connect_timer.async_wait([this, c](error_code e) {
      if (!e && !c->connected && !c->closed) fail(c, LinkEvent::failed, "connect timed out");
    });
    c->socket.async_connect(tcp::endpoint(addr, p->endpoint.port), [this, c](error_code e) {
      c->connect_timer.cancel();
      if (c->closed || stopped) return;
      if (e) {
        ++transport.connects_failed;
        return fail(c, LinkEvent::failed, "connect: " + e.message());
      }
      c->connected = true;
      tune(c->socket);
      if (auto r = reconnects.find(*c->peer); r != reconnects.end()) r->second.backoff = 0;
      spdlog::debug("connected to {}", *c->peer);
      node.on_link_event(*c->peer, LinkEvent::up, now());
      read(c);
      write(c);
      schedule_pump();
    });
    return c;
  }

  // No Nagle (we coalesce ourselves), and a bounded kernel send buffer: bytes parked in the kernel
  // are invisible to back-pressure, and on loopback the default grows to megabytes (seconds of delay).
  void tune(tcp::socket& s) {
    error_code ignore;
    s.set_option(tcp::no_delay(true), ignore);
    s.set_option(asio::socket_base::send_buffer_size(static_cast<int>(cfg.limits.socket_buffer_bytes)), ignore);
  }

  void accept() {
    acceptor.async_accept([this](error_code ec, tcp::socket s) {
      if (stopped) return;
      if (!ec) {
        ++transport.connections_accepted;
        auto c = std::make_shared<Conn>(io);
        c->socket = std::move(s);
        c->connected = true;
        tune(c->socket);
        inbound.push_back(c);
        read(c);
      } else if (ec != asio::error::operation_aborted) {
        spdlog::warn("accept: {}", ec.message());
      }
      accept();
    });
  }

  void read(const std::shared_ptr<Conn>& c) {
    if (c->closed || c->reading) return;
    if (congested) {
      paused.push_back(c);
      return;
    }
    c->reading = true;
    c->socket.async_read_some(asio::buffer(c->rx), [this, c](error_code ec, std::size_t n) {
      c->reading = false;
      if (c->closed || stopped) return;
      if (ec) {
        if (c->reader.buffered() > 0) ++transport.tcp_bad_frames;  // the stream ended inside a frame
        return fail(c, ec == asio::error::eof ? LinkEvent::down : LinkEvent::failed, ec.message());
      }
      transport.tcp_bytes_in += n;
      c->reader.feed(c->rx.data(), n);
      const Micros t = now();
      while (auto body = c->reader.next()) {
        ++c->frames_in;
        if (!c->peer && !adopt(c, *body)) return;
        const auto err = node.on_frame(*c->peer, Channel::tcp, body->data(), body->size(), t);
        if (err != wire::DecodeError::none) {
          ++transport.tcp_bad_frames;
          spdlog::debug("bad frame from {}: {}", *c->peer, wire::to_string(err));
        }
      }
      if (c->reader.error() != wire::DecodeError::none) {
        if (c->reader.error() == wire::DecodeError::oversized) ++transport.oversized_frames;
        else ++transport.tcp_bad_frames;
        return fail(c, LinkEvent::failed, std::string("malformed stream: ") + std::string(wire::to_string(c->reader.error())));
      }
      schedule_pump();
      read(c);
    });
  }

  // The first frame of an accepted connection must be a hello from a member.
  bool adopt(const std::shared_ptr<Conn>& c, const wire::Bytes& body) {
    const auto d = wire::decode_frame(body);
    const wire::Hello* h = d.ok() ? std::get_if<wire::Hello>(&d.messages.front()) : nullptr;
    if (!h || !view->contains(h->node) || h->node == cfg.node.self) {
      ++transport.tcp_bad_frames;
      std::string who;
      error_code ec;
      const auto ep = c->socket.remote_endpoint(ec);
      if (!ec) who = ep.address().to_string() + ":" + std::to_string(ep.port());
      spdlog::warn("closing connection from {}: first frame is not a hello from a member", who);
      close(c);
      return false;
    }
    c->peer = h->node;
    remove_from(inbound, c);
    // A peer that connected to us (a NATed node, or both sides at once). If our own link to it is
    // not up yet (still dialling, or waiting for a NATed peer), this connection takes over its
    // queued frames and becomes the link we write on; otherwise we only read from it.
    auto it = links.find(h->node);
    if (it == links.end() || it->second->closed) {
      links[h->node] = c;
    } else if (!it->second->connected) {
      auto old = it->second;
      c->queue = std::move(old->queue);
      c->queued_bytes = old->queued_bytes;
      c->frames_out = old->frames_out;
      old->queue.clear();
      old->queued_bytes = 0;
      links[h->node] = c;
      close(old);
      write(c);
    } else {
      extra.push_back(c);
    }
    if (auto r = reconnects.find(h->node); r != reconnects.end()) {
      r->second.backoff = 0;
      if (r->second.timer) r->second.timer->cancel();
    }
    node.on_link_event(h->node, LinkEvent::up, now());
    return true;
  }

  void write(const std::shared_ptr<Conn>& c) {
    if (!c->writing.empty() || c->queue.empty() || c->closed || !c->connected) return;
    // Coalesce: everything queued goes out in one gather write.
    std::vector<asio::const_buffer> buffers;
    buffers.reserve(c->queue.size());
    while (!c->queue.empty() && buffers.size() < 1024) {
      c->writing.push_back(std::move(c->queue.front()));
      c->queue.pop_front();
      buffers.emplace_back(asio::buffer(c->writing.back()));
    }
    ++transport.writes;
    asio::async_write(c->socket, buffers, [this, c](error_code ec, std::size_t n) {
      c->queued_bytes -= n <= c->queued_bytes ? n : c->queued_bytes;
      c->writing.clear();
      if (c->closed || stopped) return;
      if (ec) return fail(c, LinkEvent::failed, "write: " + ec.message());
      transport.tcp_bytes_out += n;
      write(c);
      update_pressure();
    });
  }

  void close(const std::shared_ptr<Conn>& c) {
    if (c->closed) return;
    c->closed = true;
    ++transport.connections_closed;
    error_code ignore;
    c->connect_timer.cancel();
    c->socket.shutdown(tcp::socket::shutdown_both, ignore);
    c->socket.close(ignore);
    remove_from(inbound, c);
    remove_from(extra, c);
    remove_from(paused, c);
  }

  void fail(const std::shared_ptr<Conn>& c, LinkEvent event, const std::string& why) {
    if (c->closed) return;
    close(c);
    if (!c->peer) return;
    const bool is_link = links.count(*c->peer) && links[*c->peer] == c;
    if (!is_link) return;  // a spare connection: the link itself is fine
    links.erase(*c->peer);
    spdlog::info("link to {} lost: {}", *c->peer, why);
    // A second connection from the same peer is still open: write on that one instead.
    for (auto& e : extra)
      if (e->peer == c->peer && !e->closed) {
        links[*c->peer] = e;
        remove_from(extra, links[*c->peer]);
        return;
      }
    node.on_link_event(*c->peer, event, now());
    schedule_reconnect(*c->peer);
    schedule_pump();
  }

  // The core stops delegating to a peer whose link failed until it hears from it. A peer that was
  // only late (started after us, restarted, briefly unreachable) must come back: retry with backoff
  // (100 ms doubling to 5 s); a connect that succeeds reports the link up.
  void schedule_reconnect(NodeId peer) {
    if (stopped || !cfg.peer(peer)) return;
    if (!node.dialable(peer)) return;  // it reconnects to us
    auto& r = reconnects[peer];
    if (!r.timer) r.timer = std::make_unique<asio::steady_timer>(io);
    r.backoff = r.backoff == Micros{0} ? kFirstRetry : std::min<Micros>(2 * r.backoff, kMaxRetry);
    r.timer->expires_after(std::chrono::microseconds(r.backoff));
    r.timer->async_wait([this, peer](error_code ec) {
      if (ec || stopped || links.count(peer)) return;
      spdlog::debug("reconnecting to {}", peer);
      link_to(peer);
    });
  }
  static constexpr Micros kFirstRetry = 100'000, kMaxRetry = 5'000'000;
  struct Reconnect {
    std::unique_ptr<asio::steady_timer> timer;
    Micros backoff = 0;
  };
  std::unordered_map<NodeId, Reconnect> reconnects;

  // ---------------------------------------------------------------- multicast

  void read_multicast() {
    if (!cfg.multicast || stopped) return;
    if (congested) {
      multicast_paused = true;
      return;
    }
    mcast_recv.async_receive_from(asio::buffer(mrx), mfrom, [this](error_code ec, std::size_t n) {
      if (stopped || ec == asio::error::operation_aborted) return;
      if (!ec) on_datagram(n);
      // Bounded budget: at most multicast_budget datagrams per turn, then let other work run.
      for (std::size_t i = 1; i < cfg.limits.multicast_budget && !ec; ++i) {
        if (mcast_recv.available(ec) == 0 || ec) break;
        n = mcast_recv.receive_from(asio::buffer(mrx), mfrom, 0, ec);
        if (!ec) on_datagram(n);
      }
      schedule_pump();
      asio::post(io, [this] { read_multicast(); });
    });
  }

  void on_datagram(std::size_t n) {
    if (mfrom == own_send_endpoint) return;  // our own, looped back by the interface
    transport.multicast_bytes_in += n;
    const auto err = node.on_frame(0, Channel::multicast, mrx.data(), n, now());
    if (err != wire::DecodeError::none) {
      ++transport.multicast_bad_frames;
      spdlog::debug("bad multicast datagram from {}: {}", mfrom.address().to_string(), wire::to_string(err));
    }
  }

  // ---------------------------------------------------------------- back-pressure

  void update_pressure() {
    std::size_t worst = 0;
    for (const auto& [peer, c] : links) worst = std::max(worst, c->queued_bytes);
    if (!congested && worst > cfg.limits.send_queue_bytes) {
      congested = true;
      ++transport.read_pauses;
      spdlog::debug("send queues full ({} bytes): pausing reads", worst);
    } else if (congested && worst <= cfg.limits.send_queue_bytes / 2) {
      congested = false;
      auto resume = std::move(paused);
      paused.clear();
      for (auto& c : resume) read(c);
      if (multicast_paused) {
        multicast_paused = false;
        read_multicast();
      }
      if (ready_cb) ready_cb();
    }
  }

  nlohmann::json status() const;

  asio::io_context& io;
  DaemonConfig cfg;
  std::shared_ptr<const View> view;
  Node node;
  tcp::acceptor acceptor;
  asio::steady_timer timer;
  Micros timer_at = kNever;
  udp::socket mcast_recv, mcast_send;
  udp::endpoint group_endpoint, own_send_endpoint, mfrom;
  std::array<std::uint8_t, 65536> mrx{};
  std::chrono::steady_clock::time_point epoch;
  std::unordered_map<NodeId, std::shared_ptr<Conn>> links;  // the connection we write on, per peer
  std::vector<std::shared_ptr<Conn>> inbound;  // accepted, hello not seen yet
  std::vector<std::shared_ptr<Conn>> extra;    // second connections of a peer: read only
  std::vector<std::shared_ptr<Conn>> paused;   // reads waiting for the queues to drain
  bool multicast_paused = false;
  bool congested = false;
  bool pump_scheduled = false;
  bool started = false, stopped = false;
  TransportCounters transport;
  std::function<void(const DeliveryEvent&)> delivery_cb;
  std::function<void()> ready_cb;
};

nlohmann::json Runtime::Impl::status() const {
  using nlohmann::json;
  const Micros t = now();
  json s;
  s["node"] = cfg.node.self;
  s["mode"] = std::string(to_string(cfg.node.mode));
  s["incarnation"] = cfg.node.incarnation;
  s["members"] = view->members();
  s["uptime_s"] = static_cast<double>(t) / 1e6;
  const std::size_t count = node.island_count();  // brings the island view up to date first
  json islands = json::array();
  for (std::size_t i = 0; i < node.islands().size(); ++i) islands.push_back(node.islands().island(i).to_vector());
  s["islands"] = {{"count", count}, {"hash", node.island_hash()}, {"list", islands}};
  std::vector<NodeId> hears_me, i_hear;
  for (NodeId m : view->members()) {
    if (m == cfg.node.self) continue;
    if (node.reachability().hears_me(m, t)) hears_me.push_back(m);
    if (node.reachability().i_hear(m, t)) i_hear.push_back(m);
  }
  s["reachability"] = {{"hears_me", hears_me}, {"i_hear", i_hear}};
  json links_json = json::array();
  std::vector<NodeId> peers;
  for (const auto& [p, c] : links) peers.push_back(p);
  std::sort(peers.begin(), peers.end());
  for (NodeId p : peers) {
    const auto& c = *links.at(p);
    links_json.push_back({{"peer", p},
                          {"state", c.connected ? "up" : "connecting"},
                          {"direction", c.outbound ? "out" : "in"},
                          {"queued_bytes", c.queued_bytes},
                          {"frames_in", c.frames_in},
                          {"frames_out", c.frames_out}});
  }
  s["links"] = links_json;
  const auto& k = node.counters();
  const auto& tr = transport;
  s["counters"] = {{"broadcasts", k.broadcasts}, {"delivered", k.delivered}, {"duplicates", k.duplicates},
                   {"too_old", k.too_old}, {"frames_in", k.frames_in}, {"bad_frames", k.bad_frames},
                   {"bad_targets", k.bad_targets}, {"delegations", k.delegations}, {"acks_received", k.acks_received},
                   {"ack_timeouts", k.ack_timeouts}, {"cover_timeouts", k.cover_timeouts}, {"link_failures", k.link_failures},
                   {"redelegations", k.redelegations}, {"view_mismatches", k.view_mismatches},
                   {"multicasts", k.multicasts}, {"beacons", k.beacons}, {"heard_lists", k.heard_lists},
                   {"confirms_sent", k.confirms_sent}, {"repair_requests", k.repair_requests},
                   {"repairs_sent", k.repairs_sent}, {"ack_waits", k.ack_waits}, {"silences_told", k.silences_told}, {"forced_tcp", k.forced_tcp}, {"unconfirmed_tcp", k.unconfirmed_tcp},
                   {"announcements", k.announcements}, {"relayed", k.relayed}, {"rescues", k.rescues},
                   {"tcp_bad_frames", tr.tcp_bad_frames}, {"multicast_bad_frames", tr.multicast_bad_frames},
                   {"oversized_frames", tr.oversized_frames}, {"connects_failed", tr.connects_failed},
                   {"connections_accepted", tr.connections_accepted}, {"connections_closed", tr.connections_closed},
                   {"backpressure_refusals", tr.backpressure_refusals}, {"read_pauses", tr.read_pauses},
                   {"tcp_bytes_out", tr.tcp_bytes_out}, {"tcp_bytes_in", tr.tcp_bytes_in},
                   {"multicast_bytes_out", tr.multicast_bytes_out}, {"multicast_bytes_in", tr.multicast_bytes_in},
                   {"writes", tr.writes}, {"tcp_frames_out", tr.frames_out}};
  return s;
}

Runtime::Runtime(asio::io_context& io, DaemonConfig config) : impl_(std::make_unique<Impl>(io, std::move(config))) {}
Runtime::~Runtime() { stop(); }

void Runtime::start() {
  if (impl_->started) return;
  impl_->started = true;
  impl_->accept();
  impl_->read_multicast();
  impl_->schedule_pump();  // NATed nodes open their gateway links; mixed mode arms its tick
}

void Runtime::stop() {
  auto& m = *impl_;
  if (m.stopped) return;
  m.stopped = true;
  error_code ignore;
  m.acceptor.close(ignore);
  m.timer.cancel();
  m.mcast_recv.close(ignore);
  m.mcast_send.close(ignore);
  std::vector<std::shared_ptr<Conn>> all(m.inbound.begin(), m.inbound.end());
  all.insert(all.end(), m.extra.begin(), m.extra.end());
  for (auto& [p, c] : m.links) all.push_back(c);
  for (auto& c : all) m.close(c);
  m.links.clear();
  for (auto& [peer, r] : m.reconnects)
    if (r.timer) r.timer->cancel();
}

std::optional<MessageId> Runtime::try_broadcast(wire::Bytes payload) {
  auto& m = *impl_;
  if (m.stopped || payload.size() > wire::kMaxPayloadBytes) return std::nullopt;
  if (m.congested) {
    ++m.transport.backpressure_refusals;
    return std::nullopt;
  }
  const auto id = m.node.broadcast(std::move(payload), m.now());
  m.schedule_pump();
  return id;
}

void Runtime::on_delivery(std::function<void(const DeliveryEvent&)> cb) { impl_->delivery_cb = std::move(cb); }
void Runtime::on_ready(std::function<void()> cb) { impl_->ready_cb = std::move(cb); }
NodeId Runtime::id() const { return impl_->cfg.node.self; }
const Node& Runtime::node() const { return impl_->node; }
const TransportCounters& Runtime::transport() const { return impl_->transport; }
nlohmann::json Runtime::status() const { return impl_->status(); }
std::uint16_t Runtime::tcp_port() const {
  error_code ec;
  auto ep = impl_->acceptor.local_endpoint(ec);
  return ec ? 0 : ep.port();
}

}  // namespace mixcast::real
