#include "operators/generator_source.h"

#include <doctest/doctest.h>

#include "tests/operators/source_test_util.h"

namespace streamrun {
namespace {

std::vector<CapturedRow> Generate(const std::string& profile, uint64_t seed, int64_t count,
                                  const Layout& layout) {
  GeneratorOptions o;
  o.profile = profile;
  o.seed = seed;
  o.count = count;
  o.common.event_time = "ts";
  o.common.event_time_fields = {{"ts"}};
  o.common.max_out_of_orderness_ms = 5000;
  auto config = NewGeneratorConfig(o);
  CaptureEmitter out;
  CaptureReporter errors;
  std::atomic<bool> cancelled{false};
  SourceContext ctx;
  ctx.layout = layout;
  ctx.out = &out;
  ctx.errors = &errors;
  ctx.cancelled = &cancelled;
  auto src = config->CreateSource();
  REQUIRE(src.ok());
  CHECK(src.value()->Run(ctx).ok());
  std::vector<CapturedRow> rows;
  for (auto& b : out.batches) rows.insert(rows.end(), b.rows.begin(), b.rows.end());
  return rows;
}

TEST_CASE("generator: same seed gives the same bytes, whatever the layout") {
  for (const char* profile : {"clickstream", "sessions", "sequence"}) {
    CAPTURE(std::string(profile));
    auto a = Generate(profile, 7, 3000, {{"ts"}});
    auto b = Generate(profile, 7, 3000, {{"userId"}, {"ts"}, {"$offset"}});
    auto c = Generate(profile, 8, 3000, {{"ts"}});
    REQUIRE(a.size() == 3000);
    REQUIRE(b.size() == 3000);
    bool differs = false;
    for (size_t i = 0; i < a.size(); ++i) {
      CHECK(a[i].raw == b[i].raw);
      CHECK(a[i].ts == b[i].ts);
      CHECK(a[i].wm == b[i].wm);
      CHECK(b[i].slots[2].as_int() == static_cast<int64_t>(i));
      differs = differs || a[i].raw != c[i].raw;
    }
    CHECK(differs);
    CHECK(a[0].ts >= 1700000000000);
  }
}

TEST_CASE("generator: clickstream has out-of-order events and bots") {
  auto rows = Generate("clickstream", 1, 5000, {{"action"}, {"ts"}});
  int late = 0, bots = 0;
  int64_t max_ts = 0;
  for (auto& r : rows) {
    late += r.ts < max_ts;
    max_ts = std::max(max_ts, r.ts);
    bots += r.raw.find("\"action\":\"bot\"") != std::string::npos;
  }
  CHECK(late > 0);
  CHECK(bots > 0);
  CHECK(rows[0].raw.rfind("{\"userId\":", 0) == 0);
}

}  // namespace
}  // namespace streamrun
