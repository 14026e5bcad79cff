// The checkpoint coordinator (see checkpoint_coordinator.h).
#include "engine/checkpoint_coordinator.h"

#include <fcntl.h>
#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>
#include <spdlog/spdlog.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>

#include "engine/checkpoint_writer.h"
#include "engine/state_dir.h"

namespace streamrun {

// The coordinator's thread sets done and result with mu_ held, which the caller of Savepoint
// waits for. (Not annotated: a nested struct's GUARDED_BY cannot name the coordinator's mu_.)
struct CheckpointCoordinator::SavepointRequest {
  std::string parent_dir;  // set before the request is queued
  bool done = false;
  Result<std::string> result = Status::RuntimeError("savepoint not taken");
};

// Used with mu_ held while it is pending_ (GUARDED_BY(mu_)); the coordinator's thread owns it
// once it has taken it out of pending_ to write it.
struct CheckpointCoordinator::Pending {
  uint64_t id = 0;
  SavepointRequest* savepoint = nullptr;  // null: a checkpoint
  std::vector<bool> waiting;              // per task
  int waiting_count = 0;
  std::vector<SnapshotPart> parts;
  std::chrono::steady_clock::time_point started;
  bool complete = false;     // every ack is in; the thread writes it
  int64_t max_pause_ns = 0;  // the longest task pause at its barrier
  size_t prepared = 0;       // parts[0, prepared) had their DeferredState::Prepare
};

CheckpointCoordinator::CheckpointCoordinator(CheckpointOptions options,
                                             std::vector<CheckpointNode> nodes, int tasks)
    : options_(std::move(options)),
      nodes_(std::move(nodes)),
      tasks_(tasks),
      next_id_(options_.first_id),
      finished_(static_cast<size_t>(tasks), false) {
  source_ended_.resize(nodes_.size());
  for (size_t n = 0; n < nodes_.size(); ++n) {
    source_ended_[n].assign(static_cast<size_t>(nodes_[n].parallelism), false);
  }
  // Ids only grow, also across runs: requested() starts below the first id.
  requested_.store(static_cast<uint64_t>(options_.first_id - 1));
}

CheckpointCoordinator::~CheckpointCoordinator() { Stop(); }

void CheckpointCoordinator::AddCommitter(Operator* op) { committers_.push_back(op); }

void CheckpointCoordinator::Start() {
  thread_ = std::thread([this] { Loop(); });
}

void CheckpointCoordinator::Stop() {
  {
    MutexLock lock(&mu_);
    if (stop_ && !thread_.joinable()) return;
    stop_ = true;
  }
  cv_.SignalAll();
  if (thread_.joinable()) thread_.join();
  MutexLock lock(&mu_);
  for (SavepointRequest* r : savepoints_) {
    r->result = Status::RuntimeError("the job ended before the savepoint was taken");
    r->done = true;
  }
  savepoints_.clear();
  if (pending_ && pending_->savepoint != nullptr) {
    pending_->savepoint->result =
        Status::RuntimeError("the job ended before the savepoint completed");
    pending_->savepoint->done = true;
  }
  pending_.reset();
  cv_.SignalAll();
}

void CheckpointCoordinator::TriggerLocked(std::unique_ptr<Pending> p) {
  p->id = static_cast<uint64_t>(next_id_++);
  p->parts = final_parts_;
  p->started = std::chrono::steady_clock::now();
  p->waiting.assign(static_cast<size_t>(tasks_), false);
  for (int t = 0; t < tasks_; ++t) {
    if (!finished_[t]) {
      p->waiting[t] = true;
      ++p->waiting_count;
    }
  }
  if (p->waiting_count == 0) p->complete = true;
  pending_ = std::move(p);
  requested_.store(pending_->id, std::memory_order_relaxed);
  spdlog::debug("checkpoint {}: triggered", pending_->id);
}

void CheckpointCoordinator::Ack(uint64_t id, int task, std::vector<SnapshotPart> parts,
                                BarrierTiming timing) {
  MutexLock lock(&mu_);
  if (pauses_.size() < kPauseWindow) {
    pauses_.push_back(timing.pause_ns);
  } else {
    pauses_[pause_count_ % kPauseWindow] = timing.pause_ns;
  }
  ++pause_count_;
  if (!pending_ || pending_->id != id || !pending_->waiting[task]) return;  // aborted or late
  pending_->max_pause_ns = std::max(pending_->max_pause_ns, timing.pause_ns);
  pending_->waiting[task] = false;
  for (auto& part : parts) pending_->parts.push_back(std::move(part));
  if (--pending_->waiting_count == 0) pending_->complete = true;
  cv_.SignalAll();  // the thread prepares the parts at once (DeferredState::Prepare)
}

void CheckpointCoordinator::TaskFinished(int task,
                                         const std::vector<std::pair<int, int>>& source_subtasks,
                                         std::vector<SnapshotPart> final_parts) {
  MutexLock lock(&mu_);
  finished_[task] = true;
  for (auto [node, subtask] : source_subtasks) source_ended_[node][subtask] = true;
  for (auto& part : final_parts) final_parts_.push_back(part);
  if (pending_ && pending_->waiting[task]) {
    for (auto& part : final_parts) pending_->parts.push_back(std::move(part));
    pending_->waiting[task] = false;
    if (--pending_->waiting_count == 0) {
      pending_->complete = true;
      cv_.SignalAll();
    }
  }
}

void CheckpointCoordinator::TaskFailed(int task) {
  MutexLock lock(&mu_);
  finished_[task] = true;
  if (task_failed_) return;
  task_failed_ = true;
  if (pending_ && !pending_->complete) {
    ++failed_;
    spdlog::info("{} {} aborted: a task failed or was cancelled",
                 pending_->savepoint ? "savepoint" : "checkpoint", pending_->id);
    if (pending_->savepoint != nullptr) {
      pending_->savepoint->result =
          Status::RuntimeError("the job failed or was stopped before the savepoint completed");
      pending_->savepoint->done = true;
    }
    pending_.reset();
  }
  for (SavepointRequest* r : savepoints_) {
    r->result =
        Status::RuntimeError("the job failed or was stopped before the savepoint was taken");
    r->done = true;
  }
  savepoints_.clear();
  cv_.SignalAll();
}

Result<std::string> CheckpointCoordinator::Savepoint(const std::string& parent_dir) {
  SavepointRequest req;
  req.parent_dir = parent_dir;
  MutexLock lock(&mu_);
  if (stop_ || task_failed_) return Status::RuntimeError("the job is not running");
  savepoints_.push_back(&req);
  cv_.SignalAll();
  while (!req.done) cv_.Wait(&mu_);
  return std::move(req.result);
}

std::optional<CheckpointCoordinator::Completed> CheckpointCoordinator::last_completed() const {
  MutexLock lock(&mu_);
  return last_;
}
uint64_t CheckpointCoordinator::completed_count() const {
  MutexLock lock(&mu_);
  return completed_;
}
uint64_t CheckpointCoordinator::failed_count() const {
  MutexLock lock(&mu_);
  return failed_;
}

PauseStats CheckpointCoordinator::pause_stats() const {
  PauseStats s;
  std::vector<int64_t> v;
  {
    MutexLock lock(&mu_);
    s.count = pause_count_;
    s.last_max_ns = last_max_pause_;
    v = pauses_;
  }
  if (v.empty()) return s;
  std::sort(v.begin(), v.end());
  auto at = [&](double q) {
    return v[static_cast<size_t>(q * static_cast<double>(v.size() - 1) + 0.5)];
  };
  s.p50_ns = at(0.50);
  s.p99_ns = at(0.99);
  s.max_ns = v.back();
  return s;
}

void CheckpointCoordinator::Loop() {
  using Clock = std::chrono::steady_clock;
  const bool periodic = options_.interval_ms > 0;
  const auto interval = std::chrono::milliseconds(std::max<int64_t>(options_.interval_ms, 1));
  auto next_trigger = Clock::now() + interval;
  MutexLock lock(&mu_);
  while (!stop_) {
    if (pending_ && pending_->prepared < pending_->parts.size()) {
      // As soon as a task acked: its operators' deferred state may spare them work now
      // (a window's copy-on-write copies), while other tasks still go to their barriers.
      std::vector<std::shared_ptr<DeferredState>> todo;
      for (; pending_->prepared < pending_->parts.size(); ++pending_->prepared) {
        const auto& d = pending_->parts[pending_->prepared].snapshot.deferred_state;
        if (d) todo.push_back(d);
      }
      lock.Unlock();
      for (const auto& d : todo) d->Prepare();
      lock.Lock();
      continue;
    }
    if (pending_ && pending_->complete) {
      std::unique_ptr<Pending> p = std::move(pending_);
      lock.Unlock();
      // Writing runs beside the job: the tasks went on after their acks.
      auto start = p->started;
      std::string path;
      uint64_t bytes = 0;
      Status st = Write(*p, &path, &bytes);
      if (st.ok()) {
        for (Operator* op : committers_) {
          Status c = op->NotifyCheckpointComplete(static_cast<int64_t>(p->id));
          if (!c.ok()) {
            // The output stays staged; recovery commits it (docs/state-format.md).
            spdlog::error("checkpoint {}: commit failed: {}", p->id, c.message());
          }
        }
      }
      auto took = std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - start);
      lock.Lock();
      last_max_pause_ = p->max_pause_ns;
      if (st.ok()) {
        ++completed_;
        completed_id_.store(p->id, std::memory_order_relaxed);
        last_ = Completed{static_cast<int64_t>(p->id), path, NowMillis(), took.count(), bytes};
        spdlog::debug("{} {} complete in {} ms ({} bytes of state; longest task pause {} us): {}",
                      p->savepoint ? "savepoint" : "checkpoint", p->id, took.count(), bytes,
                      p->max_pause_ns / 1000, path);
      } else {
        ++failed_;
        spdlog::warn("{} {} failed, the job goes on: {}", p->savepoint ? "savepoint" : "checkpoint",
                     p->id, st.message());
      }
      if (p->savepoint != nullptr) {
        p->savepoint->result = st.ok() ? Result<std::string>(path) : Result<std::string>(st);
        p->savepoint->done = true;
        cv_.SignalAll();
      }
      continue;
    }
    if (pending_ &&
        Clock::now() - pending_->started > std::chrono::milliseconds(options_.timeout_ms)) {
      ++failed_;
      spdlog::warn("{} {} timed out after {} ms and was aborted; the job goes on",
                   pending_->savepoint ? "savepoint" : "checkpoint", pending_->id,
                   options_.timeout_ms);
      if (pending_->savepoint != nullptr) {
        pending_->savepoint->result = Status::RuntimeError("the savepoint timed out");
        pending_->savepoint->done = true;
        cv_.SignalAll();
      }
      pending_.reset();
      continue;
    }
    if (task_failed_) {
      cv_.Wait(&mu_);  // the job is going down: no more checkpoints
      continue;
    }
    if (!pending_ && !savepoints_.empty()) {
      auto p = std::make_unique<Pending>();
      p->savepoint = savepoints_.front();
      savepoints_.pop_front();
      TriggerLocked(std::move(p));
      continue;
    }
    if (!pending_ && periodic && Clock::now() >= next_trigger) {
      TriggerLocked(std::make_unique<Pending>());
      next_trigger = Clock::now() + interval;
      continue;
    }
    auto wake = pending_ ? Clock::now() + std::chrono::milliseconds(50)
                         : (periodic ? next_trigger : Clock::now() + std::chrono::seconds(1));
    cv_.WaitUntil(&mu_, wake);
  }
}

std::string CheckpointCoordinator::MetadataJson(const Pending& p) const {
  // Task threads may mark sources ended meanwhile (TaskFinished): copy the flags under mu_.
  std::vector<std::vector<bool>> source_ended;
  {
    MutexLock lock(&mu_);
    source_ended = source_ended_;
  }
  rapidjson::StringBuffer sb;
  rapidjson::Writer<rapidjson::StringBuffer> w(sb);
  w.StartObject();
  w.Key("job");
  w.String(options_.job_name.c_str());
  w.Key("max_parallelism");
  w.Int(options_.max_parallelism);
  w.Key("nodes");
  w.StartObject();
  for (size_t n = 0; n < nodes_.size(); ++n) {
    const CheckpointNode& node = nodes_[n];
    w.Key(node.name.c_str());
    w.StartObject();
    w.Key("role");
    w.String(NodeRoleName(node.role));
    w.Key("type");
    w.String(node.type.c_str());
    w.Key("parallelism");
    w.Int(node.parallelism);
    if (!node.fingerprint.empty()) {
      w.Key("fingerprint");
      w.String(node.fingerprint.c_str());
    }
    if (!node.schema_json.empty()) {
      w.Key("schema");
      w.RawValue(node.schema_json.data(), node.schema_json.size(), rapidjson::kObjectType);
    }
    w.Key("subtasks");
    w.StartArray();
    for (int s = 0; s < node.parallelism; ++s) {
      const SnapshotPart* part = nullptr;
      for (const auto& sp : p.parts) {
        if (sp.node == static_cast<int>(n) && sp.subtask == s) part = &sp;
      }
      w.StartObject();
      if (node.role == NodeRole::kSource) {
        w.Key("position");
        if (part != nullptr && !part->position.empty()) {
          w.RawValue(part->position.data(), part->position.size(), rapidjson::kObjectType);
        } else if (source_ended[n][s]) {
          w.String("end");
        } else {
          w.Null();
        }
      }
      if (part != nullptr && part->snapshot.has_state()) {
        w.Key("state");
        std::string file = node.name + "/" + std::to_string(s) + ".state";
        w.String(file.c_str());
      }
      if (part != nullptr && !part->snapshot.meta.empty()) {
        w.Key("meta");
        w.RawValue(part->snapshot.meta.data(), part->snapshot.meta.size(), rapidjson::kObjectType);
      }
      w.EndObject();
    }
    w.EndArray();
    w.EndObject();
  }
  w.EndObject();
  w.EndObject();
  return sb.GetString();
}

Status CheckpointCoordinator::Write(Pending& p, std::string* path, uint64_t* bytes) {
  const bool savepoint = p.savepoint != nullptr;
  std::unique_ptr<CheckpointWriter> writer;
  if (savepoint) {
    SR_ASSIGN_OR_RETURN(writer, CheckpointWriter::BeginSavepoint(p.savepoint->parent_dir,
                                                                 static_cast<int64_t>(p.id)));
  } else {
    SR_ASSIGN_OR_RETURN(
        writer, CheckpointWriter::BeginCheckpoint(options_.state_dir, static_cast<int64_t>(p.id)));
  }
  for (const auto& part : p.parts) {
    if (!part.snapshot.has_state()) continue;
    std::string file = nodes_[part.node].name + "/" + std::to_string(part.subtask) + ".state";
    Status st = [&]() -> Status {
      SR_ASSIGN_OR_RETURN(auto out, writer->CreateFile(file));
      if (part.snapshot.deferred_state) {
        // Encoded here, beside the job: the operator only captured a view at its barrier.
        SR_RETURN_IF_ERROR(part.snapshot.deferred_state->WriteTo([&](std::string_view piece) {
          *bytes += piece.size();
          return out->Append(piece);
        }));
      } else {
        *bytes += part.snapshot.state.size();
        SR_RETURN_IF_ERROR(out->Append(part.snapshot.state));
      }
      return out->Close();
    }();
    if (!st.ok()) {
      writer->Abort();
      return st;
    }
  }
  // Staged sink output the checkpoint covers must be on disk before the manifest says so.
  for (const auto& part : p.parts) {
    for (const std::string& sync : part.snapshot.sync_paths) {
      int fd = ::open(sync.c_str(), O_RDONLY | O_CLOEXEC);
      // A sink whose input ended meanwhile has committed its staged files into its output,
      // synced it and removed them (LineSink::Finish): that output is on disk already.
      if (fd < 0 && errno == ENOENT) continue;
      if (fd < 0 || ::fsync(fd) != 0) {
        Status st = ErrnoStatus("cannot sync '" + sync + "'", errno);
        if (fd >= 0) ::close(fd);
        writer->Abort();
        return st;
      }
      ::close(fd);
    }
  }
  SR_ASSIGN_OR_RETURN(*path, writer->Finish(MetadataJson(p)));
  if (!savepoint) {
    Status st = RetainCheckpoints(options_.state_dir, options_.retain);
    if (!st.ok()) spdlog::warn("checkpoint retention: {}", st.message());
  }
  return Status::Ok();
}

}  // namespace streamrun
