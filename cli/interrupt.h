// Ctrl-C and SIGTERM for the subcommands that run no job (record, replay, kafka-mock): the
// first signal sets a flag that their loops check and makes a pipe readable (for poll); a
// second one exits at once with 130. `run` has its own watcher (a sigwait thread that cancels
// the job).
#pragma once

#include <atomic>

namespace streamrun::cli {

class Interrupts {
 public:
  // Installs the handlers (once per process; later calls return the same object).
  static Interrupts& Install();

  bool requested() const { return flag_.load(); }
  // For engine loops that take a cancellation flag.
  const std::atomic<bool>* flag() const { return &flag_; }
  // Readable once a signal came.
  int fd() const { return read_fd_; }

 private:
  Interrupts() = default;
  static void Handle(int signal);

  std::atomic<bool> flag_{false};
  int read_fd_ = -1;
  int write_fd_ = -1;
};

}  // namespace streamrun::cli
