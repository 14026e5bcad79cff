// The checkpoint coordinator on its own: tasks are played by the test, which acks (or does not)
// each barrier, so a checkpoint's timeout and what follows it are exact.
#include "engine/checkpoint_coordinator.h"

#include <doctest/doctest.h>

#include <chrono>
#include <filesystem>
#include <functional>
#include <thread>

#include "engine/restore.h"
#include "engine/state_dir.h"
#include "tests/engine/temp_dir.h"

namespace streamrun {
namespace {

namespace fs = std::filesystem;

// Polls `done` for up to 10 s.
bool WaitFor(const std::function<bool()>& done) {
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  while (!done()) {
    if (std::chrono::steady_clock::now() > deadline) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
  }
  return true;
}

// A job of two tasks: task 0 runs the source "s", task 1 the step "w" (no state).
CheckpointOptions Options(const TempDir& dir, int64_t interval_ms) {
  CheckpointOptions o;
  o.state_dir = dir / "state";
  o.job_name = "t";
  o.interval_ms = interval_ms;
  o.timeout_ms = 300;
  return o;
}

std::vector<CheckpointNode> Nodes() {
  CheckpointNode s;
  s.name = "s";
  s.role = NodeRole::kSource;
  s.type = "file";
  CheckpointNode w;
  w.name = "w";
  w.role = NodeRole::kStep;
  w.type = "filter";
  return {s, w};
}

std::vector<SnapshotPart> SourceAt(int64_t offset) {
  SnapshotPart part;
  part.node = 0;
  part.position = "{\"offset\":" + std::to_string(offset) + ",\"max_ts\":null}";
  return {part};
}

}  // namespace

TEST_CASE(
    "checkpoint coordinator: a checkpoint whose acks time out is aborted, the next completes") {
  TempDir dir;
  CheckpointCoordinator c(Options(dir, 20), Nodes(), 2);
  c.Start();
  REQUIRE(WaitFor([&] { return c.requested() == 1; }));
  c.Ack(1, 0, SourceAt(10));  // task 1 never passes barrier 1
  REQUIRE(WaitFor([&] { return c.failed_count() >= 1; }));
  CHECK(c.completed() == 0);
  CHECK_FALSE(c.last_completed().has_value());
  // Nothing of it on disk: it was never written.
  auto listed = ListCheckpoints(dir / "state");
  REQUIRE(listed.ok());
  CHECK(listed->empty());

  // The job goes on: the next barrier gets a new id; task 1's late ack of 1 is ignored.
  REQUIRE(WaitFor([&] { return c.requested() >= 2; }));
  c.Ack(1, 1, {});
  REQUIRE(WaitFor([&] {
    uint64_t id = c.requested();  // acks of an id already acked or aborted are ignored
    c.Ack(id, 0, SourceAt(20));
    c.Ack(id, 1, {});
    return c.completed() >= 2;
  }));
  c.Stop();
  auto latest = LatestCompleteCheckpoint(dir / "state");
  REQUIRE(latest.ok());
  REQUIRE(latest->checkpoint.has_value());
  CHECK(latest->checkpoint->id >= 2);
  CHECK_FALSE(fs::exists(dir / "state/checkpoints/chk-1"));
  CHECK_FALSE(fs::exists(dir / "state/checkpoints/chk-1.tmp"));
  auto info = ReadSnapshotInfo(latest->checkpoint->path);
  REQUIRE_MESSAGE(info.ok(), info.status().message());
  REQUIRE(info->Find("s") != nullptr);
  CHECK(info->Find("s")->positions[0].find("\"offset\":20") != std::string::npos);
}

TEST_CASE("checkpoint coordinator: a savepoint whose acks time out fails, the next one is taken") {
  TempDir dir;
  CheckpointCoordinator c(Options(dir, 0), Nodes(), 2);
  c.Start();
  const std::string parent = dir / "state/savepoints";
  Result<std::string> first = Status::RuntimeError("not returned");
  std::thread caller([&] { first = c.Savepoint(parent); });
  REQUIRE(WaitFor([&] { return c.requested() == 1; }));
  c.Ack(1, 1, {});  // the source's task never passes the barrier
  caller.join();
  REQUIRE_FALSE(first.ok());
  CHECK(first.status().message().find("timed out") != std::string::npos);
  CHECK(c.failed_count() == 1);
  auto none = ListSavepoints(dir / "state");
  REQUIRE(none.ok());
  CHECK(none->empty());

  Result<std::string> second = Status::RuntimeError("not returned");
  caller = std::thread([&] { second = c.Savepoint(parent); });
  REQUIRE(WaitFor([&] { return c.requested() == 2; }));
  c.Ack(2, 0, SourceAt(30));
  c.Ack(2, 1, {});
  caller.join();
  c.Stop();
  REQUIRE_MESSAGE(second.ok(), second.status().message());
  CHECK(VerifyCheckpoint(*second).ok());
}

}  // namespace streamrun
