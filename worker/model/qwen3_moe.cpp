// Qwen3MoeForCausalLM: Qwen3 attention (q/k norm) with softmax top-k mixture-of-experts layers
// wherever decoder_sparse_step and mlp_only_layers put them; the other layers keep a dense MLP of
// intermediate_size.
#include "worker/model/architecture.h"

#include "common/check.h"

namespace ponder::worker {

Status configure_qwen3_moe(const nlohmann::json& json, ModelConfig& config) {
  PONDER_RETURN_IF_ERROR(configure_qwen3(json, config));
  MoeConfig& m = config.moe;
  // transformers 5 writes num_local_experts; the Hub's configs say num_experts.
  const char* experts_key = json.contains("num_experts") ? "num_experts" : "num_local_experts";
  PONDER_RETURN_IF_ERROR(config_int(json, experts_key, m.n_experts, true, 1));
  PONDER_RETURN_IF_ERROR(config_int(json, "num_experts_per_tok", m.top_k, true, 1));
  PONDER_RETURN_IF_ERROR(config_int(json, "moe_intermediate_size", m.ffn, true, 1));
  PONDER_ASSIGN_OR_RETURN(m.norm_topk_prob, config_bool(json, "norm_topk_prob", false));
  if (m.top_k > m.n_experts)
    return error(StatusCode::kInvalidArgument,
                 "num_experts_per_tok (%lld) is more than %s (%lld)", (long long)m.top_k,
                 experts_key, (long long)m.n_experts);
  int64_t sparse_step = 1;
  PONDER_RETURN_IF_ERROR(config_int(json, "decoder_sparse_step", sparse_step, false, 1));
  m.layer_is_moe.assign(config.n_layers, false);
  for (int64_t l = 0; l < config.n_layers; ++l) m.layer_is_moe[l] = (l + 1) % sparse_step == 0;
  if (auto it = json.find("mlp_only_layers"); it != json.end() && !it->is_null()) {
    if (!it->is_array())
      return error(StatusCode::kInvalidArgument, "key 'mlp_only_layers': expected a list");
    for (const nlohmann::json& layer : *it) {
      if (!layer.is_number_integer() || layer.get<int64_t>() < 0 ||
          layer.get<int64_t>() >= config.n_layers)
        return error(StatusCode::kInvalidArgument,
                     "key 'mlp_only_layers': %s is not a layer index below %lld",
                     layer.dump().c_str(), (long long)config.n_layers);
      m.layer_is_moe[layer.get<int64_t>()] = false;
    }
  }
  return {};
}

}  // namespace ponder::worker
