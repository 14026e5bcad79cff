// State files (see state_file.h).
#include "engine/state_file.h"

#include "engine/byte_codec.h"

namespace streamrun {
namespace {

constexpr char kMagic[4] = {'S', 'R', 'K', 'S'};
constexpr uint16_t kEndMark = 0xFFFF;

void PutU16(std::string& out, uint16_t x) {
  out.push_back(static_cast<char>(x >> 8));
  out.push_back(static_cast<char>(x & 0xFF));
}

}  // namespace

StateFileBuilder::StateFileBuilder(int max_parallelism) : max_parallelism_(max_parallelism) {
  out_.append(kMagic, sizeof kMagic);
  PutU8(out_, kStateFileVersion);
  PutU16(out_, static_cast<uint16_t>(max_parallelism_));
}

void StateFileBuilder::Add(int key_group, std::string_view key, std::string_view ns,
                           std::string_view value) {
  PutU16(out_, static_cast<uint16_t>(key_group));
  PutBytes(out_, key);
  PutBytes(out_, ns);
  PutBytes(out_, value);
  ++entries_;
}

std::string StateFileBuilder::TakeSome() {
  std::string some = std::move(out_);
  out_.clear();
  return some;
}

std::string StateFileBuilder::Finish() {
  PutU16(out_, kEndMark);
  std::string done = std::move(out_);
  out_.clear();
  out_.append(kMagic, sizeof kMagic);
  PutU8(out_, kStateFileVersion);
  PutU16(out_, static_cast<uint16_t>(max_parallelism_));
  entries_ = 0;
  return done;
}

Status ReadStateFile(std::string_view bytes, std::string_view name, int max_parallelism,
                     int first_key_group, int last_key_group,
                     const KeyedStateStore::Visitor& visit) {
  auto damaged = [&](std::string_view why) {
    return Status::RuntimeError("state file " + std::string(name) + ": " + std::string(why));
  };
  if (bytes.size() < 7 || bytes.substr(0, 4) != std::string_view(kMagic, 4)) {
    return damaged("not a streamrun state file");
  }
  auto version = static_cast<uint8_t>(bytes[4]);
  if (version > kStateFileVersion) {
    return damaged("version " + std::to_string(version) + " was written by a newer streamrun");
  }
  int file_maxp =
      (static_cast<unsigned char>(bytes[5]) << 8) | static_cast<unsigned char>(bytes[6]);
  if (file_maxp != max_parallelism) {
    return damaged("written with max_parallelism " + std::to_string(file_maxp) + ", the job has " +
                   std::to_string(max_parallelism) + " (key groups cannot be remapped)");
  }
  size_t pos = 7;
  for (;;) {
    if (pos + 2 > bytes.size()) return damaged("truncated (no end mark)");
    int kg =
        (static_cast<unsigned char>(bytes[pos]) << 8) | static_cast<unsigned char>(bytes[pos + 1]);
    pos += 2;
    if (kg == kEndMark) {
      if (pos != bytes.size()) return damaged("bytes after the end mark");
      return Status::Ok();
    }
    if (kg >= max_parallelism) return damaged("key group " + std::to_string(kg) + " out of range");
    ByteReader in(bytes.substr(pos));
    std::string_view key, ns, value;
    if (!in.GetBytes(&key) || !in.GetBytes(&ns) || !in.GetBytes(&value)) {
      return damaged("truncated entry");
    }
    pos = static_cast<size_t>(value.data() + value.size() - bytes.data());
    if (kg < first_key_group || kg > last_key_group) continue;
    SR_RETURN_IF_ERROR(visit(kg, key, ns, value));
  }
}

Status StateFileReader::Put(int, std::string_view, std::string_view, std::string_view) {
  return Status::RuntimeError("state files are read-only");
}
Status StateFileReader::Get(int, std::string_view, std::string_view, std::string*, bool*) const {
  return Status::RuntimeError("state files are read-only");
}
Status StateFileReader::Delete(int, std::string_view, std::string_view) {
  return Status::RuntimeError("state files are read-only");
}
Status StateFileReader::Clear() { return Status::RuntimeError("state files are read-only"); }

Status StateFileReader::ForEach(int first_key_group, int last_key_group,
                                const Visitor& visit) const {
  for (const File& f : files_) {
    SR_RETURN_IF_ERROR(
        ReadStateFile(f.bytes, f.name, max_parallelism_, first_key_group, last_key_group, visit));
  }
  return Status::Ok();
}

}  // namespace streamrun
