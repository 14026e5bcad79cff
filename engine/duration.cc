// Durations ("250ms", "10s") and sizes ("64KiB") in pipeline files.
#include <charconv>
#include <cstdint>
#include <limits>
#include <string>

#include "engine/pipeline.h"

namespace streamrun {
namespace {

// Splits "250ms" into 250 and "ms". Fails on a sign, a missing number or a number too large.
bool SplitNumberAndUnit(std::string_view text, uint64_t* number, std::string_view* unit) {
  const char* begin = text.data();
  const char* end = text.data() + text.size();
  if (begin == end || *begin < '0' || *begin > '9') return false;
  auto [ptr, ec] = std::from_chars(begin, end, *number);
  if (ec != std::errc()) return false;
  *unit = std::string_view(ptr, static_cast<size_t>(end - ptr));
  return true;
}

bool CheckedMultiply(uint64_t a, uint64_t b, uint64_t limit, uint64_t* out) {
  if (b != 0 && a > limit / b) return false;
  *out = a * b;
  return true;
}

}  // namespace

Result<int64_t> ParseDurationMs(std::string_view text) {
  const std::string quoted = "'" + std::string(text) + "'";
  if (!text.empty() && text[0] == '-') {
    return Status::PipelineError("negative duration " + quoted);
  }
  uint64_t number = 0;
  std::string_view unit;
  if (!SplitNumberAndUnit(text, &number, &unit)) {
    return Status::PipelineError("invalid duration " + quoted +
                                 ": expected a number and a unit, like 250ms, 10s, 5m, 1h, 1d");
  }
  uint64_t factor = 0;
  if (unit == "ms") {
    factor = 1;
  } else if (unit == "s") {
    factor = 1000;
  } else if (unit == "m") {
    factor = 60 * 1000;
  } else if (unit == "h") {
    factor = 60 * 60 * 1000;
  } else if (unit == "d") {
    factor = 24 * 60 * 60 * 1000;
  } else if (unit.empty() && number == 0) {
    return int64_t{0};
  } else if (unit.empty()) {
    return Status::PipelineError("duration " + quoted + " needs a unit: ms, s, m, h or d");
  } else {
    return Status::PipelineError("unknown duration unit '" + std::string(unit) + "' in " + quoted +
                                 ": expected ms, s, m, h or d");
  }
  uint64_t ms = 0;
  if (!CheckedMultiply(number, factor, std::numeric_limits<int64_t>::max(), &ms)) {
    return Status::PipelineError("duration " + quoted + " is too large");
  }
  return static_cast<int64_t>(ms);
}

Result<uint64_t> ParseSizeBytes(std::string_view text) {
  const std::string quoted = "'" + std::string(text) + "'";
  if (!text.empty() && text[0] == '-') return Status::PipelineError("negative size " + quoted);
  uint64_t number = 0;
  std::string_view unit;
  if (!SplitNumberAndUnit(text, &number, &unit)) {
    return Status::PipelineError("invalid size " + quoted +
                                 ": expected a number of bytes, or one with a unit: B, KiB, "
                                 "MiB, GiB");
  }
  uint64_t factor = 0;
  if (unit.empty() || unit == "B") {
    factor = 1;
  } else if (unit == "KiB") {
    factor = uint64_t{1} << 10;
  } else if (unit == "MiB") {
    factor = uint64_t{1} << 20;
  } else if (unit == "GiB") {
    factor = uint64_t{1} << 30;
  } else {
    return Status::PipelineError("unknown size unit '" + std::string(unit) + "' in " + quoted +
                                 ": expected B, KiB, MiB or GiB");
  }
  uint64_t bytes = 0;
  if (!CheckedMultiply(number, factor, std::numeric_limits<uint64_t>::max(), &bytes)) {
    return Status::PipelineError("size " + quoted + " is too large");
  }
  return bytes;
}

}  // namespace streamrun
