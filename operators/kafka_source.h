// The `kafka` source: records of one or more topics, JSON or text, with their Kafka metadata
// ($key, $timestamp, $partition, $offset, $topic, $headers.NAME) available to expressions.
//
// How it reads (docs/kafka.md has the user's view):
// - Assignment, not subscription. Every subtask of the source owns a fixed set of partitions
//   (KafkaPartitionOwner) and reads them with rd_kafka_assign at the offsets it decided itself.
//   The consumer never joins its group, so there are no rebalances and no session or poll
//   deadlines to miss; the group (`group`) only receives the offsets of completed checkpoints,
//   for monitoring (lag dashboards), as Flink's KafkaSource does. Partitions added to a topic
//   while the job runs are picked up when it restarts.
// - Positions. The offsets are the source's position in checkpoints: per partition the next
//   offset and the largest event time read so far. A restored job assigns exactly those
//   offsets; partitions the checkpoint does not know start at their earliest offset (a new
//   partition of a known topic) or at `start` (a new topic). Without a checkpoint every
//   partition starts at `start` (earliest, latest or a time), resolved to a concrete offset
//   first so that a checkpoint taken before the first record is exact too.
// - Backpressure. One thread per subtask polls and emits. While Emit blocks (a full queue
//   downstream), nothing is polled: librdkafka's prefetch queue fills up to
//   queued.max.messages.kbytes (16 MiB by default here) and its fetcher stops asking the
//   brokers for more, which is a pause of every partition without a call. Since the consumer is
//   not a member of its group, not polling for minutes costs nothing (no max.poll.interval.ms,
//   no heartbeats); a separate poll thread would only add a hand-over per batch.
// - Watermarks. Each partition has its own bounded-out-of-orderness watermark; the source's is
//   the minimum over its active partitions, never going back. A partition is inactive when it
//   reached its end under `stop_at: end`, or when it has been caught up (nothing left to read)
//   for `watermark.idle_timeout`. When every partition is idle the watermark stays (as in
//   Flink). A subtask with no partition ends at once, so it does not hold back the watermark.
// - `stop_at: end`: the high watermarks of the partitions when the job starts are their ends;
//   the source ends when every partition reached its end (for tests and backfills).
//
// Thread safety: a KafkaSource runs on its subtask's thread; the config is immutable.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "engine/operator.h"
#include "operators/kafka_common.h"
#include "operators/source_common.h"

namespace streamrun {

struct KafkaSourceOptions {
  KafkaSettings kafka;
  std::vector<std::string> topics;
  std::string group;  // empty: no offsets are committed
  enum class Start : uint8_t { kEarliest, kLatest, kTime };
  Start start = Start::kEarliest;
  int64_t start_ms = 0;  // kTime: epoch milliseconds
  LineFormat format = LineFormat::kJson;
  bool stop_at_end = false;
  SourceCommon common;
  int metadata_timeout_ms = 30000;  // waiting for the brokers' first answers
};

std::shared_ptr<const NodeConfig> NewKafkaSourceConfig(KafkaSourceOptions options);

}  // namespace streamrun
