// Recording lines (see recording.h and docs/recording-format.md).
#include "engine/recording.h"

#include <simdjson.h>

#include <deque>
#include <string>

#include "engine/base64.h"
#include "engine/spelling.h"
#include "engine/value.h"

namespace streamrun {

namespace od = simdjson::ondemand;

namespace {

bool IsJsonSpace(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r'; }

std::string_view TrimRight(std::string_view s) {
  while (!s.empty() && IsJsonSpace(s.back())) s.remove_suffix(1);
  return s;
}

std::string JsonError(simdjson::error_code err) {
  switch (err) {
    case simdjson::UTF8_ERROR:
      return "invalid UTF-8";
    case simdjson::EMPTY:
      return "empty line";
    case simdjson::TRAILING_CONTENT:
      return "invalid JSON: text after the object";
    default:
      return std::string("invalid JSON: ") + simdjson::error_message(err);
  }
}

// A header value as the encoder writes it: a string, null, or {"b64": "..."}.
void AppendHeaderValue(std::string& out, const std::optional<std::string_view>& value) {
  if (!value) {
    out += "null";
  } else if (IsValidUtf8(*value)) {
    AppendJsonString(out, *value);
  } else {
    out += "{\"b64\":\"" + Base64(*value) + "\"}";
  }
}

bool NamesRepeat(const std::vector<RecordingHeader>& headers) {
  for (size_t i = 0; i < headers.size(); ++i) {
    for (size_t j = 0; j < i; ++j) {
      if (headers[i].name == headers[j].name) return true;
    }
  }
  return false;
}

// The fields of a line. Do not change the names: on disk.
enum Field : uint8_t {
  kTopic,
  kPartition,
  kOffset,
  kTimestamp,
  kKey,
  kKeyB64,
  kHeaders,
  kValue,
  kValueText,
  kValueB64,
  kFieldCount,
};
constexpr std::string_view kFieldNames[kFieldCount] = {
    "topic",   "partition", "offset", "timestamp",  "key",
    "key_b64", "headers",   "value",  "value_text", "value_b64"};

// The field called `name`, or kFieldCount.
Field FieldNamed(std::string_view name) {
  for (uint8_t i = 0; i < kFieldCount; ++i) {
    if (kFieldNames[i] == name) return static_cast<Field>(i);
  }
  return kFieldCount;
}

std::string FieldWhat(Field f) { return "field '" + std::string(kFieldNames[f]) + "'"; }

}  // namespace

struct RecordingEncoder::Impl {
  simdjson::dom::parser parser;  // checks whether a value is one JSON value
};

RecordingEncoder::RecordingEncoder() : impl_(std::make_unique<Impl>()) {}
RecordingEncoder::~RecordingEncoder() = default;

PayloadForm RecordingEncoder::ValueFormFor(std::optional<std::string_view> bytes) {
  if (!bytes) return PayloadForm::kNull;
  const std::string_view b = *bytes;
  // Written as it is, the value must give back the same bytes and stay on one line: no
  // whitespace around it (the decoder cannot tell it from the line's), no raw line break (in
  // valid JSON one can only be whitespace between tokens).
  bool json = !b.empty() && !IsJsonSpace(b.front()) && !IsJsonSpace(b.back()) &&
              b.find_first_of("\r\n") == std::string_view::npos && b != "null";
  if (json) {
    simdjson::dom::element element;
    json = impl_->parser.parse(b.data(), b.size(), true).get(element) == simdjson::SUCCESS;
  }
  if (json) return PayloadForm::kJson;
  return IsValidUtf8(b) ? PayloadForm::kText : PayloadForm::kBase64;
}

void RecordingEncoder::Append(std::string& out, const RecordingRecord& r) {
  out += '{';
  bool first = true;
  auto field = [&](const char* name) {
    if (!first) out += ',';
    first = false;
    out += '"';
    out += name;
    out += "\":";
  };
  if (!r.topic.empty()) {
    field("topic");
    AppendJsonString(out, r.topic);
  }
  if (r.partition >= 0) {
    field("partition");
    out += std::to_string(r.partition);
  }
  if (r.offset >= 0) {
    field("offset");
    out += std::to_string(r.offset);
  }
  if (r.timestamp) {
    field("timestamp");
    out += std::to_string(*r.timestamp);
  }
  if (r.key) {
    if (IsValidUtf8(*r.key)) {
      field("key");
      AppendJsonString(out, *r.key);
    } else {
      field("key_b64");
      out += '"' + Base64(*r.key) + '"';
    }
  }
  if (!r.headers.empty()) {
    field("headers");
    const bool pairs = NamesRepeat(r.headers);
    out += pairs ? '[' : '{';
    for (size_t i = 0; i < r.headers.size(); ++i) {
      if (i > 0) out += ',';
      if (pairs) out += '[';
      AppendJsonString(out, r.headers[i].name);
      out += pairs ? ',' : ':';
      AppendHeaderValue(out, r.headers[i].value);
      if (pairs) out += ']';
    }
    out += pairs ? ']' : '}';
  }
  switch (ValueFormFor(r.value)) {
    case PayloadForm::kNull:
      field("value");
      out += "null";
      break;
    case PayloadForm::kJson:
      field("value");
      out += *r.value;
      break;
    case PayloadForm::kText:
      field("value_text");
      AppendJsonString(out, *r.value);
      break;
    case PayloadForm::kBase64:
      field("value_b64");
      out += '"' + Base64(*r.value) + '"';
      break;
  }
  out += "}\n";
}

struct RecordingDecoder::Impl {
  explicit Impl(ValueCheck check) : value_check(check) {}

  const ValueCheck value_check;
  od::parser parser;
  simdjson::dom::parser checker;  // validates the raw JSON of a value or key in full
  std::string line;               // Decode's copy of the line, with simdjson's padding after it
  std::deque<std::string> bytes;  // decoded base64 (a deque: its strings never move)

  static Status Fail(std::string reason) { return Status::DataError(std::move(reason)); }
  static Status FieldFail(Field f, std::string_view problem) {
    return Fail(FieldWhat(f) + std::string(problem));
  }
  static std::string JsonFail(const std::string& what, simdjson::error_code err) {
    return what + ": " + JsonError(err);
  }

  // The exact text of `v` in the line. `full`: checked to be one valid JSON value; else only
  // its structure is (objects and arrays are skipped over, scalars taken as their token).
  Status RawJson(od::value v, Field f, bool full, std::string_view* out) {
    od::json_type type;
    if (auto err = v.type().get(type)) return Fail(JsonFail(FieldWhat(f), err));
    simdjson::error_code err = simdjson::SUCCESS;
    if (type == od::json_type::object) {
      od::object o;
      err = v.get_object().get(o);
      if (!err) err = o.raw_json().get(*out);
    } else if (type == od::json_type::array) {
      od::array a;
      err = v.get_array().get(a);
      if (!err) err = a.raw_json().get(*out);
    } else {
      *out = v.raw_json_token();
    }
    if (err) return Fail(JsonFail(FieldWhat(f), err));
    *out = TrimRight(*out);
    if (!full) return Status::Ok();
    simdjson::dom::element element;
    // The line has padding after it, so the checker may read past the value.
    if (auto e = checker.parse(out->data(), out->size(), false).get(element)) {
      return Fail(JsonFail(FieldWhat(f), e));
    }
    return Status::Ok();
  }

  // `what` names the field in messages: "field 'value_b64'", "header 'h'".
  static Status String(od::value v, const std::string& what, std::string_view* out) {
    if (v.get_string().get(*out)) return Fail(what + " must be a string");
    return Status::Ok();
  }

  Status Base64Bytes(od::value v, const std::string& what, std::string_view* out) {
    std::string_view text;
    SR_RETURN_IF_ERROR(String(v, what, &text));
    std::optional<std::string> decoded = DecodeBase64(text);
    if (!decoded) return Fail(what + " is not valid base64");
    bytes.push_back(std::move(*decoded));
    *out = bytes.back();
    return Status::Ok();
  }

  static Status Integer(od::value v, Field f, int64_t min, int64_t max, int64_t* out) {
    if (v.get_int64().get(*out) || *out < min || *out > max) {
      return FieldFail(
          f, " must be an integer from " + std::to_string(min) + " to " + std::to_string(max));
    }
    return Status::Ok();
  }

  // A header value: a string, null, or {"b64": "..."}.
  Status HeaderValue(od::value v, std::string_view name, std::optional<std::string_view>* out) {
    od::json_type type;
    auto what = [&] { return "header '" + std::string(name) + "'"; };
    if (v.type().get(type)) return Fail(what() + ": invalid JSON");
    if (type == od::json_type::null) {
      bool is_null = false;
      if (v.is_null().get(is_null) || !is_null) return Fail(what() + ": invalid JSON");
      *out = std::nullopt;
      return Status::Ok();
    }
    if (type == od::json_type::string) {
      std::string_view s;
      if (v.get_string().get(s)) return Fail(what() + ": invalid string");
      *out = s;
      return Status::Ok();
    }
    auto shape = [&] { return Fail(what() + " must be a string, null or {\"b64\": \"...\"}"); };
    od::object o;
    if (type != od::json_type::object || v.get_object().get(o)) return shape();
    bool seen = false;
    for (auto f : o) {
      std::string_view key;
      od::value fv;
      if (f.unescaped_key().get(key) || f.value().get(fv) || key != "b64" || seen) return shape();
      seen = true;
      std::string_view decoded;
      SR_RETURN_IF_ERROR(Base64Bytes(fv, what(), &decoded));
      *out = decoded;
    }
    if (!seen) return shape();
    return Status::Ok();
  }

  // Headers: {"name": value, ...} or [["name", value], ...].
  Status Headers(od::value v, std::vector<RecordingHeader>* out) {
    od::json_type type;
    if (v.type().get(type)) return Fail("field 'headers': invalid JSON");
    if (type == od::json_type::object) {
      od::object o;
      if (v.get_object().get(o)) return Fail("field 'headers': invalid JSON");
      for (auto f : o) {
        RecordingHeader h;
        od::value hv;
        if (f.unescaped_key().get(h.name) || f.value().get(hv)) {
          return Fail("field 'headers': invalid JSON");
        }
        SR_RETURN_IF_ERROR(HeaderValue(hv, h.name, &h.value));
        out->push_back(h);
      }
      return Status::Ok();
    }
    auto shape = [] {
      return Fail(
          "field 'headers' must be an object {\"name\": value} or an array of [name, value] pairs");
    };
    od::array a;
    if (type != od::json_type::array || v.get_array().get(a)) return shape();
    for (auto element : a) {
      od::array pair;
      if (element.get_array().get(pair)) return shape();
      RecordingHeader h;
      size_t n = 0;
      for (auto item : pair) {
        od::value iv;
        if (item.get(iv)) return shape();
        if (n == 0) {
          if (iv.get_string().get(h.name)) return shape();
        } else if (n == 1) {
          SR_RETURN_IF_ERROR(HeaderValue(iv, h.name, &h.value));
        }
        ++n;
      }
      if (n != 2) return shape();
      out->push_back(h);
    }
    return Status::Ok();
  }

  Status ReadField(Field f, od::value v, RecordingRecord* r) {
    int64_t n = 0;
    switch (f) {
      case kTopic:
        return String(v, FieldWhat(f), &r->topic);
      case kPartition:
        SR_RETURN_IF_ERROR(Integer(v, f, 0, INT32_MAX, &n));
        r->partition = static_cast<int32_t>(n);
        return Status::Ok();
      case kOffset:
        return Integer(v, f, 0, INT64_MAX, &r->offset);
      case kTimestamp:
        SR_RETURN_IF_ERROR(Integer(v, f, 0, INT64_MAX, &n));
        r->timestamp = n;
        return Status::Ok();
      case kKey: {
        // Writers give a string; a hand-written key may be any JSON value: its text.
        std::string_view s;
        if (!v.get_string().get(s)) {
          r->key = s;
          return Status::Ok();
        }
        SR_RETURN_IF_ERROR(RawJson(v, f, true, &s));
        if (s != "null") r->key = s;
        return Status::Ok();
      }
      case kKeyB64: {
        std::string_view b;
        SR_RETURN_IF_ERROR(Base64Bytes(v, FieldWhat(f), &b));
        r->key = b;
        return Status::Ok();
      }
      case kHeaders:
        return Headers(v, &r->headers);
      case kValue: {
        std::string_view raw;
        SR_RETURN_IF_ERROR(RawJson(v, f, value_check == ValueCheck::kFull, &raw));
        if (raw != "null") {
          r->value = raw;
          r->value_form = PayloadForm::kJson;
        }
        return Status::Ok();
      }
      case kValueText: {
        std::string_view s;
        SR_RETURN_IF_ERROR(String(v, FieldWhat(f), &s));
        r->value = s;
        r->value_form = PayloadForm::kText;
        return Status::Ok();
      }
      case kValueB64: {
        std::string_view b;
        SR_RETURN_IF_ERROR(Base64Bytes(v, FieldWhat(f), &b));
        r->value = b;
        r->value_form = PayloadForm::kBase64;
        return Status::Ok();
      }
      case kFieldCount:
        break;
    }
    return Status::Ok();
  }

  // REQUIRES: capacity - size >= SIMDJSON_PADDING.
  Status Decode(const char* data, size_t size, size_t capacity, RecordingRecord* r) {
    r->topic = {};
    r->partition = -1;
    r->offset = -1;
    r->timestamp.reset();
    r->key.reset();
    r->value.reset();
    r->value_form = PayloadForm::kNull;
    r->headers.clear();  // keeps its capacity: no allocation per line
    bytes.clear();
    od::document doc;
    if (auto err = parser.iterate(data, size, capacity).get(doc)) return Fail(JsonError(err));
    od::object obj;
    if (auto err = doc.get_object().get(obj)) {
      return Fail(err == simdjson::INCORRECT_TYPE ? "not a JSON object" : JsonError(err));
    }
    uint32_t seen = 0;  // bit i: field i was given
    for (auto field : obj) {
      std::string_view name;
      od::value v;
      if (auto err = field.unescaped_key().get(name)) return Fail(JsonError(err));
      if (auto err = field.value().get(v)) return Fail(JsonError(err));
      const Field f = FieldNamed(name);
      if (f == kFieldCount) {
        static const std::vector<std::string> names(std::begin(kFieldNames), std::end(kFieldNames));
        return Fail("unknown field '" + std::string(name) + "'" + DidYouMean(name, names));
      }
      if (seen & (1u << f)) return FieldFail(f, " given twice");
      seen |= 1u << f;
      SR_RETURN_IF_ERROR(ReadField(f, v, r));
    }
    // current_location fails with OUT_OF_BOUNDS exactly when every token was consumed.
    if (doc.current_location().error() != simdjson::OUT_OF_BOUNDS) {
      return Fail(JsonError(simdjson::TRAILING_CONTENT));
    }
    auto count = [&](std::initializer_list<Field> fields) {
      int c = 0;
      for (Field f : fields) c += (seen >> f) & 1;
      return c;
    };
    if (count({kKey, kKeyB64}) > 1) return Fail("give the key once: as 'key' or as 'key_b64'");
    if (count({kValue, kValueText, kValueB64}) > 1) {
      return Fail("give the value once: as 'value', 'value_text' or 'value_b64'");
    }
    return Status::Ok();
  }
};

const size_t RecordingDecoder::kPadding = simdjson::SIMDJSON_PADDING;

RecordingDecoder::RecordingDecoder(ValueCheck value_check)
    : impl_(std::make_unique<Impl>(value_check)) {}
RecordingDecoder::~RecordingDecoder() = default;

Status RecordingDecoder::Decode(std::string_view line, RecordingRecord* record) {
  std::string& buf = impl_->line;
  buf.assign(line);
  buf.resize(line.size() + simdjson::SIMDJSON_PADDING);
  return impl_->Decode(buf.data(), line.size(), buf.size(), record);
}

Status RecordingDecoder::DecodePadded(std::string_view line, RecordingRecord* record) {
  return impl_->Decode(line.data(), line.size(), line.size() + simdjson::SIMDJSON_PADDING, record);
}

bool LooksLikeRecordingLine(std::string_view line) {
  simdjson::padded_string padded(line);
  od::parser parser;
  od::document doc;
  od::object obj;
  if (parser.iterate(padded).get(doc) || doc.get_object().get(obj)) return false;
  bool partition = false, offset = false, value = false;
  for (auto field : obj) {
    std::string_view name;
    if (field.unescaped_key().get(name)) return false;
    const Field f = FieldNamed(name);
    partition |= f == kPartition;
    offset |= f == kOffset;
    value |= f == kValue || f == kValueText || f == kValueB64;
  }
  return partition && offset && value;
}

}  // namespace streamrun
