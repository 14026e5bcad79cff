// The `window` step's settings, through the real pipeline loader (engine/pipeline.h) and
// expression parser (engine/expr.h).
#include <doctest/doctest.h>

#include <string>

#include "engine/pipeline.h"

namespace streamrun {
namespace {

// A pipeline whose step `w` is a window with the given settings (indented by 4).
std::string PipelineWith(const std::string& settings) {
  return "name: t\n"
         "sources:\n"
         "  clicks:\n"
         "    type: file\n"
         "    path: in.jsonl\n"
         "steps:\n"
         "  w:\n"
         "    type: window\n"
         "    from: clicks\n" +
         settings +
         "sinks:\n"
         "  out:\n"
         "    type: stdout\n"
         "    from: w\n";
}

Result<PipelineSpec> Load(const std::string& settings) {
  return LoadPipelineFromString(PipelineWith(settings), "/tmp/p.yaml", LoadOptions());
}

std::string ErrorOf(const std::string& settings) {
  auto r = Load(settings);
  return r.ok() ? "(loaded)" : r.status().message();
}

}  // namespace

TEST_CASE("window config: a valid window declares its key, inputs and late stream") {
  auto r = Load(
      "    key_by: [user.id, page]\n"
      "    window: { type: tumbling, size: 1m }\n"
      "    aggregate:\n"
      "      clicks: count()\n"
      "      buys: count_if(action == \"purchase\")\n"
      "      spent: sum(price)\n"
      "    trigger: { fire_on: action == \"logout\" }\n");
  REQUIRE_MESSAGE(r.ok(), r.status().message());
  const NodeSpec* w = r->Find("w");
  REQUIRE(w != nullptr);
  CHECK(w->config->keyed());
  CHECK(w->config->key_fields() == std::vector<FieldPath>{{"user", "id"}, {"page"}});
  CHECK(w->config->side_outputs() == std::vector<std::string>{"late"});
  CHECK(w->config->InputFields({{"clicks"}}) ==
        std::vector<FieldPath>{{"user", "id"}, {"page"}, {"action"}, {"price"}});
  CHECK(w->config->CreateOperator().ok());
}

TEST_CASE("window config: an unknown aggregate is located with a did-you-mean") {
  std::string e = ErrorOf(
      "    key_by: userId\n"
      "    window: { type: tumbling, size: 1m }\n"
      "    aggregate:\n"
      "      clicks: cuont()\n");
  CHECK(e.find("p.yaml:13:15:") != std::string::npos);
  CHECK(e.find("did you mean 'count'") != std::string::npos);
}

TEST_CASE("window config: an error in an aggregate's expression points into the call") {
  std::string e = ErrorOf(
      "    key_by: userId\n"
      "    window: { type: tumbling, size: 1m }\n"
      "    aggregate:\n"
      "      total: sum(price +)\n");
  // "sum(" is 4 columns, "price +" 7 more: the error is at or after column 15 + 4.
  CHECK(e.find("p.yaml:13:") != std::string::npos);
}

TEST_CASE("window config: key_by takes field paths only") {
  CHECK(ErrorOf("    key_by: [userId + 1]\n"
                "    window: { type: tumbling, size: 1m }\n"
                "    aggregate: { n: count() }\n")
            .find("key_by takes field paths") != std::string::npos);
}

TEST_CASE("window config: window sizes and keys are checked") {
  CHECK(ErrorOf("    key_by: u\n"
                "    window: { type: tumbling, size: 0s }\n"
                "    aggregate: { n: count() }\n")
            .find("size must be more than 0") != std::string::npos);
  CHECK(ErrorOf("    key_by: u\n"
                "    window: { type: sliding, size: 1m, slide: 2m }\n"
                "    aggregate: { n: count() }\n")
            .find("slide must not be larger than size") != std::string::npos);
  CHECK(ErrorOf("    key_by: u\n"
                "    window: { type: session, gap: 0s }\n"
                "    aggregate: { n: count() }\n")
            .find("gap must be more than 0") != std::string::npos);
  CHECK(ErrorOf("    key_by: u\n"
                "    window: { type: tumbling, size: 1m, gap: 1s }\n"
                "    aggregate: { n: count() }\n") != "(loaded)");
  CHECK(ErrorOf("    key_by: u\n"
                "    window: { type: tumbling, size: 1m }\n"
                "    aggregate: { n: count() }\n"
                "    trigger: { fire_on: x == 1, every: 2 }\n") != "(loaded)");
  CHECK(ErrorOf("    key_by: u\n"
                "    window: { type: tumbling, size: 1m }\n"
                "    aggregate: { window_end: count() }\n")
            .find("already writes") != std::string::npos);
  CHECK(Load("    key_by: u\n"
             "    window: { type: sliding, size: 10s, slide: 3s }\n"
             "    aggregate: { n: count() }\n"
             "    allowed_lateness: 5s\n")
            .ok() == true);
}

}  // namespace streamrun
