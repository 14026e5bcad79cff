// The window step's operator (see window_operator.h for the semantics and the state format).
#include "operators/window_operator.h"

#include <rapidjson/document.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <limits>
#include <map>
#include <optional>
#include <unordered_map>

#include "engine/byte_codec.h"
#include "engine/huge_page_allocator.h"
#include "engine/key.h"
#include "engine/state_file.h"
#include "operators/factories.h"
#include "operators/window_spill.h"
#include "operators/window_table.h"

namespace streamrun {
namespace {

constexpr size_t kNone = std::numeric_limits<size_t>::max();
constexpr uint8_t kStateVersion = 1;  // do not change: on disk (see window_operator.h)
constexpr uint8_t kFlagFired = 1;     // do not change: on disk

// What a slot of the output layout holds.
enum class OutField : uint8_t { kMissing, kKey, kStart, kEnd, kAggregate };

// What encoding a window's state needs, copied out of the operator so that a snapshot can be
// encoded on another thread while the operator moves on (or after it is gone).
struct StateEncoding {
  std::vector<AggKind> kinds;
  size_t inline_agg = kNone;    // the aggregate kept in the entry's counter
  std::vector<size_t> general;  // aggregate j's index among the entry's accumulators
  int max_parallelism = 128;

  // The state value of entry `win` with accumulators `a` (format in window_operator.h).
  void Value(const WindowEntry& win, const Accumulator* a, uint64_t arrival,
             std::string* value) const {
    value->clear();
    PutU8(*value, kStateVersion);
    PutU8(*value, win.fired() ? kFlagFired : 0);
    PutU8(*value, static_cast<uint8_t>(win.origin >> 8));
    PutU8(*value, static_cast<uint8_t>(win.origin & 0xFF));
    PutU64(*value, arrival);
    PutU8(*value, static_cast<uint8_t>(kinds.size()));
    Accumulator counter;
    for (size_t j = 0; j < kinds.size(); ++j) {
      PutU8(*value, static_cast<uint8_t>(kinds[j]));
      if (j == inline_agg) {
        counter.count = win.counter;
        EncodeAccumulator(kinds[j], counter, value);
      } else {
        EncodeAccumulator(kinds[j], a[general[j]], value);
      }
    }
  }
  // Namespace: the window's bounds.
  static void Namespace(const WindowEntry& win, std::string* ns) {
    ns->clear();
    PutI64(*ns, win.start);
    PutI64(*ns, win.end);
  }
  // Visits every live entry of `view` as (key group, key, namespace, value).
  Status ForEach(const WindowTableView& view, uint64_t arrival,
                 const KeyedStateStore::Visitor& visit) const {
    std::string ns, value;
    for (size_t i = 0; i < view.capacity(); ++i) {
      auto e = static_cast<uint32_t>(i);
      if (!view.IsLive(e)) continue;
      const WindowEntry& win = view.At(e);
      std::string_view key = view.Key(e);
      Namespace(win, &ns);
      Value(win, view.Accs(e), arrival, &value);
      SR_RETURN_IF_ERROR(visit(KeyGroupOf(HashKey(key), max_parallelism), key, ns, value));
    }
    return Status::Ok();
  }
};

// A window subtask's state at one moment: a view of its table and of its evicted windows.
// Visit may run on another thread while the operator goes on.
struct StateView {
  WindowTableView table;
  std::optional<WindowSpillView> spilled;  // none: nothing was ever evicted
  StateEncoding encoding;
  uint64_t arrival = 0;

  // Every window, as (key group, key, namespace, state value).
  Status Visit(const KeyedStateStore::Visitor& visit) const {
    SR_RETURN_IF_ERROR(encoding.ForEach(table, arrival, visit));
    if (!spilled) return Status::Ok();
    // Evicted windows are stored as state values already; only the operator's record count
    // (bytes 4..11, see window_operator.h) is the one of their eviction: make it today's.
    std::string value;
    return spilled->ForEach(
        [&](int kg, std::string_view key, std::string_view ns, std::string_view stored) -> Status {
          if (stored.size() < 12) return Status::DataError("window cache: a damaged value");
          value.assign(stored);
          std::string count;
          PutU64(count, arrival);
          value.replace(4, 8, count);
          return visit(kg, key, ns, value);
        });
  }
};

// A window subtask's state at a barrier, encoded into a state file on the checkpoint
// coordinator's thread (engine/operator.h DeferredState).
class WindowDeferredState : public DeferredState {
 public:
  explicit WindowDeferredState(StateView view) : view_(std::move(view)) {}

  // Copies ahead what the operator is about to copy for its writes (WindowTableView::CopyAhead).
  void Prepare() override { view_.table.CopyAhead(); }

  Status WriteTo(const std::function<Status(std::string_view)>& write) override {
    constexpr size_t kPiece = size_t{1} << 20;  // bytes handed to `write` at a time
    StateFileBuilder builder(view_.encoding.max_parallelism);
    SR_RETURN_IF_ERROR(view_.Visit(
        [&](int key_group, std::string_view key, std::string_view ns, std::string_view value) {
          builder.Add(key_group, key, ns, value);
          if (builder.pending_bytes() < kPiece) return Status::Ok();
          return write(builder.TakeSome());
        }));
    return write(builder.Finish());
  }

 private:
  StateView view_;
};

}  // namespace

struct WindowOperator::Impl {
  // Timers are buckets by time: tumbling and sliding windows have few distinct ends, so a
  // timer costs a push_back instead of a heap operation. A bucket fires in the order its timers
  // were set (for tumbling and sliding windows: the order the windows opened). A window has at
  // most one live timer (`gen` tells stale ones apart); when its next action moves later (a
  // session grows), the timer finds that out when it fires and re-arms itself.
  struct TimerRef {
    uint32_t entry;
    uint32_t gen;
  };

  WindowOptions opt;
  std::vector<std::unique_ptr<Expr>> args;
  std::unique_ptr<Expr> fire_on;
  const OperatorContext* ctx = nullptr;
  size_t naggs = 0;
  bool session = false;
  std::vector<int> key_slots;
  std::vector<std::pair<OutField, size_t>> out_fields;
  // The first count()/count_if() is kept in the entry's inline counter (kNone: none); the other
  // aggregates in general accumulators, aggregate j at general[j].
  size_t inline_agg = kNone;
  std::vector<size_t> general;
  size_t general_count = 0;      // aggregates in general accumulators
  uint64_t reported_copies = 0;  // table.copies() + taken_copies() at the last barrier
  uint64_t reported_taken = 0;
  int64_t reported_copy_ns = 0;
  StateEncoding encoding;

  WindowTable table;
  // The write-back cache (operators/window_spill.h): at most `cache_limit` windows stay in
  // `table` (0: no limit); colder ones go to `spill`, opened at the first eviction. The clock
  // hand sweeps the table's entries: a window touched since the hand last passed
  // (WindowEntry::kReferenced) gets another round, the others are evicted.
  size_t cache_limit = 0;
  std::unique_ptr<WindowSpill> spill;
  uint32_t clock_hand = 0;
  uint64_t evicted = 0, reloaded = 0;
  std::string spill_ns, spill_value;
  // Sessions only: the key's open session windows (the table does not index them).
  std::unordered_map<std::string, std::vector<uint32_t>> sessions;
  std::map<int64_t, std::vector<TimerRef>> buckets;
  std::vector<std::vector<TimerRef>> spare_buckets;  // emptied, with their capacity
  std::vector<TimerRef>* last_bucket = nullptr;      // the bucket of `last_bucket_time`
  int64_t last_bucket_time = 0;
  size_t timer_refs = 0;  // in all buckets, stale ones included

  int64_t wm = kMinTimestamp;
  // The smallest `wm` a result still to come may carry: `wm` once every window due at it has
  // fired, the watermark from before the advance while some have not (firing in slices).
  int64_t emit_wm = kMinTimestamp;
  bool wm_sent = true;  // downstream has seen `wm`
  // Firing in slices (see Advance): the due bucket (of time `firing_time`) being fired, from
  // `firing_pos` on.
  std::vector<TimerRef> firing;
  size_t firing_pos = 0;
  int64_t firing_time = 0;
  uint64_t arrival = 0;  // records added so far: first/last order
  uint64_t results = 0;
  uint64_t late_dropped = 0;

  BatchPtr out;
  BatchPtr late;
  // Per-record scratch, reused.
  std::string distinct_scratch, json;
  // Fire's pieces of result text: each key's and aggregate's `"name":` (the first key's with
  // the opening brace, each aggregate's with its comma; made in Open), and the window bounds'
  // fields for text_bounds (with the comma or brace before them).
  std::vector<std::string> labels;
  std::string bounds_text;
  TimeWindow text_bounds;
  std::vector<Value> vals, key_vals, result_vals;
  std::vector<TimeWindow> assigned, open;
  std::vector<size_t> merged;
  std::vector<uint32_t> targets, merged_ids;
  Arena eval_arena;
  EvalContext ectx;

  // Keys of the rows ahead of the one being processed, so that their slot, entry and
  // accumulators are fetched from memory while earlier rows are processed: with many keys each
  // of these is a cache miss, and overlapping them is most of the operator's speed.
  static constexpr size_t kRing = 32;  // a power of two larger than kPrepareAhead
  // A row's key record (from a keyed exchange) is fetched before Prepare reads it: at p2 half the
  // records were written on the other core, and Prepare's load of one stalled the row loop.
  static constexpr size_t kRecordAhead = 32;
  static constexpr size_t kPrepareAhead = 16;
  static constexpr size_t kEntryAhead = 8;
  static constexpr size_t kAccAhead = 4;
  struct Ahead {
    std::string key;            // the key encoded here (not from a keyed exchange; sessions)
    std::string_view key_view;  // the row's encoded key: `key`, or the exchange's key record
    uint64_t key_hash = 0;
    int64_t start = 0;         // the row's last window's start (tumbling, sliding)
    uint64_t window_hash = 0;  // WindowHash(key_hash, start)
  };
  Ahead ring[kRing];
  // The last window unit (size for tumbling, slide for sliding) Prepare computed: [start, end).
  int64_t unit_start = 0, unit_end = 0;

  // Inlined into Process's loop (out of line it cost ~16 instructions a row).
  [[gnu::always_inline]] void Prepare(const Batch& batch, size_t r) {
    Ahead& a = ring[r & (kRing - 1)];
    const Row& row = batch.rows[r];
    if (row.flags & kRowKeyed) {  // encoded and hashed by the keyed exchange
      a.key_hash = KeyRecordHash(row.keyed);
      a.key_view = KeyRecordKey(row.keyed);
      if (session) a.key.assign(a.key_view);  // the sessions' map looks keys up as strings
    } else {
      EncodeKey(batch.SlotsOf(r), key_slots, &a.key);
      a.key_hash = HashKey(a.key);
      a.key_view = a.key;
    }
    if (session) return;
    const int64_t ts = batch.rows[r].ts;
    if (ts >= unit_start && ts < unit_end) {
      a.start = unit_start;  // most records fall in the last one's unit: no division
    } else {
      const int64_t unit =
          opt.window.type == WindowType::kTumbling ? opt.window.size : opt.window.slide;
      a.start = WindowStart(ts, unit);
      unit_start = a.start;
      unit_end = SaturatingAdd(a.start, unit);
    }
    a.window_hash = WindowHash(a.key_hash, a.start);
    table.PrefetchSlot(a.window_hash);
  }
  void PrefetchEntry(size_t r) {
    if (!session) table.PrefetchEntry(ring[r & (kRing - 1)].window_hash);
  }
  void PrefetchAccs(size_t r) {
    if (!session) table.PrefetchAccs(ring[r & (kRing - 1)].window_hash);
  }

  // --- windows and timers ---

  uint32_t NewWindow(uint64_t hash, std::string_view key, TimeWindow bounds) {
    uint32_t e = table.Insert(hash, key, bounds.start, bounds.end, !session);
    if (session) sessions[std::string(key)].push_back(e);
    return e;
  }

  void DropWindow(uint32_t e) {
    if (session) {
      auto it = sessions.find(std::string(table.Key(e)));
      std::vector<uint32_t>& list = it->second;
      *std::find(list.begin(), list.end(), e) = list.back();
      list.pop_back();
      if (list.empty()) sessions.erase(it);
    }
    table.Erase(e);
  }

  // --- the cache ---

  bool Spilled() const { return spill != nullptr && spill->size() > 0; }

  // A window read back from a state store (a checkpoint being restored, or the cache's store).
  Status AddStoredWindow(std::string_view key_bytes, std::string_view ns, std::string_view value) {
    auto corrupt = [&](std::string_view why) {
      return Status::RuntimeError("state of window step '" + ctx->name + "': " + std::string(why));
    };
    Status decoded = DecodeWindowState(ns, value, &stored);
    if (!decoded.ok()) return corrupt(decoded.message());
    if (stored.kinds.size() != naggs)
      return corrupt("its aggregates changed since the state was written");
    for (size_t j = 0; j < naggs; ++j) {
      if (stored.kinds[j] != opt.aggregates[j].kind) {
        return corrupt("its aggregates changed since the state was written");
      }
    }
    uint64_t hash = HashKey(key_bytes);
    if (!session) hash = WindowHash(hash, stored.window.start);
    uint32_t e = NewWindow(hash, key_bytes, stored.window);
    WindowEntry& win = table.Mut(e);
    win.origin = stored.origin;
    if (stored.fired) win.flags |= WindowEntry::kFired;
    Accumulator* a = general_count > 0 ? table.MutAccs(e) : nullptr;
    for (size_t j = 0; j < naggs; ++j) {
      // Swapped, not copied: the scratch entry takes the table's spare accumulator.
      if (j == inline_agg) {
        win.counter = stored.accumulators[j].count;
      } else {
        std::swap(a[general[j]], stored.accumulators[j]);
      }
    }
    arrival = std::max(arrival, stored.arrival);
    Schedule(e);
    return Status::Ok();
  }
  WindowStateEntry stored;  // AddStoredWindow's scratch

  Status Reloaded(int, std::string_view key, std::string_view ns, std::string_view value) {
    ++reloaded;
    return AddStoredWindow(key, ns, value);
  }
  // Sessions: reads every evicted window of `key` back into the table.
  Status ReloadKey(std::string_view key, uint64_t key_hash) {
    return spill->TakeKey(KeyGroupOf(key_hash, ctx->max_parallelism), key,
                          [&](int kg, std::string_view k, std::string_view ns, std::string_view v) {
                            return Reloaded(kg, k, ns, v);
                          });
  }
  // Tumbling and sliding: reads window `w` of `key` back into the table if it was evicted.
  Status ReloadWindow(std::string_view key, uint64_t key_hash, const TimeWindow& w) {
    TimeWindow bounds = w;
    spill_ns.clear();
    PutI64(spill_ns, bounds.start);
    PutI64(spill_ns, bounds.end);
    // Its timer: its firing, or, once fired, its clean-up (see NextTime).
    const int64_t fire = bounds.max_timestamp();
    const int64_t clean = SaturatingAdd(fire, opt.allowed_lateness_ms);
    auto taker = [&](int kg, std::string_view k, std::string_view ns, std::string_view v) {
      return Reloaded(kg, k, ns, v);
    };
    const int kg = KeyGroupOf(key_hash, ctx->max_parallelism);
    if (clean == fire) return spill->TakeWindow(kg, key, spill_ns, {fire}, taker);
    return spill->TakeWindow(kg, key, spill_ns, {fire, clean}, taker);
  }

  // Writes window `e` to the cache's store and drops it from the table.
  Status Evict(uint32_t e) {
    const WindowEntry& w = table.At(e);
    std::string_view key = table.Key(e);
    StateEncoding::Namespace(w, &spill_ns);
    encoding.Value(w, table.Accs(e), arrival, &spill_value);
    SR_RETURN_IF_ERROR(spill->Put(KeyGroupOf(HashKey(key), ctx->max_parallelism), key, spill_ns,
                                  NextTime(w), spill_value));
    DropWindow(e);
    ++evicted;
    return Status::Ok();
  }

  // Over the limit: evicts cold windows until the table holds 7/8 of it.
  Status EnforceCache() {
    if (cache_limit == 0 || table.live() <= cache_limit) return Status::Ok();
    if (!spill) {
      SR_ASSIGN_OR_RETURN(spill, WindowSpill::Open(ctx->working_dir, /*by_time=*/!session));
      spdlog::info(
          "window '{}' #{}: more than {} windows (its share of state.cache, {} MiB); "
          "evicting the coldest to {}",
          ctx->name, ctx->subtask, cache_limit, ctx->state_cache_bytes >> 20, ctx->working_dir);
    }
    const size_t target = cache_limit - cache_limit / 8;
    const size_t cap = table.capacity();
    // Two rounds clear every mark; a third finds windows only kept for long keys.
    for (size_t scanned = 0; table.live() > target && scanned < 3 * cap; ++scanned) {
      uint32_t e = clock_hand;
      clock_hand = clock_hand + 1 < cap ? clock_hand + 1 : 0;
      if (!table.IsLive(e)) continue;
      if (table.At(e).flags & WindowEntry::kReferenced) {
        table.Mut(e).flags &= ~WindowEntry::kReferenced;
        continue;
      }
      if (!spill->Fits(table.Key(e))) continue;
      SR_RETURN_IF_ERROR(Evict(e));
    }
    return Status::Ok();
  }

  // When the window next needs attention: its firing at end - 1, then its clean-up at
  // end - 1 + allowed_lateness.
  int64_t NextTime(const WindowEntry& w) const {
    int64_t fire = w.max_timestamp();
    return w.fired() ? SaturatingAdd(fire, opt.allowed_lateness_ms) : fire;
  }

  std::vector<TimerRef>& Bucket(int64_t t) {
    if (last_bucket != nullptr && last_bucket_time == t) return *last_bucket;
    auto [it, added] = buckets.try_emplace(t);
    if (added && !spare_buckets.empty()) {
      it->second = std::move(spare_buckets.back());
      spare_buckets.pop_back();
    }
    last_bucket = &it->second;
    last_bucket_time = t;
    return it->second;
  }

  void Schedule(uint32_t e) {
    const WindowEntry& r = table.At(e);
    // Inline, per record: a window not fired yet that has its timer (at its end) keeps it.
    if ((r.flags & (WindowEntry::kHasTimer | WindowEntry::kFired)) == WindowEntry::kHasTimer &&
        r.timer <= r.max_timestamp()) {
      return;
    }
    ScheduleTimer(e);
  }
  [[gnu::noinline]] void ScheduleTimer(uint32_t e) {
    const WindowEntry& r = table.At(e);
    int64_t t = NextTime(r);
    if ((r.flags & WindowEntry::kHasTimer) && r.timer <= t) return;  // it re-arms when it fires
    WindowEntry& w = table.Mut(e);
    ++w.gen;
    w.flags |= WindowEntry::kHasTimer;
    w.timer = t;
    Bucket(t).push_back({e, w.gen});
    if (++timer_refs > 2 * table.live() + 65536) CompactTimers();
  }

  // Drops the stale timers of windows that are gone (evicted windows leave theirs behind; so
  // do re-timed sessions): without this, buckets would grow with every eviction.
  void CompactTimers() {
    timer_refs = 0;
    for (auto it = buckets.begin(); it != buckets.end();) {
      std::erase_if(it->second, [&](const TimerRef& ref) {
        return !table.IsLive(ref.entry) || table.At(ref.entry).gen != ref.gen;
      });
      timer_refs += it->second.size();
      it = it->second.empty() ? buckets.erase(it) : std::next(it);
    }
    last_bucket = nullptr;
  }

  // --- output ---

  Status EmitOut() {
    if (!out) out = NewBatch(static_cast<uint32_t>(ctx->output_layout.size()));
    out->watermark = emit_wm;
    wm_sent = emit_wm == wm;
    return ctx->main->Emit(std::move(out));
  }

  Status EmitLate() {
    late->watermark = wm;
    return ctx->late->Emit(std::move(late));
  }

  // Emits the result of window `w`, stamped with watermark `stamp`.
  Status Fire(uint32_t e, int64_t stamp) {
    const WindowEntry& win = table.At(e);
    const TimeWindow bounds{win.start, win.end};
    std::string_view key = table.Key(e);
    const Accumulator* a = table.Accs(e);
    size_t pos = 0;
    for (size_t i = 0; i < key_vals.size(); ++i) {
      if (!DecodeKeyValue(key, &pos, &key_vals[i])) key_vals[i] = Value::Null();
    }
    for (size_t j = 0; j < naggs; ++j) {
      result_vals[j] = j == inline_agg ? Value::Int(win.counter)
                                       : AggregateResult(opt.aggregates[j].kind, a[general[j]]);
    }

    // The field names were escaped once (Open), and the bounds' text is made once per window
    // bounds: the windows due together mostly share them (formatting all of it for every result
    // cost ~930 instructions more per result, callgrind).
    if (bounds_text.empty() || bounds.start != text_bounds.start || bounds.end != text_bounds.end) {
      text_bounds = bounds;
      bounds_text.assign(key_vals.empty() ? "{" : ",");
      bounds_text.append("\"window_start\":");
      AppendJson(bounds_text, Value::Int(bounds.start));
      bounds_text.append(",\"window_end\":");
      AppendJson(bounds_text, Value::Int(bounds.end));
    }
    json.clear();
    for (size_t i = 0; i < key_vals.size(); ++i) {
      if (i > 0) json.push_back(',');
      json.append(labels[i]);
      AppendJson(json, key_vals[i]);
    }
    json.append(bounds_text);
    for (size_t j = 0; j < naggs; ++j) {
      json.append(labels[key_vals.size() + j]);
      AppendJson(json, result_vals[j]);
    }
    json.push_back('}');

    if (!out) out = NewBatch(static_cast<uint32_t>(ctx->output_layout.size()));
    // Filled in place (Batch::AddRow(origin, offset) says why).
    size_t r = out->AddRow(win.origin, 0);
    Row& row = out->rows[r];
    row.ts = bounds.max_timestamp();
    row.wm = stamp;
    out->arena.PrefetchAhead(512);  // the text of the results a few ahead (PrefetchForWrite)
    row.raw = out->arena.Copy(json);
    Value* slots = out->SlotsOf(r);
    for (size_t s = 0; s < out_fields.size(); ++s) {
      auto [what, i] = out_fields[s];
      switch (what) {
        case OutField::kKey:
          slots[s] = CopyValue(out->arena, key_vals[i]);
          break;
        case OutField::kStart:
          slots[s] = Value::Int(bounds.start);
          break;
        case OutField::kEnd:
          slots[s] = Value::Int(bounds.end);
          break;
        case OutField::kAggregate:
          slots[s] = CopyValue(out->arena, result_vals[i]);
          break;
        case OutField::kMissing:
          break;
      }
    }
    ++results;
    if (out->full()) return EmitOut();
    return Status::Ok();
  }

  // Moves the watermark to `to`, firing and dropping windows in timer order, at most `budget`
  // timers of them. A window reading rows with their own watermarks (ctx->row_watermarks) fires
  // in slices of kFireSlice per input batch: the minute's ~50,000 windows of a subtask at once
  // took 6-11 ms, during which its host thread sent no chunk and the other source subtask,
  // once 4 chunks ahead, waited (p2 lost ~7 % of its time so). That is safe there because no row
  // reaches a window once it is due: a row's own watermark is at least its producer's
  // watermark, so every later row is late for every window due at the minimum over the
  // producers (IsLate). Results keep the watermark from before the advance (emit_wm) until the
  // last due window has fired; Snapshot and Finish fire them all first.
  static constexpr size_t kFireSlice = 1024;
  Status Advance(int64_t to, size_t budget = std::numeric_limits<size_t>::max()) {
    if (to > wm) {
      wm = to;  // emit_wm stays: the results still to come carry the watermark from before
      wm_sent = false;
    }
    if (emit_wm == wm) return Status::Ok();  // every window due at wm has fired
    const int64_t stamp = emit_wm;
    for (;;) {
      if (firing_pos < firing.size()) {
        const size_t n = firing.size();
        const size_t stop = budget < n - firing_pos ? firing_pos + budget : n;
        budget -= stop - firing_pos;
        SR_RETURN_IF_ERROR(FireDue(stamp, stop));
        if (firing_pos < n) return Status::Ok();  // the budget is spent: more next time
        firing.clear();
        firing_pos = 0;
        SR_RETURN_IF_ERROR(EnforceCache());
      }
      const int64_t next_bucket = buckets.empty() ? kMaxTimestamp : buckets.begin()->first;
      if (Spilled() && spill->min_timer() <= wm && spill->min_timer() < next_bucket) {
        // Evicted windows come due: back into the table, a chunk at a time, to fire there
        // (those of the same time as a bucket in memory after it: memory stays bounded).
        constexpr size_t kChunk = 4096;
        SR_RETURN_IF_ERROR(spill->TakeDue(
            wm, kChunk, [&](int kg, std::string_view k, std::string_view ns, std::string_view v) {
              return Reloaded(kg, k, ns, v);
            }));
        continue;
      }
      if (buckets.empty() || next_bucket > wm) break;
      if (budget == 0) return Status::Ok();
      auto it = buckets.begin();
      firing_time = it->first;
      firing.swap(it->second);  // `firing` is empty here; the bucket keeps its capacity
      spare_buckets.push_back(std::move(it->second));
      buckets.erase(it);
      last_bucket = nullptr;
      timer_refs -= firing.size();
    }
    emit_wm = wm;
    return Status::Ok();
  }

  // Fires and drops the windows of `firing` from firing_pos up to `stop`.
  Status FireDue(int64_t stamp, size_t stop) {
    const std::vector<TimerRef>& due = firing;
    const size_t n = due.size();
    const int64_t t = firing_time;
    for (; firing_pos < stop; ++firing_pos) {
      const size_t i = firing_pos;
      // Entries of a bucket are scattered: fetch a few ahead, then their slots.
      if (i + 8 < n) Prefetch(&table.At(due[i + 8].entry));
      if (i + 4 < n && table.IsLive(due[i + 4].entry)) table.PrefetchSlotOf(due[i + 4].entry);
      const TimerRef ref = due[i];
      if (!table.IsLive(ref.entry) || table.At(ref.entry).gen != ref.gen) continue;
      table.Mut(ref.entry).flags &= ~WindowEntry::kHasTimer;
      while (true) {
        int64_t next = NextTime(table.At(ref.entry));
        if (next > t) {
          Schedule(ref.entry);
          break;
        }
        if (!table.At(ref.entry).fired()) {
          SR_RETURN_IF_ERROR(Fire(ref.entry, stamp));
          table.Mut(ref.entry).flags |= WindowEntry::kFired;
          continue;
        }
        DropWindow(ref.entry);
        break;
      }
    }
    return Status::Ok();
  }

  // --- input ---

  Status Report(const Batch& batch, size_t r, std::string_view reason) {
    if (ctx->errors == nullptr) return Status::Ok();
    return ctx->errors->Report(batch, r, ctx->name, reason);
  }

  Status SendLate(const Batch& batch, size_t r) {
    if (ctx->late == nullptr) {
      ++late_dropped;
      return Status::Ok();
    }
    if (!late) late = NewBatch(batch.width);
    late->CopyRowFrom(batch, r);  // without the row's key record: it was this step's key
    if (late->full()) return EmitLate();
    return Status::Ok();
  }

  // `row_wm`: the row's own watermark (OperatorContext::row_watermarks), or kMinTimestamp.
  bool IsLate(const TimeWindow& w, int64_t row_wm) const {
    return SaturatingAdd(w.max_timestamp(), opt.allowed_lateness_ms) <= std::max(wm, row_wm);
  }

  // `ahead`: the row's key (EncodeKey, HashKey) and its last window's hash (Prepare).
  Status ProcessRow(const Batch& batch, size_t r, const Ahead& ahead) {
    const Row& row = batch.rows[r];
    const Value* slots = batch.SlotsOf(r);

    // Evaluate everything first: a record an expression fails on changes nothing.
    ectx.slots = slots;
    ectx.row = &row;
    for (size_t j = 0; j < naggs; ++j) {
      if (!args[j]) continue;
      ectx.error.clear();
      vals[j] = args[j]->Eval(ectx);
      if (!ectx.error.empty()) return Report(batch, r, ectx.error);
      std::string why;
      if (!vals[j].is_nullish() && !AggregateAccepts(opt.aggregates[j].kind, vals[j], &why)) {
        return Report(batch, r, opt.aggregates[j].name + ": " + why);
      }
    }
    bool fire_now = false;
    if (fire_on) {
      ectx.error.clear();
      Value v = fire_on->Eval(ectx);
      if (!ectx.error.empty()) return Report(batch, r, ectx.error);
      if (v.kind() == Value::Kind::kBool) {
        fire_now = v.as_bool();
      } else if (!v.is_nullish()) {
        return Report(
            batch, r,
            std::string("trigger fire_on must be true or false, got a ") + KindName(v.kind()));
      }
    }

    targets.clear();
    if (!session) {
      if (opt.window.type == WindowType::kTumbling) {
        assigned.resize(1);
        assigned[0].start = ahead.start;  // Prepare's WindowStart(row.ts, opt.window.size)
        assigned[0].end = SaturatingAdd(assigned[0].start, opt.window.size);
      } else {
        AssignWindows(opt.window, row.ts, &assigned);
      }
      const int64_t row_wm = ctx->row_watermarks ? row.wm : kMinTimestamp;
      for (const TimeWindow& tw : assigned) {
        if (IsLate(tw, row_wm)) continue;
        uint64_t h =
            tw.start == ahead.start ? ahead.window_hash : WindowHash(ahead.key_hash, tw.start);
        uint32_t e = table.Find(h, ahead.key_view, tw.start);
        if (e == kNoEntry && Spilled()) {
          // Maybe evicted: read it back (off the hot path: only after a miss, and only once
          // something was evicted).
          SR_RETURN_IF_ERROR(ReloadWindow(ahead.key_view, ahead.key_hash, tw));
          e = table.Find(h, ahead.key_view, tw.start);
        }
        if (e == kNoEntry) e = NewWindow(h, ahead.key_view, tw);
        targets.push_back(e);
      }
    } else {
      TimeWindow fresh{row.ts, SaturatingAdd(row.ts, opt.window.gap)};
      if (Spilled()) SR_RETURN_IF_ERROR(ReloadKey(ahead.key, ahead.key_hash));
      auto it = sessions.find(ahead.key);
      open.clear();
      if (it != sessions.end()) {
        for (uint32_t c : it->second) open.push_back({table.At(c).start, table.At(c).end});
      }
      TimeWindow cover = MergeSessions(open, fresh, &merged);
      // Windows that are not late never merge into a late one, so only a lone window is late.
      if (!IsLate(cover, kMinTimestamp)) {
        if (merged.empty()) {
          targets.push_back(NewWindow(ahead.key_hash, ahead.key, cover));
        } else {
          merged_ids.clear();
          for (size_t m : merged) merged_ids.push_back(it->second[m]);
          uint32_t into = merged_ids[0];
          for (size_t m = 1; m < merged_ids.size(); ++m) {
            Accumulator* dst = table.MutAccs(into);
            const Accumulator* src = table.Accs(merged_ids[m]);
            table.Mut(into).counter += table.At(merged_ids[m]).counter;
            for (size_t j = 0; j < naggs; ++j) {
              if (j == inline_agg) continue;
              MergeAccumulators(opt.aggregates[j].kind, dst[general[j]], src[general[j]]);
            }
            DropWindow(merged_ids[m]);  // `into` keeps the key's list alive
          }
          WindowEntry& w = table.Mut(into);
          w.start = cover.start;
          w.end = cover.end;
          // The merged window fires at its own end (or at once).
          w.flags &= ~WindowEntry::kFired;
          targets.push_back(into);
        }
      }
    }
    if (targets.empty()) return SendLate(batch, r);

    uint64_t seq = arrival++;
    for (uint32_t e : targets) {
      WindowEntry& w = table.Mut(e);
      w.origin = row.origin;
      w.flags |= WindowEntry::kReferenced;  // for the cache's clock
      Accumulator* a = general_count > 0 ? table.MutAccs(e) : nullptr;
      for (size_t j = 0; j < naggs; ++j) {
        AggKind kind = opt.aggregates[j].kind;
        if (kind == AggKind::kCount) {
          if (j == inline_agg) {
            ++w.counter;
          } else {
            ++a[general[j]].count;
          }
        } else if (!vals[j].is_nullish()) {
          if (j == inline_agg) {
            w.counter += vals[j].as_bool() ? 1 : 0;  // count_if
          } else {
            Accumulate(kind, a[general[j]], vals[j], seq, &distinct_scratch);
          }
        }
      }
      if (fire_now) {
        SR_RETURN_IF_ERROR(Fire(e, wm));
        DropWindow(e);
      } else if (w.max_timestamp() <= wm) {
        // Late but within allowed_lateness, or a session merged behind the watermark: fire
        // now with everything the window holds (Flink's EventTimeTrigger.onElement).
        SR_RETURN_IF_ERROR(Fire(e, wm));
        table.Mut(e).flags |= WindowEntry::kFired;
        Schedule(e);
      } else {
        Schedule(e);
      }
    }
    return Status::Ok();
  }

  // The state as it is now, for another thread (see StateView).
  Result<StateView> View() {
    StateView view;
    view.table = table.Capture();
    if (spill) {
      SR_ASSIGN_OR_RETURN(WindowSpillView spilled, spill->Snapshot());
      view.spilled = std::move(spilled);
    }
    view.encoding = encoding;
    view.arrival = arrival;
    return view;
  }

  Status Flush() {
    if (late && !late->rows.empty()) SR_RETURN_IF_ERROR(EmitLate());
    if ((out && !out->rows.empty()) || !wm_sent) SR_RETURN_IF_ERROR(EmitOut());
    return Status::Ok();
  }
};

WindowOperator::WindowOperator(WindowOptions options, std::vector<std::unique_ptr<Expr>> arguments,
                               std::unique_ptr<Expr> fire_on)
    : impl_(std::make_unique<Impl>()) {
  impl_->opt = std::move(options);
  impl_->args = std::move(arguments);
  impl_->fire_on = std::move(fire_on);
  impl_->naggs = impl_->opt.aggregates.size();
  impl_->args.resize(impl_->naggs);
}

WindowOperator::~WindowOperator() = default;

Status WindowOperator::Open(const OperatorContext& ctx) {
  Impl& m = *impl_;
  m.ctx = &ctx;
  m.key_slots.clear();
  for (const FieldPath& path : m.opt.key_paths) {
    auto it = std::find(ctx.input_layout.begin(), ctx.input_layout.end(), path);
    if (it == ctx.input_layout.end()) {
      return Status::RuntimeError("window '" + ctx.name + "': key field " +
                                  FieldPathToString(path) + " is not in its input layout");
    }
    m.key_slots.push_back(static_cast<int>(it - ctx.input_layout.begin()));
  }
  for (size_t j = 0; j < m.naggs; ++j) {
    if (m.opt.aggregates[j].kind == AggKind::kCount) {
      m.args[j].reset();
    } else if (!m.args[j]) {
      return Status::RuntimeError("window '" + ctx.name + "': aggregate " +
                                  m.opt.aggregates[j].name + " has no expression");
    } else {
      SR_RETURN_IF_ERROR(m.args[j]->Bind(ctx.input_layout));
    }
  }
  if (m.fire_on) SR_RETURN_IF_ERROR(m.fire_on->Bind(ctx.input_layout));
  m.out_fields.clear();
  for (const FieldPath& path : ctx.output_layout) {
    std::pair<OutField, size_t> f{OutField::kMissing, 0};
    if (path.size() == 1) {
      const std::string& name = path[0];
      for (size_t i = 0; i < m.opt.key_names.size(); ++i) {
        if (m.opt.key_names[i] == name) f = {OutField::kKey, i};
      }
      if (name == "window_start") f = {OutField::kStart, 0};
      if (name == "window_end") f = {OutField::kEnd, 0};
      for (size_t j = 0; j < m.naggs; ++j) {
        if (m.opt.aggregates[j].name == name) f = {OutField::kAggregate, j};
      }
    }
    m.out_fields.push_back(f);
  }
  m.session = m.opt.window.type == WindowType::kSession;
  m.inline_agg = kNone;
  m.general.assign(m.naggs, kNone);
  size_t general = 0;
  for (size_t j = 0; j < m.naggs; ++j) {
    AggKind kind = m.opt.aggregates[j].kind;
    if (m.inline_agg == kNone && (kind == AggKind::kCount || kind == AggKind::kCountIf)) {
      m.inline_agg = j;
    } else {
      m.general[j] = general++;
    }
  }
  m.general_count = general;
  // Checkpoints capture the table: keep spare segments for its copy-on-write copies.
  m.table.Init(general, ctx.checkpointing);
  m.encoding = StateEncoding();
  for (const auto& a : m.opt.aggregates) m.encoding.kinds.push_back(a.kind);
  m.encoding.inline_agg = m.inline_agg;
  m.encoding.general = m.general;
  m.encoding.max_parallelism = ctx.max_parallelism;
  m.cache_limit = 0;
  if (!ctx.working_dir.empty() && ctx.state_cache_bytes > 0) {
    m.cache_limit = std::max<size_t>(ctx.state_cache_bytes / m.table.bytes_per_entry(), 8);
  }
  m.vals.assign(m.naggs, Value());
  m.result_vals.assign(m.naggs, Value());
  m.key_vals.assign(m.opt.key_paths.size(), Value());
  m.labels.clear();
  for (size_t i = 0; i < m.key_vals.size(); ++i) {
    m.labels.emplace_back(i == 0 ? "{" : "");
    AppendJsonString(m.labels.back(), m.opt.key_names[i]);
    m.labels.back().push_back(':');
  }
  for (size_t j = 0; j < m.naggs; ++j) {
    m.labels.emplace_back(",");
    AppendJsonString(m.labels.back(), m.opt.aggregates[j].name);
    m.labels.back().push_back(':');
  }
  m.ectx.arena = &m.eval_arena;
  if (ctx.restore != nullptr && ctx.restore->state != nullptr) {
    SR_RETURN_IF_ERROR(RestoreFrom(*ctx.restore->state, ctx.first_key_group, ctx.last_key_group));
  }
  return Status::Ok();
}

Status WindowOperator::Snapshot(int64_t /*checkpoint_id*/, OperatorSnapshot* out) {
  Impl& m = *impl_;
  SR_RETURN_IF_ERROR(m.Advance(m.wm));  // windows due but not fired yet (firing in slices)
  SR_RETURN_IF_ERROR(m.Flush());
  // What the previous checkpoint cost this thread after its barrier: the segments it copied.
  const uint64_t copies = m.table.copies() + m.table.taken_copies();
  if (copies > m.reported_copies) {
    spdlog::debug(
        "window {} #{}: {} state segment(s) copied ({} of them ahead, by the checkpoint's "
        "thread) in {} us since the last barrier",
        m.ctx->name, m.ctx->subtask, copies - m.reported_copies,
        m.table.taken_copies() - m.reported_taken, (m.table.copy_ns() - m.reported_copy_ns) / 1000);
    m.reported_copies = copies;
    m.reported_taken = m.table.taken_copies();
    m.reported_copy_ns = m.table.copy_ns();
  }
  if (m.table.live() == 0 && !m.spill) return Status::Ok();
  // Only views are taken here (copy-on-write segments, an LMDB read transaction); the
  // coordinator encodes them.
  SR_ASSIGN_OR_RETURN(StateView view, m.View());
  out->deferred_state = std::make_shared<WindowDeferredState>(std::move(view));
  return Status::Ok();
}

Status WindowOperator::Process(BatchPtr batch) {
  Impl& m = *impl_;
  m.eval_arena.Reset();
  const size_t n = batch->rows.size();
  const bool advance_per_row = !m.ctx->row_watermarks;
  for (size_t r = 0; r < std::min(n, Impl::kPrepareAhead); ++r) m.Prepare(*batch, r);
  for (size_t r = 0; r < n; ++r) {
    if (r + Impl::kRecordAhead < n) {
      const Row& far = batch->rows[r + Impl::kRecordAhead];
      if (far.flags & kRowKeyed) Prefetch(far.keyed);
    }
    if (r + Impl::kPrepareAhead < n) m.Prepare(*batch, r + Impl::kPrepareAhead);
    if (r + Impl::kEntryAhead < n) m.PrefetchEntry(r + Impl::kEntryAhead);
    if (r + Impl::kAccAhead < n) m.PrefetchAccs(r + Impl::kAccAhead);
    // With row_watermarks a row's own watermark only decides whether it is late; the windows
    // fire at the batch's (the minimum over the producers). That gives the result of reading
    // in file order: a row not late by its own watermark finds its windows open, as every
    // producer's watermark rises through the file and the minimum is at most the row's; a row
    // late by it was late there too.
    if (advance_per_row && batch->rows[r].wm > m.wm) {
      SR_RETURN_IF_ERROR(m.Advance(batch->rows[r].wm));
    }
    SR_RETURN_IF_ERROR(m.ProcessRow(*batch, r, m.ring[r & (Impl::kRing - 1)]));
  }
  SR_RETURN_IF_ERROR(m.Advance(
      batch->watermark, advance_per_row ? std::numeric_limits<size_t>::max() : Impl::kFireSlice));
  SR_RETURN_IF_ERROR(m.EnforceCache());
  return m.Flush();
}

Status WindowOperator::Finish() {
  SR_RETURN_IF_ERROR(impl_->Advance(kMaxTimestamp));
  if (impl_->evicted > 0) {
    spdlog::debug("window '{}' #{}: {} windows evicted to the cache's store, {} read back",
                  impl_->ctx->name, impl_->ctx->subtask, impl_->evicted, impl_->reloaded);
  }
  // Nothing left pending for the store's destructor, which may run on another thread.
  if (impl_->spill) SR_RETURN_IF_ERROR(impl_->spill->Flush());
  return impl_->Flush();
}

uint64_t WindowOperator::records_out() const { return impl_->results; }
uint64_t WindowOperator::late_dropped() const { return impl_->late_dropped; }
int64_t WindowOperator::watermark() const { return impl_->wm; }
size_t WindowOperator::open_windows() const {
  return impl_->table.live() + (impl_->spill ? impl_->spill->size() : 0);
}
size_t WindowOperator::cached_windows() const { return impl_->table.live(); }
uint64_t WindowOperator::evictions() const { return impl_->evicted; }
uint64_t WindowOperator::reloads() const { return impl_->reloaded; }

Status WindowOperator::SnapshotTo(KeyedStateStore& store) {
  SR_ASSIGN_OR_RETURN(StateView view, impl_->View());
  return view.Visit([&](int key_group, std::string_view key, std::string_view ns,
                        std::string_view value) { return store.Put(key_group, key, ns, value); });
}

Status DecodeWindowState(std::string_view ns, std::string_view value, WindowStateEntry* out) {
  ByteReader nsr(ns);
  if (!nsr.GetI64(&out->window.start) || !nsr.GetI64(&out->window.end) || !nsr.done()) {
    return Status::RuntimeError("a window entry has a damaged namespace");
  }
  ByteReader in(value);
  uint8_t version, flags, o1, o2, n;
  if (!in.GetU8(&version)) return Status::RuntimeError("an empty window entry");
  if (version != kStateVersion) {
    return Status::RuntimeError("window state version " + std::to_string(version) +
                                " is not supported (this build reads version 1)");
  }
  if (!in.GetU8(&flags) || !in.GetU8(&o1) || !in.GetU8(&o2) || !in.GetU64(&out->arrival) ||
      !in.GetU8(&n)) {
    return Status::RuntimeError("a truncated window entry");
  }
  out->fired = (flags & kFlagFired) != 0;
  out->origin = static_cast<uint16_t>((o1 << 8) | o2);
  out->kinds.resize(n);
  if (out->accumulators.size() < n) out->accumulators.resize(n);
  for (size_t j = 0; j < n; ++j) {
    uint8_t kind;
    if (!in.GetU8(&kind)) return Status::RuntimeError("a truncated window entry");
    if (kind > static_cast<uint8_t>(AggKind::kCountDistinct)) {
      return Status::RuntimeError("unknown aggregate kind " + std::to_string(kind));
    }
    out->kinds[j] = static_cast<AggKind>(kind);
    if (!DecodeAccumulator(out->kinds[j], in, &out->accumulators[j])) {
      return Status::RuntimeError("a damaged accumulator");
    }
  }
  if (!in.done()) return Status::RuntimeError("trailing bytes in a window entry");
  return Status::Ok();
}

void AppendWindowStateJson(const WindowStateEntry& entry,
                           const std::vector<std::string>& aggregate_names, std::string* out) {
  *out += "\"window\":{\"start\":" + std::to_string(entry.window.start) +
          ",\"end\":" + std::to_string(entry.window.end) + "},\"value\":{\"fired\":";
  *out += entry.fired ? "true" : "false";
  *out += ",\"aggregates\":[";
  for (size_t j = 0; j < entry.kinds.size(); ++j) {
    if (j) *out += ',';
    *out += '{';
    if (j < aggregate_names.size()) {
      *out += "\"name\":";
      AppendJsonString(*out, aggregate_names[j]);
      *out += ',';
    }
    *out += "\"kind\":\"";
    *out += AggName(entry.kinds[j]);
    *out += "\",\"result\":";
    AppendJson(*out, AggregateResult(entry.kinds[j], entry.accumulators[j]));
    *out += ",\"accumulator\":";
    AppendAccumulatorJson(entry.kinds[j], entry.accumulators[j], out);
    *out += '}';
  }
  *out += "]}";
}

Status DescribeWindowState(std::string_view ns, std::string_view value,
                           std::string_view schema_json, std::string* out) {
  WindowStateEntry entry;
  SR_RETURN_IF_ERROR(DecodeWindowState(ns, value, &entry));
  std::vector<std::string> names;
  if (!schema_json.empty()) {
    rapidjson::Document doc;
    doc.Parse(schema_json.data(), schema_json.size());
    if (!doc.HasParseError() && doc.IsObject() && doc.HasMember("aggregates") &&
        doc["aggregates"].IsArray()) {
      for (const auto& a : doc["aggregates"].GetArray()) {
        names.push_back(a.IsString() ? a.GetString() : "");
      }
    }
  }
  AppendWindowStateJson(entry, names, out);
  return Status::Ok();
}

Status WindowOperator::RestoreFrom(const KeyedStateStore& store, int first_key_group,
                                   int last_key_group) {
  Impl& m = *impl_;
  SR_RETURN_IF_ERROR(store.ForEach(
      first_key_group, last_key_group,
      [&](int, std::string_view key, std::string_view ns, std::string_view value) -> Status {
        SR_RETURN_IF_ERROR(m.AddStoredWindow(key, ns, value));
        // State larger than the cache goes on to its store.
        return m.EnforceCache();
      }));
  // Restoring runs on the job's thread (Open), processing on the task's: a write transaction
  // of the cache's store must not cross over (LMDB binds it to its thread).
  if (m.spill) SR_RETURN_IF_ERROR(m.spill->Flush());
  return Status::Ok();
}

}  // namespace streamrun
