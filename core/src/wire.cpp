#include "mixcast/core/wire.hpp"

#include <algorithm>
#include <iterator>
#include <limits>

namespace mixcast::wire {

std::string_view to_string(DecodeError e) {
  switch (e) {
    case DecodeError::none: return "ok";
    case DecodeError::truncated: return "truncated";
    case DecodeError::bad_varint: return "bad varint";
    case DecodeError::bad_version: return "unknown wire version";
    case DecodeError::unknown_type: return "unknown message type";
    case DecodeError::oversized: return "oversized";
    case DecodeError::bad_value: return "value out of range";
    case DecodeError::trailing_bytes: return "trailing bytes in message";
    case DecodeError::empty: return "frame without messages";
  }
  return "?";
}

void put_varint(Bytes& out, std::uint64_t v) {
  while (v >= 0x80) {
    out.push_back(static_cast<std::uint8_t>(v | 0x80));
    v >>= 7;
  }
  out.push_back(static_cast<std::uint8_t>(v));
}

std::size_t varint_size(std::uint64_t v) {
  std::size_t n = 1;
  while (v >= 0x80) { v >>= 7; ++n; }
  return n;
}

void put_u64(Bytes& out, std::uint64_t v) {
  for (int i = 0; i < 8; ++i) out.push_back(static_cast<std::uint8_t>(v >> (8 * i)));
}

namespace {

// Bounds-checked reader over one buffer. Every getter fails (sets err) instead of reading past the end.
struct Reader {
  const std::uint8_t* p;
  const std::uint8_t* end;
  const std::uint8_t* begin;
  DecodeError err = DecodeError::none;

  std::size_t left() const { return static_cast<std::size_t>(end - p); }
  bool fail(DecodeError e) {
    if (err == DecodeError::none) err = e;
    return false;
  }
  bool u8(std::uint8_t& v) {
    if (p == end) return fail(DecodeError::truncated);
    v = *p++;
    return true;
  }
  bool varint(std::uint64_t& v) {
    v = 0;
    for (std::size_t i = 0; i < kMaxVarintBytes; ++i) {
      if (p == end) return fail(DecodeError::truncated);
      const std::uint8_t b = *p++;
      if (i == kMaxVarintBytes - 1 && b > 1) return fail(DecodeError::bad_varint);  // > 64 bits
      v |= std::uint64_t{b & 0x7Fu} << (7 * i);
      if (!(b & 0x80)) {
        if (i > 0 && b == 0) return fail(DecodeError::bad_varint);  // overlong encoding
        return true;
      }
    }
    return fail(DecodeError::bad_varint);
  }
  template <class T>
  bool varint_as(T& out) {
    std::uint64_t v;
    if (!varint(v)) return false;
    if (v > std::numeric_limits<T>::max()) return fail(DecodeError::bad_value);
    out = static_cast<T>(v);
    return true;
  }
  bool u64(std::uint64_t& v) {
    if (left() < 8) return fail(DecodeError::truncated);
    v = 0;
    for (int i = 0; i < 8; ++i) v |= std::uint64_t{p[i]} << (8 * i);
    p += 8;
    return true;
  }
  bool bytes(Bytes& out, std::size_t max) {
    std::uint64_t n;
    if (!varint(n)) return false;
    if (n > max) return fail(DecodeError::oversized);
    if (n > left()) return fail(DecodeError::truncated);
    out.assign(p, p + n);
    p += n;
    return true;
  }
  bool ids(std::vector<NodeId>& out) {
    std::uint64_t n;
    if (!varint(n)) return false;
    if (n > left()) return fail(DecodeError::truncated);  // every id takes at least one byte
    out.clear();
    out.reserve(static_cast<std::size_t>(n));
    for (std::uint64_t i = 0; i < n; ++i) {
      NodeId id;
      if (!varint_as(id)) return false;
      out.push_back(id);
    }
    return true;
  }
};

}  // namespace

std::size_t heard_run_size(const HeardList::Run& run, std::optional<std::uint64_t> previous_end) {
  return varint_size(run.first - previous_end.value_or(0)) + varint_size(run.count - 1);
}

bool HeardList::contains(NodeId id) const {
  auto it = std::upper_bound(runs.begin(), runs.end(), id, [](NodeId v, const Run& r) { return v < r.first; });
  return it != runs.begin() && id - std::prev(it)->first < std::prev(it)->count;
}

namespace {

void put_ids(Bytes& out, const std::vector<NodeId>& ids) {
  put_varint(out, ids.size());
  for (NodeId id : ids) put_varint(out, id);
}

void put_targets(Bytes& out, const Targets& t) {
  out.push_back(static_cast<std::uint8_t>(t.kind));
  switch (t.kind) {
    case Targets::Kind::none: break;
    case Targets::Kind::view_range:
      put_u64(out, t.view_hash);
      put_varint(out, t.lo);
      put_varint(out, t.count);
      break;
    case Targets::Kind::id_list: put_ids(out, t.ids); break;
    case Targets::Kind::island_list: {
      put_varint(out, t.island_sizes.size());
      std::size_t at = 0;
      for (std::uint32_t size : t.island_sizes) {
        put_varint(out, size);
        for (std::uint32_t i = 0; i < size; ++i, ++at)  // ascending: the first id, then gaps minus one
          put_varint(out, i == 0 ? t.ids[at] : std::uint64_t{t.ids[at]} - t.ids[at - 1] - 1);
      }
      break;
    }
  }
}

bool get_targets(Reader& r, Targets& t) {
  std::uint8_t kind;
  if (!r.u8(kind)) return false;
  switch (kind) {
    case 0: t.kind = Targets::Kind::none; return true;
    case 1:
      t.kind = Targets::Kind::view_range;
      if (!r.u64(t.view_hash) || !r.varint_as(t.lo) || !r.varint_as(t.count)) return false;
      if (t.count == 0) return r.fail(DecodeError::bad_value);
      return true;
    case 2:
      t.kind = Targets::Kind::id_list;
      if (!r.ids(t.ids)) return false;
      if (t.ids.empty()) return r.fail(DecodeError::bad_value);
      return true;
    case 3: {
      t.kind = Targets::Kind::island_list;
      std::uint64_t islands;
      if (!r.varint(islands)) return false;
      if (islands == 0) return r.fail(DecodeError::bad_value);
      if (islands > r.left() / 2) return r.fail(DecodeError::truncated);  // a size and an id each
      t.island_sizes.assign(static_cast<std::size_t>(islands), 0);
      t.ids.clear();
      for (auto& size : t.island_sizes) {
        std::uint64_t n;
        if (!r.varint(n)) return false;
        if (n == 0) return r.fail(DecodeError::bad_value);
        if (n > r.left()) return r.fail(DecodeError::truncated);  // every id takes a byte or more
        size = static_cast<std::uint32_t>(n);
        std::uint64_t id = 0;
        for (std::uint64_t i = 0; i < n; ++i) {
          std::uint64_t delta;
          if (!r.varint(delta)) return false;
          id = i == 0 ? delta : id + 1 + delta;
          if (delta > UINT32_MAX || id > UINT32_MAX) return r.fail(DecodeError::bad_value);
          t.ids.push_back(static_cast<NodeId>(id));
        }
      }
      return true;
    }
    default: return r.fail(DecodeError::bad_value);
  }
}

struct Encoder {
  Bytes& out;
  void operator()(const Hello& m) {
    put_varint(out, m.node);
    put_u64(out, m.view_hash);
    put_varint(out, m.incarnation);
  }
  void operator()(const Broadcast& m) {
    put_varint(out, m.origin);
    put_varint(out, m.incarnation);
    put_varint(out, m.seq);
    put_varint(out, m.round);
    out.push_back(m.flags);
    if (m.flags & Broadcast::kRelay) put_varint(out, m.relay_to);
    put_targets(out, m.targets);
    if (m.targets.kind != Targets::Kind::none) put_varint(out, m.token);
    put_varint(out, m.payload.size());
    out.insert(out.end(), m.payload.begin(), m.payload.end());
  }
  void operator()(const Ack& m) {
    put_varint(out, m.origin);
    put_varint(out, m.incarnation);
    put_varint(out, m.seq);
    out.push_back(static_cast<std::uint8_t>(m.status));
    put_u64(out, m.view_hash);
    put_varint(out, m.token);
  }
  void operator()(const McastHeader& m) {
    put_varint(out, m.sender);
    put_varint(out, m.incarnation);
    put_varint(out, m.mseq);
  }
  void operator()(const Confirm& m) {
    put_varint(out, m.sender);
    put_varint(out, m.incarnation);
    put_varint(out, m.highest_mseq);
    put_varint(out, m.received);
  }
  void operator()(const RepairRequest& m) {
    put_varint(out, m.sender);
    put_varint(out, m.incarnation);
    put_varint(out, m.from_mseq);
    put_varint(out, m.to_mseq);
  }
  void operator()(const IslandDigest& m) {
    put_varint(out, m.epoch);
    put_varint(out, m.islands.size());
    for (const auto& island : m.islands) put_ids(out, island);
  }
  void operator()(const HeardList& m) {
    put_varint(out, m.runs.size());
    std::uint64_t previous_end = 0;
    for (const auto& run : m.runs) {
      put_varint(out, run.first - previous_end);
      put_varint(out, run.count - 1);
      previous_end = std::uint64_t{run.first} + run.count;
    }
  }
};

MsgType type_of(const Message& m) {
  return static_cast<MsgType>(m.index() + 1);  // variant order mirrors MsgType numbering
}

bool decode_body(Reader& r, MsgType type, Message& out) {
  switch (type) {
    case MsgType::hello: {
      Hello m;
      if (!r.varint_as(m.node) || !r.u64(m.view_hash) || !r.varint(m.incarnation)) return false;
      out = m;
      return true;
    }
    case MsgType::broadcast: {
      Broadcast m;
      if (!r.varint_as(m.origin) || !r.varint(m.incarnation) || !r.varint(m.seq) || !r.varint_as(m.round) ||
          !r.u8(m.flags))
        return false;
      if (m.flags & ~Broadcast::kKnownFlags) return r.fail(DecodeError::bad_value);
      if ((m.flags & Broadcast::kRelay) && !r.varint_as(m.relay_to)) return false;
      if (!get_targets(r, m.targets)) return false;
      if (m.targets.kind != Targets::Kind::none && !r.varint(m.token)) return false;
      if (!r.bytes(m.payload, kMaxPayloadBytes)) return false;
      out = std::move(m);
      return true;
    }
    case MsgType::ack: {
      Ack m;
      std::uint8_t status;
      if (!r.varint_as(m.origin) || !r.varint(m.incarnation) || !r.varint(m.seq) || !r.u8(status) ||
          !r.u64(m.view_hash) || !r.varint(m.token))
        return false;
      if (status > 3) return r.fail(DecodeError::bad_value);
      m.status = static_cast<AckStatus>(status);
      out = m;
      return true;
    }
    case MsgType::mcast_header: {
      McastHeader m;
      if (!r.varint_as(m.sender) || !r.varint(m.incarnation) || !r.varint(m.mseq)) return false;
      out = m;
      return true;
    }
    case MsgType::confirm: {
      Confirm m;
      if (!r.varint_as(m.sender) || !r.varint(m.incarnation) || !r.varint(m.highest_mseq) ||
          !r.varint_as(m.received))
        return false;
      out = m;
      return true;
    }
    case MsgType::repair_request: {
      RepairRequest m;
      if (!r.varint_as(m.sender) || !r.varint(m.incarnation) || !r.varint(m.from_mseq) || !r.varint(m.to_mseq))
        return false;
      if (m.from_mseq > m.to_mseq) return r.fail(DecodeError::bad_value);
      out = m;
      return true;
    }
    case MsgType::island_digest: {
      IslandDigest m;
      std::uint64_t n;
      if (!r.varint(m.epoch) || !r.varint(n)) return false;
      if (n > r.left()) return r.fail(DecodeError::truncated);
      m.islands.resize(static_cast<std::size_t>(n));
      for (auto& island : m.islands)
        if (!r.ids(island)) return false;
      out = std::move(m);
      return true;
    }
    case MsgType::heard_list: {
      HeardList m;
      std::uint64_t n;
      if (!r.varint(n)) return false;
      if (n == 0) return r.fail(DecodeError::bad_value);
      if (n > r.left() / 2) return r.fail(DecodeError::truncated);  // every run takes two bytes or more
      m.runs.resize(static_cast<std::size_t>(n));
      std::uint64_t end = 0;  // of the previous run
      for (std::size_t i = 0; i < m.runs.size(); ++i) {
        std::uint64_t gap, extra;
        if (!r.varint(gap) || !r.varint(extra)) return false;
        // Disjoint, non-adjacent runs inside the id space: anything else is malformed.
        if ((i > 0 && gap == 0) || gap > (1ULL << 32) - end || extra >= (1ULL << 32) - end - gap)
          return r.fail(DecodeError::bad_value);
        m.runs[i].first = static_cast<NodeId>(end + gap);
        m.runs[i].count = static_cast<std::uint32_t>(extra + 1);
        end += gap + extra + 1;
      }
      out = std::move(m);
      return true;
    }
  }
  return r.fail(DecodeError::unknown_type);
}

}  // namespace

FrameBuilder::FrameBuilder() { bytes_.push_back(kVersion); }

void FrameBuilder::add(const Message& m) {
  Bytes body;
  std::visit(Encoder{body}, m);
  bytes_.push_back(static_cast<std::uint8_t>(type_of(m)));
  put_varint(bytes_, body.size());
  bytes_.insert(bytes_.end(), body.begin(), body.end());
  ++count_;
}

Bytes FrameBuilder::take() {
  Bytes out = std::move(bytes_);
  bytes_.clear();
  bytes_.push_back(kVersion);
  count_ = 0;
  return out;
}

Bytes encode_frame(const std::vector<Message>& messages) {
  FrameBuilder b;
  for (const auto& m : messages) b.add(m);
  return b.take();
}

Decoded decode_frame(const std::uint8_t* data, std::size_t len) {
  Decoded d;
  auto fail = [&](DecodeError e, const std::uint8_t* at) {
    d.error = e;
    d.error_offset = static_cast<std::size_t>(at - data);
    d.messages.clear();
    return d;
  };
  if (len == 0 || data == nullptr) return fail(DecodeError::truncated, data);
  if (len > kMaxFrameBytes) return fail(DecodeError::oversized, data);
  Reader r{data, data + len, data};
  std::uint8_t version = 0;
  r.u8(version);
  if (version != kVersion) return fail(DecodeError::bad_version, data);
  while (r.left() > 0) {
    std::uint8_t type = 0;
    std::uint64_t body_len = 0;
    const std::uint8_t* at = r.p;
    if (!r.u8(type) || !r.varint(body_len)) return fail(r.err, at);
    if (type == 0 || type > static_cast<std::uint8_t>(MsgType::heard_list))
      return fail(DecodeError::unknown_type, at);
    if (body_len > r.left()) return fail(DecodeError::truncated, at);
    Reader body{r.p, r.p + body_len, data};
    Message m;
    if (!decode_body(body, static_cast<MsgType>(type), m)) return fail(body.err, body.p);
    if (body.left() != 0) return fail(DecodeError::trailing_bytes, body.p);
    r.p += body_len;
    d.messages.push_back(std::move(m));
  }
  if (d.messages.empty()) return fail(DecodeError::empty, r.p);
  return d;
}

namespace {
std::string describe_targets(const Targets& t) {
  switch (t.kind) {
    case Targets::Kind::none: return "leaf";
    case Targets::Kind::view_range:
      return "range[" + std::to_string(t.lo) + "+" + std::to_string(t.count) + "]";
    case Targets::Kind::id_list:
    case Targets::Kind::island_list: {
      std::string s = t.kind == Targets::Kind::id_list ? "ids[" : "islands" + std::to_string(t.island_sizes.size()) + "[";
      for (std::size_t i = 0; i < t.ids.size(); ++i) s += (i ? "," : "") + std::to_string(t.ids[i]);
      return s + "]";
    }
  }
  return "?";
}
std::string id_text(NodeId origin, std::uint64_t seq, std::uint64_t incarnation) {
  return std::to_string(origin) + ":" + std::to_string(seq) + "@" + std::to_string(incarnation);
}
}  // namespace

std::string describe(const Message& m) {
  struct Visitor {
    std::string operator()(const Hello& h) const {
      return "hello node=" + std::to_string(h.node) + " inc=" + std::to_string(h.incarnation);
    }
    std::string operator()(const Broadcast& b) const {
      std::string s = "bcast " + id_text(b.origin, b.seq, b.incarnation) + " r=" + std::to_string(b.round) + " " +
                      describe_targets(b.targets) + " " + std::to_string(b.payload.size()) + "B";
      if (b.targets.kind != Targets::Kind::none) s += " token=" + std::to_string(b.token);
      if (b.flags & Broadcast::kControl) s += " control";
      if (b.flags & Broadcast::kForced) s += " forced";
      if (b.flags & Broadcast::kRepair) s += " repair";
      if (b.flags & Broadcast::kRescue) s += " rescue";
      if (b.flags & Broadcast::kRelay) s += " relay_to=" + std::to_string(b.relay_to);
      return s;
    }
    std::string operator()(const Ack& a) const {
      return "ack " + id_text(a.origin, a.seq, a.incarnation) + " token=" + std::to_string(a.token) +
             (a.status == AckStatus::view_mismatch ? " view_mismatch" : a.status == AckStatus::covered ? " covered" : a.status == AckStatus::done ? " done" : "");
    }
    std::string operator()(const McastHeader& h) const {
      return "mcast sender=" + std::to_string(h.sender) + " mseq=" + std::to_string(h.mseq) +
             " inc=" + std::to_string(h.incarnation);
    }
    std::string operator()(const Confirm& c) const {
      return "confirm sender=" + std::to_string(c.sender) + " highest=" + std::to_string(c.highest_mseq) +
             " received=" + std::to_string(c.received) + " inc=" + std::to_string(c.incarnation);
    }
    std::string operator()(const RepairRequest& r) const {
      return "repair_request sender=" + std::to_string(r.sender) + " mseq=" + std::to_string(r.from_mseq) + ".." +
             std::to_string(r.to_mseq) + " inc=" + std::to_string(r.incarnation);
    }
    std::string operator()(const IslandDigest& d) const {
      return "islands epoch=" + std::to_string(d.epoch) + " count=" + std::to_string(d.islands.size());
    }
    std::string operator()(const HeardList& h) const {
      std::string s = "heard";
      for (const auto& run : h.runs)
        s += " " + std::to_string(run.first) + (run.count > 1 ? "-" + std::to_string(run.first + run.count - 1) : "");
      return s;
    }
  };
  return std::visit(Visitor{}, m);
}

std::string describe_frame(const std::uint8_t* data, std::size_t len) {
  const Decoded d = decode_frame(data, len);
  if (!d.ok()) return "undecodable (" + std::string(to_string(d.error)) + ")";
  std::string s;
  for (const auto& m : d.messages) s += (s.empty() ? "" : "; ") + describe(m);
  return s;
}

void append_stream_frame(Bytes& out, const Bytes& body) {
  put_varint(out, body.size());
  out.insert(out.end(), body.begin(), body.end());
}

void StreamReader::feed(const std::uint8_t* data, std::size_t len) {
  if (error_ != DecodeError::none) return;
  if (pos_ > 0 && pos_ == buf_.size()) {
    buf_.clear();
    pos_ = 0;
  }
  buf_.insert(buf_.end(), data, data + len);
}

std::optional<Bytes> StreamReader::next() {
  if (error_ != DecodeError::none) return std::nullopt;
  Reader r{buf_.data() + pos_, buf_.data() + buf_.size(), buf_.data()};
  std::uint64_t n;
  if (!r.varint(n)) {
    if (r.err == DecodeError::bad_varint) error_ = r.err;  // truncated just means: wait for more
    return std::nullopt;
  }
  if (n == 0 || n > max_frame_) {
    error_ = n == 0 ? DecodeError::empty : DecodeError::oversized;
    return std::nullopt;
  }
  if (r.left() < n) return std::nullopt;
  Bytes body(r.p, r.p + n);
  pos_ = static_cast<std::size_t>(r.p - buf_.data()) + static_cast<std::size_t>(n);
  if (pos_ > (1u << 16) && pos_ * 2 > buf_.size()) {  // compact so the buffer does not grow without bound
    buf_.erase(buf_.begin(), buf_.begin() + static_cast<std::ptrdiff_t>(pos_));
    pos_ = 0;
  }
  return body;
}

}  // namespace mixcast::wire
