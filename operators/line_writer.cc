// The buffered writer behind the stdout and file sinks.
#include <fcntl.h>
#include <rapidjson/document.h>
#include <spdlog/spdlog.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <limits>
#include <memory>
#include <thread>
#include <vector>

#include "engine/failpoint.h"
#include "engine/mutex.h"
#include "operators/factories.h"
#include "operators/sinks.h"
#include "operators/staged_file.h"

namespace streamrun {
namespace {

constexpr size_t kWriteBuffer = 1 << 20;
// A file written straight (not staged) starts going to disk every this many bytes
// (sync_file_range), so that the fsync at Finish waits only for the last of them: writing back
// a 147 MB output all at the end took ~46 ms after the last record, on the job's critical path.
constexpr uint64_t kWritebackEvery = 8 << 20;

// Writes rows' bytes to a descriptor. `flush_each_batch` for stdout (a reader sees each batch
// promptly); files flush when the buffer fills and at Finish.
//
// A file sink of a job that takes checkpoints is exactly-once (sinks.h): rows go to a staging
// file, STATE_DIR/sinks/<sink>/current.staged; at a barrier it becomes chk-<id>.staged; when
// checkpoint <id> completes its bytes are appended to the output file. Meta in the checkpoint
// (docs/state-format.md "File sinks"): {"committed": output length once every checkpoint up to
// this one is committed, "pending": [{"id", "start", "bytes"}: staged, not yet known committed]}.
class LineSink : public Operator {
 public:
  LineSink(std::string path, bool is_stdout, int fd = -1)
      : path_(std::move(path)),
        stdout_(is_stdout),
        fd_(fd),
        own_fd_(fd < 0 && !is_stdout),
        buf_(std::make_unique<char[]>(kWriteBuffer)) {}
  ~LineSink() override {
    static_cast<void>(AwaitTruncate());
    if (own_fd_ && fd_ >= 0) ::close(fd_);
  }

  Status Open(const OperatorContext& ctx) override {
    name_ = ctx.name;
    if (stdout_) {
      fd_ = STDOUT_FILENO;
      return Status::Ok();
    }
    if (fd_ >= 0) return Status::Ok();
    std::error_code ec;
    auto parent = std::filesystem::path(path_).parent_path();
    if (!parent.empty()) std::filesystem::create_directories(parent, ec);
    if (ec) return Status::IoError("cannot create the folder of '" + path_ + "': " + ec.message());
    const bool restoring = ctx.restore != nullptr && !ctx.restore->meta.empty();
    staging_ = ctx.checkpointing || restoring;
    // A fresh start's output starts empty. Written straight to (no checkpoints), an old output
    // is cut on a helper thread that the first write waits for: ext4 frees a large file's blocks
    // slowly (a 147 MB output: 33-37 ms), and the first results come later than that.
    const bool cut_later = !restoring && !staging_;
    fd_ = ::open(path_.c_str(),
                 O_WRONLY | O_CREAT | (restoring || cut_later ? 0 : O_TRUNC) | O_CLOEXEC, 0644);
    if (fd_ < 0) return Status::IoError("cannot open '" + path_ + "': " + std::strerror(errno));
    if (cut_later) {
      struct stat st;
      if (::fstat(fd_, &st) == 0 && S_ISREG(st.st_mode) && st.st_size > 0) {
        truncator_ = std::thread([this] {
          if (::ftruncate(fd_, 0) != 0) truncate_errno_ = errno;
        });
      }
    }
    if (!staging_) return Status::Ok();
    SR_ASSIGN_OR_RETURN(staging_dir_, StagedFile::MakeDir(ctx.state_dir, ctx.name));
    if (restoring) SR_RETURN_IF_ERROR(Recover(ctx.restore->meta, ctx.restore->savepoint));
    // Staged files of a previous run are either committed now or beyond the checkpoint.
    StagedFile::ClearDir(staging_dir_);
    staging_ = ctx.checkpointing;
    if (!staging_) return Status::Ok();
    return staged_.Open(staging_dir_);
  }

  Status Process(BatchPtr batch) override {
    // Per record: one memcpy into the buffer; the buffer goes out in large write(2)s.
    char* const buf = buf_.get();
    for (const Row& row : batch->rows) {
      const size_t n = row.raw.size();
      if (used_ + n + 1 > kWriteBuffer) {
        SR_RETURN_IF_ERROR(Flush());
        if (n + 1 > kWriteBuffer) {  // larger than the buffer: straight out
          SR_RETURN_IF_ERROR(Write(row.raw.data(), n));
          buf[used_++] = '\n';
          continue;
        }
      }
      std::memcpy(buf + used_, row.raw.data(), n);
      buf[used_ + n] = '\n';
      used_ += n + 1;
    }
    records_ += batch->rows.size();
    if (stdout_) return Flush();
    return Status::Ok();
  }

  Status Snapshot(int64_t checkpoint_id, OperatorSnapshot* out) override {
    if (stdout_) return Flush();  // at least once: what was written stays
    if (!finished_) SR_RETURN_IF_ERROR(Flush());
    MutexLock lock(&mu_);
    if (!staging_ || finished_) {
      // Written straight to the file (savepoints without periodic checkpoints, or finished).
      out->meta = "{\"committed\":" + std::to_string(finished_ ? final_length_ : direct_length_) +
                  ",\"pending\":[]}";
      return Status::Ok();
    }
    if (staged_.bytes() > 0) {
      const uint64_t bytes = staged_.bytes();
      SR_ASSIGN_OR_RETURN(std::string name, staged_.Seal(checkpoint_id, out));
      pending_.push_back({checkpoint_id, next_start_, bytes, std::move(name)});
      next_start_ += bytes;
    }
    out->meta = "{\"committed\":" + std::to_string(next_start_) + ",\"pending\":[";
    for (size_t i = 0; i < pending_.size(); ++i) {
      const Pending& p = pending_[i];
      out->meta += (i ? "," : "") + std::string("{\"id\":") + std::to_string(p.id) +
                   ",\"start\":" + std::to_string(p.start) +
                   ",\"bytes\":" + std::to_string(p.bytes) + "}";
    }
    out->meta += "]}";
    return Status::Ok();
  }

  bool commits() const override { return staging_; }

  Status NotifyCheckpointComplete(int64_t checkpoint_id) override {
    SR_FAILPOINT("sink.before_commit");  // the checkpoint is complete, its output not committed
    MutexLock lock(&mu_);
    return CommitUpTo(checkpoint_id);
  }

  Status Finish() override {
    SR_RETURN_IF_ERROR(Flush());
    if (!stdout_ && own_fd_ && fd_ >= 0) {
      MutexLock lock(&mu_);
      if (staging_) {
        // The end of the input: everything is committed before the job ends.
        SR_RETURN_IF_ERROR(CommitUpTo(std::numeric_limits<int64_t>::max()));
        if (staged_.bytes() > 0) {
          SR_RETURN_IF_ERROR(AppendFile(staged_.fd(), 0, staged_.bytes(), next_start_));
          next_start_ += staged_.bytes();
        }
        staged_.Remove();
        final_length_ = next_start_;
      } else {
        final_length_ = direct_length_;
      }
      // Character devices and pipes (/dev/null, a FIFO) cannot be synced: EINVAL says so.
      if (::fsync(fd_) != 0 && errno != EINVAL && errno != EROFS) {
        return Status::IoError("cannot sync '" + path_ + "': " + std::strerror(errno));
      }
      int fd = fd_;
      fd_ = -1;
      finished_ = true;
      if (::close(fd) != 0)
        return Status::IoError("cannot close '" + path_ + "': " + std::strerror(errno));
    }
    return Status::Ok();
  }

  uint64_t records_out() const override { return records_; }

 private:
  struct Pending {
    int64_t id;
    uint64_t start;  // where its bytes go in the output file
    uint64_t bytes;
    std::string path;
  };

  // Appends [0, bytes) of `from` to the output file at `at` (cutting off anything after `at`
  // first, the remains of an interrupted commit), then syncs the output.
  Status AppendFile(int from, uint64_t offset, uint64_t bytes, uint64_t at) {
    if (::ftruncate(fd_, static_cast<off_t>(at)) != 0) {
      return Status::IoError("cannot cut '" + path_ + "' back to " + std::to_string(at) +
                             " bytes: " + std::strerror(errno));
    }
    loff_t in = static_cast<loff_t>(offset), out = static_cast<loff_t>(at);
    uint64_t left = bytes;
    while (left > 0) {
      ssize_t n = ::copy_file_range(from, &in, fd_, &out, std::min<uint64_t>(left, 1 << 20), 0);
      if (n < 0 && errno == EINTR) continue;
      if (n < 0 && (errno == EXDEV || errno == EINVAL || errno == ENOSYS || errno == EOPNOTSUPP)) {
        // Not supported between these files: copy through memory.
        std::string chunk(std::min<uint64_t>(left, 1 << 20), '\0');
        ssize_t r = ::pread(from, chunk.data(), chunk.size(), in);
        if (r <= 0) return Status::IoError("cannot read staged output of '" + path_ + "'");
        ssize_t w = ::pwrite(fd_, chunk.data(), static_cast<size_t>(r), out);
        if (w != r) return Status::IoError("cannot write '" + path_ + "': " + std::strerror(errno));
        in += r;
        out += r;
        left -= static_cast<uint64_t>(r);
        continue;
      }
      if (n <= 0) {
        return Status::IoError(
            "cannot commit staged output to '" + path_ +
            "': " + (n < 0 ? std::strerror(errno) : "the staged file is shorter than recorded"));
      }
      left -= static_cast<uint64_t>(n);
      SR_FAILPOINT("sink.commit");  // a crash in the middle of a commit
    }
    if (::fsync(fd_) != 0 && errno != EINVAL) {
      return Status::IoError("cannot sync '" + path_ + "': " + std::strerror(errno));
    }
    return Status::Ok();
  }

  Status CommitUpTo(int64_t checkpoint_id) EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    while (!pending_.empty() && pending_.front().id <= checkpoint_id) {
      const Pending& p = pending_.front();
      int from = ::open(p.path.c_str(), O_RDONLY | O_CLOEXEC);
      if (from < 0) return Status::IoError("cannot open '" + p.path + "': " + std::strerror(errno));
      Status st = AppendFile(from, 0, p.bytes, p.start);
      ::close(from);
      SR_RETURN_IF_ERROR(st);
      ::unlink(p.path.c_str());
      pending_.erase(pending_.begin());
    }
    return Status::Ok();
  }

  // Brings the output file to the state of the restored checkpoint: commits its staged output
  // that a crash kept from being committed, and cuts off what was written after it.
  Status Recover(const std::string& meta, bool savepoint) {
    rapidjson::Document doc;
    doc.Parse(meta.data(), meta.size());
    if (doc.HasParseError() || !doc.IsObject() || !doc.HasMember("committed") ||
        !doc["committed"].IsUint64()) {
      return Status::RuntimeError("sink '" + name_ + "': damaged state in the checkpoint");
    }
    const uint64_t committed = doc["committed"].GetUint64();
    struct stat st;
    if (::fstat(fd_, &st) != 0) return Status::IoError("cannot stat '" + path_ + "'");
    uint64_t size = static_cast<uint64_t>(st.st_size);
    if (doc.HasMember("pending") && doc["pending"].IsArray()) {
      for (auto& p : doc["pending"].GetArray()) {
        if (!p.IsObject() || !p.HasMember("id") || !p.HasMember("start") || !p.HasMember("bytes")) {
          return Status::RuntimeError("sink '" + name_ + "': damaged state in the checkpoint");
        }
        uint64_t start = p["start"].GetUint64(), bytes = p["bytes"].GetUint64();
        if (size >= start + bytes) continue;  // committed before the crash
        std::string staged = StagedFile::CheckpointPath(staging_dir_, p["id"].GetInt64());
        int from = ::open(staged.c_str(), O_RDONLY | O_CLOEXEC);
        if (from < 0 || size < start) {
          if (from >= 0) ::close(from);
          std::string what = "sink '" + name_ + "': the output of checkpoint " +
                             std::to_string(p["id"].GetInt64()) + " is neither in '" + path_ +
                             "' nor staged in " + staging_dir_;
          if (!savepoint) return Status::RuntimeError(what);
          spdlog::warn("{}; the output file goes on from its current end", what);
          size = std::max(size, start + bytes);
          continue;
        }
        spdlog::info("sink '{}': committing the staged output of checkpoint {} ({} bytes)", name_,
                     p["id"].GetInt64(), bytes);
        Status s = AppendFile(from, 0, bytes, start);
        ::close(from);
        SR_RETURN_IF_ERROR(s);
        size = start + bytes;
      }
    }
    if (size > committed) {
      spdlog::info("sink '{}': cutting '{}' back to its committed {} bytes", name_, path_,
                   committed);
      if (::ftruncate(fd_, static_cast<off_t>(committed)) != 0 || ::fsync(fd_) != 0) {
        return Status::IoError("cannot cut '" + path_ + "' back: " + std::strerror(errno));
      }
      size = committed;
    } else if (size < committed) {
      spdlog::warn("sink '{}': '{}' has {} bytes, fewer than the {} the checkpoint committed",
                   name_, path_, size, committed);
    }
    if (::lseek(fd_, static_cast<off_t>(size), SEEK_SET) < 0) {
      return Status::IoError("cannot seek '" + path_ + "': " + std::strerror(errno));
    }
    next_start_ = size;
    direct_length_ = size;
    written_back_ = size;
    return Status::Ok();
  }

  // Waits for the old output to be cut (Open); its error, if it failed.
  Status AwaitTruncate() {
    if (!truncator_.joinable()) return Status::Ok();
    truncator_.join();
    if (truncate_errno_ == 0) return Status::Ok();
    return Status::IoError("cannot empty '" + path_ + "': " + std::strerror(truncate_errno_));
  }

  Status Flush() {
    Status st = Write(buf_.get(), used_);
    used_ = 0;
    return st;
  }
  Status Write(const char* p, size_t n) {
    if (staging_) return staged_.Append(p, n);
    SR_RETURN_IF_ERROR(AwaitTruncate());
    const size_t total = n;
    while (n > 0) {
      ssize_t w = ::write(fd_, p, n);
      if (w < 0) {
        if (errno == EINTR) continue;
        return Status::IoError("cannot write '" + path_ + "': " + std::strerror(errno));
      }
      p += w;
      n -= static_cast<size_t>(w);
    }
    direct_length_ += total;
    if (!stdout_ && direct_length_ - written_back_ >= kWritebackEvery) {
      // Starts the writeback, waits for nothing. Advice only: a descriptor that cannot do it
      // (a pipe, a character device) is synced at Finish as before, or not at all.
      ::sync_file_range(fd_, static_cast<off_t>(written_back_),
                        static_cast<off_t>(direct_length_ - written_back_), SYNC_FILE_RANGE_WRITE);
      written_back_ = direct_length_;
    }
    return Status::Ok();
  }

  std::string path_;
  std::string name_;
  bool stdout_;
  // Not GUARDED_BY(mu_), though shared with the commits: after Open only Finish writes it, under
  // mu_, on the sink's thread, which reads it without mu_ (Write, the hot path); the commits
  // (CommitUpTo on the checkpoint thread) read it under mu_.
  int fd_;
  bool own_fd_;
  std::unique_ptr<char[]> buf_;  // [0, used_): bytes not yet written
  size_t used_ = 0;
  uint64_t records_ = 0;
  uint64_t direct_length_ = 0;  // bytes written straight to the output file
  uint64_t written_back_ = 0;   // direct bytes below this were handed to sync_file_range
  // Cuts an old output to empty (Open) until the first write joins it; its errno if it failed,
  // read after the join.
  std::thread truncator_;
  int truncate_errno_ = 0;

  // Staging (checkpointing jobs). Written on the sink's thread; pending_ and fd_ are shared with
  // the checkpoint thread's commits (NotifyCheckpointComplete). staging_, staging_dir_, staged_
  // and next_start_ are the sink thread's alone (Snapshot and Finish use them under mu_, Write
  // and Open without), so not GUARDED_BY.
  bool staging_ = false;
  std::string staging_dir_;
  StagedFile staged_;        // current.staged
  uint64_t next_start_ = 0;  // output length once everything staged before is committed
  Mutex mu_;
  std::vector<Pending> pending_ GUARDED_BY(mu_);
  // Written under mu_ (Finish) and read under it, except in Snapshot by the sink's thread, its
  // only writer, before it takes mu_: so not GUARDED_BY.
  bool finished_ = false;
  uint64_t final_length_ GUARDED_BY(mu_) = 0;
};

class LineSinkConfig : public NodeConfig {
 public:
  LineSinkConfig(std::string path, bool is_stdout) : path_(std::move(path)), stdout_(is_stdout) {}
  std::vector<FieldPath> InputFields(const std::vector<FieldPath>& /*out*/) const override {
    return {};
  }
  int max_subtasks() const override { return 1; }
  bool has_main_output() const override { return false; }
  Result<std::unique_ptr<Operator>> CreateOperator() const override {
    return std::unique_ptr<Operator>(std::make_unique<LineSink>(path_, stdout_));
  }
  std::string Describe() const override { return stdout_ ? "stdout" : path_; }

 private:
  std::string path_;
  bool stdout_;
};

}  // namespace

std::shared_ptr<const NodeConfig> NewFileSinkConfig(std::string path) {
  return std::make_shared<LineSinkConfig>(std::move(path), false);
}
std::shared_ptr<const NodeConfig> NewStdoutSinkConfig() {
  return std::make_shared<LineSinkConfig>("standard output", true);
}
std::unique_ptr<Operator> NewFdSink(int fd, std::string name) {
  return std::make_unique<LineSink>(std::move(name), false, fd);
}

NodeConfigResult MakeStdoutSink(const ConfigReader& config) {
  SR_RETURN_IF_ERROR(config.CheckKeys({"type", "from"}));
  return NewStdoutSinkConfig();
}

NodeConfigResult MakeFileSink(const ConfigReader& config) {
  SR_RETURN_IF_ERROR(config.CheckKeys({"type", "from", "path"}));
  SR_ASSIGN_OR_RETURN(std::string path, config.Path("path"));
  return NewFileSinkConfig(std::move(path));
}

}  // namespace streamrun
