#include <doctest/doctest.h>

#include <string>

#include "engine/pipeline.h"

namespace streamrun {
namespace {

int64_t Ms(std::string_view text) {
  Result<int64_t> r = ParseDurationMs(text);
  REQUIRE_MESSAGE(r.ok(), r.status().message());
  return r.value();
}

std::string DurationError(std::string_view text) {
  Result<int64_t> r = ParseDurationMs(text);
  REQUIRE_FALSE(r.ok());
  CHECK(r.status().code() == Status::Code::kPipelineError);
  return r.status().message();
}

uint64_t Bytes(std::string_view text) {
  Result<uint64_t> r = ParseSizeBytes(text);
  REQUIRE_MESSAGE(r.ok(), r.status().message());
  return r.value();
}

std::string SizeError(std::string_view text) {
  Result<uint64_t> r = ParseSizeBytes(text);
  REQUIRE_FALSE(r.ok());
  return r.status().message();
}

TEST_CASE("duration: every unit converts to milliseconds") {
  CHECK(Ms("250ms") == 250);
  CHECK(Ms("10s") == 10'000);
  CHECK(Ms("5m") == 300'000);
  CHECK(Ms("1h") == 3'600'000);
  CHECK(Ms("1d") == 86'400'000);
  CHECK(Ms("0") == 0);
  CHECK(Ms("0s") == 0);
}

TEST_CASE("duration: negative, unitless, unknown unit and garbage are rejected") {
  CHECK(DurationError("-5s").find("negative duration '-5s'") != std::string::npos);
  CHECK(DurationError("10").find("needs a unit") != std::string::npos);
  CHECK(DurationError("10w").find("unknown duration unit 'w'") != std::string::npos);
  CHECK(DurationError("10 s").find("unknown duration unit ' s'") != std::string::npos);
  CHECK(DurationError("").find("invalid duration") != std::string::npos);
  CHECK(DurationError("s").find("invalid duration") != std::string::npos);
  CHECK(DurationError("+1s").find("invalid duration") != std::string::npos);
  CHECK(DurationError("1.5s").find("unknown duration unit '.5s'") != std::string::npos);
}

TEST_CASE("duration: overflow of int64 milliseconds is rejected") {
  CHECK(Ms("9223372036854775807ms") == INT64_MAX);
  CHECK(DurationError("9223372036854775807s").find("too large") != std::string::npos);
  CHECK(DurationError("106751991167301d").find("too large") != std::string::npos);
  CHECK(DurationError("99999999999999999999999ms").find("invalid duration") != std::string::npos);
}

TEST_CASE("size: plain bytes and binary units") {
  CHECK(Bytes("512") == 512);
  CHECK(Bytes("512B") == 512);
  CHECK(Bytes("64KiB") == 64 * 1024);
  CHECK(Bytes("8MiB") == 8 * 1024 * 1024);
  CHECK(Bytes("1GiB") == uint64_t{1} << 30);
  CHECK(Bytes("0") == 0);
}

TEST_CASE("size: negative, unknown unit and overflow are rejected") {
  CHECK(SizeError("-1KiB").find("negative size") != std::string::npos);
  CHECK(SizeError("64KB").find("unknown size unit 'KB'") != std::string::npos);
  CHECK(SizeError("KiB").find("invalid size") != std::string::npos);
  CHECK(SizeError("17179869184GiB").find("too large") != std::string::npos);
}

}  // namespace
}  // namespace streamrun
