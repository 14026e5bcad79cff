// LmdbStateStore: a KeyedStateStore in an LMDB environment, the working store of one stateful
// subtask.
//
// Layout: one environment (a directory holding data.mdb and lock.mdb) per stateful subtask, one
// unnamed database in it. An entry's LMDB key is
//
//   key group (2 bytes, big-endian) | escaped key bytes | 0x00 0x01 | namespace bytes
//
// where escaping writes every 0x00 byte of the key as 0x00 0xFF. LMDB orders keys bytewise, and
// this encoding keeps the order of (key group, key, namespace) that ForEach promises (the
// terminator 0x00 0x01 sorts below any continuation of the key), so a key-group range is one
// cursor scan. docs/state-format.md describes it. The encoded key must fit LMDB's key limit
// (mdb_env_get_maxkeysize, 511 bytes): longer keys are refused with a Status.
//
// Durability: none by itself. The environment is opened with MDB_NOSYNC, so a commit never
// fsyncs: the store is a working store, and what survives a crash is the last complete
// checkpoint, copied out of a snapshot (Snapshot()) and fsynced by the checkpoint writer. After
// a crash the environment may have lost its last commits or be damaged; the runtime must rebuild
// it from the checkpoint it restores, never trust it.
//
// Writes go into one write transaction that is committed every `ops_per_commit` operations or
// `bytes_per_commit` bytes, and at Flush(). Reads see the uncommitted writes. When the map is
// full, the transaction is aborted, the map size doubled and the batch replayed (the store keeps
// the batch for that), so MDB_MAP_FULL never reaches the caller; only `max_map_size` bounds it.
//
// Thread safety: the store belongs to its subtask's thread (see engine/keyed_state.h). A
// snapshot (Snapshot()) may be read on another thread while the subtask goes on writing;
// growing the map waits until no snapshot is alive, since LMDB cannot remap under a reader.
#pragma once

#include <lmdb.h>

#include <cstddef>
#include <memory>
#include <string>
#include <vector>

#include "engine/keyed_state.h"
#include "engine/lmdb_handles.h"
#include "engine/mutex.h"

namespace streamrun {

struct LmdbStateStoreOptions {
  // The map size the environment starts with (an existing, larger one keeps its size). It
  // doubles whenever a write does not fit.
  size_t initial_map_size = size_t{64} << 20;
  // Growth stops here: a write that would need more fails with an IoError.
  size_t max_map_size = size_t{1} << 40;
  // The write transaction is committed after this many operations or bytes, so the batch kept
  // for a replay after growth stays bounded.
  size_t ops_per_commit = 10000;
  size_t bytes_per_commit = size_t{16} << 20;
  // MDB_WRITEMAP: write transactions change the map in place instead of copying every page
  // they change into the file at commit (measured: most of the time of a write-heavy store
  // was the kernel's copy of those pages). LMDB then extends the file to the map size (sparse)
  // and a stray write through the map could damage it: for working stores that are rebuilt
  // after a crash anyway.
  bool write_map = false;
};

class LmdbStateSnapshot;

class LmdbStateStore : public KeyedStateStore {
 public:
  // Opens (creating it and its directory if needed) the environment in `dir`, and clears the
  // reader slots that dead processes left behind (mdb_reader_check).
  static Result<std::unique_ptr<LmdbStateStore>> Open(const std::string& dir,
                                                      const LmdbStateStoreOptions& options = {});
  // Commits pending writes (a failure is logged; call Close() to see it).
  // REQUIRES: no snapshot of this store is alive.
  ~LmdbStateStore() override;

  LmdbStateStore(const LmdbStateStore&) = delete;
  LmdbStateStore& operator=(const LmdbStateStore&) = delete;

  Status Put(int key_group, std::string_view key, std::string_view ns,
             std::string_view value) override;
  Status Get(int key_group, std::string_view key, std::string_view ns, std::string* value,
             bool* found) const override;
  Status Delete(int key_group, std::string_view key, std::string_view ns) override;
  // Get and Delete in one look-up: removes (key_group, key, ns) and reads what it held.
  Status Take(int key_group, std::string_view key, std::string_view ns, std::string* value,
              bool* found);
  // REQUIRES: `visit` does not modify this store.
  Status ForEach(int first_key_group, int last_key_group, const Visitor& visit) const override;

  // Visits the entries of `key_group` in order (key bytes, then namespace), from the first whose
  // key is at or after `from_key` (bytewise), until `visit` sets *stop. So the entries of one
  // key are a scan from that key that stops at the first other key.
  // REQUIRES: `visit` does not modify this store.
  using ScanVisitor = std::function<Status(std::string_view key, std::string_view ns,
                                           std::string_view value, bool* stop)>;
  Status Scan(int key_group, std::string_view from_key, const ScanVisitor& visit) const;
  Status Clear() override;

  // Commits the pending writes (still without fsync; see the header comment).
  Status Flush();
  // Flush(), then closes the environment. The store is unusable afterwards.
  Status Close();

  // Flush(), then a read-only view of the store as it is now, unaffected by later writes, which
  // another thread may read (e.g. to copy it into a checkpoint beside processing).
  // REQUIRES: the snapshot is destroyed before the store.
  Result<std::unique_ptr<LmdbStateSnapshot>> Snapshot();

  const std::string& dir() const { return dir_; }
  size_t map_size() const { return map_size_; }
  // How many reader slots of dead processes Open cleared.
  int stale_readers_cleared() const { return stale_readers_cleared_; }

 private:
  friend class LmdbStateSnapshot;

  enum class OpType { kPut, kDelete, kClear };
  struct PendingOp {
    OpType type;
    std::string key;  // encoded
    std::string value;
  };

  LmdbStateStore(std::string dir, const LmdbStateStoreOptions& options);
  Status EnsureTxn() const;
  int ApplyOne(const PendingOp& op) const;
  Status Apply(PendingOp op);
  Status Applied(PendingOp op, int rc);
  Status DoubleMapSize();
  Status GrowAndReplay() LOCKS_EXCLUDED(snapshots_mu_);
  Status CommitLocked();
  void SnapshotEnded() LOCKS_EXCLUDED(snapshots_mu_);

  // Not guarded: the members from here to snapshots_mu_ belong to the subtask's thread. (A
  // snapshot read on another thread uses dbi_, set in Open, and SnapshotEnded.)
  std::string dir_;
  LmdbStateStoreOptions options_;
  LmdbEnv env_;
  MDB_dbi dbi_ = 0;
  size_t map_size_ = 0;
  size_t max_key_size_ = 0;
  int stale_readers_cleared_ = 0;
  bool closed_ = false;

  // The open write transaction, begun lazily (also by reads, hence mutable), and the operations
  // applied in it, replayed after growing the map.
  mutable LmdbTxn txn_;
  std::vector<PendingOp> batch_;
  size_t batch_bytes_ = 0;

  // Snapshots alive (on any thread); growth waits for zero.
  Mutex snapshots_mu_;
  CondVar snapshots_cv_;
  int live_snapshots_ GUARDED_BY(snapshots_mu_) = 0;
};

// A read-only transaction of an LmdbStateStore, movable to another thread (the environment uses
// MDB_NOTLS). Used by one thread at a time.
class LmdbStateSnapshot {
 public:
  ~LmdbStateSnapshot();
  LmdbStateSnapshot(const LmdbStateSnapshot&) = delete;
  LmdbStateSnapshot& operator=(const LmdbStateSnapshot&) = delete;

  // As KeyedStateStore::ForEach, on the state at the time of the snapshot.
  Status ForEach(int first_key_group, int last_key_group,
                 const KeyedStateStore::Visitor& visit) const;

 private:
  friend class LmdbStateStore;
  LmdbStateSnapshot(LmdbStateStore* store, LmdbTxn txn) : store_(store), txn_(std::move(txn)) {}

  LmdbStateStore* store_;
  LmdbTxn txn_;
};

// The LMDB key of (key_group, key, ns) as described above; exposed for tests and tools.
std::string EncodeStateKey(int key_group, std::string_view key, std::string_view ns);
// The inverse; false when `encoded` is not such a key.
bool DecodeStateKey(std::string_view encoded, int* key_group, std::string* key,
                    std::string_view* ns);

}  // namespace streamrun
