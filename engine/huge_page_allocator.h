// HugePageAllocator: a std allocator for large, randomly accessed arrays (hash tables, per-key
// state). Allocations of 2 MiB or more are 2 MiB aligned and advised as transparent huge pages
// (madvise MADV_HUGEPAGE), which the kernel grants in its default "madvise" mode. With 100,000
// keys a window operator's tables span tens of MiB; on 4 KiB pages nearly every record misses
// the TLB, and (measured in a VM with nested paging) those page walks cost more than the cache
// misses themselves. Smaller allocations use operator new as usual.
//
// Thread safety: stateless; as thread-safe as operator new.
#pragma once

#include <sys/mman.h>

#include <cstddef>
#include <cstdlib>
#include <new>

namespace streamrun {

inline constexpr size_t kHugePageSize = size_t{2} << 20;

template <typename T>
struct HugePageAllocator {
  using value_type = T;
  HugePageAllocator() = default;
  template <typename U>
  HugePageAllocator(const HugePageAllocator<U>&) {}

  T* allocate(size_t n) {
    size_t bytes = n * sizeof(T);
    if (bytes < kHugePageSize)
      return static_cast<T*>(::operator new (bytes, std::align_val_t{alignof(T)}));
    size_t rounded = (bytes + kHugePageSize - 1) & ~(kHugePageSize - 1);
    void* p = std::aligned_alloc(kHugePageSize, rounded);
    if (p == nullptr) throw std::bad_alloc();
    ::madvise(p, rounded, MADV_HUGEPAGE);  // advice only: failure leaves ordinary pages
    return static_cast<T*>(p);
  }
  void deallocate(T* p, size_t n) {
    if (n * sizeof(T) < kHugePageSize) {
      ::operator delete (p, std::align_val_t{alignof(T)});
    } else {
      std::free(p);
    }
  }
  template <typename U>
  bool operator==(const HugePageAllocator<U>&) const {
    return true;
  }
};

}  // namespace streamrun
