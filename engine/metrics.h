// Live metrics of a running job, for `streamrun status`.
//
// Every task thread updates the counters of the nodes it runs (relaxed atomics, once per batch);
// the control server reads them at any time. Times are nanoseconds of the task's thread: `idle`
// is waiting for input, `backpressured` is waiting for a full queue downstream, and the rest of
// the thread's life is `busy`.
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

struct TaskMetrics {
  std::atomic<uint64_t> idle_ns{0};
  std::atomic<uint64_t> backpressured_ns{0};
  std::atomic<int64_t> started_ns{0};  // steady clock, when the thread started
};

inline int64_t SteadyNowNs() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

// Adds the time from construction to destruction to `counter`.
class ScopedTimer {
 public:
  explicit ScopedTimer(std::atomic<uint64_t>* counter) : counter_(counter), start_(SteadyNowNs()) {}
  ~ScopedTimer() {
    if (counter_) counter_->fetch_add(static_cast<uint64_t>(SteadyNowNs() - start_), std::memory_order_relaxed);
  }

 private:
  std::atomic<uint64_t>* counter_;
  int64_t start_;
};

}  // namespace streamrun
