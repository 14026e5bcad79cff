// InputGate: per-producer bounded queues (see channel.h).
#include "engine/channel.h"

#include <chrono>

namespace streamrun {

thread_local WaitTime* tls_backpressure = nullptr;

InputGate::InputGate(int producers, size_t capacity) : queues_(producers), capacity_(capacity) {}

bool InputGate::Push(int producer, BatchPtr batch) {
  std::unique_lock<std::mutex> lock(mu_);
  auto& q = queues_[producer];
  if (q.size() >= capacity_ && !cancelled_) {
    auto start = std::chrono::steady_clock::now();
    {
      ScopedWait backpressured(tls_backpressure);
      not_full_.wait(lock, [&] { return cancelled_ || q.size() < capacity_; });
    }
    blocked_ns_ += static_cast<uint64_t>(std::chrono::duration_cast<std::chrono::nanoseconds>(
                                             std::chrono::steady_clock::now() - start).count());
  }
  if (cancelled_) return false;
  q.push_back(std::move(batch));
  lock.unlock();
  not_empty_.notify_one();
  return true;
}

BatchPtr InputGate::PopFrom(int producer) {
  std::unique_lock<std::mutex> lock(mu_);
  auto& q = queues_[producer];
  not_empty_.wait(lock, [&] { return cancelled_ || !q.empty(); });
  if (cancelled_) return nullptr;
  BatchPtr b = std::move(q.front());
  q.pop_front();
  lock.unlock();
  not_full_.notify_all();
  return b;
}

BatchPtr InputGate::PopAny(int* producer, const std::vector<bool>* skip) {
  std::unique_lock<std::mutex> lock(mu_);
  const size_t n = queues_.size();
  for (;;) {
    if (cancelled_) return nullptr;
    for (size_t i = 0; i < n; ++i) {
      size_t p = (next_ + i) % n;
      if (!queues_[p].empty() && (skip == nullptr || !(*skip)[p])) {
        BatchPtr b = std::move(queues_[p].front());
        queues_[p].pop_front();
        next_ = (p + 1) % n;
        *producer = static_cast<int>(p);
        lock.unlock();
        not_full_.notify_all();
        return b;
      }
    }
    not_empty_.wait(lock);
  }
}

BatchPtr InputGate::PopFromUnlessStalled(int producer, bool* stalled) {
  std::unique_lock<std::mutex> lock(mu_);
  auto& q = queues_[producer];
  *stalled = false;
  auto other_full = [&] {
    for (size_t i = 0; i < queues_.size(); ++i) {
      if (static_cast<int>(i) != producer && queues_[i].size() >= capacity_) return true;
    }
    return false;
  };
  not_empty_.wait(lock, [&] { return cancelled_ || !q.empty() || other_full(); });
  if (cancelled_) return nullptr;
  if (q.empty()) {
    *stalled = true;
    return nullptr;
  }
  BatchPtr b = std::move(q.front());
  q.pop_front();
  lock.unlock();
  not_full_.notify_all();
  return b;
}

BatchPtr InputGate::TryPop(int producer) {
  std::unique_lock<std::mutex> lock(mu_);
  auto& q = queues_[producer];
  if (cancelled_ || q.empty()) return nullptr;
  BatchPtr b = std::move(q.front());
  q.pop_front();
  lock.unlock();
  not_full_.notify_all();
  return b;
}

void InputGate::Cancel() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    cancelled_ = true;
  }
  not_empty_.notify_all();
  not_full_.notify_all();
}

double InputGate::fill() const {
  std::lock_guard<std::mutex> lock(mu_);
  size_t queued = 0;
  for (const auto& q : queues_) queued += q.size();
  return static_cast<double>(queued) / static_cast<double>(capacity_ * queues_.size());
}

uint64_t InputGate::blocked_ns() const {
  std::lock_guard<std::mutex> lock(mu_);
  return blocked_ns_;
}

}  // namespace streamrun
