// Options shared by the subcommands that load a pipeline file (run, validate, graph).
#pragma once

#include <CLI/CLI.hpp>
#include <string>
#include <vector>

#include "engine/pipeline.h"

namespace streamrun::cli {

// Adds `--set KEY=VALUE` (repeatable) to `sub`, storing into `sets`.
void AddSetOption(CLI::App* sub, std::vector<std::string>* sets);
// Turns `--set` values into LoadOptions; a value without '=' is a usage error.
Result<LoadOptions> MakeLoadOptions(const std::vector<std::string>& sets);

// The state directory of PIPELINE|STATE_DIR: a pipeline file's (found the way `run` finds it:
// `state.dir`, default .streamrun/<name> beside the file), or the directory itself.
Result<std::string> ResolveStateDir(const std::string& target);

}  // namespace streamrun::cli
