// Fakes for driving sources in tests: an Emitter and an ErrorReporter that capture everything.
#pragma once

#include <mutex>
#include <string>
#include <vector>

#include "engine/operator.h"

namespace streamrun {

struct CapturedRow {
  int64_t ts, wm;
  std::string raw;
  uint64_t offset;
  uint16_t flags;
  std::vector<Value>
      slots;  // strings point into `raw` of the captured batch: compare kinds/ints only
};
struct CapturedBatch {
  uint64_t seq;
  bool seq_last;
  int64_t watermark;
  std::vector<CapturedRow> rows;
};

class CaptureEmitter : public Emitter {
 public:
  Status Emit(BatchPtr b) override {
    CapturedBatch cb{b->seq, b->seq_last, b->watermark, {}};
    for (size_t r = 0; r < b->rows.size(); ++r) {
      const Row& row = b->rows[r];
      CapturedRow cr{row.ts, row.wm, std::string(row.raw), row.offset, row.flags, {}};
      for (uint32_t i = 0; i < b->width; ++i) cr.slots.push_back(b->SlotsOf(r)[i]);
      cb.rows.push_back(std::move(cr));
    }
    std::lock_guard<std::mutex> lock(mu);
    batches.push_back(std::move(cb));
    kept.push_back(std::move(b));  // keeps slot strings alive
    return Status::Ok();
  }
  std::mutex mu;
  std::vector<CapturedBatch> batches;
  std::vector<BatchPtr> kept;
};

class CaptureReporter : public ErrorReporter {
 public:
  explicit CaptureReporter(bool fail = false) : fail_(fail) {}
  Status Report(const Batch&, size_t, std::string_view, std::string_view) override {
    return Status::Ok();
  }
  Status ReportInput(uint16_t, uint64_t offset, std::string_view text,
                     std::string_view reason) override {
    std::lock_guard<std::mutex> lock(mu);
    inputs.push_back({offset, std::string(text), std::string(reason)});
    return fail_ ? Status::DataError(std::string(reason)) : Status::Ok();
  }
  Status Flush() override { return Status::Ok(); }
  struct Input {
    uint64_t offset;
    std::string text, reason;
  };
  std::mutex mu;
  std::vector<Input> inputs;

 private:
  bool fail_;
};

}  // namespace streamrun
