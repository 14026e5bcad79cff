// The capture sink: keeps the lines a sink would have written in memory, for `streamrun test`,
// which puts one in place of every sink of the pipeline under test (engine/test_runner.h).
//
// Thread safety: a sink runs one subtask, on one thread; CapturedLines is read after the job
// has ended (Job::Run returned), so it needs no lock.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "engine/operator.h"

namespace streamrun {

struct CapturedLines {
  std::vector<std::string> lines;  // each record's bytes, without newline, in arrival order
};

std::shared_ptr<const NodeConfig> NewCaptureSinkConfig(std::shared_ptr<CapturedLines> into);

}  // namespace streamrun
