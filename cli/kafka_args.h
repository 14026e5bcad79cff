// Options shared by the subcommands that talk to Kafka (record, replay): --brokers, --topic,
// --timeout and --property.
#pragma once

#include <CLI/CLI.hpp>
#include <string>
#include <vector>

#include "engine/status.h"
#include "kafka/client.h"

namespace streamrun::cli {

struct KafkaArgs {
  std::string brokers;
  std::string topic;
  std::string timeout = "30s";
  std::vector<std::string> properties;  // KEY=VALUE

  // Parses --timeout (to milliseconds) and --property; a bad one is a PipelineError.
  Status Parse(int* timeout_ms, KafkaProperties* properties) const;
};

// Adds the options to `sub`, storing into `args`.
void AddKafkaArgs(CLI::App* sub, KafkaArgs* args);

// "2.35 s" for summaries.
std::string SecondsSince(std::chrono::steady_clock::time_point start);

}  // namespace streamrun::cli
