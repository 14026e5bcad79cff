// Options shared by the subcommands that load a pipeline file.
#include "cli/pipeline_args.h"

#include <sys/stat.h>

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

Result<std::string> ResolveStateDir(const std::string& target) {
  struct stat st;
  if (stat(target.c_str(), &st) != 0) {
    return Status::PipelineError(target + ": no such pipeline file or state directory");
  }
  if (S_ISDIR(st.st_mode)) return target;
  SR_ASSIGN_OR_RETURN(PipelineSpec spec, LoadPipeline(target, LoadOptions()));
  return spec.state_dir;
}

}  // namespace streamrun::cli
