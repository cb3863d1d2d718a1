// Sharded pre-token cache for BPE.
#include "coordinator/text/bpe_word_cache.h"

#include <algorithm>

namespace ponder::text {

BpeWordCache::BpeWordCache(size_t capacity)
    : shard_capacity_(std::max<size_t>(1, capacity / kShards)),
      shards_(std::make_unique<Shard[]>(kShards)) {}

bool BpeWordCache::lookup(std::string_view word, std::vector<int32_t>* ids) const {
  Shard& s = shard(word);
  std::lock_guard lock(s.mutex);
  auto it = s.map.find(word);
  if (it == s.map.end()) return false;
  ids->insert(ids->end(), it->second.begin(), it->second.end());
  return true;
}

void BpeWordCache::insert(std::string_view word, const int32_t* ids, size_t count) const {
  Shard& s = shard(word);
  std::lock_guard lock(s.mutex);
  if (s.map.size() >= shard_capacity_) s.map.clear();
  s.map.try_emplace(std::string(word), ids, ids + count);
}

}  // namespace ponder::text
