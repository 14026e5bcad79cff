// core_latency: how long one cache line takes to travel between the machine's first two CPUs.
//
// Two threads, pinned to CPU 0 and CPU 1, hand a counter back and forth 400,000 times; prints
// the mean one-way time in nanoseconds. On this KVM guest it is ~30 ns when the host runs the two
// vCPUs on cores that share a cache and ~160 ns when it does not, and it changes from second to
// second. bench/run.py prints it around each parallelism-2 run (BENCHMARKS.md, session 7).
#include <pthread.h>
#include <sched.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <thread>

namespace {

constexpr long kHandOvers = 400000;
alignas(64) std::atomic<long> turn{0};

bool Pin(int cpu) {
  cpu_set_t set;
  CPU_ZERO(&set);
  CPU_SET(cpu, &set);
  return pthread_setaffinity_np(pthread_self(), sizeof set, &set) == 0;
}

// Waits for each of `parity`'s turns and passes it on.
void Play(long parity) {
  for (long i = parity; i < kHandOvers; i += 2) {
    while (turn.load(std::memory_order_acquire) != i) {
    }
    turn.store(i + 1, std::memory_order_release);
  }
}

}  // namespace

int main() {
  if (std::thread::hardware_concurrency() < 2) {
    std::printf("nan\n");
    return 0;
  }
  std::thread other([] {
    Pin(1);
    Play(1);
  });
  Pin(0);
  const auto start = std::chrono::steady_clock::now();
  Play(0);
  const auto stop = std::chrono::steady_clock::now();
  other.join();
  const double ns = std::chrono::duration<double, std::nano>(stop - start).count();
  std::printf("%.1f\n", ns / kHandOvers);
  return 0;
}
