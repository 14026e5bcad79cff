// Tests of dead-letter records (engine/dead_letter.h).
#include "engine/dead_letter.h"

#include <doctest/doctest.h>

namespace streamrun {

TEST_CASE("dead letter: UTF-8 validity") {
  CHECK(IsValidUtf8("plain"));
  CHECK(IsValidUtf8("gr\xC3\xBC\xC3\x9F"));  // grüß
  CHECK(IsValidUtf8("\xF0\x9F\x98\x80"));    // an emoji
  CHECK_FALSE(IsValidUtf8("\xff"));
  CHECK_FALSE(IsValidUtf8("\xC0\xAF"));      // overlong '/'
  CHECK_FALSE(IsValidUtf8("\xED\xA0\x80"));  // a surrogate
  CHECK_FALSE(IsValidUtf8("\xE2\x82"));      // cut sequence
}

TEST_CASE("dead letter: the record names source, offset and reason and keeps the text") {
  BatchPtr b = NewBatch(2);
  Layout layout = {{"offset"}, {"reason"}};
  AppendDeadLetter(*b, layout, {"clicks", "", 3, 120, "{\"a\":", "invalid JSON: truncated"});
  REQUIRE(b->rows.size() == 1);
  CHECK(b->rows[0].raw ==
        R"({"source":"clicks","offset":120,"reason":"invalid JSON: truncated","text":"{\"a\":"})");
  CHECK(b->rows[0].origin == 3);
  CHECK(b->SlotsOf(0)[0] == Value::Int(120));
  CHECK(b->SlotsOf(0)[1] == Value::String("invalid JSON: truncated"));
}

TEST_CASE(
    "dead letter: a step that rejected the record is named; invalid UTF-8 keeps exact bytes") {
  BatchPtr b = NewBatch(0);
  AppendDeadLetter(*b, {}, {"s", "clean", 0, 7, "u\xff", "bad"});
  CHECK(b->rows[0].raw ==
        "{\"source\":\"s\",\"step\":\"clean\",\"offset\":7,\"reason\":\"bad\",\"text\":"
        "\"u\xEF\xBF\xBD\","
        "\"text_b64\":\"df8=\"}");
}

}  // namespace streamrun
