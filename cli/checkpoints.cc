// `streamrun checkpoints PIPELINE|STATE_DIR [--verify]`: the checkpoints and savepoints of a
// state directory, one line each: id, status, creation time, size, path.
//
// Status: complete (its manifest is there and every file it lists has the listed size; with
// --verify also the listed checksum), in progress (a .tmp directory: being written, or left by a
// crash) or damaged. A damaged one is named on stderr with the file and the reason, and the
// command exits 1; `run` would skip it for an older one. Without --verify only the manifest is
// read and the files' sizes compared, which finds truncated and missing files but not changed
// bytes.
#include <cstdio>
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "cli/commands.h"
#include "cli/pipeline_args.h"
#include "engine/checkpoint_manifest.h"
#include "engine/state_dir.h"

namespace streamrun::cli {
namespace {

namespace fs = std::filesystem;

std::string HumanBytes(uint64_t n) {
  char buf[32];
  if (n >= (1ull << 30))
    std::snprintf(buf, sizeof buf, "%.1f GiB", n / double(1ull << 30));
  else if (n >= (1ull << 20))
    std::snprintf(buf, sizeof buf, "%.1f MiB", n / double(1ull << 20));
  else if (n >= (1ull << 10))
    std::snprintf(buf, sizeof buf, "%.1f KiB", n / double(1ull << 10));
  else
    std::snprintf(buf, sizeof buf, "%llu B", static_cast<unsigned long long>(n));
  return buf;
}

// Bytes of the regular files under `dir`.
uint64_t TreeBytes(const std::string& dir) {
  uint64_t total = 0;
  std::error_code ec;
  for (fs::recursive_directory_iterator it(dir, ec), end; !ec && it != end; it.increment(ec)) {
    std::error_code fec;
    if (it->is_regular_file(fec)) total += it->file_size(fec);
  }
  return total;
}

// Prints the entries of one kind; returns how many are damaged.
int PrintEntries(const std::vector<CheckpointEntry>& entries, bool verify) {
  int damaged = 0;
  std::printf("%-6s %-12s %-25s %10s  %s\n", "ID", "STATUS", "CREATED", "SIZE", "PATH");
  for (const CheckpointEntry& e : entries) {
    std::string id = e.id > 0 ? std::to_string(e.id) : "-";
    std::string status = "in progress";
    std::string created = "-";
    std::string problem;
    if (!e.in_progress) {
      VerifyResult v = VerifyCheckpoint(e.path, verify);
      std::error_code ec;
      if (v.ok()) {
        status = "complete";
      } else if (!fs::exists(e.path, ec)) {
        continue;  // removed meanwhile (the running job's retention)
      } else {
        status = "damaged";
        problem = v.status.message();
      }
      if (v.manifest) {
        id = std::to_string(v.manifest->id);
        created = FormatUtcMillis(v.manifest->created_at_ms);
      }
    }
    std::printf("%-6s %-12s %-25s %10s  %s\n", id.c_str(), status.c_str(), created.c_str(),
                HumanBytes(TreeBytes(e.path)).c_str(), e.path.c_str());
    if (!problem.empty()) {
      std::fflush(stdout);
      std::fprintf(stderr, "streamrun: damaged: %s\n", problem.c_str());
      ++damaged;
    }
  }
  return damaged;
}

}  // namespace

CommandRunner AddCheckpointsCommand(CLI::App& app) {
  struct Options {
    std::string target;
    bool verify = false;
  };
  auto opts = std::make_shared<Options>();
  CLI::App* sub = app.add_subcommand(
      "checkpoints", "List the checkpoints and savepoints of a job's state directory");
  sub->add_option("TARGET", opts->target, "Pipeline file or state directory")->required();
  sub->add_flag("--verify", opts->verify, "Read every file and compare its checksum");
  return [opts] {
    auto dir = ResolveStateDir(opts->target);
    if (!dir.ok()) return Report(dir.status());
    std::error_code ec;
    const std::string state_dir = fs::absolute(*dir, ec).lexically_normal().string();
    auto checkpoints = ListCheckpoints(state_dir);
    if (!checkpoints.ok()) return Report(checkpoints.status());
    auto savepoints = ListSavepoints(state_dir);
    if (!savepoints.ok()) return Report(savepoints.status());
    int damaged = 0;
    if (checkpoints->empty()) {
      std::printf("no checkpoints in %s\n", CheckpointsDir(state_dir).c_str());
    } else {
      std::printf("checkpoints in %s:\n", CheckpointsDir(state_dir).c_str());
      damaged += PrintEntries(*checkpoints, opts->verify);
    }
    if (!savepoints->empty()) {
      std::printf("savepoints in %s:\n", SavepointsDir(state_dir).c_str());
      damaged += PrintEntries(*savepoints, opts->verify);
    }
    if (damaged > 0) {
      std::fprintf(stderr,
                   "streamrun: %d damaged; `run` skips a damaged checkpoint for an older one\n",
                   damaged);
      return 1;
    }
    return 0;
  };
}

}  // namespace streamrun::cli
