// LoadPipeline: a pipeline file to a validated PipelineSpec (see pipeline.h).
#include "engine/pipeline.h"

#include <filesystem>
#include <map>
#include <optional>

#include "engine/load_context.h"
#include "engine/spelling.h"
#include "operators/registry.h"

namespace streamrun {
namespace {

constexpr std::string_view kWhat = "pipeline file";

// Pipeline and node names: a letter or '_', then letters, digits, '_' and '-'. No dots: a dot
// separates a node from its side stream in `from`.
bool IsName(std::string_view s) {
  if (s.empty() || !(std::isalpha(static_cast<unsigned char>(s[0])) || s[0] == '_')) return false;
  for (char c : s) {
    if (!(std::isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '-')) return false;
  }
  return true;
}

class Loader {
 public:
  explicit Loader(LoadContext& ctx) : ctx_(ctx) {}

  Result<PipelineSpec> Load(const YAML::Node& root, PipelineSpec spec) {
    if (!root.IsMap()) {
      return ctx_.ErrorAt(root, "a pipeline file is a mapping with name, sources and sinks");
    }
    ConfigReader top(&ctx_, root, "the pipeline");
    SR_RETURN_IF_ERROR(top.CheckKeys({"name", "parallelism", "max_parallelism", "state",
                                      "checkpoints", "restart", "sources", "steps", "sinks"}));
    SR_RETURN_IF_ERROR(LoadSettings(top, &spec));
    SR_RETURN_IF_ERROR(LoadSection(top, NodeRole::kSource, "sources", &spec.sources));
    SR_RETURN_IF_ERROR(LoadSection(top, NodeRole::kStep, "steps", &spec.steps));
    SR_RETURN_IF_ERROR(LoadSection(top, NodeRole::kSink, "sinks", &spec.sinks));
    SR_RETURN_IF_ERROR(
        CheckFromGraph(spec, [this, &spec](const NodeSpec& node, size_t i, std::string message) {
          const auto& nodes = node.role == NodeRole::kStep ? spec.steps : spec.sinks;
          const size_t index = static_cast<size_t>(&node - nodes.data());
          return ctx_.ErrorAt(FromNodesOf(node.role)[index][i], message);
        }));
    return spec;
  }

 private:
  Status LoadSettings(const ConfigReader& top, PipelineSpec* spec) {
    SR_ASSIGN_OR_RETURN(spec->name, top.String("name"));
    if (!IsName(spec->name)) {
      return top.ErrorAt("name", "pipeline name '" + spec->name +
                                     "' must be letters, digits, '_' and '-', starting with a "
                                     "letter or '_'");
    }
    SR_ASSIGN_OR_RETURN(int64_t max_parallelism, top.Int("max_parallelism", 128, 1, 32768));
    SR_ASSIGN_OR_RETURN(int64_t parallelism, top.Int("parallelism", 1, 1, max_parallelism));
    spec->max_parallelism = static_cast<int>(max_parallelism);
    spec->parallelism = static_cast<int>(parallelism);

    spec->state_dir = ctx_.ResolvePath(".streamrun/" + spec->name);
    if (top.Has("state")) {
      SR_ASSIGN_OR_RETURN(ConfigReader state, top.Child("state"));
      SR_RETURN_IF_ERROR(state.CheckKeys({"dir", "cache"}));
      if (state.Has("dir")) {
        SR_ASSIGN_OR_RETURN(spec->state_dir, state.Path("dir"));
      }
      SR_ASSIGN_OR_RETURN(spec->state_cache_bytes,
                          state.SizeBytes("cache", spec->state_cache_bytes));
    }
    if (top.Has("checkpoints")) {
      SR_ASSIGN_OR_RETURN(ConfigReader c, top.Child("checkpoints"));
      SR_RETURN_IF_ERROR(c.CheckKeys({"interval", "mode", "retain", "timeout"}));
      SR_ASSIGN_OR_RETURN(spec->checkpoints.interval_ms, c.DurationMs("interval", 0));
      SR_ASSIGN_OR_RETURN(std::string mode,
                          c.Enum("mode", {"exactly_once", "at_least_once"}, "exactly_once"));
      spec->checkpoints.exactly_once = mode == "exactly_once";
      SR_ASSIGN_OR_RETURN(int64_t retain, c.Int("retain", 3, 1, 1000));
      spec->checkpoints.retain = static_cast<int>(retain);
      SR_ASSIGN_OR_RETURN(spec->checkpoints.timeout_ms, c.DurationMs("timeout", 600000));
      if (spec->checkpoints.timeout_ms <= 0) return c.ErrorAt("timeout", "must be positive");
    }
    if (top.Has("restart")) {
      SR_ASSIGN_OR_RETURN(ConfigReader r, top.Child("restart"));
      SR_RETURN_IF_ERROR(r.CheckKeys({"strategy", "attempts", "delay"}));
      SR_ASSIGN_OR_RETURN(std::string strategy,
                          r.Enum("strategy", {"none", "fixed_delay"}, "none"));
      spec->restart.fixed_delay = strategy == "fixed_delay";
      SR_ASSIGN_OR_RETURN(int64_t attempts, r.Int("attempts", 3, 0, 1000000));
      spec->restart.attempts = static_cast<int>(attempts);
      SR_ASSIGN_OR_RETURN(spec->restart.delay_ms, r.DurationMs("delay", 1000));
    }
    return Status::Ok();
  }

  Status LoadSection(const ConfigReader& top, NodeRole role, const std::string& section,
                     std::vector<NodeSpec>* out) {
    const bool required = role != NodeRole::kStep;
    const YAML::Node& root = top.node();
    YAML::Node map = root[section];
    if (!map.IsDefined() || map.IsNull()) {
      if (!required) return Status::Ok();
      return top.Error(std::string("a pipeline needs at least one ") + NodeRoleName(role) +
                       " under '" + section + "'");
    }
    if (!map.IsMap()) {
      return ctx_.ErrorAt(
          map, "'" + section + "' must be a mapping of names to " + NodeRoleName(role) + "s");
    }
    if (required && map.size() == 0) {
      return ctx_.ErrorAt(map, std::string("a pipeline needs at least one ") + NodeRoleName(role));
    }
    std::vector<std::vector<YAML::Node>>& from_nodes = FromNodesOf(role);
    for (auto it = map.begin(); it != map.end(); ++it) {
      SR_RETURN_IF_ERROR(LoadNode(role, it->first, it->second, out, &from_nodes));
    }
    return Status::Ok();
  }

  Status LoadNode(NodeRole role, const YAML::Node& key, const YAML::Node& value,
                  std::vector<NodeSpec>* out, std::vector<std::vector<YAML::Node>>* from_nodes) {
    const std::string role_name = NodeRoleName(role);
    if (!key.IsScalar() || !IsName(key.Scalar())) {
      return ctx_.ErrorAt(key, role_name + " name '" + (key.IsScalar() ? key.Scalar() : "") +
                                   "' must be letters, digits, '_' and '-', starting with a "
                                   "letter or '_' (no dots)");
    }
    NodeSpec node;
    node.name = key.Scalar();
    node.role = role;
    node.location = ctx_.LocationOf(key);
    if (auto seen = names_.find(node.name); seen != names_.end()) {
      const SourceLocation& first = seen->second.second;
      return ctx_.ErrorAt(key, "duplicate name '" + node.name + "': already a " +
                                   NodeRoleName(seen->second.first) + " at line " +
                                   std::to_string(first.line) +
                                   "; names are unique across sources, steps and sinks");
    }
    names_.emplace(node.name, std::make_pair(role, node.location));

    const std::string what = role_name + " '" + node.name + "'";
    if (!value.IsMap()) {
      return ctx_.ErrorAt(value.IsNull() ? key : value, what + " must be a mapping with a 'type'");
    }
    ConfigReader reader(&ctx_, value, what);
    if (!reader.Has("type")) return ctx_.ErrorAt(key, what + ": missing required setting 'type'");
    SR_ASSIGN_OR_RETURN(node.type, reader.String("type"));
    const OperatorType* type = nullptr;
    std::vector<std::string> known;
    for (const auto& t : ctx_.operator_types()) {
      if (t.role != role) continue;
      known.emplace_back(t.name);
      if (t.name == node.type) type = &t;
    }
    if (type == nullptr) {
      std::string hint = DidYouMean(node.type, known);
      if (hint.empty()) {
        hint = " (known:";
        for (const auto& k : known) hint += " " + k;
        hint += ")";
      }
      return reader.ErrorAt("type", "unknown " + role_name + " type '" + node.type + "'" + hint);
    }

    std::vector<YAML::Node> entries;
    if (role == NodeRole::kSource) {
      if (reader.Has("from")) {
        return reader.ErrorAt("from", "a source reads no stream: " + what + " cannot have 'from'");
      }
    } else {
      SR_RETURN_IF_ERROR(ReadFrom(reader, &node, &entries));
    }

    SR_ASSIGN_OR_RETURN(node.config, type->factory(reader));
    if (node.config == nullptr) return reader.Error(what + ": its type made no configuration");
    out->push_back(std::move(node));
    from_nodes->push_back(std::move(entries));
    return Status::Ok();
  }

  Status ReadFrom(const ConfigReader& reader, NodeSpec* node, std::vector<YAML::Node>* entries) {
    if (!reader.Has("from")) {
      return reader.Error(reader.what() +
                          ": missing required setting 'from' (the stream it "
                          "reads: a source, a step, or a list of them)");
    }
    const YAML::Node& map = reader.node();
    YAML::Node from = map["from"];
    if (from.IsScalar()) {
      entries->push_back(from);
    } else if (from.IsSequence() && from.size() > 0) {
      for (auto it = from.begin(); it != from.end(); ++it) entries->push_back(*it);
    } else {
      return ctx_.ErrorAt(from, "'from' must be a stream name or a non-empty list of them");
    }
    for (const auto& e : *entries) {
      if (!e.IsScalar()) return ctx_.ErrorAt(e, "'from' entries must be stream names");
      node->from.push_back(e.Scalar());
      node->from_locations.push_back(ctx_.LocationOf(e));
    }
    return Status::Ok();
  }

  std::vector<std::vector<YAML::Node>>& FromNodesOf(NodeRole role) {
    switch (role) {
      case NodeRole::kSource:
        return source_from_;
      case NodeRole::kStep:
        return step_from_;
      case NodeRole::kSink:
        break;
    }
    return sink_from_;
  }

  LoadContext& ctx_;
  // Name to role and place, across sources, steps and sinks.
  std::map<std::string, std::pair<NodeRole, SourceLocation>> names_;
  // The YAML nodes of each `from` entry, parallel to spec.steps and spec.sinks (sources have
  // none), for errors at the entry, also when it came from --set.
  std::vector<std::vector<YAML::Node>> source_from_, step_from_, sink_from_;
};

}  // namespace

const NodeSpec* PipelineSpec::Find(std::string_view node_name) const {
  for (const auto* nodes : {&sources, &steps, &sinks}) {
    for (const auto& n : *nodes) {
      if (n.name == node_name) return &n;
    }
  }
  return nullptr;
}

Result<PipelineSpec> LoadPipelineFromString(std::string_view text, const std::string& path,
                                            const LoadOptions& options) {
  SR_RETURN_IF_ERROR(CheckLoaderFileSize(path, kWhat, text.size()));
  PipelineSpec spec;
  std::error_code ec;
  std::filesystem::path absolute = std::filesystem::absolute(path, ec);
  if (ec) absolute = path;
  absolute = absolute.lexically_normal();
  spec.file = absolute.string();
  spec.dir = absolute.parent_path().string();
  LoadContext ctx(path, spec.dir, std::string(text), options.operator_types);
  std::optional<PipelineSpec> loaded;
  SR_RETURN_IF_ERROR(LoadYamlDocument(ctx, kWhat, [&](YAML::Node root) -> Status {
    SR_RETURN_IF_ERROR(SubstituteEnv(root, ctx, options));
    SR_RETURN_IF_ERROR(ApplySets(root, ctx, options));
    auto result = Loader(ctx).Load(root, std::move(spec));
    if (!result.ok()) return result.status();
    loaded = std::move(*result);
    return Status::Ok();
  }));
  return std::move(*loaded);
}

Result<PipelineSpec> LoadPipeline(const std::string& path, const LoadOptions& options) {
  SR_ASSIGN_OR_RETURN(std::string text, ReadLoaderFile(path, kWhat));
  return LoadPipelineFromString(text, path, options);
}

}  // namespace streamrun
