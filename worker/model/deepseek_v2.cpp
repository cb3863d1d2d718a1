// DeepseekV2ForCausalLM (DeepSeek-V2, V2-Lite, V2.5): the same Multi-head Latent Attention and
// dense-then-MoE layers as V3 (configure_deepseek), with softmax scores, no correction bias,
// greedy or group_limited_greedy top-k (a group's score is its best expert), unnormalised
// weights, and its rotary pairs always interleaved.
#include "worker/model/architecture.h"

namespace ponder::worker {

Status configure_deepseek_v2(const nlohmann::json& json, ModelConfig& config) {
  return configure_deepseek(json, config, /*v3=*/false);
}

}  // namespace ponder::worker
