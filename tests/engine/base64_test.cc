// Tests of base64 (engine/base64.h).
#include "engine/base64.h"

#include <doctest/doctest.h>

namespace streamrun {

TEST_CASE("base64: pads like RFC 4648") {
  CHECK(Base64("") == "");
  CHECK(Base64("f") == "Zg==");
  CHECK(Base64("fo") == "Zm8=");
  CHECK(Base64("foo") == "Zm9v");
  CHECK(Base64("foobar") == "Zm9vYmFy");
  CHECK(Base64(std::string("\xff\xfe\x00", 3)) == "//4A");
}

TEST_CASE("base64: decoding gives back every byte string") {
  std::string all;
  for (int i = 0; i < 256; ++i) all += static_cast<char>(i);
  for (size_t n = 0; n <= all.size(); n += 37) {
    std::string bytes = all.substr(0, n) + all.substr(0, n % 3);
    CHECK(DecodeBase64(Base64(bytes)) == bytes);
  }
  CHECK(DecodeBase64("Zm9vYmFy") == std::string("foobar"));
  CHECK(DecodeBase64("") == std::string());
}

TEST_CASE("base64: malformed text is rejected") {
  CHECK_FALSE(DecodeBase64("Zm9"));        // not a multiple of 4
  CHECK_FALSE(DecodeBase64("Zm9v!A=="));   // not in the alphabet
  CHECK_FALSE(DecodeBase64("Zm=vYmFy"));   // padding inside
  CHECK_FALSE(DecodeBase64("Zg==Zg=="));   // padding before the end
  CHECK_FALSE(DecodeBase64("Zm9\nYmFy"));  // whitespace
  CHECK_FALSE(DecodeBase64("Zh=="));       // leftover bits set: not canonical
  CHECK_FALSE(DecodeBase64("-_8A"));       // URL-safe alphabet
}

}  // namespace streamrun
