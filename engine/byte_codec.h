// Fixed-width big-endian encoding helpers for state values and snapshots.
//
// ByteReader never reads past its input: every Get returns false once the input is exhausted or
// malformed, so a damaged or truncated state value is detected instead of read as garbage.
#pragma once

#include <cstdint>
#include <cstring>
#include <string>
#include <string_view>

namespace streamrun {

inline void PutU8(std::string& out, uint8_t x) { out.push_back(static_cast<char>(x)); }
inline void PutU64(std::string& out, uint64_t x) {
  for (int i = 7; i >= 0; --i) out.push_back(static_cast<char>((x >> (8 * i)) & 0xFF));
}
inline void PutI64(std::string& out, int64_t x) { PutU64(out, static_cast<uint64_t>(x)); }
inline void PutDouble(std::string& out, double d) {
  uint64_t bits;
  std::memcpy(&bits, &d, sizeof bits);
  PutU64(out, bits);
}
// A 4-byte big-endian length, then the bytes.
inline void PutBytes(std::string& out, std::string_view s) {
  auto n = static_cast<uint32_t>(s.size());
  for (int i = 3; i >= 0; --i) out.push_back(static_cast<char>((n >> (8 * i)) & 0xFF));
  out.append(s);
}

class ByteReader {
 public:
  explicit ByteReader(std::string_view in) : in_(in) {}

  bool GetU8(uint8_t* x) {
    if (pos_ + 1 > in_.size()) return false;
    *x = static_cast<uint8_t>(in_[pos_++]);
    return true;
  }
  bool GetU64(uint64_t* x) {
    if (pos_ + 8 > in_.size()) return false;
    uint64_t v = 0;
    for (int i = 0; i < 8; ++i) v = (v << 8) | static_cast<unsigned char>(in_[pos_ + i]);
    pos_ += 8;
    *x = v;
    return true;
  }
  bool GetI64(int64_t* x) {
    uint64_t u;
    if (!GetU64(&u)) return false;
    *x = static_cast<int64_t>(u);
    return true;
  }
  bool GetDouble(double* d) {
    uint64_t u;
    if (!GetU64(&u)) return false;
    std::memcpy(d, &u, sizeof *d);
    return true;
  }
  bool GetBytes(std::string_view* s) {
    if (pos_ + 4 > in_.size()) return false;
    uint32_t n = 0;
    for (int i = 0; i < 4; ++i) n = (n << 8) | static_cast<unsigned char>(in_[pos_ + i]);
    pos_ += 4;
    if (pos_ + n > in_.size()) return false;
    *s = in_.substr(pos_, n);
    pos_ += n;
    return true;
  }
  bool done() const { return pos_ == in_.size(); }

 private:
  std::string_view in_;
  size_t pos_ = 0;
};

}  // namespace streamrun
