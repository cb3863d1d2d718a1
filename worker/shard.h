// ShardSpec: which part of a model one rank holds — its tensor-parallel slice (Megatron: q/k/v and
// gate/up by output rows, o/down by input columns, each expert the same way, MLA by heads with
// its latent replicated; embedding and lm_head by vocabulary rows) and its pipeline stage's
// layers — and ShardDims, the local sizes that follow from it.
#pragma once

#include <cstdint>

#include "worker/model/model_config.h"

namespace ponder::worker {

struct ShardSpec {
  int tp_rank = 0;
  int tp_size = 1;
  int ep_rank = 0;  // expert parallelism: this rank holds routed experts
  int ep_size = 1;  // [ep_rank × n_experts / ep_size, (ep_rank + 1) × n_experts / ep_size)
  int64_t layer_begin = 0;
  int64_t layer_end = -1;  // -1: through the last layer
  bool first_stage = true;  // runs the embedding
  bool last_stage = true;   // runs the final norm and lm_head
};

struct ShardDims {
  int64_t n_heads = 0;      // query heads on this rank
  int64_t n_kv_heads = 0;   // key/value heads on this rank (replicated when tp > n_kv_heads)
  int64_t q_head_begin = 0;
  int64_t kv_head_begin = 0;
  int64_t ffn = 0;          // intermediate rows on this rank
  int64_t ffn_begin = 0;
  int64_t moe_ffn = 0;      // each routed expert's intermediate rows on this rank
  int64_t moe_ffn_begin = 0;
  int64_t shared_ffn = 0;   // the shared experts' intermediate rows on this rank
  int64_t shared_ffn_begin = 0;
  int64_t expert_begin = 0; // [expert_begin, expert_end): the routed experts on this rank
  int64_t expert_end = 0;
  int64_t vocab_begin = 0;  // [vocab_begin, vocab_end) of embedding and lm_head rows
  int64_t vocab_end = 0;
  int64_t vocab_stride = 0; // ceil(vocab / tp): the padded per-rank slice for gathers
  int64_t layer_begin = 0;
  int64_t layer_end = 0;

  static ShardDims of(const ModelConfig& config, const ShardSpec& shard);
  int64_t n_layers() const { return layer_end - layer_begin; }
};

}  // namespace ponder::worker
