// Loading pipeline files. The real operator factories live in operators/; these tests load with
// a small table of test operators (LoadOptions::operator_types) to check the generic parts:
// structure, type lookup, names, `from`, limits, substitution and overrides.
#include "engine/pipeline.h"

#include <doctest/doctest.h>

#include <chrono>
#include <map>
#include <string>

#include "operators/registry.h"

namespace streamrun {
namespace {

// What the test operators record of their settings.
class TestConfig : public NodeConfig {
 public:
  TestConfig(std::vector<std::string> sides, std::string path)
      : sides_(std::move(sides)), path_(std::move(path)) {}
  std::vector<std::string> side_outputs() const override { return sides_; }
  const std::string& path() const { return path_; }

 private:
  std::vector<std::string> sides_;
  std::string path_;
};

Result<std::shared_ptr<const NodeConfig>> TestSource(const ConfigReader& c) {
  SR_RETURN_IF_ERROR(c.CheckKeys({"type", "path"}));
  SR_ASSIGN_OR_RETURN(std::string path, c.Path("path"));
  return std::shared_ptr<const NodeConfig>(
      std::make_shared<TestConfig>(std::vector<std::string>{}, path));
}

Result<std::shared_ptr<const NodeConfig>> TestFilter(const ConfigReader& c) {
  SR_RETURN_IF_ERROR(c.CheckKeys({"type", "from", "where"}));
  SR_ASSIGN_OR_RETURN(auto where, c.Expression("where"));
  return std::shared_ptr<const NodeConfig>(
      std::make_shared<TestConfig>(std::vector<std::string>{}, ""));
}

Result<std::shared_ptr<const NodeConfig>> TestWindow(const ConfigReader& c) {
  SR_RETURN_IF_ERROR(c.CheckKeys({"type", "from", "size"}));
  SR_ASSIGN_OR_RETURN(int64_t size, c.DurationMs("size", std::nullopt));
  (void)size;
  return std::shared_ptr<const NodeConfig>(
      std::make_shared<TestConfig>(std::vector<std::string>{"late"}, ""));
}

Result<std::shared_ptr<const NodeConfig>> TestSink(const ConfigReader& c) {
  SR_RETURN_IF_ERROR(c.CheckKeys({"type", "from", "path"}));
  SR_ASSIGN_OR_RETURN(std::string path, c.Path("path"));
  return std::shared_ptr<const NodeConfig>(
      std::make_shared<TestConfig>(std::vector<std::string>{}, path));
}

const std::vector<OperatorType>& TestTypes() {
  static const std::vector<OperatorType> types = {
      {"file", NodeRole::kSource, "test source", {}, TestSource},
      {"filter", NodeRole::kStep, "test filter", {}, TestFilter},
      {"window", NodeRole::kStep, "test window with a late stream", {}, TestWindow},
      {"file", NodeRole::kSink, "test sink", {}, TestSink},
  };
  return types;
}

LoadOptions TestOptions(std::map<std::string, std::string> env = {}) {
  LoadOptions options;
  options.operator_types = &TestTypes();
  options.env = [env](const std::string& name) -> std::optional<std::string> {
    auto it = env.find(name);
    if (it == env.end()) return std::nullopt;
    return it->second;
  };
  return options;
}

Result<PipelineSpec> Load(std::string_view yaml, const LoadOptions& options = TestOptions()) {
  return LoadPipelineFromString(yaml, "/p/dir/job.yaml", options);
}

PipelineSpec LoadOk(std::string_view yaml, const LoadOptions& options = TestOptions()) {
  Result<PipelineSpec> r = Load(yaml, options);
  REQUIRE_MESSAGE(r.ok(), r.status().message());
  return std::move(r).value();
}

std::string LoadError(std::string_view yaml, const LoadOptions& options = TestOptions()) {
  Result<PipelineSpec> r = Load(yaml, options);
  REQUIRE_MESSAGE(!r.ok(), "loaded although it should have failed:\n", yaml);
  CHECK(r.status().code() == Status::Code::kPipelineError);
  return r.status().message();
}

const char* kGood = R"(name: clicks
parallelism: 2
sources:
  clicks:
    type: file
    path: data/clicks.jsonl
steps:
  clean:
    type: filter
    from: clicks
    where: userId != null
  per_minute:
    type: window
    from: [clean, clicks.errors]
    size: 1m
sinks:
  counts:
    type: file
    from: per_minute
    path: out/counts.jsonl
  late:
    type: file
    from: per_minute.late
    path: /abs/late.jsonl
)";

TEST_CASE("pipeline: a valid file loads with defaults, file order and resolved paths") {
  PipelineSpec spec = LoadOk(kGood);
  CHECK(spec.file == "/p/dir/job.yaml");
  CHECK(spec.dir == "/p/dir");
  CHECK(spec.name == "clicks");
  CHECK(spec.parallelism == 2);
  CHECK(spec.max_parallelism == 128);
  CHECK(spec.state_dir == "/p/dir/.streamrun/clicks");
  CHECK(spec.checkpoints.interval_ms == 0);
  CHECK(spec.checkpoints.exactly_once);
  CHECK_FALSE(spec.restart.fixed_delay);
  REQUIRE(spec.sources.size() == 1);
  REQUIRE(spec.steps.size() == 2);
  REQUIRE(spec.sinks.size() == 2);
  CHECK(spec.steps[0].name == "clean");
  CHECK(spec.steps[1].name == "per_minute");
  CHECK(spec.steps[1].from == std::vector<std::string>{"clean", "clicks.errors"});
  CHECK(spec.steps[1].from_locations[1].line == 14);
  CHECK(spec.steps[1].from_locations[1].column == 19);
  CHECK(spec.sinks[1].from == std::vector<std::string>{"per_minute.late"});
  CHECK(spec.sinks[0].location.line == 17);
  CHECK(spec.sinks[0].location.column == 3);
  const auto& source = dynamic_cast<const TestConfig&>(*spec.sources[0].config);
  CHECK(source.path() == "/p/dir/data/clicks.jsonl");
  const auto& late = dynamic_cast<const TestConfig&>(*spec.Find("late")->config);
  CHECK(late.path() == "/abs/late.jsonl");
  CHECK(spec.Find("per_minute")->role == NodeRole::kStep);
  CHECK(spec.Find("nope") == nullptr);
}

TEST_CASE("pipeline: top-level settings are read and checked") {
  PipelineSpec spec = LoadOk(R"(name: job-1
parallelism: 4
max_parallelism: 256
state: {dir: ../state}
checkpoints: {interval: 10s, mode: at_least_once, retain: 5}
restart: {strategy: fixed_delay, attempts: 7, delay: 250ms}
sources: {a: {type: file, path: a}}
sinks: {b: {type: file, from: a, path: b}}
)");
  CHECK(spec.parallelism == 4);
  CHECK(spec.max_parallelism == 256);
  CHECK(spec.state_dir == "/p/state");
  CHECK(spec.checkpoints.interval_ms == 10'000);
  CHECK_FALSE(spec.checkpoints.exactly_once);
  CHECK(spec.checkpoints.retain == 5);
  CHECK(spec.restart.fixed_delay);
  CHECK(spec.restart.attempts == 7);
  CHECK(spec.restart.delay_ms == 250);

  CHECK(LoadError("name: j\nparallelism: 300\nsources: {a: {type: file, path: a}}\n"
                  "sinks: {b: {type: file, from: a, path: b}}\n") ==
        "/p/dir/job.yaml:2:14: 'parallelism' must be between 1 and 128, not 300");
  CHECK(LoadError("name: j\ncheckpoints: {mode: exactly-once}\n"
                  "sources: {a: {type: file, path: a}}\n"
                  "sinks: {b: {type: file, from: a, path: b}}\n") ==
        "/p/dir/job.yaml:2:21: 'mode' must be one of exactly_once | at_least_once, not "
        "'exactly-once'; did you mean 'exactly_once'?");
  CHECK(LoadError("name: j\ncheckpoints: {interval: 10x}\n"
                  "sources: {a: {type: file, path: a}}\n"
                  "sinks: {b: {type: file, from: a, path: b}}\n") ==
        "/p/dir/job.yaml:2:25: 'interval': unknown duration unit 'x' in '10x': expected ms, "
        "s, m, h or d");
  CHECK(LoadError("name: my.job\nsources: {a: {type: file, path: a}}\n"
                  "sinks: {b: {type: file, from: a, path: b}}\n")
            .rfind("/p/dir/job.yaml:1:7: pipeline name 'my.job' must be", 0) == 0);
  CHECK(LoadError("parallelism: 1\nsources: {a: {type: file, path: a}}\n"
                  "sinks: {b: {type: file, from: a, path: b}}\n") ==
        "/p/dir/job.yaml:1:1: the pipeline: missing required setting 'name'");
  CHECK(LoadError("name: j\nsources: {a: {type: file, path: a}}\n") ==
        "/p/dir/job.yaml:1:1: a pipeline needs at least one sink under 'sinks'");
}

TEST_CASE("pipeline: a YAML syntax error is reported at its line and column") {
  CHECK(LoadError("name: j\nsources:\n  a: [1, 2\n  b: 3\n") ==
        "/p/dir/job.yaml:4:4: end of sequence flow not found");
  CHECK(LoadError("name: j\n  bad: indent\n") == "/p/dir/job.yaml:2:6: illegal map value");
  CHECK(LoadError("name: j\n---\nname: k\n") ==
        "/p/dir/job.yaml:3:1: a pipeline file holds one YAML document, not 2");
  CHECK(LoadError("") == "/p/dir/job.yaml: empty pipeline file");
  CHECK(LoadError("- a\n") ==
        "/p/dir/job.yaml:1:1: a pipeline file is a mapping with name, sources and sinks");
}

TEST_CASE("pipeline: an unknown top-level key suggests the closest one") {
  CHECK(LoadError("name: j\nparalelism: 2\n") ==
        "/p/dir/job.yaml:2:1: unknown setting 'paralelism' in the pipeline; did you mean "
        "'parallelism'?");
  CHECK(LoadError("name: j\nwhatever: 2\n") ==
        "/p/dir/job.yaml:2:1: unknown setting 'whatever' in the pipeline");
}

TEST_CASE("pipeline: an unknown step type suggests the closest type at the type value") {
  CHECK(LoadError(R"(name: j
sources: {a: {type: file, path: a}}
steps:
  clean:
    type:   filtr
    from: a
sinks: {b: {type: file, from: clean, path: b}}
)") == "/p/dir/job.yaml:5:13: unknown step type 'filtr'; did you mean 'filter'?");
  CHECK(LoadError("name: j\nsources: {a: {type: kafkaesque}}\n") ==
        "/p/dir/job.yaml:2:21: unknown source type 'kafkaesque' (known: file)");
  CHECK(LoadError("name: j\nsources: {a: {path: x}}\n") ==
        "/p/dir/job.yaml:2:11: source 'a': missing required setting 'type'");
}

TEST_CASE("pipeline: the real operator table suggests real types") {
  LoadOptions options;  // no test table: the registry's
  CHECK(LoadError("name: j\nsources: {a: {type: flie}}\n", options) ==
        "/p/dir/job.yaml:2:21: unknown source type 'flie'; did you mean 'file'?");
  CHECK(LoadError("name: j\nsources: {a: {type: stdn}}\n", options) ==
        "/p/dir/job.yaml:2:21: unknown source type 'stdn'; did you mean 'stdin'?");
}

TEST_CASE("pipeline: a node's unknown setting is reported by its factory with a did-you-mean") {
  CHECK(LoadError(R"(name: j
sources: {a: {type: file, path: a}}
steps:
  f:
    type: filter
    from: a
    wher: x
)") == "/p/dir/job.yaml:7:5: unknown setting 'wher' in step 'f'; did you mean 'where'?");
}

TEST_CASE("pipeline: a dangling from is reported at the entry with a did-you-mean") {
  CHECK(LoadError(R"(name: j
sources: {clicks: {type: file, path: a}}
sinks:
  out:
    type: file
    from: [clicks, clikcs]
    path: o
)") == "/p/dir/job.yaml:6:20: 'from' names no source or step: 'clikcs'; did you mean "
       "'clicks'?");
  CHECK(LoadError(R"(name: j
sources: {clicks: {type: file, path: a}}
sinks: {out: {type: file, from: nothing_like_it, path: o}}
)") == "/p/dir/job.yaml:3:33: 'from' names no source or step: 'nothing_like_it'");
  CHECK(LoadError(R"(name: j
sources: {clicks: {type: file, path: a}}
sinks: {out: {type: file, path: o}}
)") == "/p/dir/job.yaml:3:14: sink 'out': missing required setting 'from' (the stream it "
       "reads: a source, a step, or a list of them)");
  CHECK(LoadError(R"(name: j
sources: {clicks: {type: file, path: a, from: x}}
sinks: {out: {type: file, from: clicks, path: o}}
)") == "/p/dir/job.yaml:2:47: a source reads no stream: source 'clicks' cannot have 'from'");
}

TEST_CASE("pipeline: reading from a sink is an error") {
  CHECK(LoadError(R"(name: j
sources: {a: {type: file, path: a}}
sinks:
  b: {type: file, from: a, path: b}
  c: {type: file, from: b, path: c}
)") == "/p/dir/job.yaml:5:25: 'b' is a sink; 'from' names a source, a step, <step>.late or "
       "<source>.errors");
}

TEST_CASE("pipeline: side streams exist only where the node has them") {
  CHECK(LoadError(R"(name: j
sources: {a: {type: file, path: a}}
steps:
  f: {type: filter, from: a, where: x}
sinks:
  b: {type: file, from: f.late, path: b}
)") == "/p/dir/job.yaml:6:25: step 'f' (filter) has no side stream 'late'");
  CHECK(LoadError(R"(name: j
sources: {a: {type: file, path: a}}
sinks:
  b: {type: file, from: a.late, path: b}
)") == "/p/dir/job.yaml:4:25: source 'a' has no stream 'late'; a source's side stream is "
       "'a.errors'");
  CHECK(LoadError(R"(name: j
sources: {a: {type: file, path: a}}
steps:
  w: {type: window, from: a, size: 1m}
sinks:
  b: {type: file, from: w.errors, path: b}
)") == "/p/dir/job.yaml:6:25: step 'w' (window) has no side stream 'errors'; it has 'w.late'");
}

TEST_CASE("pipeline: names are unique across sources, steps and sinks") {
  CHECK(LoadError(R"(name: j
sources: {a: {type: file, path: a}}
sinks:
  a: {type: file, from: a, path: b}
)") == "/p/dir/job.yaml:4:3: duplicate name 'a': already a source at line 2; names are unique "
       "across sources, steps and sinks");
  CHECK(LoadError(R"(name: j
sources: {a.b: {type: file, path: a}}
)")
            .rfind("/p/dir/job.yaml:2:11: source name 'a.b' must be", 0) == 0);
  CHECK(LoadError(R"(name: j
sources: {a: {type: file, path: a}}
sinks: {b: {type: file, from: [a, a], path: b}}
)") == "/p/dir/job.yaml:3:35: 'a' is listed twice in 'from'");
}

TEST_CASE("pipeline: a cycle among steps is an error") {
  CHECK(LoadError(R"(name: j
sources: {a: {type: file, path: a}}
steps:
  x: {type: filter, from: [a, z], where: t}
  y: {type: filter, from: x, where: t}
  z: {type: filter, from: y, where: t}
sinks: {b: {type: file, from: z, path: b}}
)") == "/p/dir/job.yaml:5:27: cycle among steps: x <- z <- y <- x (each reads from the next)");
  CHECK(LoadError(R"(name: j
sources: {a: {type: file, path: a}}
steps:
  x: {type: window, from: x.late, size: 1s}
sinks: {b: {type: file, from: x, path: b}}
)") == "/p/dir/job.yaml:4:27: cycle among steps: x <- x (each reads from the next)");
}

TEST_CASE("pipeline: nesting deeper than the limit is rejected") {
  std::string deep = "name: j\nsources: ";
  for (int i = 0; i < 100; ++i) deep += "[";
  for (int i = 0; i < 100; ++i) deep += "]";
  deep += "\n";
  CHECK(LoadError(deep).find("nesting deeper than 64 levels") != std::string::npos);
  // An alias inside its own anchor makes a cyclic graph: caught by the same limit.
  CHECK(LoadError("name: j\nsources: &a [*a]\n").find("nesting deeper") != std::string::npos);
}

TEST_CASE("pipeline: a billion-laughs alias bomb is rejected fast") {
  std::string bomb = "name: j\na: &a [x, x, x, x, x, x, x, x, x, x]\n";
  for (char c = 'b'; c <= 'j'; ++c) {
    bomb += std::string(1, c) + ": &" + c + " [";
    for (int i = 0; i < 10; ++i) bomb += std::string(i ? ", " : "") + "*" + char(c - 1);
    bomb += "]\n";
  }
  auto start = std::chrono::steady_clock::now();
  std::string err = LoadError(bomb);
  auto elapsed = std::chrono::steady_clock::now() - start;
  CHECK(err.find("document too large after alias expansion") != std::string::npos);
  CHECK(err.rfind("/p/dir/job.yaml:", 0) == 0);
  CHECK(elapsed < std::chrono::seconds(2));
}

TEST_CASE("pipeline: a file over the size limit is rejected") {
  std::string big(5 << 20, '#');
  CHECK(LoadError(big).find("/p/dir/job.yaml: file too large") == 0);
}

TEST_CASE("pipeline: ${VAR} and ${VAR:-default} are replaced in values") {
  PipelineSpec spec = LoadOk(R"(name: ${NAME}
parallelism: ${PAR:-3}
sources: {a: {type: file, path: "${DATA}/in-${UNSET:-x}.jsonl"}}
sinks: {b: {type: file, from: a, path: "cost$${not_a_var}"}}
)",
                             TestOptions({{"NAME", "env-job"}, {"DATA", "/data"}}));
  CHECK(spec.name == "env-job");
  CHECK(spec.parallelism == 3);
  CHECK(dynamic_cast<const TestConfig&>(*spec.sources[0].config).path() == "/data/in-x.jsonl");
  CHECK(dynamic_cast<const TestConfig&>(*spec.sinks[0].config).path() == "/p/dir/cost${not_a_var}");
}

TEST_CASE("pipeline: an unset variable without default is an error at its place") {
  CHECK(LoadError("name: j\nstate:\n  dir: /x/${NOPE}\n") ==
        "/p/dir/job.yaml:3:11: environment variable 'NOPE' is not set (give a default with "
        "${NOPE:-default})");
  CHECK(LoadError("name: j\nstate: {dir: \"${NOPE\"}\n") ==
        "/p/dir/job.yaml:2:15: unterminated '${': expected '}'");
  CHECK(LoadError("name: j\nstate:\n  dir: ${1x}\n").find("expected a variable name") !=
        std::string::npos);
}

TEST_CASE("pipeline: an aliased value is substituted once") {
  PipelineSpec spec = LoadOk(R"(name: j
sources: {a: {type: file, path: &p "$${x}"}}
sinks: {b: {type: file, from: a, path: *p}}
)");
  CHECK(dynamic_cast<const TestConfig&>(*spec.sinks[0].config).path() == "/p/dir/${x}");
}

TEST_CASE("pipeline: --set overrides fields after substitution") {
  LoadOptions options = TestOptions({{"P", "2"}});
  options.sets = {{"parallelism", "4"},
                  {"sources.clicks.path", "other.jsonl"},
                  {"state.dir", "/var/state"},
                  {"sinks.late.from", "[per_minute.late, clean]"}};
  PipelineSpec spec = LoadOk(kGood, options);
  CHECK(spec.parallelism == 4);
  CHECK(spec.state_dir == "/var/state");
  CHECK(dynamic_cast<const TestConfig&>(*spec.sources[0].config).path() == "/p/dir/other.jsonl");
  CHECK(spec.sinks[1].from == std::vector<std::string>{"per_minute.late", "clean"});
}

TEST_CASE("pipeline: a bad --set names the override") {
  LoadOptions options = TestOptions();
  options.sets = {{"name.x", "1"}};
  CHECK(LoadError(kGood, options) == "--set name.x: 'name' is not a mapping");
  options.sets = {{"parallelism", "0"}};
  CHECK(LoadError(kGood, options) ==
        "--set parallelism: 'parallelism' must be between 1 and "
        "128, not 0");
  options.sets = {{"paralelism", "2"}};
  CHECK(LoadError(kGood, options) ==
        "--set paralelism: unknown setting 'paralelism' in the "
        "pipeline; did you mean 'parallelism'?");
  options.sets = {{"sinks.counts.from", "nowhere"}};
  CHECK(LoadError(kGood, options) ==
        "--set sinks.counts.from: 'from' names no source or step: "
        "'nowhere'");
  options.sets = {{"a..b", "1"}};
  CHECK(LoadError(kGood, options) == "--set a..b: empty name in the path (write a.b.c)");
  options.sets = {{"name", "[unclosed"}};
  CHECK(LoadError(kGood, options).rfind("--set name: value is not valid YAML", 0) == 0);
}

TEST_CASE("pipeline: an expression error points into the scalar") {
  // The offset comes from the expression parser; the loader adds the scalar's place in the file
  // (and 1 for an opening quote).
  ExprParseError parse_error;
  REQUIRE(ParseExpr("a == @", &parse_error) == nullptr);
  const int offset = static_cast<int>(parse_error.offset);
  std::string base =
      "name: j\nsources: {a: {type: file, path: a}}\nsteps:\n  f:\n    type: filter\n"
      "    from: a\n";
  std::string sinks = "sinks: {b: {type: file, from: f, path: b}}\n";
  std::string plain = LoadError(base + "    where: a == @\n" + sinks);
  CHECK(plain.rfind("/p/dir/job.yaml:7:" + std::to_string(12 + offset) + ": invalid expression: ",
                    0) == 0);
  std::string quoted = LoadError(base + "    where: \"a == @\"\n" + sinks);
  CHECK(quoted.rfind("/p/dir/job.yaml:7:" + std::to_string(13 + offset) + ": invalid expression: ",
                     0) == 0);
  // A block scalar points at the scalar itself.
  std::string block = LoadError(base + "    where: >\n      a == @\n" + sinks);
  CHECK(block.rfind("/p/dir/job.yaml:7:12: invalid expression: ", 0) == 0);
}

TEST_CASE("pipeline: LoadPipeline reports a missing file") {
  Result<PipelineSpec> r = LoadPipeline("/nonexistent/streamrun/p.yaml", TestOptions());
  REQUIRE_FALSE(r.ok());
  CHECK(r.status().code() == Status::Code::kPipelineError);
  CHECK(r.status().message().rfind("/nonexistent/streamrun/p.yaml: cannot read: ", 0) == 0);
}

}  // namespace
}  // namespace streamrun
