// Arena, Batch and the batch pool.
#include "engine/batch.h"

#include <algorithm>
#include <cctype>
#include <cstring>

#include "engine/mutex.h"

namespace streamrun {

char* Arena::AllocateInNewBlock(size_t n) {
  const size_t size = n > kBlockSize ? n : kBlockSize;
  // Blocks after the current one were kept by Reset: use the next one when it is big enough.
  const size_t next = cur_block_ + (cur_ == nullptr ? 0 : 1);
  if (next >= blocks_.size() || block_sizes_[next] < size) {
    blocks_.insert(blocks_.begin() + next, std::unique_ptr<char[]>(new char[size]));
    block_sizes_.insert(block_sizes_.begin() + next, size);
  }
  cur_block_ = next;
  cur_ = blocks_[cur_block_].get();
  left_ = block_sizes_[cur_block_];
  return Allocate(n);
}

std::string_view Arena::Copy(std::string_view s) {
  if (s.empty()) return std::string_view();
  char* p = Allocate(s.size());
  std::memcpy(p, s.data(), s.size());
  return std::string_view(p, s.size());
}

void Arena::Reset() {
  // Keep only the first block, and only when it has the standard size: a pooled batch holds
  // bounded memory however large its last records were.
  if (blocks_.size() > 1) {
    blocks_.resize(1);
    block_sizes_.resize(1);
  }
  if (!blocks_.empty() && block_sizes_[0] != kBlockSize) {
    blocks_.clear();
    block_sizes_.clear();
  }
  cur_block_ = 0;
  cur_ = nullptr;
  left_ = 0;
  used_ = 0;
}

std::string FieldPathToString(const FieldPath& path) {
  std::string out;
  for (const auto& seg : path) {
    bool plain =
        !seg.empty() && (std::isalpha(static_cast<unsigned char>(seg[0])) || seg[0] == '_');
    for (char c : seg) plain = plain && (std::isalnum(static_cast<unsigned char>(c)) || c == '_');
    if (plain) {
      if (!out.empty()) out.push_back('.');
      out += seg;
    } else {
      out += "[";
      AppendJsonString(out, seg);
      out += "]";
    }
  }
  return out;
}

Value CopyValue(Arena& arena, const Value& v) {
  switch (v.kind()) {
    case Value::Kind::kString:
      return Value::String(arena.Copy(v.as_string()));
    case Value::Kind::kJson:
      return Value::Json(arena.Copy(v.as_string()));
    default:
      return v;
  }
}

size_t Batch::AddRow(const Row& proto) {
  Row row = proto;
  row.slot = static_cast<uint32_t>(slots.size());
  // Element by element: a row has few slots, and resize() is an out-of-line call per row.
  for (uint32_t i = 0; i < width; ++i) slots.emplace_back();
  rows.push_back(row);
  return rows.size() - 1;
}

void Batch::CopyRowFrom(const Batch& src, size_t r) {
  const Row& in = src.rows[r];
  Row row = in;
  row.raw = arena.Copy(in.raw);
  row.keyed = nullptr;  // its key record stays behind, in `src`
  row.flags &= static_cast<uint16_t>(~kRowKeyed);
  row.slot = static_cast<uint32_t>(slots.size());
  const Value* vals = src.SlotsOf(r);
  for (uint32_t i = 0; i < width; ++i) {
    const Value& v = vals[i];
    // A string that points into the record's own bytes is re-pointed into the copy of them.
    if ((v.kind() == Value::Kind::kString || v.kind() == Value::Kind::kJson) &&
        v.as_string().data() >= in.raw.data() &&
        v.as_string().data() + v.as_string().size() <= in.raw.data() + in.raw.size()) {
      std::string_view s(row.raw.data() + (v.as_string().data() - in.raw.data()),
                         v.as_string().size());
      slots.push_back(v.kind() == Value::Kind::kString ? Value::String(s) : Value::Json(s));
    } else {
      slots.push_back(CopyValue(arena, v));
    }
  }
  rows.push_back(row);
}

void Batch::Clear() {
  kind = Kind::kData;
  rows.clear();
  slots.clear();
  arena.Reset();
  watermark = kMinTimestamp;
  seq = 0;
  seq_last = true;
  barrier_id = 0;
  pins.clear();
}

namespace {

// Free batches, kept for reuse. Bounded so that a burst does not pin memory for ever.
class BatchPool {
 public:
  static BatchPool& Get() {
    static BatchPool* pool = new BatchPool();  // never destroyed: batches may outlive statics
    return *pool;
  }
  Batch* Take() LOCKS_EXCLUDED(mu_) {
    {
      MutexLock lock(&mu_);
      if (!free_.empty()) {
        Batch* b = free_.back();
        free_.pop_back();
        return b;
      }
    }
    return new Batch();
  }
  // REQUIRES: b is cleared.
  void Give(Batch* b) LOCKS_EXCLUDED(mu_) {
    {
      MutexLock lock(&mu_);
      if (free_.size() < kMaxFree) {
        free_.push_back(b);
        return;
      }
    }
    delete b;
  }

 private:
  static constexpr size_t kMaxFree = 512;
  Mutex mu_;
  std::vector<Batch*> free_ GUARDED_BY(mu_);
};

// Each thread first reuses the batches it freed itself: their memory is in its own core's
// cache. Taking the last batch another core wrote (a shared LIFO) made the writer fetch every
// line of it from that core (measured at parallelism 2: ~1/3 more CPU per record than p1).
class LocalBatches {
 public:
  ~LocalBatches() {
    for (Batch* b : free_) BatchPool::Get().Give(b);
  }
  Batch* Take() {
    if (free_.empty()) return BatchPool::Get().Take();
    Batch* b = free_.back();
    free_.pop_back();
    return b;
  }
  void Give(Batch* b) {
    b->Clear();
    if (free_.size() < kMaxLocal) {
      free_.push_back(b);
      return;
    }
    BatchPool::Get().Give(b);
  }

 private:
  static constexpr size_t kMaxLocal = 64;
  std::vector<Batch*> free_;
};

thread_local LocalBatches tls_batches;

}  // namespace

void BatchRecycler::operator()(Batch* b) const { tls_batches.Give(b); }

BatchPtr NewBatch(uint32_t width) {
  BatchPtr b(tls_batches.Take());
  b->width = width;
  return b;
}

}  // namespace streamrun
