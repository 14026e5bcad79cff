// The `kafka` source: records of one or more topics, JSON or text, with their Kafka metadata
// ($key, $timestamp, $partition, $offset, $topic, $headers.NAME) available to expressions.
//
// How it reads (docs/kafka.md has the user's view):
// - One group member per source and run. The subtasks of a source share one consumer
//   (KafkaGroup, made by NodeConfig::CreateShared) that subscribes to the topics with
//   `group.id` = `group` (default streamrun-<source>): the job is one member of its group, and
//   two instances of the same job split the partitions between them as any Kafka consumers do.
// - Partitions to subtasks. Partition p of topic t belongs to subtask KafkaPartitionOwner(t, p,
//   P), as in Flink, so positions in checkpoints stay per subtask and rescaling works. Each
//   partition's queue is forwarded to its owner subtask's queue before subscribing (an
//   application's forwarding survives assignments), and the subtask's thread reads its queue
//   with rd_kafka_consume_batch_queue (zero-copy into the batch's arena).
// - The group thread (owned by KafkaGroup, from the first subtask's Join to the last Leave)
//   polls the consumer's own queue every kGroupPollMs: rebalance callbacks, errors, and the poll
//   that keeps the member alive (max.poll.interval.ms) however long the subtasks are blocked.
//   At the end it closes the consumer, which leaves the group.
// - Rebalances (eager assign/revoke, or incremental_assign/unassign when the protocol is
//   COOPERATIVE, e.g. partition.assignment.strategy: cooperative-sticky). An assigned partition
//   starts at its owner's position, which the owner publishes as it reads (an atomic; a stale
//   value is only lower, and the owner skips offsets below its own position), before that at
//   the checkpoint's offset, before that at `start`. Never at the group's committed offsets:
//   those are for monitoring. A revoked partition keeps its position in the owner's
//   checkpoints; for watermarks it counts as quiet from the revocation on, like a caught-up
//   one, so it leaves the minimum after watermark.idle_timeout (at once would make its records
//   late when it comes back; never would stall a job that shares its group). Partitions added
//   to a topic while the job runs are not read before it restarts.
// - Positions. The offsets are the source's position in checkpoints: per partition the next
//   offset and the largest event time read so far. Partitions the checkpoint does not know
//   start at their earliest offset (a new partition of a known topic) or at `start` (a new
//   topic). Without a checkpoint every partition starts at `start` (earliest, latest or a
//   time), resolved to a concrete offset first so that a checkpoint taken before the first
//   record is exact too.
// - Backpressure. While a subtask's Emit blocks (a full queue downstream), its queue fills up
//   to queued.max.messages.kbytes (16 MiB by default here) and librdkafka stops fetching for it.
//   When it has left records untaken for kPauseAfterMs, the group thread pauses its partitions
//   (rd_kafka_pause_partitions: nothing is fetched, and what was fetched is dropped, which
//   frees the memory) and counts it (SourceProgress::pauses, in `status`); when the subtask
//   reads again, the group thread seeks its partitions to its published positions and resumes
//   them. Polling goes on all along, so the member stays in its group.
// - Watermarks. Each partition has its own bounded-out-of-orderness watermark; the source's is
//   the minimum over its active partitions, never going back. A partition is inactive when it
//   reached its end under `stop_at: end`, or when it has been quiet (caught up, or read by
//   another member) for `watermark.idle_timeout`. When every partition is idle the watermark
//   stays (as in Flink). A subtask with no partition ends at once, so it does not hold back the
//   watermark.
// - `stop_at: end`: the high watermarks of the partitions when the job starts are their ends;
//   the source ends when every partition reached its end (for tests and backfills). Such a
//   bounded read assigns every partition itself (rd_kafka_assign) instead of subscribing: it
//   must cover its whole range whoever else reads the topic (a group would give it only a
//   share, and another member's partitions would never end), and it starts at once instead of
//   after the group's forming delay (group.initial.rebalance.delay.ms, 3 s). Queues, the group
//   thread, pausing and commits work as for a member.
// - Offsets of completed checkpoints go to the group (rd_kafka_commit of the member, for the
//   partitions it has now), for lag monitoring; a commit cut short by a rebalance is a warning.
//
// Thread safety: a KafkaSource runs on its subtask's thread; the config is immutable. KafkaGroup
// is shared by the subtasks and its group thread: positions and assignments are atomics,
// set-up and failures are under its mutexes.
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
