// `streamrun validate PIPELINE...`: checks pipeline files without running them. Errors go to
// stderr as FILE:LINE:COL: message (the form editors and CI annotate); exit 2 if any file fails.
// A file named *.test.yaml is checked as a pipeline test file (engine/test_file.h), so that
// `validate pipelines/*.yaml` covers the examples and their tests.
#include <cstdio>
#include <memory>
#include <string>
#include <vector>

#include "cli/commands.h"
#include "cli/pipeline_args.h"
#include "engine/plan.h"
#include "engine/test_file.h"

namespace streamrun::cli {
namespace {

bool IsTestFile(const std::string& path) {
  constexpr std::string_view kSuffix = ".test.yaml";
  return path.size() >= kSuffix.size() &&
         path.compare(path.size() - kSuffix.size(), kSuffix.size(), kSuffix) == 0;
}

}  // namespace

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
      Status st;
      if (IsTestFile(file)) {
        // A test file loads its pipeline (without --set) and checks its inputs and expectations.
        st = LoadTestFile(file, /*for_update=*/false).status();
      } else {
        auto spec = LoadPipeline(file, *options);
        st = spec.status();
        if (spec.ok()) st = BuildPlan(*spec, 0).status();
      }
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
