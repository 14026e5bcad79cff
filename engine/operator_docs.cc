// OperatorDocsMarkdown: docs/operators.md, generated from the operator table.
#include <string>

#include "engine/pipeline.h"
#include "operators/registry.h"

namespace streamrun {
namespace {

// Table cells: a '|' would end the cell, a newline the row, and `<source>` would be read as HTML.
std::string Cell(std::string_view text) {
  std::string out;
  for (char c : text) {
    if (c == '|') {
      out += "\\|";
    } else if (c == '<') {
      out += "&lt;";
    } else if (c == '>') {
      out += "&gt;";
    } else if (c == '\n') {
      out += ' ';
    } else {
      out += c;
    }
  }
  return out;
}

std::string TypeName(std::string_view json_type) {
  if (json_type == "array") return "list";
  if (json_type == "object") return "mapping";
  return std::string(json_type);
}

void Section(std::string& out, NodeRole role, std::string_view title) {
  out += "## " + std::string(title) + "\n";
  for (const auto& t : OperatorTypes()) {
    if (t.role != role) continue;
    out += "\n### `" + std::string(t.name) + "`\n\n" + std::string(t.description) + "\n\n";
    out += "| Setting | Type | Required | Description |\n";
    out += "|---|---|---|---|\n";
    out += "| `type` | string | yes | `" + std::string(t.name) + "` |\n";
    if (role != NodeRole::kSource) {
      out +=
          "| `from` | string or list | yes | The stream it reads: a source, a step, "
          "`<step>.late` or `<source>.errors`; a list reads their union. |\n";
    }
    for (const auto& s : t.settings) {
      out += "| `" + std::string(s.name) + "` | " + TypeName(s.json_type) + " | " +
             (s.required ? "yes" : "no") + " | " + Cell(s.description) + " |\n";
    }
  }
  out += "\n";
}

}  // namespace

std::string OperatorDocsMarkdown() {
  std::string out =
      "# Operators\n\n"
      "<!-- Generated from operators/registry.cc by OperatorDocsMarkdown(); do not edit.\n"
      "     Regenerate: STREAMRUN_REGENERATE=1 ./build/unit_tests -tc='generated*' -->\n\n"
      "Every source, step and sink type a pipeline file can use, with its settings. Durations "
      "are written `250ms`, `10s`, `5m`, `1h`, `1d`; expressions are described in "
      "[expressions.md](expressions.md). Relative paths are relative to the pipeline file.\n\n";
  Section(out, NodeRole::kSource, "Sources");
  Section(out, NodeRole::kStep, "Steps");
  Section(out, NodeRole::kSink, "Sinks");
  out.pop_back();  // one newline at the end
  return out;
}

}  // namespace streamrun
