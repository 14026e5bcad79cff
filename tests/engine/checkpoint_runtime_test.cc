// Checkpoints through the runtime, in-process: a job takes checkpoints and savepoints while it
// runs, and a job restored from one (at the same or another parallelism) ends with the output
// of a run that was never interrupted.
#include <doctest/doctest.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <random>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "engine/checkpoint_coordinator.h"
#include "engine/restore.h"
#include "engine/runtime.h"
#include "engine/state_dir.h"
#include "tests/engine/temp_dir.h"

namespace streamrun {
namespace {

namespace fs = std::filesystem;

std::vector<std::string> SortedLines(const std::string& path) {
  std::ifstream in(path);
  std::vector<std::string> lines;
  for (std::string line; std::getline(in, line);) lines.push_back(line);
  std::sort(lines.begin(), lines.end());
  return lines;
}

// 200k click lines over 2000 users, 10% out of order.
void WriteInput(const std::string& path) {
  std::ofstream out(path);
  std::mt19937_64 rng(7);
  int64_t t = 1700000000000;
  for (int i = 0; i < 200000; ++i) {
    t += static_cast<int64_t>(rng() % 4);
    int64_t ts = rng() % 10 == 0 ? t - static_cast<int64_t>(rng() % 2000) : t;
    out << "{\"user\":\"u" << rng() % 2000 << "\",\"ts\":" << ts << ",\"v\":" << i % 7 << "}\n";
  }
}

std::string Pipeline(const TempDir& dir, const std::string& extra_source = "") {
  return "name: ck\n"
         "checkpoints: { interval: 20ms }\n"
         "sources:\n"
         "  in: { type: file, path: " +
         dir / "in.jsonl" +
         ", event_time: ts, watermark: "
         "{ max_out_of_orderness: 1s }" +
         extra_source +
         " }\n"
         "steps:\n"
         "  w: { type: window, from: in, key_by: [user], window: { type: tumbling, size: 10s },\n"
         "       aggregate: { n: count(), s: sum(v), d: count_distinct(v) } }\n"
         "sinks:\n"
         "  out: { type: file, from: w, path: " +
         dir / "out.jsonl" +
         " }\n"
         "  late: { type: file, from: w.late, path: " +
         dir / "late.jsonl" + " }\n";
}

PipelineSpec Load(const std::string& text, const TempDir& dir) {
  auto spec = LoadPipelineFromString(text, dir / "p.yaml", LoadOptions{});
  REQUIRE_MESSAGE(spec.ok(), spec.status().message());
  return std::move(*spec);
}

Status RunJob(const PipelineSpec& spec, RunOptions options) {
  auto job = Job::Create(spec, options);
  if (!job.ok()) return job.status();
  return (*job)->Run();
}

TEST_CASE(
    "checkpoints: a savepoint restored at parallelism 1 and 2 gives the uninterrupted output") {
  TempDir dir;
  WriteInput(dir / "in.jsonl");
  // The uninterrupted run (no state directory: no checkpoints).
  PipelineSpec plain = Load(Pipeline(dir), dir);
  REQUIRE(RunJob(plain, RunOptions{}).ok());
  auto expected_out = SortedLines(dir / "out.jsonl");
  auto expected_late = SortedLines(dir / "late.jsonl");
  REQUIRE(expected_out.size() > 1000);

  for (int restore_p : {1, 2}) {
    CAPTURE(restore_p);
    const std::string state = dir / ("state" + std::to_string(restore_p));
    // A slow run (rate-limited), stopped after a savepoint.
    PipelineSpec slow = Load(Pipeline(dir, ", rate: 400000"), dir);
    RunOptions first;
    first.state_dir = state;
    auto job = Job::Create(slow, first);
    REQUIRE(job.ok());
    Status run_status;
    std::thread runner([&] { run_status = (*job)->Run(); });
    std::this_thread::sleep_for(std::chrono::milliseconds(150));
    auto sp = (*job)->Savepoint(state + "/savepoints");
    (*job)->Cancel();
    runner.join();
    REQUIRE_MESSAGE(sp.ok(), sp.status().message());
    CHECK(run_status.code() == Status::Code::kCancelled);
    REQUIRE(VerifyCheckpoint(*sp).ok());
    // Not everything was read before the savepoint, or the test proves nothing.
    CHECK(SortedLines(dir / "out.jsonl").size() < expected_out.size());

    // Restore (full speed) at another parallelism.
    PipelineSpec fast = Load(Pipeline(dir), dir);
    auto restore = LoadRestore(*sp, fast, false);
    REQUIRE_MESSAGE(restore.ok(), restore.status().message());
    RunOptions second;
    second.state_dir = state;
    second.parallelism = restore_p;
    second.restore = restore->get();
    auto next = NextCheckpointId(state);
    REQUIRE(next.ok());
    second.first_checkpoint_id = *next;
    Status st = RunJob(fast, second);
    REQUIRE_MESSAGE(st.ok(), st.message());
    CHECK(SortedLines(dir / "out.jsonl") == expected_out);
    CHECK(SortedLines(dir / "late.jsonl") == expected_late);
  }
}

TEST_CASE("checkpoints: periodic checkpoints complete while the job runs and carry positions") {
  TempDir dir;
  WriteInput(dir / "in.jsonl");
  PipelineSpec spec = Load(Pipeline(dir, ", rate: 500000"), dir);
  RunOptions options;
  options.state_dir = dir / "state";
  auto job = Job::Create(spec, options);
  REQUIRE(job.ok());
  Status run_status;
  std::thread runner([&] { run_status = (*job)->Run(); });
  std::this_thread::sleep_for(std::chrono::milliseconds(200));
  (*job)->Cancel();
  runner.join();
  auto latest = LatestCompleteCheckpoint(dir / "state");
  REQUIRE(latest.ok());
  REQUIRE(latest->checkpoint.has_value());
  auto info = ReadSnapshotInfo(latest->checkpoint->path);
  REQUIRE(info.ok());
  const SnapshotNode* in = info->Find("in");
  REQUIRE(in != nullptr);
  REQUIRE(in->positions.size() == 1);
  INFO(in->positions[0] << " at " << latest->checkpoint->path);
  CHECK(in->positions[0].find("\"offset\":") != std::string::npos);
  const SnapshotNode* w = info->Find("w");
  REQUIRE(w != nullptr);
  CHECK(w->fingerprint.find("tumbling=10000") != std::string::npos);
  const SnapshotNode* out = info->Find("out");
  REQUIRE(out != nullptr);
  CHECK(out->metas[0].find("\"committed\":") != std::string::npos);
  // The job writes state files only for subtasks with open windows; this one has some.
  CHECK(w->state_files.size() == 1);
}

TEST_CASE("restore: savepoint check verdicts") {
  TempDir dir;
  WriteInput(dir / "in.jsonl");
  PipelineSpec spec = Load(Pipeline(dir, ", rate: 500000"), dir);
  RunOptions options;
  options.state_dir = dir / "state";
  auto job = Job::Create(spec, options);
  REQUIRE(job.ok());
  std::thread runner([&] { (void)(*job)->Run(); });
  std::this_thread::sleep_for(std::chrono::milliseconds(100));
  auto sp = (*job)->Savepoint(dir / "sp");
  (*job)->Cancel();
  runner.join();
  REQUIRE(sp.ok());
  auto info = ReadSnapshotInfo(*sp);
  REQUIRE(info.ok());

  auto verdict = [&](const std::string& text, const std::string& node) {
    PipelineSpec s = Load(text, dir);
    for (const NodeCheck& c : CheckSnapshot(*info, s)) {
      if (c.name == node) return std::string(VerdictName(c.verdict));
    }
    return std::string("absent");
  };
  std::string same = Pipeline(dir);
  CHECK(verdict(same, "w") == "restored");
  CHECK(verdict(same, "in") == "restored");
  CHECK(verdict(same, "out") == "restored");
  std::string changed = same;
  changed.replace(changed.find("s: sum(v)"), 9, "s: max(v)");
  CHECK(verdict(changed, "w") == "incompatible");
  std::string renamed = same;
  renamed.replace(renamed.find("  w: {"), 6, "  w2: {");
  renamed.replace(renamed.find("from: w,"), 8, "from: w2,");
  renamed.replace(renamed.find("from: w.late"), 12, "from: w2.late");
  CHECK(verdict(renamed, "w") == "dropped");
  CHECK(verdict(renamed, "w2") == "new");
  PipelineSpec renamed_spec = Load(renamed, dir);
  auto refused = LoadRestore(*sp, renamed_spec, false);
  CHECK(!refused.ok());
  CHECK(refused.status().message().find("--allow-non-restored-state") != std::string::npos);
  CHECK(LoadRestore(*sp, renamed_spec, true).ok());
}

}  // namespace
}  // namespace streamrun
