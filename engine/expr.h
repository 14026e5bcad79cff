// The expression language of pipeline files (filter `where`, map `set`, aggregates, `event_time`,
// `fire_on`). The language is documented for users in docs/expressions.md.
//
// An expression is parsed once (ParseExpr), bound to the layout of the stream it reads
// (Expr::Bind: field paths become slot indexes) and then evaluated per record without allocating,
// except for string results, which go to the caller's arena.
//
// Field paths in fields() are what sources must fill into slots: `a.b` and `a["b"]` are {"a", "b"};
// Kafka metadata are paths whose first segment starts with `$`: {"$key"}, {"$timestamp"},
// {"$partition"}, {"$offset"}, {"$topic"}, {"$headers", "NAME"}. `$event_time` is not a field: it
// reads EvalContext::row->ts (null while that is kMinTimestamp).
//
// Implementation: expr_lexer.cc (tokens), expr_parser.cc (parser, constant folding, Bind),
// expr_eval.cc (operators), expr_functions.cc (the function table), civil_time.cc (RFC 3339).
//
// Thread safety: a bound Expr is immutable; Eval may run on several threads at once, each with
// its own EvalContext.
#pragma once

#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "engine/batch.h"
#include "engine/status.h"
#include "engine/value.h"

namespace streamrun {

struct EvalContext {
  const Value* slots = nullptr;  // the record's slots, in the layout the expression was bound to
  const Row* row = nullptr;      // the record itself: event time, bytes, position
  Arena* arena = nullptr;        // where string results are allocated
  // Set (non-empty) when an evaluation fails, say "cannot add string and number"; the record
  // then goes to its source's errors stream. Callers clear it before each record.
  std::string error;
};

class Expr {
 public:
  virtual ~Expr() = default;

  // Every field path the expression reads, once each, in order of first use.
  virtual const std::vector<FieldPath>& fields() const = 0;
  // Resolves field paths to slots of `layout`. A path not in the layout is an error naming it.
  virtual Status Bind(const Layout& layout) = 0;
  // REQUIRES: Bind succeeded. Evaluates on one record. On failure sets ctx.error.
  virtual Value Eval(EvalContext& ctx) const = 0;
  // The source text, for messages and graphs.
  virtual const std::string& text() const = 0;
  // REQUIRES: Bind succeeded. The slot the expression reads when it is nothing but one field
  // (`ts`, `meta.time`), or -1: callers on a per-record path read that slot directly.
  virtual int BoundFieldSlot() const { return -1; }
};

// Where and why a text is not an expression.
struct ExprParseError {
  size_t offset = 0;  // byte offset into the text of the offending token
  std::string message;
};

// Parses `text`. On failure returns nullptr and fills `*error`.
std::unique_ptr<Expr> ParseExpr(std::string_view text, ExprParseError* error);

// The truth of a filter condition: true only for boolean true. Null and missing are false; any
// other value is an error (ctx.error is set).
bool IsTrue(const Value& v, EvalContext& ctx);

// Converts an event-time value: epoch milliseconds (integer or number) or an RFC 3339 string.
// Returns false for anything else.
bool ToEventTime(const Value& v, int64_t* millis);

}  // namespace streamrun
