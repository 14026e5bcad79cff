// TEMPORARY during the first build-out: factories whose operator file has not landed yet.
// Each operator's author deletes its line here when adding operators/<type>.cc.
#include "operators/factories.h"

namespace streamrun {
namespace {
NodeConfigResult Pending(const ConfigReader& config) {
  return Status::PipelineError("not implemented yet: " + config.what());
}
}  // namespace

NodeConfigResult MakeFileSource(const ConfigReader& c) { return Pending(c); }
NodeConfigResult MakeGeneratorSource(const ConfigReader& c) { return Pending(c); }
NodeConfigResult MakeStdinSource(const ConfigReader& c) { return Pending(c); }
NodeConfigResult MakeFilter(const ConfigReader& c) { return Pending(c); }
NodeConfigResult MakeMap(const ConfigReader& c) { return Pending(c); }
NodeConfigResult MakeStdoutSink(const ConfigReader& c) { return Pending(c); }
NodeConfigResult MakeFileSink(const ConfigReader& c) { return Pending(c); }

}  // namespace streamrun
