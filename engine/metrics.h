// Live metrics of a running job, for `streamrun status`.
//
// Every task thread updates the counters of the nodes it runs (relaxed atomics, once per batch);
// the control server reads them at any time. Times are nanoseconds of the task's thread: `idle`
// is waiting for input, `backpressured` is waiting for a full queue downstream, and the rest of
// the thread's life is `busy`. Waits in progress count up to the moment they are read.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>

#include "engine/batch.h"

namespace streamrun {

struct NodeMetrics {
  std::atomic<uint64_t> records_in{0};
  std::atomic<uint64_t> records_out{0};
  std::atomic<int64_t> watermark{kMinTimestamp};
};

inline int64_t SteadyNowNs() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

// The time a task's thread spent in one kind of wait: the finished waits, and the start of the
// one in progress, so that a long wait shows in `status` while it lasts (a source blocked on a
// full queue for minutes is backpressured all that time, not busy until the queue frees).
struct WaitTime {
  std::atomic<uint64_t> total_ns{0};
  std::atomic<int64_t> since_ns{0};  // steady clock; 0: not waiting

  // The time waited up to `now`, the wait in progress included.
  uint64_t Read(int64_t now) const {
    uint64_t total = total_ns.load(std::memory_order_relaxed);
    int64_t since = since_ns.load(std::memory_order_relaxed);
    if (since > 0 && now > since) total += static_cast<uint64_t>(now - since);
    return total;
  }
};

struct TaskMetrics {
  WaitTime idle;
  WaitTime backpressured;
  std::atomic<int64_t> started_ns{0};  // steady clock, when the thread started
};

// Counts the time from construction to destruction as a wait of `wait` (nothing when null).
// A reader may miss the wait's last moments while it ends (the start is cleared first), never
// count them twice.
// A wait that does not fit a scope: Begin, then End (both on the thread that owns `wait`).
inline void BeginWait(WaitTime* wait) {
  wait->since_ns.store(SteadyNowNs(), std::memory_order_relaxed);
}
inline void EndWait(WaitTime* wait) {
  int64_t since = wait->since_ns.exchange(0, std::memory_order_relaxed);
  if (since > 0) {
    wait->total_ns.fetch_add(static_cast<uint64_t>(SteadyNowNs() - since),
                             std::memory_order_relaxed);
  }
}

class ScopedWait {
 public:
  explicit ScopedWait(WaitTime* wait) : wait_(wait), start_(SteadyNowNs()) {
    if (wait_) wait_->since_ns.store(start_, std::memory_order_relaxed);
  }
  ~ScopedWait() {
    if (!wait_) return;
    wait_->since_ns.store(0, std::memory_order_relaxed);
    wait_->total_ns.fetch_add(static_cast<uint64_t>(SteadyNowNs() - start_),
                              std::memory_order_relaxed);
  }
  ScopedWait(const ScopedWait&) = delete;
  ScopedWait& operator=(const ScopedWait&) = delete;

 private:
  WaitTime* wait_;
  int64_t start_;
};

}  // namespace streamrun
