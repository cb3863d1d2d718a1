// Local sizes of a shard.
#include "worker/shard.h"

#include <algorithm>

namespace ponder::worker {

ShardDims ShardDims::of(const ModelConfig& c, const ShardSpec& s) {
  ShardDims d;
  const int64_t tp = s.tp_size;
  d.n_heads = c.n_heads / tp;
  d.q_head_begin = s.tp_rank * d.n_heads;
  if (c.n_kv_heads >= tp) {
    d.n_kv_heads = c.n_kv_heads / tp;
    d.kv_head_begin = s.tp_rank * d.n_kv_heads;
  } else {
    // Each rank's query heads all fall in one key/value group; that head is replicated.
    d.n_kv_heads = 1;
    d.kv_head_begin = d.q_head_begin / (c.n_heads / c.n_kv_heads);
  }
  d.ffn = c.intermediate_size / tp;
  d.ffn_begin = s.tp_rank * d.ffn;
  d.moe_ffn = c.moe.ffn / tp;
  d.moe_ffn_begin = s.tp_rank * d.moe_ffn;
  d.shared_ffn = c.moe.shared_ffn / tp;
  d.shared_ffn_begin = s.tp_rank * d.shared_ffn;
  const int64_t per_rank = c.moe.n_experts / s.ep_size;
  d.expert_begin = s.ep_rank * per_rank;
  d.expert_end = d.expert_begin + per_rank;
  d.vocab_stride = (c.vocab_size + tp - 1) / tp;
  d.vocab_begin = std::min(c.vocab_size, s.tp_rank * d.vocab_stride);
  d.vocab_end = std::min(c.vocab_size, d.vocab_begin + d.vocab_stride);
  d.layer_begin = s.layer_begin;
  d.layer_end = s.layer_end < 0 ? c.n_layers : s.layer_end;
  return d;
}

}  // namespace ponder::worker
