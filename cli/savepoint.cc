// `streamrun savepoint PIPELINE|STATE_DIR [--target DIR]`: asks the running job for a savepoint
// and prints its absolute path. `streamrun savepoint check SAVEPOINT PIPELINE`: can this
// pipeline restore it? One line per node: restored, new, dropped or incompatible (exit 1 when
// any is incompatible, or dropped: restoring would need --allow-non-restored-state).
#include <rapidjson/document.h>
#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

#include <cstdio>
#include <filesystem>
#include <memory>
#include <string>

#include "cli/commands.h"
#include "cli/pipeline_args.h"
#include "engine/control_server.h"
#include "engine/restore.h"
#include "engine/state_dir.h"

namespace streamrun::cli {

// Sends a savepoint or stop request and prints the savepoint's path when there is one.
int RequestWithSavepoint(const std::string& target, const std::string& request) {
  auto dir = ResolveStateDir(target);
  if (!dir.ok()) return Report(dir.status());
  // A savepoint of a large state takes a while: wait up to 10 minutes.
  auto answer = ControlRequest(*dir + "/control.sock", request, 600000);
  if (!answer.ok()) return Report(answer.status());
  rapidjson::Document doc;
  doc.Parse(answer->c_str());
  if (doc.HasParseError() || !doc.IsObject() || !doc.HasMember("ok")) {
    return Report(Status::RuntimeError("unexpected answer from the job: " + *answer));
  }
  if (!doc["ok"].GetBool()) {
    std::string error =
        doc.HasMember("error") && doc["error"].IsString() ? doc["error"].GetString() : *answer;
    return Report(Status::RuntimeError(error));
  }
  if (doc.HasMember("path") && doc["path"].IsString()) std::printf("%s\n", doc["path"].GetString());
  return 0;
}

std::string ControlJson(const std::string& command, const std::string& target_dir, bool savepoint,
                        bool drain) {
  rapidjson::StringBuffer sb;
  rapidjson::Writer<rapidjson::StringBuffer> w(sb);
  w.StartObject();
  w.Key("command");
  w.String(command.c_str());
  if (!target_dir.empty()) {
    std::error_code ec;
    std::string abs = std::filesystem::absolute(target_dir, ec).lexically_normal().string();
    w.Key("target");
    w.String(abs.c_str());
  }
  if (savepoint) {
    w.Key("savepoint");
    w.Bool(true);
  }
  if (drain) {
    w.Key("drain");
    w.Bool(true);
  }
  w.EndObject();
  return sb.GetString();
}

CommandRunner AddSavepointCommand(CLI::App& app) {
  struct Options {
    std::string target;
    std::string dir;
    std::string check_savepoint;
    std::string check_pipeline;
    std::vector<std::string> sets;
  };
  auto opts = std::make_shared<Options>();
  CLI::App* sub =
      app.add_subcommand("savepoint", "Take a savepoint of a running job; prints its path");
  sub->add_option("TARGET", opts->target, "Pipeline file or state directory of the running job");
  sub->add_option("--target", opts->dir,
                  "Directory to put the savepoint in (default STATE_DIR/savepoints)");
  CLI::App* check = sub->add_subcommand("check", "Can PIPELINE restore SAVEPOINT? Per step");
  check->add_option("SAVEPOINT", opts->check_savepoint, "Savepoint or checkpoint directory")
      ->required();
  check->add_option("PIPELINE", opts->check_pipeline, "Pipeline file")->required();
  AddSetOption(check, &opts->sets);
  return [opts, check] {
    if (check->parsed()) {
      auto options = MakeLoadOptions(opts->sets);
      if (!options.ok()) return Report(options.status());
      auto spec = LoadPipeline(opts->check_pipeline, *options);
      if (!spec.ok()) return Report(spec.status());
      VerifyResult v = VerifyCheckpoint(opts->check_savepoint);
      if (!v.ok())
        return Report(Status::RuntimeError(opts->check_savepoint + ": " + v.status.message()));
      auto info = ReadSnapshotInfo(opts->check_savepoint);
      if (!info.ok()) return Report(info.status());
      int bad = 0;
      if (info->max_parallelism != spec->max_parallelism) {
        std::printf("max_parallelism: incompatible (%d in the savepoint, %d in the pipeline)\n",
                    info->max_parallelism, spec->max_parallelism);
        ++bad;
      }
      for (const NodeCheck& c : CheckSnapshot(*info, *spec)) {
        std::printf("%-24s %-6s %-12s %s\n", c.name.c_str(), NodeRoleName(c.role),
                    VerdictName(c.verdict), c.detail.c_str());
        if (c.verdict == NodeCheck::Verdict::kIncompatible ||
            c.verdict == NodeCheck::Verdict::kDropped) {
          ++bad;
        }
      }
      return bad == 0 ? 0 : 1;
    }
    if (opts->target.empty()) {
      return Report(
          Status::PipelineError("savepoint: give the running job's PIPELINE or STATE_DIR"));
    }
    return RequestWithSavepoint(opts->target, ControlJson("savepoint", opts->dir, false, false));
  };
}

}  // namespace streamrun::cli
