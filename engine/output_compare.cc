// Multiset comparison of output lines (see output_compare.h), canonical JSON through RapidJSON.
#include "engine/output_compare.h"

#include <rapidjson/document.h>
#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

#include <algorithm>
#include <map>

namespace streamrun {
namespace {

// Deeper documents compare as text: the writer below recurses once per level.
constexpr int kMaxCanonicalDepth = 256;

using Writer = rapidjson::Writer<rapidjson::StringBuffer>;

bool WriteCanonical(const rapidjson::Value& v, Writer& w, int depth) {
  if (depth > kMaxCanonicalDepth) return false;
  if (v.IsObject()) {
    std::vector<const rapidjson::Value::Member*> members;
    for (const auto& m : v.GetObject()) members.push_back(&m);
    std::stable_sort(members.begin(), members.end(), [](const auto* a, const auto* b) {
      return std::string_view(a->name.GetString(), a->name.GetStringLength()) <
             std::string_view(b->name.GetString(), b->name.GetStringLength());
    });
    w.StartObject();
    for (const auto* m : members) {
      w.Key(m->name.GetString(), m->name.GetStringLength());
      if (!WriteCanonical(m->value, w, depth + 1)) return false;
    }
    w.EndObject();
    return true;
  }
  if (v.IsArray()) {
    w.StartArray();
    for (const auto& e : v.GetArray()) {
      if (!WriteCanonical(e, w, depth + 1)) return false;
    }
    w.EndArray();
    return true;
  }
  v.Accept(w);  // scalars: integers as integers, doubles in shortest form ("2.0")
  return true;
}

}  // namespace

std::vector<std::string> SplitLines(std::string_view text) {
  std::vector<std::string> lines;
  while (!text.empty()) {
    size_t nl = text.find('\n');
    std::string_view line = text.substr(0, nl);
    text = nl == std::string_view::npos ? std::string_view() : text.substr(nl + 1);
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    if (!line.empty()) lines.emplace_back(line);
  }
  return lines;
}

std::string CanonicalLine(std::string_view line) {
  rapidjson::Document doc;
  doc.Parse<rapidjson::kParseFullPrecisionFlag | rapidjson::kParseValidateEncodingFlag |
            rapidjson::kParseIterativeFlag>(line.data(), line.size());
  if (doc.HasParseError()) return std::string(line);
  rapidjson::StringBuffer buf;
  Writer w(buf);
  if (!WriteCanonical(doc, w, 0)) return std::string(line);
  return std::string(buf.GetString(), buf.GetSize());
}

LineDiff CompareLineMultisets(const std::vector<std::string>& expected,
                              const std::vector<std::string>& actual) {
  // Canonical form -> the expected lines of that form not matched yet.
  std::map<std::string, std::vector<const std::string*>> open;
  for (const auto& line : expected) open[CanonicalLine(line)].push_back(&line);
  LineDiff diff;
  for (const auto& line : actual) {
    auto it = open.find(CanonicalLine(line));
    if (it == open.end() || it->second.empty()) {
      diff.unexpected.push_back(line);
    } else {
      it->second.pop_back();
    }
  }
  for (const auto& [canonical, lines] : open) {
    for (const std::string* line : lines) diff.missing.push_back(*line);
  }
  std::sort(diff.missing.begin(), diff.missing.end());
  std::sort(diff.unexpected.begin(), diff.unexpected.end());
  return diff;
}

}  // namespace streamrun
