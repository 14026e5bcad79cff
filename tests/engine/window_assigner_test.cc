#include "engine/window_assigner.h"

#include <doctest/doctest.h>

namespace streamrun {

TEST_CASE("window assigner: tumbling windows start at multiples of size from epoch 0") {
  WindowSpec spec{WindowType::kTumbling, 60000, 0, 0};
  std::vector<TimeWindow> out;
  AssignWindows(spec, 0, &out);
  REQUIRE(out.size() == 1);
  CHECK(out[0] == TimeWindow{0, 60000});
  AssignWindows(spec, 59999, &out);
  CHECK(out[0] == TimeWindow{0, 60000});
  AssignWindows(spec, 60000, &out);
  CHECK(out[0] == TimeWindow{60000, 120000});
}

TEST_CASE("window assigner: tumbling windows of negative timestamps use floor division") {
  WindowSpec spec{WindowType::kTumbling, 10, 0, 0};
  std::vector<TimeWindow> out;
  AssignWindows(spec, -1, &out);
  CHECK(out[0] == TimeWindow{-10, 0});
  AssignWindows(spec, -10, &out);
  CHECK(out[0] == TimeWindow{-10, 0});
  AssignWindows(spec, -11, &out);
  CHECK(out[0] == TimeWindow{-20, -10});
  CHECK(WindowStart(-25, 10) == -30);
}

TEST_CASE("window assigner: a sliding record is in every window that contains it") {
  WindowSpec spec{WindowType::kSliding, 10, 5, 0};
  std::vector<TimeWindow> out;
  AssignWindows(spec, 12, &out);
  REQUIRE(out.size() == 2);
  CHECK(out[0] == TimeWindow{5, 15});
  CHECK(out[1] == TimeWindow{10, 20});
  // A slide that does not divide the size (Flink allows it).
  WindowSpec odd{WindowType::kSliding, 10, 3, 0};
  AssignWindows(odd, 9, &out);
  REQUIRE(out.size() == 4);
  CHECK(out[0] == TimeWindow{0, 10});
  CHECK(out[3] == TimeWindow{9, 19});
  AssignWindows(odd, -1, &out);
  CHECK(out.front() == TimeWindow{-9, 1});
  CHECK(out.back() == TimeWindow{-3, 7});
}

TEST_CASE("window assigner: a session record opens [ts, ts + gap)") {
  WindowSpec spec{WindowType::kSession, 0, 0, 30};
  std::vector<TimeWindow> out;
  AssignWindows(spec, 100, &out);
  REQUIRE(out.size() == 1);
  CHECK(out[0] == TimeWindow{100, 130});
}

TEST_CASE("session merging: touching sessions merge") {
  std::vector<TimeWindow> open = {{0, 10}};
  std::vector<size_t> merged;
  TimeWindow cover = MergeSessions(open, {10, 20}, &merged);
  CHECK(cover == TimeWindow{0, 20});
  CHECK(merged == std::vector<size_t>{0});
}

TEST_CASE("session merging: a record after the gap opens its own session") {
  std::vector<TimeWindow> open = {{0, 10}};
  std::vector<size_t> merged;
  TimeWindow cover = MergeSessions(open, {11, 21}, &merged);
  CHECK(cover == TimeWindow{11, 21});
  CHECK(merged.empty());
}

TEST_CASE("session merging: a bridging record merges two sessions") {
  std::vector<TimeWindow> open = {{30, 40}, {0, 10}, {100, 110}};
  std::vector<size_t> merged;
  TimeWindow cover = MergeSessions(open, {15, 25}, &merged);
  CHECK(cover == TimeWindow{15, 25});
  CHECK(merged.empty());
  cover = MergeSessions(open, {8, 32}, &merged);
  CHECK(cover == TimeWindow{0, 40});
  CHECK(merged.size() == 2);
}

TEST_CASE("session merging: the cover can reach a session the record alone does not") {
  // [5, 15) touches [0, 10)... and [15, 20) only through the cover [0, 15).
  std::vector<TimeWindow> open = {{15, 20}, {0, 10}};
  std::vector<size_t> merged;
  TimeWindow cover = MergeSessions(open, {5, 14}, &merged);
  CHECK(cover == TimeWindow{0, 14});
  CHECK(merged == std::vector<size_t>{1});
  cover = MergeSessions(open, {9, 15}, &merged);
  CHECK(cover == TimeWindow{0, 20});
  CHECK(merged.size() == 2);
}

TEST_CASE("window assigner: ends saturate instead of overflowing") {
  WindowSpec spec{WindowType::kSession, 0, 0, 100};
  std::vector<TimeWindow> out;
  AssignWindows(spec, INT64_MAX - 10, &out);
  CHECK(out[0].end == INT64_MAX);
  CHECK(SaturatingAdd(INT64_MIN, -1) == INT64_MIN);
}

}  // namespace streamrun
