// Aggregate parsing and accumulators (see window_aggregates.h).
#include "operators/window_aggregates.h"

#include <algorithm>
#include <cctype>
#include <vector>

#include "engine/key.h"
#include "engine/spelling.h"

namespace streamrun {
namespace {

struct AggInfo {
  std::string_view name;
  AggKind kind;
};
constexpr AggInfo kAggs[] = {
    {"count", AggKind::kCount},
    {"count_if", AggKind::kCountIf},
    {"sum", AggKind::kSum},
    {"min", AggKind::kMin},
    {"max", AggKind::kMax},
    {"avg", AggKind::kAvg},
    {"first", AggKind::kFirst},
    {"last", AggKind::kLast},
    {"count_distinct", AggKind::kCountDistinct},
};

bool IsSpace(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r'; }

// Writes a value that owns no memory elsewhere: kind byte, then its payload.
void EncodeOwnedValue(const Value& v, std::string* out) {
  PutU8(*out, static_cast<uint8_t>(v.kind()));
  switch (v.kind()) {
    case Value::Kind::kBool:
      PutU8(*out, v.as_bool() ? 1 : 0);
      break;
    case Value::Kind::kInt:
      PutI64(*out, v.as_int());
      break;
    case Value::Kind::kDouble:
      PutDouble(*out, v.as_double());
      break;
    case Value::Kind::kString:
    case Value::Kind::kJson:
      PutBytes(*out, v.as_string());
      break;
    default:
      break;
  }
}

void Keep(Accumulator& acc, const Value& v, uint64_t seq) {
  acc.kind = v.kind();
  acc.seq = seq;
  if (v.kind() == Value::Kind::kString || v.kind() == Value::Kind::kJson) {
    acc.text.assign(v.as_string());
    acc.scalar = Value();
  } else {
    acc.scalar = v;
  }
}

void AddNumber(Accumulator& acc, const Value& v) {
  acc.dsum += v.to_double();
  if (v.kind() == Value::Kind::kDouble) {
    acc.is_double = true;
  } else if (__builtin_add_overflow(acc.isum, v.as_int(), &acc.isum)) {
    acc.is_double = true;
  }
}

}  // namespace

const char* AggName(AggKind kind) {
  for (const auto& a : kAggs) {
    if (a.kind == kind) return a.name.data();
  }
  return "?";
}

bool ParseAggregateCall(std::string_view text, AggCall* call, AggParseError* error) {
  size_t i = 0;
  while (i < text.size() && IsSpace(text[i])) ++i;
  size_t name_start = i;
  while (i < text.size() && (std::isalnum(static_cast<unsigned char>(text[i])) || text[i] == '_'))
    ++i;
  std::string_view name = text.substr(name_start, i - name_start);
  size_t name_end = i;
  while (i < text.size() && IsSpace(text[i])) ++i;
  if (name.empty() || i >= text.size() || text[i] != '(') {
    *error = {name.empty() ? name_start : name_end,
              "expected an aggregate call such as count() or sum(price)"};
    return false;
  }
  const AggInfo* info = nullptr;
  for (const auto& a : kAggs) {
    if (a.name == name) info = &a;
  }
  if (info == nullptr) {
    std::string message = "unknown aggregate '" + std::string(name) + "'";
    std::vector<std::string> names;
    for (const auto& a : kAggs) names.emplace_back(a.name);
    std::string suggestion = DidYouMean(name, names);
    if (!suggestion.empty()) {
      message += suggestion;
    } else {
      message += " (one of count, count_if, sum, min, max, avg, first, last, count_distinct)";
    }
    *error = {name_start, message};
    return false;
  }
  // Find the parenthesis that closes the call, skipping string literals and nested calls.
  size_t open = i;
  int depth = 0;
  size_t close = std::string_view::npos;
  for (size_t j = open; j < text.size() && close == std::string_view::npos; ++j) {
    char c = text[j];
    if (c == '"' || c == '\'') {
      for (++j; j < text.size() && text[j] != c; ++j) {
        if (text[j] == '\\') ++j;
      }
    } else if (c == '(') {
      ++depth;
    } else if (c == ')') {
      if (--depth == 0) close = j;
    }
  }
  if (close == std::string_view::npos) {
    *error = {open, "missing ')' to close " + std::string(name) + "("};
    return false;
  }
  for (size_t j = close + 1; j < text.size(); ++j) {
    if (!IsSpace(text[j])) {
      *error = {
          j,
          "unexpected text after the aggregate call; an aggregate is one call such as sum(price)"};
      return false;
    }
  }
  size_t a = open + 1, b = close;
  while (a < b && IsSpace(text[a])) ++a;
  while (b > a && IsSpace(text[b - 1])) --b;
  call->kind = info->kind;
  call->argument.assign(text.substr(a, b - a));
  call->argument_offset = a;
  if (info->kind == AggKind::kCount && a != b) {
    *error = {a, "count() takes no argument; use count_if(condition) or count_distinct(expr)"};
    return false;
  }
  if (info->kind != AggKind::kCount && a == b) {
    *error = {a,
              std::string(name) + "() needs an expression, as in " + std::string(name) + "(price)"};
    return false;
  }
  return true;
}

void Accumulator::Reset() {
  count = 0;
  isum = 0;
  dsum = 0;
  is_double = false;
  kind = Value::Kind::kMissing;
  scalar = Value();
  text.clear();
  seq = 0;
  if (distinct) distinct->clear();
}

void Accumulator::CopyFrom(const Accumulator& other) {
  count = other.count;
  isum = other.isum;
  dsum = other.dsum;
  is_double = other.is_double;
  kind = other.kind;
  scalar = other.scalar;
  text = other.text;
  seq = other.seq;
  if (other.distinct && !other.distinct->empty()) {
    distinct = std::make_unique<std::unordered_set<std::string>>(*other.distinct);
  } else if (distinct) {
    distinct->clear();
  }
}

Value Accumulator::Kept() const {
  if (kind == Value::Kind::kString) return Value::String(text);
  if (kind == Value::Kind::kJson) return Value::Json(text);
  return scalar;
}

bool AggregateAccepts(AggKind kind, const Value& v, std::string* error) {
  switch (kind) {
    case AggKind::kSum:
    case AggKind::kAvg:
      if (v.is_number()) return true;
      *error = std::string(AggName(kind)) + "() needs numbers, got a " + KindName(v.kind());
      return false;
    case AggKind::kCountIf:
      if (v.kind() == Value::Kind::kBool) return true;
      *error =
          std::string("count_if() needs a condition (true or false), got a ") + KindName(v.kind());
      return false;
    default:
      return true;
  }
}

void Accumulate(AggKind kind, Accumulator& acc, const Value& v, uint64_t seq,
                std::string* scratch) {
  switch (kind) {
    case AggKind::kCount:
      ++acc.count;
      return;
    case AggKind::kCountIf:
      if (v.as_bool()) ++acc.count;
      return;
    case AggKind::kSum:
    case AggKind::kAvg:
      ++acc.count;
      AddNumber(acc, v);
      return;
    case AggKind::kMin:
    case AggKind::kMax: {
      ++acc.count;
      if (acc.count == 1) {
        Keep(acc, v, seq);
        return;
      }
      int c = CompareValues(v, acc.Kept());
      if (kind == AggKind::kMin ? c < 0 : c > 0) Keep(acc, v, seq);
      return;
    }
    case AggKind::kFirst:
      ++acc.count;
      if (acc.count == 1 || seq < acc.seq) Keep(acc, v, seq);
      return;
    case AggKind::kLast:
      ++acc.count;
      if (acc.count == 1 || seq >= acc.seq) Keep(acc, v, seq);
      return;
    case AggKind::kCountDistinct:
      if (!acc.distinct) acc.distinct = std::make_unique<std::unordered_set<std::string>>();
      scratch->clear();
      AppendKeyValue(*scratch, v);
      if (acc.distinct->find(*scratch) == acc.distinct->end()) acc.distinct->insert(*scratch);
      return;
  }
}

void MergeAccumulators(AggKind kind, Accumulator& into, const Accumulator& from) {
  switch (kind) {
    case AggKind::kCount:
    case AggKind::kCountIf:
      into.count += from.count;
      return;
    case AggKind::kSum:
    case AggKind::kAvg:
      into.count += from.count;
      into.dsum += from.dsum;
      into.is_double = into.is_double || from.is_double ||
                       __builtin_add_overflow(into.isum, from.isum, &into.isum);
      return;
    case AggKind::kMin:
    case AggKind::kMax:
    case AggKind::kFirst:
    case AggKind::kLast: {
      if (from.count == 0) return;
      bool take = into.count == 0;
      if (!take) {
        int c = CompareValues(from.Kept(), into.Kept());
        switch (kind) {
          case AggKind::kMin:
            take = c < 0;
            break;
          case AggKind::kMax:
            take = c > 0;
            break;
          case AggKind::kFirst:
            take = from.seq < into.seq;
            break;
          default:
            take = from.seq > into.seq;
            break;
        }
      }
      into.count += from.count;
      if (take) Keep(into, from.Kept(), from.seq);
      return;
    }
    case AggKind::kCountDistinct:
      if (!from.distinct || from.distinct->empty()) return;
      if (!into.distinct) into.distinct = std::make_unique<std::unordered_set<std::string>>();
      into.distinct->insert(from.distinct->begin(), from.distinct->end());
      return;
  }
}

Value AggregateResult(AggKind kind, const Accumulator& acc) {
  switch (kind) {
    case AggKind::kCount:
    case AggKind::kCountIf:
      return Value::Int(acc.count);
    case AggKind::kCountDistinct:
      return Value::Int(acc.distinct ? static_cast<int64_t>(acc.distinct->size()) : 0);
    case AggKind::kSum:
      if (acc.count == 0) return Value::Null();
      return acc.is_double ? Value::Double(acc.dsum) : Value::Int(acc.isum);
    case AggKind::kAvg:
      if (acc.count == 0) return Value::Null();
      return Value::Double((acc.is_double ? acc.dsum : static_cast<double>(acc.isum)) /
                           static_cast<double>(acc.count));
    default:
      return acc.count == 0 ? Value::Null() : acc.Kept();
  }
}

// Layout: count, then per kind: sum/avg: isum, dsum, is_double; min/max/first/last: seq and
// the kept value (kind byte + payload); count_distinct: the number of encodings, then each.
void EncodeAccumulator(AggKind kind, const Accumulator& acc, std::string* out) {
  PutI64(*out, acc.count);
  switch (kind) {
    case AggKind::kSum:
    case AggKind::kAvg:
      PutI64(*out, acc.isum);
      PutDouble(*out, acc.dsum);
      PutU8(*out, acc.is_double ? 1 : 0);
      return;
    case AggKind::kMin:
    case AggKind::kMax:
    case AggKind::kFirst:
    case AggKind::kLast:
      PutU64(*out, acc.seq);
      EncodeOwnedValue(acc.Kept(), out);
      return;
    case AggKind::kCountDistinct: {
      uint64_t n = acc.distinct ? acc.distinct->size() : 0;
      PutU64(*out, n);
      if (n == 0) return;
      // Sorted, so equal states encode to equal bytes.
      std::vector<std::string_view> items(acc.distinct->begin(), acc.distinct->end());
      std::sort(items.begin(), items.end());
      for (auto s : items) PutBytes(*out, s);
      return;
    }
    default:
      return;
  }
}

bool DecodeAccumulator(AggKind kind, ByteReader& in, Accumulator* acc) {
  acc->Reset();
  if (!in.GetI64(&acc->count)) return false;
  switch (kind) {
    case AggKind::kSum:
    case AggKind::kAvg: {
      uint8_t d;
      if (!in.GetI64(&acc->isum) || !in.GetDouble(&acc->dsum) || !in.GetU8(&d)) return false;
      acc->is_double = d != 0;
      return true;
    }
    case AggKind::kMin:
    case AggKind::kMax:
    case AggKind::kFirst:
    case AggKind::kLast: {
      uint8_t k;
      if (!in.GetU64(&acc->seq) || !in.GetU8(&k)) return false;
      auto vk = static_cast<Value::Kind>(k);
      Value v;
      switch (vk) {
        case Value::Kind::kMissing:
          break;
        case Value::Kind::kNull:
          v = Value::Null();
          break;
        case Value::Kind::kBool: {
          uint8_t b;
          if (!in.GetU8(&b)) return false;
          v = Value::Bool(b != 0);
          break;
        }
        case Value::Kind::kInt: {
          int64_t i;
          if (!in.GetI64(&i)) return false;
          v = Value::Int(i);
          break;
        }
        case Value::Kind::kDouble: {
          double d;
          if (!in.GetDouble(&d)) return false;
          v = Value::Double(d);
          break;
        }
        case Value::Kind::kString:
        case Value::Kind::kJson: {
          std::string_view s;
          if (!in.GetBytes(&s)) return false;
          v = vk == Value::Kind::kString ? Value::String(s) : Value::Json(s);
          break;
        }
        default:
          return false;
      }
      uint64_t seq = acc->seq;
      Keep(*acc, v, seq);  // copies strings out of the input
      return true;
    }
    case AggKind::kCountDistinct: {
      uint64_t n;
      if (!in.GetU64(&n)) return false;
      if (n == 0) return true;
      acc->distinct = std::make_unique<std::unordered_set<std::string>>();
      for (uint64_t i = 0; i < n; ++i) {
        std::string_view s;
        if (!in.GetBytes(&s)) return false;
        acc->distinct->emplace(s);
      }
      return true;
    }
    default:
      return true;
  }
}

void AppendAccumulatorJson(AggKind kind, const Accumulator& acc, std::string* out) {
  *out += '{';
  if (kind != AggKind::kCountDistinct) *out += "\"count\":" + std::to_string(acc.count) + ",";
  switch (kind) {
    case AggKind::kSum:
    case AggKind::kAvg:
      *out += "\"sum\":";
      AppendJson(*out, acc.is_double ? Value::Double(acc.dsum) : Value::Int(acc.isum));
      break;
    case AggKind::kMin:
    case AggKind::kMax:
    case AggKind::kFirst:
    case AggKind::kLast:
      *out += "\"value\":";
      AppendJson(*out, acc.kind == Value::Kind::kMissing ? Value::Null() : acc.Kept());
      if (kind == AggKind::kFirst || kind == AggKind::kLast) {
        *out += ",\"seq\":" + std::to_string(acc.seq);
      }
      break;
    case AggKind::kCountDistinct: {
      *out += "\"distinct\":[";
      if (acc.distinct) {
        std::vector<std::string_view> items(acc.distinct->begin(), acc.distinct->end());
        std::sort(items.begin(), items.end());
        for (size_t i = 0; i < items.size(); ++i) {
          if (i) *out += ',';
          size_t pos = 0;
          Value v;
          if (DecodeKeyValue(items[i], &pos, &v))
            AppendJson(*out, v);
          else
            *out += "null";
        }
      }
      *out += ']';
      break;
    }
    default:
      out->pop_back();  // the comma after "count"
      break;
  }
  *out += '}';
}

}  // namespace streamrun
