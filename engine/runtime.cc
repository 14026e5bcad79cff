// The runtime (see runtime.h): building a job's tasks, running their threads, and the Job API.
// Input loops are in input_loops.cc, status and summary in job_status.cc.
#include "engine/runtime.h"

#include <spdlog/spdlog.h>

#include <array>
#include <chrono>
#include <deque>
#include <filesystem>
#include <map>
#include <thread>

#include "engine/channel.h"
#include "engine/dead_letter.h"
#include "engine/exchange.h"
#include "engine/failpoint.h"
#include "engine/job_impl.h"
#include "engine/key.h"
#include "engine/metrics.h"
#include "engine/restore.h"
#include "engine/watermark.h"

namespace streamrun {

namespace {

// Batches per producer queue: bounds memory in flight. A consumer that reads a split file in
// chunk order takes one producer's chunk at a time; the others must be able to queue about a
// chunk's worth meanwhile, or the source subtasks run in lock-step (measured: 4 batches made
// parallelism 2 no faster than 1 on two cores).
constexpr size_t kQueueBatches = 16;
// A co-located guest's queues: its host runs it as soon as it can, so its input needs less room
// to absorb the hosts' drift; less in flight also stays in the cores' caches (measured: 8 and 4
// alike, ~6 % faster than 16 with eager turns).
constexpr size_t kGuestQueueBatches = 8;

// Counts the rows a node emits on its main output and, inside a chain, the rows and the
// watermark the next node receives (engine/metrics.h).
class CountingEmitter : public Emitter {
 public:
  CountingEmitter(Emitter* inner, NodeMetrics* from, NodeMetrics* to)
      : inner_(inner), from_(from), to_(to) {}
  Status Emit(BatchPtr batch) override {
    uint64_t n = batch->rows.size();
    from_->records_out.fetch_add(n, std::memory_order_relaxed);
    if (to_) {
      to_->records_in.fetch_add(n, std::memory_order_relaxed);
      to_->watermark.store(batch->watermark, std::memory_order_relaxed);
    }
    return inner_->Emit(std::move(batch));
  }

 private:
  Emitter* inner_;
  NodeMetrics* from_;
  NodeMetrics* to_;
};

}  // namespace

// A source task's part in checkpoints (engine/operator.h BarrierHook).
class TaskBarrierHook : public BarrierHook {
 public:
  TaskBarrierHook(Job::Impl* job, Job::Impl::Task* task) : job_(job), task_(task) {}
  uint64_t requested() const override { return job_->coordinator_->requested(); }
  uint64_t completed() const override { return job_->coordinator_->completed(); }
  Status Barrier(uint64_t checkpoint_id, std::string position) override {
    SR_FAILPOINT("checkpoint.before_barrier");
    return job_->PassBarrier(*task_, checkpoint_id, std::move(position));
  }

 private:
  Job::Impl* job_;
  Job::Impl::Task* task_;
};

// Co-location. A keyed step that reads a split file source in chunk order at the source's
// parallelism (PlanNode::colocated) gets no thread of its own: its subtask i (the guest) runs on
// the thread of source subtask i (the host). The host runs its chain; after each push to the
// guests' queues it lets its guest take every batch it can (the next ones in chunk order that
// are there), and when a push would wait (a full queue) or the source waits for another
// subtask's chunk (FileShared::WaitFor), it runs its guest instead. Only when neither can go on
// does the thread sleep, until a queue either of them waits for changes (ThreadSignal). Once the
// host has ended, the guest runs to its own end on the same thread.
//
// Compared with a thread per subtask this saves the context switches of four busy threads on
// two cores, and the rows a source subtask routes to its own guest are read on the core that
// made them, mostly while they are still in its cache.
//
// Why it cannot deadlock: the guest, run from the host, never waits for its input (it takes a
// batch only when the next one in chunk order is there), so the host's waits are the ones it
// had on a thread of its own. The guest's own pushes downstream wait as before; its consumers
// do not depend on the host except through the guests. A guest waiting for the next chunk of
// another source subtask is what it did on its own thread too: that subtask's thread either
// pushes it or runs its own guest, which frees the queue the first host waits on.
class GuestRunner : public CooperativeHost {
 public:
  GuestRunner(Job::Impl* job, Job::Impl::Task* host, Job::Impl::Task* guest)
      : job_(job), host_(host), guest_(guest) {}

  // Time on the thread, for `status`: while the host runs its own chain the guest is idle;
  // while the guest runs (or the thread waits) the host is backpressured: its consumer is what
  // holds it up.
  void Start() { BeginWait(&guest_->metrics.idle); }
  void Stop() { EndWait(&guest_->metrics.idle); }

  Status StepGuest(bool* progressed) override {
    EndWait(&guest_->metrics.idle);
    BeginWait(&host_->metrics.backpressured);
    // The guest's own pushes are plain ones, and its waits on them are its own backpressure.
    tls_host = nullptr;
    WaitTime* backpressure = tls_backpressure;
    tls_backpressure = &guest_->metrics.backpressured;
    Job::Impl::StepResult r = Job::Impl::StepResult::kWouldBlock;
    Status st = job_->StepInput(*guest_, /*block=*/false, &r);
    tls_backpressure = backpressure;
    tls_host = this;
    EndWait(&host_->metrics.backpressured);
    BeginWait(&guest_->metrics.idle);
    *progressed = r == Job::Impl::StepResult::kProgress;
    return st;
  }
  ThreadSignal& signal() override { return *host_->signal; }
  void Wait(uint64_t seen) override {
    ScopedWait backpressured(&host_->metrics.backpressured);
    host_->signal->WaitChanged(seen);
  }

 private:
  Job::Impl* job_;
  Job::Impl::Task* host_;
  Job::Impl::Task* guest_;
};

Status Job::Impl::PassBarrier(Task& t, uint64_t id, std::string position) {
  if (id <= t.last_barrier) return Status::Ok();
  // Tests of the restart strategy: a task fails (=error) or crashes as it passes a barrier.
  SR_FAILPOINT("task.fail");
  t.last_barrier = id;
  // The task processes nothing from here to the ack: that is the pause a checkpoint causes.
  BarrierTiming timing;
  const int64_t started = SteadyNowNs();
  if (t.align_started_ns != 0) timing.align_ns = started - t.align_started_ns;
  t.align_started_ns = 0;
  std::vector<SnapshotPart> parts;
  if (t.source) {
    SnapshotPart part;
    part.node = t.head;
    part.subtask = t.subtask;
    part.position = std::move(position);
    parts.push_back(std::move(part));
  }
  // In chain order: each operator's buffered output reaches the next before that one snapshots.
  size_t first_op = t.source ? 1 : 0;
  for (size_t i = 0; i < t.ops.size(); ++i) {
    SnapshotPart part;
    part.node = t.chain[first_op + i];
    part.subtask = t.subtask;
    const int64_t snap_start = SteadyNowNs();
    SR_RETURN_IF_ERROR(t.ops[i]->Snapshot(static_cast<int64_t>(id), &part.snapshot));
    timing.snapshot_ns += SteadyNowNs() - snap_start;
    if (!part.snapshot.empty()) parts.push_back(std::move(part));
  }
  SR_RETURN_IF_ERROR(t.errors->Flush());
  for (OutputEmitter* out : t.outputs) SR_RETURN_IF_ERROR(out->Barrier(id));
  for (auto& e : t.errors->emitters_) {
    if (e) SR_RETURN_IF_ERROR(e->Barrier(id));
  }
  timing.pause_ns = SteadyNowNs() - started;
  spdlog::debug(
      "checkpoint {}: {} #{} paused {} us at the barrier (snapshots {} us, alignment {} us)", id,
      plan_.nodes[t.head].spec->name, t.subtask, timing.pause_ns / 1000, timing.snapshot_ns / 1000,
      timing.align_ns / 1000);
  coordinator_->Ack(id, t.index, std::move(parts), timing);
  return Status::Ok();
}

Status Job::Impl::TaskErrors::Handle(uint16_t origin, uint64_t offset, std::string_view text,
                                     std::string_view where, std::string_view reason) {
  int node = job_->source_of_origin_[origin];
  const PlanNode& src = job_->plan_.nodes[node];
  const std::string& source = src.spec->name;
  switch (src.spec->config->on_error()) {
    case OnError::kFail: {
      std::string msg = "source '" + source + "'";
      if (!where.empty() && where != source) msg += ", step '" + std::string(where) + "'";
      msg += ", offset " + std::to_string(offset) + ": " + std::string(reason);
      return Status::DataError(msg);
    }
    case OnError::kDrop:
      job_->bad_records_[origin].fetch_add(1, std::memory_order_relaxed);
      return Status::Ok();
    case OnError::kDeadLetter:
      break;
  }
  job_->bad_records_[origin].fetch_add(1, std::memory_order_relaxed);
  if (origin >= emitters_.size() || !emitters_[origin]) return Status::Ok();  // nobody reads it
  BatchPtr& b = pending_[origin];
  if (!b) b = NewBatch(static_cast<uint32_t>(src.errors_layout.size()));
  std::string_view step = where == source ? std::string_view() : where;
  AppendDeadLetter(*b, src.errors_layout, {source, step, origin, offset, text, reason});
  if (b->full()) return emitters_[origin]->Emit(std::move(b));
  return Status::Ok();
}

std::unique_ptr<OutputEmitter> Job::Impl::MakeOutput(int node, int subtask, Port port,
                                                     uint32_t width) {
  const PlanNode& pn = plan_.nodes[node];
  const std::vector<int>& consumers = port == Port::kMain   ? pn.main_consumers
                                      : port == Port::kLate ? pn.late_consumers
                                                            : pn.errors_consumers;
  std::vector<Route> routes;
  bool ordered = false;
  for (int c : consumers) {
    const PlanNode& cn = plan_.nodes[c];
    for (size_t i = 0; i < cn.inputs.size(); ++i) {
      const PlanInput& in = cn.inputs[i];
      if (in.node != node || in.port != port) continue;
      Route r;
      r.kind = in.kind;
      r.max_parallelism = spec_.max_parallelism;
      // The key's slots in this producer's layout: a union's inputs differ from the consumer's.
      const Layout& layout = port == Port::kMain   ? pn.out_layout
                             : port == Port::kLate ? pn.late_layout
                                                   : pn.errors_layout;
      for (const FieldPath& path : cn.spec->config->key_fields()) {
        auto it = std::find(layout.begin(), layout.end(), path);
        r.key_slots.push_back(it == layout.end() ? -1 : static_cast<int>(it - layout.begin()));
      }
      int slot_base = node_tasks_[c][0]->input_slot_base[i];
      switch (in.kind) {
        case EdgeKind::kForward:
          r.gates = {node_tasks_[c][subtask]->gate.get()};
          r.my_slot = slot_base;
          break;
        case EdgeKind::kGather:
          r.gates = {node_tasks_[c][0]->gate.get()};
          r.my_slot = slot_base + subtask;
          break;
        case EdgeKind::kKeyed:
          for (Task* t : node_tasks_[c]) r.gates.push_back(t->gate.get());
          r.my_slot = slot_base + subtask;
          break;
      }
      r.cooperative = cn.colocated && in.kind == EdgeKind::kKeyed && port == Port::kMain;
      if (r.cooperative && r.gates.size() > 1) r.local = subtask;
      r.rows_only = !cn.needs_watermarks && !in.ordered;
      // Readers with row_watermarks take no chunk order, but batches held to the end of a
      // chunk are fuller (OutputEmitter::Send).
      ordered = ordered || in.ordered || in.row_watermarks;
      routes.push_back(std::move(r));
    }
  }
  return std::make_unique<OutputEmitter>(std::move(routes), width, ordered);
}

Status Job::Impl::Build() {
  if (!options_.state_dir.empty()) {
    CheckpointOptions co;
    co.state_dir = options_.state_dir;
    co.job_name = spec_.name;
    co.interval_ms = spec_.checkpoints.interval_ms;
    co.timeout_ms = spec_.checkpoints.timeout_ms;
    co.retain = spec_.checkpoints.retain;
    co.max_parallelism = spec_.max_parallelism;
    co.first_id = options_.first_checkpoint_id;
    std::vector<CheckpointNode> nodes;
    for (const PlanNode& pn : plan_.nodes) {
      CheckpointNode cn;
      cn.name = pn.spec->name;
      cn.role = pn.role;
      cn.type = pn.spec->type;
      cn.parallelism = pn.parallelism;
      cn.fingerprint = pn.spec->config->StateFingerprint();
      cn.schema_json = pn.spec->config->StateSchemaJson();
      nodes.push_back(std::move(cn));
    }
    // Tasks are counted below; the coordinator is created once they are known.
    checkpoint_nodes_ = std::move(nodes);
    checkpoint_options_ = std::move(co);
  }
  // Sources are numbered in plan order: their origin index.
  for (size_t n = 0; n < plan_.nodes.size(); ++n) {
    progress_.push_back(std::make_unique<SourceProgress>());
    metrics_.push_back(std::make_unique<NodeMetrics>());
    if (plan_.nodes[n].role == NodeRole::kSource) source_of_origin_.push_back(static_cast<int>(n));
  }
  if (source_of_origin_.size() > bad_records_.size()) {
    return Status::PipelineError("too many sources (at most 64)");
  }
  node_tasks_.resize(plan_.nodes.size());
  const RestoreData* restore = options_.restore;

  // Keyed state: every stateful subtask gets an equal share of state.cache, and a working store
  // under STATE_DIR/working, rebuilt from scratch (from the checkpoint restored, if any).
  int stateful_subtasks = 0;
  for (const PlanNode& pn : plan_.nodes) {
    if (!pn.spec->config->StateFingerprint().empty()) stateful_subtasks += pn.parallelism;
  }
  const uint64_t cache_share =
      stateful_subtasks > 0 ? spec_.state_cache_bytes / static_cast<uint64_t>(stateful_subtasks)
                            : 0;
  if (!options_.state_dir.empty()) {
    std::error_code ec;
    std::filesystem::remove_all(options_.state_dir + "/working", ec);
    if (ec) {
      return Status::IoError("cannot empty " + options_.state_dir + "/working: " + ec.message());
    }
  }

  // Tasks: one per subtask of every node that is not chained.
  for (size_t n = 0; n < plan_.nodes.size(); ++n) {
    const PlanNode& pn = plan_.nodes[n];
    if (pn.chained) {
      // Chained: runs in the task of its upstream's same subtask.
      int up = pn.inputs[0].node;
      for (int s = 0; s < pn.parallelism; ++s) {
        Task* t = node_tasks_[up][s];
        t->chain.push_back(static_cast<int>(n));
        node_tasks_[n].push_back(t);
      }
      continue;
    }
    for (int s = 0; s < pn.parallelism; ++s) {
      auto t = std::make_unique<Task>();
      t->index = static_cast<int>(tasks_.size());
      t->head = static_cast<int>(n);
      t->subtask = s;
      t->chain.push_back(static_cast<int>(n));
      node_tasks_[n].push_back(t.get());
      tasks_.push_back(std::move(t));
    }
  }

  if (!options_.state_dir.empty()) {
    coordinator_ = std::make_unique<CheckpointCoordinator>(std::move(checkpoint_options_),
                                                           std::move(checkpoint_nodes_),
                                                           static_cast<int>(tasks_.size()));
  }

  // Input gates of task heads, with a producer slot per upstream subtask (or per task, for
  // errors streams).
  for (auto& tp : tasks_) {
    Task& t = *tp;
    const PlanNode& pn = plan_.nodes[t.head];
    if (pn.role == NodeRole::kSource) continue;
    int slots = 0;
    for (size_t i = 0; i < pn.inputs.size(); ++i) {
      const PlanInput& in = pn.inputs[i];
      t.input_slot_base.push_back(slots);
      int n = in.kind == EdgeKind::kForward ? 1
              : in.port == Port::kErrors    ? static_cast<int>(tasks_.size())
                                            : plan_.nodes[in.node].parallelism;
      for (int k = 0; k < n; ++k) t.slot_input.push_back(static_cast<int>(i));
      slots += n;
    }
    t.gate = std::make_unique<InputGate>(slots, pn.colocated ? kGuestQueueBatches : kQueueBatches);
  }

  // Co-location: each guest's host, and the signals that wake the host (see GuestRunner).
  for (size_t n = 0; n < plan_.nodes.size(); ++n) {
    const PlanNode& pn = plan_.nodes[n];
    if (!pn.colocated) continue;
    const int up = pn.inputs[0].node;
    for (int s = 0; s < pn.parallelism; ++s) {
      Task* guest = node_tasks_[n][s];
      Task* host = node_tasks_[up][s];
      if (host->guest != nullptr || plan_.nodes[host->head].role != NodeRole::kSource) {
        return Status::RuntimeError("plan: cannot co-locate " + pn.spec->name);
      }
      host->guest = guest;
      guest->host = host;
      host->signal = std::make_unique<ThreadSignal>();
      // The host waits for its guest's input and for room in every guest's queue from it.
      guest->gate->SetConsumerSignal(host->signal.get());
      for (Task* g : node_tasks_[n]) {
        g->gate->SetProducerSignal(g->input_slot_base[0] + s, host->signal.get());
      }
    }
  }

  // Operators, contexts and emitters.
  for (size_t ti = 0; ti < tasks_.size(); ++ti) {
    Task& t = *tasks_[ti];
    t.errors = std::make_unique<TaskErrors>(this, &t);
    // Errors streams: this task may report bad records of any source.
    t.errors->emitters_.resize(source_of_origin_.size());
    t.errors->pending_.resize(source_of_origin_.size());
    for (size_t o = 0; o < source_of_origin_.size(); ++o) {
      int src = source_of_origin_[o];
      const auto& consumers = plan_.nodes[src].errors_consumers;
      // A task never feeds its own gate: it would wait for its own end.
      if (consumers.empty() ||
          std::find(consumers.begin(), consumers.end(), t.head) != consumers.end()) {
        continue;
      }
      auto out = MakeOutput(src, static_cast<int>(ti), Port::kErrors,
                            static_cast<uint32_t>(plan_.nodes[src].errors_layout.size()));
      t.errors->emitters_[o] = std::move(out);
    }

    // Create operators first, then wire emitters from the back of the chain.
    std::vector<Operator*> ops(t.chain.size(), nullptr);
    for (size_t c = 0; c < t.chain.size(); ++c) {
      const PlanNode& pn = plan_.nodes[t.chain[c]];
      if (pn.role == NodeRole::kSource) {
        SR_ASSIGN_OR_RETURN(t.source, pn.spec->config->CreateSource());
        continue;
      }
      SR_ASSIGN_OR_RETURN(auto op, pn.spec->config->CreateOperator());
      ops[c] = op.get();
      t.ops.push_back(std::move(op));
    }
    Emitter* next_in_chain = nullptr;
    for (size_t c = t.chain.size(); c-- > 0;) {
      int n = t.chain[c];
      const PlanNode& pn = plan_.nodes[n];
      // The main output: the next operator of the chain, or an exchange, or nothing.
      Emitter* main = next_in_chain;
      NodeMetrics* next_metrics = c + 1 < t.chain.size() ? metrics_[t.chain[c + 1]].get() : nullptr;
      if (main == nullptr) {
        if (pn.main_consumers.empty()) {
          t.emitters.push_back(std::make_unique<NullEmitter>());
          main = t.emitters.back().get();
        } else {
          auto out =
              MakeOutput(n, t.subtask, Port::kMain, static_cast<uint32_t>(pn.out_layout.size()));
          t.outputs.push_back(out.get());
          main = out.get();
          t.emitters.push_back(std::move(out));
        }
      }
      t.emitters.push_back(
          std::make_unique<CountingEmitter>(main, metrics_[n].get(), next_metrics));
      main = t.emitters.back().get();
      Emitter* late = nullptr;
      if (!pn.late_consumers.empty()) {
        auto out =
            MakeOutput(n, t.subtask, Port::kLate, static_cast<uint32_t>(pn.late_layout.size()));
        t.outputs.push_back(out.get());
        late = out.get();
        t.emitters.push_back(std::move(out));
      }
      if (pn.role == NodeRole::kSource) {
        SourceContext& sc = t.source_ctx;
        sc.name = pn.spec->name;
        sc.origin =
            static_cast<uint16_t>(std::find(source_of_origin_.begin(), source_of_origin_.end(), n) -
                                  source_of_origin_.begin());
        sc.subtask = t.subtask;
        sc.parallelism = pn.parallelism;
        sc.layout = pn.in_layout;
        sc.out = main;
        sc.errors = t.errors.get();
        sc.cancelled = &cancelled_;
        sc.progress = progress_[n].get();
        if (pn.parallelism > 1) {
          // One shared object for all subtasks of the split source.
          if (t.subtask == 0) shared_[n] = pn.spec->config->CreateShared(pn.parallelism);
          sc.shared = shared_[n];
        }
        sc.drain = &drain_;
        if (coordinator_) {
          t.barrier_hook = std::make_unique<TaskBarrierHook>(this, &t);
          sc.barriers = t.barrier_hook.get();
        }
        if (restore != nullptr) sc.restore_positions = restore->Positions(pn.spec->name);
        next_in_chain = nullptr;
        continue;
      }
      t.op_ctx.emplace_front();
      OperatorContext& oc = t.op_ctx.front();
      oc.name = pn.spec->name;
      oc.job = spec_.name;
      oc.subtask = t.subtask;
      oc.parallelism = pn.parallelism;
      oc.max_parallelism = spec_.max_parallelism;
      oc.input_layout = pn.in_layout;
      oc.output_layout = pn.out_layout;
      oc.main = main;
      oc.late = late;
      oc.errors = t.errors.get();
      oc.cancelled = &cancelled_;
      oc.row_watermarks = c == 0 && pn.inputs.size() == 1 && pn.inputs[0].row_watermarks;
      // Subtask s owns the key groups g with g * p / maxp == s (engine/key.h).
      const int maxp = spec_.max_parallelism, p = pn.parallelism;
      oc.first_key_group = (t.subtask * maxp + p - 1) / p;
      oc.last_key_group = ((t.subtask + 1) * maxp + p - 1) / p - 1;
      oc.checkpointing = !options_.state_dir.empty() && spec_.checkpoints.interval_ms > 0;
      oc.state_dir = options_.state_dir;
      if (!pn.spec->config->StateFingerprint().empty()) {
        oc.state_cache_bytes = std::max<uint64_t>(cache_share, 1);
        if (!options_.state_dir.empty()) {
          oc.working_dir =
              options_.state_dir + "/working/" + pn.spec->name + "-" + std::to_string(t.subtask);
        }
      }
      if (restore != nullptr) {
        t.restore_ctx.push_back(restore->Context(pn.spec->name, t.subtask, p));
        oc.restore = &t.restore_ctx.back();
      }
      SR_RETURN_IF_ERROR(ops[c]->Open(oc));
      if (coordinator_ && ops[c]->commits()) coordinator_->AddCommitter(ops[c]);
      t.emitters.push_back(std::make_unique<ChainEmitter>(ops[c]));
      next_in_chain = t.emitters.back().get();
    }
  }
  return Status::Ok();
}

void Job::Impl::Fail(const Status& st) {
  {
    MutexLock lock(&mu_);
    if (first_error_.ok()) first_error_ = st;
  }
  Cancel();
}

void Job::Impl::Cancel() {
  cancelled_.store(true);
  for (auto& t : tasks_) {
    if (t->gate) t->gate->Cancel();
  }
}

Status Job::Impl::RunTask(Task& t) {
  Status st = RunTaskBody(t);
  if (coordinator_) {
    std::vector<std::pair<int, int>> sources;
    std::vector<SnapshotPart> final_parts;
    if (st.ok()) {
      if (t.source) sources.emplace_back(t.head, t.subtask);
      // What the finished operators hold (a sink: everything committed) stays part of later
      // checkpoints of the job's other branches.
      size_t first_op = t.source ? 1 : 0;
      for (size_t i = 0; i < t.ops.size(); ++i) {
        SnapshotPart part;
        part.node = t.chain[first_op + i];
        part.subtask = t.subtask;
        // Only sinks: a finished step's state is empty, and it must not emit after its end.
        if (plan_.nodes[part.node].role != NodeRole::kSink) continue;
        if (!t.ops[i]->Snapshot(0, &part.snapshot).ok()) continue;
        part.snapshot.sync_paths.clear();
        if (!part.snapshot.empty()) final_parts.push_back(std::move(part));
      }
    }
    if (st.ok()) {
      coordinator_->TaskFinished(t.index, sources, std::move(final_parts));
    } else {
      coordinator_->TaskFailed(t.index);
    }
  }
  return st;
}

Status Job::Impl::RunTaskBody(Task& t) {
  Status st;
  if (t.source) {
    st = t.source->Run(t.source_ctx);
  } else {
    st = RunInputLoop(t);
  }
  if (!st.ok()) return st;
  // Every input ended: finish the chain in order (each Finish emits into the next operator).
  for (auto& op : t.ops) SR_RETURN_IF_ERROR(op->Finish());
  SR_RETURN_IF_ERROR(t.errors->Close());
  for (OutputEmitter* out : t.outputs) SR_RETURN_IF_ERROR(out->Close());
  return Status::Ok();
}

void Job::Impl::RunThread(Task* t) {
  t->metrics.started_ns.store(SteadyNowNs());
  tls_backpressure = &t->metrics.backpressured;
  Task* guest = t->guest;
  std::unique_ptr<GuestRunner> runner;
  if (guest != nullptr) {
    guest->metrics.started_ns.store(SteadyNowNs());
    runner = std::make_unique<GuestRunner>(this, t, guest);
    runner->Start();
    tls_host = runner.get();
  }
  Status st = RunTask(*t);
  tls_host = nullptr;
  if (runner) runner->Stop();
  TaskDone(t, st);
  if (guest == nullptr) return;
  // The host has ended (its End is in every guest's queue): the guest reads on to its own end.
  Status guest_st = Status::Cancelled();
  if (st.ok()) {
    tls_backpressure = &guest->metrics.backpressured;
    guest_st = RunTask(*guest);
  } else if (coordinator_) {
    coordinator_->TaskFailed(guest->index);
  }
  TaskDone(guest, guest_st);
}

void Job::Impl::TaskDone(Task* t, const Status& st) {
  if (!st.ok() && st.code() != Status::Code::kCancelled) Fail(st);
  if (!st.ok() && st.code() == Status::Code::kCancelled) Cancel();
  MutexLock lock(&mu_);
  t->status = st;
  --running_;
  done_cv_.SignalAll();
}

Status Job::Impl::Run() {
  {
    MutexLock lock(&mu_);
    running_ = static_cast<int>(tasks_.size());
  }
  if (coordinator_) coordinator_->Start();
  for (auto& tp : tasks_) {
    Task* t = tp.get();
    if (t->host == nullptr) t->thread = std::thread([this, t] { RunThread(t); });
  }
  {
    MutexLock lock(&mu_);
    while (running_ > 0) {
      done_cv_.WaitFor(&mu_, std::chrono::milliseconds(50));
      if (cancelled_.load() && running_ > 0) {
        lock.Unlock();
        Cancel();
        lock.Lock();
      }
    }
  }
  for (auto& t : tasks_) {
    if (t->thread.joinable()) t->thread.join();
  }
  if (coordinator_) coordinator_->Stop();
  MutexLock lock(&mu_);
  if (!first_error_.ok()) return first_error_;
  if (cancelled_.load()) return Status::Cancelled();
  return Status::Ok();
}

// ---------------------------------------------------------------------------------------------

Job::Job(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
Job::~Job() {
  if (impl_) {
    impl_->Cancel();
    for (auto& t : impl_->tasks_) {
      if (t->thread.joinable()) t->thread.join();
    }
  }
}

Result<std::unique_ptr<Job>> Job::Create(const PipelineSpec& spec, const RunOptions& options) {
  SR_ASSIGN_OR_RETURN(Plan plan, BuildPlan(spec, options.parallelism));
  auto impl = std::make_unique<Impl>(spec, std::move(plan), options);
  SR_RETURN_IF_ERROR(impl->Build());
  return std::unique_ptr<Job>(new Job(std::move(impl)));
}

Status Job::Run() { return impl_->Run(); }
void Job::Drain() { impl_->drain_.store(true); }
Result<std::string> Job::Savepoint(const std::string& parent_dir) {
  if (!impl_->coordinator_) return Status::RuntimeError("this job takes no savepoints");
  return impl_->coordinator_->Savepoint(parent_dir);
}
void Job::Cancel() { impl_->Cancel(); }
const Plan& Job::plan() const { return impl_->plan_; }

}  // namespace streamrun
