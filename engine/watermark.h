// Watermarks: how event time advances.
//
// A source's watermark before a record is the largest event time among the records before it,
// minus `max_out_of_orderness`, minus 1 ms (kMinTimestamp before the first record). Every row
// carries that value (Row::wm), so an operator decides lateness exactly as a single-threaded run
// in input order would, whatever the batching and threading. A window fires when the watermark
// reaches its end minus 1 ms. When an input ends, its watermark becomes kMaxTimestamp.
//
// An operator with several inputs has as watermark the minimum of its inputs' watermarks
// (WatermarkMerger).
#pragma once

#include <algorithm>
#include <cstdint>
#include <vector>

#include "engine/batch.h"

namespace streamrun {

// The bounded-out-of-orderness watermark of one source (or one split of it).
class WatermarkGenerator {
 public:
  explicit WatermarkGenerator(int64_t max_out_of_orderness_ms = 0)
      : delay_(max_out_of_orderness_ms) {}

  // The watermark before the next record.
  int64_t current() const {
    return max_ts_ == kMinTimestamp ? kMinTimestamp : max_ts_ - delay_ - 1;
  }
  // The watermark that event time `max_ts` (the largest seen so far) gives.
  int64_t WatermarkFor(int64_t max_ts) const {
    return max_ts == kMinTimestamp ? kMinTimestamp : max_ts - delay_ - 1;
  }
  void Observe(int64_t ts) { max_ts_ = std::max(max_ts_, ts); }
  int64_t max_timestamp() const { return max_ts_; }
  void set_max_timestamp(int64_t ts) { max_ts_ = ts; }

 private:
  int64_t delay_;
  int64_t max_ts_ = kMinTimestamp;
};

// The minimum over several inputs' watermarks. Inputs are numbered 0..n-1.
class WatermarkMerger {
 public:
  explicit WatermarkMerger(size_t inputs) : wms_(inputs, kMinTimestamp) {}
  // Input `i` has advanced to `wm` (a smaller value than before is ignored). Returns the merged
  // watermark.
  int64_t Advance(size_t i, int64_t wm) {
    if (wm > wms_[i]) wms_[i] = wm;
    return current();
  }
  int64_t current() const { return *std::min_element(wms_.begin(), wms_.end()); }
  size_t inputs() const { return wms_.size(); }

 private:
  std::vector<int64_t> wms_;
};

}  // namespace streamrun
