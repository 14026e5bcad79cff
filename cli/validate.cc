// `streamrun validate PIPELINE...`: checks pipeline files without running them. Errors go to
// stderr as FILE:LINE:COL: message (the form editors and CI annotate); exit 2 if any file fails.
#include <cstdio>
#include <memory>
#include <string>
#include <vector>

#include "cli/commands.h"
#include "cli/pipeline_args.h"
#include "engine/plan.h"

namespace streamrun::cli {

CommandRunner AddValidateCommand(CLI::App& app) {
  struct Options {
    std::vector<std::string> files;
    std::vector<std::string> sets;
  };
  auto opts = std::make_shared<Options>();
  CLI::App* sub = app.add_subcommand("validate", "Check pipeline files without running them");
  sub->add_option("PIPELINE", opts->files, "Pipeline files")->required();
  AddSetOption(sub, &opts->sets);
  return [opts] {
    auto options = MakeLoadOptions(opts->sets);
    if (!options.ok()) return Report(options.status());
    int failed = 0;
    for (const std::string& file : opts->files) {
      auto spec = LoadPipeline(file, *options);
      Status st = spec.status();
      if (spec.ok()) st = BuildPlan(*spec, 0).status();
      if (!st.ok()) {
        std::fprintf(stderr, "%s\n", st.message().c_str());
        ++failed;
      } else {
        std::printf("%s: ok\n", file.c_str());
      }
    }
    return failed ? 2 : 0;
  };
}

}  // namespace streamrun::cli
