// The file source: JSON lines, text lines or a recording from a file. JSON and text files are
// split over subtasks by chunks; a recording (and a file read with `follow` or `rate`) is read
// by one subtask, line by line.
//
// Splitting: without `follow` and `rate`, the file is cut into chunks of chunk_bytes; chunk k
// holds the lines that START in [k*C, (k+1)*C). The subtasks claim chunks as they go (the next
// one nobody has, from the shared object) and read them with pread, so a subtask slowed down
// by the machine reads fewer chunks instead of holding the others back; a subtask's chunks go
// up. Every batch of chunk k has seq = k, and exactly the last one has seq_last (a chunk
// without rows still sends one empty batch): the runtime merges the subtasks' outputs in chunk
// order, finding each chunk at the head of whichever subtask's queue it is in. Watermark tags
// equal a single-threaded read: a subtask parses a chunk, deposits the chunk's max event time in
// the shared object (CreateShared), and sends the chunk once every chunk before it has been
// deposited (their cumulative max event time completes its rows' watermarks). Meanwhile it
// parses ahead, up to 4 chunks, instead of waiting; bad lines of a chunk parsed ahead are
// reported when the chunk is sent. With a core to spare, a subtask's reader thread reads (preads)
// its next chunk while it parses the one before.
#pragma once

#include <cstdint>
#include <memory>
#include <string>

#include "engine/operator.h"
#include "operators/source_common.h"

namespace streamrun {

// Big enough to amortise the hand-over of the running maximum event time, small enough that a
// chunk's rows fit in the queues of an ordered consumer (see kQueueBatches in runtime.cc).
inline constexpr uint64_t kFileChunkBytes = 1 << 18;

struct FileSourceOptions {
  std::string path;  // absolute
  LineFormat format = LineFormat::kJson;
  double rate = 0;  // records/s; 0: unlimited
  bool follow = false;
  SourceCommon common;
  uint64_t chunk_bytes = kFileChunkBytes;  // tests use small chunks
  // Whether each subtask reads its next chunk on a thread of its own while it parses one. By
  // default when a core is left over for it: the source's subtasks are fewer than the CPUs
  // the process may use. Tests force either.
  enum class ReadAhead { kWhenCoreSpare, kAlways, kNever };
  ReadAhead read_ahead = ReadAhead::kWhenCoreSpare;
};

std::shared_ptr<const NodeConfig> NewFileSourceConfig(FileSourceOptions options);

}  // namespace streamrun
