// Tests of the planner (engine/plan.h): parallelism, chaining, exchanges, layouts.
#include "engine/plan.h"

#include <doctest/doctest.h>

#include <string>

namespace streamrun {
namespace {

const char* kPipeline = R"(
name: p
sources:
  clicks: {type: file, path: clicks.jsonl, event_time: ts, on_error: dead_letter}
  more: {type: file, path: more.jsonl, event_time: ts}
steps:
  clean: {type: filter, from: clicks, where: 'userId != null'}
  counts:
    type: window
    from: clean
    key_by: [userId]
    window: {type: tumbling, size: 1m}
    aggregate: {n: count(), pages: count_distinct(page)}
  both:
    type: window
    from: [clicks, more]
    key_by: [userId]
    window: {type: session, gap: 1m}
    aggregate: {n: count()}
sinks:
  out: {type: file, from: counts, path: out.jsonl}
  late: {type: file, from: counts.late, path: late.jsonl}
  bad: {type: stdout, from: clicks.errors}
  b: {type: file, from: both, path: b.jsonl}
)";

PipelineSpec Load() {
  auto spec = LoadPipelineFromString(kPipeline, "/tmp/p.yaml", LoadOptions());
  REQUIRE_MESSAGE(spec.ok(), spec.status().message());
  return std::move(spec).value();
}

const PlanNode& Node(const Plan& plan, const std::string& name) {
  int i = plan.Index(name);
  REQUIRE(i >= 0);
  return plan.nodes[i];
}

}  // namespace

TEST_CASE("plan: at parallelism 1 a filter and a window are chained onto the source") {
  PipelineSpec spec = Load();
  auto plan = BuildPlan(spec, 1);
  REQUIRE(plan.ok());
  // `clicks` has three consumers (clean, both, its errors), so `clean` cannot share its
  // thread... but `counts` can share `clean`'s.
  CHECK_FALSE(Node(*plan, "clean").chained);
  CHECK(Node(*plan, "counts").chained);
  CHECK(Node(*plan, "out").chained);
  CHECK_FALSE(Node(*plan, "late").chained);  // reads a side stream
}

TEST_CASE("plan: at parallelism 2 a split file source feeds a keyed exchange") {
  PipelineSpec spec = Load();
  auto plan = BuildPlan(spec, 2);
  REQUIRE(plan.ok());
  CHECK(Node(*plan, "clicks").parallelism == 2);
  CHECK(Node(*plan, "counts").parallelism == 2);
  CHECK(Node(*plan, "out").parallelism == 1);
  const PlanInput& in = Node(*plan, "counts").inputs[0];
  CHECK(in.kind == EdgeKind::kKeyed);
  // count() and count_distinct() into tumbling windows: as batches come, rows keeping their
  // own watermarks.
  CHECK_FALSE(in.ordered);
  CHECK(in.row_watermarks);
  CHECK(Node(*plan, "out").inputs[0].kind == EdgeKind::kGather);
}

TEST_CASE("plan: a window whose result depends on the order of its records reads in chunk order") {
  // One window per line, each reading the split file `clicks`; `sliding_counts` alone can take
  // batches as they come.
  const char* windows[][2] = {
      {"sliding_counts",
       "window: {type: sliding, size: 2m, slide: 1m}, aggregate: {n: count(), v: count_if(v > 1)}"},
      {"sums", "window: {type: tumbling, size: 1m}, aggregate: {n: count(), s: sum(v)}"},
      {"mins", "window: {type: tumbling, size: 1m}, aggregate: {m: min(v)}"},
      {"firsts", "window: {type: tumbling, size: 1m}, aggregate: {f: first(v)}"},
      {"sessions", "window: {type: session, gap: 1m}, aggregate: {n: count()}"},
      {"lateness",
       "window: {type: tumbling, size: 1m}, allowed_lateness: 10s, aggregate: {n: count()}"},
      {"triggered",
       "window: {type: tumbling, size: 1m}, trigger: {fire_on: v > 9}, aggregate: {n: count()}"},
  };
  for (const auto& w : windows) {
    CAPTURE(w[0]);
    std::string yaml = std::string(R"(
name: p
sources:
  clicks: {type: file, path: clicks.jsonl, event_time: ts}
steps:
  w: {type: window, from: clicks, key_by: [userId], )") +
                       w[1] + R"(}
sinks:
  out: {type: file, from: w, path: out.jsonl}
)";
    auto spec = LoadPipelineFromString(yaml, "/tmp/p.yaml", LoadOptions());
    REQUIRE_MESSAGE(spec.ok(), spec.status().message());
    auto plan = BuildPlan(*spec, 2);
    REQUIRE(plan.ok());
    const PlanInput& in = Node(*plan, "w").inputs[0];
    const bool free = std::string(w[0]) == "sliding_counts";
    CHECK(in.row_watermarks == free);
    CHECK(in.ordered == !free);
    CHECK(Node(*plan, "w").colocated);
  }
}

TEST_CASE("plan: a stream carries only the fields its consumers read") {
  PipelineSpec spec = Load();
  auto plan = BuildPlan(spec, 1);
  REQUIRE(plan.ok());
  // clicks: userId (filter, keys), page (count_distinct), ts (event time); nothing else.
  Layout expected = {{"page"}, {"ts"}, {"userId"}};
  CHECK(Node(*plan, "clicks").out_layout == expected);
  // The window's results are read by a file sink only: no slots.
  CHECK(Node(*plan, "counts").out_layout.empty());
  // Its late stream has its input's layout.
  CHECK(Node(*plan, "counts").late_layout == Node(*plan, "counts").in_layout);
}

TEST_CASE("plan: a union of bounded files is merged by event time; inputs remapped to one layout") {
  PipelineSpec spec = Load();
  auto plan = BuildPlan(spec, 1);
  REQUIRE(plan.ok());
  const PlanNode& both = Node(*plan, "both");
  CHECK(both.inputs.size() == 2);
  CHECK(both.bounded);
  CHECK(both.time_merge);
  // Its inputs come from two independent files: waiting for either cannot deadlock.
  CHECK(both.time_merge_strict);
  CHECK(both.in_layout == Layout{{"userId"}});
  // `clicks` carries more fields than `both` reads: remapped; `more` carries just the key.
  CHECK_FALSE(both.inputs[0].remap.empty());
}

TEST_CASE("plan: a merge whose producers share an upstream may not always wait") {
  auto spec = LoadPipelineFromString(R"(
name: p
sources:
  clicks: {type: file, path: clicks.jsonl, event_time: ts}
steps:
  counts: {type: window, from: clicks, key_by: [userId], window: {type: tumbling, size: 1m}, aggregate: {n: count()}}
  hourly: {type: window, from: counts, key_by: [userId], window: {type: tumbling, size: 1h}, aggregate: {n: count()}}
sinks:
  out: {type: file, from: hourly, path: out.jsonl}
)",
                                     "/tmp/p.yaml", LoadOptions());
  REQUIRE_MESSAGE(spec.ok(), spec.status().message());
  auto plan = BuildPlan(*spec, 2);
  REQUIRE(plan.ok());
  // Two subtasks of `counts` feed each subtask of the window `hourly`: merged, but they share
  // the source upstream.
  CHECK(Node(*plan, "hourly").time_merge);
  CHECK_FALSE(Node(*plan, "hourly").time_merge_strict);
}

TEST_CASE("plan: sinks, and stateless steps feeding only sinks, take batches as they come") {
  PipelineSpec spec = Load();
  auto plan = BuildPlan(spec, 2);
  REQUIRE(plan.ok());
  // Two subtasks of `counts` feed `out`: a file's lines are a multiset, in any order.
  CHECK(Node(*plan, "out").inputs[0].kind == EdgeKind::kGather);
  CHECK_FALSE(Node(*plan, "out").time_merge);
  // `both` is a window over a union: it stays merged.
  CHECK(Node(*plan, "both").time_merge);
}

TEST_CASE(
    "plan: a keyed step reading a split file at its parallelism runs on the source's threads") {
  auto spec = LoadPipelineFromString(R"(
name: p
sources:
  clicks: {type: file, path: clicks.jsonl, event_time: ts}
  shared: {type: file, path: shared.jsonl, event_time: ts}
steps:
  clean: {type: filter, from: clicks, where: 'userId != null'}
  counts: {type: window, from: clean, key_by: [userId], window: {type: tumbling, size: 1m}, aggregate: {n: count()}}
  a: {type: window, from: shared, key_by: [userId], window: {type: tumbling, size: 1m}, aggregate: {n: count()}}
  b: {type: window, from: shared, key_by: [page], window: {type: tumbling, size: 1m}, aggregate: {n: count()}}
sinks:
  out: {type: file, from: counts, path: out.jsonl}
  out_a: {type: file, from: a, path: a.jsonl}
  out_b: {type: file, from: b, path: b.jsonl}
)",
                                     "/tmp/p.yaml", LoadOptions());
  REQUIRE_MESSAGE(spec.ok(), spec.status().message());
  auto plan = BuildPlan(*spec, 2);
  REQUIRE(plan.ok());
  CHECK(Node(*plan, "clean").chained);
  CHECK(Node(*plan, "counts").colocated);
  // A source feeding two keyed steps hosts neither: one guest per thread.
  CHECK_FALSE(Node(*plan, "a").colocated);
  CHECK_FALSE(Node(*plan, "b").colocated);
  // Nothing to take turns with at parallelism 1 (all chained).
  auto p1 = BuildPlan(*spec, 1);
  REQUIRE(p1.ok());
  CHECK_FALSE(Node(*p1, "counts").colocated);
  CHECK(Node(*p1, "counts").chained);
}

TEST_CASE("plan: only nodes at or upstream of an event-time step are told of bare watermarks") {
  PipelineSpec spec = Load();
  auto plan = BuildPlan(spec, 2);
  REQUIRE(plan.ok());
  CHECK(Node(*plan, "clicks").needs_watermarks);
  CHECK(Node(*plan, "clean").needs_watermarks);
  CHECK(Node(*plan, "counts").needs_watermarks);
  CHECK_FALSE(Node(*plan, "out").needs_watermarks);
  CHECK_FALSE(Node(*plan, "late").needs_watermarks);
  CHECK_FALSE(Node(*plan, "bad").needs_watermarks);
}

TEST_CASE("plan: parallelism above max_parallelism is an error") {
  PipelineSpec spec = Load();
  auto plan = BuildPlan(spec, 129);
  CHECK_FALSE(plan.ok());
}

TEST_CASE("plan: graphs name every node and edge") {
  PipelineSpec spec = Load();
  auto plan = BuildPlan(spec, 2);
  REQUIRE(plan.ok());
  std::string dot = PlanToDot(*plan);
  std::string mermaid = PlanToMermaid(*plan);
  for (const char* name :
       {"clicks", "more", "clean", "counts", "both", "out", "late", "bad", "b"}) {
    CHECK(dot.find(std::string("\"") + name + "\"") != std::string::npos);
    CHECK(mermaid.find(std::string("n_") + name) != std::string::npos);
  }
  CHECK(dot.find("\"clean\" -> \"counts\" [label=\"keyed\"]") != std::string::npos);
  CHECK(mermaid.find("n_clicks -.->|errors, gather| n_bad") != std::string::npos);
}

}  // namespace streamrun
