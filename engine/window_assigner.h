// Event-time windows: which windows a record belongs to, and how session windows merge.
//
// These follow Flink's TimeWindow and its assigners:
//  - tumbling windows of `size` start at multiples of size from epoch 0 (also before it:
//    the start is size * floor(ts / size));
//  - sliding windows of `size` start at multiples of `slide`; a record belongs to every window
//    [s, s + size) that contains it;
//  - a session record first gets the window [ts, ts + gap); windows that intersect or touch
//    (a.start <= b.end && a.end >= b.start) merge into the window that covers them.
// A window's end is exclusive; its last timestamp ("max timestamp") is end - 1, the watermark at
// which it fires.
#pragma once

#include <cstddef>
#include <cstdint>
#include <limits>
#include <vector>

namespace streamrun {

// Do not reorder: stored in snapshots' descriptions of a window step.
enum class WindowType : uint8_t { kTumbling = 0, kSliding = 1, kSession = 2 };

struct WindowSpec {
  WindowType type = WindowType::kTumbling;
  int64_t size = 0;   // tumbling, sliding (ms, > 0)
  int64_t slide = 0;  // sliding (ms, > 0)
  int64_t gap = 0;    // session (ms, > 0)
};

struct TimeWindow {
  int64_t start = 0;
  int64_t end = 0;  // exclusive

  int64_t max_timestamp() const { return end - 1; }
  // Flink's TimeWindow.intersects: overlapping or touching windows.
  bool Intersects(const TimeWindow& o) const { return start <= o.end && end >= o.start; }
  TimeWindow Cover(const TimeWindow& o) const {
    return {start < o.start ? start : o.start, end > o.end ? end : o.end};
  }
  friend bool operator==(const TimeWindow& a, const TimeWindow& b) {
    return a.start == b.start && a.end == b.end;
  }
};

// a + b, clamped to the int64 range (window ends and cleanup times near the extremes). Inline:
// a window step calls these per record.
inline int64_t SaturatingAdd(int64_t a, int64_t b) {
  int64_t r;
  if (__builtin_add_overflow(a, b, &r)) {
    return b > 0 ? std::numeric_limits<int64_t>::max() : std::numeric_limits<int64_t>::min();
  }
  return r;
}

// The start of the window of length `size` (> 0) that holds `ts`: the largest multiple of size
// that is <= ts (floor division, so negative timestamps work).
inline int64_t WindowStart(int64_t ts, int64_t size) {
  int64_t rem = ts % size;
  if (rem < 0) rem += size;
  return ts - rem;
}

// The windows a record at `ts` belongs to, in increasing start order. For sessions this is the
// record's own window [ts, ts + gap), before merging. Clears `out` first.
void AssignWindows(const WindowSpec& spec, int64_t ts, std::vector<TimeWindow>* out);

// Session merging: `fresh` is the new record's window, `open` the key's session windows (which
// never intersect each other). Returns the window that covers `fresh` and every open window it
// intersects, directly or through another merged window, and lists the indexes into `open` of
// those windows in `merged` (cleared first; empty when nothing merges).
TimeWindow MergeSessions(const std::vector<TimeWindow>& open, const TimeWindow& fresh,
                         std::vector<size_t>* merged);

}  // namespace streamrun
