// Exchanges (see exchange.h).
#include "engine/exchange.h"

#include <algorithm>

#include "engine/key.h"

namespace streamrun {

OutputEmitter::OutputEmitter(std::vector<Route> routes, uint32_t width, bool ordered)
    : routes_(std::move(routes)), width_(width), ordered_(ordered) {
  for (auto& r : routes_) {
    if (r.kind == EdgeKind::kKeyed && r.gates.size() > 1) {
      r.pending.resize(r.gates.size());
      r.sent_watermark.assign(r.gates.size(), kMinTimestamp);
      r.subtask_of_group.resize(static_cast<size_t>(r.max_parallelism));
      for (int g = 0; g < r.max_parallelism; ++g) {
        r.subtask_of_group[g] =
            SubtaskOfKeyGroup(g, static_cast<int>(r.gates.size()), r.max_parallelism);
      }
    }
  }
}

BatchPtr CopyBatch(const Batch& src) {
  BatchPtr b = NewBatch(src.width);
  b->kind = src.kind;
  b->watermark = src.watermark;
  b->seq = src.seq;
  b->seq_last = src.seq_last;
  b->barrier_id = src.barrier_id;
  for (size_t r = 0; r < src.rows.size(); ++r) b->CopyRowFrom(src, r);
  return b;
}

Status OutputEmitter::Emit(BatchPtr batch) {
  const bool no_rows = batch->kind == Batch::Kind::kData && batch->rows.empty();
  size_t last = routes_.size();
  while (last > 0 && no_rows && routes_[last - 1].rows_only) --last;
  if (last == 0) return Status::Ok();
  // Every consumer but the last gets a copy.
  for (size_t i = 0; i + 1 < last; ++i) {
    if (no_rows && routes_[i].rows_only) continue;
    SR_RETURN_IF_ERROR(Send(routes_[i], CopyBatch(*batch)));
  }
  return Send(routes_[last - 1], std::move(batch));
}

Status OutputEmitter::FlushPending(Route& r) {
  for (size_t t = 0; t < r.pending.size(); ++t) {
    BatchPtr& out = r.pending[t];
    if (!out || out->rows.empty()) continue;
    out->seq_last = false;
    SR_RETURN_IF_ERROR(Push(r, t, std::move(out)));
  }
  return Status::Ok();
}

Status OutputEmitter::Close() {
  for (auto& r : routes_) {
    SR_RETURN_IF_ERROR(FlushPending(r));
    for (size_t t = 0; t < r.gates.size(); ++t) {
      BatchPtr end = NewBatch(width_);
      end->kind = Batch::Kind::kEnd;
      end->watermark = kMaxTimestamp;
      SR_RETURN_IF_ERROR(Push(r, t, std::move(end)));
    }
  }
  return Status::Ok();
}

Status OutputEmitter::Barrier(uint64_t checkpoint_id) {
  // Keyed routes to chunk-order readers hold rows only within a chunk, and a split source's
  // barriers fall between chunks; flushing first keeps the barrier after everything emitted
  // before it on every queue whatever the source.
  for (auto& r : routes_) {
    SR_RETURN_IF_ERROR(FlushPending(r));
    for (size_t t = 0; t < r.gates.size(); ++t) {
      BatchPtr b = NewBatch(width_);
      b->kind = Batch::Kind::kBarrier;
      b->barrier_id = checkpoint_id;
      b->watermark = kMinTimestamp;
      SR_RETURN_IF_ERROR(Push(r, t, std::move(b)));
    }
  }
  return Status::Ok();
}

thread_local CooperativeHost* tls_host = nullptr;

Status OutputEmitter::Push(Route& r, size_t target, BatchPtr b) {
  if (r.cooperative && tls_host != nullptr) {
    return PushCooperatively(r, target, std::move(b), tls_host);
  }
  if (!r.gates[target]->Push(r.my_slot, std::move(b))) return Status::Cancelled();
  return Status::Ok();
}

Status OutputEmitter::PushCooperatively(Route& r, size_t target, BatchPtr b,
                                        CooperativeHost* host) {
  for (;;) {
    // Read before trying, so that a change after the try is not missed by the wait.
    const uint64_t seen = host->signal().generation();
    switch (r.gates[target]->TryPush(r.my_slot, b)) {
      case InputGate::TryPushResult::kPushed:
        // The guest takes what it can at once, while the rows this thread just made are still
        // in its core's cache (waiting for a full queue first measured ~6 % slower).
        for (;;) {
          bool progressed = false;
          SR_RETURN_IF_ERROR(host->StepGuest(&progressed));
          if (!progressed) return Status::Ok();
        }
      case InputGate::TryPushResult::kCancelled:
        return Status::Cancelled();
      case InputGate::TryPushResult::kFull:
        break;
    }
    bool progressed = false;
    SR_RETURN_IF_ERROR(host->StepGuest(&progressed));
    if (!progressed) host->Wait(seen);
  }
}

Status OutputEmitter::Send(Route& r, BatchPtr batch) {
  if (r.gates.size() == 1) return Push(r, 0, std::move(batch));
  // Keyed exchange: rows go to the subtask that owns their key group. They go by reference: each
  // consumer batch pins the input batches its rows are in instead of copying the rows' bytes. A
  // consumer batch never outlives them by much: pending batches are sent at the end of each
  // input batch, or for chunk-order readers at the end of each chunk (a few input batches).
  // Each row's key, encoded and hashed here anyway, goes along as a key record in the input
  // batch's arena (Row::keyed), so that the consumer does not encode and hash it again.
  const int n = static_cast<int>(r.gates.size());
  Batch& mut = *batch;
  const size_t rows = mut.rows.size();
  rows_of_.resize(static_cast<size_t>(n));
  target_of_.resize(rows);
  const uint64_t groups = static_cast<uint64_t>(r.max_parallelism);
  const bool mask = (groups & (groups - 1)) == 0;  // KeyGroupOf is then a mask
  for (size_t row = 0; row < rows; ++row) {
    mut.arena.PrefetchAhead(256);  // the key records of the rows a few ahead
    EncodeKey(mut.SlotsOf(row), r.key_slots, &key_);
    const uint64_t hash = HashKey(key_);
    char* record = mut.arena.Allocate(kKeyRecordHeader + key_.size());
    WriteKeyRecord(record, hash, key_);
    // Set on the input row, so that its copy (another consumer's) or the row itself (the
    // co-located consumer's) carries it along.
    Row& keyed = mut.rows[row];
    keyed.keyed = record;
    keyed.flags |= kRowKeyed;
    const int group =
        mask ? static_cast<int>(hash & (groups - 1)) : KeyGroupOf(hash, r.max_parallelism);
    target_of_[row] = static_cast<uint16_t>(r.subtask_of_group[group]);
  }
  // Each consumer's rows, in order. For a few consumers, one pass per consumer without a branch
  // per row: appending each row to its own consumer's list (a store of that list's end, which
  // the next row's append may or may not load) stalled on every row at parallelism 2, ~half of
  // this function's time; the window benchmark at parallelism 2 on one CPU ran 1.06 x faster.
  if (n <= 8) {
    for (int t = 0; t < n; ++t) {
      std::vector<uint32_t>& list = rows_of_[static_cast<size_t>(t)];
      list.resize(rows);
      size_t k = 0;
      for (size_t row = 0; row < rows; ++row) {
        list[k] = static_cast<uint32_t>(row);
        k += target_of_[row] == t;
      }
      list.resize(k);
    }
  } else {
    for (auto& list : rows_of_) list.clear();
    for (size_t row = 0; row < rows; ++row) {
      rows_of_[target_of_[row]].push_back(static_cast<uint32_t>(row));
    }
  }
  std::shared_ptr<const Batch> pin(batch.release(), BatchRecycler());
  const Batch& in = *pin;
  // The other consumers' rows, one consumer at a time: copied into its pending batch.
  for (int t = 0; t < n; ++t) {
    if (t == r.local) continue;
    const std::vector<uint32_t>& list = rows_of_[static_cast<size_t>(t)];
    for (size_t i = 0; i < list.size();) {
      BatchPtr& out = r.pending[t];
      if (!out) {
        out = NewBatch(in.width);
        out->seq = in.seq;
      }
      if (out->pins.empty() || out->pins.back() != pin) out->pins.push_back(pin);
      // Rows by reference add no arena bytes: only the row count can fill the batch here.
      const size_t room = kBatchRows > out->rows.size() ? kBatchRows - out->rows.size() : 1;
      const size_t end = std::min(list.size(), i + room);
      for (; i < end; ++i) out->AddRowRef(in, list[i]);
      if (out->full()) {
        out->seq = in.seq;
        out->seq_last = false;
        // Safe: no later row of this producer for this consumer is below it.
        out->watermark = in.rows[list[i - 1]].wm;
        SR_RETURN_IF_ERROR(Push(r, static_cast<size_t>(t), std::move(out)));
      }
    }
  }
  // The co-located consumer's rows are not copied: the input batch's rows and slots move into
  // a batch of their own, which keeps only those rows and pins the input batch (their bytes,
  // strings and key records) like the other consumers' batches. It goes out at once, as the
  // end of this input batch for that consumer, so no rows of it are ever pending.
  bool local_sent = false;
  if (r.local >= 0 && !rows_of_[static_cast<size_t>(r.local)].empty()) {
    const std::vector<uint32_t>& list = rows_of_[static_cast<size_t>(r.local)];
    BatchPtr own = NewBatch(in.width);
    own->rows.swap(mut.rows);  // `mut` is the pinned input batch: nothing reads its rows now
    own->slots.swap(mut.slots);
    for (size_t i = 0; i < list.size(); ++i) {
      Row& row = own->rows[i];
      if (list[i] != i) row = own->rows[list[i]];  // list[i] >= i: rows move only forward
    }
    own->rows.resize(list.size());
    own->pins.push_back(pin);
    const size_t t = static_cast<size_t>(r.local);
    own->seq = in.seq;
    own->seq_last = in.seq_last;
    own->watermark = in.watermark;
    r.sent_watermark[t] = in.watermark;
    local_sent = true;
    SR_RETURN_IF_ERROR(Push(r, t, std::move(own)));
  }
  // At the end of each input batch every consumer hears of a new watermark and, when it reads
  // in chunk order, of the end of the chunk (so that it can go on to the next one). Consumers
  // that read in chunk order (a split file: bounded, latency does not matter) get full batches
  // instead: rows wait in `pending` until the chunk ends, so a window takes ~1,024 rows per
  // batch rather than half an input batch (all but the co-located one: its rows are not copied,
  // which saved more than its smaller batches cost).
  for (int t = 0; t < n; ++t) {
    if (t == r.local && local_sent) continue;
    BatchPtr& out = r.pending[t];
    bool has_rows = out && !out->rows.empty();
    bool chunk_end = ordered_ && in.seq_last;
    if (ordered_ && !chunk_end) continue;
    if (!has_rows && !chunk_end && in.watermark <= r.sent_watermark[t]) continue;
    if (!out) out = NewBatch(in.width);
    out->seq = in.seq;
    out->seq_last = in.seq_last;
    out->watermark = in.watermark;
    r.sent_watermark[t] = in.watermark;
    SR_RETURN_IF_ERROR(Push(r, t, std::move(out)));
  }
  return Status::Ok();
}

void ApplyRemap(Batch& b, const std::vector<int>& remap) {
  uint32_t width = static_cast<uint32_t>(remap.size());
  std::vector<Value> slots_out;
  slots_out.reserve(b.rows.size() * width);
  for (auto& row : b.rows) {
    const Value* old = b.slots.data() + row.slot;
    row.slot = static_cast<uint32_t>(slots_out.size());
    for (int m : remap) slots_out.push_back(m >= 0 ? old[m] : Value::Missing());
  }
  b.slots.swap(slots_out);
  b.width = width;
}

}  // namespace streamrun
