#include <gtest/gtest.h>

#include "mixcast/core/wire.hpp"

using namespace mixcast;
using namespace mixcast::wire;

namespace {
Broadcast sample_broadcast() {
  Broadcast b;
  b.origin = 300;
  b.seq = 1ULL << 40;
  b.round = 7;
  b.targets.kind = Targets::Kind::view_range;
  b.targets.view_hash = 0x1122334455667788ULL;
  b.targets.lo = 17;
  b.targets.count = 512;
  b.payload = {1, 2, 3, 4, 5};
  return b;
}
}  // namespace

TEST(Varint, RoundTripsBoundaries) {
  for (std::uint64_t v : {0ULL, 1ULL, 127ULL, 128ULL, 16383ULL, 16384ULL, (1ULL << 32) - 1, ~0ULL}) {
    Bytes frame = encode_frame({McastHeader{1, v}});
    auto d = decode_frame(frame);
    ASSERT_TRUE(d.ok()) << to_string(d.error);
    EXPECT_EQ(std::get<McastHeader>(d.messages[0]).mseq, v);
    EXPECT_EQ(varint_size(v), [&] { Bytes b; put_varint(b, v); return b.size(); }());
  }
}

TEST(Wire, EveryMessageTypeRoundTrips) {
  Broadcast listed = sample_broadcast();
  listed.targets = Targets{};
  listed.targets.kind = Targets::Kind::id_list;
  listed.targets.ids = {5, 9, 100000};
  listed.flags = wire::Broadcast::kRelay | wire::Broadcast::kForced;
  listed.relay_to = 77;
  listed.token = 1ULL << 35;  // a delegation's token, echoed by its acks
  Broadcast islands = sample_broadcast();
  islands.targets = Targets{};
  islands.targets.kind = Targets::Kind::island_list;
  islands.targets.ids = {0, 1, 2, 3, 70, 4000000000u, 4294967295u, 9};
  islands.targets.island_sizes = {4, 3, 1};
  Broadcast restarted = sample_broadcast();
  restarted.incarnation = 1ULL << 40;  // a clock-derived incarnation
  std::vector<Message> all = {Hello{3, 42, 7},
                              sample_broadcast(),
                              restarted,
                              listed,
                              islands,
                              Ack{1, 2, AckStatus::view_mismatch, 99, 3},
                              Ack{1, 2, AckStatus::covered, 99, 3, 1ULL << 35},
                              Ack{1, 2, AckStatus::done, 99, 3},
                              McastHeader{4, 5, 2},
                              Confirm{6, 7, 8, 4},
                              RepairRequest{9, 10, 12, 5},
                              IslandDigest{3, {{1, 2, 3}, {4}}},
                              HeardList{{{0, 1}, {5, 300}, {4000000000u, 294967296u}}}};
  Bytes frame = encode_frame(all);
  auto d = decode_frame(frame);
  ASSERT_TRUE(d.ok()) << to_string(d.error);
  ASSERT_EQ(d.messages.size(), all.size());
  for (std::size_t i = 0; i < all.size(); ++i) EXPECT_TRUE(d.messages[i] == all[i]) << "message " << i;
}

TEST(Wire, IslandListsOfConsecutiveIdsTakeAboutAByteAMember) {
  Broadcast b = sample_broadcast();
  b.targets = Targets{};
  b.targets.kind = Targets::Kind::island_list;
  for (NodeId island = 0; island < 100; ++island) {
    for (NodeId m = 0; m < 64; ++m) b.targets.ids.push_back(90000 + 64 * island + m);
    b.targets.island_sizes.push_back(64);
  }
  const Bytes frame = encode_frame({b});
  EXPECT_LT(frame.size(), 100u * (64 + 4) + 40);
  auto d = decode_frame(frame);
  ASSERT_TRUE(d.ok()) << to_string(d.error);
  EXPECT_TRUE(std::get<Broadcast>(d.messages[0]) == b);
}

TEST(Wire, MalformedIslandListsAreRejected) {
  // A broadcast frame with a hand-written targets block: kind 3, then `targets`, then an empty payload.
  auto frame_with = [](Bytes targets) {
    Bytes body;
    put_varint(body, 5);   // origin
    put_varint(body, 1);   // incarnation
    put_varint(body, 1);   // seq
    put_varint(body, 0);   // round
    body.push_back(0);     // flags
    body.push_back(3);     // island_list
    body.insert(body.end(), targets.begin(), targets.end());
    put_varint(body, 9);   // token (a delegation)
    put_varint(body, 0);   // payload length
    Bytes f{kVersion, 2};  // broadcast
    put_varint(f, body.size());
    f.insert(f.end(), body.begin(), body.end());
    return f;
  };
  ASSERT_TRUE(decode_frame(frame_with({1, 2, 7, 0})).ok());                    // one island {7, 8}
  EXPECT_EQ(decode_frame(frame_with({0})).error, DecodeError::bad_value);      // no island
  EXPECT_EQ(decode_frame(frame_with({1, 0})).error, DecodeError::bad_value);   // an empty island
  EXPECT_EQ(decode_frame(frame_with({2, 1, 7})).error, DecodeError::truncated);  // a second island missing
  EXPECT_EQ(decode_frame(frame_with({1, 100, 7})).error, DecodeError::truncated);  // 100 members claimed
  Bytes past{1, 2, 0xFF, 0xFF, 0xFF, 0xFF, 0x0F, 0};  // 2^32 - 1, then one more: past the id space
  EXPECT_EQ(decode_frame(frame_with(past)).error, DecodeError::bad_value);
}

TEST(Wire, BroadcastWithRangeIsSmall) {
  // The delegated range costs O(1) bytes whatever the cluster size.
  Bytes frame = encode_frame({sample_broadcast()});
  EXPECT_LT(frame.size(), 40u);
}

TEST(Wire, EveryTruncationIsAnErrorNotACrash) {
  // One message per frame: a cut at a message boundary of a longer frame is a valid shorter frame.
  Bytes frame = encode_frame({sample_broadcast()});
  for (std::size_t len = 0; len < frame.size(); ++len) {
    auto d = decode_frame(frame.data(), len);
    EXPECT_FALSE(d.ok()) << "prefix of " << len << " bytes decoded";
    EXPECT_TRUE(d.messages.empty());
  }
}

TEST(Wire, RejectsBadVersionTypeVarintAndTrailingBytes) {
  Bytes good = encode_frame({Hello{1, 2}});
  Bytes v = good;
  v[0] = kVersion + 1;
  EXPECT_EQ(decode_frame(v).error, DecodeError::bad_version);
  Bytes t = good;
  t[1] = 0x7F;
  EXPECT_EQ(decode_frame(t).error, DecodeError::unknown_type);
  Bytes overlong = {kVersion, 4, 3, 0x81, 0x00, 0x01};  // mcast_header with an overlong varint
  EXPECT_EQ(decode_frame(overlong).error, DecodeError::bad_varint);
  Bytes eleven = {kVersion, 4, 12, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0x01, 0x00};
  EXPECT_EQ(decode_frame(eleven).error, DecodeError::bad_varint);
  Bytes trailing = {kVersion, 4, 4, 1, 1, 1, 9};  // body length 4, message uses 3
  EXPECT_EQ(decode_frame(trailing).error, DecodeError::trailing_bytes);
  Bytes empty = {kVersion};
  EXPECT_EQ(decode_frame(empty).error, DecodeError::empty);
}

TEST(Wire, RejectsOversizedPayloadAndHugeCounts) {
  Bytes frame = {kVersion, 2};
  Bytes body;
  put_varint(body, 1);  // origin
  put_varint(body, 1);  // incarnation
  put_varint(body, 1);  // seq
  put_varint(body, 1);  // round
  body.push_back(0);  // flags
  body.push_back(0);  // no targets
  put_varint(body, kMaxPayloadBytes + 1);
  put_varint(frame, body.size());
  frame.insert(frame.end(), body.begin(), body.end());
  EXPECT_EQ(decode_frame(frame).error, DecodeError::oversized);

  Bytes list = {kVersion, 2};
  Bytes lb;
  put_varint(lb, 1);
  put_varint(lb, 1);
  put_varint(lb, 1);
  put_varint(lb, 1);
  lb.push_back(0);  // flags
  lb.push_back(2);
  put_varint(lb, 1ULL << 40);  // claims a trillion ids
  put_varint(list, lb.size());
  list.insert(list.end(), lb.begin(), lb.end());
  EXPECT_EQ(decode_frame(list).error, DecodeError::truncated);

  Bytes big(kMaxFrameBytes + 1, 0);
  big[0] = kVersion;
  EXPECT_EQ(decode_frame(big).error, DecodeError::oversized);
}

TEST(Wire, RejectsUnknownBroadcastFlags) {
  Broadcast b;
  b.origin = 1;
  Bytes frame = encode_frame({b});
  frame[7] = 0x40;  // version, type, len, origin, incarnation, seq, round, flags
  EXPECT_EQ(decode_frame(frame).error, DecodeError::bad_value);
}

TEST(Wire, HeardListOfAWholeSubnetIsAFewBytes) {
  HeardList l{{{10, 1000}, {1020, 1}, {5000, 3}}};  // ids 10..1009, 1020, 5000..5002
  std::optional<std::uint64_t> end;
  std::size_t runs = 0;
  for (const auto& r : l.runs) {
    runs += heard_run_size(r, end);
    end = std::uint64_t{r.first} + r.count;
  }
  EXPECT_EQ(runs, (1u + 2) + (1 + 1) + (2 + 1));  // gaps 10, 10, 3979; counts-1 999, 0, 2
  EXPECT_EQ(encode_frame({l}).size(), 1 + 1 + 1 + 1 + runs);  // version, type, len, run count
  EXPECT_TRUE(l.contains(10));
  EXPECT_TRUE(l.contains(1009));
  EXPECT_FALSE(l.contains(1010));
  EXPECT_TRUE(l.contains(1020));
  EXPECT_FALSE(l.contains(9));
  EXPECT_TRUE(l.contains(5002));
  EXPECT_FALSE(l.contains(5003));
}

TEST(Wire, RejectsMalformedHeardLists) {
  auto frame = [](Bytes body) {  // version, type, one-byte length, body
    body.insert(body.begin(), {kVersion, static_cast<std::uint8_t>(MsgType::heard_list),
                               static_cast<std::uint8_t>(body.size())});
    return body;
  };
  EXPECT_TRUE(decode_frame(frame({2, 4, 1, 1, 0})).ok());                       // 4..5, 7
  EXPECT_EQ(decode_frame(frame({0})).error, DecodeError::bad_value);            // no runs
  EXPECT_EQ(decode_frame(frame({2, 4, 1, 0, 0})).error, DecodeError::bad_value);  // 4..5 then 6: adjacent
  EXPECT_EQ(decode_frame(frame({100, 4, 1})).error, DecodeError::truncated);    // run count too big
  // Runs past the id space (first + count > 2^32), also by way of the gap.
  EXPECT_EQ(decode_frame(frame({1, 0xfe, 0xff, 0xff, 0xff, 0x0f, 2})).error, DecodeError::bad_value);
  EXPECT_TRUE(decode_frame(frame({1, 0xfe, 0xff, 0xff, 0xff, 0x0f, 1})).ok());  // the last two ids
  EXPECT_TRUE(decode_frame(frame({1, 0xfe, 0xff, 0xff, 0xff, 0x0f, 0})).ok());  // id 2^32-2 alone
  EXPECT_EQ(decode_frame(frame({2, 0xfe, 0xff, 0xff, 0xff, 0x0f, 0, 1, 0})).error, DecodeError::bad_value);
}

TEST(Wire, RejectsOutOfRangeValues) {
  Ack a{1, 2, AckStatus::accepted, 3};
  Bytes frame = encode_frame({a});
  frame[frame.size() - 10] = 7;  // status byte (then the view hash, 8 bytes, and the token)
  EXPECT_EQ(decode_frame(frame).error, DecodeError::bad_value);
  Bytes rr = encode_frame({RepairRequest{1, 5, 4}});  // from > to
  EXPECT_EQ(decode_frame(rr).error, DecodeError::bad_value);
  Bytes node = {kVersion, 1, 13, 0x80, 0x80, 0x80, 0x80, 0x10, 0, 0, 0, 0, 0, 0, 0, 0};  // id >= 2^32
  EXPECT_EQ(decode_frame(node).error, DecodeError::bad_value);
}

TEST(StreamReader, ReassemblesArbitrarySplits) {
  std::vector<Bytes> bodies;
  Bytes stream;
  for (int i = 0; i < 50; ++i) {
    Broadcast b = sample_broadcast();
    b.seq = static_cast<std::uint64_t>(i);
    b.payload.assign(static_cast<std::size_t>(i * 7), static_cast<std::uint8_t>(i));
    bodies.push_back(encode_frame({b}));
    append_stream_frame(stream, bodies.back());
  }
  for (std::size_t chunk : {1u, 2u, 3u, 7u, 64u, 100000u}) {
    StreamReader r;
    std::vector<Bytes> got;
    for (std::size_t off = 0; off < stream.size(); off += chunk) {
      r.feed(stream.data() + off, std::min(chunk, stream.size() - off));
      while (auto body = r.next()) got.push_back(std::move(*body));
    }
    EXPECT_EQ(got, bodies) << "chunk " << chunk;
    EXPECT_EQ(r.error(), DecodeError::none);
    EXPECT_EQ(r.buffered(), 0u);
  }
}

TEST(StreamReader, OversizedLengthPoisonsTheStream) {
  StreamReader r(1024);
  Bytes len;
  put_varint(len, 4096);
  r.feed(len.data(), len.size());
  EXPECT_FALSE(r.next());
  EXPECT_EQ(r.error(), DecodeError::oversized);
  Bytes bad(11, 0xFF);
  StreamReader r2;
  r2.feed(bad.data(), bad.size());
  EXPECT_FALSE(r2.next());
  EXPECT_EQ(r2.error(), DecodeError::bad_varint);
}
