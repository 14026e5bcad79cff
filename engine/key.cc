// Key encoding and hashing (see key.h for the stable format).
#include "engine/key.h"

#include <bit>
#include <cmath>
#include <cstring>

#include <xxhash.h>

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

}  // namespace

void AppendKeyValue(std::string& out, const Value& v) {
  // Written straight into `out`, the big-endian numbers from registers (bswap): a header built
  // byte by byte in a buffer and then copied was read back by wider loads than its stores, a
  // store-forwarding stall per key (most of this function's time).
  static_assert(std::endian::native == std::endian::little, "big-endian bytes come from bswap");
  auto append = [&out](char kind, uint64_t big_endian, size_t bytes, std::string_view tail) {
    const size_t at = out.size();
    out.resize(at + 1 + bytes + tail.size());
    char* p = out.data() + at;
    p[0] = kind;
    if (bytes == 8) {
      std::memcpy(p + 1, &big_endian, 8);
    } else if (bytes == 4) {
      const uint32_t be32 = static_cast<uint32_t>(big_endian);
      std::memcpy(p + 1, &be32, 4);
    } else if (bytes == 1) {
      p[1] = static_cast<char>(big_endian);
    }
    if (!tail.empty()) std::memcpy(p + 1 + bytes, tail.data(), tail.size());
  };
  Value::Kind kind = v.kind();
  if (kind == Value::Kind::kMissing) kind = Value::Kind::kNull;
  if (kind == Value::Kind::kDouble) {
    double d = v.as_double();
    if (std::trunc(d) == d && std::fabs(d) < 9.2e18) {
      const auto i = static_cast<uint64_t>(static_cast<int64_t>(d));
      append(static_cast<char>(Value::Kind::kInt), __builtin_bswap64(i), 8, {});
      return;
    }
  }
  switch (kind) {
    case Value::Kind::kBool:
      append(static_cast<char>(kind), v.as_bool() ? 1 : 0, 1, {});
      break;
    case Value::Kind::kInt:
      append(static_cast<char>(kind), __builtin_bswap64(static_cast<uint64_t>(v.as_int())), 8, {});
      break;
    case Value::Kind::kDouble: {
      uint64_t bits;
      double d = v.as_double();
      std::memcpy(&bits, &d, sizeof bits);
      append(static_cast<char>(kind), __builtin_bswap64(bits), 8, {});
      break;
    }
    case Value::Kind::kString:
    case Value::Kind::kJson: {
      std::string_view str = v.as_string();
      append(static_cast<char>(kind), __builtin_bswap32(static_cast<uint32_t>(str.size())), 4, str);
      break;
    }
    default:
      append(static_cast<char>(kind), 0, 0, {});
      break;
  }
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
  out->clear();
  for (int s : key_slots) AppendKeyValue(*out, s >= 0 ? slots[s] : Value::Missing());
}

uint64_t HashKey(std::string_view encoded_key) {
  return XXH3_64bits(encoded_key.data(), encoded_key.size());
}

}  // namespace streamrun
