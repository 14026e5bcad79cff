// The in-memory KeyedStateStore.
#include "engine/memory_state_store.h"

namespace streamrun {

Status MemoryStateStore::Put(int key_group, std::string_view key, std::string_view ns,
                             std::string_view value) {
  entries_[EntryKey(key_group, std::string(key), std::string(ns))] = std::string(value);
  return Status::Ok();
}

Status MemoryStateStore::Get(int key_group, std::string_view key, std::string_view ns,
                             std::string* value, bool* found) const {
  auto it = entries_.find(EntryKey(key_group, std::string(key), std::string(ns)));
  *found = it != entries_.end();
  if (*found) *value = it->second;
  return Status::Ok();
}

Status MemoryStateStore::Delete(int key_group, std::string_view key, std::string_view ns) {
  entries_.erase(EntryKey(key_group, std::string(key), std::string(ns)));
  return Status::Ok();
}

Status MemoryStateStore::ForEach(int first_key_group, int last_key_group,
                                 const Visitor& visit) const {
  for (auto it = entries_.lower_bound(EntryKey(first_key_group, std::string(), std::string()));
       it != entries_.end() && std::get<0>(it->first) <= last_key_group; ++it) {
    SR_RETURN_IF_ERROR(
        visit(std::get<0>(it->first), std::get<1>(it->first), std::get<2>(it->first), it->second));
  }
  return Status::Ok();
}

Status MemoryStateStore::Clear() {
  entries_.clear();
  return Status::Ok();
}

}  // namespace streamrun
