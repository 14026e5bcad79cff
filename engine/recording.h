// Recordings: Kafka records as JSON lines, one record per line (format version 1, described in
// docs/recording-format.md; schemas/recording.schema.json is its JSON Schema).
//
//   {"topic":"t","partition":0,"offset":42,"timestamp":1700000000000,"key":"u1",
//    "headers":{"h":"v"},"value":{"a":1}}
//
// `streamrun record` writes them, `streamrun replay` produces them back to a topic, a file or
// stdin source with `format: recording` reads them with their metadata (operators/
// source_common.h), and `streamrun test` tells them from plain JSON lines. This file is the one
// place that knows the format: RecordingEncoder writes a line, RecordingDecoder reads one,
// LooksLikeRecordingLine guesses.
//
// Payloads are bytes; a line shows them in the most readable form that gives the same bytes
// back (see ValueFormFor): the value as JSON ("value") when the bytes are one JSON value, else
// as a JSON string ("value_text") when they are UTF-8, else base64 ("value_b64"). A key is
// "key" (a JSON string) when it is UTF-8, else "key_b64". Every field is optional when reading,
// so a hand-written test recording can be as small as {"value":{"a":1}}.
//
// Thread safety: an encoder or a decoder belongs to one thread at a time.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "engine/status.h"

namespace streamrun {

inline constexpr int kRecordingFormatVersion = 1;

// How a value was written in a line. Do not change the field names they stand for: on disk.
enum class PayloadForm : uint8_t {
  kNull,    // "value": null, or no value field: a null value (a tombstone)
  kJson,    // "value": the bytes are one JSON value, exactly as written in the line
  kText,    // "value_text": UTF-8 text
  kBase64,  // "value_b64": any bytes
};

struct RecordingHeader {
  std::string_view name;
  std::optional<std::string_view> value;  // nullopt: a null header value
};

// One Kafka record with its metadata. The views point into the caller's memory (to encode), or
// into the decoder and the line it read (after decoding: valid until the decoder's next Decode).
struct RecordingRecord {
  std::string_view topic;                 // empty: not given
  int32_t partition = -1;                 // -1: not given
  int64_t offset = -1;                    // -1: not given
  std::optional<int64_t> timestamp;       // epoch milliseconds; nullopt: not given
  std::optional<std::string_view> key;    // nullopt: a null key
  std::optional<std::string_view> value;  // nullopt: a null value
  // Set by the decoder: how the value was written. kJson: `value` is the exact text of one JSON
  // value in the line (checked in full, or for its structure only: see
  // RecordingDecoder::ValueCheck).
  PayloadForm value_form = PayloadForm::kNull;
  std::vector<RecordingHeader> headers;  // in order; a name may repeat
};

// Writes recording lines. Thread safety: one thread at a time.
class RecordingEncoder {
 public:
  RecordingEncoder();
  ~RecordingEncoder();
  RecordingEncoder(const RecordingEncoder&) = delete;
  RecordingEncoder& operator=(const RecordingEncoder&) = delete;

  // Appends `record` as one line, ending in '\n', to `out`. Fields in the order topic,
  // partition, offset, timestamp, key, headers, value; those not given are left out, except
  // the value, which is always written ("value":null for a null value). Headers are an object
  // {"name": value} unless a name repeats, then an array of [name, value] pairs; a header value
  // is a string (UTF-8), null, or {"b64": "..."}.
  void Append(std::string& out, const RecordingRecord& record);

  // The form Append gives these value bytes: kJson when they are one JSON value with no line
  // break and no whitespace around it, and are not the four bytes `null` (that would read
  // back as a null value); else kText when they are valid UTF-8; else kBase64. nullopt: kNull.
  PayloadForm ValueFormFor(std::optional<std::string_view> bytes);

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

// Reads recording lines. Thread safety: one thread at a time.
//
// A decoder parses a line once, with simdjson's On Demand API, and returns views into the line
// and into its own buffers (no copy of a payload that needs no unescaping or decoding).
class RecordingDecoder {
 public:
  // How much of a "value" given as JSON the decoder checks.
  enum class ValueCheck : uint8_t {
    // Every byte: a value that is not exactly one valid JSON value makes the line bad. For
    // readers that pass the bytes on unread (`replay` produces them as they are).
    kFull,
    // Its structure only (brackets and strings balanced), as for a skipped field of a JSON
    // line: for readers that parse the value right after (a source extracts its fields, which
    // rejects what the structure check let through, as format json does for a line).
    kStructure,
  };

  explicit RecordingDecoder(ValueCheck value_check = ValueCheck::kFull);
  ~RecordingDecoder();
  RecordingDecoder(const RecordingDecoder&) = delete;
  RecordingDecoder& operator=(const RecordingDecoder&) = delete;

  // Reads one line (without its newline; a trailing \r and whitespace are allowed) into
  // `*record`. Needs no padding after the line (it is copied into a padded buffer). Rejects,
  // with the reason as a DataError's message (for example "unknown field 'vaule'; did you mean
  // 'value'?"): a line that is not one JSON object, an unknown field, a field given twice, a
  // field of the wrong type, more than one form of the value or of the key, a partition or
  // offset out of range, and base64 that does not decode. The reason does not name the line:
  // callers add FILE:LINE. The views in *record stay valid until the next Decode.
  Status Decode(std::string_view line, RecordingRecord* record);

  // Decode without the copy, for lines that lie in a buffer with kPadding readable bytes after
  // them (their content does not matter; a source's read buffer has them). The views in *record
  // may point into `line`.
  // REQUIRES: kPadding readable bytes after line.data() + line.size().
  Status DecodePadded(std::string_view line, RecordingRecord* record);
  static const size_t kPadding;  // simdjson's padding

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

// Whether `line` looks like a line of a recording rather than a plain JSON line: a JSON object
// with the fields `partition` and `offset` and one of `value`, `value_text`, `value_b64` (what
// `streamrun record` writes). Used by `streamrun test` to pick the format of an input file from
// its first line; a line it accepts may still be a bad recording line.
bool LooksLikeRecordingLine(std::string_view line);

}  // namespace streamrun
