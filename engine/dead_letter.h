// Dead letters: the records of a `<source>.errors` stream.
//
// A dead letter is the JSON object
//   {"source": S, "step": STEP, "offset": N, "reason": WHY, "text": ORIGINAL, "text_b64": B64}
// where `step` is present when a step (not the source) rejected the record, `text` is the
// original bytes as a JSON string (invalid UTF-8 replaced by U+FFFD), and `text_b64` holds the
// exact original bytes, base64, only when they are not valid UTF-8.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "engine/base64.h"
#include "engine/batch.h"

namespace streamrun {

struct DeadLetter {
  std::string_view source;
  std::string_view step;  // empty: the source itself
  uint16_t origin = 0;
  uint64_t offset = 0;
  std::string_view text;
  std::string_view reason;
};

// Appends the dead letter to `batch` (whose width is `layout.size()`), filling the slots of
// `layout` that name its fields (source, step, offset, reason, text).
void AppendDeadLetter(Batch& batch, const Layout& layout, const DeadLetter& letter);

}  // namespace streamrun
