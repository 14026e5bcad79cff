// The window step's table of open windows (see window_table.h).
#include "operators/window_table.h"

namespace streamrun {

uint32_t WindowTable::Insert(uint64_t hash, std::string_view key, int64_t start, int64_t end,
                             bool indexed) {
  uint32_t e;
  if (!free_entries_.empty()) {
    e = free_entries_.back();
    free_entries_.pop_back();
  } else {
    e = static_cast<uint32_t>(entries_.size());
    entries_.emplace_back();
    accs_.resize(accs_.size() + per_entry_);
  }
  WindowEntry& w = entries_[e];
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
    if (!free_long_keys_.empty()) {
      w.long_key = free_long_keys_.back();
      free_long_keys_.pop_back();
      long_keys_[w.long_key].assign(key);
    } else {
      w.long_key = static_cast<uint32_t>(long_keys_.size());
      long_keys_.emplace_back(key);
    }
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
  WindowEntry& w = entries_[e];
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
  if (w.flags & WindowEntry::kLongKey) free_long_keys_.push_back(w.long_key);
  Accumulator* a = Accs(e);
  for (size_t j = 0; j < per_entry_; ++j) a[j].Reset();
  w.flags = 0;
  ++w.gen;
  free_entries_.push_back(e);
  --live_;
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
