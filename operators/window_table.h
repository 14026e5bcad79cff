// WindowTable: the open windows of a window step, one entry per (key, window).
//
// Layout (chosen so that a record of a known key touches two cache lines, both prefetchable a
// few rows ahead; before, it touched four or five and a timer heap):
//  - `entries_`: 64-byte, cache-line aligned WindowEntry records, reused through a free list.
//    An entry holds the window's bounds, its flags and timer, the key bytes inline when they fit
//    in 16 bytes (longer keys live in `long_keys_`), and one inline 8-byte counter for the first
//    count()/count_if() aggregate. Other aggregates use general Accumulators in `accs_`
//    (entry index * per_entry), so the table has no per-key object at all.
//  - `slots_`: open addressing with linear probing over (key, window start), a slot being the
//    entry index and the low 32 bits of the (key, start) hash. Probing compares that hash first,
//    and backward-shift deletion needs only the slots, so deleting never touches an entry.
// Session windows are not indexed here (their bounds change when they merge): the operator
// finds them through its own per-key list; Insert with indexed = false.
//
// Invariants: an entry is live iff it is not on the free list; an indexed live entry has
// exactly one slot; the table is at most half full.
#pragma once

#include <cstdint>
#include <cstring>
#include <limits>
#include <string>
#include <string_view>
#include <vector>

#include "engine/huge_page_allocator.h"
#include "operators/window_aggregates.h"

namespace streamrun {

// A prefetch the compiler cannot drop. GCC 12 at -O2 deletes __builtin_prefetch calls behind a
// branch in loops it sees no other effect in (measured: the prefetches of this operator's
// per-row look-ahead were all gone from the binary), so on x86 it is an asm statement.
inline void Prefetch(const void* p) {
#if defined(__x86_64__) || defined(__i386__)
  asm volatile("prefetcht0 %0" : : "m"(*static_cast<const char*>(p)));
#else
  __builtin_prefetch(p);
#endif
}

inline constexpr uint32_t kNoEntry = std::numeric_limits<uint32_t>::max();

struct alignas(64) WindowEntry {
  static constexpr uint8_t kFired = 1;     // its watermark firing (at end - 1) has happened
  static constexpr uint8_t kHasTimer = 2;  // `timer` is the time of its live timer
  static constexpr uint8_t kIndexed = 4;   // it has a slot (tumbling, sliding)
  static constexpr uint8_t kLongKey = 8;   // key bytes in long_keys_[long_key]
  static constexpr uint8_t kLive = 16;     // not on the free list
  static constexpr size_t kInlineKey = 16;

  int64_t start = 0;
  int64_t end = 0;  // exclusive
  int64_t timer = 0;
  uint32_t hash32 = 0;  // low half of the (key, start) hash
  uint32_t gen = 0;     // bumped when the entry is freed or re-timed: stale timers skip
  uint16_t origin = 0;  // of the window's last record
  uint8_t flags = 0;
  uint8_t key_len = 0;  // inline key length
  uint32_t long_key = 0;
  char key[kInlineKey];
  int64_t counter = 0;  // the inline count()/count_if() accumulator

  bool fired() const { return (flags & kFired) != 0; }
  int64_t max_timestamp() const { return end - 1; }
};
static_assert(sizeof(WindowEntry) == 64, "one cache line per window");

// The (key, window start) hash: the key's HashKey mixed with the start.
inline uint64_t WindowHash(uint64_t key_hash, int64_t start) {
  uint64_t h = key_hash ^ (static_cast<uint64_t>(start) * 0x9E3779B97F4A7C15ULL);
  h ^= h >> 33;
  h *= 0xFF51AFD7ED558CCDULL;
  h ^= h >> 33;
  return h;
}

class WindowTable {
 public:
  // `per_entry`: general accumulators per entry.
  void Init(size_t per_entry) { per_entry_ = per_entry; }

  uint32_t Find(uint64_t hash, std::string_view key, int64_t start) const {
    if (slots_.empty()) return kNoEntry;
    size_t mask = slots_.size() - 1;
    auto h32 = static_cast<uint32_t>(hash);
    for (size_t i = h32 & mask;; i = (i + 1) & mask) {
      const Slot& s = slots_[i];
      if (s.entry == kNoEntry) return kNoEntry;
      if (s.hash32 == h32) {
        const WindowEntry& e = entries_[s.entry];
        if (e.start == start && Key(e) == key) return s.entry;
      }
    }
  }
  // A new live entry for window [start, end) of `key`, not fired, without timer.
  uint32_t Insert(uint64_t hash, std::string_view key, int64_t start, int64_t end, bool indexed);
  // Frees entry `e` (its slot, long key and accumulators).
  void Erase(uint32_t e);

  WindowEntry& operator[](uint32_t e) { return entries_[e]; }
  const WindowEntry& operator[](uint32_t e) const { return entries_[e]; }
  std::string_view Key(const WindowEntry& e) const {
    if (e.flags & WindowEntry::kLongKey) return long_keys_[e.long_key];
    return {e.key, e.key_len};
  }
  Accumulator* Accs(uint32_t e) { return accs_.data() + static_cast<size_t>(e) * per_entry_; }
  const Accumulator* Accs(uint32_t e) const {
    return accs_.data() + static_cast<size_t>(e) * per_entry_;
  }
  size_t live() const { return live_; }
  // Entries ever allocated (live or free): entry indexes are below this.
  size_t capacity() const { return entries_.size(); }
  bool IsLive(uint32_t e) const { return (entries_[e].flags & WindowEntry::kLive) != 0; }

  // Prefetching for rows ahead: the slot of `hash`, then the entry it probably names.
  void PrefetchSlot(uint64_t hash) const {
    if (!slots_.empty()) Prefetch(&slots_[hash & (slots_.size() - 1)]);
  }
  void PrefetchEntry(uint64_t hash) const {
    if (slots_.empty()) return;
    const Slot& s = slots_[hash & (slots_.size() - 1)];
    if (s.entry != kNoEntry) Prefetch(&entries_[s.entry]);
  }
  void PrefetchAccs(uint64_t hash) const {
    if (slots_.empty() || per_entry_ == 0) return;
    const Slot& s = slots_[hash & (slots_.size() - 1)];
    if (s.entry != kNoEntry) Prefetch(Accs(s.entry));
  }
  // For dropping entries in a row: their slot.
  void PrefetchSlotOf(uint32_t e) const { PrefetchSlot(entries_[e].hash32); }

 private:
  struct Slot {
    uint32_t entry = kNoEntry;
    uint32_t hash32 = 0;
  };
  void Grow();
  void PlaceSlot(uint32_t entry, uint32_t hash32);

  size_t per_entry_ = 0;
  std::vector<WindowEntry, HugePageAllocator<WindowEntry>> entries_;
  std::vector<Accumulator, HugePageAllocator<Accumulator>> accs_;
  std::vector<uint32_t> free_entries_;
  std::vector<Slot, HugePageAllocator<Slot>> slots_;
  size_t indexed_ = 0;
  size_t live_ = 0;
  std::vector<std::string> long_keys_;
  std::vector<uint32_t> free_long_keys_;
};

}  // namespace streamrun
