// The `from` graph of a pipeline: what each step and sink reads, and that steps form no cycle.
#include <map>
#include <string>

#include "engine/load_context.h"
#include "engine/spelling.h"

namespace streamrun {
namespace {

bool HasSideOutput(const NodeSpec& node, std::string_view side) {
  if (node.config == nullptr) return false;
  for (const auto& s : node.config->side_outputs()) {
    if (s == side) return true;
  }
  return false;
}

// Depth-first search for a cycle among steps; `upstream[i]` lists (step index, from index).
class CycleFinder {
 public:
  CycleFinder(const PipelineSpec& spec,
              const std::vector<std::vector<std::pair<size_t, size_t>>>& upstream,
              const FromErrorFn& error_at)
      : spec_(spec), upstream_(upstream), error_at_(error_at), state_(spec.steps.size(), kNew) {}

  Status Run() {
    for (size_t i = 0; i < spec_.steps.size(); ++i) SR_RETURN_IF_ERROR(Visit(i));
    return Status::Ok();
  }

 private:
  enum State { kNew, kOnPath, kDone };

  Status Visit(size_t step) {
    if (state_[step] == kDone) return Status::Ok();
    state_[step] = kOnPath;
    path_.push_back(step);
    for (const auto& [up, from_index] : upstream_[step]) {
      if (state_[up] == kOnPath) {
        // The cycle is the part of the path from `up` to here, closed by this `from` entry.
        std::string cycle;
        size_t k = path_.size();
        while (path_[k - 1] != up) --k;
        for (size_t j = k - 1; j < path_.size(); ++j) cycle += spec_.steps[path_[j]].name + " <- ";
        cycle += spec_.steps[up].name;
        return error_at_(spec_.steps[step], from_index,
                         "cycle among steps: " + cycle + " (each reads from the next)");
      }
      SR_RETURN_IF_ERROR(Visit(up));
    }
    path_.pop_back();
    state_[step] = kDone;
    return Status::Ok();
  }

  const PipelineSpec& spec_;
  const std::vector<std::vector<std::pair<size_t, size_t>>>& upstream_;
  const FromErrorFn& error_at_;
  std::vector<State> state_;
  std::vector<size_t> path_;
};

}  // namespace

Status CheckFromGraph(const PipelineSpec& spec, const FromErrorFn& error_at) {
  // Every stream that can be read, for lookups and did-you-mean.
  std::map<std::string, size_t> step_index;
  std::vector<std::string> readable;
  for (const auto& s : spec.sources) {
    readable.push_back(s.name);
    readable.push_back(s.name + ".errors");
  }
  for (size_t i = 0; i < spec.steps.size(); ++i) {
    const NodeSpec& s = spec.steps[i];
    step_index[s.name] = i;
    readable.push_back(s.name);
    if (HasSideOutput(s, "late")) readable.push_back(s.name + ".late");
  }

  std::vector<std::vector<std::pair<size_t, size_t>>> upstream(spec.steps.size());
  auto check_node = [&](const NodeSpec& node, size_t self_step) -> Status {
    for (size_t i = 0; i < node.from.size(); ++i) {
      const std::string& stream = node.from[i];
      for (size_t j = 0; j < i; ++j) {
        if (node.from[j] == stream) {
          return error_at(node, i, "'" + stream + "' is listed twice in 'from'");
        }
      }
      const size_t dot = stream.find('.');
      const std::string base = stream.substr(0, dot);
      const std::string side = dot == std::string::npos ? "" : stream.substr(dot + 1);
      const NodeSpec* target = spec.Find(base);
      if (target != nullptr && target->role == NodeRole::kSink) {
        return error_at(node, i,
                        "'" + base +
                            "' is a sink; 'from' names a source, a step, "
                            "<step>.late or <source>.errors");
      }
      bool ok = false;
      if (target != nullptr && side.empty()) {
        ok = true;
      } else if (target != nullptr && target->role == NodeRole::kSource) {
        ok = side == "errors";
        if (!ok) {
          return error_at(node, i,
                          "source '" + base + "' has no stream '" + side +
                              "'; a source's side stream is '" + base + ".errors'");
        }
      } else if (target != nullptr && target->role == NodeRole::kStep) {
        ok = HasSideOutput(*target, side);
        if (!ok) {
          std::string has;
          if (target->config != nullptr) {
            for (const auto& s : target->config->side_outputs()) has += " '" + base + "." + s + "'";
          }
          return error_at(node, i,
                          "step '" + base + "' (" + target->type + ") has no side stream '" + side +
                              "'" + (has.empty() ? "" : "; it has" + has));
        }
      }
      if (!ok) {
        return error_at(
            node, i,
            "'from' names no source or step: '" + stream + "'" + DidYouMean(stream, readable));
      }
      if (self_step != SIZE_MAX && target->role == NodeRole::kStep) {
        upstream[self_step].emplace_back(step_index[base], i);
      }
    }
    return Status::Ok();
  };
  for (size_t i = 0; i < spec.steps.size(); ++i) SR_RETURN_IF_ERROR(check_node(spec.steps[i], i));
  for (const auto& sink : spec.sinks) SR_RETURN_IF_ERROR(check_node(sink, SIZE_MAX));
  return CycleFinder(spec, upstream, error_at).Run();
}

}  // namespace streamrun
