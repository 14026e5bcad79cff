// Checkpoints and savepoints on disk: writing, verification, damage, crashes, full disks.
#include "engine/checkpoint_writer.h"

#include <doctest/doctest.h>
#include <sys/mount.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <string>

#include "engine/failpoint.h"
#include "engine/state_dir.h"
#include "tests/engine/temp_dir.h"

namespace streamrun {
namespace {

namespace fs = std::filesystem;

// Sets STREAMRUN_FAILPOINT for one scope.
class ScopedFailpoint {
 public:
  explicit ScopedFailpoint(const std::string& spec) {
    setenv("STREAMRUN_FAILPOINT", spec.c_str(), 1);
  }
  ~ScopedFailpoint() { unsetenv("STREAMRUN_FAILPOINT"); }
};

Status WriteCheckpoint(const std::string& state_dir, int64_t id,
                       const std::string& payload = "state", std::string* path = nullptr) {
  SR_ASSIGN_OR_RETURN(auto writer, CheckpointWriter::BeginCheckpoint(state_dir, id));
  SR_RETURN_IF_ERROR(writer->AddFile("window/kg-0-127.bin", payload + std::to_string(id)));
  SR_RETURN_IF_ERROR(writer->AddFile("sources.json", "{\"clicks\":42}"));
  SR_ASSIGN_OR_RETURN(std::string done,
                      writer->Finish("{\"sources\":{\"clicks\":{\"offset\":42}}}"));
  if (path != nullptr) *path = done;
  return Status::Ok();
}

std::string Chk(const TempDir& dir, int id) {
  return dir.path() + "/checkpoints/chk-" + std::to_string(id);
}

void RewriteFile(const std::string& path, const std::function<void(std::string&)>& edit) {
  std::string data;
  {
    std::ifstream in(path, std::ios::binary);
    data.assign(std::istreambuf_iterator<char>(in), {});
  }
  edit(data);
  std::ofstream(path, std::ios::binary | std::ios::trunc) << data;
}

// Runs `body` in a child process with STREAMRUN_FAILPOINT=`failpoint`; returns its exit code
// (kFailpointExitCode: it crashed there; 0 or 1: `body` returned Ok or an error).
int ExitCodeInChild(const char* failpoint, const std::function<Status()>& body) {
  pid_t pid = fork();
  REQUIRE(pid >= 0);
  if (pid == 0) {
    setenv("STREAMRUN_FAILPOINT", failpoint, 1);
    _exit(body().ok() ? 0 : 1);
  }
  int wstatus = 0;
  REQUIRE(waitpid(pid, &wstatus, 0) == pid);
  REQUIRE(WIFEXITED(wstatus));
  return WEXITSTATUS(wstatus);
}

}  // namespace

TEST_CASE("checkpoint: a finished checkpoint verifies, with its files and metadata") {
  TempDir dir;
  std::string path;
  REQUIRE(WriteCheckpoint(dir.path(), 1, "state", &path).ok());
  CHECK(path == Chk(dir, 1));
  CHECK_FALSE(fs::exists(path + ".tmp"));
  VerifyResult verified = VerifyCheckpoint(path);
  REQUIRE_MESSAGE(verified.ok(), verified.status.message());
  const Manifest& m = *verified.manifest;
  CHECK(m.version == kManifestVersion);
  CHECK(m.kind == SnapshotKind::kCheckpoint);
  CHECK(m.id == 1);
  CHECK(m.created_at_ms > 0);
  REQUIRE(m.files.size() == 2);
  CHECK(m.files[0].path == "window/kg-0-127.bin");
  CHECK(m.files[0].size == 6);
  CHECK(m.files[0].xxh3_128.size() == 32);
  CHECK(m.metadata_json == "{\"sources\":{\"clicks\":{\"offset\":42}}}");
}

TEST_CASE("checkpoint: the manifest checksum is XXH3-128 in canonical hex") {
  TempDir dir;
  auto writer = CheckpointWriter::BeginCheckpoint(dir.path(), 1);
  REQUIRE(writer.ok());
  REQUIRE((*writer)->AddFile("empty", "").ok());
  auto path = (*writer)->Finish();
  REQUIRE(path.ok());
  auto m = VerifyCheckpoint(*path).manifest;
  REQUIRE(m.has_value());
  // XXH3-128 of no bytes, as `xxhsum -H2` prints it.
  CHECK(m->files[0].xxh3_128 == "99aa06d3014798d86001c324468d497f");
}

TEST_CASE("checkpoint: flipped byte is detected") {
  TempDir dir;
  REQUIRE(WriteCheckpoint(dir.path(), 1).ok());
  RewriteFile(Chk(dir, 1) + "/window/kg-0-127.bin", [](std::string& s) { s[2] ^= 0x01; });
  VerifyResult verified = VerifyCheckpoint(Chk(dir, 1));
  CHECK_FALSE(verified.ok());
  CHECK(verified.damaged_file == "window/kg-0-127.bin");
  CHECK(verified.status.message().find("checksum") != std::string::npos);
}

TEST_CASE("checkpoint: truncated file is detected") {
  TempDir dir;
  REQUIRE(WriteCheckpoint(dir.path(), 1).ok());
  fs::resize_file(Chk(dir, 1) + "/sources.json", 3);
  VerifyResult verified = VerifyCheckpoint(Chk(dir, 1));
  CHECK_FALSE(verified.ok());
  CHECK(verified.damaged_file == "sources.json");
  CHECK(verified.status.message().find("truncated") != std::string::npos);
}

TEST_CASE("checkpoint: missing file is detected") {
  TempDir dir;
  REQUIRE(WriteCheckpoint(dir.path(), 1).ok());
  fs::remove(Chk(dir, 1) + "/sources.json");
  VerifyResult verified = VerifyCheckpoint(Chk(dir, 1));
  CHECK(verified.damaged_file == "sources.json");
  CHECK(verified.status.message().find("missing") != std::string::npos);
}

TEST_CASE("checkpoint: missing manifest means incomplete") {
  TempDir dir;
  REQUIRE(WriteCheckpoint(dir.path(), 1).ok());
  fs::remove(Chk(dir, 1) + "/MANIFEST.json");
  VerifyResult verified = VerifyCheckpoint(Chk(dir, 1));
  CHECK_FALSE(verified.ok());
  CHECK(verified.damaged_file == "MANIFEST.json");
  CHECK(verified.status.message().find("incomplete") != std::string::npos);
}

TEST_CASE("checkpoint: a damaged or newer manifest is refused with the reason") {
  TempDir dir;
  REQUIRE(WriteCheckpoint(dir.path(), 1).ok());
  std::string manifest = Chk(dir, 1) + "/MANIFEST.json";
  RewriteFile(manifest,
              [](std::string& s) { s.replace(s.find("\"version\": 1"), 12, "\"version\": 9"); });
  VerifyResult verified = VerifyCheckpoint(Chk(dir, 1));
  CHECK(verified.damaged_file == "MANIFEST.json");
  CHECK(verified.status.message().find("newer streamrun") != std::string::npos);
  RewriteFile(manifest, [](std::string& s) { s.resize(s.size() / 2); });
  CHECK(VerifyCheckpoint(Chk(dir, 1)).status.message().find("not JSON") != std::string::npos);
}

TEST_CASE("checkpoint: a manifest path outside the directory is refused") {
  CHECK_FALSE(IsSafeRelativePath("../x"));
  CHECK_FALSE(IsSafeRelativePath("/etc/passwd"));
  CHECK_FALSE(IsSafeRelativePath("a//b"));
  CHECK_FALSE(IsSafeRelativePath("a/./b"));
  CHECK(IsSafeRelativePath("a/b.bin"));
  TempDir dir;
  auto writer = CheckpointWriter::BeginCheckpoint(dir.path(), 1);
  REQUIRE(writer.ok());
  CHECK_FALSE((*writer)->AddFile("../escape", "x").ok());
  CHECK_FALSE((*writer)->AddFile("MANIFEST.json", "x").ok());
}

TEST_CASE("checkpoint: metadata must be a JSON object, else nothing is left behind") {
  TempDir dir;
  auto writer = CheckpointWriter::BeginCheckpoint(dir.path(), 1);
  REQUIRE(writer.ok());
  REQUIRE((*writer)->AddFile("a", "x").ok());
  auto done = (*writer)->Finish("[1, 2");
  CHECK_FALSE(done.ok());
  CHECK_FALSE(fs::exists(Chk(dir, 1) + ".tmp"));
  CHECK_FALSE(fs::exists(Chk(dir, 1)));
}

TEST_CASE("checkpoint: an existing checkpoint id is never overwritten") {
  TempDir dir;
  REQUIRE(WriteCheckpoint(dir.path(), 1).ok());
  CHECK_FALSE(CheckpointWriter::BeginCheckpoint(dir.path(), 1).ok());
  CHECK(VerifyCheckpoint(Chk(dir, 1)).ok());
}

TEST_CASE("checkpoint: latest complete skips a damaged newer one") {
  TempDir dir;
  REQUIRE(WriteCheckpoint(dir.path(), 1).ok());
  REQUIRE(WriteCheckpoint(dir.path(), 2).ok());
  REQUIRE(WriteCheckpoint(dir.path(), 3).ok());
  RewriteFile(Chk(dir, 3) + "/window/kg-0-127.bin", [](std::string& s) { s[0] = 'X'; });
  fs::create_directories(Chk(dir, 4) + ".tmp");  // a crash while writing the next one
  auto latest = LatestCompleteCheckpoint(dir.path());
  REQUIRE(latest.ok());
  REQUIRE(latest->checkpoint.has_value());
  CHECK(latest->checkpoint->id == 2);
  CHECK(latest->manifest->id == 2);
  REQUIRE(latest->skipped.size() == 1);
  CHECK(latest->skipped[0].path == Chk(dir, 3));
  CHECK(latest->skipped[0].reason.find("window/kg-0-127.bin") != std::string::npos);
  CHECK(*NextCheckpointId(dir.path()) == 5);
}

TEST_CASE("checkpoint: an empty state directory has no latest checkpoint") {
  TempDir dir;
  auto latest = LatestCompleteCheckpoint(dir.path());
  REQUIRE(latest.ok());
  CHECK_FALSE(latest->checkpoint.has_value());
  CHECK(*NextCheckpointId(dir.path()) == 1);
}

TEST_CASE("checkpoint: retain keeps the newest N and removes crash leftovers") {
  TempDir dir;
  for (int id = 1; id <= 5; ++id) REQUIRE(WriteCheckpoint(dir.path(), id).ok());
  fs::create_directories(Chk(dir, 2) + ".tmp");
  fs::create_directories(Chk(dir, 6) + ".tmp");  // may be a writer at work: kept
  REQUIRE(RetainCheckpoints(dir.path(), 2).ok());
  auto entries = ListCheckpoints(dir.path());
  REQUIRE(entries.ok());
  std::vector<std::string> names;
  for (const auto& e : *entries) names.push_back(fs::path(e.path).filename().string());
  CHECK(names == std::vector<std::string>{"chk-4", "chk-5", "chk-6.tmp"});
  CHECK_FALSE(RetainCheckpoints(dir.path(), 0).ok());
}

TEST_CASE("checkpoint: ENOSPC leaves the previous checkpoint intact") {
  TempDir dir;
  REQUIRE(WriteCheckpoint(dir.path(), 1).ok());
  {
    ScopedFailpoint fp("checkpoint.write=enospc");
    Status st = WriteCheckpoint(dir.path(), 2);
    CHECK_FALSE(st.ok());
    CHECK(st.code() == Status::Code::kIoError);
    CHECK(st.message().find("No space left on device") != std::string::npos);
    CHECK(st.message().find("disk is full") != std::string::npos);
  }
  CHECK_FALSE(fs::exists(Chk(dir, 2) + ".tmp"));
  CHECK_FALSE(fs::exists(Chk(dir, 2)));
  auto latest = LatestCompleteCheckpoint(dir.path());
  REQUIRE(latest.ok());
  CHECK(latest->checkpoint->id == 1);
}

TEST_CASE("checkpoint: a really full disk (tmpfs) leaves the previous checkpoint intact") {
  TempDir dir;
  if (::mount("tmpfs", dir.path().c_str(), "tmpfs", 0, "size=512k") != 0) {
    MESSAGE("skipped: cannot mount a tmpfs here (" << std::strerror(errno) << ")");
    return;
  }
  struct Unmount {
    std::string path;
    ~Unmount() { ::umount2(path.c_str(), MNT_DETACH); }
  } unmount{dir.path()};
  REQUIRE(WriteCheckpoint(dir.path(), 1).ok());
  Status st = WriteCheckpoint(dir.path(), 2, std::string(1 << 20, 'x'));
  CHECK_FALSE(st.ok());
  CHECK(st.message().find("No space left on device") != std::string::npos);
  CHECK_FALSE(fs::exists(Chk(dir, 2) + ".tmp"));
  CHECK(VerifyCheckpoint(Chk(dir, 1)).ok());
  CHECK(WriteCheckpoint(dir.path(), 3).ok());  // space came back with the removed .tmp
}

TEST_CASE("checkpoint: an error at any phase removes the attempt and keeps the previous one") {
  for (const char* phase :
       {"checkpoint.write", "checkpoint.after_file", "checkpoint.before_dir_fsync",
        "checkpoint.before_manifest", "checkpoint.after_manifest"}) {
    INFO(std::string(phase));
    TempDir dir;
    REQUIRE(WriteCheckpoint(dir.path(), 1).ok());
    {
      ScopedFailpoint fp(std::string(phase) + "=error");
      Status st = WriteCheckpoint(dir.path(), 2);
      CHECK_FALSE(st.ok());
      // A write fails as the disk would (EIO); the other phases name the failpoint.
      CHECK((st.message().find("injected error") != std::string::npos ||
             st.message().find("Input/output error") != std::string::npos));
    }
    CHECK_FALSE(fs::exists(Chk(dir, 2) + ".tmp"));
    CHECK(LatestCompleteCheckpoint(dir.path())->checkpoint->id == 1);
  }
}

TEST_CASE("checkpoint: a crash at every phase recovers to the last complete checkpoint") {
  struct Case {
    const char* failpoint;
    int64_t expected_latest;
  };
  for (const Case& c : {Case{"checkpoint.write", 1}, Case{"checkpoint.before_fsync", 1},
                        Case{"checkpoint.after_file", 1}, Case{"checkpoint.before_dir_fsync", 1},
                        Case{"checkpoint.before_manifest", 1}, Case{"checkpoint.after_manifest", 1},
                        Case{"checkpoint.after_rename", 2}}) {
    INFO(std::string(c.failpoint));
    TempDir dir;
    REQUIRE(WriteCheckpoint(dir.path(), 1).ok());
    CHECK(ExitCodeInChild(c.failpoint, [&] { return WriteCheckpoint(dir.path(), 2); }) ==
          kFailpointExitCode);
    auto latest = LatestCompleteCheckpoint(dir.path());
    REQUIRE(latest.ok());
    REQUIRE(latest->checkpoint.has_value());
    CHECK(latest->checkpoint->id == c.expected_latest);
    CHECK(latest->skipped.empty());
    // The next run takes a fresh id and tidies the leftover.
    CHECK(*NextCheckpointId(dir.path()) == 3);
    REQUIRE(WriteCheckpoint(dir.path(), 3).ok());
    REQUIRE(RetainCheckpoints(dir.path(), 5).ok());
    CHECK_FALSE(fs::exists(Chk(dir, 2) + ".tmp"));
  }
}

TEST_CASE("savepoint: same manifest with kind savepoint, under sp-<UTC time>") {
  TempDir dir;
  std::string parent = SavepointsDir(dir.path());
  auto first = CheckpointWriter::BeginSavepoint(parent, 7);
  auto second = CheckpointWriter::BeginSavepoint(parent, 8);  // same millisecond is possible
  REQUIRE(first.ok());
  REQUIRE(second.ok());
  CHECK((*first)->final_path() != (*second)->final_path());
  REQUIRE((*first)->AddFile("window/kg-0-127.bin", "abc").ok());
  auto path = (*first)->Finish();
  REQUIRE(path.ok());
  CHECK(fs::path(*path).filename().string().rfind("sp-20", 0) == 0);
  VerifyResult verified = VerifyCheckpoint(*path);
  REQUIRE(verified.ok());
  CHECK(verified.manifest->kind == SnapshotKind::kSavepoint);
  CHECK(verified.manifest->id == 7);
}

TEST_CASE("savepoint: a crash's leftover goes at the next savepoint, one being written stays") {
  TempDir dir;
  const std::string parent = SavepointsDir(dir.path());
  REQUIRE(ExitCodeInChild("savepoint.after_manifest", [&]() -> Status {
            SR_ASSIGN_OR_RETURN(auto writer, CheckpointWriter::BeginSavepoint(parent, 3));
            SR_RETURN_IF_ERROR(writer->AddFile("w/0.state", "abc"));
            return writer->Finish().status();
          }) == kFailpointExitCode);
  auto before = ListSavepoints(dir.path());
  REQUIRE(before.ok());
  REQUIRE(before->size() == 1);
  const std::string leftover = (*before)[0].path;
  CHECK((*before)[0].in_progress);
  CHECK((*before)[0].has_manifest);

  // A savepoint being written (locked by its writer, here in this process) is not a leftover.
  auto busy = CheckpointWriter::BeginSavepoint(parent, 4);
  REQUIRE(busy.ok());
  CHECK_FALSE(fs::exists(leftover));
  auto removed = RemoveAbandonedSavepoints(parent);
  REQUIRE(removed.ok());
  CHECK(removed->empty());
  CHECK(fs::exists((*busy)->tmp_path()));
  REQUIRE((*busy)->AddFile("w/0.state", "def").ok());
  auto path = (*busy)->Finish();
  REQUIRE(path.ok());
  CHECK(VerifyCheckpoint(*path).ok());
  auto after = ListSavepoints(dir.path());
  REQUIRE(after.ok());
  REQUIRE(after->size() == 1);
  CHECK_FALSE((*after)[0].in_progress);

  // Left unlocked by an aborted writer, or a directory nobody writes: removed.
  fs::create_directories(parent + "/sp-20250101T000000.000Z.tmp");
  removed = RemoveAbandonedSavepoints(parent);
  REQUIRE(removed.ok());
  CHECK(removed->size() == 1);
  CHECK(fs::exists(*path));
  CHECK(RemoveAbandonedSavepoints(dir.path() + "/none")->empty());
}

TEST_CASE("failpoint: a comma-separated list arms each name") {
  ScopedFailpoint fp("a.b=error,c.d=enospc");
  CHECK(CheckFailpoint("a.b") == FailpointAction::kError);
  CHECK(CheckFailpoint("c.d") == FailpointAction::kEnospc);
  CHECK(CheckFailpoint("a") == FailpointAction::kNone);
  CHECK(Failpoint("x").ok());
}

}  // namespace streamrun

namespace streamrun {

TEST_CASE("checkpoint: without checksums a truncated file is found, a flipped byte is not") {
  TempDir dir;
  REQUIRE(WriteCheckpoint(dir.path(), 1).ok());
  RewriteFile(Chk(dir, 1) + "/window/kg-0-127.bin", [](std::string& s) { s[2] ^= 0x01; });
  CHECK(VerifyCheckpoint(Chk(dir, 1), false).ok());
  CHECK_FALSE(VerifyCheckpoint(Chk(dir, 1), true).ok());
  fs::resize_file(Chk(dir, 1) + "/sources.json", 3);
  VerifyResult quick = VerifyCheckpoint(Chk(dir, 1), false);
  CHECK(quick.damaged_file == "sources.json");
}

TEST_CASE("checkpoint: savepoints are listed oldest first, a .tmp as in progress") {
  TempDir dir;
  CHECK(ListSavepoints(dir.path())->empty());
  for (std::string name : {"sp-20250102T030405.678Z", "sp-20250101T000000.000Z",
                           "sp-20250103T000000.000Z.tmp", "other"}) {
    fs::create_directories(dir.path() + "/savepoints/" + name);
  }
  std::ofstream(dir.path() + "/savepoints/sp-20250101T000000.000Z/MANIFEST.json") << "{}";
  auto list = ListSavepoints(dir.path());
  REQUIRE(list.ok());
  REQUIRE(list->size() == 3);
  CHECK(fs::path((*list)[0].path).filename() == "sp-20250101T000000.000Z");
  CHECK((*list)[0].has_manifest);
  CHECK_FALSE((*list)[1].has_manifest);
  CHECK((*list)[2].in_progress);
  CHECK_FALSE((*list)[0].in_progress);
}

}  // namespace streamrun

namespace streamrun {

TEST_CASE("checkpoint: a deletion cut short by a crash leaves nothing that looks damaged") {
  TempDir dir;
  for (int id = 1; id <= 3; ++id) REQUIRE(WriteCheckpoint(dir.path(), id).ok());
  // What a crash in the middle of removing chk-1 leaves: renamed, some files gone.
  fs::rename(Chk(dir, 1), Chk(dir, 1) + ".deleting");
  fs::remove(Chk(dir, 1) + ".deleting/sources.json");
  auto list = ListCheckpoints(dir.path());
  REQUIRE(list.ok());
  REQUIRE(list->size() == 2);
  CHECK((*list)[0].id == 2);
  REQUIRE(WriteCheckpoint(dir.path(), 4).ok());
  REQUIRE(RetainCheckpoints(dir.path(), 2).ok());
  CHECK_FALSE(fs::exists(Chk(dir, 1) + ".deleting"));
  CHECK_FALSE(fs::exists(Chk(dir, 2)));
  CHECK_FALSE(fs::exists(Chk(dir, 2) + ".deleting"));
  CHECK(fs::exists(Chk(dir, 3)));

  REQUIRE(ForgetCheckpoints(dir.path()).ok());
  CHECK_FALSE(fs::exists(dir.path() + "/checkpoints"));
  CHECK_FALSE(fs::exists(dir.path() + "/checkpoints.deleting"));
  CHECK(ForgetCheckpoints(dir.path()).ok());  // nothing to forget
  CHECK(*NextCheckpointId(dir.path()) == 1);
}

}  // namespace streamrun
