// Tests of the bounded input gate (engine/channel.h).
#include "engine/channel.h"

#include <atomic>
#include <chrono>
#include <thread>

#include <doctest/doctest.h>

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

}  // namespace streamrun
