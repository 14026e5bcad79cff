// Failpoints armed through STREAMRUN_FAILPOINT (see engine/failpoint.h).
#include "engine/failpoint.h"

#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <string>

namespace streamrun {

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
    if (item_name != name) continue;
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
