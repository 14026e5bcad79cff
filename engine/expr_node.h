// The compiled form of an expression (internal to engine/expr_*.cc).
//
// The parser builds a tree of Nodes. Each node carries a pointer to the function that evaluates
// it, chosen when the tree is built, so evaluation is one indirect call per node and no switch
// over kinds; common shapes (`field == "literal"`, `x != null`) get their own functions. Nodes
// whose operands are all constant are evaluated once by the parser and become constants.
//
// Errors during evaluation go through Fail(), which keeps the first message and returns null:
// the remaining nodes still run (cheaply, on nulls) and the caller looks at ctx.error at the end.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "engine/expr.h"

namespace streamrun {

struct Node;
using EvalFn = Value (*)(const Node& node, EvalContext& ctx);
// A function of evaluated arguments: args[0..n).
using CallFn = Value (*)(const Value* args, size_t n, EvalContext& ctx);

// Functions with more arguments than this are rejected by the parser; evaluated arguments live
// in a fixed array on the stack.
inline constexpr size_t kMaxCallArgs = 16;

// clang-format off: grouped by role
enum class Op : uint8_t {
  kConst,
  kField,
  kEventTime,
  kAnd,
  kOr,
  kNot,
  kNeg,
  kEq,
  kNe,
  kLt,
  kLe,
  kGt,
  kGe,
  kIn,
  kNotIn,
  kAdd,
  kSub,
  kMul,
  kDiv,
  kMod,
  kCall,  // a function of evaluated arguments (FunctionDef::call)
  kIf,
  kCoalesce,  // functions that evaluate their arguments lazily
};
// clang-format on

struct FunctionDef {
  const char* name;
  uint8_t min_args;
  uint8_t max_args;  // kMaxCallArgs for "any number"
  Op op;             // kCall, or kIf / kCoalesce for the lazy ones
  // A null or missing argument makes the result null without calling `call` (SQL's "strict"
  // functions); functions that look at nulls themselves (is_null, concat, string) set false.
  bool null_in_null_out;
  CallFn call;  // for kCall
};

struct Node {
  EvalFn eval = nullptr;
  Op op = Op::kConst;
  Value value;                    // kConst: the constant; kEq/kNe specialised: the literal operand
  uint32_t field = 0;             // kField: index into the expression's fields()
  uint32_t slot = 0;              // kField: the slot, set by Bind
  const Node* a = nullptr;        // first operand
  const Node* b = nullptr;        // second operand
  std::vector<const Node*> args;  // kCall, kIf, kCoalesce arguments; kIn/kNotIn list items
  const FunctionDef* function = nullptr;  // kCall
  uint32_t height = 1;                    // of the subtree: evaluation recurses this deep
};

// Records the first error of an evaluation; returns null for the failed node.
inline Value Fail(EvalContext& ctx, std::string message) {
  if (ctx.error.empty()) ctx.error = std::move(message);
  return Value::Null();
}

// Picks the evaluation function for `node` from its op and operands (operators and lazy
// functions; expr_eval.cc).
void ChooseEval(Node& node);

// Evaluates kCall nodes (expr_eval.cc).
Value EvalCall(const Node& node, EvalContext& ctx);

// The function called `name`, or nullptr (expr_functions.cc).
const FunctionDef* FindFunction(std::string_view name);
// Every function name, for did-you-mean suggestions.
std::vector<std::string_view> FunctionNames();

// Allocates a string result in ctx.arena (a failure if the caller gave no arena).
Value ArenaString(EvalContext& ctx, std::string_view s);
// A string result of `n` bytes to be filled in by the caller; nullptr (and ctx.error) on failure.
char* ArenaAllocate(EvalContext& ctx, size_t n);

// Names a value for messages: its kind, and for short strings the text: "string 'abc'".
std::string DescribeValue(const Value& v);

}  // namespace streamrun
