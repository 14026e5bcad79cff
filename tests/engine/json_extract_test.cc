#include "engine/json_extract.h"

#include <doctest/doctest.h>

#include <algorithm>
#include <string>
#include <vector>

namespace streamrun {
namespace {

// Holds a line with the padding JsonExtractor needs after it.
struct Padded {
  explicit Padded(std::string_view s) : buf(s) {
    buf.append(JsonExtractor::padding(), 'x');
    len = s.size();
  }
  std::string_view line() const { return std::string_view(buf.data(), len); }
  std::string buf;
  size_t len;
};

struct Extracted {
  bool ok = false;
  std::string error;
  std::vector<Value> slots;
};

Extracted Run(const Layout& layout, const Padded& p, Arena& arena) {
  JsonExtractor ex(layout);
  Extracted out;
  out.slots.resize(layout.size());
  out.ok = ex.Extract(p.line(), out.slots.data(), arena, &out.error);
  return out;
}

TEST_CASE("json_extract: top-level fields of each kind") {
  Arena arena;
  Padded p(
      R"({"s":"abc","i":42,"neg":-7,"d":1.5,"e":1e3,"t":true,"f":false,"n":null,"o":{"x":[1,2]},"a":[1,{"y":2}]})");
  Layout layout = {{"s"}, {"i"}, {"neg"}, {"d"}, {"e"},     {"t"},
                   {"f"}, {"n"}, {"o"},   {"a"}, {"absent"}};
  auto r = Run(layout, p, arena);
  REQUIRE(r.ok);
  CHECK(r.slots[0] == Value::String("abc"));
  CHECK(r.slots[0].as_string().data() >= p.buf.data());  // zero copy: points into the line
  CHECK(r.slots[0].as_string().data() < p.buf.data() + p.len);
  CHECK(r.slots[1].kind() == Value::Kind::kInt);
  CHECK(r.slots[1].as_int() == 42);
  CHECK(r.slots[2].as_int() == -7);
  CHECK(r.slots[3].kind() == Value::Kind::kDouble);
  CHECK(r.slots[3].as_double() == 1.5);
  CHECK(r.slots[4].kind() == Value::Kind::kDouble);
  CHECK(r.slots[4].as_double() == 1000.0);
  CHECK(r.slots[5] == Value::Bool(true));
  CHECK(r.slots[6] == Value::Bool(false));
  CHECK(r.slots[7].kind() == Value::Kind::kNull);
  CHECK(r.slots[8].kind() == Value::Kind::kJson);
  CHECK(r.slots[8].as_string() == R"({"x":[1,2]})");
  CHECK(r.slots[9].as_string() == R"([1,{"y":2}])");
  CHECK(r.slots[10].is_missing());
}

TEST_CASE("json_extract: nested paths descend, other values are skipped") {
  Arena arena;
  Padded p(
      R"({"skip":{"user":{"id":1}},"user":{"name":"x","id":"u1","geo":{"c":"de"}},"z":[{"user":2}]})");
  auto r = Run({{"user", "id"}, {"user", "geo", "c"}, {"user", "nope"}, {"z", "user"}}, p, arena);
  REQUIRE(r.ok);
  CHECK(r.slots[0] == Value::String("u1"));
  CHECK(r.slots[1] == Value::String("de"));
  CHECK(r.slots[2].is_missing());
  CHECK(r.slots[3].is_missing());  // arrays are not descended
}

TEST_CASE("json_extract: a path wanted whole and in parts") {
  Arena arena;
  Padded p(R"({"user":{"id":7,"n":"a"},"k":1})");
  auto r = Run({{"user"}, {"user", "id"}, {"k"}}, p, arena);
  REQUIRE(r.ok);
  CHECK(r.slots[0].as_string() == R"({"id":7,"n":"a"})");
  CHECK(r.slots[1].as_int() == 7);
  CHECK(r.slots[2].as_int() == 1);
}

TEST_CASE("json_extract: nested path under a non-object is missing") {
  Arena arena;
  Padded p(R"({"user":5})");
  auto r = Run({{"user", "id"}}, p, arena);
  REQUIRE(r.ok);
  CHECK(r.slots[0].is_missing());
}

TEST_CASE("json_extract: escaped strings and keys are unescaped into the arena") {
  Arena arena;
  Padded p(R"({"a":"x\"y\n\u00e9","k\u0065y":"v","odd key":1})");
  auto r = Run({{"a"}, {"key"}, {"odd key"}}, p, arena);
  REQUIRE(r.ok);
  CHECK(r.slots[0].as_string() == "x\"y\n\xC3\xA9");
  CHECK(r.slots[1] == Value::String("v"));
  CHECK(r.slots[2].as_int() == 1);
}

TEST_CASE("json_extract: numbers beyond int64 become doubles") {
  Arena arena;
  Padded p(
      R"({"big":18446744073709551615,"huge":123456789012345678901234567890,"max":9223372036854775807,"min":-9223372036854775808})");
  auto r = Run({{"big"}, {"huge"}, {"max"}, {"min"}}, p, arena);
  REQUIRE(r.ok);
  CHECK(r.slots[0].kind() == Value::Kind::kDouble);
  CHECK(r.slots[0].as_double() == doctest::Approx(1.8446744073709552e19));
  CHECK(r.slots[1].kind() == Value::Kind::kDouble);
  CHECK(r.slots[1].as_double() == doctest::Approx(1.2345678901234568e29));
  CHECK(r.slots[2].as_int() == INT64_MAX);
  CHECK(r.slots[3].as_int() == INT64_MIN);
}

TEST_CASE("json_extract: metadata paths are left missing") {
  Arena arena;
  Padded p(R"({"$offset":3,"a":1})");
  auto r = Run({{"$offset"}, {"a"}}, p, arena);
  REQUIRE(r.ok);
  CHECK(r.slots[0].is_missing());
  CHECK(r.slots[1].as_int() == 1);
}

TEST_CASE("json_extract: a path listed twice fills both slots") {
  Arena arena;
  Padded p(R"({"a":1})");
  auto r = Run({{"a"}, {"a"}}, p, arena);
  REQUIRE(r.ok);
  CHECK(r.slots[1].as_int() == 1);
}

TEST_CASE("json_extract: whitespace around the object is fine") {
  Arena arena;
  Padded p("  {\"a\" : 1 }  ");
  auto r = Run({{"a"}}, p, arena);
  REQUIRE(r.ok);
  CHECK(r.slots[0].as_int() == 1);
}

TEST_CASE("json_extract: every kind of broken line is rejected") {
  Arena arena;
  struct Case {
    const char* text;
    const char* reason;
  };
  const Case cases[] = {
      {R"({"a":1,"b":)", "invalid JSON"},
      {R"({"a":"x)", "invalid JSON"},
      {R"({"a":1)", "invalid JSON"},
      {R"({"a":{"b":1})", "invalid JSON"},
      {R"({"z":[1,2,{"q":1})", "invalid JSON"},
      {R"({"a":1}})", "invalid JSON"},
      {R"({"a":1} x)", "invalid JSON"},
      {R"({"a":1}{"b":2})", "invalid JSON"},
      {"[1,2]", "invalid JSON"},
      {"42", "invalid JSON"},
      {R"("str")", "invalid JSON"},
      {"", "invalid JSON"},
      {"   ", "invalid JSON"},
      {"{\"a\":\"\xff\xfe\"}", "invalid UTF-8"},
      {"{\"z\":\"\xc3\"}", "invalid UTF-8"},
      {R"({"a":tru})", "invalid JSON"},
      {R"({"a":01})", "invalid JSON"},
      {R"({a:1})", "invalid JSON"},
  };
  for (const auto& c : cases) {
    std::string text = c.text;
    CAPTURE(text);
    auto r = Run({{"a"}}, Padded(c.text), arena);
    CHECK_FALSE(r.ok);
    CHECK(r.error.rfind(c.reason, 0) == 0);
    CHECK(r.slots[0].is_missing());
  }
}

TEST_CASE("json_extract: padding bytes after the line do not matter") {
  Arena arena;
  std::string buf = R"({"a":1}{"a":"garbage that follows in the buffer)";
  buf.append(JsonExtractor::padding(), '{');
  JsonExtractor ex({{"a"}});
  Value slot;
  std::string error;
  CHECK(ex.Extract(std::string_view(buf.data(), 7), &slot, arena, &error));
  CHECK(slot.as_int() == 1);
}

TEST_CASE("json_extract: one extractor reused over many lines") {
  Arena arena;
  JsonExtractor ex({{"u"}, {"n"}});
  std::vector<Value> slots(2);
  std::string error;
  for (int i = 0; i < 100; ++i) {
    Padded p(i % 3 == 0 ? std::string("{\"u\":")
                        : "{\"u\":\"k" + std::to_string(i) + "\",\"n\":" + std::to_string(i) + "}");
    bool ok = ex.Extract(p.line(), slots.data(), arena, &error);
    CHECK(ok == (i % 3 != 0));
    if (ok) CHECK(slots[1].as_int() == i);
  }
}

// Splits `text` into lines as the file source does and extracts each both ways: many lines at a
// time (BeginLines/ExtractLine) and alone (Extract). The results must be the same.
void CheckManyMatchesAlone(const Layout& layout, const std::string& text) {
  std::string buf = text;
  buf.append(JsonExtractor::padding(), 'x');
  Arena arena;
  JsonExtractor many(layout);
  JsonExtractor alone(layout);
  std::vector<Value> a(layout.size()), b(layout.size());
  std::string ea, eb;
  many.BeginLines(buf.data(), text.size());
  size_t start = 0, lines = 0;
  while (start < text.size()) {
    size_t stop = text.find('\n', start);
    if (stop == std::string::npos) stop = text.size();
    size_t end = stop;
    if (end > start && buf[end - 1] == '\r') --end;
    if (end > start) {
      std::string_view line(buf.data() + start, end - start);
      const char* next = buf.data() + std::min(stop + 1, text.size());
      ea.clear();
      eb.clear();
      bool ok_many = many.ExtractLine(line, next, a.data(), arena, &ea);
      bool ok_alone = alone.Extract(line, b.data(), arena, &eb);
      CAPTURE(std::string(line));
      REQUIRE(ok_many == ok_alone);
      CHECK(ea == eb);
      for (size_t i = 0; i < layout.size(); ++i) CHECK(a[i] == b[i]);
      ++lines;
    }
    start = stop + 1;
  }
  CHECK(lines > 0);
}

TEST_CASE("json_extract: lines read many at a time give what each gives alone") {
  const std::vector<std::string> broken = {
      R"({"a":1,"b":)",
      R"({"a":"x)",
      R"({"a":1)",
      R"({"a":{"b":1})",
      R"({"z":[1,2,{"q":1})",
      R"({"a":1}})",
      R"({"a":1} x)",
      R"({"a":1}{"b":2})",
      "[1,2]",
      "42",
      R"("str")",
      "   ",
      "{\"a\":\"\xff\xfe\"}",
      "{\"z\":\"\xc3\"}",
      R"({"a":tru})",
      R"({"a":01})",
      R"({a:1})",
      R"(  {"a":7}  )",
      R"({"a":"q\"uote"})",
      R"({"a":"}\n{"})",
      R"(})",
      R"({)",
      "\"",
  };
  const Layout layout = {{"a"}, {"u"}, {"n", "x"}};
  auto good = [](int i) {
    return "{\"ts\":" + std::to_string(1700000000000 + i) + ",\"u\":\"u" + std::to_string(i % 977) +
           "\",\"n\":{\"x\":" + std::to_string(i) + "},\"a\":\"view\"}";
  };
  SUBCASE("all good, across many stage-1 windows") {
    std::string text;
    for (int i = 0; i < 20000; ++i) text += good(i) + (i % 7 == 0 ? "\r\n" : "\n");
    CheckManyMatchesAlone(layout, text);
  }
  SUBCASE("each broken line among good ones, at the start, middle and end") {
    for (const auto& b : broken) {
      for (int where : {0, 1, 100, 2999}) {
        std::string text;
        for (int i = 0; i < 3000; ++i) {
          if (i == where) text += b + "\n";
          text += good(i) + "\n";
        }
        text += b;  // and as the last line, without a newline
        CheckManyMatchesAlone(layout, text);
      }
    }
  }
  SUBCASE("many broken lines, densely and in runs") {
    std::string text;
    for (int i = 0; i < 20000; ++i) {
      bool bad = i % 13 == 0 || (i > 5000 && i < 9000) || i % 1000 < 3;
      text += (bad ? broken[static_cast<size_t>(i) % broken.size()] : good(i)) + "\n";
    }
    CheckManyMatchesAlone(layout, text);
  }
}

// Lines without a backslash take a faster path (keys compared as raw bytes, strings ended at
// their closing quote); these pin its results to what the JSON means.
TEST_CASE("json_extract: keys and strings with and without escapes on the line") {
  Arena arena;
  SUBCASE("an escaped key still names a wanted field") {
    Padded p(R"({"act\u0069on":"buy","n":1})");
    auto r = Run({{"action"}, {"n"}}, p, arena);
    REQUIRE(r.ok);
    CHECK(r.slots[0] == Value::String("buy"));
    CHECK(r.slots[1].as_int() == 1);
  }
  SUBCASE("a backslash elsewhere on the line") {
    Padded p(R"({"x":"a\\b","action":"buy"})");
    auto r = Run({{"action"}, {"x"}}, p, arena);
    REQUIRE(r.ok);
    CHECK(r.slots[0] == Value::String("buy"));
    CHECK(r.slots[1] == Value::String("a\\b"));
  }
  SUBCASE("whitespace between a string and the next token") {
    Padded p("{\"a\" : \"x\"  ,\t\"b\":\"y\" }");
    auto r = Run({{"a"}, {"b"}}, p, arena);
    REQUIRE(r.ok);
    CHECK(r.slots[0] == Value::String("x"));
    CHECK(r.slots[1] == Value::String("y"));
  }
  SUBCASE("empty strings and keys") {
    Padded p(R"({"":"e","a":""})");
    auto r = Run({{""}, {"a"}}, p, arena);
    REQUIRE(r.ok);
    CHECK(r.slots[0] == Value::String("e"));
    CHECK(r.slots[1] == Value::String(""));
  }
  SUBCASE("a key that is a prefix of a wanted one, or has one as its prefix") {
    Padded p(R"({"ab":1,"abcd":2,"longer_key_namf":3,"longer_key_name_":4})");
    auto r = Run({{"abc"}, {"longer_key_name"}}, p, arena);
    REQUIRE(r.ok);
    CHECK(r.slots[0].kind() == Value::Kind::kMissing);
    CHECK(r.slots[1].kind() == Value::Kind::kMissing);
    Padded q(R"({"abc":5,"longer_key_name":6})");
    auto s = Run({{"abc"}, {"longer_key_name"}}, q, arena);
    REQUIRE(s.ok);
    CHECK(s.slots[0].as_int() == 5);
    CHECK(s.slots[1].as_int() == 6);
  }
  SUBCASE("a wanted key with a quote in it matches only its escaped form") {
    // The raw bytes after the key "a" are `":"x"`: a wanted key `a":` must not match them.
    Padded p(R"({"a":"x"})");
    auto r = Run({{"a\":"}, {"a"}}, p, arena);
    REQUIRE(r.ok);
    CHECK(r.slots[0].kind() == Value::Kind::kMissing);
    CHECK(r.slots[1] == Value::String("x"));
    Padded q(R"({"a\":":7})");
    auto s = Run({{"a\":"}, {"a"}}, q, arena);
    REQUIRE(s.ok);
    CHECK(s.slots[0].as_int() == 7);
    CHECK(s.slots[1].kind() == Value::Kind::kMissing);
  }
  SUBCASE("many lines at a time, escaped lines among plain ones") {
    // Every third line spells its key and value with escapes; expected values by construction.
    std::string text;
    for (int i = 0; i < 3000; ++i) {
      if (i % 3 == 0) {
        text += "{\"n\":" + std::to_string(i) + ",\"k\\u0065y\":\"v\\u00e9" + std::to_string(i) +
                "\"}\n";
      } else {
        text += "{\"n\":" + std::to_string(i) + ",\"key\":\"v" + std::to_string(i) + "\"}\n";
      }
    }
    std::string buf = text;
    buf.append(JsonExtractor::padding(), 'x');
    JsonExtractor ex({{"key"}, {"n"}});
    ex.BeginLines(buf.data(), text.size());
    std::vector<Value> slots(2);
    std::string error;
    size_t start = 0;
    for (int i = 0; i < 3000; ++i) {
      const size_t stop = text.find('\n', start);
      std::string_view line(buf.data() + start, stop - start);
      REQUIRE(ex.ExtractLine(line, buf.data() + stop + 1, slots.data(), arena, &error));
      const std::string want = (i % 3 == 0 ? "v\xC3\xA9" : "v") + std::to_string(i);
      CHECK(slots[0].as_string() == want);
      CHECK(slots[1].as_int() == i);
      start = stop + 1;
    }
  }
}

}  // namespace
}  // namespace streamrun
