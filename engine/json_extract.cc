// JsonExtractor: a trie of wanted paths walked with simdjson On-Demand.
#include "engine/json_extract.h"

#include <simdjson.h>

#include <algorithm>
#include <charconv>
#include <cstring>
#if defined(__SSE2__)
#include <immintrin.h>
#endif

namespace streamrun {

namespace od = simdjson::ondemand;

namespace {

// A wanted key, with its first 8 bytes as a word so that most keys are told apart by one
// compare of one load (a byte loop's exit branch, mispredicted per field, cost more).
struct TrieKey {
  std::string key;
  uint64_t prefix = 0;  // the key's first 8 bytes as Load64 reads them, zero beyond the key
  uint64_t mask = 0;    // which bytes of such a word belong to the key
  int node = 0;         // index into the node table
  bool plain = true;    // no '"' or '\\': the key appears as is in JSON, without escapes
};

// One segment of the wanted paths. `slot` >= 0 when the path ending here is wanted itself.
struct TrieNode {
  int slot = -1;
  std::vector<TrieKey> children;
};

uint64_t Load64(const char* p) {
  uint64_t w;
  std::memcpy(&w, p, sizeof w);
  return w;
}

// The first '"' or '\\' at or after `p`. Strings and keys in a buffer simdjson accepted end with
// a quote before the buffer's end, and the buffer has SIMDJSON_PADDING readable bytes after it,
// so the 16-byte loads stay inside it. One load and compare per 16 bytes replaces a byte loop
// whose exit branch was mispredicted on every field and string.
const char* FindQuoteOrBackslash(const char* p) {
#if defined(__SSE2__)
  const __m128i quote = _mm_set1_epi8('"');
  const __m128i backslash = _mm_set1_epi8('\\');
  for (;; p += 16) {
    const __m128i v = _mm_loadu_si128(reinterpret_cast<const __m128i*>(p));
    const int m =
        _mm_movemask_epi8(_mm_or_si128(_mm_cmpeq_epi8(v, quote), _mm_cmpeq_epi8(v, backslash)));
    if (m != 0) return p + __builtin_ctz(static_cast<unsigned>(m));
  }
#else
  while (*p != '"' && *p != '\\') ++p;
  return p;
#endif
}

// The first backslash in [p, end), or end.
const char* FindBackslash(const char* p, const char* end) {
  const void* bs = std::memchr(p, '\\', static_cast<size_t>(end - p));
  return bs != nullptr ? static_cast<const char*>(bs) : end;
}

std::string Describe(simdjson::error_code err) {
  switch (err) {
    case simdjson::UTF8_ERROR:
      return "invalid UTF-8";
    case simdjson::UNCLOSED_STRING:
      return "invalid JSON: unclosed string";
    case simdjson::INCOMPLETE_ARRAY_OR_OBJECT:
      return "invalid JSON: truncated object or array";
    case simdjson::TRAILING_CONTENT:
      return "invalid JSON: trailing content after the object";
    case simdjson::EMPTY:
      return "invalid JSON: empty line";
    case simdjson::INCORRECT_TYPE:
      return "invalid JSON: not an object";
    case simdjson::NUMBER_ERROR:
      return "invalid JSON: bad number";
    case simdjson::STRING_ERROR:
      return "invalid JSON: bad string";
    case simdjson::T_ATOM_ERROR:
    case simdjson::F_ATOM_ERROR:
    case simdjson::N_ATOM_ERROR:
      return "invalid JSON: bad literal";
    default:
      return std::string("invalid JSON: ") + simdjson::error_message(err);
  }
}

}  // namespace

struct JsonExtractor::Impl {
  std::vector<TrieNode> nodes;                  // nodes[0] is the root (the top-level object)
  std::vector<std::pair<int, int>> duplicates;  // (first slot, other slot) of a repeated path
  od::parser parser;
  std::unique_ptr<od::parser> sub_parser;  // for a path wanted both whole and in parts
  // Many lines at a time (BeginLines): the shared pass over the buffer and where it is.
  od::parser many_parser;
  od::document_stream stream;
  od::document_stream::iterator it;
  bool stream_live = false;
  const char* many_end = nullptr;   // the end of the BeginLines buffer
  size_t alone_left = 0;            // lines still to parse alone before restarting the shared pass
  size_t alone_run = kMinAloneRun;  // lines to parse alone after the next failure
  size_t since_start = 0;           // documents taken from the shared pass since it (re)started
  static constexpr size_t kWindow = 128 * 1024;  // bytes per stage-1 pass
  static constexpr size_t kMinAloneRun = 64;
  static constexpr size_t kMaxAloneRun = 4096;
  // for a path wanted both whole and in parts
  simdjson::error_code error = simdjson::SUCCESS;
  // The line being read has no backslash: no key or string in it has an escape, so keys compare
  // as raw bytes and strings end at their closing quote, without searching for either.
  bool no_escapes = false;
  const char* next_backslash = nullptr;  // BeginLines: the first one at or after the last line

  // The child of `node` for the key whose unescaped bytes start at `raw` and end `len` bytes
  // later at its closing quote: the padding after it makes one 8-byte load safe.
  int ChildRaw(int node, const char* raw, size_t len) const {
    const uint64_t head = Load64(raw);
    for (const TrieKey& c : nodes[node].children) {
      if (c.key.size() == len && SameKey(c, head, raw)) return c.node;
    }
    return -1;
  }

  // Whether the key.size() bytes at `raw` (the first 8 loaded in `head`) are `c`'s key. Keys are
  // short: comparing the rest inline is cheaper than a call to memcmp.
  static bool SameKey(const TrieKey& c, uint64_t head, const char* raw) {
    if (((head ^ c.prefix) & c.mask) != 0) return false;
    for (size_t i = 8; i < c.key.size(); ++i) {
      if (c.key[i] != raw[i]) return false;
    }
    return true;
  }

  // The trie child for the key starting at `raw` (just after its opening quote), or -1.
  // REQUIRES: no_escapes. Then a key is a wanted key exactly when its bytes are followed by the
  // closing quote; padding after the line makes the 8-byte load and raw[len] readable.
  int ChildPlain(int node, const char* raw) const {
    const uint64_t head = Load64(raw);
    for (const TrieKey& c : nodes[node].children) {
      if (c.plain && raw[c.key.size()] == '"' && SameKey(c, head, raw)) return c.node;
    }
    return -1;
  }

  // The trie child of `node` named `key` (-1 when none): by comparing whole keys, for set-up
  // and for keys with an escape.
  int ChildNamed(int node, std::string_view key) const {
    for (const TrieKey& c : nodes[node].children) {
      if (c.key == key) return c.node;
    }
    return -1;
  }

  // The trie child for the key of `field` (-1 when not wanted); false on a bad escape.
  bool ChildOfField(od::field& field, int node, int* child) {
    const char* raw = field.key().raw();
    const char* end = FindQuoteOrBackslash(raw);
    if (*end == '"') {
      *child = ChildRaw(node, raw, static_cast<size_t>(end - raw));
      return true;
    }
    auto r = field.unescaped_key();  // an escape in the key: compare its unescaped bytes
    if (r.error()) {
      error = r.error();
      return false;
    }
    *child = ChildNamed(node, r.value_unsafe());
    return true;
  }

  bool Object(od::object obj, int node, Value* slots, Arena& arena) {
    for (auto field_result : obj) {
      // By reference, not copied out with get(): copying the field's value iterator (three
      // narrow stores read back by one 16-byte load) stalled store forwarding on every field.
      if (auto err = field_result.error()) {
        error = err;
        return false;
      }
      od::field& field = field_result.value_unsafe();
      int child;
      if (no_escapes) {
        child = ChildPlain(node, field.key().raw());
      } else if (!ChildOfField(field, node, &child)) {
        return false;
      }
      if (child < 0) continue;  // the iterator skips the value
      const TrieNode& c = nodes[child];
      od::value& v = field.value();
      if (c.children.empty()) {
        if (!Read(v, slots + c.slot, arena)) return false;
        continue;
      }
      od::json_type type;
      if (auto err = v.type().get(type)) {
        error = err;
        return false;
      }
      if (type != od::json_type::object) {
        // Not an object: nested paths are missing; the value itself may be wanted.
        if (c.slot >= 0 && !Read(v, slots + c.slot, arena)) return false;
        continue;
      }
      od::object inner;
      if (auto err = v.get_object().get(inner)) {
        error = err;
        return false;
      }
      if (c.slot < 0) {
        if (!Object(inner, child, slots, arena)) return false;
        continue;
      }
      // Wanted whole and in parts (rare): keep the raw text, then walk it with a second parser.
      std::string_view raw;
      if (auto err = inner.raw_json().get(raw)) {
        error = err;
        return false;
      }
      slots[c.slot] = Value::Json(raw);
      if (!sub_parser) sub_parser = std::make_unique<od::parser>();
      // The rest of the line and its padding follow `raw`, so the padding requirement holds.
      simdjson::padded_string_view sub(raw.data(), raw.size(),
                                       raw.size() + simdjson::SIMDJSON_PADDING);
      od::document doc;
      if (auto err = sub_parser->iterate(sub).get(doc)) {
        error = err;
        return false;
      }
      od::object sub_obj;
      if (auto err = doc.get_object().get(sub_obj)) {
        error = err;
        return false;
      }
      if (!Object(sub_obj, child, slots, arena)) return false;
    }
    return true;
  }

  bool Read(od::value& v, Value* out, Arena& arena) {
    od::json_type type;
    if (auto err = v.type().get(type)) {
      error = err;
      return false;
    }
    switch (type) {
      case od::json_type::object: {
        od::object o;
        std::string_view raw;
        if (auto err = v.get_object().get(o)) {
          error = err;
          return false;
        }
        if (auto err = o.raw_json().get(raw)) {
          error = err;
          return false;
        }
        *out = Value::Json(raw);
        return true;
      }
      case od::json_type::array: {
        od::array a;
        std::string_view raw;
        if (auto err = v.get_array().get(a)) {
          error = err;
          return false;
        }
        if (auto err = a.raw_json().get(raw)) {
          error = err;
          return false;
        }
        *out = Value::Json(raw);
        return true;
      }
      case od::json_type::string: {
        std::string_view tok = v.raw_json_token();
        if (no_escapes) {
          // tok runs from the opening quote to the next token: the closing quote ends it, or
          // whitespace follows that.
          size_t n = tok.size();
          while (n > 2 && tok[n - 1] != '"') --n;
          *out = Value::String(tok.substr(1, n - 2));
          return true;
        }
        // tok starts with the opening quote; an unescaped string ends at the next quote.
        const char* end = FindQuoteOrBackslash(tok.data() + 1);
        if (*end == '"') {
          *out = Value::String(std::string_view(tok.data() + 1, end - tok.data() - 1));
          return true;
        }
        std::string_view s;
        if (auto err = v.get_string().get(s)) {
          error = err;
          return false;
        }
        *out = Value::String(arena.Copy(s));
        return true;
      }
      case od::json_type::number: {
        std::string_view tok = v.raw_json_token();
        size_t z = (!tok.empty() && tok[0] == '-') ? 1 : 0;
        if (tok.size() > z + 1 && tok[z] == '0' && tok[z + 1] >= '0' && tok[z + 1] <= '9') {
          error = simdjson::NUMBER_ERROR;  // a leading zero, which JSON forbids
          return false;
        }
        od::number n;
        auto err = v.get_number().get(n);
        if (err == simdjson::SUCCESS) {
          if (n.is_int64()) {
            *out = Value::Int(n.get_int64());
          } else {
            *out = Value::Double(n.as_double());
          }
          return true;
        }
        if (err != simdjson::NUMBER_ERROR && err != simdjson::NUMBER_OUT_OF_RANGE) {
          error = err;
          return false;
        }
        // An integer too large for 64 bits: a double, as other JSON readers make it.
        size_t len = 0;
        while (len < tok.size() && (tok[len] == '-' || (tok[len] >= '0' && tok[len] <= '9'))) ++len;
        double d = 0;
        auto r = std::from_chars(tok.data(), tok.data() + len, d);
        if (r.ec != std::errc() && r.ec != std::errc::result_out_of_range) {
          error = simdjson::NUMBER_ERROR;
          return false;
        }
        *out = Value::Double(d);
        return true;
      }
      case od::json_type::boolean: {
        bool b;
        if (auto err = v.get_bool().get(b)) {
          error = err;
          return false;
        }
        *out = Value::Bool(b);
        return true;
      }
      case od::json_type::null: {
        bool is_null = false;
        if (auto err = v.is_null().get(is_null)) {
          error = err;
          return false;
        }
        if (!is_null) {
          error = simdjson::N_ATOM_ERROR;
          return false;
        }
        *out = Value::Null();
        return true;
      }
    }
    error = simdjson::INCORRECT_TYPE;
    return false;
  }
};

JsonExtractor::JsonExtractor(const Layout& layout)
    : impl_(std::make_unique<Impl>()), width_(layout.size()) {
#ifdef SIMDJSON_THREADS_ENABLED
  impl_->many_parser.threaded = false;  // no stage-1 helper thread: the subtasks use the cores
#endif
  impl_->nodes.emplace_back();
  for (size_t s = 0; s < layout.size(); ++s) {
    const FieldPath& path = layout[s];
    if (path.empty() || (!path[0].empty() && path[0][0] == '$')) continue;  // metadata
    int node = 0;
    for (const auto& seg : path) {
      int child = impl_->ChildNamed(node, seg);
      if (child < 0) {
        child = static_cast<int>(impl_->nodes.size());
        impl_->nodes.emplace_back();
        TrieKey k;
        k.key = seg;
        const size_t head = std::min<size_t>(seg.size(), 8);
        // In memory order, like Load64: the same on either byte order.
        unsigned char ones[8] = {};
        std::memset(ones, 0xff, head);
        std::memcpy(&k.prefix, seg.data(), head);
        std::memcpy(&k.mask, ones, sizeof ones);
        k.node = child;
        k.plain = seg.find_first_of("\"\\") == std::string::npos;
        impl_->nodes[node].children.push_back(std::move(k));
      }
      node = child;
    }
    // A path listed twice is read into its first slot and copied to the others.
    if (impl_->nodes[node].slot < 0) {
      impl_->nodes[node].slot = static_cast<int>(s);
    } else {
      impl_->duplicates.emplace_back(impl_->nodes[node].slot, static_cast<int>(s));
    }
  }
}

JsonExtractor::~JsonExtractor() = default;

size_t JsonExtractor::padding() { return simdjson::SIMDJSON_PADDING; }

bool JsonExtractor::Extract(std::string_view line, Value* slots, Arena& arena, std::string* error) {
  for (size_t i = 0; i < width_; ++i) slots[i] = Value::Missing();
  Impl& im = *impl_;
  im.error = simdjson::SUCCESS;
  const char* line_end = line.data() + line.size();
  im.no_escapes = FindBackslash(line.data(), line_end) == line_end;
  simdjson::padded_string_view input(line.data(), line.size(),
                                     line.size() + simdjson::SIMDJSON_PADDING);
  od::document doc;
  bool ok = false;
  if (auto err = im.parser.iterate(input).get(doc)) {
    im.error = err;
  } else {
    od::object obj;
    if (auto err2 = doc.get_object().get(obj)) {
      im.error = err2;
    } else if (im.Object(obj, 0, slots, arena)) {
      // current_location fails with OUT_OF_BOUNDS exactly when every token was consumed.
      if (doc.current_location().error() != simdjson::OUT_OF_BOUNDS) {
        im.error = simdjson::TRAILING_CONTENT;
      } else {
        ok = true;
      }
    }
  }
  if (!ok) {
    for (size_t i = 0; i < width_; ++i) slots[i] = Value::Missing();
    if (error != nullptr) *error = Describe(im.error);
    return false;
  }
  for (const auto& [from, to] : im.duplicates) slots[to] = slots[from];
  return true;
}

void JsonExtractor::BeginLines(const char* data, size_t size) {
  Impl& im = *impl_;
  im.stream_live = false;
  im.many_end = data + size;
  im.next_backslash = FindBackslash(data, im.many_end);
  im.alone_left = 0;
  im.alone_run = Impl::kMinAloneRun;
}

bool JsonExtractor::ExtractLine(std::string_view line, const char* next, Value* slots, Arena& arena,
                                std::string* error) {
  Impl& im = *impl_;
  if (im.alone_left > 0) {
    --im.alone_left;
    return Extract(line, slots, arena, error);
  }
  if (!im.stream_live) {
    // The pass starts at this line (lines before it, if any, were parsed alone).
    if (im.many_parser.iterate_many(line.data(), im.many_end - line.data(), Impl::kWindow)
            .get(im.stream)) {
      im.alone_left = 1;
      return ExtractLine(line, next, slots, arena, error);
    }
    im.it = im.stream.begin();
    im.stream_live = true;
    im.since_start = 0;
  }
  // Whether the line has a backslash: one search per stretch of lines without any.
  if (im.next_backslash < line.data()) im.next_backslash = FindBackslash(line.data(), im.many_end);
  im.no_escapes = im.next_backslash >= line.data() + line.size();
  // Take the line from the shared pass when its document is exactly the line.
  bool verify = false;
  bool taken = false;
  do {
    if (!(im.it != im.stream.end())) break;
    od::document_reference doc;
    if ((*im.it).get(doc)) break;
    const char* at = nullptr;
    if (doc.current_location().get(at) || at != line.data()) break;
    od::object obj;
    if (doc.get_object().get(obj)) break;
    for (size_t i = 0; i < width_; ++i) slots[i] = Value::Missing();
    im.error = simdjson::SUCCESS;
    if (!im.Object(obj, 0, slots, arena)) break;
    // Every token of the object was consumed: the next one must be on a later line. At the end
    // of a window the next token is not known here, so Extract decides (once per window).
    auto after = doc.current_location();
    if (after.error() == simdjson::OUT_OF_BOUNDS) {
      verify = true;
    } else if (after.error() || after.value_unsafe() < next) {
      break;
    }
    taken = true;
  } while (false);
  if (!taken) {
    // Parse alone for a while, longer each time the pass fails right where it restarted.
    im.stream_live = false;
    im.alone_run =
        im.since_start == 0 ? std::min(im.alone_run * 2, Impl::kMaxAloneRun) : Impl::kMinAloneRun;
    im.alone_left = im.alone_run - 1;  // this line is the first of them
    return Extract(line, slots, arena, error);
  }
  ++im.it;
  ++im.since_start;
  if (verify) return Extract(line, slots, arena, error);
  for (const auto& [from, to] : im.duplicates) slots[to] = slots[from];
  return true;
}

}  // namespace streamrun
