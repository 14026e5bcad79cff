// The Kafka sink against librdkafka's mock cluster in this process.
#include "operators/kafka_sink.h"

#include <doctest/doctest.h>

#include <filesystem>

#include "tests/engine/temp_dir.h"
#include "tests/operators/kafka_sink_test_util.h"

namespace streamrun {

TEST_CASE("kafka sink: at_least_once delivers everything before a snapshot returns") {
  auto mock = StartMock();
  REQUIRE(mock->CreateTopic("out", 1).ok());
  KafkaSinkOptions o = SinkOptions(*mock, "out", false);
  o.key = "n % 3";
  o.key_fields = {{"n"}};
  // A long linger: without the flush at the barrier the records would still wait in the producer.
  o.kafka.properties = {{"linger.ms", "5000"}};
  SinkRun sink(o, {{"n"}});
  REQUIRE(sink.Send(0, 50).ok());
  OperatorSnapshot snap;
  REQUIRE(sink.op->Snapshot(1, &snap).ok());
  CHECK(HighWatermark(*mock, "out", 0) == 50);
  CHECK_FALSE(sink.op->commits());
  auto records = ReadTopic(*mock, "out", 1);
  REQUIRE(records.size() == 50);
  CHECK(records[4].value == "{\"n\":4}");
  CHECK(records[4].key == "1");
  CHECK(records[4].timestamp == 1004);
  REQUIRE(sink.op->Finish().ok());
  CHECK(sink.op->records_out() == 50);
}

TEST_CASE("kafka sink: a key expression that fails sends the record to the errors stream") {
  auto mock = StartMock();
  REQUIRE(mock->CreateTopic("out", 1).ok());
  KafkaSinkOptions o = SinkOptions(*mock, "out", false);
  o.key = "n + \"x\"";
  o.key_fields = {{"n"}};
  SinkRun sink(o, {{"n"}});
  REQUIRE(sink.Send(0, 3).ok());
  REQUIRE(sink.op->Finish().ok());
  CHECK(sink.op->records_out() == 0);
}

TEST_CASE("kafka sink: exactly_once commits a checkpoint's records when it completes, not before") {
  auto mock = StartMock();
  REQUIRE(mock->CreateTopic("out", 2).ok());
  TempDir dir;
  SinkRun sink(SinkOptions(*mock, "out", true), {}, dir.path());
  CHECK(sink.op->commits());
  REQUIRE(sink.Send(0, 10).ok());
  OperatorSnapshot s1;
  REQUIRE(sink.op->Snapshot(1, &s1).ok());
  CHECK(s1.meta.find("\"pending\":[1]") != std::string::npos);
  CHECK(s1.sync_paths.size() == 2);
  REQUIRE(sink.Send(10, 15).ok());
  CHECK(ReadTopic(*mock, "out", 2).empty());  // nothing before the checkpoint completes
  REQUIRE(sink.op->NotifyCheckpointComplete(1).ok());
  CHECK(Values(ReadTopic(*mock, "out", 2)) ==
        Expected(0, 10));  // not the records after the barrier
  OperatorSnapshot s2;
  REQUIRE(sink.op->Snapshot(2, &s2).ok());
  REQUIRE(sink.Send(15, 20).ok());
  // A checkpoint that never completes (3) is committed by the next one that does (4).
  OperatorSnapshot s3, s4;
  REQUIRE(sink.op->Snapshot(3, &s3).ok());
  CHECK(s3.meta.find("\"pending\":[2,3]") != std::string::npos);
  REQUIRE(sink.op->NotifyCheckpointComplete(2).ok());
  CHECK(Values(ReadTopic(*mock, "out", 2)) == Expected(0, 15));
  REQUIRE(sink.Send(20, 25).ok());
  REQUIRE(sink.op->Snapshot(4, &s4).ok());
  REQUIRE(sink.op->NotifyCheckpointComplete(4).ok());
  CHECK(Values(ReadTopic(*mock, "out", 2)) == Expected(0, 25));
  REQUIRE(sink.Send(25, 30).ok());
  REQUIRE(sink.op->Finish().ok());  // the end of the input commits the rest
  CHECK(Values(ReadTopic(*mock, "out", 2)) == Expected(0, 30));
  // Nothing stays staged.
  CHECK(std::filesystem::is_empty(dir / "sinks/out"));
}

TEST_CASE("kafka sink: a restored exactly_once sink commits what its checkpoint staged") {
  auto mock = StartMock();
  REQUIRE(mock->CreateTopic("out", 1).ok());
  TempDir dir;
  std::string meta;
  {
    // Checkpoint 1 completes, but the process dies before the commit.
    SinkRun sink(SinkOptions(*mock, "out", true), {}, dir.path());
    REQUIRE(sink.Send(0, 10).ok());
    OperatorSnapshot s1;
    REQUIRE(sink.op->Snapshot(1, &s1).ok());
    meta = s1.meta;
    REQUIRE(sink.Send(10, 20).ok());  // after the barrier: must not appear
    OperatorSnapshot s2;
    REQUIRE(sink.op->Snapshot(2, &s2).ok());  // a checkpoint that does not complete
  }
  CHECK(ReadTopic(*mock, "out", 1).empty());
  RestoreContext restore;
  restore.checkpoint_id = 1;
  restore.meta = meta;
  SinkRun again(SinkOptions(*mock, "out", true), {}, dir.path(), &restore);
  CHECK(Values(ReadTopic(*mock, "out", 1)) == Expected(0, 10));
  // The staged files of checkpoint 2 and of the epoch in progress are gone.
  CHECK_FALSE(std::filesystem::exists(dir / "sinks/out/chk-1.staged"));
  CHECK_FALSE(std::filesystem::exists(dir / "sinks/out/chk-2.staged"));
  CHECK(std::filesystem::file_size(dir / "sinks/out/current.staged") == 0);
  REQUIRE(again.Send(10, 20).ok());
  REQUIRE(again.op->Finish().ok());
  CHECK(Values(ReadTopic(*mock, "out", 1)) == Expected(0, 20));
}

TEST_CASE("kafka sink: a checkpoint committed before the crash is not produced again on restore") {
  auto mock = StartMock();
  REQUIRE(mock->CreateTopic("out", 1).ok());
  TempDir dir;
  std::string meta;
  {
    SinkRun sink(SinkOptions(*mock, "out", true), {}, dir.path());
    REQUIRE(sink.Send(0, 10).ok());
    OperatorSnapshot s1;
    REQUIRE(sink.op->Snapshot(1, &s1).ok());
    meta = s1.meta;                                      // says checkpoint 1 is pending
    REQUIRE(sink.op->NotifyCheckpointComplete(1).ok());  // committed; then the process dies
  }
  RestoreContext restore;
  restore.checkpoint_id = 1;
  restore.meta = meta;
  SinkRun again(SinkOptions(*mock, "out", true), {}, dir.path(), &restore);
  CHECK(Values(ReadTopic(*mock, "out", 1)) == Expected(0, 10));  // once
}

TEST_CASE("kafka sink: an abortable error aborts the transaction and produces the epoch again") {
  auto mock = StartMock();
  REQUIRE(mock->CreateTopic("out", 1).ok());
  TempDir dir;
  SinkRun sink(SinkOptions(*mock, "out", true), {}, dir.path());
  REQUIRE(sink.Send(0, 5).ok());
  OperatorSnapshot s1;
  REQUIRE(sink.op->Snapshot(1, &s1).ok());
  // The transaction's produce requests fail for good: librdkafka makes that an abortable error.
  REQUIRE(mock->Execute("push-errors Produce 1 INVALID_RECORD").ok());
  Status st = sink.op->NotifyCheckpointComplete(1);
  CHECK_MESSAGE(st.ok(), st.message());
  // The mock lets readers see aborted records too (no read_committed): the committed attempt
  // holds all five, once.
  auto records = ReadTopic(*mock, "out", 1);
  CHECK(records.size() >= 5);
  REQUIRE(sink.op->Finish().ok());
}

TEST_CASE(
    "kafka sink: fenced by another producer, the sink fails the job instead of fighting back") {
  auto mock = StartMock();
  REQUIRE(mock->CreateTopic("out", 1).ok());
  TempDir dir;
  SinkRun sink(SinkOptions(*mock, "out", true), {}, dir.path());
  REQUIRE(sink.Send(0, 5).ok());
  OperatorSnapshot s1;
  REQUIRE(sink.op->Snapshot(1, &s1).ok());
  // The mock does not fence by itself: the commit's answer says so.
  REQUIRE(mock->Execute("push-errors EndTxn 1 PRODUCER_FENCED").ok());
  Status st = sink.op->NotifyCheckpointComplete(1);
  REQUIRE_FALSE(st.ok());
  CHECK_MESSAGE(st.message().find("took over") != std::string::npos, st.message());
  // The sink's thread fails the job with it; the staged output stays for the restart.
  CHECK_FALSE(sink.Send(5, 6).ok());
  CHECK(std::filesystem::exists(dir / "sinks/out/chk-1.staged"));
}

TEST_CASE("kafka sink: a sink that cannot deliver fails at the next snapshot") {
  auto mock = StartMock();
  REQUIRE(mock->CreateTopic("out", 1).ok());
  KafkaSinkOptions o = SinkOptions(*mock, "out", false);
  o.kafka.properties = {{"message.timeout.ms", "300"}, {"sasl.password", "hunter2"}};
  o.timeout_ms = 3000;
  SinkRun sink(o, {});
  REQUIRE(mock->SetBrokerDown(1).ok());
  REQUIRE(sink.Send(0, 3).ok());
  OperatorSnapshot s;
  Status st = sink.op->Snapshot(1, &s);
  REQUIRE_FALSE(st.ok());
  CHECK(st.message().find("sink 'out'") == 0);
  CHECK(st.message().find("hunter2") == std::string::npos);
  REQUIRE(mock->SetBrokerUp(1).ok());
}

}  // namespace streamrun
