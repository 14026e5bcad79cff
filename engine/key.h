// Keys and key groups.
//
// A keyed step (window) partitions its input by the values of its `key_by` fields. The key's
// values are encoded into bytes (EncodeKey), hashed with XXH3-64 (seed 0), and the hash picks
// one of `max_parallelism` key groups: key_group = hash % max_parallelism. A subtask owns a
// contiguous range of key groups: subtask = key_group * parallelism / max_parallelism (as in
// Flink), so state can be redistributed by key group at another parallelism.
//
// Do not change the encoding or the hash: key groups are stored in checkpoints and savepoints.
#pragma once

#include <cstdint>
#include <cstring>
#include <string>
#include <string_view>
#include <vector>

#include "engine/value.h"

namespace streamrun {

// Appends the canonical bytes of `v` to `out`: one tag byte (the Kind; integral doubles are
// encoded as integers, so 1 and 1.0 are the same key), then the payload (8 bytes big-endian for
// numbers, a 4-byte big-endian length and the bytes for strings and JSON). Missing is null.
void AppendKeyValue(std::string& out, const Value& v);

// Decodes one value written by AppendKeyValue at `*pos`, advancing it. Strings point into `key`.
bool DecodeKeyValue(std::string_view key, size_t* pos, Value* v);

uint64_t HashKey(std::string_view encoded_key);

// The key of a record: its values at `key_slots` (slot indexes of the key fields, in key_by
// order; -1: a field the stream does not carry, which counts as missing), encoded one after the
// other. Clears `out` first. The keyed exchange and the keyed
// operator call this same function, so they agree on every key.
void EncodeKey(const Value* slots, const std::vector<int>& key_slots, std::string* out);

// A key as a keyed exchange hands it to its consumer (Row::keyed, flag kRowKeyed): the key's
// HashKey (8 bytes), its encoded size (4 bytes), then the encoded key, in memory the row's batch
// keeps alive. The keyed operator then neither encodes nor hashes the key again.
inline constexpr size_t kKeyRecordHeader = 12;

// Copies n bytes; up to 16 (user ids, device names, most keys) with two overlapping loads and
// stores instead of a memcpy call.
inline void CopyShort(char* dst, const char* src, size_t n) {
  if (n >= 8 && n <= 16) {
    uint64_t head, last;
    std::memcpy(&head, src, 8);
    std::memcpy(&last, src + n - 8, 8);
    std::memcpy(dst, &head, 8);
    std::memcpy(dst + n - 8, &last, 8);
  } else if (n >= 4 && n < 8) {
    uint32_t head, last;
    std::memcpy(&head, src, 4);
    std::memcpy(&last, src + n - 4, 4);
    std::memcpy(dst, &head, 4);
    std::memcpy(dst + n - 4, &last, 4);
  } else if (n < 4) {
    for (size_t i = 0; i < n; ++i) dst[i] = src[i];
  } else {
    std::memcpy(dst, src, n);
  }
}

// Whether the first and the last sizeof(Word) bytes of a and b are equal (n >= sizeof(Word)).
template <typename Word>
inline bool EqualEnds(const char* a, const char* b, size_t n) {
  Word a0, a1, b0, b1;
  std::memcpy(&a0, a, sizeof(Word));
  std::memcpy(&b0, b, sizeof(Word));
  std::memcpy(&a1, a + n - sizeof(Word), sizeof(Word));
  std::memcpy(&b1, b + n - sizeof(Word), sizeof(Word));
  return ((a0 ^ b0) | (a1 ^ b1)) == 0;
}

// Whether n bytes at a and b are equal; up to 16 bytes with two overlapping loads per side
// instead of a memcmp call.
inline bool EqualShort(const char* a, const char* b, size_t n) {
  if (n >= 8 && n <= 16) return EqualEnds<uint64_t>(a, b, n);
  if (n >= 4 && n < 8) return EqualEnds<uint32_t>(a, b, n);
  if (n < 4) {
    for (size_t i = 0; i < n; ++i) {
      if (a[i] != b[i]) return false;
    }
    return true;
  }
  return std::memcmp(a, b, n) == 0;
}

inline void WriteKeyRecord(char* p, uint64_t hash, std::string_view key) {
  const auto size = static_cast<uint32_t>(key.size());
  std::memcpy(p, &hash, 8);
  std::memcpy(p + 8, &size, 4);
  CopyShort(p + kKeyRecordHeader, key.data(), key.size());
}
inline uint64_t KeyRecordHash(const char* record) {
  uint64_t hash;
  std::memcpy(&hash, record, 8);
  return hash;
}
inline std::string_view KeyRecordKey(const char* record) {
  uint32_t size;
  std::memcpy(&size, record + 8, 4);
  return std::string_view(record + kKeyRecordHeader, size);
}

inline int KeyGroupOf(uint64_t hash, int max_parallelism) {
  return static_cast<int>(hash % static_cast<uint64_t>(max_parallelism));
}
inline int SubtaskOfKeyGroup(int key_group, int parallelism, int max_parallelism) {
  return key_group * parallelism / max_parallelism;
}

}  // namespace streamrun
