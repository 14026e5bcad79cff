// WindowTable: open addressing, segments, and copy-on-write views.
#include "operators/window_table.h"

#include <doctest/doctest.h>

#include <string>
#include <thread>
#include <vector>

namespace streamrun {
namespace {

std::string KeyOf(uint32_t i) {
  // Every 7th key is too long to be inline.
  std::string k = "k" + std::to_string(i);
  if (i % 7 == 0) k += std::string(40, 'x');
  return k;
}

uint64_t HashOf(uint32_t i) { return WindowHash(i * 0x9E3779B97F4A7C15ULL + 1, 0); }

// Entries for keys 0..n-1 (window [0, 10)), counter = key number, one accumulator = 2 * number.
std::vector<uint32_t> Fill(WindowTable& t, uint32_t n) {
  std::vector<uint32_t> ids;
  for (uint32_t i = 0; i < n; ++i) {
    uint32_t e = t.Insert(HashOf(i), KeyOf(i), 0, 10, true);
    t.Mut(e).counter = i;
    t.MutAccs(e)[0].count = 2 * i;
    ids.push_back(e);
  }
  return ids;
}

}  // namespace

TEST_CASE("window table: entries span several segments and are found again") {
  WindowTable t;
  t.Init(1);
  const uint32_t n = kSegmentEntries * 2 + 100;
  auto ids = Fill(t, n);
  CHECK(t.live() == n);
  CHECK(t.capacity() >= n);
  for (uint32_t i = 0; i < n; i += 997) {
    uint32_t e = t.Find(HashOf(i), KeyOf(i), 0);
    REQUIRE(e == ids[i]);
    CHECK(t.Key(e) == KeyOf(i));
    CHECK(t.At(e).counter == i);
    CHECK(t.Accs(e)[0].count == 2 * i);
  }
  t.Erase(ids[5]);
  CHECK(t.Find(HashOf(5), KeyOf(5), 0) == kNoEntry);
  CHECK(t.live() == n - 1);
}

TEST_CASE("window table: a captured view keeps the entries as they were while the table changes") {
  WindowTable t;
  t.Init(1);
  const uint32_t n = kSegmentEntries + 500;  // two segments
  auto ids = Fill(t, n);
  WindowTableView view = t.Capture();
  CHECK(view.live() == n);

  // Change, erase and add entries in both segments.
  t.Mut(ids[1]).counter = -1;
  t.MutAccs(ids[kSegmentEntries + 3])[0].count = -1;
  t.Erase(ids[14]);                                          // a long key
  uint32_t fresh = t.Insert(HashOf(n), "new", 0, 10, true);  // reuses entry ids[14]
  CHECK(fresh == ids[14]);
  CHECK(t.copies() == 2);

  // The view is what Capture saw.
  CHECK(view.At(ids[1]).counter == 1);
  CHECK(view.Accs(ids[kSegmentEntries + 3])[0].count == 2 * (kSegmentEntries + 3));
  CHECK(view.IsLive(ids[14]));
  CHECK(view.Key(ids[14]) == KeyOf(14));
  size_t live = 0;
  for (uint32_t e = 0; e < view.capacity(); ++e) live += view.IsLive(e) ? 1 : 0;
  CHECK(live == n);
  // The table has the changes.
  CHECK(t.At(ids[1]).counter == -1);
  CHECK(t.Key(fresh) == "new");
  CHECK(t.Find(HashOf(14), KeyOf(14), 0) == kNoEntry);

  // Once the view is gone, writes go in place again.
  view = WindowTableView();
  t.Mut(ids[2]).counter = -2;
  t.Mut(ids[kSegmentEntries + 4]).counter = -2;
  CHECK(t.copies() == 2);
  // A second capture copies again, into the released segments.
  WindowTableView again = t.Capture();
  t.Mut(ids[3]).counter = -3;
  CHECK(t.copies() == 3);
  CHECK(again.At(ids[3]).counter == 3);
  CHECK(again.At(ids[2]).counter == -2);
}

TEST_CASE("window table: a view is read on another thread while the table is written") {
  WindowTable t;
  t.Init(0, /*reserve_copies=*/true);
  const uint32_t n = kSegmentEntries * 3;
  std::vector<uint32_t> ids;
  for (uint32_t i = 0; i < n; ++i) {
    ids.push_back(t.Insert(HashOf(i), KeyOf(i), 0, 10, true));
    t.Mut(ids.back()).counter = i;
  }
  WindowTableView view = t.Capture();
  int64_t sum = 0;
  std::thread reader([&] {
    for (uint32_t e = 0; e < view.capacity(); ++e) {
      if (view.IsLive(e)) sum += view.At(e).counter;
    }
  });
  for (uint32_t i = 0; i < n; i += 3) t.Mut(ids[i]).counter += 1000000;
  for (uint32_t i = 1; i < n; i += 5) t.Erase(ids[i]);
  reader.join();
  CHECK(sum == static_cast<int64_t>(n) * (n - 1) / 2);
}

TEST_CASE("window table: copies made ahead on another thread are taken, each segment copied once") {
  WindowTable t;
  t.Init(1, /*reserve_copies=*/true);
  const uint32_t n = kSegmentEntries * 6;
  auto ids = Fill(t, n);
  for (int round = 0; round < 3; ++round) {
    CAPTURE(round);
    const uint64_t before = t.copies() + t.taken_copies();
    WindowTableView view = t.Capture();
    std::thread copier([&] { view.CopyAhead(); });
    // Write every segment, from the first: the copier goes from the last.
    for (uint32_t i = 0; i < n; i += kSegmentEntries / 4) {
      t.Mut(ids[i]).counter += 1000;
      t.MutAccs(ids[i])[0].count += 1000;
    }
    copier.join();
    CHECK(t.copies() + t.taken_copies() - before == 6);
    // The view is as captured; the table has every write.
    for (uint32_t i = 0; i < n; i += kSegmentEntries / 4) {
      CHECK(view.At(ids[i]).counter == static_cast<int64_t>(i) + 1000 * round);
      CHECK(view.Accs(ids[i])[0].count == static_cast<int64_t>(2 * i) + 1000 * round);
      CHECK(t.At(ids[i]).counter == static_cast<int64_t>(i) + 1000 * (round + 1));
      CHECK(t.Key(ids[i]) == KeyOf(i));
    }
  }
  // Copied ahead before any write: the table takes them all and copies nothing itself.
  const uint64_t own = t.copies(), taken = t.taken_copies();
  WindowTableView view = t.Capture();
  view.CopyAhead();
  for (uint32_t i = 0; i < n; i += kSegmentEntries) t.Mut(ids[i]).counter = -1;
  CHECK(t.copies() == own);
  CHECK(t.taken_copies() == taken + 6);
  CHECK(view.At(ids[0]).counter == 3000);
}

}  // namespace streamrun
