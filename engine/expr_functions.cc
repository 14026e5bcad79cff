// The built-in functions of the expression language, in one table (kFunctions). Each function
// takes its evaluated arguments; see docs/expressions.md for what each one does.
//
// Results that are parts of an argument (trim, substr) point into the argument's memory; new
// strings go to ctx.arena.
#include <charconv>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <string>

#include "engine/civil_time.h"
#include "engine/expr_node.h"

namespace streamrun {
namespace {

using Kind = Value::Kind;

// ---- Argument checks. Each sets ctx.error on failure, naming the function.

bool StringArg(const Value& v, const char* fn, EvalContext& ctx, std::string_view* out) {
  if (v.kind() != Kind::kString) {
    Fail(ctx, std::string(fn) + "() needs a string, got " + DescribeValue(v));
    return false;
  }
  *out = v.as_string();
  return true;
}

bool NumberArg(const Value& v, const char* fn, EvalContext& ctx) {
  if (v.is_number()) return true;
  Fail(ctx, std::string(fn) + "() needs a number, got " + DescribeValue(v));
  return false;
}

// Whether `d` converts to int64 without overflow (after truncation).
bool FitsInt64(double d) { return d >= -9223372036854775808.0 && d < 9223372036854775808.0; }

// An integer, or a number without fraction.
bool IntArg(const Value& v, const char* fn, EvalContext& ctx, int64_t* out) {
  if (v.kind() == Kind::kInt) {
    *out = v.as_int();
    return true;
  }
  if (v.kind() == Kind::kDouble && std::trunc(v.as_double()) == v.as_double() &&
      FitsInt64(v.as_double())) {
    *out = static_cast<int64_t>(v.as_double());
    return true;
  }
  Fail(ctx, std::string(fn) + "() needs an integer, got " + DescribeValue(v));
  return false;
}

// Epoch milliseconds, from a number or an RFC 3339 string.
bool TimeArg(const Value& v, const char* fn, EvalContext& ctx, int64_t* out) {
  if (ToEventTime(v, out)) return true;
  Fail(ctx, std::string(fn) + "() needs a time (epoch milliseconds or an RFC 3339 string), got " +
                DescribeValue(v));
  return false;
}

// Formats a number as JSON does ("2.0" for a double without fraction). Returns a view of `buf`.
std::string_view FormatNumber(const Value& v, char (&buf)[40]) {
  if (v.kind() == Kind::kInt) {
    auto r = std::to_chars(buf, buf + sizeof(buf), v.as_int());
    return std::string_view(buf, r.ptr - buf);
  }
  auto r = std::to_chars(buf, buf + sizeof(buf) - 2, v.as_double());
  std::string_view text(buf, r.ptr - buf);
  if (text.find_first_of(".eEn") == std::string_view::npos) {  // 'n': inf, nan
    *r.ptr = '.';
    *(r.ptr + 1) = '0';
    text = std::string_view(buf, text.size() + 2);
  }
  return text;
}

// A number rounded by `f` (std::round, std::floor, std::ceil): an integer when it fits.
Value RoundedNumber(double d) {
  if (FitsInt64(d)) return Value::Int(static_cast<int64_t>(d));
  return Value::Double(d);
}

size_t CodePoints(std::string_view s) {
  size_t n = 0;
  for (char c : s) n += (static_cast<unsigned char>(c) & 0xC0) != 0x80;
  return n;
}

// Byte offset of code point `cp` in `s` (s.size() if past the end).
size_t ByteOffsetOf(std::string_view s, size_t cp) {
  size_t i = 0;
  for (; i < s.size(); ++i) {
    if ((static_cast<unsigned char>(s[i]) & 0xC0) != 0x80) {
      if (cp == 0) return i;
      --cp;
    }
  }
  return i;
}

// Number of elements of a JSON array, or members of an object, given its text.
int64_t JsonLength(std::string_view json) {
  int depth = 0;
  int64_t count = 0;
  bool any = false;
  for (size_t i = 0; i < json.size(); ++i) {
    char c = json[i];
    if (c == '"') {
      for (++i; i < json.size() && json[i] != '"'; ++i) {
        if (json[i] == '\\') ++i;
      }
      if (depth == 1) any = true;
      continue;
    }
    if (c == '[' || c == '{') {
      if (depth == 1) any = true;
      ++depth;
    } else if (c == ']' || c == '}') {
      --depth;
    } else if (c == ',' && depth == 1) {
      ++count;
    } else if (depth == 1 && c != ' ' && c != '\t' && c != '\n' && c != '\r') {
      any = true;
    }
  }
  return any ? count + 1 : 0;
}

bool IsSpace(char c) {
  return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v';
}

// ---- String functions.

template <bool kUpper>
Value ChangeCase(const Value* a, size_t, EvalContext& ctx) {
  std::string_view s;
  if (!StringArg(a[0], kUpper ? "upper" : "lower", ctx, &s)) return Value::Null();
  auto needs = [](char c) { return kUpper ? (c >= 'a' && c <= 'z') : (c >= 'A' && c <= 'Z'); };
  size_t i = 0;
  while (i < s.size() && !needs(s[i])) ++i;
  if (i == s.size()) return a[0];  // already in that case: no copy
  char* p = ArenaAllocate(ctx, s.size());
  if (p == nullptr) return Value::Null();
  for (size_t k = 0; k < s.size(); ++k) p[k] = needs(s[k]) ? static_cast<char>(s[k] ^ 0x20) : s[k];
  return Value::String(std::string_view(p, s.size()));
}

Value Trim(const Value* a, size_t, EvalContext& ctx) {
  std::string_view s;
  if (!StringArg(a[0], "trim", ctx, &s)) return Value::Null();
  while (!s.empty() && IsSpace(s.front())) s.remove_prefix(1);
  while (!s.empty() && IsSpace(s.back())) s.remove_suffix(1);
  return Value::String(s);
}

Value Length(const Value* a, size_t, EvalContext& ctx) {
  if (a[0].kind() == Kind::kString)
    return Value::Int(static_cast<int64_t>(CodePoints(a[0].as_string())));
  if (a[0].kind() == Kind::kJson) return Value::Int(JsonLength(a[0].as_string()));
  return Fail(ctx, "length() needs a string, array or object, got " + DescribeValue(a[0]));
}

enum class Match { kContains, kStarts, kEnds };
template <Match kMatch>
Value StringMatch(const Value* a, size_t, EvalContext& ctx) {
  const char* fn = kMatch == Match::kContains ? "contains"
                   : kMatch == Match::kStarts ? "starts_with"
                                              : "ends_with";
  std::string_view s, t;
  if (!StringArg(a[0], fn, ctx, &s) || !StringArg(a[1], fn, ctx, &t)) return Value::Null();
  if constexpr (kMatch == Match::kContains) return Value::Bool(s.find(t) != std::string_view::npos);
  if constexpr (kMatch == Match::kStarts) return Value::Bool(s.starts_with(t));
  return Value::Bool(s.ends_with(t));
}

// substr(s, start[, len]): code points from `start` (0-based; negative counts from the end).
Value Substr(const Value* a, size_t n, EvalContext& ctx) {
  std::string_view s;
  int64_t start, len = INT64_MAX;
  if (!StringArg(a[0], "substr", ctx, &s) || !IntArg(a[1], "substr", ctx, &start))
    return Value::Null();
  if (n > 2 && !IntArg(a[2], "substr", ctx, &len)) return Value::Null();
  const auto total = static_cast<int64_t>(CodePoints(s));
  if (start < 0) start = start < -total ? 0 : total + start;
  if (start > total) start = total;
  if (len < 0) len = 0;
  int64_t end = len > total - start ? total : start + len;
  size_t from = ByteOffsetOf(s, static_cast<size_t>(start));
  size_t to = ByteOffsetOf(s, static_cast<size_t>(end));
  return Value::String(s.substr(from, to - from));
}

Value Replace(const Value* a, size_t, EvalContext& ctx) {
  std::string_view s, from, to;
  if (!StringArg(a[0], "replace", ctx, &s) || !StringArg(a[1], "replace", ctx, &from) ||
      !StringArg(a[2], "replace", ctx, &to)) {
    return Value::Null();
  }
  if (from.empty()) return a[0];
  size_t count = 0;
  for (size_t p = s.find(from); p != std::string_view::npos; p = s.find(from, p + from.size()))
    ++count;
  if (count == 0) return a[0];
  const size_t size = s.size() - count * from.size() + count * to.size();
  char* out = ArenaAllocate(ctx, size);
  if (out == nullptr) return Value::Null();
  char* w = out;
  // Views of empty strings may have a null data(), which memcpy must not see even for 0 bytes.
  auto put = [&w](const char* src, size_t n) {
    if (n == 0) return;
    std::memcpy(w, src, n);
    w += n;
  };
  size_t last = 0;
  for (size_t p = s.find(from); p != std::string_view::npos; p = s.find(from, p + from.size())) {
    put(s.data() + last, p - last);
    put(to.data(), to.size());
    last = p + from.size();
  }
  put(s.data() + last, s.size() - last);
  return Value::String(std::string_view(out, size));
}

// The text of a value as string() and concat() see it. `buf` holds formatted numbers.
std::string_view TextOf(const Value& v, char (&buf)[40]) {
  switch (v.kind()) {
    case Kind::kBool:
      return v.as_bool() ? "true" : "false";
    case Kind::kInt:
    case Kind::kDouble:
      return FormatNumber(v, buf);
    case Kind::kString:
    case Kind::kJson:
      return v.as_string();
    default:
      return std::string_view();
  }
}

Value Concat(const Value* a, size_t n, EvalContext& ctx) {
  char bufs[kMaxCallArgs][40];
  std::string_view parts[kMaxCallArgs];
  size_t size = 0;
  for (size_t i = 0; i < n; ++i) {
    parts[i] = TextOf(a[i], bufs[i]);
    size += parts[i].size();
  }
  char* out = ArenaAllocate(ctx, size);
  if (out == nullptr) return Value::Null();
  char* w = out;
  for (size_t i = 0; i < n; ++i) {
    if (parts[i].empty()) continue;
    std::memcpy(w, parts[i].data(), parts[i].size());
    w += parts[i].size();
  }
  return Value::String(std::string_view(out, size));
}

Value String(const Value* a, size_t, EvalContext& ctx) {
  if (a[0].kind() == Kind::kString) return a[0];
  if (a[0].kind() == Kind::kJson) return Value::String(a[0].as_string());
  if (a[0].kind() == Kind::kBool) return Value::String(a[0].as_bool() ? "true" : "false");
  char buf[40];
  return ArenaString(ctx, TextOf(a[0], buf));
}

Value Int(const Value* a, size_t, EvalContext& ctx) {
  const Value& v = a[0];
  switch (v.kind()) {
    case Kind::kInt:
      return v;
    case Kind::kBool:
      return Value::Int(v.as_bool() ? 1 : 0);
    case Kind::kDouble: {
      double d = std::trunc(v.as_double());
      if (FitsInt64(d)) return Value::Int(static_cast<int64_t>(d));
      break;
    }
    case Kind::kString: {
      std::string_view s = v.as_string();
      const char* first = s.data();
      const char* last = s.data() + s.size();
      int64_t i;
      auto r = std::from_chars(first, last, i);
      if (!s.empty() && r.ec == std::errc() && r.ptr == last) return Value::Int(i);
      double d;
      auto rd = std::from_chars(first, last, d);
      if (!s.empty() && rd.ec == std::errc() && rd.ptr == last && FitsInt64(std::trunc(d))) {
        return Value::Int(static_cast<int64_t>(std::trunc(d)));
      }
      break;
    }
    default:
      break;
  }
  return Fail(ctx, "int() cannot convert " + DescribeValue(v));
}

Value Float(const Value* a, size_t, EvalContext& ctx) {
  const Value& v = a[0];
  switch (v.kind()) {
    case Kind::kInt:
    case Kind::kDouble:
      return Value::Double(v.to_double());
    case Kind::kBool:
      return Value::Double(v.as_bool() ? 1 : 0);
    case Kind::kString: {
      std::string_view s = v.as_string();
      double d;
      auto r = std::from_chars(s.data(), s.data() + s.size(), d);
      if (!s.empty() && r.ec == std::errc() && r.ptr == s.data() + s.size() && std::isfinite(d)) {
        return Value::Double(d);
      }
      break;
    }
    default:
      break;
  }
  return Fail(ctx, "float() cannot convert " + DescribeValue(v));
}

// ---- Numbers.

Value Abs(const Value* a, size_t, EvalContext& ctx) {
  if (!NumberArg(a[0], "abs", ctx)) return Value::Null();
  if (a[0].kind() == Kind::kInt) {
    if (a[0].as_int() == INT64_MIN) return Fail(ctx, "integer overflow in abs()");
    return Value::Int(a[0].as_int() < 0 ? -a[0].as_int() : a[0].as_int());
  }
  return Value::Double(std::fabs(a[0].as_double()));
}

enum class Rounding { kRound, kFloor, kCeil };
template <Rounding kHow>
double RoundBy(double d) {
  if constexpr (kHow == Rounding::kRound) return std::round(d);
  if constexpr (kHow == Rounding::kFloor) return std::floor(d);
  return std::ceil(d);
}

template <Rounding kHow>
Value RoundFn(const Value* a, size_t n, EvalContext& ctx) {
  const char* fn = kHow == Rounding::kRound ? "round" : kHow == Rounding::kFloor ? "floor" : "ceil";
  if (!NumberArg(a[0], fn, ctx)) return Value::Null();
  if (n > 1) {  // round(x, digits): a number with `digits` decimals
    int64_t digits;
    if (!IntArg(a[1], fn, ctx, &digits)) return Value::Null();
    if (digits < -18 || digits > 18) return Fail(ctx, std::string(fn) + "() takes 0 to 18 digits");
    double scale = std::pow(10.0, static_cast<double>(digits));
    return Value::Double(RoundBy<kHow>(a[0].to_double() * scale) / scale);
  }
  if (a[0].kind() == Kind::kInt) return a[0];
  return RoundedNumber(RoundBy<kHow>(a[0].as_double()));
}

// ---- Types.

Value IsNull(const Value* a, size_t, EvalContext&) { return Value::Bool(a[0].is_nullish()); }
Value IsString(const Value* a, size_t, EvalContext&) {
  return Value::Bool(a[0].kind() == Kind::kString);
}
Value IsNumber(const Value* a, size_t, EvalContext&) { return Value::Bool(a[0].is_number()); }
Value IsBool(const Value* a, size_t, EvalContext&) {
  return Value::Bool(a[0].kind() == Kind::kBool);
}

// ---- Time.

Value ToMillis(const Value* a, size_t, EvalContext& ctx) {
  int64_t t;
  if (!TimeArg(a[0], "to_millis", ctx, &t)) return Value::Null();
  return Value::Int(t);
}

Value FormatTime(const Value* a, size_t, EvalContext& ctx) {
  int64_t t;
  if (!TimeArg(a[0], "format_time", ctx, &t)) return Value::Null();
  char* out = ArenaAllocate(ctx, kRfc3339Length);
  if (out == nullptr) return Value::Null();
  if (!FormatRfc3339(t, out)) return Fail(ctx, "format_time(): time outside the years 0 to 9999");
  return Value::String(std::string_view(out, kRfc3339Length));
}

Value Date(const Value* a, size_t, EvalContext& ctx) {
  int64_t t;
  if (!TimeArg(a[0], "date", ctx, &t)) return Value::Null();
  char buf[kRfc3339Length];
  if (!FormatRfc3339(t, buf)) return Fail(ctx, "date(): time outside the years 0 to 9999");
  return ArenaString(ctx, std::string_view(buf, 10));
}

enum class Part { kYear, kMonth, kDay, kHour, kMinute, kSecond, kDayOfWeek };
template <Part kPart>
Value TimePart(const Value* a, size_t, EvalContext& ctx) {
  static constexpr const char* kNames[] = {"year",   "month",  "day",        "hour",
                                           "minute", "second", "day_of_week"};
  int64_t t, days, ms;
  if (!TimeArg(a[0], kNames[static_cast<int>(kPart)], ctx, &t)) return Value::Null();
  SplitDays(t, &days, &ms);
  if constexpr (kPart == Part::kHour) return Value::Int(ms / 3600000);
  if constexpr (kPart == Part::kMinute) return Value::Int(ms / 60000 % 60);
  if constexpr (kPart == Part::kSecond) return Value::Int(ms / 1000 % 60);
  if constexpr (kPart == Part::kDayOfWeek)
    return Value::Int((days % 7 + 10) % 7 + 1);  // 1970-01-01: Thursday
  CivilDate date = CivilFromDays(days);
  if constexpr (kPart == Part::kYear) return Value::Int(date.year);
  if constexpr (kPart == Part::kMonth) return Value::Int(date.month);
  return Value::Int(date.day);
}

// millis(n), seconds(n), ...: a duration in whole milliseconds (fractions truncated).
template <int64_t kUnit>
Value Duration(const Value* a, size_t, EvalContext& ctx) {
  static constexpr const char* kName = kUnit == 1         ? "millis"
                                       : kUnit == 1000    ? "seconds"
                                       : kUnit == 60000   ? "minutes"
                                       : kUnit == 3600000 ? "hours"
                                                          : "days";
  if (!NumberArg(a[0], kName, ctx)) return Value::Null();
  if (a[0].kind() == Kind::kInt) {
    int64_t r;
    if (__builtin_mul_overflow(a[0].as_int(), kUnit, &r))
      return Fail(ctx, std::string(kName) + "(): overflow");
    return Value::Int(r);
  }
  double d = std::trunc(a[0].as_double() * static_cast<double>(kUnit));
  if (!FitsInt64(d)) return Fail(ctx, std::string(kName) + "(): overflow");
  return Value::Int(static_cast<int64_t>(d));
}

// time_bucket(t, size): the start of the `size`-ms bucket that holds t (buckets start at
// multiples of size from the epoch, like tumbling windows).
Value TimeBucket(const Value* a, size_t, EvalContext& ctx) {
  int64_t t, size;
  if (!TimeArg(a[0], "time_bucket", ctx, &t) || !IntArg(a[1], "time_bucket", ctx, &size))
    return Value::Null();
  if (size <= 0)
    return Fail(ctx, "time_bucket() needs a positive size, got " + std::to_string(size));
  int64_t r = t % size;
  if (r < 0) r += size;
  return Value::Int(t - r);
}

constexpr uint8_t kAny = kMaxCallArgs;

// Every function. Names are what users write; keep docs/expressions.md in step.
const FunctionDef kFunctions[] = {
    // name, min, max, op, null in -> null out, call
    {"lower", 1, 1, Op::kCall, true, ChangeCase<false>},
    {"upper", 1, 1, Op::kCall, true, ChangeCase<true>},
    {"trim", 1, 1, Op::kCall, true, Trim},
    {"length", 1, 1, Op::kCall, true, Length},
    {"contains", 2, 2, Op::kCall, true, StringMatch<Match::kContains>},
    {"starts_with", 2, 2, Op::kCall, true, StringMatch<Match::kStarts>},
    {"ends_with", 2, 2, Op::kCall, true, StringMatch<Match::kEnds>},
    {"substr", 2, 3, Op::kCall, true, Substr},
    {"replace", 3, 3, Op::kCall, true, Replace},
    {"concat", 1, kAny, Op::kCall, false, Concat},
    {"string", 1, 1, Op::kCall, true, String},
    {"int", 1, 1, Op::kCall, true, Int},
    {"float", 1, 1, Op::kCall, true, Float},
    {"coalesce", 1, kAny, Op::kCoalesce, false, nullptr},
    {"if", 3, 3, Op::kIf, false, nullptr},
    {"abs", 1, 1, Op::kCall, true, Abs},
    {"round", 1, 2, Op::kCall, true, RoundFn<Rounding::kRound>},
    {"floor", 1, 2, Op::kCall, true, RoundFn<Rounding::kFloor>},
    {"ceil", 1, 2, Op::kCall, true, RoundFn<Rounding::kCeil>},
    {"is_null", 1, 1, Op::kCall, false, IsNull},
    {"is_string", 1, 1, Op::kCall, false, IsString},
    {"is_number", 1, 1, Op::kCall, false, IsNumber},
    {"is_bool", 1, 1, Op::kCall, false, IsBool},
    {"to_millis", 1, 1, Op::kCall, true, ToMillis},
    {"format_time", 1, 1, Op::kCall, true, FormatTime},
    {"date", 1, 1, Op::kCall, true, Date},
    {"year", 1, 1, Op::kCall, true, TimePart<Part::kYear>},
    {"month", 1, 1, Op::kCall, true, TimePart<Part::kMonth>},
    {"day", 1, 1, Op::kCall, true, TimePart<Part::kDay>},
    {"hour", 1, 1, Op::kCall, true, TimePart<Part::kHour>},
    {"minute", 1, 1, Op::kCall, true, TimePart<Part::kMinute>},
    {"second", 1, 1, Op::kCall, true, TimePart<Part::kSecond>},
    {"day_of_week", 1, 1, Op::kCall, true, TimePart<Part::kDayOfWeek>},
    {"millis", 1, 1, Op::kCall, true, Duration<1>},
    {"seconds", 1, 1, Op::kCall, true, Duration<1000>},
    {"minutes", 1, 1, Op::kCall, true, Duration<60000>},
    {"hours", 1, 1, Op::kCall, true, Duration<3600000>},
    {"days", 1, 1, Op::kCall, true, Duration<86400000>},
    {"time_bucket", 2, 2, Op::kCall, true, TimeBucket},
};

}  // namespace

const FunctionDef* FindFunction(std::string_view name) {
  for (const FunctionDef& f : kFunctions) {
    if (name == f.name) return &f;
  }
  return nullptr;
}

std::vector<std::string_view> FunctionNames() {
  std::vector<std::string_view> names;
  for (const FunctionDef& f : kFunctions) names.emplace_back(f.name);
  return names;
}

bool ToEventTime(const Value& v, int64_t* millis) {
  switch (v.kind()) {
    case Kind::kInt:
      *millis = v.as_int();
      return true;
    case Kind::kDouble: {
      double d = std::trunc(v.as_double());
      if (!FitsInt64(d)) return false;  // also NaN
      *millis = static_cast<int64_t>(d);
      return true;
    }
    case Kind::kString:
      return ParseRfc3339(v.as_string(), millis);
    default:
      return false;
  }
}

}  // namespace streamrun
