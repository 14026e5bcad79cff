// Job::Impl: the inside of a running job, shared by the files of the runtime (runtime.cc builds
// and runs it, input_loops.cc reads task inputs, job_status.cc reports on it). Not for use
// outside engine/runtime*.
//
// Thread safety: built on the calling thread before Run; then every Task belongs to its own
// thread, the metrics are atomics, and mu_ guards what the threads share (running_,
// first_error_, and each Task's status).
#pragma once

#include <array>
#include <atomic>
#include <deque>
#include <map>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "engine/channel.h"
#include "engine/checkpoint_coordinator.h"
#include "engine/exchange.h"
#include "engine/metrics.h"
#include "engine/mutex.h"
#include "engine/runtime.h"
#include "engine/watermark.h"

namespace streamrun {

class Job::Impl {
 public:
  struct Task;

  // Routes of bad records to <source>.errors, per task.
  class TaskErrors : public ErrorReporter {
   public:
    TaskErrors(Impl* job, Task* task) : job_(job), task_(task) {}

    Status Report(const Batch& batch, size_t row, std::string_view where,
                  std::string_view reason) override {
      const Row& r = batch.rows[row];
      return Handle(r.origin, r.offset, r.raw, where, reason);
    }
    Status ReportInput(uint16_t origin, uint64_t offset, std::string_view text,
                       std::string_view reason) override {
      return Handle(origin, offset, text, "", reason);
    }
    Status Flush() override {
      for (size_t o = 0; o < pending_.size(); ++o) {
        if (pending_[o] && !pending_[o]->rows.empty()) {
          SR_RETURN_IF_ERROR(emitters_[o]->Emit(std::move(pending_[o])));
        }
      }
      return Status::Ok();
    }
    // Ends every errors stream this task feeds.
    Status Close() {
      SR_RETURN_IF_ERROR(Flush());
      for (auto& e : emitters_) {
        if (e) SR_RETURN_IF_ERROR(e->Close());
      }
      return Status::Ok();
    }

    std::vector<std::unique_ptr<OutputEmitter>> emitters_;  // per source (origin), or null
    std::vector<BatchPtr> pending_;

   private:
    Status Handle(uint16_t origin, uint64_t offset, std::string_view text, std::string_view where,
                  std::string_view reason);
    Impl* job_;
    Task* task_;
  };

  // Checkpoint barriers from a task's producers. The task snapshots once every live producer's
  // barrier came, so the snapshot holds every record each producer sent before its barrier. A
  // barrier newer than the one being aligned abandons it (that checkpoint was aborted or a
  // source skipped it); older ones are stale and ignored. Whether a producer at the barrier is
  // read on meanwhile (skip()) is the caller's choice: exactly_once does not.
  struct BarrierAlignment {
    std::vector<bool> at_barrier;  // per producer slot
    int at_barrier_count = 0;
    uint64_t aligning = 0;  // the checkpoint being aligned; 0: none

    void Start(int slots) { at_barrier.assign(static_cast<size_t>(slots), false); }
    // The producers not to read while a barrier is aligned (null: none).
    const std::vector<bool>* skip() const { return aligning != 0 ? &at_barrier : nullptr; }
    // Barrier `id` came from `slot`; `live` producers have not ended. Returns the checkpoint to
    // pass on now (every live producer's barrier came), else 0. A new alignment sets
    // *align_started_ns.
    uint64_t OnBarrier(int slot, uint64_t id, uint64_t last_passed, int live,
                       int64_t* align_started_ns);
    // Producer `slot` ended; `live` producers are left. Returns the checkpoint to pass on now
    // (the one being aligned waited only for it), else 0.
    uint64_t OnEnd(int slot, int live);

   private:
    uint64_t Finish();
  };

  // Where a task reading one input of a split file is (StepOrderedInput, StepRowWatermarkInput).
  struct SteppedInput {
    bool started = false;
    std::vector<bool> ended;  // per producer slot
    int live = 0;
    uint64_t next_seq = 0;            // in chunk order: the chunk to read next
    std::vector<const Batch*> heads;  // in chunk order: scratch for InputGate::PeekAll
    // With row watermarks: the minimum over the producers' watermarks, and the barriers.
    WatermarkMerger merger{1};
    BarrierAlignment barriers;
    void Start(int slots) {
      if (started) return;
      started = true;
      ended.assign(slots, false);
      live = slots;
      merger = WatermarkMerger(static_cast<size_t>(slots));
      barriers.Start(slots);
    }
  };
  enum class StepResult { kProgress, kWouldBlock, kDone };

  struct Task {
    int index = 0;  // in tasks_
    int head = -1;  // plan node
    int subtask = 0;
    std::vector<int> chain;  // plan nodes run by this task, head first
    std::unique_ptr<SourceOperator> source;
    SourceContext source_ctx;
    std::vector<std::unique_ptr<Operator>> ops;  // chain[1..] (or chain[0..] without source)
    std::deque<OperatorContext> op_ctx;
    std::vector<std::unique_ptr<Emitter>> emitters;
    std::vector<OutputEmitter*> outputs;  // the streams that leave this task
    std::unique_ptr<TaskErrors> errors;
    std::unique_ptr<InputGate> gate;
    TaskMetrics metrics;
    // Per producer slot of the gate: which input (index into the head's plan inputs).
    std::vector<int> slot_input;
    std::vector<int> input_slot_base;
    std::thread thread;
    // How the task ended, set under Impl::mu_ (TaskDone). Not GUARDED_BY: the analysis cannot
    // name the enclosing Impl's mutex from here.
    Status status;
    // Checkpoints: the source's hook, and the restore contexts of the chained operators.
    std::unique_ptr<BarrierHook> barrier_hook;
    std::deque<RestoreContext> restore_ctx;
    uint64_t last_barrier = 0;     // the newest barrier this task passed on
    int64_t align_started_ns = 0;  // several inputs: when the first barrier came; 0: none
    SteppedInput stepped;
    // Co-location (PlanNode::colocated): the guest task runs on its host's thread, in turns
    // with it (see runtime.cc). `signal` (hosts only) wakes the host.
    Task* host = nullptr;
    Task* guest = nullptr;
    std::unique_ptr<ThreadSignal> signal;
  };

  Impl(const PipelineSpec& spec, Plan plan, RunOptions options)
      : spec_(spec), plan_(std::move(plan)), options_(std::move(options)) {}
  // The coordinator stops (dropping a checkpoint in flight, whose deferred state may refer to
  // operators' stores) before the tasks and their operators go.
  ~Impl() {
    if (coordinator_) coordinator_->Stop();
  }

  Status Build();
  Status Run() LOCKS_EXCLUDED(mu_);
  void Cancel();

  const PipelineSpec& spec_;
  Plan plan_;
  RunOptions options_;
  std::unique_ptr<CheckpointCoordinator> coordinator_;  // null: no checkpoints
  std::atomic<bool> drain_{false};
  // Build's scratch until the tasks are counted.
  CheckpointOptions checkpoint_options_;
  std::vector<CheckpointNode> checkpoint_nodes_;
  std::vector<std::unique_ptr<Task>> tasks_;
  // For every plan node, its task per subtask.
  std::vector<std::vector<Task*>> node_tasks_;
  std::vector<std::unique_ptr<SourceProgress>> progress_;  // per source node
  std::vector<std::unique_ptr<NodeMetrics>> metrics_;      // per node
  std::vector<int> source_of_origin_;                      // origin -> plan node
  std::array<std::atomic<uint64_t>, 64> bad_records_{};    // per origin
  std::atomic<uint64_t> late_{0};
  std::atomic<bool> cancelled_{false};
  std::map<int, std::shared_ptr<void>> shared_;  // split sources: state shared by subtasks
  Mutex mu_;
  CondVar done_cv_;
  int running_ GUARDED_BY(mu_) = 0;
  Status first_error_ GUARDED_BY(mu_);

 private:
  Status RunTask(Task& t);
  Status RunTaskBody(Task& t);
  Status RunInputLoop(Task& t);
  Status RunTimeMergeLoop(Task& t);
  // A task with one input from a split file reads it a batch per step, so that a co-located
  // host can run it between its own pushes (block = false: return kWouldBlock instead of
  // waiting; engine/runtime.cc "Co-location"). StepInput picks the way: in chunk order, or as
  // batches come with row watermarks (PlanInput).
  Status StepInput(Task& t, bool block, StepResult* result);
  Status StepOrderedInput(Task& t, bool block, StepResult* result);
  Status StepRowWatermarkInput(Task& t, bool block, StepResult* result);
  Status ProcessStepped(Task& t, BatchPtr b);
  // Runs task `t` and, when it hosts a guest, the guest after it, on the calling thread.
  void RunThread(Task* t);
  void TaskDone(Task* t, const Status& st) LOCKS_EXCLUDED(mu_);
  // Checkpoint barrier `id` passed task `t` (after alignment): snapshot its operators, send the
  // barrier on, ack. `position`: the source's, for source tasks. Does nothing for an id at or
  // below the last one passed, 0 (BarrierAlignment's "none") included.
  Status PassBarrier(Task& t, uint64_t id, std::string position);
  friend class TaskBarrierHook;
  friend class GuestRunner;
  Operator* HeadOperator(Task& t) { return t.ops.empty() ? nullptr : t.ops.front().get(); }
  std::unique_ptr<OutputEmitter> MakeOutput(int node, int subtask, Port port, uint32_t width);
  void Fail(const Status& st) LOCKS_EXCLUDED(mu_);
};

}  // namespace streamrun
