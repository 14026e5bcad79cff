// What a job reports about itself: progress counters, the status JSON of the control socket,
// and the summary at its end.
#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

#include <algorithm>

#include "engine/job_impl.h"

namespace streamrun {

std::vector<std::pair<std::string, const SourceProgress*>> Job::progress() const {
  std::vector<std::pair<std::string, const SourceProgress*>> out;
  for (int n : impl_->source_of_origin_) {
    out.emplace_back(impl_->plan_.nodes[n].spec->name, impl_->progress_[n].get());
  }
  return out;
}

std::string Job::StatusJson() const {
  rapidjson::StringBuffer buf;
  rapidjson::Writer<rapidjson::StringBuffer> w(buf);
  const int64_t now = SteadyNowNs();
  w.StartObject();
  w.Key("job");
  w.String(impl_->spec_.name.c_str());
  int64_t started = now;
  for (const auto& t : impl_->tasks_) {
    int64_t s = t->metrics.started_ns.load();
    if (s > 0) started = std::min(started, s);
  }
  w.Key("uptime_ms");
  w.Int64((now - started) / 1000000);
  w.Key("nodes");
  w.StartArray();
  for (size_t n = 0; n < impl_->plan_.nodes.size(); ++n) {
    const PlanNode& pn = impl_->plan_.nodes[n];
    const NodeMetrics& m = *impl_->metrics_[n];
    w.StartObject();
    w.Key("name");
    w.String(pn.spec->name.c_str());
    w.Key("type");
    w.String(pn.spec->type.c_str());
    w.Key("role");
    w.String(NodeRoleName(pn.role));
    w.Key("parallelism");
    w.Int(pn.parallelism);
    uint64_t in = m.records_in.load(), out = m.records_out.load();
    if (pn.role == NodeRole::kSource) in = impl_->progress_[n]->records.load();
    w.Key("records_in");
    w.Uint64(in);
    w.Key("records_out");
    w.Uint64(out);
    if (pn.role == NodeRole::kSource) {
      w.Key("pauses");
      w.Uint64(impl_->progress_[n]->pauses.load());
    }
    w.Key("watermark");
    int64_t wm = pn.role == NodeRole::kSource ? kMinTimestamp : m.watermark.load();
    if (wm == kMinTimestamp)
      w.Null();
    else
      w.Int64(wm);
    // Thread shares and queues of the tasks that run this node.
    double fill = 0, busy = 0, idle = 0, bp = 0;
    int tasks = 0;
    for (const Impl::Task* t : impl_->node_tasks_[n]) {
      if (t->gate) fill = std::max(fill, t->gate->fill());
      int64_t s = t->metrics.started_ns.load();
      if (s <= 0 || now <= s) continue;
      double life = static_cast<double>(now - s);
      double i = std::min(1.0, static_cast<double>(t->metrics.idle.Read(now)) / life);
      double b = std::min(1.0 - i, static_cast<double>(t->metrics.backpressured.Read(now)) / life);
      idle += i;
      bp += b;
      busy += std::max(0.0, 1.0 - i - b);
      ++tasks;
    }
    if (tasks > 0) {
      busy /= tasks;
      idle /= tasks;
      bp /= tasks;
    }
    w.Key("queue_fill");
    w.Double(fill);
    w.Key("busy");
    w.Double(busy);
    w.Key("idle");
    w.Double(idle);
    w.Key("backpressured");
    w.Double(bp);
    w.EndObject();
  }
  w.EndArray();
  if (impl_->coordinator_) {
    const CheckpointCoordinator& c = *impl_->coordinator_;
    w.Key("checkpoints");
    w.StartObject();
    w.Key("completed");
    w.Uint64(c.completed_count());
    w.Key("failed");
    w.Uint64(c.failed_count());
    w.Key("last");
    if (auto last = c.last_completed()) {
      w.StartObject();
      w.Key("id");
      w.Int64(last->id);
      w.Key("path");
      w.String(last->path.c_str());
      w.Key("completed_at_ms");
      w.Int64(last->completed_at_ms);
      w.Key("duration_ms");
      w.Int64(last->duration_ms);
      w.Key("bytes");
      w.Uint64(last->bytes);
      w.EndObject();
    } else {
      w.Null();
    }
    // How long tasks stopped processing at barriers (engine/checkpoint_coordinator.h).
    PauseStats ps = c.pause_stats();
    w.Key("pause_ms");
    w.StartObject();
    w.Key("samples");
    w.Uint64(ps.count);
    w.Key("p50");
    w.Double(static_cast<double>(ps.p50_ns) / 1e6);
    w.Key("p99");
    w.Double(static_cast<double>(ps.p99_ns) / 1e6);
    w.Key("max");
    w.Double(static_cast<double>(ps.max_ns) / 1e6);
    w.Key("last");
    w.Double(static_cast<double>(ps.last_max_ns) / 1e6);
    w.EndObject();
    w.EndObject();
  }
  w.EndObject();
  return buf.GetString();
}

RunSummary Job::summary() const {
  RunSummary s;
  for (size_t o = 0; o < impl_->source_of_origin_.size(); ++o) {
    int n = impl_->source_of_origin_[o];
    s.sources.push_back({impl_->plan_.nodes[n].spec->name, impl_->progress_[n]->records.load(),
                         impl_->bad_records_[o].load()});
  }
  for (size_t n = 0; n < impl_->plan_.nodes.size(); ++n) {
    if (impl_->plan_.nodes[n].role != NodeRole::kSink) continue;
    uint64_t records = 0;
    for (Impl::Task* t : impl_->node_tasks_[n]) {
      for (size_t c = 0; c < t->chain.size(); ++c) {
        if (t->chain[c] != static_cast<int>(n)) continue;
        // ops hold chain[1..] when the head is a source, chain[0..] otherwise.
        size_t idx = t->source ? c - 1 : c;
        records += t->ops[idx]->records_out();
      }
    }
    s.sinks.push_back({impl_->plan_.nodes[n].spec->name, records});
  }
  return s;
}

}  // namespace streamrun
