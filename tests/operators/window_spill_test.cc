// WindowSpill: the window cache's LMDB store, in both layouts.
#include "operators/window_spill.h"

#include <doctest/doctest.h>

#include <string>
#include <vector>

#include "engine/byte_codec.h"
#include "tests/engine/temp_dir.h"

namespace streamrun {
namespace {

std::string Ns(int64_t start, int64_t end) {
  std::string ns;
  PutI64(ns, start);
  PutI64(ns, end);
  return ns;
}

// Collects what a Take* hands over as "kg|key|start|value".
struct Taken {
  WindowSpill::Taker taker() {
    return [this](int kg, std::string_view key, std::string_view ns, std::string_view value) {
      ByteReader r(ns);
      int64_t start = 0;
      r.GetI64(&start);
      got.push_back(std::to_string(kg) + "|" + std::string(key) + "|" + std::to_string(start) +
                    "|" + std::string(value));
      return Status::Ok();
    };
  }
  std::vector<std::string> got;
};

}  // namespace

TEST_CASE(
    "window spill: by time, a window comes back by its timer, and due windows in timer order") {
  TempDir dir;
  auto spill = WindowSpill::Open(dir / "w", /*by_time=*/true);
  REQUIRE(spill.ok());
  WindowSpill& s = **spill;
  // Key "a\0b" has a zero byte; times are negative and positive.
  const std::string zero("a\0b", 3);
  REQUIRE(s.Put(3, zero, Ns(-20, -10), -11, "v1").ok());
  REQUIRE(s.Put(4, "b", Ns(0, 10), 9, "v2").ok());
  REQUIRE(s.Put(5, "c", Ns(0, 10), 14, "v3").ok());  // fired: cleaned up at 9 + 5
  REQUIRE(s.Put(6, "d", Ns(10, 20), 19, "v4").ok());
  CHECK(s.size() == 4);
  CHECK(s.min_timer() == -11);

  Taken t;
  // The wrong timer finds nothing; the window's own timer finds it, once.
  REQUIRE(s.TakeWindow(5, "c", Ns(0, 10), {9}, t.taker()).ok());
  CHECK(t.got.empty());
  REQUIRE(s.TakeWindow(5, "c", Ns(0, 10), {9, 14}, t.taker()).ok());
  REQUIRE(s.TakeWindow(5, "c", Ns(0, 10), {9, 14}, t.taker()).ok());
  CHECK(t.got == std::vector<std::string>{"5|c|0|v3"});

  t.got.clear();
  REQUIRE(s.TakeDue(9, 1, t.taker()).ok());  // at most one
  CHECK(t.got == std::vector<std::string>{"3|" + zero + "|-20|v1"});
  REQUIRE(s.TakeDue(9, 10, t.taker()).ok());
  CHECK(t.got.size() == 2);
  CHECK(t.got[1] == "4|b|0|v2");
  CHECK(s.size() == 1);
  CHECK(s.min_timer() == 19);

  // A snapshot sees what was there, whatever comes later.
  auto view = s.Snapshot();
  REQUIRE(view.ok());
  REQUIRE(s.Put(7, "e", Ns(20, 30), 29, "v5").ok());
  std::vector<std::string> seen;
  REQUIRE(view->ForEach([&](int kg, std::string_view key, std::string_view, std::string_view v) {
                seen.push_back(std::to_string(kg) + std::string(key) + std::string(v));
                return Status::Ok();
              })
              .ok());
  CHECK(seen == std::vector<std::string>{"6dv4"});
}

TEST_CASE("window spill: by key, a key's windows come back together with their timers gone") {
  TempDir dir;
  auto spill = WindowSpill::Open(dir / "w", /*by_time=*/false);
  REQUIRE(spill.ok());
  WindowSpill& s = **spill;
  REQUIRE(s.Put(1, "ab", Ns(0, 5), 4, "x").ok());
  REQUIRE(s.Put(1, "ab", Ns(10, 15), 14, "y").ok());
  REQUIRE(s.Put(1, "abc", Ns(0, 5), 4, "z").ok());  // a longer key with the same start
  REQUIRE(s.Put(1, "a", Ns(0, 5), 4, "w").ok());

  Taken t;
  REQUIRE(s.TakeKey(1, "ab", t.taker()).ok());
  CHECK(t.got == std::vector<std::string>{"1|ab|0|x", "1|ab|10|y"});
  CHECK(s.size() == 2);
  // Their timers went with them: only the other keys come due.
  t.got.clear();
  REQUIRE(s.TakeDue(100, 100, t.taker()).ok());
  CHECK(t.got.size() == 2);
  CHECK(s.size() == 0);
  CHECK(s.min_timer() == kMaxTimestamp);
}

TEST_CASE("window spill: a store larger than its first map grows") {
  TempDir dir;
  auto spill = WindowSpill::Open(dir / "w", /*by_time=*/true, /*initial_map_size=*/1 << 20);
  REQUIRE(spill.ok());
  // 1 MiB of map: 12,000 values of 1 KiB need more.
  const std::string value(1 << 10, 'v');
  for (int i = 0; i < 12000; ++i) {
    REQUIRE((*spill)->Put(i % 128, "k" + std::to_string(i), Ns(0, 10), 9, value).ok());
  }
  Taken t;
  REQUIRE((*spill)->TakeWindow(5, "k11909", Ns(0, 10), {9}, t.taker()).ok());
  CHECK(t.got.size() == 1);
}

}  // namespace streamrun
