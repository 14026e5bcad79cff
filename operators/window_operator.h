// WindowOperator: the runtime of the `window` step (its configuration is in operators/window.cc).
//
// It follows Flink's event-time WindowOperator with its default EventTimeTrigger:
//  - Every input row carries the watermark before it (Row::wm). Before a row, the operator
//    advances its watermark to that value; after a batch, to Batch::watermark; Finish advances
//    it to kMaxTimestamp. Advancing fires every window whose end - 1 <= watermark (in order of
//    that time, then of the order its timer was set: for tumbling and sliding windows the order
//    in which the windows opened) and drops the state of windows whose
//    end - 1 + allowed_lateness <= watermark. So results are those of a single-threaded run in
//    input order, however the input is batched.
//  - A record goes to each of its windows (after session merging) unless that window is late
//    (end - 1 + allowed_lateness <= watermark). A record that goes to none is sent to the late
//    stream (OperatorContext::late), unchanged and with the input's layout.
//  - A record added to a window whose end - 1 <= watermark fires it at once (late firing, with
//    allowed_lateness > 0). A record for which `fire_on` is true fires its windows at once and
//    drops them ("fire and purge"): the key's next record opens a new window.
//  - Results: one record per firing, the JSON object
//    {<key fields as written in key_by>, "window_start", "window_end", <aggregates in order>},
//    with ts = window_end - 1 and the origin of the window's last record. Results of windows fired
//    by a watermark advance carry as `wm` the watermark before that advance (as Flink emits them
//    before it forwards the watermark), so a downstream window of the same size does not take them
//    for late; results fired by a record carry the current watermark. Whenever the watermark
//    advances, a batch (maybe empty) carries it downstream.
//
// State: one 64-byte entry per open (key, window) in a WindowTable (operators/window_table.h:
// key bytes inline, the first count()/count_if() inline, the other aggregates' accumulators
// beside it), indexed by (key, window start) for tumbling and sliding windows, and by a per-key
// list for sessions (which merge); timers in buckets by time. So a record of a known key
// touches two cache lines (slot, entry), both prefetched some rows ahead, and a window end drops
// its windows without per-key churn. The steady state allocates nothing per record for
// tumbling and sliding windows. SnapshotTo / RestoreFrom write and read that state
// through a KeyedStateStore (format below), by key group, so a snapshot can be restored at another
// parallelism.
//
// Checkpoints: Snapshot only captures the table (WindowTable::Capture, copy-on-write: tens of
// microseconds whatever its size) and hands the view over as a DeferredState, which the
// checkpoint coordinator encodes into the state file on its own thread. The first write to each
// part of the table after a barrier copies that part (2 MiB, ~0.2 ms); with checkpoints on, the
// table keeps spare segments for those copies. Snapshot logs (debug) the copies the previous
// checkpoint caused.
//
// State format (version 1): one entry per open window, at (key group, key bytes, namespace)
// with namespace = window start, window end (8 bytes big-endian each, as signed two's
// complement) and value =
//   u8 version (1) | u8 flags (bit 0: fired) | u16 origin of the window's last record (until
//   the entry-per-window layout: of the key's last record; both read the same) |
//   u64 records added so far by the operator (first/last order; restore continues after the
//   largest) | u8 number of aggregates |
//   per aggregate: u8 AggKind, then its accumulator (EncodeAccumulator).
// Timers are not stored: a window's next timer follows from its end, its fired flag and the
// allowed lateness, and is rebuilt on restore.
//
// Thread safety: none; an operator belongs to its subtask's thread (engine/operator.h).
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "engine/expr.h"
#include "engine/keyed_state.h"
#include "engine/operator.h"
#include "engine/window_assigner.h"
#include "operators/window_aggregates.h"

namespace streamrun {

struct WindowAggregate {
  std::string name;  // the output field
  AggKind kind = AggKind::kCount;
};

struct WindowOptions {
  std::vector<FieldPath> key_paths;
  std::vector<std::string> key_names;  // as written in key_by: the result's field names
  WindowSpec window;
  std::vector<WindowAggregate> aggregates;
  int64_t allowed_lateness_ms = 0;
};

// One entry of the window step's state (format above), decoded. RestoreFrom and `streamrun
// state dump` read entries through DecodeWindowState, so the format is known in this one place
// (with SnapshotTo, its writer).
struct WindowStateEntry {
  TimeWindow window;
  bool fired = false;
  uint16_t origin = 0;
  uint64_t arrival = 0;        // records the operator had added when the entry was written
  std::vector<AggKind> kinds;  // per aggregate, in the order declared
  std::vector<Accumulator> accumulators;  // per aggregate
};

// Decodes one entry's namespace and value into *out (whose memory it reuses). Damage (a short
// namespace, an unknown version, truncation, trailing bytes) is a RuntimeError saying which.
Status DecodeWindowState(std::string_view ns, std::string_view value, WindowStateEntry* out);

// Appends an entry's JSON members for `state dump`:
//   "window":{"start":S,"end":E},"value":{"fired":B,"aggregates":[{"name":N,"kind":K,
//   "result":R,"accumulator":{...}}, ...]}
// with names from `aggregate_names` (as declared; "name" is left out where it has none) and the
// result the window would emit now (AggregateResult).
void AppendWindowStateJson(const WindowStateEntry& entry,
                           const std::vector<std::string>& aggregate_names, std::string* out);

class WindowOperator : public Operator {
 public:
  // `arguments[i]` is the unbound expression of aggregates[i] (null for count()); `fire_on` may
  // be null. Open binds them to the input layout.
  WindowOperator(WindowOptions options, std::vector<std::unique_ptr<Expr>> arguments,
                 std::unique_ptr<Expr> fire_on);
  ~WindowOperator() override;

  Status Open(const OperatorContext& ctx) override;
  Status Process(BatchPtr batch) override;
  Status Finish() override;
  uint64_t records_out() const override;
  // Emits buffered results, then captures every open window for the coordinator to encode
  // (OperatorSnapshot::deferred_state).
  Status Snapshot(int64_t checkpoint_id, OperatorSnapshot* out) override;

  // Writes every open window to `store` (entries of this operator only; the caller clears it).
  Status SnapshotTo(KeyedStateStore& store);
  // Reads the windows of key groups first..last from `store`. REQUIRES: Open was called and no
  // record was processed yet.
  Status RestoreFrom(const KeyedStateStore& store, int first_key_group, int last_key_group);

  // Records too late for every window while nobody reads the late stream.
  uint64_t late_dropped() const;
  int64_t watermark() const;
  // Open windows, in memory or evicted; in memory only.
  size_t open_windows() const;
  size_t cached_windows() const;
  // Windows the cache evicted to its store, and read back from it, so far.
  uint64_t evictions() const;
  uint64_t reloads() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace streamrun
