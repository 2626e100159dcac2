// Bytes per link per round at packet level. Senders tag the bytes they hand to a socket with the
// round of the broadcast message they carry (a ByteTag survives TCP segmentation and IP
// fragmentation); every device's PhyTxEnd trace adds each frame it sends to its link's tally.
#pragma once
#include <cstdint>
#include <map>
#include <string>
#include <tuple>
#include <vector>

#include "ns3/net-device.h"
#include "ns3/packet.h"
#include "ns3/tag.h"

#include "mixcast/sim/result.hpp"

namespace mixcast::ns3sim {

class RoundTag : public ns3::Tag {
 public:
  RoundTag() = default;
  RoundTag(std::uint32_t round, mixcast::Channel channel) : round_(round), channel_(channel) {}
  static ns3::TypeId GetTypeId();
  ns3::TypeId GetInstanceTypeId() const override;
  std::uint32_t GetSerializedSize() const override { return 5; }
  void Serialize(ns3::TagBuffer i) const override;
  void Deserialize(ns3::TagBuffer i) override;
  void Print(std::ostream& os) const override;
  std::uint32_t round() const { return round_; }
  mixcast::Channel channel() const { return channel_; }

 private:
  std::uint32_t round_ = 0;
  mixcast::Channel channel_ = mixcast::Channel::tcp;
};

class LinkBytes {
 public:
  // Registers a link; returns its index.
  std::uint32_t add_link(std::string name, sim::LinkKind kind);
  // Counts every frame `device` sends as traffic on `link`.
  void watch(ns3::Ptr<ns3::NetDevice> device, std::uint32_t link);
  const std::vector<sim::LinkInfo>& links() const { return links_; }
  std::vector<sim::LinkRound> rounds() const;

 private:
  void sent(std::uint32_t link, ns3::Ptr<const ns3::Packet> packet);

  std::vector<sim::LinkInfo> links_;
  struct Tally {
    std::uint64_t bytes = 0, packets = 0;
  };
  std::map<std::tuple<std::uint32_t, std::uint32_t, mixcast::Channel>, Tally> tally_;
};

}  // namespace mixcast::ns3sim
