// The `generator` source. Each profile writes its JSON text into the batch arena and fills the
// slots the stream needs from the generated values directly (no JSON parsing).
#include "operators/generator_source.h"

#include <array>
#include <charconv>

#include "operators/factories.h"

namespace streamrun {
namespace {

constexpr int64_t kStartMs = 1700000000000;

// splitmix64: tiny, fast, and the same sequence on every platform.
class SplitMix64 {
 public:
  explicit SplitMix64(uint64_t seed) : s_(seed) {}
  uint64_t Next() {
    uint64_t z = (s_ += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
  }
  uint64_t Below(uint64_t n) { return Next() % n; }

 private:
  uint64_t s_;
};

// One generated event: up to four named fields.
struct Event {
  struct Field {
    std::string_view name;
    Value value;
  };
  std::array<Field, 4> fields;
  int n = 0;
  void Add(std::string_view name, Value v) { fields[n++] = {name, v}; }
};

class Profile {
 public:
  explicit Profile(uint64_t seed) : rng_(seed) {}
  virtual ~Profile() = default;
  // The event number `i`; strings point into `scratch` storage owned by the profile.
  virtual void Next(uint64_t i, Event* e) = 0;

 protected:
  std::string_view Num(std::string& buf, const char* prefix, uint64_t n) {
    buf = prefix;
    char tmp[24];
    auto r = std::to_chars(tmp, tmp + sizeof(tmp), n);
    buf.append(tmp, r.ptr);
    return buf;
  }
  SplitMix64 rng_;
  int64_t clock_ = kStartMs;
};

class SequenceProfile : public Profile {
 public:
  using Profile::Profile;
  void Next(uint64_t i, Event* e) override {
    clock_ += 1 + static_cast<int64_t>(rng_.Below(10));
    e->Add("n", Value::Int(static_cast<int64_t>(i)));
    e->Add("ts", Value::Int(clock_));
  }
};

class ClickstreamProfile : public Profile {
 public:
  using Profile::Profile;
  void Next(uint64_t, Event* e) override {
    static constexpr std::string_view kActions[] = {"view",  "view",  "view",        "view",
                                                    "click", "click", "add_to_cart", "purchase"};
    clock_ += static_cast<int64_t>(rng_.Below(20));
    int64_t ts = clock_;
    if (rng_.Below(10) == 0) ts -= static_cast<int64_t>(rng_.Below(3000));  // out of order
    bool bot = rng_.Below(50) == 0;
    e->Add("userId", Value::String(Num(user_, bot ? "bot" : "u", rng_.Below(bot ? 5 : 1000))));
    e->Add("page", Value::String(Num(page_, "/p/", rng_.Below(50))));
    e->Add("action", Value::String(bot ? std::string_view("bot") : kActions[rng_.Below(8)]));
    e->Add("ts", Value::Int(ts));
  }

 private:
  std::string user_, page_;
};

// Users log in, act with short gaps, log out, and come back after a long pause.
class SessionsProfile : public Profile {
 public:
  explicit SessionsProfile(uint64_t seed) : Profile(seed), state_(kUsers, 0) {}
  void Next(uint64_t, Event* e) override {
    static constexpr std::string_view kActs[] = {"view", "view", "view", "cart_add", "cart_remove"};
    clock_ += static_cast<int64_t>(rng_.Below(200));
    if (rng_.Below(500) == 0) clock_ += 5 * 60 * 1000;  // a quiet period
    uint64_t u = rng_.Below(kUsers);
    std::string_view action;
    if (state_[u] == 0) {
      action = "login";
      state_[u] = 1;
    } else if (rng_.Below(12) == 0) {
      action = "logout";
      state_[u] = 0;
    } else {
      action = kActs[rng_.Below(5)];
    }
    e->Add("userId", Value::String(Num(user_, "u", u)));
    e->Add("action", Value::String(action));
    e->Add("ts", Value::Int(clock_));
  }

 private:
  static constexpr uint64_t kUsers = 200;
  std::vector<uint8_t> state_;
  std::string user_;
};

class GeneratorSource : public SourceOperator {
 public:
  explicit GeneratorSource(const GeneratorOptions& o) : o_(o) {}

  Status Run(SourceContext& ctx) override {
    RecordMaker maker(o_.common, ctx, LineFormat::kJson);
    SR_RETURN_IF_ERROR(maker.Init());
    std::unique_ptr<Profile> profile;
    if (o_.profile == "clickstream")
      profile = std::make_unique<ClickstreamProfile>(o_.seed);
    else if (o_.profile == "sessions")
      profile = std::make_unique<SessionsProfile>(o_.seed);
    else
      profile = std::make_unique<SequenceProfile>(o_.seed);
    const uint32_t width = static_cast<uint32_t>(ctx.layout.size());
    // For each slot: the top-level field it takes, or -2 for $offset, -1 for nothing.
    WatermarkGenerator gen(o_.common.max_out_of_orderness_ms);
    RateLimiter limiter(o_.rate);
    BatchPtr batch = NewBatch(width);
    std::string json;
    uint64_t first = 0;
    if (!ctx.restore_positions.empty()) {
      // Resuming: the generator is deterministic, so it makes and skips the records before the
      // checkpoint's position.
      SR_ASSIGN_OR_RETURN(StreamPosition at, ParseStreamPosition(ctx.restore_positions));
      if (at.end) return Status::Ok();
      first = at.offset;
      Event skipped;
      for (uint64_t i = 0; i < first; ++i) profile->Next(i, &skipped);
      gen.set_max_timestamp(at.max_ts);
    }
    uint64_t last_barrier = 0;
    for (uint64_t i = first; o_.count < 0 || i < static_cast<uint64_t>(o_.count); ++i) {
      if (ctx.barriers != nullptr && ctx.barriers->requested() > last_barrier) {
        last_barrier = ctx.barriers->requested();
        if (!batch->rows.empty()) {
          batch->watermark = gen.current();
          SR_RETURN_IF_ERROR(EmitBatch(ctx, std::move(batch), 0));
          batch = NewBatch(width);
        }
        SR_RETURN_IF_ERROR(
            ctx.barriers->Barrier(last_barrier, StreamPositionJson(i, gen.max_timestamp())));
      }
      if (ctx.drain != nullptr && ctx.drain->load(std::memory_order_relaxed)) break;
      if (limiter.limited() && !limiter.TryAcquire()) {
        if (!batch->rows.empty()) {
          batch->watermark = gen.current();
          SR_RETURN_IF_ERROR(EmitBatch(ctx, std::move(batch), 0));
          batch = NewBatch(width);
        }
        if (!limiter.Acquire(ctx.cancelled)) return Status::Cancelled();
      }
      Event e;
      profile->Next(i, &e);
      json.clear();
      json.push_back('{');
      for (int f = 0; f < e.n; ++f) {
        if (f > 0) json.push_back(',');
        AppendJsonString(json, e.fields[f].name);
        json.push_back(':');
        AppendJson(json, e.fields[f].value);
      }
      json.push_back('}');
      size_t r = batch->AddRow(ctx.origin, i);
      batch->rows[r].raw = batch->arena.Copy(json);
      Value* slots = batch->SlotsOf(r);
      for (uint32_t s = 0; s < width; ++s) {
        const FieldPath& path = ctx.layout[s];
        if (path.size() != 1) continue;
        if (path[0] == "$offset") slots[s] = Value::Int(static_cast<int64_t>(i));
        for (int f = 0; f < e.n; ++f) {
          if (e.fields[f].name == path[0]) slots[s] = CopyValue(batch->arena, e.fields[f].value);
        }
      }
      SR_RETURN_IF_ERROR(maker.FinishRow(*batch, gen));
      if (batch->full()) {
        batch->watermark = gen.current();
        SR_RETURN_IF_ERROR(EmitBatch(ctx, std::move(batch), 0));
        batch = NewBatch(width);
        if (IsCancelled(ctx)) return Status::Cancelled();
      }
    }
    batch->watermark = gen.current();
    return EmitBatch(ctx, std::move(batch), 0);
  }

 private:
  GeneratorOptions o_;
};

class GeneratorConfig : public SourceConfig {
 public:
  explicit GeneratorConfig(GeneratorOptions o)
      : SourceConfig(o.common, LineFormat::kJson), o_(std::move(o)) {}
  int max_subtasks() const override { return 1; }
  bool bounded() const override { return o_.count >= 0; }
  Result<std::unique_ptr<SourceOperator>> CreateSource() const override {
    return std::unique_ptr<SourceOperator>(std::make_unique<GeneratorSource>(o_));
  }
  std::string Describe() const override { return "profile: " + o_.profile; }

 private:
  GeneratorOptions o_;
};

}  // namespace

std::shared_ptr<const NodeConfig> NewGeneratorConfig(GeneratorOptions options) {
  return std::make_shared<GeneratorConfig>(std::move(options));
}

NodeConfigResult MakeGeneratorSource(const ConfigReader& config) {
  SR_RETURN_IF_ERROR(config.CheckKeys(
      {"type", "profile", "count", "rate", "seed", "event_time", "watermark", "on_error"}));
  GeneratorOptions o;
  SR_ASSIGN_OR_RETURN(
      o.profile,
      config.Enum("profile", {"clickstream", "sessions", "sequence", "nexmark"}, std::nullopt));
  if (o.profile == "nexmark")
    return config.ErrorAt("profile", "profile 'nexmark' is not supported yet");
  SR_ASSIGN_OR_RETURN(o.count, config.Int("count", -1, -1));
  SR_ASSIGN_OR_RETURN(o.rate, config.Number("rate", 0.0));
  if (o.rate < 0) return config.ErrorAt("rate", "must not be negative");
  SR_ASSIGN_OR_RETURN(int64_t seed, config.Int("seed", 1));
  o.seed = static_cast<uint64_t>(seed);
  SR_ASSIGN_OR_RETURN(o.common, ReadSourceCommon(config));
  return NewGeneratorConfig(std::move(o));
}

}  // namespace streamrun
