// MemoryStateStore: a KeyedStateStore in memory, ordered as ForEach requires.
//
// Thread safety: none; one thread at a time (see engine/keyed_state.h).
#pragma once

#include <map>
#include <string>
#include <tuple>

#include "engine/keyed_state.h"

namespace streamrun {

class MemoryStateStore : public KeyedStateStore {
 public:
  Status Put(int key_group, std::string_view key, std::string_view ns,
             std::string_view value) override;
  Status Get(int key_group, std::string_view key, std::string_view ns, std::string* value,
             bool* found) const override;
  Status Delete(int key_group, std::string_view key, std::string_view ns) override;
  Status ForEach(int first_key_group, int last_key_group, const Visitor& visit) const override;
  Status Clear() override;

  size_t size() const { return entries_.size(); }

 private:
  using EntryKey = std::tuple<int, std::string, std::string>;
  std::map<EntryKey, std::string> entries_;
};

}  // namespace streamrun
