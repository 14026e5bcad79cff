// The Kafka source against librdkafka's mock cluster in this process.
#include "operators/kafka_source.h"

#include <doctest/doctest.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <thread>

#include "operators/kafka_common.h"
#include "tests/operators/kafka_test_util.h"
#include "tests/operators/source_test_util.h"

namespace streamrun {
namespace {

class TestHook : public BarrierHook {
 public:
  uint64_t requested() const override { return requested_.load(); }
  uint64_t completed() const override { return completed_.load(); }
  Status Barrier(uint64_t id, std::string position) override {
    std::lock_guard<std::mutex> lock(mu);
    positions.emplace_back(id, std::move(position));
    return Status::Ok();
  }
  std::atomic<uint64_t> requested_{0}, completed_{0};
  std::mutex mu;
  std::vector<std::pair<uint64_t, std::string>> positions;
};

struct SourceRun {
  explicit SourceRun(Layout layout, int subtask = 0, int parallelism = 1,
                     bool fail_on_error = false)
      : errors(fail_on_error) {
    ctx.name = "k";
    ctx.layout = std::move(layout);
    ctx.subtask = subtask;
    ctx.parallelism = parallelism;
    ctx.out = &out;
    ctx.errors = &errors;
    ctx.cancelled = &cancelled;
    ctx.progress = &progress;
  }
  Status Run(const KafkaSourceOptions& o) {
    auto source = NewKafkaSourceConfig(o)->CreateSource();
    REQUIRE(source.ok());
    return source.value()->Run(ctx);
  }
  std::vector<CapturedRow> Rows() {
    std::lock_guard<std::mutex> lock(out.mu);
    std::vector<CapturedRow> rows;
    for (const auto& b : out.batches) rows.insert(rows.end(), b.rows.begin(), b.rows.end());
    return rows;
  }
  int64_t LastWatermark() {
    std::lock_guard<std::mutex> lock(out.mu);
    return out.batches.empty() ? kMinTimestamp : out.batches.back().watermark;
  }
  CaptureEmitter out;
  CaptureReporter errors;
  std::atomic<bool> cancelled{false};
  SourceProgress progress;
  SourceContext ctx;
};

KafkaSourceOptions Options(const KafkaMockCluster& cluster, const std::string& topic) {
  KafkaSourceOptions o;
  o.kafka.brokers = cluster.bootstrap_servers();
  o.topics = {topic};
  o.stop_at_end = true;
  o.metadata_timeout_ms = 10000;
  // The mock forms the group again only after the session timeout less 1 s when its last member
  // left (the default 45 s would make every run after the first wait 44 s).
  o.kafka.properties = {{"session.timeout.ms", "4000"}, {"heartbeat.interval.ms", "200"}};
  return o;
}

// Waits up to `seconds` for `done`.
template <typename F>
bool WaitFor(F done, int seconds = 10) {
  for (int i = 0; i < seconds * 100; ++i) {
    if (done()) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  return done();
}

}  // namespace

TEST_CASE("kafka source: reads JSON records with their metadata up to the end") {
  auto mock = StartMock();
  REQUIRE(mock->CreateTopic("t", 2).ok());
  ProduceRecords(*mock, "t",
                 {{0, "u1", R"({"a":1})", 1000, {{"h", "x"}}},
                  {0, std::nullopt, R"({"a":2})", 2000, {}},
                  {1, "u3", R"({"a":3})", 1500, {{"h", "y"}, {"h", "z"}}}});
  KafkaSourceOptions o = Options(*mock, "t");
  o.common.event_time = "$timestamp";
  o.common.event_time_fields = {{"$timestamp"}};
  SourceRun run({{"a"},
                 {"$key"},
                 {"$timestamp"},
                 {"$partition"},
                 {"$offset"},
                 {"$topic"},
                 {"$headers", "h"}});
  Status st = run.Run(o);
  REQUIRE_MESSAGE(st.ok(), st.message());
  auto rows = run.Rows();
  REQUIRE(rows.size() == 3);
  std::sort(rows.begin(), rows.end(), [](const CapturedRow& x, const CapturedRow& y) {
    return std::make_pair(x.slots[3].as_int(), x.offset) <
           std::make_pair(y.slots[3].as_int(), y.offset);
  });
  CHECK(rows[0].raw == R"({"a":1})");
  CHECK(rows[0].slots[0].as_int() == 1);
  CHECK(rows[0].slots[1].as_string() == "u1");
  CHECK(rows[0].slots[2].as_int() == 1000);
  CHECK(rows[0].slots[3].as_int() == 0);
  CHECK(rows[0].slots[4].as_int() == 0);
  CHECK(rows[0].slots[5].as_string() == "t");
  CHECK(rows[0].slots[6].as_string() == "x");
  CHECK(rows[0].ts == 1000);
  CHECK(rows[1].slots[1].kind() == Value::Kind::kNull);  // no key
  CHECK(rows[1].slots[6].kind() == Value::Kind::kNull);  // no such header
  CHECK(rows[1].offset == 1);
  CHECK(rows[2].slots[6].as_string() == "z");  // a repeated header: its last value
  CHECK(rows[2].slots[3].as_int() == 1);
  CHECK(run.progress.records.load() == 3);
  // The input ended: every partition reached its end, so none holds back the watermark.
  CHECK(run.LastWatermark() >= 1999);
}

TEST_CASE("kafka source: text values are the field `line`; $headers is an object") {
  auto mock = StartMock();
  REQUIRE(mock->CreateTopic("logs", 1).ok());
  ProduceRecords(*mock, "logs", {{0, std::nullopt, "GET /index.html", 0, {{"host", "a"}}}});
  KafkaSourceOptions o = Options(*mock, "logs");
  o.format = LineFormat::kText;
  SourceRun run({{"$headers"}, {"line"}});
  REQUIRE(run.Run(o).ok());
  auto rows = run.Rows();
  REQUIRE(rows.size() == 1);
  CHECK(rows[0].raw == "GET /index.html");
  CHECK((rows[0].flags & kRowText) != 0);
  CHECK(rows[0].slots[0].as_string() == R"({"host":"a"})");
  CHECK(rows[0].slots[1].as_string() == "GET /index.html");
}

TEST_CASE("kafka source: records that are not JSON objects follow on_error") {
  auto mock = StartMock();
  REQUIRE(mock->CreateTopic("t", 1).ok());
  ProduceRecords(*mock, "t",
                 {{0, std::nullopt, "not json", 0, {}},
                  {0, "k", std::nullopt, 0, {}},
                  {0, std::nullopt, R"({"a":1})", 0, {}}});
  SUBCASE("reported, the good one read") {
    SourceRun run({{"a"}});
    REQUIRE(run.Run(Options(*mock, "t")).ok());
    CHECK(run.Rows().size() == 1);
    REQUIRE(run.errors.inputs.size() == 2);
    CHECK(run.errors.inputs[0].offset == 0);
    CHECK(run.errors.inputs[0].text == "not json");
    CHECK(run.errors.inputs[0].reason.find("t/0 offset 0: invalid JSON") == 0);
    CHECK(run.errors.inputs[1].reason.find("tombstone") != std::string::npos);
  }
  SUBCASE("fail stops the source") {
    SourceRun run({{"a"}}, 0, 1, /*fail_on_error=*/true);
    Status st = run.Run(Options(*mock, "t"));
    CHECK(st.code() == Status::Code::kDataError);
  }
}

TEST_CASE("kafka source: a barrier gives every partition's next offset; a restore starts there") {
  auto mock = StartMock();
  REQUIRE(mock->CreateTopic("t", 2).ok());
  std::vector<TestRecord> records;
  for (int i = 0; i < 5; ++i)
    records.push_back({0, std::nullopt, "{\"i\":" + std::to_string(i) + "}", 1000 + i, {}});
  ProduceRecords(*mock, "t", records);
  KafkaSourceOptions o = Options(*mock, "t");
  o.stop_at_end = false;
  o.common.event_time = "$timestamp";
  o.common.event_time_fields = {{"$timestamp"}};
  TestHook hook;
  SourceRun run({{"i"}, {"$timestamp"}});
  run.ctx.barriers = &hook;
  Status st;
  std::thread t([&] { st = run.Run(o); });
  if (!WaitFor([&] { return run.Rows().size() == 5; })) {
    run.cancelled = true;
    t.join();
    FAIL(st.message());
  }
  hook.requested_ = 7;
  REQUIRE(WaitFor([&] {
    std::lock_guard<std::mutex> lock(hook.mu);
    return !hook.positions.empty();
  }));
  run.cancelled = true;
  t.join();
  CHECK(st.code() == Status::Code::kCancelled);
  REQUIRE(hook.positions.size() == 1);
  CHECK(hook.positions[0].first == 7);
  CHECK(hook.positions[0].second ==
        R"({"partitions":[{"topic":"t","partition":0,"offset":5,"max_ts":1004},)"
        R"({"topic":"t","partition":1,"offset":0,"max_ts":null}]})");

  // Restored at offset 3 of partition 0 with the event times before it.
  SourceRun again({{"i"}, {"$timestamp"}});
  again.ctx.restore_positions =
      R"([{"partitions":[{"topic":"t","partition":0,"offset":3,"max_ts":1002},)"
      R"({"topic":"t","partition":1,"offset":0,"max_ts":null}]}])";
  KafkaSourceOptions bounded = o;
  bounded.stop_at_end = true;
  REQUIRE(again.Run(bounded).ok());
  auto rows = again.Rows();
  REQUIRE(rows.size() == 2);
  CHECK(rows[0].offset == 3);
  CHECK(rows[1].offset == 4);
}

TEST_CASE("kafka source: subtasks split the partitions between them") {
  auto mock = StartMock();
  REQUIRE(mock->CreateTopic("t", 5).ok());
  std::vector<TestRecord> records;
  for (int p = 0; p < 5; ++p)
    records.push_back({p, std::nullopt, "{\"p\":" + std::to_string(p) + "}", 0, {}});
  ProduceRecords(*mock, "t", records);
  std::vector<int64_t> seen;
  for (int subtask = 0; subtask < 3; ++subtask) {
    SourceRun run({{"$partition"}}, subtask, 3);
    REQUIRE(run.Run(Options(*mock, "t")).ok());
    auto rows = run.Rows();
    CHECK(rows.size() >= 1);
    for (const auto& r : rows) {
      CHECK(KafkaPartitionOwner("t", static_cast<int32_t>(r.slots[0].as_int()), 3) == subtask);
      seen.push_back(r.slots[0].as_int());
    }
  }
  std::sort(seen.begin(), seen.end());
  CHECK(seen == std::vector<int64_t>{0, 1, 2, 3, 4});
  // More subtasks than partitions: the extra ones end at once.
  int idle_subtask = 0;
  for (int s = 0; s < 6; ++s) {
    bool owns = false;
    for (int p = 0; p < 5; ++p) owns = owns || KafkaPartitionOwner("t", p, 6) == s;
    if (!owns) idle_subtask = s;
  }
  SourceRun extra({{"$partition"}}, idle_subtask, 6);
  KafkaSourceOptions unbounded = Options(*mock, "t");
  unbounded.stop_at_end = false;
  CHECK(extra.Run(unbounded).ok());
  CHECK(extra.Rows().empty());
}

TEST_CASE("kafka source: the watermark is the minimum over partitions; an idle one is left out") {
  auto mock = StartMock();
  REQUIRE(mock->CreateTopic("t", 2).ok());
  ProduceRecords(*mock, "t",
                 {{0, std::nullopt, "{}", 1000, {}},
                  {0, std::nullopt, "{}", 3000, {}},
                  {1, std::nullopt, "{}", 2000, {}}});
  KafkaSourceOptions o = Options(*mock, "t");
  o.stop_at_end = false;
  o.common.event_time = "$timestamp";
  o.common.event_time_fields = {{"$timestamp"}};
  o.common.max_out_of_orderness_ms = 100;
  SUBCASE("without idleness the quiet partition holds it at its own") {
    SourceRun run({{"$timestamp"}});
    Status st;
    std::thread t([&] { st = run.Run(o); });
    bool read = WaitFor([&] { return run.Rows().size() == 3; });
    std::this_thread::sleep_for(std::chrono::milliseconds(400));
    run.cancelled = true;
    t.join();
    REQUIRE_MESSAGE(read, st.message());
    // Partition 0 is at 3000, partition 1 at 2000: 2000 - 100 - 1.
    CHECK(run.LastWatermark() == 1899);
  }
  SUBCASE("idle_timeout leaves a quiet partition out") {
    o.common.idle_timeout_ms = 200;
    SourceRun run({{"$timestamp"}});
    Status st;
    std::thread t([&] { st = run.Run(o); });
    bool read = WaitFor([&] { return run.Rows().size() == 3; });
    // Both partitions are caught up; once idle, they stay out until they have records again.
    std::this_thread::sleep_for(std::chrono::milliseconds(500));
    ProduceRecords(*mock, "t", {{0, std::nullopt, "{}", 4000, {}}});
    bool advanced = WaitFor([&] { return run.LastWatermark() == 3899; });
    run.cancelled = true;
    t.join();
    CHECK(read);
    CHECK(advanced);
    auto rows = run.Rows();
    REQUIRE(rows.size() == 4);
    // Before any partition was idle, each record's watermark was the minimum of both.
    for (size_t i = 0; i < 3; ++i) CHECK(rows[i].wm <= 1899);
    // The watermark before the record that moved it: 2899 if partition 1 went idle first.
    CHECK(rows[3].wm >= 1899);
    CHECK(rows[3].wm <= 2899);
  }
}

TEST_CASE("kafka source: offsets go to the group only once their checkpoint completed") {
  auto mock = StartMock();
  REQUIRE(mock->CreateTopic("t", 1).ok());
  ProduceRecords(*mock, "t", {{0, std::nullopt, "{}", 0, {}}, {0, std::nullopt, "{}", 0, {}}});
  KafkaSourceOptions o = Options(*mock, "t");
  o.stop_at_end = false;
  o.group = "monitoring";
  TestHook hook;
  SourceRun run({});
  run.ctx.barriers = &hook;
  Status st;
  std::thread t([&] { st = run.Run(o); });
  REQUIRE(WaitFor([&] { return run.Rows().size() == 2; }));
  hook.requested_ = 1;
  REQUIRE(WaitFor([&] {
    std::lock_guard<std::mutex> lock(hook.mu);
    return !hook.positions.empty();
  }));
  KafkaHandle reader = TestClient(*mock, RD_KAFKA_CONSUMER, {{"group.id", "monitoring"}});
  auto committed = [&] {
    KafkaPartitionList list(rd_kafka_topic_partition_list_new(1));
    rd_kafka_topic_partition_list_add(list.get(), "t", 0);
    REQUIRE(rd_kafka_committed(reader.get(), list.get(), 5000) == RD_KAFKA_RESP_ERR_NO_ERROR);
    return list->elems[0].offset;
  };
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  CHECK(committed() < 0);  // the checkpoint is not complete yet
  hook.completed_ = 1;
  CHECK(WaitFor([&] { return committed() == 2; }));
  run.cancelled = true;
  t.join();
}

// The mock cluster forms a group 3 s after its first member joins, and drops a member that
// waits longer than its session timeout for that: session timeouts here are 4 s (Options).
TEST_CASE(
    "kafka source: a member blocked by backpressure for longer than its deadlines stays in its "
    "group") {
  auto mock = StartMock();
  REQUIRE(mock->CreateTopic("t", 1).ok());
  std::vector<TestRecord> records(3000, TestRecord{0, std::nullopt, "{\"x\":1}", 0, {}});
  ProduceRecords(*mock, "t", records);
  // An emitter that blocks on its first batch for longer than max.poll.interval.ms and
  // session.timeout.ms.
  class SlowEmitter : public CaptureEmitter {
   public:
    Status Emit(BatchPtr b) override {
      if (first_) {
        first_ = false;
        std::this_thread::sleep_for(std::chrono::milliseconds(5000));
      }
      return CaptureEmitter::Emit(std::move(b));
    }
    bool first_ = true;
  } slow;
  KafkaSourceOptions o = Options(*mock, "t");
  o.stop_at_end = false;  // a member of its group
  o.group = "slow";
  o.kafka.properties = {{"max.poll.interval.ms", "4000"},
                        {"session.timeout.ms", "4000"},
                        {"heartbeat.interval.ms", "200"}};
  SourceRun run({});
  run.ctx.out = &slow;
  Status st;
  std::thread t([&] { st = run.Run(o); });
  auto rows = [&] {
    std::lock_guard<std::mutex> lock(slow.mu);
    size_t n = 0;
    for (const auto& b : slow.batches) n += b.rows.size();
    return n;
  };
  CHECK(WaitFor([&] { return rows() >= 3000; }, 30));
  std::this_thread::sleep_for(std::chrono::milliseconds(300));  // nothing more comes
  run.cancelled = true;
  t.join();
  CHECK(st.code() == Status::Code::kCancelled);  // not failed: never left its group
  CHECK(rows() == 3000);
  CHECK(run.progress.pauses.load() >= 1);  // it left records untaken: its partition was paused
}

TEST_CASE("kafka settings: secrets are redacted from descriptions and messages") {
  CHECK(IsSecretKafkaProperty("sasl.password"));
  CHECK(IsSecretKafkaProperty("ssl.key.password"));
  CHECK(IsSecretKafkaProperty("ssl.key.pem"));
  CHECK(IsSecretKafkaProperty("sasl.oauthbearer.client.secret"));
  CHECK(IsSecretKafkaProperty("SASL.JAAS.CONFIG"));
  CHECK_FALSE(IsSecretKafkaProperty("security.protocol"));
  CHECK_FALSE(IsSecretKafkaProperty("sasl.username"));
  KafkaSettings s;
  s.brokers = "127.0.0.1:1";
  s.properties = {{"sasl.username", "alice"}, {"sasl.password", "hunter2"}};
  CHECK(s.Describe() == "sasl.username=alice, sasl.password=***");
  CHECK(s.Redact("login hunter2 failed, hunter2!") == "login *** failed, ***!");
  // A client librdkafka refuses: the message names the property, never a secret value.
  s.properties.emplace_back("no.such.property", "x");
  auto client = NewKafkaClientFor(s, RD_KAFKA_CONSUMER, {});
  REQUIRE_FALSE(client.ok());
  CHECK(client.status().message().find("no.such.property") != std::string::npos);
  CHECK(client.status().message().find("hunter2") == std::string::npos);
}

TEST_CASE("kafka settings: a source's settings are checked when the pipeline loads") {
  auto load = [](const std::string& source) {
    std::string yaml = "name: j\nsources:\n  in:\n    type: kafka\n" + source +
                       "sinks:\n  out:\n    type: stdout\n    from: in\n";
    return LoadPipelineFromString(yaml, "/p/job.yaml", LoadOptions{});
  };
  CHECK(load("    brokers: b:9092\n    topic: t\n").ok());
  CHECK(load("    brokers: [a:9092, b:9092]\n    topics: [t, u]\n    start: 2024-01-01T00:00:00Z\n")
            .ok());
  auto r = load("    brokers: b:9092\n");
  REQUIRE_FALSE(r.ok());
  CHECK(r.status().message().find("needs 'topic' or 'topics'") != std::string::npos);
  r = load("    brokers: b:9092\n    topic: t\n    start: yesterday\n");
  REQUIRE_FALSE(r.ok());
  CHECK(r.status().message().find("'start' must be earliest, latest") != std::string::npos);
  r = load(
      "    brokers: b:9092\n    topic: t\n    properties:\n      sasl.password: hunter2\n"
      "      fetch.wait.max.ms: soon\n");
  REQUIRE_FALSE(r.ok());
  CHECK_MESSAGE(r.status().message().find("job.yaml:9:") != std::string::npos,
                r.status().message());
  CHECK(r.status().message().find("fetch.wait.max.ms") != std::string::npos);
  CHECK(r.status().message().find("hunter2") == std::string::npos);
  r = load("    brokers: b:9092\n    topic: t\n    properties:\n      group.id: g\n");
  REQUIRE_FALSE(r.ok());
  CHECK(r.status().message().find("'group.id' is set by streamrun") != std::string::npos);
  r = load(
      "    brokers: b:9092\n    topic: t\n    watermark: {idle_timeout: 5s, max_out_of_orderness: "
      "1s}\n");
  CHECK_MESSAGE(r.ok(), r.status().message());
}

}  // namespace streamrun
