// Value comparison and JSON output.
#include "engine/value.h"

#include <charconv>
#include <cmath>
#include <cstring>

namespace streamrun {

bool operator==(const Value& a, const Value& b) {
  if (a.is_number() && b.is_number()) {
    if (a.kind() == Value::Kind::kInt && b.kind() == Value::Kind::kInt)
      return a.as_int() == b.as_int();
    return a.to_double() == b.to_double();
  }
  if (a.kind() != b.kind()) return false;
  switch (a.kind()) {
    case Value::Kind::kMissing:
    case Value::Kind::kNull:
      return true;
    case Value::Kind::kBool:
      return a.as_bool() == b.as_bool();
    case Value::Kind::kString:
    case Value::Kind::kJson:
      return a.as_string() == b.as_string();
    default:
      return false;
  }
}

int CompareValues(const Value& a, const Value& b) {
  if (a.is_number() && b.is_number()) {
    if (a.kind() == Value::Kind::kInt && b.kind() == Value::Kind::kInt) {
      return a.as_int() < b.as_int() ? -1 : (a.as_int() > b.as_int() ? 1 : 0);
    }
    double x = a.to_double(), y = b.to_double();
    return x < y ? -1 : (x > y ? 1 : 0);
  }
  if (a.kind() != b.kind()) return a.kind() < b.kind() ? -1 : 1;
  switch (a.kind()) {
    case Value::Kind::kBool:
      return static_cast<int>(a.as_bool()) - static_cast<int>(b.as_bool());
    case Value::Kind::kString:
    case Value::Kind::kJson: {
      int c = a.as_string().compare(b.as_string());
      return c < 0 ? -1 : (c > 0 ? 1 : 0);
    }
    default:
      return 0;
  }
}

namespace {

// Length of the valid UTF-8 sequence at s[i], or 0 if the bytes there are not valid UTF-8.
size_t Utf8SequenceLength(std::string_view s, size_t i) {
  auto c = static_cast<unsigned char>(s[i]);
  auto cont = [&](size_t k) {
    return i + k < s.size() && (static_cast<unsigned char>(s[i + k]) & 0xC0) == 0x80;
  };
  if (c < 0x80) return 1;
  if (c >= 0xC2 && c <= 0xDF) return cont(1) ? 2 : 0;
  if (c >= 0xE0 && c <= 0xEF) {
    if (!cont(1) || !cont(2)) return 0;
    auto c1 = static_cast<unsigned char>(s[i + 1]);
    if (c == 0xE0 && c1 < 0xA0) return 0;   // overlong
    if (c == 0xED && c1 >= 0xA0) return 0;  // surrogates
    return 3;
  }
  if (c >= 0xF0 && c <= 0xF4) {
    if (!cont(1) || !cont(2) || !cont(3)) return 0;
    auto c1 = static_cast<unsigned char>(s[i + 1]);
    if (c == 0xF0 && c1 < 0x90) return 0;
    if (c == 0xF4 && c1 >= 0x90) return 0;
    return 4;
  }
  return 0;
}

}  // namespace

bool IsValidUtf8(std::string_view s) {
  for (size_t i = 0; i < s.size();) {
    size_t n = Utf8SequenceLength(s, i);
    if (n == 0) return false;
    i += n;
  }
  return true;
}

void AppendJsonString(std::string& out, std::string_view s) {
  static const char kHex[] = "0123456789abcdef";
  out.push_back('"');
  size_t i = 0;
  while (i < s.size()) {
    // Copy runs of plain ASCII at once.
    size_t start = i;
    while (i < s.size()) {
      auto c = static_cast<unsigned char>(s[i]);
      if (c < 0x20 || c == '"' || c == '\\' || c >= 0x80) break;
      ++i;
    }
    out.append(s.data() + start, i - start);
    if (i >= s.size()) break;
    auto c = static_cast<unsigned char>(s[i]);
    if (c >= 0x80) {
      size_t n = Utf8SequenceLength(s, i);
      if (n == 0) {
        out.append("\xEF\xBF\xBD");  // U+FFFD REPLACEMENT CHARACTER
        ++i;
      } else {
        out.append(s.data() + i, n);
        i += n;
      }
      continue;
    }
    switch (c) {
      case '"':
        out.append("\\\"");
        break;
      case '\\':
        out.append("\\\\");
        break;
      case '\n':
        out.append("\\n");
        break;
      case '\r':
        out.append("\\r");
        break;
      case '\t':
        out.append("\\t");
        break;
      case '\b':
        out.append("\\b");
        break;
      case '\f':
        out.append("\\f");
        break;
      default:
        out.append("\\u00");
        out.push_back(kHex[c >> 4]);
        out.push_back(kHex[c & 15]);
    }
    ++i;
  }
  out.push_back('"');
}

void AppendJson(std::string& out, const Value& v) {
  char buf[32];
  switch (v.kind()) {
    case Value::Kind::kMissing:
    case Value::Kind::kNull:
      out.append("null");
      return;
    case Value::Kind::kBool:
      out.append(v.as_bool() ? "true" : "false");
      return;
    case Value::Kind::kInt: {
      auto r = std::to_chars(buf, buf + sizeof(buf), v.as_int());
      out.append(buf, r.ptr);
      return;
    }
    case Value::Kind::kDouble: {
      double d = v.as_double();
      if (!std::isfinite(d)) {  // JSON has no NaN or infinity
        out.append("null");
        return;
      }
      auto r = std::to_chars(buf, buf + sizeof(buf), d);
      std::string_view text(buf, r.ptr - buf);
      out.append(text);
      if (text.find_first_of(".eE") == std::string_view::npos) out.append(".0");
      return;
    }
    case Value::Kind::kString:
      AppendJsonString(out, v.as_string());
      return;
    case Value::Kind::kJson:
      out.append(v.as_string());
      return;
  }
}

const char* KindName(Value::Kind kind) {
  switch (kind) {
    case Value::Kind::kMissing:
      return "missing";
    case Value::Kind::kNull:
      return "null";
    case Value::Kind::kBool:
      return "boolean";
    case Value::Kind::kInt:
    case Value::Kind::kDouble:
      return "number";
    case Value::Kind::kString:
      return "string";
    case Value::Kind::kJson:
      return "object or array";
  }
  return "?";
}

}  // namespace streamrun
