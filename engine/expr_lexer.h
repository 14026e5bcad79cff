// Tokens of the expression language (internal to engine/expr_*.cc).
#pragma once

#include <cstddef>
#include <string>
#include <string_view>

namespace streamrun {

// clang-format off: grouped by role
enum class TokenKind {
  kEnd,     // end of the text
  kIdent,   // name, or a `backquoted name` (text holds the name without the quotes)
  kMeta,    // $name (text holds the name without the `$`)
  kInt,     // integer literal that fits in int64
  kDouble,  // any other number literal
  kString,  // "..." or '...' (text holds the unescaped value)
  kLParen,
  kRParen,
  kLBracket,
  kRBracket,
  kComma,
  kDot,
  kAnd,
  kOr,
  kNot,  // && || !
  kEq,
  kNe,
  kLt,
  kLe,
  kGt,
  kGe,  // == != < <= > >=
  kPlus,
  kMinus,
  kStar,
  kSlash,
  kPercent,
  kTrue,
  kFalse,
  kNull,
  kIn,
  kNotKw,  // keywords: true false null in not
  kError,  // a lexical error: `text` holds the message
};
// clang-format on

struct Token {
  TokenKind kind = TokenKind::kEnd;
  size_t offset = 0;  // byte offset of the token's first character
  size_t length = 0;  // bytes of source text it spans
  std::string text;   // see TokenKind
  int64_t int_value = 0;
  double double_value = 0;
};

// Splits an expression into tokens, one at a time.
class Lexer {
 public:
  explicit Lexer(std::string_view text) : text_(text) {}
  // The next token; after kEnd or kError, returns the same again.
  Token Next();

 private:
  Token LexNumber(size_t start);
  Token LexString(size_t start, char quote);
  Token Error(size_t offset, std::string message);

  std::string_view text_;
  size_t pos_ = 0;
};

// How a token reads in an error message: `'x'`, `'=='`, `end of expression`.
std::string DescribeToken(std::string_view text, const Token& token);

}  // namespace streamrun
