#include "mixcast/sim/network_model.hpp"

#include <algorithm>
#include <cmath>
#include <limits>

namespace mixcast::sim {

namespace {
NetworkModel::Nanos nanos(double s) { return static_cast<NetworkModel::Nanos>(std::llround(s * 1e9)); }
}  // namespace

NetworkModel::NetworkModel(const Scenario& s) {
  const auto placement = place_nodes(s);
  const std::uint32_t n = static_cast<std::uint32_t>(placement.size());
  dcs_ = static_cast<std::uint32_t>(s.datacenters.size());
  for (std::uint32_t d = 0; d < dcs_; ++d)
    for (const auto& sub : s.datacenters[d].subnets) {
      Subnet x;
      x.dc = d;
      x.latency = nanos(sub.lan.latency_s);
      x.bandwidth = sub.lan.bandwidth_bps;
      x.loss = sub.lan.loss;
      x.multicast_loss = 1 - (1 - sub.lan.loss) * (1 - sub.multicast_loss);
      x.multicast = sub.multicast;
      x.nat = sub.nat;
      x.multicast_fails_at = sub.multicast_fails_at_s >= 0 ? nanos(sub.multicast_fails_at_s) : -1;
      x.multicast_recovers_at = sub.multicast_recovers_at_s >= 0 ? nanos(sub.multicast_recovers_at_s) : -1;
      subnets_.push_back(std::move(x));
    }
  subnet_of_.resize(n);
  crashed_.assign(n, false);
  send_broken_.assign(n, false);
  recv_broken_.assign(n, false);
  nic_busy_.assign(n, 0);
  for (NodeId i = 0; i < n; ++i) {
    const auto& p = placement[i];
    subnet_of_[i] = p.subnet;
    subnets_[p.subnet].members.push_back(i);
    const auto& spec = subnet_at(s, p.subnet);
    auto listed = [&](const std::vector<std::uint32_t>& v) {
      return std::find(v.begin(), v.end(), p.index_in_subnet) != v.end();
    };
    send_broken_[i] = listed(spec.multicast_send_broken);
    recv_broken_[i] = listed(spec.multicast_recv_broken);
  }

  // WAN: shortest paths by latency (Floyd-Warshall; datacenters are few), keeping the bottleneck
  // bandwidth and the combined loss of the chosen path.
  const Nanos inf = std::numeric_limits<Nanos>::max() / 4;
  wan_latency_.assign(std::size_t{dcs_} * dcs_, inf);
  wan_bandwidth_.assign(std::size_t{dcs_} * dcs_, std::numeric_limits<double>::infinity());
  wan_loss_.assign(std::size_t{dcs_} * dcs_, 0.0);
  wan_busy_.assign(std::size_t{dcs_} * dcs_, 0);
  auto at = [this](std::uint32_t a, std::uint32_t b) { return std::size_t{a} * dcs_ + b; };
  for (std::uint32_t d = 0; d < dcs_; ++d) wan_latency_[at(d, d)] = 0;
  auto dc_index = [&](const std::string& name) {
    for (std::uint32_t d = 0; d < dcs_; ++d)
      if (s.datacenters[d].name == name) return d;
    return dcs_;
  };
  for (const auto& w : s.wan) {
    const auto a = dc_index(w.a), b = dc_index(w.b);
    if (a >= dcs_ || b >= dcs_) continue;  // validate() rejects these
    for (auto [x, y] : {std::pair{a, b}, std::pair{b, a}}) {
      if (nanos(w.link.latency_s) < wan_latency_[at(x, y)]) {
        wan_latency_[at(x, y)] = nanos(w.link.latency_s);
        wan_bandwidth_[at(x, y)] = w.link.bandwidth_bps;
        wan_loss_[at(x, y)] = w.link.loss;
      }
    }
  }
  for (std::uint32_t k = 0; k < dcs_; ++k)
    for (std::uint32_t i = 0; i < dcs_; ++i)
      for (std::uint32_t j = 0; j < dcs_; ++j)
        if (wan_latency_[at(i, k)] + wan_latency_[at(k, j)] < wan_latency_[at(i, j)]) {
          wan_latency_[at(i, j)] = wan_latency_[at(i, k)] + wan_latency_[at(k, j)];
          wan_bandwidth_[at(i, j)] = std::min(wan_bandwidth_[at(i, k)], wan_bandwidth_[at(k, j)]);
          wan_loss_[at(i, j)] = 1 - (1 - wan_loss_[at(i, k)]) * (1 - wan_loss_[at(k, j)]);
        }
}

std::vector<NetworkModel::Closed> NetworkModel::crash(NodeId n, Nanos now) {
  crashed_[n] = true;
  std::vector<Closed> out;
  for (auto it = connections_.begin(); it != connections_.end();) {
    const auto a = static_cast<NodeId>(it->first >> 32), b = static_cast<NodeId>(it->first & 0xFFFFFFFFu);
    if (a != n && b != n) {
      ++it;
      continue;
    }
    const NodeId peer = a == n ? b : a;
    if (it->second.established)
      out.push_back({peer, std::max(now + latency(n, peer), it->second.last_arrival[n < peer ? 0 : 1])});
    it = connections_.erase(it);
  }
  std::sort(out.begin(), out.end(), [](const Closed& x, const Closed& y) { return x.peer < y.peer; });  // deterministic
  return out;
}

void NetworkModel::restart(NodeId n) {
  crashed_[n] = false;
  for (auto it = connections_.begin(); it != connections_.end();) {
    const auto a = static_cast<NodeId>(it->first >> 32), b = static_cast<NodeId>(it->first & 0xFFFFFFFFu);
    it = (a == n || b == n) ? connections_.erase(it) : std::next(it);
  }
}

NetworkModel::Nanos NetworkModel::latency(NodeId a, NodeId b) const {
  const auto& sa = subnets_[subnet_of_[a]];
  const auto& sb = subnets_[subnet_of_[b]];
  if (subnet_of_[a] == subnet_of_[b]) return sa.latency;
  if (sa.dc == sb.dc) return sa.latency + sb.latency;
  return sa.latency + wan_latency_[std::size_t{sa.dc} * dcs_ + sb.dc] + sb.latency;
}

bool NetworkModel::may_connect(NodeId from, NodeId to) const {
  return !subnets_[subnet_of_[to]].nat || subnet_of_[from] == subnet_of_[to];
}

bool NetworkModel::hears_multicast(NodeId from, NodeId to, Nanos now) const {
  if (from == to || subnet_of_[from] != subnet_of_[to]) return false;
  const auto& sub = subnets_[subnet_of_[from]];
  if (!sub.multicast) return false;
  if (sub.multicast_fails_at >= 0 && now >= sub.multicast_fails_at &&
      (sub.multicast_recovers_at < 0 || now < sub.multicast_recovers_at))
    return false;
  return !send_broken_[from] && !recv_broken_[to];
}

NetworkModel::Nanos NetworkModel::serialise(Nanos start, std::size_t bytes, double bandwidth) const {
  return start + static_cast<Nanos>(std::ceil(static_cast<double>(bytes) * 8e9 / bandwidth));
}

NetworkModel::Unicast NetworkModel::unicast(NodeId from, NodeId to, std::size_t bytes, Nanos now, Rng& rng) {
  Unicast out;
  const Nanos one_way = latency(from, to);
  const Nanos rtt = 2 * one_way;
  const std::uint64_t key = (std::uint64_t{std::min(from, to)} << 32) | std::max(from, to);
  Connection& c = connections_[key];
  Nanos start = now;
  if (!c.established) {
    if (crashed_[to]) {
      connections_.erase(key);
      out.failed_at = now + rtt;  // refused by the peer's kernel
      return out;
    }
    if (!may_connect(from, to)) {
      connections_.erase(key);
      out.held = true;  // the NAT would drop our SYNs
      return out;
    }
    c.established = true;
    start += rtt;  // three-way handshake before the first byte
    out.connected_at = start;
    c.dialer = from;
    c.ready_at = start;
  } else if (from != c.dialer && now < c.ready_at) {
    start = c.ready_at;  // the peer's handshake is still on: our bytes go once it is done
    if (!c.other_side_told) {
      c.other_side_told = true;
      out.connected_at = start;
    }
  }
  const auto& sa = subnets_[subnet_of_[from]];
  const auto& sb = subnets_[subnet_of_[to]];
  // Sender NIC: a FIFO. A connection still in its handshake does not hold it; its bytes go out once
  // the handshake is done, or as soon as the NIC is free after that.
  const Nanos tx_start = std::max(start, nic_busy_[from]);
  const Nanos tx_end = serialise(tx_start, bytes, sa.bandwidth);
  if (start == now) nic_busy_[from] = tx_end;
  else nic_busy_[from] = serialise(std::max(now, nic_busy_[from]), bytes, sa.bandwidth);
  Nanos arrival = tx_end;
  double loss = sa.loss;
  if (sa.dc != sb.dc) {
    const std::size_t d = std::size_t{sa.dc} * dcs_ + sb.dc;
    const Nanos wan_start = std::max(arrival + sa.latency, wan_busy_[d]);
    wan_busy_[d] = serialise(wan_start, bytes, wan_bandwidth_[d]);
    arrival = wan_busy_[d] + wan_latency_[d] + sb.latency;
    loss = 1 - (1 - loss) * (1 - wan_loss_[d]) * (1 - sb.loss);
  } else {
    arrival += one_way;
    if (subnet_of_[from] != subnet_of_[to]) loss = 1 - (1 - loss) * (1 - sb.loss);
  }
  // Lost segments come back after an RTO that doubles each time.
  Nanos rto = std::max(kMinRto, 3 * rtt);
  while (loss > 0 && rng.chance(loss)) {
    arrival += rto;
    rto *= 2;
  }
  Nanos& last = c.last_arrival[from < to ? 0 : 1];
  arrival = std::max(arrival, last);  // in order
  last = arrival;
  out.arrival = arrival;
  return out;
}

std::vector<NetworkModel::Arrival> NetworkModel::multicast(NodeId from, std::size_t bytes, Nanos now, Rng& rng) {
  std::vector<Arrival> out;
  const auto& sub = subnets_[subnet_of_[from]];
  const Nanos tx_start = std::max(now, nic_busy_[from]);
  nic_busy_[from] = serialise(tx_start, bytes, sub.bandwidth);
  const Nanos at = nic_busy_[from] + sub.latency;
  for (NodeId to : sub.members) {
    if (crashed_[to] || !hears_multicast(from, to, now)) continue;
    if (sub.multicast_loss > 0 && rng.chance(sub.multicast_loss)) continue;
    out.push_back(Arrival{to, at});
  }
  return out;
}

}  // namespace mixcast::sim
