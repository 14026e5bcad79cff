// Options of the Kafka subcommands (see kafka_args.h).
#include "cli/kafka_args.h"

#include <chrono>
#include <cstdio>

#include "engine/pipeline.h"

namespace streamrun::cli {

void AddKafkaArgs(CLI::App* sub, KafkaArgs* args) {
  sub->add_option("--brokers", args->brokers, "Kafka bootstrap servers: HOST:PORT[,HOST:PORT...]")
      ->required();
  sub->add_option("--topic", args->topic, "The topic")->required();
  sub->add_option("--timeout", args->timeout,
                  "How long to wait for unreachable brokers or undelivered records before failing")
      ->capture_default_str();
  sub->add_option("--property", args->properties,
                  "A librdkafka property KEY=VALUE (repeatable), e.g. security.protocol=SSL");
}

Status KafkaArgs::Parse(int* timeout_ms, KafkaProperties* out) const {
  auto ms = ParseDurationMs(timeout);
  if (!ms.ok()) return Status::PipelineError("--timeout: " + ms.status().message());
  if (*ms <= 0 || *ms > 24LL * 3600 * 1000) {
    return Status::PipelineError("--timeout must be more than 0 and at most 1d");
  }
  *timeout_ms = static_cast<int>(*ms);
  out->clear();
  for (const std::string& p : properties) {
    size_t eq = p.find('=');
    if (eq == std::string::npos || eq == 0) {
      // Not echoed: it may hold a secret.
      return Status::PipelineError("--property wants KEY=VALUE (one has no KEY= before its value)");
    }
    out->emplace_back(p.substr(0, eq), p.substr(eq + 1));
  }
  return Status::Ok();
}

std::string SecondsSince(std::chrono::steady_clock::time_point start) {
  double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.2f s", secs);
  return buf;
}

}  // namespace streamrun::cli
