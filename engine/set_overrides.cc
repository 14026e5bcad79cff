// `--set a.b=v`: overrides of pipeline file fields from the command line.
#include <string>

#include "engine/load_context.h"

namespace streamrun {
namespace {

std::vector<std::string> SplitPath(const std::string& path) {
  std::vector<std::string> parts;
  size_t start = 0;
  while (true) {
    size_t dot = path.find('.', start);
    parts.push_back(path.substr(start, dot == std::string::npos ? std::string::npos : dot - start));
    if (dot == std::string::npos) break;
    start = dot + 1;
  }
  return parts;
}

Status SetError(const std::string& key, const std::string& message) {
  return Status::PipelineError("--set " + key + ": " + message);
}

// Key nodes that --set created have no place in the file: note them, so that an error about the
// key (an unknown setting) names the --set.
void NoteNewKey(const YAML::Node& map, const std::string& name, LoadContext& ctx,
                const std::string& set_key) {
  for (auto it = map.begin(); it != map.end(); ++it) {
    if (it->first.IsScalar() && it->first.Scalar() == name && it->first.Mark().is_null()) {
      ctx.NoteFromSet(it->first, set_key);
    }
  }
}

}  // namespace

Status ApplySets(YAML::Node root, LoadContext& ctx, const LoadOptions& options) {
  for (const auto& [key, text] : options.sets) {
    const std::vector<std::string> parts = SplitPath(key);
    for (const auto& part : parts) {
      if (part.empty()) return SetError(key, "empty name in the path (write a.b.c)");
    }
    YAML::Node value;
    try {
      value = YAML::Load(text);
    } catch (const YAML::Exception& e) {
      return SetError(key, "value is not valid YAML: " + e.msg);
    }
    // The value is the user's own command line, but walk it under the same limits.
    LoadContext value_ctx("--set " + key, ctx.dir(), text, &ctx.operator_types());
    SR_RETURN_IF_ERROR(CheckYamlLimits(value, value_ctx));

    if (!root.IsMap()) return SetError(key, "the pipeline file is not a mapping");
    // Walk down the path, creating missing mappings. Node copies share their data, so `node`
    // stays a handle into `root`; rebinding a Node is done with reset(), not assignment, which
    // would overwrite the node it refers to.
    YAML::Node node;
    node.reset(root);
    std::string walked;
    for (size_t i = 0; i + 1 < parts.size(); ++i) {
      walked += (i ? "." : "") + parts[i];
      YAML::Node child = node[parts[i]];
      if (!child.IsDefined() || child.IsNull()) {
        child = YAML::Node(YAML::NodeType::Map);
        ctx.NoteFromSet(child, key);
        NoteNewKey(node, parts[i], ctx, key);
      } else if (!child.IsMap()) {
        return SetError(key, "'" + walked + "' is not a mapping");
      }
      node.reset(child);
    }
    node[parts.back()] = value;
    YAML::Node placed = node[parts.back()];
    ctx.NoteFromSet(placed, key);
    NoteNewKey(node, parts.back(), ctx, key);
  }
  return Status::Ok();
}

}  // namespace streamrun
