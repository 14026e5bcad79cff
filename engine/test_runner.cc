// RunTestCase (see test_runner.h).
#include "engine/test_runner.h"

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <memory>

#include "engine/recording.h"
#include "engine/runtime.h"
#include "operators/capture_sink.h"
#include "operators/file_source.h"
#include "operators/source_common.h"

namespace streamrun {
namespace {

constexpr std::string_view kRecordingSuffix = ".recording.jsonl";
// The first line of an input is looked at up to this many bytes.
constexpr size_t kFirstLineMax = 1 << 20;

// A fresh directory under $TMPDIR (or /tmp), removed with its contents when this goes.
class TempStateDir {
 public:
  static Result<std::unique_ptr<TempStateDir>> Create() {
    const char* base = std::getenv("TMPDIR");
    std::string pattern =
        std::string(base != nullptr && *base ? base : "/tmp") + "/streamrun-test-XXXXXX";
    if (::mkdtemp(pattern.data()) == nullptr) {
      return Status::IoError("cannot create a temporary state directory in " + pattern + ": " +
                             std::strerror(errno));
    }
    return std::unique_ptr<TempStateDir>(new TempStateDir(pattern));
  }
  ~TempStateDir() {
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
  }
  const std::string& path() const { return path_; }

 private:
  explicit TempStateDir(std::string path) : path_(std::move(path)) {}
  std::string path_;
};

std::string FormatName(LineFormat f) {
  switch (f) {
    case LineFormat::kJson:
      return "json";
    case LineFormat::kText:
      return "text";
    case LineFormat::kRecording:
      return "recording";
  }
  return "json";
}

std::string FirstLine(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::string line;
  while (line.empty() && in) {
    std::getline(in, line);
    if (line.size() > kFirstLineMax) line.resize(kFirstLineMax);
    if (!line.empty() && line.back() == '\r') line.pop_back();
  }
  return line;
}

// The spec to run: sources read the case's inputs, sinks capture into `captured`.
Result<PipelineSpec> TestSpec(const TestFile& file, const TestCase& c, const std::string& state_dir,
                              std::map<std::string, std::shared_ptr<CapturedLines>>* captured) {
  PipelineSpec spec = file.pipeline;
  spec.state_dir = state_dir;
  spec.checkpoints = CheckpointSpec();
  spec.checkpoints.interval_ms = 0;
  spec.restart = RestartSpec();
  spec.restart.fixed_delay = false;
  for (NodeSpec& node : spec.sources) {
    auto in = std::find_if(c.inputs.begin(), c.inputs.end(),
                           [&](const TestInput& i) { return i.source == node.name; });
    if (in == c.inputs.end()) {
      return Status::PipelineError(
          FormatAt(c.location, "case '" + c.name + "': no input for source '" + node.name + "'"));
    }
    const auto* replaced = dynamic_cast<const SourceConfig*>(node.config.get());
    if (replaced == nullptr) {
      return Status::RuntimeError("source '" + node.name + "' (type " + node.type +
                                  ") cannot be replaced by a file");
    }
    FileSourceOptions o;
    o.path = in->path;
    o.format = LineFormatNamed(TestInputFormat(*in, FormatName(replaced->format())));
    o.common = replaced->common();
    node.config = NewFileSourceConfig(std::move(o));
    node.type = "file";
  }
  for (NodeSpec& node : spec.sinks) {
    auto lines = std::make_shared<CapturedLines>();
    node.config = NewCaptureSinkConfig(lines);
    (*captured)[node.name] = std::move(lines);
  }
  return spec;
}

Status WriteLines(const std::string& path, std::vector<std::string> lines) {
  std::sort(lines.begin(), lines.end());
  std::error_code ec;
  auto parent = std::filesystem::path(path).parent_path();
  if (!parent.empty()) std::filesystem::create_directories(parent, ec);
  if (ec) return Status::IoError("cannot create the folder of '" + path + "': " + ec.message());
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  for (const auto& line : lines) out << line << '\n';
  out.close();
  if (!out) return Status::IoError("cannot write '" + path + "'");
  return Status::Ok();
}

Result<std::vector<std::string>> ReadLines(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return Status::IoError("cannot read '" + path + "'");
  std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  if (in.bad()) return Status::IoError("cannot read '" + path + "'");
  return SplitLines(text);
}

}  // namespace

std::string TestInputFormat(const TestInput& input, const std::string& replaced_format) {
  if (!input.format.empty()) return input.format;
  const std::string& p = input.path;
  if (p.size() >= kRecordingSuffix.size() &&
      p.compare(p.size() - kRecordingSuffix.size(), kRecordingSuffix.size(), kRecordingSuffix) ==
          0) {
    return "recording";
  }
  if (LooksLikeRecordingLine(FirstLine(p))) return "recording";
  return replaced_format;
}

CaseOutcome RunTestCase(const TestFile& file, const TestCase& c, bool update) {
  CaseOutcome outcome;
  outcome.name = c.name;
  auto state_dir = TempStateDir::Create();
  if (!state_dir.ok()) {
    outcome.run = state_dir.status();
    return outcome;
  }
  std::map<std::string, std::shared_ptr<CapturedLines>> captured;
  auto spec = TestSpec(file, c, (*state_dir)->path(), &captured);
  if (!spec.ok()) {
    outcome.run = spec.status();
    return outcome;
  }
  auto job = Job::Create(*spec, RunOptions());
  if (!job.ok()) {
    outcome.run = job.status();
    return outcome;
  }
  outcome.run = (*job)->Run();
  if (!outcome.run.ok()) return outcome;

  for (const TestExpectation& e : c.expectations) {
    SinkOutcome s;
    s.sink = e.sink;
    s.path = e.path;
    // As an expected file reads back (SplitLines): no empty lines.
    std::vector<std::string> actual;
    for (const auto& line : captured[e.sink]->lines) {
      if (!line.empty()) actual.push_back(line);
    }
    s.actual_lines = actual.size();
    if (update) {
      outcome.run = WriteLines(e.path, actual);
      if (!outcome.run.ok()) return outcome;
      s.expected_lines = actual.size();
    } else {
      auto expected = ReadLines(e.path);
      if (!expected.ok()) {
        outcome.run = expected.status();
        return outcome;
      }
      s.expected_lines = expected->size();
      s.diff = CompareLineMultisets(*expected, actual);
    }
    outcome.sinks.push_back(std::move(s));
  }
  return outcome;
}

}  // namespace streamrun
