// Failpoints armed through STREAMRUN_FAILPOINT (see engine/failpoint.h).
#include "engine/failpoint.h"

#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <map>
#include <string>

#include "engine/mutex.h"

namespace streamrun {

namespace {
// Hits per failpoint name, for NAME@N.
int CountHit(std::string_view name) {
  static Mutex mu;
  static std::map<std::string, int, std::less<>> hits GUARDED_BY(mu);
  MutexLock lock(&mu);
  return ++hits[std::string(name)];
}
}  // namespace

FailpointAction CheckFailpoint(std::string_view name) {
  const char* env = std::getenv("STREAMRUN_FAILPOINT");
  if (env == nullptr || *env == '\0') return FailpointAction::kNone;
  std::string_view spec(env);
  while (!spec.empty()) {
    size_t comma = spec.find(',');
    std::string_view item = spec.substr(0, comma);
    spec = comma == std::string_view::npos ? std::string_view() : spec.substr(comma + 1);
    size_t eq = item.find('=');
    std::string_view item_name = item.substr(0, eq);
    size_t at = item_name.find('@');
    int nth = 1;
    if (at != std::string_view::npos) {
      nth = std::atoi(std::string(item_name.substr(at + 1)).c_str());
      item_name = item_name.substr(0, at);
    }
    if (item_name != name) continue;
    if (at != std::string_view::npos && CountHit(name) != nth) continue;
    if (eq == std::string_view::npos) _exit(kFailpointExitCode);  // simulated crash
    std::string_view action = item.substr(eq + 1);
    if (action == "enospc") return FailpointAction::kEnospc;
    return FailpointAction::kError;
  }
  return FailpointAction::kNone;
}

Status Failpoint(std::string_view name) {
  switch (CheckFailpoint(name)) {
    case FailpointAction::kNone:
      return Status::Ok();
    case FailpointAction::kEnospc:
      return Status::IoError("failpoint " + std::string(name) + ": " + std::strerror(ENOSPC));
    case FailpointAction::kError:
      break;
  }
  return Status::IoError("failpoint " + std::string(name) + ": injected error");
}

}  // namespace streamrun
