// The `stdin` source: JSON or text lines from standard input. A pause in the input sends the
// batch so far, so interactive use sees results promptly.
#include <unistd.h>

#include "operators/factories.h"
#include "operators/source_common.h"

namespace streamrun {
namespace {

class StdinSource : public SourceOperator {
 public:
  StdinSource(const SourceCommon& common, LineFormat format) : common_(common), format_(format) {}
  Status Run(SourceContext& ctx) override {
    RecordMaker maker(common_, ctx, format_);
    SR_RETURN_IF_ERROR(maker.Init());
    LineStreamOptions so;
    so.fd = STDIN_FILENO;
    so.poll = true;
    return StreamLines(ctx, maker, common_, so);
  }

 private:
  SourceCommon common_;
  LineFormat format_;
};

class StdinSourceConfig : public NodeConfig {
 public:
  StdinSourceConfig(SourceCommon common, LineFormat format) : common_(std::move(common)), format_(format) {}
  std::vector<FieldPath> InputFields(const std::vector<FieldPath>& out) const override {
    return SourceInputFields(common_, out);
  }
  int max_subtasks() const override { return 1; }
  Result<std::unique_ptr<SourceOperator>> CreateSource() const override {
    return std::unique_ptr<SourceOperator>(std::make_unique<StdinSource>(common_, format_));
  }
  OnError on_error() const override { return common_.on_error; }
  std::string Describe() const override { return "stdin"; }

 private:
  SourceCommon common_;
  LineFormat format_;
};

}  // namespace

NodeConfigResult MakeStdinSource(const ConfigReader& config) {
  SR_RETURN_IF_ERROR(config.CheckKeys({"type", "format", "event_time", "watermark", "on_error"}));
  SR_ASSIGN_OR_RETURN(std::string format, config.Enum("format", {"json", "text"}, std::string("json")));
  SR_ASSIGN_OR_RETURN(SourceCommon common, ReadSourceCommon(config));
  return std::shared_ptr<const NodeConfig>(std::make_shared<StdinSourceConfig>(
      std::move(common), format == "text" ? LineFormat::kText : LineFormat::kJson));
}

}  // namespace streamrun
