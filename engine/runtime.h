// The runtime: runs a Plan as threads joined by bounded queues.
//
// One thread per task: a source subtask, or a step or sink subtask that is not chained, together
// with everything chained after it. Between tasks, batches travel through InputGates (bounded:
// a slow consumer blocks its producers, up to the sources). Watermarks travel in-band (Row::wm
// and Batch::watermark); a task with several inputs merges them as the minimum. When every input
// of a task has ended, its operators finish (all windows fire) and it ends its outputs.
//
// Thread safety: Job::Run blocks the calling thread until the job ends. progress() and Cancel()
// may be called from any other thread while it runs.
#pragma once

#include <atomic>
#include <memory>
#include <string>
#include <vector>

#include "engine/operator.h"
#include "engine/pipeline.h"
#include "engine/plan.h"
#include "engine/status.h"

namespace streamrun {

struct RestoreData;  // engine/restore.h

struct RunOptions {
  int parallelism = 0;  // > 0 overrides the pipeline's
  // Checkpoints and savepoints (engine/checkpoint_coordinator.h): on when `state_dir` is set
  // (savepoints), periodic when the pipeline's checkpoints.interval is > 0.
  std::string state_dir;
  int64_t first_checkpoint_id = 1;
  // Resume from this checkpoint or savepoint (engine/restore.h); null: start empty.
  const RestoreData* restore = nullptr;
};

// What a finished run did, for the summary line.
struct RunSummary {
  struct Source {
    std::string name;
    uint64_t records = 0;
    uint64_t bad = 0;  // records sent to <source>.errors or dropped (on_error)
  };
  struct Sink {
    std::string name;
    uint64_t records = 0;
  };
  std::vector<Source> sources;
  std::vector<Sink> sinks;
  uint64_t late = 0;  // records no window took
};

class Job {
 public:
  // REQUIRES: `spec` outlives the job.
  static Result<std::unique_ptr<Job>> Create(const PipelineSpec& spec, const RunOptions& options);
  ~Job();

  // Runs to the end: Ok when every input ended and everything was written, Cancelled after
  // Cancel(), the first error otherwise.
  Status Run();
  // Stops the job soon: sources stop reading, queues are abandoned. Safe from a signal-handling
  // thread (not from a signal handler itself).
  void Cancel();

  const Plan& plan() const;
  // The progress counters of every source (name, counters), for the progress line.
  std::vector<std::pair<std::string, const SourceProgress*>> progress() const;
  RunSummary summary() const;
  // The live metrics of every node as one line of JSON, for `streamrun status`:
  // {"job", "uptime_ms", "nodes": [{"name", "type", "role", "parallelism", "records_in",
  //  "records_out", "watermark" (null before the first), "queue_fill" (0..1, fullest input
  //  queue), "busy", "idle", "backpressured" (shares of its threads' time, 0..1)}]}
  std::string StatusJson() const;

  // Takes a savepoint into `parent_dir` and returns its path once complete (blocks the caller).
  // Fails when the job takes no checkpoints (RunOptions::state_dir empty) or ends first.
  Result<std::string> Savepoint(const std::string& parent_dir);
  // `stop --drain`: every source ends its input now, so all windows fire, sinks commit, and Run
  // returns Ok.
  void Drain();

  class Impl;

 private:
  explicit Job(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace streamrun
