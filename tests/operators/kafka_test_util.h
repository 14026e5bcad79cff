// Helpers for tests of the Kafka operators against librdkafka's mock cluster in this process
// (kafka/mock_cluster.h): producing test records and reading a topic back.
#pragma once

#include <doctest/doctest.h>
#include <librdkafka/rdkafka.h>

#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "kafka/client.h"
#include "kafka/mock_cluster.h"

namespace streamrun {

inline std::unique_ptr<KafkaMockCluster> StartMock(int brokers = 1) {
  auto cluster = KafkaMockCluster::Start(brokers);
  REQUIRE_MESSAGE(cluster.ok(), cluster.status().message());
  return std::move(cluster).value();
}

inline KafkaHandle TestClient(const KafkaMockCluster& cluster, rd_kafka_type_t type,
                              KafkaProperties extra = {}) {
  KafkaClientOptions options;
  options.type = type;
  options.properties = {{"bootstrap.servers", cluster.bootstrap_servers()}};
  if (type == RD_KAFKA_CONSUMER) options.properties.emplace_back("group.id", "test-reader");
  options.properties.insert(options.properties.end(), extra.begin(), extra.end());
  auto client = NewKafkaClient(options);
  REQUIRE_MESSAGE(client.ok(), client.status().message());
  return std::move(client).value();
}

struct TestRecord {
  int32_t partition = 0;
  std::optional<std::string> key;
  std::optional<std::string> value;
  int64_t timestamp = 0;  // 0: now
  std::vector<std::pair<std::string, std::string>> headers;
};

inline void ProduceRecords(const KafkaMockCluster& cluster, const std::string& topic,
                           const std::vector<TestRecord>& records) {
  KafkaHandle producer = TestClient(cluster, RD_KAFKA_PRODUCER);
  for (const TestRecord& r : records) {
    rd_kafka_headers_t* headers = rd_kafka_headers_new(r.headers.size());
    for (const auto& [name, value] : r.headers) {
      rd_kafka_header_add(headers, name.data(), static_cast<ssize_t>(name.size()), value.data(),
                          static_cast<ssize_t>(value.size()));
    }
    void* value = r.value ? const_cast<char*>(r.value->data()) : nullptr;
    const size_t value_size = r.value ? r.value->size() : 0;
    const void* key = r.key ? r.key->data() : nullptr;
    const size_t key_size = r.key ? r.key->size() : 0;
    rd_kafka_resp_err_t err = rd_kafka_producev(
        producer.get(), RD_KAFKA_V_TOPIC(topic.c_str()), RD_KAFKA_V_PARTITION(r.partition),
        RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY), RD_KAFKA_V_VALUE(value, value_size),
        RD_KAFKA_V_KEY(key, key_size), RD_KAFKA_V_TIMESTAMP(r.timestamp),
        RD_KAFKA_V_HEADERS(headers), RD_KAFKA_V_END);
    if (err != RD_KAFKA_RESP_ERR_NO_ERROR) rd_kafka_headers_destroy(headers);
    REQUIRE(err == RD_KAFKA_RESP_ERR_NO_ERROR);
  }
  REQUIRE(rd_kafka_flush(producer.get(), 10000) == RD_KAFKA_RESP_ERR_NO_ERROR);
}

// How many records partition `partition` of `topic` holds (its high watermark).
inline int64_t HighWatermark(const KafkaMockCluster& cluster, const std::string& topic,
                             int32_t partition) {
  KafkaHandle consumer = TestClient(cluster, RD_KAFKA_CONSUMER);
  int64_t low = -1, high = -1;
  REQUIRE(rd_kafka_query_watermark_offsets(consumer.get(), topic.c_str(), partition, &low, &high,
                                           10000) == RD_KAFKA_RESP_ERR_NO_ERROR);
  return high;
}

struct ReadRecord {
  int32_t partition;
  int64_t offset;
  std::optional<std::string> key;
  std::string value;
  int64_t timestamp;
};

// Every record of `topic` (all `partitions`), read from the beginning to the current ends.
inline std::vector<ReadRecord> ReadTopic(const KafkaMockCluster& cluster, const std::string& topic,
                                         int partitions) {
  KafkaHandle consumer = TestClient(cluster, RD_KAFKA_CONSUMER, {{"enable.partition.eof", "true"}});
  KafkaPartitionList list(rd_kafka_topic_partition_list_new(partitions));
  int open = 0;
  for (int p = 0; p < partitions; ++p) {
    int64_t low = 0, high = 0;
    REQUIRE(rd_kafka_query_watermark_offsets(consumer.get(), topic.c_str(), p, &low, &high,
                                             10000) == RD_KAFKA_RESP_ERR_NO_ERROR);
    if (high > low) {
      rd_kafka_topic_partition_list_add(list.get(), topic.c_str(), p)->offset = low;
      ++open;
    }
  }
  std::vector<ReadRecord> out;
  if (open == 0) return out;
  REQUIRE(rd_kafka_assign(consumer.get(), list.get()) == RD_KAFKA_RESP_ERR_NO_ERROR);
  for (int polls = 0; open > 0 && polls < 200; ++polls) {
    rd_kafka_message_t* m = rd_kafka_consumer_poll(consumer.get(), 100);
    if (m == nullptr) continue;
    if (m->err == RD_KAFKA_RESP_ERR__PARTITION_EOF) {
      --open;
    } else if (m->err == RD_KAFKA_RESP_ERR_NO_ERROR) {
      ReadRecord r{m->partition, m->offset, std::nullopt,
                   std::string(static_cast<const char*>(m->payload), m->len),
                   rd_kafka_message_timestamp(m, nullptr)};
      if (m->key != nullptr) r.key = std::string(static_cast<const char*>(m->key), m->key_len);
      out.push_back(std::move(r));
    }
    rd_kafka_message_destroy(m);
  }
  rd_kafka_consumer_close(consumer.get());
  return out;
}

}  // namespace streamrun
