// How many CPUs the process can keep busy: what decides, for example, whether a file source's
// subtasks get reader threads (operators/file_source.cc).
//
// A container limited to 1.5 CPUs on a 16-core host still sees 16 CPUs in its affinity mask;
// only its cgroup's CPU quota says it gets 1.5 CPUs' worth of time. So both count.
#pragma once

#include <optional>
#include <string>
#include <string_view>

namespace streamrun {

// The CPUs this process may use: those it may run on (sched_getaffinity), or fewer when the CPU
// quota of its cgroup, or of an ancestor, allows less (a quota of 1.5 CPUs counts as 2).
int UsableCpus();

// The CPU quota of the cgroup a process is in, in whole CPUs rounded up; nothing without one.
// `proc_self_cgroup` is the text of its /proc/self/cgroup, `cgroup_root` where the cgroup file
// systems are mounted (/sys/fs/cgroup). Reads cgroup v2's `cpu.max` ("max 100000": no quota;
// "150000 100000": 1.5 CPUs), also under `unified/` (hybrid systems), and v1's
// `cpu.cfs_quota_us` (-1: none) with `cpu.cfs_period_us`, from the process's cgroup up to the
// mount's root, taking the smallest. A path missing under the mount (a container without its own
// cgroup namespace sees the host's path) is skipped on the way up.
std::optional<int> CgroupCpuLimit(std::string_view proc_self_cgroup,
                                  const std::string& cgroup_root);

}  // namespace streamrun
