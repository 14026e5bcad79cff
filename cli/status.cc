// `streamrun status PIPELINE|STATE_DIR`: what a running job is doing, per step: records in and
// out, rate, queue fill, busy and backpressured share of its threads' time, watermark.
// `--json` prints the job's answer as it is.
#include <rapidjson/document.h>

#include <chrono>
#include <cstdio>
#include <memory>
#include <string>
#include <thread>

#include "cli/commands.h"
#include "cli/pipeline_args.h"
#include "engine/control_server.h"

namespace streamrun::cli {
namespace {

std::string Watermark(const rapidjson::Value& wm) {
  if (!wm.IsInt64()) return "-";
  int64_t ms = wm.GetInt64();
  time_t secs = static_cast<time_t>(ms / 1000);
  tm utc;
  gmtime_r(&secs, &utc);
  char buf[64];
  std::snprintf(buf, sizeof buf, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", utc.tm_year + 1900,
                utc.tm_mon + 1, utc.tm_mday, utc.tm_hour, utc.tm_min, utc.tm_sec,
                static_cast<int>(ms % 1000));
  return buf;
}

}  // namespace

CommandRunner AddStatusCommand(CLI::App& app) {
  struct Options {
    std::string target;
    bool json = false;
  };
  auto opts = std::make_shared<Options>();
  CLI::App* sub = app.add_subcommand("status", "Show what a running job is doing");
  sub->add_option("TARGET", opts->target, "Pipeline file or state directory")->required();
  sub->add_flag("--json", opts->json, "Print the job's answer as JSON");
  return [opts] {
    auto dir = ResolveStateDir(opts->target);
    if (!dir.ok()) return Report(dir.status());
    const std::string socket = *dir + "/control.sock";
    // Two samples half a second apart give the current rates.
    auto first = ControlRequest(socket, R"({"command":"status"})");
    if (!first.ok()) return Report(first.status());
    if (opts->json) {
      std::printf("%s\n", first->c_str());
      return 0;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(500));
    auto second = ControlRequest(socket, R"({"command":"status"})");
    if (!second.ok()) return Report(second.status());
    rapidjson::Document a, b;
    a.Parse(first->c_str());
    b.Parse(second->c_str());
    for (const rapidjson::Document* d : {&a, &b}) {
      // {"ok": false, "error": ...}: e.g. between two attempts of the restart strategy.
      if (!d->HasParseError() && d->IsObject() && d->HasMember("error") &&
          (*d)["error"].IsString()) {
        return Report(Status::RuntimeError((*d)["error"].GetString()));
      }
    }
    if (a.HasParseError() || b.HasParseError() || !a.IsObject() || !a.HasMember("nodes") ||
        !b.IsObject() || !b.HasMember("nodes")) {
      return Report(Status::RuntimeError("the job's answer is not the status: " + *second));
    }
    std::printf("job %s, up %.1f s\n", b["job"].GetString(), b["uptime_ms"].GetInt64() / 1000.0);
    std::printf("%-20s %-9s %3s %12s %12s %10s %6s %5s %5s  %s\n", "STEP", "TYPE", "P", "IN", "OUT",
                "IN/S", "QUEUE", "BUSY", "BKPR", "WATERMARK");
    const auto& nodes_a = a["nodes"];
    const auto& nodes_b = b["nodes"];
    for (rapidjson::SizeType i = 0; i < nodes_b.Size(); ++i) {
      const auto& n = nodes_b[i];
      // Over the job's own time between the samples; a job that restarted in between counts
      // from zero again: no rate then.
      double rate = 0;
      const int64_t ms = b["uptime_ms"].GetInt64() - a["uptime_ms"].GetInt64();
      if (i < nodes_a.Size() && ms > 0 &&
          n["records_in"].GetUint64() >= nodes_a[i]["records_in"].GetUint64()) {
        rate = static_cast<double>(n["records_in"].GetUint64() -
                                   nodes_a[i]["records_in"].GetUint64()) *
               1000.0 / static_cast<double>(ms);
      }
      std::printf("%-20s %-9s %3d %12llu %12llu %10.0f %5.0f%% %4.0f%% %4.0f%%  %s\n",
                  n["name"].GetString(), n["type"].GetString(), n["parallelism"].GetInt(),
                  static_cast<unsigned long long>(n["records_in"].GetUint64()),
                  static_cast<unsigned long long>(n["records_out"].GetUint64()), rate,
                  100 * n["queue_fill"].GetDouble(), 100 * n["busy"].GetDouble(),
                  100 * n["backpressured"].GetDouble(), Watermark(n["watermark"]).c_str());
    }
    for (const auto& n : nodes_b.GetArray()) {
      if (n.HasMember("pauses") && n["pauses"].IsUint64() && n["pauses"].GetUint64() > 0) {
        std::printf("source %s: partitions paused %llu times under backpressure\n",
                    n["name"].GetString(),
                    static_cast<unsigned long long>(n["pauses"].GetUint64()));
      }
    }
    if (b.HasMember("checkpoints") && b["checkpoints"].IsObject()) {
      const auto& c = b["checkpoints"];
      if (c["last"].IsObject()) {
        const auto& last = c["last"];
        std::printf(
            "last checkpoint: %s at %s (%lld ms, %llu bytes of state); %llu completed, %llu "
            "failed\n",
            last["path"].GetString(), Watermark(last["completed_at_ms"]).c_str(),
            static_cast<long long>(last["duration_ms"].GetInt64()),
            static_cast<unsigned long long>(last["bytes"].GetUint64()),
            static_cast<unsigned long long>(c["completed"].GetUint64()),
            static_cast<unsigned long long>(c["failed"].GetUint64()));
      } else {
        std::printf("last checkpoint: none yet (%llu failed)\n",
                    static_cast<unsigned long long>(c["failed"].GetUint64()));
      }
      if (c.HasMember("pause_ms") && c["pause_ms"].IsObject() &&
          c["pause_ms"]["samples"].GetUint64() > 0) {
        const auto& p = c["pause_ms"];
        std::printf("pause at barriers: p50 %.2f ms, p99 %.2f ms, max %.2f ms (%llu samples)\n",
                    p["p50"].GetDouble(), p["p99"].GetDouble(), p["max"].GetDouble(),
                    static_cast<unsigned long long>(p["samples"].GetUint64()));
      }
    }
    return 0;
  };
}

CommandRunner AddStopCommand(CLI::App& app) {
  struct Options {
    std::string target;
    bool savepoint = false;
    std::string dir;
    bool drain = false;
  };
  auto opts = std::make_shared<Options>();
  CLI::App* sub = app.add_subcommand(
      "stop", "Stop a running job (it exits 130; with --drain its input ends and it exits 0)");
  sub->add_option("TARGET", opts->target, "Pipeline file or state directory")->required();
  sub->add_flag("--savepoint", opts->savepoint, "Take a savepoint first and print its path");
  sub->add_option("--target", opts->dir, "Directory to put the savepoint in");
  sub->add_flag("--drain", opts->drain,
                "End every input now: all windows fire and sinks commit before the job exits");
  return [opts] {
    return RequestWithSavepoint(opts->target,
                                ControlJson("stop", opts->dir, opts->savepoint, opts->drain));
  };
}

}  // namespace streamrun::cli
