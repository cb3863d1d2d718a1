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

std::vector<SamplePlacement> place_samples(std::span<const ReplicaLoad> replicas,
                                           int64_t prompt_tokens, int32_t n) {
  const std::optional<size_t> pick = choose_replica(replicas, prompt_tokens);
  if (!pick) return {};
  auto room = [&](size_t i) { return std::max<int64_t>(0, replicas[i].free_slots); };
  if (n <= room(*pick)) return {{*pick, n}};
  // The others with room, cheapest first (the same cost as choose_replica's).
  std::vector<size_t> others;
  for (size_t i = 0; i < replicas.size(); ++i)
    if (i != *pick && replicas[i].healthy && room(i) > 0) others.push_back(i);
  auto cost = [&](size_t i) {
    const ReplicaLoad& r = replicas[i];
    return r.outstanding_tokens + prompt_tokens - std::min(r.cached_prompt_tokens, prompt_tokens);
  };
  std::stable_sort(others.begin(), others.end(),
                   [&](size_t a, size_t b) { return cost(a) < cost(b); });
  std::vector<SamplePlacement> out = {{*pick, static_cast<int32_t>(std::min<int64_t>(n, room(*pick)))}};
  int32_t left = n - out[0].count;
  for (size_t i : others) {
    if (left == 0) break;
    const auto take = static_cast<int32_t>(std::min<int64_t>(left, room(i)));
    out.push_back({i, take});
    left -= take;
  }
  out[0].count += left;  // no room anywhere: the pick's engine queues the rest
  if (out[0].count == 0) out.erase(out.begin());
  return out;
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
