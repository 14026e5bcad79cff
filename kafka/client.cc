// librdkafka helpers (see client.h).
#include "kafka/client.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <chrono>
#include <thread>

namespace streamrun {
namespace {

void LogToSpdlog(const rd_kafka_t* rk, int /*level*/, const char* facility, const char* message) {
  spdlog::debug("librdkafka {} {}: {}", rd_kafka_name(rk), facility, message);
}

}  // namespace

std::string KafkaErrorText(rd_kafka_resp_err_t err) {
  return std::string(rd_kafka_err2name(err)) + " (" + rd_kafka_err2str(err) + ")";
}

std::string DescribeMs(int64_t ms) {
  if (ms % 1000 == 0) return std::to_string(ms / 1000) + " s";
  return std::to_string(ms) + " ms";
}

Result<KafkaHandle> NewKafkaClient(const KafkaClientOptions& options) {
  KafkaConf conf(rd_kafka_conf_new());
  char errstr[512];
  auto set = [&](const std::string& name, const std::string& value) -> Status {
    if (rd_kafka_conf_set(conf.get(), name.c_str(), value.c_str(), errstr, sizeof errstr) !=
        RD_KAFKA_CONF_OK) {
      // errstr names the property and says what is wrong; it does not repeat the value.
      return Status::PipelineError("Kafka property '" + name + "': " + errstr);
    }
    return Status::Ok();
  };
  for (const auto& [name, value] : options.properties) SR_RETURN_IF_ERROR(set(name, value));
  rd_kafka_conf_set_log_cb(conf.get(), LogToSpdlog);
  if (options.delivery_report != nullptr) {
    rd_kafka_conf_set_dr_msg_cb(conf.get(), options.delivery_report);
  }
  if (options.error != nullptr) rd_kafka_conf_set_error_cb(conf.get(), options.error);
  if (options.rebalance != nullptr) rd_kafka_conf_set_rebalance_cb(conf.get(), options.rebalance);
  rd_kafka_conf_set_opaque(conf.get(), options.opaque);
  // On success rd_kafka_new owns the configuration; on failure it is still ours.
  rd_kafka_t* rk = rd_kafka_new(options.type, conf.get(), errstr, sizeof errstr);
  if (rk == nullptr)
    return Status::RuntimeError(std::string("cannot create a Kafka client: ") + errstr);
  static_cast<void>(conf.release());  // rd_kafka_new owns it now
  return KafkaHandle(rk);
}

Result<int64_t> KafkaListOffset(rd_kafka_t* rk, const std::string& topic, int32_t partition,
                                int64_t at, int timeout_ms) {
  KafkaPartitionList list(rd_kafka_topic_partition_list_new(1));
  rd_kafka_topic_partition_list_add(list.get(), topic.c_str(), partition)->offset = at;
  rd_kafka_resp_err_t err = rd_kafka_offsets_for_times(rk, list.get(), timeout_ms);
  if (err == RD_KAFKA_RESP_ERR_NO_ERROR) err = list->elems[0].err;
  if (err != RD_KAFKA_RESP_ERR_NO_ERROR) {
    return Status::RuntimeError("cannot list the offsets of " + topic + "[" +
                                std::to_string(partition) + "]: " + KafkaErrorText(err));
  }
  return list->elems[0].offset;
}

Result<int32_t> KafkaPartitionCount(rd_kafka_t* rk, const std::string& topic, int timeout_ms,
                                    std::string_view brokers) {
  KafkaTopic rkt(rd_kafka_topic_new(rk, topic.c_str(), nullptr));
  if (!rkt) {
    return Status::RuntimeError("cannot use topic '" + topic +
                                "': " + KafkaErrorText(rd_kafka_last_error()));
  }
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms);
  for (;;) {
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
                          deadline - std::chrono::steady_clock::now())
                          .count();
    const rd_kafka_metadata_t* raw = nullptr;
    rd_kafka_resp_err_t err =
        rd_kafka_metadata(rk, 0, rkt.get(), &raw, static_cast<int>(std::max<int64_t>(left, 1)));
    KafkaMetadata metadata(raw);
    if (err == RD_KAFKA_RESP_ERR_NO_ERROR) {
      for (int i = 0; i < metadata->topic_cnt; ++i) {
        const rd_kafka_metadata_topic_t& t = metadata->topics[i];
        if (topic != t.topic) continue;
        if (t.err == RD_KAFKA_RESP_ERR_NO_ERROR && t.partition_cnt > 0) return t.partition_cnt;
        if (t.err == RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART) {
          return Status::RuntimeError("topic '" + topic + "' does not exist");
        }
        // Leaders still being elected, or a topic just created: ask again.
        const bool transient =
            t.err == RD_KAFKA_RESP_ERR_LEADER_NOT_AVAILABLE || t.err == RD_KAFKA_RESP_ERR_NO_ERROR;
        if (!transient) {
          return Status::RuntimeError("topic '" + topic + "': " + KafkaErrorText(t.err));
        }
        err = t.err;
      }
    }
    if (std::chrono::steady_clock::now() >= deadline) {
      if (err == RD_KAFKA_RESP_ERR__TIMED_OUT || err == RD_KAFKA_RESP_ERR__TRANSPORT ||
          err == RD_KAFKA_RESP_ERR__ALL_BROKERS_DOWN) {
        return Status::RuntimeError("cannot reach the Kafka brokers at " + std::string(brokers) +
                                    " within " + DescribeMs(timeout_ms) + ": " +
                                    KafkaErrorText(err));
      }
      return Status::RuntimeError("no metadata for topic '" + topic + "' within " +
                                  DescribeMs(timeout_ms) + ": " + KafkaErrorText(err));
    }
    if (err != RD_KAFKA_RESP_ERR__TIMED_OUT) {
      std::this_thread::sleep_for(std::chrono::milliseconds(100));  // do not spin on quick errors
    }
  }
}

}  // namespace streamrun
