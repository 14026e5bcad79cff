// `streamrun record`: a Kafka topic, all its partitions, to a recording file
// (engine/recording.h).
//
// The consumer is assigned the partitions itself: it joins no group and commits nothing (its
// group.id, streamrun-record, only satisfies librdkafka). It reads read_committed, so aborted
// transactions are left out and "the end" of a partition is its last stable offset.
//
// Where to start:
// - earliest: each partition's first offset; latest: its end offset at start (only records
//   produced later are recorded).
// - a time: the first offset whose timestamp is at or after it (Kafka's offsetsForTimes; the
//   records after that offset are all recorded, also those with earlier timestamps). A broker
//   that answers "none" although the partition's last record is that recent (librdkafka's mock
//   cluster answers every time lookup so) is not believed: the partition is then read from its
//   start, skipping the records before the first one at or after the time.
// Where to stop: `until_count` records (over all partitions), or else every partition at the end
// offset it had at start (records produced later are not recorded).
//
// Failures (RuntimeError): brokers that do not answer within `timeout_ms` at start; with
// until-end, no progress for `timeout_ms` while a partition has records left; all brokers lost
// for `timeout_ms`; the topic gone. Retriable errors on the way are logged and retried.
// Lines reach the file in the order records arrive (per partition: offset order); the file is
// fsynced at the end, also when interrupted.
#pragma once

#include <atomic>
#include <cstdint>
#include <string>

#include "engine/status.h"
#include "kafka/client.h"

namespace streamrun {

struct RecordStart {
  enum class Kind { kEarliest, kLatest, kTime };
  Kind kind = Kind::kEarliest;
  int64_t time_ms = 0;  // kTime: epoch milliseconds
};

struct RecordOptions {
  std::string brokers;
  std::string topic;
  RecordStart from;
  int64_t until_count = -1;  // > 0: stop after that many records; -1: at the end (see above)
  std::string output;        // the recording file (replaced)
  int timeout_ms = 30000;
  KafkaProperties properties;  // more librdkafka properties (applied last)
};

struct RecordSummary {
  uint64_t records = 0;
  int32_t partitions = 0;
};

// Records. `cancelled` (may be null) stops it early: the records so far are kept, and the
// result is Cancelled. Logs progress with spdlog.
Status RecordTopic(const RecordOptions& options, const std::atomic<bool>* cancelled,
                   RecordSummary* summary);

}  // namespace streamrun
