#include "engine/memory_state_store.h"

#include <doctest/doctest.h>

#include <vector>

namespace streamrun {

TEST_CASE("memory state store: put, get, delete and clear") {
  MemoryStateStore store;
  CHECK(store.Put(3, "k", "ns", "v1").ok());
  CHECK(store.Put(3, "k", "ns", "v2").ok());
  std::string v;
  bool found = false;
  CHECK(store.Get(3, "k", "ns", &v, &found).ok());
  CHECK(found);
  CHECK(v == "v2");
  CHECK(store.Get(4, "k", "ns", &v, &found).ok());
  CHECK_FALSE(found);
  CHECK(store.Delete(3, "k", "ns").ok());
  CHECK(store.Delete(3, "k", "ns").ok());
  CHECK(store.Get(3, "k", "ns", &v, &found).ok());
  CHECK_FALSE(found);
  CHECK(store.Put(1, "a", "", "x").ok());
  CHECK(store.Clear().ok());
  CHECK(store.size() == 0);
}

TEST_CASE("memory state store: ForEach visits a key-group range in order") {
  MemoryStateStore store;
  CHECK(store.Put(5, "b", "2", "x").ok());
  CHECK(store.Put(5, "b", "1", "x").ok());
  CHECK(store.Put(5, "a", "9", "x").ok());
  CHECK(store.Put(2, "z", "", "x").ok());
  CHECK(store.Put(9, "c", "", "x").ok());
  std::vector<std::string> seen;
  auto st = store.ForEach(2, 5, [&](int kg, std::string_view key, std::string_view ns,
                                    std::string_view) {
    seen.push_back(std::to_string(kg) + std::string(key) + std::string(ns));
    return Status::Ok();
  });
  CHECK(st.ok());
  CHECK(seen == std::vector<std::string>{"2z", "5a9", "5b1", "5b2"});
  auto stop = store.ForEach(0, 127, [](int, std::string_view, std::string_view, std::string_view) {
    return Status::RuntimeError("stop");
  });
  CHECK(stop.message() == "stop");
}

}  // namespace streamrun
