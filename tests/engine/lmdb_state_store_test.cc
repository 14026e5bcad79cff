// What only the LMDB store does: growth, persistence across reopen, snapshots, the key encoding.
#include "engine/lmdb_state_store.h"

#include <doctest/doctest.h>
#include <lmdb.h>
#include <sys/wait.h>
#include <unistd.h>

#include <string>
#include <thread>

#include "tests/engine/temp_dir.h"

namespace streamrun {
namespace {

std::unique_ptr<LmdbStateStore> OpenStore(const std::string& dir,
                                          const LmdbStateStoreOptions& options = {}) {
  auto store = LmdbStateStore::Open(dir, options);
  REQUIRE_MESSAGE(store.ok(), store.status().message());
  return std::move(store).value();
}

std::string ValueFor(int i) {
  std::string v(10000, static_cast<char>('a' + i % 26));
  v += std::to_string(i);
  return v;
}

// A child process that opens the environment in `dir` and begins a read transaction (taking a
// reader slot). `die`: it exits at once without ending it, leaving the slot behind; otherwise it
// lives until *release (a pipe) is closed. Returns its pid once its transaction is open.
// REQUIRES: the calling process has no environment of `dir` open (LMDB and fork()).
pid_t ForkReader(const std::string& dir, bool die, int* release) {
  int ready[2], hold[2];
  REQUIRE(::pipe(ready) == 0);
  REQUIRE(::pipe(hold) == 0);
  pid_t pid = ::fork();
  REQUIRE(pid >= 0);
  if (pid == 0) {
    ::close(ready[0]);
    ::close(hold[1]);
    MDB_env* env = nullptr;
    MDB_txn* txn = nullptr;
    char ok = mdb_env_create(&env) == 0 && mdb_env_open(env, dir.c_str(), MDB_NOTLS, 0644) == 0 &&
              mdb_txn_begin(env, nullptr, MDB_RDONLY, &txn) == 0;
    if (::write(ready[1], &ok, 1) != 1) ::_exit(1);
    if (!die) {
      char c;
      while (::read(hold[0], &c, 1) > 0) {
      }
    }
    ::_exit(0);  // no mdb_txn_abort, no mdb_env_close: like a crash
  }
  ::close(ready[1]);
  ::close(hold[0]);
  char ok = 0;
  REQUIRE(::read(ready[0], &ok, 1) == 1);
  ::close(ready[0]);
  REQUIRE(ok == 1);
  *release = hold[1];
  return pid;
}

}  // namespace

TEST_CASE("lmdb state store: a 64 KiB map grows to hold 50 MB without an error") {
  TempDir dir;
  LmdbStateStoreOptions options;
  options.initial_map_size = 64 << 10;
  options.ops_per_commit = 1000;
  auto store = OpenStore(dir / "env", options);
  constexpr int kEntries = 5000;  // 10 KB each: 50 MB
  for (int i = 0; i < kEntries; ++i) {
    Status st = store->Put(i % 128, "key" + std::to_string(i), "", ValueFor(i));
    REQUIRE_MESSAGE(st.ok(), st.message());
  }
  REQUIRE(store->Flush().ok());
  CHECK(store->map_size() >= size_t{50} << 20);
  for (int i : {0, 1, 2499, 4999}) {
    std::string v;
    bool found = false;
    CHECK(store->Get(i % 128, "key" + std::to_string(i), "", &v, &found).ok());
    CHECK(found);
    CHECK(v == ValueFor(i));
  }
}

TEST_CASE("lmdb state store: growth stops at max_map_size with a clear error") {
  TempDir dir;
  LmdbStateStoreOptions options;
  options.initial_map_size = 64 << 10;
  options.max_map_size = 1 << 20;
  auto store = OpenStore(dir / "env", options);
  Status st;
  for (int i = 0; i < 1000 && st.ok(); ++i) st = store->Put(0, std::to_string(i), "", ValueFor(i));
  CHECK_FALSE(st.ok());
  CHECK(st.message().find("is full") != std::string::npos);
}

TEST_CASE("lmdb state store: data survives close and reopen") {
  TempDir dir;
  {
    auto store = OpenStore(dir / "env");
    CHECK(store->Put(4, "k", "w1", "v").ok());
    CHECK(store->Put(4, "gone", "", "v").ok());
    CHECK(store->Delete(4, "gone", "").ok());
    CHECK(store->Close().ok());
  }
  {
    auto store = OpenStore(dir / "env");  // closed by the destructor this time
    CHECK(store->Put(5, "k2", "", "v2").ok());
  }
  auto store = OpenStore(dir / "env");
  std::string v;
  bool found = false;
  CHECK(store->Get(4, "k", "w1", &v, &found).ok());
  CHECK(found);
  CHECK(v == "v");
  CHECK(store->Get(4, "gone", "", &v, &found).ok());
  CHECK_FALSE(found);
  CHECK(store->Get(5, "k2", "", &v, &found).ok());
  CHECK(found);
}

TEST_CASE("lmdb state store: a snapshot read on another thread ignores later writes") {
  TempDir dir;
  auto store = OpenStore(dir / "env");
  CHECK(store->Put(1, "a", "", "old").ok());
  auto snapshot = store->Snapshot();
  REQUIRE(snapshot.ok());
  CHECK(store->Put(1, "a", "", "new").ok());
  CHECK(store->Put(1, "b", "", "new").ok());
  CHECK(store->Flush().ok());
  std::string seen;
  std::thread copier([&] {
    Status st = (*snapshot)->ForEach(
        0, 127, [&](int, std::string_view key, std::string_view, std::string_view value) {
          seen += std::string(key) + "=" + std::string(value) + ";";
          return Status::Ok();
        });
    CHECK(st.ok());
  });
  copier.join();
  CHECK(seen == "a=old;");
  snapshot = Status::RuntimeError("released");  // ends the snapshot before the store
}

TEST_CASE("lmdb state store: growth waits for a snapshot to end") {
  TempDir dir;
  LmdbStateStoreOptions options;
  options.initial_map_size = 64 << 10;
  auto store = OpenStore(dir / "env", options);
  CHECK(store->Put(1, "a", "", "old").ok());
  auto snapshot = store->Snapshot();
  REQUIRE(snapshot.ok());
  std::thread reader([s = std::move(snapshot).value()]() mutable {
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
    int n = 0;
    CHECK(s->ForEach(0, 127, [&](int, std::string_view, std::string_view, std::string_view) {
             ++n;
             return Status::Ok();
           }).ok());
    CHECK(n == 1);
    s.reset();
  });
  Status st;
  for (int i = 0; i < 100 && st.ok(); ++i) st = store->Put(2, std::to_string(i), "", ValueFor(i));
  CHECK_MESSAGE(st.ok(), st.message());
  reader.join();
  CHECK(store->map_size() > size_t{64} << 10);
}

TEST_CASE("lmdb state store: a key too long for LMDB is refused, not truncated") {
  TempDir dir;
  auto store = OpenStore(dir / "env");
  Status st = store->Put(1, std::string(600, 'k'), "", "v");
  CHECK_FALSE(st.ok());
  CHECK(st.message().find("state key too long") != std::string::npos);
  CHECK(store->Put(1, "ok", "", "v").ok());  // the store goes on working
}

TEST_CASE("lmdb state store: key encoding round trips and keeps tuple order") {
  using namespace std::string_literals;
  for (const auto& [kg, key, ns] : {std::tuple{0, ""s, ""s}, std::tuple{300, "a\0b"s, "\0"s},
                                    std::tuple{65535, "\xFF\0\x01"s, "ns"s}}) {
    std::string encoded = EncodeStateKey(kg, key, ns);
    int kg2 = -1;
    std::string key2;
    std::string_view ns2;
    REQUIRE(DecodeStateKey(encoded, &kg2, &key2, &ns2));
    CHECK(kg2 == kg);
    CHECK(key2 == key);
    CHECK(ns2 == ns);
  }
  CHECK(EncodeStateKey(1, "a", "zz") < EncodeStateKey(1, "a\0"s, ""));
  CHECK(EncodeStateKey(1, "a\0"s, "") < EncodeStateKey(1, "ab", ""));
  int kg;
  std::string key;
  std::string_view ns;
  CHECK_FALSE(
      DecodeStateKey("\x00\x01"s
                     "abc",
                     &kg, &key, &ns));  // no terminator
}

}  // namespace streamrun

namespace streamrun {

TEST_CASE("lmdb state store: take reads and removes in one step, also while the map grows") {
  TempDir dir;
  LmdbStateStoreOptions options;
  options.initial_map_size = 64 << 10;
  options.write_map = true;
  auto store = OpenStore(dir / "env", options);
  for (int i = 0; i < 2000; ++i)
    REQUIRE(store->Put(i % 7, "k" + std::to_string(i), "n", ValueFor(i)).ok());
  std::string value;
  bool found = false;
  for (int i = 0; i < 2000; i += 3) {
    REQUIRE(store->Take(i % 7, "k" + std::to_string(i), "n", &value, &found).ok());
    CHECK(found);
    CHECK(value == ValueFor(i));
    REQUIRE(store->Take(i % 7, "k" + std::to_string(i), "n", &value, &found).ok());
    CHECK(!found);
  }
  REQUIRE(store->Get(1, "k1", "n", &value, &found).ok());
  CHECK(found);
}

TEST_CASE(
    "lmdb state store: a scan from a key sees that key's entries first, and stops when told") {
  TempDir dir;
  auto store = OpenStore(dir / "env");
  for (std::string key : {"a", "ab", "abc", "b"}) {
    for (std::string ns : {"1", "2"}) REQUIRE(store->Put(3, key, ns, key + ns).ok());
  }
  REQUIRE(store->Put(4, "ab", "1", "other group").ok());
  std::vector<std::string> seen;
  REQUIRE(store
              ->Scan(3, "ab",
                     [&](std::string_view k, std::string_view, std::string_view v, bool* stop) {
                       *stop = k != "ab";
                       if (!*stop) seen.emplace_back(v);
                       return Status::Ok();
                     })
              .ok());
  CHECK(seen == std::vector<std::string>{"ab1", "ab2"});
  seen.clear();
  REQUIRE(store
              ->Scan(3, "abc",
                     [&](std::string_view, std::string_view, std::string_view v, bool*) {
                       seen.emplace_back(v);
                       return Status::Ok();
                     })
              .ok());
  CHECK(seen == std::vector<std::string>{"abc1", "abc2", "b1", "b2"});  // not group 4
}

TEST_CASE("lmdb state store: reader slots of dead processes are cleared at open, live ones kept") {
  TempDir dir;
  const std::string env = dir / "env";
  {
    auto store = OpenStore(env);
    CHECK(store->Put(1, "k", "", "v").ok());
    CHECK(store->Close().ok());
  }
  // A live process keeps the environment open (else the next open would reset the whole reader
  // table, being the only user), with a reader slot of its own; a dead one left its slot.
  int release_live = -1, release_dead = -1;
  pid_t live = ForkReader(env, false, &release_live);
  pid_t dead = ForkReader(env, true, &release_dead);
  ::close(release_dead);
  int status = 0;
  REQUIRE(::waitpid(dead, &status, 0) == dead);
  {
    auto store = OpenStore(env);
    CHECK(store->stale_readers_cleared() == 1);
    std::string v;
    bool found = false;
    CHECK(store->Get(1, "k", "", &v, &found).ok());
    CHECK(found);
    CHECK(store->Close().ok());
  }
  {
    auto store = OpenStore(env);  // nothing left to clear; the live reader stays
    CHECK(store->stale_readers_cleared() == 0);
    CHECK(store->Close().ok());
  }
  ::close(release_live);
  REQUIRE(::waitpid(live, &status, 0) == live);
}

}  // namespace streamrun
