// DecoderModel: a loaded decoder-only transformer (Llama, Qwen2, Qwen3) — or one rank's shard of
// it — and its forward pass over a flattened batch of sequences (prefill chunks and decode tokens
// mixed). Sharded runs exchange activations through ShardComms. Not thread-safe: it owns
// activation buffers reused across calls by the engine thread.
#pragma once

#include <chrono>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "collective/communicator.h"
#include "worker/backend/backend.h"
#include "worker/kv_cache.h"
#include "worker/model/model_config.h"
#include "worker/model/model_weights.h"
#include "worker/shard.h"

namespace ponder::worker {

RopeTable make_rope_table(const ModelConfig& config);

// The collectives of a sharded forward pass. tp: this rank's tensor-parallel group (null when
// tp = 1); pp: the ranks that share this rank's tp rank across stages, ordered by stage (null with
// one stage). Every collective gets `timeout` from when it is issued.
struct ShardComms {
  collective::Communicator* tp = nullptr;
  collective::Communicator* pp = nullptr;
  std::chrono::milliseconds timeout{60'000};
};

class DecoderModel {
 public:
  // Reads DIR/config.json and the safetensors weights.
  static Expected<std::unique_ptr<DecoderModel>> load(const std::string& model_dir,
                                                      const LoadOptions& options = {},
                                                      const ShardSpec& shard = {});

  const ModelConfig& config() const { return config_; }
  const ModelWeights& weights() const { return weights_; }
  const ShardSpec& shard() const { return shard_; }
  const ShardDims& dims() const { return dims_; }
  // A cache for this rank's layers and key/value heads.
  KvCacheConfig kv_cache_config(int64_t n_blocks, int64_t block_size = 16) const;

  // Runs tokens[n] laid out by `batch` (their KV blocks already reserved), stores their K/V, and
  // on the last stage writes logits [logit_rows.size(), vocab] for the batch rows listed in
  // `logit_rows` (every rank of the last stage gets them). A stage after the first receives its
  // input from the previous stage instead of reading `tokens`; a stage before the last sends
  // its output on. Errors are the collectives' (kTimeout, kRemote).
  Status forward(Backend& backend, KvCache& cache, std::span<const int32_t> tokens,
                 const BatchLayout& batch, std::span<const int32_t> logit_rows, float* logits,
                 const ShardComms& comms = {});

 private:
  DecoderModel() = default;
  void resize_buffers(int64_t n_tokens);

  Status receive_input(int64_t n, const ShardComms& comms);
  Status send_output(int64_t n, const ShardComms& comms);
  Status compute_logits(Backend& backend, std::span<const int32_t> logit_rows, float* logits,
                        const ShardComms& comms);

  ModelConfig config_;
  ShardSpec shard_;
  ShardDims dims_;
  ModelWeights weights_;
  RopeTable rope_;
  // Activations, f32, sized for the largest batch seen so far.
  std::vector<float> x_, norm_, qkv_, q_, k_, v_, attn_, delta_, gate_up_, act_, last_;
  std::vector<float> gather_;     // all-gather staging (stage inputs, logits)
  std::vector<int32_t> local_ids_;  // token ids relative to this rank's vocabulary slice
};

}  // namespace ponder::worker
