// WindowTable: the open windows of a window step, one entry per (key, window).
//
// Layout (chosen so that a record of a known key touches two cache lines, both prefetchable a
// few rows ahead; before, it touched four or five and a timer heap):
//  - entries: 64-byte, cache-line aligned WindowEntry records, reused through a free list.
//    An entry holds the window's bounds, its flags and timer, the key bytes inline when they fit
//    in 16 bytes (longer keys live beside the entry, in its segment's `long_keys`), and one
//    inline 8-byte counter for the first count()/count_if() aggregate. Other aggregates use
//    general Accumulators (per_entry of them per entry, in the entry's segment), so the table
//    has no per-key object at all.
//  - `slots_`: open addressing with linear probing over (key, window start), a slot being the
//    entry index and the low 32 bits of the (key, start) hash. Probing compares that hash first,
//    and backward-shift deletion needs only the slots, so deleting never touches an entry.
// Session windows are not indexed here (their bounds change when they merge): the operator
// finds them through its own per-key list; Insert with indexed = false.
//
// Segments and snapshots (copy-on-write). Entries live in segments of kSegmentEntries (2 MiB of
// entries, one transparent huge page), each with its own accumulators and long keys; entry e is
// entry e % kSegmentEntries of segment e / kSegmentEntries. Capture() returns a WindowTableView:
// references to every segment, taken in microseconds whatever the table's size, and marks the
// segments shared. The view is immutable; another thread may read it while the table goes on
// changing, because the table never writes into a shared segment: the first write after a
// capture (Mut, MutAccs, Insert, Erase) copies the segment, unless the view already let go of it,
// and the view keeps the old one. So a checkpoint's pause at the barrier is the capture, and its
// cost on the hot path is at most one copy of each segment written to while the view lives
// (measured: ~5.5 ms for 64 MiB, i.e. 1 M windows, on an idle core; 9 to 17 ms while the
// checkpoint is written beside it). To share that work, the view's thread copies ahead
// (WindowTableView::CopyAhead, from the last segment down) while the table's thread copies what
// it needs first: each segment is copied once, by whichever thread claims it first (an atomic
// state per captured segment), and the table takes the view thread's copies when it gets to
// them. Copies come from a SegmentPool the table and its views share, refilled with the segments
// views released, so after the first checkpoint they take no page faults. Reading is unaffected:
// At, Key, Accs and Find never check anything.
//
// Invariants: an entry is live iff it is not on the free list; an indexed live entry has
// exactly one slot; the table is at most half full; shared_[s] is set iff a view may still
// read segment s and no write happened to it since (the first write clears it).
//
// Thread safety: a WindowTable belongs to one thread (the operator's). A WindowTableView may be
// used on any one thread at a time, concurrently with the table; it keeps its segments alive by
// itself (shared ownership), so it may also outlive the table.
#pragma once

#include <atomic>
#include <cstdint>
#include <cstring>
#include <limits>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "engine/huge_page_allocator.h"
#include "engine/key.h"
#include "engine/mutex.h"
#include "engine/prefetch.h"
#include "operators/window_aggregates.h"

namespace streamrun {

inline constexpr uint32_t kNoEntry = std::numeric_limits<uint32_t>::max();

struct alignas(64) WindowEntry {
  static constexpr uint8_t kFired = 1;        // its watermark firing (at end - 1) has happened
  static constexpr uint8_t kHasTimer = 2;     // `timer` is the time of its live timer
  static constexpr uint8_t kIndexed = 4;      // it has a slot (tumbling, sliding)
  static constexpr uint8_t kLongKey = 8;      // key bytes in its segment's long_keys
  static constexpr uint8_t kLive = 16;        // not on the free list
  static constexpr uint8_t kReferenced = 32;  // touched since the cache's clock hand passed
  static constexpr size_t kInlineKey = 16;

  int64_t start = 0;
  int64_t end = 0;  // exclusive
  int64_t timer = 0;
  uint32_t hash32 = 0;  // low half of the (key, start) hash
  uint32_t gen = 0;     // bumped when the entry is freed or re-timed: stale timers skip
  uint16_t origin = 0;  // of the window's last record
  uint8_t flags = 0;
  uint8_t key_len = 0;  // inline key length
  uint32_t spare = 0;
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

inline constexpr uint32_t kSegmentShift = 15;
inline constexpr uint32_t kSegmentEntries = 1u << kSegmentShift;  // 2 MiB of entries
inline constexpr uint32_t kSegmentMask = kSegmentEntries - 1;

// kSegmentEntries entries with their accumulators and long keys. Owns its memory.
struct WindowSegment {
  explicit WindowSegment(size_t per_entry);
  ~WindowSegment();
  WindowSegment(const WindowSegment&) = delete;
  WindowSegment& operator=(const WindowSegment&) = delete;
  // Makes this segment a copy of `other` (same per_entry).
  void CopyFrom(const WindowSegment& other);

  std::string_view Key(uint32_t off) const {
    const WindowEntry& e = entries[off];
    if (e.flags & WindowEntry::kLongKey) return long_keys[off];
    return {e.key, e.key_len};
  }

  const size_t per_entry;
  WindowEntry* entries;  // kSegmentEntries, on a huge page
  Accumulator* accs;     // kSegmentEntries * per_entry; null when per_entry is 0
  std::unique_ptr<std::string[]> long_keys;  // kSegmentEntries, allocated with the first one
};

// Spare segments for copies, shared by a table and its views (their threads take from it).
class SegmentPool {
 public:
  explicit SegmentPool(size_t per_entry) : per_entry_(per_entry) {}
  // A spare segment, or a new one (allocated and first touched on the caller's thread).
  std::shared_ptr<WindowSegment> Take();
  // REQUIRES: nobody else holds `segment`.
  void Give(std::shared_ptr<WindowSegment> segment);
  size_t size() const;

 private:
  const size_t per_entry_;
  mutable Mutex mu_;
  std::vector<std::shared_ptr<WindowSegment>> free_ GUARDED_BY(mu_);
};

// What a Capture() and its view share: who copies which segment. state[s] goes from kShared to
// kTaken (the table copies it itself) or to kCopying and then kCopied (the view's thread made
// copies[s], which the table takes: kTaken). copies[s] is written before kCopied is stored
// (release) and read after it is loaded (acquire).
struct CaptureCopies {
  static constexpr uint8_t kShared = 0, kCopying = 1, kCopied = 2, kTaken = 3;
  explicit CaptureCopies(size_t n) : state(n), copies(n) {}
  std::vector<std::atomic<uint8_t>> state;
  std::vector<std::shared_ptr<WindowSegment>> copies;
};

// The table's entries as Capture() found them (see the header comment).
class WindowTableView {
 public:
  WindowTableView() = default;
  // Entry indexes are below this.
  size_t capacity() const { return segs_.size() * kSegmentEntries; }
  bool IsLive(uint32_t e) const { return (At(e).flags & WindowEntry::kLive) != 0; }
  const WindowEntry& At(uint32_t e) const {
    return segs_[e >> kSegmentShift]->entries[e & kSegmentMask];
  }
  std::string_view Key(uint32_t e) const {
    return segs_[e >> kSegmentShift]->Key(e & kSegmentMask);
  }
  const Accumulator* Accs(uint32_t e) const {
    const WindowSegment& s = *segs_[e >> kSegmentShift];
    return s.accs + static_cast<size_t>(e & kSegmentMask) * s.per_entry;
  }
  size_t live() const { return live_; }

  // Copies the captured segments the table has not copied yet, for the table to take when it
  // writes them (see the header comment). For the thread that will read the view, right after
  // the capture.
  void CopyAhead();

 private:
  friend class WindowTable;
  std::vector<std::shared_ptr<const WindowSegment>> segs_;
  std::shared_ptr<CaptureCopies> copies_;
  std::shared_ptr<SegmentPool> pool_;
  size_t live_ = 0;
};

class WindowTable {
 public:
  // `per_entry`: general accumulators per entry. `reserve_copies`: allocate a spare segment
  // with every segment, so that the copies after a Capture() take no page faults (the first
  // touch of fresh memory; measured: 31 fresh 2 MiB segments took 7 to 160 ms, reused ones
  // 5 ms). Costs the memory the copies would take anyway; for tables that get captured.
  // REQUIRES: the table is empty.
  void Init(size_t per_entry, bool reserve_copies = false) {
    per_entry_ = per_entry;
    reserve_copies_ = reserve_copies;
    pool_ = std::make_shared<SegmentPool>(per_entry);
  }

  uint32_t Find(uint64_t hash, std::string_view key, int64_t start) const {
    if (slots_.empty()) return kNoEntry;
    size_t mask = slots_.size() - 1;
    auto h32 = static_cast<uint32_t>(hash);
    for (size_t i = h32 & mask;; i = (i + 1) & mask) {
      const Slot& s = slots_[i];
      if (s.entry == kNoEntry) return kNoEntry;
      if (s.hash32 == h32) {
        const WindowEntry& e = At(s.entry);
        if (e.start != start) continue;
        std::string_view k = Key(s.entry);
        if (k.size() == key.size() && EqualShort(k.data(), key.data(), key.size())) return s.entry;
      }
    }
  }
  // A new live entry for window [start, end) of `key`, not fired, without timer.
  uint32_t Insert(uint64_t hash, std::string_view key, int64_t start, int64_t end, bool indexed);
  // Frees entry `e` (its slot, long key and accumulators).
  void Erase(uint32_t e);

  // Reading.
  const WindowEntry& At(uint32_t e) const { return base_[e >> kSegmentShift][e & kSegmentMask]; }
  std::string_view Key(uint32_t e) const {
    return segs_[e >> kSegmentShift]->Key(e & kSegmentMask);
  }
  const Accumulator* Accs(uint32_t e) const {
    return segs_[e >> kSegmentShift]->accs + static_cast<size_t>(e & kSegmentMask) * per_entry_;
  }
  // Writing: every change of an entry or its accumulators goes through these.
  WindowEntry& Mut(uint32_t e) {
    uint32_t s = e >> kSegmentShift;
    if (shared_[s]) Unshare(s);
    return base_[s][e & kSegmentMask];
  }
  Accumulator* MutAccs(uint32_t e) {
    uint32_t s = e >> kSegmentShift;
    if (shared_[s]) Unshare(s);
    return segs_[s]->accs + static_cast<size_t>(e & kSegmentMask) * per_entry_;
  }

  size_t live() const { return live_; }
  // Entries ever allocated (live or free): entry indexes are below this.
  size_t capacity() const { return segs_.size() * kSegmentEntries; }
  bool IsLive(uint32_t e) const { return (At(e).flags & WindowEntry::kLive) != 0; }
  // Memory per window, for sizing a cache: its entry and accumulators (twice with
  // reserve_copies) and its slots (at most 4 per window: the table is at least a quarter full
  // after growing). Heap memory of long keys and of accumulators' strings and sets is extra.
  size_t bytes_per_entry() const {
    return (sizeof(WindowEntry) + per_entry_ * sizeof(Accumulator)) * (reserve_copies_ ? 2 : 1) +
           4 * sizeof(Slot);
  }

  // A consistent view of every entry as it is now, for another thread (see the header comment).
  WindowTableView Capture();
  // Segments copied for writes after a Capture(): by this thread, and taken ready from a view's
  // CopyAhead; the time this thread spent on them (copying, or waiting for a copy).
  uint64_t copies() const { return copies_; }
  uint64_t taken_copies() const { return taken_copies_; }
  int64_t copy_ns() const { return copy_ns_; }

  // Prefetching for rows ahead: the slot of `hash`, then the entry it probably names.
  void PrefetchSlot(uint64_t hash) const {
    if (!slots_.empty()) Prefetch(&slots_[hash & (slots_.size() - 1)]);
  }
  void PrefetchEntry(uint64_t hash) const {
    if (slots_.empty()) return;
    const Slot& s = slots_[hash & (slots_.size() - 1)];
    if (s.entry != kNoEntry) Prefetch(&At(s.entry));
  }
  void PrefetchAccs(uint64_t hash) const {
    if (slots_.empty() || per_entry_ == 0) return;
    const Slot& s = slots_[hash & (slots_.size() - 1)];
    if (s.entry != kNoEntry) Prefetch(Accs(s.entry));
  }
  // For dropping entries in a row: their slot.
  void PrefetchSlotOf(uint32_t e) const { PrefetchSlot(At(e).hash32); }

 private:
  struct Slot {
    uint32_t entry = kNoEntry;
    uint32_t hash32 = 0;
  };
  void Grow();
  void PlaceSlot(uint32_t entry, uint32_t hash32);
  void AddSegment();
  // Segment s is about to be written: copy it unless no view holds it any more.
  void Unshare(uint32_t s);
  // Segments views released go back to the pool.
  void ReclaimRetired();
  // And copies made ahead for the last capture that the table did not take; forgets it.
  void Reclaim();

  size_t per_entry_ = 0;
  bool reserve_copies_ = false;
  std::vector<std::shared_ptr<WindowSegment>> segs_;
  std::vector<WindowEntry*> base_;  // segs_[s]->entries, for one load less per access
  std::vector<uint8_t> shared_;     // per segment: a view may still read it
  std::vector<std::shared_ptr<WindowSegment>> retired_;  // replaced by copies; views may hold them
  std::shared_ptr<SegmentPool> pool_;
  std::shared_ptr<CaptureCopies> capture_;  // of the last Capture()
  std::vector<uint32_t> free_entries_;
  std::vector<Slot, HugePageAllocator<Slot>> slots_;
  size_t indexed_ = 0;
  size_t live_ = 0;
  uint64_t copies_ = 0;
  uint64_t taken_copies_ = 0;
  int64_t copy_ns_ = 0;
};

}  // namespace streamrun
