// `streamrun replay`: a recording file (engine/recording.h) produced to a Kafka topic.
//
// Each record keeps its key, value, headers, timestamp (as CreateTime; a topic configured for
// LogAppendTime replaces it) and partition; a record without a partition goes where the
// producer's partitioner puts its key. The recording's `topic` and `offset` are ignored: the
// records go to `topic`, at the offsets the brokers give. The producer is idempotent, so
// retries neither duplicate nor reorder records within a partition.
//
// The whole file is read and checked before anything is sent: a line that is not a record, or
// a partition the topic does not have, fails the replay with nothing produced. Then every
// delivery is awaited and checked; any record not delivered within `timeout_ms` (or refused)
// fails it (RuntimeError naming the first such line).
//
// Pacing: with speed > 0, a record is sent when (its timestamp - the first timestamp) / speed
// has passed since the first one was sent (speed 1: as recorded, 2: twice as fast). Records
// without a timestamp, and timestamps that go back, are sent at once. speed 0: no waiting.
#pragma once

#include <atomic>
#include <cstdint>
#include <string>

#include "engine/status.h"
#include "kafka/client.h"

namespace streamrun {

struct ReplayOptions {
  std::string input;  // the recording file
  std::string brokers;
  std::string topic;
  double speed = 0;
  int timeout_ms = 30000;
  KafkaProperties properties;  // more librdkafka properties (applied last)
};

struct ReplaySummary {
  uint64_t records = 0;  // delivered
};

// Replays. `cancelled` (may be null) stops it early (records not sent yet are dropped; the
// result is Cancelled). Logs progress with spdlog.
Status ReplayRecording(const ReplayOptions& options, const std::atomic<bool>* cancelled,
                       ReplaySummary* summary);

}  // namespace streamrun
