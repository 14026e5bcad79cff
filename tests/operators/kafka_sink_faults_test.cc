// The exactly-once Kafka sink under faults the mock cluster injects: transactions that fail in
// every attempt, commits whose answer never comes.
#include <doctest/doctest.h>

#include <chrono>
#include <filesystem>
#include <thread>

#include "operators/kafka_sink.h"
#include "tests/engine/temp_dir.h"
#include "tests/operators/kafka_sink_test_util.h"

namespace streamrun {

TEST_CASE(
    "kafka sink: abortable errors in every attempt fail the job; the restart commits the "
    "checkpoint once") {
  LogCapture log;
  auto mock = StartMock();
  REQUIRE(mock->CreateTopic("out", 1).ok());
  TempDir dir;
  std::string meta;
  {
    SinkRun sink(SinkOptions(*mock, "out", true), {}, dir.path());
    REQUIRE(sink.Send(0, 5).ok());
    OperatorSnapshot s1;
    REQUIRE(sink.op->Snapshot(1, &s1).ok());
    meta = s1.meta;
    // Registering the output partition with the transaction fails: an abortable error that
    // comes before any record reaches the log (the mock would show aborted records).
    REQUIRE(mock->Execute("push-errors AddPartitionsToTxn 3 TOPIC_AUTHORIZATION_FAILED").ok());
    Status st = sink.op->NotifyCheckpointComplete(1);
    REQUIRE_FALSE(st.ok());
    CHECK_MESSAGE(st.message().find("sink 'out'") == 0, st.message());
    CHECK(log.Count("(trying again)") == 2);  // three attempts, each aborted
    CHECK(ReadTopic(*mock, "out", 1).empty());
    // The sink's thread fails the job; the checkpoint's output stays staged for the restart.
    CHECK_FALSE(sink.Send(5, 6).ok());
    CHECK(std::filesystem::exists(dir / "sinks/out/chk-1.staged"));
  }
  // The restart strategy runs the job again from checkpoint 1: the sink commits its epoch.
  RestoreContext restore;
  restore.checkpoint_id = 1;
  restore.meta = meta;
  SinkRun again(SinkOptions(*mock, "out", true), {}, dir.path(), &restore);
  CHECK(Values(ReadTopic(*mock, "out", 1)) == Expected(0, 5));
  CHECK_FALSE(std::filesystem::exists(dir / "sinks/out/chk-1.staged"));
}

TEST_CASE(
    "kafka sink: a commit whose answer never comes gets a new producer, which commits the "
    "checkpoint") {
  LogCapture log;
  auto mock = StartMock();  // one broker: the transaction coordinator is broker 1
  REQUIRE(mock->CreateTopic("out", 1).ok());
  TempDir dir;
  KafkaSinkOptions o = SinkOptions(*mock, "out", true);
  o.timeout_ms = 1000;
  SinkRun sink(o, {}, dir.path());
  REQUIRE(sink.Send(0, 5).ok());
  OperatorSnapshot s1;
  REQUIRE(sink.op->Snapshot(1, &s1).ok());
  // The broker ends the transaction but answers after every commit call gave up: whether it
  // committed is unknown to the producer (an indefinite error).
  REQUIRE(mock->Execute("delay 1 EndTxn 1 6000").ok());
  Status st = sink.op->NotifyCheckpointComplete(1);
  CHECK_MESSAGE(st.ok(), st.message());
  CHECK(log.Count("cannot commit the transaction") == 3);  // timed out three times
  CHECK(log.Count("made a new producer") == 1);
  // The new producer read the marker and produced the epoch again. Against Kafka the marker
  // would say that the first transaction had committed; the mock keeps no transactional
  // offsets (docs/kafka.md), so here both attempts are in the log. Nothing is lost.
  auto records = ReadTopic(*mock, "out", 1);
  std::vector<std::string> values = Values(records);
  values.erase(std::unique(values.begin(), values.end()), values.end());
  CHECK(values == Expected(0, 5));
  CHECK_FALSE(std::filesystem::exists(dir / "sinks/out/chk-1.staged"));
  // The new producer goes on with the next checkpoints.
  REQUIRE(sink.Send(5, 8).ok());
  REQUIRE(sink.op->Finish().ok());
  values = Values(ReadTopic(*mock, "out", 1));
  CHECK(values.size() == records.size() + 3);
}

TEST_CASE("kafka sink: the input's end during a checkpoint's commit commits every epoch once") {
  auto mock = StartMock();
  REQUIRE(mock->CreateTopic("out", 1).ok());
  TempDir dir;
  SinkRun sink(SinkOptions(*mock, "out", true), {}, dir.path());
  REQUIRE(sink.Send(0, 5).ok());
  OperatorSnapshot s1;
  REQUIRE(sink.op->Snapshot(1, &s1).ok());
  REQUIRE(sink.Send(5, 8).ok());
  // Checkpoint 1's commit is under way on the checkpoint thread (its EndTxn answered late)
  // when the input ends and the sink's thread commits the rest.
  REQUIRE(mock->Execute("delay 1 EndTxn 1 1500").ok());
  Status committed;
  std::thread checkpoint_thread([&] { committed = sink.op->NotifyCheckpointComplete(1); });
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  Status finished = sink.op->Finish();
  checkpoint_thread.join();
  CHECK_MESSAGE(committed.ok(), committed.message());
  CHECK_MESSAGE(finished.ok(), finished.message());
  CHECK(Values(ReadTopic(*mock, "out", 1)) == Expected(0, 8));
  CHECK(std::filesystem::is_empty(dir / "sinks/out"));
}

}  // namespace streamrun
