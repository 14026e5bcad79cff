// Running the cases of a pipeline test file (engine/test_file.h) for `streamrun test`.
//
// A case runs the pipeline as loaded, with its two edges swapped before planning: every source
// becomes a file source that reads the case's input (keeping the replaced source's event_time,
// watermark and on_error; the format as test_file.h says), whatever its type, and every sink a
// capture sink (operators/capture_sink.h) that keeps its lines in memory, so nothing is written
// where the pipeline would write and no broker is needed. The job runs in-process (Job) at the
// pipeline's parallelism, with a fresh temporary state directory (removed afterwards), no
// control socket, no checkpoints and no restarts.
//
// Why replace NodeConfigs in the PipelineSpec rather than rewrite the YAML text: the settings of
// a source differ by type (a generator's profile, a Kafka source's brokers), so rewriting the
// text would need to know which keys of every type to remove, `${VAR}` and `--set` would apply
// again, and errors would point at text nobody wrote. The spec is already loaded, validated and
// located; changing two kinds of nodes in a copy of it touches nothing else.
//
// Thread safety: RunTestCase runs the job's threads and returns when they have ended.
#pragma once

#include <string>
#include <vector>

#include "engine/output_compare.h"
#include "engine/status.h"
#include "engine/test_file.h"

namespace streamrun {

struct SinkOutcome {
  std::string sink;
  std::string path;  // the expected file
  size_t expected_lines = 0;
  size_t actual_lines = 0;
  LineDiff diff;  // empty in update mode
};

struct CaseOutcome {
  std::string name;
  // Not ok when the case could not run or the pipeline failed (say, bad input with
  // on_error: fail); its sinks are then not compared.
  Status run;
  std::vector<SinkOutcome> sinks;  // one per expectation, in the test file's order
  bool passed() const {
    if (!run.ok()) return false;
    for (const auto& s : sinks) {
      if (!s.diff.empty()) return false;
    }
    return true;
  }
};

// Runs `c` and compares each expected sink's output with its file, as multisets of lines
// (engine/output_compare.h). With `update`, writes each expected file from the actual output
// instead (sorted, for stable diffs); a failed run writes nothing.
CaseOutcome RunTestCase(const TestFile& file, const TestCase& c, bool update);

// The format a case's input is read in: "json", "text" or "recording" (see test_file.h).
// `replaced_format`: the format of the source it replaces.
std::string TestInputFormat(const TestInput& input, const std::string& replaced_format);

}  // namespace streamrun
