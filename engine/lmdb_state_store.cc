// The LMDB KeyedStateStore (see engine/lmdb_state_store.h).
#include "engine/lmdb_state_store.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <filesystem>
#include <functional>
#include <system_error>
#include <utility>

namespace streamrun {
namespace {

constexpr int kMaxKeyGroup = 0xFFFF;  // the key group is stored in 2 bytes

MDB_val ToVal(std::string_view s) { return MDB_val{s.size(), const_cast<char*>(s.data())}; }
std::string_view FromVal(const MDB_val& v) {
  return std::string_view(static_cast<const char*>(v.mv_data), v.mv_size);
}

Status CheckKeyGroup(int key_group) {
  if (key_group < 0 || key_group > kMaxKeyGroup) {
    return Status::RuntimeError("state key group " + std::to_string(key_group) + " is outside 0.." +
                                std::to_string(kMaxKeyGroup));
  }
  return Status::Ok();
}

// Visits the entries through a cursor of `txn`, in order from the first at or after the encoded
// key `start`, until `visit` sets *stop.
using CursorVisitor = std::function<Status(int key_group, std::string_view key, std::string_view ns,
                                           std::string_view value, bool* stop)>;
Status CursorScan(MDB_txn* txn, MDB_dbi dbi, std::string_view start, std::string_view where,
                  const CursorVisitor& visit) {
  LmdbCursor cursor;
  int rc = cursor.Open(txn, dbi);
  if (rc != 0) return LmdbError(std::string(where) + ": opening a cursor", rc);
  MDB_val k = ToVal(start);
  MDB_val v;
  rc = mdb_cursor_get(cursor.get(), &k, &v, MDB_SET_RANGE);
  std::string key;
  bool stop = false;
  while (rc == 0) {
    int key_group;
    std::string_view ns;
    if (!DecodeStateKey(FromVal(k), &key_group, &key, &ns)) {
      return Status::DataError(std::string(where) + ": damaged key of " +
                               std::to_string(k.mv_size) + " bytes");
    }
    SR_RETURN_IF_ERROR(visit(key_group, key, ns, FromVal(v), &stop));
    if (stop) return Status::Ok();
    rc = mdb_cursor_get(cursor.get(), &k, &v, MDB_NEXT);
  }
  if (rc != MDB_NOTFOUND) return LmdbError(std::string(where) + ": reading with a cursor", rc);
  return Status::Ok();
}

// Visits the entries of key groups [first, last] through a cursor of `txn`.
Status ScanRange(MDB_txn* txn, MDB_dbi dbi, int first_key_group, int last_key_group,
                 const KeyedStateStore::Visitor& visit) {
  if (first_key_group > last_key_group || last_key_group < 0) return Status::Ok();
  if (first_key_group < 0) first_key_group = 0;
  std::string start;
  start.push_back(static_cast<char>((first_key_group >> 8) & 0xFF));
  start.push_back(static_cast<char>(first_key_group & 0xFF));
  return CursorScan(txn, dbi, start, "state store",
                    [&](int key_group, std::string_view key, std::string_view ns,
                        std::string_view value, bool* stop) -> Status {
                      *stop = key_group > last_key_group;
                      return *stop ? Status::Ok() : visit(key_group, key, ns, value);
                    });
}

}  // namespace

std::string EncodeStateKey(int key_group, std::string_view key, std::string_view ns) {
  std::string out;
  out.reserve(2 + key.size() + 2 + ns.size());
  out.push_back(static_cast<char>((key_group >> 8) & 0xFF));
  out.push_back(static_cast<char>(key_group & 0xFF));
  for (char c : key) {
    out.push_back(c);
    if (c == '\0') out.push_back('\xFF');
  }
  out.push_back('\0');
  out.push_back('\x01');
  out.append(ns);
  return out;
}

bool DecodeStateKey(std::string_view encoded, int* key_group, std::string* key,
                    std::string_view* ns) {
  if (encoded.size() < 4) return false;
  *key_group =
      (static_cast<unsigned char>(encoded[0]) << 8) | static_cast<unsigned char>(encoded[1]);
  key->clear();
  for (size_t i = 2; i < encoded.size(); ++i) {
    char c = encoded[i];
    if (c != '\0') {
      key->push_back(c);
      continue;
    }
    if (i + 1 >= encoded.size()) return false;
    char next = encoded[++i];
    if (next == '\xFF') {
      key->push_back('\0');
    } else if (next == '\x01') {
      *ns = encoded.substr(i + 1);
      return true;
    } else {
      return false;
    }
  }
  return false;
}

LmdbStateStore::LmdbStateStore(std::string dir, const LmdbStateStoreOptions& options)
    : dir_(std::move(dir)), options_(options) {}

Result<std::unique_ptr<LmdbStateStore>> LmdbStateStore::Open(const std::string& dir,
                                                             const LmdbStateStoreOptions& options) {
  std::error_code ec;
  std::filesystem::create_directories(dir, ec);
  if (ec) return Status::IoError("state store " + dir + ": cannot create: " + ec.message());

  std::unique_ptr<LmdbStateStore> store(new LmdbStateStore(dir, options));
  const std::string where = "state store " + dir;
  MDB_env* raw = nullptr;
  int rc = mdb_env_create(&raw);
  if (rc != 0) return LmdbError(where + ": mdb_env_create", rc);
  store->env_ = LmdbEnv(raw);
  rc = mdb_env_set_mapsize(raw, options.initial_map_size);
  if (rc != 0) return LmdbError(where + ": mdb_env_set_mapsize", rc);
  // MDB_NOSYNC: commits never fsync. The store is a working copy; durability comes from the
  // checkpoints, which are fsynced when written. An fsync per commit would cost milliseconds on
  // the processing thread for nothing, since after a crash the runtime restores from a
  // checkpoint anyway. (MDB_NOMETASYNC is implied by MDB_NOSYNC, so it is not set.)
  // MDB_NOTLS: read-only transactions are not bound to a thread, so a snapshot begun on the
  // subtask's thread can be read by the checkpoint copier's thread.
  // MDB_NORDAHEAD: state is read at random; read-ahead would fill the page cache with
  // neighbouring pages nobody asked for once the state is larger than memory.
  constexpr unsigned kFlags = MDB_NOSYNC | MDB_NOTLS | MDB_NORDAHEAD;
  rc = mdb_env_open(raw, dir.c_str(), kFlags | (options.write_map ? MDB_WRITEMAP : 0), 0644);
  if (rc != 0) return LmdbError(where + ": mdb_env_open", rc);

  int dead = 0;
  rc = mdb_reader_check(raw, &dead);
  if (rc != 0) return LmdbError(where + ": mdb_reader_check", rc);
  if (dead > 0) spdlog::warn("{}: cleared {} stale reader slot(s) of dead processes", where, dead);
  store->stale_readers_cleared_ = dead;

  MDB_envinfo info;
  rc = mdb_env_info(raw, &info);
  if (rc != 0) return LmdbError(where + ": mdb_env_info", rc);
  store->map_size_ = info.me_mapsize;
  int max_key = mdb_env_get_maxkeysize(raw);
  store->max_key_size_ = max_key > 0 ? static_cast<size_t>(max_key) : 511;

  LmdbTxn txn;
  rc = txn.Begin(raw, 0);
  if (rc != 0) return LmdbError(where + ": beginning a transaction", rc);
  rc = mdb_dbi_open(txn.get(), nullptr, 0, &store->dbi_);
  if (rc != 0) return LmdbError(where + ": mdb_dbi_open", rc);
  rc = txn.Commit();
  if (rc != 0) return LmdbError(where + ": committing", rc);
  return store;
}

LmdbStateStore::~LmdbStateStore() {
  if (closed_) return;
  Status st = Flush();
  if (!st.ok())
    spdlog::warn("state store {}: pending writes lost at close: {}", dir_, st.message());
}

Status LmdbStateStore::EnsureTxn() const {
  if (closed_) return Status::RuntimeError("state store " + dir_ + " is closed");
  if (txn_) return Status::Ok();
  int rc = txn_.Begin(env_.get(), 0);
  if (rc != 0) return LmdbError("state store " + dir_ + ": beginning a write transaction", rc);
  return Status::Ok();
}

int LmdbStateStore::ApplyOne(const PendingOp& op) const {
  switch (op.type) {
    case OpType::kPut: {
      MDB_val k = ToVal(op.key);
      MDB_val v = ToVal(op.value);
      return mdb_put(txn_.get(), dbi_, &k, &v, 0);
    }
    case OpType::kDelete: {
      MDB_val k = ToVal(op.key);
      int rc = mdb_del(txn_.get(), dbi_, &k, nullptr);
      return rc == MDB_NOTFOUND ? 0 : rc;
    }
    case OpType::kClear:
      return mdb_drop(txn_.get(), dbi_, 0);
  }
  return EINVAL;
}

Status LmdbStateStore::Apply(PendingOp op) {
  SR_RETURN_IF_ERROR(EnsureTxn());
  int rc = ApplyOne(op);
  return Applied(std::move(op), rc);
}

// `op` was applied to the open transaction with result `rc`: keep it for a replay, grow the map
// if it did not fit, commit when the batch is full.
Status LmdbStateStore::Applied(PendingOp op, int rc) {
  if (rc != 0 && rc != MDB_MAP_FULL) {
    // The transaction may be unusable after a failed operation: start it over without this one.
    Status error = LmdbError("state store " + dir_ + ": writing", rc);
    txn_.Abort();
    Status replay = GrowAndReplay();
    return replay.ok() ? error : replay;
  }
  if (op.type == OpType::kClear) {
    batch_.clear();  // what came before a Clear no longer matters to a replay
    batch_bytes_ = 0;
  }
  batch_bytes_ += op.key.size() + op.value.size();
  batch_.push_back(std::move(op));
  if (rc == MDB_MAP_FULL) {
    txn_.Abort();
    SR_RETURN_IF_ERROR(DoubleMapSize());
    SR_RETURN_IF_ERROR(GrowAndReplay());
  }
  if (batch_.size() >= options_.ops_per_commit || batch_bytes_ >= options_.bytes_per_commit) {
    return CommitLocked();
  }
  return Status::Ok();
}

// Doubles map_size_, up to max_map_size; at the limit, drops the batch and fails.
Status LmdbStateStore::DoubleMapSize() {
  if (map_size_ >= options_.max_map_size) {
    batch_.clear();
    batch_bytes_ = 0;
    return Status::IoError("state store " + dir_ + " is full: it needs more than " +
                           std::to_string(options_.max_map_size) +
                           " bytes (max_map_size); the uncommitted writes are lost");
  }
  map_size_ = std::min(map_size_ * 2, options_.max_map_size);
  return Status::Ok();
}

// Applies the map size map_size_ (REQUIRES: no transaction of ours is alive), begins a new write
// transaction and replays the batch, doubling the map again as long as it does not fit.
Status LmdbStateStore::GrowAndReplay() {
  for (;;) {
    {
      // LMDB cannot remap while a reader of this process holds the old map.
      MutexLock lock(&snapshots_mu_);
      while (live_snapshots_ != 0) snapshots_cv_.Wait(&snapshots_mu_);
      int rc = mdb_env_set_mapsize(env_.get(), map_size_);
      if (rc != 0) return LmdbError("state store " + dir_ + ": growing the map", rc);
    }
    SR_RETURN_IF_ERROR(EnsureTxn());
    int rc = 0;
    for (const PendingOp& op : batch_) {
      rc = ApplyOne(op);
      if (rc != 0) break;
    }
    if (rc == 0) return Status::Ok();
    txn_.Abort();
    if (rc != MDB_MAP_FULL) {
      batch_.clear();
      batch_bytes_ = 0;
      return LmdbError("state store " + dir_ + ": replaying writes after growing the map", rc);
    }
    SR_RETURN_IF_ERROR(DoubleMapSize());
  }
}

Status LmdbStateStore::CommitLocked() {
  while (txn_) {
    int rc = txn_.Commit();
    if (rc == 0) break;
    if (rc != MDB_MAP_FULL) {
      batch_.clear();
      batch_bytes_ = 0;
      return LmdbError("state store " + dir_ + ": committing (the uncommitted writes are lost)",
                       rc);
    }
    SR_RETURN_IF_ERROR(DoubleMapSize());
    SR_RETURN_IF_ERROR(GrowAndReplay());
  }
  batch_.clear();
  batch_bytes_ = 0;
  return Status::Ok();
}

Status LmdbStateStore::Put(int key_group, std::string_view key, std::string_view ns,
                           std::string_view value) {
  SR_RETURN_IF_ERROR(CheckKeyGroup(key_group));
  std::string k = EncodeStateKey(key_group, key, ns);
  if (k.size() > max_key_size_) {
    return Status::RuntimeError("state key too long: " + std::to_string(k.size()) +
                                " bytes encoded, LMDB allows " + std::to_string(max_key_size_));
  }
  return Apply(PendingOp{OpType::kPut, std::move(k), std::string(value)});
}

Status LmdbStateStore::Get(int key_group, std::string_view key, std::string_view ns,
                           std::string* value, bool* found) const {
  *found = false;
  SR_RETURN_IF_ERROR(CheckKeyGroup(key_group));
  std::string k = EncodeStateKey(key_group, key, ns);
  if (k.size() > max_key_size_) return Status::Ok();  // cannot have been stored
  SR_RETURN_IF_ERROR(EnsureTxn());
  MDB_val kv = ToVal(k);
  MDB_val v;
  int rc = mdb_get(txn_.get(), dbi_, &kv, &v);
  if (rc == MDB_NOTFOUND) return Status::Ok();
  if (rc != 0) return LmdbError("state store " + dir_ + ": reading", rc);
  value->assign(static_cast<const char*>(v.mv_data), v.mv_size);
  *found = true;
  return Status::Ok();
}

Status LmdbStateStore::Take(int key_group, std::string_view key, std::string_view ns,
                            std::string* value, bool* found) {
  *found = false;
  SR_RETURN_IF_ERROR(CheckKeyGroup(key_group));
  std::string k = EncodeStateKey(key_group, key, ns);
  if (k.size() > max_key_size_) return Status::Ok();  // cannot have been stored
  SR_RETURN_IF_ERROR(EnsureTxn());
  int rc;
  {
    // One descent for both: the cursor stays on the entry it read.
    LmdbCursor cursor;
    rc = cursor.Open(txn_.get(), dbi_);
    if (rc != 0) return LmdbError("state store " + dir_ + ": opening a cursor", rc);
    MDB_val kv = ToVal(k);
    MDB_val v;
    rc = mdb_cursor_get(cursor.get(), &kv, &v, MDB_SET_KEY);
    if (rc == MDB_NOTFOUND) return Status::Ok();
    if (rc != 0) return LmdbError("state store " + dir_ + ": reading", rc);
    value->assign(static_cast<const char*>(v.mv_data), v.mv_size);
    *found = true;
    rc = mdb_cursor_del(cursor.get(), 0);
  }
  return Applied(PendingOp{OpType::kDelete, std::move(k), std::string()}, rc);
}

Status LmdbStateStore::Delete(int key_group, std::string_view key, std::string_view ns) {
  SR_RETURN_IF_ERROR(CheckKeyGroup(key_group));
  std::string k = EncodeStateKey(key_group, key, ns);
  if (k.size() > max_key_size_) return Status::Ok();
  return Apply(PendingOp{OpType::kDelete, std::move(k), std::string()});
}

Status LmdbStateStore::ForEach(int first_key_group, int last_key_group,
                               const Visitor& visit) const {
  SR_RETURN_IF_ERROR(EnsureTxn());
  return ScanRange(txn_.get(), dbi_, first_key_group, last_key_group, visit);
}

Status LmdbStateStore::Scan(int key_group, std::string_view from_key,
                            const ScanVisitor& visit) const {
  SR_RETURN_IF_ERROR(CheckKeyGroup(key_group));
  SR_RETURN_IF_ERROR(EnsureTxn());
  // The escaped key without its terminator: every entry of from_key or later keys sorts at or
  // after it.
  std::string start = EncodeStateKey(key_group, from_key, "");
  start.resize(start.size() - 2);
  return CursorScan(txn_.get(), dbi_, start, "state store " + dir_,
                    [&](int kg, std::string_view key, std::string_view ns, std::string_view value,
                        bool* stop) -> Status {
                      *stop = kg != key_group;
                      return *stop ? Status::Ok() : visit(key, ns, value, stop);
                    });
}

Status LmdbStateStore::Clear() { return Apply(PendingOp{OpType::kClear, {}, {}}); }

Status LmdbStateStore::Flush() {
  if (closed_) return Status::RuntimeError("state store " + dir_ + " is closed");
  return CommitLocked();
}

Status LmdbStateStore::Close() {
  if (closed_) return Status::Ok();
  Status st = Flush();
  txn_.Abort();
  closed_ = true;
  env_.Reset();
  return st;
}

Result<std::unique_ptr<LmdbStateSnapshot>> LmdbStateStore::Snapshot() {
  SR_RETURN_IF_ERROR(Flush());
  LmdbTxn txn;
  int rc = txn.Begin(env_.get(), MDB_RDONLY);
  if (rc != 0) return LmdbError("state store " + dir_ + ": beginning a snapshot", rc);
  {
    MutexLock lock(&snapshots_mu_);
    ++live_snapshots_;
  }
  return std::unique_ptr<LmdbStateSnapshot>(new LmdbStateSnapshot(this, std::move(txn)));
}

void LmdbStateStore::SnapshotEnded() {
  {
    MutexLock lock(&snapshots_mu_);
    --live_snapshots_;
  }
  snapshots_cv_.SignalAll();
}

LmdbStateSnapshot::~LmdbStateSnapshot() {
  txn_.Abort();
  store_->SnapshotEnded();
}

Status LmdbStateSnapshot::ForEach(int first_key_group, int last_key_group,
                                  const KeyedStateStore::Visitor& visit) const {
  return ScanRange(txn_.get(), store_->dbi_, first_key_group, last_key_group, visit);
}

}  // namespace streamrun
