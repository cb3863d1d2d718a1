// DecoderModel: a loaded decoder-only transformer (Llama, Qwen2, Qwen3) — or one rank's shard of
// it — and its forward pass over a flattened batch of sequences (prefill chunks and decode tokens
// mixed). Sharded runs exchange activations through ShardComms. The same code runs on every
// backend: weights, KV cache and activations live in the backend's memory (move_to() puts the
// weights there). Not thread-safe: it owns activation buffers reused across calls by the engine
// thread.
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
// one stage). Every collective gets `timeout` from when it is issued. With a device backend an
// NCCL communicator works on the device buffers directly; any other goes through host copies.
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
  // A model from weights made elsewhere (ModelWeights::allocate, filled by the caller).
  static std::unique_ptr<DecoderModel> create(const ModelConfig& config, ModelWeights weights,
                                              const ShardSpec& shard = {});
  // Moves the weights into `backend`'s memory, once, before the first forward() with it.
  Status move_to(const Backend& backend) { return weights_.move_to(backend.memory()); }

  const ModelConfig& config() const { return config_; }
  const ModelWeights& weights() const { return weights_; }
  const ShardSpec& shard() const { return shard_; }
  const ShardDims& dims() const { return dims_; }
  // A cache for this rank's layers and key/value heads.
  KvCacheConfig kv_cache_config(int64_t n_blocks, int64_t block_size = 16,
                                DType dtype = DType::kF32) const;

  // Runs tokens[n] laid out by `batch` (their KV blocks already reserved), stores their K/V, and
  // on the last stage writes logits [logit_rows.size(), vocab] for the batch rows listed in
  // `logit_rows` (every rank of the last stage gets them). A stage after the first receives its
  // input from the previous stage instead of reading `tokens`; a stage before the last sends
  // its output on. Errors are the collectives' (kTimeout, kRemote).
  // `logits` is host memory whatever the backend (a device backend's logits are copied back).
  Status forward(Backend& backend, KvCache& cache, std::span<const int32_t> tokens,
                 const BatchLayout& batch, std::span<const int32_t> logit_rows, float* logits,
                 const ShardComms& comms = {});
  // The same with the logits left in the backend's memory: `logits` [logit_rows.size(), vocab]
  // f32 there (device-side sampling reads them in place).
  Status forward_to(Backend& backend, KvCache& cache, std::span<const int32_t> tokens,
                    const BatchLayout& batch, std::span<const int32_t> logit_rows, Tensor logits,
                    const ShardComms& comms = {});

 private:
  DecoderModel() = default;
  Status resize_buffers(int64_t n_tokens, MemorySpace& memory);
  // One step between the backend's begin_step and end_step; the logits of `logit_rows` end up in
  // the first rows of *out: `dest` when it fits, else logits_.
  Status run(Backend& be, KvCache& cache, std::span<const int32_t> tokens,
             const BatchLayout& batch, std::span<const int32_t> logit_rows, Tensor dest,
             const ShardComms& comms, Tensor* out);
  Status run_step(Backend& be, KvCache& cache, std::span<const int32_t> tokens,
                  const BatchLayout& batch, std::span<const int32_t> logit_rows, int64_t n,
                  Tensor dest, const ShardComms& comms, Tensor* out);
  Status forward_layers(Backend& be, KvCache& cache, const BatchLayout& batch, int64_t n,
                        const ShardComms& comms);

  Status receive_input(Backend& be, int64_t n, const ShardComms& comms);
  Status send_output(Backend& be, int64_t n, const ShardComms& comms);
  Status compute_logits(Backend& be, std::span<const int32_t> logit_rows, Tensor logits,
                        const ShardComms& comms);
  // Collectives on tensors in the backend's memory (see ShardComms).
  Status all_reduce(Backend& be, collective::Communicator& comm, Tensor t, const ShardComms& comms);
  Status all_gather(Backend& be, collective::Communicator& comm, const void* send, void* recv,
                    size_t bytes, const ShardComms& comms);
  Status send(Backend& be, const void* data, size_t bytes, int peer, const ShardComms& comms);
  Status recv(Backend& be, void* data, size_t bytes, int peer, const ShardComms& comms);

  ModelConfig config_;
  ShardSpec shard_;
  ShardDims dims_;
  ModelWeights weights_;
  RopeTable rope_;
  // Activations, f32, in the backend's memory, sized for the largest batch seen so far.
  MemorySpace* memory_ = nullptr;  // where the buffers below live
  int64_t capacity_ = 0;           // rows they hold
  Buffer x_, norm_, qkv_, q_, k_, v_, attn_, delta_, gate_up_, act_;
  Buffer last_;        // [logit rows, hidden]: the final norm's rows that get logits
  Buffer logits_;      // [rows, vocab] when the caller's logits are on the host or padded
  Buffer slice_;       // this rank's column slice (stage hand-over) or vocabulary slice (lm_head)
  Buffer gathered_;    // all-gather destination (stage inputs, lm_head slices)
  std::vector<char> host_stage_[2];  // collectives through host copies
  std::vector<int32_t> local_ids_;  // token ids relative to this rank's vocabulary slice
  std::vector<int32_t> rows_;       // logit rows, padded to the step's row count
};

}  // namespace ponder::worker
