// `streamrun state dump SAVEPOINT|CHECKPOINT [--step ID] [--key KEY]`: the snapshot as JSON
// lines (engine/state_dump.h describes them). Exit 1 when it is damaged (naming the file), 2 for
// a step it does not have.
#include <cstdio>
#include <memory>
#include <string>

#include "cli/commands.h"
#include "engine/state_dump.h"

namespace streamrun::cli {

CommandRunner AddStateCommand(CLI::App& app) {
  struct Options {
    std::string path;
    StateDumpOptions dump;
  };
  auto opts = std::make_shared<Options>();
  CLI::App* sub = app.add_subcommand("state", "Look into checkpoints and savepoints");
  sub->require_subcommand(1);
  CLI::App* dump = sub->add_subcommand(
      "dump",
      "Print a savepoint or checkpoint as JSON lines: source positions, keyed state, sinks");
  dump->add_option("SNAPSHOT", opts->path, "Savepoint or checkpoint directory")->required();
  dump->add_option("--step", opts->dump.node, "Only this step (or source, or sink)");
  dump->add_option("--key", opts->dump.key,
                   "Only the state of this key: u1, or a JSON array for several key fields");
  return [opts] {
    Status st = DumpState(opts->path, opts->dump, [](std::string_view line) {
      std::fwrite(line.data(), 1, line.size(), stdout);
      std::fputc('\n', stdout);
    });
    return Report(st);
  };
}

}  // namespace streamrun::cli
