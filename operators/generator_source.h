// The `generator` source: synthetic events, identical for a seed on every platform and however
// they are batched (a splitmix64 generator; timestamps from 1700000000000, not the wall clock).
#pragma once

#include <cstdint>
#include <memory>
#include <string>

#include "engine/operator.h"
#include "operators/source_common.h"

namespace streamrun {

struct GeneratorOptions {
  std::string profile = "sequence";  // clickstream | sessions | sequence
  int64_t count = -1;                // -1: unbounded
  double rate = 0;
  uint64_t seed = 1;
  SourceCommon common;
};

std::shared_ptr<const NodeConfig> NewGeneratorConfig(GeneratorOptions options);

}  // namespace streamrun
