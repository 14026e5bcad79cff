// The buffered writer behind the stdout and file sinks.
#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <memory>

#include "operators/factories.h"
#include "operators/sinks.h"

namespace streamrun {
namespace {

constexpr size_t kWriteBuffer = 1 << 20;

// Writes rows' bytes to a descriptor. `flush_each_batch` for stdout (a reader sees each batch
// promptly); files flush when the buffer fills and at Finish.
class LineSink : public Operator {
 public:
  LineSink(std::string path, bool is_stdout, int fd = -1)
      : path_(std::move(path)),
        stdout_(is_stdout),
        fd_(fd),
        own_fd_(fd < 0 && !is_stdout),
        buf_(std::make_unique<char[]>(kWriteBuffer)) {}
  ~LineSink() override {
    if (own_fd_ && fd_ >= 0) ::close(fd_);
  }

  Status Open(const OperatorContext& /*ctx*/) override {
    if (stdout_) {
      fd_ = STDOUT_FILENO;
      return Status::Ok();
    }
    if (fd_ >= 0) return Status::Ok();
    std::error_code ec;
    auto parent = std::filesystem::path(path_).parent_path();
    if (!parent.empty()) std::filesystem::create_directories(parent, ec);
    if (ec) return Status::IoError("cannot create the folder of '" + path_ + "': " + ec.message());
    fd_ = ::open(path_.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd_ < 0) return Status::IoError("cannot open '" + path_ + "': " + std::strerror(errno));
    return Status::Ok();
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

  Status Finish() override {
    SR_RETURN_IF_ERROR(Flush());
    if (!stdout_ && own_fd_ && fd_ >= 0) {
      // Character devices and pipes (/dev/null, a FIFO) cannot be synced: EINVAL says so.
      if (::fsync(fd_) != 0 && errno != EINVAL && errno != EROFS) {
        return Status::IoError("cannot sync '" + path_ + "': " + std::strerror(errno));
      }
      int fd = fd_;
      fd_ = -1;
      if (::close(fd) != 0) return Status::IoError("cannot close '" + path_ + "': " + std::strerror(errno));
    }
    return Status::Ok();
  }

  uint64_t records_out() const override { return records_; }

 private:
  Status Flush() {
    Status st = Write(buf_.get(), used_);
    used_ = 0;
    return st;
  }
  Status Write(const char* p, size_t n) {
    while (n > 0) {
      ssize_t w = ::write(fd_, p, n);
      if (w < 0) {
        if (errno == EINTR) continue;
        return Status::IoError("cannot write '" + path_ + "': " + std::strerror(errno));
      }
      p += w;
      n -= static_cast<size_t>(w);
    }
    return Status::Ok();
  }

  std::string path_;
  bool stdout_;
  int fd_;
  bool own_fd_;
  std::unique_ptr<char[]> buf_;  // [0, used_): bytes not yet written
  size_t used_ = 0;
  uint64_t records_ = 0;
};

class LineSinkConfig : public NodeConfig {
 public:
  LineSinkConfig(std::string path, bool is_stdout) : path_(std::move(path)), stdout_(is_stdout) {}
  std::vector<FieldPath> InputFields(const std::vector<FieldPath>& /*out*/) const override { return {}; }
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
