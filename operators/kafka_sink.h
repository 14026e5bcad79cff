// The `kafka` sink: every record's bytes (its JSON, or a text line) become the value of a Kafka
// record; `key` (an expression) its key; the record's event time its timestamp.
//
// Delivery (docs/kafka.md has the user's view):
// - at_least_once: records are produced as they come (an idempotent producer, acks=all); at
//   every checkpoint barrier Snapshot flushes the producer and fails if any record was not
//   delivered, so a completed checkpoint covers only delivered records. A failed delivery fails
//   the job, whose restart goes back to the last checkpoint: records may repeat, none is lost.
// - exactly_once (needs checkpoints): records of one checkpoint epoch are staged in
//   STATE_DIR/sinks/<sink>/ as the file sink stages its lines; at the barrier the epoch's file
//   becomes chk-<id>.staged and is fsynced with the checkpoint. When checkpoint <id> completes
//   (NotifyCheckpointComplete, on the checkpoint thread) one Kafka transaction produces every
//   staged epoch up to <id> and commits. So records after the barrier can never join the
//   committed transaction, and one transactional producer is enough (Flink's pool of producers
//   per epoch exists because its records go to the broker before the checkpoint completes).
//   Why stage instead of producing into an open transaction and committing it later: a job that
//   crashes after its checkpoint completed but before the commit must commit that transaction
//   on recovery, and librdkafka cannot resume a transaction of a dead producer (Flink's Java
//   producer does it by reflection). From the staged files a recovered sink produces the epochs
//   again in a new transaction.
//   A transaction also commits the group offset "offset = checkpoint id, metadata = run token"
//   of the marker group (the transactional id) on partition 0 of the topic, atomically with
//   the records (send_offsets_to_transaction). Recovery reads it to know whether the crash came
//   after the commit (skip) or before it (produce again). librdkafka's mock cluster does not keep
//   such offsets: against it a crash between the commit and the deletion of the staged files
//   produces the epoch twice.
//   The transactional id is `properties.transactional.id` (a prefix; default
//   streamrun-<job>-<sink>) plus "-<subtask>". Opening the sink calls init_transactions, which
//   fences a previous instance with the same id and aborts its open transaction.
//   Errors: an abortable error aborts the transaction and produces the epochs again (three
//   attempts in all); after the third the job fails, and its restart (the restart strategy)
//   goes back to the checkpoint, whose staged epochs the restored sink commits. A fatal error
//   other than fencing (the producer's id or sequence lost), and an indefinite one (a commit
//   that timed out every time: the transaction may or may not have committed), re-create the
//   producer once: its init_transactions settles the old transaction (Kafka completes a commit
//   under way and aborts anything else), then the marker says whether it committed, so the
//   epochs are produced again only if they did not. Fenced (another producer took the
//   transactional id, also when a record's produce call reports it) fails the job at once,
//   without re-creating the producer, which would fence the other instance in turn. What still
//   fails fails the job, whose restart commits from the staged files.
//
// Meta in checkpoints (exactly_once): {"run": token, "pending": [ids of staged epochs not known
// committed at the barrier]}.
//
// Thread safety: Process, Snapshot, Finish run on the sink's thread; NotifyCheckpointComplete on
// the checkpoint thread. mu_ guards the producer (exactly_once), the pending epochs and the
// first asynchronous error.
#pragma once

#include <memory>
#include <string>

#include "engine/operator.h"
#include "operators/kafka_common.h"

namespace streamrun {

struct KafkaSinkOptions {
  KafkaSettings kafka;
  std::string topic;
  std::string key;  // expression text; empty: no key
  std::vector<FieldPath> key_fields;
  bool exactly_once = false;
  int timeout_ms = 60000;  // a flush or a transaction call that takes longer fails
};

std::shared_ptr<const NodeConfig> NewKafkaSinkConfig(KafkaSinkOptions options);

}  // namespace streamrun
