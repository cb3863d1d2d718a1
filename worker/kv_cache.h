// KvCache: paged key/value storage. A pool of fixed-size blocks (block_size tokens each) per layer,
// whose ids a BlockPool hands out (reference counts and a prefix cache for the replica engine;
// reserve/release for simple callers); sequences own block tables (lists of block ids). Not
// thread-safe: the engine thread owns it. Layout per layer: [n_blocks, n_kv_heads, block_size,
// head_dim] of `dtype` (f32; bf16 on the CUDA backend) for K and V, in host memory or in a
// backend's device memory (create()'s MemorySpace). A latent cache (MLA) stores K only — one
// row [latent | rotary key] per token — and a value is the first latent_dim columns of its key.
#pragma once

#include <cstdint>
#include <vector>

#include "common/status.h"
#include "worker/dtype.h"
#include "worker/engine/block_pool.h"
#include "worker/host_memory.h"
#include "worker/memory_space.h"

namespace ponder::worker {

// A KV cache element type by name: "f32" or "bf16"; an error naming `option` otherwise.
Expected<DType> parse_kv_cache_dtype(std::string_view text, std::string_view option);

struct KvCacheConfig {
  int64_t n_layers = 0;
  int64_t n_kv_heads = 0;
  int64_t head_dim = 0;
  int64_t block_size = 16;
  int64_t n_blocks = 0;
  DType dtype = DType::kF32;  // kF32 or kBF16 (half the bytes; the CPU backend rounds on store)
  int64_t latent_dim = 0;     // > 0: a latent cache (no V storage; V = K's first latent_dim)
};

class KvCache {
 public:
  // Storage in `memory` (a backend's memory(); host memory by default, on huge pages).
  static Expected<KvCache> create(const KvCacheConfig& config,
                                  MemorySpace& memory = host_memory());
  // Bytes one block takes across all layers (K and V, or the latent).
  static int64_t block_bytes(const KvCacheConfig& config);
  bool latent() const { return config_.latent_dim > 0; }
  // The width of a value: head_dim, or latent_dim.
  int64_t value_dim() const { return latent() ? config_.latent_dim : config_.head_dim; }

  const KvCacheConfig& config() const { return config_; }
  Device device() const { return memory_->device(); }
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

  // Start of (block, kv_head) in a layer: [block_size, head_dim] contiguous, of dtype. Host caches.
  void* k_at(int layer, int32_t block, int64_t kv_head) const { return at(k_base_, layer, block, kv_head); }
  void* v_at(int layer, int32_t block, int64_t kv_head) const { return at(v_base_, layer, block, kv_head); }
  // The same as f32 (host f32 caches only).
  float* k(int layer, int32_t block, int64_t kv_head) const { return static_cast<float*>(k_at(layer, block, kv_head)); }
  float* v(int layer, int32_t block, int64_t kv_head) const { return static_cast<float*>(v_at(layer, block, kv_head)); }
  // Start of a layer's K (V) blocks, [n_blocks, n_kv_heads, block_size, head_dim] of dtype, in
  // the cache's memory (what device kernels index).
  void* k_layer(int layer) const { return layer_at(k_base_, layer); }
  void* v_layer(int layer) const { return layer_at(v_base_, layer); }

 private:
  void* at(void* base, int layer, int32_t block, int64_t kv_head) const {
    return static_cast<char*>(base) +
           ((layer * config_.n_blocks + block) * config_.n_kv_heads + kv_head) *
               config_.block_size * config_.head_dim * static_cast<int64_t>(dtype_size(config_.dtype));
  }
  void* layer_at(void* base, int layer) const {
    return static_cast<char*>(base) + layer * config_.n_blocks * config_.n_kv_heads *
                                          config_.block_size * config_.head_dim *
                                          static_cast<int64_t>(dtype_size(config_.dtype));
  }
  KvCacheConfig config_;
  MemorySpace* memory_ = &host_memory();
  HostRegion storage_;    // host caches
  Buffer device_storage_;  // caches in a device's memory
  void* k_base_ = nullptr;
  void* v_base_ = nullptr;
  BlockPool pool_{1, 1};
};

}  // namespace ponder::worker
