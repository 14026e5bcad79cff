// Tests of the recording reader (operators/recording_reader.h).
#include "operators/recording_reader.h"

#include <doctest/doctest.h>

#include <string>

namespace streamrun {
namespace {

std::string S(const Value& v) { return std::string(v.as_string()); }

TEST_CASE("recording reader: metadata, headers and a JSON value") {
  RecordingReader reader({"trace", "x-id", "absent"});
  RecordedRecord rec;
  std::string error;
  REQUIRE(reader.Read(R"({"topic":"clicks","partition":3,"offset":42,"timestamp":1700000000000,)"
                      R"("key":"u1","headers":{ "trace" : "t-1", "x-id": "7" },)"
                      R"("value":{ "userId" : "u1", "n": [1, 2] }})",
                      &rec, &error));
  CHECK(rec.topic.kind() == Value::Kind::kString);
  CHECK(S(rec.topic) == "clicks");
  CHECK(rec.partition.as_int() == 3);
  CHECK(rec.offset.as_int() == 42);
  CHECK(rec.timestamp.as_int() == 1700000000000);
  CHECK(rec.key.kind() == Value::Kind::kString);
  CHECK(S(rec.key) == "u1");
  CHECK(rec.headers.kind() == Value::Kind::kJson);
  CHECK(S(rec.headers) == R"({"trace":"t-1","x-id":"7"})");
  REQUIRE(rec.header_values.size() == 3);
  CHECK(S(rec.header_values[0]) == "t-1");
  CHECK(S(rec.header_values[1]) == "7");
  CHECK(rec.header_values[2].is_missing());
  CHECK(rec.payload == PayloadKind::kJson);
  CHECK(rec.value == R"({"userId":"u1","n":[1,2]})");  // compact, otherwise as written
}

TEST_CASE("recording reader: every field is optional; other fields are ignored") {
  RecordingReader reader;
  RecordedRecord rec;
  std::string error;
  REQUIRE(reader.Read(R"({"value":{"a":"b c"},"future":[1]})", &rec, &error));
  CHECK(rec.topic.is_missing());
  CHECK(rec.partition.is_missing());
  CHECK(rec.offset.is_missing());
  CHECK(rec.timestamp.is_missing());
  CHECK(rec.key.is_missing());
  CHECK(rec.headers.is_missing());
  CHECK(rec.value == R"({"a":"b c"})");  // spaces inside strings stay
}

TEST_CASE("recording reader: value_text is text; a scalar value is its JSON text") {
  RecordingReader reader;
  RecordedRecord rec;
  std::string error;
  REQUIRE(reader.Read(R"({"offset":1,"value_text":"plain \"text\" line"})", &rec, &error));
  CHECK(rec.payload == PayloadKind::kText);
  CHECK(rec.value == "plain \"text\" line");
  REQUIRE(reader.Read(R"({"value":42})", &rec, &error));
  CHECK(rec.payload == PayloadKind::kJson);
  CHECK(rec.value == "42");
  REQUIRE(reader.Read(R"({"value":null})", &rec, &error));
  CHECK(rec.payload == PayloadKind::kNone);  // a tombstone
}

TEST_CASE("recording reader: value_b64 and key_b64 decode; the key stays its base64 text") {
  RecordingReader reader;
  RecordedRecord rec;
  std::string error;
  REQUIRE(reader.Read(R"({"key_b64":"AP8=","value_b64":"AAEC/w=="})", &rec, &error));
  CHECK(rec.payload == PayloadKind::kBytes);
  CHECK(rec.value == std::string("\x00\x01\x02\xff", 4));
  CHECK(S(rec.key) == "AP8=");
  REQUIRE(reader.Read(R"({"key_text":"k 1","value":{}})", &rec, &error));
  CHECK(S(rec.key) == "k 1");
  REQUIRE(reader.Read(R"({"key":{ "id": 7 },"value":{}})", &rec, &error));
  CHECK(rec.key.kind() == Value::Kind::kJson);
  CHECK(S(rec.key) == R"({"id":7})");
  REQUIRE(reader.Read(R"({"key":12,"value":{}})", &rec, &error));
  CHECK(rec.key.kind() == Value::Kind::kInt);
}

TEST_CASE("recording reader: bad lines say why") {
  RecordingReader reader;
  RecordedRecord rec;
  auto why = [&](const char* line) {
    std::string error;
    CHECK_FALSE(reader.Read(line, &rec, &error));
    return error;
  };
  CHECK(why(R"({"offset":1,"value":{"a":)").rfind("invalid JSON", 0) == 0);
  CHECK(why("not json").rfind("invalid JSON", 0) == 0);
  CHECK(why("[1,2]") == "invalid JSON: not an object");
  CHECK(why(R"({"offset":"42","value":{}})") == "'offset' must be an integer");
  CHECK(why(R"({"partition":1.5,"value":{}})") == "'partition' must be an integer");
  CHECK(why(R"({"timestamp":"2024-05-01T00:00:00Z","value":{}})") ==
        "'timestamp' must be an integer (epoch milliseconds)");
  CHECK(why(R"({"topic":7,"value":{}})") == "'topic' must be a string");
  CHECK(why(R"({"headers":["h"],"value":{}})") == "'headers' must be an object");
  CHECK(why(R"({"value":{},"value_text":"x"})") ==
        "more than one of 'value', 'value_text' and 'value_b64'");
  CHECK(why(R"({"key":"a","key_b64":"YQ==","value":{}})") ==
        "more than one of 'key', 'key_text' and 'key_b64'");
  CHECK(why(R"({"value_b64":"not base64!"})") == "bad base64 in 'value_b64'");
  CHECK(why(R"({"key_b64":"YQ=","value":{}})") == "bad base64 in 'key_b64'");
  CHECK(why(R"({"value_text":3})") == "'value_text' must be a string");
  // The reader goes on after a bad line.
  std::string error;
  CHECK(reader.Read(R"({"offset":2,"value":{"ok":true}})", &rec, &error));
  CHECK(rec.offset.as_int() == 2);
}

TEST_CASE("recording reader: the first line tells a recording from JSON lines") {
  CHECK(LooksLikeRecordingLine(R"({"topic":"t","partition":0,"offset":1,"value":{"a":1}})"));
  CHECK(LooksLikeRecordingLine(R"({"partition":0,"offset":1,"value_text":"x"})"));
  CHECK(LooksLikeRecordingLine(R"({"partition":0,"offset":1,"value_b64":"AA=="})"));
  CHECK_FALSE(LooksLikeRecordingLine(R"({"userId":"u1","ts":1})"));
  CHECK_FALSE(LooksLikeRecordingLine(R"({"partition":0,"offset":1})"));  // no payload
  CHECK_FALSE(LooksLikeRecordingLine(R"({"offset":1,"value":{}})"));
  CHECK_FALSE(LooksLikeRecordingLine("not json"));
}

}  // namespace
}  // namespace streamrun
