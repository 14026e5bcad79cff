// librdkafka handles with RAII, client creation with our defaults, and the few metadata and
// offset queries that `record`, `replay` and the Kafka operators share.
//
// Every function here turns librdkafka's return codes into a Status with a message that names
// what was asked (topic, partition, brokers) and librdkafka's own words. Property values are
// never logged or put into messages: they may hold secrets (sasl.password).
//
// Thread safety: librdkafka handles are thread-safe; the helpers keep no state of their own.
// librdkafka's log lines go to spdlog from librdkafka's threads.
#pragma once

#include <librdkafka/rdkafka.h>

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "engine/status.h"

namespace streamrun {

struct KafkaDeleter {
  void operator()(rd_kafka_t* rk) const { rd_kafka_destroy(rk); }
  void operator()(rd_kafka_conf_t* conf) const { rd_kafka_conf_destroy(conf); }
  void operator()(rd_kafka_topic_t* rkt) const { rd_kafka_topic_destroy(rkt); }
  void operator()(rd_kafka_topic_partition_list_t* list) const {
    rd_kafka_topic_partition_list_destroy(list);
  }
  void operator()(rd_kafka_message_t* message) const { rd_kafka_message_destroy(message); }
  void operator()(rd_kafka_headers_t* headers) const { rd_kafka_headers_destroy(headers); }
  void operator()(const rd_kafka_metadata_t* metadata) const {
    rd_kafka_metadata_destroy(metadata);
  }
};

using KafkaHandle = std::unique_ptr<rd_kafka_t, KafkaDeleter>;
using KafkaConf = std::unique_ptr<rd_kafka_conf_t, KafkaDeleter>;
using KafkaTopic = std::unique_ptr<rd_kafka_topic_t, KafkaDeleter>;
using KafkaPartitionList = std::unique_ptr<rd_kafka_topic_partition_list_t, KafkaDeleter>;
using KafkaMessage = std::unique_ptr<rd_kafka_message_t, KafkaDeleter>;
using KafkaHeaders = std::unique_ptr<rd_kafka_headers_t, KafkaDeleter>;
using KafkaMetadata = std::unique_ptr<const rd_kafka_metadata_t, KafkaDeleter>;

// librdkafka properties, applied in order (a later one wins).
using KafkaProperties = std::vector<std::pair<std::string, std::string>>;

struct KafkaClientOptions {
  rd_kafka_type_t type = RD_KAFKA_PRODUCER;
  KafkaProperties properties;  // bootstrap.servers and anything else
  // Optional callbacks; `opaque` is passed to them.
  void (*delivery_report)(rd_kafka_t*, const rd_kafka_message_t*, void*) = nullptr;
  void (*error)(rd_kafka_t*, int, const char*, void*) = nullptr;
  // Consumers that subscribe: called from the poll of the consumer's queue.
  void (*rebalance)(rd_kafka_t*, rd_kafka_resp_err_t, rd_kafka_topic_partition_list_t*,
                    void*) = nullptr;
  void* opaque = nullptr;
};

// Creates a client. librdkafka's log lines go to spdlog (at debug level: failures reach the
// caller as return codes and error callbacks, so its own lines are detail). An unknown or
// invalid property is a PipelineError naming it; a client librdkafka cannot create is a
// RuntimeError.
Result<KafkaHandle> NewKafkaClient(const KafkaClientOptions& options);

// librdkafka's symbolic name and description of `err`: "UNKNOWN_TOPIC_OR_PART (Broker: Unknown
// topic or partition)".
std::string KafkaErrorText(rd_kafka_resp_err_t err);

// The number of partitions of `topic`, asked of the brokers. Waits up to `timeout_ms` for an
// answer (retrying while the cluster says the topic's leaders are not known yet). Errors:
// the brokers did not answer in time ("cannot reach the Kafka brokers at B within 10 s: ..."),
// the topic does not exist, or the answer is an error for it.
Result<int32_t> KafkaPartitionCount(rd_kafka_t* rk, const std::string& topic, int timeout_ms,
                                    std::string_view brokers);

// One partition's offset as the brokers list it (Kafka's ListOffsets): `at` is
// RD_KAFKA_OFFSET_BEGINNING (its first offset), RD_KAFKA_OFFSET_END (its end: the next offset
// to be written, or the last stable offset for a read_committed client), or a time in epoch
// milliseconds (the first offset at or after it; -1 when there is none). Waits at most
// `timeout_ms`; an unreachable leader gives _TIMED_OUT. (librdkafka's
// rd_kafka_query_watermark_offsets would wait for a leader that is down far past its timeout.)
Result<int64_t> KafkaListOffset(rd_kafka_t* rk, const std::string& topic, int32_t partition,
                                int64_t at, int timeout_ms);

// A duration for messages: "10 s", "250 ms".
std::string DescribeMs(int64_t ms);

}  // namespace streamrun
