// WindowSpill: the windows a window subtask evicted from its in-memory table, kept in the
// subtask's LMDB working store (engine/lmdb_state_store.h, STATE_DIR/working/<step>-<subtask>).
//
// The window table is a write-back cache over this store (operators/window_operator.h): when
// the table holds more windows than its share of `state.cache`, cold windows are written here
// and dropped from memory; a record of an evicted window, or the window's timer coming due,
// reads it back. Each open window is either in the table or here, never in both. A job whose
// state fits in the cache never opens a store (the operator opens it at the first eviction).
//
// Every window is stored with its timer: the time it next needs attention (its firing, then its
// clean-up), which the operator can tell from its bounds and its fired flag. Two layouts
// (docs/state-format.md, "The window cache"), chosen by the kind of window:
//  - by time (tumbling and sliding windows, whose bounds a record tells):
//      (kByTimeGroup, time | key group | key, namespace)  ->  state value
//    one entry per window, in timer order: a record's window is one look-up per possible timer
//    (TakeWindow), the windows due by a time one scan from the start (TakeDue).
//  - by key (session windows, whose bounds only the stored windows know):
//      (key group, key, namespace)  ->  u64 timer | state value
//      (kTimerGroup, time | key group | key, namespace)  ->  empty
//    a key's windows are one scan (TakeKey), the windows due by a time a scan of the timers.
// The namespace is the window's start and end (8 bytes big-endian each), the state value that
// of a state file entry (operators/window_operator.h), `time` 8 bytes big-endian with the sign
// bit flipped (so byte order is time order), the key group 2 bytes big-endian. Keys whose
// entries would exceed LMDB's key limit are never evicted (Fits).
//
// Thread safety: belongs to its operator's thread, and so does its LMDB write transaction
// (LMDB binds it to the thread that began it): Flush() before the store changes threads (the
// operator restores on the job's thread and runs on its task's). Snapshot() returns a view that
// another thread may read while the operator goes on; the view keeps the store open. (A job
// cancelled mid-way destroys its operators on the job's thread with a transaction open: it is
// committed there, which leaves LMDB's writer mutex of this store locked; nothing uses it again,
// since every run starts from an empty STATE_DIR/working.)
#pragma once

#include <cstdint>
#include <functional>
#include <initializer_list>
#include <memory>
#include <string>
#include <string_view>

#include "engine/batch.h"
#include "engine/lmdb_state_store.h"
#include "engine/status.h"

namespace streamrun {

// What a checkpoint sees of a WindowSpill (see WindowSpill::Snapshot).
struct WindowSpillView {
  bool by_time = false;
  std::shared_ptr<LmdbStateStore> store;        // keeps the environment open
  std::unique_ptr<LmdbStateSnapshot> snapshot;  // destroyed first: declared after `store`
  // Visits every window as (key group, key, namespace, state value), in no particular order.
  // REQUIRES: snapshot is set.
  Status ForEach(const KeyedStateStore::Visitor& visit) const;
};

class WindowSpill {
 public:
  // Key groups of the store's own entries: above every key group of windows (max_parallelism
  // is at most 32768).
  static constexpr int kByTimeGroup = 0xFFFE;
  static constexpr int kTimerGroup = 0xFFFF;

  // Its LMDB map starts at 1 GiB (address space only: growing it waits for a checkpoint's
  // reader to finish, so it should be rare).
  static constexpr size_t kInitialMapSize = size_t{1} << 30;

  // Creates an empty store in `dir`, removing whatever an earlier run left there. `by_time`:
  // the layout (see above).
  static Result<std::unique_ptr<WindowSpill>> Open(const std::string& dir, bool by_time,
                                                   size_t initial_map_size = kInitialMapSize);

  // Whether a window of `key` can be stored (its entries fit LMDB's key limit).
  bool Fits(std::string_view key) const;
  // Stores a window. REQUIRES: Fits(key); the window is not stored yet.
  Status Put(int key_group, std::string_view key, std::string_view ns, int64_t timer,
             std::string_view value);

  // Receives windows taken out of the store: (key group, key, namespace, state value).
  using Taker = KeyedStateStore::Visitor;
  // By time: takes the window (key, ns) out of the store if it is there with one of `timers`.
  Status TakeWindow(int key_group, std::string_view key, std::string_view ns,
                    std::initializer_list<int64_t> timers, const Taker& take);
  // By key: takes every window of `key` out of the store.
  Status TakeKey(int key_group, std::string_view key, const Taker& take);
  // Takes up to `max` windows whose timer is <= `to` out of the store, in timer order.
  Status TakeDue(int64_t to, size_t max, const Taker& take);

  bool by_time() const { return by_time_; }
  // Windows stored.
  uint64_t size() const { return size_; }
  // No stored window has a timer before this; kMaxTimestamp when none is stored.
  int64_t min_timer() const { return min_timer_; }

  // Commits what is pending. A write transaction belongs to the thread that began it: call this
  // before the store moves to another thread (after restoring, which runs on the job's thread).
  Status Flush() { return store_->Flush(); }

  // Commits what is pending and returns a consistent view of the stored windows, unaffected by
  // later changes. While a view lives, growing the store's map waits for it to end (LMDB cannot
  // remap under a reader): keep views short-lived.
  Result<WindowSpillView> Snapshot();

 private:
  WindowSpill(std::shared_ptr<LmdbStateStore> store, bool by_time)
      : store_(std::move(store)), by_time_(by_time) {}
  void Removed();

  std::shared_ptr<LmdbStateStore> store_;
  const bool by_time_;
  uint64_t size_ = 0;
  int64_t min_timer_ = kMaxTimestamp;
  std::string scratch_;
};

}  // namespace streamrun
