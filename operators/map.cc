// The `map` step: sets, drops or keeps top-level fields of each record.
//
// The output record is written anew: the members of the input object in their order (a set
// field keeps its place, dropped ones and those not kept are left out), then the new fields in
// the order `set` declares them. A text line is treated as the object {"line": LINE}. Set
// values that evaluate to missing leave the field out. This re-reads the record's bytes once
// (simdjson), which is the price of changing a record; records a map does not touch cost
// nothing.
#include <simdjson.h>

#include <memory>
#include <set>
#include <string>
#include <vector>

#include "operators/factories.h"

namespace streamrun {
namespace {

struct MapSettings {
  std::vector<std::string> set_names;
  std::vector<std::shared_ptr<const Expr>> set_exprs;
  std::set<std::string> drop;
  std::set<std::string> keep;  // empty: keep all

  bool Kept(const std::string& name) const {
    return drop.count(name) == 0 && (keep.empty() || keep.count(name) > 0);
  }
  int SetIndex(std::string_view name) const {
    for (size_t i = 0; i < set_names.size(); ++i) {
      if (set_names[i] == name) return static_cast<int>(i);
    }
    return -1;
  }
};

class MapConfig : public NodeConfig {
 public:
  explicit MapConfig(MapSettings s) : s_(std::move(s)) {}

  std::vector<FieldPath> InputFields(const std::vector<FieldPath>& output_fields) const override {
    std::vector<FieldPath> fields;
    for (const auto& e : s_.set_exprs)
      fields.insert(fields.end(), e->fields().begin(), e->fields().end());
    for (const auto& p : output_fields) {
      if (s_.SetIndex(p[0]) < 0 && s_.Kept(p[0])) fields.push_back(p);
    }
    return fields;
  }
  bool stateless() const override { return true; }
  std::string Describe() const override {
    std::string d;
    for (size_t i = 0; i < s_.set_names.size(); ++i) {
      d += (d.empty() ? "set " : ", ") + s_.set_names[i] + " = " + s_.set_exprs[i]->text();
    }
    if (!s_.drop.empty())
      d += std::string(d.empty() ? "" : "; ") + "drop " + std::to_string(s_.drop.size());
    if (!s_.keep.empty())
      d += std::string(d.empty() ? "" : "; ") + "keep " + std::to_string(s_.keep.size());
    return d;
  }
  Result<std::unique_ptr<Operator>> CreateOperator() const override;

 private:
  MapSettings s_;
};

class Map : public Operator {
 public:
  Map(const MapSettings& s, std::vector<std::unique_ptr<Expr>> exprs)
      : s_(s), exprs_(std::move(exprs)) {}

  Status Open(const OperatorContext& ctx) override {
    ctx_ = &ctx;
    for (auto& e : exprs_) SR_RETURN_IF_ERROR(e->Bind(ctx.input_layout));
    // Where each output slot comes from: a set value, an input slot, or nowhere.
    for (const FieldPath& p : ctx.output_layout) {
      Source src;
      int set = s_.SetIndex(p[0]);
      if (!s_.Kept(p[0])) {
        src.kind = Source::kMissing;
      } else if (set >= 0) {
        src.kind = p.size() == 1 ? Source::kSet : Source::kMissing;
        src.index = set;
      } else {
        auto it = std::find(ctx.input_layout.begin(), ctx.input_layout.end(), p);
        src.kind = it == ctx.input_layout.end() ? Source::kMissing : Source::kInput;
        src.index = static_cast<int>(it - ctx.input_layout.begin());
      }
      sources_.push_back(src);
    }
    values_.resize(exprs_.size());
    done_.resize(exprs_.size());
    return Status::Ok();
  }

  Status Process(BatchPtr batch) override {
    const size_t n = batch->rows.size();
    const uint32_t width = static_cast<uint32_t>(ctx_->output_layout.size());
    out_slots_.clear();
    out_slots_.reserve(n * width);
    KeptRows kept(*batch);
    EvalContext ec;
    ec.arena = &batch->arena;
    for (size_t r = 0; r < n; ++r) {
      Row& row = batch->rows[r];
      ec.slots = batch->SlotsOf(r);
      ec.row = &row;
      bool failed = false;
      for (size_t i = 0; i < exprs_.size(); ++i) {
        values_[i] = exprs_[i]->Eval(ec);
        if (!ec.error.empty()) {
          failed = true;
          break;
        }
      }
      std::string reason;
      if (!failed && !Rewrite(*batch, row, &reason)) {
        ec.error = reason;
        failed = true;
      }
      if (failed) {
        SR_RETURN_IF_ERROR(ctx_->errors->Report(*batch, r, ctx_->name, ec.error));
        ec.error.clear();
        // Keep the slot arithmetic simple: a dropped row still gets (unused) slots.
      }
      const Value* in = batch->SlotsOf(r);
      uint32_t first = static_cast<uint32_t>(out_slots_.size());
      for (const Source& src : sources_) {
        switch (src.kind) {
          case Source::kMissing:
            out_slots_.push_back(Value::Missing());
            break;
          case Source::kSet:
            out_slots_.push_back(values_[src.index]);
            break;
          case Source::kInput:
            out_slots_.push_back(in[src.index]);
            break;
        }
      }
      row.slot = first;
      if (!failed) kept.Keep(r);
    }
    batch->slots.swap(out_slots_);
    batch->width = width;
    kept.Finish();
    return ctx_->main->Emit(std::move(batch));
  }

  Status Finish() override { return Status::Ok(); }

 private:
  struct Source {
    enum Kind { kMissing, kSet, kInput } kind = kMissing;
    int index = 0;
  };

  // The JSON text of `v`; true on error.
  static bool RawValue(simdjson::ondemand::value v, std::string_view* raw) {
    simdjson::ondemand::json_type type;
    if (v.type().get(type)) return true;
    if (type == simdjson::ondemand::json_type::object) {
      simdjson::ondemand::object o;
      return v.get_object().get(o) || o.raw_json().get(*raw);
    }
    if (type == simdjson::ondemand::json_type::array) {
      simdjson::ondemand::array a;
      return v.get_array().get(a) || a.raw_json().get(*raw);
    }
    *raw = v.raw_json_token();
    return false;
  }

  // Writes the record's new bytes into the batch arena and points row.raw at them.
  bool Rewrite(Batch& batch, Row& row, std::string* reason) {
    out_.clear();
    out_.push_back('{');
    std::fill(done_.begin(), done_.end(), false);
    bool first = true;
    auto member = [&](std::string_view name, auto&& write_value) {
      out_.append(first ? "" : ",");
      first = false;
      AppendJsonString(out_, name);
      out_.push_back(':');
      write_value();
    };
    auto put_set = [&](std::string_view name, int i) {
      done_[i] = true;
      if (values_[i].is_missing()) return;
      member(name, [&] { AppendJson(out_, values_[i]); });
    };
    if (row.flags & kRowText) {
      if (s_.Kept("line")) {
        int i = s_.SetIndex("line");
        if (i >= 0)
          put_set("line", i);
        else
          member("line", [&] { AppendJsonString(out_, row.raw); });
      }
    } else {
      // Copy into a buffer with simdjson's padding after the text.
      buf_.assign(row.raw.begin(), row.raw.end());
      buf_.resize(row.raw.size() + simdjson::SIMDJSON_PADDING);
      simdjson::ondemand::document doc;
      if (parser_.iterate(buf_.data(), row.raw.size(), buf_.size()).get(doc)) {
        *reason = "map: the record is not JSON";
        return false;
      }
      simdjson::ondemand::object obj;
      if (doc.get_object().get(obj)) {
        *reason = "map: the record is not a JSON object";
        return false;
      }
      for (auto field_result : obj) {
        simdjson::ondemand::field field;
        std::string_view key;
        if (std::move(field_result).get(field) || field.unescaped_key().get(key)) {
          *reason = "map: the record is not valid JSON";
          return false;
        }
        name_.assign(key);
        std::string_view raw;
        if (RawValue(field.value(), &raw)) {
          *reason = "map: the record is not valid JSON";
          return false;
        }
        if (!s_.Kept(name_)) continue;
        int i = s_.SetIndex(name_);
        if (i >= 0) {
          put_set(name_, i);
          continue;
        }
        while (!raw.empty() && (raw.back() == ' ' || raw.back() == '\t' || raw.back() == '\n' ||
                                raw.back() == '\r')) {
          raw.remove_suffix(1);
        }
        member(name_, [&] { out_.append(raw); });
      }
    }
    for (size_t i = 0; i < done_.size(); ++i) {
      if (!done_[i] && s_.Kept(s_.set_names[i])) put_set(s_.set_names[i], static_cast<int>(i));
    }
    out_.push_back('}');
    row.raw = batch.arena.Copy(out_);
    row.flags &= static_cast<uint16_t>(~kRowText);
    return true;
  }

  const MapSettings& s_;
  std::vector<std::unique_ptr<Expr>> exprs_;
  const OperatorContext* ctx_ = nullptr;
  std::vector<Source> sources_;
  std::vector<Value> values_;
  std::vector<bool> done_;
  std::vector<Value> out_slots_;
  std::string out_;
  std::string name_;
  std::vector<char> buf_;
  simdjson::ondemand::parser parser_;
};

Result<std::unique_ptr<Operator>> MapConfig::CreateOperator() const {
  std::vector<std::unique_ptr<Expr>> exprs;
  for (const auto& e : s_.set_exprs) {
    ExprParseError err;
    auto copy = ParseExpr(e->text(), &err);
    if (!copy) return Status::RuntimeError("map: " + err.message);
    exprs.push_back(std::move(copy));
  }
  return std::unique_ptr<Operator>(new Map(s_, std::move(exprs)));
}

}  // namespace

NodeConfigResult MakeMap(const ConfigReader& config) {
  SR_RETURN_IF_ERROR(config.CheckKeys({"type", "from", "set", "drop", "keep"}));
  if (!config.Has("set") && !config.Has("drop") && !config.Has("keep")) {
    return config.Error("map needs at least one of `set`, `drop` or `keep`");
  }
  MapSettings s;
  if (config.Has("set")) {
    SR_ASSIGN_OR_RETURN(ConfigReader set, config.Child("set"));
    for (const std::string& name : set.Keys()) {
      if (name.empty()) return set.Error("a field name in `set` is empty");
      SR_ASSIGN_OR_RETURN(std::unique_ptr<Expr> e, set.Expression(name));
      s.set_names.push_back(name);
      s.set_exprs.push_back(std::move(e));
    }
  }
  if (config.Has("drop")) {
    SR_ASSIGN_OR_RETURN(auto names, config.StringList("drop"));
    s.drop.insert(names.begin(), names.end());
  }
  if (config.Has("keep")) {
    SR_ASSIGN_OR_RETURN(auto names, config.StringList("keep"));
    s.keep.insert(names.begin(), names.end());
  }
  return std::shared_ptr<const NodeConfig>(std::make_shared<MapConfig>(std::move(s)));
}

}  // namespace streamrun
