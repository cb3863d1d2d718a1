#include "coordinator/router/router.h"

#include <algorithm>

namespace ponder::coordinator {

std::optional<size_t> choose_replica(std::span<const ReplicaLoad> replicas, int64_t prompt_tokens) {
  std::optional<size_t> best;
  int64_t best_cost = 0;
  for (size_t i = 0; i < replicas.size(); ++i) {
    const ReplicaLoad& r = replicas[i];
    if (!r.healthy) continue;
    const int64_t uncached = prompt_tokens - std::min(r.cached_prompt_tokens, prompt_tokens);
    const int64_t cost = r.outstanding_tokens + uncached;
    if (!best || cost < best_cost) {
      best = i;
      best_cost = cost;
    }
  }
  return best;
}

std::vector<uint64_t> prompt_block_hashes(std::span<const int32_t> prompt, int32_t block_size) {
  std::vector<uint64_t> hashes;
  uint64_t parent = 0xcbf29ce484222325ull;
  for (size_t begin = 0; begin + block_size <= prompt.size(); begin += block_size) {
    uint64_t h = parent;
    for (size_t i = begin; i < begin + block_size; ++i) {
      h ^= static_cast<uint32_t>(prompt[i]);
      h *= 0x100000001b3ull;
      h ^= h >> 29;
    }
    hashes.push_back(h);
    parent = h;
  }
  return hashes;
}

void PrefixIndex::record(std::span<const uint64_t> hashes) {
  for (uint64_t h : hashes) {
    auto it = where_.find(h);
    if (it != where_.end()) lru_.erase(it->second);
    lru_.push_front(h);
    where_[h] = lru_.begin();
  }
  while (lru_.size() > capacity_) {
    where_.erase(lru_.back());
    lru_.pop_back();
  }
}

int64_t PrefixIndex::matched_blocks(std::span<const uint64_t> hashes) const {
  int64_t n = 0;
  for (uint64_t h : hashes) {
    if (!where_.contains(h)) break;
    ++n;
  }
  return n;
}

void PrefixIndex::clear() {
  lru_.clear();
  where_.clear();
}

}  // namespace ponder::coordinator
