// Tests of recording lines (engine/recording.h).
#include "engine/recording.h"

#include <doctest/doctest.h>

#include <string>
#include <utility>
#include <vector>

namespace streamrun {
namespace {

// An owning copy of a record, to compare after the decoder's views are gone.
struct Owned {
  std::string topic;
  int32_t partition = -1;
  int64_t offset = -1;
  std::optional<int64_t> timestamp;
  std::optional<std::string> key, value;
  std::vector<std::pair<std::string, std::optional<std::string>>> headers;
  bool operator==(const Owned&) const = default;
};

Owned Own(const RecordingRecord& r) {
  Owned o{std::string(r.topic), r.partition, r.offset, r.timestamp, {}, {}, {}};
  if (r.key) o.key = std::string(*r.key);
  if (r.value) o.value = std::string(*r.value);
  for (const auto& h : r.headers) {
    o.headers.emplace_back(
        std::string(h.name),
        h.value ? std::optional<std::string>(std::string(*h.value)) : std::nullopt);
  }
  return o;
}

std::string Encode(const RecordingRecord& r) {
  RecordingEncoder encoder;
  std::string line;
  encoder.Append(line, r);
  return line;
}

// Encodes `r`, checks the line is `expected` (when given), decodes it and checks every field
// came back.
void RoundTrip(const RecordingRecord& r, const std::string& expected = "") {
  std::string line = Encode(r);
  REQUIRE(!line.empty());
  CHECK(line.back() == '\n');
  if (!expected.empty()) CHECK(line == expected + "\n");
  RecordingDecoder decoder;
  RecordingRecord back;
  Status st = decoder.Decode(std::string_view(line).substr(0, line.size() - 1), &back);
  REQUIRE_MESSAGE(st.ok(), st.message());
  CHECK(Own(back) == Own(r));
}

std::string DecodeError(std::string_view line) {
  RecordingDecoder decoder;
  RecordingRecord r;
  Status st = decoder.Decode(line, &r);
  return st.ok() ? "" : st.message();
}

}  // namespace

TEST_CASE("recording: a JSON value is written as JSON, exactly as its bytes") {
  RecordingRecord r;
  r.topic = "t";
  r.partition = 0;
  r.offset = 42;
  r.timestamp = 1700000000000;
  r.key = "u1";
  r.headers = {{"h", "v"}};
  r.value = R"({"a": 1.50, "b":[true,null]})";
  RoundTrip(r, R"({"topic":"t","partition":0,"offset":42,"timestamp":1700000000000,"key":"u1",)"
               R"("headers":{"h":"v"},"value":{"a": 1.50, "b":[true,null]}})");
  for (std::string_view v :
       {"17", "-2.5e3", "\"a string\"", "[]", "true", "12345678901234567890123"}) {
    r.value = v;
    RoundTrip(r);
  }
}

TEST_CASE("recording: text that is not one JSON value goes to value_text") {
  RecordingRecord r;
  r.value = "plain text, gr\xC3\xBC\xC3\x9F";
  RoundTrip(r, "{\"value_text\":\"plain text, gr\xC3\xBC\xC3\x9F\"}");
  // Each of these is valid UTF-8 but would not read back as the same bytes from "value".
  for (std::string_view v : {"", " {}", "{} ", "{\n\"a\":1}", "{\"a\":1} {\"b\":2}", "null",
                             "{\"a\":", "nul", "tab\there"}) {
    r.value = v;
    RecordingEncoder encoder;
    CHECK(encoder.ValueFormFor(r.value) == PayloadForm::kText);
    RoundTrip(r);
  }
}

TEST_CASE("recording: bytes that are not UTF-8 go to value_b64 and key_b64") {
  RecordingRecord r;
  r.key = std::string_view("k\xff", 2);
  r.value = std::string_view("\x00\x01\xfe\xff", 4);
  RoundTrip(r, R"({"key_b64":"a/8=","value_b64":"AAH+/w=="})");
  RecordingDecoder decoder;
  RecordingRecord back;
  REQUIRE(decoder.Decode(R"({"value_b64":"AAH+/w=="})", &back).ok());
  CHECK(back.value_form == PayloadForm::kBase64);
}

TEST_CASE("recording: a null key is left out, a null value is written as null") {
  RecordingRecord r;
  r.topic = "t";
  RoundTrip(r, R"({"topic":"t","value":null})");
  RecordingDecoder decoder;
  RecordingRecord back;
  REQUIRE(decoder.Decode(R"({"key":null})", &back).ok());
  CHECK_FALSE(back.key);
  CHECK_FALSE(back.value);
  CHECK(back.value_form == PayloadForm::kNull);
  // An empty key is not a null key.
  r.key = "";
  RoundTrip(r, R"({"topic":"t","key":"","value":null})");
}

TEST_CASE("recording: headers keep order, repeated names, null and binary values") {
  RecordingRecord r;
  r.headers = {{"a", "1"}, {"b", std::nullopt}, {"c", std::string_view("\xff", 1)}};
  r.value = "1";
  RoundTrip(r, R"({"headers":{"a":"1","b":null,"c":{"b64":"/w=="}},"value":1})");
  r.headers = {{"a", "1"}, {"a", "2"}};
  RoundTrip(r, R"({"headers":[["a","1"],["a","2"]],"value":1})");
}

TEST_CASE("recording: decoding gives the forms and tolerates hand-written lines") {
  RecordingDecoder decoder;
  RecordingRecord r;
  REQUIRE(decoder.Decode("  {\"value\" : { \"a\" : 1 } , \"key\": 7 }  \r", &r).ok());
  CHECK(r.value == std::string_view("{ \"a\" : 1 }"));
  CHECK(r.value_form == PayloadForm::kJson);
  CHECK(r.key == std::string_view("7"));
  REQUIRE(decoder.Decode(R"({"value_text":"a\nb","key":"x\u00fc"})", &r).ok());
  CHECK(r.value == std::string_view("a\nb"));
  CHECK(r.value_form == PayloadForm::kText);
  CHECK(r.key == std::string_view("x\xC3\xBC"));
  CHECK(r.partition == -1);
  CHECK(r.offset == -1);
  CHECK_FALSE(r.timestamp);
}

TEST_CASE("recording: views of one line survive decoding its later fields") {
  RecordingDecoder decoder;
  RecordingRecord r;
  REQUIRE(
      decoder.Decode(R"({"key_b64":"AQI=","headers":{"x":{"b64":"AwQ="}},"value_b64":"BQY="})", &r)
          .ok());
  CHECK(r.key == std::string_view("\x01\x02", 2));
  CHECK(r.headers.at(0).value == std::string_view("\x03\x04", 2));
  CHECK(r.value == std::string_view("\x05\x06", 2));
}

TEST_CASE("recording: bad lines are rejected with the reason") {
  CHECK(DecodeError("") == "empty line");
  CHECK(DecodeError("[1]") == "not a JSON object");
  CHECK(DecodeError(R"({"value":1)").find("invalid JSON") == 0);
  CHECK(DecodeError(R"({"value":1} x)").find("invalid JSON") == 0);
  CHECK(DecodeError(R"({"vaule":1})") == "unknown field 'vaule'; did you mean 'value'?");
  CHECK(DecodeError(R"({"value":1,"value":2})") == "field 'value' given twice");
  CHECK(DecodeError(R"({"value":1,"value_text":"1"})") ==
        "give the value once: as 'value', 'value_text' or 'value_b64'");
  CHECK(DecodeError(R"({"key":"a","key_b64":"YQ=="})") ==
        "give the key once: as 'key' or as 'key_b64'");
  CHECK(DecodeError(R"({"partition":-1})") ==
        "field 'partition' must be an integer from 0 to 2147483647");
  CHECK(DecodeError(R"({"partition":"0"})").find("field 'partition' must be an integer") == 0);
  CHECK(DecodeError(R"({"offset":1.5})").find("field 'offset' must be an integer") == 0);
  CHECK(DecodeError(R"({"topic":1})") == "field 'topic' must be a string");
  CHECK(DecodeError(R"({"value_b64":"not base64"})") == "field 'value_b64' is not valid base64");
  CHECK(DecodeError(R"({"value":{"a":}})").find("field 'value': invalid JSON") == 0);
  CHECK(DecodeError(R"({"headers":[["a"]]})").find("field 'headers' must be") == 0);
  CHECK(DecodeError(R"({"headers":{"a":1}})").find("header 'a' must be a string, null or") == 0);
  CHECK(DecodeError("{\"value_text\":\"\xff\"}") == "invalid UTF-8");
}

TEST_CASE("recording: a key given as another JSON value is that value's exact text") {
  RecordingDecoder decoder;
  RecordingRecord r;
  REQUIRE(decoder.Decode(R"({"key":{ "id": 7 },"value":{}})", &r).ok());
  CHECK(r.key == std::string_view(R"({ "id": 7 })"));
  REQUIRE(decoder.Decode(R"({"key":12.50,"value":{}})", &r).ok());
  CHECK(r.key == std::string_view("12.50"));
  REQUIRE(decoder.Decode(R"({"key":null,"value":{}})", &r).ok());
  CHECK_FALSE(r.key);
}

TEST_CASE("recording: a decoder reused for many lines forgets the previous line's fields") {
  RecordingDecoder decoder;
  RecordingRecord r;
  REQUIRE(decoder
              .Decode(R"({"topic":"t","partition":2,"offset":9,"timestamp":5,"key":"k",)"
                      R"("headers":{"a":"1"},"value_text":"x"})",
                      &r)
              .ok());
  CHECK(r.headers.size() == 1);
  REQUIRE(decoder.Decode(R"({"value":{"b":2}})", &r).ok());
  CHECK(Own(r) == Own(RecordingRecord{.value = R"({"b":2})"}));
  CHECK(r.value_form == PayloadForm::kJson);
  CHECK_FALSE(decoder.Decode(R"({"value":1,"bad":2})", &r).ok());
  REQUIRE(decoder.Decode("{}", &r).ok());
  CHECK(r.value_form == PayloadForm::kNull);
  CHECK_FALSE(r.value);
}

TEST_CASE("recording: DecodePadded reads a line in place, views pointing into it") {
  std::string buf = R"({"key":"u1","value":{"a":1}})";
  const size_t size = buf.size();
  buf.append(RecordingDecoder::kPadding, 'x');  // padding: its content does not matter
  const std::string_view line(buf.data(), size);
  RecordingDecoder decoder;
  RecordingRecord r;
  REQUIRE(decoder.DecodePadded(line, &r).ok());
  CHECK(r.value == std::string_view(R"({"a":1})"));
  CHECK(r.value->data() >= line.data());
  CHECK(r.value->data() + r.value->size() <= line.data() + line.size());
  CHECK(r.key == std::string_view("u1"));
}

TEST_CASE("recording: a structure check leaves a value's details to the reader that parses it") {
  // kFull checks every byte of the value; kStructure only that it is one balanced value, as a
  // JSON line's skipped fields are: the source that asks for it extracts the value's fields next.
  const char* line = R"({"value":{"a":[1 2]}})";
  RecordingRecord r;
  RecordingDecoder full;
  Status st = full.Decode(line, &r);
  CHECK(st.message().find("field 'value': invalid JSON") == 0);
  RecordingDecoder structure(RecordingDecoder::ValueCheck::kStructure);
  REQUIRE(structure.Decode(line, &r).ok());
  CHECK(r.value == std::string_view(R"({"a":[1 2]})"));
  // Cut JSON is caught either way.
  CHECK_FALSE(structure.Decode(R"({"value":{"a":[1,2})", &r).ok());
}

TEST_CASE("recording: the first line tells a recording from JSON lines") {
  CHECK(LooksLikeRecordingLine(R"({"topic":"t","partition":0,"offset":1,"value":{"a":1}})"));
  CHECK(LooksLikeRecordingLine(R"({"partition":0,"offset":1,"value_text":"x"})"));
  CHECK(LooksLikeRecordingLine(R"({"partition":0,"offset":1,"value_b64":"AA=="})"));
  CHECK_FALSE(LooksLikeRecordingLine(R"({"userId":"u1","ts":1})"));
  CHECK_FALSE(LooksLikeRecordingLine(R"({"partition":0,"offset":1})"));  // no payload
  CHECK_FALSE(LooksLikeRecordingLine(R"({"offset":1,"value":{}})"));
  CHECK_FALSE(LooksLikeRecordingLine(R"({"value":{"partition":0,"offset":1,"value":1}})"));
  CHECK_FALSE(LooksLikeRecordingLine("not json"));
  CHECK_FALSE(LooksLikeRecordingLine(""));
}

}  // namespace streamrun
