// Loading a pipeline file: YAML text to a validated PipelineSpec.
//
// Loading does everything that can be checked without running: the YAML itself (with limits on
// nesting depth and alias expansion), `${VAR}` / `${VAR:-default}` substitution, `--set`
// overrides, the structure that schemas/pipeline.schema.json describes, each node's own settings
// (through its factory in operators/registry.h), expressions, durations, and the `from` graph.
// Every error is a Status of kind kPipelineError whose message is `FILE:LINE:COL: message`
// (FILE as given by the caller, LINE and COL 1-based), pointing at the offending key or value.
// Two exceptions have no place in the file: errors about the file as a whole (`FILE: message`:
// unreadable, too large, empty) and errors in a value that a --set put there
// (`--set KEY: message`).
#pragma once

#include <yaml-cpp/yaml.h>

#include <functional>
#include <initializer_list>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "engine/expr.h"
#include "engine/operator.h"
#include "engine/status.h"

namespace streamrun {

// 1-based line and column in a pipeline file.
struct SourceLocation {
  std::string file;
  int line = 0;
  int column = 0;
};
// "FILE:LINE:COL: message"
std::string FormatAt(const SourceLocation& loc, std::string_view message);

// Parses "250ms", "10s", "5m", "1h", "1d" (also "0") to milliseconds.
Result<int64_t> ParseDurationMs(std::string_view text);
// Parses "64KiB", "8MiB", "1GiB", "512B" (also a plain number of bytes).
Result<uint64_t> ParseSizeBytes(std::string_view text);

class LoadContext;

// Reads the settings of one mapping of the pipeline file (a source, a step, a sink, or a nested
// mapping such as `window:`) and reports errors at their place in the file.
class ConfigReader {
 public:
  ConfigReader(const LoadContext* ctx, YAML::Node node, std::string what);

  // `what` names the mapping in messages: "step 'clean'".
  const std::string& what() const { return what_; }
  const YAML::Node& node() const { return node_; }
  SourceLocation Location() const;
  SourceLocation LocationOf(std::string_view key) const;  // of the key's value

  // Fails on a key not in `allowed`, with a did-you-mean.
  Status CheckKeys(std::initializer_list<std::string_view> allowed) const;
  bool Has(std::string_view key) const;

  // Each getter fails with a located error when the key is missing (no default given) or its
  // value has the wrong type or range.
  Result<std::string> String(std::string_view key) const;
  Result<std::string> String(std::string_view key, std::string default_value) const;
  Result<int64_t> Int(std::string_view key, std::optional<int64_t> default_value,
                      int64_t min = INT64_MIN, int64_t max = INT64_MAX) const;
  Result<double> Number(std::string_view key, std::optional<double> default_value) const;
  Result<bool> Bool(std::string_view key, std::optional<bool> default_value) const;
  Result<int64_t> DurationMs(std::string_view key, std::optional<int64_t> default_value) const;
  Result<uint64_t> SizeBytes(std::string_view key, std::optional<uint64_t> default_value) const;
  // One of `choices`; the error lists them and suggests the closest.
  Result<std::string> Enum(std::string_view key, std::initializer_list<std::string_view> choices,
                           std::optional<std::string> default_value) const;
  // A path relative to the pipeline file's folder, returned absolute.
  Result<std::string> Path(std::string_view key) const;
  // A string, or a list of strings (`key_by: [a, b]` or `key_by: a`).
  Result<std::vector<std::string>> StringList(std::string_view key) const;
  // An expression; a syntax error points at the offending token in the file.
  Result<std::unique_ptr<Expr>> Expression(std::string_view key) const;
  // The same for an expression that is not directly under a key (list item, map value).
  Result<std::unique_ptr<Expr>> ExpressionAt(const YAML::Node& scalar) const;
  // A nested mapping.
  Result<ConfigReader> Child(std::string_view key) const;
  // The keys of this mapping, in file order.
  std::vector<std::string> Keys() const;

  Status ErrorAt(std::string_view key, std::string_view message) const;
  Status ErrorAtNode(const YAML::Node& node, std::string_view message) const;
  Status Error(std::string_view message) const;  // at the mapping itself

  const LoadContext* context() const { return ctx_; }

 private:
  const LoadContext* ctx_;
  YAML::Node node_;
  std::string what_;
};

// A source, step or sink of the pipeline.
struct NodeSpec {
  std::string name;
  std::string type;
  NodeRole role = NodeRole::kStep;
  SourceLocation location;
  // The streams it reads (steps and sinks): "clicks", "per_user_minute.late", "clicks.errors".
  std::vector<std::string> from;
  std::vector<SourceLocation> from_locations;
  std::shared_ptr<const NodeConfig> config;
};

inline constexpr uint64_t kDefaultStateCacheBytes = uint64_t{1} << 30;  // state.cache: 1GiB

struct CheckpointSpec {
  int64_t interval_ms = 0;  // 0: no periodic checkpoints
  bool exactly_once = true;
  int retain = 3;
  int64_t timeout_ms = 600000;  // a checkpoint not complete by then is aborted
};

struct RestartSpec {
  bool fixed_delay = false;  // false: strategy none
  int attempts = 3;
  int64_t delay_ms = 1000;
};

struct PipelineSpec {
  std::string file;  // absolute path of the pipeline file
  std::string dir;   // its folder
  std::string name;
  int parallelism = 1;
  int max_parallelism = 128;
  std::string state_dir;  // absolute
  // Memory for keyed state, shared by all stateful subtasks: beyond it, windows are evicted to
  // the LMDB working stores (operators/window_spill.h).
  uint64_t state_cache_bytes = kDefaultStateCacheBytes;
  CheckpointSpec checkpoints;
  RestartSpec restart;
  // In file order.
  std::vector<NodeSpec> sources;
  std::vector<NodeSpec> steps;
  std::vector<NodeSpec> sinks;

  // The node with this name, or null.
  const NodeSpec* Find(std::string_view name) const;
};

struct OperatorType;  // operators/registry.h

struct LoadOptions {
  // `--set a.b=v` overrides, applied in order after `${VAR}` substitution.
  std::vector<std::pair<std::string, std::string>> sets;
  // Environment lookup for `${VAR}`; defaults to getenv.
  std::function<std::optional<std::string>(const std::string&)> env;
  // The operator types to look `type:` up in; null (the default): the registry's OperatorTypes().
  // Tests pass a table of their own to check the generic parts of loading (type lookup, names,
  // `from`) without the real operators.
  const std::vector<OperatorType>* operator_types = nullptr;
};

Result<PipelineSpec> LoadPipeline(const std::string& path, const LoadOptions& options);
// The same on text in memory; `path` is used for messages and relative paths.
Result<PipelineSpec> LoadPipelineFromString(std::string_view text, const std::string& path,
                                            const LoadOptions& options);

// The JSON Schema (draft 2020-12) of the pipeline file, generated from the operator table
// (operators/registry.h). schemas/pipeline.schema.json holds its output; a unit test keeps the two
// equal. Editors use it through yaml-language-server.
std::string PipelineJsonSchema();
// The reference of every source, step and sink type, as Markdown, generated from the same table.
// docs/operators.md holds its output; a unit test keeps the two equal.
std::string OperatorDocsMarkdown();

}  // namespace streamrun
