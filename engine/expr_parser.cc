// ParseExpr: a recursive-descent parser from text to a tree of Nodes (expr_node.h), with constant
// folding, and the Expr implementation that owns the tree and binds its fields to slots.
//
// Precedence, lowest first (docs/expressions.md has the table):
//   ||   &&   comparisons (== != < <= > >= in, not in; not chainable)   + -   * / %   ! -(unary)
#include <algorithm>
#include <memory>
#include <string>
#include <vector>

#include "engine/expr.h"
#include "engine/expr_lexer.h"
#include "engine/expr_node.h"
#include "engine/spelling.h"

namespace streamrun {
namespace {

// Beyond this depth of nesting the parser stops, so that a hostile text cannot overflow the
// stack (here or in evaluation).
constexpr int kMaxDepth = 200;
// Evaluation recurses as deep as the tree is high; `a + a + ... + a` is as high as it is long.
constexpr uint32_t kMaxHeight = 1000;

// Metadata fields a source fills in. `$event_time` is special: it reads Row::ts.
constexpr std::string_view kMetadata[] = {"key",   "timestamp", "partition", "offset",
                                          "topic", "headers",   "event_time"};

class CompiledExpr final : public Expr {
 public:
  explicit CompiledExpr(std::string_view text) : text_(text) {}

  const std::vector<FieldPath>& fields() const override { return fields_; }
  Status Bind(const Layout& layout) override;
  Value Eval(EvalContext& ctx) const override { return root_->eval(*root_, ctx); }
  const std::string& text() const override { return text_; }
  int BoundFieldSlot() const override {
    return root_->op == Op::kField ? static_cast<int>(root_->slot) : -1;
  }

 private:
  friend class Parser;

  std::string text_;
  std::vector<FieldPath> fields_;
  std::vector<std::unique_ptr<Node>> nodes_;  // every node, in creation order
  std::vector<Node*> field_nodes_;            // the kField nodes, to bind
  const Node* root_ = nullptr;
  Arena arena_;  // string literals and folded string constants
};

Status CompiledExpr::Bind(const Layout& layout) {
  std::vector<uint32_t> slot_of(fields_.size());
  for (size_t i = 0; i < fields_.size(); ++i) {
    auto it = std::find(layout.begin(), layout.end(), fields_[i]);
    if (it == layout.end()) {
      std::vector<std::string> names;
      for (const auto& path : layout) names.push_back(FieldPathToString(path));
      const std::string name = FieldPathToString(fields_[i]);
      return Status::PipelineError("expression `" + text_ + "` reads field '" + name +
                                   "', which this stream does not have" + DidYouMean(name, names));
    }
    slot_of[i] = static_cast<uint32_t>(it - layout.begin());
  }
  for (Node* n : field_nodes_) n->slot = slot_of[n->field];
  return Status::Ok();
}

class Parser {
 public:
  Parser(std::string_view text, CompiledExpr* out) : text_(text), lexer_(text), out_(out) {}

  bool Parse(ExprParseError* error) {
    Advance();
    Node* root = ParseOr();
    if (root != nullptr && tok_.kind != TokenKind::kEnd) {
      Unexpected("an operator or the end of the expression");
    }
    if (failed_) {
      *error = error_;
      return false;
    }
    out_->root_ = root;
    return true;
  }

 private:
  void Advance() { tok_ = lexer_.Next(); }
  std::string Describe() const { return DescribeToken(text_, tok_); }

  // Records the first error; returns nullptr so callers can `return Error(...)`.
  Node* Error(size_t offset, std::string message) {
    if (!failed_) {
      failed_ = true;
      error_.offset = offset;
      error_.message = std::move(message);
    }
    return nullptr;
  }
  // An error at the current token: its own message if it is a lexical error.
  Node* Unexpected(const std::string& expected) {
    if (tok_.kind == TokenKind::kError) return Error(tok_.offset, tok_.text);
    return Error(tok_.offset, "expected " + expected + " but found " + Describe());
  }
  bool Expect(TokenKind kind, const char* what) {
    if (tok_.kind != kind) {
      Unexpected(what);
      return false;
    }
    Advance();
    return true;
  }

  Node* NewNode(Op op) {
    out_->nodes_.push_back(std::make_unique<Node>());
    Node* n = out_->nodes_.back().get();
    n->op = op;
    return n;
  }
  Node* Constant(Value v) {
    Node* n = NewNode(Op::kConst);
    n->value = v;
    ChooseEval(*n);
    return n;
  }
  // Finishes an operator node: picks its evaluator and folds it if its operands are constant.
  Node* Finish(Node* n) {
    uint32_t below = 0;
    if (n->a != nullptr) below = std::max(below, n->a->height);
    if (n->b != nullptr) below = std::max(below, n->b->height);
    for (const Node* arg : n->args) below = std::max(below, arg->height);
    n->height = below + 1;
    if (n->height > kMaxHeight)
      return Error(tok_.offset, "expression is too long: it nests too deeply");
    ChooseEval(*n);
    bool constant =
        (n->a == nullptr || n->a->op == Op::kConst) && (n->b == nullptr || n->b->op == Op::kConst);
    for (const Node* arg : n->args) constant = constant && arg->op == Op::kConst;
    if (!constant) return n;
    EvalContext ctx;
    ctx.arena = &out_->arena_;
    Value v = n->eval(*n, ctx);
    // An operation that fails on constants (1 / 0) is left to fail on every record, where the
    // error is reported like any other, rather than refusing the whole pipeline.
    if (!ctx.error.empty()) return n;
    n->op = Op::kConst;
    n->value = v;
    n->a = n->b = nullptr;
    n->args.clear();
    n->height = 1;
    ChooseEval(*n);
    return n;
  }
  Node* Binary(Op op, Node* a, Node* b) {
    // == and != are symmetric: put a literal operand second, where ChooseEval looks for it.
    if ((op == Op::kEq || op == Op::kNe) && a->op == Op::kConst && b->op != Op::kConst)
      std::swap(a, b);
    Node* n = NewNode(op);
    n->a = a;
    n->b = b;
    return Finish(n);
  }

  // RAII depth counter for the recursive rules.
  struct Nesting {
    explicit Nesting(Parser* p) : p_(p) { ++p_->depth_; }
    ~Nesting() { --p_->depth_; }
    Parser* p_;
  };

  Node* ParseOr() {
    Nesting nest(this);
    if (depth_ > kMaxDepth) return Error(tok_.offset, "expression nests too deeply");
    Node* left = ParseAnd();
    while (left != nullptr && tok_.kind == TokenKind::kOr) {
      Advance();
      Node* right = ParseAnd();
      if (right == nullptr) return nullptr;
      left = Binary(Op::kOr, left, right);
    }
    return left;
  }

  Node* ParseAnd() {
    Node* left = ParseComparison();
    while (left != nullptr && tok_.kind == TokenKind::kAnd) {
      Advance();
      Node* right = ParseComparison();
      if (right == nullptr) return nullptr;
      left = Binary(Op::kAnd, left, right);
    }
    return left;
  }

  static bool IsComparison(TokenKind k) {
    return k == TokenKind::kEq || k == TokenKind::kNe || k == TokenKind::kLt ||
           k == TokenKind::kLe || k == TokenKind::kGt || k == TokenKind::kGe ||
           k == TokenKind::kIn || k == TokenKind::kNotKw;
  }

  Node* ParseComparison() {
    Node* left = ParseAdditive();
    if (left == nullptr || !IsComparison(tok_.kind)) return left;
    const TokenKind kind = tok_.kind;
    Advance();
    Node* result;
    if (kind == TokenKind::kIn || kind == TokenKind::kNotKw) {
      if (kind == TokenKind::kNotKw && !Expect(TokenKind::kIn, "'in' after 'not'")) return nullptr;
      result = ParseInList(kind == TokenKind::kIn ? Op::kIn : Op::kNotIn, left);
    } else {
      Node* right = ParseAdditive();
      if (right == nullptr) return nullptr;
      Op op = kind == TokenKind::kEq   ? Op::kEq
              : kind == TokenKind::kNe ? Op::kNe
              : kind == TokenKind::kLt ? Op::kLt
              : kind == TokenKind::kLe ? Op::kLe
              : kind == TokenKind::kGt ? Op::kGt
                                       : Op::kGe;
      result = Binary(op, left, right);
    }
    if (result != nullptr && IsComparison(tok_.kind)) {
      return Error(tok_.offset,
                   "comparisons cannot be chained: found " + Describe() +
                       " after a comparison; combine them with '&&' or use parentheses");
    }
    return result;
  }

  // After `in` / `not in`: `[item, ...]`.
  Node* ParseInList(Op op, Node* left) {
    if (tok_.kind != TokenKind::kLBracket) return Unexpected("'[' to start the list after 'in'");
    Advance();
    Node* n = NewNode(op);
    n->a = left;
    if (tok_.kind != TokenKind::kRBracket) {
      while (true) {
        Node* item = ParseOr();
        if (item == nullptr) return nullptr;
        n->args.push_back(item);
        if (tok_.kind == TokenKind::kComma) {
          Advance();
          continue;
        }
        if (tok_.kind != TokenKind::kRBracket) return Unexpected("',' or ']'");
        break;
      }
    }
    Advance();  // ']'
    return Finish(n);
  }

  Node* ParseAdditive() {
    Node* left = ParseMultiplicative();
    while (left != nullptr && (tok_.kind == TokenKind::kPlus || tok_.kind == TokenKind::kMinus)) {
      Op op = tok_.kind == TokenKind::kPlus ? Op::kAdd : Op::kSub;
      Advance();
      Node* right = ParseMultiplicative();
      if (right == nullptr) return nullptr;
      left = Binary(op, left, right);
    }
    return left;
  }

  Node* ParseMultiplicative() {
    Node* left = ParseUnary();
    while (left != nullptr && (tok_.kind == TokenKind::kStar || tok_.kind == TokenKind::kSlash ||
                               tok_.kind == TokenKind::kPercent)) {
      Op op = tok_.kind == TokenKind::kStar    ? Op::kMul
              : tok_.kind == TokenKind::kSlash ? Op::kDiv
                                               : Op::kMod;
      Advance();
      Node* right = ParseUnary();
      if (right == nullptr) return nullptr;
      left = Binary(op, left, right);
    }
    return left;
  }

  Node* ParseUnary() {
    if (tok_.kind != TokenKind::kNot && tok_.kind != TokenKind::kMinus) return ParsePrimary();
    Nesting nest(this);
    if (depth_ > kMaxDepth) return Error(tok_.offset, "expression nests too deeply");
    Op op = tok_.kind == TokenKind::kNot ? Op::kNot : Op::kNeg;
    Advance();
    Node* operand = ParseUnary();
    if (operand == nullptr) return nullptr;
    Node* n = NewNode(op);
    n->a = operand;
    return Finish(n);
  }

  Node* ParsePrimary() {
    switch (tok_.kind) {
      case TokenKind::kInt: {
        Node* n = Constant(Value::Int(tok_.int_value));
        Advance();
        return n;
      }
      case TokenKind::kDouble: {
        Node* n = Constant(Value::Double(tok_.double_value));
        Advance();
        return n;
      }
      case TokenKind::kString: {
        Node* n = Constant(Value::String(out_->arena_.Copy(tok_.text)));
        Advance();
        return n;
      }
      case TokenKind::kTrue:
      case TokenKind::kFalse: {
        Node* n = Constant(Value::Bool(tok_.kind == TokenKind::kTrue));
        Advance();
        return n;
      }
      case TokenKind::kNull: {
        Node* n = Constant(Value::Null());
        Advance();
        return n;
      }
      case TokenKind::kLParen: {
        Advance();
        Node* inner = ParseOr();
        if (inner == nullptr || !Expect(TokenKind::kRParen, "')'")) return nullptr;
        return inner;
      }
      case TokenKind::kIdent: {
        Token name = tok_;
        Advance();
        if (tok_.kind == TokenKind::kLParen) return ParseCall(name);
        return ParsePath(FieldPath{name.text});
      }
      case TokenKind::kMeta:
        return ParseMeta();
      case TokenKind::kLBracket:
        return Error(tok_.offset, "a list '[...]' is only allowed after 'in' or 'not in'");
      case TokenKind::kNotKw:
        return Error(tok_.offset, "unexpected 'not': negate with '!', or write 'x not in [...]'");
      default:
        return Unexpected("an expression");
    }
  }

  Node* ParseMeta() {
    const Token meta = tok_;
    auto known = std::find(std::begin(kMetadata), std::end(kMetadata), meta.text);
    if (known == std::end(kMetadata)) {
      std::vector<std::string> names;
      for (auto m : kMetadata) names.push_back("$" + std::string(m));
      return Error(meta.offset, "unknown metadata field '$" + meta.text + "'" +
                                    DidYouMean("$" + meta.text, names));
    }
    Advance();
    if (meta.text == "event_time") {
      if (tok_.kind == TokenKind::kDot || tok_.kind == TokenKind::kLBracket) {
        return Error(tok_.offset, "'$event_time' is a number and has no fields");
      }
      Node* n = NewNode(Op::kEventTime);
      ChooseEval(*n);
      return n;
    }
    return ParsePath(FieldPath{"$" + meta.text});
  }

  // The rest of a field path after its first segment: `.name` and `["key"]` segments.
  Node* ParsePath(FieldPath path) {
    while (true) {
      if (tok_.kind == TokenKind::kDot) {
        Advance();
        // After a dot any word is a name, keywords included (`a.in`, `a.null`).
        bool word = tok_.kind == TokenKind::kIdent || tok_.kind == TokenKind::kTrue ||
                    tok_.kind == TokenKind::kFalse || tok_.kind == TokenKind::kNull ||
                    tok_.kind == TokenKind::kIn || tok_.kind == TokenKind::kNotKw;
        if (!word) return Unexpected("a field name after '.'");
        path.push_back(tok_.text);
        Advance();
      } else if (tok_.kind == TokenKind::kLBracket) {
        Advance();
        if (tok_.kind != TokenKind::kString) {
          if (tok_.kind == TokenKind::kInt) {
            return Error(tok_.offset,
                         "array indexes are not supported; a field path takes [\"key\"] segments");
          }
          return Unexpected("a quoted key in '[...]'");
        }
        path.push_back(tok_.text);
        Advance();
        if (!Expect(TokenKind::kRBracket, "']'")) return nullptr;
      } else {
        break;
      }
    }
    Node* n = NewNode(Op::kField);
    auto& fields = out_->fields_;
    auto it = std::find(fields.begin(), fields.end(), path);
    n->field = static_cast<uint32_t>(it - fields.begin());
    if (it == fields.end()) fields.push_back(std::move(path));
    out_->field_nodes_.push_back(n);
    ChooseEval(*n);
    return n;
  }

  Node* ParseCall(const Token& name) {
    const FunctionDef* fn = FindFunction(name.text);
    if (fn == nullptr) {
      std::vector<std::string> names;
      for (auto f : FunctionNames()) names.emplace_back(f);
      return Error(name.offset,
                   "unknown function '" + name.text + "'" + DidYouMean(name.text, names));
    }
    Advance();  // '('
    Node* n = NewNode(fn->op);
    n->function = fn;
    if (tok_.kind != TokenKind::kRParen) {
      while (true) {
        Node* arg = ParseOr();
        if (arg == nullptr) return nullptr;
        n->args.push_back(arg);
        if (tok_.kind == TokenKind::kComma) {
          Advance();
          continue;
        }
        if (tok_.kind != TokenKind::kRParen) return Unexpected("',' or ')'");
        break;
      }
    }
    Advance();  // ')'
    const size_t count = n->args.size();
    if (count < fn->min_args || count > fn->max_args) {
      std::string takes;
      if (fn->min_args == fn->max_args) {
        takes = std::to_string(fn->min_args) + (fn->min_args == 1 ? " argument" : " arguments");
      } else if (fn->max_args == kMaxCallArgs) {
        takes = count < fn->min_args ? "at least " + std::to_string(fn->min_args) + " argument"
                                     : "at most " + std::to_string(kMaxCallArgs) + " arguments";
      } else {
        takes = std::to_string(fn->min_args) + " or " + std::to_string(fn->max_args) + " arguments";
      }
      return Error(name.offset, name.text + "() takes " + takes + ", got " + std::to_string(count));
    }
    return Finish(n);
  }

  std::string_view text_;
  Lexer lexer_;
  CompiledExpr* out_;
  Token tok_;
  int depth_ = 0;
  bool failed_ = false;
  ExprParseError error_;
};

}  // namespace

std::unique_ptr<Expr> ParseExpr(std::string_view text, ExprParseError* error) {
  auto expr = std::make_unique<CompiledExpr>(text);
  Parser parser(text, expr.get());
  if (!parser.Parse(error)) return nullptr;
  return expr;
}

}  // namespace streamrun
