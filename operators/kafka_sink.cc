// The `kafka` sink. See kafka_sink.h for the two delivery guarantees.
#include "operators/kafka_sink.h"

#include <fcntl.h>
#include <rapidjson/document.h>
#include <spdlog/spdlog.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <limits>
#include <random>

#include "engine/expr.h"
#include "engine/failpoint.h"
#include "engine/mutex.h"
#include "operators/factories.h"
#include "operators/staged_file.h"

namespace streamrun {
namespace {

using SteadyClock = std::chrono::steady_clock;

constexpr size_t kStageBuffer = 1 << 20;
// A staged record: [u32 key size, or kNullKey][key][u32 value size][value][i64 timestamp], in
// the machine's byte order: a staged file is read back only by the process kind that wrote it.
constexpr uint32_t kNullKey = 0xffffffffu;
constexpr int kCommitAttempts = 3;
// The final epoch of a sink whose input ended (Finish).
constexpr int64_t kFinalEpoch = std::numeric_limits<int64_t>::max();

std::string NewRunToken() {
  std::random_device rd;
  const uint64_t v = (static_cast<uint64_t>(rd()) << 32) ^ rd();
  char buf[17];
  std::snprintf(buf, sizeof buf, "%016llx", static_cast<unsigned long long>(v));
  return buf;
}

struct ConsumerGroupMetadataDeleter {
  void operator()(rd_kafka_consumer_group_metadata_t* m) const {
    rd_kafka_consumer_group_metadata_destroy(m);
  }
};

// The outcome of a transaction: ok, failed and aborted (may be tried again), or failed with a
// producer that cannot go on (fatal: fenced, or its id lost).
struct TxnResult {
  Status status;
  bool fatal = false;
  bool fenced = false;  // another producer with our transactional id took over
};

// Reads the records of a staged file one at a time.
class StagedReader {
 public:
  explicit StagedReader(std::string path) : path_(std::move(path)) {}
  ~StagedReader() {
    if (fd_ >= 0) ::close(fd_);
  }
  Status Open() {
    fd_ = ::open(path_.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd_ < 0) return Status::IoError("cannot open '" + path_ + "': " + std::strerror(errno));
    return Status::Ok();
  }
  // Sets *more to false at the end of the file. The views stay valid until the next call.
  Status Next(bool* more, bool* has_key, std::string_view* key, std::string_view* value,
              int64_t* ts) {
    uint32_t klen = 0, vlen = 0;
    SR_RETURN_IF_ERROR(Need(4, more, true));
    if (!*more) return Status::Ok();
    std::memcpy(&klen, buf_.data() + pos_, 4);
    const size_t key_bytes = klen == kNullKey ? 0 : klen;
    SR_RETURN_IF_ERROR(Need(4 + key_bytes + 4, more, false));
    std::memcpy(&vlen, buf_.data() + pos_ + 4 + key_bytes, 4);
    SR_RETURN_IF_ERROR(Need(4 + key_bytes + 4 + vlen + 8, more, false));
    const char* p = buf_.data() + pos_;
    *has_key = klen != kNullKey;
    *key = std::string_view(p + 4, key_bytes);
    *value = std::string_view(p + 8 + key_bytes, vlen);
    std::memcpy(ts, p + 8 + key_bytes + vlen, 8);
    pos_ += 16 + key_bytes + vlen;
    return Status::Ok();
  }

 private:
  // Makes n bytes from pos_ readable. At the end of the file: *more = false when allowed there
  // (`at_record_start`), a damaged-file error otherwise.
  Status Need(size_t n, bool* more, bool at_record_start) {
    *more = true;
    while (buf_.size() - pos_ < n) {
      buf_.erase(0, pos_);
      pos_ = 0;
      const size_t old = buf_.size();
      buf_.resize(old + std::max<size_t>(n, kStageBuffer));
      ssize_t r = ::read(fd_, buf_.data() + old, buf_.size() - old);
      if (r < 0 && errno == EINTR) {
        buf_.resize(old);
        continue;
      }
      if (r < 0) return Status::IoError("cannot read '" + path_ + "': " + std::strerror(errno));
      buf_.resize(old + static_cast<size_t>(r));
      if (r == 0) {
        if (at_record_start && buf_.size() == pos_) {
          *more = false;
          return Status::Ok();
        }
        return Status::IoError("the staged Kafka output '" + path_ + "' is cut short");
      }
    }
    return Status::Ok();
  }

  std::string path_;
  int fd_ = -1;
  std::string buf_;
  size_t pos_ = 0;
};

class KafkaSink : public Operator {
 public:
  explicit KafkaSink(const KafkaSinkOptions& o) : o_(o) {}

  Status Open(const OperatorContext& ctx) override {
    ctx_ = &ctx;
    if (!o_.key.empty()) {
      ExprParseError perr;
      key_ = ParseExpr(o_.key, &perr);
      if (!key_) return Status::PipelineError(Where() + "key: " + perr.message);
      SR_RETURN_IF_ERROR(key_->Bind(ctx.input_layout));
    }
    txn_id_ = o_.kafka.Property("transactional.id", "streamrun-" + ctx.job + "-" + ctx.name) + "-" +
              std::to_string(ctx.subtask);
    const bool restoring = o_.exactly_once && ctx.restore != nullptr && !ctx.restore->meta.empty();
    if (o_.exactly_once && !ctx.checkpointing) {
      spdlog::warn(
          "{}delivery exactly_once needs periodic checkpoints (checkpoints.interval); "
          "this run writes at least once",
          Where());
    }
    if (!o_.exactly_once || (!ctx.checkpointing && !restoring)) return OpenProducer(false);
    SR_ASSIGN_OR_RETURN(staging_dir_, StagedFile::MakeDir(ctx.state_dir, ctx.name));
    {
      MutexLock lock(&txn_mu_);
      // init_transactions fences an earlier instance of this sink and aborts its open
      // transaction: whatever it had not committed is either staged here or after the checkpoint.
      SR_RETURN_IF_ERROR(OpenProducer(true));
      if (restoring) {
        SR_RETURN_IF_ERROR(Recover(ctx.restore->meta));
      } else {
        token_ = NewRunToken();
      }
    }
    StagedFile::ClearDir(staging_dir_);
    if (!ctx.checkpointing) {  // restored (a savepoint) into a run without checkpoints
      producer_.reset();
      return OpenProducer(false);
    }
    staging_ = true;
    return staged_.Open(staging_dir_);
  }

  Status Process(BatchPtr batch) override {
    SR_RETURN_IF_ERROR(AsyncError());
    std::string key_buf;
    for (size_t r = 0; r < batch->rows.size(); ++r) {
      const Row& row = batch->rows[r];
      bool has_key = false;
      std::string_view key;
      if (key_) {
        EvalContext ec;
        ec.slots = batch->SlotsOf(r);
        ec.row = &row;
        ec.arena = &batch->arena;
        Value v = key_->Eval(ec);
        if (!ec.error.empty()) {
          SR_RETURN_IF_ERROR(ctx_->errors->Report(*batch, r, ctx_->name, "key: " + ec.error));
          continue;
        }
        if (v.kind() == Value::Kind::kString) {
          key = v.as_string();
          has_key = true;
        } else if (!v.is_nullish()) {
          key_buf.clear();
          AppendJson(key_buf, v);
          key = key_buf;
          has_key = true;
        }
      }
      const int64_t ts = row.ts >= 0 && row.ts != kMaxTimestamp ? row.ts : 0;
      if (staging_) {
        SR_RETURN_IF_ERROR(Stage(has_key, key, row.raw, ts));
      } else {
        SR_RETURN_IF_ERROR(Produce(has_key, key, row.raw, ts));
      }
      ++records_;
    }
    if (!staging_) rd_kafka_poll(producer_.get(), 0);  // delivery reports
    return Status::Ok();
  }

  Status Snapshot(int64_t checkpoint_id, OperatorSnapshot* out) override {
    if (finished_) {
      if (!token_.empty()) out->meta = "{\"run\":\"" + token_ + "\",\"pending\":[]}";
      return Status::Ok();
    }
    SR_RETURN_IF_ERROR(AsyncError());
    if (!staging_) return FlushProducer();  // the checkpoint covers delivered records only
    SR_RETURN_IF_ERROR(FlushStage());
    if (staged_.bytes() > 0) {
      SR_ASSIGN_OR_RETURN(std::string name, staged_.Seal(checkpoint_id, out));
      MutexLock lock(&pending_mu_);
      pending_.push_back({checkpoint_id, std::move(name)});
    }
    out->meta = MetaJson();
    return Status::Ok();
  }

  bool commits() const override { return staging_; }

  Status NotifyCheckpointComplete(int64_t checkpoint_id) override {
    Status st = CommitUpTo(checkpoint_id);
    if (!st.ok()) SetAsyncError(st);  // the sink's thread fails the job; recovery commits
    return st;
  }

  Status Finish() override {
    SR_RETURN_IF_ERROR(AsyncError());
    if (!staging_) {
      SR_RETURN_IF_ERROR(FlushProducer());
      finished_ = true;
      return Status::Ok();
    }
    // The end of the input: everything is committed before the job ends.
    SR_RETURN_IF_ERROR(FlushStage());
    staged_.Close();
    if (staged_.bytes() > 0) {
      MutexLock lock(&pending_mu_);
      pending_.push_back({kFinalEpoch, staged_.current_path()});
    }
    SR_RETURN_IF_ERROR(CommitUpTo(kFinalEpoch));
    staged_.Remove();
    finished_ = true;
    return Status::Ok();
  }

  uint64_t records_out() const override { return records_; }

 private:
  struct Epoch {
    int64_t id;
    std::string path;
  };

  std::string Where() const { return "sink '" + ctx_->name + "': "; }

  Status AsyncError() LOCKS_EXCLUDED(error_mu_) {
    if (!has_error_.load(std::memory_order_acquire)) return Status::Ok();
    MutexLock lock(&error_mu_);
    return error_;
  }
  void SetAsyncError(const Status& st) LOCKS_EXCLUDED(error_mu_) {
    MutexLock lock(&error_mu_);
    if (error_.ok()) error_ = st;
    has_error_.store(true, std::memory_order_release);
  }

  // (rd_kafka_message_errstr is for consumers only: a producer's message has no error text.)
  static void OnDelivery(rd_kafka_t*, const rd_kafka_message_t* m, void* opaque) {
    if (m->err == RD_KAFKA_RESP_ERR_NO_ERROR) return;
    auto* self = static_cast<KafkaSink*>(opaque);
    if (self->staging_) return;  // a transaction's records: commit_transaction reports it
    self->SetAsyncError(Status::RuntimeError(
        self->Where() + self->o_.kafka.Redact("a record could not be delivered to '" +
                                              self->o_.topic + "': " + KafkaErrorText(m->err))));
  }

  static void OnError(rd_kafka_t* rk, int err, const char* reason, void* opaque) {
    auto* self = static_cast<KafkaSink*>(opaque);
    if (err == RD_KAFKA_RESP_ERR__FATAL) {
      char buf[512];
      rd_kafka_resp_err_t orig = rd_kafka_fatal_error(rk, buf, sizeof buf);
      self->SetAsyncError(Status::RuntimeError(
          self->Where() + self->o_.kafka.Redact(std::string("fatal Kafka error: ") +
                                                rd_kafka_err2name(orig) + ": " + buf)));
      return;
    }
    spdlog::warn("{}{}: {} (retrying)", self->Where(),
                 rd_kafka_err2name(static_cast<rd_kafka_resp_err_t>(err)),
                 self->o_.kafka.Redact(reason));
  }

  // REQUIRES (transactional): txn_mu_ held.
  Status OpenProducer(bool transactional) {
    KafkaSettings settings = o_.kafka;
    std::erase_if(settings.properties, [](const auto& p) { return p.first == "transactional.id"; });
    KafkaProperties defaults = {
        {"client.id", "streamrun-" + ctx_->job + "-" + ctx_->name},
        // Java clients' partitioner: the same key goes to the same partition as from Kafka Streams.
        {"partitioner", "murmur2_random"},
        {"acks", "all"},
        {"enable.idempotence", "true"},
        {"linger.ms", "5"},
    };
    if (transactional) defaults.emplace_back("transactional.id", txn_id_);
    KafkaClientOptions co;
    co.delivery_report = &KafkaSink::OnDelivery;
    co.error = &KafkaSink::OnError;
    co.opaque = this;
    SR_ASSIGN_OR_RETURN(producer_, NewKafkaClientFor(settings, RD_KAFKA_PRODUCER, defaults, co));
    // The topic's partitions, asked now: a topic that does not exist fails the job at once, and
    // the first records do not wait for the producer's first metadata refresh.
    Result<int32_t> partitions =
        KafkaPartitionCount(producer_.get(), o_.topic, o_.timeout_ms, o_.kafka.brokers);
    if (!partitions.ok())
      return Status::RuntimeError(Where() + o_.kafka.Redact(partitions.status().message()));
    if (!transactional) return Status::Ok();
    for (int attempt = 1;; ++attempt) {
      rd_kafka_error_t* e = rd_kafka_init_transactions(producer_.get(), o_.timeout_ms);
      if (e == nullptr) return Status::Ok();
      if (!rd_kafka_error_is_retriable(e) || attempt >= kCommitAttempts) {
        return Status::RuntimeError(
            Where() + KafkaCallError(o_.kafka, "start transactions as '" + txn_id_ + "'", e));
      }
      spdlog::warn("{}{} (retrying)", Where(), KafkaCallError(o_.kafka, "start transactions", e));
    }
  }

  // Hands one record to the producer; while its queue is full, waits for deliveries (the
  // sink's backpressure).
  Status Produce(bool has_key, std::string_view key, std::string_view value, int64_t ts) {
    void* value_ptr = const_cast<char*>(value.data());
    const void* key_ptr = has_key ? key.data() : nullptr;
    const size_t key_size = has_key ? key.size() : 0;
    for (;;) {
      rd_kafka_resp_err_t err = rd_kafka_producev(
          producer_.get(), RD_KAFKA_V_TOPIC(o_.topic.c_str()),
          RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY), RD_KAFKA_V_VALUE(value_ptr, value.size()),
          RD_KAFKA_V_KEY(key_ptr, key_size), RD_KAFKA_V_TIMESTAMP(ts), RD_KAFKA_V_END);
      if (err == RD_KAFKA_RESP_ERR_NO_ERROR) return Status::Ok();
      if (err != RD_KAFKA_RESP_ERR__QUEUE_FULL) {
        return Status::RuntimeError(Where() +
                                    KafkaCallError(o_.kafka, "produce to '" + o_.topic + "'", err));
      }
      rd_kafka_poll(producer_.get(), 10);
      if (ctx_->cancelled != nullptr && ctx_->cancelled->load(std::memory_order_relaxed)) {
        return Status::Cancelled();
      }
      SR_RETURN_IF_ERROR(AsyncError());
    }
  }

  // Waits until every record produced is delivered (or failed).
  Status FlushProducer() {
    const auto deadline = SteadyClock::now() + std::chrono::milliseconds(o_.timeout_ms);
    while (rd_kafka_outq_len(producer_.get()) > 0) {
      rd_kafka_flush(producer_.get(), 100);
      SR_RETURN_IF_ERROR(AsyncError());
      if (ctx_->cancelled != nullptr && ctx_->cancelled->load(std::memory_order_relaxed)) {
        return Status::Cancelled();
      }
      if (SteadyClock::now() > deadline) {
        return Status::RuntimeError(Where() + std::to_string(rd_kafka_outq_len(producer_.get())) +
                                    " records to '" + o_.topic + "' not delivered within " +
                                    DescribeMs(o_.timeout_ms));
      }
    }
    return AsyncError();
  }

  Status Stage(bool has_key, std::string_view key, std::string_view value, int64_t ts) {
    const size_t need = 16 + key.size() + value.size();
    if (stage_buf_.size() + need > kStageBuffer) SR_RETURN_IF_ERROR(FlushStage());
    const uint32_t klen = has_key ? static_cast<uint32_t>(key.size()) : kNullKey;
    const uint32_t vlen = static_cast<uint32_t>(value.size());
    stage_buf_.append(reinterpret_cast<const char*>(&klen), 4);
    stage_buf_.append(key);
    stage_buf_.append(reinterpret_cast<const char*>(&vlen), 4);
    stage_buf_.append(value);
    stage_buf_.append(reinterpret_cast<const char*>(&ts), 8);
    return Status::Ok();
  }

  Status FlushStage() {
    SR_RETURN_IF_ERROR(staged_.Append(stage_buf_.data(), stage_buf_.size()));
    stage_buf_.clear();
    return Status::Ok();
  }

  std::string MetaJson() LOCKS_EXCLUDED(pending_mu_) {
    MutexLock lock(&pending_mu_);
    std::string out = "{\"run\":\"" + token_ + "\",\"pending\":[";
    for (size_t i = 0; i < pending_.size(); ++i) {
      out += (i ? "," : "") + std::to_string(pending_[i].id);
    }
    return out + "]}";
  }

  // Commits every staged epoch up to `checkpoint_id` in one transaction.
  Status CommitUpTo(int64_t checkpoint_id) LOCKS_EXCLUDED(txn_mu_, pending_mu_) {
    auto due = [&] {
      std::vector<Epoch> epochs;
      MutexLock lock(&pending_mu_);
      for (const Epoch& e : pending_) {
        if (e.id <= checkpoint_id) epochs.push_back(e);
      }
      return epochs;
    };
    if (due().empty()) return Status::Ok();
    // A crash here: the checkpoint is complete, its output staged and not yet produced.
    SR_FAILPOINT("sink.before_commit");
    MutexLock lock(&txn_mu_);
    // Taken again under the producer's lock: the checkpoint thread (NotifyCheckpointComplete)
    // and the sink's thread (Finish, at the end of the input) may both be committing, and what
    // the other one committed meanwhile is pending no longer (its staged file is gone).
    const std::vector<Epoch> epochs = due();
    if (epochs.empty()) return Status::Ok();
    SR_RETURN_IF_ERROR(CommitEpochs(epochs, epochs.back().id));
    {
      MutexLock plock(&pending_mu_);
      std::erase_if(pending_, [&](const Epoch& e) { return e.id <= epochs.back().id; });
    }
    return Status::Ok();
  }

  // Produces `epochs` in one transaction that also commits the marker `marker`, with retries;
  // then removes their staged files.
  Status CommitEpochs(const std::vector<Epoch>& epochs, int64_t marker)
      EXCLUSIVE_LOCKS_REQUIRED(txn_mu_) {
    bool recreated = false;
    for (int attempt = 1;; ++attempt) {
      TxnResult r = Transaction(epochs, marker);
      if (r.status.ok()) break;
      // Fenced: taking the id back would fence the other instance in turn. The job fails.
      if (r.fenced || attempt >= kCommitAttempts || (r.fatal && recreated)) return r.status;
      spdlog::warn("{} (trying again)", r.status.message());
      if (!r.fatal) continue;
      // The producer cannot go on (its id lost, or the transaction's state unknown after a
      // commit that timed out): a new one, once. Its init_transactions settles the old
      // transaction (Kafka completes a commit that was under way, aborts anything else), and
      // the marker then tells whether it committed, so that it is not produced twice.
      producer_.reset();
      SR_RETURN_IF_ERROR(OpenProducer(true));
      recreated = true;
      spdlog::info("{}made a new producer for the transactions", Where());
      SR_ASSIGN_OR_RETURN(int64_t committed, CommittedMarker());
      if (committed >= MarkerOffset(marker)) {
        spdlog::info("{}the transaction of checkpoint {} had committed", Where(), marker);
        break;
      }
    }
    for (const Epoch& e : epochs) ::unlink(e.path.c_str());
    return Status::Ok();
  }

  // The marker's offset for checkpoint `marker` (see kafka_sink.h).
  static int64_t MarkerOffset(int64_t marker) {
    return marker == kFinalEpoch ? std::numeric_limits<int64_t>::max() / 2 : marker;
  }

  // Whether the producer failed for good because another one took its transactional id.
  bool Fenced() EXCLUSIVE_LOCKS_REQUIRED(txn_mu_) {
    const rd_kafka_resp_err_t err = rd_kafka_fatal_error(producer_.get(), nullptr, 0);
    return err == RD_KAFKA_RESP_ERR__FENCED || err == RD_KAFKA_RESP_ERR_PRODUCER_FENCED ||
           err == RD_KAFKA_RESP_ERR_INVALID_PRODUCER_EPOCH;
  }

  // `message` (which names the sink) and what fencing means.
  Status FencedError(std::string message) {
    return Status::RuntimeError(
        std::move(message) + ": another producer with the transactional id '" + txn_id_ +
        "' took over (is the job running twice, or another job using the same id?)");
  }

  TxnResult Failed(std::string_view what, rd_kafka_error_t* e) EXCLUSIVE_LOCKS_REQUIRED(txn_mu_) {
    TxnResult r;
    r.fatal = rd_kafka_error_is_fatal(e);
    const rd_kafka_resp_err_t code = rd_kafka_error_code(e);
    r.fenced = code == RD_KAFKA_RESP_ERR__FENCED || code == RD_KAFKA_RESP_ERR_PRODUCER_FENCED ||
               (r.fatal && code == RD_KAFKA_RESP_ERR_INVALID_PRODUCER_EPOCH);
    if (r.fenced) {
      r.status = FencedError(Where() + KafkaCallError(o_.kafka, what, e));
      return r;
    }
    const bool abort = rd_kafka_error_txn_requires_abort(e);
    r.status = Status::RuntimeError(Where() + KafkaCallError(o_.kafka, what, e));
    if (abort && !r.fatal) {
      rd_kafka_error_t* a = rd_kafka_abort_transaction(producer_.get(), o_.timeout_ms);
      if (a != nullptr) {
        spdlog::warn("{}{}", Where(), KafkaCallError(o_.kafka, "abort the transaction", a));
        r.fatal = true;  // the producer's state is unknown: make a new one
        if (Fenced()) {
          r.fenced = true;
          r.status = FencedError(r.status.message());
        }
      }
    } else if (!r.fatal) {
      // Not abortable and not fatal (a commit that timed out every time): the transaction's
      // state is unknown. A new producer settles it (CommitEpochs).
      r.fatal = true;
    }
    return r;
  }

  TxnResult Transaction(const std::vector<Epoch>& epochs, int64_t marker)
      EXCLUSIVE_LOCKS_REQUIRED(txn_mu_) {
    rd_kafka_t* rk = producer_.get();
    if (rd_kafka_error_t* e = rd_kafka_begin_transaction(rk))
      return Failed("begin a transaction", e);
    uint64_t n = 0;
    for (const Epoch& epoch : epochs) {
      StagedReader reader(epoch.path);
      Status st = reader.Open();
      if (!st.ok()) return Abort(st);
      for (;;) {
        bool more = false, has_key = false;
        std::string_view key, value;
        int64_t ts = 0;
        st = reader.Next(&more, &has_key, &key, &value, &ts);
        if (!st.ok()) return Abort(st);
        if (!more) break;
        st = Produce(has_key, key, value, ts);
        if (!st.ok()) return Abort(st);
        ++n;
      }
    }
    // A crash here: records produced, transaction open (aborted by the next run's producer).
    if (Status f = Failpoint("kafka_sink.before_commit"); !f.ok()) return Abort(f);
    // The marker: committed atomically with the records (see kafka_sink.h).
    KafkaPartitionList offsets(rd_kafka_topic_partition_list_new(1));
    rd_kafka_topic_partition_t* tp =
        rd_kafka_topic_partition_list_add(offsets.get(), o_.topic.c_str(), 0);
    tp->offset = MarkerOffset(marker);
    tp->metadata = ::strdup(token_.c_str());  // freed with the list
    tp->metadata_size = token_.size();
    std::unique_ptr<rd_kafka_consumer_group_metadata_t, ConsumerGroupMetadataDeleter> group(
        rd_kafka_consumer_group_metadata_new(txn_id_.c_str()));
    if (rd_kafka_error_t* e =
            rd_kafka_send_offsets_to_transaction(rk, offsets.get(), group.get(), o_.timeout_ms)) {
      return Failed("commit the transaction's marker offset", e);
    }
    for (int attempt = 1;; ++attempt) {
      rd_kafka_error_t* e = rd_kafka_commit_transaction(rk, o_.timeout_ms);
      if (e == nullptr) break;
      if (rd_kafka_error_is_retriable(e) && attempt < kCommitAttempts) {
        spdlog::warn("{}{} (retrying)", Where(),
                     KafkaCallError(o_.kafka, "commit the transaction", e));
        continue;
      }
      return Failed("commit the transaction", e);
    }
    // A crash here: committed, staged files not yet removed (the marker tells the next run).
    if (Status f = Failpoint("kafka_sink.after_commit"); !f.ok()) return {f, false};
    spdlog::debug("{}committed {} records (checkpoint {})", Where(), n, marker);
    return {};
  }

  // Aborts after `st` (a failure of ours, or of producing a record).
  TxnResult Abort(Status st) EXCLUSIVE_LOCKS_REQUIRED(txn_mu_) {
    TxnResult r;
    r.status = st;
    if (rd_kafka_error_t* a = rd_kafka_abort_transaction(producer_.get(), o_.timeout_ms)) {
      spdlog::warn("{}{}", Where(), KafkaCallError(o_.kafka, "abort the transaction", a));
      r.fatal = true;
      // Producing fails with _FATAL when the producer was fenced meanwhile.
      if (Fenced()) {
        r.fenced = true;
        r.status = FencedError(st.message());
      }
    }
    return r;
  }

  // Brings the topic to the state of the restored checkpoint: its staged epochs that a crash
  // kept from being committed are committed now.
  Status Recover(const std::string& meta) EXCLUSIVE_LOCKS_REQUIRED(txn_mu_) {
    rapidjson::Document doc;
    doc.Parse(meta.data(), meta.size());
    if (doc.HasParseError() || !doc.IsObject() || !doc.HasMember("run") || !doc["run"].IsString() ||
        !doc.HasMember("pending") || !doc["pending"].IsArray()) {
      return Status::RuntimeError(Where() + "damaged state in the checkpoint");
    }
    token_ = doc["run"].GetString();
    std::vector<Epoch> todo;
    for (auto& v : doc["pending"].GetArray()) {
      if (!v.IsInt64()) return Status::RuntimeError(Where() + "damaged state in the checkpoint");
      Epoch e{v.GetInt64(), StagedFile::CheckpointPath(staging_dir_, v.GetInt64())};
      if (::access(e.path.c_str(), F_OK) != 0) {
        spdlog::info("{}checkpoint {} was committed before the restart", Where(), e.id);
        continue;
      }
      todo.push_back(std::move(e));
    }
    if (todo.empty()) return Status::Ok();
    SR_ASSIGN_OR_RETURN(int64_t committed, CommittedMarker());
    std::erase_if(todo, [&](const Epoch& e) {
      if (e.id > committed) return false;
      spdlog::info("{}checkpoint {} was committed before the restart", Where(), e.id);
      return true;
    });
    if (todo.empty()) return Status::Ok();
    spdlog::info(
        "{}committing the staged output of checkpoint{} {}", Where(), todo.size() > 1 ? "s" : "",
        todo.size() > 1 ? std::to_string(todo.front().id) + " to " + std::to_string(todo.back().id)
                        : std::to_string(todo.front().id));
    return CommitEpochs(todo, todo.back().id);
  }

  // The newest checkpoint whose transaction this run of the sink committed, from the marker
  // group's offset; -1 when the marker is not there (or is another run's).
  Result<int64_t> CommittedMarker() {
    KafkaProperties defaults = {{"group.id", txn_id_}, {"enable.auto.commit", "false"}};
    KafkaSettings settings = o_.kafka;
    std::erase_if(settings.properties, [](const auto& p) {
      return p.first == "transactional.id" || p.first == "group.id";
    });
    // Producer properties do not all apply to a consumer: only the connection ones are kept.
    std::erase_if(settings.properties, [](const auto& p) {
      return !(p.first.starts_with("security.") || p.first.starts_with("sasl.") ||
               p.first.starts_with("ssl.") || p.first.starts_with("socket.") ||
               p.first.starts_with("broker."));
    });
    SR_ASSIGN_OR_RETURN(KafkaHandle consumer,
                        NewKafkaClientFor(settings, RD_KAFKA_CONSUMER, defaults));
    KafkaPartitionList list(rd_kafka_topic_partition_list_new(1));
    rd_kafka_topic_partition_list_add(list.get(), o_.topic.c_str(), 0);
    rd_kafka_resp_err_t err = rd_kafka_committed(consumer.get(), list.get(), o_.timeout_ms);
    if (err == RD_KAFKA_RESP_ERR_NO_ERROR) err = list->elems[0].err;
    rd_kafka_consumer_close(consumer.get());
    if (err != RD_KAFKA_RESP_ERR_NO_ERROR) {
      return Status::RuntimeError(
          Where() + KafkaCallError(o_.kafka, "read the marker of group '" + txn_id_ + "'", err));
    }
    const rd_kafka_topic_partition_t& tp = list->elems[0];
    const std::string_view meta(static_cast<const char*>(tp.metadata),
                                tp.metadata ? tp.metadata_size : 0);
    if (tp.offset < 0 || meta != token_) return int64_t{-1};
    return tp.offset;
  }

  const KafkaSinkOptions o_;
  const OperatorContext* ctx_ = nullptr;
  std::unique_ptr<Expr> key_;
  std::string txn_id_;
  uint64_t records_ = 0;
  bool finished_ = false;

  // exactly_once. Written on the sink's thread: staging_, staged_, stage_buf_.
  bool staging_ = false;
  std::string staging_dir_;
  StagedFile staged_;  // current.staged
  std::string stage_buf_;
  std::string token_;  // this run of the sink (kafka_sink.h), set in Open

  Mutex txn_mu_;  // the producer, in exactly_once
  // Not GUARDED_BY(txn_mu_), since it is guarded only while staging: then every use holds
  // txn_mu_ (the transaction functions require it), while at least once the sink's thread uses
  // it alone, without the lock (Process, Produce, FlushProducer).
  KafkaHandle producer_;
  Mutex pending_mu_;
  std::vector<Epoch> pending_ GUARDED_BY(pending_mu_);  // staged, not committed
  Mutex error_mu_;
  Status error_ GUARDED_BY(error_mu_);  // the first error of a callback or a commit
  std::atomic<bool> has_error_{false};
};

class KafkaSinkConfig : public NodeConfig {
 public:
  explicit KafkaSinkConfig(KafkaSinkOptions o) : o_(std::move(o)) {}
  std::vector<FieldPath> InputFields(const std::vector<FieldPath>& /*out*/) const override {
    return o_.key_fields;
  }
  int max_subtasks() const override { return 1; }
  bool has_main_output() const override { return false; }
  Result<std::unique_ptr<Operator>> CreateOperator() const override {
    return std::unique_ptr<Operator>(std::make_unique<KafkaSink>(o_));
  }
  std::string Describe() const override {
    return "topic: " + o_.topic + (o_.exactly_once ? " (exactly once)" : "");
  }

 private:
  KafkaSinkOptions o_;
};

}  // namespace

std::shared_ptr<const NodeConfig> NewKafkaSinkConfig(KafkaSinkOptions options) {
  return std::make_shared<KafkaSinkConfig>(std::move(options));
}

NodeConfigResult MakeKafkaSink(const ConfigReader& config) {
  SR_RETURN_IF_ERROR(
      config.CheckKeys({"type", "from", "brokers", "topic", "key", "delivery", "properties"}));
  KafkaSinkOptions o;
  SR_ASSIGN_OR_RETURN(o.kafka, ReadKafkaSettings(config, {"enable.idempotence"}));
  SR_ASSIGN_OR_RETURN(o.topic, config.String("topic"));
  if (o.topic.empty()) return config.ErrorAt("topic", "'topic' must not be empty");
  if (config.Has("key")) {
    SR_ASSIGN_OR_RETURN(auto key, config.Expression("key"));
    o.key = key->text();
    o.key_fields = key->fields();
  }
  SR_ASSIGN_OR_RETURN(
      std::string delivery,
      config.Enum("delivery", {"at_least_once", "exactly_once"}, std::string("at_least_once")));
  o.exactly_once = delivery == "exactly_once";
  return NewKafkaSinkConfig(std::move(o));
}

}  // namespace streamrun
