// The subcommands of the streamrun binary. Each Add* function registers one subcommand on the
// CLI11 app and returns the function that runs it (after parsing), which returns the exit code.
//
// Exit codes: 0 success, 1 runtime failure, 2 usage or pipeline error, 130 interrupted.
#pragma once

#include <CLI/CLI.hpp>
#include <functional>
#include <string>

#include "engine/status.h"

namespace streamrun::cli {

using CommandRunner = std::function<int()>;

CommandRunner AddRunCommand(CLI::App& app);
CommandRunner AddRestoreCommand(CLI::App& app);
CommandRunner AddSavepointCommand(CLI::App& app);
CommandRunner AddValidateCommand(CLI::App& app);
CommandRunner AddGraphCommand(CLI::App& app);
CommandRunner AddStatusCommand(CLI::App& app);
CommandRunner AddStopCommand(CLI::App& app);
CommandRunner AddTestCommand(CLI::App& app);
CommandRunner AddCheckpointsCommand(CLI::App& app);
CommandRunner AddStateCommand(CLI::App& app);

// Sends a control request (cli/savepoint.cc) and prints the savepoint path of the answer.
int RequestWithSavepoint(const std::string& target, const std::string& request);
std::string ControlJson(const std::string& command, const std::string& target_dir, bool savepoint,
                        bool drain);
CommandRunner AddRecordCommand(CLI::App& app);
CommandRunner AddReplayCommand(CLI::App& app);
CommandRunner AddKafkaMockCommand(CLI::App& app);

// The exit code for a Status (see above).
int ExitCodeFor(const Status& status);
// Prints "streamrun: <message>" to stderr and returns ExitCodeFor(status).
int Report(const Status& status);

}  // namespace streamrun::cli
