// `streamrun graph PIPELINE [--format dot|mermaid]`: prints the planned job graph.
#include <cstdio>
#include <memory>
#include <string>
#include <vector>

#include "cli/commands.h"
#include "cli/pipeline_args.h"
#include "engine/plan.h"

namespace streamrun::cli {

CommandRunner AddGraphCommand(CLI::App& app) {
  struct Options {
    std::string file;
    std::string format = "dot";
    std::vector<std::string> sets;
    int parallelism = 0;
  };
  auto opts = std::make_shared<Options>();
  CLI::App* sub = app.add_subcommand("graph", "Print the job graph as Graphviz DOT or Mermaid");
  sub->add_option("PIPELINE", opts->file, "Pipeline file")->required();
  sub->add_option("--format", opts->format, "dot or mermaid")
      ->check(CLI::IsMember({"dot", "mermaid"}))
      ->capture_default_str();
  sub->add_option("--parallelism", opts->parallelism, "Plan with this parallelism")
      ->check(CLI::PositiveNumber);
  AddSetOption(sub, &opts->sets);
  return [opts] {
    auto options = MakeLoadOptions(opts->sets);
    if (!options.ok()) return Report(options.status());
    auto spec = LoadPipeline(opts->file, *options);
    if (!spec.ok()) return Report(spec.status());
    auto plan = BuildPlan(*spec, opts->parallelism);
    if (!plan.ok()) return Report(plan.status());
    std::string text = opts->format == "mermaid" ? PlanToMermaid(*plan) : PlanToDot(*plan);
    std::fwrite(text.data(), 1, text.size(), stdout);
    return 0;
  };
}

}  // namespace streamrun::cli
