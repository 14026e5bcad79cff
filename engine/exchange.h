// Exchanges: how batches leave a thread.
//
// An operator writes its output to an Emitter. Inside a task the Emitter is the next operator of
// the chain (ChainEmitter); at the edge of a task it is an OutputEmitter, which sends the stream
// to every consumer of it: one subtask (forward), the one subtask of a gathering consumer, or,
// for a keyed consumer, the subtask owning each row's key group (rows go by reference into one
// batch per consumer subtask, which pins the input batch, with their encoded key and its hash
// in Row::keyed; the co-located consumer's rows stay in the input batch's own row vector).
// Every batch that leaves carries the producer's watermark; keyed exchanges also tell every
// consumer subtask of a new watermark and, for consumers that read in chunk order, of the end
// of every chunk.
//
// Thread safety: an OutputEmitter belongs to its producer task's thread; it only calls
// InputGate::Push, which is thread-safe.
#pragma once

#include <string>
#include <vector>

#include "engine/batch.h"
#include "engine/channel.h"
#include "engine/operator.h"
#include "engine/plan.h"

namespace streamrun {

// An Emitter that hands batches to the next operator of the same thread.
class ChainEmitter : public Emitter {
 public:
  explicit ChainEmitter(Operator* next) : next_(next) {}
  Status Emit(BatchPtr batch) override { return next_->Process(std::move(batch)); }

 private:
  Operator* next_;
};

// Discards a stream nobody reads.
class NullEmitter : public Emitter {
 public:
  Status Emit(BatchPtr) override { return Status::Ok(); }
};

// A thread that hosts a co-located task (engine/runtime.cc "Co-location"): while one of its
// pushes to the co-located consumer's queues would wait, the thread runs that consumer instead.
class CooperativeHost {
 public:
  virtual ~CooperativeHost() = default;
  // Runs the guest for one batch if it can do so without waiting; *progressed says whether it
  // did. An error is the guest's: the job fails with it.
  virtual Status StepGuest(bool* progressed) = 0;
  // Wakes whenever a queue the host or its guest waits for changes.
  virtual ThreadSignal& signal() = 0;
  // Waits (counted as the host's backpressure and the guest's idle time) until signal() moves
  // on from generation `seen`.
  virtual void Wait(uint64_t seen) = 0;
};
// The current thread's host role while it runs a hosting task (null otherwise, and while the
// guest runs).
extern thread_local CooperativeHost* tls_host;

// One consumer of a stream leaving a task: where its batches go.
struct Route {
  EdgeKind kind = EdgeKind::kForward;
  // Forward and gather: the one target gate. Keyed: one gate per consumer subtask.
  std::vector<InputGate*> gates;
  int my_slot = 0;             // this producer's slot in the gates
  std::vector<int> key_slots;  // keyed: the key fields' slots
  int max_parallelism = 128;
  // Keyed, filled by OutputEmitter: the consumer subtask of each key group (SubtaskOfKeyGroup),
  // so that routing a row divides nothing (two divisions were a third of the exchange's time).
  std::vector<int> subtask_of_group;
  // Keyed: the batch being filled for each consumer subtask, and the watermark each was told.
  std::vector<BatchPtr> pending;
  std::vector<int64_t> sent_watermark;
  // The consumer is co-located with this producer: a push that would wait runs it instead.
  bool cooperative = false;
  // Keyed: the consumer subtask on this producer's thread (the co-located one), or -1. Its rows
  // stay in the input batch instead of being copied (OutputEmitter::Send).
  int local = -1;
  // The consumer reads no watermarks and no chunk ends (PlanNode::needs_watermarks, not
  // ordered): batches without rows are not sent to it (a window emits one per input batch).
  bool rows_only = false;
};

// Sends one stream of a task to every consumer of it, across threads.
class OutputEmitter : public Emitter {
 public:
  // `ordered`: some consumer reads in chunk order, so every chunk end is sent to every subtask.
  OutputEmitter(std::vector<Route> routes, uint32_t width, bool ordered);

  Status Emit(BatchPtr batch) override;
  // Ends the stream: every consumer subtask gets this producer's End.
  Status Close();
  // Sends checkpoint barrier `checkpoint_id` to every consumer subtask, after everything
  // emitted so far.
  Status Barrier(uint64_t checkpoint_id);

 private:
  Status Push(Route& r, size_t target, BatchPtr b);
  Status PushCooperatively(Route& r, size_t target, BatchPtr b, CooperativeHost* host);
  // Sends a keyed route's pending rows (batches not full yet).
  Status FlushPending(Route& r);
  Status Send(Route& r, BatchPtr batch);

  std::vector<Route> routes_;
  uint32_t width_;
  bool ordered_;
  std::string key_;  // scratch for key encoding
  // Scratch for keyed routes: each row's consumer subtask, and the rows of the input batch bound
  // for each consumer subtask, in order.
  std::vector<uint16_t> target_of_;
  std::vector<std::vector<uint32_t>> rows_of_;
};

// A deep copy of a batch (rows, bytes, watermark, chunk marks).
BatchPtr CopyBatch(const Batch& src);

// Brings the rows of `b` to a consumer's layout (see PlanInput::remap).
void ApplyRemap(Batch& b, const std::vector<int>& remap);

}  // namespace streamrun
