// Software prefetches that the compiler keeps.
//
// GCC 12 at -O2 deletes __builtin_prefetch calls behind a branch in loops it sees no other
// effect in (measured: the window's per-row look-ahead prefetches were all gone from the
// binary), so on x86 they are asm statements. Check with `objdump -d build/streamrun | grep
// prefetch`.
#pragma once

namespace streamrun {

// Fetches the cache line at `p` for reading.
inline void Prefetch(const void* p) {
#if defined(__x86_64__) || defined(__i386__)
  asm volatile("prefetcht0 %0" : : "m"(*static_cast<const char*>(p)));
#else
  __builtin_prefetch(p);
#endif
}

// Fetches the cache line at `p` for writing: asks for ownership now, so that a later store does
// not wait for it in the store buffer. For memory the other core wrote or read last (batches go
// from one thread to another), that wait is a round trip between the cores.
inline void PrefetchForWrite(const void* p) {
#if defined(__x86_64__) || defined(__i386__)
  asm volatile("prefetchw %0" : : "m"(*static_cast<const char*>(p)));
#else
  __builtin_prefetch(p, 1);
#endif
}

}  // namespace streamrun
