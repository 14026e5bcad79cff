// KeyedStateStore: where keyed operators keep their state, as bytes.
//
// An entry is addressed by (key group, key, namespace): the key group of the record's key
// (engine/key.h), the encoded key (EncodeKey), and a namespace chosen by the operator (a window
// uses its bounds). Values are opaque bytes; every operator puts a version byte first so that it
// can read what an older build wrote.
//
// The in-memory store (engine/memory_state_store.h) is what tests and snapshots use today; the LMDB
// store will implement the same interface, with the operators' in-memory structures as its
// write-back cache.
//
// Thread safety: a store is used by one subtask thread at a time; implementations need no locks
// unless they say otherwise.
#pragma once

#include <functional>
#include <string>
#include <string_view>

#include "engine/status.h"

namespace streamrun {

class KeyedStateStore {
 public:
  virtual ~KeyedStateStore() = default;

  // Visitor for ForEach. Returning a non-ok Status stops the iteration and is returned by ForEach.
  using Visitor = std::function<Status(int key_group, std::string_view key, std::string_view ns,
                                       std::string_view value)>;

  // Sets the value of (key_group, key, ns), replacing any previous one.
  virtual Status Put(int key_group, std::string_view key, std::string_view ns,
                     std::string_view value) = 0;
  // Reads the value of (key_group, key, ns) into *value. *found says whether there was one.
  virtual Status Get(int key_group, std::string_view key, std::string_view ns, std::string* value,
                     bool* found) const = 0;
  // Removes (key_group, key, ns); removing an absent entry is not an error.
  virtual Status Delete(int key_group, std::string_view key, std::string_view ns) = 0;
  // Visits every entry with first_key_group <= key group <= last_key_group, ordered by key group,
  // then key bytes, then namespace bytes.
  virtual Status ForEach(int first_key_group, int last_key_group, const Visitor& visit) const = 0;
  // Removes everything.
  virtual Status Clear() = 0;
};

}  // namespace streamrun
