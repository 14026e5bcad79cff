// `streamrun state dump`: a checkpoint or savepoint as JSON lines, for people and scripts.
//
// After the snapshot verifies (every checksum), one line per item, in the order of the
// snapshot's nodes (sources, steps, sinks as the pipeline declared them):
//   {"source":NAME,"subtask":S,"position":POSITION}        where a source resumes ("end": it had
//                                                          read everything)
//   {"step":NAME,"key_group":G,"key":[V,...],MEMBERS}      one keyed-state entry: the key's values
//                                                          decoded (engine/key.h), then what the
//                                                          step's type makes of the entry
//                                                          (OperatorType::describe_state; a
//                                                          window: "window" and "value")
//   {"sink":NAME,"subtask":S,META...}                      a sink's checkpoint data, e.g. a file
//                                                          sink's "committed" and "pending"
// A step's entries are sorted by key group, key and namespace, so dumps of the same state
// written at different parallelisms are equal. A step type without a describer shows the
// entry's namespace and value as hex ("namespace_hex", "value_hex").
//
// Thread safety: a plain function.
#pragma once

#include <functional>
#include <string>
#include <string_view>

#include "engine/status.h"

namespace streamrun {

struct StateDumpOptions {
  // Only this node (a source, step or sink of the snapshot); empty: all. A name the snapshot
  // does not have is a PipelineError with a did-you-mean.
  std::string node;
  // Only keyed-state entries of this key, as a user writes it: `u1` for a one-field key, a JSON
  // array (`["u1", 3]`) for several fields. Values are compared as text, a string by its
  // characters and anything else by its JSON, so `42` finds the number 42 and the string "42".
  // Empty: every entry, and the sources' and sinks' lines too.
  std::string key;
};

// Verifies the snapshot at `path` (a damaged one is a DataError naming the file) and calls
// `line` with each JSON line (without the newline).
Status DumpState(const std::string& path, const StateDumpOptions& options,
                 const std::function<void(std::string_view line)>& line);

}  // namespace streamrun
