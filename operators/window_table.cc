// The window step's table of open windows (see window_table.h).
#include "operators/window_table.h"

#include <atomic>
#include <memory>
#include <thread>

#include "engine/metrics.h"

namespace streamrun {

WindowSegment::WindowSegment(size_t per_entry_count) : per_entry(per_entry_count) {
  entries = HugePageAllocator<WindowEntry>().allocate(kSegmentEntries);
  std::uninitialized_value_construct_n(entries, kSegmentEntries);
  accs = nullptr;
  if (per_entry > 0) {
    size_t n = static_cast<size_t>(kSegmentEntries) * per_entry;
    accs = HugePageAllocator<Accumulator>().allocate(n);
    std::uninitialized_default_construct_n(accs, n);
  }
}

WindowSegment::~WindowSegment() {
  HugePageAllocator<WindowEntry>().deallocate(entries, kSegmentEntries);
  if (accs != nullptr) {
    size_t n = static_cast<size_t>(kSegmentEntries) * per_entry;
    std::destroy_n(accs, n);
    HugePageAllocator<Accumulator>().deallocate(accs, n);
  }
}

void WindowSegment::CopyFrom(const WindowSegment& other) {
  std::memcpy(static_cast<void*>(entries), other.entries, sizeof(WindowEntry) * kSegmentEntries);
  if (per_entry > 0) {
    size_t n = static_cast<size_t>(kSegmentEntries) * per_entry;
    for (size_t i = 0; i < n; ++i) accs[i].CopyFrom(other.accs[i]);
  }
  if (other.long_keys) {
    if (!long_keys) long_keys = std::make_unique<std::string[]>(kSegmentEntries);
    for (uint32_t i = 0; i < kSegmentEntries; ++i) {
      // Only live long keys matter; the others are stale.
      if (other.entries[i].flags & WindowEntry::kLongKey) long_keys[i] = other.long_keys[i];
    }
  }
}

std::shared_ptr<WindowSegment> SegmentPool::Take() {
  {
    MutexLock lock(&mu_);
    if (!free_.empty()) {
      std::shared_ptr<WindowSegment> s = std::move(free_.back());
      free_.pop_back();
      return s;
    }
  }
  return std::make_shared<WindowSegment>(per_entry_);
}

void SegmentPool::Give(std::shared_ptr<WindowSegment> segment) {
  MutexLock lock(&mu_);
  free_.push_back(std::move(segment));
}

size_t SegmentPool::size() const {
  MutexLock lock(&mu_);
  return free_.size();
}

void WindowTableView::CopyAhead() {
  if (!copies_) return;
  for (size_t s = segs_.size(); s-- > 0;) {
    uint8_t expected = CaptureCopies::kShared;
    if (!copies_->state[s].compare_exchange_strong(expected, CaptureCopies::kCopying,
                                                   std::memory_order_acq_rel)) {
      continue;  // the table copied it already
    }
    std::shared_ptr<WindowSegment> copy = pool_->Take();
    copy->CopyFrom(*segs_[s]);
    copies_->copies[s] = std::move(copy);
    copies_->state[s].store(CaptureCopies::kCopied, std::memory_order_release);
  }
}

void WindowTable::AddSegment() {
  segs_.push_back(std::make_shared<WindowSegment>(per_entry_));
  if (reserve_copies_) pool_->Give(std::make_shared<WindowSegment>(per_entry_));
  base_.push_back(segs_.back()->entries);
  shared_.push_back(0);
  // Free entries are taken from the back: hand out the new segment's in order.
  auto first = static_cast<uint32_t>((segs_.size() - 1) * kSegmentEntries);
  for (uint32_t i = kSegmentEntries; i-- > 0;) free_entries_.push_back(first + i);
}

uint32_t WindowTable::Insert(uint64_t hash, std::string_view key, int64_t start, int64_t end,
                             bool indexed) {
  if (free_entries_.empty()) AddSegment();
  uint32_t e = free_entries_.back();
  free_entries_.pop_back();
  WindowEntry& w = Mut(e);
  w.start = start;
  w.end = end;
  w.timer = 0;
  w.hash32 = static_cast<uint32_t>(hash);
  w.origin = 0;
  w.flags = WindowEntry::kLive;
  w.counter = 0;
  if (key.size() <= WindowEntry::kInlineKey) {
    w.key_len = static_cast<uint8_t>(key.size());
    std::memcpy(w.key, key.data(), key.size());
  } else {
    w.flags |= WindowEntry::kLongKey;
    w.key_len = 0;
    WindowSegment& seg = *segs_[e >> kSegmentShift];
    if (!seg.long_keys) seg.long_keys = std::make_unique<std::string[]>(kSegmentEntries);
    seg.long_keys[e & kSegmentMask].assign(key);
  }
  if (indexed) {
    w.flags |= WindowEntry::kIndexed;
    if ((indexed_ + 1) * 2 > slots_.size()) Grow();
    PlaceSlot(e, w.hash32);
    ++indexed_;
  }
  ++live_;
  return e;
}

void WindowTable::Erase(uint32_t e) {
  WindowEntry& w = Mut(e);
  if (w.flags & WindowEntry::kIndexed) {
    // Backward-shift deletion: keeps every probe chain unbroken without tombstones.
    size_t mask = slots_.size() - 1;
    size_t i = w.hash32 & mask;
    while (slots_[i].entry != e) i = (i + 1) & mask;
    size_t j = i;
    while (true) {
      j = (j + 1) & mask;
      if (slots_[j].entry == kNoEntry) break;
      size_t home = slots_[j].hash32 & mask;
      // The slot at j may move to the hole at i unless its home lies cyclically in (i, j].
      bool stays = i <= j ? (home > i && home <= j) : (home > i || home <= j);
      if (!stays) {
        slots_[i] = slots_[j];
        i = j;
      }
    }
    slots_[i] = Slot();
    --indexed_;
  }
  if (per_entry_ > 0) {
    Accumulator* a = MutAccs(e);
    for (size_t j = 0; j < per_entry_; ++j) a[j].Reset();
  }
  w.flags = 0;
  ++w.gen;
  free_entries_.push_back(e);
  --live_;
}

WindowTableView WindowTable::Capture() {
  Reclaim();
  capture_ = std::make_shared<CaptureCopies>(segs_.size());
  WindowTableView view;
  view.segs_.assign(segs_.begin(), segs_.end());
  view.copies_ = capture_;
  view.pool_ = pool_;
  view.live_ = live_;
  for (auto& s : shared_) s = 1;
  return view;
}

void WindowTable::ReclaimRetired() {
  for (size_t i = retired_.size(); i-- > 0;) {
    if (retired_[i].use_count() == 1) {
      // The view released it (a release decrement); what it read happens before our writes.
      std::atomic_thread_fence(std::memory_order_acquire);
      pool_->Give(std::move(retired_[i]));
      retired_[i] = std::move(retired_.back());
      retired_.pop_back();
    }
  }
}

void WindowTable::Reclaim() {
  ReclaimRetired();
  if (!capture_) return;
  for (size_t s = 0; s < capture_->state.size(); ++s) {
    // Copies made ahead for segments the table never wrote. One still being made stays with
    // the capture (freed with it).
    if (capture_->state[s].load(std::memory_order_acquire) == CaptureCopies::kCopied) {
      capture_->state[s].store(CaptureCopies::kTaken, std::memory_order_relaxed);
      pool_->Give(std::move(capture_->copies[s]));
    }
  }
  capture_.reset();
}

void WindowTable::Unshare(uint32_t s) {
  shared_[s] = 0;
  if (segs_[s].use_count() == 1) {
    // No view holds it any more: write in place (see ReclaimRetired for the fence).
    std::atomic_thread_fence(std::memory_order_acquire);
    return;
  }
  const int64_t started = SteadyNowNs();
  std::shared_ptr<WindowSegment> copy;
  if (capture_ && s < capture_->state.size()) {
    std::atomic<uint8_t>& state = capture_->state[s];
    uint8_t expected = CaptureCopies::kShared;
    if (!state.compare_exchange_strong(expected, CaptureCopies::kTaken,
                                       std::memory_order_acq_rel)) {
      // The view's thread claimed it: wait for its copy (one segment's copy at most).
      // Spinning first, then yielding: on a busy machine the copying thread may be off its core.
      for (int spins = 0; state.load(std::memory_order_acquire) == CaptureCopies::kCopying;
           ++spins) {
        if (spins < 4096) {
#if defined(__x86_64__) || defined(__i386__)
          __builtin_ia32_pause();
#endif
        } else {
          std::this_thread::yield();
        }
      }
      copy = std::move(capture_->copies[s]);
      state.store(CaptureCopies::kTaken, std::memory_order_relaxed);
      ++taken_copies_;
    }
  }
  if (!copy) {
    if (pool_->size() == 0) ReclaimRetired();
    copy = pool_->Take();
    copy->CopyFrom(*segs_[s]);
    ++copies_;
  }
  retired_.push_back(std::move(segs_[s]));
  segs_[s] = std::move(copy);
  base_[s] = segs_[s]->entries;
  copy_ns_ += SteadyNowNs() - started;
}

void WindowTable::Grow() {
  std::vector<Slot, HugePageAllocator<Slot>> old;
  old.swap(slots_);
  slots_.assign(old.empty() ? 1024 : old.size() * 2, Slot());
  for (const Slot& s : old) {
    if (s.entry != kNoEntry) PlaceSlot(s.entry, s.hash32);
  }
}

void WindowTable::PlaceSlot(uint32_t entry, uint32_t hash32) {
  size_t mask = slots_.size() - 1;
  size_t i = hash32 & mask;
  while (slots_[i].entry != kNoEntry) i = (i + 1) & mask;
  slots_[i] = {entry, hash32};
}

}  // namespace streamrun
