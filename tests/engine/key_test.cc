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

TEST_CASE("key: every kind encodes to fixed bytes (stored in checkpoints)") {
  // Kind byte (value.h: null 1, bool 2, int 3, double 4, string 5, json 6), then the payload
  // big-endian: the layout docs/state-format.md describes, written out by hand.
  auto enc = [](const Value& v) {
    std::string k;
    AppendKeyValue(k, v);
    return k;
  };
  CHECK(enc(Value::Null()) == std::string("\x01", 1));
  CHECK(enc(Value::Bool(true)) == std::string("\x02\x01", 2));
  CHECK(enc(Value::Bool(false)) == std::string("\x02\x00", 2));
  CHECK(enc(Value::Int(0x0102030405060708)) ==
        std::string("\x03\x01\x02\x03\x04\x05\x06\x07\x08", 9));
  CHECK(enc(Value::Int(-2)) == std::string("\x03\xff\xff\xff\xff\xff\xff\xff\xfe", 9));
  CHECK(enc(Value::Double(-3.0)) == std::string("\x03\xff\xff\xff\xff\xff\xff\xff\xfd", 9));
  // 1.5 is 0x3FF8000000000000.
  CHECK(enc(Value::Double(1.5)) == std::string("\x04\x3f\xf8\x00\x00\x00\x00\x00\x00", 9));
  const std::string long_text(300, 'x');
  CHECK(enc(Value::String(long_text)) == std::string("\x05\x00\x00\x01\x2c", 5) + long_text);
  CHECK(enc(Value::Json("[1]")) == std::string("\x06\x00\x00\x00\x03[1]", 8));
  // Appended after what is there.
  std::string two = enc(Value::Int(1));
  AppendKeyValue(two, Value::String("a"));
  CHECK(two == std::string("\x03\x00\x00\x00\x00\x00\x00\x00\x01\x05\x00\x00\x00\x01"
                           "a",
                           15));
}

TEST_CASE("key: EncodeKey writes the same bytes as AppendKeyValue, into a reused buffer") {
  // The expected bytes are written out from the format (tag, 4-byte big-endian length, bytes),
  // not by AppendKeyValue: the one-field and multi-field paths write in place, and strings of 8
  // to 16 bytes are copied in two overlapping words. Every length around those edges, into one
  // buffer that grows and shrinks between keys, as a window's scratch key does.
  auto expected = [](const std::string& text) {
    std::string k = "\x05";
    k += static_cast<char>((text.size() >> 24) & 0xff);
    k += static_cast<char>((text.size() >> 16) & 0xff);
    k += static_cast<char>((text.size() >> 8) & 0xff);
    k += static_cast<char>(text.size() & 0xff);
    return k + text;
  };
  std::string out = "stale bytes that must not survive";
  for (size_t len : {0, 1, 2, 3, 4, 5, 7, 8, 9, 15, 16, 17, 40, 3, 12, 6, 300, 0}) {
    std::string text;
    for (size_t i = 0; i < len; ++i) text += static_cast<char>('a' + (i * 7 + len) % 26);
    Value one[] = {Value::String(text)};
    EncodeKey(one, {0}, &out);
    CHECK(out == expected(text));
    Value two[] = {Value::Int(5), Value::String(text)};
    EncodeKey(two, {1, 0}, &out);
    CHECK(out == expected(text) + std::string("\x03\x00\x00\x00\x00\x00\x00\x00\x05", 9));
  }
  // A slot the stream does not carry (-1) is missing, which encodes as null.
  Value none[] = {Value::Int(1)};
  EncodeKey(none, {-1}, &out);
  CHECK(out == std::string("\x01", 1));
  EncodeKey(none, {-1, 0}, &out);
  CHECK(out == std::string("\x01\x03\x00\x00\x00\x00\x00\x00\x00\x01", 10));
}

TEST_CASE("key: EqualShort agrees with memcmp at every length and differing byte") {
  // Lengths of every class EqualShort has (0 to 3, 4 to 7, 8 to 16, longer); a difference at
  // each position, so the overlapping loads must cover every byte.
  for (size_t n = 0; n <= 24; ++n) {
    std::string a(n, 'k');
    for (size_t i = 0; i < n; ++i) a[i] = static_cast<char>('a' + i);
    std::string b = a;
    CHECK(EqualShort(a.data(), b.data(), n));
    for (size_t i = 0; i < n; ++i) {
      b = a;
      b[i] = static_cast<char>(b[i] ^ 0x20);
      CHECK_MESSAGE(!EqualShort(a.data(), b.data(), n), "n=" << n << " i=" << i);
    }
  }
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
