// How a task reads its inputs: in arrival order with merged watermarks, in chunk order (a split
// file source), or merged by event time (a bounded union). See engine/plan.h for which applies.
#include <algorithm>

#include "engine/job_impl.h"
#include "engine/watermark.h"

namespace streamrun {

Status Job::Impl::RunInputLoop(Task& t) {
  const PlanNode& pn = plan_.nodes[t.head];
  if (pn.time_merge) return RunTimeMergeLoop(t);
  if (pn.inputs.size() == 1 && (pn.inputs[0].ordered || pn.inputs[0].row_watermarks)) {
    StepResult r = StepResult::kProgress;
    while (r != StepResult::kDone) SR_RETURN_IF_ERROR(StepInput(t, /*block=*/true, &r));
    return Status::Ok();
  }
  Operator* head = HeadOperator(t);
  const int slots = t.gate->producers();
  std::vector<bool> ended(slots, false);
  int live = slots;

  // Watermark inputs: every producer slot is one, but errors streams do not hold back the
  // watermark.
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
    for (int k = 0; k < n; ++k) slot_wm[first + k] = wm_inputs++;
  }
  WatermarkMerger merger(std::max(wm_inputs, 1));
  int64_t merged = kMinTimestamp;

  // Checkpoint barriers (BarrierAlignment). exactly_once aligns: a producer whose barrier came
  // is not read until every live one's came, so the snapshot holds nothing after a barrier
  // either. at_least_once reads on: the records after an early barrier are in the snapshot and
  // read again after a recovery from it (counted twice, never lost).
  const bool align = spec_.checkpoints.exactly_once;
  BarrierAlignment barriers;
  barriers.Start(slots);

  while (live > 0) {
    int slot = 0;
    BatchPtr b;
    {
      ScopedWait idle(&t.metrics.idle);
      b = t.gate->PopAny(&slot, align ? barriers.skip() : nullptr);
    }
    if (!b) return Status::Cancelled();

    if (b->kind == Batch::Kind::kBarrier) {
      SR_RETURN_IF_ERROR(PassBarrier(
          t, barriers.OnBarrier(slot, b->barrier_id, t.last_barrier, live, &t.align_started_ns),
          ""));
      continue;
    }

    if (b->kind == Batch::Kind::kEnd) {
      ended[slot] = true;
      --live;
      SR_RETURN_IF_ERROR(PassBarrier(t, barriers.OnEnd(slot, live), ""));
      if (slot_wm[slot] >= 0) {
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

uint64_t Job::Impl::BarrierAlignment::OnBarrier(int slot, uint64_t id, uint64_t last_passed,
                                                int live, int64_t* align_started_ns) {
  if (id <= last_passed || id < aligning) return 0;
  if (id > aligning) {
    std::fill(at_barrier.begin(), at_barrier.end(), false);
    at_barrier_count = 0;
    aligning = id;
    *align_started_ns = SteadyNowNs();
  }
  if (!at_barrier[slot]) {
    at_barrier[slot] = true;
    ++at_barrier_count;
  }
  return at_barrier_count == live ? Finish() : 0;
}

uint64_t Job::Impl::BarrierAlignment::OnEnd(int slot, int live) {
  if (at_barrier[slot]) {  // at_least_once: it ended after its barrier
    at_barrier[slot] = false;
    --at_barrier_count;
  }
  return aligning != 0 && at_barrier_count == live && live > 0 ? Finish() : 0;
}

uint64_t Job::Impl::BarrierAlignment::Finish() {
  const uint64_t id = aligning;
  aligning = 0;
  at_barrier_count = 0;
  std::fill(at_barrier.begin(), at_barrier.end(), false);
  return id;
}

Status Job::Impl::StepInput(Task& t, bool block, StepResult* result) {
  t.stepped.Start(t.gate->producers());
  if (t.stepped.live == 0) {
    *result = StepResult::kDone;
    return Status::Ok();
  }
  *result = StepResult::kWouldBlock;
  if (plan_.nodes[t.head].inputs[0].row_watermarks) return StepRowWatermarkInput(t, block, result);
  return StepOrderedInput(t, block, result);
}

// Reads one input in chunk order (a split file source's subtasks, PlanInput::ordered), one batch
// per step. The subtasks claim chunks as they go (operators/file_source.h), so chunk k may come
// from any producer, but each producer sends its chunks in increasing order, the last batch of
// each marked seq_last. So once chunk `next_seq` is sent, its batches are at the head of one
// producer's queue, and every other live producer's next batch is a later chunk, the barrier
// the subtasks put before the same chunk (operators/file_source.cc, BeforeChunk), or its End.
// A barrier is passed once every live producer's next batch is that barrier: no chunk before
// it can come after that.
Status Job::Impl::StepOrderedInput(Task& t, bool block, StepResult* result) {
  InputGate& gate = *t.gate;
  const int slots = gate.producers();
  SteppedInput& in = t.stepped;
  std::vector<const Batch*>& heads = in.heads;
  for (;;) {
    const uint64_t seen = gate.pushes();
    gate.PeekAll(&heads);
    int next = -1;         // the producer whose next batch is of chunk next_seq
    bool barrier = true;   // every live producer's next batch is a barrier
    bool missing = false;  // some live producer has nothing queued
    uint64_t id = 0;       // a barrier's id, if some producer's next batch is one
    for (int s = 0; s < slots; ++s) {
      if (in.ended[s]) continue;
      const Batch* h = heads[s];
      if (h == nullptr) {
        missing = true;
        barrier = false;
      } else if (h->kind == Batch::Kind::kEnd) {
        if (!gate.PopFrom(s)) return Status::Cancelled();
        in.ended[s] = true;
        --in.live;
        *result = StepResult::kProgress;
      } else if (h->kind == Batch::Kind::kData) {
        barrier = false;
        if (h->seq == in.next_seq) next = s;
      } else if (id == 0) {
        id = h->barrier_id;
      }
    }
    if (in.live == 0) {
      *result = StepResult::kDone;
      return Status::Ok();
    }
    if (next >= 0) {
      BatchPtr b = gate.PopFrom(next);
      if (!b) return Status::Cancelled();
      *result = StepResult::kProgress;
      if (b->seq_last) ++in.next_seq;
      return ProcessStepped(t, std::move(b));
    }
    if (barrier) {
      for (int s = 0; s < slots; ++s) {
        if (in.ended[s]) continue;
        BatchPtr other = gate.PopFrom(s);
        if (!other) return Status::Cancelled();
        if (other->barrier_id != id) {
          return Status::RuntimeError("runtime: checkpoint barrier " + std::to_string(id) +
                                      " is not at the same chunk in every subtask of the source");
        }
      }
      *result = StepResult::kProgress;
      return PassBarrier(t, id, "");
    }
    if (!missing) {
      return Status::RuntimeError("runtime: chunk " + std::to_string(in.next_seq) +
                                  " of a split source never came");
    }
    if (!block || *result == StepResult::kProgress) return Status::Ok();
    ScopedWait idle(&t.metrics.idle);
    if (!gate.WaitForPush(seen)) return Status::Cancelled();
  }
}

// A data batch of the one input of a stepped task: to the head operator's layout and into it.
Status Job::Impl::ProcessStepped(Task& t, BatchPtr b) {
  const PlanInput& input = plan_.nodes[t.head].inputs[0];
  if (!input.remap.empty()) ApplyRemap(*b, input.remap);
  NodeMetrics& m = *metrics_[t.head];
  m.records_in.fetch_add(b->rows.size(), std::memory_order_relaxed);
  m.watermark.store(b->watermark, std::memory_order_relaxed);
  SR_RETURN_IF_ERROR(HeadOperator(t)->Process(std::move(b)));
  return t.errors->Flush();
}

// Reads one input of a split file as batches come (PlanInput::row_watermarks), one batch per
// step. Rows keep their own watermark (the file order's); a batch carries the minimum over the
// producers' watermarks. Barriers are aligned: a producer whose barrier came is not read until
// every live one's came (a split file's subtasks put it before the same chunk, so the snapshot
// holds exactly the chunks before it, as in chunk order).
Status Job::Impl::StepRowWatermarkInput(Task& t, bool block, StepResult* result) {
  const PlanNode& pn = plan_.nodes[t.head];
  InputGate& gate = *t.gate;
  SteppedInput& in = t.stepped;
  // Producers that ended or are at the barrier being aligned are not read.
  int slot = 0;
  BatchPtr b;
  if (block) {
    ScopedWait idle(&t.metrics.idle);
    b = gate.PopAny(&slot, in.barriers.skip());
    if (!b) return Status::Cancelled();
  } else {
    b = gate.TryPopAny(&slot, in.barriers.skip());
    if (!b) return Status::Ok();
  }
  *result = StepResult::kProgress;
  if (b->kind == Batch::Kind::kBarrier) {
    return PassBarrier(
        t, in.barriers.OnBarrier(slot, b->barrier_id, t.last_barrier, in.live, &t.align_started_ns),
        "");
  }
  if (b->kind == Batch::Kind::kEnd) {
    in.ended[slot] = true;
    --in.live;
    SR_RETURN_IF_ERROR(PassBarrier(t, in.barriers.OnEnd(slot, in.live), ""));
    const int64_t before = in.merger.current();
    const int64_t merged = in.merger.Advance(slot, kMaxTimestamp);
    if (merged > before && in.live > 0) {
      BatchPtr tick = NewBatch(static_cast<uint32_t>(pn.in_layout.size()));
      tick->watermark = merged;
      SR_RETURN_IF_ERROR(HeadOperator(t)->Process(std::move(tick)));
    }
    return Status::Ok();
  }
  b->watermark = in.merger.Advance(slot, b->watermark);
  return ProcessStepped(t, std::move(b));
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
    uint64_t barrier = 0;  // its barrier came: not read until every live producer's came
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
  // Barriers are always aligned here: a producer at its barrier takes no part in the merge until
  // every live producer is at it (the merge order around a checkpoint then depends on timing,
  // which a union of several sources allows; see DESIGN "Semantics").
  uint64_t aligning = 0;
  auto take = [&](int s, BatchPtr b) -> Status {
    if (b->kind == Batch::Kind::kBarrier) {
      uint64_t id = b->barrier_id;
      if (id <= t.last_barrier || id < aligning) return Status::Ok();
      if (id > aligning) {
        for (auto& c : cur) c.barrier = 0;
        aligning = id;
        t.align_started_ns = SteadyNowNs();
      }
      cur[s].barrier = id;
      return Status::Ok();
    }
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
      if (!cur[s].errors || cur[s].ended || cur[s].barrier) continue;
      while (BatchPtr b = t.gate->TryPop(s)) {
        SR_RETURN_IF_ERROR(take(s, std::move(b)));
        if (cur[s].ended || cur[s].barrier) break;
      }
    }
    // Every live producer needs its next record before the smallest can be known. After a stall
    // (see PlanNode::time_merge_strict) the others only give what they already have.
    bool stalled = false;
    for (int s = 0; s < slots; ++s) {
      while (!cur[s].errors && !cur[s].ended && !cur[s].batch && !cur[s].barrier) {
        BatchPtr b = t.gate->TryPop(s);
        if (!b) {
          if (stalled) break;
          SR_RETURN_IF_ERROR(flush());  // let downstream progress before waiting
          ScopedWait idle(&t.metrics.idle);
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
      bool live = false, all_at_barrier = aligning != 0;
      for (int s = 0; s < slots; ++s) {
        live = live || !cur[s].ended;
        if (!cur[s].ended && cur[s].barrier == 0) all_at_barrier = false;
      }
      if (all_at_barrier && live) {
        SR_RETURN_IF_ERROR(flush());
        uint64_t id = aligning;
        aligning = 0;
        for (auto& c : cur) c.barrier = 0;
        SR_RETURN_IF_ERROR(PassBarrier(t, id, ""));
        continue;
      }
      if (!live) break;
      if (aligning != 0) {
        // Only errors streams are left to reach the barrier: wait for them.
        for (int s = 0; s < slots; ++s) {
          if (!cur[s].errors || cur[s].ended || cur[s].barrier) continue;
          ScopedWait idle(&t.metrics.idle);
          BatchPtr b = t.gate->PopFrom(s);
          if (!b) return Status::Cancelled();
          SR_RETURN_IF_ERROR(take(s, std::move(b)));
          break;
        }
      }
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

}  // namespace streamrun
