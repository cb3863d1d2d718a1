// DecoderModel: a loaded decoder-only transformer (Llama, Qwen2, Qwen3, Qwen3-MoE, DeepSeek-V3)
// — or one rank's shard of it — and its forward pass over a flattened batch of sequences (prefill
// chunks and decode tokens mixed). Sharded runs exchange activations through ShardComms. The same code runs on every
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
#include "common/check.h"
#include "worker/backend/backend.h"
#include "worker/kv_cache.h"
#include "worker/model/model_config.h"
#include "worker/model/model_weights.h"
#include "worker/shard.h"

namespace ponder::worker {

RopeTable make_rope_table(const ModelConfig& config);
// The softmax scale: 1/√head_dim (MLA with YaRN: times mscale(factor, mscale_all_dim)²).
float attention_scale(const ModelConfig& config);
// What a KV cache of `n_layers` layers holds per block (head count, key width, latent) for this
// rank's `n_kv_heads`; block size, count and dtype are the caller's.
KvCacheConfig kv_cache_layout(const ModelConfig& config, int64_t n_layers, int64_t n_kv_heads);

// The collectives of a sharded forward pass. tp: this rank's tensor-parallel group (null when
// tp = 1); pp: the ranks that share this rank's tp rank across stages, ordered by stage (null with
// one stage). Every collective gets `timeout` from when it is issued. With a device backend an
// NCCL communicator works on the device buffers directly; any other goes through host copies.
struct ShardComms {
  collective::Communicator* tp = nullptr;
  collective::Communicator* pp = nullptr;
  // ep: the ranks of this stage with this tp rank, by ep rank (null without expert parallelism).
  // Each holds 1/ep of the routed experts; MoE layers exchange tokens with all-to-all on it.
  collective::Communicator* ep = nullptr;
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
  // Fails (naming what is missing) when the backend cannot run this architecture.
  Status move_to(const Backend& backend) {
    PONDER_RETURN_IF_ERROR(backend.supports(config_));
    return weights_.move_to(backend.memory());
  }

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
  // A layer's sub-layers: norm_ rows in, delta_ rows out (this rank's partial sums under tp).
  void attention(Backend& be, KvCache& cache, int layer, const BatchLayout& batch, int64_t n);
  void mla_attention(Backend& be, KvCache& cache, int layer, const BatchLayout& batch, int64_t n);
  void mlp(Backend& be, const Tensor& w_gate_up, const Tensor& b_gate_up, const Tensor& w_down,
           const Tensor& b_down, Tensor x, Tensor out);
  Status moe(Backend& be, const LayerWeights& w, int64_t n, const ShardComms& comms);
  // The routed experts of rows [row0, row0 + rows) under expert parallelism: each (row, expert)
  // pair goes to the expert's rank and its output comes back (two all-to-alls), then is added
  // into delta_ with its weight.
  Status moe_exchange(Backend& be, const LayerWeights& w, int64_t row0, int64_t rows,
                      const ShardComms& comms);
  // This rank's experts over the rows of host `in` (row j at j × in_stride, for local expert
  // expert_of[j]) into host `out` [rows, hidden].
  void run_local_experts(Backend& be, const LayerWeights& w, std::span<const int32_t> expert_of,
                         const float* in, int64_t in_stride, float* out);

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
  float scale_ = 1.0f;  // attention softmax scale
  // Activations, f32, in the backend's memory, sized for the largest batch seen so far.
  MemorySpace* memory_ = nullptr;  // where the buffers below live
  int64_t capacity_ = 0;           // rows they hold
  Buffer x_, norm_, qkv_, q_, k_, v_, attn_, delta_, gate_up_, act_;
  Buffer q_a_, latent_, latent_norm_, q_latent_, attn_latent_;  // MLA
  Buffer router_, expert_in_, expert_out_;                      // MoE
  Buffer last_;        // [logit rows, hidden]: the final norm's rows that get logits
  Buffer logits_;      // [rows, vocab] when the caller's logits are on the host or padded
  Buffer slice_;       // this rank's column slice (stage hand-over) or vocabulary slice (lm_head)
  Buffer gathered_;    // all-gather destination (stage inputs, lm_head slices)
  std::vector<char> host_stage_[2];  // collectives through host copies
  std::vector<int32_t> local_ids_;  // token ids relative to this rank's vocabulary slice
  std::vector<int32_t> rows_;       // logit rows, padded to the step's row count
  // MoE routing on the host: logits and bias copied back, each row's experts and weights, and
  // the rows grouped by expert ([expert_begin_[e], expert_begin_[e + 1]) of expert_rows_).
  std::vector<float> route_logits_, route_bias_, route_weights_, expert_scales_;
  std::vector<int32_t> route_experts_, expert_begin_, expert_rows_;
  // Expert parallelism: host staging of rows and pair payloads for the all-to-alls.
  std::vector<float> ep_rows_, ep_send_, ep_recv_, ep_out_;
  std::vector<int32_t> ep_pair_of_, ep_expert_of_;
};

}  // namespace ponder::worker
