// The state directory of a job: its lock, its checkpoints and savepoints.
//
//   STATE_DIR/LOCK                 flock()ed by the running job; holds its pid
//   STATE_DIR/checkpoints/chk-N/   complete checkpoints (chk-N.tmp/: being written, or a crash)
//   STATE_DIR/savepoints/sp-TIME/  savepoints taken into the state directory
//
// docs/state-format.md describes the layout and the manifest; engine/checkpoint_writer.h writes
// checkpoints. Functions here read and tidy what is on disk; none of them writes a checkpoint.
//
// Thread safety: plain functions, safe from any thread. Callers that delete (RetainCheckpoints,
// MoveStateAside) must hold the StateDirLock and must not run them while a CheckpointWriter
// of the same directory is between Begin and Finish.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "engine/checkpoint_manifest.h"
#include "engine/status.h"

namespace streamrun {

inline std::string CheckpointsDir(const std::string& state_dir) {
  return state_dir + "/checkpoints";
}
inline std::string SavepointsDir(const std::string& state_dir) { return state_dir + "/savepoints"; }

// The exclusive lock of a state directory, held from Acquire until destruction: one running
// job per state directory. flock() is released by the kernel when the process dies, so a crash
// never leaves a stale lock; the pid in the file only serves the error message.
class StateDirLock {
 public:
  // Creates the directory if needed and locks STATE_DIR/LOCK without waiting. Held by another
  // process (or another StateDirLock in this one): IoError "state directory X is in use by
  // another streamrun (pid N)".
  static Result<std::unique_ptr<StateDirLock>> Acquire(const std::string& state_dir);
  ~StateDirLock();
  StateDirLock(const StateDirLock&) = delete;
  StateDirLock& operator=(const StateDirLock&) = delete;

  const std::string& state_dir() const { return state_dir_; }

 private:
  StateDirLock(std::string state_dir, int fd) : state_dir_(std::move(state_dir)), fd_(fd) {}
  std::string state_dir_;
  int fd_;
};

struct CheckpointEntry {
  int64_t id = 0;
  std::string path;          // STATE_DIR/checkpoints/chk-N or .../chk-N.tmp
  bool in_progress = false;  // a .tmp directory: being written, or left by a crash
  bool has_manifest = false;
};

// Every chk-N and chk-N.tmp of the state directory, by increasing id (a .tmp after its final
// namesake). Other names are ignored. No checkpoints directory: an empty list.
Result<std::vector<CheckpointEntry>> ListCheckpoints(const std::string& state_dir);

// The id the next checkpoint should take: one more than any chk-N or chk-N.tmp present, so an
// id is never reused (1 for an empty directory).
Result<int64_t> NextCheckpointId(const std::string& state_dir);

struct VerifyResult {
  Status status;                     // Ok when complete and intact; otherwise what is wrong
  std::string damaged_file;          // relative path of the damaged file, or MANIFEST.json
  std::optional<Manifest> manifest;  // when the manifest could be read
  bool ok() const { return status.ok(); }
};

// Every sp-* directory of STATE_DIR/savepoints (sp-*.tmp: in_progress), oldest first (the names
// sort by time). `id` is 0: a savepoint's id is in its manifest. No savepoints directory: an
// empty list.
Result<std::vector<CheckpointEntry>> ListSavepoints(const std::string& state_dir);

// Checks a checkpoint or savepoint directory: MANIFEST.json exists and parses, every file it
// lists exists with its size and XXH3-128 checksum. Reads every file once. With `checksums`
// false only the sizes are compared (cheap: nothing but the manifest is read), which finds
// missing and truncated files but not changed bytes.
VerifyResult VerifyCheckpoint(const std::string& path, bool checksums = true);

struct SkippedCheckpoint {
  std::string path;
  std::string reason;
};
struct LatestCheckpoint {
  std::optional<CheckpointEntry> checkpoint;  // none: start from empty state
  std::optional<Manifest> manifest;
  std::vector<SkippedCheckpoint> skipped;  // newer ones that failed verification, newest first
};

// The newest checkpoint (not .tmp) that verifies. Each newer damaged one is logged as a warning
// and listed in `skipped`.
Result<LatestCheckpoint> LatestCompleteCheckpoint(const std::string& state_dir);

// Deletes all but the newest `retain` (>= 1) checkpoints that have a manifest, every .tmp
// older than the newest of those, and any chk-N without a manifest older than the newest kept.
// Checksums are not verified here (that would read every file each time). A directory is
// renamed to NAME.deleting before its files are removed, so a crash in the middle leaves
// nothing that looks like a damaged checkpoint; such leftovers are removed here.
Status RetainCheckpoints(const std::string& state_dir, int retain);

// For a job that finished its input ("nothing to resume"): removes STATE_DIR/checkpoints, by
// renaming it to checkpoints.deleting first, so that a crash in the middle leaves either every
// checkpoint or none.
// REQUIRES: the caller holds the StateDirLock of `state_dir`.
Status ForgetCheckpoints(const std::string& state_dir);

// For `run --fresh`: moves everything in STATE_DIR except LOCK, control.sock and savepoints/
// into a new sibling directory STATE_DIR.old-<UTC time> (e.g. clickstream.old-20250102T030405.678Z,
// with -2, -3... if taken) and returns its path; returns "" when there was nothing to move.
// Savepoints stay: users refer to them by path.
// REQUIRES: the caller holds the StateDirLock of `state_dir`.
Result<std::string> MoveStateAside(const std::string& state_dir);

}  // namespace streamrun
