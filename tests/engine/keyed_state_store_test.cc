// The behaviour every KeyedStateStore shares, run against each implementation.
#include <doctest/doctest.h>

#include <memory>
#include <string>
#include <vector>

#include "engine/lmdb_state_store.h"
#include "engine/memory_state_store.h"
#include "tests/engine/temp_dir.h"

namespace streamrun {
namespace {

struct MemoryStore {
  static constexpr const char* kName = "memory";
  std::unique_ptr<KeyedStateStore> Make() { return std::make_unique<MemoryStateStore>(); }
};

struct LmdbStore {
  static constexpr const char* kName = "lmdb";
  TempDir dir;
  std::unique_ptr<KeyedStateStore> Make() {
    auto store = LmdbStateStore::Open(dir / "env");
    REQUIRE_MESSAGE(store.ok(), store.status().message());
    return std::move(store).value();
  }
};

size_t CountEntries(const KeyedStateStore& store) {
  size_t n = 0;
  auto st =
      store.ForEach(0, 0xFFFF, [&](int, std::string_view, std::string_view, std::string_view) {
        ++n;
        return Status::Ok();
      });
  CHECK(st.ok());
  return n;
}

std::vector<std::string> Listing(const KeyedStateStore& store, int first, int last) {
  std::vector<std::string> seen;
  auto st = store.ForEach(
      first, last, [&](int kg, std::string_view key, std::string_view ns, std::string_view value) {
        seen.push_back(std::to_string(kg) + "|" + std::string(key) + "|" + std::string(ns) + "|" +
                       std::string(value));
        return Status::Ok();
      });
  CHECK(st.ok());
  return seen;
}

}  // namespace

TEST_CASE_TEMPLATE("state store: put, get, delete and clear", F, MemoryStore, LmdbStore) {
  F factory;
  INFO(F::kName);
  auto store = factory.Make();
  CHECK(store->Put(3, "k", "ns", "v1").ok());
  CHECK(store->Put(3, "k", "ns", "v2").ok());
  std::string v;
  bool found = false;
  CHECK(store->Get(3, "k", "ns", &v, &found).ok());
  CHECK(found);
  CHECK(v == "v2");
  CHECK(store->Get(4, "k", "ns", &v, &found).ok());
  CHECK_FALSE(found);
  CHECK(store->Get(3, "k", "n", &v, &found).ok());
  CHECK_FALSE(found);
  CHECK(store->Delete(3, "k", "ns").ok());
  CHECK(store->Delete(3, "k", "ns").ok());
  CHECK(store->Get(3, "k", "ns", &v, &found).ok());
  CHECK_FALSE(found);
  CHECK(store->Put(1, "a", "", "x").ok());
  CHECK(store->Put(2, "b", "", "").ok());
  CHECK(store->Get(2, "b", "", &v, &found).ok());
  CHECK(found);
  CHECK(v.empty());
  CHECK(store->Clear().ok());
  CHECK(CountEntries(*store) == 0);
  CHECK(store->Put(1, "a", "", "after clear").ok());
  CHECK(store->Get(1, "a", "", &v, &found).ok());
  CHECK(v == "after clear");
}

TEST_CASE_TEMPLATE("state store: ForEach visits a key-group range in order", F, MemoryStore,
                   LmdbStore) {
  F factory;
  INFO(F::kName);
  auto store = factory.Make();
  CHECK(store->Put(5, "b", "2", "x").ok());
  CHECK(store->Put(5, "b", "1", "x").ok());
  CHECK(store->Put(5, "a", "9", "x").ok());
  CHECK(store->Put(2, "z", "", "x").ok());
  CHECK(store->Put(9, "c", "", "x").ok());
  CHECK(Listing(*store, 2, 5) ==
        std::vector<std::string>{"2|z||x", "5|a|9|x", "5|b|1|x", "5|b|2|x"});
  CHECK(Listing(*store, 6, 8).empty());
  CHECK(Listing(*store, 9, 9) == std::vector<std::string>{"9|c||x"});
  auto stop = store->ForEach(0, 127, [](int, std::string_view, std::string_view, std::string_view) {
    return Status::RuntimeError("stop");
  });
  CHECK(stop.message() == "stop");
}

TEST_CASE_TEMPLATE("state store: order is by key bytes, then namespace, whatever the lengths", F,
                   MemoryStore, LmdbStore) {
  F factory;
  INFO(F::kName);
  auto store = factory.Make();
  // A plain concatenation of key and namespace would put ("a", "z") after ("ab", ""), and
  // ("a\0", ..) next to ("a", "\0.."): the encoding must keep tuple order.
  using namespace std::string_literals;
  CHECK(store->Put(7, "ab", "", "1").ok());
  CHECK(store->Put(7, "a", "z", "2").ok());
  CHECK(store->Put(7, "a\0"s, "", "3").ok());
  CHECK(store->Put(7, "a", "\0\0"s, "4").ok());
  CHECK(store->Put(7, "", "q", "5").ok());
  CHECK(store->Put(256, "a", "", "6").ok());  // the key group's high byte counts too
  CHECK(store->Put(1, "zz", "", "7").ok());
  std::vector<std::string> values;
  auto st =
      store->ForEach(0, 1000, [&](int, std::string_view, std::string_view, std::string_view value) {
        values.emplace_back(value);
        return Status::Ok();
      });
  CHECK(st.ok());
  CHECK(values == std::vector<std::string>{"7", "5", "4", "2", "3", "1", "6"});
  std::string v;
  bool found = false;
  CHECK(store->Get(7, "a\0"s, "", &v, &found).ok());
  CHECK(found);
  CHECK(v == "3");
}

TEST_CASE("memory state store: size counts entries") {
  MemoryStateStore store;
  CHECK(store.Put(1, "a", "", "x").ok());
  CHECK(store.size() == 1);
}

}  // namespace streamrun
