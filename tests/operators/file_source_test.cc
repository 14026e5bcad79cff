#include "operators/file_source.h"

#include <doctest/doctest.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <map>
#include <random>
#include <thread>

#include "engine/watermark.h"
#include "tests/operators/source_test_util.h"

namespace streamrun {
namespace {

std::string TempFile(const std::string& content) {
  static int n = 0;
  auto path = std::filesystem::temp_directory_path() /
              ("streamrun_fs_" + std::to_string(::getpid()) + "_" + std::to_string(n++));
  std::ofstream(path, std::ios::binary) << content;
  return path.string();
}

struct RunResult {
  std::vector<Status> statuses;
  CaptureEmitter out;
  CaptureReporter errors;
  SourceProgress progress;
};

// Runs `p` subtasks of the source, each on its own thread, as the runtime would.
void RunSource(const NodeConfig& config, const Layout& layout, int p, RunResult& res,
               std::atomic<bool>* cancelled = nullptr) {
  std::atomic<bool> never{false};
  auto shared = config.CreateShared(p);
  std::vector<std::thread> threads;
  std::vector<SourceContext> ctxs(p);
  res.statuses.resize(p);
  for (int i = 0; i < p; ++i) {
    SourceContext& ctx = ctxs[i];
    ctx.name = "src";
    ctx.subtask = i;
    ctx.parallelism = p;
    ctx.layout = layout;
    ctx.out = &res.out;
    ctx.errors = &res.errors;
    ctx.cancelled = cancelled ? cancelled : &never;
    ctx.progress = &res.progress;
    ctx.shared = shared;
  }
  for (int i = 0; i < p; ++i) {
    threads.emplace_back([&, i] {
      auto src = config.CreateSource();
      REQUIRE(src.ok());
      res.statuses[i] = src.value()->Run(ctxs[i]);
    });
  }
  for (auto& t : threads) t.join();
}

// Batches in the order the runtime merges them: by chunk, each subtask's in emission order.
std::vector<CapturedRow> Merged(CaptureEmitter& out) {
  std::stable_sort(out.batches.begin(), out.batches.end(),
                   [](const CapturedBatch& a, const CapturedBatch& b) { return a.seq < b.seq; });
  std::vector<CapturedRow> rows;
  for (const auto& b : out.batches) rows.insert(rows.end(), b.rows.begin(), b.rows.end());
  return rows;
}

using ReadAhead = FileSourceOptions::ReadAhead;

FileSourceOptions Options(const std::string& path, uint64_t chunk, int64_t delay = 0,
                          ReadAhead read_ahead = ReadAhead::kWhenCoreSpare) {
  FileSourceOptions o;
  o.read_ahead = read_ahead;
  o.path = path;
  o.chunk_bytes = chunk;
  o.common.event_time = "ts";
  o.common.event_time_fields = {{"ts"}};
  o.common.max_out_of_orderness_ms = delay;
  return o;
}

TEST_CASE("file source: watermark tags equal a single-threaded read for P = 1, 2, 3") {
  std::mt19937_64 rng(42);
  std::string content;
  std::vector<int64_t> ts;
  std::vector<uint64_t> offsets;
  int64_t t = 1700000000000;
  for (int i = 0; i < 3000; ++i) {
    t += rng() % 50;
    int64_t ev = t - static_cast<int64_t>(rng() % 3000);  // out of order
    std::string pad(rng() % 20 == 0 ? 700 + rng() % 900 : rng() % 30,
                    'x');  // some lines cross chunks
    offsets.push_back(content.size());
    content += "{\"u\":\"k" + std::to_string(i) + "\",\"pad\":\"" + pad +
               "\",\"ts\":" + std::to_string(ev) + "}\n";
    ts.push_back(ev);
    if (i % 500 == 7) content += "\n";  // empty lines are skipped
  }
  std::string path = TempFile(content);
  const int64_t delay = 1000;
  std::vector<int64_t> expect_wm;
  WatermarkGenerator gen(delay);
  for (int64_t e : ts) {
    expect_wm.push_back(gen.current());
    gen.Observe(e);
  }
  for (int run = 0; run < 6; ++run) {  // P = 1, 2, 3, with and without reader threads
    const int p = run % 3 + 1;
    const ReadAhead read_ahead = run < 3 ? ReadAhead::kAlways : ReadAhead::kNever;
    CAPTURE(p);
    CAPTURE(static_cast<int>(read_ahead));
    auto config = NewFileSourceConfig(Options(path, 512, delay, read_ahead));
    CHECK(config->max_subtasks() > 1);
    CHECK(config->InputFields({{"u"}}) == std::vector<FieldPath>{{"u"}, {"ts"}});
    RunResult res;
    RunSource(*config, {{"u"}, {"ts"}}, p, res);
    for (auto& s : res.statuses) CHECK(s.ok());
    // seq rules: every chunk has exactly one seq_last batch, and it is its last.
    std::map<uint64_t, int> lasts;
    for (const auto& b : res.out.batches) lasts[b.seq] += b.seq_last ? 1 : 0;
    uint64_t chunks = (content.size() + 511) / 512;
    CHECK(lasts.size() == chunks);
    for (auto& [k, n] : lasts) CHECK(n == 1);
    auto rows = Merged(res.out);
    REQUIRE(rows.size() == ts.size());
    for (size_t i = 0; i < rows.size(); ++i) {
      CAPTURE(i);
      CHECK(rows[i].ts == ts[i]);
      CHECK(rows[i].wm == expect_wm[i]);
      CHECK(rows[i].offset == offsets[i]);
      CHECK(rows[i].slots[1].as_int() == ts[i]);
    }
    // Every batch's watermark is the watermark after its last row, in the merged order.
    for (const auto& b : res.out.batches) {
      if (b.rows.empty()) continue;
      CHECK(b.watermark >= b.rows.back().wm);
    }
    CHECK(res.progress.records.load() == ts.size());
    CHECK(res.progress.bytes.load() == content.size());
    CHECK(res.progress.total_bytes.load() == content.size());
  }
  std::filesystem::remove(path);
}

void CheckClaims(ReadAhead read_ahead) {
  // 400 chunks of ~10 lines; subtask 1 takes 2 ms per batch it sends, subtask 0 no time.
  std::string content;
  std::vector<int64_t> ts;
  for (int i = 0; i < 4000; ++i) {
    ts.push_back(1000 + (i * 7919) % 500 + i);  // out of order within ~500 ms
    content += "{\"ts\":" + std::to_string(ts.back()) + "}\n";
  }
  std::string path = TempFile(content);
  const uint64_t chunk = content.size() / 400;
  const uint64_t chunks = (content.size() + chunk - 1) / chunk;
  auto config = NewFileSourceConfig(Options(path, chunk, 100, read_ahead));
  struct Slow : CaptureEmitter {
    explicit Slow(int ms) : ms(ms) {}
    Status Emit(BatchPtr b) override {
      std::this_thread::sleep_for(std::chrono::milliseconds(ms));
      return CaptureEmitter::Emit(std::move(b));
    }
    int ms;
  };
  Slow fast(0), slow(2);
  auto shared = config->CreateShared(2);
  std::atomic<bool> never{false};
  std::vector<SourceContext> ctxs(2);
  std::vector<Status> statuses(2);
  CaptureReporter errors;
  for (int i = 0; i < 2; ++i) {
    ctxs[i].name = "src";
    ctxs[i].subtask = i;
    ctxs[i].parallelism = 2;
    ctxs[i].layout = {{"ts"}};
    ctxs[i].out = i == 0 ? &fast : &slow;
    ctxs[i].errors = &errors;
    ctxs[i].cancelled = &never;
    ctxs[i].shared = shared;
  }
  std::vector<std::thread> threads;
  for (int i = 0; i < 2; ++i) {
    threads.emplace_back([&, i] {
      auto src = config->CreateSource();
      REQUIRE(src.ok());
      statuses[i] = src.value()->Run(ctxs[i]);
    });
  }
  for (auto& t : threads) t.join();
  for (auto& st : statuses) CHECK(st.ok());
  // Each chunk came from exactly one subtask, each subtask's in increasing order.
  std::map<uint64_t, int> owner;
  for (int i = 0; i < 2; ++i) {
    CaptureEmitter& out = i == 0 ? static_cast<CaptureEmitter&>(fast) : slow;
    uint64_t last = 0;
    bool first = true;
    for (const auto& b : out.batches) {
      CHECK((first || b.seq >= last));
      first = false;
      last = b.seq;
      auto [it, added] = owner.try_emplace(b.seq, i);
      CHECK(it->second == i);
    }
  }
  CHECK(owner.size() == chunks);
  size_t slow_chunks = 0;
  for (auto& [k, i] : owner) slow_chunks += i;
  CHECK(slow_chunks < chunks / 4);  // with fixed shares it would read half
  // Merged in chunk order, the rows are the file's, with a single-threaded read's watermarks.
  CaptureEmitter all;
  for (CaptureEmitter* out :
       {static_cast<CaptureEmitter*>(&fast), static_cast<CaptureEmitter*>(&slow)}) {
    for (auto& b : out->batches) all.batches.push_back(std::move(b));
  }
  auto rows = Merged(all);
  REQUIRE(rows.size() == ts.size());
  WatermarkGenerator gen(100);
  for (size_t i = 0; i < rows.size(); ++i) {
    CAPTURE(i);
    CHECK(rows[i].ts == ts[i]);
    CHECK(rows[i].wm == gen.current());
    gen.Observe(ts[i]);
  }
  std::filesystem::remove(path);
}

TEST_CASE("file source: subtasks claim chunks as they go; a slow one reads fewer") {
  CheckClaims(ReadAhead::kNever);
  CheckClaims(ReadAhead::kAlways);  // each subtask holds the claim of the chunk it reads ahead
}

TEST_CASE("file source: bad lines go to the reporter with their offsets") {
  std::string content = "{\"ts\":1}\n{\"ts\":\nnot json\r\n{\"ts\":\"x\"}\n{\"ts\":5}";
  std::string path = TempFile(content);
  auto config = NewFileSourceConfig(Options(path, 1 << 20));
  RunResult res;
  RunSource(*config, {{"ts"}}, 1, res);
  CHECK(res.statuses[0].ok());
  auto rows = Merged(res.out);
  REQUIRE(rows.size() == 2);
  CHECK(rows[0].ts == 1);
  CHECK(rows[1].ts == 5);  // the last line without newline counts
  CHECK(rows[1].wm == 0);
  REQUIRE(res.errors.inputs.size() == 3);
  CHECK(res.errors.inputs[0].offset == 9);
  CHECK(res.errors.inputs[0].text == "{\"ts\":");
  CHECK(res.errors.inputs[0].reason.rfind("invalid JSON", 0) == 0);
  CHECK(res.errors.inputs[1].offset == 16);
  CHECK(res.errors.inputs[1].text == "not json");  // \r stripped
  CHECK(res.errors.inputs[2].reason.find("event_time") != std::string::npos);
  std::filesystem::remove(path);
}

TEST_CASE("file source: bad lines of every chunk are reported once each, for P = 1, 2, 3") {
  // Small chunks, a bad line in most of them: subtasks parse chunks ahead of sending them and
  // report their bad lines when they send them.
  std::string content;
  std::vector<uint64_t> bad;
  size_t good = 0;
  for (int i = 0; i < 2000; ++i) {
    if (i % 7 == 3) {
      bad.push_back(content.size());
      content += "{\"ts\":" + std::to_string(i) + ",\"cut\n";
    } else {
      content += "{\"ts\":" + std::to_string(i) + "}\n";
      ++good;
    }
  }
  std::string path = TempFile(content);
  for (int run = 0; run < 6; ++run) {  // P = 1, 2, 3, with and without reader threads
    const int p = run % 3 + 1;
    const ReadAhead read_ahead = run < 3 ? ReadAhead::kAlways : ReadAhead::kNever;
    CAPTURE(p);
    CAPTURE(static_cast<int>(read_ahead));
    auto config = NewFileSourceConfig(Options(path, 128, 0, read_ahead));
    RunResult res;
    RunSource(*config, {{"ts"}}, p, res);
    for (auto& st : res.statuses) CHECK(st.ok());
    CHECK(Merged(res.out).size() == good);
    std::vector<uint64_t> reported;
    for (const auto& e : res.errors.inputs) reported.push_back(e.offset);
    std::sort(reported.begin(), reported.end());
    CHECK(reported == bad);
  }
  std::filesystem::remove(path);
}

TEST_CASE("file source: on_error fail stops every subtask") {
  std::string content;
  for (int i = 0; i < 200; ++i)
    content += i == 150 ? "oops\n" : "{\"ts\":" + std::to_string(i) + "}\n";
  std::string path = TempFile(content);
  for (ReadAhead read_ahead : {ReadAhead::kAlways, ReadAhead::kNever}) {
    CAPTURE(static_cast<int>(read_ahead));
    auto config = NewFileSourceConfig(Options(path, 64, 0, read_ahead));
    RunResult res;
    res.errors.~CaptureReporter();
    new (&res.errors) CaptureReporter(true);
    RunSource(*config, {{"ts"}}, 3, res);  // must not hang
    int data_errors = 0;
    for (auto& s : res.statuses) data_errors += s.code() == Status::Code::kDataError;
    CHECK(data_errors == 1);
  }
  std::filesystem::remove(path);
}

TEST_CASE("file source: text format, CRLF, empty chunks") {
  std::string content = "alpha\r\n\r\n" + std::string(300, 'b') + "\ngamma";
  std::string path = TempFile(content);
  FileSourceOptions o;
  o.path = path;
  o.format = LineFormat::kText;
  o.chunk_bytes = 64;
  auto config = NewFileSourceConfig(o);
  for (int p = 1; p <= 2; ++p) {
    RunResult res;
    RunSource(*config, {{"line"}, {"$offset"}}, p, res);
    auto rows = Merged(res.out);
    REQUIRE(rows.size() == 3);
    CHECK(rows[0].raw == "alpha");
    CHECK(rows[0].flags == kRowText);
    CHECK(rows[0].slots[1].as_int() == 0);
    CHECK(rows[1].raw.size() == 300);
    CHECK(rows[1].offset == 9);
    CHECK(rows[2].raw == "gamma");
    std::map<uint64_t, int> lasts;
    for (const auto& b : res.out.batches) lasts[b.seq] += b.seq_last;
    CHECK(lasts.size() == (content.size() + 63) / 64);  // chunks without rows send an empty batch
  }
  std::filesystem::remove(path);
}

TEST_CASE("file source: follow picks up appended lines and stops on cancel") {
  std::string path = TempFile("{\"ts\":1}\n{\"ts\":2");
  FileSourceOptions o = Options(path, 1 << 20);
  o.follow = true;
  auto config = NewFileSourceConfig(o);
  CHECK(config->max_subtasks() == 1);
  RunResult res;
  std::atomic<bool> cancelled{false};
  std::thread t([&] { RunSource(*config, {{"ts"}}, 1, res, &cancelled); });
  auto count = [&] {
    std::lock_guard<std::mutex> lock(res.out.mu);
    size_t n = 0;
    for (auto& b : res.out.batches) n += b.rows.size();
    return n;
  };
  for (int i = 0; i < 100 && count() < 1; ++i)
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  std::this_thread::sleep_for(std::chrono::milliseconds(120));
  CHECK(count() == 1);  // the partial line waits for its newline
  { std::ofstream(path, std::ios::app) << "0}\n{\"ts\":30}\n"; }
  for (int i = 0; i < 100 && count() < 3; ++i)
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  CHECK(count() == 3);
  cancelled = true;
  t.join();
  CHECK(res.statuses[0].code() == Status::Code::kCancelled);
  auto rows = Merged(res.out);
  REQUIRE(rows.size() == 3);
  CHECK(rows[1].ts == 20);
  CHECK(rows[2].wm == 19);
  std::filesystem::remove(path);
}

TEST_CASE("file source: a recording's values are the records, with their Kafka metadata") {
  std::string content =
      R"({"topic":"clicks","partition":1,"offset":40,"timestamp":1000,"key":"u1",)"
      R"("headers":{"h":"v1","h2":null},"value":{ "userId" : "u1" }})"
      "\n"
      R"({"topic":"clicks","partition":0,"offset":7,"timestamp":900,"key_b64":"AP8=",)"
      R"("headers":[["h","a"],["h","b"]],"value_text":"a text line"})"
      "\n"
      R"({"offset":8,"value":{"userId":)"
      "\n"  // cut JSON
      R"({"offset":9,"timestamp":1100,"value":null})"
      "\n"  // a tombstone
      R"({"offset":10,"timestamp":1200,"value_b64":"AP8="})"
      "\n"  // binary
      R"({"offset":11,"timestamp":1300,"value":[1]})"
      "\n"  // not an object
      R"({"offset":12,"value":{"userId":"u2"}})"
      "\n"  // no $timestamp: no event time
      R"({"offset":13,"timestamp":1400,"vaule":{"userId":"u2"}})"
      "\n"  // a misspelt field
      R"({"partition":2,"offset":14,"timestamp":1500,"value":{"userId":"u3"}})"
      "\n";
  std::string path = TempFile(content);
  FileSourceOptions o;
  o.path = path;
  o.format = LineFormat::kRecording;
  o.common.event_time = "$timestamp";
  o.common.event_time_fields = {{"$timestamp"}};
  auto config = NewFileSourceConfig(o);
  CHECK(config->max_subtasks() == 1);
  const Layout layout = {{"userId"},        {"line"},          {"$key"},   {"$timestamp"},
                         {"$partition"},    {"$offset"},       {"$topic"}, {"$headers"},
                         {"$headers", "h"}, {"$headers", "h2"}};
  RunResult res;
  RunSource(*config, layout, 1, res);
  CHECK(res.statuses[0].ok());
  auto rows = Merged(res.out);
  REQUIRE(rows.size() == 3);

  CHECK(rows[0].raw == R"({ "userId" : "u1" })");  // the value's bytes, exactly as recorded
  CHECK(rows[0].flags == 0);
  CHECK(rows[0].ts == 1000);
  CHECK(rows[0].offset == 0);  // where the line is in the file
  auto str = [](const Value& v) { return std::string(v.as_string()); };
  CHECK(str(rows[0].slots[0]) == "u1");
  CHECK(rows[0].slots[1].is_missing());
  CHECK(str(rows[0].slots[2]) == "u1");
  CHECK(rows[0].slots[3].as_int() == 1000);
  CHECK(rows[0].slots[4].as_int() == 1);
  CHECK(rows[0].slots[5].as_int() == 40);  // the Kafka offset
  CHECK(str(rows[0].slots[6]) == "clicks");
  CHECK(rows[0].slots[7].kind() == Value::Kind::kJson);
  CHECK(str(rows[0].slots[7]) == R"({"h":"v1","h2":null})");
  CHECK(str(rows[0].slots[8]) == "v1");
  CHECK(rows[0].slots[9].kind() == Value::Kind::kNull);  // a header without a value

  CHECK(rows[1].raw == "a text line");  // value_text: a text record, as format text makes
  CHECK(rows[1].flags == kRowText);
  CHECK(str(rows[1].slots[1]) == "a text line");
  CHECK(rows[1].slots[0].is_missing());
  CHECK(str(rows[1].slots[2]) == std::string("\x00\xff", 2));  // the key's bytes
  CHECK(str(rows[1].slots[7]) == R"({"h":"a","h":"b"})");      // a repeated name, as Kafka's
  CHECK(str(rows[1].slots[8]) == "b");                         // the last value
  CHECK(rows[1].slots[9].kind() == Value::Kind::kNull);        // no such header
  CHECK(rows[1].ts == 900);
  CHECK(rows[1].wm == 999);  // event times come from $timestamp

  CHECK(str(rows[2].slots[0]) == "u3");
  CHECK(rows[2].slots[4].as_int() == 2);
  CHECK(rows[2].slots[2].kind() == Value::Kind::kNull);  // no key: null, as the kafka source
  CHECK(rows[2].slots[6].is_missing());                  // not recorded: missing
  CHECK(str(rows[2].slots[7]) == "{}");                  // no headers

  REQUIRE(res.errors.inputs.size() == 6);
  CHECK(res.errors.inputs[0].reason.find("invalid JSON") != std::string::npos);
  CHECK(res.errors.inputs[0].text == R"({"offset":8,"value":{"userId":)");
  CHECK(res.errors.inputs[1].reason == "the record has no value (a tombstone)");
  CHECK(res.errors.inputs[2].reason.find("binary") != std::string::npos);
  CHECK(res.errors.inputs[3].reason == "value: invalid JSON: not an object");
  CHECK(res.errors.inputs[4].reason.find("event_time") != std::string::npos);
  CHECK(res.errors.inputs[4].text == R"({"userId":"u2"})");
  CHECK(res.errors.inputs[5].reason == "unknown field 'vaule'; did you mean 'value'?");
  std::filesystem::remove(path);
}

}  // namespace
}  // namespace streamrun
