// A Kafka cluster inside this process, for tests and for trying streamrun without Kafka:
// librdkafka's mock cluster, which serves the Kafka protocol on loopback ports (one per broker)
// to any Kafka client. `streamrun kafka-mock` runs one.
//
// Caveats, all of them librdkafka's mock (2.0) and not Kafka's behaviour:
// - Everything lives in memory and goes when the cluster does; no retention, no compaction.
// - Transactions are accepted, but read_committed consumers also see aborted records, and
//   producers are not fenced (no zombie fencing): exactly-once cannot be tested against it.
// - Timestamp lookups (ListOffsets by time, offsetsForTimes) answer "no such offset" (-1).
// - A broker that is down stays the leader of its partitions: there is no leader election
//   (move leaders with SetLeader).
// - A topic that does not exist is created on first use (metadata request) with 4 partitions,
//   whatever the client's allow.auto.create.topics says.
//
// Thread safety: the mock runs on librdkafka's threads; every method may be called from any
// thread (each one hands a request to the mock's thread and waits for its answer).
#pragma once

#include <librdkafka/rdkafka.h>
#include <librdkafka/rdkafka_mock.h>

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "engine/status.h"
#include "kafka/client.h"

namespace streamrun {

class KafkaMockCluster {
 public:
  // Starts `brokers` brokers (ids 1..brokers) on free loopback ports.
  // REQUIRES: 1 <= brokers <= kMaxBrokers.
  static Result<std::unique_ptr<KafkaMockCluster>> Start(int brokers);
  static constexpr int kMaxBrokers = 32;

  ~KafkaMockCluster();
  KafkaMockCluster(const KafkaMockCluster&) = delete;
  KafkaMockCluster& operator=(const KafkaMockCluster&) = delete;

  // "127.0.0.1:PORT,...": the value of bootstrap.servers for clients.
  const std::string& bootstrap_servers() const { return bootstrap_servers_; }
  int broker_count() const { return brokers_; }

  // Creates a topic with replication factor min(3, brokers). An existing topic is an error.
  Status CreateTopic(std::string_view topic, int partitions);
  // A broker that is down closes its connections and refuses new ones.
  Status SetBrokerDown(int32_t broker);
  Status SetBrokerUp(int32_t broker);
  // Delays every answer of `broker` by `rtt_ms` (0: none).
  Status SetRoundTripTime(int32_t broker, int rtt_ms);
  // Makes `broker` the leader of the partition; -1: no leader.
  Status SetLeader(std::string_view topic, int32_t partition, int32_t broker);
  // The next requests of type `api_key` (to any broker) fail with these errors, in order.
  Status PushRequestErrors(int16_t api_key, const std::vector<rd_kafka_resp_err_t>& errors);
  // Forgets the errors pushed for `api_key` and not used yet (not those of DelayRequests).
  Status ClearRequestErrors(int16_t api_key);
  // The next `count` requests of type `api_key` to `broker` are served at once but answered
  // `delay_ms` late: a request whose effect is done while its client times out (a commit
  // whose outcome the client cannot know). Per request, unlike SetRoundTripTime.
  Status DelayRequests(int32_t broker, int16_t api_key, int count, int delay_ms);

  // Runs one command of the text form `kafka-mock` reads on stdin (see kMockCommandHelp).
  // Empty lines and lines starting with '#' do nothing. A wrong command is a PipelineError
  // saying what is wrong.
  Status Execute(std::string_view command);

 private:
  KafkaMockCluster(KafkaHandle handle, rd_kafka_mock_cluster_t* cluster, int brokers);
  Status CheckBroker(int32_t broker) const;
  Status Check(rd_kafka_resp_err_t err, const std::string& what) const;

  KafkaHandle handle_;                // the client the mock cluster belongs to
  rd_kafka_mock_cluster_t* cluster_;  // owned: destroyed before handle_
  int brokers_;
  std::string bootstrap_servers_;
};

// The commands of KafkaMockCluster::Execute, one per line, for help texts.
extern const char kMockCommandHelp[];

// The Kafka API key of a request type by name ("Fetch", "produce": case does not matter) or
// number ("1").
Result<int16_t> KafkaApiKeyByName(std::string_view name);
// A Kafka error code by librdkafka's name ("NOT_LEADER_FOR_PARTITION", also with the prefix
// "RD_KAFKA_RESP_ERR_"; case does not matter) or number ("6").
Result<rd_kafka_resp_err_t> KafkaErrorByName(std::string_view name);

}  // namespace streamrun
