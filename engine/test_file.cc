// LoadTestFile (see test_file.h). The test file is read with the pipeline loader's tools
// (LoadContext, ConfigReader), so its errors look like pipeline errors.
#include "engine/test_file.h"

#include <sys/stat.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <optional>

#include "engine/load_context.h"
#include "engine/plan.h"
#include "engine/spelling.h"

namespace streamrun {
namespace {

// Empty when `path` is a regular file we can open, else why not.
std::string Unreadable(const std::string& path) {
  struct stat st;
  if (::stat(path.c_str(), &st) != 0) return std::strerror(errno);
  if (!S_ISREG(st.st_mode)) return "not a regular file";
  std::ifstream in(path, std::ios::binary);
  if (!in) return "cannot open it";
  return "";
}

std::vector<std::string> NamesOf(const std::vector<NodeSpec>& nodes) {
  std::vector<std::string> names;
  for (const auto& n : nodes) names.push_back(n.name);
  return names;
}

std::string Listed(const std::vector<std::string>& names) {
  std::string out;
  for (const auto& n : names) out += (out.empty() ? "'" : ", '") + n + "'";
  return out;
}

class TestFileLoader {
 public:
  TestFileLoader(const LoadContext& ctx, bool for_update) : ctx_(ctx), for_update_(for_update) {}

  Result<TestFile> Load(const YAML::Node& root, const std::string& path) {
    if (!root.IsMap()) {
      return ctx_.ErrorAt(root, "a test file is a mapping with 'pipeline' and 'cases'");
    }
    ConfigReader top(&ctx_, root, "the test file");
    SR_RETURN_IF_ERROR(top.CheckKeys({"pipeline", "cases"}));
    TestFile file;
    file.path = path;
    SR_ASSIGN_OR_RETURN(std::string pipeline, top.String("pipeline"));
    if (pipeline.empty()) return top.ErrorAt("pipeline", "'pipeline' must not be empty");
    // The pipeline's errors name it as the user would: relative to where the test file is.
    std::filesystem::path shown(pipeline);
    if (shown.is_relative())
      shown = (std::filesystem::path(path).parent_path() / shown).lexically_normal();
    if (std::string why = Unreadable(shown.string()); !why.empty()) {
      return top.ErrorAt("pipeline", "cannot read pipeline '" + shown.string() + "': " + why);
    }
    SR_ASSIGN_OR_RETURN(file.pipeline, LoadPipeline(shown.string(), LoadOptions()));
    SR_RETURN_IF_ERROR(BuildPlan(file.pipeline, 0).status());
    spec_ = &file.pipeline;

    YAML::Node cases = root["cases"];
    if (!cases.IsDefined()) return top.Error("the test file: missing required setting 'cases'");
    if (!cases.IsSequence() || cases.size() == 0) {
      return ctx_.ErrorAt(cases, "'cases' must be a non-empty list of cases");
    }
    for (size_t i = 0; i < cases.size(); ++i) {
      SR_ASSIGN_OR_RETURN(TestCase c, Case(cases[i], i));
      file.cases.push_back(std::move(c));
    }
    return file;
  }

 private:
  Result<TestCase> Case(const YAML::Node& node, size_t index) {
    const std::string numbered = "case " + std::to_string(index + 1);
    if (!node.IsMap()) {
      return ctx_.ErrorAt(node, numbered + " must be a mapping with 'name', 'inputs' and 'expect'");
    }
    TestCase c;
    c.location = ctx_.LocationOf(node);
    {
      ConfigReader r(&ctx_, node, numbered);
      SR_RETURN_IF_ERROR(r.CheckKeys({"name", "inputs", "expect"}));
      SR_ASSIGN_OR_RETURN(c.name, r.String("name"));
      if (c.name.empty()) return r.ErrorAt("name", "a case's name must not be empty");
      if (auto seen = names_.find(c.name); seen != names_.end()) {
        return r.ErrorAt("name", "duplicate case name '" + c.name +
                                     "': already the name of the case at line " +
                                     std::to_string(seen->second));
      }
      names_.emplace(c.name, c.location.line);
    }
    ConfigReader r(&ctx_, node, "case '" + c.name + "'");
    const std::vector<std::string> sources = NamesOf(spec_->sources);
    if (!r.Has("inputs")) {
      return r.Error(r.what() + ": missing 'inputs': in a test every source reads a file (" +
                     Listed(sources) + ")");
    }
    SR_ASSIGN_OR_RETURN(ConfigReader inputs, r.Child("inputs"));
    std::map<std::string, TestInput> by_source;
    for (auto it = inputs.node().begin(); it != inputs.node().end(); ++it) {
      const std::string name = it->first.Scalar();
      SR_RETURN_IF_ERROR(CheckNodeName(it->first, NodeRole::kSource, sources));
      TestInput in;
      in.source = name;
      in.location = ctx_.LocationOf(it->second);
      if (it->second.IsMap()) {
        SR_ASSIGN_OR_RETURN(ConfigReader spec, inputs.Child(name));
        SR_RETURN_IF_ERROR(spec.CheckKeys({"path", "format"}));
        SR_ASSIGN_OR_RETURN(in.path, spec.Path("path"));
        SR_ASSIGN_OR_RETURN(in.format,
                            spec.Enum("format", {"json", "text", "recording"}, std::string()));
        in.location = spec.LocationOf("path");
      } else {
        SR_ASSIGN_OR_RETURN(in.path, inputs.Path(name));
      }
      if (std::string why = Unreadable(in.path); !why.empty()) {
        return Status::PipelineError(
            FormatAt(in.location, "cannot read input '" + in.path + "': " + why));
      }
      by_source[name] = std::move(in);
    }
    for (const auto& s : spec_->sources) {
      auto it = by_source.find(s.name);
      if (it == by_source.end()) {
        return r.ErrorAt("inputs", "no input for source '" + s.name +
                                       "': in a test every source of the "
                                       "pipeline reads a file");
      }
      c.inputs.push_back(std::move(it->second));
    }

    if (!r.Has("expect")) return c;
    SR_ASSIGN_OR_RETURN(ConfigReader expect, r.Child("expect"));
    const std::vector<std::string> sinks = NamesOf(spec_->sinks);
    for (auto it = expect.node().begin(); it != expect.node().end(); ++it) {
      const std::string name = it->first.Scalar();
      SR_RETURN_IF_ERROR(CheckNodeName(it->first, NodeRole::kSink, sinks));
      TestExpectation e;
      e.sink = name;
      SR_ASSIGN_OR_RETURN(e.path, expect.Path(name));
      e.location = expect.LocationOf(name);
      if (!for_update_) {
        if (std::string why = Unreadable(e.path); !why.empty()) {
          return Status::PipelineError(FormatAt(
              e.location, "cannot read expected output '" + e.path + "': " + why +
                              " (streamrun test --update writes it from the actual output)"));
        }
      }
      c.expectations.push_back(std::move(e));
    }
    return c;
  }

  // Fails unless the mapping key `key` names a node of `role` in the pipeline (`names`: theirs).
  Status CheckNodeName(const YAML::Node& key, NodeRole role,
                       const std::vector<std::string>& names) {
    const std::string& name = key.Scalar();
    const NodeSpec* node = spec_->Find(name);
    if (node != nullptr && node->role == role) return Status::Ok();
    const std::string kind = NodeRoleName(role);
    return ctx_.ErrorAt(key, "'" + name + "' is not a " + kind + " of pipeline '" + spec_->name +
                                 "'" + DidYouMean(name, names) + " (" + kind +
                                 "s: " + Listed(names) + ")");
  }

  const LoadContext& ctx_;
  bool for_update_;
  const PipelineSpec* spec_ = nullptr;
  std::map<std::string, int> names_;  // case name -> its line
};

}  // namespace

Result<TestFile> LoadTestFile(const std::string& path, bool for_update) {
  constexpr std::string_view kWhat = "test file";
  SR_ASSIGN_OR_RETURN(std::string text, ReadLoaderFile(path, kWhat));
  std::error_code ec;
  std::filesystem::path absolute = std::filesystem::absolute(path, ec).lexically_normal();
  LoadContext ctx(path, absolute.parent_path().string(), std::move(text), nullptr);
  std::optional<TestFile> loaded;
  SR_RETURN_IF_ERROR(LoadYamlDocument(ctx, kWhat, [&](YAML::Node root) -> Status {
    auto file = TestFileLoader(ctx, for_update).Load(root, path);
    if (!file.ok()) return file.status();
    loaded = std::move(*file);
    return Status::Ok();
  }));
  return std::move(*loaded);
}

}  // namespace streamrun
