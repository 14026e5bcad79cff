// RAII owners of LMDB handles, and LMDB return codes as Status.
//
// Every handle an LMDB call hands out is owned by one of these, so an early return can never
// leak an environment, a transaction (which would hold the writer lock or a reader slot) or a
// cursor. Destroying a live transaction aborts it.
//
// Thread safety: as LMDB's. A write transaction belongs to the thread that began it; with
// MDB_NOTLS a read-only transaction may move to another thread, used by one thread at a time.
#pragma once

#include <lmdb.h>

#include <string>
#include <string_view>
#include <utility>

#include "engine/status.h"

namespace streamrun {

// A Status for LMDB return code `rc` (non-zero): "WHAT: MESSAGE (mdb_strerror)".
inline Status LmdbError(std::string_view what, int rc) {
  return Status::IoError(std::string(what) + ": " + mdb_strerror(rc));
}

class LmdbEnv {
 public:
  LmdbEnv() = default;
  explicit LmdbEnv(MDB_env* env) : env_(env) {}
  LmdbEnv(LmdbEnv&& other) noexcept : env_(std::exchange(other.env_, nullptr)) {}
  LmdbEnv& operator=(LmdbEnv&& other) noexcept {
    if (this != &other) {
      Reset();
      env_ = std::exchange(other.env_, nullptr);
    }
    return *this;
  }
  LmdbEnv(const LmdbEnv&) = delete;
  LmdbEnv& operator=(const LmdbEnv&) = delete;
  ~LmdbEnv() { Reset(); }

  MDB_env* get() const { return env_; }
  // REQUIRES: no transaction of this environment is alive.
  void Reset() {
    if (env_ != nullptr) mdb_env_close(env_);
    env_ = nullptr;
  }

 private:
  MDB_env* env_ = nullptr;
};

class LmdbTxn {
 public:
  LmdbTxn() = default;
  LmdbTxn(LmdbTxn&& other) noexcept : txn_(std::exchange(other.txn_, nullptr)) {}
  LmdbTxn& operator=(LmdbTxn&& other) noexcept {
    if (this != &other) {
      Abort();
      txn_ = std::exchange(other.txn_, nullptr);
    }
    return *this;
  }
  LmdbTxn(const LmdbTxn&) = delete;
  LmdbTxn& operator=(const LmdbTxn&) = delete;
  ~LmdbTxn() { Abort(); }

  // Begins a transaction; `flags` is 0 or MDB_RDONLY. Returns the LMDB return code.
  int Begin(MDB_env* env, unsigned flags) {
    Abort();
    return mdb_txn_begin(env, nullptr, flags, &txn_);
  }
  // Commits. Whatever the outcome, the handle is gone afterwards (LMDB frees it on failure).
  int Commit() {
    MDB_txn* txn = std::exchange(txn_, nullptr);
    return txn == nullptr ? EINVAL : mdb_txn_commit(txn);
  }
  void Abort() {
    if (txn_ != nullptr) mdb_txn_abort(txn_);
    txn_ = nullptr;
  }
  MDB_txn* get() const { return txn_; }
  explicit operator bool() const { return txn_ != nullptr; }

 private:
  MDB_txn* txn_ = nullptr;
};

class LmdbCursor {
 public:
  LmdbCursor() = default;
  LmdbCursor(const LmdbCursor&) = delete;
  LmdbCursor& operator=(const LmdbCursor&) = delete;
  // REQUIRES: destroyed before its transaction ends (LMDB frees a write transaction's cursors
  // itself; a read-only transaction's cursors must be closed).
  ~LmdbCursor() {
    if (cursor_ != nullptr) mdb_cursor_close(cursor_);
  }

  int Open(MDB_txn* txn, MDB_dbi dbi) { return mdb_cursor_open(txn, dbi, &cursor_); }
  MDB_cursor* get() const { return cursor_; }

 private:
  MDB_cursor* cursor_ = nullptr;
};

}  // namespace streamrun
