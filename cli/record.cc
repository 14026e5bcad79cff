// `streamrun record --brokers B --topic T [--from earliest|latest|TIME] [--until end|COUNT]
// -o FILE`: a Kafka topic to a recording file (kafka/topic_recorder.h).
#include <spdlog/spdlog.h>

#include <cctype>
#include <chrono>
#include <memory>
#include <string>

#include "cli/commands.h"
#include "cli/interrupt.h"
#include "cli/kafka_args.h"
#include "engine/civil_time.h"
#include "kafka/topic_recorder.h"

namespace streamrun::cli {
namespace {

struct RecordArgs {
  KafkaArgs kafka;
  std::string from = "earliest";
  std::string until = "end";
  std::string output;
};

bool AllDigits(const std::string& s) {
  if (s.empty() || s.size() > 18) return false;
  for (char c : s) {
    if (!std::isdigit(static_cast<unsigned char>(c))) return false;
  }
  return true;
}

Result<RecordStart> ParseFrom(const std::string& text) {
  RecordStart start;
  if (text == "earliest") return start;
  if (text == "latest") {
    start.kind = RecordStart::Kind::kLatest;
    return start;
  }
  start.kind = RecordStart::Kind::kTime;
  if (AllDigits(text)) {
    start.time_ms = std::stoll(text);
    return start;
  }
  if (ParseRfc3339(text, &start.time_ms) && start.time_ms >= 0) return start;
  return Status::PipelineError(
      "--from wants earliest, latest, epoch milliseconds or an RFC 3339 "
      "time such as 2024-05-01T12:00:00Z; got '" +
      text + "'");
}

Result<int64_t> ParseUntil(const std::string& text) {
  if (text == "end") return int64_t{-1};
  if (AllDigits(text) && std::stoll(text) > 0) return std::stoll(text);
  return Status::PipelineError("--until wants end or a number of records above 0; got '" + text +
                               "'");
}

int Record(const RecordArgs& a) {
  Interrupts& interrupts = Interrupts::Install();
  RecordOptions o;
  o.brokers = a.kafka.brokers;
  o.topic = a.kafka.topic;
  o.output = a.output;
  auto from = ParseFrom(a.from);
  if (!from.ok()) return Report(from.status());
  o.from = *from;
  auto until = ParseUntil(a.until);
  if (!until.ok()) return Report(until.status());
  o.until_count = *until;
  Status parsed = a.kafka.Parse(&o.timeout_ms, &o.properties);
  if (!parsed.ok()) return Report(parsed);

  const auto start = std::chrono::steady_clock::now();
  RecordSummary summary;
  Status st = RecordTopic(o, interrupts.flag(), &summary);
  if (st.ok() || st.code() == Status::Code::kCancelled) {
    spdlog::info("record: {} records from {} ({} partitions) to {} in {}{}", summary.records,
                 o.topic, summary.partitions, o.output, SecondsSince(start),
                 st.ok() ? "" : " (interrupted)");
  }
  if (st.code() == Status::Code::kCancelled) return 130;
  return Report(st);
}

}  // namespace

CommandRunner AddRecordCommand(CLI::App& app) {
  auto args = std::make_shared<RecordArgs>();
  CLI::App* sub =
      app.add_subcommand("record", "Record a Kafka topic (all partitions) to a recording file");
  AddKafkaArgs(sub, &args->kafka);
  sub->add_option("--from", args->from,
                  "earliest, latest, or a time (RFC 3339 or epoch ms): start at each partition's "
                  "first record at or after it")
      ->capture_default_str();
  sub->add_option("--until", args->until,
                  "end (each partition's end offset at start) or a number of records")
      ->capture_default_str();
  sub->add_option("-o,--output", args->output, "The recording file (replaced)")->required();
  sub->footer(
      "A recording is JSON lines, one Kafka record a line (docs/recording-format.md). The file is\n"
      "fsynced at the end; Ctrl-C keeps what was recorded (exit 130). Exit 1 when the brokers do\n"
      "not answer within --timeout.");
  return [args] { return Record(*args); };
}

}  // namespace streamrun::cli
