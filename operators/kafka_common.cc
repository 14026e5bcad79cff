// Kafka settings shared by the source and the sink (see kafka_common.h).
#include "operators/kafka_common.h"

#include <algorithm>
#include <cctype>

namespace streamrun {

bool IsSecretKafkaProperty(std::string_view name) {
  std::string lower(name);
  std::transform(lower.begin(), lower.end(), lower.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  for (std::string_view word : {"password", "secret", "token", "key", "credential"}) {
    if (lower.find(word) != std::string::npos) return true;
  }
  return lower == "sasl.jaas.config" || lower == "sasl.oauthbearer.config";
}

KafkaProperties KafkaSettings::ClientProperties(const KafkaProperties& defaults) const {
  KafkaProperties out;
  out.emplace_back("bootstrap.servers", brokers);
  for (const auto& d : defaults) {
    if (!HasProperty(d.first)) out.push_back(d);
  }
  out.insert(out.end(), properties.begin(), properties.end());
  return out;
}

bool KafkaSettings::HasProperty(std::string_view name) const {
  return std::any_of(properties.begin(), properties.end(),
                     [&](const auto& p) { return p.first == name; });
}

std::string KafkaSettings::Property(std::string_view name, std::string fallback) const {
  for (auto it = properties.rbegin(); it != properties.rend(); ++it) {
    if (it->first == name) return it->second;
  }
  return fallback;
}

std::string KafkaSettings::Redact(std::string text) const {
  for (const auto& [name, value] : properties) {
    if (value.empty() || !IsSecretKafkaProperty(name)) continue;
    for (size_t at = text.find(value); at != std::string::npos; at = text.find(value, at + 3)) {
      text.replace(at, value.size(), "***");
    }
  }
  return text;
}

std::string KafkaSettings::Describe() const {
  std::string out;
  for (const auto& [name, value] : properties) {
    if (!out.empty()) out += ", ";
    out += name + "=" + (IsSecretKafkaProperty(name) ? std::string("***") : value);
  }
  return out;
}

Result<KafkaSettings> ReadKafkaSettings(const ConfigReader& config,
                                        std::initializer_list<std::string_view> reserved) {
  KafkaSettings s;
  if (!config.Has("brokers")) return config.Error("'brokers' is required");
  if (config.node()["brokers"].IsSequence()) {
    SR_ASSIGN_OR_RETURN(std::vector<std::string> list, config.StringList("brokers"));
    for (const auto& b : list) s.brokers += (s.brokers.empty() ? "" : ",") + b;
  } else {
    SR_ASSIGN_OR_RETURN(s.brokers, config.String("brokers"));
  }
  if (s.brokers.empty()) return config.ErrorAt("brokers", "'brokers' must not be empty");
  if (!config.Has("properties")) return s;
  SR_ASSIGN_OR_RETURN(ConfigReader props, config.Child("properties"));
  // librdkafka checks names and values; a throwaway configuration object holds them.
  KafkaConf check(rd_kafka_conf_new());
  char errstr[512];
  for (const std::string& name : props.Keys()) {
    if (name == "bootstrap.servers" || name == "metadata.broker.list") {
      return props.ErrorAt(name, "set the brokers with 'brokers', not in 'properties'");
    }
    if (std::find(reserved.begin(), reserved.end(), name) != reserved.end()) {
      return props.ErrorAt(name, "'" + name + "' is set by streamrun for this operator");
    }
    SR_ASSIGN_OR_RETURN(std::string value, props.String(name));
    if (rd_kafka_conf_set(check.get(), name.c_str(), value.c_str(), errstr, sizeof errstr) !=
        RD_KAFKA_CONF_OK) {
      // errstr names the property and the problem; it does not repeat the value, but a secret
      // must not reach a message even if a later librdkafka did.
      std::string msg = errstr;
      if (IsSecretKafkaProperty(name) && !value.empty()) {
        for (size_t at = msg.find(value); at != std::string::npos; at = msg.find(value)) {
          msg.replace(at, value.size(), "***");
        }
      }
      return props.ErrorAt(name, "Kafka property '" + name + "': " + msg);
    }
    s.properties.emplace_back(name, std::move(value));
  }
  return s;
}

Result<KafkaHandle> NewKafkaClientFor(const KafkaSettings& settings, rd_kafka_type_t type,
                                      const KafkaProperties& defaults, KafkaClientOptions options) {
  options.type = type;
  options.properties = settings.ClientProperties(defaults);
  Result<KafkaHandle> rk = NewKafkaClient(options);
  if (!rk.ok()) {
    const Status& st = rk.status();
    return st.code() == Status::Code::kPipelineError
               ? Status::PipelineError(settings.Redact(st.message()))
               : Status::RuntimeError(settings.Redact(st.message()));
  }
  return rk;
}

int KafkaPartitionOwner(std::string_view topic, int32_t partition, int parallelism) {
  if (parallelism <= 1) return 0;
  uint32_t h = 2166136261u;  // FNV-1a
  for (unsigned char c : topic) {
    h ^= c;
    h *= 16777619u;
  }
  const uint32_t start = (h & 0x7fffffffu) % static_cast<uint32_t>(parallelism);
  return static_cast<int>((start + static_cast<uint32_t>(partition)) %
                          static_cast<uint32_t>(parallelism));
}

std::string KafkaCallError(const KafkaSettings& settings, std::string_view what,
                           rd_kafka_resp_err_t err) {
  return settings.Redact("cannot " + std::string(what) + ": " + KafkaErrorText(err));
}

std::string KafkaCallError(const KafkaSettings& settings, std::string_view what,
                           rd_kafka_error_t* error) {
  std::string msg = "cannot " + std::string(what) + ": " + rd_kafka_error_name(error) + " (" +
                    rd_kafka_error_string(error) + ")";
  rd_kafka_error_destroy(error);
  return settings.Redact(std::move(msg));
}

}  // namespace streamrun
