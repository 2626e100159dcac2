// libFuzzer target: the frame decoder, the stream reader and a node fed arbitrary frames.
// Decoding must never crash or read out of bounds, and whatever decodes must re-encode to a frame
// that decodes to the same messages.
#include <cstdint>
#include <cstdlib>
#include <memory>

#include "mixcast/core/node.hpp"
#include "mixcast/core/wire.hpp"

using namespace mixcast;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  auto d = wire::decode_frame(data, size);
  if (d.ok()) {
    auto again = wire::decode_frame(wire::encode_frame(d.messages));
    if (!again.ok() || again.messages.size() != d.messages.size()) std::abort();
    for (std::size_t i = 0; i < d.messages.size(); ++i)
      if (!(again.messages[i] == d.messages[i])) std::abort();
  }

  wire::StreamReader reader(4096);
  reader.feed(data, size);
  while (auto body = reader.next()) wire::decode_frame(*body);

  // A node in each mode: mixed mode reads island announcements and listed islands.
  static auto view = std::make_shared<const View>(std::vector<NodeId>{0, 1, 2, 3, 4, 5, 6, 7});
  for (Mode mode : {Mode::tcp, Mode::mixed}) {
    NodeConfig cfg;
    cfg.mode = mode;
    Node node(cfg, view);
    node.on_frame(3, Channel::tcp, data, size, 0);
    node.on_frame(4, Channel::multicast, data, size, 0);
    node.on_timeout(10'000'000);
    node.broadcast({1}, 10'000'001);  // plans over whatever islands the input claimed
    while (node.poll_transmit()) {
    }
    while (node.poll_delivery()) {
    }
  }
  return 0;
}
