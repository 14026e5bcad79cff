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

inline int KeyGroupOf(uint64_t hash, int max_parallelism) {
  return static_cast<int>(hash % static_cast<uint64_t>(max_parallelism));
}
inline int SubtaskOfKeyGroup(int key_group, int parallelism, int max_parallelism) {
  return key_group * parallelism / max_parallelism;
}

}  // namespace streamrun
