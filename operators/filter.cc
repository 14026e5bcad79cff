// The `filter` step: keeps the records for which `where` is true.
//
// Records are kept or dropped in place: a kept record leaves as the very bytes it came in with.
#include <memory>
#include <vector>

#include "operators/factories.h"

namespace streamrun {
namespace {

class FilterConfig : public NodeConfig {
 public:
  explicit FilterConfig(std::shared_ptr<const Expr> where) : where_(std::move(where)) {}

  std::vector<FieldPath> InputFields(const std::vector<FieldPath>& output_fields) const override {
    std::vector<FieldPath> fields = output_fields;
    fields.insert(fields.end(), where_->fields().begin(), where_->fields().end());
    return fields;
  }
  bool stateless() const override { return true; }
  bool passes_layout_through() const override { return true; }
  std::string Describe() const override { return "where: " + where_->text(); }
  Result<std::unique_ptr<Operator>> CreateOperator() const override;

 private:
  std::shared_ptr<const Expr> where_;
};

class Filter : public Operator {
 public:
  explicit Filter(std::unique_ptr<Expr> where) : where_(std::move(where)) {}

  Status Open(const OperatorContext& ctx) override {
    ctx_ = &ctx;
    return where_->Bind(ctx.input_layout);
  }

  Status Process(BatchPtr batch) override {
    std::vector<Row>& rows = batch->rows;
    const size_t n = rows.size();
    KeptRows kept(*batch);
    EvalContext ec;
    ec.arena = &batch->arena;
    for (size_t r = 0; r < n; ++r) {
      ec.slots = batch->SlotsOf(r);
      ec.row = &rows[r];
      const Value v = where_->Eval(ec);
      bool keep = v.kind() == Value::Kind::kBool ? v.as_bool() : IsTrue(v, ec);
      if (!ec.error.empty()) [[unlikely]] {
        // The record goes to its source's errors stream (or fails the job). Rows from r on are
        // still where they were.
        SR_RETURN_IF_ERROR(ctx_->errors->Report(*batch, r, ctx_->name, ec.error));
        ec.error.clear();
        keep = false;
      }
      if (keep) kept.Keep(r);
    }
    kept.Finish();
    return ctx_->main->Emit(std::move(batch));
  }

  Status Finish() override { return Status::Ok(); }

 private:
  std::unique_ptr<Expr> where_;
  const OperatorContext* ctx_ = nullptr;
};

Result<std::unique_ptr<Operator>> FilterConfig::CreateOperator() const {
  // Each subtask binds its own copy of the expression (Bind writes slot indexes).
  ExprParseError err;
  std::unique_ptr<Expr> expr = ParseExpr(where_->text(), &err);
  if (!expr) return Status::RuntimeError("filter: " + err.message);
  return std::unique_ptr<Operator>(new Filter(std::move(expr)));
}

}  // namespace

NodeConfigResult MakeFilter(const ConfigReader& config) {
  SR_RETURN_IF_ERROR(config.CheckKeys({"type", "from", "where"}));
  SR_ASSIGN_OR_RETURN(std::unique_ptr<Expr> where, config.Expression("where"));
  return std::shared_ptr<const NodeConfig>(
      std::make_shared<FilterConfig>(std::shared_ptr<const Expr>(std::move(where))));
}

}  // namespace streamrun
