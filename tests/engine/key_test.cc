// Tests of key encoding and key groups (engine/key.h).
#include "engine/key.h"

#include <doctest/doctest.h>

#include <set>
#include <string>
#include <vector>

namespace streamrun {

TEST_CASE("key: integral doubles encode like integers, so 1 and 1.0 are the same key") {
  std::string a, b;
  AppendKeyValue(a, Value::Int(1));
  AppendKeyValue(b, Value::Double(1.0));
  CHECK(a == b);
  std::string c;
  AppendKeyValue(c, Value::Double(1.5));
  CHECK(a != c);
}

TEST_CASE("key: missing and null are the same key; strings and numbers differ") {
  std::string a, b, c, d;
  AppendKeyValue(a, Value::Missing());
  AppendKeyValue(b, Value::Null());
  AppendKeyValue(c, Value::String("1"));
  AppendKeyValue(d, Value::Int(1));
  CHECK(a == b);
  CHECK(c != d);
}

TEST_CASE("key: multi-field keys do not run into each other") {
  Value ab[] = {Value::String("ab"), Value::String("c")};
  Value a_bc[] = {Value::String("a"), Value::String("bc")};
  std::string k1, k2;
  EncodeKey(ab, {0, 1}, &k1);
  EncodeKey(a_bc, {0, 1}, &k2);
  CHECK(k1 != k2);
}

TEST_CASE("key: encoded values decode back") {
  std::string key;
  AppendKeyValue(key, Value::String("user-7"));
  AppendKeyValue(key, Value::Int(-42));
  AppendKeyValue(key, Value::Bool(true));
  AppendKeyValue(key, Value::Double(2.5));
  size_t pos = 0;
  Value v;
  REQUIRE(DecodeKeyValue(key, &pos, &v));
  CHECK(v == Value::String("user-7"));
  REQUIRE(DecodeKeyValue(key, &pos, &v));
  CHECK(v == Value::Int(-42));
  REQUIRE(DecodeKeyValue(key, &pos, &v));
  CHECK(v == Value::Bool(true));
  REQUIRE(DecodeKeyValue(key, &pos, &v));
  CHECK(v == Value::Double(2.5));
  CHECK(pos == key.size());
  CHECK_FALSE(DecodeKeyValue(key, &pos, &v));
}

TEST_CASE("key: the hash is stable (stored in checkpoints)") {
  std::string key;
  AppendKeyValue(key, Value::String("u1"));
  // XXH3-64 of the bytes 05 00 00 00 02 'u' '1'. Changing it breaks every savepoint.
  CHECK(key == std::string("\x05\x00\x00\x00\x02u1", 7));
  CHECK(HashKey(key) == 3629700932109047350ULL);
  CHECK(KeyGroupOf(HashKey(key), 128) == static_cast<int>(HashKey(key) % 128));
}

TEST_CASE("key: subtasks own contiguous, complete ranges of key groups") {
  for (int p : {1, 2, 3, 4, 7, 128}) {
    int prev = 0;
    std::set<int> seen;
    for (int kg = 0; kg < 128; ++kg) {
      int s = SubtaskOfKeyGroup(kg, p, 128);
      CHECK(s >= prev);  // contiguous: never goes back
      CHECK(s < p);
      prev = s;
      seen.insert(s);
    }
    CHECK(static_cast<int>(seen.size()) == p);  // every subtask owns some
  }
}

}  // namespace streamrun
