// CheckpointCoordinator: triggers checkpoints and savepoints, collects what every task hands
// over at its barrier, and writes the checkpoint beside the job.
//
// The protocol (Flink's asynchronous barrier snapshots, docs/architecture.md "Checkpoints"):
//  1. Trigger: the coordinator raises requested() to a new id N (every `interval`, or for a
//     savepoint). One checkpoint is in flight at a time.
//  2. Sources see it between batches, emit what precedes the barrier, and call
//     BarrierHook::Barrier with their position. The runtime snapshots the operators chained
//     after the source and sends a barrier batch on every output.
//  3. A task with several input queues waits for the barrier of every queue: it aligns
//     (exactly_once: it stops reading a queue whose barrier came until every queue's came) or
//     not (at_least_once: it reads on, so the records after an early barrier are in the
//     snapshot and read again after a recovery), snapshots its operators, forwards the
//     barrier, and calls Ack with the snapshots. The task only captures its state (a
//     stateful operator hands over a DeferredState: a view of its state, engine/operator.h);
//     encoding and writing it is left to the coordinator's thread, so processing goes on at
//     once. The time a task spends here is its pause
//     (BarrierTiming), kept for `status` (pause_stats) and logged at debug level.
//  4. When every task that was running has acked (or finished), the coordinator's thread writes
//     the state files (calling each DeferredState::WriteTo, concurrently with the tasks), fsyncs
//     the sinks' staged files, writes MANIFEST.json last
//     (engine/checkpoint_writer.h), applies `retain`, and tells every committing operator
//     (NotifyCheckpointComplete): sinks make the covered output visible.
//  A checkpoint whose acks do not all arrive within `timeout`, or whose writing fails (a full
//  disk), is aborted: its directory is removed, the job goes on, and the next one gets a new id.
//
// Manifest metadata (docs/state-format.md "Checkpoint metadata"):
//   {"job": NAME, "max_parallelism": 128,
//    "nodes": {NAME: {"role": "source"|"step"|"sink", "type": TYPE, "parallelism": P,
//                     "fingerprint": STR (stateful steps), "schema": OBJECT (stateful steps:
//                     names for `state dump`, NodeConfig::StateSchemaJson),
//                     "subtasks": [{"position": JSON (sources), "state": PATH (keyed state),
//                                   "meta": JSON (sinks)}, ...]}}}
//
// Thread safety: Ack, TaskFinished, requested() are called by task threads; Savepoint by the
// control thread; Start/Stop by the thread that runs the job. One mutex guards the coordinator's
// state; requested() and completed() read atomics, and committers are added before Start.
#pragma once

#include <atomic>
#include <cstdint>
#include <deque>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "engine/mutex.h"
#include "engine/operator.h"
#include "engine/status.h"

namespace streamrun {

struct CheckpointOptions {
  std::string state_dir;
  std::string job_name;
  int64_t interval_ms = 0;  // 0: savepoints only
  int64_t timeout_ms = 600000;
  int retain = 3;
  int max_parallelism = 128;
  int64_t first_id = 1;  // NextCheckpointId of the state directory
};

// A node of the job, as the manifest describes it.
struct CheckpointNode {
  std::string name;
  NodeRole role = NodeRole::kStep;
  std::string type;
  int parallelism = 1;
  std::string fingerprint;
  std::string schema_json;  // NodeConfig::StateSchemaJson, or empty
};

// How long a task stopped processing for one barrier (measured on the task's thread).
struct BarrierTiming {
  int64_t pause_ns = 0;     // PassBarrier: flush, the operators' Snapshot calls, barrier out, ack
  int64_t snapshot_ns = 0;  // of which in Operator::Snapshot
  int64_t align_ns = 0;     // several inputs: from the first barrier to the last
};

// Percentiles of the last pauses (BarrierTiming::pause_ns, one sample per task and barrier).
struct PauseStats {
  uint64_t count = 0;                          // samples ever taken
  int64_t p50_ns = 0, p99_ns = 0, max_ns = 0;  // over the last kPauseWindow samples
  int64_t last_max_ns = 0;                     // the longest pause of the newest checkpoint
};

// One operator subtask's part of a task's ack.
struct SnapshotPart {
  int node = 0;  // index into the coordinator's nodes
  int subtask = 0;
  OperatorSnapshot snapshot;
  std::string position;  // sources: the JSON position; empty otherwise
};

class CheckpointCoordinator {
 public:
  CheckpointCoordinator(CheckpointOptions options, std::vector<CheckpointNode> nodes, int tasks);
  ~CheckpointCoordinator();

  // Operators told of completed checkpoints, on the coordinator's thread.
  void AddCommitter(Operator* op);
  // Starts the coordinator's thread (periodic checkpoints when interval_ms > 0).
  void Start();
  // Stops the thread; a checkpoint in flight is aborted. Savepoint callers get an error.
  void Stop() LOCKS_EXCLUDED(mu_);

  // The newest checkpoint id requested (BarrierHook::requested).
  uint64_t requested() const { return requested_.load(std::memory_order_relaxed); }
  // The newest checkpoint completed (written, and its committers told); 0: none
  // (BarrierHook::completed).
  uint64_t completed() const { return completed_id_.load(std::memory_order_relaxed); }
  // Task `task` passed barrier `id` with these snapshots, pausing as `timing` says.
  void Ack(uint64_t id, int task, std::vector<SnapshotPart> parts, BarrierTiming timing = {})
      LOCKS_EXCLUDED(mu_);
  // Task `task` ended because all its input ended: checkpoints no longer wait for it. A
  // source's subtasks that ended are at "end" in every later checkpoint, and `final_parts`
  // (what its operators hold after finishing: a sink's committed length) are part of every
  // later checkpoint.
  void TaskFinished(int task, const std::vector<std::pair<int, int>>& source_subtasks,
                    std::vector<SnapshotPart> final_parts = {}) LOCKS_EXCLUDED(mu_);
  // Task `task` failed or was cancelled before its input ended: its state at later barriers is
  // unknown, so the checkpoint in flight is aborted and no other one is taken (a checkpoint
  // completed without the task's part would resume without its state or source position).
  void TaskFailed(int task) LOCKS_EXCLUDED(mu_);

  // Takes a savepoint into `parent_dir` (STATE_DIR/savepoints or --target) and returns its path
  // once complete. Blocks the caller.
  Result<std::string> Savepoint(const std::string& parent_dir) LOCKS_EXCLUDED(mu_);

  // For `status`: the last completed checkpoint (id, path, completion time), if any.
  struct Completed {
    int64_t id = 0;
    std::string path;
    int64_t completed_at_ms = 0;
    int64_t duration_ms = 0;
    uint64_t bytes = 0;
  };
  std::optional<Completed> last_completed() const LOCKS_EXCLUDED(mu_);
  uint64_t completed_count() const LOCKS_EXCLUDED(mu_);
  uint64_t failed_count() const LOCKS_EXCLUDED(mu_);
  PauseStats pause_stats() const LOCKS_EXCLUDED(mu_);
  // Samples pause_stats() keeps.
  static constexpr size_t kPauseWindow = 4096;

 private:
  struct Pending;
  struct SavepointRequest;
  void Loop() LOCKS_EXCLUDED(mu_);
  void TriggerLocked(std::unique_ptr<Pending> p) EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Both run on the coordinator's thread without mu_: `p` is no longer pending_.
  Status Write(Pending& p, std::string* path, uint64_t* bytes) LOCKS_EXCLUDED(mu_);
  std::string MetadataJson(const Pending& p) const LOCKS_EXCLUDED(mu_);

  const CheckpointOptions options_;
  const std::vector<CheckpointNode> nodes_;
  const int tasks_;
  std::atomic<uint64_t> requested_{0};
  std::atomic<uint64_t> completed_id_{0};

  mutable Mutex mu_;
  CondVar cv_;
  std::thread thread_;                 // not guarded: only the thread that runs the job uses it
  std::vector<Operator*> committers_;  // not guarded: set before Start
  bool stop_ GUARDED_BY(mu_) = false;
  bool task_failed_ GUARDED_BY(mu_) = false;  // no more checkpoints
  int64_t next_id_ GUARDED_BY(mu_);
  std::unique_ptr<Pending> pending_ GUARDED_BY(mu_);             // in flight
  std::vector<bool> finished_ GUARDED_BY(mu_);                   // per task
  std::vector<std::vector<bool>> source_ended_ GUARDED_BY(mu_);  // per node, per subtask
  std::vector<SnapshotPart> final_parts_ GUARDED_BY(mu_);        // of finished tasks
  std::deque<SavepointRequest*> savepoints_ GUARDED_BY(mu_);     // waiting to trigger
  std::optional<Completed> last_ GUARDED_BY(mu_);
  uint64_t completed_ GUARDED_BY(mu_) = 0;
  uint64_t failed_ GUARDED_BY(mu_) = 0;
  std::vector<int64_t> pauses_ GUARDED_BY(mu_);  // ring of kPauseWindow
  uint64_t pause_count_ GUARDED_BY(mu_) = 0;
  int64_t last_max_pause_ GUARDED_BY(mu_) = 0;
};

}  // namespace streamrun
