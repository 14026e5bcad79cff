// Evaluation of operators: one small function per operator and operand shape (see expr_node.h).
#include <cstdint>
#include <cstring>
#include <string>

#include "engine/expr_node.h"

namespace streamrun {

std::string DescribeValue(const Value& v) {
  std::string out = KindName(v.kind());
  switch (v.kind()) {
    case Value::Kind::kInt:
    case Value::Kind::kDouble:
      out += ' ';
      AppendJson(out, v);
      break;
    case Value::Kind::kString:
    case Value::Kind::kJson: {
      out += ' ';
      std::string text;
      if (v.kind() == Value::Kind::kString)
        AppendJsonString(text, v.as_string());
      else
        text.assign(v.as_string());
      if (text.size() > 40) text = text.substr(0, 37) + "...";
      out += text;
      break;
    }
    default:
      break;
  }
  return out;
}

char* ArenaAllocate(EvalContext& ctx, size_t n) {
  if (ctx.arena == nullptr) {
    Fail(ctx, "internal error: no arena for a string result");
    return nullptr;
  }
  return ctx.arena->Allocate(n == 0 ? 1 : n);
}

Value ArenaString(EvalContext& ctx, std::string_view s) {
  if (ctx.arena == nullptr) return Fail(ctx, "internal error: no arena for a string result");
  return Value::String(ctx.arena->Copy(s));
}

bool IsTrue(const Value& v, EvalContext& ctx) {
  if (v.kind() == Value::Kind::kBool) return v.as_bool();
  if (v.is_nullish()) return false;
  Fail(ctx, "condition is a " + DescribeValue(v) + ", not a boolean");
  return false;
}

namespace {

// The operands of a node, evaluated in order.
inline Value A(const Node& n, EvalContext& ctx) { return n.a->eval(*n.a, ctx); }
inline Value B(const Node& n, EvalContext& ctx) { return n.b->eval(*n.b, ctx); }

// Truth of an operand of && || ! and if(): null is false, non-booleans are errors.
inline bool Truth(const Value& v, EvalContext& ctx, const char* what) {
  if (v.kind() == Value::Kind::kBool) return v.as_bool();
  if (v.is_nullish()) return false;
  Fail(ctx, std::string(what) + " needs booleans, got " + DescribeValue(v));
  return false;
}

// Equality of the language: null equals only null (missing counts as null); numbers by value.
inline bool Equal(const Value& x, const Value& y) {
  if (x.is_nullish() || y.is_nullish()) return x.is_nullish() && y.is_nullish();
  return x == y;
}

Value EvalConst(const Node& n, EvalContext&) { return n.value; }
Value EvalField(const Node& n, EvalContext& ctx) { return ctx.slots[n.slot]; }
Value EvalEventTime(const Node&, EvalContext& ctx) {
  if (ctx.row == nullptr || ctx.row->ts == kMinTimestamp) return Value::Null();
  return Value::Int(ctx.row->ts);
}

Value EvalAnd(const Node& n, EvalContext& ctx) {
  if (!Truth(A(n, ctx), ctx, "'&&'")) return Value::Bool(false);
  return Value::Bool(Truth(B(n, ctx), ctx, "'&&'"));
}
Value EvalOr(const Node& n, EvalContext& ctx) {
  if (Truth(A(n, ctx), ctx, "'||'")) return Value::Bool(true);
  return Value::Bool(Truth(B(n, ctx), ctx, "'||'"));
}
Value EvalNot(const Node& n, EvalContext& ctx) {
  Value x = A(n, ctx);
  if (x.kind() == Value::Kind::kBool) return Value::Bool(!x.as_bool());
  if (x.is_nullish()) return Value::Bool(true);
  return Fail(ctx, "cannot apply '!' to " + DescribeValue(x));
}
Value EvalNeg(const Node& n, EvalContext& ctx) {
  Value x = A(n, ctx);
  switch (x.kind()) {
    case Value::Kind::kInt:
      if (x.as_int() == INT64_MIN) return Fail(ctx, "integer overflow in '-'");
      return Value::Int(-x.as_int());
    case Value::Kind::kDouble:
      return Value::Double(-x.as_double());
    case Value::Kind::kMissing:
    case Value::Kind::kNull:
      return Value::Null();
    default:
      return Fail(ctx, "cannot negate " + DescribeValue(x));
  }
}

// == and != in general, and their common special cases.
Value EvalEq(const Node& n, EvalContext& ctx) {
  Value x = A(n, ctx);
  return Value::Bool(Equal(x, B(n, ctx)));
}
Value EvalNe(const Node& n, EvalContext& ctx) {
  Value x = A(n, ctx);
  return Value::Bool(!Equal(x, B(n, ctx)));
}
Value EvalEqConst(const Node& n, EvalContext& ctx) {
  return Value::Bool(Equal(A(n, ctx), n.value));
}
Value EvalNeConst(const Node& n, EvalContext& ctx) {
  return Value::Bool(!Equal(A(n, ctx), n.value));
}
Value EvalIsNull(const Node& n, EvalContext& ctx) { return Value::Bool(A(n, ctx).is_nullish()); }
Value EvalNotNull(const Node& n, EvalContext& ctx) { return Value::Bool(!A(n, ctx).is_nullish()); }
inline bool FieldEqualsString(const Node& n, EvalContext& ctx) {
  const Value& x = ctx.slots[n.a->slot];
  return x.kind() == Value::Kind::kString && x.as_string() == n.value.as_string();
}
Value EvalFieldEqString(const Node& n, EvalContext& ctx) {
  return Value::Bool(FieldEqualsString(n, ctx));
}
Value EvalFieldNeString(const Node& n, EvalContext& ctx) {
  return Value::Bool(!FieldEqualsString(n, ctx));
}
Value EvalFieldIsNull(const Node& n, EvalContext& ctx) {
  return Value::Bool(ctx.slots[n.a->slot].is_nullish());
}
Value EvalFieldNotNull(const Node& n, EvalContext& ctx) {
  return Value::Bool(!ctx.slots[n.a->slot].is_nullish());
}

const char* OpText(Op op) {
  switch (op) {
    case Op::kLt:
      return "<";
    case Op::kLe:
      return "<=";
    case Op::kGt:
      return ">";
    case Op::kGe:
      return ">=";
    case Op::kAdd:
      return "+";
    case Op::kSub:
      return "-";
    case Op::kMul:
      return "*";
    case Op::kDiv:
      return "/";
    case Op::kMod:
      return "%";
    default:
      return "?";
  }
}

// < <= > >=: numbers with numbers, strings with strings (by bytes, which is code point order for
// UTF-8); false when either side is null; an error for anything else.
template <Op kOp>
Value EvalOrder(const Node& n, EvalContext& ctx) {
  Value x = A(n, ctx);
  Value y = B(n, ctx);
  if (x.is_nullish() || y.is_nullish()) return Value::Bool(false);
  int c;
  if (x.is_number() && y.is_number()) {
    c = CompareValues(x, y);
  } else if (x.kind() == Value::Kind::kString && y.kind() == Value::Kind::kString) {
    c = x.as_string().compare(y.as_string());
  } else {
    return Fail(ctx, std::string("cannot compare ") + DescribeValue(x) + " and " +
                         DescribeValue(y) + " with '" + OpText(kOp) + "'");
  }
  if constexpr (kOp == Op::kLt) return Value::Bool(c < 0);
  if constexpr (kOp == Op::kLe) return Value::Bool(c <= 0);
  if constexpr (kOp == Op::kGt) return Value::Bool(c > 0);
  return Value::Bool(c >= 0);
}

template <bool kNegate>
Value EvalIn(const Node& n, EvalContext& ctx) {
  Value x = A(n, ctx);
  for (const Node* item : n.args) {
    if (Equal(x, item->eval(*item, ctx))) return Value::Bool(!kNegate);
  }
  return Value::Bool(kNegate);
}

Value ArithmeticTypeError(Op op, const Value& x, const Value& y, EvalContext& ctx) {
  const char* verb = op == Op::kAdd   ? "add"
                     : op == Op::kSub ? "subtract"
                     : op == Op::kMul ? "multiply"
                                      : "divide";
  if (op == Op::kMod) {
    return Fail(ctx, "cannot apply '%' to " + DescribeValue(x) + " and " + DescribeValue(y) +
                         ": it needs integers");
  }
  return Fail(ctx,
              std::string("cannot ") + verb + " " + DescribeValue(x) + " and " + DescribeValue(y));
}

// + - * / %. Integers stay integers (overflow is an error) except for '/', which always gives a
// number with a fraction; '%' takes integers only; null on either side gives null.
template <Op kOp>
Value EvalArith(const Node& n, EvalContext& ctx) {
  Value x = A(n, ctx);
  Value y = B(n, ctx);
  if (x.kind() == Value::Kind::kInt && y.kind() == Value::Kind::kInt) {
    int64_t a = x.as_int(), b = y.as_int(), r;
    if constexpr (kOp == Op::kAdd) {
      if (__builtin_add_overflow(a, b, &r)) return Fail(ctx, "integer overflow in '+'");
      return Value::Int(r);
    } else if constexpr (kOp == Op::kSub) {
      if (__builtin_sub_overflow(a, b, &r)) return Fail(ctx, "integer overflow in '-'");
      return Value::Int(r);
    } else if constexpr (kOp == Op::kMul) {
      if (__builtin_mul_overflow(a, b, &r)) return Fail(ctx, "integer overflow in '*'");
      return Value::Int(r);
    } else if constexpr (kOp == Op::kDiv) {
      if (b == 0) return Fail(ctx, "division by zero");
      return Value::Double(static_cast<double>(a) / static_cast<double>(b));
    } else {
      if (b == 0) return Fail(ctx, "modulo by zero");
      if (b == -1) return Value::Int(0);  // INT64_MIN % -1 overflows in C++
      return Value::Int(a % b);
    }
  }
  if (x.is_nullish() || y.is_nullish()) return Value::Null();
  if (x.is_number() && y.is_number() && kOp != Op::kMod) {
    double a = x.to_double(), b = y.to_double();
    if constexpr (kOp == Op::kAdd) return Value::Double(a + b);
    if constexpr (kOp == Op::kSub) return Value::Double(a - b);
    if constexpr (kOp == Op::kMul) return Value::Double(a * b);
    if (b == 0) return Fail(ctx, "division by zero");
    return Value::Double(a / b);
  }
  if constexpr (kOp == Op::kAdd) {
    if (x.kind() == Value::Kind::kString && y.kind() == Value::Kind::kString) {
      std::string_view s = x.as_string(), t = y.as_string();
      if (s.empty()) return y;
      if (t.empty()) return x;
      char* p = ArenaAllocate(ctx, s.size() + t.size());
      if (p == nullptr) return Value::Null();
      std::memcpy(p, s.data(), s.size());
      std::memcpy(p + s.size(), t.data(), t.size());
      return Value::String(std::string_view(p, s.size() + t.size()));
    }
  }
  return ArithmeticTypeError(kOp, x, y, ctx);
}

Value EvalIf(const Node& n, EvalContext& ctx) {
  const Node* cond = n.args[0];
  const Node* pick = Truth(cond->eval(*cond, ctx), ctx, "if()") ? n.args[1] : n.args[2];
  return pick->eval(*pick, ctx);
}

Value EvalCoalesce(const Node& n, EvalContext& ctx) {
  for (const Node* arg : n.args) {
    Value v = arg->eval(*arg, ctx);
    if (!v.is_nullish()) return v;
  }
  return Value::Null();
}

}  // namespace

Value EvalCall(const Node& n, EvalContext& ctx) {
  Value vals[kMaxCallArgs];
  const size_t count = n.args.size();
  for (size_t i = 0; i < count; ++i) {
    const Node* arg = n.args[i];
    vals[i] = arg->eval(*arg, ctx);
    if (n.function->null_in_null_out && vals[i].is_nullish()) return Value::Null();
  }
  return n.function->call(vals, count, ctx);
}

void ChooseEval(Node& n) {
  const bool field_a = n.a != nullptr && n.a->op == Op::kField;
  const bool const_b = n.b != nullptr && n.b->op == Op::kConst;
  switch (n.op) {
    case Op::kConst:
      n.eval = EvalConst;
      return;
    case Op::kField:
      n.eval = EvalField;
      return;
    case Op::kEventTime:
      n.eval = EvalEventTime;
      return;
    case Op::kAnd:
      n.eval = EvalAnd;
      return;
    case Op::kOr:
      n.eval = EvalOr;
      return;
    case Op::kNot:
      n.eval = EvalNot;
      return;
    case Op::kNeg:
      n.eval = EvalNeg;
      return;
    case Op::kEq:
    case Op::kNe: {
      const bool eq = n.op == Op::kEq;
      n.eval = eq ? EvalEq : EvalNe;
      if (!const_b) return;
      // The parser puts a literal operand second; specialise on it.
      n.value = n.b->value;
      if (n.value.is_nullish()) {
        n.eval =
            field_a ? (eq ? EvalFieldIsNull : EvalFieldNotNull) : (eq ? EvalIsNull : EvalNotNull);
      } else if (field_a && n.value.kind() == Value::Kind::kString) {
        n.eval = eq ? EvalFieldEqString : EvalFieldNeString;
      } else {
        n.eval = eq ? EvalEqConst : EvalNeConst;
      }
      return;
    }
    case Op::kLt:
      n.eval = EvalOrder<Op::kLt>;
      return;
    case Op::kLe:
      n.eval = EvalOrder<Op::kLe>;
      return;
    case Op::kGt:
      n.eval = EvalOrder<Op::kGt>;
      return;
    case Op::kGe:
      n.eval = EvalOrder<Op::kGe>;
      return;
    case Op::kIn:
      n.eval = EvalIn<false>;
      return;
    case Op::kNotIn:
      n.eval = EvalIn<true>;
      return;
    case Op::kAdd:
      n.eval = EvalArith<Op::kAdd>;
      return;
    case Op::kSub:
      n.eval = EvalArith<Op::kSub>;
      return;
    case Op::kMul:
      n.eval = EvalArith<Op::kMul>;
      return;
    case Op::kDiv:
      n.eval = EvalArith<Op::kDiv>;
      return;
    case Op::kMod:
      n.eval = EvalArith<Op::kMod>;
      return;
    case Op::kCall:
      n.eval = EvalCall;
      return;
    case Op::kIf:
      n.eval = EvalIf;
      return;
    case Op::kCoalesce:
      n.eval = EvalCoalesce;
      return;
  }
}

}  // namespace streamrun
