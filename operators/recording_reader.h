// RecordingReader: the reading side of recordings, for the file source's `format: recording`
// (and `stdin`'s) and for `streamrun test`, which tells recordings from plain JSON lines.
//
// A recording is JSON lines, one recorded Kafka record per line (docs/recordings.md):
//
//   {"topic":"t","partition":0,"offset":42,"timestamp":1700000000000,"key":"u1",
//    "headers":{"h":"v"},"value":{...}}
//
// The payload is `value` (its JSON), `value_text` (UTF-8 text) or `value_b64` (base64 bytes);
// the key likewise `key` (JSON: a JSON string is the key's text), `key_text` or `key_b64`. Every
// field is optional; other fields are ignored, so that later versions may add some. Fields of
// the wrong type, more than one form of the payload or of the key, bad base64 and anything that
// is not one JSON object make the line bad.
//
// Parsing goes through JsonExtractor (simdjson On Demand), like every JSON line of a file
// source. `streamrun record`/`replay` will have a codec of their own (engine/recording.h, being
// written in parallel); the two are to be merged.
//
// Thread safety: a reader holds a parser and buffers; use one per thread.
#pragma once

#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "engine/batch.h"
#include "engine/value.h"

namespace streamrun {

enum class PayloadKind : uint8_t {
  kNone,   // no value, or "value": null: a tombstone
  kJson,   // `value`: its JSON text, compact (white space outside strings removed)
  kText,   // `value_text`: the text
  kBytes,  // `value_b64`: the decoded bytes
};

// One line of a recording. Values and views point into the reader that made it and stay valid
// until its next Read.
struct RecordedRecord {
  Value topic;      // String, or Missing
  Value partition;  // Int, or Missing
  Value offset;     // Int, or Missing
  Value timestamp;  // Int (epoch ms), or Missing
  // `key`: its JSON value (a string is String, a number Int or Double, an object or array
  // compact Json text); `key_text`: String; `key_b64`: the base64 text itself as a String, so
  // that distinct binary keys stay distinct and printable. Missing without a key, Null for
  // "key": null.
  Value key;
  // The `headers` object as compact Json text, or Missing.
  Value headers;
  // The value of each header the reader was asked for (RecordingReader's `header_names`, in
  // that order): as for `key`; Missing when the record does not have that header.
  std::vector<Value> header_values;
  PayloadKind payload = PayloadKind::kNone;
  std::string_view value;  // the payload's bytes (see PayloadKind)
};

class RecordingReader {
 public:
  // `header_names`: the headers whose values Read should look up.
  explicit RecordingReader(std::vector<std::string> header_names = {});
  ~RecordingReader();
  RecordingReader(const RecordingReader&) = delete;
  RecordingReader& operator=(const RecordingReader&) = delete;

  // Parses one line (without its newline). On failure returns false and sets `*error` to why:
  // "invalid JSON: ...", "'offset' must be an integer", "bad base64 in 'value_b64'".
  bool Read(std::string_view line, RecordedRecord* out, std::string* error);

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

// Whether `line` looks like the first line of a recording: a JSON object with the fields
// `partition` and `offset` and one of `value`, `value_text`, `value_b64`.
bool LooksLikeRecordingLine(std::string_view line);

}  // namespace streamrun
