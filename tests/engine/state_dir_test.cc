// The state directory's lock and the --fresh move-aside.
#include "engine/state_dir.h"

#include <doctest/doctest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>

#include "tests/engine/temp_dir.h"

namespace streamrun {

namespace fs = std::filesystem;

TEST_CASE("state dir: second lock is refused with the pid") {
  TempDir dir;
  std::string state = dir / "job";
  auto first = StateDirLock::Acquire(state);
  REQUIRE_MESSAGE(first.ok(), first.status().message());
  auto second = StateDirLock::Acquire(state);
  REQUIRE_FALSE(second.ok());
  CHECK(second.status().message() == "state directory " + state +
                                         " is in use by another streamrun (pid " +
                                         std::to_string(getpid()) + ")");
  first = Status::RuntimeError("released");
  CHECK(StateDirLock::Acquire(state).ok());
}

TEST_CASE("state dir: fresh moves state aside, keeping the lock and the savepoints") {
  TempDir dir;
  std::string state = dir / "job";
  auto lock = StateDirLock::Acquire(state);
  REQUIRE(lock.ok());
  fs::create_directories(state + "/checkpoints/chk-1");
  fs::create_directories(state + "/savepoints/sp-1");
  std::ofstream(state + "/checkpoints/chk-1/MANIFEST.json") << "{}";
  auto moved = MoveStateAside(state);
  REQUIRE_MESSAGE(moved.ok(), moved.status().message());
  CHECK(fs::path(*moved).parent_path() == fs::path(dir.path()));
  CHECK(fs::path(*moved).filename().string().rfind("job.old-", 0) == 0);
  CHECK(fs::exists(*moved + "/checkpoints/chk-1/MANIFEST.json"));
  CHECK_FALSE(fs::exists(state + "/checkpoints"));
  CHECK(fs::exists(state + "/LOCK"));
  CHECK(fs::exists(state + "/savepoints/sp-1"));
  auto again = MoveStateAside(state);  // nothing left to move
  REQUIRE(again.ok());
  CHECK(again->empty());
}

}  // namespace streamrun
