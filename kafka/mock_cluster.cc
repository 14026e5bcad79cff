// The mock Kafka cluster (see mock_cluster.h).
#include "kafka/mock_cluster.h"

#include <algorithm>
#include <cctype>
#include <charconv>
#include <sstream>

namespace streamrun {
namespace {

// Kafka's request types (the protocol's API keys), for push-errors and clear-errors.
constexpr const char* kApiNames[] = {"Produce",
                                     "Fetch",
                                     "ListOffsets",
                                     "Metadata",
                                     "LeaderAndIsr",
                                     "StopReplica",
                                     "UpdateMetadata",
                                     "ControlledShutdown",
                                     "OffsetCommit",
                                     "OffsetFetch",
                                     "FindCoordinator",
                                     "JoinGroup",
                                     "Heartbeat",
                                     "LeaveGroup",
                                     "SyncGroup",
                                     "DescribeGroups",
                                     "ListGroups",
                                     "SaslHandshake",
                                     "ApiVersions",
                                     "CreateTopics",
                                     "DeleteTopics",
                                     "DeleteRecords",
                                     "InitProducerId",
                                     "OffsetForLeaderEpoch",
                                     "AddPartitionsToTxn",
                                     "AddOffsetsToTxn",
                                     "EndTxn",
                                     "WriteTxnMarkers",
                                     "TxnOffsetCommit",
                                     "DescribeAcls",
                                     "CreateAcls",
                                     "DeleteAcls",
                                     "DescribeConfigs",
                                     "AlterConfigs",
                                     "AlterReplicaLogDirs",
                                     "DescribeLogDirs",
                                     "SaslAuthenticate",
                                     "CreatePartitions",
                                     "CreateDelegationToken",
                                     "RenewDelegationToken",
                                     "ExpireDelegationToken",
                                     "DescribeDelegationToken",
                                     "DeleteGroups",
                                     "ElectLeaders",
                                     "IncrementalAlterConfigs",
                                     "AlterPartitionReassignments",
                                     "ListPartitionReassignments",
                                     "OffsetDelete"};
constexpr int kApiCount = static_cast<int>(sizeof kApiNames / sizeof kApiNames[0]);

bool EqualsIgnoreCase(std::string_view a, std::string_view b) {
  return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) {
           return std::tolower(static_cast<unsigned char>(x)) ==
                  std::tolower(static_cast<unsigned char>(y));
         });
}

template <typename T>
bool ParseInt(std::string_view text, T* out) {
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), *out);
  return ec == std::errc() && end == text.data() + text.size();
}

std::vector<std::string_view> SplitWords(std::string_view line) {
  std::vector<std::string_view> words;
  size_t i = 0;
  while (i < line.size()) {
    while (i < line.size() && std::isspace(static_cast<unsigned char>(line[i]))) ++i;
    size_t start = i;
    while (i < line.size() && !std::isspace(static_cast<unsigned char>(line[i]))) ++i;
    if (i > start) words.push_back(line.substr(start, i - start));
  }
  return words;
}

Status Usage(std::string message) { return Status::PipelineError(std::move(message)); }

}  // namespace

const char kMockCommandHelp[] =
    "  topic NAME:PARTITIONS          create a topic\n"
    "  broker-down ID                 the broker closes its connections and refuses new ones\n"
    "  broker-up ID                   the broker serves again\n"
    "  rtt ID MS                      delay every answer of the broker by MS milliseconds\n"
    "  leader TOPIC PARTITION ID      make broker ID the partition's leader (-1: no leader)\n"
    "  push-errors API COUNT ERROR    the next COUNT requests of type API (Produce, Fetch, ...)\n"
    "                                 fail with ERROR (a name such as NOT_LEADER_FOR_PARTITION,\n"
    "                                 or a number)\n"
    "  clear-errors API               forget the errors pushed for API and not used yet\n"
    "  delay ID API COUNT MS          the next COUNT requests of type API to broker ID are\n"
    "                                 served at once but answered MS milliseconds late\n";

Result<int16_t> KafkaApiKeyByName(std::string_view name) {
  int16_t key = 0;
  if (ParseInt(name, &key)) {
    if (key < 0) return Usage("API key " + std::string(name) + " is negative");
    return key;
  }
  for (int i = 0; i < kApiCount; ++i) {
    if (EqualsIgnoreCase(name, kApiNames[i])) return static_cast<int16_t>(i);
  }
  std::string names;
  for (int i = 0; i < kApiCount; ++i) names += std::string(i ? ", " : "") + kApiNames[i];
  return Usage("unknown Kafka request type '" + std::string(name) + "' (one of " + names +
               ", or an API key number)");
}

Result<rd_kafka_resp_err_t> KafkaErrorByName(std::string_view name) {
  const struct rd_kafka_err_desc* descs = nullptr;
  size_t count = 0;
  rd_kafka_get_err_descs(&descs, &count);
  int code = 0;
  const bool numeric = ParseInt(name, &code);
  constexpr std::string_view kPrefix = "RD_KAFKA_RESP_ERR_";
  if (!numeric && name.size() > kPrefix.size() &&
      EqualsIgnoreCase(name.substr(0, kPrefix.size()), kPrefix)) {
    name.remove_prefix(kPrefix.size());
  }
  for (size_t i = 0; i < count; ++i) {
    if (descs[i].name == nullptr) continue;  // a gap in librdkafka's table
    if (numeric ? descs[i].code == code : EqualsIgnoreCase(name, descs[i].name))
      return descs[i].code;
  }
  return Usage("unknown Kafka error '" + std::string(name) +
               "' (a name such as NOT_LEADER_FOR_PARTITION or REQUEST_TIMED_OUT, or a number)");
}

KafkaMockCluster::KafkaMockCluster(KafkaHandle handle, rd_kafka_mock_cluster_t* cluster,
                                   int brokers)
    : handle_(std::move(handle)),
      cluster_(cluster),
      brokers_(brokers),
      bootstrap_servers_(rd_kafka_mock_cluster_bootstraps(cluster)) {}

KafkaMockCluster::~KafkaMockCluster() { rd_kafka_mock_cluster_destroy(cluster_); }

Result<std::unique_ptr<KafkaMockCluster>> KafkaMockCluster::Start(int brokers) {
  if (brokers < 1 || brokers > kMaxBrokers) {
    return Usage("a mock cluster has 1 to " + std::to_string(kMaxBrokers) + " brokers, not " +
                 std::to_string(brokers));
  }
  // The mock cluster belongs to a client handle, which never connects anywhere itself.
  KafkaClientOptions options;
  options.type = RD_KAFKA_PRODUCER;
  options.properties = {{"client.id", "streamrun-kafka-mock"}};
  SR_ASSIGN_OR_RETURN(KafkaHandle handle, NewKafkaClient(options));
  rd_kafka_mock_cluster_t* cluster = rd_kafka_mock_cluster_new(handle.get(), brokers);
  if (cluster == nullptr) {
    return Status::RuntimeError("cannot start the mock Kafka cluster (no free loopback ports?)");
  }
  return std::unique_ptr<KafkaMockCluster>(
      new KafkaMockCluster(std::move(handle), cluster, brokers));
}

Status KafkaMockCluster::Check(rd_kafka_resp_err_t err, const std::string& what) const {
  if (err == RD_KAFKA_RESP_ERR_NO_ERROR) return Status::Ok();
  return Status::RuntimeError(what + ": " + KafkaErrorText(err));
}

Status KafkaMockCluster::CheckBroker(int32_t broker) const {
  if (broker >= 1 && broker <= brokers_) return Status::Ok();
  return Usage("no broker " + std::to_string(broker) + " (the brokers are 1 to " +
               std::to_string(brokers_) + ")");
}

Status KafkaMockCluster::CreateTopic(std::string_view topic, int partitions) {
  if (topic.empty()) return Usage("a topic needs a name");
  if (partitions < 1) return Usage("a topic needs at least 1 partition");
  const std::string name(topic);
  return Check(
      rd_kafka_mock_topic_create(cluster_, name.c_str(), partitions, std::min(3, brokers_)),
      "cannot create topic '" + name + "'");
}

Status KafkaMockCluster::SetBrokerDown(int32_t broker) {
  SR_RETURN_IF_ERROR(CheckBroker(broker));
  return Check(rd_kafka_mock_broker_set_down(cluster_, broker),
               "cannot take broker " + std::to_string(broker) + " down");
}

Status KafkaMockCluster::SetBrokerUp(int32_t broker) {
  SR_RETURN_IF_ERROR(CheckBroker(broker));
  return Check(rd_kafka_mock_broker_set_up(cluster_, broker),
               "cannot bring broker " + std::to_string(broker) + " up");
}

Status KafkaMockCluster::SetRoundTripTime(int32_t broker, int rtt_ms) {
  SR_RETURN_IF_ERROR(CheckBroker(broker));
  if (rtt_ms < 0) return Usage("a round-trip time cannot be negative");
  return Check(rd_kafka_mock_broker_set_rtt(cluster_, broker, rtt_ms),
               "cannot set the round-trip time of broker " + std::to_string(broker));
}

Status KafkaMockCluster::SetLeader(std::string_view topic, int32_t partition, int32_t broker) {
  if (broker != -1) SR_RETURN_IF_ERROR(CheckBroker(broker));
  if (partition < 0) return Usage("a partition number cannot be negative");
  const std::string name(topic);
  return Check(rd_kafka_mock_partition_set_leader(cluster_, name.c_str(), partition, broker),
               "cannot set the leader of " + name + "[" + std::to_string(partition) + "]");
}

Status KafkaMockCluster::PushRequestErrors(int16_t api_key,
                                           const std::vector<rd_kafka_resp_err_t>& errors) {
  if (api_key < 0) return Usage("API keys are not negative");
  // librdkafka's call has no result: it cannot fail.
  rd_kafka_mock_push_request_errors_array(cluster_, api_key, errors.size(), errors.data());
  return Status::Ok();
}

Status KafkaMockCluster::ClearRequestErrors(int16_t api_key) {
  if (api_key < 0) return Usage("API keys are not negative");
  rd_kafka_mock_clear_request_errors(cluster_, api_key);
  return Status::Ok();
}

Status KafkaMockCluster::DelayRequests(int32_t broker, int16_t api_key, int count, int delay_ms) {
  SR_RETURN_IF_ERROR(CheckBroker(broker));
  if (api_key < 0) return Usage("API keys are not negative");
  if (delay_ms < 0) return Usage("a delay cannot be negative");
  for (int i = 0; i < count; ++i) {
    SR_RETURN_IF_ERROR(
        Check(rd_kafka_mock_broker_push_request_error_rtts(cluster_, broker, api_key, 1,
                                                           RD_KAFKA_RESP_ERR_NO_ERROR, delay_ms),
              "cannot delay the requests of broker " + std::to_string(broker)));
  }
  return Status::Ok();
}

Status KafkaMockCluster::Execute(std::string_view command) {
  std::vector<std::string_view> w = SplitWords(command);
  if (w.empty() || w[0][0] == '#') return Status::Ok();
  const std::string_view verb = w[0];
  auto expect = [&](size_t args, const char* usage) -> Status {
    if (w.size() != args + 1) return Usage(std::string("usage: ") + usage);
    return Status::Ok();
  };
  auto number = [&](std::string_view text, const char* what, auto* out) -> Status {
    if (!ParseInt(text, out)) {
      return Usage(std::string(what) + " must be a whole number, not '" + std::string(text) + "'");
    }
    return Status::Ok();
  };
  int32_t broker = 0;
  if (verb == "topic") {
    SR_RETURN_IF_ERROR(expect(1, "topic NAME:PARTITIONS"));
    size_t colon = w[1].rfind(':');
    int partitions = 0;
    if (colon == std::string_view::npos) return Usage("usage: topic NAME:PARTITIONS");
    SR_RETURN_IF_ERROR(number(w[1].substr(colon + 1), "PARTITIONS", &partitions));
    return CreateTopic(w[1].substr(0, colon), partitions);
  }
  if (verb == "broker-down" || verb == "broker-up") {
    SR_RETURN_IF_ERROR(expect(1, verb == "broker-up" ? "broker-up ID" : "broker-down ID"));
    SR_RETURN_IF_ERROR(number(w[1], "ID", &broker));
    return verb == "broker-up" ? SetBrokerUp(broker) : SetBrokerDown(broker);
  }
  if (verb == "rtt") {
    SR_RETURN_IF_ERROR(expect(2, "rtt ID MS"));
    int ms = 0;
    SR_RETURN_IF_ERROR(number(w[1], "ID", &broker));
    SR_RETURN_IF_ERROR(number(w[2], "MS", &ms));
    return SetRoundTripTime(broker, ms);
  }
  if (verb == "leader") {
    SR_RETURN_IF_ERROR(expect(3, "leader TOPIC PARTITION ID"));
    int32_t partition = 0;
    SR_RETURN_IF_ERROR(number(w[2], "PARTITION", &partition));
    SR_RETURN_IF_ERROR(number(w[3], "ID", &broker));
    return SetLeader(w[1], partition, broker);
  }
  if (verb == "push-errors") {
    SR_RETURN_IF_ERROR(expect(3, "push-errors API COUNT ERROR"));
    SR_ASSIGN_OR_RETURN(int16_t api, KafkaApiKeyByName(w[1]));
    int count = 0;
    SR_RETURN_IF_ERROR(number(w[2], "COUNT", &count));
    if (count < 1 || count > 1000000) return Usage("COUNT must be from 1 to 1000000");
    SR_ASSIGN_OR_RETURN(rd_kafka_resp_err_t err, KafkaErrorByName(w[3]));
    return PushRequestErrors(api, std::vector<rd_kafka_resp_err_t>(count, err));
  }
  if (verb == "clear-errors") {
    SR_RETURN_IF_ERROR(expect(1, "clear-errors API"));
    SR_ASSIGN_OR_RETURN(int16_t api, KafkaApiKeyByName(w[1]));
    return ClearRequestErrors(api);
  }
  if (verb == "delay") {
    SR_RETURN_IF_ERROR(expect(4, "delay ID API COUNT MS"));
    SR_RETURN_IF_ERROR(number(w[1], "ID", &broker));
    SR_ASSIGN_OR_RETURN(int16_t api, KafkaApiKeyByName(w[2]));
    int count = 0, ms = 0;
    SR_RETURN_IF_ERROR(number(w[3], "COUNT", &count));
    if (count < 1 || count > 100000) return Usage("COUNT must be from 1 to 100000");
    SR_RETURN_IF_ERROR(number(w[4], "MS", &ms));
    return DelayRequests(broker, api, count, ms);
  }
  return Usage("unknown command '" + std::string(verb) +
               "'; the commands are topic, broker-down, broker-up, rtt, leader, push-errors, "
               "clear-errors, delay");
}

}  // namespace streamrun
