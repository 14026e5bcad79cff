// The state directory: lock, listing, verification, retention (see engine/state_dir.h).
#include "engine/state_dir.h"

#include <fcntl.h>
#include <spdlog/spdlog.h>
#include <sys/file.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <system_error>

#include "engine/checkpoint_writer.h"

namespace streamrun {
namespace fs = std::filesystem;
namespace {

constexpr const char* kLockName = "LOCK";
constexpr const char* kControlSocketName = "control.sock";

// "chk-12" -> 12, "chk-12.tmp" -> 12 with *tmp; anything else: false.
bool ParseCheckpointName(const std::string& name, int64_t* id, bool* tmp) {
  std::string_view s = name;
  if (s.substr(0, 4) != "chk-") return false;
  s.remove_prefix(4);
  *tmp = s.size() > 4 && s.substr(s.size() - 4) == ".tmp";
  if (*tmp) s.remove_suffix(4);
  if (s.empty() || (s.size() > 1 && s[0] == '0')) return false;
  auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), *id);
  return ec == std::errc() && end == s.data() + s.size();
}

Status RemoveTree(const std::string& path) {
  std::error_code ec;
  fs::remove_all(path, ec);
  if (ec) return Status::IoError("removing " + path + ": " + ec.message());
  return Status::Ok();
}

constexpr const char* kDeletingSuffix = ".deleting";

// Removes a checkpoint directory (or all of them) so that a crash in the middle never leaves a
// directory that looks like a damaged checkpoint: it is renamed to PATH.deleting first, a name
// ListCheckpoints ignores, and the rename is made durable before the files go. A leftover
// .deleting of a crash is removed by RetainCheckpoints and ForgetCheckpoints.
Status RemoveSnapshotDir(const std::string& path) {
  const std::string doomed = path + kDeletingSuffix;
  SR_RETURN_IF_ERROR(RemoveTree(doomed));
  if (::rename(path.c_str(), doomed.c_str()) != 0) {
    if (errno == ENOENT) return Status::Ok();
    return ErrnoStatus("renaming " + path + " to " + doomed, errno);
  }
  fs::path parent = fs::path(path).parent_path();
  SR_RETURN_IF_ERROR(FsyncDir(parent.empty() ? std::string(".") : parent.string()));
  return RemoveTree(doomed);
}

bool EndsWith(std::string_view s, std::string_view suffix) {
  return s.size() >= suffix.size() && s.substr(s.size() - suffix.size()) == suffix;
}

// Removes the .deleting leftovers of a crash in `dir`.
Status RemoveDeletingLeftovers(const std::string& dir) {
  std::error_code ec;
  std::vector<std::string> leftovers;
  for (fs::directory_iterator it(dir, ec), end; !ec && it != end; it.increment(ec)) {
    if (EndsWith(it->path().filename().string(), kDeletingSuffix)) {
      leftovers.push_back(it->path().string());
    }
  }
  for (const std::string& p : leftovers) SR_RETURN_IF_ERROR(RemoveTree(p));
  return Status::Ok();
}

}  // namespace

// --- lock ---

Result<std::unique_ptr<StateDirLock>> StateDirLock::Acquire(const std::string& state_dir) {
  std::error_code ec;
  fs::create_directories(state_dir, ec);
  if (ec) return Status::IoError("creating state directory " + state_dir + ": " + ec.message());
  std::string path = state_dir + "/" + kLockName;
  int fd = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
  if (fd < 0) return ErrnoStatus("opening " + path, errno);
  if (::flock(fd, LOCK_EX | LOCK_NB) != 0) {
    int err = errno;
    if (err != EWOULDBLOCK) {
      ::close(fd);
      return ErrnoStatus("locking " + path, err);
    }
    char buf[32] = {};
    ssize_t n = ::pread(fd, buf, sizeof buf - 1, 0);
    ::close(fd);
    std::string pid = n > 0 ? std::string(buf, static_cast<size_t>(n)) : std::string();
    pid.erase(std::remove_if(pid.begin(), pid.end(), [](char c) { return c < '0' || c > '9'; }),
              pid.end());
    return Status::IoError("state directory " + state_dir +
                           " is in use by another streamrun (pid " +
                           (pid.empty() ? std::string("unknown") : pid) + ")");
  }
  std::string pid = std::to_string(::getpid()) + "\n";
  if (::ftruncate(fd, 0) != 0 ||
      ::pwrite(fd, pid.data(), pid.size(), 0) != static_cast<ssize_t>(pid.size())) {
    int err = errno;
    ::close(fd);
    return ErrnoStatus("writing the pid into " + path, err);
  }
  return std::unique_ptr<StateDirLock>(new StateDirLock(state_dir, fd));
}

StateDirLock::~StateDirLock() {
  // The pid is left in the file: it is only read while the lock is held by someone.
  ::close(fd_);
}

// --- listing ---

namespace {

// The subdirectories of `dir` that `parse` accepts (it fills id and in_progress from the name),
// with their paths and whether they have a manifest. No such directory: an empty list.
template <typename Parse>
Result<std::vector<CheckpointEntry>> ListSnapshotDirs(const std::string& dir, Parse parse) {
  std::vector<CheckpointEntry> out;
  std::error_code ec;
  if (!fs::exists(dir, ec)) return out;
  fs::directory_iterator it(dir, ec);
  if (ec) return Status::IoError("listing " + dir + ": " + ec.message());
  for (; it != fs::directory_iterator(); it.increment(ec)) {
    if (ec) return Status::IoError("listing " + dir + ": " + ec.message());
    CheckpointEntry entry;
    if (!parse(it->path().filename().string(), &entry) || !it->is_directory(ec)) continue;
    entry.path = it->path().string();
    entry.has_manifest = fs::exists(entry.path + "/" + kManifestName, ec);
    out.push_back(std::move(entry));
  }
  return out;
}

}  // namespace

Result<std::vector<CheckpointEntry>> ListCheckpoints(const std::string& state_dir) {
  SR_ASSIGN_OR_RETURN(
      auto out,
      ListSnapshotDirs(CheckpointsDir(state_dir), [](const std::string& name, CheckpointEntry* e) {
        return ParseCheckpointName(name, &e->id, &e->in_progress);
      }));
  std::sort(out.begin(), out.end(), [](const CheckpointEntry& a, const CheckpointEntry& b) {
    return a.id != b.id ? a.id < b.id : a.in_progress < b.in_progress;
  });
  return out;
}

Result<std::vector<CheckpointEntry>> ListSavepoints(const std::string& state_dir) {
  SR_ASSIGN_OR_RETURN(auto out, ListSnapshotDirs(SavepointsDir(state_dir),
                                                 [](const std::string& name, CheckpointEntry* e) {
                                                   if (name.rfind("sp-", 0) != 0) return false;
                                                   e->in_progress = EndsWith(name, ".tmp");
                                                   return true;
                                                 }));
  std::sort(out.begin(), out.end(),
            [](const CheckpointEntry& a, const CheckpointEntry& b) { return a.path < b.path; });
  return out;
}

Result<int64_t> NextCheckpointId(const std::string& state_dir) {
  SR_ASSIGN_OR_RETURN(auto entries, ListCheckpoints(state_dir));
  return entries.empty() ? int64_t{1} : entries.back().id + 1;
}

// --- verification ---

VerifyResult VerifyCheckpoint(const std::string& path, bool checksums) {
  VerifyResult result;
  auto fail = [&](std::string file, std::string why) {
    result.damaged_file = std::move(file);
    result.status = Status::DataError(path + ": " + result.damaged_file + ": " + why);
    return result;
  };
  std::string manifest_path = path + "/" + kManifestName;
  std::ifstream in(manifest_path, std::ios::binary);
  if (!in) return fail(kManifestName, "missing (the checkpoint is incomplete)");
  std::stringstream text;
  text << in.rdbuf();
  if (in.bad()) return fail(kManifestName, "cannot be read");
  auto manifest = ParseManifest(text.str());
  if (!manifest.ok()) return fail(kManifestName, manifest.status().message());
  result.manifest = *manifest;
  for (const ManifestFile& f : manifest->files) {
    std::string full = path + "/" + f.path;
    std::error_code ec;
    if (!fs::is_regular_file(full, ec)) return fail(f.path, "missing");
    uint64_t size = fs::file_size(full, ec);
    if (ec) return fail(f.path, "cannot be read: " + ec.message());
    if (size != f.size) {
      return fail(f.path, "size " + std::to_string(size) + " bytes, the manifest says " +
                              std::to_string(f.size) + " (truncated or overwritten)");
    }
    if (!checksums) continue;
    std::string hash;
    Status st = HashFile(full, &hash, &size);
    if (!st.ok()) return fail(f.path, st.message());
    if (hash != f.xxh3_128) {
      return fail(f.path, "checksum " + hash + ", the manifest says " + f.xxh3_128 +
                              " (the contents are damaged)");
    }
  }
  return result;
}

Result<LatestCheckpoint> LatestCompleteCheckpoint(const std::string& state_dir) {
  SR_ASSIGN_OR_RETURN(auto entries, ListCheckpoints(state_dir));
  LatestCheckpoint latest;
  for (auto it = entries.rbegin(); it != entries.rend(); ++it) {
    if (it->in_progress) continue;
    VerifyResult verified = VerifyCheckpoint(it->path);
    if (verified.ok()) {
      latest.checkpoint = *it;
      latest.manifest = std::move(verified.manifest);
      break;
    }
    spdlog::warn("skipping damaged checkpoint {}", verified.status.message());
    latest.skipped.push_back(SkippedCheckpoint{it->path, verified.status.message()});
  }
  return latest;
}

// --- tidying ---

Status RetainCheckpoints(const std::string& state_dir, int retain) {
  if (retain < 1) return Status::RuntimeError("checkpoints.retain must be at least 1");
  SR_ASSIGN_OR_RETURN(auto entries, ListCheckpoints(state_dir));
  int kept = 0;
  int64_t oldest_kept = -1;
  for (auto it = entries.rbegin(); it != entries.rend(); ++it) {
    if (it->in_progress || !it->has_manifest) continue;
    if (kept < retain) {
      ++kept;
      oldest_kept = it->id;
    } else {
      SR_RETURN_IF_ERROR(RemoveSnapshotDir(it->path));
    }
  }
  SR_RETURN_IF_ERROR(RemoveDeletingLeftovers(CheckpointsDir(state_dir)));
  if (oldest_kept < 0) return Status::Ok();  // nothing complete: keep everything for inspection
  int64_t newest_kept = -1;
  for (const CheckpointEntry& e : entries) {
    if (!e.in_progress && e.has_manifest) newest_kept = std::max(newest_kept, e.id);
  }
  for (const CheckpointEntry& e : entries) {
    // A .tmp older than a complete checkpoint is a crash's leftover, never a writer at work
    // (ids only grow); a final name without a manifest cannot be produced by the writer.
    bool stale_tmp = e.in_progress && e.id < newest_kept;
    bool no_manifest = !e.in_progress && !e.has_manifest && e.id < oldest_kept;
    if (stale_tmp || no_manifest) SR_RETURN_IF_ERROR(RemoveSnapshotDir(e.path));
  }
  return Status::Ok();
}

Status ForgetCheckpoints(const std::string& state_dir) {
  SR_RETURN_IF_ERROR(RemoveDeletingLeftovers(state_dir));
  return RemoveSnapshotDir(CheckpointsDir(state_dir));
}

Result<std::string> MoveStateAside(const std::string& state_dir) {
  std::error_code ec;
  fs::path dir = fs::path(state_dir).lexically_normal();
  if (dir.filename().empty()) dir = dir.parent_path();  // "a/b/" -> "a/b"
  std::vector<fs::path> to_move;
  fs::directory_iterator it(dir, ec);
  if (ec) {
    if (ec == std::errc::no_such_file_or_directory) return std::string();
    return Status::IoError("listing " + dir.string() + ": " + ec.message());
  }
  for (; it != fs::directory_iterator(); it.increment(ec)) {
    if (ec) return Status::IoError("listing " + dir.string() + ": " + ec.message());
    std::string name = it->path().filename().string();
    if (name == kLockName || name == kControlSocketName || name == "savepoints") continue;
    to_move.push_back(it->path());
  }
  if (to_move.empty()) return std::string();

  std::string base = dir.string() + ".old-" + FormatUtcMillisCompact(NowMillis());
  std::string target = base;
  for (int n = 2; fs::exists(target, ec); ++n) target = base + "-" + std::to_string(n);
  fs::create_directory(target, ec);
  if (ec) return Status::IoError("creating " + target + ": " + ec.message());
  for (const fs::path& p : to_move) {
    std::string dest = target + "/" + p.filename().string();
    if (::rename(p.c_str(), dest.c_str()) != 0) {
      return ErrnoStatus("moving " + p.string() + " to " + dest, errno);
    }
  }
  SR_RETURN_IF_ERROR(FsyncDir(target));
  SR_RETURN_IF_ERROR(FsyncDir(dir.string()));
  fs::path parent = dir.parent_path();
  SR_RETURN_IF_ERROR(FsyncDir(parent.empty() ? std::string(".") : parent.string()));
  return target;
}

}  // namespace streamrun
