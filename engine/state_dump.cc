// Snapshots as JSON lines (see state_dump.h).
#include "engine/state_dump.h"

#include <rapidjson/document.h>
#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

#include <algorithm>
#include <vector>

#include "engine/key.h"
#include "engine/restore.h"
#include "engine/spelling.h"
#include "engine/state_dir.h"
#include "engine/state_file.h"
#include "engine/value.h"
#include "operators/registry.h"

namespace streamrun {
namespace {

// The text a key value is compared by: a string's characters, anything else's JSON.
std::string ValueText(const Value& v) {
  if (v.kind() == Value::Kind::kString) return std::string(v.as_string());
  std::string out;
  AppendJson(out, v);
  return out;
}

std::string JsonText(const rapidjson::Value& v) {
  if (v.IsString()) return std::string(v.GetString(), v.GetStringLength());
  // Integral numbers as integers: keys store 1.0 as 1 (engine/key.h).
  if (v.IsDouble() && v.GetDouble() == static_cast<double>(static_cast<int64_t>(v.GetDouble()))) {
    return std::to_string(static_cast<int64_t>(v.GetDouble()));
  }
  rapidjson::StringBuffer sb;
  rapidjson::Writer<rapidjson::StringBuffer> w(sb);
  v.Accept(w);
  return sb.GetString();
}

// --key as the texts of the key's fields (see StateDumpOptions::key).
std::vector<std::string> ParseKeyFilter(const std::string& text) {
  rapidjson::Document doc;
  doc.Parse(text.data(), text.size());
  if (doc.HasParseError()) return {text};  // a bare word: u1
  if (!doc.IsArray()) return {JsonText(doc)};
  std::vector<std::string> out;
  for (const auto& v : doc.GetArray()) out.push_back(JsonText(v));
  return out;
}

std::string Hex(std::string_view bytes) {
  static const char* digits = "0123456789abcdef";
  std::string out;
  for (unsigned char c : bytes) {
    out += digits[c >> 4];
    out += digits[c & 15];
  }
  return out;
}

struct Entry {
  int key_group;
  std::string key;
  std::string ns;
  std::string line;
};

// The keyed-state entries of one step, sorted, as lines.
Status DumpStep(const SnapshotInfo& info, const SnapshotNode& node,
                const std::vector<std::string>& key_filter,
                const std::function<void(std::string_view)>& line) {
  const OperatorType* type = FindOperatorType(NodeRole::kStep, node.type);
  StateDescriber describe = type != nullptr ? type->describe_state : nullptr;
  std::vector<Entry> entries;
  for (const std::string& rel : node.state_files) {
    const std::string file = info.path + "/" + rel;
    SR_ASSIGN_OR_RETURN(std::string bytes, ReadWholeFile(file));
    std::vector<Value> values;
    SR_RETURN_IF_ERROR(ReadStateFile(
        bytes, file, info.max_parallelism, 0, info.max_parallelism - 1,
        [&](int key_group, std::string_view key, std::string_view ns,
            std::string_view value) -> Status {
          auto damaged = [&](const std::string& why) {
            return Status::DataError("state file " + file + ": step '" + node.name + "': " + why);
          };
          values.clear();
          for (size_t pos = 0; pos < key.size();) {
            Value v;
            if (!DecodeKeyValue(key, &pos, &v)) return damaged("a key that cannot be decoded");
            values.push_back(v);
          }
          if (!key_filter.empty()) {
            if (values.size() != key_filter.size()) return Status::Ok();
            for (size_t i = 0; i < values.size(); ++i) {
              if (ValueText(values[i]) != key_filter[i]) return Status::Ok();
            }
          }
          std::string out = "{\"step\":";
          AppendJsonString(out, node.name);
          out += ",\"key_group\":" + std::to_string(key_group) + ",\"key\":[";
          for (size_t i = 0; i < values.size(); ++i) {
            if (i) out += ',';
            AppendJson(out, values[i]);
          }
          out += "],";
          if (describe != nullptr) {
            Status st = describe(ns, value, node.schema_json, &out);
            if (!st.ok()) return damaged(st.message());
          } else {
            out += "\"namespace_hex\":\"" + Hex(ns) + "\",\"value_hex\":\"" + Hex(value) + "\"";
          }
          out += '}';
          entries.push_back({key_group, std::string(key), std::string(ns), std::move(out)});
          return Status::Ok();
        }));
  }
  std::sort(entries.begin(), entries.end(), [](const Entry& a, const Entry& b) {
    if (a.key_group != b.key_group) return a.key_group < b.key_group;
    if (a.key != b.key) return a.key < b.key;
    return a.ns < b.ns;
  });
  for (const Entry& e : entries) line(e.line);
  return Status::Ok();
}

// {"source":N,"subtask":S,"position":P} or {"sink":N,"subtask":S,META...}.
std::string NodeLine(const char* role, const std::string& name, size_t subtask,
                     std::string_view members) {
  std::string out = "{\"";
  out += role;
  out += "\":";
  AppendJsonString(out, name);
  out += ",\"subtask\":" + std::to_string(subtask);
  if (!members.empty()) {
    out += ',';
    out += members;
  }
  return out + "}";
}

}  // namespace

Status DumpState(const std::string& path, const StateDumpOptions& options,
                 const std::function<void(std::string_view line)>& line) {
  VerifyResult verified = VerifyCheckpoint(path);
  if (!verified.ok()) return verified.status;
  SR_ASSIGN_OR_RETURN(SnapshotInfo info, ReadSnapshotInfo(path));
  if (!options.node.empty() && info.Find(options.node) == nullptr) {
    std::vector<std::string> names;
    for (const auto& n : info.nodes) names.push_back(n.name);
    std::string list;
    for (const auto& n : names) list += (list.empty() ? "" : ", ") + n;
    return Status::PipelineError("the snapshot has no step '" + options.node + "'" +
                                 DidYouMean(options.node, names) + " (it has: " + list + ")");
  }
  std::vector<std::string> key_filter;
  if (!options.key.empty()) key_filter = ParseKeyFilter(options.key);
  for (const SnapshotNode& node : info.nodes) {
    if (!options.node.empty() && node.name != options.node) continue;
    if (!node.state_files.empty()) SR_RETURN_IF_ERROR(DumpStep(info, node, key_filter, line));
    if (!key_filter.empty()) continue;  // positions and sink data have no key
    for (size_t s = 0; s < node.positions.size(); ++s) {
      if (node.role != NodeRole::kSource) break;
      line(NodeLine("source", node.name, s, "\"position\":" + node.positions[s]));
    }
    for (size_t s = 0; s < node.metas.size(); ++s) {
      const std::string& meta = node.metas[s];
      if (meta.empty()) continue;
      const char* role = node.role == NodeRole::kSink ? "sink" : "step";
      // The meta object's members go into the line; anything else under "meta".
      if (meta.size() >= 2 && meta.front() == '{' && meta.back() == '}') {
        line(NodeLine(role, node.name, s, std::string_view(meta).substr(1, meta.size() - 2)));
      } else {
        line(NodeLine(role, node.name, s, "\"meta\":" + meta));
      }
    }
  }
  return Status::Ok();
}

}  // namespace streamrun
