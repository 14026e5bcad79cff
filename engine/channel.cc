// InputGate: per-producer bounded queues (see channel.h).
#include "engine/channel.h"

#include <chrono>

namespace streamrun {

thread_local WaitTime* tls_backpressure = nullptr;

void ThreadSignal::Notify() {
  generation_.fetch_add(1);
  // Pairs with WaitChanged: it sets waiting_ before it reads the generation, so either it sees
  // this change or this sees it waiting (both sequentially consistent).
  if (waiting_.load()) {
    std::lock_guard<std::mutex> lock(mu_);
    cv_.notify_all();
  }
}

void ThreadSignal::WaitChanged(uint64_t seen, int timeout_ms) {
  std::unique_lock<std::mutex> lock(mu_);
  waiting_.store(true);
  cv_.wait_for(lock, std::chrono::milliseconds(timeout_ms),
               [&] { return generation_.load() != seen; });
  waiting_.store(false);
}

void InputGate::SetProducerSignal(int producer, ThreadSignal* signal) {
  if (producer_signals_.empty()) producer_signals_.assign(queues_.size(), nullptr);
  producer_signals_[producer] = signal;
}

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
                                             std::chrono::steady_clock::now() - start)
                                             .count());
  }
  if (cancelled_) return false;
  q.push_back(std::move(batch));
  ++pushes_;
  lock.unlock();
  not_empty_.notify_one();
  if (consumer_signal_) consumer_signal_->Notify();
  return true;
}

InputGate::TryPushResult InputGate::TryPush(int producer, BatchPtr& batch) {
  std::unique_lock<std::mutex> lock(mu_);
  if (cancelled_) return TryPushResult::kCancelled;
  auto& q = queues_[producer];
  if (q.size() >= capacity_) return TryPushResult::kFull;
  q.push_back(std::move(batch));
  ++pushes_;
  lock.unlock();
  not_empty_.notify_one();
  if (consumer_signal_) consumer_signal_->Notify();
  return TryPushResult::kPushed;
}

void InputGate::Taken(size_t producer) {
  not_full_.notify_all();
  if (!producer_signals_.empty() && producer_signals_[producer])
    producer_signals_[producer]->Notify();
}

BatchPtr InputGate::PopFrom(int producer) {
  std::unique_lock<std::mutex> lock(mu_);
  auto& q = queues_[producer];
  not_empty_.wait(lock, [&] { return cancelled_ || !q.empty(); });
  if (cancelled_) return nullptr;
  BatchPtr b = std::move(q.front());
  q.pop_front();
  lock.unlock();
  Taken(static_cast<size_t>(producer));
  return b;
}

BatchPtr InputGate::PopAny(int* producer, const std::vector<bool>* skip) {
  return PopAnyImpl(producer, skip, /*wait=*/true);
}

BatchPtr InputGate::TryPopAny(int* producer, const std::vector<bool>* skip) {
  return PopAnyImpl(producer, skip, /*wait=*/false);
}

BatchPtr InputGate::PopAnyImpl(int* producer, const std::vector<bool>* skip, bool wait) {
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
        Taken(p);
        return b;
      }
    }
    if (!wait) return nullptr;
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
  Taken(static_cast<size_t>(producer));
  return b;
}

BatchPtr InputGate::TryPop(int producer) {
  std::unique_lock<std::mutex> lock(mu_);
  auto& q = queues_[producer];
  if (cancelled_ || q.empty()) return nullptr;
  BatchPtr b = std::move(q.front());
  q.pop_front();
  lock.unlock();
  Taken(static_cast<size_t>(producer));
  return b;
}

const Batch* InputGate::Peek(int producer) {
  std::lock_guard<std::mutex> lock(mu_);
  auto& q = queues_[producer];
  if (cancelled_ || q.empty()) return nullptr;
  return q.front().get();
}

void InputGate::PeekAll(std::vector<const Batch*>* heads) {
  std::lock_guard<std::mutex> lock(mu_);
  heads->resize(queues_.size());
  for (size_t p = 0; p < queues_.size(); ++p) {
    (*heads)[p] = cancelled_ || queues_[p].empty() ? nullptr : queues_[p].front().get();
  }
}

uint64_t InputGate::pushes() const {
  std::lock_guard<std::mutex> lock(mu_);
  return pushes_;
}

bool InputGate::WaitForPush(uint64_t seen) {
  std::unique_lock<std::mutex> lock(mu_);
  not_empty_.wait(lock, [&] { return cancelled_ || pushes_ != seen; });
  return !cancelled_;
}

void InputGate::Cancel() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    cancelled_ = true;
  }
  not_empty_.notify_all();
  not_full_.notify_all();
  if (consumer_signal_) consumer_signal_->Notify();
  for (ThreadSignal* s : producer_signals_) {
    if (s) s->Notify();
  }
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
