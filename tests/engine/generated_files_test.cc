// The committed generated files match what the code generates from the operator table.
// STREAMRUN_REGENERATE=1 rewrites them instead of failing.
#include <doctest/doctest.h>

#include <cstdlib>
#include <fstream>
#include <sstream>
#include <string>

#include "engine/pipeline.h"

namespace streamrun {
namespace {

constexpr const char* kRegenerate =
    "regenerate it with: STREAMRUN_REGENERATE=1 ./build/unit_tests -tc='generated*'";

void CheckGenerated(const std::string& relative_path, const std::string& expected) {
  const std::string path = std::string(STREAMRUN_SOURCE_DIR) + "/" + relative_path;
  if (std::getenv("STREAMRUN_REGENERATE") != nullptr) {
    std::ofstream out(path, std::ios::binary | std::ios::trunc);
    out << expected;
    REQUIRE_MESSAGE(out.good(), "cannot write ", path);
    MESSAGE("rewrote ", relative_path);
    return;
  }
  std::ifstream in(path, std::ios::binary);
  std::ostringstream actual;
  actual << in.rdbuf();
  CHECK_MESSAGE(actual.str() == expected, relative_path,
                " is missing or out of date with operators/registry.cc; ", kRegenerate);
}

TEST_CASE("generated: schemas/pipeline.schema.json matches PipelineJsonSchema()") {
  CheckGenerated("schemas/pipeline.schema.json", PipelineJsonSchema());
}

TEST_CASE("generated: docs/operators.md matches OperatorDocsMarkdown()") {
  CheckGenerated("docs/operators.md", OperatorDocsMarkdown());
}

}  // namespace
}  // namespace streamrun
