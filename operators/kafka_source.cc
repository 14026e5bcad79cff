// The `kafka` source. See kafka_source.h for how it assigns, resumes, pauses and makes
// watermarks.
#include "operators/kafka_source.h"

#include <rapidjson/document.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <charconv>
#include <chrono>
#include <cstring>
#include <deque>
#include <map>

#include "engine/civil_time.h"
#include "engine/json_extract.h"
#include "operators/factories.h"

namespace streamrun {
namespace {

using SteadyClock = std::chrono::steady_clock;

// How long one poll waits for records: the longest a requested barrier, a cancel or an idle
// partition waits to be noticed.
constexpr int kPollMs = 100;

struct QueueDeleter {
  void operator()(rd_kafka_queue_t* q) const { rd_kafka_queue_destroy(q); }
};
using KafkaQueue = std::unique_ptr<rd_kafka_queue_t, QueueDeleter>;

// librdkafka's defaults that do not suit a source that decides its offsets itself. The user's
// `properties` override them.
KafkaProperties ConsumerDefaults(const std::string& group, const std::string& client_id) {
  return {
      {"group.id", group},
      {"client.id", client_id},
      {"enable.auto.commit", "false"},         // offsets go to the group after checkpoints only
      {"enable.auto.offset.store", "false"},
      {"enable.partition.eof", "true"},        // tells a caught-up partition (idleness, end)
      {"auto.offset.reset", "earliest"},       // a position deleted by retention: read on
      // The prefetch bound (kafka_source.h) is in bytes: 16 MiB for all partitions together.
      // librdkafka's other bound, queued.min.messages (100000 messages), counts the whole
      // queue of an assigned consumer too; reaching it backs the fetcher off for
      // fetch.error.backoff.ms (500 ms), which stalled reading at every refill (measured:
      // 1M records of 24 partitions in 2-3 s instead of 1 s). A count far past the byte bound
      // leaves the bytes in charge.
      {"queued.max.messages.kbytes", "16384"},
      {"queued.min.messages", "10000000"},
      {"isolation.level", "read_committed"},
  };
}

// What a metadata slot of the layout takes.
enum class Meta : uint8_t { kKey, kTimestamp, kPartition, kOffset, kTopic, kHeaders, kHeader, kLine };
struct MetaSlot {
  uint32_t slot;
  Meta meta;
  std::string header;  // kHeader
};

// One partition this subtask reads.
struct Partition {
  std::string topic;
  int32_t partition = 0;
  int64_t next = 0;    // the next offset to read (a concrete offset)
  int64_t end = -1;    // stop_at end: the high watermark at start
  WatermarkGenerator gen;
  bool done = false;       // stop_at end: reached its end
  bool caught_up = false;  // nothing to read at the last look (partition EOF)
  SteadyClock::time_point caught_up_since;
  bool idle = false;       // caught up for longer than idle_timeout
};

// A restored position: per (topic, partition) the next offset and the max event time.
struct Restored {
  struct At {
    int64_t offset = 0;
    int64_t max_ts = kMinTimestamp;
  };
  std::map<std::pair<std::string, int32_t>, At> partitions;
  std::vector<std::string> topics;  // every topic the checkpoint has a partition of
};

Result<Restored> ParseRestored(const std::string& positions) {
  rapidjson::Document doc;
  doc.Parse(positions.data(), positions.size());
  if (doc.HasParseError() || !doc.IsArray()) {
    return Status::RuntimeError("kafka source: damaged position in the checkpoint");
  }
  Restored r;
  for (auto& v : doc.GetArray()) {
    if (!v.IsObject()) continue;  // "end" or null: a subtask that had no partitions
    if (!v.HasMember("partitions") || !v["partitions"].IsArray()) {
      return Status::RuntimeError(
          "kafka source: the checkpoint's position is not a Kafka position (was the source of "
          "another type?)");
    }
    for (auto& p : v["partitions"].GetArray()) {
      if (!p.IsObject() || !p.HasMember("topic") || !p["topic"].IsString() ||
          !p.HasMember("partition") || !p["partition"].IsInt() || !p.HasMember("offset") ||
          !p["offset"].IsInt64()) {
        return Status::RuntimeError("kafka source: damaged partition position in the checkpoint");
      }
      Restored::At at;
      at.offset = p["offset"].GetInt64();
      if (p.HasMember("max_ts") && p["max_ts"].IsInt64()) at.max_ts = p["max_ts"].GetInt64();
      std::string topic = p["topic"].GetString();
      if (std::find(r.topics.begin(), r.topics.end(), topic) == r.topics.end()) r.topics.push_back(topic);
      r.partitions[{topic, p["partition"].GetInt()}] = at;
    }
  }
  return r;
}

class KafkaSource : public SourceOperator {
 public:
  explicit KafkaSource(const KafkaSourceOptions& o) : o_(o) {}

  Status Run(SourceContext& ctx) override {
    ctx_ = &ctx;
    maker_ = std::make_unique<RecordMaker>(o_.common, ctx, LineFormat::kText);
    const std::string client_id = "streamrun-" + ctx.name + "-" + std::to_string(ctx.subtask);
    const std::string group = o_.group.empty() ? "streamrun-" + ctx.name : o_.group;
    KafkaClientOptions co;
    co.error = &KafkaSource::OnError;
    co.opaque = this;
    SR_ASSIGN_OR_RETURN(rk_, NewKafkaClientFor(o_.kafka, RD_KAFKA_CONSUMER,
                                               ConsumerDefaults(group, client_id), co));
    // Errors and the consumer's records come through one queue.
    rd_kafka_resp_err_t err = rd_kafka_poll_set_consumer(rk_.get());
    if (err != RD_KAFKA_RESP_ERR_NO_ERROR) {
      return Status::RuntimeError(Where() + KafkaCallError(o_.kafka, "set up the consumer", err));
    }
    queue_.reset(rd_kafka_queue_get_consumer(rk_.get()));
    commits_.reset(rd_kafka_queue_new(rk_.get()));
    if (!queue_ || !commits_) return Status::RuntimeError(Where() + "cannot get the consumer's queues");
    SR_RETURN_IF_ERROR(Init());
    Status st = Setup();
    if (st.ok()) st = Loop();
    // A clean close: the consumer leaves nothing behind (it never joined its group).
    rd_kafka_resp_err_t cerr = rd_kafka_consumer_close(rk_.get());
    if (cerr != RD_KAFKA_RESP_ERR_NO_ERROR && st.ok()) {
      spdlog::warn("{}{}", Where(), KafkaCallError(o_.kafka, "close the consumer", cerr));
    }
    queue_.reset();
    commits_.reset();
    rk_.reset();
    return st;
  }

 private:
  std::string Where() const { return "source '" + ctx_->name + "': "; }

  // librdkafka's error callback (on the polling thread, from rd_kafka_consume_batch_queue).
  static void OnError(rd_kafka_t* rk, int err, const char* reason, void* opaque) {
    auto* self = static_cast<KafkaSource*>(opaque);
    const auto code = static_cast<rd_kafka_resp_err_t>(err);
    if (code == RD_KAFKA_RESP_ERR__FATAL) {
      char buf[512];
      rd_kafka_resp_err_t orig = rd_kafka_fatal_error(rk, buf, sizeof buf);
      self->fatal_ = self->o_.kafka.Redact(std::string("fatal Kafka error: ") + rd_kafka_err2name(orig) +
                                           ": " + buf);
      return;
    }
    // Brokers down, connections refused: librdkafka retries by itself. Say so, not too often.
    auto now = SteadyClock::now();
    if (now - self->last_warning_ < std::chrono::seconds(5) && code == self->last_warning_code_) return;
    self->last_warning_ = now;
    self->last_warning_code_ = code;
    spdlog::warn("{}{}: {} (retrying)", self->Where(), rd_kafka_err2name(code),
                 self->o_.kafka.Redact(reason));
  }

  // Layout: which slots take metadata, and the JSON fields.
  Status Init() {
    SR_RETURN_IF_ERROR(maker_->Init());
    const Layout& layout = ctx_->layout;
    static constexpr std::pair<std::string_view, Meta> kNames[] = {
        {"$key", Meta::kKey},       {"$timestamp", Meta::kTimestamp}, {"$partition", Meta::kPartition},
        {"$offset", Meta::kOffset}, {"$topic", Meta::kTopic},         {"$headers", Meta::kHeaders}};
    for (uint32_t i = 0; i < layout.size(); ++i) {
      const FieldPath& p = layout[i];
      if (p.size() == 2 && p[0] == "$headers") {
        meta_.push_back({i, Meta::kHeader, p[1]});
        continue;
      }
      if (p.size() == 1 && p[0] == "line" && o_.format == LineFormat::kText) {
        meta_.push_back({i, Meta::kLine, ""});
        continue;
      }
      for (const auto& [name, meta] : kNames) {
        if (p.size() == 1 && p[0] == name) meta_.push_back({i, meta, ""});
      }
    }
    if (o_.format == LineFormat::kJson) extractor_ = std::make_unique<JsonExtractor>(layout);
    return Status::Ok();
  }

  // Which partitions, from which offsets, to which ends; then assigns them.
  Status Setup() {
    for (const std::string& topic : o_.topics) {
      Result<int32_t> count = KafkaPartitionCount(rk_.get(), topic, o_.metadata_timeout_ms, o_.kafka.brokers);
      if (!count.ok()) return Status::RuntimeError(Where() + o_.kafka.Redact(count.status().message()));
      for (int32_t p = 0; p < *count; ++p) {
        if (KafkaPartitionOwner(topic, p, ctx_->parallelism) != ctx_->subtask) continue;
        Partition part;
        part.topic = topic;
        part.partition = p;
        part.gen = WatermarkGenerator(o_.common.max_out_of_orderness_ms);
        parts_.push_back(std::move(part));
      }
    }
    if (parts_.empty()) {
      spdlog::info("{}subtask {} has no partition to read: it ends", Where(), ctx_->subtask);
      return Status::Ok();
    }
    Restored restored;
    if (!ctx_->restore_positions.empty()) {
      SR_ASSIGN_OR_RETURN(restored, ParseRestored(ctx_->restore_positions));
    }
    for (Partition& p : parts_) {
      auto it = restored.partitions.find({p.topic, p.partition});
      if (it != restored.partitions.end()) {
        p.next = it->second.offset;
        p.gen.set_max_timestamp(it->second.max_ts);
        continue;
      }
      const bool known_topic =
          std::find(restored.topics.begin(), restored.topics.end(), p.topic) != restored.topics.end();
      // A partition added to a known topic since the checkpoint: all of it is new data.
      KafkaSourceOptions::Start start = known_topic ? KafkaSourceOptions::Start::kEarliest : o_.start;
      SR_ASSIGN_OR_RETURN(p.next, StartOffset(p, start));
    }
    if (o_.stop_at_end) {
      for (Partition& p : parts_) {
        // For a read_committed consumer the end is the last stable offset: an open transaction
        // at the end is not waited for.
        SR_ASSIGN_OR_RETURN(p.end, ListOffset(p, RD_KAFKA_OFFSET_END));
        p.done = p.next >= p.end;
      }
    }
    KafkaPartitionList list(rd_kafka_topic_partition_list_new(static_cast<int>(parts_.size())));
    for (const Partition& p : parts_) {
      if (p.done) continue;
      rd_kafka_topic_partition_list_add(list.get(), p.topic.c_str(), p.partition)->offset = p.next;
    }
    rd_kafka_resp_err_t err = rd_kafka_assign(rk_.get(), list.get());
    if (err != RD_KAFKA_RESP_ERR_NO_ERROR) {
      return Status::RuntimeError(Where() + KafkaCallError(o_.kafka, "assign the partitions", err));
    }
    std::string what;
    for (const Partition& p : parts_) {
      what += (what.empty() ? "" : ", ") + p.topic + "/" + std::to_string(p.partition) + "@" +
              std::to_string(p.next);
    }
    spdlog::info("{}subtask {} reads {}", Where(), ctx_->subtask, what);
    RecomputeMin();
    return Status::Ok();
  }

  // The partition's offset `at` lists (RD_KAFKA_OFFSET_BEGINNING, _END, or a time; -1: none).
  Result<int64_t> ListOffset(const Partition& p, int64_t at) {
    Result<int64_t> offset = KafkaListOffset(rk_.get(), p.topic, p.partition, at, o_.metadata_timeout_ms);
    if (!offset.ok()) {
      return Status::RuntimeError(Where() + "cannot ask for the offsets of " + p.topic + "/" +
                                  std::to_string(p.partition) + ": " + o_.kafka.Redact(offset.status().message()));
    }
    return offset;
  }

  Result<int64_t> StartOffset(const Partition& p, KafkaSourceOptions::Start start) {
    if (start == KafkaSourceOptions::Start::kEarliest) return ListOffset(p, RD_KAFKA_OFFSET_BEGINNING);
    if (start == KafkaSourceOptions::Start::kLatest) return ListOffset(p, RD_KAFKA_OFFSET_END);
    SR_ASSIGN_OR_RETURN(int64_t offset, ListOffset(p, o_.start_ms));
    if (offset >= 0) return offset;
    return ListOffset(p, RD_KAFKA_OFFSET_END);  // no record at or after that time
  }

  // The watermark: the minimum over the active partitions, never going back.
  void RecomputeMin() {
    int64_t m = kMaxTimestamp;
    bool any = false;
    for (const Partition& p : parts_) {
      if (p.done || p.idle) continue;
      any = true;
      m = std::min(m, p.gen.current());
    }
    if (!any && std::all_of(parts_.begin(), parts_.end(), [](const Partition& p) { return p.done; })) {
      // Every partition reached its end: nothing can come below the largest of them.
      m = kMinTimestamp;
      for (const Partition& p : parts_) m = std::max(m, p.gen.current());
      any = true;
    }
    active_min_ = any ? m : kMinTimestamp;  // all idle: the watermark stays where it is
    if (any) watermark_ = std::max(watermark_, m);
  }

  Partition* Find(const rd_kafka_message_t* m) {
    const char* topic = rd_kafka_topic_name(m->rkt);
    if (last_ != nullptr && last_->partition == m->partition && last_->topic == topic) return last_;
    for (Partition& p : parts_) {
      if (p.partition == m->partition && p.topic == topic) return last_ = &p;
    }
    return nullptr;
  }

  std::string PositionJson() const {
    std::string out = "{\"partitions\":[";
    for (size_t i = 0; i < parts_.size(); ++i) {
      const Partition& p = parts_[i];
      if (i > 0) out += ',';
      out += "{\"topic\":";
      AppendJsonString(out, p.topic);
      out += ",\"partition\":" + std::to_string(p.partition) + ",\"offset\":" + std::to_string(p.next) +
             ",\"max_ts\":";
      out += p.gen.max_timestamp() == kMinTimestamp ? "null" : std::to_string(p.gen.max_timestamp());
      out += '}';
    }
    return out + "]}";
  }

  Status Flush() {
    if (batch_->rows.empty() && watermark_ <= sent_watermark_) return Status::Ok();
    batch_->watermark = watermark_;
    sent_watermark_ = watermark_;
    Status st = EmitBatch(*ctx_, std::move(batch_), pending_bytes_);
    pending_bytes_ = 0;
    batch_ = NewBatch(static_cast<uint32_t>(ctx_->layout.size()));
    return st;
  }

  Status Loop() {
    if (parts_.empty()) return Status::Ok();
    batch_ = NewBatch(static_cast<uint32_t>(ctx_->layout.size()));
    std::vector<rd_kafka_message_t*> msgs(kBatchRows);
    uint64_t last_barrier = ctx_->barriers ? ctx_->barriers->requested() : 0;
    auto all_done = [&] {
      return std::all_of(parts_.begin(), parts_.end(), [](const Partition& p) { return p.done; });
    };
    while (!(o_.stop_at_end && all_done())) {
      if (IsCancelled(*ctx_)) return Status::Cancelled();
      if (!fatal_.empty()) return Status::RuntimeError(Where() + fatal_);
      if (ctx_->drain != nullptr && ctx_->drain->load(std::memory_order_relaxed)) break;
      if (ctx_->barriers != nullptr) {
        uint64_t id = ctx_->barriers->requested();
        if (id > last_barrier) {
          last_barrier = id;
          SR_RETURN_IF_ERROR(Flush());
          std::string position = PositionJson();
          SR_RETURN_IF_ERROR(ctx_->barriers->Barrier(id, position));
          if (!o_.group.empty()) {
            std::vector<int64_t> offsets;
            for (const Partition& p : parts_) offsets.push_back(p.next);
            checkpoints_.emplace_back(id, std::move(offsets));
          }
        }
        CommitCompleted();
      }
      const int timeout = batch_->rows.empty() ? kPollMs : 0;
      ssize_t n = rd_kafka_consume_batch_queue(queue_.get(), timeout, msgs.data(), msgs.size());
      if (n < 0) {
        return Status::RuntimeError(Where() + KafkaCallError(o_.kafka, "poll", rd_kafka_last_error()));
      }
      Status st;
      for (ssize_t i = 0; i < n; ++i) {
        if (st.ok()) st = Take(msgs[i]);
        rd_kafka_message_destroy(msgs[i]);
      }
      SR_RETURN_IF_ERROR(st);
      if (o_.common.idle_timeout_ms > 0) CheckIdle();
      // A poll that did not fill the batch means the queue is empty: send what we have.
      if (batch_->full() || static_cast<size_t>(n) < msgs.size()) SR_RETURN_IF_ERROR(Flush());
    }
    SR_RETURN_IF_ERROR(Flush());
    return Status::Ok();
  }

  void CheckIdle() {
    const auto now = SteadyClock::now();
    bool changed = false;
    for (Partition& p : parts_) {
      if (p.idle || !p.caught_up || p.done) continue;
      if (now - p.caught_up_since >= std::chrono::milliseconds(o_.common.idle_timeout_ms)) {
        p.idle = true;
        changed = true;
      }
    }
    if (changed) RecomputeMin();
  }

  // Reports the offsets of the newest completed checkpoint to the group, asynchronously; the
  // answers come back on commits_.
  void CommitCompleted() {
    for (rd_kafka_event_t* ev; (ev = rd_kafka_queue_poll(commits_.get(), 0)) != nullptr;) {
      if (rd_kafka_event_error(ev) != RD_KAFKA_RESP_ERR_NO_ERROR) {
        spdlog::warn("{}{}", Where(), KafkaCallError(o_.kafka, "commit offsets to group '" + o_.group + "'",
                                                     rd_kafka_event_error(ev)));
      }
      rd_kafka_event_destroy(ev);
    }
    const uint64_t done = ctx_->barriers->completed();
    const std::vector<int64_t>* newest = nullptr;
    uint64_t newest_id = 0;
    for (const auto& [id, offsets] : checkpoints_) {
      if (id <= done) {
        newest = &offsets;
        newest_id = id;
      }
    }
    if (newest == nullptr) return;
    KafkaPartitionList list(rd_kafka_topic_partition_list_new(static_cast<int>(parts_.size())));
    for (size_t i = 0; i < parts_.size(); ++i) {
      rd_kafka_topic_partition_list_add(list.get(), parts_[i].topic.c_str(), parts_[i].partition)->offset =
          (*newest)[i];
    }
    rd_kafka_resp_err_t err = rd_kafka_commit_queue(rk_.get(), list.get(), commits_.get(), nullptr, nullptr);
    if (err != RD_KAFKA_RESP_ERR_NO_ERROR) {
      spdlog::warn("{}{}", Where(), KafkaCallError(o_.kafka, "commit offsets to group '" + o_.group + "'", err));
    }
    while (!checkpoints_.empty() && checkpoints_.front().first <= newest_id) checkpoints_.pop_front();
  }

  // One message or event of the consumer's queue.
  Status Take(const rd_kafka_message_t* m) {
    if (m->err != RD_KAFKA_RESP_ERR_NO_ERROR) return TakeError(m);
    Partition* p = Find(m);
    if (p == nullptr || m->offset < p->next || p->done) return Status::Ok();  // not ours, or old
    if (o_.stop_at_end && m->offset >= p->end) {
      // Written after the job started: beyond the end this run reads to.
      MarkDone(*p);
      return Status::Ok();
    }
    p->next = m->offset + 1;
    if (p->caught_up) {
      p->caught_up = false;
      if (p->idle) {
        p->idle = false;
        RecomputeMin();
      }
    }
    SR_RETURN_IF_ERROR(AddRecord(*p, m));
    if (o_.stop_at_end && p->next >= p->end) MarkDone(*p);
    return Status::Ok();
  }

  void MarkDone(Partition& p) {
    if (p.done) return;
    p.done = true;
    RecomputeMin();
  }

  Status TakeError(const rd_kafka_message_t* m) {
    if (m->err == RD_KAFKA_RESP_ERR__PARTITION_EOF) {
      Partition* p = m->rkt != nullptr ? Find(m) : nullptr;
      if (p == nullptr) return Status::Ok();
      // The offset is where the next fetch starts: past control records (transaction markers),
      // which are never delivered.
      if (m->offset >= p->next) {
        p->next = m->offset;
        if (!p->caught_up) {
          p->caught_up = true;
          p->caught_up_since = SteadyClock::now();
        }
      }
      if (o_.stop_at_end && p->next >= p->end) MarkDone(*p);
      return Status::Ok();
    }
    std::string what = rd_kafka_message_errstr(m);
    if (m->rkt != nullptr) {
      what = std::string(rd_kafka_topic_name(m->rkt)) + "/" + std::to_string(m->partition) + ": " + what;
    }
    what = std::string(rd_kafka_err2name(m->err)) + ": " + o_.kafka.Redact(what);
    if (m->err == RD_KAFKA_RESP_ERR__FATAL || m->err == RD_KAFKA_RESP_ERR__AUTO_OFFSET_RESET ||
        m->err == RD_KAFKA_RESP_ERR_TOPIC_AUTHORIZATION_FAILED ||
        m->err == RD_KAFKA_RESP_ERR_GROUP_AUTHORIZATION_FAILED) {
      return Status::RuntimeError(Where() + what);
    }
    if (m->err == RD_KAFKA_RESP_ERR__UNKNOWN_TOPIC || m->err == RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART ||
        m->err == RD_KAFKA_RESP_ERR__UNKNOWN_PARTITION) {
      return Status::RuntimeError(Where() + what + " (was the topic deleted?)");
    }
    spdlog::warn("{}{} (retrying)", Where(), what);
    return Status::Ok();
  }

  Status Bad(const rd_kafka_message_t* m, std::string_view text, const std::string& reason) {
    std::string why = std::string(rd_kafka_topic_name(m->rkt)) + "/" + std::to_string(m->partition) +
                      " offset " + std::to_string(m->offset) + ": " + reason;
    if (ctx_->errors == nullptr) return Status::DataError(Where() + why);
    return ctx_->errors->ReportInput(ctx_->origin, static_cast<uint64_t>(m->offset), text, why);
  }

  Status AddRecord(Partition& p, const rd_kafka_message_t* m) {
    Batch& b = *batch_;
    const std::string_view payload(static_cast<const char*>(m->payload), m->payload ? m->len : 0);
    if (m->payload == nullptr) return Bad(m, "", "the record has no value (a tombstone)");
    pending_bytes_ += m->len;
    // The bytes go into the batch's arena, with the padding the JSON parser reads past them.
    const size_t pad = JsonExtractor::padding();
    char* copy = b.arena.Allocate(payload.size() + pad);
    std::memcpy(copy, payload.data(), payload.size());
    std::memset(copy + payload.size(), 0, pad);
    const std::string_view raw(copy, payload.size());
    Row proto;
    proto.origin = ctx_->origin;
    proto.offset = static_cast<uint64_t>(m->offset);
    proto.raw = raw;
    const size_t r = b.AddRow(proto);
    Value* slots = b.SlotsOf(r);
    if (extractor_) {
      if (!extractor_->Extract(raw, slots, b.arena, &error_)) {
        b.rows.pop_back();
        b.slots.resize(b.slots.size() - b.width);
        return Bad(m, raw, error_);
      }
    } else {
      b.rows[r].flags = kRowText;
    }
    if (!meta_.empty()) FillMeta(p, m, raw, slots, b.arena);
    const int64_t wm_before = watermark_;
    const int64_t part_wm = p.gen.current();
    const size_t rows_before = b.rows.size();
    SR_RETURN_IF_ERROR(maker_->FinishRow(b, p.gen));  // event time; a bad one is reported and removed
    if (b.rows.size() == rows_before) {
      b.rows.back().wm = wm_before;
      // This partition held the minimum and moved: the source's watermark may move.
      if (!p.idle && !p.done && part_wm <= active_min_ && p.gen.current() != part_wm) RecomputeMin();
    }
    return Status::Ok();
  }

  void FillMeta(const Partition& p, const rd_kafka_message_t* m, std::string_view raw, Value* slots,
                Arena& arena) {
    rd_kafka_headers_t* headers = nullptr;  // owned by the message
    bool headers_read = false;
    for (const MetaSlot& s : meta_) {
      Value v = Value::Null();
      switch (s.meta) {
        case Meta::kKey:
          if (m->key != nullptr) v = Value::String(arena.Copy({static_cast<const char*>(m->key), m->key_len}));
          break;
        case Meta::kTimestamp: {
          rd_kafka_timestamp_type_t type;
          int64_t ts = rd_kafka_message_timestamp(m, &type);
          if (type != RD_KAFKA_TIMESTAMP_NOT_AVAILABLE && ts >= 0) v = Value::Int(ts);
          break;
        }
        case Meta::kPartition: v = Value::Int(p.partition); break;
        case Meta::kOffset: v = Value::Int(m->offset); break;
        case Meta::kTopic: v = Value::String(arena.Copy(p.topic)); break;
        case Meta::kLine: v = Value::String(raw); break;
        case Meta::kHeaders:
        case Meta::kHeader: {
          if (!headers_read) {
            headers_read = true;
            if (rd_kafka_message_headers(m, &headers) != RD_KAFKA_RESP_ERR_NO_ERROR) headers = nullptr;
          }
          if (headers == nullptr) {
            if (s.meta == Meta::kHeaders) v = Value::Json(arena.Copy("{}"));
            break;
          }
          if (s.meta == Meta::kHeader) {
            const void* value = nullptr;
            size_t size = 0;
            // The last value of a header that repeats, as Kafka Streams' lastHeader.
            if (rd_kafka_header_get_last(headers, s.header.c_str(), &value, &size) == RD_KAFKA_RESP_ERR_NO_ERROR &&
                value != nullptr) {
              v = Value::String(arena.Copy({static_cast<const char*>(value), size}));
            }
            break;
          }
          std::string json = "{";
          const char* name = nullptr;
          const void* value = nullptr;
          size_t size = 0;
          for (size_t i = 0; rd_kafka_header_get_all(headers, i, &name, &value, &size) == RD_KAFKA_RESP_ERR_NO_ERROR; ++i) {
            if (i > 0) json += ',';
            AppendJsonString(json, name);
            json += ':';
            if (value == nullptr) json += "null";
            else AppendJsonString(json, {static_cast<const char*>(value), size});
          }
          json += '}';
          v = Value::Json(arena.Copy(json));
          break;
        }
      }
      slots[s.slot] = v;
    }
  }

  const KafkaSourceOptions o_;
  SourceContext* ctx_ = nullptr;
  std::unique_ptr<RecordMaker> maker_;  // event times; made when Run knows the context
  std::unique_ptr<JsonExtractor> extractor_;  // format json
  std::vector<MetaSlot> meta_;
  std::string error_;
  KafkaHandle rk_;
  KafkaQueue queue_;    // the consumer's records and errors
  KafkaQueue commits_;  // answers to offset commits
  std::vector<Partition> parts_;
  Partition* last_ = nullptr;  // the partition of the previous message
  int64_t active_min_ = kMinTimestamp;   // min watermark over active partitions
  int64_t watermark_ = kMinTimestamp;    // the source's: the max of active_min_ so far
  int64_t sent_watermark_ = kMinTimestamp;
  BatchPtr batch_;
  uint64_t pending_bytes_ = 0;
  // Offsets given at barriers, to report to the group once their checkpoint completes.
  std::deque<std::pair<uint64_t, std::vector<int64_t>>> checkpoints_;
  std::string fatal_;  // set by OnError
  SteadyClock::time_point last_warning_{};
  rd_kafka_resp_err_t last_warning_code_ = RD_KAFKA_RESP_ERR_NO_ERROR;
};

// A SourceConfig, so that `streamrun test` can replace it by a file (a recording) with the same
// event time, watermark and on_error.
class KafkaSourceConfig : public SourceConfig {
 public:
  explicit KafkaSourceConfig(KafkaSourceOptions o) : SourceConfig(o.common, o.format), o_(std::move(o)) {}
  bool bounded() const override { return o_.stop_at_end; }
  Result<std::unique_ptr<SourceOperator>> CreateSource() const override {
    return std::unique_ptr<SourceOperator>(std::make_unique<KafkaSource>(o_));
  }
  std::string Describe() const override {
    std::string topics;
    for (const auto& t : o_.topics) topics += (topics.empty() ? "" : ", ") + t;
    return "topic: " + topics;
  }

 private:
  KafkaSourceOptions o_;
};

}  // namespace

std::shared_ptr<const NodeConfig> NewKafkaSourceConfig(KafkaSourceOptions options) {
  return std::make_shared<KafkaSourceConfig>(std::move(options));
}

NodeConfigResult MakeKafkaSource(const ConfigReader& config) {
  SR_RETURN_IF_ERROR(config.CheckKeys({"type", "brokers", "topic", "topics", "group", "start", "format",
                                       "event_time", "watermark", "on_error", "properties", "stop_at"}));
  KafkaSourceOptions o;
  SR_ASSIGN_OR_RETURN(o.kafka, ReadKafkaSettings(config, {"group.id", "enable.auto.commit",
                                                          "enable.auto.offset.store",
                                                          "enable.partition.eof"}));
  if (config.Has("topic") == config.Has("topics")) {
    return config.Error("a kafka source needs 'topic' or 'topics' (one of them)");
  }
  if (config.Has("topic")) {
    SR_ASSIGN_OR_RETURN(std::string topic, config.String("topic"));
    o.topics.push_back(std::move(topic));
  } else {
    SR_ASSIGN_OR_RETURN(o.topics, config.StringList("topics"));
  }
  for (const auto& t : o.topics) {
    if (t.empty()) return config.ErrorAt(config.Has("topic") ? "topic" : "topics", "a topic name must not be empty");
  }
  SR_ASSIGN_OR_RETURN(o.group, config.String("group", ""));
  SR_ASSIGN_OR_RETURN(std::string start, config.String("start", "earliest"));
  if (start == "earliest") {
    o.start = KafkaSourceOptions::Start::kEarliest;
  } else if (start == "latest") {
    o.start = KafkaSourceOptions::Start::kLatest;
  } else {
    o.start = KafkaSourceOptions::Start::kTime;
    const char* end = nullptr;
    int64_t ms = 0;
    auto [ptr, ec] = std::from_chars(start.data(), start.data() + start.size(), ms);
    end = ptr;
    if (ec == std::errc() && end == start.data() + start.size()) {
      o.start_ms = ms;
    } else if (!ParseRfc3339(start, &o.start_ms)) {
      return config.ErrorAt("start", "'start' must be earliest, latest, epoch milliseconds or an RFC 3339 "
                                     "time (2024-05-01T00:00:00Z), not '" + start + "'");
    }
  }
  SR_ASSIGN_OR_RETURN(std::string format, config.Enum("format", {"json", "text"}, std::string("json")));
  o.format = format == "text" ? LineFormat::kText : LineFormat::kJson;
  SR_ASSIGN_OR_RETURN(std::string stop_at, config.Enum("stop_at", {"never", "end"}, std::string("never")));
  o.stop_at_end = stop_at == "end";
  SR_ASSIGN_OR_RETURN(o.common, ReadSourceCommon(config, /*partitioned=*/true));
  return NewKafkaSourceConfig(std::move(o));
}

}  // namespace streamrun
