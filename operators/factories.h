// The factory of every operator type, one per operators/*.cc file, for the table in registry.cc.
#pragma once

#include <memory>
#include <string>
#include <string_view>

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
// State decoders (OperatorType::describe_state), in the file of the operator that writes it.
Status DescribeWindowState(std::string_view ns, std::string_view value,
                           std::string_view schema_json, std::string* out);
// Sinks.
NodeConfigResult MakeStdoutSink(const ConfigReader& config);
NodeConfigResult MakeFileSink(const ConfigReader& config);
NodeConfigResult MakeKafkaSink(const ConfigReader& config);

}  // namespace streamrun
