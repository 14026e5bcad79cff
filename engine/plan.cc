// The planner (see plan.h for its rules).
#include "engine/plan.h"

#include <algorithm>
#include <functional>
#include <map>
#include <set>

#include "engine/key.h"

namespace streamrun {

const char* PortSuffix(Port port) {
  switch (port) {
    case Port::kMain:
      return "";
    case Port::kLate:
      return ".late";
    case Port::kErrors:
      return ".errors";
  }
  return "";
}

int Plan::Index(const std::string& name) const {
  for (size_t i = 0; i < nodes.size(); ++i) {
    if (nodes[i].spec->name == name) return static_cast<int>(i);
  }
  return -1;
}

namespace {

using PathSet = std::set<FieldPath>;

Layout ToLayout(const PathSet& paths) { return Layout(paths.begin(), paths.end()); }

// For each slot of `to`, the slot of `from` with the same path, or -1. Empty when equal.
std::vector<int> Remap(const Layout& from, const Layout& to) {
  if (from == to) return {};
  std::vector<int> map(to.size(), -1);
  for (size_t i = 0; i < to.size(); ++i) {
    auto it = std::find(from.begin(), from.end(), to[i]);
    if (it != from.end()) map[i] = static_cast<int>(it - from.begin());
  }
  return map;
}

struct StreamRef {
  int node;
  Port port;
};

}  // namespace

Result<Plan> BuildPlan(const PipelineSpec& spec, int parallelism) {
  Plan plan;
  plan.spec = &spec;
  const int p = parallelism > 0 ? parallelism : spec.parallelism;
  if (p > spec.max_parallelism) {
    return Status::PipelineError("parallelism " + std::to_string(p) +
                                 " is larger than max_parallelism " +
                                 std::to_string(spec.max_parallelism));
  }

  // Nodes in a topological order: sources, steps sorted by their inputs, sinks.
  std::map<std::string, const NodeSpec*> by_name;
  for (const auto& n : spec.sources) by_name[n.name] = &n;
  for (const auto& n : spec.steps) by_name[n.name] = &n;
  auto base_name = [](const std::string& from) {
    auto dot = from.rfind('.');
    return dot == std::string::npos ? from : from.substr(0, dot);
  };
  std::vector<const NodeSpec*> order;
  for (const auto& n : spec.sources) order.push_back(&n);
  {
    std::set<std::string> placed;
    for (const auto& n : spec.sources) placed.insert(n.name);
    std::vector<const NodeSpec*> pending;
    for (const auto& n : spec.steps) pending.push_back(&n);
    while (!pending.empty()) {
      bool progress = false;
      for (auto it = pending.begin(); it != pending.end();) {
        bool ready = true;
        for (const auto& f : (*it)->from) ready = ready && placed.count(base_name(f)) > 0;
        if (ready) {
          order.push_back(*it);
          placed.insert((*it)->name);
          it = pending.erase(it);
          progress = true;
        } else {
          ++it;
        }
      }
      if (!progress) {
        return Status::PipelineError(
            FormatAt(pending.front()->location,
                     "step '" + pending.front()->name + "' is part of a cycle of `from`"));
      }
    }
  }
  for (const auto& n : spec.sinks) order.push_back(&n);

  for (const NodeSpec* n : order) {
    PlanNode pn;
    pn.spec = n;
    pn.role = n->role;
    plan.nodes.push_back(std::move(pn));
  }

  // Inputs.
  for (size_t i = 0; i < plan.nodes.size(); ++i) {
    PlanNode& pn = plan.nodes[i];
    for (size_t f = 0; f < pn.spec->from.size(); ++f) {
      const std::string& from = pn.spec->from[f];
      PlanInput in;
      std::string base = from;
      if (plan.Index(from) < 0) {
        auto dot = from.rfind('.');
        std::string suffix = dot == std::string::npos ? "" : from.substr(dot + 1);
        base = base_name(from);
        if (suffix == "late")
          in.port = Port::kLate;
        else if (suffix == "errors")
          in.port = Port::kErrors;
      }
      in.node = plan.Index(base);
      if (in.node < 0) {
        return Status::PipelineError(FormatAt(
            pn.spec->from_locations.size() > f ? pn.spec->from_locations[f] : pn.spec->location,
            "unknown stream '" + from + "'"));
      }
      PlanNode& up = plan.nodes[in.node];
      (in.port == Port::kMain   ? up.main_consumers
       : in.port == Port::kLate ? up.late_consumers
                                : up.errors_consumers)
          .push_back(static_cast<int>(i));
      pn.inputs.push_back(in);
    }
  }

  // Fields, backwards: what each stream must carry.
  std::vector<PathSet> main_needs(plan.nodes.size()), late_needs(plan.nodes.size()),
      errors_needs(plan.nodes.size()), input_needs(plan.nodes.size());
  for (size_t k = plan.nodes.size(); k-- > 0;) {
    PlanNode& pn = plan.nodes[k];
    std::vector<FieldPath> out(main_needs[k].begin(), main_needs[k].end());
    PathSet in;
    for (auto& path : pn.spec->config->InputFields(out)) in.insert(path);
    for (const auto& path : late_needs[k]) in.insert(path);
    input_needs[k] = in;
    for (const PlanInput& input : pn.inputs) {
      PathSet& target = input.port == Port::kMain   ? main_needs[input.node]
                        : input.port == Port::kLate ? late_needs[input.node]
                                                    : errors_needs[input.node];
      target.insert(in.begin(), in.end());
    }
  }

  // Parallelism, layouts and edges, forwards.
  for (size_t k = 0; k < plan.nodes.size(); ++k) {
    PlanNode& pn = plan.nodes[k];
    const NodeConfig& cfg = *pn.spec->config;
    if (pn.role == NodeRole::kSource) {
      pn.parallelism = std::max(1, std::min(p, cfg.max_subtasks()));
      pn.in_layout = ToLayout(input_needs[k]);
      pn.out_layout = pn.in_layout;
      pn.errors_layout = ToLayout(errors_needs[k]);
      continue;
    }
    if (cfg.keyed()) {
      pn.parallelism = std::max(1, std::min(p, cfg.max_subtasks()));
    } else if (pn.role == NodeRole::kStep && cfg.stateless() && pn.inputs.size() == 1 &&
               pn.inputs[0].port != Port::kErrors) {
      pn.parallelism = std::min(plan.nodes[pn.inputs[0].node].parallelism, cfg.max_subtasks());
    } else {
      pn.parallelism = 1;
    }
    // The input layout: a single input's layout is passed through; a union gets the fields it
    // needs in a canonical order, and each input is remapped to it.
    auto layout_of = [&](const PlanInput& in) -> const Layout& {
      const PlanNode& up = plan.nodes[in.node];
      return in.port == Port::kMain   ? up.out_layout
             : in.port == Port::kLate ? up.late_layout
                                      : up.errors_layout;
    };
    if (pn.inputs.size() == 1) {
      pn.in_layout = layout_of(pn.inputs[0]);
    } else {
      pn.in_layout = ToLayout(input_needs[k]);
    }
    for (PlanInput& in : pn.inputs) {
      in.remap = Remap(layout_of(in), pn.in_layout);
      const PlanNode& up = plan.nodes[in.node];
      if (in.port == Port::kErrors) {
        in.kind = EdgeKind::kGather;
      } else if (cfg.keyed()) {
        in.kind = EdgeKind::kKeyed;
      } else if (up.parallelism == pn.parallelism) {
        in.kind = EdgeKind::kForward;
      } else {
        in.kind = EdgeKind::kGather;
      }
    }
    // Stateless steps pass their input layout through (filter transforms batches in place);
    // others produce what their consumers need.
    pn.out_layout = cfg.passes_layout_through() ? pn.in_layout : ToLayout(main_needs[k]);
    if (!cfg.side_outputs().empty()) pn.late_layout = pn.in_layout;
    if (cfg.keyed()) {
      for (const auto& path : cfg.key_fields()) {
        auto it = std::find(pn.in_layout.begin(), pn.in_layout.end(), path);
        if (it == pn.in_layout.end()) {
          return Status::RuntimeError("planner: key field " + FieldPathToString(path) +
                                      " missing from the input of " + pn.spec->name);
        }
        pn.key_slots.push_back(static_cast<int>(it - pn.in_layout.begin()));
      }
    }
  }

  // Bounded inputs.
  for (auto& pn : plan.nodes) {
    if (pn.role == NodeRole::kSource) {
      pn.bounded = pn.spec->config->bounded();
      continue;
    }
    pn.bounded = true;
    for (const auto& in : pn.inputs) pn.bounded = pn.bounded && plan.nodes[in.node].bounded;
  }

  // Chaining and ordered reads.
  for (size_t k = 0; k < plan.nodes.size(); ++k) {
    PlanNode& pn = plan.nodes[k];
    if (pn.role == NodeRole::kSource || pn.inputs.size() != 1) continue;
    PlanInput& in = pn.inputs[0];
    const PlanNode& up = plan.nodes[in.node];
    // Ordered: the stream comes from a split source through stateless steps, one subtask to
    // the same subtask all the way (chained or forward), so its batches carry chunk numbers.
    int head = in.node;
    while (plan.nodes[head].role != NodeRole::kSource && plan.nodes[head].inputs.size() == 1 &&
           plan.nodes[head].inputs[0].port == Port::kMain &&
           plan.nodes[head].inputs[0].kind == EdgeKind::kForward &&
           plan.nodes[head].spec->config->stateless()) {
      head = plan.nodes[head].inputs[0].node;
    }
    in.ordered = in.port == Port::kMain && plan.nodes[head].role == NodeRole::kSource &&
                 plan.nodes[head].parallelism > 1 &&
                 plan.nodes[head].spec->config->split_in_sequence();
    if (in.ordered && in.kind == EdgeKind::kKeyed && pn.spec->config->order_free()) {
      in.ordered = false;
      in.row_watermarks = true;
    }
    bool trivial_exchange =
        in.kind == EdgeKind::kForward || (up.parallelism == 1 && pn.parallelism == 1);
    pn.chained = in.port == Port::kMain && up.main_consumers.size() == 1 &&
                 up.parallelism == pn.parallelism && trivial_exchange && in.remap.empty();
  }
  // Co-location: a keyed consumer of a split file source (through chained steps) at its
  // parallelism. The host's thread never waits on anything but queues (a split file is plain,
  // without rate or follow), so the guest gets its turns whenever the host would wait to push.
  for (auto& pn : plan.nodes) {
    if (pn.role == NodeRole::kSource || pn.chained || pn.inputs.size() != 1) continue;
    const PlanInput& in = pn.inputs[0];
    if (!(in.ordered || in.row_watermarks) || in.kind != EdgeKind::kKeyed ||
        in.port != Port::kMain) {
      continue;
    }
    int head = in.node;
    while (plan.nodes[head].chained) head = plan.nodes[head].inputs[0].node;
    // One guest per host: the stream must feed nobody else.
    pn.colocated = plan.nodes[head].role == NodeRole::kSource &&
                   plan.nodes[in.node].parallelism == pn.parallelism &&
                   plan.nodes[in.node].main_consumers.size() == 1;
  }
  // Order-sensitive nodes: a stateful step, or a node upstream of one. Only those need their
  // inputs merged by event time; a sink's output and a stateless step's are the same multiset
  // in any order (DESIGN.md: sinks are compared as multisets), so they read as batches come.
  std::vector<int> sensitive(plan.nodes.size(), -1);  // -1: not known yet
  std::function<bool(size_t)> order_sensitive = [&](size_t k) -> bool {
    if (sensitive[k] >= 0) return sensitive[k] == 1;
    sensitive[k] = 0;  // the graph is acyclic; this only guards against a bug looping
    const PlanNode& pn = plan.nodes[k];
    bool yes = pn.role == NodeRole::kStep && !pn.spec->config->stateless();
    for (const auto* consumers : {&pn.main_consumers, &pn.late_consumers, &pn.errors_consumers}) {
      for (int c : *consumers) yes = order_sensitive(static_cast<size_t>(c)) || yes;
    }
    sensitive[k] = yes ? 1 : 0;
    return yes;
  };
  for (size_t k = 0; k < plan.nodes.size(); ++k) {
    PlanNode& pn = plan.nodes[k];
    pn.needs_watermarks = order_sensitive(k);
    if (pn.role == NodeRole::kSource || pn.chained || !pn.bounded) continue;
    if (pn.inputs.size() == 1 && (pn.inputs[0].ordered || pn.inputs[0].row_watermarks)) continue;
    if (!order_sensitive(k)) continue;
    int producers = 0;
    for (const auto& in : pn.inputs) {
      if (in.port == Port::kErrors) continue;
      producers += in.kind == EdgeKind::kForward ? 1 : plan.nodes[in.node].parallelism;
    }
    pn.time_merge = producers > 1;
  }
  // Upstream nodes of each node (itself included), for time_merge_strict.
  std::vector<std::vector<bool>> upstream(plan.nodes.size(), std::vector<bool>(plan.nodes.size()));
  for (size_t k = 0; k < plan.nodes.size(); ++k) {
    upstream[k][k] = true;
    for (const auto& in : plan.nodes[k].inputs) {
      for (size_t j = 0; j < plan.nodes.size(); ++j) {
        if (upstream[in.node][j]) upstream[k][j] = true;
      }
    }
  }
  for (auto& pn : plan.nodes) {
    if (!pn.time_merge || pn.parallelism != 1) continue;
    bool disjoint = true;
    std::vector<bool> seen(plan.nodes.size());
    for (const auto& in : pn.inputs) {
      if (in.port == Port::kErrors) continue;
      if (plan.nodes[in.node].parallelism != 1) disjoint = false;
      for (size_t j = 0; j < plan.nodes.size(); ++j) {
        if (!upstream[in.node][j]) continue;
        if (seen[j]) disjoint = false;
        seen[j] = true;
      }
    }
    pn.time_merge_strict = disjoint;
  }
  return plan;
}

namespace {

std::string NodeLabel(const PlanNode& n) {
  std::string label = n.spec->name + "\\n" + n.spec->type;
  if (n.parallelism > 1) label += " ×" + std::to_string(n.parallelism);
  std::string desc = n.spec->config->Describe();
  if (!desc.empty()) label += "\\n" + desc;
  return label;
}

std::string EdgeLabel(const PlanInput& in) {
  std::string label = PortSuffix(in.port)[0] ? std::string(PortSuffix(in.port) + 1) : "";
  const char* kind = in.kind == EdgeKind::kKeyed    ? "keyed"
                     : in.kind == EdgeKind::kGather ? "gather"
                                                    : "";
  if (*kind) label += (label.empty() ? "" : ", ") + std::string(kind);
  return label;
}

// For DOT: backslash before quotes. For Mermaid: its entity for quotes.
std::string Escape(const std::string& s, bool mermaid = false) {
  std::string out;
  for (char c : s) {
    if (c == '"')
      out += mermaid ? "#quot;" : "\\\"";
    else
      out.push_back(c);
  }
  return out;
}

}  // namespace

std::string PlanToDot(const Plan& plan) {
  std::string out = "digraph \"" + Escape(plan.spec->name) + "\" {\n  rankdir=LR;\n";
  for (const auto& n : plan.nodes) {
    const char* shape = n.role == NodeRole::kSource ? "invhouse"
                        : n.role == NodeRole::kSink ? "house"
                                                    : "box";
    out += "  \"" + Escape(n.spec->name) + "\" [shape=" + shape + ", label=\"" +
           Escape(NodeLabel(n)) + "\"];\n";
  }
  for (const auto& n : plan.nodes) {
    for (const auto& in : n.inputs) {
      out += "  \"" + Escape(plan.nodes[in.node].spec->name) + "\" -> \"" + Escape(n.spec->name) +
             "\"";
      std::string label = EdgeLabel(in);
      std::vector<std::string> attrs;
      if (!label.empty()) attrs.push_back("label=\"" + label + "\"");
      if (in.port != Port::kMain) attrs.push_back("style=dashed");
      if (n.chained) attrs.push_back("penwidth=2");
      if (!attrs.empty()) {
        out += " [";
        for (size_t i = 0; i < attrs.size(); ++i) out += (i ? ", " : "") + attrs[i];
        out += "]";
      }
      out += ";\n";
    }
  }
  out += "}\n";
  return out;
}

std::string PlanToMermaid(const Plan& plan) {
  std::string out = "flowchart LR\n";
  auto id = [&](const PlanNode& n) { return "n_" + n.spec->name; };
  for (const auto& n : plan.nodes) {
    std::string label = NodeLabel(n);
    // Mermaid labels take <br/> for line breaks.
    std::string text;
    for (size_t i = 0; i < label.size(); ++i) {
      if (label[i] == '\\' && i + 1 < label.size() && label[i + 1] == 'n') {
        text += "<br/>";
        ++i;
      } else {
        text.push_back(label[i]);
      }
    }
    text = Escape(text, /*mermaid=*/true);
    if (n.role == NodeRole::kSource)
      out += "  " + id(n) + "[/\"" + text + "\"/]\n";
    else if (n.role == NodeRole::kSink)
      out += "  " + id(n) + "[\\\"" + text + "\"\\]\n";
    else
      out += "  " + id(n) + "[\"" + text + "\"]\n";
  }
  for (const auto& n : plan.nodes) {
    for (const auto& in : n.inputs) {
      std::string label = EdgeLabel(in);
      std::string arrow = in.port == Port::kMain ? "-->" : "-.->";
      out += "  " + id(plan.nodes[in.node]) + " " + arrow +
             (label.empty() ? "" : "|" + label + "|") + " " + id(n) + "\n";
    }
  }
  return out;
}

}  // namespace streamrun
