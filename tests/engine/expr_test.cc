// Tests of the expression language (engine/expr.h): parsing, operators, null rules, functions,
// errors, binding, and the RFC 3339 event-time conversion.
#include "engine/expr.h"

#include <doctest/doctest.h>

#include <string>
#include <utility>
#include <vector>

#include "engine/civil_time.h"

namespace streamrun {
namespace {

// A record for a test: field paths and their values. Fields an expression reads that are not
// listed are missing.
using Record = std::vector<std::pair<FieldPath, Value>>;

// String results live here for the whole test run: the tests only read them right away.
Arena& TestArena() {
  static Arena arena;
  return arena;
}

struct Outcome {
  Value value;       // only valid for results that point into slots or the test arena
  std::string json;  // the result as JSON, written while the expression still exists
  std::string error;
};

// Parses `text` (which must parse), binds it to a layout of its own fields in reverse order (so
// slots differ from field indexes), and evaluates it on one row holding `record`.
Outcome Evaluate(std::string_view text, const Record& record = {}, int64_t ts = kMinTimestamp) {
  ExprParseError perr;
  auto expr = ParseExpr(text, &perr);
  REQUIRE_MESSAGE(expr != nullptr, std::string(text)
                                       << ": " << perr.message << " at " << perr.offset);
  Layout layout(expr->fields().rbegin(), expr->fields().rend());
  Status st = expr->Bind(layout);
  REQUIRE_MESSAGE(st.ok(), st.message());
  BatchPtr batch = NewBatch(static_cast<uint32_t>(layout.size()));
  Row proto;
  proto.ts = ts;
  size_t r = batch->AddRow(proto);
  for (size_t i = 0; i < layout.size(); ++i) {
    for (const auto& [path, value] : record) {
      if (path == layout[i]) batch->SlotsOf(r)[i] = value;
    }
  }
  EvalContext ctx;
  ctx.slots = batch->SlotsOf(r);
  ctx.row = &batch->rows[r];
  ctx.arena = &TestArena();
  Outcome out;
  out.value = expr->Eval(ctx);
  out.error = ctx.error;
  AppendJson(out.json, out.value);
  return out;
}

// The result as JSON ("3", "3.0", "\"ab\"", "null"); "error: ..." when evaluation failed.
std::string Json(std::string_view text, const Record& record = {}) {
  Outcome out = Evaluate(text, record);
  if (!out.error.empty()) return "error: " + out.error;
  return out.json;
}

std::string ErrorOf(std::string_view text, const Record& record = {}) {
  return Evaluate(text, record).error;
}

ExprParseError ParseError(std::string_view text) {
  ExprParseError err;
  auto expr = ParseExpr(text, &err);
  CHECK_MESSAGE(expr == nullptr, text);
  return err;
}

FieldPath P(std::initializer_list<std::string> segs) { return FieldPath(segs); }

}  // namespace

// ---- Literals and parsing.

TEST_CASE("expr: literals") {
  CHECK(Json("42") == "42");
  CHECK(Json("1.5") == "1.5");
  CHECK(Json("1e3") == "1000.0");
  CHECK(Json("2.5E-1") == "0.25");
  CHECK(Json("9223372036854775807") == "9223372036854775807");
  CHECK(Json("9223372036854775808") == "9223372036854775808.0");  // too big for int64
  CHECK(Json("\"a\\\"b\\n\\u00e9\\ud83d\\ude00\"") == "\"a\\\"b\\n\xC3\xA9\xF0\x9F\x98\x80\"");
  CHECK(Json("'it\\'s'") == "\"it's\"");
  CHECK(Json("'say \"hi\"'") == "\"say \\\"hi\\\"\"");
  CHECK(Json("true") == "true");
  CHECK(Json("false") == "false");
  CHECK(Json("null") == "null");
}

TEST_CASE("expr: precedence follows the table") {
  CHECK(Json("1 + 2 * 3") == "7");
  CHECK(Json("(1 + 2) * 3") == "9");
  CHECK(Json("10 - 4 - 3") == "3");  // left associative
  CHECK(Json("2 * 3 % 4") == "2");
  CHECK(Json("-2 * 3") == "-6");
  CHECK(Json("1 + 2 == 3") == "true");
  CHECK(Json("true || false && false") == "true");
  CHECK(Json("(true || false) && false") == "false");
  CHECK(Json("!false && false") == "false");
  CHECK(Json("!(false && false)") == "true");
  CHECK(Json("(1 < 2) == true") == "true");
  CHECK(Json("-x.y", {{P({"x", "y"}), Value::Int(4)}}) == "-4");
}

TEST_CASE("expr: field paths, quoted keys and metadata become FieldPaths") {
  ExprParseError err;
  auto e = ParseExpr(
      "a.b == 1 && a[\"odd key\"].c != x && `my field` > 0 && $headers.trace != $key && a.b < 3",
      &err);
  REQUIRE(e != nullptr);
  std::vector<FieldPath> want = {P({"a", "b"}),   P({"a", "odd key", "c"}), P({"x"}),
                                 P({"my field"}), P({"$headers", "trace"}), P({"$key"})};
  CHECK(e->fields() == want);
  CHECK(e->text() ==
        "a.b == 1 && a[\"odd key\"].c != x && `my field` > 0 && $headers.trace != $key && a.b < 3");

  auto m = ParseExpr(
      "$timestamp + $partition + $offset + length($topic) + length($headers[\"x-id\"])", &err);
  REQUIRE(m != nullptr);
  want = {P({"$timestamp"}), P({"$partition"}), P({"$offset"}), P({"$topic"}),
          P({"$headers", "x-id"})};
  CHECK(m->fields() == want);
}

TEST_CASE("expr: keywords are names after a dot, and functions are names unless called") {
  CHECK(Json("a.in", {{P({"a", "in"}), Value::Int(1)}}) == "1");
  CHECK(Json("a.null", {{P({"a", "null"}), Value::Int(2)}}) == "2");
  CHECK(Json("date + 1", {{P({"date"}), Value::Int(2)}}) == "3");
}

TEST_CASE("expr: fields read their slots; missing fields are missing") {
  Record rec = {{P({"n"}), Value::Int(5)}, {P({"s"}), Value::String("x")}};
  CHECK(Json("n * 2", rec) == "10");
  CHECK(Json("s", rec) == "\"x\"");
  CHECK(Evaluate("nothing", rec).value.is_missing());
}

TEST_CASE("expr: $event_time reads the row's event time") {
  Outcome out = Evaluate("$event_time + 1", {}, 1000);
  CHECK(out.value.as_int() == 1001);
  ExprParseError err;
  auto e = ParseExpr("$event_time > 0", &err);
  REQUIRE(e != nullptr);
  CHECK(e->fields().empty());
  CHECK(Evaluate("$event_time == null").value.as_bool());  // no event time yet
}

// ---- Operators.

TEST_CASE("expr: integer arithmetic stays integer; '/' always gives a number with a fraction") {
  CHECK(Json("7 + 3") == "10");
  CHECK(Json("7 - 10") == "-3");
  CHECK(Json("7 * 3") == "21");
  CHECK(Json("6 / 3") == "2.0");
  CHECK(Json("7 / 2") == "3.5");
  CHECK(Json("7 % 3") == "1");
  CHECK(Json("-7 % 3") == "-1");  // the sign of the dividend, as in SQL and C
  CHECK(Json("1.5 + 1") == "2.5");
  CHECK(Json("0.5 * 4") == "2.0");
  CHECK(Json("-(3)") == "-3");
  CHECK(Json("-1.5") == "-1.5");
  CHECK(Json("x - 1", {{P({"x"}), Value::Double(2.5)}}) == "1.5");
}

TEST_CASE("expr: division and modulo by zero are evaluation errors") {
  CHECK(ErrorOf("x / 0", {{P({"x"}), Value::Int(1)}}) == "division by zero");
  CHECK(ErrorOf("x / 0.0", {{P({"x"}), Value::Double(1)}}) == "division by zero");
  CHECK(ErrorOf("x % 0", {{P({"x"}), Value::Int(1)}}) == "modulo by zero");
  // Constant expressions that fail are not folded: they fail per record.
  CHECK(ErrorOf("1 / 0") == "division by zero");
}

TEST_CASE("expr: integer overflow is an error") {
  CHECK(ErrorOf("9223372036854775807 + 1") == "integer overflow in '+'");
  CHECK(ErrorOf("-9223372036854775807 - 2") == "integer overflow in '-'");
  CHECK(ErrorOf("4611686018427387904 * 2") == "integer overflow in '*'");
  CHECK(ErrorOf("-x", {{P({"x"}), Value::Int(INT64_MIN)}}) == "integer overflow in '-'");
  CHECK(Json("x % -1", {{P({"x"}), Value::Int(INT64_MIN)}}) == "0");
}

TEST_CASE("expr: '+' concatenates two strings") {
  CHECK(Json("'ab' + \"cd\"") == "\"abcd\"");
  CHECK(Json("s + '!'", {{P({"s"}), Value::String("hi")}}) == "\"hi!\"");
  CHECK(Json("s + ''", {{P({"s"}), Value::String("hi")}}) == "\"hi\"");
}

TEST_CASE("expr: type errors in arithmetic set ctx.error") {
  Record rec = {
      {P({"s"}), Value::String("a")}, {P({"n"}), Value::Int(2)}, {P({"b"}), Value::Bool(true)}};
  CHECK(ErrorOf("s * n", rec) == "cannot multiply string \"a\" and number 2");
  CHECK(ErrorOf("s + n", rec) == "cannot add string \"a\" and number 2");
  CHECK(ErrorOf("n - s", rec) == "cannot subtract number 2 and string \"a\"");
  CHECK(ErrorOf("s / n", rec) == "cannot divide string \"a\" and number 2");
  CHECK(ErrorOf("2.5 % n", rec) ==
        "cannot apply '%' to number 2.5 and number 2: it needs integers");
  CHECK(ErrorOf("-s", rec) == "cannot negate string \"a\"");
  CHECK(ErrorOf("!n", rec) == "cannot apply '!' to number 2");
  CHECK(ErrorOf("b + 1", rec) == "cannot add boolean and number 1");
  // The first error wins.
  CHECK(ErrorOf("s * n + s / n", rec) == "cannot multiply string \"a\" and number 2");
}

TEST_CASE("expr: comparisons") {
  CHECK(Json("1 < 2") == "true");
  CHECK(Json("2 <= 2") == "true");
  CHECK(Json("2 > 2") == "false");
  CHECK(Json("2 >= 2.0") == "true");
  CHECK(Json("1 == 1.0") == "true");
  CHECK(Json("1 != 1.5") == "true");
  CHECK(Json("'abc' < 'abd'") == "true");
  CHECK(Json("'b' > 'abc'") == "true");
  CHECK(Json("'a' == 'a'") == "true");
  CHECK(Json("'1' == 1") == "false");  // no conversion between kinds
  CHECK(Json("true == true") == "true");
  CHECK(Json("true != false") == "true");
}

TEST_CASE("expr: ordering values of different kinds is an error") {
  CHECK(ErrorOf("'a' < 1") == "cannot compare string \"a\" and number 1 with '<'");
  CHECK(ErrorOf("true >= false") == "cannot compare boolean and boolean with '>='");
}

TEST_CASE("expr: kJson values compare by text and have a length") {
  Record rec = {{P({"tags"}), Value::Json("[\"a\",\"b\"]")},
                {P({"obj"}), Value::Json("{\"k\":[1,2],\"s\":\"x,y\"}")}};
  CHECK(Json("tags == tags", rec) == "true");
  CHECK(Json("tags == obj", rec) == "false");
  CHECK(Json("length(tags)", rec) == "2");
  CHECK(Json("length(obj)", rec) == "2");
  CHECK(Json("length(e)", {{P({"e"}), Value::Json("[ ]")}}) == "0");
  CHECK(Json("length(e)", {{P({"e"}), Value::Json("[[],{}]")}}) == "2");
}

TEST_CASE("expr: in and not in") {
  Record rec = {{P({"a"}), Value::String("b")}, {P({"n"}), Value::Int(3)}};
  CHECK(Json("a in ['a', 'b']", rec) == "true");
  CHECK(Json("a in ['x']", rec) == "false");
  CHECK(Json("a not in ['x']", rec) == "true");
  CHECK(Json("a not in ['b']", rec) == "false");
  CHECK(Json("n in ['3', 3.0]", rec) == "true");
  CHECK(Json("n in []", rec) == "false");
  CHECK(Json("n in [1 + 2]", rec) == "true");
  CHECK(Json("missing in ['a']", rec) == "false");
  CHECK(Json("missing in ['a', null]", rec) == "true");
  CHECK(Json("missing not in ['a']", rec) == "true");
  CHECK(Json("1 + 2 in [3] && true", rec) == "true");
}

TEST_CASE("expr: && and || short-circuit and treat null as false") {
  Record rec = {{P({"n"}), Value::Null()}, {P({"s"}), Value::String("x")}};
  CHECK(Json("false && s", rec) == "false");  // s is not evaluated
  CHECK(Json("true || s", rec) == "true");
  CHECK(Json("n && true", rec) == "false");
  CHECK(Json("n || true", rec) == "true");
  CHECK(Json("n || missing", rec) == "false");
  CHECK(ErrorOf("true && s", rec) == "'&&' needs booleans, got string \"x\"");
  CHECK(ErrorOf("false || 1", rec) == "'||' needs booleans, got number 1");
}

// ---- Null rules.

TEST_CASE("expr: == null matches missing and null; != null is its opposite") {
  Record rec = {
      {P({"n"}), Value::Null()}, {P({"z"}), Value::Int(0)}, {P({"e"}), Value::String("")}};
  CHECK(Json("n == null", rec) == "true");
  CHECK(Json("missing == null", rec) == "true");
  CHECK(Json("null == missing", rec) == "true");
  CHECK(Json("z == null", rec) == "false");
  CHECK(Json("e == null", rec) == "false");
  CHECK(Json("n != null", rec) == "false");
  CHECK(Json("missing != null", rec) == "false");
  CHECK(Json("z != null", rec) == "true");
  CHECK(Json("n == missing", rec) == "true");
  CHECK(Json("n == z", rec) == "false");
}

TEST_CASE("expr: comparison with null is false; != against a value is true") {
  Record rec = {{P({"n"}), Value::Null()}};
  CHECK(Json("n < 1", rec) == "false");
  CHECK(Json("n >= 1", rec) == "false");
  CHECK(Json("missing > 'a'", rec) == "false");
  CHECK(Json("null <= null", rec) == "false");
  CHECK(Json("n == 'bot'", rec) == "false");
  CHECK(Json("n != 'bot'", rec) == "true");
}

TEST_CASE("expr: arithmetic with null gives null; !null is true") {
  Record rec = {{P({"n"}), Value::Null()}, {P({"s"}), Value::String("a")}};
  CHECK(Json("n + 1", rec) == "null");
  CHECK(Json("1 - missing", rec) == "null");
  CHECK(Json("n * 'a'", rec) == "null");
  CHECK(Json("s + n", rec) == "null");
  CHECK(Json("n / 0", rec) == "null");
  CHECK(Json("-n", rec) == "null");
  CHECK(Json("!n", rec) == "true");
  CHECK(Json("!missing", rec) == "true");
}

TEST_CASE("expr: the specialised equality forms agree with the general one") {
  Record rec = {{P({"a"}), Value::String("bot")},
                {P({"b"}), Value::String("bot")},
                {P({"n"}), Value::Int(1)}};
  CHECK(Json("a == 'bot'", rec) == "true");
  CHECK(Json("'bot' == a", rec) == "true");
  CHECK(Json("a != 'bot'", rec) == "false");
  CHECK(Json("n == 'bot'", rec) == "false");
  CHECK(Json("n != 'bot'", rec) == "true");
  CHECK(Json("a == b", rec) == "true");
  CHECK(Json("n == 1.0", rec) == "true");
  CHECK(Json("n + 0 == null", rec) == "false");
  CHECK(Json("null != n * 2", rec) == "true");
  CHECK(Json("missing != 'bot'", rec) == "true");
}

// ---- Functions.

TEST_CASE("expr: string functions") {
  Record rec = {{P({"s"}), Value::String("  Hello World ")}};
  CHECK(Json("lower('AbC')") == "\"abc\"");
  CHECK(Json("upper('AbC\xC3\xA9')") == "\"ABC\xC3\xA9\"");  // ASCII letters only
  CHECK(Json("lower('abc')") == "\"abc\"");
  CHECK(Json("trim(s)", rec) == "\"Hello World\"");
  CHECK(Json("length('h\xC3\xA9llo')") == "5");  // code points
  CHECK(Json("length('')") == "0");
  CHECK(Json("contains(s, 'World')", rec) == "true");
  CHECK(Json("contains(s, 'world')", rec) == "false");
  CHECK(Json("starts_with('abc', 'ab')") == "true");
  CHECK(Json("starts_with('abc', 'b')") == "false");
  CHECK(Json("ends_with('abc', 'bc')") == "true");
  CHECK(Json("ends_with('abc', '')") == "true");
  CHECK(Json("replace('a-b-c', '-', '+')") == "\"a+b+c\"");
  CHECK(Json("replace('aaa', 'a', 'bb')") == "\"bbbbbb\"");
  CHECK(Json("replace('abc', 'x', 'y')") == "\"abc\"");
  CHECK(Json("replace('abc', '', 'y')") == "\"abc\"");
  CHECK(Json("replace('abcabc', 'bc', '')") == "\"aa\"");
}

TEST_CASE("expr: substr counts code points from 0, negative start from the end") {
  CHECK(Json("substr('hello', 1)") == "\"ello\"");
  CHECK(Json("substr('hello', 1, 3)") == "\"ell\"");
  CHECK(Json("substr('hello', -3)") == "\"llo\"");
  CHECK(Json("substr('hello', -3, 2)") == "\"ll\"");
  CHECK(Json("substr('hello', 10)") == "\"\"");
  CHECK(Json("substr('hello', -10, 2)") == "\"he\"");
  CHECK(Json("substr('hello', 2, 0)") == "\"\"");
  CHECK(Json("substr('hello', 2, -1)") == "\"\"");
  CHECK(Json("substr('h\xC3\xA9llo', 1, 2)") == "\"\xC3\xA9l\"");
  CHECK(ErrorOf("substr('hello', 'x')") == "substr() needs an integer, got string \"x\"");
}

TEST_CASE("expr: concat converts its arguments and skips nulls") {
  Record rec = {{P({"j"}), Value::Json("{\"a\":1}")}};
  CHECK(Json("concat('a', 1, 2.5, true, null, missing, 'z')") == "\"a12.5truez\"");
  CHECK(Json("concat(j)", rec) == "\"{\\\"a\\\":1}\"");
  CHECK(Json("concat(null)") == "\"\"");
  CHECK(Json("concat(2.0)") == "\"2.0\"");
}

TEST_CASE("expr: string, int and float convert") {
  CHECK(Json("string(12)") == "\"12\"");
  CHECK(Json("string(1.5)") == "\"1.5\"");
  CHECK(Json("string(false)") == "\"false\"");
  CHECK(Json("string('x')") == "\"x\"");
  CHECK(Json("string(null)") == "null");
  CHECK(Json("int('42')") == "42");
  CHECK(Json("int('-42.9')") == "-42");
  CHECK(Json("int(3.99)") == "3");
  CHECK(Json("int(-3.99)") == "-3");
  CHECK(Json("int(true)") == "1");
  CHECK(Json("int(null)") == "null");
  CHECK(ErrorOf("int('4x')") == "int() cannot convert string \"4x\"");
  CHECK(ErrorOf("int('')") == "int() cannot convert string \"\"");
  CHECK(ErrorOf("int(1e300)") == "int() cannot convert number 1e+300");
  CHECK(Json("float(2)") == "2.0");
  CHECK(Json("float('2.5')") == "2.5");
  CHECK(Json("float('1e2')") == "100.0");
  CHECK(ErrorOf("float('nan')") == "float() cannot convert string \"nan\"");
  CHECK(ErrorOf("float('abc')") == "float() cannot convert string \"abc\"");
}

TEST_CASE("expr: coalesce and if evaluate lazily") {
  Record rec = {
      {P({"a"}), Value::Null()}, {P({"b"}), Value::Int(2)}, {P({"s"}), Value::String("s")}};
  CHECK(Json("coalesce(a, missing, b, s * 2)", rec) == "2");  // s * 2 is not evaluated
  CHECK(Json("coalesce(a, missing)", rec) == "null");
  CHECK(Json("if(b > 1, 'big', s * 2)", rec) == "\"big\"");
  CHECK(Json("if(b > 5, s * 2, 'small')", rec) == "\"small\"");
  CHECK(Json("if(a, 1, 0)", rec) == "0");
  CHECK(ErrorOf("if(s, 1, 0)", rec) == "if() needs booleans, got string \"s\"");
}

TEST_CASE("expr: number functions") {
  CHECK(Json("abs(-3)") == "3");
  CHECK(Json("abs(-2.5)") == "2.5");
  CHECK(Json("round(2.5)") == "3");
  CHECK(Json("round(-2.5)") == "-3");  // half away from zero
  CHECK(Json("round(7)") == "7");
  CHECK(Json("round(3.14159, 2)") == "3.14");
  CHECK(Json("floor(-1.5)") == "-2");
  CHECK(Json("ceil(1.2)") == "2");
  CHECK(Json("floor(1e300)") == "1e+300");
  CHECK(Json("ceil(1.21, 1)") == "1.3");
  CHECK(ErrorOf("abs('x')") == "abs() needs a number, got string \"x\"");
  CHECK(Json("abs(null)") == "null");
}

TEST_CASE("expr: type tests") {
  Record rec = {{P({"n"}), Value::Null()}};
  CHECK(Json("is_null(n)", rec) == "true");
  CHECK(Json("is_null(missing)", rec) == "true");
  CHECK(Json("is_null(0)", rec) == "false");
  CHECK(Json("is_string('a')") == "true");
  CHECK(Json("is_string(1)") == "false");
  CHECK(Json("is_number(1.5)") == "true");
  CHECK(Json("is_number('1')") == "false");
  CHECK(Json("is_bool(false)") == "true");
  CHECK(Json("is_bool(null)") == "false");
}

TEST_CASE("expr: string functions reject other kinds; null in gives null out") {
  CHECK(ErrorOf("lower(1)") == "lower() needs a string, got number 1");
  CHECK(ErrorOf("contains('a', 1)") == "contains() needs a string, got number 1");
  CHECK(ErrorOf("length(true)") == "length() needs a string, array or object, got boolean");
  CHECK(Json("lower(missing)") == "null");
  CHECK(Json("replace('a', null, 'b')") == "null");
  CHECK(Json("length(null)") == "null");
}

TEST_CASE("expr: time functions") {
  // 2024-05-01T12:34:56.789Z is a Wednesday.
  const std::string t = "1714566896789";
  CHECK(Json("to_millis('2024-05-01T12:34:56.789Z')") == t);
  CHECK(Json("to_millis(1.9)") == "1");
  CHECK(Json("format_time(" + t + ")") == "\"2024-05-01T12:34:56.789Z\"");
  CHECK(Json("format_time(0)") == "\"1970-01-01T00:00:00.000Z\"");
  CHECK(Json("format_time(-1)") == "\"1969-12-31T23:59:59.999Z\"");
  CHECK(Json("format_time('2024-05-01T14:00:00+02:00')") == "\"2024-05-01T12:00:00.000Z\"");
  CHECK(Json("date(" + t + ")") == "\"2024-05-01\"");
  CHECK(Json("year(" + t + ")") == "2024");
  CHECK(Json("month(" + t + ")") == "5");
  CHECK(Json("day(" + t + ")") == "1");
  CHECK(Json("hour(" + t + ")") == "12");
  CHECK(Json("minute(" + t + ")") == "34");
  CHECK(Json("second(" + t + ")") == "56");
  CHECK(Json("day_of_week(" + t + ")") == "3");
  CHECK(Json("day_of_week(0)") == "4");                       // 1970-01-01: Thursday
  CHECK(Json("day_of_week(-86400000)") == "3");               // 1969-12-31: Wednesday
  CHECK(Json("day_of_week('2024-05-05T00:00:00Z')") == "7");  // Sunday
  CHECK(Json("day_of_week('2024-05-06T00:00:00Z')") == "1");  // Monday
  CHECK(Json("hour(-1)") == "23");
  CHECK(Json("millis(5)") == "5");
  CHECK(Json("seconds(1.5)") == "1500");
  CHECK(Json("minutes(2)") == "120000");
  CHECK(Json("hours(1)") == "3600000");
  CHECK(Json("days(1)") == "86400000");
  CHECK(Json("time_bucket(" + t + ", minutes(1))") == "1714566840000");
  CHECK(Json("time_bucket(-1, 1000)") == "-1000");
  CHECK(Json("time_bucket(2000, 1000)") == "2000");
  CHECK(ErrorOf("time_bucket(1, 0)") == "time_bucket() needs a positive size, got 0");
  CHECK(ErrorOf("hour('yesterday')") ==
        "hour() needs a time (epoch milliseconds or an RFC 3339 string), got string \"yesterday\"");
  CHECK(ErrorOf("format_time(300000000000000)") ==
        "format_time(): time outside the years 0 to 9999");
  CHECK(ErrorOf("hours(9223372036854775807)") == "hours(): overflow");
}

// ---- Parse errors.

TEST_CASE("expr: parse errors point at the offending token") {
  auto check = [](std::string_view text, size_t offset, std::string_view message) {
    ExprParseError err = ParseError(text);
    CHECK_MESSAGE(err.offset == offset, text);
    CHECK_MESSAGE(err.message == message, text);
  };
  check("(a + b", 6, "expected ')' but found end of expression");
  check("(a + b x", 7, "expected ')' but found 'x'");
  check("lowr(a)", 0, "unknown function 'lowr'; did you mean 'lower'?");
  check("a && uppr(b)", 5, "unknown function 'uppr'; did you mean 'upper'?");
  check("frobnicate(b)", 0, "unknown function 'frobnicate'");
  check("x == 'abc", 5, "unterminated string");
  check("a b", 2, "expected an operator or the end of the expression but found 'b'");
  check("a == 1)", 6, "expected an operator or the end of the expression but found ')'");
  check("", 0, "expected an expression but found end of expression");
  check("a +", 3, "expected an expression but found end of expression");
  check("a = 1", 2, "unexpected '='; did you mean '=='?");
  check("a & b", 2, "unexpected '&'; did you mean '&&'?");
  check("a | b", 2, "unexpected '|'; did you mean '||'?");
  check("a # b", 2, "unexpected character '#'");
  check("lower(a, b)", 0, "lower() takes 1 argument, got 2");
  check("substr(a)", 0, "substr() takes 2 or 3 arguments, got 1");
  check("concat()", 0, "concat() takes at least 1 argument, got 0");
  check("replace(a, b)", 0, "replace() takes 3 arguments, got 2");
  check("lower(a b)", 8, "expected ',' or ')' but found 'b'");
  check("a in 'x'", 5, "expected '[' to start the list after 'in' but found ''x''");
  check("a in ['x' 'y']", 10, "expected ',' or ']' but found ''y''");
  check("a not 'x'", 6, "expected 'in' after 'not' but found ''x''");
  check("not a", 0, "unexpected 'not': negate with '!', or write 'x not in [...]'");
  check("['a'] == a", 0, "a list '[...]' is only allowed after 'in' or 'not in'");
  check("a < b < c", 6,
        "comparisons cannot be chained: found '<' after a comparison; combine them with '&&' or "
        "use parentheses");
  check("a == b == c", 7,
        "comparisons cannot be chained: found '==' after a comparison; combine them with '&&' or "
        "use parentheses");
  check("$kye", 0, "unknown metadata field '$kye'; did you mean '$key'?");
  check("$", 0, "expected a metadata name after '$'");
  check("$event_time.x", 11, "'$event_time' is a number and has no fields");
  check("a[0]", 2, "array indexes are not supported; a field path takes [\"key\"] segments");
  check("a[b]", 2, "expected a quoted key in '[...]' but found 'b'");
  check("a.", 2, "expected a field name after '.' but found end of expression");
  check("a.'b'", 2, "expected a field name after '.' but found ''b''");
  check("'\\x'", 1, "invalid escape '\\x' in string");
  check("'\\u12'", 1, "expected 4 hex digits after '\\u'");
  check("'\\ud800'", 1, "unpaired surrogate in '\\u' escape");
  check("1.", 1, "expected a digit after '.' in a number");
  check("1e+", 3, "expected a digit in the exponent");
  check("12abc", 2, "unexpected 'a' after a number");
  check("`abc", 0, "unterminated `name`");
}

TEST_CASE("expr: deep nesting is a parse error, not a crash") {
  std::string deep(1000, '(');
  deep += "1";
  deep += std::string(1000, ')');
  CHECK(ParseError(deep).message == "expression nests too deeply");
  CHECK(ParseError(std::string(1000, '!') + "true").message == "expression nests too deeply");
  std::string chain = "x";
  for (int i = 0; i < 2000; ++i) chain += " + x";
  CHECK(ParseError(chain).message == "expression is too long: it nests too deeply");
  std::string in_list = "x in [0";
  for (int i = 1; i < 5000; ++i) in_list += ", " + std::to_string(i);
  CHECK(Json(in_list + "]", {{P({"x"}), Value::Int(4999)}}) == "true");
  std::string ok = std::string(100, '(') + "1" + std::string(100, ')');
  CHECK(Json(ok) == "1");
}

// ---- Binding.

TEST_CASE("expr: Bind fails naming a field the layout does not have") {
  ExprParseError err;
  auto e = ParseExpr("userId != null && acton != 'bot'", &err);
  REQUIRE(e != nullptr);
  Layout layout = {P({"userId"}), P({"action"})};
  Status st = e->Bind(layout);
  CHECK(!st.ok());
  CHECK(st.code() == Status::Code::kPipelineError);
  CHECK(st.message() ==
        "expression `userId != null && acton != 'bot'` reads field 'acton', which this stream does "
        "not "
        "have; did you mean 'action'?");
  // Paths match exactly: a prefix is not the field.
  auto nested = ParseExpr("a.b", &err);
  REQUIRE(nested != nullptr);
  CHECK(!nested->Bind({P({"a"})}).ok());
  CHECK(nested->Bind({P({"x"}), P({"a", "b"})}).ok());
}

TEST_CASE("expr: Bind maps each path to its slot, also when rebound") {
  ExprParseError err;
  auto e = ParseExpr("a - b", &err);
  REQUIRE(e != nullptr);
  Value slots[3] = {Value::Int(100), Value::Int(10), Value::Int(1)};
  EvalContext ctx;
  ctx.slots = slots;
  REQUIRE(e->Bind({P({"b"}), P({"a"})}).ok());
  CHECK(e->Eval(ctx).as_int() == -90);
  REQUIRE(e->Bind({P({"x"}), P({"b"}), P({"a"})}).ok());
  CHECK(e->Eval(ctx).as_int() == -9);
}

TEST_CASE("expr: constants fold and need no slots or arena") {
  ExprParseError err;
  auto e = ParseExpr("upper('a' + 'b') + string(1 + 2) == 'AB3' && 3 in [1, 2, 1 + 2]", &err);
  REQUIRE(e != nullptr);
  REQUIRE(e->Bind({}).ok());
  EvalContext ctx;  // no slots, no row, no arena
  Value v = e->Eval(ctx);
  CHECK(ctx.error.empty());
  CHECK(v.kind() == Value::Kind::kBool);
  CHECK(v.as_bool());
}

// ---- IsTrue.

TEST_CASE("expr: IsTrue is true only for boolean true") {
  EvalContext ctx;
  CHECK(IsTrue(Value::Bool(true), ctx));
  CHECK(!IsTrue(Value::Bool(false), ctx));
  CHECK(!IsTrue(Value::Null(), ctx));
  CHECK(!IsTrue(Value::Missing(), ctx));
  CHECK(ctx.error.empty());
  CHECK(!IsTrue(Value::Int(1), ctx));
  CHECK(ctx.error == "condition is a number 1, not a boolean");
  ctx.error.clear();
  CHECK(!IsTrue(Value::String("true"), ctx));
  CHECK(ctx.error == "condition is a string \"true\", not a boolean");
}

TEST_CASE("expr: a filter condition evaluates on many records") {
  ExprParseError err;
  auto e = ParseExpr("userId != null && action != \"bot\"", &err);
  REQUIRE(e != nullptr);
  REQUIRE(e->Bind({P({"action"}), P({"userId"})}).ok());
  BatchPtr batch = NewBatch(2);
  const char* actions[] = {"click", "bot", "view"};
  for (int i = 0; i < 3000; ++i) {
    size_t r = batch->AddRow(Row());
    batch->SlotsOf(r)[0] = Value::String(actions[i % 3]);
    if (i % 5 != 0) batch->SlotsOf(r)[1] = Value::Int(i);
  }
  int kept = 0;
  EvalContext ctx;
  for (size_t r = 0; r < batch->rows.size(); ++r) {
    ctx.slots = batch->SlotsOf(r);
    ctx.row = &batch->rows[r];
    kept += IsTrue(e->Eval(ctx), ctx);
  }
  CHECK(ctx.error.empty());
  int want = 0;
  for (int i = 0; i < 3000; ++i) want += (i % 5 != 0 && i % 3 != 1);
  CHECK(kept == want);
}

// ---- ToEventTime and RFC 3339.

TEST_CASE("expr: ToEventTime takes numbers of milliseconds") {
  int64_t ms = 0;
  CHECK(ToEventTime(Value::Int(1700000000000), &ms));
  CHECK(ms == 1700000000000);
  CHECK(ToEventTime(Value::Double(1700000000000.9), &ms));
  CHECK(ms == 1700000000000);
  CHECK(ToEventTime(Value::Double(-1.5), &ms));
  CHECK(ms == -1);
  CHECK(!ToEventTime(Value::Double(1e300), &ms));
  CHECK(!ToEventTime(Value::Null(), &ms));
  CHECK(!ToEventTime(Value::Missing(), &ms));
  CHECK(!ToEventTime(Value::Bool(true), &ms));
  CHECK(!ToEventTime(Value::Json("[1]"), &ms));
  CHECK(!ToEventTime(Value::String("1700000000000"), &ms));
}

TEST_CASE("expr: ToEventTime parses RFC 3339 with offsets and fractions") {
  auto parse = [](std::string_view s) {
    int64_t ms = -42;
    bool ok = ToEventTime(Value::String(s), &ms);
    return ok ? ms : -42;
  };
  CHECK(parse("1970-01-01T00:00:00Z") == 0);
  CHECK(parse("2024-05-01T12:00:00Z") == 1714564800000);
  CHECK(parse("2024-05-01T12:00:00.123+02:00") == 1714557600123);
  CHECK(parse("2024-05-01T12:00:00.123-02:30") == 1714573800123);
  CHECK(parse("2024-05-01t12:00:00z") == 1714564800000);
  CHECK(parse("2024-05-01 12:00:00Z") == 1714564800000);
  CHECK(parse("2024-05-01T12:00:00.1Z") == 1714564800100);
  CHECK(parse("2024-05-01T12:00:00.12Z") == 1714564800120);
  CHECK(parse("2024-05-01T12:00:00.123999Z") == 1714564800123);  // truncated
  CHECK(parse("2024-05-01T12:00:00+00:00") == 1714564800000);
  CHECK(parse("1969-12-31T23:59:59.999Z") == -1);
  CHECK(parse("2024-02-29T00:00:00Z") == 1709164800000);  // leap year
  CHECK(parse("2000-02-29T00:00:00Z") == 951782400000);   // divisible by 400: leap
  CHECK(parse("2016-12-31T23:59:60Z") == 1483228800000);  // leap second: the next minute
  CHECK(parse("0000-01-01T00:00:00Z") == -62167219200000);
  CHECK(parse("9999-12-31T23:59:59.999Z") == 253402300799999);
}

TEST_CASE("expr: ToEventTime rejects invalid RFC 3339") {
  int64_t ms = 7;
  for (std::string_view bad : {
           "2024-13-01T00:00:00Z",  // month 13
           "2024-00-01T00:00:00Z",  // month 0
           "2023-02-29T00:00:00Z",  // not a leap year
           "1900-02-29T00:00:00Z",  // divisible by 100, not by 400
           "2024-04-31T00:00:00Z",  // April has 30 days
           "2024-05-00T00:00:00Z",
           "2024-05-01T24:00:00Z",
           "2024-05-01T12:60:00Z",
           "2024-05-01T12:00:61Z",
           "2024-05-01T12:00:00",    // no offset
           "2024-05-01",             // no time
           "2024-05-01T12:00Z",      // no seconds
           "2024-05-01T12:00:00.Z",  // empty fraction
           "2024-05-01T12:00:00+2:00",
           "2024-05-01T12:00:00+02",
           "2024-05-01T12:00:00+24:00",
           "2024-05-01T12:00:00+02:60",
           "2024-05-01X12:00:00Z",
           "2024-5-01T12:00:00Z",
           "2024-05-01T12:00:00Zjunk",
           " 2024-05-01T12:00:00Z",
           "",
           "yesterday",
       }) {
    CHECK_MESSAGE(!ToEventTime(Value::String(bad), &ms), bad);
  }
  CHECK(ms == 7);
}

TEST_CASE("civil time: days from civil round-trips over four centuries") {
  for (int64_t d = -146097; d <= 146097 * 2; d += 13) {
    CivilDate c = CivilFromDays(d);
    REQUIRE(DaysFromCivil(c.year, c.month, c.day) == d);
  }
  char buf[kRfc3339Length];
  REQUIRE(FormatRfc3339(951782400000, buf));
  CHECK(std::string_view(buf, kRfc3339Length) == "2000-02-29T00:00:00.000Z");
}

}  // namespace streamrun
