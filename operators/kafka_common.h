// What the Kafka source and sink share: the connection settings (`brokers`, `properties`), the
// redaction of secret properties, and the spreading of partitions over a source's subtasks.
//
// Secrets: a property whose name says it holds a secret (IsSecretKafkaProperty) never appears in
// a log line, a status, a graph or an error message. Messages that quote librdkafka go through
// KafkaSettings::Redact, which replaces any secret value that librdkafka might have repeated.
//
// Thread safety: KafkaSettings is immutable after loading and shared by every subtask.
#pragma once

#include <librdkafka/rdkafka.h>

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "engine/pipeline.h"
#include "engine/status.h"
#include "kafka/client.h"

namespace streamrun {

// True for properties that hold secrets: names containing password, secret, token, key or
// credential (sasl.password, ssl.key.password, ssl.key.pem, sasl.oauthbearer.client.secret),
// and sasl.jaas.config and sasl.oauthbearer.config, which embed secrets in their text.
// Case does not matter.
bool IsSecretKafkaProperty(std::string_view name);

struct KafkaSettings {
  std::string brokers;         // bootstrap.servers
  KafkaProperties properties;  // `properties`, in file order; bootstrap.servers not among them

  // `properties` with bootstrap.servers first, then `defaults` that the user did not set, then
  // the user's: what a client is created with.
  KafkaProperties ClientProperties(const KafkaProperties& defaults) const;
  // True when the user set `name` in `properties`.
  bool HasProperty(std::string_view name) const;
  // The user's value of `name`, or `fallback`.
  std::string Property(std::string_view name, std::string fallback) const;
  // `text` with the value of every secret property replaced by "***".
  std::string Redact(std::string text) const;
  // "a=1, sasl.password=***": the properties for messages and logs.
  std::string Describe() const;
};

// Reads `brokers` (a string "host:port,..." or a list of them) and `properties` (a map of
// librdkafka property names to scalar values). Every property is checked by librdkafka at load
// time, so `validate` reports an unknown name or a bad value at its place in the file (without
// the value). `reserved`: properties the operator sets itself; setting them is an error.
Result<KafkaSettings> ReadKafkaSettings(const ConfigReader& config,
                                        std::initializer_list<std::string_view> reserved);

// Creates a client with `settings` (and `defaults` under the user's properties); messages are
// redacted.
Result<KafkaHandle> NewKafkaClientFor(const KafkaSettings& settings, rd_kafka_type_t type,
                                      const KafkaProperties& defaults,
                                      KafkaClientOptions options = {});

// The subtask (of `parallelism`) that reads partition `partition` of `topic`. Partitions of a
// topic go round-robin from a start subtask that depends on the topic's name (FNV-1a hash), as
// in Flink's KafkaTopicPartitionAssigner, so that several small topics do not all start at
// subtask 0. The same for a partition on every run: a restored position finds its subtask.
int KafkaPartitionOwner(std::string_view topic, int32_t partition, int parallelism);

// librdkafka's words for a failed call, with secrets redacted: "cannot X: NAME (text)".
std::string KafkaCallError(const KafkaSettings& settings, std::string_view what,
                           rd_kafka_resp_err_t err);
// The same for an rd_kafka_error_t (takes and destroys it).
std::string KafkaCallError(const KafkaSettings& settings, std::string_view what,
                           rd_kafka_error_t* error);

}  // namespace streamrun
