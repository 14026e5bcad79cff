// Key encoding and hashing (see key.h for the stable format).
#include "engine/key.h"

#include <xxhash.h>

#include <bit>
#include <cmath>
#include <cstring>

namespace streamrun {
namespace {

uint64_t GetU64(const char* p) {
  uint64_t x = 0;
  for (int i = 0; i < 8; ++i) x = (x << 8) | static_cast<unsigned char>(p[i]);
  return x;
}
uint32_t GetU32(const char* p) {
  uint32_t x = 0;
  for (int i = 0; i < 4; ++i) x = (x << 8) | static_cast<unsigned char>(p[i]);
  return x;
}

// The bytes AppendKeyValue writes for one value: a tag byte, 0, 1, 4 or 8 payload bytes (already
// big-endian, from registers: bswap), then the string bytes.
struct KeyPart {
  char tag;
  uint8_t bytes;
  uint64_t big_endian;
  std::string_view tail;
  size_t size() const { return 1 + bytes + tail.size(); }
};

inline KeyPart PartOf(const Value& v) {
  static_assert(std::endian::native == std::endian::little, "big-endian bytes come from bswap");
  Value::Kind kind = v.kind();
  switch (kind) {
    case Value::Kind::kString:
    case Value::Kind::kJson: {
      const std::string_view str = v.as_string();
      return {static_cast<char>(kind), 4, __builtin_bswap32(static_cast<uint32_t>(str.size())),
              str};
    }
    case Value::Kind::kInt:
      return {static_cast<char>(kind), 8, __builtin_bswap64(static_cast<uint64_t>(v.as_int())), {}};
    case Value::Kind::kDouble: {
      const double d = v.as_double();
      if (std::trunc(d) == d && std::fabs(d) < 9.2e18) {  // 1.0 is the key 1
        const auto i = static_cast<uint64_t>(static_cast<int64_t>(d));
        return {static_cast<char>(Value::Kind::kInt), 8, __builtin_bswap64(i), {}};
      }
      uint64_t bits;
      std::memcpy(&bits, &d, sizeof bits);
      return {static_cast<char>(kind), 8, __builtin_bswap64(bits), {}};
    }
    case Value::Kind::kBool:
      return {static_cast<char>(kind), 1, v.as_bool() ? 1u : 0u, {}};
    case Value::Kind::kMissing:
      return {static_cast<char>(Value::Kind::kNull), 0, 0, {}};
    default:
      return {static_cast<char>(kind), 0, 0, {}};
  }
}

// Writes `k` at `p` (room for k.size() bytes); returns the end.
inline char* Write(char* p, const KeyPart& k) {
  p[0] = k.tag;
  if (k.bytes == 8) {
    std::memcpy(p + 1, &k.big_endian, 8);
  } else if (k.bytes == 4) {
    const uint32_t be32 = static_cast<uint32_t>(k.big_endian);
    std::memcpy(p + 1, &be32, 4);
  } else if (k.bytes == 1) {
    p[1] = static_cast<char>(k.big_endian);
  }
  p += 1 + k.bytes;
  const size_t n = k.tail.size();
  CopyShort(p, k.tail.data(), n);
  return p + n;
}

}  // namespace

void AppendKeyValue(std::string& out, const Value& v) {
  const KeyPart k = PartOf(v);
  const size_t at = out.size();
  out.resize(at + k.size());
  Write(out.data() + at, k);
}

bool DecodeKeyValue(std::string_view key, size_t* pos, Value* v) {
  if (*pos >= key.size()) return false;
  auto kind = static_cast<Value::Kind>(key[*pos]);
  ++*pos;
  auto need = [&](size_t n) { return *pos + n <= key.size(); };
  switch (kind) {
    case Value::Kind::kNull:
      *v = Value::Null();
      return true;
    case Value::Kind::kBool:
      if (!need(1)) return false;
      *v = Value::Bool(key[*pos] != 0);
      *pos += 1;
      return true;
    case Value::Kind::kInt:
      if (!need(8)) return false;
      *v = Value::Int(static_cast<int64_t>(GetU64(key.data() + *pos)));
      *pos += 8;
      return true;
    case Value::Kind::kDouble: {
      if (!need(8)) return false;
      uint64_t bits = GetU64(key.data() + *pos);
      double d;
      std::memcpy(&d, &bits, sizeof d);
      *v = Value::Double(d);
      *pos += 8;
      return true;
    }
    case Value::Kind::kString:
    case Value::Kind::kJson: {
      if (!need(4)) return false;
      uint32_t len = GetU32(key.data() + *pos);
      *pos += 4;
      if (!need(len)) return false;
      std::string_view s = key.substr(*pos, len);
      *v = kind == Value::Kind::kString ? Value::String(s) : Value::Json(s);
      *pos += len;
      return true;
    }
    default:
      return false;
  }
}

void EncodeKey(const Value* slots, const std::vector<int>& key_slots, std::string* out) {
  // The size first, then the bytes written in place: resizing per value (and std::string zeroing
  // what it grows by) was most of this function's ~135 instructions for a one-string key, and
  // the exchange and the window each encode every row's key. Keys of a stream mostly keep one
  // size, so `out` rarely changes size at all.
  static const Value kMissing = Value::Missing();
  auto value = [slots](int s) -> const Value& { return s >= 0 ? slots[s] : kMissing; };
  if (key_slots.size() == 1) {
    const KeyPart k = PartOf(value(key_slots[0]));
    if (out->size() != k.size()) out->resize(k.size());
    Write(out->data(), k);
    return;
  }
  size_t size = 0;
  for (int s : key_slots) size += PartOf(value(s)).size();
  if (out->size() != size) out->resize(size);
  char* p = out->data();
  for (int s : key_slots) p = Write(p, PartOf(value(s)));
}

uint64_t HashKey(std::string_view encoded_key) {
  return XXH3_64bits(encoded_key.data(), encoded_key.size());
}

}  // namespace streamrun
