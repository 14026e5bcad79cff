#include "operators/sinks.h"

#include <doctest/doctest.h>
#include <unistd.h>

#include <csignal>
#include <filesystem>
#include <fstream>
#include <sstream>

namespace streamrun {
namespace {

TEST_CASE("file sink: writes raw bytes per row, creates folders, truncates") {
  auto dir =
      std::filesystem::temp_directory_path() / ("streamrun_sink_" + std::to_string(::getpid()));
  auto path = dir / "a" / "b" / "out.jsonl";
  std::filesystem::create_directories(path.parent_path());
  std::ofstream(path) << "old content\n";
  auto config = NewFileSinkConfig(path.string());
  CHECK(config->max_subtasks() == 1);
  CHECK_FALSE(config->has_main_output());
  CHECK(config->InputFields({{"x"}}).empty());
  auto op = config->CreateOperator();
  REQUIRE(op.ok());
  OperatorContext ctx;
  REQUIRE(op.value()->Open(ctx).ok());
  auto batch = NewBatch(0);
  Row row;
  row.raw = batch->arena.Copy("{\"a\": 1 }");
  batch->AddRow(row);
  row.raw = batch->arena.Copy("text line");
  batch->AddRow(row);
  CHECK(op.value()->Process(std::move(batch)).ok());
  CHECK(op.value()->Finish().ok());
  CHECK(op.value()->records_out() == 2);
  std::stringstream ss;
  ss << std::ifstream(path).rdbuf();
  CHECK(ss.str() == "{\"a\": 1 }\ntext line\n");
  std::filesystem::remove_all(dir);
}

TEST_CASE("file sink: an old output is emptied, larger than the new or with nothing new") {
  // The old file is cut on a helper thread that the first write waits for (line_writer.cc).
  auto dir =
      std::filesystem::temp_directory_path() / ("streamrun_sink_old_" + std::to_string(::getpid()));
  auto path = dir / "out.jsonl";
  std::filesystem::create_directories(dir);
  for (bool write_rows : {true, false}) {
    CAPTURE(write_rows);
    {
      std::ofstream old(path);
      for (int i = 0; i < 100000; ++i)
        old << "an old line of the previous run, number " << i << "\n";
    }
    REQUIRE(std::filesystem::file_size(path) > (4u << 20));
    auto op = NewFileSinkConfig(path.string())->CreateOperator();
    REQUIRE(op.ok());
    OperatorContext ctx;
    REQUIRE(op.value()->Open(ctx).ok());
    if (write_rows) {
      auto batch = NewBatch(0);
      Row row;
      row.raw = batch->arena.Copy("new");
      batch->AddRow(row);
      REQUIRE(op.value()->Process(std::move(batch)).ok());
    }
    REQUIRE(op.value()->Finish().ok());
    std::stringstream ss;
    ss << std::ifstream(path).rdbuf();
    CHECK(ss.str() == (write_rows ? "new\n" : ""));
  }
  {  // Dropped without Finish (a job that failed early): the old output is gone all the same.
    std::ofstream(path) << "old\n";
    auto op = NewFileSinkConfig(path.string())->CreateOperator();
    REQUIRE(op.ok());
    OperatorContext ctx;
    REQUIRE(op.value()->Open(ctx).ok());
  }
  CHECK(std::filesystem::file_size(path) == 0);
  std::filesystem::remove_all(dir);
}

TEST_CASE("file sink: output of many MiB, handed to writeback on the way, is complete") {
  // More than the sink's write buffer and its writeback step (8 MiB) several times over, with
  // lines of every length up to ~100 bytes; the expected file is built here line by line.
  auto dir =
      std::filesystem::temp_directory_path() / ("streamrun_sink_big_" + std::to_string(::getpid()));
  auto path = dir / "out.jsonl";
  auto op = NewFileSinkConfig(path.string())->CreateOperator();
  REQUIRE(op.ok());
  OperatorContext ctx;
  REQUIRE(op.value()->Open(ctx).ok());
  std::string expected;
  uint64_t rows = 0;
  while (expected.size() < (30u << 20)) {
    auto batch = NewBatch(0);
    for (int i = 0; i < 1000; ++i, ++rows) {
      std::string line = "{\"n\":" + std::to_string(rows) + ",\"pad\":\"" +
                         std::string(rows % 80, static_cast<char>('a' + rows % 26)) + "\"}";
      Row row;
      row.raw = batch->arena.Copy(line);
      batch->AddRow(row);
      expected += line + "\n";
    }
    REQUIRE(op.value()->Process(std::move(batch)).ok());
  }
  REQUIRE(op.value()->Finish().ok());
  CHECK(op.value()->records_out() == rows);
  std::stringstream ss;
  ss << std::ifstream(path).rdbuf();
  CHECK(ss.str().size() == expected.size());
  CHECK(ss.str() == expected);
  std::filesystem::remove_all(dir);
}

TEST_CASE("file sink: an unusable path is an IoError naming the file") {
  auto op = NewFileSinkConfig("/proc/streamrun-nowhere/out.jsonl")->CreateOperator();
  REQUIRE(op.ok());
  OperatorContext ctx;
  Status st = op.value()->Open(ctx);
  CHECK(st.code() == Status::Code::kIoError);
  CHECK(st.message().find("/proc/streamrun-nowhere/out.jsonl") != std::string::npos);
}

TEST_CASE("fd sink: a write error names the file") {
  int fds[2];
  REQUIRE(::pipe(fds) == 0);
  ::close(fds[0]);  // writing now fails with EPIPE (SIGPIPE ignored below)
  signal(SIGPIPE, SIG_IGN);
  auto op = NewFdSink(fds[1], "out.jsonl");
  OperatorContext ctx;
  REQUIRE(op->Open(ctx).ok());
  auto batch = NewBatch(0);
  Row row;
  row.raw = batch->arena.Copy("x");
  batch->AddRow(row);
  CHECK(op->Process(std::move(batch)).ok());  // buffered
  Status st = op->Finish();
  CHECK(st.code() == Status::Code::kIoError);
  CHECK(st.message().find("out.jsonl") != std::string::npos);
  ::close(fds[1]);
}

}  // namespace
}  // namespace streamrun
