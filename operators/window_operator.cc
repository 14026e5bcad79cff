// The window step's operator (see window_operator.h for the semantics and the state format).
#include "operators/window_operator.h"

#include <algorithm>
#include <limits>

#include "engine/byte_codec.h"
#include "engine/huge_page_allocator.h"
#include "engine/key.h"

namespace streamrun {
namespace {

constexpr uint32_t kNone = std::numeric_limits<uint32_t>::max();
constexpr uint8_t kStateVersion = 1;  // do not change: on disk (see window_operator.h)
constexpr uint8_t kFlagFired = 1;     // do not change: on disk

// What a slot of the output layout holds.
enum class OutField : uint8_t { kMissing, kKey, kStart, kEnd, kAggregate };

}  // namespace

struct WindowOperator::Impl {
  // One key with open windows. Entries are reused after their key's last window is dropped, with
  // their string and vector capacity, so a recurring key allocates nothing.
  //
  // Laid out so that a record of a known key touches one cache line: what a lookup and the
  // per-record update read (hash, key bytes, last window, origin) come first, in 64 bytes.
  struct alignas(64) Key {
    uint64_t hash = 0;
    // The window the key's last record went to (tumbling, sliding), or kNone: saves the walk to
    // its windows, which matters when every record of 100,000 keys misses the cache.
    TimeWindow last_bounds;
    uint32_t last_window = kNone;
    uint16_t origin = 0;      // of the key's last record
    std::string bytes;        // EncodeKey (short keys are stored inline)
    uint64_t seq = 0;         // order of arrival, for a deterministic firing order
    int key_group = 0;
    std::vector<uint32_t> windows;
  };
  struct Window {
    TimeWindow bounds;
    uint32_t key = kNone;
    uint32_t gen = 0;         // bumped when the window is dropped or re-timed: stale timers skip
    bool live = false;
    bool fired = false;       // its watermark firing (at end - 1) has happened
    bool has_timer = false;
    int64_t timer = 0;        // when has_timer: the time of its live timer
  };
  // Timers are a min-heap ordered by time, then key arrival, then window start. A window has at
  // most one live timer; when its next action moves later (a session grows), the timer finds
  // that out when it fires and re-arms itself, so a growing session costs no heap operations.
  struct Timer {
    int64_t time;
    uint64_t key_seq;
    int64_t start;
    uint32_t window;
    uint32_t gen;
  };
  static bool Later(const Timer& a, const Timer& b) {
    if (a.time != b.time) return a.time > b.time;
    if (a.key_seq != b.key_seq) return a.key_seq > b.key_seq;
    return a.start > b.start;
  }

  WindowOptions opt;
  std::vector<std::unique_ptr<Expr>> args;
  std::unique_ptr<Expr> fire_on;
  const OperatorContext* ctx = nullptr;
  size_t naggs = 0;
  std::vector<int> key_slots;
  std::vector<std::pair<OutField, size_t>> out_fields;

  std::vector<Key, HugePageAllocator<Key>> keys;
  std::vector<uint32_t> free_keys;
  // Open addressing with linear probing. A slot holds a key index (kNone: empty) and the high
  // half of its hash, so a probe rarely touches a Key that is not the one looked for.
  struct Slot {
    uint32_t key = kNone;
    uint32_t tag = 0;
  };
  std::vector<Slot, HugePageAllocator<Slot>> table;
  size_t live_keys = 0;
  uint64_t next_key_seq = 0;

  std::vector<Window, HugePageAllocator<Window>> windows;
  std::vector<Accumulator, HugePageAllocator<Accumulator>> accs;  // windows.size() * naggs
  std::vector<uint32_t> free_windows;
  size_t live_windows = 0;
  std::vector<Timer, HugePageAllocator<Timer>> timers;

  int64_t wm = kMinTimestamp;
  int64_t emit_wm = kMinTimestamp;  // the smallest `wm` a result still to come may carry
  bool wm_sent = true;              // downstream has seen `wm`
  uint64_t arrival = 0;             // records added so far: first/last order
  uint64_t results = 0;
  uint64_t late_dropped = 0;

  BatchPtr out;
  BatchPtr late;
  // Per-record scratch, reused.
  std::string distinct_scratch, json;
  std::vector<Value> vals, key_vals, result_vals;
  std::vector<TimeWindow> assigned, open;
  std::vector<size_t> merged;
  std::vector<uint32_t> targets, merged_ids;
  Arena eval_arena;
  EvalContext ectx;

  // Keys of the rows ahead of the one being processed, so that their hash-table slot, Key and
  // accumulators are fetched from memory while earlier rows are processed: with many keys each
  // of these is a cache miss, and overlapping them is most of the operator's speed.
  static constexpr size_t kRing = 32;      // a power of two larger than kPrepareAhead
  static constexpr size_t kPrepareAhead = 16;
  static constexpr size_t kKeyAhead = 8;
  static constexpr size_t kAccAhead = 4;
  std::string ring_keys[kRing];
  uint64_t ring_hashes[kRing] = {};

  void Prepare(const Batch& batch, size_t r) {
    std::string& key = ring_keys[r & (kRing - 1)];
    EncodeKey(batch.SlotsOf(r), key_slots, &key);
    uint64_t hash = HashKey(key);
    ring_hashes[r & (kRing - 1)] = hash;
    if (!table.empty()) __builtin_prefetch(&table[hash & (table.size() - 1)]);
  }
  void PrefetchKey(size_t r) {
    if (table.empty()) return;
    const Slot& slot = table[ring_hashes[r & (kRing - 1)] & (table.size() - 1)];
    if (slot.key == kNone) return;
    __builtin_prefetch(&keys[slot.key]);  // the first line holds all a known key's record needs
  }
  void PrefetchAccumulators(size_t r) {
    if (table.empty() || naggs == 0) return;
    const Slot& slot = table[ring_hashes[r & (kRing - 1)] & (table.size() - 1)];
    if (slot.key == kNone) return;
    uint32_t w = keys[slot.key].last_window;
    if (w != kNone) {
      __builtin_prefetch(AccsOf(w));
      __builtin_prefetch(&windows[w]);
    }
  }

  Accumulator* AccsOf(uint32_t w) { return accs.data() + static_cast<size_t>(w) * naggs; }

  // --- keys ---

  uint32_t FindKey(uint64_t hash, std::string_view bytes) const {
    if (table.empty()) return kNone;
    size_t mask = table.size() - 1;
    auto tag = static_cast<uint32_t>(hash >> 32);
    for (size_t i = hash & mask;; i = (i + 1) & mask) {
      const Slot& slot = table[i];
      if (slot.key == kNone) return kNone;
      if (slot.tag == tag && keys[slot.key].hash == hash && keys[slot.key].bytes == bytes) {
        return slot.key;
      }
    }
  }

  void InsertSlot(uint32_t k) {
    size_t mask = table.size() - 1;
    size_t i = keys[k].hash & mask;
    while (table[i].key != kNone) i = (i + 1) & mask;
    table[i] = {k, static_cast<uint32_t>(keys[k].hash >> 32)};
  }

  uint32_t AddKey(uint64_t hash, std::string_view bytes) {
    if ((live_keys + 1) * 2 > table.size()) {
      std::vector<Slot, HugePageAllocator<Slot>> old;
      old.swap(table);
      table.assign(old.empty() ? 1024 : old.size() * 2, Slot());
      for (const Slot& slot : old) {
        if (slot.key != kNone) InsertSlot(slot.key);
      }
    }
    uint32_t k;
    if (!free_keys.empty()) {
      k = free_keys.back();
      free_keys.pop_back();
    } else {
      k = static_cast<uint32_t>(keys.size());
      keys.emplace_back();
    }
    Key& key = keys[k];
    key.hash = hash;
    key.bytes.assign(bytes);
    key.seq = next_key_seq++;
    key.key_group = KeyGroupOf(hash, ctx->max_parallelism);
    key.windows.clear();
    key.last_window = kNone;
    InsertSlot(k);
    ++live_keys;
    return k;
  }

  // Removes key `k` from the table (backward-shift deletion keeps probe chains intact).
  void RemoveKey(uint32_t k) {
    size_t mask = table.size() - 1;
    size_t i = keys[k].hash & mask;
    while (table[i].key != k) i = (i + 1) & mask;
    size_t j = i;
    while (true) {
      j = (j + 1) & mask;
      if (table[j].key == kNone) break;
      size_t home = keys[table[j].key].hash & mask;
      // The entry at j may move to the hole at i unless its home lies cyclically in (i, j].
      bool stays = i <= j ? (home > i && home <= j) : (home > i || home <= j);
      if (!stays) {
        table[i] = table[j];
        i = j;
      }
    }
    table[i] = Slot();
    free_keys.push_back(k);
    --live_keys;
  }

  // --- windows and timers ---

  uint32_t NewWindow(uint32_t k, TimeWindow bounds) {
    uint32_t w;
    if (!free_windows.empty()) {
      w = free_windows.back();
      free_windows.pop_back();
    } else {
      w = static_cast<uint32_t>(windows.size());
      windows.emplace_back();
      accs.resize(accs.size() + naggs);
    }
    Window& win = windows[w];
    win.bounds = bounds;
    win.key = k;
    win.live = true;
    win.fired = false;
    win.has_timer = false;
    keys[k].windows.push_back(w);
    ++live_windows;
    return w;
  }

  // Drops window `w` and, when it was its key's last, the key.
  void DropWindow(uint32_t w) {
    Window& win = windows[w];
    Key& key = keys[win.key];
    if (key.last_window == w) key.last_window = kNone;
    auto it = std::find(key.windows.begin(), key.windows.end(), w);
    *it = key.windows.back();
    key.windows.pop_back();
    if (key.windows.empty()) RemoveKey(win.key);
    Accumulator* a = AccsOf(w);
    for (size_t j = 0; j < naggs; ++j) a[j].Reset();
    win.live = false;
    win.has_timer = false;
    ++win.gen;
    free_windows.push_back(w);
    --live_windows;
  }

  // When the window next needs attention: its firing at end - 1, then its clean-up at
  // end - 1 + allowed_lateness.
  int64_t NextTime(const Window& win) const {
    int64_t fire = win.bounds.max_timestamp();
    return win.fired ? SaturatingAdd(fire, opt.allowed_lateness_ms) : fire;
  }

  void Schedule(uint32_t w) {
    Window& win = windows[w];
    int64_t t = NextTime(win);
    if (win.has_timer && win.timer <= t) return;  // the live timer re-arms itself when it fires
    ++win.gen;
    win.has_timer = true;
    win.timer = t;
    timers.push_back({t, keys[win.key].seq, win.bounds.start, w, win.gen});
    std::push_heap(timers.begin(), timers.end(), Later);
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
  Status Fire(uint32_t w, int64_t stamp) {
    const Window& win = windows[w];
    const Key& key = keys[win.key];
    const Accumulator* a = AccsOf(w);
    size_t pos = 0;
    for (size_t i = 0; i < key_vals.size(); ++i) {
      if (!DecodeKeyValue(key.bytes, &pos, &key_vals[i])) key_vals[i] = Value::Null();
    }
    for (size_t j = 0; j < naggs; ++j) result_vals[j] = AggregateResult(opt.aggregates[j].kind, a[j]);

    json.clear();
    json.push_back('{');
    for (size_t i = 0; i < key_vals.size(); ++i) {
      AppendJsonString(json, opt.key_names[i]);
      json.push_back(':');
      AppendJson(json, key_vals[i]);
      json.push_back(',');
    }
    json.append("\"window_start\":");
    AppendJson(json, Value::Int(win.bounds.start));
    json.append(",\"window_end\":");
    AppendJson(json, Value::Int(win.bounds.end));
    for (size_t j = 0; j < naggs; ++j) {
      json.push_back(',');
      AppendJsonString(json, opt.aggregates[j].name);
      json.push_back(':');
      AppendJson(json, result_vals[j]);
    }
    json.push_back('}');

    if (!out) out = NewBatch(static_cast<uint32_t>(ctx->output_layout.size()));
    Row proto;
    proto.ts = win.bounds.max_timestamp();
    proto.wm = stamp;
    proto.raw = out->arena.Copy(json);
    proto.origin = key.origin;
    size_t r = out->AddRow(proto);
    Value* slots = out->SlotsOf(r);
    for (size_t s = 0; s < out_fields.size(); ++s) {
      auto [what, i] = out_fields[s];
      switch (what) {
        case OutField::kKey: slots[s] = CopyValue(out->arena, key_vals[i]); break;
        case OutField::kStart: slots[s] = Value::Int(win.bounds.start); break;
        case OutField::kEnd: slots[s] = Value::Int(win.bounds.end); break;
        case OutField::kAggregate: slots[s] = CopyValue(out->arena, result_vals[i]); break;
        case OutField::kMissing: break;
      }
    }
    ++results;
    if (out->full()) return EmitOut();
    return Status::Ok();
  }

  // Moves the watermark to `to`, firing and dropping windows in timer order.
  Status Advance(int64_t to) {
    if (to <= wm) return Status::Ok();
    int64_t stamp = wm;
    wm = to;
    emit_wm = stamp;
    wm_sent = false;
    while (!timers.empty() && timers.front().time <= to) {
      std::pop_heap(timers.begin(), timers.end(), Later);
      Timer t = timers.back();
      timers.pop_back();
      if (!windows[t.window].live || windows[t.window].gen != t.gen) continue;
      windows[t.window].has_timer = false;
      while (true) {
        int64_t next = NextTime(windows[t.window]);
        if (next > t.time) {
          Schedule(t.window);
          break;
        }
        if (!windows[t.window].fired) {
          SR_RETURN_IF_ERROR(Fire(t.window, stamp));
          windows[t.window].fired = true;
          continue;
        }
        DropWindow(t.window);
        break;
      }
    }
    emit_wm = wm;
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
    late->CopyRowFrom(batch, r);
    if (late->full()) return EmitLate();
    return Status::Ok();
  }

  bool IsLate(const TimeWindow& w) const {
    return SaturatingAdd(w.max_timestamp(), opt.allowed_lateness_ms) <= wm;
  }

  // `key_bytes` and `hash`: the row's key (EncodeKey, HashKey).
  Status ProcessRow(const Batch& batch, size_t r, const std::string& key_bytes, uint64_t hash) {
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
        return Report(batch, r, std::string("trigger fire_on must be true or false, got a ") +
                                    KindName(v.kind()));
      }
    }

    uint32_t k = kNone;
    targets.clear();
    if (opt.window.type != WindowType::kSession) {
      AssignWindows(opt.window, row.ts, &assigned);
      for (const TimeWindow& tw : assigned) {
        if (IsLate(tw)) continue;
        if (k == kNone) {
          k = FindKey(hash, key_bytes);
          if (k == kNone) k = AddKey(hash, key_bytes);
        }
        Key& key = keys[k];
        uint32_t w = kNone;
        if (key.last_window != kNone && key.last_bounds == tw) {
          w = key.last_window;
        } else {
          for (uint32_t c : key.windows) {
            if (windows[c].bounds == tw) w = c;
          }
          if (w == kNone) w = NewWindow(k, tw);
          key.last_window = w;
          key.last_bounds = tw;
        }
        targets.push_back(w);
      }
    } else {
      TimeWindow fresh{row.ts, SaturatingAdd(row.ts, opt.window.gap)};
      k = FindKey(hash, key_bytes);
      open.clear();
      if (k != kNone) {
        for (uint32_t c : keys[k].windows) open.push_back(windows[c].bounds);
      }
      TimeWindow cover = MergeSessions(open, fresh, &merged);
      // Windows that are not late never merge into a late one, so only a lone window is late.
      if (!IsLate(cover)) {
        if (k == kNone) k = AddKey(hash, key_bytes);
        if (merged.empty()) {
          targets.push_back(NewWindow(k, cover));
        } else {
          merged_ids.clear();
          for (size_t m : merged) merged_ids.push_back(keys[k].windows[m]);
          uint32_t into = merged_ids[0];
          for (size_t m = 1; m < merged_ids.size(); ++m) {
            Accumulator* dst = AccsOf(into);
            Accumulator* src = AccsOf(merged_ids[m]);
            for (size_t j = 0; j < naggs; ++j) MergeAccumulators(opt.aggregates[j].kind, dst[j], src[j]);
            DropWindow(merged_ids[m]);  // `into` keeps the key alive
          }
          windows[into].bounds = cover;
          windows[into].fired = false;  // the merged window fires at its own end (or at once)
          targets.push_back(into);
        }
      }
    }
    if (targets.empty()) return SendLate(batch, r);

    keys[k].origin = row.origin;
    uint64_t seq = arrival++;
    for (uint32_t w : targets) {
      Accumulator* a = AccsOf(w);
      for (size_t j = 0; j < naggs; ++j) {
        AggKind kind = opt.aggregates[j].kind;
        if (kind == AggKind::kCount) {
          ++a[j].count;
        } else if (!vals[j].is_nullish()) {
          Accumulate(kind, a[j], vals[j], seq, &distinct_scratch);
        }
      }
      if (fire_now) {
        SR_RETURN_IF_ERROR(Fire(w, wm));
        DropWindow(w);
      } else if (windows[w].bounds.max_timestamp() <= wm) {
        // Late but within allowed_lateness, or a session merged behind the watermark: fire
        // now with everything the window holds (Flink's EventTimeTrigger.onElement).
        SR_RETURN_IF_ERROR(Fire(w, wm));
        windows[w].fired = true;
        Schedule(w);
      } else {
        Schedule(w);
      }
    }
    return Status::Ok();
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
      return Status::RuntimeError("window '" + ctx.name + "': key field " + FieldPathToString(path) +
                                  " is not in its input layout");
    }
    m.key_slots.push_back(static_cast<int>(it - ctx.input_layout.begin()));
  }
  for (size_t j = 0; j < m.naggs; ++j) {
    if (m.opt.aggregates[j].kind == AggKind::kCount) {
      m.args[j].reset();
    } else if (!m.args[j]) {
      return Status::RuntimeError("window '" + ctx.name + "': aggregate " + m.opt.aggregates[j].name +
                                  " has no expression");
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
  m.vals.assign(m.naggs, Value());
  m.result_vals.assign(m.naggs, Value());
  m.key_vals.assign(m.opt.key_paths.size(), Value());
  m.ectx.arena = &m.eval_arena;
  return Status::Ok();
}

Status WindowOperator::Process(BatchPtr batch) {
  Impl& m = *impl_;
  m.eval_arena.Reset();
  const size_t n = batch->rows.size();
  for (size_t r = 0; r < std::min(n, Impl::kPrepareAhead); ++r) m.Prepare(*batch, r);
  for (size_t r = 0; r < n; ++r) {
    if (r + Impl::kPrepareAhead < n) m.Prepare(*batch, r + Impl::kPrepareAhead);
    if (r + Impl::kKeyAhead < n) m.PrefetchKey(r + Impl::kKeyAhead);
    if (r + Impl::kAccAhead < n) m.PrefetchAccumulators(r + Impl::kAccAhead);
    if (batch->rows[r].wm > m.wm) SR_RETURN_IF_ERROR(m.Advance(batch->rows[r].wm));
    size_t i = r & (Impl::kRing - 1);
    SR_RETURN_IF_ERROR(m.ProcessRow(*batch, r, m.ring_keys[i], m.ring_hashes[i]));
  }
  SR_RETURN_IF_ERROR(m.Advance(batch->watermark));
  return m.Flush();
}

Status WindowOperator::Finish() {
  SR_RETURN_IF_ERROR(impl_->Advance(kMaxTimestamp));
  return impl_->Flush();
}

uint64_t WindowOperator::records_out() const { return impl_->results; }
uint64_t WindowOperator::late_dropped() const { return impl_->late_dropped; }
int64_t WindowOperator::watermark() const { return impl_->wm; }
size_t WindowOperator::open_windows() const { return impl_->live_windows; }

Status WindowOperator::SnapshotTo(KeyedStateStore& store) const {
  const Impl& m = *impl_;
  std::string ns, value;
  for (size_t w = 0; w < m.windows.size(); ++w) {
    const Impl::Window& win = m.windows[w];
    if (!win.live) continue;
    const Impl::Key& key = m.keys[win.key];
    ns.clear();
    PutI64(ns, win.bounds.start);
    PutI64(ns, win.bounds.end);
    value.clear();
    PutU8(value, kStateVersion);
    PutU8(value, win.fired ? kFlagFired : 0);
    PutU8(value, static_cast<uint8_t>(key.origin >> 8));
    PutU8(value, static_cast<uint8_t>(key.origin & 0xFF));
    PutU64(value, m.arrival);
    PutU8(value, static_cast<uint8_t>(m.naggs));
    const Accumulator* a = m.accs.data() + w * m.naggs;
    for (size_t j = 0; j < m.naggs; ++j) {
      PutU8(value, static_cast<uint8_t>(m.opt.aggregates[j].kind));
      EncodeAccumulator(m.opt.aggregates[j].kind, a[j], &value);
    }
    SR_RETURN_IF_ERROR(store.Put(key.key_group, key.bytes, ns, value));
  }
  return Status::Ok();
}

Status WindowOperator::RestoreFrom(const KeyedStateStore& store, int first_key_group,
                                   int last_key_group) {
  Impl& m = *impl_;
  const std::string& name = m.ctx->name;
  auto corrupt = [&](std::string_view why) {
    return Status::RuntimeError("state of window step '" + name + "': " + std::string(why));
  };
  return store.ForEach(first_key_group, last_key_group, [&](int, std::string_view key_bytes,
                                                            std::string_view ns,
                                                            std::string_view value) -> Status {
    ByteReader nsr(ns);
    TimeWindow bounds;
    if (!nsr.GetI64(&bounds.start) || !nsr.GetI64(&bounds.end) || !nsr.done()) {
      return corrupt("a window entry has a damaged namespace");
    }
    ByteReader in(value);
    uint8_t version, flags, o1, o2, n;
    uint64_t arrival;
    if (!in.GetU8(&version)) return corrupt("an empty window entry");
    if (version != kStateVersion) {
      return corrupt("window state version " + std::to_string(version) +
                     " is not supported (this build reads version 1)");
    }
    if (!in.GetU8(&flags) || !in.GetU8(&o1) || !in.GetU8(&o2) || !in.GetU64(&arrival) ||
        !in.GetU8(&n)) {
      return corrupt("a truncated window entry");
    }
    if (n != m.naggs) return corrupt("its aggregates changed since the state was written");
    uint64_t hash = HashKey(key_bytes);
    uint32_t k = m.FindKey(hash, key_bytes);
    if (k == kNone) k = m.AddKey(hash, key_bytes);
    m.keys[k].origin = static_cast<uint16_t>((o1 << 8) | o2);
    uint32_t w = m.NewWindow(k, bounds);
    m.windows[w].fired = (flags & kFlagFired) != 0;
    Accumulator* a = m.AccsOf(w);
    for (size_t j = 0; j < m.naggs; ++j) {
      uint8_t kind;
      if (!in.GetU8(&kind)) return corrupt("a truncated window entry");
      if (kind != static_cast<uint8_t>(m.opt.aggregates[j].kind)) {
        return corrupt("its aggregates changed since the state was written");
      }
      if (!DecodeAccumulator(m.opt.aggregates[j].kind, in, &a[j])) {
        return corrupt("a damaged accumulator");
      }
    }
    if (!in.done()) return corrupt("trailing bytes in a window entry");
    m.arrival = std::max(m.arrival, arrival);
    m.Schedule(w);
    return Status::Ok();
  });
}

}  // namespace streamrun
