// Failpoints: crashes and errors injected at named places, for tests of recovery.
//
// A failpoint is armed through the environment variable STREAMRUN_FAILPOINT, a comma-separated
// list of items:
//
//   NAME          the process ends at once with _exit(kFailpointExitCode) (a simulated crash:
//                 no destructors, no buffered output flushed, like kill -9 at that point)
//   NAME=error    the failpoint returns an IoError ("failpoint NAME: injected error")
//   NAME=enospc   the failpoint returns an IoError as if the write failed with ENOSPC
//   NAME@N...     only the N-th time the failpoint is reached in the process (N from 1), e.g.
//                 checkpoint.before_barrier@3 crashes at the third checkpoint's barrier
//
// e.g. STREAMRUN_FAILPOINT=checkpoint.before_manifest or
//      STREAMRUN_FAILPOINT=checkpoint.write=enospc,checkpoint.after_rename
//
// The names in use are listed in docs/state-format.md ("Failpoints"). The variable is read at
// every check (failpoints sit on checkpoint phases, not on the per-record path), so a test may
// set it with setenv() in the middle of a process.
//
// This is the one place where library code ends the process: it stands in for a crash, which
// is what the tests need to observe. An unset variable costs one getenv() per check.
//
// Thread safety: any thread; getenv() must not race with setenv() (tests set it before the code
// under test runs).
#pragma once

#include <string_view>

#include "engine/status.h"

namespace streamrun {

// The exit code of a simulated crash. Do not change: end-to-end tests expect it.
inline constexpr int kFailpointExitCode = 86;

enum class FailpointAction {
  kNone,    // not armed
  kError,   // NAME=error
  kEnospc,  // NAME=enospc
};

// What STREAMRUN_FAILPOINT asks of `name`. Armed as a crash, it does not return.
FailpointAction CheckFailpoint(std::string_view name);

// CheckFailpoint as a Status: Ok when not armed, an IoError naming the failpoint otherwise.
Status Failpoint(std::string_view name);

}  // namespace streamrun

// Returns the injected error from the calling function when the failpoint is armed.
#define SR_FAILPOINT(name) SR_RETURN_IF_ERROR(::streamrun::Failpoint(name))
