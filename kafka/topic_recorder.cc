// Recording a topic (see topic_recorder.h).
#include "kafka/topic_recorder.h"

#include <fcntl.h>
#include <spdlog/spdlog.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <thread>
#include <vector>

#include "engine/recording.h"

namespace streamrun {
namespace {

using Clock = std::chrono::steady_clock;

int64_t MsBetween(Clock::time_point a, Clock::time_point b) {
  return std::chrono::duration_cast<std::chrono::milliseconds>(b - a).count();
}

// The recording file: written through a buffer, fsynced at the end.
class OutputFile {
 public:
  ~OutputFile() {
    if (fd_ >= 0) ::close(fd_);
  }
  Status Open(const std::string& path) {
    path_ = path;
    fd_ = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd_ < 0) return Status::IoError("cannot write '" + path + "': " + std::strerror(errno));
    return Status::Ok();
  }
  std::string& buffer() { return buffer_; }
  // Writes the buffer out once it is large.
  Status MaybeFlush() { return buffer_.size() >= (1 << 20) ? Flush() : Status::Ok(); }
  Status Flush() {
    size_t done = 0;
    while (done < buffer_.size()) {
      ssize_t n = ::write(fd_, buffer_.data() + done, buffer_.size() - done);
      if (n < 0 && errno == EINTR) continue;
      if (n < 0) return Status::IoError("cannot write '" + path_ + "': " + std::strerror(errno));
      done += static_cast<size_t>(n);
    }
    buffer_.clear();
    return Status::Ok();
  }
  Status Close() {
    SR_RETURN_IF_ERROR(Flush());
    if (::fsync(fd_) != 0)
      return Status::IoError("cannot sync '" + path_ + "': " + std::strerror(errno));
    int fd = fd_;
    fd_ = -1;
    if (::close(fd) != 0)
      return Status::IoError("cannot close '" + path_ + "': " + std::strerror(errno));
    return Status::Ok();
  }

 private:
  std::string path_;
  int fd_ = -1;
  std::string buffer_;
};

struct PartitionState {
  int64_t low = 0, high = 0;  // offsets at start
  int64_t start = 0;          // where reading starts
  bool scan = false;          // skip records before the first one at or after the start time
  bool done = false;          // until-end: reached `high`
};

class Recorder {
 public:
  Recorder(const RecordOptions& o, const std::atomic<bool>* cancelled)
      : o_(o), cancelled_(cancelled) {}

  Status Run(RecordSummary* summary) {
    SR_RETURN_IF_ERROR(out_.Open(o_.output));
    SR_RETURN_IF_ERROR(Connect());
    deadline_ = Clock::now() + std::chrono::milliseconds(o_.timeout_ms);
    SR_ASSIGN_OR_RETURN(int32_t count,
                        KafkaPartitionCount(rk_.get(), o_.topic, o_.timeout_ms, o_.brokers));
    summary->partitions = count;
    parts_.resize(static_cast<size_t>(count));
    SR_RETURN_IF_ERROR(QueryWatermarks());
    SR_RETURN_IF_ERROR(ChooseStarts());
    Status st = Consume(summary);
    Status closed = out_.Close();
    SR_RETURN_IF_ERROR(st);
    return closed;
  }

 private:
  bool Cancelled() const { return cancelled_ != nullptr && cancelled_->load(); }
  bool until_end() const { return o_.until_count <= 0; }
  std::string Name(int32_t p) const { return o_.topic + "[" + std::to_string(p) + "]"; }
  // What is left of the start-up time, at least 1 ms.
  int TimeLeft() const {
    return static_cast<int>(std::max<int64_t>(1, MsBetween(Clock::now(), deadline_)));
  }

  static void OnError(rd_kafka_t* /*rk*/, int err, const char* reason, void* opaque) {
    auto* self = static_cast<Recorder*>(opaque);
    auto code = static_cast<rd_kafka_resp_err_t>(err);
    std::string text = std::string(rd_kafka_err2name(code)) + ": " + reason;
    if (text != self->last_error_) spdlog::warn("record: {}", text);
    self->last_error_ = std::move(text);
    if (code == RD_KAFKA_RESP_ERR__ALL_BROKERS_DOWN) {
      if (!self->all_down_since_) self->all_down_since_ = Clock::now();
    }
    if (code == RD_KAFKA_RESP_ERR__FATAL) self->fatal_ = true;
  }

  Status Connect() {
    KafkaClientOptions options;
    options.type = RD_KAFKA_CONSUMER;
    options.properties = {
        {"bootstrap.servers", o_.brokers},    {"client.id", "streamrun-record"},
        {"group.id", "streamrun-record"},  // never joined, nothing committed
        {"enable.auto.commit", "false"},      {"enable.auto.offset.store", "false"},
        {"enable.partition.eof", "true"},     {"auto.offset.reset", "earliest"},
        {"isolation.level", "read_committed"}};
    options.properties.insert(options.properties.end(), o_.properties.begin(), o_.properties.end());
    options.error = &Recorder::OnError;
    options.opaque = this;
    SR_ASSIGN_OR_RETURN(rk_, NewKafkaClient(options));
    rd_kafka_resp_err_t err = rd_kafka_poll_set_consumer(rk_.get());
    if (err != RD_KAFKA_RESP_ERR_NO_ERROR) {
      return Status::RuntimeError("cannot set up the Kafka consumer: " + KafkaErrorText(err));
    }
    return Status::Ok();
  }

  // Each partition's first and end offsets, retried until the start-up deadline (a partition's
  // leader may be down for a moment).
  Status QueryWatermarks() {
    for (int32_t p = 0; p < static_cast<int32_t>(parts_.size()); ++p) {
      PartitionState& s = parts_[static_cast<size_t>(p)];
      bool warned = false;
      for (int64_t* out : {&s.low, &s.high}) {
        const int64_t at = out == &s.low ? RD_KAFKA_OFFSET_BEGINNING : RD_KAFKA_OFFSET_END;
        for (;;) {
          if (Cancelled()) return Status::Cancelled();
          auto offset = KafkaListOffset(rk_.get(), o_.topic, p, at, std::min(TimeLeft(), 2000));
          if (offset.ok()) {
            *out = *offset;
            break;
          }
          if (Clock::now() >= deadline_) {
            return Status::RuntimeError(offset.status().message() + "; gave up after " +
                                        DescribeMs(o_.timeout_ms) + " (brokers " + o_.brokers +
                                        ")");
          }
          if (!warned) {
            spdlog::warn("record: {}; retrying for up to {}", offset.status().message(),
                         DescribeMs(o_.timeout_ms));
            warned = true;
          }
          std::this_thread::sleep_for(
              std::chrono::milliseconds(100));  // no spinning on quick errors
        }
      }
    }
    return Status::Ok();
  }

  Status ChooseStarts() {
    for (auto& s : parts_) {
      s.start = o_.from.kind == RecordStart::Kind::kLatest ? s.high : s.low;
    }
    if (o_.from.kind != RecordStart::Kind::kTime) return Status::Ok();
    KafkaPartitionList list(rd_kafka_topic_partition_list_new(static_cast<int>(parts_.size())));
    for (int32_t p = 0; p < static_cast<int32_t>(parts_.size()); ++p) {
      rd_kafka_topic_partition_list_add(list.get(), o_.topic.c_str(), p)->offset = o_.from.time_ms;
    }
    rd_kafka_resp_err_t err = rd_kafka_offsets_for_times(rk_.get(), list.get(), TimeLeft());
    if (err != RD_KAFKA_RESP_ERR_NO_ERROR) {
      return Status::RuntimeError("cannot look up the offsets of " + o_.topic + " at time " +
                                  std::to_string(o_.from.time_ms) + ": " + KafkaErrorText(err));
    }
    std::vector<int32_t> unsure;  // "none" answers for partitions that have records
    for (int i = 0; i < list->cnt; ++i) {
      const rd_kafka_topic_partition_t& tp = list->elems[i];
      PartitionState& s = parts_[static_cast<size_t>(tp.partition)];
      if (tp.err != RD_KAFKA_RESP_ERR_NO_ERROR) {
        return Status::RuntimeError("cannot look up the offset of " + Name(tp.partition) +
                                    " at time " + std::to_string(o_.from.time_ms) + ": " +
                                    KafkaErrorText(tp.err));
      }
      if (tp.offset >= 0) {
        s.start = tp.offset;
      } else {
        s.start = s.high;  // no record that recent
        if (s.high > s.low) unsure.push_back(tp.partition);
      }
    }
    return CheckNoneAnswers(unsure);
  }

  // For each partition whose time lookup said "none": reads its last record; when that one is
  // at or after the time, the answer was wrong, and the partition is scanned from its start.
  Status CheckNoneAnswers(const std::vector<int32_t>& partitions) {
    if (partitions.empty()) return Status::Ok();
    KafkaPartitionList list(rd_kafka_topic_partition_list_new(static_cast<int>(partitions.size())));
    for (int32_t p : partitions) {
      rd_kafka_topic_partition_list_add(list.get(), o_.topic.c_str(), p)->offset =
          parts_[static_cast<size_t>(p)].high - 1;
    }
    SR_RETURN_IF_ERROR(Assign(list.get()));
    size_t answered = 0;
    std::vector<bool> seen(parts_.size(), false);
    while (answered < partitions.size()) {
      if (Cancelled()) return Status::Cancelled();
      if (Clock::now() >= deadline_) {
        return Status::RuntimeError("cannot read the last records of " + o_.topic + " within " +
                                    DescribeMs(o_.timeout_ms) +
                                    (last_error_.empty() ? "" : ": " + last_error_));
      }
      KafkaMessage m(rd_kafka_consumer_poll(rk_.get(), 200));
      if (!m) continue;
      const int32_t p = m->partition;
      if (m->err != RD_KAFKA_RESP_ERR_NO_ERROR && m->err != RD_KAFKA_RESP_ERR__PARTITION_EOF) {
        SR_RETURN_IF_ERROR(ConsumerError(m.get()));
        continue;
      }
      if (p < 0 || static_cast<size_t>(p) >= parts_.size() || seen[static_cast<size_t>(p)])
        continue;
      seen[static_cast<size_t>(p)] = true;
      ++answered;
      if (m->err == RD_KAFKA_RESP_ERR_NO_ERROR) {
        rd_kafka_timestamp_type_t type;
        int64_t ts = rd_kafka_message_timestamp(m.get(), &type);
        if (ts >= o_.from.time_ms) {
          PartitionState& s = parts_[static_cast<size_t>(p)];
          spdlog::info(
              "record: the brokers found no offset of {} at time {}, but its last record "
              "is that recent: reading it from its start",
              Name(p), o_.from.time_ms);
          s.start = s.low;
          s.scan = true;
        }
      }
    }
    return Assign(nullptr);
  }

  Status Assign(const rd_kafka_topic_partition_list_t* list) {
    rd_kafka_resp_err_t err = rd_kafka_assign(rk_.get(), list);
    if (err != RD_KAFKA_RESP_ERR_NO_ERROR) {
      return Status::RuntimeError("cannot assign the partitions of " + o_.topic + ": " +
                                  KafkaErrorText(err));
    }
    return Status::Ok();
  }

  void MarkDone(int32_t p) {
    PartitionState& s = parts_[static_cast<size_t>(p)];
    if (s.done) return;
    s.done = true;
    ++done_count_;
    spdlog::debug("record: {} reached its end offset {}", Name(p), s.high);
    KafkaPartitionList list(rd_kafka_topic_partition_list_new(1));
    rd_kafka_topic_partition_list_add(list.get(), o_.topic.c_str(), p);
    // Pausing only saves fetching what would be skipped; a failure changes nothing else.
    rd_kafka_resp_err_t err = rd_kafka_pause_partitions(rk_.get(), list.get());
    if (err != RD_KAFKA_RESP_ERR_NO_ERROR)
      spdlog::debug("record: cannot pause {}: {}", Name(p), KafkaErrorText(err));
  }

  // An error the consumer delivered as a message: fatal for a topic that is gone or forbidden,
  // logged otherwise (librdkafka retries).
  Status ConsumerError(const rd_kafka_message_t* m) {
    const std::string what = (m->rkt != nullptr ? Name(m->partition) + ": " : "") +
                             std::string(rd_kafka_err2name(m->err)) + ": " +
                             rd_kafka_message_errstr(m);
    switch (m->err) {
      case RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART:
      case RD_KAFKA_RESP_ERR__UNKNOWN_TOPIC:
      case RD_KAFKA_RESP_ERR__UNKNOWN_PARTITION:
      case RD_KAFKA_RESP_ERR_TOPIC_AUTHORIZATION_FAILED:
      case RD_KAFKA_RESP_ERR__FATAL:
        return Status::RuntimeError("cannot read " + o_.topic + ": " + what);
      default:
        if (what != last_error_) spdlog::warn("record: {}", what);
        last_error_ = what;
        return Status::Ok();
    }
  }

  Status Append(const rd_kafka_message_t* m) {
    RecordingRecord r;
    r.topic = o_.topic;
    r.partition = m->partition;
    r.offset = m->offset;
    rd_kafka_timestamp_type_t type;
    int64_t ts = rd_kafka_message_timestamp(m, &type);
    if (type != RD_KAFKA_TIMESTAMP_NOT_AVAILABLE && ts >= 0) r.timestamp = ts;
    if (m->key != nullptr) r.key = std::string_view(static_cast<const char*>(m->key), m->key_len);
    if (m->payload != nullptr)
      r.value = std::string_view(static_cast<const char*>(m->payload), m->len);
    rd_kafka_headers_t* headers = nullptr;  // owned by the message
    rd_kafka_resp_err_t err = rd_kafka_message_headers(m, &headers);
    if (err == RD_KAFKA_RESP_ERR_NO_ERROR) {
      const char* name = nullptr;
      const void* value = nullptr;
      size_t size = 0;
      for (size_t i = 0;
           rd_kafka_header_get_all(headers, i, &name, &value, &size) == RD_KAFKA_RESP_ERR_NO_ERROR;
           ++i) {
        RecordingHeader h{name, std::nullopt};
        if (value != nullptr) h.value = std::string_view(static_cast<const char*>(value), size);
        r.headers.push_back(h);
      }
    } else if (err != RD_KAFKA_RESP_ERR__NOENT) {
      return Status::RuntimeError("cannot read the headers of " + Name(m->partition) + " offset " +
                                  std::to_string(m->offset) + ": " + KafkaErrorText(err));
    }
    encoder_.Append(out_.buffer(), r);
    return out_.MaybeFlush();
  }

  void LogProgress(uint64_t records) {
    if (until_end()) {
      spdlog::info("record: {} records so far; {} of {} partitions at their end", records,
                   done_count_, parts_.size());
    } else {
      spdlog::info("record: {} of {} records so far", records, o_.until_count);
    }
  }

  // When every broker has been unreachable for the timeout, asks for metadata once: no answer
  // is a failure.
  Status CheckBrokers() {
    if (!all_down_since_ || MsBetween(*all_down_since_, Clock::now()) < o_.timeout_ms)
      return Status::Ok();
    auto count = KafkaPartitionCount(rk_.get(), o_.topic, 2000, o_.brokers);
    if (count.ok()) {
      all_down_since_.reset();
      return Status::Ok();
    }
    return Status::RuntimeError("lost every Kafka broker at " + o_.brokers + " for " +
                                DescribeMs(o_.timeout_ms) + ": " + last_error_);
  }

  Status Consume(RecordSummary* summary) {
    KafkaPartitionList list(rd_kafka_topic_partition_list_new(static_cast<int>(parts_.size())));
    for (int32_t p = 0; p < static_cast<int32_t>(parts_.size()); ++p) {
      PartitionState& s = parts_[static_cast<size_t>(p)];
      if (until_end() && s.start >= s.high) {
        s.done = true;
        ++done_count_;
        continue;
      }
      rd_kafka_topic_partition_list_add(list.get(), o_.topic.c_str(), p)->offset = s.start;
    }
    spdlog::info(
        "record: {} ({} partitions) from {} until {}", o_.topic, parts_.size(),
        o_.from.kind == RecordStart::Kind::kEarliest ? std::string("earliest")
        : o_.from.kind == RecordStart::Kind::kLatest ? std::string("latest")
                                                     : "time " + std::to_string(o_.from.time_ms),
        until_end() ? std::string("the end") : std::to_string(o_.until_count) + " records");
    if (list->cnt == 0) return Status::Ok();
    SR_RETURN_IF_ERROR(Assign(list.get()));

    uint64_t& records = summary->records;
    auto last_progress = Clock::now();
    auto last_log = Clock::now();
    for (;;) {
      if (until_end() && done_count_ == parts_.size()) return Status::Ok();
      if (!until_end() && records >= static_cast<uint64_t>(o_.until_count)) return Status::Ok();
      if (Cancelled()) return Status::Cancelled();
      const auto now = Clock::now();
      if (MsBetween(last_log, now) >= 5000) {
        LogProgress(records);
        last_log = now;
      }
      if (fatal_) return Status::RuntimeError("the Kafka consumer failed: " + last_error_);
      SR_RETURN_IF_ERROR(CheckBrokers());
      if (until_end() && MsBetween(last_progress, now) >= o_.timeout_ms) {
        std::string waiting;
        for (int32_t p = 0; p < static_cast<int32_t>(parts_.size()); ++p) {
          if (!parts_[static_cast<size_t>(p)].done)
            waiting += (waiting.empty() ? "" : ", ") + Name(p);
        }
        return Status::RuntimeError(
            "no records from " + waiting + " for " + DescribeMs(o_.timeout_ms) +
            " although they have more" +
            (last_error_.empty() ? "" : " (last error: " + last_error_ + ")"));
      }

      KafkaMessage m(rd_kafka_consumer_poll(rk_.get(), 200));
      if (!m) continue;
      const int32_t p = m->partition;
      const bool ours = m->rkt != nullptr && p >= 0 && static_cast<size_t>(p) < parts_.size();
      if (m->err == RD_KAFKA_RESP_ERR__PARTITION_EOF) {
        if (!ours) continue;
        last_progress = Clock::now();
        all_down_since_.reset();
        // m->offset is where the partition ends now; gaps (transaction markers) are passed.
        if (until_end() && m->offset >= parts_[static_cast<size_t>(p)].high) MarkDone(p);
        continue;
      }
      if (m->err != RD_KAFKA_RESP_ERR_NO_ERROR) {
        SR_RETURN_IF_ERROR(ConsumerError(m.get()));
        continue;
      }
      if (!ours) continue;
      last_progress = Clock::now();
      all_down_since_.reset();
      PartitionState& s = parts_[static_cast<size_t>(p)];
      if (until_end() && (s.done || m->offset >= s.high)) {
        MarkDone(p);
        continue;
      }
      if (s.scan) {
        rd_kafka_timestamp_type_t type;
        if (rd_kafka_message_timestamp(m.get(), &type) < o_.from.time_ms) continue;
        s.scan = false;
      }
      SR_RETURN_IF_ERROR(Append(m.get()));
      ++records;
      if (until_end() && m->offset + 1 >= s.high) MarkDone(p);
    }
  }

  const RecordOptions& o_;
  const std::atomic<bool>* cancelled_;
  Clock::time_point deadline_;  // of the start-up: metadata, offsets
  OutputFile out_;
  KafkaHandle rk_;
  std::vector<PartitionState> parts_;
  size_t done_count_ = 0;
  RecordingEncoder encoder_;
  // Set by OnError, which runs inside rd_kafka_consumer_poll on this thread.
  std::string last_error_;
  std::optional<Clock::time_point> all_down_since_;
  bool fatal_ = false;
};

}  // namespace

Status RecordTopic(const RecordOptions& options, const std::atomic<bool>* cancelled,
                   RecordSummary* summary) {
  *summary = RecordSummary();
  Recorder recorder(options, cancelled);
  return recorder.Run(summary);
}

}  // namespace streamrun
