// WindowOperator, driven with hand-made batches. Aggregate arguments and triggers use small fake
// expressions (a field read, a field equality), so these tests need no expression parser.
#include "operators/window_operator.h"

#include <doctest/doctest.h>

#include <algorithm>
#include <map>
#include <random>

#include "engine/key.h"
#include "engine/memory_state_store.h"
#include "engine/state_file.h"
#include "engine/watermark.h"
#include "tests/engine/temp_dir.h"

namespace streamrun {
namespace {

// Reads one field; with `equals`, the boolean `field == equals` (null when the field is missing).
class FakeExpr : public Expr {
 public:
  explicit FakeExpr(FieldPath path, std::optional<std::string> equals = std::nullopt)
      : fields_{std::move(path)},
        equals_(std::move(equals)),
        text_(FieldPathToString(fields_[0])) {}
  const std::vector<FieldPath>& fields() const override { return fields_; }
  Status Bind(const Layout& layout) override {
    auto it = std::find(layout.begin(), layout.end(), fields_[0]);
    if (it == layout.end()) return Status::PipelineError("no field " + text_);
    slot_ = static_cast<int>(it - layout.begin());
    return Status::Ok();
  }
  Value Eval(EvalContext& ctx) const override {
    Value v = ctx.slots[slot_];
    if (!equals_) return v;
    if (v.is_missing()) return Value::Null();
    if (v.kind() == Value::Kind::kInt && v.as_int() == -1) {
      ctx.error = "boom";  // lets tests make an expression fail
      return Value();
    }
    return Value::Bool(v.kind() == Value::Kind::kString && v.as_string() == *equals_);
  }
  const std::string& text() const override { return text_; }

 private:
  std::vector<FieldPath> fields_;
  std::optional<std::string> equals_;
  std::string text_;
  int slot_ = -1;
};

class CaptureEmitter : public Emitter {
 public:
  Status Emit(BatchPtr batch) override {
    batches.push_back(std::move(batch));
    return Status::Ok();
  }
  std::vector<std::string> Raws() const {
    std::vector<std::string> out;
    for (const auto& b : batches) {
      for (const auto& r : b->rows) out.emplace_back(r.raw);
    }
    return out;
  }
  std::vector<BatchPtr> batches;
};

class CaptureErrors : public ErrorReporter {
 public:
  Status Report(const Batch& batch, size_t row, std::string_view where,
                std::string_view reason) override {
    reports.push_back(std::string(batch.rows[row].raw) + " in " + std::string(where) + ": " +
                      std::string(reason));
    return Status::Ok();
  }
  Status ReportInput(uint16_t, uint64_t, std::string_view, std::string_view) override {
    return Status::Ok();
  }
  Status Flush() override { return Status::Ok(); }
  std::vector<std::string> reports;
};

// One input record: layout [user], [v], [action].
struct Rec {
  std::string user;
  int64_t ts;
  Value v = Value();
  std::string action = "";
};

const Layout kInput = {{"user"}, {"v"}, {"action"}};

std::string RawOf(const Rec& r) { return r.user + "@" + std::to_string(r.ts); }

// Input batches with each row's `wm` as a source with `delay` max_out_of_orderness computes it.
std::vector<BatchPtr> MakeBatches(const std::vector<Rec>& recs, size_t per_batch,
                                  int64_t delay = 0) {
  std::vector<BatchPtr> out;
  WatermarkGenerator gen(delay);
  for (size_t i = 0; i < recs.size(); i += per_batch) {
    BatchPtr b = NewBatch(3);
    for (size_t j = i; j < std::min(recs.size(), i + per_batch); ++j) {
      const Rec& rec = recs[j];
      Row row;
      row.ts = rec.ts;
      row.wm = gen.current();
      row.raw = b->arena.Copy(RawOf(rec));
      row.origin = 7;
      size_t r = b->AddRow(row);
      Value* s = b->SlotsOf(r);
      s[0] = Value::String(b->arena.Copy(rec.user));
      s[1] = CopyValue(b->arena, rec.v.kind() == Value::Kind::kString
                                     ? Value::String(b->arena.Copy(rec.v.as_string()))
                                     : rec.v);
      if (!rec.action.empty()) s[2] = Value::String(b->arena.Copy(rec.action));
      gen.Observe(rec.ts);
    }
    b->watermark = gen.current();
    out.push_back(std::move(b));
  }
  return out;
}

struct AggDef {
  std::string name;
  AggKind kind;
};

struct Harness {
  // `cache_bytes` > 0: the operator keeps only that much state in memory (at least 8 windows)
  // and evicts the rest to an LMDB store in a temporary directory.
  Harness(WindowSpec spec, std::vector<AggDef> aggs, int64_t lateness = 0,
          std::optional<std::string> fire_on = std::nullopt, bool with_late = true,
          Layout output = {}, uint64_t cache_bytes = 0, bool row_watermarks = false) {
    WindowOptions opt;
    opt.key_paths = {{"user"}};
    opt.key_names = {"user"};
    opt.window = spec;
    opt.allowed_lateness_ms = lateness;
    std::vector<std::unique_ptr<Expr>> args;
    for (const auto& a : aggs) {
      opt.aggregates.push_back({a.name, a.kind});
      args.push_back(a.kind == AggKind::kCount ? nullptr
                                               : std::make_unique<FakeExpr>(FieldPath{"v"}));
    }
    std::unique_ptr<Expr> trigger;
    if (fire_on) trigger = std::make_unique<FakeExpr>(FieldPath{"action"}, *fire_on);
    op = std::make_unique<WindowOperator>(opt, std::move(args), std::move(trigger));
    ctx.name = "w";
    ctx.input_layout = kInput;
    ctx.output_layout = std::move(output);
    ctx.main = &main;
    ctx.late = with_late ? &late : nullptr;
    ctx.errors = &errors;
    ctx.row_watermarks = row_watermarks;
    if (cache_bytes > 0) {
      working = std::make_unique<TempDir>();
      ctx.working_dir = *working / "w-0";
      ctx.state_cache_bytes = cache_bytes;
    }
    REQUIRE(op->Open(ctx).ok());
  }
  void Feed(std::vector<BatchPtr> batches, bool finish = true) {
    for (auto& b : batches) REQUIRE(op->Process(std::move(b)).ok());
    if (finish) REQUIRE(op->Finish().ok());
  }
  std::vector<std::string> Results() const { return main.Raws(); }
  std::vector<std::string> Late() const { return late.Raws(); }

  OperatorContext ctx;
  CaptureEmitter main, late;
  CaptureErrors errors;
  std::unique_ptr<TempDir> working;  // outlives the operator
  std::unique_ptr<WindowOperator> op;
};

std::vector<std::string> Sorted(std::vector<std::string> v) {
  std::sort(v.begin(), v.end());
  return v;
}

const WindowSpec kTumbling10{WindowType::kTumbling, 10, 0, 0};

}  // namespace

TEST_CASE("window: tumbling counts per key fire when the watermark passes the window end") {
  Harness h(kTumbling10, {{"n", AggKind::kCount}});
  h.Feed(MakeBatches({{"a", 1}, {"b", 2}, {"a", 9}, {"a", 10}, {"b", 25}}, 100), false);
  // The watermark after the batch is 24: windows [0,10) and [10,20) have fired, [20,30) not yet.
  CHECK(h.Results() ==
        std::vector<std::string>{R"({"user":"a","window_start":0,"window_end":10,"n":2})",
                                 R"({"user":"b","window_start":0,"window_end":10,"n":1})",
                                 R"({"user":"a","window_start":10,"window_end":20,"n":1})"});
  CHECK(h.main.batches.back()->watermark == 24);
  REQUIRE(h.op->Finish().ok());
  CHECK(h.Results().back() == R"({"user":"b","window_start":20,"window_end":30,"n":1})");
  CHECK(h.main.batches.back()->watermark == kMaxTimestamp);
  CHECK(h.op->open_windows() == 0);
}

TEST_CASE("window: result rows carry ts = end - 1, the origin and the requested slots") {
  Harness h(kTumbling10, {{"n", AggKind::kCount}, {"s", AggKind::kSum}}, 0, std::nullopt, true,
            {{"s"}, {"user"}, {"window_end"}, {"other"}, {"window_start"}, {"n"}});
  h.Feed(MakeBatches({{"a", 3, Value::Int(4)}, {"a", 5, Value::Int(6)}}, 10));
  REQUIRE(h.main.batches.size() == 2);  // the watermark after the input, then Finish's results
  CHECK(h.main.batches[0]->rows.empty());
  const Batch& b = *h.main.batches[1];
  REQUIRE(b.rows.size() == 1);
  CHECK(b.width == 6);
  CHECK(b.rows[0].ts == 9);
  CHECK(b.rows[0].origin == 7);
  const Value* s = b.SlotsOf(0);
  CHECK(s[0] == Value::Int(10));
  CHECK(s[1].as_string() == "a");
  CHECK(s[2] == Value::Int(10));
  CHECK(s[3].is_missing());
  CHECK(s[4] == Value::Int(0));
  CHECK(s[5] == Value::Int(2));
}

TEST_CASE("window: results fired by a watermark carry the watermark before it") {
  Harness h(kTumbling10, {{"n", AggKind::kCount}});
  h.Feed(MakeBatches({{"a", 1}, {"a", 30}}, 1), false);
  REQUIRE(h.Results().size() == 1);
  // A downstream 10 ms window must not take this result (ts 9) for late.
  for (const auto& b : h.main.batches) {
    for (const auto& r : b->rows) CHECK(r.wm < r.ts);
  }
}

TEST_CASE("window: every watermark advance reaches downstream, even without results") {
  Harness h(kTumbling10, {{"n", AggKind::kCount}});
  h.Feed(MakeBatches({{"a", 1}, {"a", 2}, {"a", 3}}, 1), false);
  REQUIRE(!h.main.batches.empty());
  CHECK(h.main.batches.back()->watermark == 2);
  CHECK(h.Results().empty());
}

TEST_CASE("window: late record goes to side stream") {
  Harness h(kTumbling10, {{"n", AggKind::kCount}});
  h.Feed(MakeBatches({{"a", 5}, {"a", 15}, {"a", 9}, {"b", 12}}, 2));
  CHECK(h.Late() == std::vector<std::string>{"a@9"});
  CHECK(h.late.batches[0]->width == 3);
  CHECK(h.late.batches[0]->SlotsOf(0)[0].as_string() == "a");
  CHECK(Sorted(h.Results()) == Sorted({R"({"user":"a","window_start":0,"window_end":10,"n":1})",
                                       R"({"user":"a","window_start":10,"window_end":20,"n":1})",
                                       R"({"user":"b","window_start":10,"window_end":20,"n":1})"}));
}

TEST_CASE("window: with row watermarks a row is late by its own, and windows fire at the batch's") {
  // As an order-free window reads two producers (OperatorContext::row_watermarks): rows keep
  // their source's watermark, the batch carries the minimum over the producers.
  Harness h(kTumbling10, {{"n", AggKind::kCount}}, 0, std::nullopt, true, {}, 0,
            /*row_watermarks=*/true);
  std::vector<BatchPtr> batches = MakeBatches({{"a", 5}, {"a", 15}}, 10);
  for (Row& row : batches[0]->rows) row.wm = 12;  // far into the file
  batches[0]->watermark = 3;                      // the other producer is behind
  std::vector<BatchPtr> behind = MakeBatches({{"b", 7}}, 10);
  behind[0]->rows[0].wm = 2;
  behind[0]->watermark = 20;
  batches.push_back(std::move(behind[0]));
  h.Feed(std::move(batches), false);
  // a@5 is late by its own watermark (12 > 9) though the window's is 3; b@7 (own 2) is not,
  // though a later row was at 12; [0,10) and [10,20) fire at 20.
  CHECK(h.Late() == std::vector<std::string>{"a@5"});
  CHECK(Sorted(h.Results()) == Sorted({R"({"user":"b","window_start":0,"window_end":10,"n":1})",
                                       R"({"user":"a","window_start":10,"window_end":20,"n":1})"}));
}

TEST_CASE("window: with row watermarks due windows fire 1,024 per input batch, all by a snapshot") {
  Harness h(kTumbling10, {{"n", AggKind::kCount}}, 0, std::nullopt, true, {}, 0,
            /*row_watermarks=*/true);
  // 2,500 users with one record each in [0, 10), then a batch whose watermark (20) makes all
  // 2,500 windows due at once.
  std::vector<Rec> recs;
  for (int u = 0; u < 2500; ++u) recs.push_back({"u" + std::to_string(u), u % 10});
  std::vector<BatchPtr> batches = MakeBatches(recs, 1000);
  for (auto& b : batches) {
    for (Row& row : b->rows) row.wm = 0;
    b->watermark = 0;
  }
  h.Feed(std::move(batches), false);
  CHECK(h.Results().empty());
  auto tick = [&](std::vector<Rec> rows, int64_t own_wm) {
    std::vector<BatchPtr> b = MakeBatches(rows, 10);
    if (b.empty()) b.push_back(NewBatch(3));
    for (Row& row : b[0]->rows) row.wm = own_wm;
    b[0]->watermark = 20;
    h.Feed(std::move(b), false);
  };
  tick({}, 0);
  CHECK(h.Results().size() == 1024);
  // Until the last due window has fired, results and batches carry the watermark from before.
  CHECK(h.main.batches.back()->watermark == 0);
  // A record of a due window that has not fired yet is late by its own watermark, and a record
  // of a later window opens it.
  tick({{"u2499", 9}, {"u0", 25}}, 20);
  CHECK(h.Late() == std::vector<std::string>{"u2499@9"});
  CHECK(h.Results().size() == 2048);
  OperatorSnapshot snap;
  REQUIRE(h.op->Snapshot(1, &snap).ok());
  std::vector<std::string> results = h.Results();
  REQUIRE(results.size() == 2500);
  CHECK(h.main.batches.back()->watermark == 20);
  std::vector<std::string> expect;
  for (int u = 0; u < 2500; ++u) {
    expect.push_back(R"({"user":"u)" + std::to_string(u) +
                     R"(","window_start":0,"window_end":10,"n":1})");
  }
  CHECK(Sorted(results) == Sorted(expect));
  CHECK(h.op->open_windows() == 1);  // u0's [20, 30)
  REQUIRE(h.op->Finish().ok());
  CHECK(h.Results().back() == R"({"user":"u0","window_start":20,"window_end":30,"n":1})");
}

TEST_CASE("window: without row watermarks every due window fires at once") {
  Harness h(kTumbling10, {{"n", AggKind::kCount}});
  std::vector<Rec> recs;
  for (int u = 0; u < 2500; ++u) recs.push_back({"u" + std::to_string(u), 5});
  recs.push_back({"z", 25});
  h.Feed(MakeBatches(recs, 3000), false);
  CHECK(h.Results().size() == 2500);
}

TEST_CASE("window: late records are counted when nobody reads the late stream") {
  Harness h(kTumbling10, {{"n", AggKind::kCount}}, 0, std::nullopt, /*with_late=*/false);
  h.Feed(MakeBatches({{"a", 5}, {"a", 15}, {"a", 9}}, 1));
  CHECK(h.op->late_dropped() == 1);
}

TEST_CASE("window: with allowed lateness a late record fires the window again") {
  Harness h(kTumbling10, {{"n", AggKind::kCount}}, /*lateness=*/10);
  // wm before "a@7" is 14: [0,10) fired at 9 and is kept until 9 + 10 = 19.
  h.Feed(MakeBatches({{"a", 5}, {"a", 15}, {"a", 7}, {"a", 21}, {"a", 8}}, 1));
  CHECK(h.Results() ==
        std::vector<std::string>{R"({"user":"a","window_start":0,"window_end":10,"n":1})",
                                 R"({"user":"a","window_start":0,"window_end":10,"n":2})",
                                 R"({"user":"a","window_start":10,"window_end":20,"n":1})",
                                 R"({"user":"a","window_start":20,"window_end":30,"n":1})"});
  // wm before "a@8" is 20 >= 19: the window's state is gone, so a@8 is late.
  CHECK(h.Late() == std::vector<std::string>{"a@8"});
}

TEST_CASE("window: a window first opened by a record within the lateness fires at once") {
  Harness h(kTumbling10, {{"n", AggKind::kCount}}, 10);
  h.Feed(MakeBatches({{"a", 15}, {"b", 3}}, 1), false);
  CHECK(h.Results() ==
        std::vector<std::string>{R"({"user":"b","window_start":0,"window_end":10,"n":1})"});
}

TEST_CASE("window: fire_on fires the window with the record and closes it") {
  Harness h(kTumbling10, {{"n", AggKind::kCount}}, 0, std::string("logout"));
  h.Feed(MakeBatches({{"a", 1}, {"a", 2, Value(), "logout"}, {"a", 3}, {"b", 4}}, 10));
  CHECK(h.Results() ==
        std::vector<std::string>{R"({"user":"a","window_start":0,"window_end":10,"n":2})",
                                 R"({"user":"a","window_start":0,"window_end":10,"n":1})",
                                 R"({"user":"b","window_start":0,"window_end":10,"n":1})"});
}

TEST_CASE("window: fire_on closes a session; the next record opens a new one") {
  Harness h({WindowType::kSession, 0, 0, 10}, {{"n", AggKind::kCount}}, 0, std::string("logout"));
  h.Feed(MakeBatches({{"a", 1}, {"a", 5, Value(), "logout"}, {"a", 6}, {"a", 8}}, 10));
  CHECK(h.Results() ==
        std::vector<std::string>{R"({"user":"a","window_start":1,"window_end":15,"n":2})",
                                 R"({"user":"a","window_start":6,"window_end":18,"n":2})"});
}

TEST_CASE("window: sessions merge when they touch and when a record bridges them") {
  Harness h({WindowType::kSession, 0, 0, 10},
            {{"n", AggKind::kCount}, {"first", AggKind::kFirst}, {"last", AggKind::kLast}});
  // a: 0 and 20 are separate sessions until 10 touches [0,10) and [20,30) ... bridging them.
  // b: 0 then 10: [0,10) and [10,20) touch, so they merge.
  h.Feed(MakeBatches({{"a", 0, Value::Int(1)},
                      {"a", 20, Value::Int(2)},
                      {"b", 0, Value::Int(5)},
                      {"a", 10, Value::Int(3)},
                      {"b", 10, Value::Int(6)},
                      {"b", 40, Value::Int(7)}},
                     1, /*delay=*/100));
  CHECK(Sorted(h.Results()) ==
        Sorted({R"({"user":"a","window_start":0,"window_end":30,"n":3,"first":1,"last":3})",
                R"({"user":"b","window_start":0,"window_end":20,"n":2,"first":5,"last":6})",
                R"({"user":"b","window_start":40,"window_end":50,"n":1,"first":7,"last":7})"}));
}

TEST_CASE("window: sliding windows count a record in each window holding it") {
  Harness h({WindowType::kSliding, 10, 5, 0}, {{"n", AggKind::kCount}});
  h.Feed(MakeBatches({{"a", 7}, {"a", 12}}, 10));
  CHECK(h.Results() ==
        std::vector<std::string>{R"({"user":"a","window_start":0,"window_end":10,"n":1})",
                                 R"({"user":"a","window_start":5,"window_end":15,"n":2})",
                                 R"({"user":"a","window_start":10,"window_end":20,"n":1})"});
}

TEST_CASE("window: every aggregate, skipping null and missing values") {
  std::vector<AggDef> aggs = {{"count", AggKind::kCount}, {"sum", AggKind::kSum},
                              {"min", AggKind::kMin},     {"max", AggKind::kMax},
                              {"avg", AggKind::kAvg},     {"first", AggKind::kFirst},
                              {"last", AggKind::kLast},   {"distinct", AggKind::kCountDistinct}};
  Harness h(kTumbling10, aggs);
  h.Feed(MakeBatches({{"a", 1, Value::Null()},
                      {"a", 2, Value::Int(4)},
                      {"a", 3, Value::Double(1.0)},
                      {"a", 4},
                      {"a", 5, Value::Int(1)},
                      {"b", 6, Value::Null()},
                      {"b", 7}},
                     3));
  CHECK(
      Sorted(h.Results()) ==
      Sorted(
          {R"({"user":"a","window_start":0,"window_end":10,"count":5,"sum":6.0,"min":1.0,"max":4,"avg":2.0,"first":4,"last":1,"distinct":2})",
           R"({"user":"b","window_start":0,"window_end":10,"count":2,"sum":null,"min":null,"max":null,"avg":null,"first":null,"last":null,"distinct":0})"}));
}

TEST_CASE("window: count_if counts true values of its condition") {
  WindowOptions opt;
  opt.key_paths = {{"user"}};
  opt.key_names = {"user"};
  opt.window = kTumbling10;
  opt.aggregates = {{"buys", AggKind::kCountIf}};
  std::vector<std::unique_ptr<Expr>> args;
  args.push_back(std::make_unique<FakeExpr>(FieldPath{"action"}, std::string("buy")));
  WindowOperator op(opt, std::move(args), nullptr);
  CaptureEmitter main;
  OperatorContext ctx;
  ctx.input_layout = kInput;
  ctx.main = &main;
  REQUIRE(op.Open(ctx).ok());
  auto batches = MakeBatches(
      {{"a", 1, Value(), "buy"}, {"a", 2, Value(), "view"}, {"a", 3}, {"a", 4, Value(), "buy"}},
      10);
  REQUIRE(op.Process(std::move(batches[0])).ok());
  REQUIRE(op.Finish().ok());
  CHECK(main.Raws() ==
        std::vector<std::string>{R"({"user":"a","window_start":0,"window_end":10,"buys":2})"});
}

TEST_CASE("window: a record an expression fails on is reported and skipped") {
  Harness h(kTumbling10, {{"n", AggKind::kCount}, {"s", AggKind::kSum}}, 0, std::string("x"));
  h.Feed(MakeBatches(
      {{"a", 1, Value::Int(2)}, {"a", 2, Value::String("oops")}, {"a", 3, Value::Int(-1), ""}},
      10));
  CHECK(h.errors.reports ==
        std::vector<std::string>{"a@2 in w: s: sum() needs numbers, got a string"});
  CHECK(h.Results() ==
        std::vector<std::string>{R"({"user":"a","window_start":0,"window_end":10,"n":2,"s":1})"});
}

TEST_CASE("window: keys are encoded as EncodeKey does, so 1 and 1.0 are one key") {
  WindowOptions opt;
  opt.key_paths = {{"v"}};
  opt.key_names = {"v"};
  opt.window = kTumbling10;
  opt.aggregates = {{"n", AggKind::kCount}};
  WindowOperator op(opt, {}, nullptr);
  CaptureEmitter main;
  OperatorContext ctx;
  ctx.input_layout = kInput;
  ctx.main = &main;
  REQUIRE(op.Open(ctx).ok());
  auto batches = MakeBatches({{"a", 1, Value::Int(1)}, {"b", 2, Value::Double(1.0)}, {"c", 3}}, 10);
  REQUIRE(op.Process(std::move(batches[0])).ok());
  REQUIRE(op.Finish().ok());
  CHECK(Sorted(main.Raws()) == Sorted({R"({"v":1,"window_start":0,"window_end":10,"n":2})",
                                       R"({"v":null,"window_start":0,"window_end":10,"n":1})"}));
}

// --- batching invariance, the reference model, snapshots ---

namespace {

std::vector<Rec> RandomRecs(std::mt19937_64& rng, size_t n, int users, int64_t jitter) {
  std::vector<Rec> recs;
  int64_t t = -200;
  for (size_t i = 0; i < n; ++i) {
    t += static_cast<int64_t>(rng() % 4);
    Rec r;
    r.user = "u" + std::to_string(rng() % users);
    r.ts = t - static_cast<int64_t>(rng() % (jitter + 1));
    int x = static_cast<int>(rng() % 10);
    r.v = x == 0 ? Value::Null() : (x == 1 ? Value() : Value::Int(x));
    recs.push_back(std::move(r));
  }
  return recs;
}

// Cuts `recs` into batches of random sizes.
std::vector<BatchPtr> RandomBatches(std::mt19937_64& rng, const std::vector<Rec>& recs,
                                    int64_t delay) {
  // Same watermarks as MakeBatches: compute them in one pass, then cut.
  std::vector<BatchPtr> all = MakeBatches(recs, recs.size(), delay);
  std::vector<BatchPtr> out;
  const Batch& src = *all[0];
  size_t i = 0;
  while (i < src.rows.size()) {
    size_t n = 1 + rng() % 50;
    BatchPtr b = NewBatch(3);
    for (size_t j = i; j < std::min(src.rows.size(), i + n); ++j) b->CopyRowFrom(src, j);
    i += n;
    b->watermark = i < src.rows.size() ? src.rows[i].wm : src.watermark;
    out.push_back(std::move(b));
  }
  return out;
}

// A brute-force model of the contract: windows as plain records, scanned in full for every input.
struct Reference {
  struct Win {
    std::string user;
    int64_t start, end;
    int64_t n = 0, sum = 0, values = 0;
    bool fired = false;
  };
  WindowSpec spec;
  int64_t lateness;
  int64_t wm = kMinTimestamp;
  std::vector<Win> wins;
  std::vector<std::string> results, late;

  std::string Result(const Win& w) {
    return R"({"user":")" + w.user + R"(","window_start":)" + std::to_string(w.start) +
           R"(,"window_end":)" + std::to_string(w.end) + R"(,"n":)" + std::to_string(w.n) +
           R"(,"s":)" + (w.values ? std::to_string(w.sum) : "null") + "}";
  }
  void Advance(int64_t to) {
    if (to <= wm) return;
    wm = to;
    for (auto& w : wins) {
      if (!w.fired && w.end - 1 <= wm) {
        results.push_back(Result(w));
        w.fired = true;
      }
    }
    std::erase_if(wins, [&](const Win& w) { return SaturatingAdd(w.end - 1, lateness) <= wm; });
  }
  void Add(Win& w, const Rec& r) {
    ++w.n;
    if (r.v.kind() == Value::Kind::kInt) w.sum += r.v.as_int(), ++w.values;
    if (w.end - 1 <= wm) {
      results.push_back(Result(w));
      w.fired = true;
    }
  }
  bool Late(int64_t end) const { return SaturatingAdd(end - 1, lateness) <= wm; }
  void Process(const Rec& r, int64_t row_wm) {
    Advance(row_wm);
    if (spec.type != WindowType::kSession) {
      // Tumbling: sliding with slide = size. Every window [start, start + size) holding ts.
      int64_t slide = spec.type == WindowType::kTumbling ? spec.size : spec.slide;
      bool any = false;
      for (int64_t start = r.ts - ((r.ts % slide) + slide) % slide; start > r.ts - spec.size;
           start -= slide) {
        if (Late(start + spec.size)) continue;
        any = true;
        Win* found = nullptr;
        for (auto& w : wins) {
          if (w.user == r.user && w.start == start) found = &w;
        }
        if (found == nullptr) {
          wins.push_back({r.user, start, start + spec.size});
          found = &wins.back();
        }
        Add(*found, r);
      }
      if (!any) late.push_back(RawOf(r));
      return;
    }
    Win fresh{r.user, r.ts, r.ts + spec.gap};
    bool merged = true, any = false;
    while (merged) {
      merged = false;
      for (size_t i = 0; i < wins.size(); ++i) {
        Win& w = wins[i];
        if (w.user != r.user || !(w.start <= fresh.end && w.end >= fresh.start)) continue;
        fresh.start = std::min(fresh.start, w.start);
        fresh.end = std::max(fresh.end, w.end);
        fresh.n += w.n, fresh.sum += w.sum, fresh.values += w.values;
        wins.erase(wins.begin() + static_cast<long>(i));
        merged = any = true;
        break;
      }
    }
    if (!any && Late(fresh.end)) {
      late.push_back(RawOf(r));
      return;
    }
    wins.push_back(fresh);
    Add(wins.back(), r);
  }
};

// Returns the windows the operator evicted.
uint64_t CheckAgainstReference(WindowSpec spec, uint64_t seed, uint64_t cache_bytes = 0) {
  std::mt19937_64 rng(seed);
  int64_t lateness = (rng() % 2) ? 0 : static_cast<int64_t>(rng() % 30);
  int64_t delay = static_cast<int64_t>(rng() % 20);
  auto recs =
      RandomRecs(rng, 3000, 1 + static_cast<int>(rng() % 20), static_cast<int64_t>(rng() % 60));
  CAPTURE(seed);
  CAPTURE(lateness);
  CAPTURE(delay);

  Reference ref{spec, lateness};
  WatermarkGenerator gen(delay);
  for (const Rec& r : recs) {
    ref.Process(r, gen.current());
    gen.Observe(r.ts);
  }
  ref.Advance(kMaxTimestamp);

  Harness h(spec, {{"n", AggKind::kCount}, {"s", AggKind::kSum}}, lateness, std::nullopt, true, {},
            cache_bytes);
  h.Feed(RandomBatches(rng, recs, delay));
  CHECK(Sorted(h.Results()) == Sorted(ref.results));
  CHECK(Sorted(h.Late()) == Sorted(ref.late));
  CHECK(h.op->open_windows() == 0);
  CHECK(h.op->reloads() == h.op->evictions());
  return h.op->evictions();
}

}  // namespace

TEST_CASE("window: results are the same however the input is cut into batches") {
  std::mt19937_64 rng(42);
  auto recs = RandomRecs(rng, 2000, 7, 40);
  for (WindowSpec spec : {kTumbling10, WindowSpec{WindowType::kSliding, 20, 5, 0},
                          WindowSpec{WindowType::kSession, 0, 0, 6}}) {
    Harness one(spec, {{"n", AggKind::kCount}, {"s", AggKind::kSum}, {"l", AggKind::kLast}}, 5);
    one.Feed(MakeBatches(recs, 1, 3));
    Harness big(spec, {{"n", AggKind::kCount}, {"s", AggKind::kSum}, {"l", AggKind::kLast}}, 5);
    big.Feed(MakeBatches(recs, recs.size(), 3));
    CHECK(one.Results() == big.Results());
    CHECK(one.Late() == big.Late());
    CHECK(!one.Late().empty());
  }
}

TEST_CASE(
    "window: tumbling and sliding windows match a brute-force model on random out-of-order input") {
  for (uint64_t seed = 1; seed <= 20; ++seed) {
    CheckAgainstReference({WindowType::kSliding, static_cast<int64_t>(6 + seed * 2), 3, 0},
                          seed + 50);
    CheckAgainstReference({WindowType::kTumbling, static_cast<int64_t>(5 + seed * 3), 0, 0}, seed);
  }
}

TEST_CASE("window: session windows match a brute-force model on random out-of-order input") {
  for (uint64_t seed = 100; seed <= 120; ++seed) {
    CheckAgainstReference({WindowType::kSession, 0, 0, static_cast<int64_t>(1 + seed % 9)}, seed);
  }
}

TEST_CASE(
    "window: with a cache smaller than the state, evicted windows come back and match the model") {
  // 1 byte: the smallest cache (8 windows); 5000 bytes: a few dozen.
  for (uint64_t cache : {uint64_t{1}, uint64_t{5000}}) {
    CAPTURE(cache);
    uint64_t tumbling = 0, sliding = 0, session = 0;
    for (uint64_t seed = 1; seed <= 10; ++seed) {
      tumbling += CheckAgainstReference(
          {WindowType::kTumbling, static_cast<int64_t>(5 + seed * 3), 0, 0}, seed, cache);
      sliding += CheckAgainstReference(
          {WindowType::kSliding, static_cast<int64_t>(6 + seed * 2), 3, 0}, seed + 50, cache);
      session += CheckAgainstReference(
          {WindowType::kSession, 0, 0, static_cast<int64_t>(1 + seed % 9)}, seed + 100, cache);
    }
    const uint64_t at_least = cache == 1 ? 1000 : 10;
    CHECK(tumbling > at_least);
    CHECK(sliding > at_least);
    CHECK(session > at_least);
  }
}

namespace {

int KeyGroupOfUser(const Batch& b, size_t r) {
  std::string key;
  EncodeKey(b.SlotsOf(r), {0}, &key);
  return KeyGroupOf(HashKey(key), 128);
}

// Only the rows of `b` in key groups first..last (same watermarks).
BatchPtr FilterKeyGroups(const Batch& b, int first, int last) {
  BatchPtr out = NewBatch(b.width);
  for (size_t r = 0; r < b.rows.size(); ++r) {
    int kg = KeyGroupOfUser(b, r);
    if (kg >= first && kg <= last) out->CopyRowFrom(b, r);
  }
  out->watermark = b.watermark;
  return out;
}

}  // namespace

namespace {

// One random input (seeded) run whole, and run up to half of its batches (`before`): the test
// takes the state there and continues from it elsewhere.
struct CutRun {
  CutRun(WindowSpec spec, const std::vector<AggDef>& aggs, uint64_t seed, uint64_t cache_bytes = 0)
      : whole(spec, aggs, 12), before(spec, aggs, 12, std::nullopt, true, {}, cache_bytes) {
    std::mt19937_64 rng(seed);
    recs = RandomRecs(rng, 1500, 9, 30);
    whole.Feed(MakeBatches(recs, 64, 4));
    batches = MakeBatches(recs, 64, 4);
    cut = batches.size() / 2;
    for (size_t i = 0; i < cut; ++i) REQUIRE(before.op->Process(std::move(batches[i])).ok());
    results_at_cut = before.Results();
  }
  // Takes a checkpoint's snapshot at the cut, lets `before` go on to the end of the input, and
  // only then encodes the snapshot (as the coordinator does, late): the state file's bytes.
  std::string SnapshotThenGoOn() {
    OperatorSnapshot snap;
    REQUIRE(before.op->Snapshot(1, &snap).ok());
    REQUIRE(snap.deferred_state != nullptr);
    for (size_t i = cut; i < batches.size(); ++i) {
      REQUIRE(before.op->Process(std::move(batches[i])).ok());
    }
    std::string file;
    REQUIRE(snap.deferred_state
                ->WriteTo([&](std::string_view piece) {
                  file.append(piece);
                  return Status::Ok();
                })
                .ok());
    return file;
  }
  // Feeds `after` (restored from the state at the cut) the input after the cut: what the run
  // emitted before the cut and what `after` emitted.
  std::vector<std::string> Resume(Harness& after) {
    auto rest = MakeBatches(recs, 64, 4);
    for (size_t i = cut; i < rest.size(); ++i) REQUIRE(after.op->Process(std::move(rest[i])).ok());
    REQUIRE(after.op->Finish().ok());
    std::vector<std::string> out = results_at_cut;
    for (auto& r : after.Results()) out.push_back(r);
    return out;
  }

  std::vector<Rec> recs;
  Harness whole, before;
  std::vector<BatchPtr> batches;  // those after the cut are left
  size_t cut = 0;
  std::vector<std::string> results_at_cut;
};

}  // namespace

TEST_CASE("window: a snapshot restored into fresh operators continues with identical results") {
  std::vector<AggDef> aggs = {{"n", AggKind::kCount},        {"s", AggKind::kSum},
                              {"mn", AggKind::kMin},         {"f", AggKind::kFirst},
                              {"l", AggKind::kLast},         {"a", AggKind::kAvg},
                              {"d", AggKind::kCountDistinct}};
  for (WindowSpec spec : {kTumbling10, WindowSpec{WindowType::kSession, 0, 0, 8}}) {
    CutRun run(spec, aggs, 7);
    auto& batches = run.batches;
    MemoryStateStore store;
    REQUIRE(run.before.op->SnapshotTo(store).ok());
    CHECK(store.size() == run.before.op->open_windows());

    // At the same parallelism.
    Harness after(spec, aggs, 12);
    REQUIRE(after.op->RestoreFrom(store, 0, 127).ok());
    // Split over two operators by key-group range.
    Harness low(spec, aggs, 12), high(spec, aggs, 12);
    REQUIRE(low.op->RestoreFrom(store, 0, 63).ok());
    REQUIRE(high.op->RestoreFrom(store, 64, 127).ok());
    CHECK(low.op->open_windows() + high.op->open_windows() == store.size());
    for (size_t i = run.cut; i < batches.size(); ++i) {
      REQUIRE(low.op->Process(FilterKeyGroups(*batches[i], 0, 63)).ok());
      REQUIRE(high.op->Process(FilterKeyGroups(*batches[i], 64, 127)).ok());
      REQUIRE(after.op->Process(std::move(batches[i])).ok());
    }
    REQUIRE(after.op->Finish().ok());
    REQUIRE(low.op->Finish().ok());
    REQUIRE(high.op->Finish().ok());

    std::vector<std::string> resumed = run.results_at_cut;
    for (auto& s : after.Results()) resumed.push_back(s);
    CHECK(Sorted(resumed) == Sorted(run.whole.Results()));
    std::vector<std::string> split = run.results_at_cut;
    for (auto& s : low.Results()) split.push_back(s);
    for (auto& s : high.Results()) split.push_back(s);
    CHECK(Sorted(split) == Sorted(run.whole.Results()));
  }
}

namespace {

// Every entry of `store`, as text, sorted.
std::vector<std::string> Dump(const KeyedStateStore& store) {
  std::vector<std::string> out;
  REQUIRE(store
              .ForEach(0, 127,
                       [&](int kg, std::string_view k, std::string_view ns, std::string_view v) {
                         out.push_back(std::to_string(kg) + "|" + std::string(k) + "|" +
                                       std::string(ns) + "|" + std::string(v));
                         return Status::Ok();
                       })
              .ok());
  return Sorted(out);
}

}  // namespace

TEST_CASE("window: a checkpoint's state is what the barrier saw, however late it is encoded") {
  std::vector<AggDef> aggs = {{"n", AggKind::kCount},
                              {"s", AggKind::kSum},
                              {"l", AggKind::kLast},
                              {"d", AggKind::kCountDistinct}};
  for (WindowSpec spec : {kTumbling10, WindowSpec{WindowType::kSession, 0, 0, 8}}) {
    CutRun run(spec, aggs, 11);
    MemoryStateStore at_barrier;
    REQUIRE(run.before.op->SnapshotTo(at_barrier).ok());
    // The operator goes on (and changes, fires and drops windows) before the state is encoded.
    StateFileReader encoded({{"chk", run.SnapshotThenGoOn()}}, 128);
    CHECK(!Dump(at_barrier).empty());
    CHECK(Dump(at_barrier) == Dump(encoded));

    // Restored, it continues as if nothing happened.
    Harness after(spec, aggs, 12);
    REQUIRE(after.op->RestoreFrom(encoded, 0, 127).ok());
    CHECK(Sorted(run.Resume(after)) == Sorted(run.whole.Results()));
  }
}

TEST_CASE("window: a snapshot holds the evicted windows too and restores identically") {
  std::vector<AggDef> aggs = {{"n", AggKind::kCount},
                              {"s", AggKind::kSum},
                              {"f", AggKind::kFirst},
                              {"d", AggKind::kCountDistinct}};
  for (WindowSpec spec :
       {WindowSpec{WindowType::kTumbling, 40, 0, 0}, WindowSpec{WindowType::kSession, 0, 0, 8}}) {
    CutRun cached(spec, aggs, 13, /*cache_bytes=*/1);
    CutRun plain(spec, aggs, 13);
    REQUIRE(cached.before.op->evictions() > 0);
    CHECK(cached.before.op->cached_windows() < cached.before.op->open_windows());
    CHECK(cached.before.op->open_windows() == plain.before.op->open_windows());
    CHECK(cached.results_at_cut.size() == plain.results_at_cut.size());

    // The same state as without a cache, whether written at once or encoded later.
    MemoryStateStore with_cache, without;
    REQUIRE(cached.before.op->SnapshotTo(with_cache).ok());
    REQUIRE(plain.before.op->SnapshotTo(without).ok());
    CHECK(Dump(with_cache) == Dump(without));
    StateFileReader encoded({{"chk", cached.SnapshotThenGoOn()}}, 128);
    CHECK(Dump(encoded) == Dump(without));

    // Restored into an operator with a small cache too, it ends as the whole run did.
    Harness after(spec, aggs, 12, std::nullopt, true, {}, /*cache_bytes=*/1);
    REQUIRE(after.op->RestoreFrom(encoded, 0, 127).ok());
    CHECK(after.op->open_windows() == plain.before.op->open_windows());
    CHECK(after.op->cached_windows() <= 8);
    CHECK(Sorted(cached.Resume(after)) == Sorted(plain.whole.Results()));
  }
}

TEST_CASE("window: restoring state of another version or other aggregates fails clearly") {
  Harness h(kTumbling10, {{"n", AggKind::kCount}});
  MemoryStateStore store;
  std::string key;
  AppendKeyValue(key, Value::String("a"));
  std::string ns(16, '\0');
  REQUIRE(store.Put(1, key, ns, std::string("\x09", 1)).ok());
  Status st = h.op->RestoreFrom(store, 0, 127);
  CHECK(st.message().find("version 9 is not supported") != std::string::npos);

  Harness two(kTumbling10, {{"n", AggKind::kCount}});
  two.Feed(MakeBatches({{"a", 1}}, 1, 0), false);
  MemoryStateStore snap;
  REQUIRE(two.op->SnapshotTo(snap).ok());
  Harness other(kTumbling10, {{"s", AggKind::kSum}});
  CHECK(other.op->RestoreFrom(snap, 0, 127).message().find("aggregates changed") !=
        std::string::npos);
}

}  // namespace streamrun

namespace streamrun {

TEST_CASE("window: state entries decode to what the window holds, with names for state dump") {
  Harness h(kTumbling10, {{"n", AggKind::kCount},
                          {"s", AggKind::kSum},
                          {"f", AggKind::kFirst},
                          {"d", AggKind::kCountDistinct}});
  h.Feed(
      MakeBatches({{"a", 1, Value::Int(5)}, {"a", 2, Value::Int(7)}, {"a", 3, Value::Int(5)}}, 8),
      false);
  MemoryStateStore store;
  REQUIRE(h.op->SnapshotTo(store).ok());
  int entries = 0;
  REQUIRE(
      store
          .ForEach(
              0, 127,
              [&](int, std::string_view, std::string_view ns, std::string_view value) -> Status {
                ++entries;
                WindowStateEntry e;
                REQUIRE(DecodeWindowState(ns, value, &e).ok());
                CHECK(e.window.start == 0);
                CHECK(e.window.end == 10);
                CHECK_FALSE(e.fired);
                REQUIRE(e.kinds.size() == 4);
                CHECK(e.accumulators[0].count == 3);
                std::string json;
                AppendWindowStateJson(e, {"n", "s", "f", "d"}, &json);
                CHECK(json ==
                      "\"window\":{\"start\":0,\"end\":10},\"value\":{\"fired\":false,"
                      "\"aggregates\":["
                      "{\"name\":\"n\",\"kind\":\"count\",\"result\":3,\"accumulator\":{\"count\":"
                      "3}},"
                      "{\"name\":\"s\",\"kind\":\"sum\",\"result\":17,\"accumulator\":{\"count\":3,"
                      "\"sum\":17}},"
                      "{\"name\":\"f\",\"kind\":\"first\",\"result\":5,\"accumulator\":{\"count\":"
                      "3,\"value\":5,\"seq\":0}},"
                      "{\"name\":\"d\",\"kind\":\"count_distinct\",\"result\":2,\"accumulator\":{"
                      "\"distinct\":[5,7]}}]}");
                // Without names (an old snapshot), the kinds still say what each aggregate is.
                json.clear();
                AppendWindowStateJson(e, {}, &json);
                CHECK(json.find("{\"kind\":\"count\",\"result\":3") != std::string::npos);
                // Damage is reported, never read as garbage.
                CHECK_FALSE(DecodeWindowState(ns.substr(0, 8), value, &e).ok());
                CHECK(DecodeWindowState(ns, value.substr(0, value.size() - 1), &e).message() ==
                      "a damaged accumulator");
                CHECK(DecodeWindowState(ns, std::string(value) + "x", &e).message() ==
                      "trailing bytes in a window entry");
                return Status::Ok();
              })
          .ok());
  CHECK(entries == 1);
}

}  // namespace streamrun
