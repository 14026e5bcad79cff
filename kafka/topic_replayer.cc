// Replaying a recording (see topic_replayer.h).
#include "kafka/topic_replayer.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <memory>
#include <optional>

#include "engine/recording.h"

namespace streamrun {
namespace {

using Clock = std::chrono::steady_clock;

// Calls `each(line_number, record)` for every record of a recording file, in order; stops at
// the first error (a line that is not a record: "FILE:LINE: reason").
Status ForEachRecord(const std::string& path,
                     const std::function<Status(uint64_t, const RecordingRecord&)>& each) {
  FILE* f = std::fopen(path.c_str(), "re");
  if (f == nullptr) return Status::IoError("cannot open '" + path + "': " + std::strerror(errno));
  std::unique_ptr<FILE, int (*)(FILE*)> file(f, &std::fclose);
  RecordingDecoder decoder;
  RecordingRecord record;
  struct LineBuffer {  // getline's buffer, which it grows with realloc
    char* data = nullptr;
    size_t capacity = 0;
    ~LineBuffer() { std::free(data); }
  } buf;
  uint64_t line_no = 0;
  Status st;
  for (;;) {
    errno = 0;
    ssize_t n = ::getline(&buf.data, &buf.capacity, f);
    if (n < 0) {
      if (std::ferror(f))
        st = Status::IoError("cannot read '" + path + "': " + std::strerror(errno));
      break;
    }
    ++line_no;
    std::string_view line(buf.data, static_cast<size_t>(n));
    if (line.find_first_not_of(" \t\r\n") == std::string_view::npos) continue;  // blank
    st = decoder.Decode(line, &record);
    if (!st.ok()) {
      st = Status::DataError(path + ":" + std::to_string(line_no) + ": " + st.message());
      break;
    }
    st = each(line_no, record);
    if (!st.ok()) break;
  }
  return st;
}

class Replayer {
 public:
  Replayer(const ReplayOptions& o, const std::atomic<bool>* cancelled)
      : o_(o), cancelled_(cancelled) {}

  Status Run(ReplaySummary* summary) {
    // First pass: every line is a record; the highest partition named, for the check below.
    int32_t max_partition = -1;
    uint64_t max_partition_line = 0, total = 0;
    SR_RETURN_IF_ERROR(ForEachRecord(o_.input, [&](uint64_t line, const RecordingRecord& r) {
      ++total;
      if (r.partition > max_partition) {
        max_partition = r.partition;
        max_partition_line = line;
      }
      return Status::Ok();
    }));
    SR_RETURN_IF_ERROR(Connect());
    SR_ASSIGN_OR_RETURN(int32_t partitions,
                        KafkaPartitionCount(rk_.get(), o_.topic, o_.timeout_ms, o_.brokers));
    if (max_partition >= partitions) {
      return Status::DataError(o_.input + ":" + std::to_string(max_partition_line) +
                               ": partition " + std::to_string(max_partition) +
                               " does not exist: topic '" + o_.topic + "' has " +
                               std::to_string(partitions) + " partition(s)");
    }
    topic_.reset(rd_kafka_topic_new(rk_.get(), o_.topic.c_str(), nullptr));
    if (!topic_) {
      return Status::RuntimeError("cannot use topic '" + o_.topic +
                                  "': " + KafkaErrorText(rd_kafka_last_error()));
    }
    spdlog::info("replay: {} records from {} to {} ({} partitions){}", total, o_.input, o_.topic,
                 partitions, o_.speed > 0 ? " at speed " + std::to_string(o_.speed) : "");

    last_log_ = Clock::now();
    Status st = ForEachRecord(
        o_.input, [&](uint64_t line, const RecordingRecord& r) { return Produce(line, r, total); });
    Status flushed = st.ok() ? Flush() : Abandon();
    summary->records = delivered_;
    SR_RETURN_IF_ERROR(st);
    SR_RETURN_IF_ERROR(flushed);
    return DeliveryResult(total);
  }

 private:
  bool Cancelled() const { return cancelled_ != nullptr && cancelled_->load(); }

  // Runs inside rd_kafka_poll and rd_kafka_flush on this thread.
  static void OnDelivery(rd_kafka_t* /*rk*/, const rd_kafka_message_t* m, void* opaque) {
    auto* self = static_cast<Replayer*>(opaque);
    if (m->err == RD_KAFKA_RESP_ERR_NO_ERROR) {
      ++self->delivered_;
      return;
    }
    if (self->failed_++ == 0) {
      // The message's opaque is its line number.
      self->first_failure_ =
          std::to_string(reinterpret_cast<uintptr_t>(m->_private)) + ": " + KafkaErrorText(m->err);
    }
  }

  Status Connect() {
    KafkaClientOptions options;
    options.type = RD_KAFKA_PRODUCER;
    options.properties = {{"bootstrap.servers", o_.brokers},
                          {"client.id", "streamrun-replay"},
                          {"enable.idempotence", "true"},
                          {"allow.auto.create.topics", "false"},
                          {"message.timeout.ms", std::to_string(o_.timeout_ms)}};
    options.properties.insert(options.properties.end(), o_.properties.begin(), o_.properties.end());
    options.delivery_report = &Replayer::OnDelivery;
    options.opaque = this;
    SR_ASSIGN_OR_RETURN(rk_, NewKafkaClient(options));
    return Status::Ok();
  }

  // Waits, serving delivery reports, until the record's time has come (see --speed).
  Status Pace(const RecordingRecord& r) {
    if (o_.speed <= 0 || !r.timestamp) return Status::Ok();
    if (!first_ts_) {
      first_ts_ = *r.timestamp;
      first_sent_ = Clock::now();
      return Status::Ok();
    }
    const auto due =
        *first_sent_ + std::chrono::microseconds(static_cast<int64_t>(
                           static_cast<double>(*r.timestamp - *first_ts_) * 1000.0 / o_.speed));
    for (auto now = Clock::now(); now < due; now = Clock::now()) {
      if (Cancelled()) return Status::Cancelled();
      auto wait = std::chrono::duration_cast<std::chrono::milliseconds>(due - now).count();
      rd_kafka_poll(rk_.get(), static_cast<int>(std::clamp<int64_t>(wait, 1, 100)));
    }
    return Status::Ok();
  }

  Status Produce(uint64_t line, const RecordingRecord& r, uint64_t total) {
    SR_RETURN_IF_ERROR(Pace(r));
    static const char kEmpty[] = "";
    // librdkafka tells a null key or value from an empty one by the pointer.
    auto bytes = [](const std::optional<std::string_view>& b) -> const char* {
      if (!b) return nullptr;
      return b->data() != nullptr ? b->data() : kEmpty;
    };
    for (;;) {
      if (Cancelled()) return Status::Cancelled();
      if (failed_ > 0) return DeliveryResult(total);
      KafkaHeaders headers;
      if (!r.headers.empty()) {
        headers.reset(rd_kafka_headers_new(r.headers.size()));
        for (const RecordingHeader& h : r.headers) {
          rd_kafka_resp_err_t err = rd_kafka_header_add(
              headers.get(), h.name.data(), static_cast<ssize_t>(h.name.size()), bytes(h.value),
              h.value ? static_cast<ssize_t>(h.value->size()) : 0);
          if (err != RD_KAFKA_RESP_ERR_NO_ERROR) {
            return Status::RuntimeError(o_.input + ":" + std::to_string(line) + ": header '" +
                                        std::string(h.name) + "': " + KafkaErrorText(err));
          }
        }
      }
      const size_t key_size = r.key ? r.key->size() : 0;
      const size_t value_size = r.value ? r.value->size() : 0;
      rd_kafka_resp_err_t err = rd_kafka_producev(
          rk_.get(), RD_KAFKA_V_RKT(topic_.get()),
          RD_KAFKA_V_PARTITION(r.partition >= 0 ? r.partition : RD_KAFKA_PARTITION_UA),
          RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY), RD_KAFKA_V_KEY(bytes(r.key), key_size),
          RD_KAFKA_V_VALUE(const_cast<char*>(bytes(r.value)), value_size),
          RD_KAFKA_V_TIMESTAMP(r.timestamp.value_or(0)),  // 0: now
          RD_KAFKA_V_HEADERS(headers.get()),
          RD_KAFKA_V_OPAQUE(reinterpret_cast<void*>(static_cast<uintptr_t>(line))), RD_KAFKA_V_END);
      if (err == RD_KAFKA_RESP_ERR_NO_ERROR) {
        static_cast<void>(headers.release());  // the message owns them now
        break;
      }
      if (err != RD_KAFKA_RESP_ERR__QUEUE_FULL) {
        return Status::RuntimeError(o_.input + ":" + std::to_string(line) +
                                    ": cannot produce: " + KafkaErrorText(err));
      }
      rd_kafka_poll(rk_.get(), 100);  // the queue drains as deliveries complete
    }
    ++sent_;
    rd_kafka_poll(rk_.get(), 0);
    if (Clock::now() - last_log_ >= std::chrono::seconds(5)) {
      spdlog::info("replay: {} of {} records sent, {} delivered", sent_, total, delivered_);
      last_log_ = Clock::now();
    }
    return Status::Ok();
  }

  // Waits for every delivery report (each comes within message.timeout.ms).
  Status Flush() {
    while (rd_kafka_outq_len(rk_.get()) > 0) {
      if (Cancelled()) return Abandon();
      rd_kafka_resp_err_t err = rd_kafka_flush(rk_.get(), 500);
      if (err != RD_KAFKA_RESP_ERR_NO_ERROR && err != RD_KAFKA_RESP_ERR__TIMED_OUT) {
        return Status::RuntimeError("cannot flush the producer: " + KafkaErrorText(err));
      }
    }
    return Status::Ok();
  }

  // Drops what is not sent yet and waits briefly for what is in flight.
  Status Abandon() {
    rd_kafka_resp_err_t err = rd_kafka_purge(rk_.get(), RD_KAFKA_PURGE_F_QUEUE);
    if (err != RD_KAFKA_RESP_ERR_NO_ERROR) {
      spdlog::debug("replay: cannot purge the producer queue: {}", KafkaErrorText(err));
    }
    err = rd_kafka_flush(rk_.get(), 2000);
    if (err != RD_KAFKA_RESP_ERR_NO_ERROR) {
      spdlog::debug("replay: records still in flight at exit: {}", KafkaErrorText(err));
    }
    return Cancelled() ? Status::Cancelled() : Status::Ok();
  }

  // An error once a delivery failed (or, after the flush, when any record is unaccounted for).
  Status DeliveryResult(uint64_t total) {
    if (failed_ > 0) {
      return Status::RuntimeError(std::to_string(failed_) +
                                  " record(s) could not be delivered to " + o_.topic +
                                  "; the first: " + o_.input + ":" + first_failure_);
    }
    if (delivered_ == total) return Status::Ok();
    return Status::RuntimeError(std::to_string(total - delivered_) + " of " +
                                std::to_string(total) + " records were not delivered to " +
                                o_.topic);
  }

  const ReplayOptions& o_;
  const std::atomic<bool>* cancelled_;
  KafkaHandle rk_;
  KafkaTopic topic_;
  uint64_t sent_ = 0;
  // Updated by OnDelivery, on this thread.
  uint64_t delivered_ = 0;
  uint64_t failed_ = 0;
  std::string first_failure_;
  std::optional<int64_t> first_ts_;
  std::optional<Clock::time_point> first_sent_;
  Clock::time_point last_log_;
};

}  // namespace

Status ReplayRecording(const ReplayOptions& options, const std::atomic<bool>* cancelled,
                       ReplaySummary* summary) {
  *summary = ReplaySummary();
  Replayer replayer(options, cancelled);
  return replayer.Run(summary);
}

}  // namespace streamrun
