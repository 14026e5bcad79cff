// `streamrun replay FILE --brokers B --topic T [--speed X]`: a recording file to a Kafka topic
// (kafka/topic_replayer.h).
#include <spdlog/spdlog.h>

#include <chrono>
#include <memory>
#include <string>

#include "cli/commands.h"
#include "cli/interrupt.h"
#include "cli/kafka_args.h"
#include "kafka/topic_replayer.h"

namespace streamrun::cli {
namespace {

struct ReplayArgs {
  KafkaArgs kafka;
  std::string input;
  double speed = 0;
};

int Replay(const ReplayArgs& a) {
  Interrupts& interrupts = Interrupts::Install();
  ReplayOptions o;
  o.input = a.input;
  o.brokers = a.kafka.brokers;
  o.topic = a.kafka.topic;
  o.speed = a.speed;
  Status parsed = a.kafka.Parse(&o.timeout_ms, &o.properties);
  if (!parsed.ok()) return Report(parsed);

  const auto start = std::chrono::steady_clock::now();
  ReplaySummary summary;
  Status st = ReplayRecording(o, interrupts.flag(), &summary);
  if (st.ok() || st.code() == Status::Code::kCancelled) {
    spdlog::info("replay: {} records from {} to {} in {}{}", summary.records, o.input, o.topic,
                 SecondsSince(start), st.ok() ? "" : " (interrupted)");
  }
  if (st.code() == Status::Code::kCancelled) return 130;
  return Report(st);
}

}  // namespace

CommandRunner AddReplayCommand(CLI::App& app) {
  auto args = std::make_shared<ReplayArgs>();
  CLI::App* sub = app.add_subcommand("replay", "Produce a recording file to a Kafka topic");
  sub->add_option("FILE", args->input, "The recording file")->required();
  AddKafkaArgs(sub, &args->kafka);
  sub->add_option("--speed", args->speed,
                  "Pace by the recorded timestamps: 1 as recorded, 2 twice as fast (default: as "
                  "fast as possible)")
      ->check(CLI::PositiveNumber);
  sub->footer(
      "Keeps each record's key, value, headers, timestamp and partition (the topic must have it).\n"
      "The file is checked whole before anything is sent; exit 1 if any record is not delivered.");
  return [args] { return Replay(*args); };
}

}  // namespace streamrun::cli
