// CheckpointWriter: writes one checkpoint or savepoint directory so that it is either complete
// or recognisably incomplete, whatever moment a crash or a full disk strikes.
//
// The protocol (docs/state-format.md, "Writing"):
//   1. create NAME.tmp/ beside the final NAME/ (a leftover NAME.tmp of a crash is removed first);
//   2. callers add files: each is written, fsynced and closed, its size and XXH3-128 recorded;
//   3. Finish(): fsync every directory in NAME.tmp, write MANIFEST.json last and fsync it,
//      rename NAME.tmp -> NAME, fsync the parent directory.
// A directory named NAME (no .tmp) with a MANIFEST.json whose checksums match is complete. Any
// failure (ENOSPC included) removes NAME.tmp and leaves earlier checkpoints as they were.
//
// While it writes, the writer holds flock(LOCK_EX) on NAME.tmp itself (the kernel drops it when
// the process dies), so that RemoveAbandonedSavepoints can tell the leftover of a crash from a
// savepoint another process is writing into the same directory.
//
// Failpoints (engine/failpoint.h), PREFIX being "checkpoint" or "savepoint":
//   PREFIX.write               every write of file data (=enospc simulates a full disk)
//   PREFIX.before_fsync        a file's data written, before its fsync
//   PREFIX.after_file          after each file is fsynced and closed
//   PREFIX.before_dir_fsync    in Finish, before the directories are fsynced
//   PREFIX.before_manifest     after the directory fsync, before MANIFEST.json is written
//   PREFIX.after_manifest      MANIFEST.json fsynced, before the rename
//   PREFIX.after_rename        after the rename and the parent's fsync
//
// Thread safety: CreateFile may be called from several threads, and different CheckpointFiles
// written on different threads at once (e.g. one per subtask copying its snapshot). Finish and
// Abort must not race with anything else on the writer.
#pragma once

#include <cstdint>
#include <memory>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "engine/checkpoint_manifest.h"
#include "engine/mutex.h"
#include "engine/status.h"

struct XXH3_state_s;

namespace streamrun {

class CheckpointWriter;

// One file being written into a checkpoint. Close() it before the writer's Finish().
// REQUIRES: destroyed before its CheckpointWriter. Used by one thread at a time.
class CheckpointFile {
 public:
  ~CheckpointFile();  // not closed: the file is left out (and the checkpoint cannot finish)
  CheckpointFile(const CheckpointFile&) = delete;
  CheckpointFile& operator=(const CheckpointFile&) = delete;

  // Appends bytes (all of them, or an error such as "No space left on device").
  Status Append(std::string_view data);
  // fsyncs and closes the file and records it for the manifest.
  Status Close();

 private:
  friend class CheckpointWriter;
  CheckpointFile(CheckpointWriter* writer, std::string relative_path, std::string full_path,
                 int fd);

  CheckpointWriter* writer_;
  std::string relative_path_;
  std::string full_path_;
  int fd_;
  uint64_t size_ = 0;
  XXH3_state_s* hash_;
};

class CheckpointWriter {
 public:
  // STATE_DIR/checkpoints/chk-ID. Fails if chk-ID already exists.
  static Result<std::unique_ptr<CheckpointWriter>> BeginCheckpoint(const std::string& state_dir,
                                                                   int64_t id);
  // PARENT/sp-<UTC time> (PARENT: STATE_DIR/savepoints, or --target DIR), a self-contained
  // directory with the same manifest and "kind": "savepoint". `id` is the barrier's checkpoint id.
  static Result<std::unique_ptr<CheckpointWriter>> BeginSavepoint(const std::string& parent_dir,
                                                                  int64_t id);
  // Not finished: Abort().
  ~CheckpointWriter();
  CheckpointWriter(const CheckpointWriter&) = delete;
  CheckpointWriter& operator=(const CheckpointWriter&) = delete;

  // A new file at `relative_path` ('/'-separated; subdirectories are created).
  Result<std::unique_ptr<CheckpointFile>> CreateFile(std::string_view relative_path)
      LOCKS_EXCLUDED(mu_);
  // CreateFile, Append(contents), Close().
  Status AddFile(std::string_view relative_path, std::string_view contents) LOCKS_EXCLUDED(mu_);

  // Completes the directory as described above and returns its final path. `metadata_json` must
  // be a JSON object; it is stored as the manifest's "metadata" (source positions, the steps and
  // their key-group ranges...). On failure the .tmp directory is removed.
  // REQUIRES: every CheckpointFile is closed.
  Result<std::string> Finish(std::string_view metadata_json = "{}") LOCKS_EXCLUDED(mu_);
  // Removes the .tmp directory. Idempotent; nothing after Finish succeeded.
  void Abort();

  const std::string& final_path() const { return final_path_; }
  const std::string& tmp_path() const { return tmp_path_; }

 private:
  friend class CheckpointFile;
  CheckpointWriter(SnapshotKind kind, int64_t id, std::string final_path);
  Status Start();
  void Unlock();
  std::string FailpointName(std::string_view phase) const;
  void FileClosed(ManifestFile file) LOCKS_EXCLUDED(mu_);
  void FileAbandoned() LOCKS_EXCLUDED(mu_);

  const SnapshotKind kind_;
  const int64_t id_;
  const int64_t created_at_ms_;
  const std::string final_path_;
  const std::string tmp_path_;
  // Not guarded: changed only by Start, Finish and Abort, which race with nothing (CreateFile
  // only reads done_).
  int tmp_lock_fd_ = -1;  // NAME.tmp, flock()ed until Finish or Abort
  bool done_ = false;     // finished or aborted

  Mutex mu_;
  std::vector<ManifestFile> files_ GUARDED_BY(mu_);
  std::set<std::string> dirs_ GUARDED_BY(mu_);   // relative subdirectories created
  std::set<std::string> paths_ GUARDED_BY(mu_);  // relative paths handed out
  int open_files_ GUARDED_BY(mu_) = 0;
};

// Removes the savepoints under `parent_dir` (STATE_DIR/savepoints or a --target directory) that a
// crash left unfinished: every sp-*.tmp directory no writer holds locked. Logs and returns their
// paths. A missing `parent_dir` is not an error. (A writer that another process begins at the very
// moment, between creating its .tmp and locking it, may lose it and fail: it reports an error and
// no savepoint, never a damaged one.)
Result<std::vector<std::string>> RemoveAbandonedSavepoints(const std::string& parent_dir);

// fsyncs the directory at `path`.
Status FsyncDir(const std::string& path);
// An IoError "WHAT: strerror(err)", with a hint when the disk is full.
Status ErrnoStatus(const std::string& what, int err);
// The XXH3-128 of the file's contents in manifest form, and its size.
Status HashFile(const std::string& path, std::string* xxh3_128, uint64_t* size);

}  // namespace streamrun
