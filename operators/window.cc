// The `window` step: its settings (MakeWindow) and its NodeConfig. The operator itself is in
// operators/window_operator.h.
#include <algorithm>
#include <set>

#include "operators/factories.h"
#include "operators/window_operator.h"

namespace streamrun {
namespace {

std::string Trim(std::string_view s) {
  size_t a = 0, b = s.size();
  while (a < b && (s[a] == ' ' || s[a] == '\t')) ++a;
  while (b > a && (s[b - 1] == ' ' || s[b - 1] == '\t')) --b;
  return std::string(s.substr(a, b - a));
}

struct AggregateSetting {
  WindowAggregate aggregate;
  std::string argument;  // expression text; empty for count()
};

class WindowConfig : public NodeConfig {
 public:
  WindowOptions options;
  std::vector<std::string> arguments;  // per aggregate; empty for count()
  std::vector<FieldPath> read_fields;  // key paths, then aggregate and trigger fields
  std::string fire_on;                 // empty: no trigger

  std::vector<FieldPath> InputFields(const std::vector<FieldPath>&) const override {
    // Downstream reads the results, which the window makes itself.
    return read_fields;
  }
  bool keyed() const override { return true; }
  std::vector<FieldPath> key_fields() const override { return options.key_paths; }
  std::vector<std::string> side_outputs() const override { return {"late"}; }
  // Counting into tumbling or sliding windows commutes, and a record late by its own watermark
  // is late in any order (see WindowOperator::Process). Sessions merge, a trigger or allowed
  // lateness emits per record, and min, max, first, last, sum and avg may keep one of two
  // equal-comparing values (1 and 1.0) or round differently, by arrival.
  bool order_free() const override {
    if (options.window.type == WindowType::kSession || !fire_on.empty() ||
        options.allowed_lateness_ms != 0) {
      return false;
    }
    for (const auto& a : options.aggregates) {
      if (a.kind != AggKind::kCount && a.kind != AggKind::kCountIf &&
          a.kind != AggKind::kCountDistinct) {
        return false;
      }
    }
    return true;
  }

  Result<std::unique_ptr<Operator>> CreateOperator() const override {
    std::vector<std::unique_ptr<Expr>> exprs;
    for (const std::string& text : arguments) {
      if (text.empty()) {
        exprs.push_back(nullptr);
        continue;
      }
      ExprParseError error;
      auto e = ParseExpr(text, &error);
      if (!e) return Status::RuntimeError("cannot parse '" + text + "': " + error.message);
      exprs.push_back(std::move(e));
    }
    std::unique_ptr<Expr> trigger;
    if (!fire_on.empty()) {
      ExprParseError error;
      trigger = ParseExpr(fire_on, &error);
      if (!trigger) return Status::RuntimeError("cannot parse '" + fire_on + "': " + error.message);
    }
    return std::unique_ptr<Operator>(
        std::make_unique<WindowOperator>(options, std::move(exprs), std::move(trigger)));
  }

  std::string StateFingerprint() const override {
    // What the stored windows mean: the keys, the window and the aggregates' kinds in order.
    // Output names and allowed_lateness may change across a restore.
    std::string s = "key_by=";
    for (size_t i = 0; i < options.key_paths.size(); ++i) {
      s += (i ? "," : "") + FieldPathToString(options.key_paths[i]);
    }
    const WindowSpec& w = options.window;
    switch (w.type) {
      case WindowType::kTumbling:
        s += ";tumbling=" + std::to_string(w.size);
        break;
      case WindowType::kSliding:
        s += ";sliding=" + std::to_string(w.size) + "/" + std::to_string(w.slide);
        break;
      case WindowType::kSession:
        s += ";session=" + std::to_string(w.gap);
        break;
    }
    s += ";aggregates=";
    for (size_t i = 0; i < options.aggregates.size(); ++i) {
      s += (i ? "," : "") + std::to_string(static_cast<int>(options.aggregates[i].kind));
    }
    return s;
  }

  std::string StateSchemaJson() const override {
    std::string s = "{\"key_by\":[";
    for (size_t i = 0; i < options.key_names.size(); ++i) {
      if (i) s += ',';
      AppendJsonString(s, options.key_names[i]);
    }
    s += "],\"aggregates\":[";
    for (size_t i = 0; i < options.aggregates.size(); ++i) {
      if (i) s += ',';
      AppendJsonString(s, options.aggregates[i].name);
    }
    return s + "]}";
  }

  std::string Describe() const override {
    std::string s = "key_by: ";
    for (size_t i = 0; i < options.key_names.size(); ++i) {
      s += (i ? ", " : "") + options.key_names[i];
    }
    const WindowSpec& w = options.window;
    switch (w.type) {
      case WindowType::kTumbling:
        s += "; tumbling " + std::to_string(w.size) + "ms";
        break;
      case WindowType::kSliding:
        s += "; sliding " + std::to_string(w.size) + "ms every " + std::to_string(w.slide) + "ms";
        break;
      case WindowType::kSession:
        s += "; session gap " + std::to_string(w.gap) + "ms";
        break;
    }
    return s;
  }

  void AddReadFields(const std::vector<FieldPath>& fields) {
    for (const FieldPath& f : fields) {
      if (std::find(read_fields.begin(), read_fields.end(), f) == read_fields.end()) {
        read_fields.push_back(f);
      }
    }
  }
};

// A located error at byte `offset` of the scalar `value_of_key` (a plain or quoted YAML scalar on
// one line, as aggregate calls are).
Status ErrorInScalar(const ConfigReader& reader, std::string_view key, size_t offset,
                     std::string_view message) {
  SourceLocation loc = reader.LocationOf(key);
  YAML::Node node = reader.node()[std::string(key)];
  // yaml-cpp tags quoted scalars "!" and plain ones "?": a quote adds one column.
  if (node.Tag() == "!") loc.column += 1;
  loc.column += static_cast<int>(offset);
  return Status::PipelineError(FormatAt(loc, message));
}

Status ReadWindowSpec(const ConfigReader& config, WindowSpec* spec) {
  SR_ASSIGN_OR_RETURN(ConfigReader w, config.Child("window"));
  SR_ASSIGN_OR_RETURN(std::string type,
                      w.Enum("type", {"tumbling", "sliding", "session"}, std::nullopt));
  auto positive = [&](std::string_view key, int64_t* out) -> Status {
    SR_ASSIGN_OR_RETURN(int64_t ms, w.DurationMs(key, std::nullopt));
    if (ms <= 0) return w.ErrorAt(key, std::string(key) + " must be more than 0");
    *out = ms;
    return Status::Ok();
  };
  if (type == "tumbling") {
    SR_RETURN_IF_ERROR(w.CheckKeys({"type", "size"}));
    spec->type = WindowType::kTumbling;
    SR_RETURN_IF_ERROR(positive("size", &spec->size));
  } else if (type == "sliding") {
    SR_RETURN_IF_ERROR(w.CheckKeys({"type", "size", "slide"}));
    spec->type = WindowType::kSliding;
    SR_RETURN_IF_ERROR(positive("size", &spec->size));
    SR_RETURN_IF_ERROR(positive("slide", &spec->slide));
    if (spec->slide > spec->size) {
      return w.ErrorAt("slide",
                       "slide must not be larger than size (records would fall between "
                       "windows); use a tumbling window for slide = size");
    }
  } else {
    SR_RETURN_IF_ERROR(w.CheckKeys({"type", "gap"}));
    spec->type = WindowType::kSession;
    SR_RETURN_IF_ERROR(positive("gap", &spec->gap));
  }
  return Status::Ok();
}

}  // namespace

NodeConfigResult MakeWindow(const ConfigReader& config) {
  SR_RETURN_IF_ERROR(config.CheckKeys(
      {"type", "from", "key_by", "window", "aggregate", "allowed_lateness", "trigger"}));
  auto cfg = std::make_shared<WindowConfig>();
  WindowOptions& opt = cfg->options;

  // key_by: bare field paths.
  SR_ASSIGN_OR_RETURN(std::vector<std::string> keys, config.StringList("key_by"));
  if (keys.empty()) return config.ErrorAt("key_by", "key_by needs at least one field");
  for (const std::string& item : keys) {
    std::string text = Trim(item);
    ExprParseError error;
    auto e = ParseExpr(text, &error);
    if (!e || e->fields().size() != 1 || FieldPathToString(e->fields()[0]) != text) {
      return config.ErrorAt(
          "key_by", "key_by takes field paths such as userId or user.id, not '" + text + "'");
    }
    if (std::find(opt.key_paths.begin(), opt.key_paths.end(), e->fields()[0]) !=
        opt.key_paths.end()) {
      return config.ErrorAt("key_by", "key field '" + text + "' is listed twice");
    }
    opt.key_paths.push_back(e->fields()[0]);
    opt.key_names.push_back(text);
  }
  cfg->AddReadFields(opt.key_paths);

  SR_RETURN_IF_ERROR(ReadWindowSpec(config, &opt.window));

  // aggregate: name -> call.
  SR_ASSIGN_OR_RETURN(ConfigReader aggs, config.Child("aggregate"));
  std::vector<std::string> names = aggs.Keys();
  if (names.empty())
    return config.ErrorAt("aggregate", "aggregate needs at least one output field");
  for (const std::string& name : names) {
    if (name == "window_start" || name == "window_end" ||
        std::find(opt.key_names.begin(), opt.key_names.end(), name) != opt.key_names.end()) {
      return aggs.ErrorAt(name, "aggregate '" + name +
                                    "' has the name of a field the window "
                                    "already writes (a key field, window_start or window_end)");
    }
    SR_ASSIGN_OR_RETURN(std::string text, aggs.String(name));
    AggCall call;
    AggParseError perr;
    if (!ParseAggregateCall(text, &call, &perr)) {
      return ErrorInScalar(aggs, name, perr.offset, perr.message);
    }
    if (call.kind != AggKind::kCount) {
      ExprParseError error;
      auto e = ParseExpr(call.argument, &error);
      if (!e) return ErrorInScalar(aggs, name, call.argument_offset + error.offset, error.message);
      cfg->AddReadFields(e->fields());
    }
    opt.aggregates.push_back({name, call.kind});
    cfg->arguments.push_back(call.argument);
  }

  SR_ASSIGN_OR_RETURN(opt.allowed_lateness_ms, config.DurationMs("allowed_lateness", 0));
  if (opt.allowed_lateness_ms < 0) {
    return config.ErrorAt("allowed_lateness", "allowed_lateness cannot be negative");
  }

  if (config.Has("trigger")) {
    SR_ASSIGN_OR_RETURN(ConfigReader trigger, config.Child("trigger"));
    SR_RETURN_IF_ERROR(trigger.CheckKeys({"fire_on"}));
    SR_ASSIGN_OR_RETURN(std::unique_ptr<Expr> e, trigger.Expression("fire_on"));
    cfg->fire_on = e->text();
    cfg->AddReadFields(e->fields());
  }
  return std::shared_ptr<const NodeConfig>(std::move(cfg));
}

}  // namespace streamrun
