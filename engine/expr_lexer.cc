// The expression lexer: operators, numbers, JSON-style strings, identifiers and keywords.
#include "engine/expr_lexer.h"

#include <charconv>
#include <cstdint>

namespace streamrun {
namespace {

bool IsIdentStart(char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_'; }
bool IsIdentChar(char c) { return IsIdentStart(c) || (c >= '0' && c <= '9'); }
bool IsDigit(char c) { return c >= '0' && c <= '9'; }

int HexValue(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

void AppendUtf8(std::string& out, uint32_t cp) {
  if (cp < 0x80) {
    out.push_back(static_cast<char>(cp));
  } else if (cp < 0x800) {
    out.push_back(static_cast<char>(0xC0 | (cp >> 6)));
    out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  } else if (cp < 0x10000) {
    out.push_back(static_cast<char>(0xE0 | (cp >> 12)));
    out.push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
    out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  } else {
    out.push_back(static_cast<char>(0xF0 | (cp >> 18)));
    out.push_back(static_cast<char>(0x80 | ((cp >> 12) & 0x3F)));
    out.push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
    out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  }
}

}  // namespace

Token Lexer::Error(size_t offset, std::string message) {
  Token t;
  t.kind = TokenKind::kError;
  t.offset = offset;
  t.length = 1;
  t.text = std::move(message);
  pos_ = text_.size();  // stop: every later call returns kEnd
  return t;
}

Token Lexer::Next() {
  while (pos_ < text_.size() && (text_[pos_] == ' ' || text_[pos_] == '\t' || text_[pos_] == '\n' ||
                                 text_[pos_] == '\r')) {
    ++pos_;
  }
  Token t;
  t.offset = pos_;
  if (pos_ >= text_.size()) return t;  // kEnd
  const size_t start = pos_;
  const char c = text_[pos_];
  const char next = pos_ + 1 < text_.size() ? text_[pos_ + 1] : '\0';
  auto op = [&](TokenKind kind, size_t len) {
    t.kind = kind;
    t.length = len;
    pos_ += len;
    return t;
  };

  if (IsIdentStart(c)) {
    while (pos_ < text_.size() && IsIdentChar(text_[pos_])) ++pos_;
    t.text.assign(text_.substr(start, pos_ - start));
    t.length = pos_ - start;
    t.kind = TokenKind::kIdent;
    if (t.text == "true")
      t.kind = TokenKind::kTrue;
    else if (t.text == "false")
      t.kind = TokenKind::kFalse;
    else if (t.text == "null")
      t.kind = TokenKind::kNull;
    else if (t.text == "in")
      t.kind = TokenKind::kIn;
    else if (t.text == "not")
      t.kind = TokenKind::kNotKw;
    return t;
  }
  if (c == '$') {
    ++pos_;
    while (pos_ < text_.size() && IsIdentChar(text_[pos_])) ++pos_;
    if (pos_ == start + 1) return Error(start, "expected a metadata name after '$'");
    t.kind = TokenKind::kMeta;
    t.text.assign(text_.substr(start + 1, pos_ - start - 1));
    t.length = pos_ - start;
    return t;
  }
  if (c == '`') {
    size_t end = text_.find('`', start + 1);
    if (end == std::string_view::npos) return Error(start, "unterminated `name`");
    if (end == start + 1) return Error(start, "empty `name`");
    t.kind = TokenKind::kIdent;
    t.text.assign(text_.substr(start + 1, end - start - 1));
    pos_ = end + 1;
    t.length = pos_ - start;
    return t;
  }
  if (IsDigit(c)) return LexNumber(start);
  if (c == '"' || c == '\'') return LexString(start, c);

  switch (c) {
    case '(':
      return op(TokenKind::kLParen, 1);
    case ')':
      return op(TokenKind::kRParen, 1);
    case '[':
      return op(TokenKind::kLBracket, 1);
    case ']':
      return op(TokenKind::kRBracket, 1);
    case ',':
      return op(TokenKind::kComma, 1);
    case '.':
      return op(TokenKind::kDot, 1);
    case '+':
      return op(TokenKind::kPlus, 1);
    case '-':
      return op(TokenKind::kMinus, 1);
    case '*':
      return op(TokenKind::kStar, 1);
    case '/':
      return op(TokenKind::kSlash, 1);
    case '%':
      return op(TokenKind::kPercent, 1);
    case '<':
      return next == '=' ? op(TokenKind::kLe, 2) : op(TokenKind::kLt, 1);
    case '>':
      return next == '=' ? op(TokenKind::kGe, 2) : op(TokenKind::kGt, 1);
    case '!':
      return next == '=' ? op(TokenKind::kNe, 2) : op(TokenKind::kNot, 1);
    case '=':
      if (next == '=') return op(TokenKind::kEq, 2);
      return Error(start, "unexpected '='; did you mean '=='?");
    case '&':
      if (next == '&') return op(TokenKind::kAnd, 2);
      return Error(start, "unexpected '&'; did you mean '&&'?");
    case '|':
      if (next == '|') return op(TokenKind::kOr, 2);
      return Error(start, "unexpected '|'; did you mean '||'?");
    default:
      break;
  }
  auto uc = static_cast<unsigned char>(c);
  if (uc >= 0x20 && uc < 0x7F) return Error(start, std::string("unexpected character '") + c + "'");
  return Error(start, "unexpected byte " + std::to_string(uc));
}

// Numbers follow JSON: digits, then an optional fraction and exponent. Integers that do not fit
// in int64 become doubles, as they do when a source reads JSON.
Token Lexer::LexNumber(size_t start) {
  size_t p = start;
  bool is_int = true;
  while (p < text_.size() && IsDigit(text_[p])) ++p;
  if (p < text_.size() && text_[p] == '.') {
    if (p + 1 >= text_.size() || !IsDigit(text_[p + 1])) {
      return Error(p, "expected a digit after '.' in a number");
    }
    is_int = false;
    ++p;
    while (p < text_.size() && IsDigit(text_[p])) ++p;
  }
  if (p < text_.size() && (text_[p] == 'e' || text_[p] == 'E')) {
    is_int = false;
    ++p;
    if (p < text_.size() && (text_[p] == '+' || text_[p] == '-')) ++p;
    if (p >= text_.size() || !IsDigit(text_[p]))
      return Error(p, "expected a digit in the exponent");
    while (p < text_.size() && IsDigit(text_[p])) ++p;
  }
  if (p < text_.size() && IsIdentStart(text_[p])) {
    return Error(p, "unexpected '" + std::string(1, text_[p]) + "' after a number");
  }
  Token t;
  t.offset = start;
  t.length = p - start;
  const char* first = text_.data() + start;
  const char* last = text_.data() + p;
  if (is_int) {
    auto r = std::from_chars(first, last, t.int_value);
    if (r.ec == std::errc() && r.ptr == last) {
      t.kind = TokenKind::kInt;
      pos_ = p;
      return t;
    }
  }
  auto r = std::from_chars(first, last, t.double_value);
  if (r.ec != std::errc() || r.ptr != last) return Error(start, "number out of range");
  t.kind = TokenKind::kDouble;
  pos_ = p;
  return t;
}

// Strings take JSON escapes; a single-quoted string also takes \'.
Token Lexer::LexString(size_t start, char quote) {
  Token t;
  t.kind = TokenKind::kString;
  t.offset = start;
  size_t p = start + 1;
  while (true) {
    if (p >= text_.size()) return Error(start, "unterminated string");
    char c = text_[p];
    if (c == quote) {
      ++p;
      break;
    }
    if (c != '\\') {
      t.text.push_back(c);
      ++p;
      continue;
    }
    if (p + 1 >= text_.size()) return Error(start, "unterminated string");
    char e = text_[p + 1];
    switch (e) {
      case '"':
        t.text.push_back('"');
        break;
      case '\'':
        t.text.push_back('\'');
        break;
      case '\\':
        t.text.push_back('\\');
        break;
      case '/':
        t.text.push_back('/');
        break;
      case 'b':
        t.text.push_back('\b');
        break;
      case 'f':
        t.text.push_back('\f');
        break;
      case 'n':
        t.text.push_back('\n');
        break;
      case 'r':
        t.text.push_back('\r');
        break;
      case 't':
        t.text.push_back('\t');
        break;
      case 'u': {
        auto hex4 = [&](size_t at, uint32_t* out) {
          if (at + 4 > text_.size()) return false;
          uint32_t v = 0;
          for (size_t i = 0; i < 4; ++i) {
            int h = HexValue(text_[at + i]);
            if (h < 0) return false;
            v = v * 16 + static_cast<uint32_t>(h);
          }
          *out = v;
          return true;
        };
        uint32_t cp;
        if (!hex4(p + 2, &cp)) return Error(p, "expected 4 hex digits after '\\u'");
        size_t len = 6;
        if (cp >= 0xD800 && cp <= 0xDBFF) {
          uint32_t lo;
          if (p + 8 <= text_.size() && text_[p + 6] == '\\' && text_[p + 7] == 'u' &&
              hex4(p + 8, &lo) && lo >= 0xDC00 && lo <= 0xDFFF) {
            cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
            len = 12;
          } else {
            return Error(p, "unpaired surrogate in '\\u' escape");
          }
        } else if (cp >= 0xDC00 && cp <= 0xDFFF) {
          return Error(p, "unpaired surrogate in '\\u' escape");
        }
        AppendUtf8(t.text, cp);
        p += len;
        continue;
      }
      default:
        return Error(p, std::string("invalid escape '\\") + e + "' in string");
    }
    p += 2;
  }
  t.length = p - start;
  pos_ = p;
  return t;
}

std::string DescribeToken(std::string_view text, const Token& token) {
  if (token.kind == TokenKind::kEnd) return "end of expression";
  std::string_view s = text.substr(token.offset, token.length);
  if (s.size() > 30) return "'" + std::string(s.substr(0, 27)) + "...'";
  return "'" + std::string(s) + "'";
}

}  // namespace streamrun
