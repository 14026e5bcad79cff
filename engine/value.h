// Value: one field of a record, as expressions, keys and aggregates see it.
//
// A Value is 16 bytes and never owns memory: a string or a raw JSON value points into an Arena
// (normally the arena of the Batch that holds the record) or into other storage that outlives it.
// Copying a record to another batch copies its strings into that batch's arena (Batch::CopyRow).
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

namespace streamrun {

class Value {
 public:
  // Do not reorder: the order is the sort order of values of different kinds, and it is used by
  // the key encoding (engine/key.h).
  enum class Kind : uint8_t {
    kMissing = 0,  // the field is absent (distinct from null; aggregates skip both)
    kNull,
    kBool,
    kInt,     // 64-bit integer (JSON numbers without fraction or exponent that fit)
    kDouble,  // any other JSON number, and the results of float arithmetic
    kString,  // UTF-8 text, unescaped
    kJson,    // an object or array, as its JSON text
  };

  constexpr Value() : kind_(Kind::kMissing), len_(0), i_(0) {}
  static constexpr Value Missing() { return Value(); }
  static Value Null() {
    Value v;
    v.kind_ = Kind::kNull;
    return v;
  }
  static Value Bool(bool b) {
    Value v;
    v.kind_ = Kind::kBool;
    v.i_ = b ? 1 : 0;
    return v;
  }
  static Value Int(int64_t i) {
    Value v;
    v.kind_ = Kind::kInt;
    v.i_ = i;
    return v;
  }
  static Value Double(double d) {
    Value v;
    v.kind_ = Kind::kDouble;
    v.d_ = d;
    return v;
  }
  // REQUIRES: `s` outlives the value (see the header comment).
  static Value String(std::string_view s) {
    Value v;
    v.kind_ = Kind::kString;
    v.Set(s);
    return v;
  }
  static Value Json(std::string_view s) {
    Value v;
    v.kind_ = Kind::kJson;
    v.Set(s);
    return v;
  }

  Kind kind() const { return kind_; }
  bool is_missing() const { return kind_ == Kind::kMissing; }
  // Missing or null: what aggregates skip and `== null` matches.
  bool is_nullish() const { return kind_ <= Kind::kNull; }
  bool is_number() const { return kind_ == Kind::kInt || kind_ == Kind::kDouble; }

  bool as_bool() const { return i_ != 0; }
  int64_t as_int() const { return i_; }
  double as_double() const { return d_; }
  // The number as a double, for kInt and kDouble.
  double to_double() const { return kind_ == Kind::kInt ? static_cast<double>(i_) : d_; }
  std::string_view as_string() const { return std::string_view(s_, len_); }  // kString, kJson

  // Equality as the expression language defines it: numbers compare by value (1 == 1.0),
  // everything else by kind and content.
  friend bool operator==(const Value& a, const Value& b);

 private:
  void Set(std::string_view s) {
    s_ = s.data();
    len_ = static_cast<uint32_t>(s.size());
  }

  Kind kind_;
  uint32_t len_;
  union {
    int64_t i_;
    double d_;
    const char* s_;
  };
};
static_assert(sizeof(Value) == 16);

// Total order over values (kinds first, in Kind order, numbers by value). For min/max and sorting.
int CompareValues(const Value& a, const Value& b);

// Appends `v` as JSON. Missing is written as null. Doubles use the shortest text that reads back
// to the same double and always have a fraction or exponent ("2.0"), so they stay doubles.
void AppendJson(std::string& out, const Value& v);
// Appends `s` as a JSON string literal, escaping as RFC 8259 requires. Invalid UTF-8 bytes are
// replaced by U+FFFD so the output is always valid JSON.
void AppendJsonString(std::string& out, std::string_view s);

// True when `s` is valid UTF-8 (no overlong forms, no surrogates).
bool IsValidUtf8(std::string_view s);

// A short, human description of a kind for error messages ("string", "number", ...).
const char* KindName(Value::Kind kind);

}  // namespace streamrun
