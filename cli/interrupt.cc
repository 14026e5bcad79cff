// Interrupts (see interrupt.h).
#include "cli/interrupt.h"

#include <fcntl.h>
#include <signal.h>
#include <unistd.h>

namespace streamrun::cli {
namespace {

Interrupts* g_interrupts = nullptr;

}  // namespace

// Only async-signal-safe work: an atomic exchange, write(2) and _exit(2).
void Interrupts::Handle(int /*signal*/) {
  if (g_interrupts->flag_.exchange(true)) _exit(130);
  char byte = 1;
  ssize_t ignored = ::write(g_interrupts->write_fd_, &byte, 1);
  (void)ignored;  // the pipe holds one byte; nothing to do if it is full
}

Interrupts& Interrupts::Install() {
  static Interrupts* interrupts = [] {
    auto* self = new Interrupts();  // lives as long as the process: the handler uses it
    int fds[2];
    if (::pipe2(fds, O_CLOEXEC | O_NONBLOCK) == 0) {
      self->read_fd_ = fds[0];
      self->write_fd_ = fds[1];
    }
    g_interrupts = self;
    struct sigaction action {};
    action.sa_handler = &Interrupts::Handle;
    sigemptyset(&action.sa_mask);
    sigaction(SIGINT, &action, nullptr);
    sigaction(SIGTERM, &action, nullptr);
    return self;
  }();
  return *interrupts;
}

}  // namespace streamrun::cli
