// Staging files of the exactly-once sinks (see staged_file.h).
#include "operators/staged_file.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>

namespace streamrun {

Result<std::string> StagedFile::MakeDir(const std::string& state_dir, const std::string& sink) {
  std::string dir = state_dir + "/sinks/" + sink;
  std::error_code ec;
  std::filesystem::create_directories(dir, ec);
  if (ec) return Status::IoError("cannot create '" + dir + "': " + ec.message());
  return dir;
}

void StagedFile::ClearDir(const std::string& dir) {
  std::error_code ec;
  for (const auto& entry : std::filesystem::directory_iterator(dir, ec)) {
    std::filesystem::remove(entry.path(), ec);
  }
}

std::string StagedFile::CheckpointPath(const std::string& dir, int64_t checkpoint_id) {
  return dir + "/chk-" + std::to_string(checkpoint_id) + ".staged";
}

Status StagedFile::Open(const std::string& dir) {
  Close();
  dir_ = dir;
  const std::string name = current_path();
  fd_ = ::open(name.c_str(), O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd_ < 0) return Status::IoError("cannot open '" + name + "': " + std::strerror(errno));
  bytes_ = 0;
  return Status::Ok();
}

Status StagedFile::Append(const char* p, size_t n) {
  const size_t total = n;
  while (n > 0) {
    ssize_t w = ::write(fd_, p, n);
    if (w < 0) {
      if (errno == EINTR) continue;
      return Status::IoError("cannot write '" + current_path() + "': " + std::strerror(errno));
    }
    p += w;
    n -= static_cast<size_t>(w);
  }
  bytes_ += total;
  return Status::Ok();
}

Result<std::string> StagedFile::Seal(int64_t checkpoint_id, OperatorSnapshot* out) {
  std::string name = CheckpointPath(dir_, checkpoint_id);
  if (::rename(current_path().c_str(), name.c_str()) != 0) {
    return Status::IoError("cannot rename staged output to '" + name +
                           "': " + std::strerror(errno));
  }
  out->sync_paths.push_back(name);
  out->sync_paths.push_back(dir_);
  SR_RETURN_IF_ERROR(Open(dir_));
  return name;
}

void StagedFile::Close() {
  if (fd_ >= 0) ::close(fd_);
  fd_ = -1;
}

void StagedFile::Remove() {
  Close();
  if (!dir_.empty()) ::unlink(current_path().c_str());
}

}  // namespace streamrun
