// ModelWeights: a decoder's tensors loaded from a Checkpoint into one anonymous host region.
// Matrices keep the checkpoint dtype; q/k/v are fused into one [q+2kv, hidden] matrix and
// gate/up into one [2*ffn, hidden] matrix so each needs one matmul; norms and biases become f32.
#pragma once

#include <vector>

#include "worker/host_memory.h"
#include "worker/model/model_config.h"
#include "worker/safetensors.h"
#include "worker/tensor.h"

namespace ponder::worker {

struct LayerWeights {
  Tensor attn_norm;  // [hidden] f32
  Tensor wqkv;       // [q_dim + 2 * kv_dim, hidden]
  Tensor bqkv;       // [q_dim + 2 * kv_dim] f32, or empty
  Tensor q_norm;     // [head_dim] f32 (Qwen3), or empty
  Tensor k_norm;     // [head_dim] f32 (Qwen3), or empty
  Tensor wo;         // [hidden, q_dim]
  Tensor bo;         // [hidden] f32, or empty
  Tensor mlp_norm;   // [hidden] f32
  Tensor w_gate_up;  // [2 * ffn, hidden]: gate rows, then up rows
  Tensor b_gate_up;  // [2 * ffn] f32, or empty
  Tensor w_down;     // [hidden, ffn]
  Tensor b_down;     // [hidden] f32, or empty
};

struct LoadOptions {
  bool huge_pages = true;  // madvise(MADV_HUGEPAGE) on the weight region
};

struct ModelWeights {
  Tensor embed;       // [vocab, hidden]
  std::vector<LayerWeights> layers;
  Tensor final_norm;  // [hidden] f32
  Tensor lm_head;     // [vocab, hidden]; the embedding when tied
  HostRegion storage;
  size_t bytes_read = 0;  // checkpoint bytes read while loading

  // Reads every tensor the config implies; shapes must agree with config.json.
  static Expected<ModelWeights> load(const Checkpoint& checkpoint, const ModelConfig& config,
                                     const LoadOptions& options);
  // Weight bytes a decode step streams: every matrix once (embedding rows excluded when untied).
  size_t matmul_bytes() const;
};

}  // namespace ponder::worker
