// Writing checkpoint and savepoint directories (see engine/checkpoint_writer.h).
#include "engine/checkpoint_writer.h"

#include <fcntl.h>
#include <spdlog/spdlog.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>
#include <xxhash.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <system_error>

#include "engine/failpoint.h"

namespace streamrun {
namespace {

std::string HashHex(XXH128_hash_t hash) {
  XXH128_canonical_t canonical;
  XXH128_canonicalFromHash(&canonical, hash);
  static constexpr char kDigits[] = "0123456789abcdef";
  std::string hex;
  for (unsigned char byte : canonical.digest) {
    hex.push_back(kDigits[byte >> 4]);
    hex.push_back(kDigits[byte & 0xF]);
  }
  return hex;
}

// Writes all of `data` to `fd`, retrying short writes and EINTR. Returns 0 or an errno.
int WriteAll(int fd, std::string_view data) {
  while (!data.empty()) {
    ssize_t n = ::write(fd, data.data(), data.size());
    if (n < 0) {
      if (errno == EINTR) continue;
      return errno;
    }
    data.remove_prefix(static_cast<size_t>(n));
  }
  return 0;
}

// The errno a failpoint on a write stands for, or 0.
int InjectedWriteError(const std::string& name) {
  switch (CheckFailpoint(name)) {
    case FailpointAction::kNone:
      return 0;
    case FailpointAction::kEnospc:
      return ENOSPC;
    case FailpointAction::kError:
      break;
  }
  return EIO;
}

void RemoveTree(const std::string& path) {
  std::error_code ec;
  std::filesystem::remove_all(path, ec);
}

}  // namespace

Status ErrnoStatus(const std::string& what, int err) {
  std::string msg = what + ": " + std::strerror(err);
  if (err == ENOSPC || err == EDQUOT) msg += " (the disk is full; free space and retry)";
  return Status::IoError(std::move(msg));
}

Status FsyncDir(const std::string& path) {
  int fd = ::open(path.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) return ErrnoStatus("opening directory " + path, errno);
  int rc = ::fsync(fd);
  int err = errno;
  ::close(fd);
  if (rc != 0) return ErrnoStatus("fsync of directory " + path, err);
  return Status::Ok();
}

Status HashFile(const std::string& path, std::string* xxh3_128, uint64_t* size) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return ErrnoStatus(path, errno);
  XXH3_state_t* state = XXH3_createState();
  if (state == nullptr) {
    ::close(fd);
    return Status::RuntimeError("out of memory for a checksum");
  }
  XXH3_128bits_reset(state);
  std::string buffer(1 << 20, '\0');
  uint64_t total = 0;
  Status status;
  for (;;) {
    ssize_t n = ::read(fd, buffer.data(), buffer.size());
    if (n < 0) {
      if (errno == EINTR) continue;
      status = ErrnoStatus("reading " + path, errno);
      break;
    }
    if (n == 0) break;
    XXH3_128bits_update(state, buffer.data(), static_cast<size_t>(n));
    total += static_cast<uint64_t>(n);
  }
  if (status.ok()) {
    *xxh3_128 = HashHex(XXH3_128bits_digest(state));
    *size = total;
  }
  XXH3_freeState(state);
  ::close(fd);
  return status;
}

// --- CheckpointFile ---

CheckpointFile::CheckpointFile(CheckpointWriter* writer, std::string relative_path,
                               std::string full_path, int fd)
    : writer_(writer),
      relative_path_(std::move(relative_path)),
      full_path_(std::move(full_path)),
      fd_(fd),
      hash_(XXH3_createState()) {
  if (hash_ != nullptr) XXH3_128bits_reset(hash_);
}

CheckpointFile::~CheckpointFile() {
  if (fd_ >= 0) {
    ::close(fd_);
    writer_->FileAbandoned();
  }
  if (hash_ != nullptr) XXH3_freeState(hash_);
}

Status CheckpointFile::Append(std::string_view data) {
  if (fd_ < 0) return Status::RuntimeError(full_path_ + ": written after Close()");
  if (hash_ == nullptr) return Status::RuntimeError("out of memory for a checksum");
  int err = InjectedWriteError(writer_->FailpointName("write"));
  if (err == 0) err = WriteAll(fd_, data);
  if (err != 0) return ErrnoStatus("writing " + full_path_, err);
  XXH3_128bits_update(hash_, data.data(), data.size());
  size_ += data.size();
  return Status::Ok();
}

Status CheckpointFile::Close() {
  if (fd_ < 0) return Status::RuntimeError(full_path_ + ": closed twice");
  if (hash_ == nullptr) return Status::RuntimeError("out of memory for a checksum");
  int fd = fd_;
  fd_ = -1;
  if (Status st = Failpoint(writer_->FailpointName("before_fsync")); !st.ok()) {
    ::close(fd);
    writer_->FileAbandoned();
    return st;
  }
  if (::fsync(fd) != 0) {
    int err = errno;
    ::close(fd);
    writer_->FileAbandoned();
    return ErrnoStatus("fsync of " + full_path_, err);
  }
  if (::close(fd) != 0) {  // NFS and some file systems report deferred write errors here
    writer_->FileAbandoned();
    return ErrnoStatus("closing " + full_path_, errno);
  }
  writer_->FileClosed(ManifestFile{relative_path_, size_, HashHex(XXH3_128bits_digest(hash_))});
  return Failpoint(writer_->FailpointName("after_file"));
}

// --- CheckpointWriter ---

CheckpointWriter::CheckpointWriter(SnapshotKind kind, int64_t id, std::string final_path)
    : kind_(kind),
      id_(id),
      created_at_ms_(NowMillis()),
      final_path_(std::move(final_path)),
      tmp_path_(final_path_ + ".tmp") {}

CheckpointWriter::~CheckpointWriter() { Abort(); }

std::string CheckpointWriter::FailpointName(std::string_view phase) const {
  return std::string(KindName(kind_)) + "." + std::string(phase);
}

Status CheckpointWriter::Start() {
  std::error_code ec;
  std::filesystem::path parent = std::filesystem::path(final_path_).parent_path();
  std::filesystem::create_directories(parent, ec);
  if (ec) return Status::IoError("creating " + parent.string() + ": " + ec.message());
  if (std::filesystem::exists(final_path_, ec)) {
    done_ = true;  // not ours: never remove it
    return Status::IoError(final_path_ + " already exists");
  }
  RemoveTree(tmp_path_);  // a leftover of a crash while writing the same id
  if (::mkdir(tmp_path_.c_str(), 0755) != 0) return ErrnoStatus("creating " + tmp_path_, errno);
  // Locked while being written: RemoveAbandonedSavepoints leaves it alone.
  tmp_lock_fd_ = ::open(tmp_path_.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (tmp_lock_fd_ < 0) return ErrnoStatus("opening " + tmp_path_, errno);
  if (::flock(tmp_lock_fd_, LOCK_EX | LOCK_NB) != 0) {
    return ErrnoStatus("locking " + tmp_path_, errno);
  }
  return Status::Ok();
}

void CheckpointWriter::Unlock() {
  if (tmp_lock_fd_ >= 0) ::close(tmp_lock_fd_);
  tmp_lock_fd_ = -1;
}

Result<std::unique_ptr<CheckpointWriter>> CheckpointWriter::BeginCheckpoint(
    const std::string& state_dir, int64_t id) {
  if (id < 0) return Status::RuntimeError("checkpoint id must not be negative");
  std::unique_ptr<CheckpointWriter> writer(new CheckpointWriter(
      SnapshotKind::kCheckpoint, id, state_dir + "/checkpoints/chk-" + std::to_string(id)));
  SR_RETURN_IF_ERROR(writer->Start());
  return writer;
}

Result<std::unique_ptr<CheckpointWriter>> CheckpointWriter::BeginSavepoint(
    const std::string& parent_dir, int64_t id) {
  SR_RETURN_IF_ERROR(RemoveAbandonedSavepoints(parent_dir).status());
  std::string base = parent_dir + "/sp-" + FormatUtcMillisCompact(NowMillis());
  std::string path = base;
  std::error_code ec;
  for (int n = 2; std::filesystem::exists(path, ec) || std::filesystem::exists(path + ".tmp", ec);
       ++n) {
    path = base + "-" + std::to_string(n);
  }
  std::unique_ptr<CheckpointWriter> writer(
      new CheckpointWriter(SnapshotKind::kSavepoint, id, std::move(path)));
  SR_RETURN_IF_ERROR(writer->Start());
  return writer;
}

Result<std::unique_ptr<CheckpointFile>> CheckpointWriter::CreateFile(
    std::string_view relative_path) {
  if (done_) return Status::RuntimeError(tmp_path_ + ": the writer is finished");
  std::string rel(relative_path);
  if (!IsSafeRelativePath(rel) || rel == kManifestName) {
    return Status::RuntimeError("checkpoint file path \"" + rel + "\" is not allowed");
  }
  MutexLock lock(&mu_);
  if (!paths_.insert(rel).second) {
    return Status::RuntimeError("checkpoint file " + rel + " was added twice");
  }
  for (size_t slash = rel.find('/'); slash != std::string::npos; slash = rel.find('/', slash + 1)) {
    std::string dir = rel.substr(0, slash);
    if (dirs_.count(dir) != 0) continue;
    std::string full = tmp_path_ + "/" + dir;
    if (::mkdir(full.c_str(), 0755) != 0 && errno != EEXIST) {
      return ErrnoStatus("creating " + full, errno);
    }
    dirs_.insert(dir);
  }
  std::string full = tmp_path_ + "/" + rel;
  int fd = ::open(full.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
  if (fd < 0) return ErrnoStatus("creating " + full, errno);
  ++open_files_;
  return std::unique_ptr<CheckpointFile>(new CheckpointFile(this, rel, full, fd));
}

Status CheckpointWriter::AddFile(std::string_view relative_path, std::string_view contents) {
  SR_ASSIGN_OR_RETURN(auto file, CreateFile(relative_path));
  SR_RETURN_IF_ERROR(file->Append(contents));
  return file->Close();
}

void CheckpointWriter::FileClosed(ManifestFile file) {
  MutexLock lock(&mu_);
  --open_files_;
  files_.push_back(std::move(file));
}

void CheckpointWriter::FileAbandoned() {
  MutexLock lock(&mu_);
  --open_files_;
}

Result<std::string> CheckpointWriter::Finish(std::string_view metadata_json) {
  if (done_) return Status::RuntimeError(tmp_path_ + ": finished or aborted already");
  Status st = [&]() -> Status {
    MutexLock lock(&mu_);
    if (open_files_ != 0) {
      return Status::RuntimeError(tmp_path_ + ": " + std::to_string(open_files_) +
                                  " file(s) still open at Finish");
    }
    Manifest manifest;
    manifest.kind = kind_;
    manifest.id = id_;
    manifest.created_at_ms = created_at_ms_;
    manifest.files = files_;
    manifest.metadata_json = std::string(metadata_json.empty() ? "{}" : metadata_json);
    // Check the metadata through the parser, so a manifest we write is one we can read.
    std::string text = SerializeManifest(manifest);
    if (auto parsed = ParseManifest(text); !parsed.ok()) {
      return Status::RuntimeError("checkpoint metadata must be a JSON object: " +
                                  parsed.status().message());
    }

    SR_FAILPOINT(FailpointName("before_dir_fsync"));
    // Deepest first, so each directory's entry in its parent is durable before the parent is.
    for (auto it = dirs_.rbegin(); it != dirs_.rend(); ++it) {
      SR_RETURN_IF_ERROR(FsyncDir(tmp_path_ + "/" + *it));
    }
    SR_RETURN_IF_ERROR(FsyncDir(tmp_path_));

    SR_FAILPOINT(FailpointName("before_manifest"));
    std::string manifest_path = tmp_path_ + "/" + kManifestName;
    int fd = ::open(manifest_path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
    if (fd < 0) return ErrnoStatus("creating " + manifest_path, errno);
    int err = InjectedWriteError(FailpointName("write"));
    if (err == 0) err = WriteAll(fd, text);
    if (err == 0 && ::fsync(fd) != 0) err = errno;
    if (::close(fd) != 0 && err == 0) err = errno;
    if (err != 0) return ErrnoStatus("writing " + manifest_path, err);
    SR_RETURN_IF_ERROR(FsyncDir(tmp_path_));

    SR_FAILPOINT(FailpointName("after_manifest"));
    if (::rename(tmp_path_.c_str(), final_path_.c_str()) != 0) {
      return ErrnoStatus("renaming " + tmp_path_ + " to " + final_path_, errno);
    }
    return Status::Ok();
  }();
  if (!st.ok()) {
    Abort();
    return st;
  }
  done_ = true;
  Unlock();
  // From here the directory is complete; a failure to fsync the parent only risks losing this
  // newest checkpoint to a power cut, which recovery handles like any missing checkpoint.
  SR_RETURN_IF_ERROR(FsyncDir(std::filesystem::path(final_path_).parent_path().string()));
  SR_FAILPOINT(FailpointName("after_rename"));
  return final_path_;
}

void CheckpointWriter::Abort() {
  if (!done_) RemoveTree(tmp_path_);
  done_ = true;
  Unlock();
}

Result<std::vector<std::string>> RemoveAbandonedSavepoints(const std::string& parent_dir) {
  std::vector<std::string> removed;
  std::error_code ec;
  std::filesystem::directory_iterator it(parent_dir, ec);
  if (ec) {
    if (ec == std::errc::no_such_file_or_directory) return removed;
    return Status::IoError("listing " + parent_dir + ": " + ec.message());
  }
  for (; it != std::filesystem::directory_iterator(); it.increment(ec)) {
    if (ec) return Status::IoError("listing " + parent_dir + ": " + ec.message());
    const std::string name = it->path().filename().string();
    std::error_code dec;
    if (name.rfind("sp-", 0) != 0 || name.size() < 4 || name.substr(name.size() - 4) != ".tmp" ||
        !it->is_directory(dec)) {
      continue;
    }
    const std::string path = it->path().string();
    int fd = ::open(path.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0) continue;                       // removed meanwhile
    if (::flock(fd, LOCK_EX | LOCK_NB) == 0) {  // no writer holds it: its writer died
      std::filesystem::remove_all(path, dec);
      if (dec) {
        ::close(fd);
        return Status::IoError("removing " + path +
                               " (left unfinished by a crash): " + dec.message());
      }
      spdlog::info("removed {}: a savepoint left unfinished by a crash", path);
      removed.push_back(path);
    }
    ::close(fd);
  }
  return removed;
}

}  // namespace streamrun
