// The `kafka` source. See kafka_source.h for how it joins its group, resumes, pauses and makes
// watermarks.
#include "operators/kafka_source.h"

#include <rapidjson/document.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <atomic>
#include <charconv>
#include <chrono>
#include <cstring>
#include <deque>
#include <map>
#include <thread>

#include "engine/civil_time.h"
#include "engine/json_extract.h"
#include "engine/metrics.h"
#include "engine/mutex.h"
#include "operators/factories.h"

namespace streamrun {
namespace {

using SteadyClock = std::chrono::steady_clock;

// How long one poll waits for records: the longest a requested barrier, a cancel or an idle
// partition waits to be noticed.
constexpr int kPollMs = 100;
// The group thread's poll: how soon it sees a rebalance, a held-back subtask, the end.
constexpr int kGroupPollMs = 50;
// How long a subtask may leave records in its queue untaken before its partitions are paused.
constexpr int64_t kPauseAfterMs = 500;

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
      {"enable.auto.commit", "false"},  // offsets go to the group after checkpoints only
      {"enable.auto.offset.store", "false"},
      {"enable.partition.eof", "true"},   // tells a caught-up partition (idleness, end)
      {"auto.offset.reset", "earliest"},  // a position deleted by retention: read on
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

struct GroupPartition;

// One partition this subtask reads.
struct Partition {
  std::string topic;
  int32_t partition = 0;
  int64_t next = 0;  // the next offset to read (a concrete offset)
  int64_t end = -1;  // stop_at end: the high watermark at start
  WatermarkGenerator gen;
  bool done = false;       // stop_at end: reached its end
  bool caught_up = false;  // nothing to read at the last look (partition EOF)
  SteadyClock::time_point caught_up_since;
  bool idle = false;  // quiet (caught up, or read elsewhere) for longer than idle_timeout
  GroupPartition* shared = nullptr;  // the group's side: published position, assigned
  bool assigned = false;             // this member has it now
  bool elsewhere = false;            // another member has it (since the group's first assignment)
  SteadyClock::time_point elsewhere_since;
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
      if (std::find(r.topics.begin(), r.topics.end(), topic) == r.topics.end())
        r.topics.push_back(topic);
      r.partitions[{topic, p["partition"].GetInt()}] = at;
    }
  }
  return r;
}

// Errors that end the job: retrying cannot help. `hint` gets what to add to the message.
bool FailsTheJob(rd_kafka_resp_err_t err, std::string* hint) {
  switch (err) {
    case RD_KAFKA_RESP_ERR__FATAL:
    case RD_KAFKA_RESP_ERR__AUTO_OFFSET_RESET:
    case RD_KAFKA_RESP_ERR_TOPIC_AUTHORIZATION_FAILED:
    case RD_KAFKA_RESP_ERR_GROUP_AUTHORIZATION_FAILED:
      return true;
    case RD_KAFKA_RESP_ERR__UNKNOWN_TOPIC:
    case RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART:
    case RD_KAFKA_RESP_ERR__UNKNOWN_PARTITION:
      *hint = " (was the topic deleted?)";
      return true;
    default:
      return false;
  }
}

// One partition of the source as the group sees it: where it starts when it is assigned to
// this member, and whether it is assigned now.
struct GroupPartition {
  std::string topic;
  int32_t partition = 0;
  int owner = 0;                   // the subtask that reads it (KafkaPartitionOwner)
  int64_t max_ts = kMinTimestamp;  // restored from the checkpoint
  int64_t end = -1;                // stop_at end: the end when the job started
  // The owner's position, published as it reads (the start before it read anything). Never
  // ahead of what the owner read; behind it only re-reads records the owner skips.
  std::atomic<int64_t> next{0};
  std::atomic<bool> assigned{false};  // this member has it now (set by the group thread)
};

// A subtask's side of the group: the queue its partitions' queues are forwarded to.
struct SubtaskSlot {
  KafkaQueue queue;
  std::vector<GroupPartition*> parts;
  // When the subtask last looked at its queue (SteadyNowNs); 0 while it does not read.
  std::atomic<int64_t> looked_ns{0};
  bool paused = false;    // group thread only
  int64_t paused_ns = 0;  // group thread only
};

// The one group member of a source in one run, shared by its subtasks (NodeConfig::
// CreateShared): the consumer, each subtask's queue, the partitions' published positions, and
// the group thread that polls the consumer's own queue (rebalances, errors, the poll deadline
// max.poll.interval.ms) and pauses the partitions of a subtask held back downstream.
class KafkaGroup {
 public:
  explicit KafkaGroup(int parallelism) : slots_(static_cast<size_t>(std::max(parallelism, 1))) {}
  KafkaGroup(const KafkaGroup&) = delete;
  KafkaGroup& operator=(const KafkaGroup&) = delete;
  ~KafkaGroup() { Stop(); }

  // Every subtask calls Join first. The first one creates the consumer, decides where every
  // partition starts, forwards the partitions' queues to their subtasks' queues, subscribes
  // and starts the group thread; the others wait for it. Every subtask that called Join
  // calls Leave when it ends; the last one closes the consumer (it leaves the group).
  Status Join(const KafkaSourceOptions& o, const SourceContext& ctx) {
    MutexLock lock(&mu_);
    if (state_ == State::kNew) {
      state_ = State::kSettingUp;
      lock.Unlock();
      Status st = Setup(o, ctx);
      lock.Lock();
      setup_ = st;
      state_ = State::kReady;
      cv_.SignalAll();
      return st;
    }
    while (state_ == State::kSettingUp) {
      if (IsCancelled(ctx)) return Status::Cancelled();
      cv_.WaitFor(&mu_, std::chrono::milliseconds(kPollMs));
    }
    return setup_;
  }

  void Leave(int subtask) {
    slots_[static_cast<size_t>(subtask)].looked_ns.store(0, std::memory_order_relaxed);
    bool last = false;
    {
      MutexLock lock(&mu_);
      last = ++left_ == static_cast<int>(slots_.size());
    }
    if (last) Stop();
  }

  rd_kafka_t* rk() const { return rk_.get(); }
  SubtaskSlot& slot(int subtask) { return slots_[static_cast<size_t>(subtask)]; }
  // Bumped at every change of the assignment.
  uint64_t version() const { return version_.load(std::memory_order_acquire); }
  // True once this member had its first assignment: from then on a partition it does not
  // have is read by another member.
  bool member() const { return member_.load(std::memory_order_acquire); }
  bool failed() const { return failed_.load(std::memory_order_acquire); }
  std::string failure() const {
    MutexLock lock(&failure_mu_);
    return failure_;
  }

 private:
  enum class State : uint8_t { kNew, kSettingUp, kReady };

  std::string Where() const { return "source '" + name_ + "': "; }

  Status Setup(const KafkaSourceOptions& o, const SourceContext& ctx) {
    o_ = o;
    name_ = ctx.name;
    progress_ = ctx.progress;
    group_ = o.group.empty() ? "streamrun-" + ctx.name : o.group;
    KafkaClientOptions co;
    co.error = &KafkaGroup::OnError;
    co.rebalance = &KafkaGroup::OnRebalance;
    co.opaque = this;
    SR_ASSIGN_OR_RETURN(rk_,
                        NewKafkaClientFor(o.kafka, RD_KAFKA_CONSUMER,
                                          ConsumerDefaults(group_, "streamrun-" + ctx.name), co));
    // Errors and rebalances come through the consumer's queue, which the group thread polls.
    rd_kafka_resp_err_t err = rd_kafka_poll_set_consumer(rk_.get());
    if (err != RD_KAFKA_RESP_ERR_NO_ERROR) {
      return Status::RuntimeError(Where() + KafkaCallError(o_.kafka, "set up the consumer", err));
    }
    consumer_queue_.reset(rd_kafka_queue_get_consumer(rk_.get()));
    if (!consumer_queue_) return Status::RuntimeError(Where() + "cannot get the consumer's queue");
    for (SubtaskSlot& s : slots_) {
      s.queue.reset(rd_kafka_queue_new(rk_.get()));
      if (!s.queue) return Status::RuntimeError(Where() + "cannot make a subtask's queue");
    }
    Restored restored;
    if (!ctx.restore_positions.empty()) {
      SR_ASSIGN_OR_RETURN(restored, ParseRestored(ctx.restore_positions));
    }
    const int parallelism = static_cast<int>(slots_.size());
    for (const std::string& topic : o_.topics) {
      Result<int32_t> count =
          KafkaPartitionCount(rk_.get(), topic, o_.metadata_timeout_ms, o_.kafka.brokers);
      if (!count.ok())
        return Status::RuntimeError(Where() + o_.kafka.Redact(count.status().message()));
      const bool known_topic =
          std::find(restored.topics.begin(), restored.topics.end(), topic) != restored.topics.end();
      for (int32_t p = 0; p < *count; ++p) {
        auto gp = std::make_unique<GroupPartition>();
        gp->topic = topic;
        gp->partition = p;
        gp->owner = KafkaPartitionOwner(topic, p, parallelism);
        int64_t next = 0;
        auto it = restored.partitions.find({topic, p});
        if (it != restored.partitions.end()) {
          next = it->second.offset;
          gp->max_ts = it->second.max_ts;
        } else {
          // A partition added to a known topic since the checkpoint: all of it is new data.
          SR_ASSIGN_OR_RETURN(
              next,
              StartOffset(*gp, known_topic ? KafkaSourceOptions::Start::kEarliest : o_.start));
        }
        gp->next.store(next, std::memory_order_relaxed);
        if (o_.stop_at_end) {
          // For a read_committed consumer the end is the last stable offset: an open transaction
          // at the end is not waited for.
          SR_ASSIGN_OR_RETURN(gp->end, ListOffset(*gp, RD_KAFKA_OFFSET_END));
        }
        slots_[static_cast<size_t>(gp->owner)].parts.push_back(gp.get());
        parts_.push_back(std::move(gp));
      }
    }
    if (o_.stop_at_end) {
      // A bounded read: every partition from its start to its end, whoever else reads them.
      bounded_ = true;
      KafkaPartitionList all(rd_kafka_topic_partition_list_new(static_cast<int>(parts_.size())));
      for (const auto& gp : parts_)
        rd_kafka_topic_partition_list_add(all.get(), gp->topic.c_str(), gp->partition);
      Rebalance(RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS, all.get());
      if (failed()) return Status::RuntimeError(Where() + failure());
      thread_ = std::thread([this] { Loop(); });
      return Status::Ok();
    }
    KafkaPartitionList topics(
        rd_kafka_topic_partition_list_new(static_cast<int>(o_.topics.size())));
    for (const std::string& topic : o_.topics) {
      rd_kafka_topic_partition_list_add(topics.get(), topic.c_str(), RD_KAFKA_PARTITION_UA);
    }
    err = rd_kafka_subscribe(rk_.get(), topics.get());
    if (err != RD_KAFKA_RESP_ERR_NO_ERROR) {
      return Status::RuntimeError(Where() +
                                  KafkaCallError(o_.kafka, "subscribe to the topics", err));
    }
    spdlog::info("{}joining group '{}' ({} partitions over {} subtasks)", Where(), group_,
                 parts_.size(), parallelism);
    thread_ = std::thread([this] { Loop(); });
    return Status::Ok();
  }

  // The partition's offset `at` lists (RD_KAFKA_OFFSET_BEGINNING, _END, or a time; -1: none).
  Result<int64_t> ListOffset(const GroupPartition& p, int64_t at) {
    Result<int64_t> offset =
        KafkaListOffset(rk_.get(), p.topic, p.partition, at, o_.metadata_timeout_ms);
    if (!offset.ok()) {
      return Status::RuntimeError(Where() + "cannot ask for the offsets of " + p.topic + "/" +
                                  std::to_string(p.partition) + ": " +
                                  o_.kafka.Redact(offset.status().message()));
    }
    return offset;
  }

  Result<int64_t> StartOffset(const GroupPartition& p, KafkaSourceOptions::Start start) {
    if (start == KafkaSourceOptions::Start::kEarliest)
      return ListOffset(p, RD_KAFKA_OFFSET_BEGINNING);
    if (start == KafkaSourceOptions::Start::kLatest) return ListOffset(p, RD_KAFKA_OFFSET_END);
    SR_ASSIGN_OR_RETURN(int64_t offset, ListOffset(p, o_.start_ms));
    if (offset >= 0) return offset;
    return ListOffset(p, RD_KAFKA_OFFSET_END);  // no record at or after that time
  }

  // The group thread.
  void Loop() {
    while (!stop_.load(std::memory_order_acquire)) {
      // Serves rebalances and errors; tells librdkafka the application polls.
      if (rd_kafka_message_t* m = rd_kafka_consumer_poll(rk_.get(), kGroupPollMs)) {
        TakeOwn(m);
        rd_kafka_message_destroy(m);
      }
      WatchBackpressure();
    }
    closing_ = true;
    rd_kafka_resp_err_t err = rd_kafka_consumer_close(rk_.get());
    if (err != RD_KAFKA_RESP_ERR_NO_ERROR && !failed()) {
      spdlog::warn("{}{}", Where(), KafkaCallError(o_.kafka, "close the consumer", err));
    }
  }

  void Stop() LOCKS_EXCLUDED(mu_) {
    {
      MutexLock lock(&mu_);
      if (stopped_) return;
      stopped_ = true;
    }
    stop_.store(true, std::memory_order_release);
    if (thread_.joinable()) {
      if (consumer_queue_) rd_kafka_queue_yield(consumer_queue_.get());
      thread_.join();
    } else if (rk_) {
      rd_kafka_consumer_close(rk_.get());  // set up only partly: nothing to tell
    }
    for (SubtaskSlot& s : slots_) s.queue.reset();
    consumer_queue_.reset();
    rk_.reset();
  }

  // A message of the consumer's own queue: errors of the group or of the client. Records come
  // here only for a partition whose queue is not forwarded, which cannot be.
  void TakeOwn(const rd_kafka_message_t* m) {
    const std::string where = m->rkt != nullptr ? std::string(rd_kafka_topic_name(m->rkt)) + "/" +
                                                      std::to_string(m->partition)
                                                : "";
    if (m->err == RD_KAFKA_RESP_ERR_NO_ERROR) {
      Fail("a record of " + where + " came to the group's queue, not to its subtask's");
      return;
    }
    std::string what = rd_kafka_message_errstr(m);  // only for an error: null for a record
    if (!where.empty()) what = where + ": " + what;
    what = std::string(rd_kafka_err2name(m->err)) + ": " + o_.kafka.Redact(what);
    std::string hint;
    if (FailsTheJob(m->err, &hint)) {
      Fail(what + hint);
      return;
    }
    Warn(m->err, what);
  }

  // Brokers down, connections refused: librdkafka retries by itself. Say so, not too often.
  void Warn(rd_kafka_resp_err_t code, const std::string& what) {
    auto now = SteadyClock::now();
    if (now - last_warning_ < std::chrono::seconds(5) && code == last_warning_code_) return;
    last_warning_ = now;
    last_warning_code_ = code;
    spdlog::warn("{}{} (retrying)", Where(), what);
  }

  void Fail(const std::string& what) LOCKS_EXCLUDED(failure_mu_) {
    MutexLock lock(&failure_mu_);
    if (failure_.empty()) failure_ = what;
    failed_.store(true, std::memory_order_release);
  }

  // librdkafka's error callback (on the group thread, from the consumer's poll).
  static void OnError(rd_kafka_t* rk, int err, const char* reason, void* opaque) {
    auto* self = static_cast<KafkaGroup*>(opaque);
    const auto code = static_cast<rd_kafka_resp_err_t>(err);
    if (code == RD_KAFKA_RESP_ERR__FATAL) {
      char buf[512];
      rd_kafka_resp_err_t orig = rd_kafka_fatal_error(rk, buf, sizeof buf);
      self->Fail(self->o_.kafka.Redact(std::string("fatal Kafka error: ") +
                                       rd_kafka_err2name(orig) + ": " + buf));
      return;
    }
    self->Warn(code, std::string(rd_kafka_err2name(code)) + ": " + self->o_.kafka.Redact(reason));
  }

  static void OnRebalance(rd_kafka_t*, rd_kafka_resp_err_t err,
                          rd_kafka_topic_partition_list_t* list, void* opaque) {
    static_cast<KafkaGroup*>(opaque)->Rebalance(err, list);
  }

  GroupPartition* Find(const char* topic, int32_t partition) const {
    for (const auto& gp : parts_) {
      if (gp->partition == partition && gp->topic == topic) return gp.get();
    }
    return nullptr;
  }

  std::string MemberId() const {
    char* id = rd_kafka_memberid(rk_.get());
    std::string out = id != nullptr ? id : "";
    if (id != nullptr) rd_kafka_mem_free(rk_.get(), id);
    return out;
  }

  // Assigns what the group gives, each partition at its owner's position; takes back what it
  // revokes. On the group thread (from its poll, or from the close).
  void Rebalance(rd_kafka_resp_err_t err, rd_kafka_topic_partition_list_t* list) {
    rd_kafka_t* rk = rk_.get();
    const bool cooperative = std::strcmp(rd_kafka_rebalance_protocol(rk), "COOPERATIVE") == 0;
    ++rebalances_;
    std::string what;
    if (err == RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS) {
      KafkaPartitionList take(rd_kafka_topic_partition_list_new(list->cnt));
      KafkaPartitionList pause(rd_kafka_topic_partition_list_new(list->cnt));
      std::string unknown;
      for (int i = 0; i < list->cnt; ++i) {
        const rd_kafka_topic_partition_t& e = list->elems[i];
        GroupPartition* gp = Find(e.topic, e.partition);
        const std::string name = std::string(e.topic) + "/" + std::to_string(e.partition);
        if (gp == nullptr) {
          unknown += (unknown.empty() ? "" : ", ") + name;
          continue;
        }
        // The partition's records go to its subtask's queue. Again at every assignment: when a
        // partition is taken away, librdkafka clears its queue's forwarding (and waits for that
        // before the next assignment).
        KafkaQueue pq(rd_kafka_queue_get_partition(rk, e.topic, e.partition));
        if (!pq) {
          Fail("cannot get the queue of " + name);
          return;
        }
        rd_kafka_queue_forward(pq.get(), slots_[static_cast<size_t>(gp->owner)].queue.get());
        // Never the group's committed offset: this run's position, or the checkpoint's.
        const int64_t next = gp->next.load(std::memory_order_acquire);
        rd_kafka_topic_partition_list_add(take.get(), e.topic, e.partition)->offset = next;
        if (slots_[static_cast<size_t>(gp->owner)].paused) {
          rd_kafka_topic_partition_list_add(pause.get(), e.topic, e.partition);
        }
        what += (what.empty() ? "" : ", ") + name + "@" + std::to_string(next);
      }
      if (cooperative) {
        if (rd_kafka_error_t* e = rd_kafka_incremental_assign(rk, take.get())) {
          Fail(KafkaCallError(o_.kafka, "assign the partitions", e));
        }
      } else if (rd_kafka_resp_err_t e = rd_kafka_assign(rk, take.get());
                 e != RD_KAFKA_RESP_ERR_NO_ERROR) {
        Fail(KafkaCallError(o_.kafka, "assign the partitions", e));
      }
      // A subtask held back stays paused with its new partitions.
      if (pause->cnt > 0) rd_kafka_pause_partitions(rk, pause.get());
      for (int i = 0; i < take->cnt; ++i) {
        Find(take->elems[i].topic, take->elems[i].partition)
            ->assigned.store(true, std::memory_order_release);
      }
      member_.store(true, std::memory_order_release);
      version_.fetch_add(1, std::memory_order_acq_rel);
      if (bounded_) {
        spdlog::info("{}stop_at end: reads {} itself, not as a member of group '{}'", Where(), what,
                     group_);
        return;
      }
      spdlog::info("{}group '{}' member {}: assigned {} ({}, rebalance {}){}", Where(), group_,
                   MemberId(), what.empty() ? "nothing" : what,
                   cooperative ? "cooperative" : "eager", rebalances_,
                   unknown.empty()
                       ? ""
                       : "; not read before the job restarts (added since it started): " + unknown);
      return;
    }
    const bool lost = rd_kafka_assignment_lost(rk) != 0;
    if (err == RD_KAFKA_RESP_ERR__REVOKE_PARTITIONS && cooperative) {
      if (rd_kafka_error_t* e = rd_kafka_incremental_unassign(rk, list)) {
        Fail(KafkaCallError(o_.kafka, "give back the partitions", e));
      }
    } else {
      rd_kafka_assign(rk, nullptr);  // eager revoke, or an error: nothing is assigned any more
    }
    for (int i = 0; i < list->cnt; ++i) {
      GroupPartition* gp = Find(list->elems[i].topic, list->elems[i].partition);
      if (gp == nullptr) continue;
      gp->assigned.store(false, std::memory_order_release);
      what +=
          std::string(what.empty() ? "" : ", ") + gp->topic + "/" + std::to_string(gp->partition);
    }
    if (err != RD_KAFKA_RESP_ERR__REVOKE_PARTITIONS) {
      for (const auto& gp : parts_) gp->assigned.store(false, std::memory_order_release);
      spdlog::warn("{}group '{}': rebalance failed: {}", Where(), group_, KafkaErrorText(err));
    }
    version_.fetch_add(1, std::memory_order_acq_rel);
    if (closing_) {
      spdlog::debug("{}group '{}': left (gave back {})", Where(), group_, what);
    } else {
      spdlog::info("{}group '{}' member {}: revoked {} ({}{}, rebalance {})", Where(), group_,
                   MemberId(), what.empty() ? "nothing" : what,
                   cooperative ? "cooperative" : "eager", lost ? ", the assignment was lost" : "",
                   rebalances_);
    }
  }

  // Pauses the partitions of a subtask that left records in its queue untaken for
  // kPauseAfterMs (held back downstream), and resumes them once it takes records again.
  void WatchBackpressure() {
    const int64_t now = SteadyNowNs();
    for (size_t s = 0; s < slots_.size(); ++s) {
      SubtaskSlot& slot = slots_[s];
      const int64_t looked = slot.looked_ns.load(std::memory_order_relaxed);
      if (!slot.paused) {
        if (looked == 0 || now - looked < kPauseAfterMs * 1000000LL) continue;
        if (rd_kafka_queue_length(slot.queue.get()) == 0) continue;
        SetPaused(slot, static_cast<int>(s), true, (now - looked) / 1000000);
      } else if (looked == 0 || looked > slot.paused_ns) {
        SetPaused(slot, static_cast<int>(s), false, 0);
      }
    }
  }

  void SetPaused(SubtaskSlot& slot, int subtask, bool pause, int64_t held_ms) {
    KafkaPartitionList list(rd_kafka_topic_partition_list_new(static_cast<int>(slot.parts.size())));
    for (GroupPartition* gp : slot.parts) {
      if (!gp->assigned.load(std::memory_order_acquire)) continue;
      rd_kafka_topic_partition_list_add(list.get(), gp->topic.c_str(), gp->partition)->offset =
          gp->next.load(std::memory_order_acquire);
    }
    if (list->cnt > 0) {
      if (!pause) {
        // Pausing dropped the records fetched but not taken; librdkafka would go on after the
        // last record the subtask took, or after the last one fetched if it took none since
        // the partition was assigned. Go back to the subtask's own position instead.
        if (rd_kafka_error_t* e = rd_kafka_seek_partitions(rk_.get(), list.get(), 0)) {
          Fail(KafkaCallError(o_.kafka, "seek to the subtask's position", e));
        }
      }
      rd_kafka_resp_err_t err = pause ? rd_kafka_pause_partitions(rk_.get(), list.get())
                                      : rd_kafka_resume_partitions(rk_.get(), list.get());
      if (err != RD_KAFKA_RESP_ERR_NO_ERROR) {
        Fail(KafkaCallError(o_.kafka, pause ? "pause the partitions" : "resume the partitions",
                            err));
      }
    }
    slot.paused = pause;
    slot.paused_ns = SteadyNowNs();
    if (pause) {
      if (progress_ != nullptr) progress_->pauses.fetch_add(1, std::memory_order_relaxed);
      spdlog::debug("{}subtask {} took no record for {} ms: its {} partitions are paused", Where(),
                    subtask, held_ms, list->cnt);
    } else {
      spdlog::debug("{}subtask {} reads again: its {} partitions are resumed", Where(), subtask,
                    list->cnt);
    }
  }

  KafkaSourceOptions o_;  // a copy: the subtask that set up may end first
  std::string name_;
  std::string group_;
  SourceProgress* progress_ = nullptr;
  KafkaHandle rk_;
  KafkaQueue consumer_queue_;
  std::vector<SubtaskSlot> slots_;
  std::vector<std::unique_ptr<GroupPartition>> parts_;
  std::thread thread_;
  std::atomic<bool> stop_{false};
  std::atomic<uint64_t> version_{0};
  std::atomic<bool> member_{false};
  std::atomic<bool> failed_{false};
  mutable Mutex failure_mu_;
  std::string failure_ GUARDED_BY(failure_mu_);
  bool bounded_ = false;  // stop_at end: assigned, not subscribed
  // Group thread only.
  bool closing_ = false;
  int rebalances_ = 0;
  SteadyClock::time_point last_warning_{};
  rd_kafka_resp_err_t last_warning_code_ = RD_KAFKA_RESP_ERR_NO_ERROR;
  // Join, Leave and Stop. The members above that Setup sets are not guarded: the subtask that
  // sets up writes them before its kReady under mu_, and the others read them after seeing it.
  Mutex mu_;
  CondVar cv_;
  State state_ GUARDED_BY(mu_) = State::kNew;
  Status setup_ GUARDED_BY(mu_);
  int left_ GUARDED_BY(mu_) = 0;
  bool stopped_ GUARDED_BY(mu_) = false;
};

class KafkaSource : public SourceOperator {
 public:
  explicit KafkaSource(const KafkaSourceOptions& o) : o_(o) {}

  Status Run(SourceContext& ctx) override {
    ctx_ = &ctx;
    maker_ = std::make_unique<RecordMaker>(o_.common, ctx, LineFormat::kText);
    std::shared_ptr<KafkaGroup> group = std::static_pointer_cast<KafkaGroup>(ctx.shared);
    if (!group) group = std::make_shared<KafkaGroup>(ctx.parallelism);  // a single subtask
    group_ = group.get();
    Status st = Init();
    if (st.ok()) st = group->Join(o_, ctx);
    if (st.ok()) st = Setup();
    if (st.ok()) st = Loop();
    commits_.reset();  // before the consumer goes
    group_->Leave(ctx.subtask);
    group_ = nullptr;
    return st;
  }

 private:
  std::string Where() const { return "source '" + ctx_->name + "': "; }

  // Layout: which slots take metadata, and the JSON fields.
  Status Init() {
    SR_RETURN_IF_ERROR(maker_->Init());
    const Layout& layout = ctx_->layout;
    meta_ = MetaSlotsOf(layout, /*text_line=*/o_.format == LineFormat::kText);
    if (o_.format == LineFormat::kJson) extractor_ = std::make_unique<JsonExtractor>(layout);
    return Status::Ok();
  }

  // This subtask's partitions, from the group's start positions and ends.
  Status Setup() {
    SubtaskSlot& slot = group_->slot(ctx_->subtask);
    slot_ = &slot;
    queue_ = slot.queue.get();
    for (GroupPartition* gp : slot.parts) {
      Partition p;
      p.topic = gp->topic;
      p.partition = gp->partition;
      p.next = gp->next.load(std::memory_order_relaxed);
      p.end = gp->end;
      p.gen = WatermarkGenerator(o_.common.max_out_of_orderness_ms);
      p.gen.set_max_timestamp(gp->max_ts);
      p.done = o_.stop_at_end && p.next >= p.end;
      p.shared = gp;
      parts_.push_back(std::move(p));
    }
    if (parts_.empty()) {
      spdlog::info("{}subtask {} has no partition to read: it ends", Where(), ctx_->subtask);
      return Status::Ok();
    }
    commits_.reset(rd_kafka_queue_new(group_->rk()));
    if (!commits_) return Status::RuntimeError(Where() + "cannot make the queue of offset commits");
    std::string what;
    for (const Partition& p : parts_) {
      what += (what.empty() ? "" : ", ") + p.topic + "/" + std::to_string(p.partition) + "@" +
              std::to_string(p.next);
    }
    spdlog::info("{}subtask {} reads {} (the ones the group assigns)", Where(), ctx_->subtask,
                 what);
    RecomputeMin();
    return Status::Ok();
  }

  // The group changed what this member reads. A partition another member reads counts as
  // quiet from then on: after watermark.idle_timeout it no longer holds the watermark back.
  void Reassigned() {
    const bool member = group_->member();
    const auto now = SteadyClock::now();
    for (Partition& p : parts_) {
      p.assigned = p.shared->assigned.load(std::memory_order_acquire);
      if (p.assigned) {
        p.elsewhere = false;
      } else if (member && !p.elsewhere) {
        p.elsewhere = true;
        p.elsewhere_since = now;
      }
    }
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
    if (!any &&
        std::all_of(parts_.begin(), parts_.end(), [](const Partition& p) { return p.done; })) {
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
      out += ",\"partition\":" + std::to_string(p.partition) +
             ",\"offset\":" + std::to_string(p.next) + ",\"max_ts\":";
      out +=
          p.gen.max_timestamp() == kMinTimestamp ? "null" : std::to_string(p.gen.max_timestamp());
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
    uint64_t seen_version = 0;
    auto all_done = [&] {
      return std::all_of(parts_.begin(), parts_.end(), [](const Partition& p) { return p.done; });
    };
    while (!(o_.stop_at_end && all_done())) {
      if (IsCancelled(*ctx_)) return Status::Cancelled();
      if (group_->failed()) return Status::RuntimeError(Where() + group_->failure());
      if (ctx_->drain != nullptr && ctx_->drain->load(std::memory_order_relaxed)) break;
      if (const uint64_t v = group_->version(); v != seen_version) {
        seen_version = v;
        Reassigned();
      }
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
      // The group thread pauses this subtask's partitions when it leaves records here untaken.
      slot_->looked_ns.store(SteadyNowNs(), std::memory_order_relaxed);
      // What is there now, without waiting: a batch call waits for a full batch or its timeout.
      ssize_t n = rd_kafka_consume_batch_queue(queue_, 0, msgs.data(), msgs.size());
      if (n < 0) {
        return Status::RuntimeError(Where() +
                                    KafkaCallError(o_.kafka, "poll", rd_kafka_last_error()));
      }
      if (n == 0) {
        // Nothing: wait for the first record (or event), so that it goes on at once.
        if (rd_kafka_message_t* m = rd_kafka_consume_queue(queue_, kPollMs)) {
          msgs[0] = m;
          n = 1;
        }
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

  // A partition is quiet while it is caught up or read by another member.
  void CheckIdle() {
    const auto now = SteadyClock::now();
    const auto timeout = std::chrono::milliseconds(o_.common.idle_timeout_ms);
    bool changed = false;
    for (Partition& p : parts_) {
      if (p.idle || p.done) continue;
      if ((p.caught_up && now - p.caught_up_since >= timeout) ||
          (p.elsewhere && now - p.elsewhere_since >= timeout)) {
        p.idle = true;
        changed = true;
      }
    }
    if (changed) RecomputeMin();
  }

  // Reports the offsets of the newest completed checkpoint to the group, asynchronously, for
  // the partitions this member has now (another member's are its own to report); the answers
  // come back on commits_. A commit that a rebalance cut short is only a warning.
  void CommitCompleted() {
    for (rd_kafka_event_t* ev; (ev = rd_kafka_queue_poll(commits_.get(), 0)) != nullptr;) {
      const rd_kafka_resp_err_t err = rd_kafka_event_error(ev);
      rd_kafka_event_destroy(ev);
      if (err == RD_KAFKA_RESP_ERR_NO_ERROR) continue;
      const bool rebalance = err == RD_KAFKA_RESP_ERR_REBALANCE_IN_PROGRESS ||
                             err == RD_KAFKA_RESP_ERR_ILLEGAL_GENERATION ||
                             err == RD_KAFKA_RESP_ERR_UNKNOWN_MEMBER_ID ||
                             err == RD_KAFKA_RESP_ERR__ASSIGNMENT_LOST;
      // A rebalance fails every commit until it ends: once is enough.
      if (rebalance && warned_version_ == group_->version()) continue;
      if (rebalance) warned_version_ = group_->version();
      spdlog::warn("{}{}{}", Where(),
                   KafkaCallError(o_.kafka, "commit offsets to group '" + o_.group + "'", err),
                   rebalance ? " (the next checkpoint's offsets go after the rebalance)" : "");
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
      if (!parts_[i].assigned) continue;
      rd_kafka_topic_partition_list_add(list.get(), parts_[i].topic.c_str(), parts_[i].partition)
          ->offset = (*newest)[i];
    }
    if (list->cnt > 0) {
      rd_kafka_resp_err_t err =
          rd_kafka_commit_queue(group_->rk(), list.get(), commits_.get(), nullptr, nullptr);
      if (err != RD_KAFKA_RESP_ERR_NO_ERROR) {
        spdlog::warn("{}{}", Where(),
                     KafkaCallError(o_.kafka, "commit offsets to group '" + o_.group + "'", err));
      }
    }
    while (!checkpoints_.empty() && checkpoints_.front().first <= newest_id)
      checkpoints_.pop_front();
  }

  // One message or event of the subtask's queue.
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
    p->shared->next.store(p->next, std::memory_order_relaxed);
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
        p->shared->next.store(p->next, std::memory_order_relaxed);
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
      what = std::string(rd_kafka_topic_name(m->rkt)) + "/" + std::to_string(m->partition) + ": " +
             what;
    }
    what = std::string(rd_kafka_err2name(m->err)) + ": " + o_.kafka.Redact(what);
    std::string hint;
    if (FailsTheJob(m->err, &hint)) return Status::RuntimeError(Where() + what + hint);
    spdlog::warn("{}{} (retrying)", Where(), what);
    return Status::Ok();
  }

  Status Bad(const rd_kafka_message_t* m, std::string_view text, const std::string& reason) {
    std::string why = std::string(rd_kafka_topic_name(m->rkt)) + "/" +
                      std::to_string(m->partition) + " offset " + std::to_string(m->offset) + ": " +
                      reason;
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
    const size_t r = b.AddRow(ctx_->origin, static_cast<uint64_t>(m->offset));
    b.rows[r].raw = raw;
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
    SR_RETURN_IF_ERROR(
        maker_->FinishRow(b, p.gen));  // event time; a bad one is reported and removed
    if (b.rows.size() == rows_before) {
      b.rows.back().wm = wm_before;
      // This partition held the minimum and moved: the source's watermark may move.
      if (!p.idle && !p.done && part_wm <= active_min_ && p.gen.current() != part_wm)
        RecomputeMin();
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
        case RecordMeta::kKey:
          if (m->key != nullptr)
            v = Value::String(arena.Copy({static_cast<const char*>(m->key), m->key_len}));
          break;
        case RecordMeta::kTimestamp: {
          rd_kafka_timestamp_type_t type;
          int64_t ts = rd_kafka_message_timestamp(m, &type);
          if (type != RD_KAFKA_TIMESTAMP_NOT_AVAILABLE && ts >= 0) v = Value::Int(ts);
          break;
        }
        case RecordMeta::kPartition:
          v = Value::Int(p.partition);
          break;
        case RecordMeta::kOffset:
          v = Value::Int(m->offset);
          break;
        case RecordMeta::kTopic:
          v = Value::String(arena.Copy(p.topic));
          break;
        case RecordMeta::kLine:
          v = Value::String(raw);
          break;
        case RecordMeta::kHeaders:
        case RecordMeta::kHeader: {
          if (!headers_read) {
            headers_read = true;
            if (rd_kafka_message_headers(m, &headers) != RD_KAFKA_RESP_ERR_NO_ERROR)
              headers = nullptr;
          }
          if (headers == nullptr) {
            if (s.meta == RecordMeta::kHeaders) v = Value::Json(arena.Copy("{}"));
            break;
          }
          if (s.meta == RecordMeta::kHeader) {
            const void* value = nullptr;
            size_t size = 0;
            // The last value of a header that repeats, as Kafka Streams' lastHeader.
            if (rd_kafka_header_get_last(headers, s.header.c_str(), &value, &size) ==
                    RD_KAFKA_RESP_ERR_NO_ERROR &&
                value != nullptr) {
              v = Value::String(arena.Copy({static_cast<const char*>(value), size}));
            }
            break;
          }
          std::string json = "{";
          const char* name = nullptr;
          const void* value = nullptr;
          size_t size = 0;
          for (size_t i = 0; rd_kafka_header_get_all(headers, i, &name, &value, &size) ==
                             RD_KAFKA_RESP_ERR_NO_ERROR;
               ++i) {
            if (i > 0) json += ',';
            AppendJsonString(json, name);
            json += ':';
            if (value == nullptr)
              json += "null";
            else
              AppendJsonString(json, {static_cast<const char*>(value), size});
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
  std::unique_ptr<RecordMaker> maker_;        // event times; made when Run knows the context
  std::unique_ptr<JsonExtractor> extractor_;  // format json
  std::vector<MetaSlot> meta_;
  std::string error_;
  KafkaGroup* group_ = nullptr;        // while Run runs
  SubtaskSlot* slot_ = nullptr;        // this subtask's side of the group
  rd_kafka_queue_t* queue_ = nullptr;  // this subtask's records and errors (the group's)
  KafkaQueue commits_;                 // answers to offset commits
  std::vector<Partition> parts_;
  Partition* last_ = nullptr;           // the partition of the previous message
  int64_t active_min_ = kMinTimestamp;  // min watermark over active partitions
  int64_t watermark_ = kMinTimestamp;   // the source's: the max of active_min_ so far
  int64_t sent_watermark_ = kMinTimestamp;
  BatchPtr batch_;
  uint64_t pending_bytes_ = 0;
  // Offsets given at barriers, to report to the group once their checkpoint completes.
  std::deque<std::pair<uint64_t, std::vector<int64_t>>> checkpoints_;
  uint64_t warned_version_ = ~uint64_t{0};  // the assignment of the last rebalance warning
};

// A SourceConfig, so that `streamrun test` can replace it by a file (a recording) with the same
// event time, watermark and on_error.
class KafkaSourceConfig : public SourceConfig {
 public:
  explicit KafkaSourceConfig(KafkaSourceOptions o)
      : SourceConfig(o.common, o.format), o_(std::move(o)) {}
  bool bounded() const override { return o_.stop_at_end; }
  // The subtasks of a run share one consumer: one member of the group.
  std::shared_ptr<void> CreateShared(int parallelism) const override {
    return std::make_shared<KafkaGroup>(parallelism);
  }
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
  SR_RETURN_IF_ERROR(
      config.CheckKeys({"type", "brokers", "topic", "topics", "group", "start", "format",
                        "event_time", "watermark", "on_error", "properties", "stop_at"}));
  KafkaSourceOptions o;
  SR_ASSIGN_OR_RETURN(
      o.kafka, ReadKafkaSettings(config, {"group.id", "enable.auto.commit",
                                          "enable.auto.offset.store", "enable.partition.eof"}));
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
    if (t.empty())
      return config.ErrorAt(config.Has("topic") ? "topic" : "topics",
                            "a topic name must not be empty");
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
      return config.ErrorAt("start",
                            "'start' must be earliest, latest, epoch milliseconds or an RFC 3339 "
                            "time (2024-05-01T00:00:00Z), not '" +
                                start + "'");
    }
  }
  SR_ASSIGN_OR_RETURN(std::string format,
                      config.Enum("format", {"json", "text"}, std::string("json")));
  o.format = format == "text" ? LineFormat::kText : LineFormat::kJson;
  SR_ASSIGN_OR_RETURN(std::string stop_at,
                      config.Enum("stop_at", {"never", "end"}, std::string("never")));
  o.stop_at_end = stop_at == "end";
  SR_ASSIGN_OR_RETURN(o.common, ReadSourceCommon(config, /*partitioned=*/true));
  return NewKafkaSourceConfig(std::move(o));
}

}  // namespace streamrun
