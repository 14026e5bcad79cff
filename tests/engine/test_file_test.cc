// Tests of loading pipeline test files (engine/test_file.h) and of how an input's format is
// decided (engine/test_runner.h).
#include "engine/test_file.h"

#include <doctest/doctest.h>

#include <fstream>

#include "engine/test_runner.h"
#include "tests/engine/temp_dir.h"

namespace streamrun {
namespace {

constexpr const char* kPipeline = R"(name: p
sources:
  a: { type: file, path: a.jsonl }
  b: { type: generator, profile: sequence, count: 10 }
steps:
  both: { type: filter, from: [a, b], where: "true" }
sinks:
  out: { type: file, from: both, path: out.jsonl }
  shown: { type: stdout, from: a }
)";

class Files {
 public:
  Files() {
    Write("p.yaml", kPipeline);
    Write("in/a.jsonl", "{\"x\":1}\n");
    Write("in/b.jsonl", "{\"x\":2}\n");
    Write("want/out.jsonl", "");
  }
  void Write(const std::string& name, const std::string& text) {
    std::filesystem::create_directories(std::filesystem::path(dir_ / name).parent_path());
    std::ofstream(dir_ / name, std::ios::binary) << text;
  }
  // Loads `text` as the test file t.test.yaml; returns the error message, or "" when it loads.
  std::string Error(const std::string& text, bool for_update = false) {
    Write("t.test.yaml", text);
    auto file = LoadTestFile(dir_ / "t.test.yaml", for_update);
    if (file.ok()) return "";
    CHECK(file.status().code() == Status::Code::kPipelineError);
    // Messages start with the path as given: keep what follows the folder.
    std::string m = file.status().message();
    return m.rfind(dir_.path(), 0) == 0 ? m.substr(dir_.path().size() + 1) : m;
  }
  std::string path(const std::string& name) const { return dir_ / name; }

 private:
  TempDir dir_;
};

const char* kGood = R"(pipeline: p.yaml
cases:
  - name: both inputs
    inputs: { a: in/a.jsonl, b: { path: in/b.jsonl, format: json } }
    expect: { out: want/out.jsonl }
)";

TEST_CASE("test file: a good file loads with absolute paths, inputs in source order") {
  Files f;
  f.Write("t.test.yaml", kGood);
  auto file = LoadTestFile(f.path("t.test.yaml"), false);
  REQUIRE(file.ok());
  CHECK(file->pipeline.name == "p");
  REQUIRE(file->cases.size() == 1);
  const TestCase& c = file->cases[0];
  CHECK(c.name == "both inputs");
  REQUIRE(c.inputs.size() == 2);
  CHECK(c.inputs[0].source == "a");
  CHECK(c.inputs[0].path == f.path("in/a.jsonl"));
  CHECK(c.inputs[0].format == "");
  CHECK(c.inputs[1].format == "json");
  REQUIRE(c.expectations.size() == 1);
  CHECK(c.expectations[0].sink == "out");
  CHECK(c.expectations[0].path == f.path("want/out.jsonl"));
  CHECK(c.expectations[0].location.line == 5);
}

TEST_CASE("test file: errors point at the place in the test file") {
  Files f;
  CHECK(f.Error("pipeline: p.yaml\ncases:\n  - name: x\n    inputs: { a: in/a.jsonl }\n") ==
        "t.test.yaml:4:13: no input for source 'b': in a test every source of the pipeline reads a "
        "file");
  CHECK(f.Error("pipeline: p.yaml\ncases:\n  - name: x\n    inputs: { a: in/a.jsonl, bb: "
                "in/b.jsonl }\n") ==
        "t.test.yaml:4:30: 'bb' is not a source of pipeline 'p'; did you mean 'b'? (sources: 'a', "
        "'b')");
  CHECK(f.Error("pipeline: p.yaml\ncases:\n  - name: x\n    inputs: { a: in/a.jsonl, b: "
                "in/nope.jsonl }\n") == "t.test.yaml:4:33: cannot read input '" +
                                            f.path("in/nope.jsonl") +
                                            "': No such file or directory");
  CHECK(f.Error(
            "pipeline: p.yaml\ncases:\n  - name: x\n    inputs: { a: in/a.jsonl, b: in/b.jsonl }\n"
            "    expect: { both: want/out.jsonl }\n") ==
        "t.test.yaml:5:15: 'both' is not a sink of pipeline 'p' (sinks: 'out', 'shown')");
  CHECK(f.Error(
             "pipeline: p.yaml\ncases:\n  - name: x\n    inputs: { a: in/a.jsonl, b: in/b.jsonl }\n"
             "    expect: { out: want/new.jsonl }\n")
            .rfind("t.test.yaml:5:20: cannot read expected output", 0) == 0);
  CHECK(f.Error(
            "pipeline: p.yaml\ncases:\n  - name: x\n    inputs: { a: in/a.jsonl, b: in/b.jsonl }\n"
            "    expect: { out: want/new.jsonl }\n",
            /*for_update=*/true) == "");
  CHECK(f.Error(
            "pipeline: p.yaml\ncases:\n  - name: x\n    inputs: { a: in/a.jsonl, b: in/b.jsonl }\n"
            "  - name: x\n    inputs: { a: in/a.jsonl, b: in/b.jsonl }\n") ==
        "t.test.yaml:5:11: duplicate case name 'x': already the name of the case at line 3");
  CHECK(f.Error("pipeline: p.yaml\ncases:\n  - name: x\n    input: {}\n") ==
        "t.test.yaml:4:5: unknown setting 'input' in case 1; did you mean 'inputs'?");
  CHECK(f.Error("pipeline: p.yaml\ncases: []\n") ==
        "t.test.yaml:2:8: 'cases' must be a non-empty list of cases");
  CHECK(f.Error("pipeline: nope.yaml\ncases: []\n")
            .rfind("t.test.yaml:1:11: cannot read pipeline", 0) == 0);
  CHECK(f.Error("pipeline: p.yaml\ncases:\n  - name: x\n    inputs: { a: {path: in/a.jsonl, "
                "format: xml} }\n")
            .rfind("t.test.yaml:4:45: 'format' must be one of", 0) == 0);
  CHECK(f.Error("pipeline: p.yaml\ncases: [\n").rfind("t.test.yaml:", 0) == 0);
}

TEST_CASE("test file: errors of the pipeline point into the pipeline file") {
  Files f;
  f.Write("broken.yaml",
          "name: b\nsources:\n  a: { type: file, path: x, format: jsn }\n"
          "sinks:\n  o: { type: stdout, from: a }\n");
  std::string e =
      f.Error("pipeline: broken.yaml\ncases:\n  - name: x\n    inputs: { a: in/a.jsonl }\n");
  CHECK(e.rfind("broken.yaml:3:", 0) == 0);
  CHECK(e.find("did you mean 'json'") != std::string::npos);
}

TEST_CASE("test file: an input's format: given, by name, by its first line, else the source's") {
  Files f;
  f.Write("r.jsonl", R"({"topic":"t","partition":0,"offset":5,"value":{"x":1}})"
                     "\n");
  f.Write("j.jsonl",
          "\n"
          R"({"partition":0,"offset":5,"x":1})"
          "\n");
  f.Write("x.recording.jsonl", "");
  TestInput in;
  in.path = f.path("j.jsonl");
  CHECK(TestInputFormat(in, "text") == "text");
  in.format = "recording";
  CHECK(TestInputFormat(in, "text") == "recording");
  in.format = "";
  in.path = f.path("r.jsonl");
  CHECK(TestInputFormat(in, "json") == "recording");
  in.path = f.path("x.recording.jsonl");
  CHECK(TestInputFormat(in, "json") == "recording");
}

}  // namespace
}  // namespace streamrun

namespace streamrun {
namespace {

TEST_CASE("test runner: sources read the inputs whatever their type, sinks are captured") {
  Files f;
  f.Write("want/out.jsonl", "{\"x\": 2}\n{\"x\":1}\n");
  f.Write("t.test.yaml", kGood);
  auto file = LoadTestFile(f.path("t.test.yaml"), false);
  REQUIRE(file.ok());
  CaseOutcome o = RunTestCase(*file, file->cases[0], false);
  REQUIRE(o.run.ok());
  CHECK(o.passed());
  REQUIRE(o.sinks.size() == 1);
  CHECK(o.sinks[0].actual_lines == 2);                        // not the generator's 10 records
  CHECK_FALSE(std::filesystem::exists(f.path("out.jsonl")));  // the real sink wrote nothing

  f.Write("want/out.jsonl", "{\"x\":1}\n{\"x\":1}\n");
  o = RunTestCase(*file, file->cases[0], false);
  CHECK_FALSE(o.passed());
  CHECK(o.sinks[0].diff.missing == std::vector<std::string>{"{\"x\":1}"});
  CHECK(o.sinks[0].diff.unexpected == std::vector<std::string>{"{\"x\":2}"});

  o = RunTestCase(*file, file->cases[0], /*update=*/true);
  CHECK(o.passed());
  std::ifstream in(f.path("want/out.jsonl"));
  std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  CHECK(text == "{\"x\":1}\n{\"x\":2}\n");  // sorted
}

}  // namespace
}  // namespace streamrun
