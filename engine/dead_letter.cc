// Dead letters (see dead_letter.h).
#include "engine/dead_letter.h"

namespace streamrun {

std::string Base64(std::string_view bytes) {
  static const char kB64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::string out;
  out.reserve((bytes.size() + 2) / 3 * 4);
  auto byte = [&](size_t i) { return static_cast<uint32_t>(static_cast<uint8_t>(bytes[i])); };
  size_t i = 0;
  for (; i + 2 < bytes.size(); i += 3) {
    uint32_t v = (byte(i) << 16) | (byte(i + 1) << 8) | byte(i + 2);
    out += kB64[v >> 18];
    out += kB64[(v >> 12) & 63];
    out += kB64[(v >> 6) & 63];
    out += kB64[v & 63];
  }
  if (i + 1 == bytes.size()) {
    uint32_t v = byte(i) << 16;
    out += kB64[v >> 18];
    out += kB64[(v >> 12) & 63];
    out += "==";
  } else if (i + 2 == bytes.size()) {
    uint32_t v = (byte(i) << 16) | (byte(i + 1) << 8);
    out += kB64[v >> 18];
    out += kB64[(v >> 12) & 63];
    out += kB64[(v >> 6) & 63];
    out += '=';
  }
  return out;
}

bool Base64Decode(std::string_view text, std::string* bytes) {
  auto digit = [](char c) -> int {
    if (c >= 'A' && c <= 'Z') return c - 'A';
    if (c >= 'a' && c <= 'z') return c - 'a' + 26;
    if (c >= '0' && c <= '9') return c - '0' + 52;
    if (c == '+') return 62;
    if (c == '/') return 63;
    return -1;
  };
  bytes->clear();
  if (text.size() % 4 != 0) return false;
  bytes->reserve(text.size() / 4 * 3);
  for (size_t i = 0; i < text.size(); i += 4) {
    const bool last = i + 4 == text.size();
    // Padding only at the very end: "xx==" or "xxx=".
    const int pad = last ? (text[i + 3] == '=') + (text[i + 2] == '=' && text[i + 3] == '=') : 0;
    uint32_t v = 0;
    for (int k = 0; k < 4; ++k) {
      int d = k >= 4 - pad ? 0 : digit(text[i + k]);
      if (d < 0) return false;
      v = (v << 6) | static_cast<uint32_t>(d);
    }
    bytes->push_back(static_cast<char>(v >> 16));
    if (pad < 2) bytes->push_back(static_cast<char>((v >> 8) & 0xff));
    if (pad < 1) bytes->push_back(static_cast<char>(v & 0xff));
  }
  return true;
}

void AppendDeadLetter(Batch& batch, const Layout& layout, const DeadLetter& d) {
  std::string json = "{\"source\":";
  AppendJsonString(json, d.source);
  if (!d.step.empty()) {
    json += ",\"step\":";
    AppendJsonString(json, d.step);
  }
  json += ",\"offset\":" + std::to_string(d.offset) + ",\"reason\":";
  AppendJsonString(json, d.reason);
  json += ",\"text\":";
  AppendJsonString(json, d.text);
  if (!IsValidUtf8(d.text)) json += ",\"text_b64\":\"" + Base64(d.text) + "\"";
  json += "}";
  Row proto;
  proto.raw = batch.arena.Copy(json);
  proto.origin = d.origin;
  proto.offset = d.offset;
  size_t r = batch.AddRow(proto);
  Value* slots = batch.SlotsOf(r);
  for (size_t s = 0; s < layout.size(); ++s) {
    const FieldPath& p = layout[s];
    if (p.size() != 1) continue;
    if (p[0] == "source") slots[s] = Value::String(batch.arena.Copy(d.source));
    else if (p[0] == "step" && !d.step.empty()) slots[s] = Value::String(batch.arena.Copy(d.step));
    else if (p[0] == "offset") slots[s] = Value::Int(static_cast<int64_t>(d.offset));
    else if (p[0] == "reason") slots[s] = Value::String(batch.arena.Copy(d.reason));
    else if (p[0] == "text") slots[s] = Value::String(batch.arena.Copy(d.text));
  }
}

}  // namespace streamrun
