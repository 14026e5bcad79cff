// The window step's evicted windows (see window_spill.h).
#include "operators/window_spill.h"

#include <algorithm>
#include <filesystem>
#include <system_error>
#include <utility>
#include <vector>

#include "engine/byte_codec.h"

namespace streamrun {
namespace {

constexpr size_t kTimeBytes = 8;
// LMDB's key limit with Debian's liblmdb is 511 bytes; an entry's key is at most
// 2 + escaped(8 + 2 + key) + 2 + 16. Longer keys stay in memory.
constexpr size_t kMaxSpilledKey = 200;

uint64_t FlipSign(int64_t t) { return static_cast<uint64_t>(t) ^ (uint64_t{1} << 63); }

uint64_t ReadU64(std::string_view bytes) {
  uint64_t u = 0;
  for (size_t i = 0; i < kTimeBytes; ++i) u = (u << 8) | static_cast<unsigned char>(bytes[i]);
  return u;
}

// time | key group | key: the key of an entry in timer order.
void TimedKey(int64_t time, int key_group, std::string_view key, std::string* out) {
  out->clear();
  PutU64(*out, FlipSign(time));
  out->push_back(static_cast<char>((key_group >> 8) & 0xFF));
  out->push_back(static_cast<char>(key_group & 0xFF));
  out->append(key);
}

struct TimedEntry {
  int64_t time;
  int key_group;
  std::string_view key;
};
bool ParseTimedKey(std::string_view k, TimedEntry* out) {
  if (k.size() < kTimeBytes + 2) return false;
  out->time = static_cast<int64_t>(ReadU64(k) ^ (uint64_t{1} << 63));
  out->key_group = (static_cast<unsigned char>(k[8]) << 8) | static_cast<unsigned char>(k[9]);
  out->key = k.substr(kTimeBytes + 2);
  return true;
}

Status Damaged(std::string_view what) {
  return Status::DataError("window cache: a damaged " + std::string(what));
}

}  // namespace

Status WindowSpillView::ForEach(const KeyedStateStore::Visitor& visit) const {
  if (by_time) {
    return snapshot->ForEach(
        WindowSpill::kByTimeGroup, WindowSpill::kByTimeGroup,
        [&](int, std::string_view k, std::string_view ns, std::string_view value) -> Status {
          TimedEntry t;
          if (!ParseTimedKey(k, &t)) return Damaged("key");
          return visit(t.key_group, t.key, ns, value);
        });
  }
  return snapshot->ForEach(
      0, WindowSpill::kByTimeGroup - 1,
      [&](int kg, std::string_view key, std::string_view ns, std::string_view stored) -> Status {
        if (stored.size() < kTimeBytes) return Damaged("entry");
        return visit(kg, key, ns, stored.substr(kTimeBytes));
      });
}

Result<std::unique_ptr<WindowSpill>> WindowSpill::Open(const std::string& dir, bool by_time,
                                                       size_t initial_map_size) {
  std::error_code ec;
  std::filesystem::remove_all(dir, ec);
  if (ec) return Status::IoError("window cache " + dir + ": cannot remove: " + ec.message());
  LmdbStateStoreOptions options;
  options.initial_map_size = initial_map_size;
  options.write_map = true;
  // Each write dirties (copies) the leaf page it lands on, once per transaction: with windows
  // written at random, larger transactions share those copies between more writes.
  options.ops_per_commit = 100000;
  options.bytes_per_commit = size_t{64} << 20;
  SR_ASSIGN_OR_RETURN(std::unique_ptr<LmdbStateStore> store, LmdbStateStore::Open(dir, options));
  return std::unique_ptr<WindowSpill>(
      new WindowSpill(std::shared_ptr<LmdbStateStore>(std::move(store)), by_time));
}

bool WindowSpill::Fits(std::string_view key) const { return key.size() <= kMaxSpilledKey; }

Status WindowSpill::Put(int key_group, std::string_view key, std::string_view ns, int64_t timer,
                        std::string_view value) {
  TimedKey(timer, key_group, key, &scratch_);
  if (by_time_) {
    SR_RETURN_IF_ERROR(store_->Put(kByTimeGroup, scratch_, ns, value));
  } else {
    SR_RETURN_IF_ERROR(store_->Put(kTimerGroup, scratch_, ns, ""));
    std::string stored;
    stored.reserve(kTimeBytes + value.size());
    PutI64(stored, timer);
    stored.append(value);
    SR_RETURN_IF_ERROR(store_->Put(key_group, key, ns, stored));
  }
  ++size_;
  min_timer_ = std::min(min_timer_, timer);
  return Status::Ok();
}

void WindowSpill::Removed() {
  if (--size_ == 0) min_timer_ = kMaxTimestamp;
}

Status WindowSpill::TakeWindow(int key_group, std::string_view key, std::string_view ns,
                               std::initializer_list<int64_t> timers, const Taker& take) {
  if (size_ == 0) return Status::Ok();
  std::string value;
  for (int64_t timer : timers) {
    if (timer < min_timer_) continue;
    TimedKey(timer, key_group, key, &scratch_);
    bool found = false;
    SR_RETURN_IF_ERROR(store_->Take(kByTimeGroup, scratch_, ns, &value, &found));
    if (!found) continue;
    Removed();
    return take(key_group, key, ns, value);
  }
  return Status::Ok();
}

Status WindowSpill::TakeKey(int key_group, std::string_view key, const Taker& take) {
  if (size_ == 0) return Status::Ok();
  // Collected first: the cursor's pages must not change under it.
  std::vector<std::pair<std::string, std::string>> found;  // namespace, stored value
  SR_RETURN_IF_ERROR(store_->Scan(
      key_group, key,
      [&](std::string_view k, std::string_view ns, std::string_view stored, bool* stop) -> Status {
        *stop = k != key;
        if (!*stop) found.emplace_back(ns, stored);
        return Status::Ok();
      }));
  for (const auto& [ns, stored] : found) {
    if (stored.size() < kTimeBytes) return Damaged("entry");
    TimedKey(static_cast<int64_t>(ReadU64(stored)), key_group, key, &scratch_);
    SR_RETURN_IF_ERROR(store_->Delete(kTimerGroup, scratch_, ns));
    SR_RETURN_IF_ERROR(store_->Delete(key_group, key, ns));
    Removed();
    SR_RETURN_IF_ERROR(take(key_group, key, ns, std::string_view(stored).substr(kTimeBytes)));
  }
  return Status::Ok();
}

Status WindowSpill::TakeDue(int64_t to, size_t max, const Taker& take) {
  if (size_ == 0 || min_timer_ > to) return Status::Ok();
  struct Due {
    std::string timed_key, ns, value;  // value: by time only
  };
  std::vector<Due> due;
  int64_t next = kMaxTimestamp;  // the first timer after what is taken
  SR_RETURN_IF_ERROR(store_->Scan(
      by_time_ ? kByTimeGroup : kTimerGroup, "",
      [&](std::string_view k, std::string_view ns, std::string_view value, bool* stop) -> Status {
        TimedEntry t;
        if (!ParseTimedKey(k, &t)) return Damaged("key");
        if (t.time > to || due.size() >= max) {
          next = t.time;
          *stop = true;
          return Status::Ok();
        }
        due.push_back(
            {std::string(k), std::string(ns), by_time_ ? std::string(value) : std::string()});
        return Status::Ok();
      }));
  std::string stored;
  for (Due& d : due) {
    TimedEntry t;
    ParseTimedKey(d.timed_key, &t);
    if (by_time_) {
      SR_RETURN_IF_ERROR(store_->Delete(kByTimeGroup, d.timed_key, d.ns));
    } else {
      bool found = false;
      SR_RETURN_IF_ERROR(store_->Get(t.key_group, t.key, d.ns, &stored, &found));
      if (!found || stored.size() < kTimeBytes) return Damaged("timer without its window");
      SR_RETURN_IF_ERROR(store_->Delete(kTimerGroup, d.timed_key, d.ns));
      SR_RETURN_IF_ERROR(store_->Delete(t.key_group, t.key, d.ns));
      d.value.assign(stored, kTimeBytes, std::string::npos);
    }
    Removed();
    SR_RETURN_IF_ERROR(take(t.key_group, t.key, d.ns, d.value));
  }
  if (size_ > 0) min_timer_ = next;
  return Status::Ok();
}

Result<WindowSpillView> WindowSpill::Snapshot() {
  WindowSpillView view;
  view.by_time = by_time_;
  view.store = store_;
  SR_ASSIGN_OR_RETURN(view.snapshot, store_->Snapshot());
  return view;
}

}  // namespace streamrun
