// The `stdin` source: JSON lines, text lines or a recording from standard input. A pause in the
// input sends the batch so far, so interactive use sees results promptly.
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

class StdinSourceConfig : public SourceConfig {
 public:
  using SourceConfig::SourceConfig;
  int max_subtasks() const override { return 1; }
  Result<std::unique_ptr<SourceOperator>> CreateSource() const override {
    return std::unique_ptr<SourceOperator>(std::make_unique<StdinSource>(common_, format_));
  }
  std::string Describe() const override { return "stdin"; }
};

}  // namespace

NodeConfigResult MakeStdinSource(const ConfigReader& config) {
  SR_RETURN_IF_ERROR(config.CheckKeys({"type", "format", "event_time", "watermark", "on_error"}));
  SR_ASSIGN_OR_RETURN(std::string format,
                      config.Enum("format", {"json", "text", "recording"}, std::string("json")));
  SR_ASSIGN_OR_RETURN(SourceCommon common, ReadSourceCommon(config));
  return std::shared_ptr<const NodeConfig>(
      std::make_shared<StdinSourceConfig>(std::move(common), LineFormatNamed(format)));
}

}  // namespace streamrun
