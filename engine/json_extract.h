// JsonExtractor: reads the fields a stream needs out of one JSON line, in one pass.
//
// The wanted field paths (a Layout) are compiled into a trie. Extract walks the top-level object
// once with simdjson's On-Demand API, descends only into objects that hold wanted paths and skips
// every other value. The whole line is still checked enough to reject input that is not one
// complete JSON object: cut or truncated text, invalid UTF-8, trailing garbage, a top-level value
// that is not an object. (Skipped values are checked for structure, not for every detail of
// their syntax: `{"a":[1 2]}` may pass when `a` is not wanted.)
//
// A line without a backslash has no escapes in its keys or strings: keys are then compared as
// raw bytes (a wanted key matches when its bytes are followed by the closing quote) and strings
// end at the last quote of their token, with no search for either. BeginLines finds the next
// backslash once per stretch of lines.
//
// Values point into the line wherever possible (zero copy): strings without escapes, and objects
// and arrays (as their raw JSON text). Escaped strings are unescaped into the caller's arena.
// Integers that fit an int64 become Int, all other numbers Double.
//
// Paths whose first segment starts with `$` ($offset, $key, ...) are record metadata, not JSON
// fields: Extract leaves them Missing for the source to fill.
//
// Thread safety: an extractor holds a parser; use one per thread.
#pragma once

#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "engine/batch.h"
#include "engine/value.h"

namespace streamrun {

class JsonExtractor {
 public:
  explicit JsonExtractor(const Layout& layout);
  ~JsonExtractor();
  JsonExtractor(const JsonExtractor&) = delete;
  JsonExtractor& operator=(const JsonExtractor&) = delete;

  // Extra bytes that must be readable after every line passed to Extract (simdjson's padding).
  static size_t padding();

  // Fills slots[0 .. layout.size()) from `line`. Returns false and sets `*error` ("invalid
  // JSON: ...", "invalid UTF-8") when the line is not one JSON object.
  // REQUIRES: padding() readable bytes after line.data() + line.size() (their content does not
  // matter); `slots` has layout.size() entries.
  bool Extract(std::string_view line, Value* slots, Arena& arena, std::string* error);

  // Many lines at a time: after BeginLines(data, size), ExtractLine takes the lines of that
  // buffer in order and parses them with one simdjson pass (iterate_many) over many lines instead
  // of a setup per line. The result of every line (values, error text) is exactly Extract's: a
  // line is taken from the shared pass only when its document starts at the line's first byte,
  // is one whole object, and nothing but whitespace follows it on the line; any other line (a
  // damaged one, or one the pass cannot place) is parsed alone by Extract, and the shared pass
  // restarts after it (after a run of lines parsed alone, so that damaged input costs at most
  // about twice as much as line by line).
  // REQUIRES: padding() readable bytes after data + size; the buffer outlives the lines' use.
  void BeginLines(const char* data, size_t size);
  // Extract for the next non-empty line of the BeginLines buffer. `line` lies in the buffer,
  // after every line passed before; `next` is where the following line begins (just after this
  // line's terminator, or the end of the buffer).
  bool ExtractLine(std::string_view line, const char* next, Value* slots, Arena& arena,
                   std::string* error);

  size_t width() const { return width_; }

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
  size_t width_;
};

}  // namespace streamrun
