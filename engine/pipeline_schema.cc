// PipelineJsonSchema: the JSON Schema of the pipeline file, generated from the operator table.
//
// Draft-07 rather than 2020-12: yaml-language-server (the YAML support of VS Code and other
// editors) implements draft-07 fully, and if/then is all this schema needs from later drafts.
// Each node is an object whose `type` picks, through if/then, the settings of that type; a
// `then` closes the object (additionalProperties: false), so it lists `type` and `from` too.
#include <rapidjson/prettywriter.h>
#include <rapidjson/stringbuffer.h>

#include <optional>
#include <string>

#include "engine/pipeline.h"
#include "operators/registry.h"

namespace streamrun {
namespace {

using Writer = rapidjson::PrettyWriter<rapidjson::StringBuffer>;

constexpr const char* kNamePattern = "^[A-Za-z_][A-Za-z0-9_-]*$";
constexpr const char* kDefs = "#/definitions/";

void Str(Writer& w, std::string_view s) {
  w.String(s.data(), static_cast<rapidjson::SizeType>(s.size()));
}
void Key(Writer& w, std::string_view s) {
  w.Key(s.data(), static_cast<rapidjson::SizeType>(s.size()));
}
void KeyStr(Writer& w, std::string_view key, std::string_view value) {
  Key(w, key);
  Str(w, value);
}
void Ref(Writer& w, std::string_view def) {
  w.StartObject();
  KeyStr(w, "$ref", std::string(kDefs) + std::string(def));
  w.EndObject();
}

// Opens {"type": "object", "description": d, "additionalProperties": false, "properties": {
// for a settings mapping; the caller writes the properties and closes both objects.
void BeginClosedObject(Writer& w, std::string_view description) {
  w.StartObject();
  KeyStr(w, "type", "object");
  KeyStr(w, "description", description);
  Key(w, "additionalProperties");
  w.Bool(false);
  Key(w, "properties");
  w.StartObject();
}

// {"description": d, "allOf": [{"$ref": def}]}: draft-07 ignores keywords beside a $ref.
void DescribedRef(Writer& w, std::string_view def, std::string_view description) {
  w.StartObject();
  KeyStr(w, "description", description);
  Key(w, "allOf");
  w.StartArray();
  Ref(w, def);
  w.EndArray();
  w.EndObject();
}

// A scalar setting that may also be a `${VAR}` string, substituted when the file is loaded.
void ScalarOrEnv(Writer& w, std::string_view type, std::string_view description,
                 std::optional<int64_t> min = std::nullopt,
                 std::optional<int64_t> max = std::nullopt) {
  w.StartObject();
  KeyStr(w, "description", description);
  Key(w, "anyOf");
  w.StartArray();
  w.StartObject();
  KeyStr(w, "type", type);
  if (min) {
    Key(w, "minimum");
    w.Int64(*min);
  }
  if (max) {
    Key(w, "maximum");
    w.Int64(*max);
  }
  w.EndObject();
  Ref(w, "env");
  w.EndArray();
  w.EndObject();
}

void Enum(Writer& w, std::initializer_list<std::string_view> values, std::string_view description) {
  w.StartObject();
  KeyStr(w, "description", description);
  Key(w, "enum");
  w.StartArray();
  for (auto v : values) Str(w, v);
  w.EndArray();
  w.EndObject();
}

void Setting(Writer& w, const SettingDoc& s) {
  const std::string_view t = s.json_type;
  if (t == "integer" || t == "number" || t == "boolean") {
    ScalarOrEnv(w, t, s.description);
  } else if (t == "duration" || t == "expression") {
    DescribedRef(w, t, s.description);
  } else if (t == "array") {
    // Lists of names may also be written as one name: `key_by: userId`.
    DescribedRef(w, "names", s.description);
  } else {
    w.StartObject();
    KeyStr(w, "type", t);
    KeyStr(w, "description", s.description);
    w.EndObject();
  }
}

// definitions/<role>: the node of that role, dispatching on `type`.
void NodeDefinition(Writer& w, NodeRole role) {
  const bool has_from = role != NodeRole::kSource;
  Key(w, NodeRoleName(role));
  w.StartObject();
  KeyStr(w, "type", "object");
  Key(w, "required");
  w.StartArray();
  Str(w, "type");
  if (has_from) Str(w, "from");
  w.EndArray();
  Key(w, "properties");
  w.StartObject();
  Key(w, "type");
  w.StartObject();
  std::string listing = std::string("The ") + NodeRoleName(role) + " type:";
  Key(w, "enum");
  w.StartArray();
  for (const auto& t : OperatorTypes()) {
    if (t.role != role) continue;
    Str(w, t.name);
    listing += "\n- " + std::string(t.name) + ": " + std::string(t.description);
  }
  w.EndArray();
  KeyStr(w, "description", listing);
  w.EndObject();
  w.EndObject();
  Key(w, "allOf");
  w.StartArray();
  for (const auto& t : OperatorTypes()) {
    if (t.role != role) continue;
    w.StartObject();
    Key(w, "if");
    w.StartObject();
    Key(w, "properties");
    w.StartObject();
    Key(w, "type");
    w.StartObject();
    KeyStr(w, "const", t.name);
    w.EndObject();
    w.EndObject();
    Key(w, "required");
    w.StartArray();
    Str(w, "type");
    w.EndArray();
    w.EndObject();
    Key(w, "then");
    w.StartObject();
    KeyStr(w, "description", t.description);
    Key(w, "properties");
    w.StartObject();
    Key(w, "type");
    w.StartObject();
    KeyStr(w, "const", t.name);
    w.EndObject();
    if (has_from) {
      Key(w, "from");
      DescribedRef(w, "from",
                   "The stream it reads: a source, a step, <step>.late or "
                   "<source>.errors; a list reads their union.");
    }
    for (const auto& s : t.settings) {
      Key(w, s.name);
      Setting(w, s);
    }
    w.EndObject();
    Key(w, "required");
    w.StartArray();
    for (const auto& s : t.settings) {
      if (s.required) Str(w, s.name);
    }
    w.EndArray();
    Key(w, "additionalProperties");
    w.Bool(false);
    w.EndObject();
    w.EndObject();
  }
  w.EndArray();
  w.EndObject();
}

void Section(Writer& w, NodeRole role, std::string_view description, bool required) {
  w.StartObject();
  KeyStr(w, "description", description);
  if (required) {
    KeyStr(w, "type", "object");
    Key(w, "minProperties");
    w.Int(1);
  } else {
    Key(w, "type");
    w.StartArray();
    Str(w, "object");
    Str(w, "null");
    w.EndArray();
  }
  Key(w, "propertyNames");
  Ref(w, "name");
  Key(w, "additionalProperties");
  Ref(w, NodeRoleName(role));
  w.EndObject();
}

void Definitions(Writer& w) {
  Key(w, "definitions");
  w.StartObject();
  Key(w, "name");
  w.StartObject();
  KeyStr(w, "type", "string");
  KeyStr(w, "pattern", kNamePattern);
  KeyStr(w, "description", "Letters, digits, '_' and '-', starting with a letter or '_'.");
  w.EndObject();
  Key(w, "env");
  w.StartObject();
  KeyStr(w, "type", "string");
  KeyStr(w, "pattern", "\\$\\{[A-Za-z_][A-Za-z0-9_]*(:-[^}]*)?\\}");
  KeyStr(w, "description", "${VAR} or ${VAR:-default}, replaced from the environment.");
  w.EndObject();
  Key(w, "duration");
  w.StartObject();
  Key(w, "anyOf");
  w.StartArray();
  w.StartObject();
  KeyStr(w, "type", "string");
  KeyStr(w, "pattern", "^(0|[0-9]+(ms|s|m|h|d))$");
  w.EndObject();
  w.StartObject();
  Key(w, "const");
  w.Int(0);
  w.EndObject();
  Ref(w, "env");
  w.EndArray();
  KeyStr(w, "description", "A duration: 250ms, 10s, 5m, 1h, 1d, or 0.");
  w.EndObject();
  Key(w, "size");
  w.StartObject();
  Key(w, "anyOf");
  w.StartArray();
  w.StartObject();
  KeyStr(w, "type", "string");
  KeyStr(w, "pattern", "^[0-9]+(B|KiB|MiB|GiB)?$");
  w.EndObject();
  w.StartObject();
  KeyStr(w, "type", "integer");
  Key(w, "minimum");
  w.Int(0);
  w.EndObject();
  Ref(w, "env");
  w.EndArray();
  KeyStr(w, "description", "A size in bytes: 65536, 64KiB, 8MiB, 2GiB.");
  w.EndObject();
  Key(w, "expression");
  w.StartObject();
  Key(w, "type");
  w.StartArray();
  Str(w, "string");
  Str(w, "number");
  Str(w, "boolean");
  w.EndArray();
  KeyStr(w, "description", "An expression (docs/expressions.md).");
  w.EndObject();
  Key(w, "names");
  w.StartObject();
  Key(w, "anyOf");
  w.StartArray();
  w.StartObject();
  KeyStr(w, "type", "string");
  w.EndObject();
  w.StartObject();
  KeyStr(w, "type", "array");
  Key(w, "items");
  w.StartObject();
  KeyStr(w, "type", "string");
  w.EndObject();
  w.EndObject();
  w.EndArray();
  w.EndObject();
  Key(w, "from");
  w.StartObject();
  Key(w, "anyOf");
  w.StartArray();
  Ref(w, "stream");
  w.StartObject();
  KeyStr(w, "type", "array");
  Key(w, "minItems");
  w.Int(1);
  Key(w, "uniqueItems");
  w.Bool(true);
  Key(w, "items");
  Ref(w, "stream");
  w.EndObject();
  w.EndArray();
  w.EndObject();
  Key(w, "stream");
  w.StartObject();
  KeyStr(w, "type", "string");
  KeyStr(w, "pattern", "^[A-Za-z_][A-Za-z0-9_-]*(\\.(late|errors))?$");
  KeyStr(w, "description", "A source, a step, <step>.late or <source>.errors.");
  w.EndObject();
  NodeDefinition(w, NodeRole::kSource);
  NodeDefinition(w, NodeRole::kStep);
  NodeDefinition(w, NodeRole::kSink);
  w.EndObject();
}

}  // namespace

std::string PipelineJsonSchema() {
  rapidjson::StringBuffer buffer;
  Writer w(buffer);
  w.SetIndent(' ', 2);
  w.StartObject();
  KeyStr(w, "$schema", "http://json-schema.org/draft-07/schema#");
  KeyStr(w, "title", "streamrun pipeline");
  KeyStr(w, "description",
         "A streamrun pipeline file. Generated from operators/registry.cc by "
         "PipelineJsonSchema(); do not edit.");
  KeyStr(w, "type", "object");
  Key(w, "required");
  w.StartArray();
  Str(w, "name");
  Str(w, "sources");
  Str(w, "sinks");
  w.EndArray();
  Key(w, "additionalProperties");
  w.Bool(false);
  Key(w, "properties");
  w.StartObject();
  Key(w, "name");
  DescribedRef(w, "name",
               "The pipeline's name; the default state directory is "
               ".streamrun/<name> beside the pipeline file.");
  Key(w, "parallelism");
  ScalarOrEnv(w, "integer", "Subtasks of each keyed step (default 1).", 1, 32768);
  Key(w, "max_parallelism");
  ScalarOrEnv(w, "integer",
              "Key groups: the largest parallelism a savepoint can be restored at (default 128).",
              1, 32768);
  Key(w, "state");
  BeginClosedObject(w, "Where keyed state and checkpoints are kept.");
  Key(w, "dir");
  w.StartObject();
  KeyStr(w, "type", "string");
  KeyStr(w, "description",
         "The state directory, relative to the pipeline file (default "
         ".streamrun/<name>).");
  w.EndObject();
  Key(w, "cache");
  DescribedRef(w, "size",
               "Memory for keyed state, shared by the stateful subtasks (default 1GiB); "
               "windows beyond it are evicted to LMDB under the state directory.");
  w.EndObject();
  w.EndObject();
  Key(w, "checkpoints");
  BeginClosedObject(w, "Periodic checkpoints of state and source positions.");
  Key(w, "interval");
  DescribedRef(w, "duration", "Time between checkpoints; absent or 0: none.");
  Key(w, "mode");
  Enum(w, {"exactly_once", "at_least_once"},
       "exactly_once (aligned barriers, default) | at_least_once (no alignment).");
  Key(w, "retain");
  ScalarOrEnv(w, "integer", "Complete checkpoints kept (default 3).", 1, 1000);
  Key(w, "timeout");
  DescribedRef(w, "duration", "A checkpoint not complete by then is aborted (default 10m).");
  w.EndObject();
  w.EndObject();
  Key(w, "restart");
  BeginClosedObject(w, "What to do when the job fails.");
  Key(w, "strategy");
  Enum(w, {"none", "fixed_delay"},
       "none (default): fail | fixed_delay: restart from the last checkpoint.");
  Key(w, "attempts");
  ScalarOrEnv(w, "integer", "Restarts before giving up (default 3).", 0, 1000000);
  Key(w, "delay");
  DescribedRef(w, "duration", "Wait before each restart (default 1s).");
  w.EndObject();
  w.EndObject();
  Key(w, "sources");
  Section(w, NodeRole::kSource, "The inputs, by name.", true);
  Key(w, "steps");
  Section(w, NodeRole::kStep, "The transformations, by name.", false);
  Key(w, "sinks");
  Section(w, NodeRole::kSink, "The outputs, by name.", true);
  w.EndObject();
  Definitions(w);
  w.EndObject();
  return std::string(buffer.GetString(), buffer.GetSize()) + "\n";
}

}  // namespace streamrun
