// MoE routing: from a token's router logits to its top_k experts and their weights, as
// transformers computes them (f32): Qwen3-MoE's softmax top-k, DeepSeek-V2's softmax within the
// topk_group groups with the best single experts, and DeepSeek-V3's sigmoid scores with the
// correction bias deciding the choice (not the weights) among the topk_group groups whose two best
// sum highest. Host code: the router's logits are small.
#pragma once

#include <cstdint>
#include <span>

#include "worker/model/model_config.h"

namespace ponder::worker {

// For each of n tokens: experts[t * top_k + i] and weights[t * top_k + i], i < top_k, experts in
// descending order of choice score (ties: the lower index first). logits [n, n_experts]; bias
// [n_experts] or empty (config.score_bias).
void route_tokens(const MoeConfig& config, const float* logits, int64_t n,
                  std::span<const float> bias, int32_t* experts, float* weights);

}  // namespace ponder::worker
