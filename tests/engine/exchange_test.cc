// Tests of the keyed exchange (engine/exchange.h): where rows go and the key each carries.
#include "engine/exchange.h"

#include <doctest/doctest.h>
#include <xxhash.h>

#include <algorithm>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "engine/key.h"

namespace streamrun {
namespace {

// The key bytes of a one-string key, written from the format (tag 5, 4-byte big-endian size,
// the bytes), not by EncodeKey.
std::string StringKey(const std::string& s) {
  std::string k = "\x05";
  k += static_cast<char>(s.size() >> 24);
  k += static_cast<char>((s.size() >> 16) & 0xff);
  k += static_cast<char>((s.size() >> 8) & 0xff);
  k += static_cast<char>(s.size() & 0xff);
  return k + s;
}

}  // namespace

TEST_CASE("exchange: keyed rows reach the subtask of their key group with their key record") {
  // A few consumers (one pass per consumer) and many (rows appended one at a time).
  for (int kSubtasks : {2, 3, 12}) {
    CAPTURE(kSubtasks);
    std::vector<std::unique_ptr<InputGate>> gates;
    Route route;
    route.kind = EdgeKind::kKeyed;
    for (int t = 0; t < kSubtasks; ++t) {
      gates.push_back(std::make_unique<InputGate>(1, 64));
      route.gates.push_back(gates.back().get());
    }
    route.key_slots = {0};
    std::vector<Route> routes;
    routes.push_back(std::move(route));
    OutputEmitter emitter(std::move(routes), /*width=*/1, /*ordered=*/false);

    // Keys of every length class CopyShort has (0 to 3, 4 to 7, 8 to 16, longer).
    std::vector<std::string> users;
    for (int i = 0; i < 300; ++i) {
      users.push_back(std::string(static_cast<size_t>(i % 23), 'k') + std::to_string(i));
    }
    std::map<std::string, int> expected_subtask;
    {
      BatchPtr in = NewBatch(1);
      for (size_t i = 0; i < users.size(); ++i) {
        size_t r = in->AddRow(0, i);
        in->rows[r].raw = in->arena.Copy("{\"user\":\"" + users[i] + "\"}");
        // The string points into the row's own bytes, as a file source leaves it.
        in->SlotsOf(r)[0] = Value::String(in->rows[r].raw.substr(9, users[i].size()));
        const uint64_t hash = XXH3_64bits(StringKey(users[i]).data(), StringKey(users[i]).size());
        expected_subtask[users[i]] = static_cast<int>(hash % 128) * kSubtasks / 128;
      }
      REQUIRE(emitter.Emit(std::move(in)).ok());
    }  // the input batch is gone from here: consumer batches keep it alive

    size_t seen = 0;
    for (int t = 0; t < kSubtasks; ++t) {
      int64_t last_offset = -1;  // each consumer gets its rows in input order
      while (BatchPtr b = gates[static_cast<size_t>(t)]->TryPop(0)) {
        for (size_t r = 0; r < b->rows.size(); ++r) {
          const Row& row = b->rows[r];
          CHECK(static_cast<int64_t>(row.offset) > last_offset);
          last_offset = static_cast<int64_t>(row.offset);
          const std::string user(b->SlotsOf(r)[0].as_string());
          CHECK(expected_subtask.at(user) == t);
          REQUIRE((row.flags & kRowKeyed) != 0);
          const std::string key = StringKey(user);
          CHECK(KeyRecordKey(row.keyed) == key);
          CHECK(KeyRecordHash(row.keyed) == XXH3_64bits(key.data(), key.size()));
          CHECK(row.raw == "{\"user\":\"" + user + "\"}");
          ++seen;
        }
        // A deep copy leaves the key record behind (it was this consumer's key).
        if (!b->rows.empty()) {
          BatchPtr copy = NewBatch(1);
          copy->CopyRowFrom(*b, 0);
          CHECK((copy->rows[0].flags & kRowKeyed) == 0);
          CHECK(copy->rows[0].keyed == nullptr);
        }
      }
    }
    CHECK(seen == users.size());
  }
}

TEST_CASE("exchange: the co-located consumer's rows stay in their input batch, in order") {
  // With and without a local consumer, in chunk order or not: each subtask gets exactly the rows
  // of its key groups, in input order, with their bytes and key records, and the last batch it
  // gets carries the input's watermark and end of chunk. The input batch is gone by then.
  constexpr int kSubtasks = 2;
  for (int local : {-1, 0, 1}) {
    for (bool ordered : {false, true}) {
      CAPTURE(local);
      CAPTURE(ordered);
      InputGate gate0(1, 64), gate1(1, 64);
      Route route;
      route.kind = EdgeKind::kKeyed;
      route.gates = {&gate0, &gate1};
      route.key_slots = {0};
      route.local = local;
      std::vector<Route> routes;
      routes.push_back(std::move(route));
      OutputEmitter emitter(std::move(routes), /*width=*/1, ordered);

      std::vector<std::string> users;
      std::vector<std::vector<uint64_t>> expected(kSubtasks);  // offsets per subtask, in order
      for (int i = 0; i < 2500; ++i) users.push_back("user" + std::to_string(i * 7919 % 1000));
      constexpr int64_t kWatermark = 12345;
      for (size_t first = 0; first < users.size(); first += 1000) {  // three input batches
        BatchPtr in = NewBatch(1);
        in->seq = 7;
        in->seq_last = first + 1000 >= users.size();
        for (size_t i = first; i < std::min(users.size(), first + 1000); ++i) {
          size_t r = in->AddRow(0, i);
          in->rows[r].raw = in->arena.Copy("{\"user\":\"" + users[i] + "\"}");
          in->rows[r].wm = static_cast<int64_t>(i);
          in->SlotsOf(r)[0] = Value::String(in->rows[r].raw.substr(9, users[i].size()));
          const std::string key = StringKey(users[i]);
          const uint64_t hash = XXH3_64bits(key.data(), key.size());
          expected[static_cast<int>(hash % 128) * kSubtasks / 128].push_back(i);
        }
        in->watermark = kWatermark + static_cast<int64_t>(first);
        REQUIRE(emitter.Emit(std::move(in)).ok());
      }
      for (int t = 0; t < kSubtasks; ++t) {
        InputGate& gate = t == 0 ? gate0 : gate1;
        std::vector<uint64_t> got;
        int64_t last_watermark = kMinTimestamp;
        bool last_seq_last = false;
        while (BatchPtr b = gate.TryPop(0)) {
          CHECK(b->seq == 7);
          for (size_t r = 0; r < b->rows.size(); ++r) {
            const Row& row = b->rows[r];
            const std::string& user = users[row.offset];
            CHECK(b->SlotsOf(r)[0].as_string() == user);
            CHECK(row.raw == "{\"user\":\"" + user + "\"}");
            REQUIRE((row.flags & kRowKeyed) != 0);
            CHECK(KeyRecordKey(row.keyed) == StringKey(user));
            got.push_back(row.offset);
          }
          last_watermark = b->watermark;
          last_seq_last = b->seq_last;
        }
        CHECK(got == expected[t]);
        CHECK(last_watermark == kWatermark + 2000);
        CHECK(last_seq_last);
      }
    }
  }
}

}  // namespace streamrun
