// Did-you-mean suggestions for misspelt keys, types and names in pipeline files.
#pragma once

#include <string>
#include <string_view>
#include <vector>

namespace streamrun {

// The Levenshtein distance between `a` and `b` (insertions, deletions, substitutions).
size_t EditDistance(std::string_view a, std::string_view b);

// The candidate closest to `word`, or "" when none is close enough to be a plausible typo
// (at most 2 edits, or a third of the word's length for long words).
std::string ClosestMatch(std::string_view word, const std::vector<std::string>& candidates);

// "; did you mean 'x'?" when a candidate is close, else "".
std::string DidYouMean(std::string_view word, const std::vector<std::string>& candidates);

}  // namespace streamrun
