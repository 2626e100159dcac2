#include "link_bytes.hpp"

#include "ns3/callback.h"

namespace mixcast::ns3sim {

ns3::TypeId RoundTag::GetTypeId() {
  static ns3::TypeId tid = ns3::TypeId("mixcast::RoundTag").SetParent<ns3::Tag>().AddConstructor<RoundTag>();
  return tid;
}
ns3::TypeId RoundTag::GetInstanceTypeId() const { return GetTypeId(); }
void RoundTag::Serialize(ns3::TagBuffer i) const {
  i.WriteU32(round_);
  i.WriteU8(static_cast<std::uint8_t>(channel_));
}
void RoundTag::Deserialize(ns3::TagBuffer i) {
  round_ = i.ReadU32();
  channel_ = static_cast<mixcast::Channel>(i.ReadU8());
}
void RoundTag::Print(std::ostream& os) const { os << "round=" << round_ << " channel=" << to_string(channel_); }

std::uint32_t LinkBytes::add_link(std::string name, sim::LinkKind kind) {
  links_.push_back(sim::LinkInfo{std::move(name), kind});
  return static_cast<std::uint32_t>(links_.size() - 1);
}

void LinkBytes::watch(ns3::Ptr<ns3::NetDevice> device, std::uint32_t link) {
  device->TraceConnectWithoutContext(
      "PhyTxEnd", ns3::MakeBoundCallback(
                      +[](LinkBytes* self, std::uint32_t l, ns3::Ptr<const ns3::Packet> p) { self->sent(l, p); }, this,
                      link));
}

void LinkBytes::sent(std::uint32_t link, ns3::Ptr<const ns3::Packet> packet) {
  // A segment may carry bytes of several sends: the frame counts for the tag covering most bytes.
  // Untagged frames (handshakes, pure acks, ARP) count as round 0, channel "local" (other).
  std::uint32_t round = 0, best = 0;
  mixcast::Channel channel = mixcast::Channel::local;
  auto it = packet->GetByteTagIterator();
  while (it.HasNext()) {
    auto item = it.Next();
    if (item.GetTypeId() != RoundTag::GetTypeId()) continue;
    const std::uint32_t covered = item.GetEnd() - item.GetStart();
    if (covered <= best) continue;
    RoundTag tag;
    item.GetTag(tag);
    best = covered;
    round = tag.round();
    channel = tag.channel();
  }
  Tally& t = tally_[{link, round, channel}];
  t.bytes += packet->GetSize();
  t.packets += 1;
}

std::vector<sim::LinkRound> LinkBytes::rounds() const {
  std::vector<sim::LinkRound> out;
  out.reserve(tally_.size());
  for (const auto& [key, t] : tally_)
    out.push_back(sim::LinkRound{std::get<0>(key), std::get<1>(key), std::get<2>(key), t.bytes, t.packets});
  return out;
}

}  // namespace mixcast::ns3sim
