// Helpers for tests of the Kafka sink (operators/kafka_sink.h) against librdkafka's mock cluster
// in this process: a sink opened as the runtime opens it, rows to send, and spdlog's lines.
#pragma once

#include <doctest/doctest.h>
#include <spdlog/sinks/ringbuffer_sink.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <atomic>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "operators/kafka_sink.h"
#include "tests/operators/kafka_test_util.h"
#include "tests/operators/source_test_util.h"

namespace streamrun {

inline KafkaSinkOptions SinkOptions(const KafkaMockCluster& cluster, const std::string& topic,
                                    bool exactly_once) {
  KafkaSinkOptions o;
  o.kafka.brokers = cluster.bootstrap_servers();
  o.topic = topic;
  o.exactly_once = exactly_once;
  o.timeout_ms = 10000;
  return o;
}

struct SinkRun {
  SinkRun(const KafkaSinkOptions& o, Layout layout, std::string state_dir = "",
          const RestoreContext* restore = nullptr) {
    ctx.name = "out";
    ctx.job = "job";
    ctx.input_layout = std::move(layout);
    ctx.errors = &errors;
    ctx.cancelled = &cancelled;
    ctx.checkpointing = !state_dir.empty();
    ctx.state_dir = std::move(state_dir);
    ctx.restore = restore;
    auto made = NewKafkaSinkConfig(o)->CreateOperator();
    REQUIRE(made.ok());
    op = std::move(made).value();
    Status st = op->Open(ctx);
    REQUIRE_MESSAGE(st.ok(), st.message());
  }
  // Rows {"n": i} for i in [from, to), with event time 1000 + i; slot 0 holds n.
  Status Send(int from, int to) {
    BatchPtr b = NewBatch(static_cast<uint32_t>(ctx.input_layout.size()));
    for (int i = from; i < to; ++i) {
      Row row;
      row.raw = b->arena.Copy("{\"n\":" + std::to_string(i) + "}");
      row.ts = 1000 + i;
      size_t r = b->AddRow(row);
      if (b->width > 0) b->SlotsOf(r)[0] = Value::Int(i);
    }
    return op->Process(std::move(b));
  }
  CaptureReporter errors;
  std::atomic<bool> cancelled{false};
  OperatorContext ctx;
  std::unique_ptr<Operator> op;
};

inline std::vector<std::string> Values(const std::vector<ReadRecord>& records) {
  std::vector<std::string> v;
  for (const auto& r : records) v.push_back(r.value);
  std::sort(v.begin(), v.end());
  return v;
}

inline std::vector<std::string> Expected(int from, int to) {
  std::vector<std::string> v;
  for (int i = from; i < to; ++i) v.push_back("{\"n\":" + std::to_string(i) + "}");
  std::sort(v.begin(), v.end());
  return v;
}

// Collects spdlog's lines (debug and up) while it lives. Declare it before the clients and
// sinks of a test, so that it outlives their threads, which log through it.
class LogCapture {
 public:
  LogCapture()
      : sink_(std::make_shared<spdlog::sinks::ringbuffer_sink_mt>(10000)),
        logger_(std::make_shared<spdlog::logger>("capture", sink_)),
        previous_(spdlog::default_logger()) {
    logger_->set_level(spdlog::level::debug);
    spdlog::set_default_logger(logger_);
  }
  ~LogCapture() { spdlog::set_default_logger(previous_); }
  LogCapture(const LogCapture&) = delete;
  LogCapture& operator=(const LogCapture&) = delete;

  // How many lines so far contain `text`.
  int Count(std::string_view text) const {
    int n = 0;
    for (const std::string& line : sink_->last_formatted())
      n += line.find(text) != std::string::npos;
    return n;
  }

 private:
  std::shared_ptr<spdlog::sinks::ringbuffer_sink_mt> sink_;
  std::shared_ptr<spdlog::logger> logger_;
  std::shared_ptr<spdlog::logger> previous_;
};

}  // namespace streamrun
