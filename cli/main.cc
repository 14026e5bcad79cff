// streamrun's entry point: parses the command line with CLI11 and runs one subcommand.
#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>

#include <CLI/CLI.hpp>
#include <cstdio>
#include <map>
#include <string>

#include "cli/commands.h"

namespace streamrun::cli {

int ExitCodeFor(const Status& status) {
  switch (status.code()) {
    case Status::Code::kOk:
      return 0;
    case Status::Code::kPipelineError:
      return 2;
    case Status::Code::kCancelled:
      return 130;
    default:
      return 1;
  }
}

int Report(const Status& status) {
  if (!status.ok()) std::fprintf(stderr, "streamrun: %s\n", status.message().c_str());
  return ExitCodeFor(status);
}

// The subcommands, in the order `--help` lists them.
using CommandAdder = CommandRunner (*)(CLI::App&);
constexpr CommandAdder kCommands[] = {
    AddRunCommand,    AddRestoreCommand, AddSavepointCommand, AddValidateCommand,
    AddGraphCommand,  AddStatusCommand,  AddStopCommand,      AddTestCommand,
    AddRecordCommand, AddReplayCommand,  AddKafkaMockCommand, AddCheckpointsCommand,
    AddStateCommand,
};

}  // namespace streamrun::cli

int main(int argc, char** argv) {
  using streamrun::cli::CommandAdder;
  using streamrun::cli::CommandRunner;
  using streamrun::cli::kCommands;
  CLI::App app("streamrun: stateful stream jobs declared in YAML", "streamrun");
  app.require_subcommand(1);
  app.fallthrough();  // global options (--log-level) may also follow the subcommand
  app.set_version_flag("--version", "streamrun 0.1");
  std::string log_level = "info";
  app.add_option("--log-level", log_level, "trace, debug, info, warn, error or off")
      ->check(CLI::IsMember({"trace", "debug", "info", "warn", "error", "off"}))
      ->capture_default_str();

  std::map<CLI::App*, CommandRunner> commands;
  auto add = [&](CommandAdder adder) {
    size_t before = app.get_subcommands([](CLI::App*) { return true; }).size();
    CommandRunner run = adder(app);
    auto subs = app.get_subcommands([](CLI::App*) { return true; });
    if (subs.size() > before) commands[subs.back()] = std::move(run);
  };
  for (CommandAdder adder : kCommands) add(adder);

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    int code = app.exit(e);
    return code == 0 ? 0 : 2;  // usage errors exit 2
  }

  // Logs go to stderr; stdout belongs to the data (stdout sinks, graphs).
  auto logger = spdlog::stderr_color_mt("streamrun");
  spdlog::set_default_logger(logger);
  spdlog::set_pattern("%^%l%$ %v");
  spdlog::set_level(spdlog::level::from_str(log_level));

  for (auto& [sub, run] : commands) {
    if (sub->parsed()) return run();
  }
  return 2;
}
