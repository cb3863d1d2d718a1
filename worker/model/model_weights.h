// ModelWeights: one rank's share of a decoder's tensors (its ShardSpec), loaded from a Checkpoint
// into one anonymous host region by reading only the byte ranges of that share. Matrices keep the
// checkpoint dtype; q/k/v are stacked into one matrix and gate/up into another so each needs one
// matmul; norms and biases become f32. Shapes below are local (see ShardDims): with tp = 1 and one
// stage they are the full model's. move_to() puts them in a device's memory (one allocation, one
// copy); allocate() makes zero-filled weights of a config directly there (random-weight benchmarks).
// MLA's kv_b_proj becomes w_uk (transposed per head) and w_uv, the absorbed form decode uses.
// quantize() may then turn the matmul weights into int8 (Tensor::scale holds the row scales).
#pragma once

#include <vector>

#include "worker/host_memory.h"
#include "worker/memory_space.h"
#include "worker/model/model_config.h"
#include "worker/safetensors.h"
#include "worker/shard.h"
#include "worker/tensor.h"

namespace ponder::worker {

// One routed expert's SwiGLU MLP (this rank's intermediate rows of it).
struct ExpertWeights {
  Tensor w_gate_up;  // [2 * moe_ffn, hidden]: gate rows, then up rows
  Tensor w_down;     // [hidden, moe_ffn]
};

struct LayerWeights {
  Tensor attn_norm;  // [hidden] f32
  Tensor wqkv;       // [(heads + 2 * kv_heads) * head_dim, hidden]: this rank's q, k, v rows
                     // (empty for MLA)
  Tensor bqkv;       // [(heads + 2 * kv_heads) * head_dim] f32, or empty
  Tensor q_norm;     // [head_dim] f32 (Qwen3), or empty
  Tensor k_norm;     // [head_dim] f32 (Qwen3), or empty
  // MLA (config.is_mla()), this rank's heads; per head the query is [nope | rope] wide.
  Tensor wq_a;       // [q_lora_rank, hidden], or empty (a direct q projection)
  Tensor q_a_norm;   // [q_lora_rank] f32, or empty
  Tensor wq;         // [heads * (nope + rope), q_lora_rank or hidden]
  Tensor wkv_a;      // [kv_lora_rank + rope, hidden]: the latent and the shared rotary key
  Tensor kv_a_norm;  // [kv_lora_rank] f32
  Tensor w_uk;       // [heads * kv_lora_rank, nope]: per head, kv_b_proj's key rows transposed
                     // (absorbed into the query: q_latent = W_ukᵀ q_nope)
  Tensor w_uv;       // [heads * v_head_dim, kv_lora_rank]: per head, kv_b_proj's value rows
  Tensor wo;         // [hidden, heads * head_dim] (MLA: heads * v_head_dim): this rank's columns
  Tensor bo;         // [hidden] f32 on tp rank 0 only (added once before the all-reduce), or empty
  Tensor mlp_norm;   // [hidden] f32
  // The dense MLP — in a MoE layer, the shared experts (empty when there are none).
  Tensor w_gate_up;  // [2 * ffn, hidden]: this rank's gate rows, then its up rows
  Tensor b_gate_up;  // [2 * ffn] f32, or empty
  Tensor w_down;     // [hidden, ffn]: this rank's input columns
  Tensor b_down;     // [hidden] f32 on tp rank 0 only, or empty
  // MoE layers (config.layer_is_moe): the router and every routed expert.
  Tensor router;       // [n_experts, hidden]
  Tensor router_bias;  // [n_experts] f32 (DeepSeek's e_score_correction_bias), or empty
  std::vector<ExpertWeights> experts;  // this rank's: ShardDims [expert_begin, expert_end)
};

struct LoadOptions {
  bool huge_pages = true;  // madvise(MADV_HUGEPAGE) on the weight region
  // kInt8: every matmul weight (attention, MLP, experts, lm_head — a tied one as its own copy)
  // becomes int8 with per-row scales as it is read (FP8 ones after: ModelWeights::quantize); the
  // router, the embedding and MLA's absorbed w_uk / w_uv keep their dtype.
  WeightQuant quantize = WeightQuant::kNone;
};

// Symmetric int8 of one row: q[i] = round(w[i] / scale) with scale = max|w| / 127 (0 for an
// all-zero row); returns the scale.
float quantize_row_int8(const float* w, int64_t k, int8_t* q);

struct ModelWeights {
  Tensor embed;       // [vocab_end - vocab_begin, hidden] on the first stage, else empty
  std::vector<LayerWeights> layers;  // the stage's layers, from ShardDims::layer_begin
  Tensor final_norm;  // [hidden] f32 on the last stage
  Tensor lm_head;     // [vocab_end - vocab_begin, hidden] on the last stage (the embedding when tied)
  HostRegion storage;       // where load() puts the tensors
  Buffer device_storage;    // where they are after move_to() / allocate() with a device space
  size_t bytes_read = 0;  // checkpoint bytes read while loading

  // Reads every tensor the config implies; shapes must agree with config.json.
  static Expected<ModelWeights> load(const Checkpoint& checkpoint, const ModelConfig& config,
                                     const ShardSpec& shard, const LoadOptions& options);
  // Every tensor `config`'s shard needs, zero-filled, in `memory`: matrices in `dtype`, norms and
  // biases f32 (norm weights are left zero too: callers fill every tensor).
  static Expected<ModelWeights> allocate(const ModelConfig& config, const ShardSpec& shard,
                                         DType dtype, MemorySpace& memory);
  // Replaces the matmul weights that are not int8 yet (load() quantizes the float ones as it
  // reads them when LoadOptions::quantize says so; FP8 ones come out bf16) by int8 + per-row
  // scales in a new host region, copies every other tensor there and releases the old one; a
  // no-op when there is nothing to quantize. A matrix whose rows are not a multiple of
  // cpu::kQ8Block wide keeps its dtype. Host weights only.
  Status quantize(WeightQuant quant);
  // Moves every tensor from host memory into `memory` and releases the host copy; a no-op when
  // they are already there.
  Status move_to(MemorySpace& memory);
  Device device() const;
  // Every non-empty tensor once (the tied lm_head is the embedding): for filling and moving.
  std::vector<Tensor*> tensors();
  // Weight bytes a decode step streams: every matrix once (embedding rows excluded when untied);
  // of the routed experts, top_k of each MoE layer's (what one token reads).
  size_t matmul_bytes(const ModelConfig& config) const;
};

}  // namespace ponder::worker
