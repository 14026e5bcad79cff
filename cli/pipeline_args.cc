// Options shared by the subcommands that load a pipeline file.
#include "cli/pipeline_args.h"

namespace streamrun::cli {

void AddSetOption(CLI::App* sub, std::vector<std::string>* sets) {
  sub->add_option("--set", *sets, "Override a field of the pipeline file: KEY=VALUE (a.b=v)")
      ->type_name("KEY=VALUE");
}

Result<LoadOptions> MakeLoadOptions(const std::vector<std::string>& sets) {
  LoadOptions options;
  for (const std::string& s : sets) {
    auto eq = s.find('=');
    if (eq == std::string::npos || eq == 0) {
      return Status::PipelineError("--set " + s + ": expected KEY=VALUE");
    }
    options.sets.emplace_back(s.substr(0, eq), s.substr(eq + 1));
  }
  return options;
}

}  // namespace streamrun::cli
