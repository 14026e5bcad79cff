// The subcommands of the streamrun binary. Each Add* function registers one subcommand on the
// CLI11 app and returns the function that runs it (after parsing), which returns the exit code.
//
// Exit codes: 0 success, 1 runtime failure, 2 usage or pipeline error, 130 interrupted.
#pragma once

#include <functional>

#include <CLI/CLI.hpp>

#include "engine/status.h"

namespace streamrun::cli {

using CommandRunner = std::function<int()>;

CommandRunner AddRunCommand(CLI::App& app);
CommandRunner AddValidateCommand(CLI::App& app);
CommandRunner AddGraphCommand(CLI::App& app);
CommandRunner AddStatusCommand(CLI::App& app);
CommandRunner AddStopCommand(CLI::App& app);
CommandRunner AddTestCommand(CLI::App& app);

// The exit code for a Status (see above).
int ExitCodeFor(const Status& status);
// Prints "streamrun: <message>" to stderr and returns ExitCodeFor(status).
int Report(const Status& status);

}  // namespace streamrun::cli
