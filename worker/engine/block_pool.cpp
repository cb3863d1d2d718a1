// Reference-counted KV blocks with an LRU prefix cache.
#include "worker/engine/block_pool.h"

#include <algorithm>

#include "common/check.h"

namespace ponder::worker {

BlockPool::BlockPool(int32_t n_blocks, int32_t block_size)
    : block_size_(block_size), refs_(n_blocks, 0), where_(n_blocks), hash_of_(n_blocks) {
  for (int32_t b = 0; b < n_blocks; ++b) where_[b] = free_.insert(free_.end(), b);
}

std::optional<int32_t> BlockPool::allocate() {
  if (free_.empty()) return std::nullopt;
  int32_t b = free_.front();
  free_.pop_front();
  uncache(b);
  refs_[b] = 1;
  return b;
}

void BlockPool::retain(int32_t block) {
  if (refs_[block]++ == 0) free_.erase(where_[block]);
}

void BlockPool::release(int32_t block) {
  PONDER_CHECK(refs_[block] > 0, "release of free block %d", block);
  if (--refs_[block] == 0) where_[block] = free_.insert(free_.end(), block);
}

std::optional<int32_t> BlockPool::lookup(BlockHash hash, std::span<const int32_t> tokens) {
  ++queries_;
  auto it = by_hash_.find(hash);
  if (it == by_hash_.end() || !std::equal(tokens.begin(), tokens.end(), it->second.tokens.begin(),
                                          it->second.tokens.end()))
    return std::nullopt;
  ++hits_;
  retain(it->second.block);
  return it->second.block;
}

void BlockPool::cache(int32_t block, BlockHash hash, std::span<const int32_t> tokens) {
  if (hash_of_[block] || by_hash_.count(hash)) return;  // already named, or an equal block is
  by_hash_.emplace(hash, Cached{block, std::vector<int32_t>(tokens.begin(), tokens.end())});
  hash_of_[block] = hash;
}

void BlockPool::uncache(int32_t block) {
  if (!hash_of_[block]) return;
  by_hash_.erase(*hash_of_[block]);
  hash_of_[block].reset();
}

BlockHash BlockPool::hash_block(BlockHash parent, std::span<const int32_t> tokens) {
  // 64-bit mix (splitmix-style) over the parent hash and every token id.
  uint64_t h = parent ^ 0x9e3779b97f4a7c15ull;
  for (int32_t t : tokens) {
    h ^= static_cast<uint64_t>(static_cast<uint32_t>(t)) + 0x9e3779b97f4a7c15ull + (h << 6) + (h >> 2);
    h = (h ^ (h >> 30)) * 0xbf58476d1ce4e5b9ull;
    h = (h ^ (h >> 27)) * 0x94d049bb133111ebull;
    h ^= h >> 31;
  }
  return h;
}

}  // namespace ponder::worker
