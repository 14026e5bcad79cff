// Tests of the watermark rules (engine/watermark.h).
#include "engine/watermark.h"

#include <doctest/doctest.h>

namespace streamrun {

TEST_CASE("watermark: before any record it is the minimum") {
  WatermarkGenerator gen(5000);
  CHECK(gen.current() == kMinTimestamp);
}

TEST_CASE("watermark: largest event time so far minus out-of-orderness minus 1 ms") {
  WatermarkGenerator gen(5000);
  gen.Observe(100000);
  CHECK(gen.current() == 100000 - 5000 - 1);
  gen.Observe(90000);  // an older record does not move it back
  CHECK(gen.current() == 94999);
  gen.Observe(120000);
  CHECK(gen.current() == 114999);
}

TEST_CASE("watermark: zero out-of-orderness still lags by 1 ms") {
  WatermarkGenerator gen(0);
  gen.Observe(60000);
  // A window [0, 60000) fires at watermark 59999: the record at 60000 fires it.
  CHECK(gen.current() == 59999);
}

TEST_CASE("watermark: the merged watermark is the minimum over inputs") {
  WatermarkMerger m(3);
  CHECK(m.current() == kMinTimestamp);
  m.Advance(0, 100);
  m.Advance(1, 50);
  CHECK(m.current() == kMinTimestamp);  // input 2 has said nothing yet
  CHECK(m.Advance(2, 70) == 50);
  CHECK(m.Advance(1, 200) == 70);
}

TEST_CASE("watermark: a merged input never goes back") {
  WatermarkMerger m(2);
  m.Advance(0, 100);
  m.Advance(1, 100);
  CHECK(m.Advance(0, 10) == 100);
}

TEST_CASE("watermark: an ended input no longer holds the others back") {
  WatermarkMerger m(2);
  m.Advance(0, 100);
  m.Advance(1, kMaxTimestamp);  // input 1 ended
  CHECK(m.current() == 100);
  CHECK(m.Advance(0, kMaxTimestamp) == kMaxTimestamp);
}

}  // namespace streamrun
