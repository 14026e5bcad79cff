#include "engine/load_context.h"

#include <filesystem>
#include <fstream>
#include <sstream>

#include "operators/registry.h"

namespace streamrun {

std::string FormatAt(const SourceLocation& loc, std::string_view message) {
  std::string out = loc.file;
  if (loc.line > 0) {
    out += ":" + std::to_string(loc.line) + ":" + std::to_string(loc.column > 0 ? loc.column : 1);
  }
  out += ": ";
  out += message;
  return out;
}

LoadContext::LoadContext(std::string path, std::string dir, std::string text,
                         const std::vector<OperatorType>* operator_types)
    : path_(std::move(path)),
      dir_(std::move(dir)),
      text_(std::move(text)),
      operator_types_(operator_types != nullptr ? operator_types : &OperatorTypes()) {}

SourceLocation LoadContext::LocationOf(const YAML::Node& node) const {
  SourceLocation loc{path_, 0, 0};
  if (!node.IsDefined()) return loc;
  YAML::Mark mark = node.Mark();
  if (mark.is_null() || mark.line < 0) return loc;
  loc.line = mark.line + 1;
  loc.column = mark.column + 1;
  return loc;
}

SourceLocation LoadContext::LocationInScalar(const YAML::Node& scalar, size_t offset) const {
  SourceLocation loc = LocationOf(scalar);
  if (loc.line == 0 || !scalar.IsScalar()) return loc;
  const std::string& value = scalar.Scalar();
  const int pos = scalar.Mark().pos;
  if (pos < 0 || static_cast<size_t>(pos) >= text_.size() || offset > value.size()) return loc;
  size_t start = static_cast<size_t>(pos);
  // yaml-cpp 0.7 does not tell a node's style: look at the text where the scalar starts.
  if (text_[start] == '"' || text_[start] == '\'') ++start;
  if (text_.compare(start, value.size(), value) != 0) return loc;  // escapes, folding, block
  // Verbatim: count lines and columns up to the offset.
  int line = loc.line;
  int column = loc.column + static_cast<int>(start - static_cast<size_t>(pos));
  for (size_t i = 0; i < offset; ++i) {
    if (value[i] == '\n') {
      ++line;
      column = 1;
    } else {
      ++column;
    }
  }
  loc.line = line;
  loc.column = column;
  return loc;
}

const std::string* LoadContext::SetKeyOf(const YAML::Node& node) const {
  for (const auto& [set_node, key] : set_nodes_) {
    if (set_node.is(node)) return &key;
  }
  return nullptr;
}

Status LoadContext::ErrorAt(const YAML::Node& node, std::string_view message) const {
  if (const std::string* key = SetKeyOf(node)) {
    return Status::PipelineError("--set " + *key + ": " + std::string(message));
  }
  return Status::PipelineError(FormatAt(LocationOf(node), message));
}

std::string LoadContext::ResolvePath(std::string_view path) const {
  std::filesystem::path p(path);
  if (p.is_relative()) p = std::filesystem::path(dir_) / p;
  return p.lexically_normal().string();
}

void LoadContext::NoteFromSet(const YAML::Node& node, const std::string& set_key) {
  set_nodes_.emplace_back(node, set_key);
  if (node.IsMap()) {
    for (auto it = node.begin(); it != node.end(); ++it) {
      NoteFromSet(it->first, set_key);
      NoteFromSet(it->second, set_key);
    }
  } else if (node.IsSequence()) {
    for (auto it = node.begin(); it != node.end(); ++it) NoteFromSet(*it, set_key);
  }
}

Status CheckLoaderFileSize(const std::string& path, std::string_view what, uint64_t size) {
  if (size <= kMaxPipelineFileBytes) return Status::Ok();
  return Status::PipelineError(path + ": file too large (" + std::to_string(size) + " bytes; a " +
                               std::string(what) + " may have at most " +
                               std::to_string(kMaxPipelineFileBytes) + ")");
}

Result<std::string> ReadLoaderFile(const std::string& path, std::string_view what) {
  std::error_code ec;
  const auto size = std::filesystem::file_size(path, ec);
  if (ec) return Status::PipelineError(path + ": cannot read: " + ec.message());
  SR_RETURN_IF_ERROR(CheckLoaderFileSize(path, what, size));
  std::ifstream in(path, std::ios::binary);
  std::ostringstream text;
  text << in.rdbuf();
  if (!in && !in.eof()) return Status::PipelineError(path + ": cannot read");
  return text.str();
}

Status LoadYamlDocument(const LoadContext& ctx, std::string_view what,
                        const std::function<Status(YAML::Node root)>& load) {
  const std::string& path = ctx.path();
  try {
    std::vector<YAML::Node> documents = YAML::LoadAll(ctx.text());
    if (documents.size() > 1) {
      return ctx.ErrorAt(documents[1], "a " + std::string(what) + " holds one YAML document, not " +
                                           std::to_string(documents.size()));
    }
    YAML::Node root = documents.empty() ? YAML::Node() : documents[0];
    if (documents.empty() || root.IsNull()) {
      return Status::PipelineError(path + ": empty " + std::string(what));
    }
    SR_RETURN_IF_ERROR(CheckYamlLimits(root, ctx));
    return load(root);
  } catch (const YAML::Exception& e) {
    SourceLocation loc{path, 0, 0};
    if (!e.mark.is_null()) loc = {path, e.mark.line + 1, e.mark.column + 1};
    return Status::PipelineError(FormatAt(loc, e.msg));
  } catch (const std::exception& e) {
    return Status::PipelineError(path + ": " + e.what());
  }
}

}  // namespace streamrun
