// Planning: a PipelineSpec becomes a graph of parallel subtasks (a Plan).
//
// The planner decides, for every node: how many subtasks run it, which fields each stream
// carries (its Layout: only what some consumer reads), how each input arrives (forward, keyed
// exchange, or gathered), and which nodes are chained onto their upstream's thread.
//
// Rules:
// - Sources run as one subtask, or as `parallelism` subtasks when their NodeConfig allows it
//   (a plain file is read in chunks by several subtasks). Keyed steps run `parallelism` subtasks.
//   Stateless steps with one input follow its parallelism; with several inputs, and sinks, run 1.
// - A step is chained onto its upstream (same thread, no queue, batches transformed in place)
//   when it reads exactly one stream, that stream is the upstream's main output, nobody else
//   reads it, both have the same parallelism, and no exchange is needed (or both run 1 subtask).
// - A node whose input comes from several producers (a union, or a gather from several
//   subtasks) and whose sources are all bounded reads its inputs merged by event time when the
//   order matters, i.e. it is a stateful step or upstream of one: records from different
//   producers are taken smallest event time first (ties: the earlier input), so a union of files
//   gives the same result on every run. Sinks and stateless steps feeding only sinks take
//   batches as they come: their output is the same multiset in any order.
// - A keyed step that reads a split file source (in chunk order, or with row_watermarks) at the
//   source's parallelism runs co-located: subtask i on the thread of source subtask i,
//   whenever the source would wait to push (so there are no more threads than cores, and half
//   the rows stay on their core).
// - A stream is read in chunk order (ordered) when it comes from a source split over several
//   subtasks in sequence (NodeConfig::split_in_sequence: a file) through chained stateless
//   steps: consumers then see the records in file order. A Kafka source's subtasks read
//   partitions of their own, whose batches are taken as they come.
// - A keyed step whose results cannot depend on the order of its records (NodeConfig::
//   order_free: a tumbling or sliding count) reads such a stream as batches come instead
//   (row_watermarks): every row carries the watermark of its place in the file, which decides
//   whether it is late, and the step fires at the minimum over its producers. The result is the
//   one of file order, and no subtask waits for another's chunk to go on.
#pragma once

#include <string>
#include <vector>

#include "engine/batch.h"
#include "engine/pipeline.h"
#include "engine/status.h"

namespace streamrun {

// Output ports of a node. Do not reorder: used in graphs and metrics.
enum class Port : uint8_t { kMain = 0, kLate, kErrors };
const char* PortSuffix(Port port);  // "", ".late", ".errors"

enum class EdgeKind : uint8_t {
  kForward,  // subtask i to subtask i
  kKeyed,    // rows routed by key group
  kGather,   // every upstream subtask to the single consumer subtask
};

struct PlanInput {
  int node = -1;  // upstream node (for kErrors: the source whose errors these are)
  Port port = Port::kMain;
  EdgeKind kind = EdgeKind::kForward;
  bool ordered = false;  // read in chunk order
  // Instead of in chunk order, read as batches come, each row keeping the watermark of its
  // place in the file: a keyed step whose results cannot depend on the order
  // (NodeConfig::order_free) reading a split file. See "Rules".
  bool row_watermarks = false;
  // For each slot of the consumer's input layout, the slot of the upstream's layout that feeds
  // it (-1: Missing). Empty when the layouts are identical.
  std::vector<int> remap;
};

struct PlanNode {
  const NodeSpec* spec = nullptr;
  NodeRole role = NodeRole::kStep;
  int parallelism = 1;
  std::vector<PlanInput> inputs;
  Layout in_layout;      // what the operator's Process receives (sources: what they extract)
  Layout out_layout;     // the main output (sources: the same as in_layout)
  Layout late_layout;    // the .late stream (windows): equals in_layout
  Layout errors_layout;  // the .errors stream (sources)
  bool chained = false;  // runs on the thread of inputs[0].node
  // Runs each subtask on the thread of the same subtask of its upstream (a split file source and
  // the steps chained to it), taking turns with it: a keyed step reading in chunk order at the
  // source's parallelism. See engine/runtime.cc "Co-location".
  bool colocated = false;
  bool bounded = false;  // every source upstream ends by itself
  // It or a node downstream of it reads event time (a stateful step): producers must tell it of
  // every new watermark. Nodes that do not (sinks, and stateless steps feeding only sinks) get
  // no batches that carry nothing but a watermark.
  bool needs_watermarks = false;
  // Reads its inputs merged by event time (a union or gather of bounded inputs at or upstream
  // of a stateful step, so that the result does not depend on thread timing).
  bool time_merge = false;
  // Whether the merge may always wait for the producer whose next record it needs. True when no
  // waiting can close a cycle of full queues: one subtask, and producers with no common upstream.
  // Otherwise, while another producer's queue is full, the merge takes the smallest record it
  // has instead of waiting (the result may then depend on timing, but nothing deadlocks).
  bool time_merge_strict = false;
  // Filled by the planner from the inputs of other nodes.
  std::vector<int> main_consumers;
  std::vector<int> late_consumers;
  std::vector<int> errors_consumers;
  std::vector<int> key_slots;  // keyed nodes: the key fields' slots in in_layout
};

struct Plan {
  const PipelineSpec* spec = nullptr;
  std::vector<PlanNode> nodes;  // sources, then steps, then sinks, in a topological order
  int Index(const std::string& name) const;
};

// REQUIRES: `spec` outlives the plan. `parallelism` > 0 overrides the spec's.
Result<Plan> BuildPlan(const PipelineSpec& spec, int parallelism);

// The plan as Graphviz DOT or Mermaid text, for `streamrun graph`.
std::string PlanToDot(const Plan& plan);
std::string PlanToMermaid(const Plan& plan);

}  // namespace streamrun
