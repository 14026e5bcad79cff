// The interfaces between the runtime and the operators (sources, steps, sinks).
//
// Each node of a pipeline (a source, a step or a sink) is parsed into a NodeConfig by the factory
// registered for its type (operators/registry.h). The planner asks the NodeConfig which fields it
// reads, then creates one Operator (or SourceOperator) per parallel subtask.
//
// Threading: every subtask runs on one thread, and everything chained with it runs on that
// thread too. An Operator is created, opened, fed and finished on its subtask's thread, so it
// needs no locks. Emitter::Emit may block: that is backpressure.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "engine/batch.h"
#include "engine/keyed_state.h"
#include "engine/status.h"

namespace streamrun {

// Where one output of an operator goes: the next operator of its chain, or an exchange that
// routes batches to other threads.
class Emitter {
 public:
  virtual ~Emitter() = default;
  // Takes the batch. Blocks while the consumer's queue is full. Returns Cancelled when the job is
  // stopping, and the downstream operator's error when one in the chain failed.
  virtual Status Emit(BatchPtr batch) = 0;
};

// Takes records that could not be read or evaluated and treats them as their source's `on_error`
// says: fail (returns a DataError), drop (counts them), dead_letter (sends them, with the reason,
// to <source>.errors).
class ErrorReporter {
 public:
  virtual ~ErrorReporter() = default;
  // Row `row` of `batch` failed in `where` (a step or source name) for `reason`.
  virtual Status Report(const Batch& batch, size_t row, std::string_view where,
                        std::string_view reason) = 0;
  // Input of source `origin` at `offset` could not become a record at all.
  virtual Status ReportInput(uint16_t origin, uint64_t offset, std::string_view text,
                             std::string_view reason) = 0;
  // Sends what is buffered on. Called at the end of each input batch.
  virtual Status Flush() = 0;
};

// Keyed state captured at a barrier whose bytes are produced later, on the checkpoint
// coordinator's thread, while the operator goes on processing (so that a large state does not
// stall processing for the time it takes to encode it). The operator captures a consistent view
// cheaply in Snapshot (e.g. copy-on-write references, a read transaction) and hands it over in
// one of these; from then on it belongs to the coordinator.
//
// Thread safety: created on the operator's thread; WriteTo runs on the coordinator's thread,
// concurrently with the operator, so it may only read what the operator no longer changes. It
// must stay valid even if the operator is destroyed first.
class DeferredState {
 public:
  virtual ~DeferredState() = default;
  // Called once, as soon as the coordinator's thread gets it (before the other tasks of the
  // checkpoint may have acked): work that spares the operator some (e.g. copying ahead what its
  // next writes would copy). Optional.
  virtual void Prepare() {}
  // Writes the state file (engine/state_file.h) by passing its bytes, in order and in pieces,
  // to `write`. Called at most once, after Prepare; an aborted checkpoint destroys it without a
  // call.
  virtual Status WriteTo(const std::function<Status(std::string_view)>& write) = 0;
};

// What one operator subtask hands over at a checkpoint barrier (engine/checkpoint_coordinator.h).
struct OperatorSnapshot {
  // Keyed state as a state file (engine/state_file.h); empty: no keyed state.
  std::string state;
  // Or the keyed state, to be written later (see DeferredState). Shared only so that snapshot
  // parts stay copyable; the coordinator calls it once.
  std::shared_ptr<DeferredState> deferred_state;
  // Small per-subtask state as one JSON value, stored in the manifest's metadata (a sink's
  // commit state); empty: none.
  std::string meta;
  // Files outside the checkpoint directory that must be fsynced before the checkpoint counts as
  // complete (a sink's staged output).
  std::vector<std::string> sync_paths;

  bool has_state() const { return !state.empty() || deferred_state != nullptr; }
  bool empty() const { return !has_state() && meta.empty() && sync_paths.empty(); }
};

// What a restored operator starts from (OperatorContext::restore).
struct RestoreContext {
  int64_t checkpoint_id = 0;
  bool savepoint = false;
  // The step's keyed state, every key group (an operator keeps its own range:
  // OperatorContext::first_key_group..last_key_group); null when the checkpoint has none.
  const KeyedStateStore* state = nullptr;
  // This subtask's OperatorSnapshot::meta, or empty.
  std::string meta;
};

struct OperatorContext {
  std::string name;  // the step's or sink's name in the pipeline file
  std::string job;   // the pipeline's name
  int subtask = 0;   // 0 .. parallelism-1
  int parallelism = 1;
  int max_parallelism = 128;
  Layout input_layout;      // the layout of the batches Process receives
  Layout output_layout;     // the layout the main output must have
  Emitter* main = nullptr;  // the main output; never null (discards when nobody reads it)
  Emitter* late = nullptr;  // <step>.late, or null when nobody reads it
  ErrorReporter* errors = nullptr;
  const std::atomic<bool>* cancelled = nullptr;
  // The key groups this subtask owns (engine/key.h).
  int first_key_group = 0;
  int last_key_group = 127;
  // Checkpointing: the job takes checkpoints, so sinks stage their output and commit it when a
  // checkpoint completes. `state_dir` is the job's state directory.
  bool checkpointing = false;
  std::string state_dir;
  // Keyed state: the memory this subtask may keep it in (its share of `state.cache`; 0: no
  // limit), and the directory of its LMDB working store for what does not fit
  // (STATE_DIR/working/<step>-<subtask>, docs/state-format.md; empty: none, keep all in memory).
  // The runtime empties STATE_DIR/working when the job starts: the store is rebuilt, never
  // trusted (durability comes from checkpoints).
  uint64_t state_cache_bytes = 0;
  std::string working_dir;
  // Non-null when the job resumes from a checkpoint or savepoint: Open restores from it.
  const RestoreContext* restore = nullptr;
  // Each row's `wm` is the watermark of the row's own place in its source (PlanInput::
  // row_watermarks), which may be ahead of the operator's watermark (batch->watermark, the
  // minimum over its producers). Only order_free() steps get this.
  bool row_watermarks = false;
};

// A step or a sink. Its input is one logical stream: the runtime merges the inputs of a union
// and rewrites each row's `wm` to the operator's watermark (the minimum over its inputs) before
// Process sees it (except with OperatorContext::row_watermarks).
class Operator {
 public:
  virtual ~Operator() = default;
  // `ctx` outlives the operator.
  virtual Status Open(const OperatorContext& ctx) = 0;
  // One batch of input. Rows come in order; batch->watermark is the watermark after it.
  virtual Status Process(BatchPtr batch) = 0;
  // Every input has ended: the watermark is +infinity. Emit what is left.
  virtual Status Finish() = 0;
  // For bounded inputs and the progress line: records and bytes written (sinks).
  virtual uint64_t records_out() const { return 0; }

  // A checkpoint barrier reached the operator: every record before it has been processed.
  // Emit what is buffered (so it precedes the barrier downstream), then describe the state
  // into *out. Called on the operator's thread, between Process calls. The job processes
  // nothing until it returns: keep it short (capture, and hand the encoding over in a
  // DeferredState).
  virtual Status Snapshot(int64_t /*checkpoint_id*/, OperatorSnapshot* /*out*/) {
    return Status::Ok();
  }
  // Checkpoint `checkpoint_id` (and every earlier one) is complete: sinks commit what it covers.
  // Called on the checkpoint thread, concurrently with Process: operators that use it
  // synchronise themselves.
  virtual Status NotifyCheckpointComplete(int64_t /*checkpoint_id*/) { return Status::Ok(); }
  // True when NotifyCheckpointComplete does something (the runtime then calls it).
  virtual bool commits() const { return false; }
};

// Counters a source updates for the progress line and metrics. Written by one source thread,
// read by the progress thread.
struct SourceProgress {
  std::atomic<uint64_t> records{0};
  std::atomic<uint64_t> bytes{0};
  std::atomic<uint64_t> total_bytes{0};  // 0 when unknown (unbounded or follow)
  std::atomic<uint64_t> pauses{0};       // Kafka: times a subtask's partitions were paused
};

// How a source takes part in checkpoints (engine/checkpoint_coordinator.h). A source checks
// requested() between batches (one relaxed atomic load); when it exceeds the last barrier it
// sent, it emits everything before the barrier and calls Barrier with its position: the
// runtime then snapshots the operators chained after it and sends the barrier downstream.
class BarrierHook {
 public:
  virtual ~BarrierHook() = default;
  // The newest checkpoint id requested; 0: none yet.
  virtual uint64_t requested() const = 0;
  // `position`: a JSON value from which the source resumes (its subtask's part; "null" when
  // this subtask has nothing to say, like a split file's subtask that does not own the next
  // chunk).
  virtual Status Barrier(uint64_t checkpoint_id, std::string position) = 0;
  // The newest checkpoint known complete (NotifyCheckpointComplete for operators); 0: none yet.
  // A source whose input has a place for progress reports (a Kafka consumer group) reports the
  // positions it gave for that checkpoint there. One relaxed atomic load.
  virtual uint64_t completed() const { return 0; }
};

struct SourceContext {
  std::string name;
  uint16_t origin = 0;  // this source's index, stored in every row it makes
  int subtask = 0;
  int parallelism = 1;  // >1 only when the source's NodeConfig is splittable
  Layout layout;        // the fields to extract into slots, in slot order
  Emitter* out = nullptr;
  ErrorReporter* errors = nullptr;
  const std::atomic<bool>* cancelled = nullptr;
  SourceProgress* progress = nullptr;
  // Shared by the subtasks of one split source (NodeConfig::CreateShared), else null.
  std::shared_ptr<void> shared;
  // Null when the job takes no checkpoints.
  BarrierHook* barriers = nullptr;
  // Resuming: the JSON array of the positions every subtask of this source gave at the
  // restored checkpoint (BarrierHook::Barrier), whatever the parallelism then. Empty: start
  // from the beginning.
  std::string restore_positions;
  // Set by `stop --drain`: end the input now as if it had ended (return Ok).
  const std::atomic<bool>* drain = nullptr;
};

class SourceOperator {
 public:
  virtual ~SourceOperator() = default;
  // Reads until the input ends (returns Ok) or ctx.cancelled is set (returns Cancelled). Every
  // row carries its event time and the watermark before it (engine/watermark.h); every batch
  // carries the watermark after it.
  virtual Status Run(SourceContext& ctx) = 0;
};

enum class NodeRole : uint8_t { kSource, kStep, kSink };

// "source", "step" or "sink".
inline const char* NodeRoleName(NodeRole role) {
  switch (role) {
    case NodeRole::kSource:
      return "source";
    case NodeRole::kStep:
      return "step";
    case NodeRole::kSink:
      return "sink";
  }
  return "node";
}

// What a source does with input it cannot read, and the runtime with records an expression fails
// on: the `on_error` setting of the source they came from.
enum class OnError : uint8_t { kFail, kDrop, kDeadLetter };

// The validated configuration of one node. Immutable after loading; shared by its subtasks.
class NodeConfig {
 public:
  virtual ~NodeConfig() = default;

  // The fields this node reads from its input given the fields its consumers read from its
  // output (for sources: the fields it must extract, given its consumers' needs).
  virtual std::vector<FieldPath> InputFields(const std::vector<FieldPath>& output_fields) const {
    return output_fields;
  }
  // True when the node's input must be partitioned by key (a keyed exchange before it).
  virtual bool keyed() const { return false; }
  // The key fields, for keyed nodes.
  virtual std::vector<FieldPath> key_fields() const { return {}; }
  // How many subtasks this node may have: 1 for sinks and for sources that cannot be split.
  virtual int max_subtasks() const { return 1 << 20; }
  // Sources: true when the input ends by itself (a file without follow, a generator with a
  // count). A union of bounded inputs is read in event-time order (see engine/runtime.h).
  virtual bool bounded() const { return false; }
  // Side streams this node produces besides its main output ("late").
  virtual std::vector<std::string> side_outputs() const { return {}; }
  // False for sinks.
  virtual bool has_main_output() const { return true; }
  // True for stateless steps (filter, map) that follow their input's parallelism.
  virtual bool stateless() const { return false; }
  // True when the node's output records are its input records, transformed in place with the
  // same layout (filter): its output stream then carries its input's layout.
  virtual bool passes_layout_through() const { return false; }
  // Keyed steps: true when the step's results cannot depend on the order its records come in,
  // provided each record is judged late by its own watermark (a tumbling or sliding count with
  // no trigger and no allowed lateness). Such a step reads a split file's subtasks as their
  // batches come instead of in chunk order (PlanInput::row_watermarks).
  virtual bool order_free() const { return false; }

  // Steps and sinks: one operator per subtask.
  virtual Result<std::unique_ptr<Operator>> CreateOperator() const {
    return Status::RuntimeError("not a step or sink");
  }
  // Sources.
  virtual Result<std::unique_ptr<SourceOperator>> CreateSource() const {
    return Status::RuntimeError("not a source");
  }
  // Sources split over several subtasks whose records form one sequence (a file read in chunks):
  // consumers read the subtasks' batches in chunk order (Batch::seq). False for sources whose
  // subtasks read independent inputs (Kafka partitions).
  virtual bool split_in_sequence() const { return false; }
  // Sources split over several subtasks: state they share (created once per run).
  virtual std::shared_ptr<void> CreateShared(int /*parallelism*/) const { return nullptr; }
  // Sources: what to do with bad input (and with records that expressions fail on).
  virtual OnError on_error() const { return OnError::kFail; }
  // For `graph`: a short label of the node's settings ("where: x > 1").
  virtual std::string Describe() const { return ""; }
  // Steps with keyed state: what the state's meaning depends on (the window and the
  // aggregates), so that `savepoint check` can tell a changed step ("incompatible"). Empty for
  // stateless nodes.
  virtual std::string StateFingerprint() const { return ""; }
  // Steps with keyed state: the names that make the state readable to a person (a JSON object,
  // e.g. {"key_by": [...], "aggregates": [...]}), stored in checkpoints beside the fingerprint
  // for `streamrun state dump`. Not compared on restore: names may change. Empty: none.
  virtual std::string StateSchemaJson() const { return ""; }
};

}  // namespace streamrun
