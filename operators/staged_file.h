// The staging files of the exactly-once sinks (the file sink in line_writer.cc, the Kafka sink).
//
// Records a sink takes after its last barrier go to STATE_DIR/sinks/<sink>/current.staged. At a
// barrier that file is sealed as chk-<id>.staged, to be committed (copied to the output file, or
// produced in a transaction) when checkpoint <id> completes; a new current.staged takes the
// records after the barrier. docs/state-format.md describes the directory.
//
// Thread safety: a StagedFile belongs to its sink's thread.
#pragma once

#include <cstdint>
#include <string>

#include "engine/operator.h"
#include "engine/status.h"

namespace streamrun {

class StagedFile {
 public:
  StagedFile() = default;
  StagedFile(const StagedFile&) = delete;
  StagedFile& operator=(const StagedFile&) = delete;
  ~StagedFile() { Close(); }

  // STATE_DIR/sinks/<sink>, created if missing.
  static Result<std::string> MakeDir(const std::string& state_dir, const std::string& sink);
  // Deletes every file in `dir`: staged files of an earlier run, committed or beyond the
  // checkpoint restored.
  static void ClearDir(const std::string& dir);
  // chk-<id>.staged in `dir`.
  static std::string CheckpointPath(const std::string& dir, int64_t checkpoint_id);

  // Creates an empty current.staged in `dir`.
  Status Open(const std::string& dir);
  // Appends [p, p + n) to current.staged.
  Status Append(const char* p, size_t n);
  // Renames current.staged to chk-<id>.staged, adds it and the directory to `out->sync_paths`
  // (the coordinator fsyncs them before the manifest), and opens a new, empty current.staged.
  // Returns the sealed file's path.
  Result<std::string> Seal(int64_t checkpoint_id, OperatorSnapshot* out);
  // Closes current.staged, keeping it; Remove deletes it too.
  void Close();
  void Remove();

  int fd() const { return fd_; }
  uint64_t bytes() const { return bytes_; }  // in current.staged
  std::string current_path() const { return dir_ + "/current.staged"; }

 private:
  std::string dir_;
  int fd_ = -1;
  uint64_t bytes_ = 0;
};

}  // namespace streamrun
