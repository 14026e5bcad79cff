// MANIFEST.json reading and writing (see engine/checkpoint_manifest.h, docs/state-format.md).
#include "engine/checkpoint_manifest.h"

#include <rapidjson/document.h>
#include <rapidjson/error/en.h>
#include <rapidjson/prettywriter.h>
#include <rapidjson/stringbuffer.h>

#include <chrono>
#include <cstdio>
#include <ctime>

namespace streamrun {
namespace {

bool IsLowerHex(std::string_view s) {
  for (char c : s) {
    if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) return false;
  }
  return true;
}

std::string FormatUtc(int64_t epoch_ms, const char* date_format, const char* ms_format) {
  std::time_t secs = static_cast<std::time_t>(epoch_ms / 1000);
  int millis = static_cast<int>(epoch_ms % 1000);
  if (millis < 0) {
    millis += 1000;
    --secs;
  }
  std::tm tm{};
  gmtime_r(&secs, &tm);
  char date[32];
  std::strftime(date, sizeof date, date_format, &tm);
  char out[48];
  std::snprintf(out, sizeof out, ms_format, date, millis);
  return out;
}

}  // namespace

const char* KindName(SnapshotKind kind) {
  return kind == SnapshotKind::kSavepoint ? "savepoint" : "checkpoint";
}

std::string FormatUtcMillis(int64_t epoch_ms) {
  return FormatUtc(epoch_ms, "%Y-%m-%dT%H:%M:%S", "%s.%03dZ");
}
std::string FormatUtcMillisCompact(int64_t epoch_ms) {
  return FormatUtc(epoch_ms, "%Y%m%dT%H%M%S", "%s.%03dZ");
}
int64_t NowMillis() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

bool IsSafeRelativePath(std::string_view path) {
  if (path.empty() || path.front() == '/') return false;
  while (true) {
    size_t slash = path.find('/');
    std::string_view name = path.substr(0, slash);
    if (name.empty() || name == "." || name == "..") return false;
    if (name.find('\0') != std::string_view::npos) return false;
    if (slash == std::string_view::npos) return true;
    path = path.substr(slash + 1);
  }
}

std::string SerializeManifest(const Manifest& m) {
  rapidjson::StringBuffer buffer;
  rapidjson::PrettyWriter<rapidjson::StringBuffer> w(buffer);
  w.SetIndent(' ', 2);
  w.StartObject();
  w.Key("format");
  w.String(kManifestFormat);
  w.Key("version");
  w.Int(m.version);
  w.Key("kind");
  w.String(KindName(m.kind));
  w.Key("id");
  w.Int64(m.id);
  w.Key("created_at");
  w.String(FormatUtcMillis(m.created_at_ms).c_str());
  w.Key("created_at_ms");
  w.Int64(m.created_at_ms);
  w.Key("checksum");
  w.String("xxh3-128");
  w.Key("files");
  w.StartArray();
  for (const ManifestFile& f : m.files) {
    w.StartObject();
    w.Key("path");
    w.String(f.path.data(), static_cast<rapidjson::SizeType>(f.path.size()));
    w.Key("size");
    w.Uint64(f.size);
    w.Key("xxh3_128");
    w.String(f.xxh3_128.c_str());
    w.EndObject();
  }
  w.EndArray();
  w.Key("metadata");
  w.RawValue(m.metadata_json.data(), m.metadata_json.size(), rapidjson::kObjectType);
  w.EndObject();
  std::string out(buffer.GetString(), buffer.GetSize());
  out.push_back('\n');
  return out;
}

Result<Manifest> ParseManifest(std::string_view json) {
  rapidjson::Document doc;
  doc.Parse(json.data(), json.size());
  if (doc.HasParseError()) {
    return Status::DataError(std::string("manifest is not JSON: ") +
                             rapidjson::GetParseError_En(doc.GetParseError()) + " at byte " +
                             std::to_string(doc.GetErrorOffset()));
  }
  if (!doc.IsObject()) return Status::DataError("manifest is not a JSON object");
  auto field = [&](const char* name) -> const rapidjson::Value* {
    auto it = doc.FindMember(name);
    return it == doc.MemberEnd() ? nullptr : &it->value;
  };
  const rapidjson::Value* format = field("format");
  if (format == nullptr || !format->IsString() ||
      std::string_view(format->GetString()) != kManifestFormat) {
    return Status::DataError(std::string("manifest: \"format\" is not \"") + kManifestFormat +
                             "\"");
  }
  Manifest m;
  const rapidjson::Value* version = field("version");
  if (version == nullptr || !version->IsInt() || version->GetInt() < 1) {
    return Status::DataError("manifest: \"version\" is missing or not a positive integer");
  }
  m.version = version->GetInt();
  if (m.version > kManifestVersion) {
    return Status::DataError("manifest version " + std::to_string(m.version) +
                             " was written by a newer streamrun (this one reads up to " +
                             std::to_string(kManifestVersion) + ")");
  }
  const rapidjson::Value* kind = field("kind");
  if (kind == nullptr || !kind->IsString())
    return Status::DataError("manifest: \"kind\" is missing");
  std::string_view kind_name = kind->GetString();
  if (kind_name == "checkpoint") {
    m.kind = SnapshotKind::kCheckpoint;
  } else if (kind_name == "savepoint") {
    m.kind = SnapshotKind::kSavepoint;
  } else {
    return Status::DataError("manifest: unknown \"kind\": " + std::string(kind_name));
  }
  const rapidjson::Value* id = field("id");
  if (id == nullptr || !id->IsInt64()) return Status::DataError("manifest: \"id\" is missing");
  m.id = id->GetInt64();
  const rapidjson::Value* created = field("created_at_ms");
  if (created == nullptr || !created->IsInt64()) {
    return Status::DataError("manifest: \"created_at_ms\" is missing");
  }
  m.created_at_ms = created->GetInt64();
  const rapidjson::Value* checksum = field("checksum");
  if (checksum == nullptr || !checksum->IsString() ||
      std::string_view(checksum->GetString()) != "xxh3-128") {
    return Status::DataError("manifest: \"checksum\" is not \"xxh3-128\"");
  }
  const rapidjson::Value* files = field("files");
  if (files == nullptr || !files->IsArray())
    return Status::DataError("manifest: \"files\" is missing");
  for (const auto& f : files->GetArray()) {
    if (!f.IsObject() || !f.HasMember("path") || !f["path"].IsString() || !f.HasMember("size") ||
        !f["size"].IsUint64() || !f.HasMember("xxh3_128") || !f["xxh3_128"].IsString()) {
      return Status::DataError("manifest: an entry of \"files\" lacks path, size or xxh3_128");
    }
    ManifestFile file;
    file.path.assign(f["path"].GetString(), f["path"].GetStringLength());
    file.size = f["size"].GetUint64();
    file.xxh3_128 = f["xxh3_128"].GetString();
    if (!IsSafeRelativePath(file.path) || file.path == kManifestName) {
      return Status::DataError("manifest: file path \"" + file.path + "\" is not allowed");
    }
    if (file.xxh3_128.size() != 32 || !IsLowerHex(file.xxh3_128)) {
      return Status::DataError("manifest: checksum of " + file.path + " is not 32 hex digits");
    }
    m.files.push_back(std::move(file));
  }
  if (const rapidjson::Value* metadata = field("metadata"); metadata != nullptr) {
    if (!metadata->IsObject()) return Status::DataError("manifest: \"metadata\" is not an object");
    rapidjson::StringBuffer buffer;
    rapidjson::Writer<rapidjson::StringBuffer> w(buffer);
    metadata->Accept(w);
    m.metadata_json.assign(buffer.GetString(), buffer.GetSize());
  }
  return m;
}

}  // namespace streamrun
