// `streamrun test TESTFILE... [--update]`: runs the cases of pipeline test files
// (engine/test_file.h, engine/test_runner.h) and prints `PASS name` or `FAIL name` with a diff
// for each, then `N passed, N failed`. Exit 0 when every case passed, 1 when one failed, 2 when
// a test file is bad (nothing runs then: every file is loaded first, and each error is printed
// as FILE:LINE:COL: message). With --update, each case's expected files are rewritten from its
// actual output (sorted) and the command says what it wrote.
#include <cstdio>
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "cli/commands.h"
#include "engine/test_file.h"
#include "engine/test_runner.h"

namespace streamrun::cli {
namespace {

// Lines of a diff shown per sink and side, and bytes shown per line.
constexpr size_t kDiffLines = 10;
constexpr size_t kDiffLineBytes = 300;

struct TestOptions {
  std::vector<std::string> files;
  bool update = false;
};

// `path` relative to the working directory when it is below it, for shorter messages.
std::string Shown(const std::string& path) {
  std::error_code ec;
  auto cwd = std::filesystem::current_path(ec);
  if (ec) return path;
  auto rel = std::filesystem::path(path).lexically_relative(cwd);
  if (rel.empty() || *rel.begin() == "..") return path;
  return rel.string();
}

std::string Cut(const std::string& line) {
  if (line.size() <= kDiffLineBytes) return line;
  return line.substr(0, kDiffLineBytes) + "... (" + std::to_string(line.size()) + " bytes)";
}

void PrintSide(char sign, const std::vector<std::string>& lines, const char* what) {
  for (size_t i = 0; i < lines.size() && i < kDiffLines; ++i) {
    std::printf("  %c %s\n", sign, Cut(lines[i]).c_str());
  }
  if (lines.size() > kDiffLines) {
    std::printf("  %c ... and %zu more %s\n", sign, lines.size() - kDiffLines, what);
  }
}

void PrintOutcome(const CaseOutcome& o, bool update) {
  if (!o.run.ok()) {
    std::printf("FAIL %s\n  the pipeline failed: %s\n", o.name.c_str(), o.run.message().c_str());
    return;
  }
  if (update) {
    std::printf("UPDATED %s\n", o.name.c_str());
    for (const auto& s : o.sinks) {
      std::printf("  wrote %s (sink '%s', %zu lines)\n", Shown(s.path).c_str(), s.sink.c_str(),
                  s.actual_lines);
    }
    return;
  }
  std::printf("%s %s\n", o.passed() ? "PASS" : "FAIL", o.name.c_str());
  for (const auto& s : o.sinks) {
    if (s.diff.empty()) continue;
    std::printf(
        "  sink '%s' differs from %s: %zu expected lines missing (-), %zu unexpected (+); "
        "expected %zu lines, got %zu\n",
        s.sink.c_str(), Shown(s.path).c_str(), s.diff.missing.size(), s.diff.unexpected.size(),
        s.expected_lines, s.actual_lines);
    PrintSide('-', s.diff.missing, "missing");
    PrintSide('+', s.diff.unexpected, "unexpected");
  }
}

int RunTests(const TestOptions& opts) {
  std::vector<TestFile> files;
  bool bad = false;
  for (const std::string& path : opts.files) {
    auto file = LoadTestFile(path, opts.update);
    if (!file.ok()) {
      std::fprintf(stderr, "%s\n", file.status().message().c_str());
      bad = true;
      continue;
    }
    files.push_back(std::move(*file));
  }
  if (bad) return 2;

  int passed = 0, failed = 0;
  bool pipeline_error = false;
  for (const TestFile& file : files) {
    if (files.size() > 1) std::printf("%s\n", file.path.c_str());
    for (const TestCase& c : file.cases) {
      CaseOutcome o = RunTestCase(file, c, opts.update);
      PrintOutcome(o, opts.update);
      std::fflush(stdout);
      (o.passed() ? passed : failed) += 1;
      pipeline_error = pipeline_error || o.run.code() == Status::Code::kPipelineError;
    }
  }
  std::printf("%d passed, %d failed\n", passed, failed);
  if (pipeline_error) return 2;
  return failed > 0 ? 1 : 0;
}

}  // namespace

CommandRunner AddTestCommand(CLI::App& app) {
  auto opts = std::make_shared<TestOptions>();
  CLI::App* sub = app.add_subcommand(
      "test", "Run pipeline test files: recorded inputs in, expected outputs compared");
  sub->add_option("TESTFILE", opts->files, "Test files (*.test.yaml)")->required();
  sub->add_flag("--update", opts->update,
                "Rewrite the expected files from the actual output instead of comparing");
  return [opts] { return RunTests(*opts); };
}

}  // namespace streamrun::cli
