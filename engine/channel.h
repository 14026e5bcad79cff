// InputGate: the bounded queues in front of one subtask.
//
// Every subtask that is not chained to its upstream reads its input from one InputGate. The gate
// has one bounded queue per producer (an upstream subtask, or a thread reporting errors), so a
// full queue blocks only the producer that filled it (backpressure), and the consumer can read a
// producer's batches in order: in chunk order for a split source (PopFrom), or as they come
// (PopAny). Per-producer queues also leave room for checkpoint barrier alignment: a consumer can
// stop reading from a producer whose barrier arrived.
//
// Thread safety: Push is called by producer threads, Pop* and Peek by the one consumer thread,
// Cancel by anyone. One mutex guards the gate; batches are large, so it is taken once per batch.
#pragma once

#include <atomic>
#include <cstddef>
#include <deque>
#include <vector>

#include "engine/batch.h"
#include "engine/metrics.h"
#include "engine/mutex.h"

namespace streamrun {

// The thread's backpressure time: when set, Push counts the time it waits on a full queue in it
// (engine/metrics.h). Each task thread points it at its own TaskMetrics.
extern thread_local WaitTime* tls_backpressure;

// A wake-up for a thread that waits on several gates at once (a task co-located with the
// consumer of its output, engine/runtime.cc): gates that know the thread call Notify whenever
// something it may wait for happens, and the thread waits for the generation to change.
// Notify costs two atomic operations when nobody waits.
class ThreadSignal {
 public:
  uint64_t generation() const { return generation_.load(); }
  void Notify();
  // Returns once generation() != seen (or after `timeout_ms`, a guard against a missed
  // notification: the caller checks its conditions again either way).
  void WaitChanged(uint64_t seen, int timeout_ms = 100);

 private:
  Mutex mu_;
  CondVar cv_;  // only a wake-up: the state is in the atomics
  std::atomic<uint64_t> generation_{0};
  std::atomic<bool> waiting_{false};
};

class InputGate {
 public:
  // REQUIRES: producers >= 1, capacity >= 1 (batches per producer queue).
  InputGate(int producers, size_t capacity);

  // Queues `batch` from `producer`, blocking while that producer's queue is full. Returns false
  // (dropping the batch) when the gate was cancelled.
  bool Push(int producer, BatchPtr batch);
  enum class TryPushResult { kPushed, kFull, kCancelled };
  // Queues `batch` (moving it) unless that producer's queue is full (`batch` is left as it was)
  // or the gate was cancelled. Never blocks.
  TryPushResult TryPush(int producer, BatchPtr& batch);

  // The next batch of `producer`, blocking until there is one. Null when cancelled.
  BatchPtr PopFrom(int producer);
  // The next batch of any producer, taken fairly (round robin over non-empty queues). Sets
  // *producer. Producers p with (*skip)[p] are not read (barrier alignment: their barrier came
  // first). Null when cancelled.
  // REQUIRES: some producer is not skipped and will still send something.
  BatchPtr PopAny(int* producer, const std::vector<bool>* skip = nullptr);
  // Like PopAny, but null instead of waiting when nothing is queued. Never blocks.
  BatchPtr TryPopAny(int* producer, const std::vector<bool>* skip = nullptr);

  // Like PopFrom, but gives up (returns null, *stalled = true) instead of waiting while some
  // other producer's queue is full: waiting then could deadlock a diamond-shaped graph, whose
  // full producer may be what `producer` itself waits for.
  BatchPtr PopFromUnlessStalled(int producer, bool* stalled);
  // The next batch of `producer` if one is queued, else null. Never blocks.
  BatchPtr TryPop(int producer);
  // The batch PopFrom(producer) would return next, left queued; null if none (or cancelled).
  // The consumer's own view: valid until it pops that batch.
  const Batch* Peek(int producer);

  // The next batch of every producer, as Peek gives it (null where none is queued), taken at
  // one moment.
  void PeekAll(std::vector<const Batch*>* heads);
  // Batches queued so far, all producers together; WaitForPush(seen) blocks until that moves on
  // from `seen` (false: the gate was cancelled). Together: wait for whatever comes next from
  // anyone.
  uint64_t pushes() const;
  bool WaitForPush(uint64_t seen);

  // Signals to notify: `consumer` whenever a batch is queued, `producer_signal` whenever a batch
  // of `producer` is taken; both on Cancel. Set before the gate is used.
  void SetConsumerSignal(ThreadSignal* signal) { consumer_signal_ = signal; }
  void SetProducerSignal(int producer, ThreadSignal* signal);

  // Wakes every waiting thread; from now on Push returns false and Pop returns null.
  void Cancel();

  int producers() const { return producers_; }
  // Batches queued over capacity of all queues, 0..1, for `status`.
  double fill() const;
  // Nanoseconds producers spent blocked on a full queue (backpressure).
  uint64_t blocked_ns() const;

 private:
  // After a batch of `producer` was taken: wakes producers waiting for room.
  void Taken(size_t producer) LOCKS_EXCLUDED(mu_);
  BatchPtr PopAnyImpl(int* producer, const std::vector<bool>* skip, bool wait) LOCKS_EXCLUDED(mu_);
  // Whether a producer other than `producer` has a full queue.
  bool OtherQueueFull(int producer) const EXCLUSIVE_LOCKS_REQUIRED(mu_);

  const int producers_;
  const size_t capacity_;
  mutable Mutex mu_;
  CondVar not_empty_;
  CondVar not_full_;
  // One queue per producer: the vector never changes size, its deques change under mu_.
  std::vector<std::deque<BatchPtr>> queues_ GUARDED_BY(mu_);
  size_t next_ GUARDED_BY(mu_) = 0;  // round-robin start for PopAny
  bool cancelled_ GUARDED_BY(mu_) = false;
  uint64_t blocked_ns_ GUARDED_BY(mu_) = 0;
  uint64_t pushes_ GUARDED_BY(mu_) = 0;
  ThreadSignal* consumer_signal_ = nullptr;
  std::vector<ThreadSignal*> producer_signals_;  // per producer; empty when none is set
};

}  // namespace streamrun
