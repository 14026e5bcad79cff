// Mutex, MutexLock and CondVar: std::mutex and std::condition_variable with Clang's thread-safety
// annotations, as in LevelDB's port/ and thread_annotations.h.
//
// A member that a mutex guards is declared GUARDED_BY(mu_); a function that must be called with
// it held, EXCLUSIVE_LOCKS_REQUIRED(mu_). `make lint` runs clang-tidy with -Wthread-safety, which
// then checks every access: reading or writing a guarded member without its mutex held is an
// error. GCC builds ignore the annotations.
//
// How to lock: a MutexLock for a scope (Unlock and Lock in between for work done without it);
// a CondVar waits in an explicit loop over its condition (`while (!ready_) cv_.Wait(&mu_);`),
// since the analysis does not see into a predicate lambda.
//
// Thread safety: the purpose of these classes; each is itself used as std::mutex would be.
#pragma once

#include <chrono>
#include <condition_variable>
#include <mutex>

#if defined(__clang__)
#define SR_THREAD_ANNOTATION(x) __attribute__((x))
#else
#define SR_THREAD_ANNOTATION(x)
#endif

#define LOCKABLE SR_THREAD_ANNOTATION(capability("mutex"))
#define SCOPED_LOCKABLE SR_THREAD_ANNOTATION(scoped_lockable)
#define GUARDED_BY(x) SR_THREAD_ANNOTATION(guarded_by(x))
#define PT_GUARDED_BY(x) SR_THREAD_ANNOTATION(pt_guarded_by(x))
#define EXCLUSIVE_LOCKS_REQUIRED(...) SR_THREAD_ANNOTATION(requires_capability(__VA_ARGS__))
#define LOCKS_EXCLUDED(...) SR_THREAD_ANNOTATION(locks_excluded(__VA_ARGS__))
#define EXCLUSIVE_LOCK_FUNCTION(...) SR_THREAD_ANNOTATION(acquire_capability(__VA_ARGS__))
#define UNLOCK_FUNCTION(...) SR_THREAD_ANNOTATION(release_capability(__VA_ARGS__))
#define ASSERT_EXCLUSIVE_LOCK(...) SR_THREAD_ANNOTATION(assert_capability(__VA_ARGS__))
#define NO_THREAD_SAFETY_ANALYSIS SR_THREAD_ANNOTATION(no_thread_safety_analysis)

namespace streamrun {

class LOCKABLE Mutex {
 public:
  Mutex() = default;
  Mutex(const Mutex&) = delete;
  Mutex& operator=(const Mutex&) = delete;

  void Lock() EXCLUSIVE_LOCK_FUNCTION() { mu_.lock(); }
  void Unlock() UNLOCK_FUNCTION() { mu_.unlock(); }
  // Tells the analysis the caller holds it (checked by nothing at run time).
  void AssertHeld() ASSERT_EXCLUSIVE_LOCK() {}

 private:
  friend class CondVar;
  std::mutex mu_;
};

// Holds a Mutex for its scope. Unlock and Lock let a scope drop it for a while; it must be held
// again (or never dropped) when the scope ends.
class SCOPED_LOCKABLE MutexLock {
 public:
  explicit MutexLock(Mutex* mu) EXCLUSIVE_LOCK_FUNCTION(mu) : mu_(mu) { mu_->Lock(); }
  ~MutexLock() UNLOCK_FUNCTION() { mu_->Unlock(); }
  MutexLock(const MutexLock&) = delete;
  MutexLock& operator=(const MutexLock&) = delete;

  void Unlock() UNLOCK_FUNCTION() { mu_->Unlock(); }
  void Lock() EXCLUSIVE_LOCK_FUNCTION() { mu_->Lock(); }

 private:
  Mutex* const mu_;
};

// A condition variable. Each Wait takes the Mutex the caller holds (always the same one for a
// given CondVar), which it releases while it waits and holds again when it returns.
class CondVar {
 public:
  CondVar() = default;
  CondVar(const CondVar&) = delete;
  CondVar& operator=(const CondVar&) = delete;

  // Waits for a Signal (or wakes spuriously).
  void Wait(Mutex* mu) EXCLUSIVE_LOCKS_REQUIRED(mu) {
    std::unique_lock<std::mutex> lock(mu->mu_, std::adopt_lock);
    cv_.wait(lock);
    lock.release();
  }
  // The same, giving up at `deadline`; false if it passed.
  template <class Clock, class Duration>
  bool WaitUntil(Mutex* mu, std::chrono::time_point<Clock, Duration> deadline)
      EXCLUSIVE_LOCKS_REQUIRED(mu) {
    std::unique_lock<std::mutex> lock(mu->mu_, std::adopt_lock);
    const bool woken = cv_.wait_until(lock, deadline) == std::cv_status::no_timeout;
    lock.release();
    return woken;
  }
  // The same, giving up after `timeout`; false if it timed out.
  template <class Rep, class Period>
  bool WaitFor(Mutex* mu, std::chrono::duration<Rep, Period> timeout) EXCLUSIVE_LOCKS_REQUIRED(mu) {
    return WaitUntil(mu, std::chrono::steady_clock::now() + timeout);
  }
  void Signal() { cv_.notify_one(); }
  void SignalAll() { cv_.notify_all(); }

 private:
  std::condition_variable cv_;
};

}  // namespace streamrun
