// The table of every source, step and sink type. It drives pipeline loading (type lookup with a
// did-you-mean, each type's settings), `validate`, schemas/pipeline.schema.json and the docs.
#pragma once

#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "engine/operator.h"
#include "engine/pipeline.h"
#include "engine/status.h"

namespace streamrun {

// One setting of an operator type, for the schema and the docs.
struct SettingDoc {
  std::string_view name;
  std::string_view json_type;  // "string", "integer", "number", "boolean", "object", "array",
                               // "duration", "expression"
  bool required = false;
  std::string_view description;
};

using NodeFactory = Result<std::shared_ptr<const NodeConfig>> (*)(const ConfigReader& config);

// Decodes one keyed-state entry of a step of this type (engine/state_file.h: namespace and
// value) for `streamrun state dump`, appending JSON members to *out (a window appends
// "window":{...},"value":{...}). `schema_json` is the step's NodeConfig::StateSchemaJson as the
// snapshot stored it, maybe empty. Damage is an error saying what is wrong.
using StateDescriber = Status (*)(std::string_view ns, std::string_view value,
                                  std::string_view schema_json, std::string* out);

struct OperatorType {
  std::string_view name;  // the `type:` value
  NodeRole role;
  std::string_view description;
  std::vector<SettingDoc> settings;  // besides `type` (and `from` for steps and sinks)
  NodeFactory factory;
  StateDescriber describe_state = nullptr;  // steps with keyed state
};

// Every registered type, sources first, then steps, then sinks.
const std::vector<OperatorType>& OperatorTypes();
// The type of that role and name, or null.
const OperatorType* FindOperatorType(NodeRole role, std::string_view name);

}  // namespace streamrun
