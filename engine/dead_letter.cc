// Dead letters (see dead_letter.h).
#include "engine/dead_letter.h"

namespace streamrun {

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
    if (p[0] == "source")
      slots[s] = Value::String(batch.arena.Copy(d.source));
    else if (p[0] == "step" && !d.step.empty())
      slots[s] = Value::String(batch.arena.Copy(d.step));
    else if (p[0] == "offset")
      slots[s] = Value::Int(static_cast<int64_t>(d.offset));
    else if (p[0] == "reason")
      slots[s] = Value::String(batch.arena.Copy(d.reason));
    else if (p[0] == "text")
      slots[s] = Value::String(batch.arena.Copy(d.text));
  }
}

}  // namespace streamrun
