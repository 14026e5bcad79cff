// The table of operator types. Adding a type: write operators/<type>.cc with its factory,
// declare the factory in factories.h, and add a row here.
#include "operators/registry.h"

#include "operators/factories.h"

namespace streamrun {
namespace {

// Settings every source has.
#define SR_SOURCE_COMMON_SETTINGS                                                               \
  {"event_time", "expression", false,                                                           \
   "The record's event time: epoch milliseconds or an RFC 3339 string. Without it, the time "   \
   "the record was read."},                                                                     \
      {"watermark", "object", false,                                                            \
       "`max_out_of_orderness`: how far behind the largest event time seen a record may be "    \
       "(a duration, default 0s)."},                                                            \
  {                                                                                             \
    "on_error", "string", false,                                                                \
        "fail | drop | dead_letter: what to do with input that cannot be read or parsed, and "  \
        "with "                                                                                 \
        "records an expression fails on (dead_letter: to the stream <source>.errors). Default " \
        "fail."                                                                                 \
  }

std::vector<OperatorType> BuildTable() {
  return {
      {"file",
       NodeRole::kSource,
       "Reads a file of JSON lines, text lines or a recorded Kafka topic.",
       {{"path", "string", true, "The file to read, relative to the pipeline file."},
        {"format", "string", false,
         "json (one JSON object per line, default) | text (expressions see each line as the "
         "field `line`; a line no step changes is written out unchanged) | recording (a "
         "recorded Kafka topic, docs/recordings.md: each line's value is the record, with "
         "`$key`, `$timestamp`, `$partition`, `$offset`, `$topic` and `$headers.NAME`; read by "
         "one subtask)."},
        SR_SOURCE_COMMON_SETTINGS,
        {"rate", "number", false, "Records per second at most (default: as fast as possible)."},
        {"follow", "boolean", false,
         "Keep reading lines appended later, like tail -f (default false)."}},
       MakeFileSource},
      {"generator",
       NodeRole::kSource,
       "Generates synthetic events, deterministic for a seed.",
       {{"profile", "string", true, "clickstream | sessions | sequence."},
        {"count", "integer", false, "How many records (default: unbounded)."},
        {"rate", "number", false, "Records per second at most (default: as fast as possible)."},
        {"seed", "integer", false, "Random seed (default 1)."},
        SR_SOURCE_COMMON_SETTINGS},
       MakeGeneratorSource},
      {"stdin",
       NodeRole::kSource,
       "Reads JSON lines, text lines or a recording from standard input.",
       {{"format", "string", false, "json (default) | text | recording, as for `file`."},
        SR_SOURCE_COMMON_SETTINGS},
       MakeStdinSource},
      {"kafka",
       NodeRole::kSource,
       "Reads records of Kafka topics, with their metadata ($key, $timestamp, $partition, $offset, "
       "$topic, $headers.NAME). Offsets are the source's position in checkpoints (docs/kafka.md).",
       {{"brokers", "array", true,
         "Bootstrap servers: host:port, comma separated, or a list of them."},
        {"topic", "string", false, "The topic to read (this or `topics`)."},
        {"topics", "array", false, "Several topics to read as one stream."},
        {"group", "string", false,
         "Consumer group the source joins as one member, whatever its parallelism (default: "
         "streamrun-<source>; with `stop_at: end` it reads every partition without joining). "
         "Offsets of completed checkpoints are committed to it for monitoring only (none without "
         "`group`); the source starts from its checkpoints, never from the group's offsets."},
        {"start", "string", false,
         "earliest (default) | latest | a time (RFC 3339 or epoch ms): where to start without "
         "a checkpoint."},
        {"format", "string", false,
         "json (each record's value is a JSON object, default) | text (expressions see the value "
         "as the field `line`)."},
        {"event_time", "expression", false,
         "The record's event time: epoch milliseconds or an RFC 3339 string; `$timestamp` for "
         "the Kafka record's time. Without it, the time the record was read."},
        {"watermark", "object", false,
         "`max_out_of_orderness` (a duration, default 0s), per partition; `idle_timeout`: a "
         "partition with nothing to read for this long no longer holds back the watermark "
         "(default: never)."},
        {"on_error", "string", false,
         "fail | drop | dead_letter: what to do with records that cannot be parsed and records "
         "an expression fails on (dead_letter: to the stream <source>.errors). Default fail."},
        {"stop_at", "string", false,
         "never (default: runs until stopped) | end: ends once every partition is read up to "
         "its end when the job started."},
        {"properties", "object", false,
         "librdkafka consumer properties (security.protocol, sasl.*, ssl.*, ...). Secrets "
         "never appear in logs or messages."}},
       MakeKafkaSource},
      {"filter",
       NodeRole::kStep,
       "Keeps the records for which `where` is true.",
       {{"where", "expression", true, "The condition; null counts as false."}},
       MakeFilter},
      {"map",
       NodeRole::kStep,
       "Sets, drops or keeps fields of each record.",
       {{"set", "object", false, "Field name to expression: the fields to set or add."},
        {"drop", "array", false, "Fields to remove."},
        {"keep", "array", false, "Fields to keep; all others are removed (applied after set)."}},
       MakeMap},
      {"window",
       NodeRole::kStep,
       "Groups records by key into event-time windows and emits one aggregate result per window.",
       {{"key_by", "array", true, "The key fields (a field name or a list of them)."},
        {"window", "object", true,
         "`type`: tumbling (size) | sliding (size, slide) | session (gap)."},
        {"aggregate", "object", true,
         "Output field to aggregate: count(), count_if(e), sum(e), min(e), max(e), avg(e), "
         "first(e), last(e), count_distinct(e)."},
        {"allowed_lateness", "duration", false,
         "How long after a window fired late records still update it (default 0s)."},
        {"trigger", "object", false,
         "`fire_on`: an expression; a record for which it is true fires and closes its window."}},
       MakeWindow,
       DescribeWindowState},
      {"stdout",
       NodeRole::kSink,
       "Writes records as JSON lines to standard output.",
       {},
       MakeStdoutSink},
      {"file",
       NodeRole::kSink,
       "Writes records as JSON lines to a file.",
       {{"path", "string", true, "The file to write, relative to the pipeline file."}},
       MakeFileSink},
      {"kafka",
       NodeRole::kSink,
       "Writes records to a Kafka topic: each record's JSON (or text) is the value "
       "(docs/kafka.md).",
       {{"brokers", "array", true,
         "Bootstrap servers: host:port, comma separated, or a list of them."},
        {"topic", "string", true, "The topic to write."},
        {"key", "expression", false,
         "The record key: a string as its bytes, other values as JSON text; null: no key "
         "(default)."},
        {"delivery", "string", false,
         "at_least_once (default: flushed at every checkpoint) | exactly_once (transactions "
         "committed when the checkpoint completes; needs checkpoints)."},
        {"properties", "object", false,
         "librdkafka producer properties (compression.type, linger.ms, security settings, "
         "transactional.id as a prefix for exactly_once, ...). Secrets never appear in logs or "
         "messages."}},
       MakeKafkaSink},
  };
}

#undef SR_SOURCE_COMMON_SETTINGS

}  // namespace

const std::vector<OperatorType>& OperatorTypes() {
  static const std::vector<OperatorType> table = BuildTable();
  return table;
}

const OperatorType* FindOperatorType(NodeRole role, std::string_view name) {
  for (const auto& t : OperatorTypes()) {
    if (t.role == role && t.name == name) return &t;
  }
  return nullptr;
}

}  // namespace streamrun
