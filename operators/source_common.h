// What every source shares: the `event_time`, `watermark` and `on_error` settings, and the
// per-record work of turning a line (or generated values) into a row with its event time and
// watermark tag.
//
// Thread safety: SourceCommon is immutable and shared; a RecordMaker and a RateLimiter belong to
// one source subtask's thread.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "engine/batch.h"
#include "engine/expr.h"
#include "engine/json_extract.h"
#include "engine/operator.h"
#include "engine/pipeline.h"
#include "engine/recording.h"
#include "engine/watermark.h"

namespace streamrun {

struct SourceCommon {
  std::string event_time;                    // expression text; empty: the wall-clock read time
  std::vector<FieldPath> event_time_fields;  // the fields it reads
  int64_t max_out_of_orderness_ms = 0;
  // Sources of several partitions (Kafka): a partition with nothing to read for this long no
  // longer holds back the watermark. 0: never.
  int64_t idle_timeout_ms = 0;
  OnError on_error = OnError::kFail;
};

// Reads `event_time`, `watermark: {max_out_of_orderness}` and `on_error`; with
// `partitioned`, also `watermark: {idle_timeout}`.
Result<SourceCommon> ReadSourceCommon(const ConfigReader& config, bool partitioned = false);

// The fields a source must extract: its consumers' fields and those of event_time.
std::vector<FieldPath> SourceInputFields(const SourceCommon& common,
                                         const std::vector<FieldPath>& output_fields);

// How a source's input becomes records: JSON lines, text lines (the field `line`), or a
// recording (engine/recording.h: each line's value is the record, with the Kafka metadata
// `$key`, `$timestamp`, `$partition`, `$offset`, `$topic`, `$headers`, filled in as the kafka
// source fills them, so that a test on a recording sees what the job sees on the topic).
enum class LineFormat : uint8_t { kJson, kText, kRecording };
// "json", "text" or "recording" (anything else: json).
LineFormat LineFormatNamed(std::string_view name);

// A Kafka metadata field that a slot of a source's layout takes: `$key`, `$timestamp`,
// `$partition`, `$offset`, `$topic`, `$headers` (the object), `$headers.NAME` (kHeader), and for
// text records the field `line` (kLine). Filled by the kafka source from each message and by a
// recording from each line, the same way.
enum class RecordMeta : uint8_t {
  kKey,
  kTimestamp,
  kPartition,
  kOffset,
  kTopic,
  kHeaders,
  kHeader,
  kLine
};
struct MetaSlot {
  uint32_t slot;
  RecordMeta meta;
  std::string header;  // kHeader: its name
};
// The slots of `layout` that take metadata. Deeper paths (`$key.a`, `$headers.a.b`) take none:
// they read as missing. `text_line`: `line` is a metadata slot (kLine), as for a kafka source
// of format text.
std::vector<MetaSlot> MetaSlotsOf(const Layout& layout, bool text_line);

// The NodeConfig every source type derives from: the settings all sources have and the format
// of the records it makes. `streamrun test` reads them to replace a source, whatever its type,
// by a file source with the same event time, watermark and on_error (engine/test_runner.cc).
class SourceConfig : public NodeConfig {
 public:
  SourceConfig(SourceCommon common, LineFormat format)
      : common_(std::move(common)), format_(format) {}
  const SourceCommon& common() const { return common_; }
  LineFormat format() const { return format_; }

  std::vector<FieldPath> InputFields(const std::vector<FieldPath>& out) const override {
    return SourceInputFields(common_, out);
  }
  OnError on_error() const override { return common_.on_error; }

 protected:
  SourceCommon common_;
  LineFormat format_;
};

// Milliseconds since the epoch, for sources without event_time.
int64_t WallClockMs();

// Turns input into rows of a batch laid out by ctx.layout. One per source subtask.
class RecordMaker {
 public:
  RecordMaker(const SourceCommon& common, const SourceContext& ctx, LineFormat format);

  // Parses and binds event_time to ctx.layout.
  Status Init();

  // Appends `line` (without its newline) as a row of `batch`: its bytes are copied into the
  // batch's arena, its fields extracted, its event time computed; row.wm = gen.current() before
  // gen observes the row's time. Bad input goes to ctx.errors and is not appended; the Status
  // is the reporter's (not ok when on_error is fail).
  // REQUIRES: JsonExtractor::padding() readable bytes after the line.
  // `next`: when the line comes from the buffer given to BeginLines, where the following line
  // begins (see JsonExtractor::ExtractLine); nullptr otherwise.
  Status AddLine(Batch& batch, std::string_view line, uint64_t offset, WatermarkGenerator& gen,
                 const char* next = nullptr);

  // The lines of [data, data + size) come next, in order (a file chunk, read at once): JSON is
  // parsed many lines at a time (JsonExtractor::BeginLines), and without event_time they all
  // get the time of this call as their read time (one clock read per chunk, not per line).
  // REQUIRES: padding() readable bytes after it.
  void BeginLines(const char* data, size_t size) {
    if (extractor_) extractor_->BeginLines(data, size);
    chunk_read_ms_ = WallClockMs();
  }
  // The lines given to AddLine from now on live in `owner`, which stays unchanged while anyone
  // holds it: rows point into it instead of copying their bytes, and their batches pin it.
  // Null (the default): every line is copied into its batch's arena.
  void SetLineOwner(std::shared_ptr<const void> owner) { line_owner_ = std::move(owner); }
  // Where bad input goes from now on instead of ctx.errors (null: back to ctx.errors).
  void SetErrorReporter(ErrorReporter* errors) { errors_ = errors; }

  // For sources that fill a row themselves (generators): the last row of `batch` has raw, offset
  // and slots set; computes its ts and wm like AddLine, or reports and removes it.
  Status FinishRow(Batch& batch, WatermarkGenerator& gen);

  // The slot of `$offset`, or -1.
  int offset_slot() const { return offset_slot_; }

 private:
  Status Bad(Batch& batch, std::string_view text, uint64_t offset, std::string_view reason);
  // FinishRow's event time of the last row of `batch` by evaluating event_time; false when it
  // fails (the row is then reported and removed, with *status the report's).
  bool EvalEventTime(Batch& batch, int64_t* ts, Status* status);
  // AddLine for format recording: the row is the line's payload, its slots the payload's fields
  // and the metadata.
  Status AddRecordingLine(Batch& batch, std::string_view line, uint64_t offset,
                          WatermarkGenerator& gen);
  // The value of a metadata field of recorded_, in the batch's arena.
  Value RecordedMeta(const MetaSlot& m, Arena& arena);
  // Removes the last row of `batch` (one that turned out bad).
  void DropLastRow(Batch& batch);

  const SourceCommon& common_;
  const SourceContext& ctx_;
  ErrorReporter* errors_ = nullptr;  // SetErrorReporter
  LineFormat format_;
  uint32_t width_;
  std::unique_ptr<JsonExtractor> extractor_;
  std::shared_ptr<const void> line_owner_;
  std::unique_ptr<Expr> event_time_;
  int event_time_slot_ = -1;  // event_time is this one field (Expr::BoundFieldSlot)
  int offset_slot_ = -1;
  int line_slot_ = -1;
  // Format recording.
  std::unique_ptr<RecordingDecoder> recording_;
  RecordingRecord recorded_;
  std::vector<MetaSlot> meta_slots_;
  std::string headers_json_;               // $headers of the line being read
  int64_t chunk_read_ms_ = kMinTimestamp;  // BeginLines' time; kMinTimestamp: not in a chunk
  std::string error_;
};

// At most `rate` records per second (rate <= 0: unlimited), with a burst of a tenth of a second.
class RateLimiter {
 public:
  explicit RateLimiter(double rate);
  bool limited() const { return rate_ > 0; }
  // Waits until one more record may go, sleeping in small steps. Returns false when `cancelled`
  // was set meanwhile.
  bool Acquire(const std::atomic<bool>* cancelled);
  // True when a record may go right now (takes it).
  bool TryAcquire();

 private:
  void Refill();
  double rate_;
  double tokens_;
  double burst_;
  std::chrono::steady_clock::time_point last_;
};

// Reads lines from `fd` until it ends (or, with `follow`, until cancelled), emitting batches to
// ctx.out. With `poll`, a pause in the input (no data for a moment) emits the batch so far, so
// interactive use sees results promptly. A last line without newline counts unless `follow`
// (then it waits for its newline). Empty lines are skipped, a trailing \r is removed.
struct LineStreamOptions {
  int fd = -1;
  bool follow = false;
  bool poll = false;
  double rate = 0;
};
Status StreamLines(SourceContext& ctx, RecordMaker& maker, const SourceCommon& common,
                   const LineStreamOptions& options);

// A source position of a line stream or generator in a checkpoint: {"offset": next line's byte
// offset (a generator: "index", the next record's number), "max_ts": the max event time so far}.
struct StreamPosition {
  bool end = false;  // the source had ended
  uint64_t offset = 0;
  int64_t max_ts = kMinTimestamp;
};
std::string StreamPositionJson(uint64_t offset, int64_t max_ts);
// `positions`: SourceContext::restore_positions.
Result<StreamPosition> ParseStreamPosition(const std::string& positions);

// Emits `batch` to ctx.out and counts it in ctx.progress (records; bytes when `bytes` > 0).
Status EmitBatch(SourceContext& ctx, BatchPtr batch, uint64_t bytes);

inline bool IsCancelled(const SourceContext& ctx) {
  return ctx.cancelled != nullptr && ctx.cancelled->load(std::memory_order_relaxed);
}

}  // namespace streamrun
