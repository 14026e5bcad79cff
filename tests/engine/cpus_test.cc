// Tests of the CPU count (engine/cpus.h): cgroup CPU quotas read from a fake cgroup tree.
#include "engine/cpus.h"

#include <doctest/doctest.h>
#include <sched.h>

#include <filesystem>
#include <fstream>
#include <string>

#include "tests/engine/temp_dir.h"

namespace streamrun {
namespace {

void Write(const std::string& path, const std::string& text) {
  std::filesystem::create_directories(std::filesystem::path(path).parent_path());
  std::ofstream(path) << text << "\n";
}

}  // namespace

TEST_CASE("cpus: a cgroup v2 quota counts in whole CPUs, rounded up") {
  TempDir root;
  Write(root / "cgroup.controllers", "cpu memory");
  Write(root / "job/cpu.max", "150000 100000");
  CHECK(CgroupCpuLimit("0::/job\n", root.path()) == 2);
  Write(root / "job/cpu.max", "100000 100000");
  CHECK(CgroupCpuLimit("0::/job\n", root.path()) == 1);
  Write(root / "job/cpu.max", "50000 100000");  // half a CPU is still one
  CHECK(CgroupCpuLimit("0::/job\n", root.path()) == 1);
}

TEST_CASE("cpus: no quota, or none readable, is no limit") {
  TempDir root;
  Write(root / "job/cpu.max", "max 100000");
  CHECK_FALSE(CgroupCpuLimit("0::/job\n", root.path()).has_value());
  CHECK_FALSE(CgroupCpuLimit("0::/elsewhere\n", root.path()).has_value());
  Write(root / "job/cpu.max", "garbage");
  CHECK_FALSE(CgroupCpuLimit("0::/job\n", root.path()).has_value());
  CHECK_FALSE(CgroupCpuLimit("", root.path()).has_value());
  CHECK_FALSE(CgroupCpuLimit("not a cgroup line\n", root.path()).has_value());
}

TEST_CASE("cpus: the smallest quota from the process's cgroup up to the root applies") {
  TempDir root;
  Write(root / "a/cpu.max", "300000 100000");
  Write(root / "a/b/cpu.max", "max 100000");
  Write(root / "a/b/c/cpu.max", "400000 100000");
  CHECK(CgroupCpuLimit("0::/a/b/c\n", root.path()) == 3);
  Write(root / "cpu.max", "200000 100000");  // the mount's root (a container's own cgroup)
  CHECK(CgroupCpuLimit("0::/a/b/c\n", root.path()) == 2);
}

TEST_CASE("cpus: a path the mount does not have is skipped on the way up") {
  // A container without its own cgroup namespace reads the host's path in /proc/self/cgroup,
  // while its /sys/fs/cgroup shows its own cgroup at the root.
  TempDir root;
  Write(root / "cpu.max", "200000 100000");
  CHECK(CgroupCpuLimit("0::/docker/0123abcd\n", root.path()) == 2);
}

TEST_CASE("cpus: cgroup v1's cfs quota, and hybrid systems with v2 under unified/") {
  TempDir root;
  Write(root / "cpu,cpuacct/job/cpu.cfs_quota_us", "250000");
  Write(root / "cpu,cpuacct/job/cpu.cfs_period_us", "100000");
  const std::string v1 = "4:memory:/job\n3:cpu,cpuacct:/job\n0::/\n";
  CHECK(CgroupCpuLimit(v1, root.path()) == 3);
  Write(root / "cpu,cpuacct/job/cpu.cfs_quota_us", "-1");
  CHECK_FALSE(CgroupCpuLimit(v1, root.path()).has_value());
  // The memory controller's files are not the cpu controller's.
  Write(root / "memory/job/cpu.cfs_quota_us", "100000");
  Write(root / "memory/job/cpu.cfs_period_us", "100000");
  CHECK_FALSE(CgroupCpuLimit(v1, root.path()).has_value());
  Write(root / "unified/cpu.max", "100000 100000");
  CHECK(CgroupCpuLimit(v1, root.path()) == 1);
}

TEST_CASE("cpus: never more than the CPUs the process may run on, never fewer than one") {
  cpu_set_t set;
  REQUIRE(sched_getaffinity(0, sizeof set, &set) == 0);
  CHECK(UsableCpus() >= 1);
  CHECK(UsableCpus() <= CPU_COUNT(&set));
}

}  // namespace streamrun
