// BlockPool: KV block ids with reference counts and a prefix cache. A full block's contents are
// named by a hash chained over the block's token ids and its parent's hash, so equal prefixes map
// to equal blocks; a block whose last reference goes stays cached (and findable) until it is
// evicted, least recently freed first, to make room. Not thread-safe: the engine thread owns it.
#pragma once

#include <cstdint>
#include <list>
#include <optional>
#include <span>
#include <unordered_map>
#include <vector>

namespace ponder::worker {

using BlockHash = uint64_t;

class BlockPool {
 public:
  BlockPool(int32_t n_blocks, int32_t block_size);

  int32_t n_blocks() const { return static_cast<int32_t>(refs_.size()); }
  int32_t block_size() const { return block_size_; }
  // Blocks nobody references (cached ones included: they can be evicted at any time).
  int32_t blocks_free() const { return static_cast<int32_t>(free_.size()); }
  int32_t blocks_used() const { return n_blocks() - blocks_free(); }
  int32_t refcount(int32_t block) const { return refs_[block]; }

  // A block for new contents (reference count 1), evicting the least recently freed cached block
  // if needed; nullopt when every block is referenced.
  std::optional<int32_t> allocate();
  void retain(int32_t block);
  // Drops one reference; at zero the block joins the free list (keeping its cached contents).
  void release(int32_t block);

  // The cached block holding exactly `tokens` after the prefix named `hash`'s parent chain, if
  // any; a hit is retained for the caller.
  std::optional<int32_t> lookup(BlockHash hash, std::span<const int32_t> tokens);
  // Records that `block` (full, computed) holds `tokens` with chained hash `hash`.
  void cache(int32_t block, BlockHash hash, std::span<const int32_t> tokens);

  static BlockHash hash_block(BlockHash parent, std::span<const int32_t> tokens);

  int64_t cache_queries() const { return queries_; }
  int64_t cache_hits() const { return hits_; }

 private:
  void uncache(int32_t block);

  int32_t block_size_;
  std::vector<int32_t> refs_;
  std::list<int32_t> free_;                          // front: least recently freed
  std::vector<std::list<int32_t>::iterator> where_;  // position in free_ when refs_ == 0
  struct Cached {
    int32_t block;
    std::vector<int32_t> tokens;  // checked on lookup: a hash collision is a miss, not a mix-up
  };
  std::unordered_map<BlockHash, Cached> by_hash_;
  std::vector<std::optional<BlockHash>> hash_of_;
  int64_t queries_ = 0, hits_ = 0;
};

}  // namespace ponder::worker
