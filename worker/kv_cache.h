// KvCache: paged key/value storage. A pool of fixed-size blocks (block_size tokens each) per layer,
// whose ids a BlockPool hands out (reference counts and a prefix cache for the replica engine;
// reserve/release for simple callers); sequences own block tables (lists of block ids). Not
// thread-safe: the engine thread owns it. Layout per layer: [n_blocks, n_kv_heads, block_size,
// head_dim] f32 for K and V.
#pragma once

#include <cstdint>
#include <vector>

#include "common/status.h"
#include "worker/engine/block_pool.h"
#include "worker/host_memory.h"

namespace ponder::worker {

struct KvCacheConfig {
  int64_t n_layers = 0;
  int64_t n_kv_heads = 0;
  int64_t head_dim = 0;
  int64_t block_size = 16;
  int64_t n_blocks = 0;
};

class KvCache {
 public:
  static Expected<KvCache> create(const KvCacheConfig& config);
  // Bytes one block takes across all layers (K and V).
  static int64_t block_bytes(const KvCacheConfig& config);

  const KvCacheConfig& config() const { return config_; }
  int64_t block_size() const { return config_.block_size; }
  int64_t blocks_free() const { return pool_.blocks_free(); }
  int64_t blocks_used() const { return pool_.blocks_used(); }
  BlockPool& pool() { return pool_; }
  // Copies the first `n_slots` positions of block `src` into block `dst`, every layer (the
  // copy-on-write of a shared partial block).
  void copy_block(int32_t src, int32_t dst, int64_t n_slots);

  // Grows `table` until it covers `n_tokens` positions; kResourceExhausted when blocks run out
  // (the table then keeps what it had).
  Status reserve(std::vector<int32_t>& table, int64_t n_tokens);
  void release(std::vector<int32_t>& table);

  // Start of (block, kv_head) in a layer: [block_size, head_dim] contiguous.
  float* k(int layer, int32_t block, int64_t kv_head) const { return at(k_base_, layer, block, kv_head); }
  float* v(int layer, int32_t block, int64_t kv_head) const { return at(v_base_, layer, block, kv_head); }

 private:
  float* at(float* base, int layer, int32_t block, int64_t kv_head) const {
    return base + ((layer * config_.n_blocks + block) * config_.n_kv_heads + kv_head) *
                      config_.block_size * config_.head_dim;
  }
  KvCacheConfig config_;
  HostRegion storage_;
  float* k_base_ = nullptr;
  float* v_base_ = nullptr;
  BlockPool pool_{1, 1};
};

}  // namespace ponder::worker
