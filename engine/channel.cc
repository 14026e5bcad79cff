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
    MutexLock lock(&mu_);
    cv_.SignalAll();
  }
}

void ThreadSignal::WaitChanged(uint64_t seen, int timeout_ms) {
  MutexLock lock(&mu_);
  waiting_.store(true);
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms);
  while (generation_.load() == seen && cv_.WaitUntil(&mu_, deadline)) {
  }
  waiting_.store(false);
}

void InputGate::SetProducerSignal(int producer, ThreadSignal* signal) {
  if (producer_signals_.empty()) producer_signals_.assign(static_cast<size_t>(producers_), nullptr);
  producer_signals_[producer] = signal;
}

InputGate::InputGate(int producers, size_t capacity)
    : producers_(producers), capacity_(capacity), queues_(producers) {}

bool InputGate::Push(int producer, BatchPtr batch) {
  {
    MutexLock lock(&mu_);
    auto& q = queues_[producer];
    if (q.size() >= capacity_ && !cancelled_) {
      auto start = std::chrono::steady_clock::now();
      {
        ScopedWait backpressured(tls_backpressure);
        while (!cancelled_ && q.size() >= capacity_) not_full_.Wait(&mu_);
      }
      blocked_ns_ += static_cast<uint64_t>(std::chrono::duration_cast<std::chrono::nanoseconds>(
                                               std::chrono::steady_clock::now() - start)
                                               .count());
    }
    if (cancelled_) return false;
    q.push_back(std::move(batch));
    ++pushes_;
  }
  not_empty_.Signal();
  if (consumer_signal_) consumer_signal_->Notify();
  return true;
}

InputGate::TryPushResult InputGate::TryPush(int producer, BatchPtr& batch) {
  {
    MutexLock lock(&mu_);
    if (cancelled_) return TryPushResult::kCancelled;
    auto& q = queues_[producer];
    if (q.size() >= capacity_) return TryPushResult::kFull;
    q.push_back(std::move(batch));
    ++pushes_;
  }
  not_empty_.Signal();
  if (consumer_signal_) consumer_signal_->Notify();
  return TryPushResult::kPushed;
}

void InputGate::Taken(size_t producer) {
  not_full_.SignalAll();
  if (!producer_signals_.empty() && producer_signals_[producer])
    producer_signals_[producer]->Notify();
}

BatchPtr InputGate::PopFrom(int producer) {
  BatchPtr b;
  {
    MutexLock lock(&mu_);
    auto& q = queues_[producer];
    while (!cancelled_ && q.empty()) not_empty_.Wait(&mu_);
    if (cancelled_) return nullptr;
    b = std::move(q.front());
    q.pop_front();
  }
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
  const size_t n = static_cast<size_t>(producers_);
  BatchPtr b;
  size_t p = 0;
  {
    MutexLock lock(&mu_);
    for (;;) {
      if (cancelled_) return nullptr;
      size_t i = 0;
      for (; i < n; ++i) {
        p = (next_ + i) % n;
        if (!queues_[p].empty() && (skip == nullptr || !(*skip)[p])) break;
      }
      if (i < n) break;
      if (!wait) return nullptr;
      not_empty_.Wait(&mu_);
    }
    b = std::move(queues_[p].front());
    queues_[p].pop_front();
    next_ = (p + 1) % n;
  }
  *producer = static_cast<int>(p);
  Taken(p);
  return b;
}

BatchPtr InputGate::PopFromUnlessStalled(int producer, bool* stalled) {
  *stalled = false;
  BatchPtr b;
  {
    MutexLock lock(&mu_);
    auto& q = queues_[producer];
    while (!cancelled_ && q.empty() && !OtherQueueFull(producer)) not_empty_.Wait(&mu_);
    if (cancelled_) return nullptr;
    if (q.empty()) {
      *stalled = true;
      return nullptr;
    }
    b = std::move(q.front());
    q.pop_front();
  }
  Taken(static_cast<size_t>(producer));
  return b;
}

bool InputGate::OtherQueueFull(int producer) const {
  for (size_t i = 0; i < queues_.size(); ++i) {
    if (static_cast<int>(i) != producer && queues_[i].size() >= capacity_) return true;
  }
  return false;
}

BatchPtr InputGate::TryPop(int producer) {
  BatchPtr b;
  {
    MutexLock lock(&mu_);
    auto& q = queues_[producer];
    if (cancelled_ || q.empty()) return nullptr;
    b = std::move(q.front());
    q.pop_front();
  }
  Taken(static_cast<size_t>(producer));
  return b;
}

const Batch* InputGate::Peek(int producer) {
  MutexLock lock(&mu_);
  auto& q = queues_[producer];
  if (cancelled_ || q.empty()) return nullptr;
  return q.front().get();
}

void InputGate::PeekAll(std::vector<const Batch*>* heads) {
  MutexLock lock(&mu_);
  heads->resize(queues_.size());
  for (size_t p = 0; p < queues_.size(); ++p) {
    (*heads)[p] = cancelled_ || queues_[p].empty() ? nullptr : queues_[p].front().get();
  }
}

uint64_t InputGate::pushes() const {
  MutexLock lock(&mu_);
  return pushes_;
}

bool InputGate::WaitForPush(uint64_t seen) {
  MutexLock lock(&mu_);
  while (!cancelled_ && pushes_ == seen) not_empty_.Wait(&mu_);
  return !cancelled_;
}

void InputGate::Cancel() {
  {
    MutexLock lock(&mu_);
    cancelled_ = true;
  }
  not_empty_.SignalAll();
  not_full_.SignalAll();
  if (consumer_signal_) consumer_signal_->Notify();
  for (ThreadSignal* s : producer_signals_) {
    if (s) s->Notify();
  }
}

double InputGate::fill() const {
  MutexLock lock(&mu_);
  size_t queued = 0;
  for (const auto& q : queues_) queued += q.size();
  return static_cast<double>(queued) / static_cast<double>(capacity_ * queues_.size());
}

uint64_t InputGate::blocked_ns() const {
  MutexLock lock(&mu_);
  return blocked_ns_;
}

}  // namespace streamrun
