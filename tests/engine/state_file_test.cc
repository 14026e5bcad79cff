// State files: what a stateful subtask writes at a checkpoint, read back by key-group range.
#include "engine/state_file.h"

#include <doctest/doctest.h>

#include <string>
#include <tuple>
#include <vector>

namespace streamrun {
namespace {

using Entry = std::tuple<int, std::string, std::string, std::string>;

std::vector<Entry> ReadAll(std::string_view bytes, int maxp, int first, int last, Status* st) {
  std::vector<Entry> out;
  *st = ReadStateFile(bytes, "f", maxp, first, last,
                      [&](int kg, std::string_view k, std::string_view ns, std::string_view v) {
                        out.emplace_back(kg, std::string(k), std::string(ns), std::string(v));
                        return Status::Ok();
                      });
  return out;
}

TEST_CASE("state file: entries come back with their key groups, filtered by range") {
  StateFileBuilder b(128);
  b.Add(3, "k3", "ns", "v3");
  b.Add(100, std::string("k\0x", 3), "", "");
  b.Add(64, "k64", "n", std::string(1000, 'x'));
  CHECK(b.entries() == 3);
  std::string bytes = b.Finish();
  Status st;
  auto all = ReadAll(bytes, 128, 0, 127, &st);
  REQUIRE(st.ok());
  REQUIRE(all.size() == 3);
  CHECK(all[0] == Entry{3, "k3", "ns", "v3"});
  CHECK(std::get<1>(all[1]) == std::string("k\0x", 3));
  CHECK(std::get<3>(all[2]).size() == 1000);
  auto low = ReadAll(bytes, 128, 0, 63, &st);
  REQUIRE(st.ok());
  REQUIRE(low.size() == 1);
  CHECK(std::get<0>(low[0]) == 3);
  auto high = ReadAll(bytes, 128, 64, 127, &st);
  CHECK(high.size() == 2);
}

TEST_CASE("state file: an empty file has only its header and end mark") {
  StateFileBuilder b(128);
  std::string bytes = b.Finish();
  CHECK(bytes.size() == 9);
  Status st;
  CHECK(ReadAll(bytes, 128, 0, 127, &st).empty());
  CHECK(st.ok());
}

TEST_CASE("state file: truncation anywhere is detected") {
  StateFileBuilder b(128);
  b.Add(1, "key", "ns", "value");
  b.Add(2, "key2", "ns", "value2");
  std::string bytes = b.Finish();
  for (size_t cut = 0; cut < bytes.size(); ++cut) {
    Status st;
    ReadAll(bytes.substr(0, cut), 128, 0, 127, &st);
    CHECK_MESSAGE(!st.ok(), "cut at " << cut);
  }
}

TEST_CASE("state file: another max_parallelism, a newer version and garbage are refused") {
  StateFileBuilder b(64);
  b.Add(1, "k", "", "v");
  std::string bytes = b.Finish();
  Status st;
  ReadAll(bytes, 128, 0, 127, &st);
  CHECK(st.message().find("max_parallelism 64") != std::string::npos);
  std::string newer = bytes;
  newer[4] = 9;
  ReadAll(newer, 64, 0, 63, &st);
  CHECK(st.message().find("newer streamrun") != std::string::npos);
  ReadAll("not a state file", 64, 0, 63, &st);
  CHECK(st.message().find("not a streamrun state file") != std::string::npos);
  std::string trailing = bytes + "x";
  ReadAll(trailing, 64, 0, 63, &st);
  CHECK(!st.ok());
}

TEST_CASE("state file reader: ForEach spans every file of a step") {
  StateFileBuilder a(128), b(128);
  a.Add(0, "a", "", "1");
  a.Add(127, "b", "", "2");
  b.Add(5, "c", "", "3");
  StateFileReader reader({{"0.state", a.Finish()}, {"1.state", b.Finish()}}, 128);
  std::vector<std::string> keys;
  REQUIRE(reader
              .ForEach(0, 63,
                       [&](int, std::string_view k, std::string_view, std::string_view) {
                         keys.emplace_back(k);
                         return Status::Ok();
                       })
              .ok());
  CHECK(keys == std::vector<std::string>{"a", "c"});
  CHECK(!reader.Put(0, "x", "", "y").ok());
}

}  // namespace
}  // namespace streamrun
