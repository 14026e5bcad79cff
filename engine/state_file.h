// State files: the keyed state of one stateful subtask in a checkpoint or savepoint.
//
// A stateful operator (a window) describes its state at a checkpoint barrier as entries
// (key group, key, namespace, value), the same addressing as engine/keyed_state.h. The entries
// go into one file per subtask, STEP/<subtask>.state inside the checkpoint directory
// (docs/state-format.md). Every entry carries its key group, so the files of a step, whatever
// parallelism wrote them, can be read back at any other: a subtask reads every file of its step
// and keeps the entries of its own key-group range (engine/key.h). That is what makes savepoints
// rescalable.
//
// Format (version 1; do not change: on disk):
//   magic   "SRKS" (4 bytes)
//   version u8 (1)
//   max_parallelism u16 big-endian (key groups are hash % max_parallelism)
//   entries, in any order: u16 key group | bytes key | bytes namespace | bytes value
//           (bytes: u32 big-endian length, then the bytes; engine/byte_codec.h)
//   end     u16 0xFFFF, then nothing
// The manifest's checksum covers the whole file; the end mark makes a truncated file
// recognisable even without it.
//
// Thread safety: a StateFileBuilder belongs to one thread; ReadStateFile is a pure function.
#pragma once

#include <functional>
#include <string>
#include <string_view>

#include "engine/keyed_state.h"
#include "engine/status.h"

namespace streamrun {

inline constexpr uint8_t kStateFileVersion = 1;

class StateFileBuilder {
 public:
  explicit StateFileBuilder(int max_parallelism);
  void Add(int key_group, std::string_view key, std::string_view ns, std::string_view value);
  size_t entries() const { return entries_; }
  // Bytes built and not yet taken.
  size_t pending_bytes() const { return out_.size(); }
  // Takes the bytes built so far, to write a large file in pieces: the file is everything
  // TakeSome returned, then what Finish returns.
  std::string TakeSome();
  // The finished file's bytes (or their rest, after TakeSome). The builder is empty afterwards.
  std::string Finish();

 private:
  std::string out_;
  size_t entries_ = 0;
  int max_parallelism_;
};

// Visits every entry of `bytes` (one state file) with first <= key group <= last. Damage
// (bad magic, a newer version, truncation, another max_parallelism) is a RuntimeError naming
// `name` (the file, for messages).
Status ReadStateFile(std::string_view bytes, std::string_view name, int max_parallelism,
                     int first_key_group, int last_key_group,
                     const KeyedStateStore::Visitor& visit);

// A read-only KeyedStateStore over state files: ForEach visits the entries of the given files
// within the key-group range, file after file (not in key order: operators restoring from it
// must not depend on order). Put/Get/Delete/Clear are not supported.
class StateFileReader : public KeyedStateStore {
 public:
  struct File {
    std::string name;
    std::string bytes;
  };
  StateFileReader(std::vector<File> files, int max_parallelism)
      : files_(std::move(files)), max_parallelism_(max_parallelism) {}

  Status Put(int, std::string_view, std::string_view, std::string_view) override;
  Status Get(int, std::string_view, std::string_view, std::string*, bool*) const override;
  Status Delete(int, std::string_view, std::string_view) override;
  Status ForEach(int first_key_group, int last_key_group, const Visitor& visit) const override;
  Status Clear() override;

 private:
  std::vector<File> files_;
  int max_parallelism_;
};

}  // namespace streamrun
