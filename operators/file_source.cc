// The `file` source. See file_source.h for how a file is split over subtasks.
#include "operators/file_source.h"

#include <fcntl.h>
#include <rapidjson/document.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cassert>
#include <cerrno>
#include <cstring>
#include <deque>
#include <functional>
#include <map>
#include <thread>
#include <vector>
#if defined(__AVX2__)
#include <immintrin.h>
#endif

#include "engine/cpus.h"
#include "engine/exchange.h"
#include "engine/mutex.h"
#include "operators/factories.h"

namespace streamrun {
namespace {

// The newlines of a chunk, in order, found 64 bytes per step (two vector compares and a mask)
// instead of by a memchr call per ~70-byte line, whose call and set-up cost more than its search.
// REQUIRES: 64 readable bytes after data + size (the chunk buffer's padding).
class NewlineScanner {
 public:
  NewlineScanner(const char* data, size_t size, size_t from)
      : data_(data), size_(size), block_(from & ~size_t{63}) {
    mask_ = block_ < size_ ? Mask(block_) & (~uint64_t{0} << (from & 63)) : 0;
  }
  // The next newline's position, or size when there is none before it.
  size_t Next() {
    while (mask_ == 0) {
      block_ += 64;
      if (block_ >= size_) return size_;
      mask_ = Mask(block_);
    }
    const size_t pos = block_ + static_cast<size_t>(__builtin_ctzll(mask_));
    mask_ &= mask_ - 1;
    return std::min(pos, size_);
  }

 private:
  uint64_t Mask(size_t at) const {
#if defined(__AVX2__)
    const __m256i nl = _mm256_set1_epi8('\n');
    const __m256i lo = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(data_ + at));
    const __m256i hi = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(data_ + at + 32));
    const uint32_t m0 = static_cast<uint32_t>(_mm256_movemask_epi8(_mm256_cmpeq_epi8(lo, nl)));
    const uint32_t m1 = static_cast<uint32_t>(_mm256_movemask_epi8(_mm256_cmpeq_epi8(hi, nl)));
    return (uint64_t{m1} << 32) | m0;
#else
    uint64_t m = 0;
    for (size_t i = 0; i < 64; ++i) m |= uint64_t{data_[at + i] == '\n'} << i;
    return m;
#endif
  }

  const char* data_;
  size_t size_;
  size_t block_;   // the 64-byte block mask_ is of
  uint64_t mask_;  // its newlines not returned yet
};

// Shared by the subtasks of one file source: the cumulative max event time in chunk order.
// Subtasks deposit each chunk's own max event time as soon as they have parsed it, in any order;
// a chunk can be sent once every chunk before it has been deposited. Thread safety: mu_ guards
// every member but parallelism_ (set in the constructor).
class FileShared {
 public:
  explicit FileShared(int parallelism)
      : parallelism_(static_cast<size_t>(std::max(1, parallelism))) {}

  // The file size every subtask uses: the first caller's.
  uint64_t AgreeOnSize(uint64_t size) {
    MutexLock lock(&mu_);
    if (!size_known_) {
      size_ = size;
      size_known_ = true;
    }
    return size_;
  }
  // Chunk k is parsed; its lines' max event time is `max_ts`.
  void Deposit(uint64_t k, int64_t max_ts) {
    MutexLock lock(&mu_);
    parsed_[k] = max_ts;
    bool moved = false;
    for (auto it = parsed_.begin(); it != parsed_.end() && it->first == next_;) {
      before_[next_] = max_ts_;
      max_ts_ = std::max(max_ts_, it->second);
      ++next_;
      it = parsed_.erase(it);
      moved = true;
    }
    if (!moved) return;
    cv_.SignalAll();
    for (ThreadSignal* s : signals_) s->Notify();
  }
  // Whether chunks 0..k-1 have all been deposited (WaitFor(k) would not wait).
  bool Ready(uint64_t k) {
    MutexLock lock(&mu_);
    return next_ >= k;
  }
  // Waits until chunks 0..k-1 have been deposited; `*prev` gets their max event time. `done`:
  // the caller will not ask about chunk k again. A subtask hosting a co-located consumer
  // (engine/exchange.h CooperativeHost) runs it meanwhile.
  Status WaitFor(uint64_t k, const std::atomic<bool>* cancelled, int64_t* prev, bool done) {
    CooperativeHost* host = tls_host;
    for (;;) {
      uint64_t seen = 0;
      {
        MutexLock lock(&mu_);
        for (;;) {
          if (closed_) return Status::Cancelled("another subtask of the source stopped");
          if (next_ >= k) {
            auto it = before_.find(k);
            *prev = it == before_.end() ? max_ts_ : it->second;
            if (done && it != before_.end()) before_.erase(it);
            return Status::Ok();
          }
          if (cancelled != nullptr && cancelled->load()) return Status::Cancelled();
          if (host != nullptr) break;
          cv_.WaitFor(&mu_, std::chrono::milliseconds(50));
        }
        ThreadSignal* signal = &host->signal();
        if (std::find(signals_.begin(), signals_.end(), signal) == signals_.end()) {
          signals_.push_back(signal);
        }
        seen = signal->generation();
      }
      // The guest runs without the lock.
      bool progressed = false;
      Status st = host->StepGuest(&progressed);
      if (!st.ok()) return st;
      if (!progressed) host->Wait(seen);  // Deposit and Close notify the signal
    }
  }
  // The next chunk nobody has claimed: subtasks take chunks as they go, so a subtask slowed down
  // (its core shared with the sink, a busier neighbour on the host) reads fewer of them instead
  // of holding the others back. A claimed chunk is parsed and deposited at once, or (with a
  // reader thread) right after the chunk its subtask is parsing.
  uint64_t Claim() {
    MutexLock lock(&mu_);
    return next_claim_++;
  }
  // Resuming at chunk `first` (a checkpoint's position): chunks before it count as published,
  // with the running maximum event time `max_ts`. Every subtask calls it before its first claim.
  void StartAt(uint64_t first, int64_t max_ts) {
    MutexLock lock(&mu_);
    if (started_) return;
    started_ = true;
    next_claim_ = first;
    next_ = first;
    next_start_ = first;
    max_ts_ = max_ts;
  }

  // Checkpoint barriers and drains of a split file must fall between the same two chunks in
  // every subtask: the consumer reads the chunks in order. Called by a subtask before it sends
  // chunk k. A new request (an id above every barrier fixed so far) is fixed at the first chunk
  // no subtask has started sending. Every subtask then sends every fixed barrier it has not
  // sent, in order, before its first chunk at or after the barrier's: a subtask that was slower
  // to reach its next chunk than two requests were to come sends both there, where the others
  // sent one each (skipping the older one would put different barriers at the same place,
  // which the consumer rejects). Appends to *send the (id, chunk) of the barriers to send before
  // chunk k, and sets *stop when the subtask must end its input before chunk k (drain).
  void BeforeChunk(int subtask, uint64_t k, uint64_t requested, uint64_t last_sent, bool drain,
                   bool* stop, std::vector<std::pair<uint64_t, uint64_t>>* send) {
    MutexLock lock(&mu_);
    if (static_cast<size_t>(subtask) >= at_.size()) at_.resize(subtask + 1, 0);
    at_[subtask] = k;
    const uint64_t newest = barriers_.empty() ? 0 : barriers_.back().first;
    if (requested > newest && requested > dropped_) {
      barriers_.emplace_back(requested, std::max(k, next_start_));
    }
    if (drain && !draining_) {
      draining_ = true;
      stop_chunk_ = std::max(k, next_start_);
    }
    *stop = draining_ && k >= stop_chunk_;
    if (!*stop) next_start_ = std::max(next_start_, k + 1);
    for (const auto& [id, chunk] : barriers_) {
      if (id > last_sent && k >= chunk) send->emplace_back(id, chunk);
    }
    // A barrier every subtask has passed (its chunks from now on are all later) is done.
    // Subtasks that have not come here yet are at 0.
    uint64_t slowest = at_.size() < parallelism_ ? 0 : *std::min_element(at_.begin(), at_.end());
    while (!barriers_.empty() && barriers_.front().second < slowest) {
      dropped_ = barriers_.front().first;
      barriers_.pop_front();
    }
  }
  // A subtask failed or was cancelled: nobody may wait for it.
  void Close() {
    MutexLock lock(&mu_);
    closed_ = true;
    cv_.SignalAll();
    for (ThreadSignal* s : signals_) s->Notify();
  }

 private:
  Mutex mu_;
  CondVar cv_;
  bool size_known_ GUARDED_BY(mu_) = false;
  uint64_t size_ GUARDED_BY(mu_) = 0;
  uint64_t next_claim_ GUARDED_BY(mu_) = 0;         // chunks before it are claimed
  uint64_t next_ GUARDED_BY(mu_) = 0;               // chunks 0..next_-1 are deposited
  int64_t max_ts_ GUARDED_BY(mu_) = kMinTimestamp;  // max event time of chunks 0..next_-1
  // Deposited chunks after next_: their max event time.
  std::map<uint64_t, int64_t> parsed_ GUARDED_BY(mu_);
  // Chunks up to next_ not sent yet: the max event time before them.
  std::map<uint64_t, int64_t> before_ GUARDED_BY(mu_);
  bool closed_ GUARDED_BY(mu_) = false;
  bool started_ GUARDED_BY(mu_) = false;
  std::vector<ThreadSignal*> signals_ GUARDED_BY(mu_);  // of co-located hosts that waited here
  // One more than the largest chunk a subtask started sending.
  uint64_t next_start_ GUARDED_BY(mu_) = 0;
  bool draining_ GUARDED_BY(mu_) = false;
  uint64_t stop_chunk_ GUARDED_BY(mu_) = 0;
  size_t parallelism_ = 1;  // set in the constructor only: not guarded
  // (id, chunk), fixed, oldest first.
  std::deque<std::pair<uint64_t, uint64_t>> barriers_ GUARDED_BY(mu_);
  uint64_t dropped_ GUARDED_BY(mu_) = 0;      // the newest barrier every subtask has passed
  std::vector<uint64_t> at_ GUARDED_BY(mu_);  // per subtask: the chunk it is before or in
};

// Where a file source resumes: every line that starts at or after `offset`, with `max_ts` the
// max event time of the lines before. A split source's barrier falls between chunks, so its
// offset is a chunk boundary; a line stream's (rate, follow) is a line start: both read the same.
struct ChunkPosition {
  bool end = false;  // every subtask had ended: nothing is left to read
  uint64_t offset = 0;
  int64_t max_ts = kMinTimestamp;
};

std::string PositionJson(uint64_t chunk, int64_t max_ts, uint64_t chunk_bytes, uint64_t size) {
  std::string out = "{\"offset\":" + std::to_string(chunk * chunk_bytes) + ",\"max_ts\":";
  out += max_ts == kMinTimestamp ? "null" : std::to_string(max_ts);
  out += ",\"size\":" + std::to_string(size) + "}";
  return out;
}

// `positions`: the JSON array of every subtask's position at the checkpoint.
Result<ChunkPosition> ParsePosition(const std::string& positions, uint64_t size) {
  SR_ASSIGN_OR_RETURN(StreamPosition at, ParseStreamPosition(positions));
  ChunkPosition out;
  out.end = at.end;
  out.offset = at.offset;
  out.max_ts = at.max_ts;
  if (!at.end && at.offset > size) {
    return Status::RuntimeError("file source: the file is shorter (" + std::to_string(size) +
                                " bytes) than where the checkpoint left it (" +
                                std::to_string(at.offset) + ")");
  }
  return out;
}

// Bad lines of a chunk parsed ahead, reported when the chunk is sent: between the same
// checkpoint barriers as its records, and not at all when a drain ends the input before it.
class DeferredErrors : public ErrorReporter {
 public:
  Status Report(const Batch&, size_t, std::string_view, std::string_view) override {
    return Status::RuntimeError("file source: a step's error reached a chunk's parser");
  }
  Status ReportInput(uint16_t origin, uint64_t offset, std::string_view text,
                     std::string_view reason) override {
    items_.push_back({origin, offset, std::string(text), std::string(reason)});
    return Status::Ok();
  }
  Status Flush() override { return Status::Ok(); }
  // `to` null: no reporter, so the first bad line fails the source (as RecordMaker does).
  Status ReplayTo(ErrorReporter* to) {
    for (const Item& e : items_) {
      if (to == nullptr) return Status::DataError(e.reason);
      SR_RETURN_IF_ERROR(to->ReportInput(e.origin, e.offset, e.text, e.reason));
    }
    items_.clear();
    return Status::Ok();
  }

 private:
  struct Item {
    uint16_t origin;
    uint64_t offset;
    std::string text;
    std::string reason;
  };
  std::vector<Item> items_;
};

// A chunk read and parsed, waiting to be sent: its rows' watermarks still lack the max event
// time of the chunks before it. Until then row.wm and batch.watermark hold the chunk's own
// running max event time (before the row, after the batch).
struct ParsedChunk {
  uint64_t k = 0;
  std::vector<BatchPtr> batches;  // at least one, possibly empty
  int64_t max_ts = kMinTimestamp;
  uint64_t bytes = 0;  // the chunk's size, for progress
  DeferredErrors errors;
};

class Fd {
 public:
  explicit Fd(int fd) : fd_(fd) {}
  ~Fd() {
    if (fd_ >= 0) ::close(fd_);
  }
  int get() const { return fd_; }

 private:
  int fd_;
};

// A chunk's bytes in a buffer: [0, len) was read from file offset pos; its lines begin at start.
struct ChunkText {
  uint64_t pos = 0;
  size_t len = 0;
  size_t start = 0;
  bool any = false;  // whether a line starts in the chunk
};

// Reads a subtask's next chunk on a thread of its own while the subtask parses the one before, so
// that the copy out of the page cache (or the wait for the disk) overlaps the parse instead of
// adding to it. One chunk ahead is enough: reading a chunk takes a fraction of parsing it.
class ChunkReader {
 public:
  using ReadFn = std::function<Result<ChunkText>(uint64_t k, std::string& buf)>;

  explicit ChunkReader(ReadFn read) : read_(std::move(read)), thread_([this] { Loop(); }) {}
  // Waits for a read in progress to end.
  ~ChunkReader() {
    {
      MutexLock lock(&mu_);
      state_ = State::kStop;
    }
    cv_.SignalAll();
    thread_.join();
  }
  ChunkReader(const ChunkReader&) = delete;
  ChunkReader& operator=(const ChunkReader&) = delete;

  // Starts reading chunk k into `buf`. REQUIRES: no read started and not taken.
  void Start(uint64_t k, std::shared_ptr<std::string> buf) {
    {
      MutexLock lock(&mu_);
      assert(state_ == State::kIdle);
      k_ = k;
      buf_ = std::move(buf);
      state_ = State::kReading;
    }
    cv_.SignalAll();
  }
  // Waits for the read Start began; its buffer goes to *buf.
  Result<ChunkText> Take(std::shared_ptr<std::string>* buf) {
    MutexLock lock(&mu_);
    assert(state_ == State::kReading || state_ == State::kDone);
    while (state_ != State::kDone) cv_.Wait(&mu_);
    state_ = State::kIdle;
    *buf = std::move(buf_);
    return std::move(result_);
  }

 private:
  enum class State { kIdle, kReading, kDone, kStop };

  void Loop() {
    MutexLock lock(&mu_);
    for (;;) {
      while (state_ != State::kReading && state_ != State::kStop) cv_.Wait(&mu_);
      if (state_ == State::kStop) return;
      const uint64_t k = k_;
      std::string& buf = *buf_;  // the main thread leaves it alone until Take
      lock.Unlock();
      Result<ChunkText> r = read_(k, buf);
      lock.Lock();
      result_ = std::move(r);
      if (state_ == State::kStop) return;
      state_ = State::kDone;
      cv_.SignalAll();
    }
  }

  const ReadFn read_;
  Mutex mu_;
  CondVar cv_;
  State state_ GUARDED_BY(mu_) = State::kIdle;
  uint64_t k_ GUARDED_BY(mu_) = 0;
  // The pointer is guarded; the string it points to is the reader thread's from Start to Take.
  std::shared_ptr<std::string> buf_ GUARDED_BY(mu_);
  Result<ChunkText> result_ GUARDED_BY(mu_) = Status::RuntimeError("no chunk read");
  std::thread thread_;  // last: starts after the members it uses
};

class FileSource : public SourceOperator {
 public:
  explicit FileSource(const FileSourceOptions& o) : o_(o) {}

  Status Run(SourceContext& ctx) override {
    int fd = ::open(o_.path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) return Status::IoError("cannot open '" + o_.path + "': " + std::strerror(errno));
    Fd file(fd);
    RecordMaker maker(o_.common, ctx, o_.format);
    SR_RETURN_IF_ERROR(maker.Init());
    if (o_.follow || o_.rate > 0 || o_.format == LineFormat::kRecording) {
      LineStreamOptions so;
      so.fd = fd;
      so.follow = o_.follow;
      so.rate = o_.rate;
      if (!o_.follow && ctx.progress != nullptr) {
        struct stat st;
        if (::fstat(fd, &st) == 0) ctx.progress->total_bytes.store(st.st_size);
      }
      return StreamLines(ctx, maker, o_.common, so);
    }
    std::shared_ptr<FileShared> shared = std::static_pointer_cast<FileShared>(ctx.shared);
    if (!shared) shared = std::make_shared<FileShared>(1);
    Status st = RunChunks(ctx, maker, fd, *shared);
    if (!st.ok()) shared->Close();
    return st;
  }

 private:
  // Reads [pos, pos+n) into buf at `at`; returns the bytes read (fewer at the end of the file).
  Result<size_t> ReadAt(int fd, uint64_t pos, size_t n, std::string& buf, size_t at) {
    const size_t pad = JsonExtractor::padding();
    if (buf.size() < at + n + pad) buf.resize(at + n + pad);
    size_t got = 0;
    while (got < n) {
      ssize_t r = ::pread(fd, buf.data() + at + got, n - got, static_cast<off_t>(pos + got));
      if (r < 0) {
        if (errno == EINTR) continue;
        return Status::IoError("cannot read '" + o_.path + "': " + std::strerror(errno));
      }
      if (r == 0) break;
      got += static_cast<size_t>(r);
    }
    return got;
  }

  // Reads chunk k into buf: from the byte before it (to see whether a line starts at its first
  // byte) to the newline ending its last line.
  Result<ChunkText> ReadChunk(int fd, uint64_t size, uint64_t k, uint64_t base,
                              uint64_t resume_offset, std::string& buf) {
    const uint64_t c = o_.chunk_bytes;
    const uint64_t begin = k * c, end = std::min(begin + c, size);
    const uint64_t pos = k == 0 ? 0 : begin - 1;
    SR_ASSIGN_OR_RETURN(size_t len, ReadAt(fd, pos, end - pos, buf, 0));
    size_t start = 0;
    bool any = true;
    if (k > 0) {  // the first line starts after the first newline at or after begin-1
      const char* nl = static_cast<const char*>(std::memchr(buf.data(), '\n', len));
      if (nl == nullptr)
        any = false;
      else
        start = nl - buf.data() + 1;
    }
    if (any && k == base && resume_offset > pos + start) {
      // Resuming inside this chunk: the first line is the one starting at resume_offset
      // (the first after the newline before it).
      const size_t from = resume_offset - 1 - pos;
      const char* nl = static_cast<const char*>(std::memchr(buf.data() + from, '\n', len - from));
      if (nl == nullptr)
        any = false;
      else
        start = nl - buf.data() + 1;
    }
    if (any) {
      // The last line may run past the chunk: read on to its newline.
      while (len > start && buf[len - 1] != '\n' && pos + len < size) {
        size_t old = len;
        const size_t more = std::min<uint64_t>(64 * 1024, size - pos - len);
        SR_ASSIGN_OR_RETURN(size_t got, ReadAt(fd, pos + len, more, buf, len));
        if (got == 0) break;
        len += got;
        const char* nl = static_cast<const char*>(std::memchr(buf.data() + old, '\n', len - old));
        if (nl != nullptr) len = nl - buf.data() + 1;
      }
    }
    return ChunkText{pos, len, start, any};
  }

  // Parses chunk pc->k, read into `buffer` as `text`; its rows then point into the buffer.
  Status ParseChunk(const ChunkText& text, uint64_t size, uint32_t width, RecordMaker& maker,
                    std::shared_ptr<std::string> buffer, ParsedChunk* pc) {
    const uint64_t c = o_.chunk_bytes;
    const uint64_t k = pc->k;
    std::string& buf = *buffer;
    maker.SetLineOwner(std::move(buffer));
    maker.SetErrorReporter(&pc->errors);
    // A generator with delay -1: row.wm and batch.watermark get the chunk's own max event time.
    WatermarkGenerator local(-1);
    std::vector<BatchPtr>& batches = pc->batches;
    batches.push_back(NewBatch(width));
    pc->bytes = std::min(c, size - k * c);
    const uint64_t pos = text.pos;
    const size_t len = text.len;
    size_t start = text.start;
    if (text.any) {
      maker.BeginLines(buf.data() + start, len - start);
      NewlineScanner newlines(buf.data(), len, start);
      while (start < len) {
        const size_t stop = newlines.Next();
        size_t line_end = stop;
        if (line_end > start && buf[line_end - 1] == '\r') --line_end;
        if (line_end > start) {
          BatchPtr& b = batches.back();
          const char* next = buf.data() + std::min(stop + 1, len);
          const std::string_view line(buf.data() + start, line_end - start);
          SR_RETURN_IF_ERROR(maker.AddLine(*b, line, pos + start, local, next));
          if (b->full()) {
            b->watermark = local.current();
            batches.push_back(NewBatch(width));
          }
        }
        start = stop + 1;
      }
    }
    maker.SetLineOwner(nullptr);
    maker.SetErrorReporter(nullptr);
    if (batches.size() > 1 && batches.back()->rows.empty()) batches.pop_back();
    batches.back()->watermark = local.current();
    pc->max_ts = local.max_timestamp();
    return Status::Ok();
  }

  Status RunChunks(SourceContext& ctx, RecordMaker& maker, int fd, FileShared& shared) {
    struct stat stat_buf;
    if (::fstat(fd, &stat_buf) != 0) {
      return Status::IoError("cannot stat '" + o_.path + "': " + std::strerror(errno));
    }
    const uint64_t size = shared.AgreeOnSize(static_cast<uint64_t>(stat_buf.st_size));
    if (ctx.progress != nullptr) ctx.progress->total_bytes.store(size);
    const uint64_t c = o_.chunk_bytes;
    const uint64_t chunks = (size + c - 1) / c;
    const uint32_t width = static_cast<uint32_t>(ctx.layout.size());
    WatermarkGenerator real(o_.common.max_out_of_orderness_ms);
    // Resuming: the chunk to start at, and the max event time before it (file_source.h).
    uint64_t base = 0;
    uint64_t resume_offset = 0;  // lines starting before it were read before the checkpoint
    if (!ctx.restore_positions.empty()) {
      SR_ASSIGN_OR_RETURN(ChunkPosition at, ParsePosition(ctx.restore_positions, size));
      if (at.end) return Status::Ok();
      base = at.offset / c;
      resume_offset = at.offset;
      shared.StartAt(base, at.max_ts);
    }
    // Rows point into the chunk buffer (RecordMaker::SetLineOwner), so a buffer is reused only
    // when no batch holds it any more. While batches wait in queues (parallelism > 1) several
    // chunks are in flight: buffers come from a small pool, so that a new chunk seldom needs
    // a new buffer (allocating, zeroing and faulting in 256 KiB each time).
    constexpr size_t kPooledBuffers = 16;
    std::vector<std::shared_ptr<std::string>> pool;
    auto free_buffer = [&pool]() {
      for (auto& b : pool) {
        if (b.use_count() == 1) {
          // Every batch that read it has let it go (their release happens before this).
          std::atomic_thread_fence(std::memory_order_acquire);
          return b;
        }
      }
      if (pool.size() < kPooledBuffers) {
        pool.push_back(std::make_shared<std::string>());
        return pool.back();
      }
      return std::make_shared<std::string>();  // all in flight: one for this chunk only
    };
    // A subtask parses ahead: when the chunk before its next one is still being parsed by
    // another subtask, it parses its following chunk instead of waiting (up to kAhead chunks),
    // and sends its chunks in order as soon as their watermarks are known.
    constexpr size_t kAhead = 4;
    std::deque<ParsedChunk> ready;
    uint64_t last_barrier = 0;
    std::vector<std::pair<uint64_t, uint64_t>> barriers;  // to send before the next chunk
    // Sends chunk `pc` (its barriers first); *stop when a drain ends the input before it.
    auto send = [&](ParsedChunk& pc, bool* stop) -> Status {
      const uint64_t k = pc.k;
      *stop = false;
      if (ctx.barriers != nullptr || ctx.drain != nullptr) {
        barriers.clear();
        shared.BeforeChunk(ctx.subtask, k, ctx.barriers ? ctx.barriers->requested() : 0,
                           last_barrier, ctx.drain && ctx.drain->load(std::memory_order_relaxed),
                           stop, &barriers);
        for (const auto& [id, barrier_chunk] : barriers) {
          last_barrier = id;
          std::string position = "null";
          if (k == barrier_chunk) {
            // The owner of the barrier's chunk says where the source resumes: that chunk, with
            // the max event time of the chunks before it.
            int64_t before = kMinTimestamp;
            SR_RETURN_IF_ERROR(shared.WaitFor(k, ctx.cancelled, &before, /*done=*/false));
            position = PositionJson(k, before, c, size);
          }
          SR_RETURN_IF_ERROR(ctx.barriers->Barrier(id, std::move(position)));
        }
        if (*stop) return Status::Ok();
      }
      int64_t prev = kMinTimestamp;
      SR_RETURN_IF_ERROR(shared.WaitFor(k, ctx.cancelled, &prev, /*done=*/true));
      SR_RETURN_IF_ERROR(pc.errors.ReplayTo(ctx.errors));
      for (size_t i = 0; i < pc.batches.size(); ++i) {
        Batch& b = *pc.batches[i];
        for (Row& row : b.rows) row.wm = real.WatermarkFor(std::max(prev, row.wm));
        b.watermark = real.WatermarkFor(std::max(prev, b.watermark));
        b.seq = k - base;
        b.seq_last = i + 1 == pc.batches.size();
      }
      for (size_t i = 0; i < pc.batches.size(); ++i) {
        uint64_t bytes = i + 1 == pc.batches.size() ? pc.bytes : 0;
        SR_RETURN_IF_ERROR(EmitBatch(ctx, std::move(pc.batches[i]), bytes));
      }
      return Status::Ok();
    };
    // With a core to spare (the source's subtasks fewer than the CPUs), each subtask has a reader
    // thread and claims its next chunk as it starts parsing one, for the reader to read meanwhile.
    // Without one the readers would only take turns with the parsers (the window benchmark at
    // parallelism 2 of 2 CPUs: 0.91 x).
    std::unique_ptr<ChunkReader> reader;
    uint64_t next = 0;  // with a reader: the chunk it reads
    auto claim_and_read = [&]() {
      next = shared.Claim();
      if (next < chunks) reader->Start(next, free_buffer());
    };
    using ReadAhead = FileSourceOptions::ReadAhead;
    if (o_.read_ahead == ReadAhead::kAlways ||
        (o_.read_ahead == ReadAhead::kWhenCoreSpare && ctx.parallelism < UsableCpus())) {
      reader = std::make_unique<ChunkReader>(
          [this, fd, size, base, resume_offset](uint64_t k, std::string& buf) {
            return ReadChunk(fd, size, k, base, resume_offset, buf);
          });
      claim_and_read();
    }
    // Chunk k is read by the subtask that claimed it and carries seq k - base. Each subtask's
    // claims, and so the chunks it sends, go up.
    bool claimed_all = false;
    for (;;) {
      if (IsCancelled(ctx)) return Status::Cancelled();
      // Send what can go: the oldest parsed chunk once the chunks before it are all parsed, or
      // at once (waiting for them) when there is nothing more to parse or no room to.
      while (!ready.empty() &&
             (claimed_all || ready.size() >= kAhead || shared.Ready(ready.front().k))) {
        bool stop = false;
        SR_RETURN_IF_ERROR(send(ready.front(), &stop));
        if (stop) return Status::Ok();
        ready.pop_front();
      }
      if (claimed_all) break;
      // Claimed right before it is parsed and deposited, with no wait between, or with a reader
      // while the chunk before it was parsed and deposited right after that one. Then a subtask
      // may wait (to send a chunk) while holding the claim of its next chunk, but only for
      // chunks before the one it sends, and the chunk another subtask holds unparsed comes after
      // every chunk that subtask parsed. So waiting for the chunks before one's own always ends.
      const uint64_t k = reader ? next : shared.Claim();
      if (k >= chunks) {
        claimed_all = true;
        continue;
      }
      ready.emplace_back();
      ParsedChunk& pc = ready.back();
      pc.k = k;
      std::shared_ptr<std::string> buffer;
      ChunkText text;
      if (reader) {
        SR_ASSIGN_OR_RETURN(text, reader->Take(&buffer));
        claim_and_read();
      } else {
        buffer = free_buffer();
        SR_ASSIGN_OR_RETURN(text, ReadChunk(fd, size, k, base, resume_offset, *buffer));
      }
      SR_RETURN_IF_ERROR(ParseChunk(text, size, width, maker, std::move(buffer), &pc));
      shared.Deposit(pc.k, pc.max_ts);
    }
    return Status::Ok();
  }

  FileSourceOptions o_;
};

class FileSourceConfig : public SourceConfig {
 public:
  explicit FileSourceConfig(FileSourceOptions o)
      : SourceConfig(o.common, o.format), o_(std::move(o)) {}
  // Split over subtasks only for plain json and text files (see file_source.h); a recording is
  // read by one subtask, line by line.
  int max_subtasks() const override {
    return o_.follow || o_.rate > 0 || o_.format == LineFormat::kRecording ? 1 : (1 << 20);
  }
  bool bounded() const override { return !o_.follow; }
  Result<std::unique_ptr<SourceOperator>> CreateSource() const override {
    return std::unique_ptr<SourceOperator>(std::make_unique<FileSource>(o_));
  }
  bool split_in_sequence() const override { return true; }
  std::shared_ptr<void> CreateShared(int parallelism) const override {
    return std::make_shared<FileShared>(parallelism);
  }
  std::string Describe() const override { return o_.path; }

 private:
  FileSourceOptions o_;
};

}  // namespace

std::shared_ptr<const NodeConfig> NewFileSourceConfig(FileSourceOptions options) {
  return std::make_shared<FileSourceConfig>(std::move(options));
}

NodeConfigResult MakeFileSource(const ConfigReader& config) {
  SR_RETURN_IF_ERROR(config.CheckKeys(
      {"type", "path", "format", "event_time", "watermark", "on_error", "rate", "follow"}));
  FileSourceOptions o;
  SR_ASSIGN_OR_RETURN(o.path, config.Path("path"));
  SR_ASSIGN_OR_RETURN(std::string format,
                      config.Enum("format", {"json", "text", "recording"}, std::string("json")));
  o.format = LineFormatNamed(format);
  SR_ASSIGN_OR_RETURN(o.rate, config.Number("rate", 0.0));
  if (o.rate < 0) return config.ErrorAt("rate", "must not be negative");
  SR_ASSIGN_OR_RETURN(o.follow, config.Bool("follow", false));
  SR_ASSIGN_OR_RETURN(o.common, ReadSourceCommon(config));
  return std::shared_ptr<const NodeConfig>(NewFileSourceConfig(std::move(o)));
}

}  // namespace streamrun
