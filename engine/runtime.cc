// The runtime (see runtime.h).
#include "engine/runtime.h"

#include <array>
#include <chrono>
#include <condition_variable>
#include <deque>
#include <map>
#include <mutex>
#include <thread>

#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>
#include <spdlog/spdlog.h>

#include "engine/channel.h"
#include "engine/dead_letter.h"
#include "engine/exchange.h"
#include "engine/key.h"
#include "engine/metrics.h"
#include "engine/watermark.h"

namespace streamrun {

namespace {

// Batches per producer queue: bounds memory in flight. A consumer that reads a split file in
// chunk order takes one producer's chunk at a time; the others must be able to queue about a
// chunk's worth meanwhile, or the source subtasks run in lock-step (measured: 4 batches made
// parallelism 2 no faster than 1 on two cores).
constexpr size_t kQueueBatches = 16;

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

// ---------------------------------------------------------------------------------------------

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

  struct Task {
    int index = 0;     // in tasks_
    int head = -1;     // plan node
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
    Status status;
  };

  Impl(const PipelineSpec& spec, Plan plan) : spec_(spec), plan_(std::move(plan)) {}

  Status Build();
  Status Run();
  void Cancel();

  const PipelineSpec& spec_;
  Plan plan_;
  std::vector<std::unique_ptr<Task>> tasks_;
  // For every plan node, its task per subtask.
  std::vector<std::vector<Task*>> node_tasks_;
  std::vector<std::unique_ptr<SourceProgress>> progress_;  // per source node
  std::vector<std::unique_ptr<NodeMetrics>> metrics_;      // per node
  std::vector<int> source_of_origin_;                      // origin -> plan node
  std::array<std::atomic<uint64_t>, 64> bad_records_{};     // per origin
  std::atomic<uint64_t> late_{0};
  std::atomic<bool> cancelled_{false};
  std::map<int, std::shared_ptr<void>> shared_;  // split sources: state shared by subtasks
  std::mutex mu_;
  std::condition_variable done_cv_;
  int running_ = 0;        // guarded by mu_
  Status first_error_;     // guarded by mu_

 private:
  Status RunTask(Task& t);
  Status RunInputLoop(Task& t);
  Status RunTimeMergeLoop(Task& t);
  Operator* HeadOperator(Task& t) { return t.ops.empty() ? nullptr : t.ops.front().get(); }
  std::unique_ptr<OutputEmitter> MakeOutput(int node, int subtask, Port port, uint32_t width);
  void Fail(const Status& st);
};

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
      const Layout& layout = port == Port::kMain ? pn.out_layout
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
      ordered = ordered || in.ordered;
      routes.push_back(std::move(r));
    }
  }
  return std::make_unique<OutputEmitter>(std::move(routes), width, ordered);
}

Status Job::Impl::Build() {
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
              : in.port == Port::kErrors   ? static_cast<int>(tasks_.size())
                                           : plan_.nodes[in.node].parallelism;
      for (int k = 0; k < n; ++k) t.slot_input.push_back(static_cast<int>(i));
      slots += n;
    }
    t.gate = std::make_unique<InputGate>(slots, kQueueBatches);
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
          auto out = MakeOutput(n, t.subtask, Port::kMain, static_cast<uint32_t>(pn.out_layout.size()));
          t.outputs.push_back(out.get());
          main = out.get();
          t.emitters.push_back(std::move(out));
        }
      }
      t.emitters.push_back(std::make_unique<CountingEmitter>(main, metrics_[n].get(), next_metrics));
      main = t.emitters.back().get();
      Emitter* late = nullptr;
      if (!pn.late_consumers.empty()) {
        auto out = MakeOutput(n, t.subtask, Port::kLate, static_cast<uint32_t>(pn.late_layout.size()));
        t.outputs.push_back(out.get());
        late = out.get();
        t.emitters.push_back(std::move(out));
      }
      if (pn.role == NodeRole::kSource) {
        SourceContext& sc = t.source_ctx;
        sc.name = pn.spec->name;
        sc.origin = static_cast<uint16_t>(
            std::find(source_of_origin_.begin(), source_of_origin_.end(), n) - source_of_origin_.begin());
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
        next_in_chain = nullptr;
        continue;
      }
      t.op_ctx.emplace_front();
      OperatorContext& oc = t.op_ctx.front();
      oc.name = pn.spec->name;
      oc.subtask = t.subtask;
      oc.parallelism = pn.parallelism;
      oc.max_parallelism = spec_.max_parallelism;
      oc.input_layout = pn.in_layout;
      oc.output_layout = pn.out_layout;
      oc.main = main;
      oc.late = late;
      oc.errors = t.errors.get();
      oc.cancelled = &cancelled_;
      SR_RETURN_IF_ERROR(ops[c]->Open(oc));
      t.emitters.push_back(std::make_unique<ChainEmitter>(ops[c]));
      next_in_chain = t.emitters.back().get();
    }
  }
  return Status::Ok();
}

void Job::Impl::Fail(const Status& st) {
  {
    std::lock_guard<std::mutex> lock(mu_);
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

Status Job::Impl::RunInputLoop(Task& t) {
  const PlanNode& pn = plan_.nodes[t.head];
  if (pn.time_merge) return RunTimeMergeLoop(t);
  Operator* head = HeadOperator(t);
  const int slots = t.gate->producers();
  std::vector<bool> ended(slots, false);
  int live = slots;

  // Watermark inputs: an ordered input is one; otherwise every producer slot is one. Errors
  // streams do not hold back the watermark.
  std::vector<int> slot_wm(slots, -1);
  int wm_inputs = 0;
  for (size_t i = 0; i < pn.inputs.size(); ++i) {
    const PlanInput& in = pn.inputs[i];
    int first = t.input_slot_base[i];
    int n = (i + 1 < pn.inputs.size() ? t.input_slot_base[i + 1] : slots) - first;
    if (in.port == Port::kErrors) {
      // This task's own slot never gets anything (see Build).
      ended[first + t.index] = true;
      --live;
      continue;
    }
    if (in.ordered) {
      for (int k = 0; k < n; ++k) slot_wm[first + k] = wm_inputs;
      ++wm_inputs;
    } else {
      for (int k = 0; k < n; ++k) slot_wm[first + k] = wm_inputs++;
    }
  }
  WatermarkMerger merger(std::max(wm_inputs, 1));
  int64_t merged = kMinTimestamp;

  const bool ordered = pn.inputs.size() == 1 && pn.inputs[0].ordered;
  uint64_t next_seq = 0;

  while (live > 0) {
    int slot = 0;
    BatchPtr b;
    if (ordered) {
      slot = static_cast<int>(next_seq % static_cast<uint64_t>(slots));
      if (ended[slot]) {
        // The producer of the next chunk has ended: there are no more chunks. Collect the
        // others' ends.
        for (int s = 0; s < slots && live > 0; ++s) {
          if (ended[s]) continue;
          BatchPtr e = t.gate->PopFrom(s);
          if (!e) return Status::Cancelled();
          if (e->kind != Batch::Kind::kEnd) {
            return Status::RuntimeError("runtime: chunk " + std::to_string(e->seq) +
                                        " arrived after the end of its source");
          }
          ended[s] = true;
          --live;
        }
        break;
      }
      ScopedTimer idle(&t.metrics.idle_ns);
      b = t.gate->PopFrom(slot);
    } else {
      ScopedTimer idle(&t.metrics.idle_ns);
      b = t.gate->PopAny(&slot);
    }
    if (!b) return Status::Cancelled();

    if (b->kind == Batch::Kind::kEnd) {
      ended[slot] = true;
      --live;
      if (slot_wm[slot] >= 0 && !ordered) {
        int64_t m = merger.Advance(slot_wm[slot], kMaxTimestamp);
        if (m > merged && live > 0) {
          merged = m;
          BatchPtr tick = NewBatch(static_cast<uint32_t>(pn.in_layout.size()));
          tick->watermark = merged;
          SR_RETURN_IF_ERROR(head->Process(std::move(tick)));
        }
      }
      continue;
    }
    if (ordered && b->seq_last) ++next_seq;

    int input = t.slot_input[slot];
    const PlanInput& in = pn.inputs[input];
    if (!in.remap.empty()) ApplyRemap(*b, in.remap);
    if (wm_inputs > 1 || in.port == Port::kErrors) {
      int w = slot_wm[slot];
      for (auto& row : b->rows) {
        if (w >= 0) merged = merger.Advance(w, row.wm);
        row.wm = merged;
      }
      if (w >= 0) merged = merger.Advance(w, b->watermark);
      b->watermark = merged;
    } else {
      merged = std::max(merged, b->watermark);
    }
    NodeMetrics& m = *metrics_[t.head];
    m.records_in.fetch_add(b->rows.size(), std::memory_order_relaxed);
    m.watermark.store(b->watermark, std::memory_order_relaxed);
    SR_RETURN_IF_ERROR(head->Process(std::move(b)));
    SR_RETURN_IF_ERROR(t.errors->Flush());
  }
  return Status::Ok();
}

// Reads the producers of a bounded union merged by event time: the next record is always the
// one with the smallest event time among the producers' next records (ties: the lower producer
// slot, i.e. the earlier input). Errors streams are passed on as they come. The watermark of a
// record is the minimum over the producers of the watermarks of the records taken so far.
Status Job::Impl::RunTimeMergeLoop(Task& t) {
  const PlanNode& pn = plan_.nodes[t.head];
  Operator* head = HeadOperator(t);
  const int slots = t.gate->producers();
  const uint32_t width = static_cast<uint32_t>(pn.in_layout.size());
  struct Cursor {
    BatchPtr batch;
    size_t pos = 0;
    bool ended = false;
    bool errors = false;
    int wm_input = -1;
  };
  std::vector<Cursor> cur(slots);
  int wm_inputs = 0;
  for (int s = 0; s < slots; ++s) {
    cur[s].errors = pn.inputs[t.slot_input[s]].port == Port::kErrors;
    if (!cur[s].errors) cur[s].wm_input = wm_inputs++;
  }
  for (size_t i = 0; i < pn.inputs.size(); ++i) {
    if (pn.inputs[i].port == Port::kErrors) cur[t.input_slot_base[i] + t.index].ended = true;
  }
  WatermarkMerger merger(std::max(wm_inputs, 1));
  BatchPtr out;
  int64_t sent_wm = kMinTimestamp;

  auto flush = [&]() -> Status {
    int64_t wm = merger.current();
    if ((!out || out->rows.empty()) && wm <= sent_wm) return Status::Ok();
    if (!out) out = NewBatch(width);
    out->watermark = wm;
    sent_wm = wm;
    NodeMetrics& m = *metrics_[t.head];
    m.records_in.fetch_add(out->rows.size(), std::memory_order_relaxed);
    m.watermark.store(wm, std::memory_order_relaxed);
    return head->Process(std::move(out));
  };
  auto take = [&](int s, BatchPtr b) -> Status {
    if (b->kind == Batch::Kind::kEnd) {
      cur[s].ended = true;
      if (cur[s].wm_input >= 0) merger.Advance(cur[s].wm_input, kMaxTimestamp);
      return Status::Ok();
    }
    const PlanInput& in = pn.inputs[t.slot_input[s]];
    if (!in.remap.empty()) ApplyRemap(*b, in.remap);
    if (cur[s].errors) {
      // Errors streams are not ordered: pass them on at once.
      SR_RETURN_IF_ERROR(flush());
      for (auto& row : b->rows) row.wm = merger.current();
      b->watermark = merger.current();
      return head->Process(std::move(b));
    }
    if (b->rows.empty()) {
      merger.Advance(cur[s].wm_input, b->watermark);
      return Status::Ok();
    }
    cur[s].batch = std::move(b);
    cur[s].pos = 0;
    return Status::Ok();
  };

  for (;;) {
    // Errors first, without waiting.
    for (int s = 0; s < slots; ++s) {
      if (!cur[s].errors || cur[s].ended) continue;
      while (BatchPtr b = t.gate->TryPop(s)) {
        SR_RETURN_IF_ERROR(take(s, std::move(b)));
        if (cur[s].ended) break;
      }
    }
    // Every live producer needs its next record before the smallest can be known. After a stall
    // (see PlanNode::time_merge_strict) the others only give what they already have.
    bool stalled = false;
    for (int s = 0; s < slots; ++s) {
      while (!cur[s].errors && !cur[s].ended && !cur[s].batch) {
        BatchPtr b = t.gate->TryPop(s);
        if (!b) {
          if (stalled) break;
          SR_RETURN_IF_ERROR(flush());  // let downstream progress before waiting
          ScopedTimer idle(&t.metrics.idle_ns);
          b = pn.time_merge_strict ? t.gate->PopFrom(s) : t.gate->PopFromUnlessStalled(s, &stalled);
          if (!b) {
            if (stalled) break;
            return Status::Cancelled();
          }
        }
        SR_RETURN_IF_ERROR(take(s, std::move(b)));
      }
    }
    int best = -1;
    for (int s = 0; s < slots; ++s) {
      if (!cur[s].batch) continue;
      if (best < 0 || cur[s].batch->rows[cur[s].pos].ts < cur[best].batch->rows[cur[best].pos].ts) {
        best = s;
      }
    }
    if (best < 0) {
      bool live = false;
      for (int s = 0; s < slots; ++s) live = live || !cur[s].ended;
      if (!live) break;
      continue;
    }
    Cursor& c = cur[best];
    if (!out) out = NewBatch(width);
    size_t r = out->rows.size();
    out->CopyRowFrom(*c.batch, c.pos);
    out->rows[r].wm = merger.Advance(c.wm_input, c.batch->rows[c.pos].wm);
    if (++c.pos == c.batch->rows.size()) {
      merger.Advance(c.wm_input, c.batch->watermark);
      c.batch.reset();
    }
    if (out->full()) SR_RETURN_IF_ERROR(flush());
    SR_RETURN_IF_ERROR(t.errors->Flush());
  }
  return flush();
}

Status Job::Impl::RunTask(Task& t) {
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

Status Job::Impl::Run() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    running_ = static_cast<int>(tasks_.size());
  }
  for (auto& tp : tasks_) {
    Task* t = tp.get();
    t->thread = std::thread([this, t] {
      t->metrics.started_ns.store(SteadyNowNs());
      tls_backpressure_ns = &t->metrics.backpressured_ns;
      Status st = RunTask(*t);
      if (!st.ok() && st.code() != Status::Code::kCancelled) Fail(st);
      if (!st.ok() && st.code() == Status::Code::kCancelled) Cancel();
      std::lock_guard<std::mutex> lock(mu_);
      t->status = st;
      --running_;
      done_cv_.notify_all();
    });
  }
  {
    std::unique_lock<std::mutex> lock(mu_);
    while (running_ > 0) {
      done_cv_.wait_for(lock, std::chrono::milliseconds(50));
      if (cancelled_.load() && running_ > 0) {
        lock.unlock();
        Cancel();
        lock.lock();
      }
    }
  }
  for (auto& t : tasks_) t->thread.join();
  std::lock_guard<std::mutex> lock(mu_);
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
  auto impl = std::make_unique<Impl>(spec, std::move(plan));
  SR_RETURN_IF_ERROR(impl->Build());
  return std::unique_ptr<Job>(new Job(std::move(impl)));
}

Status Job::Run() { return impl_->Run(); }
void Job::Cancel() { impl_->Cancel(); }
const Plan& Job::plan() const { return impl_->plan_; }

std::vector<std::pair<std::string, const SourceProgress*>> Job::progress() const {
  std::vector<std::pair<std::string, const SourceProgress*>> out;
  for (int n : impl_->source_of_origin_) {
    out.emplace_back(impl_->plan_.nodes[n].spec->name, impl_->progress_[n].get());
  }
  return out;
}

std::string Job::StatusJson() const {
  rapidjson::StringBuffer buf;
  rapidjson::Writer<rapidjson::StringBuffer> w(buf);
  const int64_t now = SteadyNowNs();
  w.StartObject();
  w.Key("job");
  w.String(impl_->spec_.name.c_str());
  int64_t started = now;
  for (const auto& t : impl_->tasks_) {
    int64_t s = t->metrics.started_ns.load();
    if (s > 0) started = std::min(started, s);
  }
  w.Key("uptime_ms");
  w.Int64((now - started) / 1000000);
  w.Key("nodes");
  w.StartArray();
  for (size_t n = 0; n < impl_->plan_.nodes.size(); ++n) {
    const PlanNode& pn = impl_->plan_.nodes[n];
    const NodeMetrics& m = *impl_->metrics_[n];
    w.StartObject();
    w.Key("name");
    w.String(pn.spec->name.c_str());
    w.Key("type");
    w.String(pn.spec->type.c_str());
    w.Key("role");
    w.String(NodeRoleName(pn.role));
    w.Key("parallelism");
    w.Int(pn.parallelism);
    uint64_t in = m.records_in.load(), out = m.records_out.load();
    if (pn.role == NodeRole::kSource) in = impl_->progress_[n]->records.load();
    w.Key("records_in");
    w.Uint64(in);
    w.Key("records_out");
    w.Uint64(out);
    w.Key("watermark");
    int64_t wm = pn.role == NodeRole::kSource ? kMinTimestamp : m.watermark.load();
    if (wm == kMinTimestamp) w.Null();
    else w.Int64(wm);
    // Thread shares and queues of the tasks that run this node.
    double fill = 0, busy = 0, idle = 0, bp = 0;
    int tasks = 0;
    for (const Impl::Task* t : impl_->node_tasks_[n]) {
      if (t->gate) fill = std::max(fill, t->gate->fill());
      int64_t s = t->metrics.started_ns.load();
      if (s <= 0 || now <= s) continue;
      double life = static_cast<double>(now - s);
      double i = static_cast<double>(t->metrics.idle_ns.load()) / life;
      double b = static_cast<double>(t->metrics.backpressured_ns.load()) / life;
      idle += i;
      bp += b;
      busy += std::max(0.0, 1.0 - i - b);
      ++tasks;
    }
    if (tasks > 0) {
      busy /= tasks;
      idle /= tasks;
      bp /= tasks;
    }
    w.Key("queue_fill");
    w.Double(fill);
    w.Key("busy");
    w.Double(busy);
    w.Key("idle");
    w.Double(idle);
    w.Key("backpressured");
    w.Double(bp);
    w.EndObject();
  }
  w.EndArray();
  w.EndObject();
  return buf.GetString();
}

RunSummary Job::summary() const {
  RunSummary s;
  for (size_t o = 0; o < impl_->source_of_origin_.size(); ++o) {
    int n = impl_->source_of_origin_[o];
    s.sources.push_back({impl_->plan_.nodes[n].spec->name,
                         impl_->progress_[n]->records.load(),
                         impl_->bad_records_[o].load()});
  }
  for (size_t n = 0; n < impl_->plan_.nodes.size(); ++n) {
    if (impl_->plan_.nodes[n].role != NodeRole::kSink) continue;
    uint64_t records = 0;
    for (Impl::Task* t : impl_->node_tasks_[n]) {
      for (size_t c = 0; c < t->chain.size(); ++c) {
        if (t->chain[c] != static_cast<int>(n)) continue;
        // ops hold chain[1..] when the head is a source, chain[0..] otherwise.
        size_t idx = t->source ? c - 1 : c;
        records += t->ops[idx]->records_out();
      }
    }
    s.sinks.push_back({impl_->plan_.nodes[n].spec->name, records});
  }
  return s;
}

}  // namespace streamrun
