// CPUs the process can use (see cpus.h).
#include "engine/cpus.h"

#include <sched.h>

#include <algorithm>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <thread>
#include <vector>

namespace streamrun {
namespace {

// The first line of a small file, or nothing if it cannot be read.
std::optional<std::string> ReadLine(const std::string& path) {
  std::ifstream in(path);
  std::string line;
  if (!in || !std::getline(in, line)) return std::nullopt;
  return line;
}

std::optional<int64_t> ParseInt(const std::string& text) {
  try {
    return static_cast<int64_t>(std::stoll(text));
  } catch (...) {
    return std::nullopt;
  }
}

// Whole CPUs of `quota` µs per `period` µs, rounded up; nothing for no quota.
std::optional<int> CpusOf(int64_t quota, int64_t period) {
  if (quota <= 0 || period <= 0) return std::nullopt;
  return static_cast<int>(std::max<int64_t>(1, (quota + period - 1) / period));
}

// cgroup v2: "max 100000" or "150000 100000".
std::optional<int> CpusOfCpuMax(const std::string& dir) {
  std::optional<std::string> line = ReadLine(dir + "/cpu.max");
  if (!line) return std::nullopt;
  std::istringstream words(*line);
  std::string quota, period;
  words >> quota >> period;
  if (quota == "max") return std::nullopt;
  std::optional<int64_t> q = ParseInt(quota), p = ParseInt(period);
  if (!q || !p) return std::nullopt;
  return CpusOf(*q, *p);
}

// cgroup v1: cpu.cfs_quota_us (-1: none) and cpu.cfs_period_us.
std::optional<int> CpusOfCfs(const std::string& dir) {
  std::optional<std::string> quota = ReadLine(dir + "/cpu.cfs_quota_us");
  std::optional<std::string> period = ReadLine(dir + "/cpu.cfs_period_us");
  if (!quota || !period) return std::nullopt;
  std::optional<int64_t> q = ParseInt(*quota), p = ParseInt(*period);
  if (!q || !p) return std::nullopt;
  return CpusOf(*q, *p);
}

std::optional<int> Smaller(std::optional<int> a, std::optional<int> b) {
  if (!a) return b;
  if (!b) return a;
  return std::min(*a, *b);
}

// The smallest limit `read` finds from mount + path up to mount.
template <class Read>
std::optional<int> SmallestUpFrom(const std::string& mount, const std::string& path, Read read) {
  namespace fs = std::filesystem;
  std::error_code ec;
  if (!fs::is_directory(mount, ec)) return std::nullopt;
  std::optional<int> smallest;
  fs::path rel = fs::path(path).relative_path();
  for (;;) {
    const fs::path dir = fs::path(mount) / rel;
    smallest = Smaller(smallest, read(dir.string()));
    if (rel.empty()) break;
    rel = rel.parent_path();
  }
  return smallest;
}

}  // namespace

std::optional<int> CgroupCpuLimit(std::string_view proc_self_cgroup,
                                  const std::string& cgroup_root) {
  std::optional<int> limit;
  std::istringstream lines{std::string(proc_self_cgroup)};
  std::string line;
  while (std::getline(lines, line)) {
    // "ID:CONTROLLERS:PATH"; cgroup v2's line is "0::PATH".
    const size_t first = line.find(':');
    const size_t second = first == std::string::npos ? first : line.find(':', first + 1);
    if (second == std::string::npos) continue;
    const std::string id = line.substr(0, first);
    const std::string controllers = line.substr(first + 1, second - first - 1);
    const std::string path = line.substr(second + 1);
    if (id == "0" && controllers.empty()) {
      for (const char* mount : {"", "/unified"}) {
        limit = Smaller(limit, SmallestUpFrom(cgroup_root + mount, path, CpusOfCpuMax));
      }
      continue;
    }
    std::vector<std::string> names;
    std::istringstream split(controllers);
    for (std::string name; std::getline(split, name, ',');) names.push_back(name);
    if (std::find(names.begin(), names.end(), "cpu") == names.end()) continue;
    // v1 mounts the cpu controller at cpu/ (often a link to cpu,cpuacct/).
    for (const char* mount : {"/cpu", "/cpu,cpuacct", "/cpuacct,cpu"}) {
      limit = Smaller(limit, SmallestUpFrom(cgroup_root + mount, path, CpusOfCfs));
    }
  }
  return limit;
}

int UsableCpus() {
  int cpus = 0;
  cpu_set_t set;
  if (::sched_getaffinity(0, sizeof set, &set) == 0) cpus = CPU_COUNT(&set);
  if (cpus <= 0) cpus = static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  std::ifstream in("/proc/self/cgroup");
  std::stringstream text;
  text << in.rdbuf();
  if (std::optional<int> quota = CgroupCpuLimit(text.str(), "/sys/fs/cgroup")) {
    cpus = std::min(cpus, *quota);
  }
  return cpus;
}

}  // namespace streamrun
