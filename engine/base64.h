// Base64 (RFC 4648, standard alphabet, with padding): how recordings and dead letters carry bytes
// that are not valid UTF-8 text.
#pragma once

#include <optional>
#include <string>
#include <string_view>

namespace streamrun {

// Standard base64 with padding.
std::string Base64(std::string_view bytes);

// Decodes standard base64. Padding is required (the length is a multiple of 4); whitespace,
// the URL-safe alphabet and bits left over in the last character are rejected, so each byte
// string has exactly one accepted text. Returns nullopt for anything else.
std::optional<std::string> DecodeBase64(std::string_view text);

}  // namespace streamrun
