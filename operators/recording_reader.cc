// RecordingReader (see recording_reader.h): one JsonExtractor pass over the line for the fields
// of the format, then checks of their types.
#include "operators/recording_reader.h"

#include "engine/base64.h"

#include <simdjson.h>

#include "engine/dead_letter.h"
#include "engine/json_extract.h"

namespace streamrun {
namespace {

// The fields of a recording line, in the extractor's slot order; the wanted headers follow.
enum Field : size_t {
  kTopic,
  kPartition,
  kOffset,
  kTimestamp,
  kKey,
  kKeyText,
  kKeyB64,
  kHeaders,
  kValue,
  kValueText,
  kValueB64,
  kFieldCount,
};
constexpr std::string_view kFieldNames[kFieldCount] = {
    "topic", "partition", "offset", "timestamp", "key",     "key_text",
    "key_b64", "headers", "value",  "value_text", "value_b64"};

Layout RecordingLayout(const std::vector<std::string>& header_names) {
  Layout layout;
  for (std::string_view name : kFieldNames) layout.push_back({std::string(name)});
  for (const std::string& h : header_names) layout.push_back({"headers", h});
  return layout;
}

// `json` (an object or array) without white space outside strings, in `arena`.
std::string_view Compact(std::string_view json, Arena& arena) {
  char* out = arena.Allocate(json.size());
  size_t len = 0;
  if (simdjson::minify(json.data(), json.size(), out, len) != simdjson::SUCCESS) return json;
  return std::string_view(out, len);
}

// Copies `line` into `buf` followed by the padding the extractor needs; returns the copy.
std::string_view Padded(std::string_view line, std::string& buf) {
  buf.assign(line);
  buf.append(JsonExtractor::padding(), '\0');
  return std::string_view(buf.data(), line.size());
}

// How many of `slots[fields...]` are present (not Missing).
int Present(const std::vector<Value>& slots, std::initializer_list<Field> fields) {
  int n = 0;
  for (Field f : fields) n += slots[f].is_missing() ? 0 : 1;
  return n;
}

}  // namespace

struct RecordingReader::Impl {
  explicit Impl(std::vector<std::string> names)
      : header_names(std::move(names)),
        extractor(RecordingLayout(header_names)),
        slots(kFieldCount + header_names.size()) {}

  bool Fail(std::string* error, std::string message) {
    *error = std::move(message);
    return false;
  }
  bool Expect(Field f, Value::Kind kind, const char* what, std::string* error) {
    const Value& v = slots[f];
    if (v.is_missing() || v.kind() == kind) return true;
    return Fail(error, "'" + std::string(kFieldNames[f]) + "' must be " + what);
  }
  // A JSON value as `key` and header values read: objects and arrays compact.
  Value Normalised(const Value& v) {
    return v.kind() == Value::Kind::kJson ? Value::Json(Compact(v.as_string(), arena)) : v;
  }

  bool Read(std::string_view line, RecordedRecord* out, std::string* error) {
    arena.Reset();
    if (!extractor.Extract(Padded(line, buf), slots.data(), arena, error)) return false;
    if (!Expect(kTopic, Value::Kind::kString, "a string", error) ||
        !Expect(kPartition, Value::Kind::kInt, "an integer", error) ||
        !Expect(kOffset, Value::Kind::kInt, "an integer", error) ||
        !Expect(kTimestamp, Value::Kind::kInt, "an integer (epoch milliseconds)", error) ||
        !Expect(kKeyText, Value::Kind::kString, "a string", error) ||
        !Expect(kKeyB64, Value::Kind::kString, "a string", error) ||
        !Expect(kValueText, Value::Kind::kString, "a string", error) ||
        !Expect(kValueB64, Value::Kind::kString, "a string", error)) {
      return false;
    }
    out->topic = slots[kTopic];
    out->partition = slots[kPartition];
    out->offset = slots[kOffset];
    out->timestamp = slots[kTimestamp];

    const Value& headers = slots[kHeaders];
    out->headers = Value::Missing();
    if (!headers.is_nullish()) {
      if (headers.kind() != Value::Kind::kJson || headers.as_string().front() != '{') {
        return Fail(error, "'headers' must be an object");
      }
      out->headers = Normalised(headers);
    }
    out->header_values.resize(header_names.size());
    for (size_t i = 0; i < header_names.size(); ++i) {
      out->header_values[i] = Normalised(slots[kFieldCount + i]);
    }

    if (Present(slots, {kKey, kKeyText, kKeyB64}) > 1) {
      return Fail(error, "more than one of 'key', 'key_text' and 'key_b64'");
    }
    out->key = Normalised(slots[kKey]);
    if (!slots[kKeyText].is_missing()) out->key = slots[kKeyText];
    if (!slots[kKeyB64].is_missing()) {
      if (auto d = DecodeBase64(slots[kKeyB64].as_string())) {
        decoded = std::move(*d);
      } else {
        return Fail(error, "bad base64 in 'key_b64'");
      }
      out->key = slots[kKeyB64];
    }

    if (Present(slots, {kValue, kValueText, kValueB64}) > 1) {
      return Fail(error, "more than one of 'value', 'value_text' and 'value_b64'");
    }
    out->payload = PayloadKind::kNone;
    out->value = {};
    const Value& value = slots[kValue];
    if (!value.is_nullish()) {
      out->payload = PayloadKind::kJson;
      if (value.kind() == Value::Kind::kJson) {
        out->value = Compact(value.as_string(), arena);
      } else {  // a string, number or boolean: its JSON text
        scalar.clear();
        AppendJson(scalar, value);
        out->value = scalar;
      }
    } else if (!slots[kValueText].is_missing()) {
      out->payload = PayloadKind::kText;
      out->value = slots[kValueText].as_string();
    } else if (!slots[kValueB64].is_missing()) {
      if (auto d = DecodeBase64(slots[kValueB64].as_string())) {
        decoded = std::move(*d);
      } else {
        return Fail(error, "bad base64 in 'value_b64'");
      }
      out->payload = PayloadKind::kBytes;
      out->value = decoded;
    }
    return true;
  }

  std::vector<std::string> header_names;
  JsonExtractor extractor;
  std::vector<Value> slots;
  std::string buf;      // the line being read, and padding
  Arena arena;          // unescaped strings and compact JSON of the line being read
  std::string decoded;  // base64-decoded bytes
  std::string scalar;   // the JSON text of a scalar `value`
};

RecordingReader::RecordingReader(std::vector<std::string> header_names)
    : impl_(std::make_unique<Impl>(std::move(header_names))) {}
RecordingReader::~RecordingReader() = default;

bool RecordingReader::Read(std::string_view line, RecordedRecord* out, std::string* error) {
  return impl_->Read(line, out, error);
}

bool LooksLikeRecordingLine(std::string_view line) {
  const Layout layout = {{"partition"}, {"offset"}, {"value"}, {"value_text"}, {"value_b64"}};
  JsonExtractor extractor(layout);
  std::vector<Value> slots(layout.size());
  std::string buf, error;
  Arena arena;
  if (!extractor.Extract(Padded(line, buf), slots.data(), arena, &error)) return false;
  return !slots[0].is_missing() && !slots[1].is_missing() &&
         (!slots[2].is_missing() || !slots[3].is_missing() || !slots[4].is_missing());
}

}  // namespace streamrun
