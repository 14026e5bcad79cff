// Tests of the bounded input gate (engine/channel.h).
#include "engine/channel.h"

#include <doctest/doctest.h>

#include <atomic>
#include <chrono>
#include <thread>

namespace streamrun {
namespace {

BatchPtr BatchWithSeq(uint64_t seq) {
  BatchPtr b = NewBatch(0);
  b->seq = seq;
  return b;
}

}  // namespace

TEST_CASE("channel: a full queue blocks its producer until the consumer takes a batch") {
  InputGate gate(1, 2);
  REQUIRE(gate.Push(0, BatchWithSeq(1)));
  REQUIRE(gate.Push(0, BatchWithSeq(2)));
  std::atomic<bool> pushed{false};
  std::thread producer([&] {
    gate.Push(0, BatchWithSeq(3));
    pushed = true;
  });
  std::this_thread::sleep_for(std::chrono::milliseconds(50));
  CHECK_FALSE(pushed.load());  // blocked: the queue holds 2 of 2
  CHECK(gate.PopFrom(0)->seq == 1);
  producer.join();
  CHECK(pushed.load());
  CHECK(gate.PopFrom(0)->seq == 2);
  CHECK(gate.PopFrom(0)->seq == 3);
}

TEST_CASE("channel: a full queue of one producer does not block another") {
  InputGate gate(2, 1);
  REQUIRE(gate.Push(0, BatchWithSeq(1)));
  REQUIRE(gate.Push(1, BatchWithSeq(2)));  // would block if queues were shared
  int producer = -1;
  CHECK(gate.PopAny(&producer)->seq == 1);
  CHECK(producer == 0);
  CHECK(gate.PopAny(&producer)->seq == 2);
  CHECK(producer == 1);
}

TEST_CASE("channel: PopAny takes producers in turn") {
  InputGate gate(2, 4);
  for (uint64_t i = 0; i < 3; ++i) REQUIRE(gate.Push(0, BatchWithSeq(i)));
  for (uint64_t i = 10; i < 13; ++i) REQUIRE(gate.Push(1, BatchWithSeq(i)));
  int p = -1;
  std::vector<int> order;
  for (int i = 0; i < 6; ++i) {
    gate.PopAny(&p);
    order.push_back(p);
  }
  CHECK(order == std::vector<int>{0, 1, 0, 1, 0, 1});
}

TEST_CASE("channel: cancel wakes a blocked producer and a waiting consumer") {
  InputGate gate(1, 1);
  REQUIRE(gate.Push(0, BatchWithSeq(1)));
  bool push_result = true;
  std::thread producer([&] { push_result = gate.Push(0, BatchWithSeq(2)); });
  InputGate empty(1, 1);
  BatchPtr popped = BatchWithSeq(9);
  std::thread consumer([&] { popped = empty.PopFrom(0); });
  std::this_thread::sleep_for(std::chrono::milliseconds(20));
  gate.Cancel();
  empty.Cancel();
  producer.join();
  consumer.join();
  CHECK_FALSE(push_result);
  CHECK(popped == nullptr);
}

TEST_CASE("channel: PopFromUnlessStalled gives up while another producer's queue is full") {
  InputGate gate(2, 1);
  REQUIRE(gate.Push(1, BatchWithSeq(7)));  // producer 1 is full, producer 0 has nothing
  bool stalled = false;
  CHECK(gate.PopFromUnlessStalled(0, &stalled) == nullptr);
  CHECK(stalled);
  REQUIRE(gate.Push(0, BatchWithSeq(3)));
  CHECK(gate.PopFromUnlessStalled(0, &stalled)->seq == 3);
  CHECK_FALSE(stalled);
}

TEST_CASE("channel: TryPush never blocks and leaves the batch with the caller when full") {
  InputGate gate(2, 1);
  BatchPtr a = BatchWithSeq(1);
  CHECK(gate.TryPush(0, a) == InputGate::TryPushResult::kPushed);
  CHECK(a == nullptr);
  BatchPtr b = BatchWithSeq(2);
  CHECK(gate.TryPush(0, b) == InputGate::TryPushResult::kFull);
  REQUIRE(b != nullptr);
  CHECK(b->seq == 2);
  // Peek shows the next batch without taking it.
  REQUIRE(gate.Peek(0) != nullptr);
  CHECK(gate.Peek(0)->seq == 1);
  CHECK(gate.Peek(1) == nullptr);
  CHECK(gate.PopFrom(0)->seq == 1);
  CHECK(gate.Peek(0) == nullptr);
  CHECK(gate.TryPush(0, b) == InputGate::TryPushResult::kPushed);
  gate.Cancel();
  BatchPtr c = BatchWithSeq(3);
  CHECK(gate.TryPush(1, c) == InputGate::TryPushResult::kCancelled);
  CHECK(gate.Peek(0) == nullptr);
}

TEST_CASE("channel: TryPopAny takes producers in turn, skips the skipped, never waits") {
  InputGate gate(3, 4);
  int producer = -1;
  CHECK(gate.TryPopAny(&producer) == nullptr);
  for (int p = 0; p < 3; ++p) {
    REQUIRE(gate.Push(p, BatchWithSeq(10 * p + 1)));
    REQUIRE(gate.Push(p, BatchWithSeq(10 * p + 2)));
  }
  std::vector<bool> skip = {false, true, false};  // producer 1 is at a barrier
  std::vector<uint64_t> seqs;
  while (BatchPtr b = gate.TryPopAny(&producer, &skip)) {
    CHECK(producer != 1);
    seqs.push_back(b->seq);
  }
  CHECK(seqs == std::vector<uint64_t>{1, 21, 2, 22});
  REQUIRE(gate.TryPopAny(&producer) != nullptr);
  CHECK(producer == 1);
  gate.Cancel();
  CHECK(gate.TryPopAny(&producer) == nullptr);
}

TEST_CASE("channel: signals tell a co-located host of queued batches, taken batches and cancel") {
  InputGate gate(2, 4);
  ThreadSignal consumer, producer1;
  gate.SetConsumerSignal(&consumer);
  gate.SetProducerSignal(1, &producer1);
  uint64_t c0 = consumer.generation(), p0 = producer1.generation();
  REQUIRE(gate.Push(0, BatchWithSeq(1)));
  CHECK(consumer.generation() != c0);
  CHECK(producer1.generation() == p0);
  gate.PopFrom(0);  // producer 0's batch: producer 1 is not told
  CHECK(producer1.generation() == p0);
  BatchPtr b = BatchWithSeq(2);
  REQUIRE(gate.TryPush(1, b) == InputGate::TryPushResult::kPushed);
  int from = -1;
  gate.PopAny(&from);
  CHECK(from == 1);
  CHECK(producer1.generation() != p0);
  // A waiter wakes on the next notification, not after its timeout.
  uint64_t seen = producer1.generation();
  std::thread canceller([&] {
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
    gate.Cancel();
  });
  auto start = std::chrono::steady_clock::now();
  producer1.WaitChanged(seen, /*timeout_ms=*/10000);
  auto waited = std::chrono::steady_clock::now() - start;
  canceller.join();
  CHECK(producer1.generation() != seen);
  CHECK(waited < std::chrono::seconds(5));
}

}  // namespace streamrun
