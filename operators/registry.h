// The table of every source, step and sink type. It drives pipeline loading (type lookup with a
// did-you-mean, each type's settings), `validate`, schemas/pipeline.schema.json and the docs.
#pragma once

#include <memory>
#include <string_view>
#include <vector>

#include "engine/operator.h"
#include "engine/pipeline.h"
#include "engine/status.h"

namespace streamrun {

// One setting of an operator type, for the schema and the docs.
struct SettingDoc {
  std::string_view name;
  std::string_view json_type;  // "string", "integer", "number", "boolean", "object", "array", "duration", "expression"
  bool required = false;
  std::string_view description;
};

using NodeFactory = Result<std::shared_ptr<const NodeConfig>> (*)(const ConfigReader& config);

struct OperatorType {
  std::string_view name;  // the `type:` value
  NodeRole role;
  std::string_view description;
  std::vector<SettingDoc> settings;  // besides `type` (and `from` for steps and sinks)
  NodeFactory factory;
};

// Every registered type, sources first, then steps, then sinks.
const std::vector<OperatorType>& OperatorTypes();
// The type of that role and name, or null.
const OperatorType* FindOperatorType(NodeRole role, std::string_view name);

}  // namespace streamrun
