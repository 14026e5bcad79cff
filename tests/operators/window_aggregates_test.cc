#include "operators/window_aggregates.h"

#include <doctest/doctest.h>

#include <vector>

namespace streamrun {
namespace {

std::string Json(const Value& v) {
  std::string s;
  AppendJson(s, v);
  return s;
}

// Feeds `values` (skipping missing and null, as the operator does) and returns the JSON result.
std::string Aggregate(AggKind kind, const std::vector<Value>& values) {
  Accumulator acc;
  std::string scratch;
  uint64_t seq = 0;
  for (const Value& v : values) {
    if (kind != AggKind::kCount && v.is_nullish()) continue;
    std::string why;
    REQUIRE(AggregateAccepts(kind, v, &why));
    Accumulate(kind, acc, v, seq++, &scratch);
  }
  return Json(AggregateResult(kind, acc));
}

}  // namespace

TEST_CASE("aggregates: parse calls and their argument offsets") {
  AggCall call;
  AggParseError err;
  REQUIRE(ParseAggregateCall("count()", &call, &err));
  CHECK(call.kind == AggKind::kCount);
  REQUIRE(ParseAggregateCall("count_if(action == \"a)\")", &call, &err));
  CHECK(call.kind == AggKind::kCountIf);
  CHECK(call.argument == "action == \"a)\"");
  CHECK(call.argument_offset == 9);
  REQUIRE(ParseAggregateCall("  sum( price * (qty + 1) ) ", &call, &err));
  CHECK(call.argument == "price * (qty + 1)");
  CHECK(call.argument_offset == 7);
}

TEST_CASE("aggregates: an unknown aggregate gets a did-you-mean") {
  AggCall call;
  AggParseError err;
  CHECK_FALSE(ParseAggregateCall("cout()", &call, &err));
  CHECK(err.message == "unknown aggregate 'cout'; did you mean 'count'?");
  CHECK(err.offset == 0);
  CHECK_FALSE(ParseAggregateCall("count_distnct(page)", &call, &err));
  CHECK(err.message.find("did you mean 'count_distinct'") != std::string::npos);
  CHECK_FALSE(ParseAggregateCall("median(x)", &call, &err));
  CHECK(err.message.find("one of count") != std::string::npos);
}

TEST_CASE("aggregates: malformed calls are errors at the offending place") {
  AggCall call;
  AggParseError err;
  CHECK_FALSE(ParseAggregateCall("count(x)", &call, &err));
  CHECK(err.offset == 6);
  CHECK_FALSE(ParseAggregateCall("sum()", &call, &err));
  CHECK_FALSE(ParseAggregateCall("sum(a) + 1", &call, &err));
  CHECK(err.offset == 7);
  CHECK_FALSE(ParseAggregateCall("sum(a", &call, &err));
  CHECK_FALSE(ParseAggregateCall("price", &call, &err));
}

TEST_CASE("aggregates: results over values and over nothing") {
  std::vector<Value> ints = {Value::Int(3), Value::Null(), Value::Int(1), Value(), Value::Int(2)};
  CHECK(Aggregate(AggKind::kCount, ints) == "5");
  CHECK(Aggregate(AggKind::kSum, ints) == "6");
  CHECK(Aggregate(AggKind::kAvg, ints) == "2.0");
  CHECK(Aggregate(AggKind::kMin, ints) == "1");
  CHECK(Aggregate(AggKind::kMax, ints) == "3");
  CHECK(Aggregate(AggKind::kFirst, ints) == "3");
  CHECK(Aggregate(AggKind::kLast, ints) == "2");
  CHECK(Aggregate(AggKind::kCountDistinct, ints) == "3");

  std::vector<Value> none = {Value::Null(), Value()};
  CHECK(Aggregate(AggKind::kCountIf, none) == "0");
  CHECK(Aggregate(AggKind::kCountDistinct, none) == "0");
  CHECK(Aggregate(AggKind::kSum, none) == "null");
  CHECK(Aggregate(AggKind::kAvg, none) == "null");
  CHECK(Aggregate(AggKind::kMin, none) == "null");
  CHECK(Aggregate(AggKind::kMax, none) == "null");
  CHECK(Aggregate(AggKind::kFirst, none) == "null");
  CHECK(Aggregate(AggKind::kLast, none) == "null");
}

TEST_CASE("aggregates: sum over a double is a double, count_distinct takes 1 and 1.0 as one") {
  CHECK(Aggregate(AggKind::kSum, {Value::Int(1), Value::Double(0.5)}) == "1.5");
  CHECK(Aggregate(AggKind::kSum, {Value::Int(1), Value::Double(1.0)}) == "2.0");
  CHECK(Aggregate(AggKind::kAvg, {Value::Int(1), Value::Int(2)}) == "1.5");
  CHECK(Aggregate(AggKind::kCountDistinct,
                  {Value::Int(1), Value::Double(1.0), Value::String("1")}) == "2");
  CHECK(Aggregate(AggKind::kCountIf, {Value::Bool(true), Value::Bool(false), Value::Bool(true)}) ==
        "2");
  CHECK(Aggregate(AggKind::kSum, {Value::Int(INT64_MAX), Value::Int(1)}) ==
        "9223372036854775808.0");
}

TEST_CASE("aggregates: min and max compare across kinds, strings are kept as copies") {
  std::string a = "b", b = "a";
  Accumulator acc;
  std::string scratch;
  Accumulate(AggKind::kMin, acc, Value::String(a), 0, &scratch);
  Accumulate(AggKind::kMin, acc, Value::String(b), 1, &scratch);
  b[0] = 'z';  // the accumulator must not point into the caller's memory
  CHECK(Json(AggregateResult(AggKind::kMin, acc)) == "\"a\"");
  CHECK(Aggregate(AggKind::kMax, {Value::Int(5), Value::String("x"), Value::Double(7.5)}) ==
        "\"x\"");
}

TEST_CASE("aggregates: sum and count_if reject values of the wrong type") {
  std::string why;
  CHECK_FALSE(AggregateAccepts(AggKind::kSum, Value::String("x"), &why));
  CHECK(why == "sum() needs numbers, got a string");
  CHECK_FALSE(AggregateAccepts(AggKind::kCountIf, Value::Int(1), &why));
  CHECK(AggregateAccepts(AggKind::kMin, Value::String("x"), &why));
}

TEST_CASE("aggregates: merging equals accumulating everything in one") {
  std::string scratch;
  for (AggKind kind : {AggKind::kCount, AggKind::kSum, AggKind::kMin, AggKind::kMax, AggKind::kAvg,
                       AggKind::kFirst, AggKind::kLast, AggKind::kCountDistinct}) {
    Accumulator a, b, all;
    for (int i = 0; i < 10; ++i) {
      Value v = Value::Int((i * 7) % 5);
      Accumulate(kind, i % 2 ? a : b, v, i, &scratch);
      Accumulate(kind, all, v, i, &scratch);
    }
    MergeAccumulators(kind, a, b);
    CHECK(Json(AggregateResult(kind, a)) == Json(AggregateResult(kind, all)));
  }
}

TEST_CASE("aggregates: accumulators survive encoding and decoding") {
  std::string scratch;
  for (AggKind kind : {AggKind::kCount, AggKind::kSum, AggKind::kMin, AggKind::kMax, AggKind::kAvg,
                       AggKind::kFirst, AggKind::kLast, AggKind::kCountDistinct}) {
    Accumulator acc;
    Accumulate(kind, acc, Value::String("hello"), 4, &scratch);
    if (kind == AggKind::kSum || kind == AggKind::kAvg) {
      acc.Reset();
      Accumulate(kind, acc, Value::Double(2.5), 4, &scratch);
      Accumulate(kind, acc, Value::Int(2), 5, &scratch);
    }
    std::string bytes;
    EncodeAccumulator(kind, acc, &bytes);
    ByteReader in(bytes);
    Accumulator back;
    REQUIRE(DecodeAccumulator(kind, in, &back));
    CHECK(in.done());
    CHECK(Json(AggregateResult(kind, back)) == Json(AggregateResult(kind, acc)));
    ByteReader truncated(std::string_view(bytes).substr(0, bytes.size() - 1));
    CHECK_FALSE(DecodeAccumulator(kind, truncated, &back));
  }
}

}  // namespace streamrun
