// The capture sink (see capture_sink.h).
#include "operators/capture_sink.h"

namespace streamrun {
namespace {

class CaptureSink : public Operator {
 public:
  explicit CaptureSink(std::shared_ptr<CapturedLines> into) : into_(std::move(into)) {}
  Status Open(const OperatorContext& /*ctx*/) override { return Status::Ok(); }
  Status Process(BatchPtr batch) override {
    for (const Row& row : batch->rows) into_->lines.emplace_back(row.raw);
    records_ += batch->rows.size();
    return Status::Ok();
  }
  Status Finish() override { return Status::Ok(); }
  uint64_t records_out() const override { return records_; }

 private:
  std::shared_ptr<CapturedLines> into_;
  uint64_t records_ = 0;
};

class CaptureSinkConfig : public NodeConfig {
 public:
  explicit CaptureSinkConfig(std::shared_ptr<CapturedLines> into) : into_(std::move(into)) {}
  std::vector<FieldPath> InputFields(const std::vector<FieldPath>& /*out*/) const override {
    return {};
  }
  int max_subtasks() const override { return 1; }
  bool has_main_output() const override { return false; }
  Result<std::unique_ptr<Operator>> CreateOperator() const override {
    return std::unique_ptr<Operator>(std::make_unique<CaptureSink>(into_));
  }
  std::string Describe() const override { return "captured"; }

 private:
  std::shared_ptr<CapturedLines> into_;
};

}  // namespace

std::shared_ptr<const NodeConfig> NewCaptureSinkConfig(std::shared_ptr<CapturedLines> into) {
  return std::make_shared<CaptureSinkConfig>(std::move(into));
}

}  // namespace streamrun
