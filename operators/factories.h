// The factory of every operator type, one per operators/*.cc file, for the table in registry.cc.
#pragma once

#include <memory>

#include "engine/operator.h"
#include "engine/pipeline.h"

namespace streamrun {

using NodeConfigResult = Result<std::shared_ptr<const NodeConfig>>;

// Sources.
NodeConfigResult MakeFileSource(const ConfigReader& config);
NodeConfigResult MakeGeneratorSource(const ConfigReader& config);
NodeConfigResult MakeStdinSource(const ConfigReader& config);
NodeConfigResult MakeKafkaSource(const ConfigReader& config);
// Steps.
NodeConfigResult MakeFilter(const ConfigReader& config);
NodeConfigResult MakeMap(const ConfigReader& config);
NodeConfigResult MakeWindow(const ConfigReader& config);
// Sinks.
NodeConfigResult MakeStdoutSink(const ConfigReader& config);
NodeConfigResult MakeFileSink(const ConfigReader& config);
NodeConfigResult MakeKafkaSink(const ConfigReader& config);

}  // namespace streamrun
