// Tests of the multiset comparison of sink output (engine/output_compare.h).
#include "engine/output_compare.h"

#include <doctest/doctest.h>

namespace streamrun {
namespace {

TEST_CASE("output compare: JSON lines compare by value, not by text") {
  CHECK(CanonicalLine(R"({ "b": 1, "a": {"y": [1, 2], "x": "s"} })") ==
        R"({"a":{"x":"s","y":[1,2]},"b":1})");
  CHECK(CanonicalLine(R"({"s":"\u0041\/"})") == CanonicalLine(R"({"s":"A/"})"));
  CHECK(CanonicalLine("1.50") == CanonicalLine("1.5"));
  CHECK(CanonicalLine("1e2") == "100.0");
}

TEST_CASE("output compare: integers and numbers with a fraction stay apart") {
  CHECK(CanonicalLine(R"({"n":2})") != CanonicalLine(R"({"n":2.0})"));
  CHECK(CanonicalLine(R"({"n":2.0})") == R"({"n":2.0})");
}

TEST_CASE("output compare: a line that is not JSON compares as text") {
  CHECK(CanonicalLine("plain text") == "plain text");
  CHECK(CanonicalLine("{\"cut\":") == "{\"cut\":");
  CHECK(CanonicalLine("\"caf\xff\"") == "\"caf\xff\"");  // invalid UTF-8 is not JSON
}

TEST_CASE("output compare: lines without empty lines and carriage returns") {
  CHECK(SplitLines("a\r\n\nb\n\n") == std::vector<std::string>{"a", "b"});
  CHECK(SplitLines("a\nb") == std::vector<std::string>{"a", "b"});
  CHECK(SplitLines("").empty());
}

TEST_CASE("output compare: multisets ignore order and count repeats") {
  LineDiff same =
      CompareLineMultisets({R"({"a":1,"b":2})", R"({"a":3})"}, {R"({"a":3})", R"({"b":2, "a":1})"});
  CHECK(same.empty());
  LineDiff d = CompareLineMultisets({R"({"a":1})", R"({"a":1})", R"({"z":0})"},
                                    {R"({"a":1})", R"({"c":9})", R"({"b":5})"});
  CHECK(d.missing == std::vector<std::string>{R"({"a":1})", R"({"z":0})"});
  CHECK(d.unexpected == std::vector<std::string>{R"({"b":5})", R"({"c":9})"});  // sorted
}

}  // namespace
}  // namespace streamrun
