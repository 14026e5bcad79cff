#include "engine/load_context.h"

#include <filesystem>

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

}  // namespace streamrun
