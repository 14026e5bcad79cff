// Reading a checkpoint or savepoint back: which of its state belongs to which node of the job
// being started, and whether the pipeline can take it (`savepoint check`, `run
// --from-savepoint`, recovery).
//
// A snapshot's metadata (engine/checkpoint_coordinator.h) names every node with its role, type,
// parallelism, state fingerprint and per-subtask parts. Matching is by node name, the stable id
// of a step. Per node of the snapshot or the pipeline:
//   restored      the pipeline has a node of that name and role, compatible with the state
//   new           a stateful node (or source, or sink) of the pipeline the snapshot does not have
//   dropped       state in the snapshot for a node the pipeline no longer has (restoring needs
//                 --allow-non-restored-state)
//   incompatible  the node's type or state fingerprint (window, aggregates) changed
//
// Thread safety: a RestoreData is immutable once loaded and may be read by every task thread.
#pragma once

#include <map>
#include <memory>
#include <string>
#include <vector>

#include "engine/operator.h"
#include "engine/pipeline.h"
#include "engine/state_file.h"
#include "engine/status.h"

namespace streamrun {

struct SnapshotNode {
  std::string name;
  NodeRole role = NodeRole::kStep;
  std::string type;
  int parallelism = 1;
  std::string fingerprint;
  std::string schema_json;               // names for `state dump` ("" when none)
  std::vector<std::string> positions;    // per subtask, JSON ("null" when none)
  std::vector<std::string> metas;        // per subtask, JSON or ""
  std::vector<std::string> state_files;  // relative paths, for subtasks that had keyed state
  bool has_state() const;
};

struct SnapshotInfo {
  std::string path;
  int64_t id = 0;
  bool savepoint = false;
  std::string job;
  int max_parallelism = 128;
  std::vector<SnapshotNode> nodes;
  const SnapshotNode* Find(const std::string& name) const;
};

// The bytes of a file of a snapshot (a state file, the manifest).
Result<std::string> ReadWholeFile(const std::string& path);

// Reads the manifest's metadata of a verified checkpoint or savepoint directory.
Result<SnapshotInfo> ReadSnapshotInfo(const std::string& path);

struct NodeCheck {
  enum class Verdict { kRestored, kNew, kDropped, kIncompatible };
  std::string name;
  NodeRole role = NodeRole::kStep;
  Verdict verdict = Verdict::kRestored;
  std::string detail;  // why incompatible, or what is restored
};
const char* VerdictName(NodeCheck::Verdict v);

// Compares the snapshot with the pipeline, node by node (pipeline order, then dropped ones).
std::vector<NodeCheck> CheckSnapshot(const SnapshotInfo& info, const PipelineSpec& spec);

// What the runtime restores from: the checks passed, state files loaded.
struct RestoreData {
  SnapshotInfo info;
  // Per pipeline node name that has state or meta in the snapshot.
  std::map<std::string, std::unique_ptr<StateFileReader>> state;
  // The restore context handed to every subtask of a step or sink (meta filled per subtask).
  RestoreContext Context(const std::string& node, int subtask, int parallelism) const;
  // Sources: the JSON array of the snapshot's positions of that source, or "" when it has none.
  std::string Positions(const std::string& node) const;
};

// Loads the snapshot at `path` for `spec`: fails with a PipelineError naming the node when a
// node is incompatible, or dropped without `allow_non_restored_state`.
Result<std::unique_ptr<RestoreData>> LoadRestore(const std::string& path, const PipelineSpec& spec,
                                                 bool allow_non_restored_state);

}  // namespace streamrun
