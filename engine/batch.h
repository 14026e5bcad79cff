// Batches: how records move between operators and threads.
//
// Records travel in batches of up to kBatchRows rows. Every record has its own bytes (`raw`: a
// JSON text, or a line of a text source) that sinks write unchanged, plus the values of the
// fields that steps downstream read (its "slots", laid out by the stream's Layout). A source
// extracts only those fields, once; a filter passes records on as their original bytes.
//
// A Batch owns the memory its rows point to (its Arena, and the batches it pins). Batches are
// recycled through a pool, so the steady state allocates nothing per record.
//
// Thread safety: a Batch is owned by one thread at a time and handed over through a channel
// (engine/channel.h). The pool is thread-safe.
#pragma once

#include <cstdint>
#include <limits>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "engine/prefetch.h"
#include "engine/value.h"

namespace streamrun {

// Event times and watermarks are epoch milliseconds.
inline constexpr int64_t kMinTimestamp = std::numeric_limits<int64_t>::min();
inline constexpr int64_t kMaxTimestamp = std::numeric_limits<int64_t>::max();

inline constexpr size_t kBatchRows = 1024;         // rows per batch before it is sent
inline constexpr size_t kBatchBytes = 256 * 1024;  // arena bytes per batch before it is sent

// A bump allocator whose pointers stay valid until Reset(). Memory is kept across Reset().
class Arena {
 public:
  Arena() = default;
  Arena(const Arena&) = delete;
  Arena& operator=(const Arena&) = delete;

  char* Allocate(size_t n) {
    if (n > left_) return AllocateInNewBlock(n);
    char* p = cur_;
    cur_ += n;
    left_ -= n;
    used_ += n;
    return p;
  }
  std::string_view Copy(std::string_view s);
  // Asks for the line `ahead` bytes past the next allocation for writing (PrefetchForWrite), for
  // a caller about to fill the arena with many small records.
  void PrefetchAhead(size_t ahead) const {
    if (ahead < left_) PrefetchForWrite(cur_ + ahead);
  }
  // Frees everything allocated; keeps one block for reuse.
  void Reset();
  // Bytes handed out since the last Reset.
  size_t used() const { return used_; }

 private:
  static constexpr size_t kBlockSize = 64 * 1024;
  char* AllocateInNewBlock(size_t n);
  std::vector<std::unique_ptr<char[]>> blocks_;
  std::vector<size_t> block_sizes_;
  size_t cur_block_ = 0;
  char* cur_ = nullptr;
  size_t left_ = 0;
  size_t used_ = 0;
};

// A field path as written in expressions: `a.b` or `a["odd key"]` is {"a", "b"}.
using FieldPath = std::vector<std::string>;
std::string FieldPathToString(const FieldPath& path);

// The fields a stream's records carry as slots, in slot order.
using Layout = std::vector<FieldPath>;

struct Row {
  int64_t ts = kMinTimestamp;  // event time
  // The watermark before this record, as its source computed it (see engine/watermark.h). Lets a
  // window decide lateness exactly as a single-threaded run in input order would.
  int64_t wm = kMinTimestamp;
  std::string_view raw;  // the record's bytes, without the newline
  uint32_t slot = 0;     // index of its first slot in Batch::slots
  uint16_t origin = 0;   // index of the source it came from (for <source>.errors)
  uint16_t flags = 0;    // kRowText, kRowKeyed
  uint64_t offset = 0;   // position in its source (byte offset, sequence number)
  // Set by a keyed exchange (flag kRowKeyed): the row's key under the key_by of the consumer the
  // row was sent to, with its hash (a key record, engine/key.h), in memory this batch pins, so
  // that the keyed operator need not encode and hash the key again. Valid only in that
  // consumer's input; any other step ignores it, and CopyRowFrom clears it.
  const char* keyed = nullptr;
};
inline constexpr uint16_t kRowText = 1;   // raw is a text line, not JSON
inline constexpr uint16_t kRowKeyed = 2;  // keyed is set

struct Batch {
  enum class Kind : uint8_t {
    kData = 0,
    kEnd,      // the producer has finished: no batch follows from it
    kBarrier,  // checkpoint barrier `barrier_id`: no rows, its watermark means nothing
  };

  Kind kind = Kind::kData;
  uint32_t width = 0;  // slots per row: the size of the stream's Layout
  std::vector<Row> rows;
  std::vector<Value> slots;  // rows.size() * width values
  Arena arena;
  // The producer's watermark after this batch: no later record from it has a smaller `wm`.
  int64_t watermark = kMinTimestamp;
  // For inputs merged in sequence (a file source read by several subtasks): the chunk this batch
  // belongs to, and whether it is the producer's last batch of that chunk.
  uint64_t seq = 0;
  bool seq_last = true;
  uint64_t barrier_id = 0;  // kBarrier: the checkpoint id
  // Memory that rows of this one point into besides its arena: other batches (rows added by
  // AddRowRef) and a file source's chunk buffers (lines are not copied). Kept alive,
  // unchanged, until this batch is cleared.
  std::vector<std::shared_ptr<const void>> pins;

  Value* SlotsOf(size_t r) { return slots.data() + rows[r].slot; }
  const Value* SlotsOf(size_t r) const { return slots.data() + rows[r].slot; }

  // Appends a row whose slots are all Missing; returns its index.
  size_t AddRow(const Row& proto);
  // The same for a row with only `origin` and `offset` set, written in place. Sources call this
  // per record: a Row built on the stack and then copied cost a store-forwarding stall per row
  // (its narrow field stores read back by wide loads), ~9 % of a JSON filter's time.
  size_t AddRow(uint16_t origin, uint64_t offset) {
    const size_t r = rows.size();
    PrefetchRowsAhead();
    Row& row = rows.emplace_back();
    row.origin = origin;
    row.offset = offset;
    row.slot = static_cast<uint32_t>(slots.size());
    for (uint32_t i = 0; i < width; ++i) slots.emplace_back();
    return r;
  }
  // Appends row `r` of `src` (same width), copying its bytes and strings into this arena.
  void CopyRowFrom(const Batch& src, size_t r);
  // Appends row `r` of `src` (same width) by reference: its bytes and strings stay where they
  // are. REQUIRES: `src` (or what its rows point into) is in `pins`.
  void AddRowRef(const Batch& src, size_t r) {
    const Value* vals = src.SlotsOf(r);
    PrefetchRowsAhead();
    // Copied straight into place, then `slot` set: a copy on the stack with `slot` changed was
    // read back by wider loads than that store, a store-forwarding stall per row.
    rows.push_back(src.rows[r]);
    rows.back().slot = static_cast<uint32_t>(slots.size());
    // Element by element: rows carry a slot or two, too few for a memmove call to pay.
    for (uint32_t i = 0; i < width; ++i) slots.push_back(vals[i]);
  }
  // Before appending a row: asks for the lines the rows kRowsAhead later will go in (rows and
  // slots) for writing. A batch often comes from the pool with memory the other core last read
  // (its consumer) or wrote; each line's first store then waited for the other core, on every
  // row, which slowed parallelism 2 when the host put its two vCPUs far apart.
  void PrefetchRowsAhead() const {
    const size_t r = rows.size() + kRowsAhead;
    if (r < rows.capacity()) PrefetchForWrite(rows.data() + r);
    const size_t s = slots.size() + kRowsAhead * width;
    if (s < slots.capacity()) PrefetchForWrite(slots.data() + s);
  }
  static constexpr size_t kRowsAhead = 8;
  bool full() const { return rows.size() >= kBatchRows || arena.used() >= kBatchBytes; }
  // Empties the batch for reuse (keeps its capacity).
  void Clear();
};

// Drops rows of a batch in place while a step decides them one at a time, in order: Keep(r) for
// every row r to keep, then Finish(). One pass and no keep flags to read again; rows from the
// one being decided on are still where they were, so a step can report row r by its index
// before dropping it. Slots stay where they are.
class KeptRows {
 public:
  explicit KeptRows(Batch& batch) : rows_(batch.rows) {}
  void Keep(size_t r) {
    if (kept_ != r) rows_[kept_] = rows_[r];
    ++kept_;
  }
  void Finish() { rows_.resize(kept_); }

 private:
  std::vector<Row>& rows_;
  size_t kept_ = 0;
};

// Batches come from and go back to a process-wide pool.
struct BatchRecycler {
  void operator()(Batch* b) const;
};
using BatchPtr = std::unique_ptr<Batch, BatchRecycler>;
// An empty data batch of the given width.
BatchPtr NewBatch(uint32_t width);

// Copies a Value's bytes into `arena` when it points to memory (string, JSON).
Value CopyValue(Arena& arena, const Value& v);

}  // namespace streamrun
