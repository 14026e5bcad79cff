// ConfigReader on inline YAML: typed getters and their located errors.
#include <doctest/doctest.h>

#include <string>

#include "engine/load_context.h"
#include "engine/pipeline.h"

namespace streamrun {
namespace {

// A reader over the mapping `yaml`, as if it were the whole file /p/n.yaml.
struct Fixture {
  explicit Fixture(const std::string& yaml)
      : ctx("/p/n.yaml", "/p", yaml, nullptr), reader(&ctx, YAML::Load(yaml), "step 's'") {}
  LoadContext ctx;
  ConfigReader reader;
};

template <typename T>
std::string ErrorOf(const Result<T>& r) {
  REQUIRE_FALSE(r.ok());
  CHECK(r.status().code() == Status::Code::kPipelineError);
  return r.status().message();
}

TEST_CASE("config reader: getters read values and apply defaults") {
  Fixture f(
      "a: hello\nn: 42\nx: 2.5\nb: true\nd: 5m\nz: 8MiB\np: out/x.jsonl\nk: [u, v]\n"
      "one: u\nc: {q: 1}\n");
  const ConfigReader& r = f.reader;
  CHECK(r.String("a").value() == "hello");
  CHECK(r.String("missing", "dflt").value() == "dflt");
  CHECK(r.Int("n", std::nullopt).value() == 42);
  CHECK(r.Int("missing", 7).value() == 7);
  CHECK(r.Number("x", std::nullopt).value() == 2.5);
  CHECK(r.Number("n", std::nullopt).value() == 42.0);
  CHECK(r.Bool("b", std::nullopt).value());
  CHECK_FALSE(r.Bool("missing", false).value());
  CHECK(r.DurationMs("d", std::nullopt).value() == 300'000);
  CHECK(r.SizeBytes("z", std::nullopt).value() == 8u << 20);
  CHECK(r.Path("p").value() == "/p/out/x.jsonl");
  CHECK(r.StringList("k").value() == std::vector<std::string>{"u", "v"});
  CHECK(r.StringList("one").value() == std::vector<std::string>{"u"});
  CHECK(r.Enum("a", {"hello", "bye"}, std::nullopt).value() == "hello");
  CHECK(r.Keys() == std::vector<std::string>{"a", "n", "x", "b", "d", "z", "p", "k", "one", "c"});
  CHECK(r.Has("c"));
  CHECK_FALSE(r.Has("nope"));
  Result<ConfigReader> child = r.Child("c");
  REQUIRE(child.ok());
  CHECK(child->Int("q", std::nullopt).value() == 1);
  CHECK(child->what() == "'c' of step 's'");
  CHECK(r.LocationOf("d").line == 5);
  CHECK(r.LocationOf("d").column == 4);
}

TEST_CASE("config reader: wrong types and ranges are located at the value") {
  Fixture f(
      "name: x\nn: 4x\nbig: 99999999999999999999\nb: yes\nd: 10\nlist: {a: 1}\n"
      "e: tumblng\nm: [1, 2]\nk: [a, [b]]\n");
  const ConfigReader& r = f.reader;
  CHECK(ErrorOf(r.Int("n", std::nullopt)) == "/p/n.yaml:2:4: 'n' must be an integer, not '4x'");
  CHECK(ErrorOf(r.Int("big", std::nullopt)) ==
        "/p/n.yaml:3:6: 'big' is out of range: '99999999999999999999'");
  CHECK(ErrorOf(r.Int("name", 1)) == "/p/n.yaml:1:7: 'name' must be an integer, not 'x'");
  CHECK(ErrorOf(r.Int("d", std::nullopt, 1, 5)) ==
        "/p/n.yaml:5:4: 'd' must be between 1 and 5, not 10");
  CHECK(ErrorOf(r.Bool("b", std::nullopt)) ==
        "/p/n.yaml:4:4: 'b' must be true or false, not 'yes'");
  CHECK(ErrorOf(r.DurationMs("d", std::nullopt)) ==
        "/p/n.yaml:5:4: 'd': duration '10' needs a unit: ms, s, m, h or d");
  CHECK(ErrorOf(r.StringList("list")) ==
        "/p/n.yaml:6:7: 'list' must be a string or a list of strings, not a mapping");
  CHECK(ErrorOf(r.StringList("k")) == "/p/n.yaml:9:8: items of 'k' must be strings, not a list");
  CHECK(ErrorOf(r.Enum("e", {"tumbling", "sliding", "session"}, std::nullopt)) ==
        "/p/n.yaml:7:4: 'e' must be one of tumbling | sliding | session, not 'tumblng'; did you "
        "mean 'tumbling'?");
  CHECK(ErrorOf(r.String("m")) == "/p/n.yaml:8:4: 'm' of step 's' must be a string, not a list");
  CHECK(ErrorOf(r.Child("name")) ==
        "/p/n.yaml:1:7: 'name' of step 's' must be a mapping, not a scalar");
  CHECK(ErrorOf(r.String("missing")) ==
        "/p/n.yaml:1:1: step 's': missing required setting 'missing'");
}

TEST_CASE("config reader: CheckKeys rejects unknown keys with a did-you-mean") {
  Fixture f("type: filter\nfrom: a\nwhere: x\nkey_bi: [a]\n");
  CHECK(f.reader.CheckKeys({"type", "from", "where", "key_by"}).message() ==
        "/p/n.yaml:4:1: unknown setting 'key_bi' in step 's'; did you mean 'key_by'?");
  CHECK(f.reader.CheckKeys({"type", "from", "where", "key_bi"}).ok());
}

TEST_CASE("config reader: errors at a node and at the mapping are located") {
  Fixture f("a:\n  - x\n  - y\n");
  YAML::Node second = f.reader.node()["a"][1];
  CHECK(f.reader.ErrorAtNode(second, "bad").message() == "/p/n.yaml:3:5: bad");
  CHECK(f.reader.Error("whole").message() == "/p/n.yaml:1:1: whole");
  CHECK(f.reader.ErrorAt("a", "at a").message() == "/p/n.yaml:2:3: at a");
  CHECK(f.reader.Location().line == 1);
}

TEST_CASE("config reader: FormatAt writes FILE:LINE:COL, or FILE alone without a line") {
  CHECK(FormatAt({"f.yaml", 3, 7}, "oops") == "f.yaml:3:7: oops");
  CHECK(FormatAt({"f.yaml", 0, 0}, "oops") == "f.yaml: oops");
}

}  // namespace
}  // namespace streamrun
