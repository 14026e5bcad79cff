// ConfigReader: typed, located access to one mapping of a pipeline file.
#include <charconv>
#include <cmath>
#include <string>

#include "engine/load_context.h"
#include "engine/pipeline.h"
#include "engine/spelling.h"

namespace streamrun {
namespace {

std::string Quote(std::string_view s) { return "'" + std::string(s) + "'"; }

const char* KindName(const YAML::Node& node) {
  switch (node.Type()) {
    case YAML::NodeType::Map:
      return "a mapping";
    case YAML::NodeType::Sequence:
      return "a list";
    case YAML::NodeType::Null:
      return "null";
    case YAML::NodeType::Scalar:
      return "a scalar";
    case YAML::NodeType::Undefined:
      break;
  }
  return "nothing";
}

}  // namespace

ConfigReader::ConfigReader(const LoadContext* ctx, YAML::Node node, std::string what)
    : ctx_(ctx), node_(node), what_(std::move(what)) {}  // a YAML::Node only copies

SourceLocation ConfigReader::Location() const { return ctx_->LocationOf(node_); }

SourceLocation ConfigReader::LocationOf(std::string_view key) const {
  if (!Has(key)) return Location();
  const YAML::Node& map = node_;
  return ctx_->LocationOf(map[std::string(key)]);
}

Status ConfigReader::CheckKeys(std::initializer_list<std::string_view> allowed) const {
  if (!node_.IsMap()) return Error(what_ + " must be a mapping, not " + KindName(node_));
  std::vector<std::string> names;
  for (auto a : allowed) names.emplace_back(a);
  for (auto it = node_.begin(); it != node_.end(); ++it) {
    const YAML::Node key = it->first;
    if (!key.IsScalar()) return ctx_->ErrorAt(key, "keys of " + what_ + " must be names");
    bool known = false;
    for (auto a : allowed) known = known || key.Scalar() == a;
    if (!known) {
      return ctx_->ErrorAt(key, "unknown setting " + Quote(key.Scalar()) + " in " + what_ +
                                    DidYouMean(key.Scalar(), names));
    }
  }
  return Status::Ok();
}

bool ConfigReader::Has(std::string_view key) const {
  if (!node_.IsMap()) return false;
  const YAML::Node& map = node_;
  return map[std::string(key)].IsDefined();
}

Status ConfigReader::ErrorAt(std::string_view key, std::string_view message) const {
  if (!Has(key)) return Error(message);
  const YAML::Node& map = node_;
  return ctx_->ErrorAt(map[std::string(key)], message);
}

Status ConfigReader::ErrorAtNode(const YAML::Node& node, std::string_view message) const {
  return ctx_->ErrorAt(node, message);
}

Status ConfigReader::Error(std::string_view message) const { return ctx_->ErrorAt(node_, message); }

namespace {

// The scalar under `key`, or an error naming what was expected.
Result<YAML::Node> ScalarAt(const ConfigReader& r, std::string_view key, const char* expected) {
  const YAML::Node& map = r.node();
  YAML::Node value = map[std::string(key)];
  if (!value.IsScalar()) {
    return r.ErrorAt(key, "'" + std::string(key) + "' of " + r.what() + " must be " + expected +
                              ", not " + KindName(value));
  }
  return value;
}

Status MissingError(const ConfigReader& r, std::string_view key) {
  return r.Error(r.what() + ": missing required setting " + Quote(key));
}

}  // namespace

Result<std::string> ConfigReader::String(std::string_view key) const {
  if (!Has(key)) return MissingError(*this, key);
  SR_ASSIGN_OR_RETURN(YAML::Node v, ScalarAt(*this, key, "a string"));
  return v.Scalar();
}

Result<std::string> ConfigReader::String(std::string_view key, std::string default_value) const {
  if (!Has(key)) return default_value;
  return String(key);
}

Result<int64_t> ConfigReader::Int(std::string_view key, std::optional<int64_t> default_value,
                                  int64_t min, int64_t max) const {
  if (!Has(key)) {
    if (default_value.has_value()) return *default_value;
    return MissingError(*this, key);
  }
  SR_ASSIGN_OR_RETURN(YAML::Node v, ScalarAt(*this, key, "an integer"));
  const std::string& s = v.Scalar();
  int64_t n = 0;
  auto [ptr, ec] = std::from_chars(s.data(), s.data() + s.size(), n);
  if (s.empty() || ec == std::errc::result_out_of_range) {
    return ErrorAt(key, "'" + std::string(key) + "' is out of range: " + Quote(s));
  }
  if (ec != std::errc() || ptr != s.data() + s.size()) {
    return ErrorAt(key, "'" + std::string(key) + "' must be an integer, not " + Quote(s));
  }
  if (n < min || n > max) {
    return ErrorAt(key, "'" + std::string(key) + "' must be between " + std::to_string(min) +
                            " and " + std::to_string(max) + ", not " + s);
  }
  return n;
}

Result<double> ConfigReader::Number(std::string_view key,
                                    std::optional<double> default_value) const {
  if (!Has(key)) {
    if (default_value.has_value()) return *default_value;
    return MissingError(*this, key);
  }
  SR_ASSIGN_OR_RETURN(YAML::Node v, ScalarAt(*this, key, "a number"));
  const std::string& s = v.Scalar();
  double d = 0;
  auto [ptr, ec] = std::from_chars(s.data(), s.data() + s.size(), d);
  if (s.empty() || ec != std::errc() || ptr != s.data() + s.size() || !std::isfinite(d)) {
    return ErrorAt(key, "'" + std::string(key) + "' must be a number, not " + Quote(s));
  }
  return d;
}

Result<bool> ConfigReader::Bool(std::string_view key, std::optional<bool> default_value) const {
  if (!Has(key)) {
    if (default_value.has_value()) return *default_value;
    return MissingError(*this, key);
  }
  SR_ASSIGN_OR_RETURN(YAML::Node v, ScalarAt(*this, key, "true or false"));
  const std::string& s = v.Scalar();
  if (s == "true") return true;
  if (s == "false") return false;
  return ErrorAt(key, "'" + std::string(key) + "' must be true or false, not " + Quote(s));
}

Result<int64_t> ConfigReader::DurationMs(std::string_view key,
                                         std::optional<int64_t> default_value) const {
  if (!Has(key)) {
    if (default_value.has_value()) return *default_value;
    return MissingError(*this, key);
  }
  SR_ASSIGN_OR_RETURN(YAML::Node v, ScalarAt(*this, key, "a duration (like 10s)"));
  Result<int64_t> ms = ParseDurationMs(v.Scalar());
  if (!ms.ok()) return ErrorAt(key, "'" + std::string(key) + "': " + ms.status().message());
  return ms;
}

Result<uint64_t> ConfigReader::SizeBytes(std::string_view key,
                                         std::optional<uint64_t> default_value) const {
  if (!Has(key)) {
    if (default_value.has_value()) return *default_value;
    return MissingError(*this, key);
  }
  SR_ASSIGN_OR_RETURN(YAML::Node v, ScalarAt(*this, key, "a size (like 64KiB)"));
  Result<uint64_t> bytes = ParseSizeBytes(v.Scalar());
  if (!bytes.ok()) return ErrorAt(key, "'" + std::string(key) + "': " + bytes.status().message());
  return bytes;
}

Result<std::string> ConfigReader::Enum(std::string_view key,
                                       std::initializer_list<std::string_view> choices,
                                       std::optional<std::string> default_value) const {
  if (!Has(key)) {
    if (default_value.has_value()) return *default_value;
    return MissingError(*this, key);
  }
  SR_ASSIGN_OR_RETURN(YAML::Node v, ScalarAt(*this, key, "a string"));
  std::vector<std::string> names;
  std::string listed;
  for (auto c : choices) {
    if (v.Scalar() == c) return std::string(c);
    names.emplace_back(c);
    listed += (listed.empty() ? "" : " | ") + std::string(c);
  }
  return ErrorAt(key, "'" + std::string(key) + "' must be one of " + listed + ", not " +
                          Quote(v.Scalar()) + DidYouMean(v.Scalar(), names));
}

Result<std::string> ConfigReader::Path(std::string_view key) const {
  SR_ASSIGN_OR_RETURN(std::string path, String(key));
  if (path.empty()) return ErrorAt(key, "'" + std::string(key) + "' must not be empty");
  return ctx_->ResolvePath(path);
}

Result<std::vector<std::string>> ConfigReader::StringList(std::string_view key) const {
  if (!Has(key)) return MissingError(*this, key);
  const YAML::Node& map = node_;
  YAML::Node v = map[std::string(key)];
  std::vector<std::string> out;
  if (v.IsScalar()) {
    out.push_back(v.Scalar());
    return out;
  }
  if (!v.IsSequence()) {
    return ErrorAt(key, "'" + std::string(key) + "' must be a string or a list of strings, not " +
                            KindName(v));
  }
  for (auto it = v.begin(); it != v.end(); ++it) {
    if (!it->IsScalar()) {
      return ctx_->ErrorAt(
          *it, "items of '" + std::string(key) + "' must be strings, not " + KindName(*it));
    }
    out.push_back(it->Scalar());
  }
  return out;
}

Result<std::unique_ptr<Expr>> ConfigReader::Expression(std::string_view key) const {
  if (!Has(key)) return MissingError(*this, key);
  const YAML::Node& map = node_;
  return ExpressionAt(map[std::string(key)]);
}

Result<std::unique_ptr<Expr>> ConfigReader::ExpressionAt(const YAML::Node& scalar) const {
  if (!scalar.IsScalar()) {
    return ctx_->ErrorAt(scalar, std::string("expected an expression, not ") + KindName(scalar));
  }
  ExprParseError error;
  std::unique_ptr<Expr> expr = ParseExpr(scalar.Scalar(), &error);
  if (expr != nullptr) return expr;
  const std::string message = "invalid expression: " + error.message;
  // A --set value has no place in the file; ErrorAt names the --set.
  if (ctx_->SetKeyOf(scalar) != nullptr) return ctx_->ErrorAt(scalar, message);
  return Status::PipelineError(FormatAt(ctx_->LocationInScalar(scalar, error.offset), message));
}

Result<ConfigReader> ConfigReader::Child(std::string_view key) const {
  if (!Has(key)) return MissingError(*this, key);
  const YAML::Node& map = node_;
  YAML::Node v = map[std::string(key)];
  if (!v.IsMap()) {
    return ErrorAt(
        key, "'" + std::string(key) + "' of " + what_ + " must be a mapping, not " + KindName(v));
  }
  return ConfigReader(ctx_, v, "'" + std::string(key) + "' of " + what_);
}

std::vector<std::string> ConfigReader::Keys() const {
  std::vector<std::string> keys;
  if (!node_.IsMap()) return keys;
  for (auto it = node_.begin(); it != node_.end(); ++it) {
    if (it->first.IsScalar()) keys.push_back(it->first.Scalar());
  }
  return keys;
}

}  // namespace streamrun
