// Source settings and the per-record loop shared by every source.
#include "operators/source_common.h"

#include <poll.h>
#include <rapidjson/document.h>
#include <spdlog/spdlog.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <thread>

namespace streamrun {

Result<SourceCommon> ReadSourceCommon(const ConfigReader& config, bool partitioned) {
  SourceCommon common;
  if (config.Has("event_time")) {
    SR_ASSIGN_OR_RETURN(auto expr, config.Expression("event_time"));
    common.event_time = expr->text();
    common.event_time_fields = expr->fields();
  }
  if (config.Has("watermark")) {
    SR_ASSIGN_OR_RETURN(ConfigReader wm, config.Child("watermark"));
    if (partitioned) {
      SR_RETURN_IF_ERROR(wm.CheckKeys({"max_out_of_orderness", "idle_timeout"}));
      SR_ASSIGN_OR_RETURN(common.idle_timeout_ms, wm.DurationMs("idle_timeout", 0));
      if (common.idle_timeout_ms < 0) return wm.ErrorAt("idle_timeout", "must not be negative");
    } else {
      SR_RETURN_IF_ERROR(wm.CheckKeys({"max_out_of_orderness"}));
    }
    SR_ASSIGN_OR_RETURN(common.max_out_of_orderness_ms, wm.DurationMs("max_out_of_orderness", 0));
    if (common.max_out_of_orderness_ms < 0) {
      return wm.ErrorAt("max_out_of_orderness", "must not be negative");
    }
  }
  SR_ASSIGN_OR_RETURN(std::string on_error, config.Enum("on_error", {"fail", "drop", "dead_letter"},
                                                        std::string("fail")));
  common.on_error = on_error == "drop"          ? OnError::kDrop
                    : on_error == "dead_letter" ? OnError::kDeadLetter
                                                : OnError::kFail;
  return common;
}

std::vector<FieldPath> SourceInputFields(const SourceCommon& common,
                                         const std::vector<FieldPath>& output_fields) {
  std::vector<FieldPath> fields = output_fields;
  for (const auto& f : common.event_time_fields) {
    if (std::find(fields.begin(), fields.end(), f) == fields.end()) fields.push_back(f);
  }
  return fields;
}

LineFormat LineFormatNamed(std::string_view name) {
  if (name == "text") return LineFormat::kText;
  if (name == "recording") return LineFormat::kRecording;
  return LineFormat::kJson;
}

std::vector<MetaSlot> MetaSlotsOf(const Layout& layout, bool text_line) {
  static constexpr std::pair<std::string_view, RecordMeta> kNames[] = {
      {"$key", RecordMeta::kKey},
      {"$timestamp", RecordMeta::kTimestamp},
      {"$partition", RecordMeta::kPartition},
      {"$offset", RecordMeta::kOffset},
      {"$topic", RecordMeta::kTopic},
      {"$headers", RecordMeta::kHeaders}};
  std::vector<MetaSlot> slots;
  for (uint32_t i = 0; i < layout.size(); ++i) {
    const FieldPath& p = layout[i];
    if (p.size() == 2 && p[0] == "$headers") {
      slots.push_back({i, RecordMeta::kHeader, p[1]});
      continue;
    }
    if (p.size() != 1) continue;
    if (text_line && p[0] == "line") {
      slots.push_back({i, RecordMeta::kLine, ""});
      continue;
    }
    for (const auto& [name, meta] : kNames) {
      if (p[0] == name) slots.push_back({i, meta, ""});
    }
  }
  return slots;
}

int64_t WallClockMs() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

RecordMaker::RecordMaker(const SourceCommon& common, const SourceContext& ctx, LineFormat format)
    : common_(common),
      ctx_(ctx),
      format_(format),
      width_(static_cast<uint32_t>(ctx.layout.size())) {
  for (size_t i = 0; i < ctx.layout.size(); ++i) {
    const FieldPath& p = ctx.layout[i];
    if (p.size() == 1 && p[0] == "$offset" && offset_slot_ < 0) offset_slot_ = static_cast<int>(i);
    if (p.size() == 1 && p[0] == "line" && line_slot_ < 0) line_slot_ = static_cast<int>(i);
  }
  if (format_ != LineFormat::kText) extractor_ = std::make_unique<JsonExtractor>(ctx.layout);
  if (format_ == LineFormat::kRecording) {
    // The record's own `line` (a text record) is line_slot_, as for format text.
    meta_slots_ = MetaSlotsOf(ctx.layout, /*text_line=*/false);
    // The value's fields are extracted right after decoding, which checks its JSON.
    recording_ = std::make_unique<RecordingDecoder>(RecordingDecoder::ValueCheck::kStructure);
  }
}

Status RecordMaker::Init() {
  if (common_.event_time.empty()) return Status::Ok();
  ExprParseError perr;
  event_time_ = ParseExpr(common_.event_time, &perr);
  if (!event_time_) {
    return Status::PipelineError("source '" + ctx_.name + "': event_time: " + perr.message);
  }
  SR_RETURN_IF_ERROR(event_time_->Bind(ctx_.layout));
  event_time_slot_ = event_time_->BoundFieldSlot();
  return Status::Ok();
}

Status RecordMaker::Bad(Batch& batch, std::string_view text, uint64_t offset,
                        std::string_view reason) {
  (void)batch;
  ErrorReporter* errors = errors_ != nullptr ? errors_ : ctx_.errors;
  if (errors == nullptr) return Status::DataError(std::string(reason));
  return errors->ReportInput(ctx_.origin, offset, text, reason);
}

void RecordMaker::DropLastRow(Batch& batch) {
  batch.rows.pop_back();
  batch.slots.resize(batch.slots.size() - width_);
}

Status RecordMaker::AddLine(Batch& batch, std::string_view line, uint64_t offset,
                            WatermarkGenerator& gen, const char* next) {
  if (format_ == LineFormat::kRecording) [[unlikely]] {
    return AddRecordingLine(batch, line, offset, gen);
  }
  size_t r = batch.AddRow(ctx_.origin, offset);
  Value* slots = batch.SlotsOf(r);
  if (format_ == LineFormat::kJson) {
    bool ok = next != nullptr ? extractor_->ExtractLine(line, next, slots, batch.arena, &error_)
                              : extractor_->Extract(line, slots, batch.arena, &error_);
    if (!ok) {
      DropLastRow(batch);
      return Bad(batch, line, offset, error_);
    }
  }
  if (next == nullptr) chunk_read_ms_ = kMinTimestamp;  // not a chunk's line: read now
  std::string_view raw = line;
  if (line_owner_) {
    // The line stays in its chunk buffer, which the batch pins.
    if (batch.pins.empty() || batch.pins.back() != line_owner_) batch.pins.push_back(line_owner_);
  } else {
    // The row keeps its own copy of the bytes; values that point into the line follow it there.
    raw = batch.arena.Copy(line);
  }
  batch.rows[r].raw = raw;
  if (format_ == LineFormat::kJson) {
    // Values that point into the line follow its bytes into the arena.
    for (uint32_t i = 0; i < width_ && raw.data() != line.data(); ++i) {
      Value& v = slots[i];
      if (v.kind() != Value::Kind::kString && v.kind() != Value::Kind::kJson) continue;
      std::string_view s = v.as_string();
      if (s.data() >= line.data() && s.data() + s.size() <= line.data() + line.size()) {
        std::string_view moved(raw.data() + (s.data() - line.data()), s.size());
        v = v.kind() == Value::Kind::kString ? Value::String(moved) : Value::Json(moved);
      }
    }
  } else {
    batch.rows[r].flags = kRowText;
    if (line_slot_ >= 0) slots[line_slot_] = Value::String(raw);
  }
  if (offset_slot_ >= 0) slots[offset_slot_] = Value::Int(static_cast<int64_t>(offset));
  return FinishRow(batch, gen);
}

Status RecordMaker::AddRecordingLine(Batch& batch, std::string_view line, uint64_t offset,
                                     WatermarkGenerator& gen) {
  chunk_read_ms_ = kMinTimestamp;  // without event_time: the time each line is read
  // AddLine's lines have the padding DecodePadded needs.
  Status decoded = recording_->DecodePadded(line, &recorded_);
  if (!decoded.ok()) return Bad(batch, line, offset, decoded.message());
  const RecordingRecord& rec = recorded_;
  if (rec.value_form == PayloadForm::kNull) {
    return Bad(batch, line, offset, "the record has no value (a tombstone)");
  }
  if (rec.value_form == PayloadForm::kBase64) {
    return Bad(batch, line, offset,
               "the value is binary (value_b64): a record must be JSON or text");
  }
  // `offset`: where the line is in the file, for error reports.
  size_t r = batch.AddRow(ctx_.origin, offset);
  Value* slots = batch.SlotsOf(r);
  std::string_view raw;
  if (rec.value_form == PayloadForm::kJson) {
    // The payload's fields; it must be a JSON object like every line of format json. Its bytes
    // are the record's, exactly as recorded (as the kafka source passes a payload on).
    const size_t pad = JsonExtractor::padding();
    char* copy = batch.arena.Allocate(rec.value->size() + pad);
    std::memcpy(copy, rec.value->data(), rec.value->size());
    std::memset(copy + rec.value->size(), 0, pad);
    raw = std::string_view(copy, rec.value->size());
    if (!extractor_->Extract(raw, slots, batch.arena, &error_)) {
      DropLastRow(batch);
      return Bad(batch, line, offset, "value: " + error_);
    }
  } else {  // a text record, as format text makes
    raw = batch.arena.Copy(*rec.value);
    batch.rows[r].flags = kRowText;
    if (line_slot_ >= 0) slots[line_slot_] = Value::String(raw);
  }
  batch.rows[r].raw = raw;
  for (const MetaSlot& m : meta_slots_) slots[m.slot] = RecordedMeta(m, batch.arena);
  return FinishRow(batch, gen);
}

// As the kafka source fills them (operators/kafka_source.cc): the key as a string (null without
// one), the headers as an object of strings and nulls ({} without headers), a header's last
// value. A field the line does not give (topic, partition, offset, timestamp) is missing.
Value RecordMaker::RecordedMeta(const MetaSlot& m, Arena& arena) {
  const RecordingRecord& rec = recorded_;
  switch (m.meta) {
    case RecordMeta::kKey:
      return rec.key ? Value::String(arena.Copy(*rec.key)) : Value::Null();
    case RecordMeta::kTimestamp:
      return rec.timestamp ? Value::Int(*rec.timestamp) : Value::Missing();
    case RecordMeta::kPartition:
      return rec.partition >= 0 ? Value::Int(rec.partition) : Value::Missing();
    case RecordMeta::kOffset:
      return rec.offset >= 0 ? Value::Int(rec.offset) : Value::Missing();
    case RecordMeta::kTopic:
      return rec.topic.empty() ? Value::Missing() : Value::String(arena.Copy(rec.topic));
    case RecordMeta::kHeader:
      for (auto h = rec.headers.rbegin(); h != rec.headers.rend(); ++h) {
        if (h->name != m.header) continue;
        return h->value ? Value::String(arena.Copy(*h->value)) : Value::Null();
      }
      return Value::Null();
    case RecordMeta::kHeaders:
      headers_json_ = "{";
      for (size_t i = 0; i < rec.headers.size(); ++i) {
        if (i > 0) headers_json_ += ',';
        AppendJsonString(headers_json_, rec.headers[i].name);
        headers_json_ += ':';
        if (rec.headers[i].value) {
          AppendJsonString(headers_json_, *rec.headers[i].value);
        } else {
          headers_json_ += "null";
        }
      }
      headers_json_ += '}';
      return Value::Json(arena.Copy(headers_json_));
    case RecordMeta::kLine:  // not a metadata slot here (MetaSlotsOf without text_line)
      break;
  }
  return Value::Missing();
}

Status RecordMaker::FinishRow(Batch& batch, WatermarkGenerator& gen) {
  int64_t ts;
  if (event_time_) {
    // The common case inline: event_time names a field holding epoch milliseconds.
    const Value* slot =
        event_time_slot_ >= 0 ? batch.SlotsOf(batch.rows.size() - 1) + event_time_slot_ : nullptr;
    if (slot != nullptr && slot->kind() == Value::Kind::kInt) {
      ts = slot->as_int();
    } else {
      Status status;
      if (!EvalEventTime(batch, &ts, &status)) return status;
    }
  } else {
    ts = chunk_read_ms_ != kMinTimestamp ? chunk_read_ms_ : WallClockMs();
  }
  Row& row = batch.rows.back();
  row.ts = ts;
  row.wm = gen.current();
  gen.Observe(ts);
  return Status::Ok();
}

bool RecordMaker::EvalEventTime(Batch& batch, int64_t* ts, Status* status) {
  const size_t r = batch.rows.size() - 1;
  Row& row = batch.rows[r];
  EvalContext ec;
  ec.slots = batch.SlotsOf(r);
  ec.row = &row;
  ec.arena = &batch.arena;
  Value v = event_time_->Eval(ec);
  std::string reason;
  if (!ec.error.empty()) {
    reason = "event_time: " + ec.error;
  } else if (!ToEventTime(v, ts)) {
    reason = std::string("event_time: expected epoch milliseconds or an RFC 3339 string, got ") +
             KindName(v.kind());
  }
  if (reason.empty()) return true;
  std::string_view text = row.raw;
  uint64_t offset = row.offset;
  DropLastRow(batch);
  *status = Bad(batch, text, offset, reason);  // text stays valid: it is in the arena
  return false;
}

RateLimiter::RateLimiter(double rate)
    : rate_(rate),
      tokens_(0),
      burst_(std::max(1.0, rate / 10)),
      last_(std::chrono::steady_clock::now()) {
  tokens_ = std::min(burst_, 1.0);
}

void RateLimiter::Refill() {
  auto now = std::chrono::steady_clock::now();
  double secs = std::chrono::duration<double>(now - last_).count();
  last_ = now;
  tokens_ = std::min(burst_, tokens_ + secs * rate_);
}

bool RateLimiter::TryAcquire() {
  if (rate_ <= 0) return true;
  if (tokens_ < 1) Refill();
  if (tokens_ < 1) return false;
  tokens_ -= 1;
  return true;
}

bool RateLimiter::Acquire(const std::atomic<bool>* cancelled) {
  while (!TryAcquire()) {
    if (cancelled != nullptr && cancelled->load(std::memory_order_relaxed)) return false;
    double wait_s = (1 - tokens_) / rate_;
    auto step =
        std::chrono::microseconds(static_cast<int64_t>(std::clamp(wait_s * 1e6, 50.0, 10000.0)));
    std::this_thread::sleep_for(step);
  }
  return true;
}

std::string StreamPositionJson(uint64_t offset, int64_t max_ts) {
  std::string out = "{\"offset\":" + std::to_string(offset) + ",\"max_ts\":";
  out += max_ts == kMinTimestamp ? "null" : std::to_string(max_ts);
  return out + "}";
}

Result<StreamPosition> ParseStreamPosition(const std::string& positions) {
  rapidjson::Document doc;
  doc.Parse(positions.data(), positions.size());
  if (doc.HasParseError() || !doc.IsArray()) {
    return Status::RuntimeError("damaged source position in the checkpoint");
  }
  StreamPosition at;
  bool any_end = false;
  for (auto& v : doc.GetArray()) {
    if (v.IsString() && std::string_view(v.GetString()) == "end") any_end = true;
    if (!v.IsObject()) continue;
    if (v.HasMember("offset") && v["offset"].IsUint64()) at.offset = v["offset"].GetUint64();
    if (v.HasMember("index") && v["index"].IsUint64()) at.offset = v["index"].GetUint64();
    if (v.HasMember("max_ts") && v["max_ts"].IsInt64()) at.max_ts = v["max_ts"].GetInt64();
    return at;
  }
  if (any_end) {
    at.end = true;
    return at;
  }
  return Status::RuntimeError("the checkpoint has no position for the source");
}

Status EmitBatch(SourceContext& ctx, BatchPtr batch, uint64_t bytes) {
  if (ctx.progress != nullptr) {
    ctx.progress->records.fetch_add(batch->rows.size(), std::memory_order_relaxed);
    if (bytes > 0) ctx.progress->bytes.fetch_add(bytes, std::memory_order_relaxed);
  }
  return ctx.out->Emit(std::move(batch));
}

Status StreamLines(SourceContext& ctx, RecordMaker& maker, const SourceCommon& common,
                   const LineStreamOptions& options) {
  constexpr size_t kReadSize = 64 * 1024;
  constexpr int kPollMs = 50;
  const size_t pad = JsonExtractor::padding();
  const uint32_t width = static_cast<uint32_t>(ctx.layout.size());
  WatermarkGenerator gen(common.max_out_of_orderness_ms);
  RateLimiter limiter(options.rate);
  std::string buf;  // [0, len): unread bytes, then padding
  size_t len = 0;
  uint64_t buf_offset = 0;  // input offset of buf[0]
  uint64_t pending_bytes = 0;
  BatchPtr batch = NewBatch(width);

  // The watermark sent so far. Records advance it with the batch that carries them; only a
  // restored source has a watermark (from its position's max_ts) that no record carried yet:
  // sent in an empty batch at the first flush, so that downstream (a union's minimum over its
  // inputs) need not wait for this input's next record when it has none.
  int64_t sent_wm = kMinTimestamp;
  auto flush = [&]() -> Status {
    if (batch->rows.empty() && gen.current() <= sent_wm) return Status::Ok();
    batch->watermark = gen.current();
    sent_wm = batch->watermark;
    Status st = EmitBatch(ctx, std::move(batch), pending_bytes);
    pending_bytes = 0;
    batch = NewBatch(width);
    return st;
  };
  // Resuming: the position is the offset of the next line and the max event time before it.
  bool skip_to_newline = false;
  if (!ctx.restore_positions.empty()) {
    SR_ASSIGN_OR_RETURN(StreamPosition at, ParseStreamPosition(ctx.restore_positions));
    if (at.end) return Status::Ok();
    // Lines that start at or after the offset: from the byte before it, skip through the first
    // newline (the offset may be a split source's chunk boundary, inside a line).
    uint64_t from = at.offset > 0 ? at.offset - 1 : 0;
    if (::lseek(options.fd, static_cast<off_t>(from), SEEK_SET) < 0) {
      spdlog::warn(
          "source '{}': cannot go back to offset {} of its input ({}); reading on from here",
          ctx.name, at.offset, std::strerror(errno));
    } else {
      buf_offset = from;
      skip_to_newline = at.offset > 0;
    }
    gen.set_max_timestamp(at.max_ts);
  }
  uint64_t last_barrier = 0;
  // Between lines: a requested checkpoint barrier goes out after the rows before it.
  auto barrier = [&](uint64_t next_offset) -> Status {
    if (ctx.barriers == nullptr) return Status::Ok();
    uint64_t id = ctx.barriers->requested();
    if (id <= last_barrier) return Status::Ok();
    last_barrier = id;
    SR_RETURN_IF_ERROR(flush());
    return ctx.barriers->Barrier(id, StreamPositionJson(next_offset, gen.max_timestamp()));
  };
  auto add = [&](size_t begin, size_t end) -> Status {
    if (end > begin && buf[end - 1] == '\r') --end;
    if (end == begin) return Status::Ok();
    if (limiter.limited() && !limiter.TryAcquire()) {
      SR_RETURN_IF_ERROR(flush());  // what is ready goes out while we wait
      if (!limiter.Acquire(ctx.cancelled)) return Status::Cancelled();
    }
    SR_RETURN_IF_ERROR(maker.AddLine(*batch, std::string_view(buf.data() + begin, end - begin),
                                     buf_offset + begin, gen));
    if (batch->full()) return flush();
    return Status::Ok();
  };
  // Every complete line in buf; keeps the partial rest at the front.
  auto drain = [&](bool all) -> Status {
    size_t start = 0;
    if (skip_to_newline) {
      const char* nl = static_cast<const char*>(std::memchr(buf.data(), '\n', len));
      if (nl == nullptr) {
        buf_offset += len;
        len = 0;
        return Status::Ok();
      }
      start = nl - buf.data() + 1;
      skip_to_newline = false;
    }
    while (start < len) {
      const char* nl = static_cast<const char*>(std::memchr(buf.data() + start, '\n', len - start));
      if (nl == nullptr) break;
      size_t end = nl - buf.data();
      SR_RETURN_IF_ERROR(add(start, end));
      pending_bytes += end + 1 - start;
      start = end + 1;
      SR_RETURN_IF_ERROR(barrier(buf_offset + start));
    }
    if (all && start < len) {
      SR_RETURN_IF_ERROR(add(start, len));
      pending_bytes += len - start;
      start = len;
    }
    std::memmove(buf.data(), buf.data() + start, len - start);
    len -= start;
    buf_offset += start;
    return Status::Ok();
  };

  for (;;) {
    if (IsCancelled(ctx)) return Status::Cancelled();
    if (ctx.drain != nullptr && ctx.drain->load(std::memory_order_relaxed)) return flush();
    SR_RETURN_IF_ERROR(barrier(buf_offset));
    if (options.poll) {
      pollfd p{options.fd, POLLIN, 0};
      int n = ::poll(&p, 1, kPollMs);
      if (n < 0 && errno != EINTR)
        return Status::IoError(std::string("poll: ") + std::strerror(errno));
      if (n <= 0) {
        SR_RETURN_IF_ERROR(flush());  // the input paused: show what we have
        continue;
      }
    }
    if (buf.size() < len + kReadSize + pad) buf.resize(len + kReadSize + pad);
    ssize_t n = ::read(options.fd, buf.data() + len, kReadSize);
    if (n < 0) {
      if (errno == EINTR || errno == EAGAIN) continue;
      return Status::IoError("cannot read '" + ctx.name + "' input: " + std::strerror(errno));
    }
    if (n == 0) {
      if (!options.follow) {
        SR_RETURN_IF_ERROR(drain(true));
        return flush();
      }
      SR_RETURN_IF_ERROR(flush());
      std::this_thread::sleep_for(std::chrono::milliseconds(kPollMs));
      continue;
    }
    len += static_cast<size_t>(n);
    SR_RETURN_IF_ERROR(drain(false));
  }
}

}  // namespace streamrun
