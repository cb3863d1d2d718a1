// DecoderModel: a loaded decoder-only transformer (Llama, Qwen2, Qwen3) and its forward pass over a
// flattened batch of sequences (prefill chunks and decode tokens mixed). Not thread-safe: it owns
// activation buffers reused across calls by the engine thread.
#pragma once

#include <memory>
#include <span>
#include <string>
#include <vector>

#include "worker/backend/backend.h"
#include "worker/kv_cache.h"
#include "worker/model/model_config.h"
#include "worker/model/model_weights.h"

namespace ponder::worker {

RopeTable make_rope_table(const ModelConfig& config);

class DecoderModel {
 public:
  // Reads DIR/config.json and the safetensors weights.
  static Expected<std::unique_ptr<DecoderModel>> load(const std::string& model_dir,
                                                      const LoadOptions& options = {});

  const ModelConfig& config() const { return config_; }
  const ModelWeights& weights() const { return weights_; }
  KvCacheConfig kv_cache_config(int64_t n_blocks, int64_t block_size = 16) const;

  // Runs tokens[n] laid out by `batch` (their KV blocks already reserved), stores their K/V, and
  // writes logits [logit_rows.size(), vocab] for the batch rows listed in `logit_rows`.
  void forward(Backend& backend, KvCache& cache, std::span<const int32_t> tokens,
               const BatchLayout& batch, std::span<const int32_t> logit_rows, float* logits);

 private:
  DecoderModel() = default;
  void resize_buffers(int64_t n_tokens);

  ModelConfig config_;
  ModelWeights weights_;
  RopeTable rope_;
  // Activations, f32, sized for the largest batch seen so far.
  std::vector<float> x_, norm_, qkv_, q_, k_, v_, attn_, delta_, gate_up_, act_, last_;
};

}  // namespace ponder::worker
