// Pipeline test files (`streamrun test`): a pipeline, and cases of inputs and expected outputs.
//
//   pipeline: clickstream.yaml                 # relative to the test file
//   cases:
//     - name: counts per user and minute
//       inputs:                                # every source of the pipeline, by name
//         clicks: tests/clicks.recording.jsonl   # a path, or {path: P, format: F}
//       expect:                                # the sinks to compare (others are not)
//         counts: tests/counts.expected.jsonl
//
// Paths are relative to the test file. An input's format is `json`, `text` or `recording`:
// given as `format:`, else `recording` for a name ending in `.recording.jsonl` or a first line
// that has the fields `partition`, `offset` and `value` (or `value_text`, `value_b64`), else the
// format of the source it replaces (json for a generator). README.md "Testing pipelines" has
// the user's view; engine/test_runner.h runs the cases.
//
// Loading checks everything that can be checked without running: the YAML, the keys, that the
// pipeline loads and plans, that every source has an input and that no input or expectation
// names something the pipeline does not have, that input files exist, and that expected files
// exist (unless they are to be written). Errors are kPipelineError Statuses located as
// `FILE:LINE:COL: message`, as pipeline errors are (the pipeline's own errors point into the
// pipeline file).
#pragma once

#include <string>
#include <vector>

#include "engine/pipeline.h"
#include "engine/status.h"

namespace streamrun {

struct TestInput {
  std::string source;       // the source it replaces
  std::string path;         // absolute
  std::string format;       // "json", "text" or "recording"; "" to decide by name and content
  SourceLocation location;  // of the path in the test file
};

struct TestExpectation {
  std::string sink;
  std::string path;  // absolute
  SourceLocation location;
};

struct TestCase {
  std::string name;
  SourceLocation location;
  std::vector<TestInput> inputs;              // one per source, in the pipeline's order
  std::vector<TestExpectation> expectations;  // in the test file's order
};

struct TestFile {
  std::string path;  // as given
  PipelineSpec pipeline;
  std::vector<TestCase> cases;
};

// `for_update`: expected files are about to be written (`--update`), so they need not exist.
Result<TestFile> LoadTestFile(const std::string& path, bool for_update);

}  // namespace streamrun
