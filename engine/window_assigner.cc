// Window assignment and session merging (see window_assigner.h).
#include "engine/window_assigner.h"

#include <limits>

namespace streamrun {

void AssignWindows(const WindowSpec& spec, int64_t ts, std::vector<TimeWindow>* out) {
  out->clear();
  switch (spec.type) {
    case WindowType::kTumbling: {
      int64_t start = WindowStart(ts, spec.size);
      out->push_back({start, SaturatingAdd(start, spec.size)});
      return;
    }
    case WindowType::kSliding: {
      // The last window holding ts starts at the last multiple of slide <= ts; earlier ones start
      // slide apart while they still reach ts (start + size > ts).
      int64_t last = WindowStart(ts, spec.slide);
      int64_t first = last;
      while (true) {
        int64_t prev;
        if (__builtin_sub_overflow(first, spec.slide, &prev)) break;
        if (SaturatingAdd(prev, spec.size) <= ts) break;
        first = prev;
      }
      for (int64_t s = first;; s += spec.slide) {
        out->push_back({s, SaturatingAdd(s, spec.size)});
        if (s == last) break;
      }
      return;
    }
    case WindowType::kSession:
      out->push_back({ts, SaturatingAdd(ts, spec.gap)});
      return;
  }
}

TimeWindow MergeSessions(const std::vector<TimeWindow>& open, const TimeWindow& fresh,
                         std::vector<size_t>* merged) {
  merged->clear();
  TimeWindow cover = fresh;
  // Repeat until nothing more joins: the cover can grow to reach a window `fresh` alone did not.
  bool grew = true;
  while (grew) {
    grew = false;
    for (size_t i = 0; i < open.size(); ++i) {
      bool taken = false;
      for (size_t m : *merged) taken = taken || m == i;
      if (taken || !cover.Intersects(open[i])) continue;
      merged->push_back(i);
      TimeWindow next = cover.Cover(open[i]);
      grew = grew || !(next == cover);
      cover = next;
    }
  }
  return cover;
}

}  // namespace streamrun
