// `${VAR}` and `${VAR:-default}` in scalar values of a pipeline file.
#include <cctype>
#include <cstdlib>
#include <optional>
#include <string>
#include <unordered_set>

#include "engine/load_context.h"

namespace streamrun {
namespace {

bool IsNameStart(char c) { return std::isalpha(static_cast<unsigned char>(c)) || c == '_'; }
bool IsNameChar(char c) { return std::isalnum(static_cast<unsigned char>(c)) || c == '_'; }

class Substituter {
 public:
  Substituter(const LoadContext& ctx, const LoadOptions& options) : ctx_(ctx), options_(options) {}

  Status Walk(YAML::Node node) {
    if (node.IsMap()) {
      for (auto it = node.begin(); it != node.end(); ++it) SR_RETURN_IF_ERROR(Walk(it->second));
    } else if (node.IsSequence()) {
      for (auto it = node.begin(); it != node.end(); ++it) SR_RETURN_IF_ERROR(Walk(*it));
    } else if (node.IsScalar() && node.Scalar().find('$') != std::string::npos) {
      // An alias shares its anchor's node: substitute it once, or `$${` would be undone. Distinct
      // scalars start at distinct places in the file, so the mark identifies the node.
      if (!done_.insert(node.Mark().pos).second) return Status::Ok();
      std::string replaced;
      SR_RETURN_IF_ERROR(Substitute(node, &replaced));
      node = replaced;  // sets the scalar in place; the node keeps its mark
    }
    return Status::Ok();
  }

 private:
  Status Substitute(const YAML::Node& scalar, std::string* out) {
    const std::string& s = scalar.Scalar();
    size_t i = 0;
    while (i < s.size()) {
      if (s.compare(i, 3, "$${") == 0) {
        *out += "${";
        i += 3;
        continue;
      }
      if (s.compare(i, 2, "${") != 0) {
        *out += s[i++];
        continue;
      }
      const size_t start = i;
      size_t j = i + 2;
      if (j >= s.size() || !IsNameStart(s[j])) {
        return ctx_.ErrorAt(scalar,
                            "expected a variable name after '${' (write '$${' for a "
                            "literal '${')");
      }
      while (j < s.size() && IsNameChar(s[j])) ++j;
      const std::string name = s.substr(i + 2, j - i - 2);
      std::optional<std::string> fallback;
      if (s.compare(j, 2, ":-") == 0) {
        size_t close = s.find('}', j + 2);
        if (close == std::string::npos) return Unterminated(scalar, start);
        fallback = s.substr(j + 2, close - j - 2);
        j = close;
      }
      if (j >= s.size() || s[j] != '}') return Unterminated(scalar, start);
      std::optional<std::string> value = Lookup(name);
      // As in the shell, `:-` also replaces a variable that is set but empty.
      if (fallback.has_value() && (!value.has_value() || value->empty())) value = fallback;
      if (!value.has_value()) {
        return Status::PipelineError(FormatAt(ctx_.LocationInScalar(scalar, start),
                                              "environment variable '" + name +
                                                  "' is not set (give a default with ${" + name +
                                                  ":-default})"));
      }
      *out += *value;
      i = j + 1;
    }
    return Status::Ok();
  }

  Status Unterminated(const YAML::Node& scalar, size_t offset) {
    return Status::PipelineError(
        FormatAt(ctx_.LocationInScalar(scalar, offset), "unterminated '${': expected '}'"));
  }

  std::optional<std::string> Lookup(const std::string& name) const {
    if (options_.env) return options_.env(name);
    const char* v = std::getenv(name.c_str());
    if (v == nullptr) return std::nullopt;
    return std::string(v);
  }

  const LoadContext& ctx_;
  const LoadOptions& options_;
  std::unordered_set<int> done_;  // mark positions of substituted scalars
};

}  // namespace

Status SubstituteEnv(YAML::Node root, const LoadContext& ctx, const LoadOptions& options) {
  Substituter substituter(ctx, options);
  return substituter.Walk(root);
}

}  // namespace streamrun
