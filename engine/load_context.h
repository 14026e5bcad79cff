// What every part of pipeline loading shares: the file's text and name, where --set values came
// from, and the operator table in use. Internal to engine/pipeline*.cc and engine/config_reader.cc,
// and engine/test_file.cc, which reads test files with the same tools.
#pragma once

#include <yaml-cpp/yaml.h>

#include <cstddef>
#include <cstdint>
#include <functional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "engine/pipeline.h"
#include "engine/status.h"

namespace streamrun {

struct OperatorType;

// Limits against hostile pipeline files. A real pipeline is a few hundred lines, nests a handful
// of levels and uses aliases, if at all, for a few shared settings; these limits are far above
// that and far below what takes noticeable time or memory.
inline constexpr size_t kMaxPipelineFileBytes = size_t{4} << 20;
// Nesting of mappings and sequences. yaml-cpp stops at 2000 itself; this is stricter, and also
// catches recursive aliases (`&a [*a]`), which yaml-cpp builds as a cyclic graph.
inline constexpr int kMaxYamlDepth = 64;
// Nodes visited while walking the document, counting each visit through an alias again. yaml-cpp
// shares the node of an anchor with its aliases, so a "billion laughs" document is small in
// memory; but everything that walks it (substitution, validation) would take exponential time.
inline constexpr int64_t kMaxYamlNodeVisits = 100000;

class LoadContext {
 public:
  // `path`: the pipeline file as given (for messages). `dir`: its folder, absolute.
  LoadContext(std::string path, std::string dir, std::string text,
              const std::vector<OperatorType>* operator_types);

  const std::string& path() const { return path_; }
  const std::string& dir() const { return dir_; }
  const std::string& text() const { return text_; }
  // The table passed in LoadOptions, else the registry's.
  const std::vector<OperatorType>& operator_types() const { return *operator_types_; }

  // Where `node` starts, 1-based. Line 0 when the node has no place in the file.
  SourceLocation LocationOf(const YAML::Node& node) const;
  // Where byte `offset` of the value of `scalar` is. Exact when the value appears verbatim in the
  // file (plain, or quoted without escapes); else the scalar's start.
  SourceLocation LocationInScalar(const YAML::Node& scalar, size_t offset) const;

  // A kPipelineError located at `node`: "FILE:LINE:COL: message", or "--set KEY: message" for a
  // node that a --set override put there.
  Status ErrorAt(const YAML::Node& node, std::string_view message) const;
  // Relative paths are taken from the pipeline file's folder; the result is absolute and normal.
  std::string ResolvePath(std::string_view path) const;

  // Records that `node` and everything below it came from `--set set_key=...`.
  void NoteFromSet(const YAML::Node& node, const std::string& set_key);
  // The KEY of the `--set KEY=...` that put `node` there, or null for a node from the file.
  const std::string* SetKeyOf(const YAML::Node& node) const;

 private:
  std::string path_;
  std::string dir_;
  std::string text_;
  const std::vector<OperatorType>* operator_types_;
  // Few entries (one per --set and the nodes below it), compared by identity.
  std::vector<std::pair<YAML::Node, std::string>> set_nodes_;
};

// The text of a file the loader reads (a pipeline file, a test file), at most
// kMaxPipelineFileBytes. `what` names the kind of file in messages: "pipeline file".
Result<std::string> ReadLoaderFile(const std::string& path, std::string_view what);
// Fails unless `size` bytes are within kMaxPipelineFileBytes (`path`, `what` as above).
Status CheckLoaderFileSize(const std::string& path, std::string_view what, uint64_t size);

// Parses ctx.text() as one YAML document, checks its limits (CheckYamlLimits) and runs `load` on
// its root. yaml-cpp reports errors by exceptions, and so may `load` (a factory that reads nodes
// directly): they become located errors here, at the boundary. `what` as above.
Status LoadYamlDocument(const LoadContext& ctx, std::string_view what,
                        const std::function<Status(YAML::Node root)>& load);

// The passes over the parsed document, in the order LoadPipeline runs them. Each returns a
// located error.

// Rejects documents nested deeper than kMaxYamlDepth or with more than kMaxYamlNodeVisits node
// visits (alias bombs).
Status CheckYamlLimits(const YAML::Node& root, const LoadContext& ctx);
// Replaces `${VAR}` and `${VAR:-default}` in scalar values (not keys) from `env`; `$${` is a
// literal `${`.
Status SubstituteEnv(YAML::Node root, const LoadContext& ctx, const LoadOptions& options);
// Applies `--set a.b=v` overrides in order.
Status ApplySets(YAML::Node root, LoadContext& ctx, const LoadOptions& options);

}  // namespace streamrun

namespace streamrun {

// Reports an error at entry `index` of `node.from`.
using FromErrorFn = std::function<Status(const NodeSpec& node, size_t index, std::string message)>;

// Checks the `from` of every step and sink: each names a source, a step, `<step>.late` (for steps
// with that side output) or `<source>.errors`, at most once per node; steps form no cycle.
Status CheckFromGraph(const PipelineSpec& spec, const FromErrorFn& error_at);

}  // namespace streamrun
