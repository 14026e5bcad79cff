// The stdout and file sinks: each row's raw bytes and a newline, unchanged (no re-serialisation,
// so untouched records keep their original bytes), through a 1 MiB buffer written with write(2).
#pragma once

#include <memory>
#include <string>

#include "engine/operator.h"

namespace streamrun {

// `path` absolute; its parent folders are created and the file truncated when the sink opens.
std::shared_ptr<const NodeConfig> NewFileSinkConfig(std::string path);
std::shared_ptr<const NodeConfig> NewStdoutSinkConfig();
// A sink writing to an open descriptor (for tests); does not close it.
std::unique_ptr<Operator> NewFdSink(int fd, std::string name);

}  // namespace streamrun
