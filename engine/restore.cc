// Reading checkpoints and savepoints back (see restore.h).
#include "engine/restore.h"

#include <rapidjson/document.h>
#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

#include <fstream>
#include <sstream>

#include "engine/checkpoint_manifest.h"

namespace streamrun {
namespace {

std::string ToJson(const rapidjson::Value& v) {
  rapidjson::StringBuffer sb;
  rapidjson::Writer<rapidjson::StringBuffer> w(sb);
  v.Accept(w);
  return sb.GetString();
}

NodeRole RoleOf(std::string_view s) {
  if (s == "source") return NodeRole::kSource;
  if (s == "sink") return NodeRole::kSink;
  return NodeRole::kStep;
}

const NodeSpec* FindNode(const PipelineSpec& spec, const std::string& name) {
  return spec.Find(name);
}

}  // namespace

Result<std::string> ReadWholeFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return Status::IoError("cannot read '" + path + "'");
  std::ostringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

bool SnapshotNode::has_state() const {
  if (!state_files.empty()) return true;
  for (const auto& m : metas) {
    if (!m.empty()) return true;
  }
  for (const auto& p : positions) {
    if (p != "null") return true;
  }
  return false;
}

const SnapshotNode* SnapshotInfo::Find(const std::string& name) const {
  for (const auto& n : nodes) {
    if (n.name == name) return &n;
  }
  return nullptr;
}

const char* VerdictName(NodeCheck::Verdict v) {
  switch (v) {
    case NodeCheck::Verdict::kRestored:
      return "restored";
    case NodeCheck::Verdict::kNew:
      return "new";
    case NodeCheck::Verdict::kDropped:
      return "dropped";
    case NodeCheck::Verdict::kIncompatible:
      return "incompatible";
  }
  return "?";
}

Result<SnapshotInfo> ReadSnapshotInfo(const std::string& path) {
  SR_ASSIGN_OR_RETURN(std::string text, ReadWholeFile(path + "/" + kManifestName));
  SR_ASSIGN_OR_RETURN(Manifest manifest, ParseManifest(text));
  SnapshotInfo info;
  info.path = path;
  info.id = manifest.id;
  info.savepoint = manifest.kind == SnapshotKind::kSavepoint;
  rapidjson::Document doc;
  doc.Parse(manifest.metadata_json.data(), manifest.metadata_json.size());
  auto bad = [&](const std::string& why) {
    return Status::RuntimeError(path + "/" + kManifestName + ": metadata: " + why);
  };
  if (doc.HasParseError() || !doc.IsObject()) return bad("not a JSON object");
  if (doc.HasMember("job") && doc["job"].IsString()) info.job = doc["job"].GetString();
  if (doc.HasMember("max_parallelism") && doc["max_parallelism"].IsInt()) {
    info.max_parallelism = doc["max_parallelism"].GetInt();
  }
  if (!doc.HasMember("nodes") || !doc["nodes"].IsObject()) return bad("no \"nodes\"");
  for (auto& m : doc["nodes"].GetObject()) {
    SnapshotNode n;
    n.name = m.name.GetString();
    const rapidjson::Value& v = m.value;
    if (!v.IsObject() || !v.HasMember("subtasks") || !v["subtasks"].IsArray()) {
      return bad("node '" + n.name + "' has no subtasks");
    }
    if (v.HasMember("role") && v["role"].IsString()) n.role = RoleOf(v["role"].GetString());
    if (v.HasMember("type") && v["type"].IsString()) n.type = v["type"].GetString();
    if (v.HasMember("fingerprint") && v["fingerprint"].IsString()) {
      n.fingerprint = v["fingerprint"].GetString();
    }
    if (v.HasMember("schema") && v["schema"].IsObject()) n.schema_json = ToJson(v["schema"]);
    n.parallelism = static_cast<int>(v["subtasks"].Size());
    for (auto& s : v["subtasks"].GetArray()) {
      if (!s.IsObject()) return bad("node '" + n.name + "': a subtask is not an object");
      n.positions.push_back(s.HasMember("position") ? ToJson(s["position"]) : "null");
      n.metas.push_back(s.HasMember("meta") ? ToJson(s["meta"]) : "");
      if (s.HasMember("state") && s["state"].IsString()) {
        std::string file = s["state"].GetString();
        if (!IsSafeRelativePath(file)) return bad("unsafe state path '" + file + "'");
        n.state_files.push_back(std::move(file));
      }
    }
    info.nodes.push_back(std::move(n));
  }
  return info;
}

std::vector<NodeCheck> CheckSnapshot(const SnapshotInfo& info, const PipelineSpec& spec) {
  std::vector<NodeCheck> out;
  auto check = [&](const NodeSpec& node) {
    NodeCheck c;
    c.name = node.name;
    c.role = node.role;
    const SnapshotNode* old = info.Find(node.name);
    std::string fingerprint = node.config ? node.config->StateFingerprint() : "";
    bool stateful_now = !fingerprint.empty();
    if (old == nullptr || (!old->has_state() && !stateful_now)) {
      c.verdict = NodeCheck::Verdict::kNew;
      c.detail = old == nullptr ? "not in the snapshot" : "no state";
      // A stateless node that is in the snapshot without state is simply restored (nothing).
      if (old != nullptr) c.verdict = NodeCheck::Verdict::kRestored;
    } else if (old->role != node.role || old->type != node.type) {
      c.verdict = NodeCheck::Verdict::kIncompatible;
      c.detail = "was a " + std::string(NodeRoleName(old->role)) + " of type '" + old->type +
                 "', is a " + NodeRoleName(node.role) + " of type '" + node.type + "'";
    } else if (old->fingerprint != fingerprint) {
      c.verdict = NodeCheck::Verdict::kIncompatible;
      c.detail =
          "its state's meaning changed (was: " + old->fingerprint + "; now: " + fingerprint + ")";
    } else if (!old->has_state()) {
      c.verdict = NodeCheck::Verdict::kNew;
      c.detail = "no state in the snapshot";
    } else {
      c.verdict = NodeCheck::Verdict::kRestored;
      c.detail = std::to_string(old->state_files.size()) + " state file(s) from parallelism " +
                 std::to_string(old->parallelism);
      if (node.role == NodeRole::kSource) c.detail = "position";
      if (node.role == NodeRole::kSink) c.detail = "committed output";
    }
    out.push_back(std::move(c));
  };
  for (const auto& n : spec.sources) check(n);
  for (const auto& n : spec.steps) check(n);
  for (const auto& n : spec.sinks) check(n);
  for (const auto& old : info.nodes) {
    if (FindNode(spec, old.name) != nullptr || !old.has_state()) continue;
    NodeCheck c;
    c.name = old.name;
    c.role = old.role;
    c.verdict = NodeCheck::Verdict::kDropped;
    c.detail = "the pipeline has no " + std::string(NodeRoleName(old.role)) + " '" + old.name + "'";
    out.push_back(std::move(c));
  }
  return out;
}

RestoreContext RestoreData::Context(const std::string& node, int subtask, int parallelism) const {
  RestoreContext ctx;
  ctx.checkpoint_id = info.id;
  ctx.savepoint = info.savepoint;
  auto it = state.find(node);
  if (it != state.end()) ctx.state = it->second.get();
  const SnapshotNode* old = info.Find(node);
  // Per-subtask meta (sinks) carries over only at the same parallelism (sinks have one).
  if (old != nullptr && parallelism == old->parallelism && subtask < old->parallelism) {
    ctx.meta = old->metas[subtask];
  }
  return ctx;
}

std::string RestoreData::Positions(const std::string& node) const {
  const SnapshotNode* old = info.Find(node);
  if (old == nullptr || old->role != NodeRole::kSource) return "";
  std::string out = "[";
  for (size_t i = 0; i < old->positions.size(); ++i) {
    if (i) out += ",";
    out += old->positions[i];
  }
  return out + "]";
}

Result<std::unique_ptr<RestoreData>> LoadRestore(const std::string& path, const PipelineSpec& spec,
                                                 bool allow_non_restored_state) {
  auto data = std::make_unique<RestoreData>();
  SR_ASSIGN_OR_RETURN(data->info, ReadSnapshotInfo(path));
  if (data->info.max_parallelism != spec.max_parallelism) {
    return Status::PipelineError(path + " was written with max_parallelism " +
                                 std::to_string(data->info.max_parallelism) +
                                 ", the pipeline has " + std::to_string(spec.max_parallelism));
  }
  for (const NodeCheck& c : CheckSnapshot(data->info, spec)) {
    if (c.verdict == NodeCheck::Verdict::kIncompatible) {
      return Status::PipelineError("cannot restore " + std::string(NodeRoleName(c.role)) + " '" +
                                   c.name + "' from " + path + ": " + c.detail);
    }
    if (c.verdict == NodeCheck::Verdict::kDropped && !allow_non_restored_state) {
      return Status::PipelineError(path + " has state for " + NodeRoleName(c.role) + " '" + c.name +
                                   "', which the pipeline no longer has; run with "
                                   "--allow-non-restored-state to drop it");
    }
  }
  for (const auto& old : data->info.nodes) {
    if (old.state_files.empty() || FindNode(spec, old.name) == nullptr) continue;
    std::vector<StateFileReader::File> files;
    for (const auto& rel : old.state_files) {
      SR_ASSIGN_OR_RETURN(std::string bytes, ReadWholeFile(path + "/" + rel));
      files.push_back({path + "/" + rel, std::move(bytes)});
    }
    data->state[old.name] =
        std::make_unique<StateFileReader>(std::move(files), spec.max_parallelism);
  }
  return data;
}

}  // namespace streamrun
