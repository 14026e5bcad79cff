// MANIFEST.json: the table of contents of a checkpoint or savepoint, written last.
//
// A checkpoint directory is complete only when its MANIFEST.json exists and every file the
// manifest lists has the size and the XXH3-128 checksum written there. docs/state-format.md
// describes the format; this header is its only reader and writer.
//
// Thread safety: plain functions and values; no shared state.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "engine/status.h"

namespace streamrun {

// The manifest format this build writes. It reads every version up to this one, and refuses a
// newer one ("written by a newer streamrun"). Do not change: on disk.
inline constexpr int kManifestVersion = 1;
inline constexpr const char* kManifestFormat = "streamrun-checkpoint";
inline constexpr const char* kManifestName = "MANIFEST.json";

// Do not change the spellings (KindName): on disk.
enum class SnapshotKind { kCheckpoint, kSavepoint };
const char* KindName(SnapshotKind kind);

struct ManifestFile {
  std::string path;      // relative to the checkpoint directory, '/'-separated, no "." or ".."
  uint64_t size = 0;     // bytes
  std::string xxh3_128;  // 32 lower-case hex digits, XXH128 canonical (big-endian) form
};

struct Manifest {
  int version = kManifestVersion;
  SnapshotKind kind = SnapshotKind::kCheckpoint;
  int64_t id = 0;             // the checkpoint id (a savepoint: the id of the barrier it took)
  int64_t created_at_ms = 0;  // epoch milliseconds, UTC
  std::vector<ManifestFile> files;
  std::string metadata_json = "{}";  // free-form JSON object from the caller (source positions...)
};

std::string SerializeManifest(const Manifest& manifest);
// Parses and checks the structure (not the files). Errors name what is wrong.
Result<Manifest> ParseManifest(std::string_view json);

// A relative path a manifest may hold: non-empty '/'-separated names, none "", "." or "..".
bool IsSafeRelativePath(std::string_view path);

// "2025-01-02T03:04:05.678Z" for epoch milliseconds.
std::string FormatUtcMillis(int64_t epoch_ms);
// "20250102T030405.678Z": the same, fit for a file name (no ':').
std::string FormatUtcMillisCompact(int64_t epoch_ms);
int64_t NowMillis();

}  // namespace streamrun
