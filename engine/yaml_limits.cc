// Limits against hostile YAML: nesting depth and alias expansion (see load_context.h).
#include <string>

#include "engine/load_context.h"

namespace streamrun {
namespace {

class LimitWalker {
 public:
  explicit LimitWalker(const LoadContext& ctx) : ctx_(ctx) {}

  Status Walk(const YAML::Node& node, int depth) {
    if (++visits_ > kMaxYamlNodeVisits) {
      return ctx_.ErrorAt(node, "document too large after alias expansion (over " +
                                    std::to_string(kMaxYamlNodeVisits) +
                                    " nodes); are aliases nested to expand exponentially?");
    }
    if (!node.IsMap() && !node.IsSequence()) return Status::Ok();
    if (depth >= kMaxYamlDepth) {
      return ctx_.ErrorAt(node, "nesting deeper than " + std::to_string(kMaxYamlDepth) +
                                    " levels (or an alias that contains itself)");
    }
    if (node.IsMap()) {
      for (auto it = node.begin(); it != node.end(); ++it) {
        SR_RETURN_IF_ERROR(Walk(it->first, depth + 1));
        SR_RETURN_IF_ERROR(Walk(it->second, depth + 1));
      }
    } else {
      for (auto it = node.begin(); it != node.end(); ++it) {
        SR_RETURN_IF_ERROR(Walk(*it, depth + 1));
      }
    }
    return Status::Ok();
  }

 private:
  const LoadContext& ctx_;
  int64_t visits_ = 0;
};

}  // namespace

Status CheckYamlLimits(const YAML::Node& root, const LoadContext& ctx) {
  LimitWalker walker(ctx);
  return walker.Walk(root, 0);
}

}  // namespace streamrun
