// Paged KV cache pool and block allocation.
#include "worker/kv_cache.h"

#include <cstring>
#include <string>

#include "common/check.h"

namespace ponder::worker {

int64_t KvCache::block_bytes(const KvCacheConfig& c) {
  return (c.latent_dim > 0 ? 1 : 2) * c.n_layers * c.n_kv_heads * c.block_size * c.head_dim *
         static_cast<int64_t>(dtype_size(c.dtype));
}

Expected<KvCache> KvCache::create(const KvCacheConfig& config, MemorySpace& memory) {
  if (config.n_blocks <= 0 || config.block_size <= 0)
    return error(StatusCode::kInvalidArgument, "KV cache needs at least one block (got %lld)",
                 (long long)config.n_blocks);
  if (config.dtype != DType::kF32 && config.dtype != DType::kBF16)
    return error(StatusCode::kInvalidArgument, "KV cache dtype %s is not F32 or BF16",
                 std::string(dtype_name(config.dtype)).c_str());
  if (config.latent_dim < 0 || config.latent_dim > config.head_dim ||
      (config.latent_dim > 0 && config.n_kv_heads != 1))
    return error(StatusCode::kInvalidArgument,
                 "a latent KV cache has one head and a latent of at most head_dim (%lld) columns; "
                 "got %lld heads, latent %lld",
                 (long long)config.head_dim, (long long)config.n_kv_heads,
                 (long long)config.latent_dim);
  KvCache cache;
  cache.config_ = config;
  cache.memory_ = &memory;
  const size_t total = static_cast<size_t>(block_bytes(config) * config.n_blocks);
  char* base = nullptr;
  if (memory.device() == Device::kHost) {
    PONDER_ASSIGN_OR_RETURN(cache.storage_, HostRegion::allocate(total, /*huge_pages=*/true));
    base = cache.storage_.data();
  } else {
    PONDER_ASSIGN_OR_RETURN(cache.device_storage_, memory.allocate(total));
    base = cache.device_storage_.as<char>();
  }
  cache.k_base_ = base;
  cache.v_base_ = cache.latent() ? base : base + total / 2;
  cache.pool_ = BlockPool(static_cast<int32_t>(config.n_blocks), static_cast<int32_t>(config.block_size));
  return cache;
}

Status KvCache::reserve(std::vector<int32_t>& table, int64_t n_tokens) {
  int64_t need = (n_tokens + config_.block_size - 1) / config_.block_size;
  int64_t missing = need - static_cast<int64_t>(table.size());
  if (missing <= 0) return {};
  if (missing > blocks_free())
    return error(StatusCode::kResourceExhausted,
                 "KV cache full: %lld more blocks needed, %lld free of %lld", (long long)missing,
                 (long long)blocks_free(), (long long)config_.n_blocks);
  for (int64_t i = 0; i < missing; ++i) table.push_back(*pool_.allocate());
  return {};
}

void KvCache::release(std::vector<int32_t>& table) {
  for (int32_t b : table) pool_.release(b);
  table.clear();
}

void KvCache::copy_block(int32_t src, int32_t dst, int64_t n_slots) {
  const size_t es = dtype_size(config_.dtype);
  const size_t bytes = static_cast<size_t>(n_slots * config_.head_dim) * es;
  if (device() != Device::kHost) {
    // Per layer: n_kv_heads rows of `bytes`, block_size × head_dim elements apart.
    const size_t pitch = static_cast<size_t>(config_.block_size * config_.head_dim) * es;
    const size_t block = pitch * config_.n_kv_heads;
    for (int layer = 0; layer < config_.n_layers; ++layer) {
      for (int kv = 0; kv < (latent() ? 1 : 2); ++kv) {  // a latent cache's V is its K
        char* b = static_cast<char*>(kv == 0 ? k_layer(layer) : v_layer(layer));
        memory_->copy_2d(b + dst * block, pitch, b + src * block, pitch, bytes,
                         config_.n_kv_heads);
      }
    }
    return;
  }
  for (int layer = 0; layer < config_.n_layers; ++layer) {
    for (int64_t h = 0; h < config_.n_kv_heads; ++h) {
      std::memcpy(k_at(layer, dst, h), k_at(layer, src, h), bytes);
      if (!latent()) std::memcpy(v_at(layer, dst, h), v_at(layer, src, h), bytes);
    }
  }
}

Expected<DType> parse_kv_cache_dtype(std::string_view text, std::string_view option) {
  if (text == "f32") return DType::kF32;
  if (text == "bf16") return DType::kBF16;
  return error(StatusCode::kInvalidArgument, "%.*s: '%.*s' is not f32 or bf16",
               static_cast<int>(option.size()), option.data(), static_cast<int>(text.size()),
               text.data());
}

}  // namespace ponder::worker
