// The aggregates of the window step: parsing `name(args)` and the accumulators.
//
// An accumulator holds one aggregate of one window. It owns copies of the values it keeps (min,
// max, first, last), so it outlives the batches its records came in. Values that are missing or
// null never reach an accumulator: the window operator skips them, as the contract says.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <unordered_set>

#include "engine/byte_codec.h"
#include "engine/status.h"
#include "engine/value.h"

namespace streamrun {

// Do not reorder: stored in snapshots.
enum class AggKind : uint8_t {
  kCount = 0,
  kCountIf,
  kSum,
  kMin,
  kMax,
  kAvg,
  kFirst,
  kLast,
  kCountDistinct,
};

const char* AggName(AggKind kind);

// `name(argument)` as written in the pipeline file.
struct AggCall {
  AggKind kind = AggKind::kCount;
  std::string argument;        // the expression text; empty for count()
  size_t argument_offset = 0;  // where it starts in the text given to ParseAggregateCall
};

// Where and why a text is not an aggregate call.
struct AggParseError {
  size_t offset = 0;
  std::string message;
};

// Parses "count()", "sum(price * qty)". Does not parse the argument (the caller gives it to
// ParseExpr). An unknown name gets a did-you-mean.
bool ParseAggregateCall(std::string_view text, AggCall* call, AggParseError* error);

struct Accumulator {
  int64_t count = 0;       // count: records; count_if: true values; others: values taken
  int64_t isum = 0;        // sum, avg: the sum of the integers, while it fits
  double dsum = 0;         // sum, avg: the sum of every value as a double
  bool is_double = false;  // sum, avg: a double was seen or the integer sum overflowed
  // min, max, first, last: the kept value. Strings are kept in `text`, other kinds in `scalar`.
  Value::Kind kind = Value::Kind::kMissing;
  Value scalar;
  std::string text;
  uint64_t seq = 0;  // first, last: the arrival number of the kept value
  // count_distinct: the key encodings (engine/key.h) of the values seen, so 1 and 1.0 are one.
  std::unique_ptr<std::unordered_set<std::string>> distinct;

  // Empties the accumulator, keeping its memory.
  void Reset();
  // Makes this accumulator a copy of `other` (a window table's copy-on-write).
  void CopyFrom(const Accumulator& other);
  // The kept value (min, max, first, last); points into this accumulator.
  Value Kept() const;
};

// Whether `kind` takes value `v` (not missing nor null). If not, says why in *error:
// sum and avg take numbers, count_if takes booleans.
bool AggregateAccepts(AggKind kind, const Value& v, std::string* error);

// Adds one value the aggregate accepts, the `seq`-th record to arrive. count() ignores `v`.
// `scratch` is reused for count_distinct's encodings.
void Accumulate(AggKind kind, Accumulator& acc, const Value& v, uint64_t seq, std::string* scratch);

// Adds everything `from` holds into `into`, as if `into` had also seen `from`'s records (for
// merging session windows).
void MergeAccumulators(AggKind kind, Accumulator& into, const Accumulator& from);

// The aggregate's value: counts are integers (0 over nothing), sum an integer unless a double
// was seen, avg always a double, the others the kept value; null over no values.
Value AggregateResult(AggKind kind, const Accumulator& acc);

// State encoding of an accumulator (part of the window step's state value; see window_operator.h).
void EncodeAccumulator(AggKind kind, const Accumulator& acc, std::string* out);
bool DecodeAccumulator(AggKind kind, ByteReader& in, Accumulator* acc);

// The accumulator as a JSON object, for `streamrun state dump`: {"count":N} for the counts
// (for the others: the values taken); sum and avg add "sum" (an integer unless a double was
// seen); min, max, first and last add "value" (the kept value) and, for first and last, "seq"
// (its arrival number); count_distinct is {"distinct":[the values seen, in the order of their
// encodings]}.
void AppendAccumulatorJson(AggKind kind, const Accumulator& acc, std::string* out);

}  // namespace streamrun
