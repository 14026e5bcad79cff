// Comparing a sink's output with the lines a test expects (`streamrun test`): as multisets of
// records, JSON compared by value.
//
// A line that is JSON compares by its canonical form (CanonicalLine): object members sorted by
// name, no white space, strings escaped one way, numbers by value within their kind. Integers
// and numbers with a fraction stay apart, as in the engine, where counts and sums of integers
// are integers and `avg` is not: `2` and `2.0` differ, `1.50` and `1.5` are equal, `1e2` is
// `100.0`. A line that is not JSON (a text record) compares byte for byte. Empty lines are
// skipped and a trailing \r is dropped (SplitLines).
#pragma once

#include <string>
#include <string_view>
#include <vector>

namespace streamrun {

// The lines of a file's contents, without newlines, trailing \r and empty lines.
std::vector<std::string> SplitLines(std::string_view text);

// The form of `line` that equal records share (see above).
std::string CanonicalLine(std::string_view line);

// What differs between two multisets of lines. Each list is sorted, and holds the lines as
// written (not their canonical form), once per missing or unexpected occurrence.
struct LineDiff {
  std::vector<std::string> missing;     // expected lines no actual line matched
  std::vector<std::string> unexpected;  // actual lines no expected line matched
  bool empty() const { return missing.empty() && unexpected.empty(); }
};

LineDiff CompareLineMultisets(const std::vector<std::string>& expected,
                              const std::vector<std::string>& actual);

}  // namespace streamrun
